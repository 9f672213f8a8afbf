//! The write path through pymilvus 2.5.18: insert, upsert and delete by ids land in the
//! log (a real nats-server) as the proxy acknowledges them, bad input changes nothing,
//! and a nats-server restart loses nothing, for the proxy and the datanode alike.
//! The Python side is the `write` mode of `tests/python/pymilvus_client.py`.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::Cluster;
use milvus::proto::wal::{wal_message, WalMessage};
use milvus::testkit::{python, NatsServer, Spawned};
use milvus::wal::{pchannel_name, Wal};
use prost::Message;

const SEC: Duration = Duration::from_secs(1);

/// Every message in the log, over the first `channels` DML channels.
fn log_messages(nats: &NatsServer, channels: usize) -> Vec<wal_message::Body> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let wal = Wal::connect(&nats.address(), 2 * SEC, "test")
            .await
            .unwrap();
        let mut out = Vec::new();
        for n in 0..channels {
            let ch = pchannel_name("by-dev", "rootcoord-dml", n);
            let Ok(last) = wal.last_sequence(&ch).await else {
                continue; // never written: no stream
            };
            if last == 0 {
                continue;
            }
            let mut r = wal.read_channel(&ch, 1).await.unwrap();
            for _ in 0..last {
                let e = r.next(2 * SEC).await.unwrap().expect("message");
                out.extend(WalMessage::decode(e.payload).unwrap().body);
            }
        }
        out
    })
}

/// (insert rows, delete keys) per collection ID.
fn log_contents(nats: &NatsServer, channels: usize) -> HashMap<i64, (u64, u64)> {
    let mut out: HashMap<i64, (u64, u64)> = HashMap::new();
    for m in log_messages(nats, channels) {
        match m {
            wal_message::Body::Insert(i) => {
                assert_eq!(i.row_ids.len(), i.num_rows as usize);
                assert!(i.fields.iter().all(|f| f.field_id >= 100));
                out.entry(i.collection_id).or_default().0 += u64::from(i.num_rows);
            }
            wal_message::Body::Delete(d) => {
                out.entry(d.collection_id).or_default().1 += d.num_rows as u64;
            }
            wal_message::Body::Flush(_) => {}
        }
    }
    out
}

#[test]
fn pymilvus_inserts_upserts_and_deletes_land_in_the_log_exactly_once() {
    let nats = NatsServer::start();
    let mut c = Cluster::new(2);
    c.set("NATSMQ_ADDRESS", &nats.address());
    c.set("ROOT_COORD_DML_CHANNEL_NUM", "4");
    let rc = c.rootcoord_ha();
    assert!(rc.wait_state("Healthy", 10 * SEC), "{}", rc.log());
    let p = c.start("proxy", &[]);
    assert!(p.wait_state("Healthy", 10 * SEC), "{}", p.log());
    let out = Command::new(python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/pymilvus_client.py"))
        .args(["write", &format!("http://127.0.0.1:{}", p.port)])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}\nproxy log:\n{}", p.log());
    assert!(text.contains("write: all checks passed"), "{text}");
    let ids: serde_json::Value = serde_json::from_str(
        text.lines()
            .find(|l| l.starts_with('{'))
            .expect("collection ids"),
    )
    .unwrap();
    let (w, auto) = (ids["w"].as_i64().unwrap(), ids["auto"].as_i64().unwrap());
    let log = log_contents(&nats, 4);
    // 100 inserted + 1 upserted row; 1 key deleted by the upsert + 3 by delete(ids);
    // the refused requests wrote nothing.
    assert_eq!(log.get(&w), Some(&(101, 4)), "{log:?}");
    assert_eq!(log.get(&auto), Some(&(10, 0)), "{log:?}");
    // 2000 x 256 floats (2 MB) went in several messages, each under the limit.
    let big = ids["big"].as_i64().unwrap();
    assert_eq!(log.get(&big), Some(&(2000, 0)), "{log:?}");
}

#[test]
fn inserts_through_a_nats_restart_are_acknowledged_only_once_stored_and_stored_once() {
    let mut nats = NatsServer::start();
    let mut c = Cluster::new(2);
    c.set("NATSMQ_ADDRESS", &nats.address());
    c.set("ROOT_COORD_DML_CHANNEL_NUM", "1");
    let rc = c.rootcoord_ha();
    assert!(rc.wait_state("Healthy", 10 * SEC), "{}", rc.log());
    let dc = c.start("datacoord", &[]);
    let dn = c.start("datanode", &[]);
    let p = c.start("proxy", &[]);
    for m in [&dc, &dn, &p] {
        assert!(m.wait_state("Healthy", 10 * SEC), "{}", m.log());
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/pymilvus_client.py");
    let uri = format!("http://127.0.0.1:{}", p.port);
    let mut client = Spawned::start(
        &python(),
        &[script.to_str().unwrap(), "insert_nonstop", &uri, "10"],
    );
    client.wait_started(30 * SEC);
    // SIGKILL; the server stays down until a publish has failed (so the retry is
    // exercised, not just a reconnect that the client library hides), then comes back
    // on the same port and store.
    nats.kill();
    assert!(
        p.wait_log("publish to the log failed", 30 * SEC),
        "no publish failed while nats-server was down:\n{}",
        p.log()
    );
    nats.launch();
    let (ok, text) = client.finish();
    assert!(ok, "{text}\nproxy log:\n{}", p.log());
    let r: serde_json::Value = serde_json::from_str(
        text.lines()
            .find(|l| l.starts_with('{'))
            .expect("summary line"),
    )
    .unwrap();
    println!("{r}");
    let collection = r["collection"].as_i64().unwrap();
    let acked = r["acked"].as_u64().unwrap();
    // A nats-server restart costs no failed call: the proxy retries the publish (same
    // message ID) until the server is back.
    let failures = r["failures"].as_array().unwrap();
    assert!(failures.is_empty(), "calls failed through the restart: {r}");
    // Every key in the log once; every acknowledged batch is there.
    let mut keys: Vec<i64> = log_messages(&nats, 1)
        .into_iter()
        .filter_map(|m| match m {
            wal_message::Body::Insert(i) if i.collection_id == collection => Some(i),
            _ => None,
        })
        .flat_map(|m| match m.fields[0].field.clone() {
            Some(milvus::proto::schema::field_data::Field::Scalars(s)) => match s.data {
                Some(milvus::proto::schema::scalar_field::Data::LongData(l)) => l.data,
                _ => vec![],
            },
            _ => vec![],
        })
        .collect();
    let stored = keys.len();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), stored, "a key was stored twice");
    assert_eq!(
        stored as u64, acked,
        "acknowledged {acked} rows, the log holds {stored}"
    );
    assert!(acked > 1000, "too few inserts to mean anything: {r}");
    // The datanode read through the restart too: a flush persists every stored row once.
    let out = Command::new(python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/pymilvus_client.py"))
        .args([
            "flush_count",
            &format!("http://127.0.0.1:{}", p.port),
            "nonstop",
            "60",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}\ndatanode log:\n{}", dn.log());
    let counted: serde_json::Value = serde_json::from_str(
        text.lines()
            .find(|l| l.starts_with('{'))
            .expect("row_count"),
    )
    .unwrap();
    assert_eq!(
        counted["row_count"].as_u64().unwrap(),
        stored as u64,
        "{text}"
    );
}
