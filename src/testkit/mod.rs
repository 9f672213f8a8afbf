//! Test and benchmark harness: a real etcd on free loopback ports, real `milvus`
//! processes, and waiting on conditions with deadlines. Used by `tests/` and `benches/`;
//! not used by the binary itself.

pub mod client;
pub mod cluster;
pub mod etcd_server;
pub mod memlimit;
pub mod milvus_client;
pub mod nats_server;
pub mod partition;
pub mod process;
pub mod s3_server;
pub mod sample;
pub mod soak;
pub mod stats;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use client::Spawned;
pub use cluster::BenchCluster;
pub use etcd_server::{EtcdCluster, EtcdServer};
pub use nats_server::NatsServer;
pub use process::Milvus;
pub use s3_server::S3Server;

/// A multi-thread tokio runtime with 2 workers, for tests and benchmarks.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The Python that `scripts/test.sh` prepares (`.venv`, with pymilvus 2.5.18, pyarrow
/// and moto): `MILVUS_TEST_PYTHON`, else `.venv/bin/python`. Panics with what to do when
/// there is none.
pub fn python() -> PathBuf {
    let p = std::env::var_os("MILVUS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(
        p.exists(),
        "no Python with pymilvus at {}: run scripts/test.sh (it prepares .venv with \
         pymilvus==2.5.18, pyarrow and moto) or set MILVUS_TEST_PYTHON",
        p.display()
    );
    p
}

/// Ports handed out come from here: below Linux's ephemeral range (32768-60999), so no
/// outgoing connection takes a port between the moment it is chosen and the moment its
/// server binds it.
const PORTS: std::ops::Range<u32> = 15000..32000;

/// A free TCP port on 127.0.0.1, never the same twice in one test process (a port
/// handed out but not yet bound by its server would otherwise be handed out again).
/// Processes start at different offsets (by pid), so concurrent test binaries rarely
/// try the same ports; a port in use is skipped.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = PORTS.end - PORTS.start;
    let offset = (std::process::id() * 7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = (PORTS.start + (offset + n) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {PORTS:?}");
}

/// A new empty directory under the system temp dir, removed by [`TempDir`]'s drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `<tmp>/milvus-test-<pid>-<n>-<tag>`.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("milvus-test-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("cannot create a temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("MILVUS_TEST_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Polls `cond` every 20 ms until it is true or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `bytes` at `path` (creating its directories) with a modification time `age`
/// ago: a file some process left there that long ago.
pub fn write_aged(path: &std::path::Path, bytes: &[u8], age: Duration) {
    std::fs::create_dir_all(path.parent().expect("a file in a directory")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
    std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open")
        .set_modified(std::time::SystemTime::now() - age)
        .expect("set the modification time");
}

/// Sends SIGSTOP to `pid` and waits (up to 5 s) until every one of its threads is
/// stopped, so that nothing the caller sends afterwards is still served by a thread
/// that had not yet reached the group stop. Returns whether the process is frozen.
pub fn freeze(pid: i32) -> bool {
    if nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .is_err()
    {
        return false;
    }
    wait_until(Duration::from_secs(5), || {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return false;
        };
        tasks.flatten().all(|t| {
            std::fs::read_to_string(t.path().join("stat"))
                .ok()
                .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('T')))
                .unwrap_or(true)
        })
    })
}

/// A plain HTTP/1.0 GET on 127.0.0.1:`port`; returns (status code, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    response(&buf)
}

/// The status code and body of an HTTP response.
fn response(text: &str) -> Option<(u16, String)> {
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// The certificate files of a test server or cluster with TLS (PEM): the CA, and one
/// certificate (for `localhost` and 127.0.0.1, usable by servers and clients) with its
/// key. Tests make them (rcgen); `scripts/gen_certs.sh` makes such a set for users.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA.
    pub ca: PathBuf,
    /// The certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// The settings that encrypt every link of a cluster with `files` (the CA, and the
/// cluster certificate for `localhost`): etcd over TLS with the certificate, the log at
/// `nats_address` over TLS with it, mutual TLS between the components, and TLS mode
/// `mode` on the proxy's port. Users of etcd and NATS, and S3 over https, are the
/// caller's to add.
pub fn encrypted_env(files: &TlsFiles, nats_address: &str, mode: &str) -> Vec<(String, String)> {
    let path = |p: &std::path::Path| p.display().to_string();
    let (ca, cert, key) = (path(&files.ca), path(&files.cert), path(&files.key));
    [
        ("ETCD_SSL_ENABLED", "true"),
        ("ETCD_SSL_TLS_CA_CERT", &ca),
        ("ETCD_SSL_TLS_CERT", &cert),
        ("ETCD_SSL_TLS_KEY", &key),
        ("NATSMQ_ADDRESS", nats_address),
        ("NATSMQ_TLS_ENABLED", "true"),
        ("NATSMQ_TLS_CA_PEM_PATH", &ca),
        ("NATSMQ_TLS_CLIENT_PEM_PATH", &cert),
        ("NATSMQ_TLS_CLIENT_KEY_PATH", &key),
        ("COMMON_SECURITY_INTERNALTLS_ENABLED", "true"),
        ("INTERNALTLS_SERVER_PEM_PATH", &cert),
        ("INTERNALTLS_SERVER_KEY_PATH", &key),
        ("INTERNALTLS_CA_PEM_PATH", &ca),
        ("COMMON_SECURITY_TLS_MODE", mode),
        ("TLS_SERVER_PEM_PATH", &cert),
        ("TLS_SERVER_KEY_PATH", &key),
        ("TLS_CA_PEM_PATH", &ca),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// One HTTP/1.1 request over TLS to `localhost`:`port`, trusting only the CA `ca` and
/// presenting no certificate; returns (status code, body), None when the connection or
/// the handshake fails.
pub fn https_request(
    port: u16,
    method: &str,
    path: &str,
    ca: &std::path::Path,
) -> Option<(u16, String)> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(ca).ok()? {
        roots.add(c.ok()?).ok()?;
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .ok()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("localhost").ok()?;
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).ok()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    tcp.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    // A server that closes without close_notify still sent its answer.
    let _ = s.read_to_end(&mut raw);
    response(&String::from_utf8_lossy(&raw))
}
