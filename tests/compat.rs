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

/// How many index files in the cluster's storage begin with `magic`.
fn index_files(c: &common::Cluster, magic: &[u8]) -> usize {
    let files = common::data::storage_dir(c).join("index_files");
    std::fs::read_dir(&files)
        .expect("index files written")
        .filter_map(|d| std::fs::read(d.ok()?.path().join("index")).ok())
        .filter(|b| b.starts_with(magic))
        .count()
}

/// The most scalar indexes (RTREE included) a querynode's log says its sealed segments
/// had attached at a shard handoff.
fn scalar_indexes_attached(log: &str) -> Option<u64> {
    log.lines()
        .filter(|l| l.contains("querynode shard handoff"))
        .filter_map(|l| {
            l.split("scalar_indexes=")
                .nth(1)?
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .max()
}

/// Scalar indexes are built by indexnodes into index files (`MVSX`), attached by the
/// querynode to its sealed segments, and filters through them answer as reading every row.
#[test]
fn scalar_indexes_are_built_loaded_and_answer_filters_exactly() {
    let nats = NatsServer::start();
    let (c, procs, uri) = cluster(&nats);
    let (ok, text) = compat(&["scalar_filters", &uri]);
    assert!(ok, "{text}\n{}", logs(&procs));
    let scalar_files = index_files(&c, b"MVSX");
    // Five flat fields and four JSON paths (three of a JSON field, one dynamic key).
    assert!(
        scalar_files >= 9 && scalar_files.is_multiple_of(9),
        "one scalar index file per indexed field or JSON path and sealed segment: {scalar_files}"
    );
    let attached = scalar_indexes_attached(&procs[6].log());
    assert_eq!(
        attached,
        Some(scalar_files as u64),
        "every scalar index file attached\n{}",
        procs[6].log()
    );
}

/// GEOMETRY fields: WKT in and out, spatial filters through RTREE indexes (`MVRT` files
/// built by indexnodes, attached by the querynode) answering as reading every row.
#[test]
fn geometry_fields_answer_spatial_filters_through_rtree_indexes() {
    let nats = NatsServer::start();
    let (c, procs, uri) = cluster(&nats);
    let (ok, text) = compat(&["geometry", &uri]);
    assert!(ok, "{text}\n{}", logs(&procs));
    let rtree_files = index_files(&c, b"MVRT");
    assert!(
        rtree_files >= 1,
        "an RTREE index file per sealed segment: {rtree_files}"
    );
    let attached = scalar_indexes_attached(&procs[6].log());
    assert_eq!(
        attached,
        Some(rtree_files as u64),
        "every RTREE file attached\n{}",
        procs[6].log()
    );
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
fn partition_key_rows_go_to_the_partition_their_key_hashes_to() {
    let nats = NatsServer::start();
    let (_c, procs, uri) = cluster(&nats);
    let (ok, text) = compat(&["partition_key", &uri]);
    assert!(
        ok && text.contains("partition_key: all checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
}

#[test]
fn rows_older_than_the_collection_ttl_are_invisible_and_their_segments_dropped() {
    let nats = NatsServer::start();
    let (_c, procs, uri) = cluster(&nats);
    let (ok, text) = compat(&["ttl", &uri]);
    assert!(
        ok && text.contains("ttl: all checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
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

/// The pymilvus releases beyond the pinned 2.5.18 a user gets from `pip install` today;
/// `scripts/test.sh` installs each with `pip install --target .venv/pymilvus-<version>`.
const NEWER_PYMILVUS: [&str; 2] = ["2.6.17", "3.0.2"];

/// The README's pymilvus example (its first ```python block), pointed at `uri`.
fn readme_example(uri: &str) -> PathBuf {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .expect("README.md");
    let start = readme
        .find("```python\n")
        .expect("a python block in README.md")
        + 10;
    let len = readme[start..].find("```").expect("the block ends");
    let code = readme[start..start + len].replace("http://localhost:19530", uri);
    let path = std::env::temp_dir().join(format!("readme_example_{}.py", std::process::id()));
    std::fs::write(&path, code).expect("write the example");
    path
}

#[test]
fn the_quickstart_and_the_readme_example_run_with_every_pymilvus_from_2_5_to_3_0() {
    let nats = NatsServer::start();
    let (_c, procs, uri) = cluster(&nats);
    let python = milvus::testkit::python();
    let venv = python.parent().and_then(|p| p.parent()).expect("venv dir");
    let read_client = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/read_client.py");
    let example = readme_example(&uri);
    for version in ["2.5.18"].into_iter().chain(NEWER_PYMILVUS) {
        let path = venv.join(format!("pymilvus-{version}"));
        if version != "2.5.18" {
            assert!(
                path.join("pymilvus").exists(),
                "pymilvus {version} is not installed in {} (scripts/test.sh installs it)",
                path.display()
            );
        }
        for (what, script, args) in [
            ("quickstart", &read_client, vec!["quickstart", uri.as_str()]),
            ("README example", &example, vec![]),
        ] {
            let out = Command::new(&python)
                .arg(script)
                .args(&args)
                .env("PYTHONPATH", &path)
                .output()
                .expect("run python");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success(),
                "pymilvus {version}, {what}:\n{text}\n{}",
                logs(&procs)
            );
            if what == "quickstart" {
                assert!(
                    text.contains("quickstart: all checks passed"),
                    "pymilvus {version}: {text}"
                );
                let probe = Command::new(&python)
                    .args(["-c", "import pymilvus; print(pymilvus.__version__)"])
                    .env("PYTHONPATH", &path)
                    .output()
                    .expect("run python");
                assert_eq!(
                    String::from_utf8_lossy(&probe.stdout).trim(),
                    version,
                    "the pymilvus under test"
                );
            }
        }
    }
    let _ = std::fs::remove_file(example);
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
    // 2.5.12, and the newest 2.6 and 3.0 under their aliases (tests/node/package.json).
    let sdks = [
        "@zilliz/milvus2-sdk-node",
        "milvus-sdk-2-6",
        "milvus-sdk-3-0",
    ];
    for sdk in sdks {
        assert!(
            node_modules.join(sdk).exists(),
            "the Node SDK {sdk} is not installed in {}: run scripts/test.sh (it runs npm install in tests/node)",
            node_modules.display()
        );
    }
    let nats = NatsServer::start();
    let (_c, procs, _) = cluster(&nats);
    for sdk in sdks {
        let out = Command::new("node")
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node/quick.js"))
            .arg(format!("127.0.0.1:{}", procs[7].port))
            .arg(sdk)
            .output()
            .expect("node is not installed: it runs the Node SDK test");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{sdk}: {text}\n{}", logs(&procs));
        assert!(
            text.contains("node quick: all checks passed"),
            "{sdk}: {text}"
        );
    }
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
