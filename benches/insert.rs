//! Insert benchmark: `cargo bench --bench insert` (options after `--`: `--rows N`,
//! `--dim N`, `--batch N`, `--runs N`). Starts etcd, nats-server, a rootcoord, a
//! datacoord, a datanode and a proxy on free ports, then runs
//! `benches/workload/insert.py` (pymilvus, rows as dicts, the way the Milvus docs insert,
//! then one flush) with 1 and 4 client processes, `--runs` times each, and prints rows/s
//! and flush latency (min / median / max), the resident memory of each process after,
//! and what the log holds right after the runs and once log retention has run.
//! An insert is acknowledged once the log (NATS JetStream) has stored it, as in Milvus; a
//! flush returns once the datanode has written the rows to Parquet and registered them.

use std::path::PathBuf;
use std::process::Command;

use milvus::testkit::stats::{arg, proc_cpu_s, proc_status_mib};
use milvus::testkit::{python, BenchCluster};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_milvus"))
}

fn rss_mib(pid: i32) -> f64 {
    proc_status_mib(&pid.to_string(), "VmRSS")
}

fn cpu_s(pid: i32) -> f64 {
    proc_cpu_s(&pid.to_string())
}

fn main() {
    let rows = arg("--rows", 100_000);
    let dim = arg("--dim", 128);
    let batch = arg("--batch", 5_000);
    let runs = arg("--runs", 3);
    let c = BenchCluster::start(
        &bin(),
        &["rootcoord", "datacoord", "datanode", "proxy"],
        &[],
    );
    let (rc, dc, dn, proxy) = (&c.procs[0], &c.procs[1], &c.procs[2], &c.procs[3]);
    let (etcd, nats) = (&c.etcd, &c.nats);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/workload/insert.py");
    println!("insert: {rows} rows x dim {dim}, batches of {batch}, {runs} runs each");
    println!("| clients | runs | rows/s min | median | max | flush s min | median | max |");
    println!("|---|---|---|---|---|---|---|---|");
    for clients in [1usize, 4] {
        let mut rates = Vec::new();
        let mut flushes = Vec::new();
        for _ in 0..runs {
            let out = Command::new(python())
                .arg(&script)
                .arg(format!("http://127.0.0.1:{}", proxy.port))
                .args(["--rows", &rows.to_string(), "--dim", &dim.to_string()])
                .args([
                    "--batch",
                    &batch.to_string(),
                    "--clients",
                    &clients.to_string(),
                ])
                .output()
                .expect("cannot run the insert workload");
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(
                out.status.success(),
                "workload failed: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_str(text.trim()).expect("JSON line");
            rates.push(v["rows_per_s"].as_f64().unwrap());
            flushes.push(v["flush_s"].as_f64().unwrap());
        }
        rates.sort_by(f64::total_cmp);
        flushes.sort_by(f64::total_cmp);
        let spread = |v: &[f64]| (v[0], v[v.len() / 2], v[v.len() - 1]);
        let (r0, r1, r2) = spread(&rates);
        let (f0, f1, f2) = spread(&flushes);
        println!(
            "| {clients} | {runs} | {r0:.0} | {r1:.0} | {r2:.0} | {f0:.2} | {f1:.2} | {f2:.2} |"
        );
    }
    println!();
    println!(
        "CPU seconds over all runs: rootcoord {:.1}, datacoord {:.1}, datanode {:.1}, proxy {:.1}, nats-server {:.1}, etcd {:.1}",
        cpu_s(rc.pid()),
        cpu_s(dc.pid()),
        cpu_s(dn.pid()),
        cpu_s(proxy.pid()),
        cpu_s(nats.pid_number()),
        cpu_s(etcd.pid())
    );
    // The log: what the streams hold right after the runs, then once log retention has
    // deleted what every reader passed (dataCoord.logRetention.grace, 10 s by default).
    let rt = milvus::testkit::runtime();
    let w = rt
        .block_on(milvus::wal::Wal::connect(
            &nats.address(),
            std::time::Duration::from_secs(5),
            "insert bench",
        ))
        .expect("connect to nats");
    let kept = || {
        (0..16)
            .filter_map(|n| {
                let p = milvus::wal::pchannel_name("by-dev", "rootcoord-dml", n);
                rt.block_on(w.channel_state(&p)).ok()
            })
            .fold((0u64, 0u64, 0u64), |(m, b, all), s| {
                (m + s.messages, b + s.bytes, all + s.last_sequence)
            })
    };
    let (m, b, all) = kept();
    println!(
        "log after the runs: {m} of {all} messages kept, {:.1} MiB; nats-server RSS {:.1} MiB",
        b as f64 / 1048576.0,
        rss_mib(nats.pid_number())
    );
    let started = std::time::Instant::now();
    milvus::testkit::wait_until(std::time::Duration::from_secs(60), || kept().0 == 0);
    let (m, b, _) = kept();
    println!(
        "log {:.0} s later (retention): {m} messages kept, {:.1} MiB",
        started.elapsed().as_secs_f64(),
        b as f64 / 1048576.0
    );
    println!(
        "RSS after the runs: rootcoord {:.1} MiB, datacoord {:.1} MiB, datanode {:.1} MiB, proxy {:.1} MiB, nats-server {:.1} MiB, etcd {:.1} MiB",
        rss_mib(rc.pid()),
        rss_mib(dc.pid()),
        rss_mib(dn.pid()),
        rss_mib(proxy.pid()),
        rss_mib(nats.pid_number()),
        rss_mib(etcd.pid())
    );
}
