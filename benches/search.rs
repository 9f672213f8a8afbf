//! Search through the cluster: `cargo bench --bench search` (options after `--`:
//! `--rows N`, `--dim N`, `--queries N`, `--runs N`). Starts etcd, nats-server and one
//! process of each of the eight roles on free ports, then runs
//! `benches/workload/search.py` (pymilvus: insert, flush, HNSW M 16 / efConstruction 200,
//! then per run: release, load, 1,000 searches top-10 at ef 16 / 64 / 128 by 1 and by 8
//! client processes), and prints load time, QPS, p50 / p99 latency and recall@10
//! (min / median / max over the runs), and the resident memory of the querynode and of
//! the whole cluster (every process, etcd and nats-server included) once loaded: the
//! sum of RSS (shared pages, such as the text of the one binary, counted in every
//! process) and of PSS (shared pages divided among their processes). Then range search
//! and hybrid search (RRF over two requests) with one client at ef 64, each against
//! exact answers, then binary vectors (BIN_IVF_FLAT, HAMMING), float16 vectors (HNSW) and
//! searches filtered by TEXT_MATCH or through a scalar index (STL_SORT), sparse vectors
//! (SPARSE_INVERTED_INDEX, IP) and BM25
//! full-text search in their own collections of as many rows
//! (`benches/workload/search.py`'s "features").

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use milvus::testkit::cluster::ALL_ROLES;
use milvus::testkit::stats::{arg, proc_pss_mib, proc_status_mib};
use milvus::testkit::{python, BenchCluster};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_milvus"))
}

fn spread(mut xs: Vec<f64>) -> String {
    xs.sort_by(f64::total_cmp);
    format!(
        "{:.2} / {:.2} / {:.2}",
        xs[0],
        xs[xs.len() / 2],
        xs[xs.len() - 1]
    )
}

fn main() {
    let rows = arg("--rows", 100_000);
    let dim = arg("--dim", 128);
    let queries = arg("--queries", 1000);
    let runs = arg("--runs", 3);
    let c = BenchCluster::start(&bin(), &ALL_ROLES, &[]);
    let procs = &c.procs;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/workload/search.py");
    println!("search: HNSW M 16 efConstruction 200 L2 over {rows} x {dim}, {queries} queries top-10, {runs} runs");
    let mut child = Command::new(python())
        .arg(&script)
        .arg(format!("http://127.0.0.1:{}", procs[7].port))
        .args(["--rows", &rows.to_string(), "--dim", &dim.to_string()])
        .args([
            "--queries",
            &queries.to_string(),
            "--runs",
            &runs.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot run the search workload");
    let mut loads = Vec::new();
    let mut series: BTreeMap<(i64, i64), Vec<serde_json::Value>> = BTreeMap::new();
    let mut loaded_rss: Vec<(f64, f64, f64)> = Vec::new();
    let mut features: Vec<serde_json::Value> = Vec::new();
    let pids = c.pids();
    let total = |pids: &[i32]| -> f64 {
        pids.iter()
            .map(|p| proc_status_mib(&p.to_string(), "VmRSS"))
            .sum()
    };
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        println!("{v}");
        match v["what"].as_str() {
            Some("load") => {
                loads.push(v["s"].as_f64().unwrap());
                loaded_rss.push((
                    proc_status_mib(&procs[6].pid().to_string(), "VmRSS"),
                    total(&pids),
                    pids.iter().map(|p| proc_pss_mib(&p.to_string())).sum(),
                ));
            }
            Some("search") => series
                .entry((v["ef"].as_i64().unwrap(), v["clients"].as_i64().unwrap()))
                .or_default()
                .push(v),
            Some("feature") => features.push(v),
            _ => {}
        }
    }
    assert!(child.wait().unwrap().success(), "the workload failed");
    println!("load s (min / median / max): {}", spread(loads));
    println!("| ef | clients | QPS | p50 ms | p99 ms | recall@10 |");
    println!("|---|---|---|---|---|---|");
    for ((ef, clients), vs) in &series {
        let col = |k: &str| spread(vs.iter().map(|v| v[k].as_f64().unwrap()).collect());
        println!(
            "| {ef} | {clients} | {} | {} | {} | {} |",
            col("qps"),
            col("p50_ms"),
            col("p99_ms"),
            col("recall")
        );
    }
    println!("| feature (ef 64, 1 client, 200 queries) | QPS | p50 ms | p99 ms | recall@10 |");
    println!("|---|---|---|---|---|");
    for v in &features {
        let name = v["name"].as_str().unwrap_or("");
        match v["unsupported"].as_str() {
            Some(why) => println!("| {name} | unsupported: {why} | | | |"),
            None => println!(
                "| {name} | {} | {} | {} | {} |",
                v["qps"], v["p50_ms"], v["p99_ms"], v["recall"]
            ),
        }
    }
    println!(
        "after load, MiB (min / median / max): querynode RSS {}; whole cluster RSS {}, PSS {}",
        spread(loaded_rss.iter().map(|r| r.0).collect()),
        spread(loaded_rss.iter().map(|r| r.1).collect()),
        spread(loaded_rss.iter().map(|r| r.2).collect())
    );
    let names = ALL_ROLES.iter().copied().chain(["etcd", "nats-server"]);
    println!(
        "RSS at the end / peak, MiB: {}",
        names
            .zip(&pids)
            .map(|(r, p)| {
                let p = p.to_string();
                format!(
                    "{r} {:.0} / {:.0}",
                    proc_status_mib(&p, "VmRSS"),
                    proc_status_mib(&p, "VmHWM")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
}
