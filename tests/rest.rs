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

/// The OpenAPI document (`docs/openapi.json`, from `scripts/gen_openapi.py`) lists
/// exactly the paths served, and schemathesis's generated requests (valid and invalid
/// bodies for every path) never get a server error, a dropped connection or an answer
/// outside the documented shape.
#[test]
fn the_openapi_document_matches_and_fuzzed_requests_get_no_server_error() {
    let doc_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&doc_path).expect("docs/openapi.json"))
            .expect("JSON");
    let mut documented: Vec<String> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect();
    documented.sort();
    let mut served: Vec<String> = milvus::roles::proxy::rest::paths()
        .into_iter()
        .map(|p| format!("/v2/vectordb/{p}"))
        .collect();
    served.sort();
    assert_eq!(
        documented, served,
        "docs/openapi.json is stale: run python3 scripts/gen_openapi.py"
    );

    let python = milvus::testkit::python();
    let schemathesis = python.with_file_name("schemathesis");
    assert!(
        schemathesis.exists(),
        "schemathesis is not installed next to {} (scripts/test.sh installs it)",
        python.display()
    );
    let nats = NatsServer::start();
    let c = data_cluster(3, &nats);
    let procs = all_roles(&c);
    let base = format!("http://127.0.0.1:{}", procs[7].port);
    // A collection and a database to aim at: schemathesis reuses example strings.
    let (ok, text) = rest(&["quickstart", &base]);
    assert!(ok, "{text}");
    let out = std::process::Command::new(&schemathesis)
        .args([
            "run",
            doc_path.to_str().expect("UTF-8 path"),
            "--url",
            &base,
        ])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args([
            "--max-examples",
            "25",
            "--seed",
            "19",
            "--request-timeout",
            "30",
        ])
        .args(["--continue-on-failure"])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .expect("run schemathesis");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}\n{}", logs(&procs));
}
