//! A real `milvus` process started by a test, its log, its `/status`, and signals to it
//! by pid. Dropping it kills the process.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{free_port, http_get, wait_until};

/// A running `milvus run <role>` process.
pub struct Milvus {
    /// Role name.
    pub role: String,
    /// Its HTTP/gRPC port.
    pub port: u16,
    /// Its combined stdout/stderr log.
    pub log_path: PathBuf,
    child: Child,
    exit: Option<ExitStatus>,
}

impl Milvus {
    /// Starts `bin run <role>` on a free port with `env` added to the environment
    /// (the port variable is set here), logging to `<log_dir>/<role>-<port>.log`.
    pub fn start(bin: &Path, role: &str, env: &[(String, String)], log_dir: &Path) -> Milvus {
        Milvus::start_on(bin, role, env, log_dir, free_port())
    }

    /// Like [`Milvus::start`], on a given port (to restart a process where it was).
    pub fn start_on(
        bin: &Path,
        role: &str,
        env: &[(String, String)],
        log_dir: &Path,
        port: u16,
    ) -> Milvus {
        Milvus::start_wrapped(&[], bin, role, env, log_dir, port)
    }

    /// Like [`Milvus::start_on`], run through `wrapper` (a command that execs its
    /// arguments, e.g. `unshare -u ...`), so the pid is still the milvus process's. An
    /// `<SECTION>_ADDRESS` in `env` replaces the default `127.0.0.1`.
    pub fn start_wrapped(
        wrapper: &[&str],
        bin: &Path,
        role: &str,
        env: &[(String, String)],
        log_dir: &Path,
        port: u16,
    ) -> Milvus {
        let section = match role {
            "rootcoord" => "ROOT_COORD",
            "querycoord" => "QUERY_COORD",
            "datacoord" => "DATA_COORD",
            "indexcoord" => "INDEX_COORD",
            "querynode" => "QUERY_NODE",
            "datanode" => "DATA_NODE",
            "indexnode" => "INDEX_NODE",
            _ => "PROXY",
        };
        let log_path = log_dir.join(format!("{role}-{port}.log"));
        let log = File::create(&log_path).expect("cannot create process log");
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let child = cmd
            .args(["run", role])
            .current_dir(log_dir)
            .env(format!("{section}_ADDRESS"), "127.0.0.1")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(format!("{section}_PORT"), port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log clone"))
            .stderr(log)
            .spawn()
            .expect("cannot start milvus");
        Milvus {
            role: role.to_string(),
            port,
            log_path,
            child,
            exit: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `sig` to this process (by pid).
    pub fn signal(&self, sig: Signal) {
        let _ = kill(Pid::from_raw(self.pid()), sig);
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> bool {
        wait_until(limit, || self.log().contains(needle))
    }

    /// How many log lines contain `needle`.
    pub fn count_log(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// `/status` as JSON, if the process answers.
    pub fn status(&self) -> Option<serde_json::Value> {
        let (code, body) = http_get(self.port, "/status")?;
        (code == 200)
            .then(|| serde_json::from_str(&body).ok())
            .flatten()
    }

    /// The `state` on `/status` (`Healthy`, `StandBy`, ...), if it answers.
    pub fn state(&self) -> Option<String> {
        self.status()?.get("state")?.as_str().map(str::to_string)
    }

    /// Waits until `/status` reports `state`.
    pub fn wait_state(&self, state: &str, limit: Duration) -> bool {
        wait_until(limit, || self.state().as_deref() == Some(state))
    }

    /// Polls `/status` every `every` until it reports `state`; returns when it first did,
    /// or `None` after `limit` (for timing a takeover: the poll is the resolution).
    pub fn state_reached(&self, state: &str, every: Duration, limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.state().as_deref() == Some(state) {
                return Some(Instant::now());
            }
            std::thread::sleep(every);
        }
        None
    }

    /// The ServerID on `/status`.
    pub fn server_id(&self) -> Option<i64> {
        self.status()?.get("ServerID")?.as_i64()
    }

    /// Whether it has exited (reaping it if so).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Waits for the process to exit; returns its status, or `None` after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Milvus {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.signal(Signal::SIGCONT);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
