//! Bulk import (`tests/python/import_client.py`): JSON, Parquet and NumPy files in the
//! object storage bucket become segments through pymilvus's `do_bulk_insert` and the
//! RESTful `jobs/import/*`, on real etcd, nats-server and every role; files that cannot
//! be imported fail their job with the reason; pymilvus's RemoteBulkWriter output (each
//! file type, in a real S3-protocol server's bucket) imports unchanged; a datanode
//! SIGKILLed mid-import leaves every row imported exactly once by the next one.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::data::{all_roles, data_cluster, logs, run_script};
use milvus::testkit::{NatsServer, S3Server};
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
fn pymilvus_bulk_writer_files_in_s3_import_unchanged() {
    let s3 = S3Server::start("milvus-bucket");
    let nats = NatsServer::start();
    let mut c = data_cluster(3, &nats);
    c.set("COMMON_STORAGE_TYPE", "minio");
    c.set("MINIO_ADDRESS", &s3.host());
    c.set("MINIO_PORT", &s3.port.to_string());
    c.set("MINIO_BUCKET_NAME", "milvus-bucket");
    let procs = all_roles(&c);
    let uri = format!("http://127.0.0.1:{}", procs[7].port);
    let endpoint = format!("{}:{}", s3.host(), s3.port);
    let (ok, text) = import(&["writers", &uri, &endpoint, "milvus-bucket"]);
    assert!(
        ok && text.contains("writers: all checks passed"),
        "{text}\n{}\n{}",
        logs(&procs),
        s3.log()
    );
}

/// Starts a 300k-row import and SIGKILLs process `victim` (an index into all_roles'
/// processes) while the datanode runs the job. With `standby_first` a second process of
/// its role is started beforehand (a coordinator's standby, which takes over); otherwise
/// one is started after the kill. Every row must be imported exactly once, the job
/// finished by one datanode.
fn kill_mid_import(victim: usize, standby_first: bool) {
    // More rows than one ID allocation gives (262,143): the job allocates in blocks.
    const ROWS: &str = "300000";
    let nats = NatsServer::start();
    let mut c = data_cluster(3, &nats);
    if standby_first {
        for key in [
            "DATA_COORD_ENABLE_ACTIVE_STANDBY",
            "QUERY_COORD_ENABLE_ACTIVE_STANDBY",
            "INDEX_COORD_ENABLE_ACTIVE_STANDBY",
        ] {
            c.set(key, "true");
        }
    }
    let mut procs = all_roles(&c);
    let uri = format!("http://127.0.0.1:{}", procs[7].port);
    // all_roles starts milvus::testkit::cluster::ALL_ROLES in order.
    let (datanode, role) = (4, milvus::testkit::cluster::ALL_ROLES[victim]);
    if standby_first {
        procs.push(c.start(role, &[]));
        let standby = procs.last().expect("started");
        assert!(
            standby.wait_state("StandBy", Duration::from_secs(10)),
            "{}",
            standby.log()
        );
    }
    let (ok, text) = import(&["big", &uri, &bucket(&c), ROWS]);
    assert!(ok, "{text}\n{}", logs(&procs));
    let job = text
        .lines()
        .find_map(|l| l.strip_prefix("JOB "))
        .expect("the job ID")
        .trim()
        .to_string();
    // Kill it while the datanode runs the job (reading, converting or writing its files).
    assert!(
        procs[datanode].wait_log("datanode starts import job", Duration::from_secs(60)),
        "{}",
        logs(&procs)
    );
    procs[victim].signal(Signal::SIGKILL);
    let registered_before = procs
        .iter()
        .any(|p| p.log().contains("import job finished"));
    if !standby_first {
        // The next datanode takes the job over once the dead one's session is gone.
        procs.push(c.start(role, &[]));
        common::data::healthy(procs.last().expect("started"));
    }
    let (ok, text) = import(&["verify", &uri, &job, ROWS]);
    assert!(
        ok && text.contains("verify: all checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
    let finished_by = procs
        .iter()
        .filter(|p| p.log().contains("import job finished"))
        .count();
    println!(
        "{role} killed; the job was finished before the kill: {registered_before}; finished by {finished_by} process(es)"
    );
    assert_eq!(
        finished_by,
        1,
        "one datanode finished the job:\n{}",
        logs(&procs)
    );
    if victim == datanode {
        let took_over = procs
            .last()
            .expect("the new datanode")
            .log()
            .contains("datanode starts import job");
        assert!(
            took_over || registered_before,
            "the job was neither finished by the killed datanode nor taken over:\n{}",
            logs(&procs)
        );
    }
}

#[test]
fn a_datanode_killed_mid_import_leaves_every_row_imported_once() {
    kill_mid_import(4, false);
}

#[test]
fn the_active_datacoord_killed_mid_import_leaves_every_row_imported_once() {
    kill_mid_import(1, true);
}
