//! What real Milvus clients hit first, through pymilvus 2.5.18 and the Node.js SDK
//! (`tests/python/compat_client.py`, `tests/node/quick.js`), on real etcd, nats-server
//! and every role: message size limits, AUTOINDEX without an index type, scalar and JSON
//! path indexes, the newest version of a key, GetFlushState by segment IDs, templated
//! deletes, release_partitions, search cost, unimplemented methods, range search,
//! Milvus's names, codes and messages, and flushes with many collections.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::data::{all_roles, data_cluster, logs, run_script};
use milvus::testkit::NatsServer;

/// A request limit small enough to cross in a test, large enough for a 5 MB insert.
const PROXY_LIMIT: usize = 8 << 20;

fn compat(args: &[&str]) -> (bool, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/compat_client.py");
    run_script(&script, args)
}

fn cluster(nats: &NatsServer) -> (common::Cluster, Vec<milvus::testkit::Milvus>, String) {
    let mut c = data_cluster(3, nats);
    c.set("PROXY_GRPC_SERVER_MAX_RECV_SIZE", &PROXY_LIMIT.to_string());
    let procs = all_roles(&c);
    let uri = format!("http://127.0.0.1:{}", procs[7].port);
    (c, procs, uri)
}

#[test]
fn requests_over_four_mib_work_and_over_the_limit_are_refused_at_once() {
    let nats = NatsServer::start();
    let (_c, procs, uri) = cluster(&nats);
    let (ok, text) = compat(&["sizes", &uri, &PROXY_LIMIT.to_string()]);
    assert!(ok, "{text}\n{}", logs(&procs));
}

#[test]
fn indexes_without_a_type_scalar_and_json_path_indexes() {
    let nats = NatsServer::start();
    let (_c, procs, uri) = cluster(&nats);
    let (ok, text) = compat(&["indexes", &uri]);
    assert!(ok, "{text}\n{}", logs(&procs));
}

#[test]
fn every_key_shows_its_newest_version_growing_sealed_and_reloaded() {
    let nats = NatsServer::start();
    let (_c, procs, uri) = cluster(&nats);
    let (ok, text) = compat(&["versions", &uri]);
    assert!(ok, "{text}\n{}", logs(&procs));
}

#[test]
fn aliases_name_collections_everywhere_and_refuse_as_milvus_does() {
    let nats = NatsServer::start();
    let (_c, procs, uri) = cluster(&nats);
    let (ok, text) = compat(&["aliases", &uri]);
    assert!(ok, "{text}\n{}", logs(&procs));
}

#[test]
fn rename_keeps_rows_index_load_and_aliases_and_properties_are_altered() {
    let nats = NatsServer::start();
    let (_c, procs, uri) = cluster(&nats);
    let (ok, text) = compat(&["rename", &uri]);
    assert!(ok, "{text}\n{}", logs(&procs));
}

#[test]
fn replicas_segments_index_state_flush_all_and_the_topology_are_reported() {
    let nats = NatsServer::start();
    let mut c = data_cluster(3, &nats);
    // Segments of 50 and 100 rows get an index built (and loaded) too.
    c.set(
        "INDEX_COORD_SEGMENT_MIN_SEGMENT_NUM_ROWS_TO_ENABLE_INDEX",
        "10",
    );
    let mut procs = all_roles(&c);
    let uri = format!("http://127.0.0.1:{}", procs[7].port);
    // A second querynode, for a second replica.
    procs.push(c.start("querynode", &[]));
    common::data::healthy(procs.last().expect("started"));
    let (ok, text) = compat(&["info", &uri]);
    assert!(
        ok && text.contains("info: all checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
}

#[test]
fn index_field_and_database_properties_are_altered_as_milvus_allows() {
    let nats = NatsServer::start();
    let (_c, procs, uri) = cluster(&nats);
    let (ok, text) = compat(&["alter", &uri]);
    assert!(
        ok && text.contains("alter: all checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
}

#[test]
fn calls_users_make_get_milvus_s_answers() {
    let nats = NatsServer::start();
    let (_c, procs, uri) = cluster(&nats);
    let (ok, text) = compat(&["calls", &uri]);
    assert!(ok, "{text}\n{}", logs(&procs));
}

#[test]
fn the_node_sdk_quick_setup_inserts_flushes_and_searches() {
    let node_modules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node/node_modules");
    assert!(
        node_modules.join("@zilliz/milvus2-sdk-node").exists(),
        "the Node SDK is not installed in {}: run scripts/test.sh (it runs npm install in tests/node)",
        node_modules.display()
    );
    let nats = NatsServer::start();
    let (_c, procs, _) = cluster(&nats);
    let out = Command::new("node")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node/quick.js"))
        .arg(format!("127.0.0.1:{}", procs[7].port))
        .output()
        .expect("node is not installed: it runs the Node SDK test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}\n{}", logs(&procs));
    assert!(text.contains("node quick: all checks passed"), "{text}");
}

/// With many collections on one physical channel, a process serving one shard is sent
/// that shard's messages, not every shard's (each reader used to receive the whole
/// channel: with ~800 collections the datanode and querynodes fell behind and flushes
/// stalled for minutes; `cargo bench --bench collections` runs the full size).
#[test]
fn a_shard_s_readers_are_sent_only_its_messages_with_many_collections() {
    let nats = NatsServer::start();
    let mut c = data_cluster(3, &nats);
    c.set("ROOT_COORD_DML_CHANNEL_NUM", "1");
    let procs = all_roles(&c);
    let uri = format!("http://127.0.0.1:{}", procs[7].port);
    let shards = 12;
    let (ok, text) = compat(&["collections", &uri, &shards.to_string()]);
    assert!(ok, "{text}\n{}", logs(&procs));
    let received = |role: &str| -> u64 {
        nats.messages_sent()
            .iter()
            .filter(|(name, _)| name.starts_with(&format!("milvus {role} ")))
            .map(|(_, n)| n)
            .sum()
    };
    let before = (received("datanode"), received("querynode"));
    let inserts = 60;
    let (ok, text) = compat(&["batches", &uri, "mc_0", &inserts.to_string()]);
    assert!(ok, "{text}\n{}", logs(&procs));
    let after = (received("datanode"), received("querynode"));
    let got = (after.0 - before.0, after.1 - before.1);
    println!("messages sent to the datanode / querynode for {inserts} inserts: {got:?}");
    // Each gets the shard's 61 messages, plus the consumers' heartbeats; reading the
    // whole channel once per shard would be 12 times as many.
    let most = 3 * (inserts + 1);
    assert!(
        got.0 < most && got.1 < most,
        "{got:?} messages for {} in the shard: every shard's reader gets the whole channel",
        inserts + 1
    );
}
