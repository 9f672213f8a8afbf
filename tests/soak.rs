//! The soak in CI: 20 failures of mixed kinds (SIGKILL, SIGTERM, SIGSTOP past the TTL,
//! an etcd member restart) under a client workload, then the history check of
//! `milvus::testkit::soak`. `cargo bench --bench soak -- --failovers 300` runs a long one.

use std::path::PathBuf;

use milvus::testkit::soak::{run, SoakConfig};

#[test]
fn twenty_failovers_under_load_keep_every_promise() {
    let report = run(
        &PathBuf::from(env!("CARGO_BIN_EXE_milvus")),
        &SoakConfig {
            failovers: 20,
            clients: 4,
            ttl: 2,
        },
    );
    let summary = report.summary();
    println!("{summary}");
    assert_eq!(report.induced, 20, "{summary}");
    assert!(
        report.calls > 1000,
        "too few calls to mean anything: {summary}"
    );
    assert!(report.passed(), "{summary}");
}
