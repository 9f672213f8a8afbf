//! The soak in CI: one round of every failure (`milvus::testkit::soak::ROUND`, 21:
//! SIGKILL, SIGTERM, SIGSTOP past the TTL and a partition of each active coordinator,
//! SIGKILL of each worker kind, an etcd member and nats-server restarted) under the
//! rootcoord and pymilvus workloads, then the history check. `cargo bench --bench soak --
//! --failovers 1050` runs a long one.

use std::path::PathBuf;

use milvus::testkit::soak::{run, SoakConfig, ROUND};

#[test]
fn a_round_of_every_failure_under_load_keeps_every_promise() {
    let report = run(
        &PathBuf::from(env!("CARGO_BIN_EXE_milvus")),
        &SoakConfig {
            failovers: ROUND.len(),
            clients: 2,
            writers: 2,
            ttl: 2,
        },
    );
    let summary = report.summary();
    println!("{summary}");
    assert_eq!(report.induced, ROUND.len(), "{summary}");
    assert!(
        report.calls > 1000,
        "too few calls to mean anything: {summary}"
    );
    assert!(report.passed(), "{summary}");
}
