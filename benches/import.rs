//! Bulk import beside insert: `cargo bench --bench import` (options after `--`: `--rows N`
//! (default 1,000,000), `--dim N` (128), `--runs N` (3)). Starts etcd, nats-server, a
//! rootcoord, a datacoord, a datanode and a proxy on free ports; runs
//! `benches/workload/bulk_import.py` (one Parquet file of the rows in the bucket, imported
//! into a fresh collection per run through the RESTful `jobs/import/create`, timed until
//! Completed and the rows are counted persisted), then `benches/workload/insert.py` with
//! the same rows (4 clients, batches of 5,000, then a flush: the rows persisted the
//! ordinary way). Prints min / median / max seconds and rows/s of each.

use std::path::PathBuf;
use std::process::Command;

use milvus::testkit::stats::arg;
use milvus::testkit::{python, BenchCluster};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_milvus"))
}

fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

fn run(script: &str, args: &[String]) -> Vec<serde_json::Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(script);
    let out = Command::new(python())
        .arg(path)
        .args(args)
        .output()
        .expect("cannot run the workload");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{script} failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn main() {
    let rows = arg("--rows", 1_000_000);
    let dim = arg("--dim", 128);
    let runs = arg("--runs", 3);
    let c = BenchCluster::start(
        &bin(),
        &["rootcoord", "datacoord", "datanode", "proxy"],
        &[],
    );
    let uri = format!("http://127.0.0.1:{}", c.procs[3].port);
    let bucket = c.dir.0.join("data").display().to_string();
    println!("bulk import vs insert: {rows} rows x dim {dim}, {runs} runs each");
    let imports = run(
        "benches/workload/bulk_import.py",
        &[
            uri.clone(),
            bucket,
            "--rows".into(),
            rows.to_string(),
            "--dim".into(),
            dim.to_string(),
            "--runs".into(),
            runs.to_string(),
        ],
    );
    let import_s: Vec<f64> = imports
        .iter()
        .map(|v| v["import_s"].as_f64().unwrap())
        .collect();
    let mut insert_s = Vec::new();
    for _ in 0..runs {
        let v = run(
            "benches/workload/insert.py",
            &[
                uri.clone(),
                "--rows".into(),
                rows.to_string(),
                "--dim".into(),
                dim.to_string(),
                "--batch".into(),
                "5000".into(),
                "--clients".into(),
                "4".into(),
            ],
        );
        let rate = v[0]["rows_per_s"].as_f64().unwrap();
        let flush = v[0]["flush_s"].as_f64().unwrap();
        insert_s.push(rows as f64 / rate + flush);
    }
    println!("| path | runs | s min | median | max | rows/s (median) |");
    println!("|---|---|---|---|---|---|");
    for (name, v) in [
        ("bulk import (Parquet)", import_s),
        ("insert + flush (4 clients)", insert_s),
    ] {
        let (a, b, m) = spread(v);
        println!(
            "| {name} | {runs} | {a:.1} | {b:.1} | {m:.1} | {:.0} |",
            rows as f64 / b
        );
    }
}
