//! End-to-end index build: `cargo bench --bench build` (options after `--`: `--rows N`,
//! `--dim N`, `--runs N`, `--kind HNSW|HNSW_SQ`). Starts etcd, nats-server and one process
//! of each role the index path needs (rootcoord, datacoord, datanode, indexcoord,
//! indexnode, proxy) on free ports, then runs `benches/workload/index.py` (pymilvus:
//! insert, flush, create_index waited for until Finished) `--runs` times, and prints the
//! time from create_index until Finished (min / median / max) and the indexnode's peak
//! resident memory.

use std::path::PathBuf;
use std::process::Command;

use milvus::testkit::stats::{arg, proc_status_mib};
use milvus::testkit::{python, BenchCluster};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_milvus"))
}

/// `VmHWM` (peak resident set) of a process, in MiB.
fn peak_mib(pid: i32) -> f64 {
    proc_status_mib(&pid.to_string(), "VmHWM")
}

fn main() {
    let rows = arg("--rows", 100_000);
    let dim = arg("--dim", 128);
    let runs = arg("--runs", 3);
    let args: Vec<String> = std::env::args().collect();
    let kind = args
        .iter()
        .position(|a| a == "--kind")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "HNSW".to_string());
    let c = BenchCluster::start(
        &bin(),
        &[
            "rootcoord",
            "datacoord",
            "datanode",
            "indexcoord",
            "indexnode",
            "proxy",
        ],
        &[],
    );
    let procs = &c.procs;
    let (indexnode, proxy) = (&procs[4], &procs[5]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/workload/index.py");
    println!(
        "build: {kind} M 16 efConstruction 200 over {rows} x {dim} through pymilvus, {runs} runs"
    );
    let mut times = Vec::new();
    for _ in 0..runs {
        let out = Command::new(python())
            .arg(&script)
            .arg(format!("http://127.0.0.1:{}", proxy.port))
            .args(["--rows", &rows.to_string(), "--dim", &dim.to_string()])
            .args(["--index-type", &kind])
            .output()
            .expect("cannot run the index workload");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "workload failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_str(text.trim()).expect("JSON line");
        println!("{v}");
        times.push(v["index_s"].as_f64().unwrap());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "create_index until Finished, s: min {:.2} / median {:.2} / max {:.2}; indexnode peak RSS {:.0} MiB",
        times[0],
        times[times.len() / 2],
        times[times.len() - 1],
        peak_mib(indexnode.pid())
    );
}
