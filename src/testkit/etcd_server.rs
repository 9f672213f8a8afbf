//! A real etcd server (Debian's `etcd-server`) on free loopback ports with a temporary
//! data dir; it can be paused (SIGSTOP), resumed, killed and restarted.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{free_port, http_get, wait_until, TempDir, TlsFiles};

/// One etcd member.
pub struct EtcdServer {
    /// Member name.
    pub name: String,
    /// Client port on 127.0.0.1.
    pub client_port: u16,
    /// Peer port on 127.0.0.1.
    pub peer_port: u16,
    initial_cluster: String,
    cluster_state: &'static str,
    dir: TempDir,
    child: Option<Child>,
    /// TLS on the client port (client certificates required) and the plain port its
    /// `/health` is read on.
    secure: Option<(TlsFiles, u16)>,
}

fn etcd_binary() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("etcd"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "etcd server not found in PATH: these tests run against a real etcd. \
             Install it with `scripts/install_deps.sh` (Debian package etcd-server)"
        )
    })
}

impl EtcdServer {
    /// Starts a single-member etcd and waits until it answers.
    pub fn start() -> EtcdServer {
        let (client_port, peer_port) = (free_port(), free_port());
        let name = format!("etcd-{client_port}");
        let initial = format!("{name}=http://127.0.0.1:{peer_port}");
        let mut s = EtcdServer::spawn(name, client_port, peer_port, initial, "new");
        s.wait_ready();
        s
    }

    /// Starts a single-member etcd that serves clients only over TLS with a certificate
    /// of `tls.ca` (`--client-cert-auth`; `tls.cert` is its own and the clients'), and,
    /// with `root_password`, with etcd's authentication on (user `root`).
    pub fn start_secure(tls: &TlsFiles, root_password: Option<&str>) -> EtcdServer {
        let (client_port, peer_port) = (free_port(), free_port());
        let name = format!("etcd-{client_port}");
        let initial = format!("{name}=http://127.0.0.1:{peer_port}");
        let mut s = EtcdServer {
            dir: TempDir::new(&name),
            name,
            client_port,
            peer_port,
            initial_cluster: initial,
            cluster_state: "new",
            child: None,
            secure: Some((tls.clone(), free_port())),
        };
        s.launch();
        s.wait_ready();
        if let Some(pw) = root_password {
            for args in [
                &["user", "add", &format!("root:{pw}")][..],
                &["user", "grant-role", "root", "root"],
                &["auth", "enable"],
            ] {
                s.etcdctl(args);
            }
        }
        s
    }

    /// Runs `etcdctl` against this member (over TLS with its certificate when secured)
    /// and panics with its output when it fails.
    pub fn etcdctl(&self, args: &[&str]) -> String {
        let ctl = etcd_binary().with_file_name("etcdctl");
        let mut cmd = Command::new(if ctl.is_file() { ctl } else { "etcdctl".into() });
        cmd.arg(format!("--endpoints={}", self.url()));
        if let Some((tls, _)) = &self.secure {
            cmd.arg("--cacert").arg(&tls.ca);
            cmd.arg("--cert").arg(&tls.cert);
            cmd.arg("--key").arg(&tls.key);
        }
        let out = cmd
            .args(args)
            .env("ETCDCTL_API", "3")
            .output()
            .expect("cannot run etcdctl (Debian package etcd-client)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "etcdctl {args:?} failed: {text}");
        text
    }

    fn url(&self) -> String {
        let scheme = if self.secure.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    fn spawn(
        name: String,
        client_port: u16,
        peer_port: u16,
        initial_cluster: String,
        state: &'static str,
    ) -> EtcdServer {
        let mut s = EtcdServer {
            dir: TempDir::new(&name),
            name,
            client_port,
            peer_port,
            initial_cluster,
            cluster_state: state,
            child: None,
            secure: None,
        };
        s.launch();
        s
    }

    fn launch(&mut self) {
        let log = File::create(self.dir.0.join("etcd.log")).expect("cannot create etcd log");
        let client = self.url();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut cmd = Command::new(etcd_binary());
        if let Some((tls, health_port)) = &self.secure {
            cmd.arg("--cert-file").arg(&tls.cert);
            cmd.arg("--key-file").arg(&tls.key);
            cmd.arg("--trusted-ca-file").arg(&tls.ca);
            cmd.arg("--client-cert-auth");
            cmd.arg(format!(
                "--listen-metrics-urls=http://127.0.0.1:{health_port}"
            ));
        }
        let child = cmd
            .args(["--name", &self.name])
            .arg("--data-dir")
            .arg(self.dir.0.join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", self.cluster_state])
            .args(["--initial-cluster-token", "milvus-test"])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log clone"))
            .stderr(log)
            .spawn()
            .expect("cannot start etcd");
        self.child = Some(child);
    }

    /// Waits (20 s at most) until `/health` answers healthy.
    pub fn wait_ready(&mut self) {
        let port = self.secure.as_ref().map_or(self.client_port, |s| s.1);
        let ok = wait_until(Duration::from_secs(20), || {
            http_get(port, "/health").is_some_and(|(c, b)| c == 200 && b.contains("true"))
        });
        assert!(
            ok,
            "etcd on port {port} did not become healthy in 20 s; log: {}",
            self.log()
        );
    }

    /// `127.0.0.1:<client port>`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// The etcd process id.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("etcd is running").id() as i32
    }

    fn signal(&self, sig: Signal) {
        let _ = kill(Pid::from_raw(self.pid()), sig);
    }

    /// Freezes etcd (SIGSTOP).
    pub fn pause(&self) {
        super::freeze(self.pid());
    }

    /// Resumes etcd (SIGCONT).
    pub fn resume(&self) {
        self.signal(Signal::SIGCONT);
    }

    /// Kills etcd (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGCONT);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same ports and data dir, and waits until it answers
    /// (for a member of a cluster, until the process serves its client port).
    pub fn restart(&mut self) {
        self.kill();
        self.cluster_state = "existing";
        self.launch();
        let port = self.client_port;
        let serving = wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(
            serving,
            "restarted etcd does not serve port {port} after 20 s; log: {}",
            self.log()
        );
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("etcd.log")).unwrap_or_default()
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A multi-member etcd cluster on loopback.
pub struct EtcdCluster {
    /// The members.
    pub members: Vec<EtcdServer>,
}

impl EtcdCluster {
    /// Starts `n` members and waits until all answer.
    pub fn start(n: usize) -> EtcdCluster {
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let initial = ports
            .iter()
            .map(|(c, p)| format!("etcd-{c}=http://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut members: Vec<EtcdServer> = ports
            .iter()
            .map(|(c, p)| EtcdServer::spawn(format!("etcd-{c}"), *c, *p, initial.clone(), "new"))
            .collect();
        for m in &mut members {
            m.wait_ready();
        }
        EtcdCluster { members }
    }

    /// All client endpoints, comma separated.
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(EtcdServer::endpoint)
            .collect::<Vec<_>>()
            .join(",")
    }
}
