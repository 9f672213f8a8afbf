//! A real NATS server with JetStream (Debian's `nats-server`) on a free loopback port
//! with a temporary store; it can be paused (SIGSTOP), resumed, and restarted on the
//! same port and store.

use std::fs::File;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{free_port, wait_until, TempDir, TlsFiles};

/// A running `nats-server -js`.
pub struct NatsServer {
    /// Client port on 127.0.0.1.
    pub port: u16,
    /// HTTP monitoring port (`/connz`, `/jsz`) on 127.0.0.1.
    pub monitor_port: u16,
    dir: TempDir,
    child: Option<Child>,
    /// TLS with client certificates of the CA required, and a user's name and password.
    secure: Option<(TlsFiles, String, String)>,
}

fn nats_binary() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin")])
            .map(|d| d.join("nats-server"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "nats-server not found in PATH or /usr/sbin: these tests run against a real NATS \
             JetStream server. Install it with `scripts/install_deps.sh` (Debian package nats-server)"
        )
    })
}

impl NatsServer {
    /// Starts a server with JetStream and waits until it accepts connections.
    pub fn start() -> NatsServer {
        let mut s = NatsServer {
            port: free_port(),
            monitor_port: free_port(),
            dir: TempDir::new("nats"),
            child: None,
            secure: None,
        };
        s.launch();
        s
    }

    /// Starts a server that serves clients only over TLS (`--tlsverify`: a client
    /// certificate of `tls.ca` is required; `tls.cert` is the server's) and only to
    /// `user` with `password`.
    pub fn start_secure(tls: &TlsFiles, user: &str, password: &str) -> NatsServer {
        let mut s = NatsServer {
            port: free_port(),
            monitor_port: free_port(),
            dir: TempDir::new("nats"),
            child: None,
            secure: Some((tls.clone(), user.to_string(), password.to_string())),
        };
        s.launch();
        s
    }

    /// Starts the server (again, after [`NatsServer::kill`]) on the same port and store.
    pub fn launch(&mut self) {
        let log = File::create(self.dir.0.join("nats.log")).expect("cannot create nats log");
        let mut cmd = Command::new(nats_binary());
        if let Some((tls, user, password)) = &self.secure {
            cmd.args(["--tls", "--tlsverify"]);
            cmd.arg("--tlscert").arg(&tls.cert);
            cmd.arg("--tlskey").arg(&tls.key);
            cmd.arg("--tlscacert").arg(&tls.ca);
            cmd.args(["--user", user, "--pass", password]);
        }
        let child = cmd
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .arg("-sd")
            .arg(self.dir.0.join("store"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log clone"))
            .stderr(log)
            .spawn()
            .expect("cannot start nats-server");
        self.child = Some(child);
        let port = self.port;
        let up = wait_until(Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(
            up,
            "nats-server on port {port} did not start: {}",
            self.log()
        );
    }

    /// Messages the server has sent to each client connection, by connection name
    /// (`/connz` of the monitoring port): what each process received from the log.
    pub fn messages_sent(&self) -> Vec<(String, u64)> {
        let (code, body) =
            super::http_get(self.monitor_port, "/connz?limit=1024").unwrap_or_else(|| {
                panic!(
                    "nats-server monitoring on port {} does not answer",
                    self.monitor_port
                )
            });
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("connz JSON");
        v["connections"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        (
                            c["name"].as_str().unwrap_or("").to_string(),
                            c["out_msgs"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `nats://127.0.0.1:<port>` (`tls://127.0.0.1:<port>` when secured).
    pub fn address(&self) -> String {
        match self.secure {
            None => format!("nats://127.0.0.1:{}", self.port),
            Some(_) => format!("tls://127.0.0.1:{}", self.port),
        }
    }

    fn pid(&self) -> Option<Pid> {
        self.child.as_ref().map(|c| Pid::from_raw(c.id() as i32))
    }

    /// The server's process id (0 when stopped).
    pub fn pid_number(&self) -> i32 {
        self.pid().map_or(0, Pid::as_raw)
    }

    /// Freezes the server (SIGSTOP).
    pub fn pause(&self) {
        if let Some(p) = self.pid() {
            super::freeze(p.as_raw());
        }
    }

    /// Resumes a paused server.
    pub fn resume(&self) {
        if let Some(p) = self.pid() {
            let _ = kill(p, Signal::SIGCONT);
        }
    }

    /// Stops the server (SIGKILL) and reaps it; the store stays.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGCONT);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("nats.log")).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
