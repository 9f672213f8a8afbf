//! Users, passwords and privileges (`common.security.authorizationEnabled`) through
//! pymilvus 2.5.18 and the REST API (`tests/python/security_client.py`), on real etcd,
//! nats-server and every role, with an HA rootcoord pair: unauthenticated and wrong
//! credentials are refused, root changes its password, a user with read privileges on
//! one collection reads it and nothing else, grants survive a SIGKILL of the active
//! rootcoord, and etcd holds bcrypt hashes, never passwords.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::data::{all_roles, data_cluster, healthy, logs, run_script};
use milvus::testkit::process::Milvus;
use milvus::testkit::NatsServer;
use nix::sys::signal::Signal;

const SEC: Duration = Duration::from_secs(1);

/// The value of a counter on a process's `/metrics` (plain HTTP, open for scrapers also
/// when the port has TLS).
fn metric(port: u16, name: &str, role: &str) -> u64 {
    let (code, text) = milvus::testkit::http_get(port, "/metrics").expect("/metrics answers");
    assert_eq!(code, 200, "{text}");
    let series = format!("{name}{{role=\"{role}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{text}"))
}

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
    let counted = metric(procs[7].port, "milvus_auth_failures_total", "proxy");
    assert!(
        counted >= failures,
        "/metrics counts {counted}, /status {failures}"
    );

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

/// Every link encrypted: etcd over TLS with client certificates and etcd's own
/// authentication, nats-server over TLS with client certificates and a user, the S3
/// server over https with the test's CA, mutual TLS between every component
/// (`internaltls`), mutual TLS and users on the client port. The quick start passes
/// through it (and its rows reach the bucket), the cluster's keys are in the secured
/// etcd, every log connection is TLS, and a coordinator's port refuses callers without
/// the cluster certificate.
#[test]
fn every_link_encrypted_and_internal_ports_refuse_callers_without_the_cluster_certificate() {
    let scratch = milvus::testkit::TempDir::new("all-tls");
    let certs = common::tls::make(&scratch.0.join("certs"));
    let files = certs.files();
    let etcd = milvus::testkit::EtcdServer::start_secure(&files, Some("etcd-pw"));
    let nats = NatsServer::start_secure(&files, "milvus", "nats-pw");
    let s3 = milvus::testkit::S3Server::start_secure("milvus-bucket", &files);
    // TTL 10 s: the etcd restart below must not outlast the sessions' leases.
    let mut c = common::Cluster::with_endpoints(etcd, 10);
    let ca = certs.ca.to_str().unwrap().to_string();
    let port = s3.port.to_string();
    for (k, v) in milvus::testkit::encrypted_env(&files, &nats.address(), "2") {
        c.set(&k, &v);
    }
    for (k, v) in [
        ("ETCD_AUTH_ENABLED", "true"),
        ("ETCD_AUTH_USER_NAME", "root"),
        ("ETCD_AUTH_PASSWORD", "etcd-pw"),
        ("NATSMQ_USERNAME", "milvus"),
        ("NATSMQ_PASSWORD", "nats-pw"),
        ("COMMON_STORAGE_TYPE", "minio"),
        ("MINIO_ADDRESS", "localhost"),
        ("MINIO_PORT", &port),
        ("MINIO_USE_SSL", "true"),
        ("MINIO_SSL_TLS_CA_CERT", &ca),
        ("MINIO_BUCKET_NAME", "milvus-bucket"),
        ("COMMON_SECURITY_AUTHORIZATION_ENABLED", "true"),
        ("ROOT_COORD_DML_CHANNEL_NUM", "2"),
    ] {
        c.set(k, v);
    }
    let procs = all_roles(&c);
    let (proxy_port, coord_port) = (procs[7].port.to_string(), procs[0].port.to_string());
    let certs_dir = scratch.0.join("certs").to_str().unwrap().to_string();
    let (ok, text) = client(&[
        "internal",
        &proxy_port,
        &coord_port,
        &certs_dir,
        "root:Milvus",
    ]);
    assert!(
        ok && text.contains("internal: all checks passed"),
        "{text}\n{}",
        logs(&procs)
    );

    // Refused handshakes (a certificate-less and a foreign-CA caller on the proxy and
    // on the rootcoord, and a user's certificate on the rootcoord) are counted and logged,
    // once per address per 10 s.
    for m in [&procs[7], &procs[0]] {
        let status = m.status().expect("/status");
        let failures = status["tls_failures"].as_u64().unwrap_or(0);
        assert!(
            failures >= 2,
            "{}: /status tls_failures {failures}: {status}",
            m.role
        );
        let counted = metric(m.port, "milvus_tls_handshake_failures_total", &m.role);
        assert!(counted >= failures, "{}: /metrics {counted}", m.role);
        let lines = m.log().matches("TLS handshake refused").count();
        assert!(
            (1..=2).contains(&lines) && lines as u64 <= failures,
            "{}: {lines} log lines for {failures} refusals",
            m.role
        );
    }
    assert!(
        procs[4].status().expect("/status")["tls_failures"].as_u64() == Some(0),
        "a worker with internal TLS reports its refusals (none)"
    );
    // The cluster lives in the secured etcd: its sessions, read with etcd's root user.
    let sessions = c.etcd.etcdctl(&[
        "--user",
        "root:etcd-pw",
        "get",
        "by-dev/meta/session/",
        "--prefix",
        "--keys-only",
    ]);
    for role in ["rootcoord", "datanode", "querynode", "proxy"] {
        assert!(sessions.contains(role), "no {role} session: {sessions}");
    }
    // The flushed rows are in the bucket, written over https.
    let (code, listing) = milvus::testkit::https_request(
        s3.port,
        "GET",
        "/milvus-bucket?list-type=2&prefix=files/",
        &certs.ca,
    )
    .expect("the S3 server answers over https");
    assert_eq!(code, 200, "{listing}");
    assert!(listing.contains("<Key>files/"), "no object: {listing}");
    // Every connection to the log is TLS, made by a component.
    let (code, connz) =
        milvus::testkit::http_get(nats.monitor_port, "/connz?limit=1024").expect("/connz");
    assert_eq!(code, 200, "{connz}");
    let v: serde_json::Value = serde_json::from_str(&connz).unwrap();
    let conns = v["connections"].as_array().cloned().unwrap_or_default();
    assert!(!conns.is_empty(), "no log connection: {connz}");
    for conn in &conns {
        assert!(
            conn["tls_version"].as_str().is_some_and(|t| !t.is_empty())
                && conn["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("milvus ")),
            "a log connection without TLS: {conn}"
        );
    }
    // etcd restarts: the tokens it issued die with it, every process signs in again (a
    // process that did not would fail every etcd call from here on).
    c.etcd.restart();
    let (ok, text) = client(&["tls", &proxy_port, "2", &certs_dir, "root:Milvus"]);
    assert!(
        ok && text.contains("tls: all checks passed"),
        "after an etcd restart: {text}\n{}",
        logs(&procs)
    );
    for m in &procs {
        healthy(m);
    }
    // No password in any log.
    for m in &procs {
        let log = m.log();
        assert!(
            !log.contains("etcd-pw") && !log.contains("nats-pw"),
            "a password in the {} log",
            m.role
        );
    }
}

/// A component whose cluster certificate cannot be read stops at start with exit 2 and
/// the key naming the file; so does one whose etcd CA is missing.
#[test]
fn bad_internal_or_etcd_certificates_stop_a_component_naming_the_key() {
    let c = common::Cluster::new(3);
    let bad = c.dir.0.join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let bad = bad.to_str().unwrap();
    for (vars, key) in [
        (
            vec![
                ("COMMON_SECURITY_INTERNALTLS_ENABLED", "true"),
                ("INTERNALTLS_CA_PEM_PATH", bad),
            ],
            "internaltls.",
        ),
        (
            vec![("ETCD_SSL_ENABLED", "true"), ("ETCD_SSL_TLS_CA_CERT", bad)],
            "etcd.ssl.tlsCACert",
        ),
    ] {
        let mut p = c.start("datacoord", &vars);
        let status = p.wait_exit(10 * SEC).expect("the datacoord exits");
        assert_eq!(status.code(), Some(2), "{}", p.log());
        let log = p.log();
        assert!(log.contains(key), "{key} not named: {log}");
    }
}
