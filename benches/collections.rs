//! Many collections with nonstop inserts and flushes (the flush stall of the
//! client-defects issue): `cargo bench --bench collections` (options after `--`:
//! `--collections N` (800), `--seconds N` (120), `--batch N` rows per insert (1000),
//! `--dim N` (128)). Starts etcd, nats-server and one process of each role, runs
//! `benches/workload/many_collections.py` (quick-setup collections, indexed and loaded,
//! one shard each over the 16 physical channels; 4 writers, 2 flushers on random
//! collections) and prints its JSON line (flush p50 / p99 / max) and the messages
//! nats-server sent to the datanode and the querynode.

use std::path::PathBuf;
use std::process::Command;

use milvus::testkit::cluster::ALL_ROLES;
use milvus::testkit::stats::arg;
use milvus::testkit::{python, BenchCluster};

fn main() {
    let collections = arg("--collections", 800);
    let seconds = arg("--seconds", 120);
    let batch = arg("--batch", 1000);
    let dim = arg("--dim", 128);
    let c = BenchCluster::start(
        &PathBuf::from(env!("CARGO_BIN_EXE_milvus")),
        &ALL_ROLES,
        &[],
    );
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/workload/many_collections.py");
    println!(
        "collections: {collections} loaded collections, {seconds} s of inserts of {batch} x {dim} and flushes"
    );
    let out = Command::new(python())
        .arg(script)
        .arg(c.proxy_uri())
        .args([collections.to_string(), seconds.to_string()])
        .args(["4", "2", "1", &batch.to_string(), &dim.to_string()])
        .output()
        .expect("cannot run the workload");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{}", text.trim());
    for (name, n) in c.nats.messages_sent() {
        if name.starts_with("milvus datanode") || name.starts_with("milvus querynode") {
            println!("nats-server sent {n} messages to {name}");
        }
    }
}
