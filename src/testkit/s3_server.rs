//! A real S3-protocol server process for the object-storage path: moto's `moto_server`
//! (PyPI `moto[server]`, installed into `.venv` by `scripts/test.sh`) on a free loopback
//! port, with a bucket created.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_until, TempDir, TlsFiles};

/// A running `moto_server`.
pub struct S3Server {
    /// Port on 127.0.0.1.
    pub port: u16,
    dir: TempDir,
    child: Option<Child>,
}

fn moto_binary() -> PathBuf {
    let beside_python = std::env::var_os("MILVUS_TEST_PYTHON")
        .map(PathBuf::from)
        .and_then(|p| p.parent().map(|d| d.join("moto_server")));
    let in_repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server");
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("moto_server"))
            .find(|p| p.is_file())
    });
    [beside_python, Some(in_repo), on_path]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "moto_server not found (beside MILVUS_TEST_PYTHON, in .venv/bin or on PATH): the \
                 object-storage tests run against a real S3-protocol server. Run scripts/test.sh, \
                 which installs moto[server] into .venv"
            )
        })
}

/// Sends one plain HTTP/1.1 request and returns the status code.
fn http(port: u16, method: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.split_whitespace().nth(1)?.parse().ok()
}

impl S3Server {
    /// Starts the server and creates `bucket`.
    pub fn start(bucket: &str) -> S3Server {
        Self::launch(bucket, None)
    }

    /// Starts the server on https only, with `tls.cert` (for `localhost` and 127.0.0.1),
    /// and creates `bucket`.
    pub fn start_secure(bucket: &str, tls: &TlsFiles) -> S3Server {
        Self::launch(bucket, Some(tls))
    }

    fn launch(bucket: &str, tls: Option<&TlsFiles>) -> S3Server {
        let port = free_port();
        let dir = TempDir::new("s3");
        let log = File::create(dir.0.join("moto.log")).expect("cannot create moto log");
        let mut cmd = Command::new(moto_binary());
        if let Some(t) = tls {
            cmd.arg("-c").arg(&t.cert).arg("-k").arg(&t.key);
        }
        let child = cmd
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log clone"))
            .stderr(log)
            .spawn()
            .expect("cannot start moto_server");
        let s = S3Server {
            port,
            dir,
            child: Some(child),
        };
        let request = |method: &str, path: &str| match tls {
            None => http(port, method, path),
            Some(t) => super::https_request(port, method, path, &t.ca).map(|(code, _)| code),
        };
        let up = wait_until(Duration::from_secs(30), || request("GET", "/").is_some());
        assert!(up, "moto_server on port {port} did not start: {}", s.log());
        let created = request("PUT", &format!("/{bucket}"));
        assert_eq!(
            created,
            Some(200),
            "cannot create bucket {bucket}: {}",
            s.log()
        );
        s
    }

    /// `127.0.0.1`, for `minio.address`.
    pub fn host(&self) -> String {
        "127.0.0.1".to_string()
    }

    /// Stops the server (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("moto.log")).unwrap_or_default()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}
