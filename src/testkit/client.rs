//! A client program (a Python script) running beside the processes under test, with its
//! output going to a file, so a test can wait on what it has printed so far (for
//! instance its first acknowledged call) instead of sleeping, then collect it all.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{wait_until, TempDir};

/// The line a client prints (and flushes) once its first call has been answered.
pub const STARTED: &str = "client: first call answered";

/// A running client.
pub struct Spawned {
    child: Child,
    out: PathBuf,
    _dir: TempDir,
}

impl Spawned {
    /// Runs `program args...` with stdout and stderr going to one file.
    pub fn start(program: &Path, args: &[&str]) -> Spawned {
        let dir = TempDir::new("client");
        let out = dir.0.join("output");
        let file = std::fs::File::create(&out).expect("client output file");
        let child = Command::new(program)
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .stdout(file.try_clone().expect("client output file"))
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Spawned {
            child,
            out,
            _dir: dir,
        }
    }

    /// What it has printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits (up to `limit`) until its output contains `needle`; panics with the output
    /// when it does not, or when the client exits first.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) {
        let mut exited = None;
        let seen = wait_until(limit, || {
            if self.output().contains(needle) {
                return true;
            }
            exited = self.child.try_wait().ok().flatten();
            exited.is_some()
        });
        let out = self.output();
        assert!(
            seen && out.contains(needle),
            "the client did not print {needle:?} within {limit:?} (exit: {exited:?}):\n{out}"
        );
    }

    /// Waits until it has answered its first call ([`STARTED`]).
    pub fn wait_started(&mut self, limit: Duration) {
        self.wait_for(STARTED, limit);
    }

    /// Waits for it to exit: (success, everything it printed).
    pub fn finish(mut self) -> (bool, String) {
        let status = self.child.wait().expect("wait for the client");
        (status.success(), self.output())
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
