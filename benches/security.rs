//! The cost of TLS and authentication: `cargo bench --bench security` (option after `--`:
//! `--runs N`, default 5). Starts etcd, nats-server and the eight roles, then three more
//! proxies of the same cluster: one with TLS (`common.security.tlsMode` 1, certificates
//! made here), one with authentication (`common.security.authorizationEnabled`), one with
//! both. `benches/workload/security.py` (pymilvus) then measures, through each proxy in
//! turn, a fresh client's first call, inserts of 1,000 x 128 rows and top-10 searches of
//! a loaded 20,000-row collection; printed as min / median / max over the runs.
//! Then a second cluster with every link encrypted (etcd and nats-server over TLS with
//! client certificates, mutual TLS between the components, TLS on the proxy's port; the
//! segment files stay in a local directory) runs the same workload: row "all links".

#[allow(dead_code)]
#[path = "../tests/common/tls.rs"]
mod tls;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use milvus::testkit::cluster::ALL_ROLES;
use milvus::testkit::stats::arg;
use milvus::testkit::{python, BenchCluster};

/// A proxy's extra environment.
type Env = Vec<(String, String)>;

fn spread(mut xs: Vec<f64>) -> String {
    xs.sort_by(f64::total_cmp);
    format!(
        "{:.2} / {:.2} / {:.2}",
        xs[0],
        xs[xs.len() / 2],
        xs[xs.len() - 1]
    )
}

/// Each measurement's JSON lines, by (what, proxy).
type Series = BTreeMap<(String, String), Vec<serde_json::Value>>;

/// Runs `benches/workload/security.py` through the proxies of `specs` and files its
/// measurements in `series`.
fn workload(certs_dir: &std::path::Path, runs: usize, specs: &[String], series: &mut Series) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/workload/security.py");
    let mut child = Command::new(python())
        .arg(&script)
        .arg(certs_dir)
        .arg(runs.to_string())
        .args(specs)
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot run the security workload");
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        println!("{v}");
        let key = (
            v["what"].as_str().unwrap_or("").to_string(),
            v["proxy"].as_str().unwrap_or("").to_string(),
        );
        series.entry(key).or_default().push(v);
    }
    assert!(child.wait().unwrap().success(), "the workload failed");
}

fn main() {
    let runs = arg("--runs", 5);
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_milvus"));
    let mut c = BenchCluster::start(&bin, &ALL_ROLES, &[]);
    // Outside the cluster's directory: the second cluster uses them after the first stops.
    let scratch = milvus::testkit::TempDir::new("security-bench");
    let certs_dir = scratch.0.join("certs");
    let certs = tls::make(&certs_dir);
    let files = [
        (
            "TLS_SERVER_PEM_PATH",
            certs.server.to_str().unwrap().to_string(),
        ),
        (
            "TLS_SERVER_KEY_PATH",
            certs.server_key.to_str().unwrap().to_string(),
        ),
        ("TLS_CA_PEM_PATH", certs.ca.to_str().unwrap().to_string()),
    ];
    let with_files = |extra: &[(&'static str, &'static str)]| -> Env {
        files
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .chain(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .collect()
    };
    let variants: [(&str, &str, Env); 3] = [
        (
            "tls",
            ",tls",
            with_files(&[("COMMON_SECURITY_TLS_MODE", "1")]),
        ),
        (
            "auth",
            ",auth",
            with_files(&[("COMMON_SECURITY_AUTHORIZATION_ENABLED", "true")]),
        ),
        (
            "tls+auth",
            ",tls,auth",
            with_files(&[
                ("COMMON_SECURITY_TLS_MODE", "1"),
                ("COMMON_SECURITY_AUTHORIZATION_ENABLED", "true"),
            ]),
        ),
    ];
    let mut specs = vec![format!("plain={}", c.role("proxy").port)];
    for (name, flags, env) in &variants {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        c.add_with("proxy", &env);
        let port = c.procs.last().unwrap().port;
        specs.push(format!("{name}={port}{flags}"));
    }
    println!("security: plain vs TLS vs authentication vs both, {runs} runs");
    let mut series: Series = BTreeMap::new();
    workload(&certs_dir, runs, &specs, &mut series);
    drop(c);

    // The same workload on a cluster with every link encrypted.
    let files = certs.files();
    let etcd = milvus::testkit::EtcdServer::start_secure(&files, None);
    let nats = milvus::testkit::NatsServer::start_secure(&files, "milvus", "nats-pw");
    let env = milvus::testkit::encrypted_env(&files, &nats.address(), "1");
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.extend([
        ("NATSMQ_USERNAME", "milvus"),
        ("NATSMQ_PASSWORD", "nats-pw"),
    ]);
    let secured = BenchCluster::start_on(&bin, &ALL_ROLES, &env, etcd, nats);
    let spec = format!("all links={},tls", secured.role("proxy").port);
    workload(&certs_dir, runs, &[spec], &mut series);
    drop(secured);
    let col = |vs: &[serde_json::Value], k: &str| {
        spread(vs.iter().map(|v| v[k].as_f64().unwrap()).collect())
    };
    println!("| proxy | first call ms | insert p50 ms | insert p99 ms | rows/s | search p50 ms | search p99 ms | QPS |");
    println!("|---|---|---|---|---|---|---|---|");
    for name in ["plain", "tls", "auth", "tls+auth", "all links"] {
        let get = |what: &str| {
            series
                .get(&(what.to_string(), name.to_string()))
                .cloned()
                .unwrap_or_default()
        };
        let (conn, ins, sea) = (get("connect"), get("insert"), get("search"));
        if conn.is_empty() {
            continue;
        }
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            col(&conn, "ms"),
            col(&ins, "p50_ms"),
            col(&ins, "p99_ms"),
            col(&ins, "rows_per_s"),
            col(&sea, "p50_ms"),
            col(&sea, "p99_ms"),
            col(&sea, "qps")
        );
    }
}
