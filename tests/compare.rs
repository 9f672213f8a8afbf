//! The side-by-side comparison with real Milvus, small (10,000 vectors, 100 queries, one
//! run, one takeover of each kind), so the harness cannot rot: it downloads PyPI's
//! `milvus` wheels (2.2.16 and 2.3.5), runs the workload on real Milvus standalone and on
//! this cluster, then the rootcoord takeovers, and writes the report and plots. The full
//! run is `scripts/compare_milvus.sh` (docs/benchmarks.md).

use std::path::PathBuf;
use std::process::Command;

use milvus::testkit::{python, TempDir};

#[test]
fn the_side_by_side_comparison_with_real_milvus_runs_and_reports() {
    let out = TempDir::new("compare");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/compare/compare.py");
    let run = Command::new(python())
        .arg(script)
        .args(["--bin", env!("CARGO_BIN_EXE_milvus")])
        .arg("--out")
        .arg(&out.0)
        .args(["--rows", "10000", "--queries", "100", "--runs", "1"])
        .args(["--ha-term", "1", "--ha-kill", "1", "--ttl", "5"])
        .output()
        .expect("cannot run the comparison");
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "comparison failed:\n{log}");
    let md = std::fs::read_to_string(out.0.join("benchmarks.md")).expect("no report");
    for needle in [
        "| measure | Milvus 2.2.16 | Milvus 2.3.5 | this project |",
        "| insert, 1 client, rows/s |",
        "| search ef 64, 1 client(s): QPS |",
        "| memory loaded, RSS MiB |",
        "| filter `num == x` (1 row): p50 ms |",
        "| filter `tag like \"t012%\"` (rows / 1000), limit 10: p99 ms |",
        "| filter `num == x` (1 row), scalar index: p50 ms |",
        "## Rootcoord takeover",
        "| this project | 1 | ",
    ] {
        assert!(
            md.contains(needle),
            "{needle:?} not in the report:\n{md}\n{log}"
        );
    }
    assert!(
        !md.contains("failed:"),
        "a takeover run failed:\n{md}\n{log}"
    );
    for png in [
        "recall_qps.png",
        "insert.png",
        "times.png",
        "memory.png",
        "takeover.png",
    ] {
        assert!(out.0.join("img").join(png).exists(), "{png} missing");
    }
}
