//! Log retention on real etcd, nats-server and every role: the active datacoord deletes
//! the log messages every reader has passed (a flushed collection's), keeps those a
//! shard has not persisted (an unflushed collection's), and a datanode SIGKILLed after
//! the deletion loses no row.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::data::{all_roles, data_cluster, logs, run_script};
use milvus::testkit::{runtime, wait_until, NatsServer};
use milvus::wal::{self, Wal};
use nix::sys::signal::Signal;

fn compat(args: &[&str]) -> (bool, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/compat_client.py");
    run_script(&script, args)
}

#[test]
fn the_log_keeps_only_what_a_reader_may_need_and_a_datanode_crash_loses_nothing() {
    let nats = NatsServer::start();
    let mut c = data_cluster(3, &nats);
    c.set("DATA_COORD_LOG_RETENTION_GRACE", "1");
    let mut procs = all_roles(&c);
    let uri = format!("http://127.0.0.1:{}", procs[7].port);
    let (ok, text) = compat(&["retention", &uri, "write"]);
    assert!(ok, "{text}\n{}", logs(&procs));
    // all_roles starts milvus::testkit::cluster::ALL_ROLES in order.
    let (datacoord, datanode) = (1, 4);
    assert!(
        procs[datacoord].wait_log(
            "log messages every reader has passed deleted",
            Duration::from_secs(30)
        ),
        "{}",
        logs(&procs)
    );
    let rt = runtime();
    let w = rt
        .block_on(Wal::connect(
            &nats.address(),
            Duration::from_secs(5),
            "retention test",
        ))
        .expect("connect to nats");
    // data_cluster has 4 DML channels (a stream exists once a collection uses one); the
    // two collections' 30 inserts and flush marker are in them. The flushed collection's
    // go; the unflushed one's stay.
    let states = || {
        (0..4)
            .filter_map(|n| {
                let p = wal::pchannel_name("by-dev", "rootcoord-dml", n);
                rt.block_on(w.channel_state(&p)).ok()
            })
            .collect::<Vec<_>>()
    };
    let written: u64 = states().iter().map(|s| s.last_sequence).sum();
    assert!(
        wait_until(Duration::from_secs(30), || {
            let kept: u64 = states().iter().map(|s| s.messages).sum();
            (10..written).contains(&kept)
        }),
        "the log still holds {:?} of {written} messages\n{}",
        states(),
        logs(&procs)
    );
    println!("written {written} messages, kept {:?}", states());
    // The unflushed rows survive their datanode's death: the next one reads them from
    // the log.
    procs[datanode].signal(Signal::SIGKILL);
    procs.push(c.start("datanode", &[]));
    common::data::healthy(procs.last().expect("started"));
    let (ok, text) = compat(&["retention", &uri, "verify"]);
    assert!(
        ok && text.contains("retention: all checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
}
