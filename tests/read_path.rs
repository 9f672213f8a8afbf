//! The read path on real processes (etcd, nats-server, milvus, pymilvus 2.5.18):
//! querycoord and querynodes load collections, searches and queries run through the
//! proxy, and they go on while coordinators and a querynode die.

mod common;

use std::time::Duration;

use common::data::{all_roles, data_cluster, finish, healthy, logs, summary, wait_until};
use milvus::testkit::process::Milvus;
use milvus::testkit::{python, NatsServer, Spawned};
use nix::sys::signal::Signal;

const SEC: Duration = Duration::from_secs(1);

fn script() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/read_client.py")
}

/// Runs a mode of the read client to the end: (success, stdout + stderr).
fn read_py(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(python())
        .arg(script())
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn read_spawn(args: &[&str]) -> Spawned {
    let script = script();
    let mut all = vec![script.to_str().expect("UTF-8 path")];
    all.extend_from_slice(args);
    Spawned::start(&python(), &all)
}

#[test]
fn the_milvus_quickstart_runs_unchanged() {
    let nats = NatsServer::start();
    let c = data_cluster(3, &nats);
    let procs = all_roles(&c);
    let uri = format!("http://127.0.0.1:{}", procs[7].port);
    let (ok, text) = read_py(&["quickstart", &uri]);
    assert!(ok, "{text}\n{}", logs(&procs));
    assert!(text.contains("quickstart: all checks passed"), "{text}");
}

#[test]
fn hnsw_recall_filters_range_grouping_iterators_and_hybrid_search_through_the_cluster() {
    let nats = NatsServer::start();
    let c = data_cluster(3, &nats);
    let procs = all_roles(&c);
    let uri = format!("http://127.0.0.1:{}", procs[7].port);
    let (ok, text) = read_py(&["recall", &uri]);
    assert!(ok, "{text}\n{}", logs(&procs));
    println!("{}", summary(&text));
    // Hybrid search over two vector fields, both rerankers, against exact fusion.
    let (ok, text) = read_py(&["hybrid", &uri]);
    assert!(ok, "{text}\n{}", logs(&procs));
    // Grouping search against the same grouping of exact results.
    let (ok, text) = read_py(&["grouping", &uri]);
    assert!(ok, "{text}\n{}", logs(&procs));
    // Binary, float16 and bfloat16 vectors against exact distances, values returned as
    // written, Milvus's refusals.
    let (ok, text) = read_py(&["vector_types", &uri]);
    assert!(ok, "{text}\n{}", logs(&procs));
    // IVF_SQ8, IVF_PQ, SCANN and DISKANN against exact results, and their refusals.
    let (ok, text) = read_py(&["quantized", &uri]);
    assert!(ok, "{text}\n{}", logs(&procs));
    let (ok, text) = read_py(&["varchar_auto_id", &uri]);
    assert!(ok, "{text}\n{}", logs(&procs));
    println!(
        "{}",
        text.lines()
            .filter(|l| l.contains("recall@10"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The sealed segments were searched through their index, loaded from storage: the
    // querynode says how many of its sealed segments have one (and the client saw
    // approximate recall at a small ef).
    let log = procs[6].log();
    let indexed: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("querynode shard") && l.contains("indexed_segments="))
        .filter_map(|l| {
            l.split("indexed_segments=")
                .nth(1)?
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(
        indexed.iter().any(|n| *n > 0),
        "no sealed segment was served with its index:\n{log}"
    );
    // FLAT indexes (L2, COSINE, IP over bits, BIN_FLAT, over float16) were exact above, and
    // their files in storage are headers (kind 8): the querynode searched them over the
    // vectors of the segments it loaded, none refused.
    let files = common::data::storage_dir(&c).join("index_files");
    let vector_files: Vec<Vec<u8>> = std::fs::read_dir(&files)
        .expect("index files written")
        .filter_map(|d| std::fs::read(d.ok()?.path().join("index")).ok())
        .filter(|b| b.starts_with(b"MVIX"))
        .collect();
    let flat: Vec<usize> = vector_files
        .iter()
        .filter(|b| b.get(8) == Some(&8))
        .map(|b| b.len())
        .collect();
    assert!(
        !flat.is_empty() && flat.iter().all(|n| *n == 18),
        "FLAT index files of 18 bytes each: {flat:?}"
    );
    assert!(
        !vector_files.iter().any(|b| b.get(8) == Some(&0)),
        "no FLAT index file holds a copy of the vectors"
    );
    assert!(
        !log.contains("FLAT index does not fit") && !log.contains("could not take"),
        "{log}"
    );
}

#[test]
fn a_strong_query_sees_every_acknowledged_insert_of_another_client() {
    let nats = NatsServer::start();
    let c = data_cluster(3, &nats);
    let procs = all_roles(&c);
    let uri = format!("http://127.0.0.1:{}", procs[7].port);
    let (ok, text) = read_py(&["strong", &uri]);
    assert!(ok, "{text}\n{}", logs(&procs));
}

#[test]
fn searches_never_fail_while_each_coordinator_and_a_querynode_are_killed() {
    let nats = NatsServer::start();
    let mut c = data_cluster(3, &nats);
    c.set("ROOT_COORD_ENABLE_ACTIVE_STANDBY", "true");
    c.set("DATA_COORD_ENABLE_ACTIVE_STANDBY", "true");
    c.set("INDEX_COORD_ENABLE_ACTIVE_STANDBY", "true");
    c.set("QUERY_COORD_ENABLE_ACTIVE_STANDBY", "true");
    // Log retention deletes what every reader has passed within a second, through the kills.
    c.set("DATA_COORD_LOG_RETENTION_GRACE", "1");
    let mut coords = Vec::new();
    for role in ["rootcoord", "datacoord", "indexcoord", "querycoord"] {
        let a = c.start(role, &[]);
        healthy(&a);
        let b = c.start(role, &[]);
        assert!(b.wait_state("StandBy", 10 * SEC), "{}", b.log());
        coords.push((role, a, b));
    }
    let workers: Vec<Milvus> = ["datanode", "indexnode", "querynode", "querynode", "proxy"]
        .iter()
        .map(|r| c.start(r, &[]))
        .collect();
    for m in &workers {
        healthy(m);
    }
    let uri = format!("http://127.0.0.1:{}", workers[4].port);
    let (ok, text) = read_py(&["prepare", &uri, "ha", "20000", "2"]);
    assert!(ok, "{text}\n{}", logs(&workers));
    let mut client = read_spawn(&["search_nonstop", &uri, "ha", "75"]);
    client.wait_started(30 * SEC);
    // Each active coordinator in turn: SIGKILL, the standby takes over, a new standby.
    let mut replacements = Vec::new();
    for (role, active, standby) in &coords {
        active.signal(Signal::SIGKILL);
        assert!(
            standby.wait_state("Healthy", 30 * SEC),
            "{role}: {}",
            standby.log()
        );
        let again = c.start(role, &[]);
        assert!(again.wait_state("StandBy", 10 * SEC), "{}", again.log());
        replacements.push(again);
        std::thread::sleep(2 * SEC);
    }
    // One querynode: its shards move to the other (searches use the other replica meanwhile).
    workers[3].signal(Signal::SIGKILL);
    let third = c.start("querynode", &[]);
    healthy(&third);
    let (ok, text) = finish(client);
    let s = summary(&text);
    println!("{s}");
    assert_eq!(s["failures"], 0, "{text}\n{}", logs(&workers));
    assert!(s["calls"].as_i64().unwrap() > 100, "{text}");
    assert_eq!(s["short"], 0, "{text}");
    assert_eq!(s["deleted_back"], 0, "a deleted row came back: {text}");
    assert!(ok, "the search client failed: {text}");
    // Deleted rows never come back; count(*) = inserted - deleted, after a flush (handoff
    // of the growing rows) and a querynode restart.
    let (ok, text) = common::data::py(&["flush_count", &uri, "ha"]);
    assert!(ok, "{text}");
    workers[2].signal(Signal::SIGKILL);
    let fourth = c.start("querynode", &[]);
    healthy(&fourth);
    // Every (replica, shard) is served again, by live querynodes only, before the check:
    // else the proxy answers from the surviving replica and a moved shard that lost its
    // deletes goes unseen.
    let live = [third.server_id().unwrap(), fourth.server_id().unwrap()];
    let served = || {
        let records = c.etcd_get_prefix("by-dev/meta/querynode-serving/");
        let nodes: Vec<i64> = records
            .iter()
            .filter_map(|(k, _)| k.rsplit('/').next()?.parse().ok())
            .collect();
        records.len() == 4 && nodes.iter().all(|n| live.contains(n))
    };
    assert!(
        wait_until(60 * SEC, served),
        "the dead querynode's shards were not served again: {:?}",
        c.etcd_get_prefix("by-dev/meta/querynode-serving/")
    );
    let ok = wait_until(60 * SEC, || {
        let (ok, text) = read_py(&["verify", &uri, "ha"]);
        ok && summary(&text)["count"] == 19800 && summary(&text)["deleted_back"] == 0
    });
    let (_, text) = read_py(&["verify", &uri, "ha"]);
    assert!(ok, "{text}\n{}\n{}", third.log(), fourth.log());
}

/// A SIGKILLed querynode or datanode is replaced on evidence of its death (§2.8): its
/// coordinator revokes its session lease, its shards or channels move, and searches and
/// flushes work again long before the 30 s TTL could expire. A paused querynode keeps its
/// session (no evidence).
#[test]
fn killed_workers_are_replaced_on_evidence_before_their_ttl_and_a_paused_one_is_not() {
    const TTL: Duration = Duration::from_secs(30);
    let nats = NatsServer::start();
    let c = data_cluster(TTL.as_secs(), &nats);
    let roles = [
        "rootcoord",
        "datacoord",
        "indexcoord",
        "querycoord",
        "datanode",
        "datanode",
        "indexnode",
        "querynode",
        "querynode",
        "proxy",
    ];
    let procs: Vec<Milvus> = roles.iter().map(|r| c.start(r, &[])).collect();
    for m in &procs {
        healthy(m);
    }
    let (datacoord, querycoord) = (&procs[1], &procs[3]);
    let uri = format!("http://127.0.0.1:{}", procs[9].port);
    let (ok, text) = read_py(&["prepare", &uri, "w", "4000", "1"]);
    assert!(ok, "{text}\n{}", logs(&procs));
    let session_of =
        |m: &Milvus, role: &str| format!("by-dev/meta/session/{role}-{}", m.server_id().unwrap());
    let has_key = |key: &str| c.session_keys().iter().any(|k| k == key);

    // A querynode: its lease revoked, its shards served by the other, searches answer.
    let (qn, other_qn) = (&procs[7], &procs[8]);
    let key = session_of(qn, "querynode");
    assert!(has_key(&key), "{:?}", c.session_keys());
    let killed = std::time::Instant::now();
    qn.signal(Signal::SIGKILL);
    assert!(
        wait_until(TTL / 2, || !has_key(&key)),
        "the killed querynode's session outlived half its TTL: {:?}\n{}",
        c.session_keys(),
        querycoord.log()
    );
    assert!(
        querycoord.wait_log("the querynode is gone; revoked its session lease", 5 * SEC),
        "{}",
        querycoord.log()
    );
    let live = other_qn.server_id().unwrap();
    let served_by_live = || {
        let records = c.etcd_get_prefix("by-dev/meta/querynode-serving/");
        records.len() == 2
            && records
                .iter()
                .all(|(k, _)| k.rsplit('/').next() == Some(live.to_string().as_str()))
    };
    assert!(
        wait_until(TTL, served_by_live),
        "{:?}",
        c.etcd_get_prefix("by-dev/meta/querynode-serving/")
    );
    let (ok, text) = read_py(&["verify", &uri, "w"]);
    assert!(ok && summary(&text)["count"] == 3960, "{text}");
    let moved = killed.elapsed();
    println!("querynode SIGKILL to a Strong count served by the other: {moved:?}");
    assert!(moved < TTL, "{moved:?}");

    // A datanode: its channels consumed by the other, a flush completes.
    let dn = &procs[4];
    let key = session_of(dn, "datanode");
    let killed = std::time::Instant::now();
    dn.signal(Signal::SIGKILL);
    assert!(
        wait_until(TTL / 2, || !has_key(&key)),
        "the killed datanode's session outlived half its TTL\n{}",
        datacoord.log()
    );
    assert!(
        datacoord.wait_log("the datanode is gone; revoked its session lease", 5 * SEC),
        "{}",
        datacoord.log()
    );
    let (ok, text) = read_py(&["grow", &uri, "w", "4000", "1000"]);
    assert!(
        ok && summary(&text)["count"] == 4960,
        "{text}\n{}",
        logs(&procs)
    );
    let moved = killed.elapsed();
    println!("datanode SIGKILL to a flush of every channel and a Strong count: {moved:?}");
    assert!(moved < TTL, "{moved:?}");

    // A paused querynode: no evidence, its session stays.
    let key = session_of(other_qn, "querynode");
    other_qn.signal(Signal::SIGSTOP);
    let kept = !wait_until(5 * SEC, || !has_key(&key));
    other_qn.signal(Signal::SIGCONT);
    assert!(
        kept,
        "a paused querynode lost its session: {:?}",
        c.session_keys()
    );
    assert_eq!(
        querycoord
            .log()
            .matches("the querynode is gone; revoked its session lease")
            .count(),
        1,
        "{}",
        querycoord.log()
    );
}
