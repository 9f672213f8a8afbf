//! The index path on real processes (etcd, nats-server, milvus, pymilvus 2.5.18):
//! indexcoord and indexnodes build HNSW, IVF_FLAT, FLAT and AUTOINDEX over flushed
//! segments, through a crash of the active indexcoord and of an indexnode mid-build.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::data::{data_cluster, finish, healthy, py, py_spawn, storage_dir, summary};
use common::Cluster;
use milvus::proto::indexcoord::BuildRecord;
use milvus::testkit::NatsServer;
use nix::sys::signal::Signal;
use prost::Message;

const SEC: Duration = Duration::from_secs(1);

/// Build records in etcd.
fn builds(c: &Cluster) -> Vec<BuildRecord> {
    let rt = milvus::testkit::runtime();
    rt.block_on(async {
        let mut cl = etcd_client::Client::connect([c.etcd.endpoint()], None)
            .await
            .unwrap();
        let resp = tokio::time::timeout(
            5 * SEC,
            cl.get(
                "by-dev/meta/segment-index/",
                Some(etcd_client::GetOptions::new().with_prefix()),
            ),
        )
        .await
        .expect("etcd get timed out")
        .unwrap();
        resp.kvs()
            .iter()
            .filter(|kv| !kv.key().ends_with(b"active-epoch"))
            .map(|kv| BuildRecord::decode(kv.value()).unwrap())
            .collect()
    })
}

#[test]
fn pymilvus_creates_describes_lists_and_drops_indexes() {
    let nats = NatsServer::start();
    let mut c = data_cluster(2, &nats);
    // Segments of ~2 MB: the 30,000 rows land in more than one.
    c.set("DATA_COORD_SEGMENT_MAX_SIZE", "2");
    c.set("DATA_COORD_SEGMENT_SEAL_PROPORTION", "1");
    c.set("DATA_COORD_GC_INTERVAL", "1");
    c.set("DATA_COORD_GC_MISSING_TOLERANCE", "2");
    let procs: Vec<_> = [
        "rootcoord",
        "datacoord",
        "datanode",
        "indexcoord",
        "indexnode",
        "proxy",
    ]
    .iter()
    .map(|r| c.start(r, &[]))
    .collect();
    for m in &procs {
        healthy(m);
    }
    let p = &procs[5];
    let uri = format!("http://127.0.0.1:{}", p.port);
    let storage = storage_dir(&c).display().to_string();
    let (ok, text) = py(&["index", &uri, &storage]);
    assert!(
        ok,
        "{text}\nindexcoord:\n{}\nindexnode:\n{}",
        procs[3].log(),
        procs[4].log()
    );
    assert!(text.contains("index: all checks passed"), "{text}");
    println!("{}", summary(&text));
    // The indexnode logs the record after etcd has it, so the client can see the build
    // Finished a moment before the line is written.
    assert!(
        procs[4].wait_log("index build recorded", Duration::from_secs(10)),
        "{}",
        procs[4].log()
    );
    // The indexnode ran one build at a time (the indexcoord gives a busy one none): each
    // build it started wrote its file or failed before the next started.
    let mut running: Option<String> = None;
    for line in procs[4].log().lines() {
        let build = line
            .split("[build=")
            .nth(1)
            .and_then(|t| t.split(']').next())
            .map(str::to_string);
        if line.contains("\"index build started\"") {
            assert!(
                running.is_none(),
                "build {build:?} started while {running:?} ran\n{}",
                procs[4].log()
            );
            running = build;
        } else if (line.contains("\"index file written\"")
            || line.contains("\"index build failed\""))
            && build == running
        {
            running = None;
        }
    }
    // An index file of a build no record names (an indexnode finished it after its index
    // was dropped, or died before registering it): the indexcoord deletes it once older
    // than missingTolerance; a recorded build's file stays.
    let root = storage_dir(&c);
    let orphan = root.join("index_files/999999999/index");
    milvus::testkit::write_aged(
        &orphan,
        b"an index nobody registered",
        Duration::from_secs(3600),
    );
    let recorded: Vec<String> = builds(&c)
        .iter()
        .flat_map(|b| b.index_files.clone())
        .collect();
    assert!(
        milvus::testkit::wait_until(20 * SEC, || !orphan.exists()),
        "the unrecorded index file is still there\n{}",
        procs[3].log()
    );
    for f in recorded {
        assert!(
            root.join(&f).exists(),
            "recorded index file {f} was deleted"
        );
    }
    assert!(procs[3]
        .log()
        .contains("index files of unrecorded builds deleted"));
}

#[test]
fn an_index_build_finishes_through_kills_of_the_active_indexcoord_and_an_indexnode() {
    let nats = NatsServer::start();
    let mut c = data_cluster(2, &nats);
    // ~4 MB segments: 32,000 x 128 rows make about four builds of a second or more.
    c.set("DATA_COORD_SEGMENT_MAX_SIZE", "4");
    c.set("DATA_COORD_SEGMENT_SEAL_PROPORTION", "1");
    c.set("INDEX_NODE_BUILD_PARALLEL", "1");
    let ha = [("INDEX_COORD_ENABLE_ACTIVE_STANDBY", "true")];
    let rc = c.start("rootcoord", &[]);
    let dc = c.start("datacoord", &[]);
    let dn = c.start("datanode", &[]);
    let ic_a = c.start("indexcoord", &ha);
    for m in [&rc, &dc, &dn, &ic_a] {
        healthy(m);
    }
    let ic_b = c.start("indexcoord", &ha);
    assert!(ic_b.wait_state("StandBy", 10 * SEC), "{}", ic_b.log());
    let in_a = c.start("indexnode", &[]);
    let in_b = c.start("indexnode", &[]);
    let p = c.start("proxy", &[]);
    for m in [&in_a, &in_b, &p] {
        healthy(m);
    }
    let uri = format!("http://127.0.0.1:{}", p.port);
    let client = py_spawn(&["index_build", &uri, "crash", "32000", "128"]);
    // Kill once both indexnodes are building.
    assert!(
        in_a.wait_log("index build started", 60 * SEC),
        "{}",
        in_a.log()
    );
    assert!(
        in_b.wait_log("index build started", 30 * SEC),
        "{}",
        in_b.log()
    );
    in_a.signal(Signal::SIGKILL);
    ic_a.signal(Signal::SIGKILL);
    let (ok, text) = finish(client);
    assert!(
        ok,
        "{text}\nindexcoord b:\n{}\nindexnode b:\n{}",
        ic_b.log(),
        in_b.log()
    );
    let d = summary(&text);
    println!("{d}");
    assert_eq!(d["state"], "Finished", "{d}");
    assert_eq!(d["indexed_rows"], 32000, "{d}");
    assert_eq!(d["total_rows"], 32000, "{d}");
    // Each segment's index is recorded once, and only for live segments.
    let coll = d["collection"].as_i64().unwrap();
    let segs: Vec<i64> = common::data::segments(&c, coll)
        .iter()
        .map(|s| s.id)
        .collect();
    let mut per_segment: BTreeMap<i64, usize> = BTreeMap::new();
    for b in builds(&c) {
        assert!(segs.contains(&b.segment_id), "orphaned build record {b:?}");
        assert_eq!(b.state, 3, "a build not Finished: {b:?}");
        *per_segment.entry(b.segment_id).or_default() += 1;
    }
    assert!(segs.len() >= 2, "one segment proves little: {segs:?}");
    for s in &segs {
        assert_eq!(per_segment.get(s), Some(&1), "segment {s}: {per_segment:?}");
    }
    assert!(
        ic_b.log().contains("index build assigned"),
        "the new active assigned nothing: {}",
        ic_b.log()
    );
}
