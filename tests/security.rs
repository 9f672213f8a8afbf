//! Users, passwords and privileges (`common.security.authorizationEnabled`) through
//! pymilvus 2.5.18 and the REST API (`tests/python/security_client.py`), on real etcd,
//! nats-server and every role, with an HA rootcoord pair: unauthenticated and wrong
//! credentials are refused, root changes its password, a user with read privileges on
//! one collection reads it and nothing else, grants survive a SIGKILL of the active
//! rootcoord, and etcd holds bcrypt hashes, never passwords.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::data::{data_cluster, healthy, logs, run_script};
use milvus::testkit::process::Milvus;
use milvus::testkit::NatsServer;
use nix::sys::signal::Signal;

const SEC: Duration = Duration::from_secs(1);

fn client(args: &[&str]) -> (bool, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/security_client.py");
    run_script(&script, args)
}

#[test]
fn users_passwords_and_privileges_hold_through_a_rootcoord_failover() {
    let nats = NatsServer::start();
    let mut c = data_cluster(3, &nats);
    c.set("COMMON_SECURITY_AUTHORIZATION_ENABLED", "true");
    c.set("ROOT_COORD_ENABLE_ACTIVE_STANDBY", "true");
    let mut procs: Vec<Milvus> = milvus::testkit::cluster::ALL_ROLES
        .iter()
        .map(|r| c.start(r, &[]))
        .collect();
    for m in &procs {
        healthy(m);
    }
    let standby = c.start("rootcoord", &[]);
    assert!(standby.wait_state("StandBy", 10 * SEC), "{}", standby.log());
    let proxy_port = procs[7].port;
    let uri = format!("http://127.0.0.1:{proxy_port}");

    let (ok, text) = client(&["auth", &uri]);
    assert!(
        ok && text.contains("auth: all checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
    // etcd holds bcrypt hashes; no password appears in etcd or in any log.
    let users = c.etcd_get_prefix("by-dev/meta/root-coord/credential/users/");
    assert!(users.len() >= 2, "{users:?}");
    for (k, v) in &users {
        assert!(
            v.contains("$2b$10$") || v.contains("$2y$10$"),
            "{k}: no bcrypt hash"
        );
        for pw in ["Milvus2", "alice-pw2"] {
            assert!(!v.contains(pw), "{k} holds a password");
        }
    }
    for m in procs.iter().chain([&standby]) {
        let log = m.log();
        assert!(
            !log.contains("alice-pw2") && !log.contains("Milvus2"),
            "a password in a log"
        );
    }
    // Failures are logged, but not one line each: at most one per client address per 10 s.
    let proxy_log = procs[7].log();
    let lines = proxy_log.matches("authentication failed").count();
    assert!(lines >= 1, "no failure logged:\n{proxy_log}");
    assert!(
        lines < 6,
        "{lines} failure lines for the six failures of one client"
    );
    let status = procs[7].status().expect("proxy /status");
    let failures = status["auth_failures"].as_u64().unwrap_or(0);
    assert!(failures >= 6, "/status auth_failures {failures}: {status}");

    let (ok, text) = client(&["rbac", &uri]);
    assert!(
        ok && text.contains("rbac: all checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
    let (ok, text) = client(&["rest", &uri]);
    assert!(
        ok && text.contains("rest: all checks passed"),
        "{text}\n{}",
        logs(&procs)
    );

    // The active rootcoord dies; the standby takes over with every grant.
    procs[0].signal(Signal::SIGKILL);
    assert!(standby.wait_state("Healthy", 20 * SEC), "{}", standby.log());
    let (ok, text) = client(&["grants", &uri]);
    assert!(
        ok && text.contains("grants: all checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
    procs.push(standby);
}

/// The quick start through TLS on the proxy's port (`common.security.tlsMode` 1 and 2),
/// with certificates made here; plain gRPC and REST refused, plain probes answered, and
/// in mode 2 clients without a certificate of the configured CA refused.
#[test]
fn tls_one_way_and_mutual_on_the_client_port() {
    let nats = NatsServer::start();
    let mut c = data_cluster(3, &nats);
    let certs = common::tls::make(&c.dir.0.join("certs"));
    let certs_dir = c.dir.0.join("certs");
    c.set("TLS_SERVER_PEM_PATH", certs.server.to_str().unwrap());
    c.set("TLS_SERVER_KEY_PATH", certs.server_key.to_str().unwrap());
    c.set("TLS_CA_PEM_PATH", certs.ca.to_str().unwrap());
    let mut procs: Vec<Milvus> = milvus::testkit::cluster::ALL_ROLES[..7]
        .iter()
        .map(|r| c.start(r, &[]))
        .collect();
    for m in &procs {
        healthy(m);
    }
    for mode in ["1", "2"] {
        let proxy = c.start("proxy", &[("COMMON_SECURITY_TLS_MODE", mode)]);
        healthy(&proxy);
        let port = proxy.port.to_string();
        let (ok, text) = client(&["tls", &port, mode, certs_dir.to_str().unwrap()]);
        assert!(
            ok && text.contains("tls: all checks passed"),
            "mode {mode}: {text}\n{}",
            proxy.log()
        );
        procs.push(proxy);
    }
}

/// A certificate file that is missing or not PEM stops the proxy at start with exit 2 and
/// the key that names it.
#[test]
fn a_bad_certificate_stops_the_proxy_naming_the_key() {
    let c = common::Cluster::new(3);
    let bad = c.dir.0.join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let mut p = c.start(
        "proxy",
        &[
            ("COMMON_SECURITY_TLS_MODE", "1"),
            ("TLS_SERVER_PEM_PATH", bad.to_str().unwrap()),
        ],
    );
    let status = p.wait_exit(10 * SEC).expect("the proxy exits");
    assert_eq!(status.code(), Some(2), "{}", p.log());
    let log = p.log();
    assert!(log.contains("tls.serverPemPath"), "{log}");
}
