//! Shared set-up for the data-plane tests: a cluster with its own storage directory and
//! log, the Python client's modes, and what etcd and `milvus status` say.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use milvus::proto::datacoord::{DeltaRecord, SegmentRecord};
use milvus::testkit::process::Milvus;
use milvus::testkit::{python, NatsServer, Spawned};
use prost::Message;

use super::Cluster;

const SEC: Duration = Duration::from_secs(1);

/// A cluster on a fresh etcd and `nats` (its files go under its own directory).
pub fn data_cluster(ttl: u64, nats: &NatsServer) -> Cluster {
    let mut c = Cluster::new(ttl);
    c.set("NATSMQ_ADDRESS", &nats.address());
    c.set("ROOT_COORD_DML_CHANNEL_NUM", "4");
    c
}

/// Where objects land: `localStorage.path` (the cluster's `data`) / `minio.rootPath`.
pub fn storage_dir(c: &Cluster) -> PathBuf {
    c.dir.0.join("data").join("files")
}

pub fn healthy(m: &Milvus) {
    assert!(m.wait_state("Healthy", 10 * SEC), "{}", m.log());
}

pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/pymilvus_client.py")
}

/// Runs a mode of the Python client to the end: (success, stdout + stderr).
pub fn py(args: &[&str]) -> (bool, String) {
    run_script(&script(), args)
}

/// Runs a Python script of `tests/python` to the end: (success, stdout + stderr).
pub fn run_script(script: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Starts a mode of the Python client in the background.
pub fn py_spawn(args: &[&str]) -> Spawned {
    let script = script();
    let mut all = vec![script.to_str().expect("UTF-8 path")];
    all.extend_from_slice(args);
    Spawned::start(&python(), &all)
}

pub fn finish(client: Spawned) -> (bool, String) {
    client.finish()
}

/// The first JSON object line of a client's output.
pub fn summary(text: &str) -> serde_json::Value {
    let line = text
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no summary line in:\n{text}"));
    serde_json::from_str(line).unwrap()
}

/// Segment records of a collection in etcd.
pub fn segments(c: &Cluster, coll: i64) -> Vec<SegmentRecord> {
    records(c, &format!("by-dev/meta/datacoord-meta/s/{coll}/"))
}

/// Delta (deleted keys) records of a collection in etcd.
pub fn deltas(c: &Cluster, coll: i64) -> Vec<DeltaRecord> {
    records(c, &format!("by-dev/meta/datacoord-meta/d/{coll}/"))
}

/// The records of type `R` under an etcd prefix.
fn records<R: Message + Default>(c: &Cluster, prefix: &str) -> Vec<R> {
    let rt = milvus::testkit::runtime();
    rt.block_on(async {
        let mut cl = etcd_client::Client::connect([c.etcd.endpoint()], None)
            .await
            .unwrap();
        let resp = tokio::time::timeout(
            5 * SEC,
            cl.get(prefix, Some(etcd_client::GetOptions::new().with_prefix())),
        )
        .await
        .expect("etcd get timed out")
        .unwrap();
        resp.kvs()
            .iter()
            .map(|kv| R::decode(kv.value()).unwrap())
            .collect()
    })
}

/// Channel assignments from `milvus status --channels --json`: (vchannel, datanode).
pub fn watches(c: &Cluster) -> Vec<(String, i64)> {
    let out = c.cmd(&["status", "--channels", "--json"]);
    assert!(out.status.success(), "{}", super::text(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["vchannel"].as_str().unwrap().to_string(),
                r["datanode"].as_i64().unwrap(),
            )
        })
        .collect()
}

pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// Every role once (the proxy last), each waited for.
pub fn all_roles(c: &Cluster) -> Vec<Milvus> {
    let procs: Vec<Milvus> = milvus::testkit::cluster::ALL_ROLES
        .iter()
        .map(|r| c.start(r, &[]))
        .collect();
    for m in &procs {
        healthy(m);
    }
    procs
}

pub fn logs(procs: &[Milvus]) -> String {
    procs
        .iter()
        .map(|m| format!("---- {} ----\n{}", m.pid(), tail(&m.log(), 60)))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
