//! Soak benchmark: `cargo bench --bench soak -- --failovers 300 --clients 4 --ttl 2`.
//! Runs `milvus::testkit::soak` (an HA rootcoord pair on a 3-member etcd, clients
//! allocating and creating without pause, failures of mixed kinds) and prints the
//! summary: calls, failed calls, history violations, takeover times per kind
//! (min / median / p99 / max). Exits 1 if any call failed or the history does not hold.

use std::path::PathBuf;
use std::time::Instant;

use milvus::testkit::soak::{run, SoakConfig};
use milvus::testkit::stats::arg;

fn main() {
    let cfg = SoakConfig {
        failovers: arg("--failovers", 300),
        clients: arg("--clients", 4),
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
