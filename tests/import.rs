//! Bulk import (`tests/python/import_client.py`): JSON and Parquet files in the object
//! storage bucket become segments through pymilvus's `do_bulk_insert` and the RESTful
//! `jobs/import/*`, on real etcd, nats-server and every role; files that cannot be
//! imported fail their job with the reason; a datanode SIGKILLed mid-import leaves every
//! row imported exactly once by the next one.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::data::{all_roles, data_cluster, logs, run_script};
use milvus::testkit::NatsServer;
use nix::sys::signal::Signal;

fn import(args: &[&str]) -> (bool, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/import_client.py");
    run_script(&script, args)
}

/// The bucket: `localStorage.path` (segment files are under its `minio.rootPath`).
fn bucket(c: &common::Cluster) -> String {
    c.dir
        .0
        .join("data")
        .to_str()
        .expect("UTF-8 path")
        .to_string()
}

#[test]
fn json_and_parquet_files_are_imported_and_bad_files_fail_their_job() {
    let nats = NatsServer::start();
    let c = data_cluster(3, &nats);
    let procs = all_roles(&c);
    let uri = format!("http://127.0.0.1:{}", procs[7].port);
    let (ok, text) = import(&["formats", &uri, &bucket(&c)]);
    assert!(
        ok && text.contains("formats: all checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
}

#[test]
fn a_datanode_killed_mid_import_leaves_every_row_imported_once() {
    // More rows than one ID allocation gives (262,143): the job allocates in blocks.
    const ROWS: &str = "300000";
    let nats = NatsServer::start();
    let c = data_cluster(3, &nats);
    let mut procs = all_roles(&c);
    let uri = format!("http://127.0.0.1:{}", procs[7].port);
    // all_roles starts milvus::testkit::cluster::ALL_ROLES in order: the datanode is 5th.
    let datanode = 4;
    let (ok, text) = import(&["big", &uri, &bucket(&c), ROWS]);
    assert!(ok, "{text}\n{}", logs(&procs));
    let job = text
        .lines()
        .find_map(|l| l.strip_prefix("JOB "))
        .expect("the job ID")
        .trim()
        .to_string();
    // Kill it while it runs the job (reading, converting or writing its files).
    assert!(
        procs[datanode].wait_log("datanode starts import job", Duration::from_secs(60)),
        "{}",
        logs(&procs)
    );
    procs[datanode].signal(Signal::SIGKILL);
    let registered_before = procs
        .iter()
        .any(|p| p.log().contains("import job finished"));
    // The next datanode takes the job over once the dead one's session is gone.
    procs.push(c.start("datanode", &[]));
    common::data::healthy(procs.last().expect("started"));
    let (ok, text) = import(&["verify", &uri, &job, ROWS]);
    assert!(
        ok && text.contains("verify: all checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
    let took_over = procs
        .last()
        .expect("the new datanode")
        .log()
        .contains("datanode starts import job");
    println!("killed datanode had finished the job: {registered_before}; taken over: {took_over}");
    assert!(
        took_over || registered_before,
        "the job was neither finished by the killed datanode nor taken over:\n{}",
        logs(&procs)
    );
}
