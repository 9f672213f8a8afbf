//! Milvus's RESTful API v2 on the proxy's port (`tests/python/rest_client.py`: plain
//! HTTP POSTs with JSON, the standard library only), on real etcd, nats-server and every
//! role: the quickstart through REST alone, and every endpoint's shapes and refusals.

mod common;

use std::path::PathBuf;

use common::data::{all_roles, data_cluster, logs, run_script};
use milvus::testkit::NatsServer;

fn rest(args: &[&str]) -> (bool, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/rest_client.py");
    run_script(&script, args)
}

fn check(mode: &str) {
    let nats = NatsServer::start();
    let c = data_cluster(3, &nats);
    let procs = all_roles(&c);
    let base = format!("http://127.0.0.1:{}", procs[7].port);
    let (ok, text) = rest(&[mode, &base]);
    assert!(
        ok && text.contains(&format!("{mode}: all checks passed")),
        "{text}\n{}",
        logs(&procs)
    );
}

#[test]
fn the_quickstart_runs_through_rest_alone() {
    check("quickstart");
}

#[test]
fn every_rest_endpoint_answers_in_milvus_s_shapes_and_codes() {
    check("endpoints");
}
