//! Soak benchmark: `cargo bench --bench soak -- --failovers 1050 --clients 2 --writers 2 --ttl 2`.
//! Runs `milvus::testkit::soak` (a whole HA cluster on a 3-member etcd and nats-server,
//! rootcoord clients and pymilvus writers, searchers and DDL without pause, failures of
//! every kind round after round) and prints the summary: calls, failed calls, history
//! violations, and per failure kind the count, takeover min / median / p99 / max and the
//! longest client call. Exits 1 if any call failed or the history does not hold. Needs
//! root (the partitions: iptables and a net_cls cgroup) and `.venv` (pymilvus).

use std::path::PathBuf;
use std::time::Instant;

use milvus::testkit::soak::{run, SoakConfig};
use milvus::testkit::stats::arg;

fn main() {
    let cfg = SoakConfig {
        failovers: arg("--failovers", 300),
        clients: arg("--clients", 2),
        writers: arg("--writers", 2),
        ttl: arg("--ttl", 2) as u64,
    };
    println!("soak: {cfg:?}");
    let started = Instant::now();
    let report = run(&PathBuf::from(env!("CARGO_BIN_EXE_milvus")), &cfg);
    print!("{}", report.summary());
    println!("soak: ran {:.0} s", started.elapsed().as_secs_f64());
    if !report.passed() {
        std::process::exit(1);
    }
}
