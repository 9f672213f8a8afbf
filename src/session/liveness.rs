//! Fast death detection of a session's holder: evidence that a process is gone, so a
//! standby need not wait out its lease.
//!
//! A lease is the proof of last resort, for when nothing can be observed (a frozen
//! process, a lost host, a cut network). A process that dies leaves evidence at once: the
//! kernel closes its sockets (FIN or RST to every peer) and its port refuses connections.
//! [`gone`] keeps one idle TCP connection to the holder's advertised address and returns
//! only with such evidence:
//!
//! - **Same host** (the holder registered this machine's host name and a pid): its
//!   connection closed, or a connection was refused, *and* its pid no longer runs `milvus
//!   run <role>`. Both are needed: a pid alone could belong to another pid namespace (a
//!   container with the host's network), a closed connection alone could be a live
//!   server closing an idle connection.
//! - **Another host**, with a non-loopback address: a connection refused (the host
//!   answered and nothing listens on the port; a holder listens for its whole life), or
//!   the watch connection closed (FIN or RST, which a network partition never produces)
//!   and a new connection then fails within [`PROBE`] (refused, unreachable, the name no
//!   longer resolves, or no answer: a killed container's address vanishes with it).
//! - A loopback address registered from another host says nothing observable here: no
//!   fast path.
//!
//! A paused (SIGSTOP) holder keeps its connections open and a partitioned one sends
//! nothing, so neither is ever reported: both are replaced at lease expiry, as before.
//! A wrong report would still be safe: the caller revokes the holder's lease, which
//! deletes its ACTIVE key, so its fenced writes (conditioned on that key's create
//! revision) are refused and it stops at its next renewal (docs/architecture.md §2.8).

use std::io::ErrorKind;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::SessionValue;
use crate::role::Role;

/// How long a connection attempt may take before it counts as unanswered.
pub const PROBE: Duration = Duration::from_millis(1000);
/// Pause between attempts while the holder cannot be reached and nothing is proven.
const RETRY: Duration = Duration::from_millis(500);

/// What a connection attempt found.
enum Probe {
    Connected(TcpStream),
    Refused,
    /// Unreachable, not resolvable, or no answer within [`PROBE`].
    Silent(String),
}

async fn probe(address: &str) -> Probe {
    match tokio::time::timeout(PROBE, TcpStream::connect(address)).await {
        Ok(Ok(s)) => Probe::Connected(s),
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => Probe::Refused,
        Ok(Err(e)) => Probe::Silent(e.to_string()),
        Err(_) => Probe::Silent(format!("no answer within {PROBE:?}")),
    }
}

/// Waits until the peer closes `stream` (EOF or reset). Anything it sends is discarded.
async fn closed(mut stream: TcpStream) -> String {
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => return "connection closed (FIN)".to_string(),
            Ok(_) => continue,
            Err(e) => return format!("connection closed ({e})"),
        }
    }
}

fn is_loopback(address: &str) -> bool {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Returns once `holder` (a session of `role`, seen from a process on `own_host`) is
/// provably gone, with the evidence; never returns while it may be alive.
pub async fn gone(role: Role, own_host: &str, holder: &SessionValue) -> String {
    gone_after(role, own_host, holder, false).await
}

/// As [`gone`]; with `after_contact`, a holder on another host is judged only once a
/// connection to its address has succeeded: a refusal or silence before any contact may
/// be a wrong advertised address or a firewall, not a death. (A coordinator's address is
/// what every client dials, so a standby needs no contact first; a worker's may never be
/// dialed by anyone.)
pub async fn gone_after(
    role: Role,
    own_host: &str,
    holder: &SessionValue,
    after_contact: bool,
) -> String {
    let same_host = holder.host_name == own_host && holder.pid != 0;
    let pid_gone = || {
        same_host
            && holder.pid != std::process::id()
            && !crate::pidfile::is_milvus_role(holder.pid as i32, role)
    };
    if !same_host && is_loopback(&holder.address) {
        return std::future::pending().await;
    }
    let mut contacted = !after_contact;
    let mut next = probe(&holder.address).await;
    loop {
        match next {
            Probe::Connected(stream) => {
                contacted = true;
                let how = closed(stream).await;
                if same_host {
                    if pid_gone() {
                        return format!("{how}; pid {} is gone", holder.pid);
                    }
                    tokio::time::sleep(RETRY).await;
                    next = probe(&holder.address).await;
                    continue;
                }
                next = probe(&holder.address).await;
                match next {
                    Probe::Connected(_) => continue,
                    Probe::Refused => return format!("{how}; then connection refused"),
                    Probe::Silent(why) => return format!("{how}; then {why}"),
                }
            }
            Probe::Refused => {
                if !same_host && contacted {
                    return "connection refused".to_string();
                }
                if pid_gone() {
                    return format!("connection refused; pid {} is gone", holder.pid);
                }
            }
            Probe::Silent(_) => {}
        }
        tokio::time::sleep(RETRY).await;
        next = probe(&holder.address).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(address: &str, host: &str, pid: u32) -> SessionValue {
        SessionValue {
            server_id: 7,
            server_name: "rootcoord".into(),
            address: address.into(),
            exclusive: true,
            stopping: false,
            trigger_kill: true,
            version: String::new(),
            project_version: String::new(),
            lease_id: Some(1),
            host_name: host.into(),
            pid,
        }
    }

    #[test]
    fn loopback_addresses() {
        assert!(is_loopback("127.0.0.1:53100"));
        assert!(is_loopback("localhost:53100"));
        assert!(is_loopback("[::1]:53100"));
        assert!(!is_loopback("rootcoord:53100"));
        assert!(!is_loopback("10.0.0.7:53100"));
    }

    /// A pid that no longer runs: a child that has exited and been reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[tokio::test]
    async fn a_same_host_holder_is_gone_once_its_connection_closes_and_its_pid_is_gone() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let h = holder(&address, "this-host", dead_pid());
        // Its connection stays open (a live or paused process): no evidence, whatever the
        // pid says.
        let accept = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            (listener, s)
        });
        let r = tokio::time::timeout(
            Duration::from_millis(1200),
            gone(Role::RootCoord, "this-host", &h),
        )
        .await;
        assert!(
            r.is_err(),
            "a holder with an open connection was reported gone: {r:?}"
        );
        // The listener and the connection close, as at a process exit.
        let (listener, conn) = accept.await.unwrap();
        let watch = tokio::spawn({
            let h = h.clone();
            async move { gone(Role::RootCoord, "this-host", &h).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(listener);
        drop(conn);
        let why = tokio::time::timeout(Duration::from_secs(3), watch)
            .await
            .expect("the dead holder was not detected")
            .unwrap();
        assert!(why.contains("is gone"), "{why}");
    }

    #[tokio::test]
    async fn a_same_host_holder_whose_pid_runs_is_never_judged() {
        // Nothing listens at the address, but the pid is this test process: alive.
        let h = holder("127.0.0.1:1", "this-host", std::process::id());
        let r = tokio::time::timeout(
            Duration::from_millis(1200),
            gone(Role::RootCoord, "this-host", &h),
        )
        .await;
        assert!(r.is_err(), "{r:?}");
    }

    #[tokio::test]
    async fn a_loopback_address_from_another_host_is_never_judged() {
        let h = holder("127.0.0.1:1", "other-host", 4242);
        let r = tokio::time::timeout(
            Duration::from_millis(700),
            gone(Role::RootCoord, "this-host", &h),
        )
        .await;
        assert!(r.is_err());
    }
}
