//! Flush through datacoords and datanodes on real processes (etcd, nats-server, milvus):
//! segments land in storage as Parquet, registered with their channel checkpoint in one
//! txn, counted exactly once through datanode and datacoord crashes, never registered by
//! a datanode that lost its channel. The Python side is `tests/python/pymilvus_client.py`.

mod common;

use std::time::Duration;

use common::data::{
    data_cluster, deltas, finish, healthy, py, py_spawn, segments, storage_dir, summary,
    wait_until, watches,
};
use milvus::testkit::NatsServer;
use nix::sys::signal::Signal;

const SEC: Duration = Duration::from_secs(1);

#[test]
fn pymilvus_flush_writes_parquet_segments_that_statistics_count() {
    let nats = NatsServer::start();
    let mut c = data_cluster(2, &nats);
    c.set("DATA_COORD_GC_INTERVAL", "1");
    c.set("DATA_COORD_GC_MISSING_TOLERANCE", "2");
    c.set("DATA_COORD_GC_DROP_TOLERANCE", "1");
    let rc = c.start("rootcoord", &[]);
    let dc = c.start("datacoord", &[]);
    let dn = c.start("datanode", &[]);
    let p = c.start("proxy", &[]);
    for m in [&rc, &dc, &dn, &p] {
        healthy(m);
    }
    let uri = format!("http://127.0.0.1:{}", p.port);
    let storage = storage_dir(&c).display().to_string();
    let (ok, text) = py(&["flush", &uri, &storage]);
    assert!(ok, "{text}\nproxy:\n{}\ndatanode:\n{}", p.log(), dn.log());
    assert!(text.contains("flush: all checks passed"), "{text}");
    let s = summary(&text);
    println!("{s}");
    let coll = s["collection"].as_i64().unwrap();
    // Every segment record is Flushed, names a file that exists, and has a unique ID.
    let segs = segments(&c, coll);
    assert!(!segs.is_empty());
    let mut ids: Vec<i64> = segs.iter().map(|s| s.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), segs.len(), "a segment ID was used twice");
    for seg in &segs {
        assert_eq!(seg.state, 4, "{seg:?}");
        for f in &seg.insert_files {
            assert!(storage_dir(&c).join(f).is_file(), "{f} missing");
        }
    }
    assert_eq!(segs.iter().map(|s| s.num_rows).sum::<i64>(), 1001);
    // Logged after the registration the flush waited for: waited for, not read at once.
    assert!(
        dn.wait_log("datanode sync registered", Duration::from_secs(10)),
        "{}",
        dn.log()
    );
    // Dropping the collection marks its segments Dropped and releases its channels.
    let (ok, text) = py(&["drop", &uri, "f"]);
    assert!(ok, "{text}");
    assert!(
        wait_until(10 * SEC, || segments(&c, coll).iter().all(|s| s.state == 6)),
        "segments not Dropped: {:?}\n{}",
        segments(&c, coll),
        dc.log()
    );
    assert!(
        wait_until(10 * SEC, || watches(&c)
            .iter()
            .all(|(v, _)| !v.contains(&format!("_{coll}v")))),
        "channels of a dropped collection still assigned"
    );
    // dropTolerance later, its files and then its records are gone.
    assert!(
        wait_until(15 * SEC, || segments(&c, coll).is_empty()),
        "dropped segments not collected: {}",
        dc.log()
    );
    for seg in &segs {
        for f in &seg.insert_files {
            assert!(
                !storage_dir(&c).join(f).exists(),
                "{f} of a dropped segment still there"
            );
        }
    }
    // A write cut off by a kill leaves the local store's staging file (`<object>#<n>`,
    // which no listing shows): the datacoord deletes it once idle for missingTolerance,
    // under any prefix.
    let root = storage_dir(&c);
    let staged: Vec<_> = ["insert_log/1/2/3/0#1", "index_files/4/index#2"]
        .iter()
        .map(|k| {
            let f = root.join(k);
            let part = b"the first part of an object";
            milvus::testkit::write_aged(&f, part, Duration::from_secs(3600));
            f
        })
        .collect();
    assert!(
        wait_until(15 * SEC, || staged.iter().all(|f| !f.exists())),
        "staging files of cut-off writes still there\n{}",
        dc.log()
    );
    assert!(
        dc.wait_log(
            "deleted the staging file of a write that was cut off",
            5 * SEC
        ),
        "{}",
        dc.log()
    );
}

#[test]
fn nonstop_inserts_count_exactly_once_through_datanode_and_datacoord_kills() {
    let nats = NatsServer::start();
    let mut c = data_cluster(2, &nats);
    // Small segments: the datanodes sync every ~20 KB (about a second of inserts), so a kill lands mid-stream.
    c.set("DATA_COORD_SEGMENT_MAX_SIZE", "1");
    c.set("DATA_COORD_SEGMENT_SEAL_PROPORTION", "0.02");
    // Log retention deletes what every reader has passed within a second, through the kills.
    c.set("DATA_COORD_LOG_RETENTION_GRACE", "1");
    let rc = c.start("rootcoord", &[]);
    healthy(&rc);
    let ha = [("DATA_COORD_ENABLE_ACTIVE_STANDBY", "true")];
    let dc_a = c.start("datacoord", &ha);
    healthy(&dc_a);
    let dc_b = c.start("datacoord", &ha);
    assert!(dc_b.wait_state("StandBy", 10 * SEC), "{}", dc_b.log());
    let dn_a = c.start("datanode", &[]);
    let dn_b = c.start("datanode", &[]);
    let p = c.start("proxy", &[]);
    for m in [&dn_a, &dn_b, &p] {
        healthy(m);
    }
    let uri = format!("http://127.0.0.1:{}", p.port);
    let mut client = py_spawn(&["insert_nonstop", &uri, "16", "crash", "4"]);
    client.wait_started(30 * SEC);
    // Both datanodes own channels of the collection before the first kill.
    let (a_id, b_id) = (dn_a.server_id().unwrap(), dn_b.server_id().unwrap());
    assert!(
        wait_until(10 * SEC, || {
            let w = watches(&c);
            w.iter().any(|(_, n)| *n == a_id) && w.iter().any(|(_, n)| *n == b_id)
        }),
        "channels not spread over both datanodes: {:?}",
        watches(&c)
    );
    // Kill A once it has registered a segment of its own (it syncs about every second).
    let coll_of = |c: &common::Cluster| {
        watches(c)
            .iter()
            .find_map(|(v, _)| v.rsplit('_').next()?.split('v').next()?.parse::<i64>().ok())
    };
    assert!(
        wait_until(20 * SEC, || coll_of(&c).is_some_and(|coll| segments(
            &c, coll
        )
        .iter()
        .any(|s| s.node_id == a_id))),
        "datanode A registered no segment:\n{}",
        dn_a.log()
    );
    dn_a.signal(Signal::SIGKILL);
    assert!(
        wait_until(15 * SEC, || watches(&c).iter().all(|(_, n)| *n == b_id)),
        "channels not moved to the surviving datanode: {:?}\n{}",
        watches(&c),
        dc_a.log()
    );
    // Kill the active datacoord once B has registered a segment since taking over.
    let before = coll_of(&c).map_or(0, |coll| segments(&c, coll).len());
    assert!(
        wait_until(20 * SEC, || coll_of(&c).is_some_and(|coll| segments(
            &c, coll
        )
        .len()
            > before)),
        "no segment registered after the move:\n{}",
        dn_b.log()
    );
    dc_a.signal(Signal::SIGKILL);
    healthy(&dc_b);
    let (ok, text) = finish(client);
    assert!(ok, "{text}\nproxy:\n{}", p.log());
    let r = summary(&text);
    println!("{r}");
    assert!(
        r["failures"].as_array().unwrap().is_empty(),
        "failed calls: {r}"
    );
    let acked = r["acked"].as_i64().unwrap();
    assert!(acked > 1000, "too few inserts to mean anything: {r}");
    let (ok, text) = py(&["flush_count", &uri, "crash", "60"]);
    assert!(
        ok,
        "{text}\ndatanode b:\n{}\ndatacoord b:\n{}",
        dn_b.log(),
        dc_b.log()
    );
    let counted = summary(&text)["row_count"].as_i64().unwrap();
    assert_eq!(counted, acked, "row_count after flush != acknowledged rows");
    // Segment IDs are never reused.
    let coll = r["collection"].as_i64().unwrap();
    let segs = segments(&c, coll);
    let mut ids: Vec<i64> = segs.iter().map(|s| s.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), segs.len(), "a segment ID was used twice");
    assert!(
        segs.iter().any(|s| s.node_id == a_id),
        "the killed datanode never registered a segment: the kill proved nothing"
    );
}

#[test]
fn a_datanode_paused_past_its_ttl_never_registers_for_a_channel_it_lost() {
    let nats = NatsServer::start();
    let c = data_cluster(2, &nats);
    let rc = c.start("rootcoord", &[]);
    let dc = c.start("datacoord", &[]);
    let p = c.start("proxy", &[]);
    for m in [&rc, &dc, &p] {
        healthy(m);
    }
    // A buffers for the whole test (no size or period sync); it owns the channel alone.
    let dn_a = c.start("datanode", &[]);
    healthy(&dn_a);
    let a_id = dn_a.server_id().unwrap();
    let uri = format!("http://127.0.0.1:{}", p.port);
    let (ok, text) = py(&["insert_nonstop", &uri, "1", "paused", "1"]);
    assert!(ok, "{text}");
    let acked = summary(&text)["acked"].as_i64().unwrap();
    assert!(acked > 0, "no insert was acknowledged: {text}");
    assert!(wait_until(10 * SEC, || watches(&c)
        .iter()
        .any(|(_, n)| *n == a_id)));
    assert!(
        dn_a.wait_log("datanode starts consuming channel", 10 * SEC),
        "{}",
        dn_a.log()
    );
    dn_a.signal(Signal::SIGSTOP);
    let dn_b = c.start("datanode", &[]);
    healthy(&dn_b);
    let b_id = dn_b.server_id().unwrap();
    assert!(
        wait_until(15 * SEC, || watches(&c).iter().all(|(_, n)| *n == b_id)),
        "the channel did not move: {:?}",
        watches(&c)
    );
    // B replays from the checkpoint and flushes every acknowledged row.
    let (ok, text) = py(&["flush_count", &uri, "paused", "30"]);
    assert!(ok, "{text}\n{}", dn_b.log());
    assert_eq!(summary(&text)["row_count"].as_i64().unwrap(), acked);
    // A wakes up with the same rows buffered: it must not register them.
    dn_a.signal(Signal::SIGCONT);
    assert!(
        dn_a.wait_log("datanode session ended", 10 * SEC),
        "A did not notice: {}",
        dn_a.log()
    );
    let (ok, text) = py(&["flush_count", &uri, "paused", "30"]);
    assert!(ok, "{text}");
    assert_eq!(summary(&text)["row_count"].as_i64().unwrap(), acked);
    let coll = {
        let segs = watches(&c);
        assert!(!segs.is_empty());
        segs[0]
            .0
            .rsplit('_')
            .next()
            .unwrap()
            .split('v')
            .next()
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    assert!(
        segments(&c, coll).iter().all(|s| s.node_id == b_id),
        "a segment registered by the paused datanode: {:?}",
        segments(&c, coll)
    );
}

#[test]
fn unwritable_storage_fails_the_flush_and_registers_nothing() {
    let nats = NatsServer::start();
    let c = data_cluster(2, &nats);
    let rc = c.start("rootcoord", &[]);
    let dc = c.start("datacoord", &[]);
    let dn = c.start("datanode", &[]);
    let p = c.start("proxy", &[]);
    for m in [&rc, &dc, &dn, &p] {
        healthy(m);
    }
    // A file where the insert_log directory must go: no process (root included) can
    // create the segment's directory.
    let blocker = storage_dir(&c).join("insert_log");
    std::fs::create_dir_all(storage_dir(&c)).unwrap();
    std::fs::write(&blocker, b"not a directory").unwrap();
    let uri = format!("http://127.0.0.1:{}", p.port);
    let (ok, text) = py(&["insert_nonstop", &uri, "1", "blocked", "1"]);
    assert!(ok, "{text}");
    let acked = summary(&text)["acked"].as_i64().unwrap();
    let coll = summary(&text)["collection"].as_i64().unwrap();
    // The sync keeps failing: after a few attempts the flush answers why (instead of
    // letting the client wait out its timeout), the channel shows as failing, and the
    // datanode's log names the segment and the reason.
    let (ok, text) = py(&["flush_count", &uri, "blocked", "60"]);
    assert!(!ok, "flush succeeded with unwritable storage: {text}");
    assert!(
        text.contains("flush cannot complete") && text.contains("insert_log"),
        "the flush error does not say why: {text}"
    );
    let log = dn.log();
    let failed = log
        .lines()
        .find(|l| {
            l.contains("datanode sync failed: nothing registered") && l.contains("[segments=\"[")
        })
        .unwrap_or_else(|| panic!("no ERROR naming the segment:\n{log}"));
    assert!(failed.contains("[ERROR]"), "{failed}");
    let out = c.cmd(&["status", "--channels"]);
    let listing = common::text(&out);
    assert!(
        listing.contains("FAILING: sync of segment(s) ["),
        "{listing}"
    );
    assert!(segments(&c, coll).is_empty(), "a segment was registered");
    // Storage comes back: the same flush completes, every row counted once, and the
    // channel no longer shows as failing.
    std::fs::remove_file(&blocker).unwrap();
    let (ok, text) = py(&["flush_count", &uri, "blocked", "30"]);
    assert!(ok, "{text}\n{}", dn.log());
    assert_eq!(summary(&text)["row_count"].as_i64().unwrap(), acked);
    let listing = common::text(&c.cmd(&["status", "--channels"]));
    assert!(!listing.contains("FAILING"), "{listing}");
}

/// A datanode can own a channel before its catalog shows the channel's collection (its
/// catalog watch lags behind its assignment watch, as around an etcd leader change). A
/// delete it reads then is kept, not skipped: once the collection shows up the flush
/// registers the delta with the deleted key. (The soak lost acknowledged deletes this
/// way: the consumer counted a delete as read before failing on it, and resumed after it.)
#[test]
fn a_delete_read_before_the_catalog_shows_its_collection_is_not_lost() {
    use milvus::meta::catalog::{CatalogKeys, DEFAULT_DB_ID};
    use milvus::meta::data::DataKeys;
    use milvus::proto::datacoord::ChannelWatch;
    use milvus::proto::rootcoord::{CollectionRecord, PartitionRecord};
    use milvus::proto::schema::{
        field_data, i_ds, scalar_field, CollectionSchema, DataType, FieldData, FieldSchema, IDs,
        LongArray, ScalarField,
    };
    use milvus::proto::wal::{wal_message, DeleteMsg, FlushMsg, InsertMsg, WalMessage};
    use milvus::wal::{pchannel_name, vchannel_name, Wal};
    use prost::Message;

    let nats = NatsServer::start();
    let c = data_cluster(2, &nats);
    // No datacoord: the test assigns the channel itself.
    let rc = c.start("rootcoord", &[]);
    let dn = c.start("datanode", &[]);
    healthy(&rc);
    healthy(&dn);
    let node = dn.server_id().unwrap();
    let (coll, part) = (777_001, 777_002);
    let pchannel = pchannel_name("by-dev", "rootcoord-dml", 0);
    let vchannel = vchannel_name(&pchannel, coll, 0);
    let data_keys = DataKeys::new("by-dev/meta");
    let rt = milvus::testkit::runtime();
    let mut etcd = rt
        .block_on(etcd_client::Client::connect([c.etcd.endpoint()], None))
        .unwrap();
    let mut put = |key: String, value: Vec<u8>| {
        rt.block_on(async { tokio::time::timeout(5 * SEC, etcd.put(key, value, None)).await })
            .expect("etcd put timed out")
            .unwrap();
    };
    let watch = ChannelWatch {
        vchannel: vchannel.clone(),
        collection_id: coll,
        node_id: node,
        epoch: 0,
    };
    put(data_keys.watch(&vchannel), watch.encode_to_vec());
    assert!(
        dn.wait_log("datanode starts consuming channel", 10 * SEC),
        "{}",
        dn.log()
    );
    // Three rows, a delete of key 2, a flush marker: what a proxy would publish.
    let ts = |n: u64| (milvus::meta::now_ms() as u64) << 18 | n;
    let longs = |v: Vec<i64>| scalar_field::Data::LongData(LongArray { data: v });
    let messages = [
        wal_message::Body::Insert(InsertMsg {
            collection_id: coll,
            partition_id: part,
            vchannel: vchannel.clone(),
            timestamp: ts(1),
            row_ids: vec![11, 12, 13],
            fields: vec![FieldData {
                r#type: DataType::Int64 as i32,
                field_name: "id".into(),
                field_id: 100,
                field: Some(field_data::Field::Scalars(ScalarField {
                    data: Some(longs(vec![1, 2, 3])),
                })),
                ..Default::default()
            }],
            num_rows: 3,
        }),
        wal_message::Body::Delete(DeleteMsg {
            collection_id: coll,
            partition_id: 0,
            vchannel: vchannel.clone(),
            timestamp: ts(2),
            pks: Some(IDs {
                id_field: Some(i_ds::IdField::IntId(LongArray { data: vec![2] })),
            }),
            num_rows: 1,
        }),
        wal_message::Body::Flush(FlushMsg {
            collection_id: coll,
            vchannel: vchannel.clone(),
            timestamp: ts(3),
        }),
    ];
    rt.block_on(async {
        let wal = Wal::connect(&nats.address(), 5 * SEC, "test")
            .await
            .unwrap();
        wal.ensure_channel(&pchannel).await.unwrap();
        for (i, body) in messages.into_iter().enumerate() {
            let msg = WalMessage { body: Some(body) }.encode_to_vec();
            wal.publish(&vchannel, &format!("m{i}"), msg.into())
                .await
                .unwrap();
        }
    });
    // The flush cannot be written while the schema is unknown: it is retried.
    assert!(
        dn.wait_log("collection 777001 is not in the catalog", 10 * SEC),
        "{}",
        dn.log()
    );
    let pk = FieldSchema {
        field_id: 100,
        name: "id".into(),
        data_type: DataType::Int64 as i32,
        is_primary_key: true,
        ..Default::default()
    };
    let schema = CollectionSchema {
        name: "late".into(),
        fields: vec![pk],
        ..Default::default()
    };
    let record = CollectionRecord {
        id: coll,
        db_id: DEFAULT_DB_ID,
        schema: Some(schema.clone()),
        shards_num: 1,
        partitions: vec![PartitionRecord {
            id: part,
            name: "_default".into(),
            created_timestamp: 0,
        }],
        virtual_channel_names: vec![vchannel.clone()],
        physical_channel_names: vec![pchannel.clone()],
        ..Default::default()
    };
    put(
        CatalogKeys::new("by-dev/meta").collection(DEFAULT_DB_ID, coll),
        record.encode_to_vec(),
    );
    // The flush registers the three rows and the delete, read from the delta file.
    assert!(
        wait_until(15 * SEC, || segments(&c, coll)
            .iter()
            .map(|s| s.num_rows)
            .sum::<i64>()
            == 3),
        "segments: {:?}\n{}",
        segments(&c, coll),
        dn.log()
    );
    let deltas = deltas(&c, coll);
    assert_eq!(
        deltas.iter().map(|d| d.num_rows).sum::<i64>(),
        1,
        "the delete was not registered: {deltas:?}\n{}",
        dn.log()
    );
    let file = std::fs::read(storage_dir(&c).join(&deltas[0].path)).unwrap();
    let delta_schema = milvus::storage::segment::delta_schema(&schema);
    let batch = milvus::storage::segment::decode(&delta_schema, file.into()).unwrap();
    let keys: Vec<i64> = batch
        .fields
        .iter()
        .filter_map(|f| match &f.field {
            Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::LongData(l)),
            })) => Some(l.data.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(keys, vec![2], "{batch:?}");
}
