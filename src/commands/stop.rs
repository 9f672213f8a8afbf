//! `milvus stop <role>`: SIGTERM every process of the role on this host, then wait.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::exit;
use crate::pidfile;
use crate::role::Role;

/// Stops the role's processes; returns the exit code (0 when all stopped or none ran).
pub fn run(role: Role, alias: Option<&str>, timeout: Duration) -> i32 {
    let mut running = Vec::new();
    for path in pidfile::files(role, alias) {
        match pidfile::read_pid(&path) {
            Some(pid) if pidfile::is_milvus_role(pid, role) => running.push((pid, path)),
            _ => {
                println!("removing stale pid file {}", path.display());
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    if running.is_empty() {
        match alias {
            Some(a) => println!("no {role} process with alias {a:?} is running on this host"),
            None => println!("no {role} process is running on this host"),
        }
        return exit::OK;
    }
    for (pid, _) in &running {
        match kill(Pid::from_raw(*pid), Signal::SIGTERM) {
            Ok(()) => println!("sent SIGTERM to {role} (pid {pid})"),
            Err(e) => println!("cannot signal {role} (pid {pid}): {e}"),
        }
    }
    let deadline = Instant::now() + timeout;
    let mut left = running;
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left.retain(|(pid, path)| {
            let alive = pidfile::is_milvus_role(*pid, role);
            if !alive {
                println!("{role} (pid {pid}) stopped");
                let _ = std::fs::remove_file(path);
            }
            alive
        });
    }
    if left.is_empty() {
        return exit::OK;
    }
    for (pid, _) in &left {
        eprintln!(
            "milvus: {role} (pid {pid}) did not exit within {}s; `kill -9 {pid}` ends it (its standby then takes over after the session TTL)",
            timeout.as_secs()
        );
    }
    exit::RUNTIME
}
