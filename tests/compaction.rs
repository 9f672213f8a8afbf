//! Compaction on real etcd, nats-server, object storage and every role, through
//! pymilvus: small segments merged automatically and by `compact`, deleted and
//! superseded rows gone from the data, reads during the switch seeing every live row
//! once, the old files collected; the datanode running a compaction SIGKILLed with the
//! active datacoord and the querynode: the plan is run again by another datanode, every
//! row once.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::data::{all_roles, data_cluster, logs, run_script, storage_dir};
use milvus::testkit::{wait_until, NatsServer};
use nix::sys::signal::Signal;

fn compat(args: &[&str]) -> (bool, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/compat_client.py");
    run_script(&script, args)
}

/// The segments with a file under `insert_log/`.
fn segment_dirs(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(colls) = std::fs::read_dir(root.join("insert_log")) else {
        return out;
    };
    for coll in colls.flatten() {
        for part in std::fs::read_dir(coll.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            for seg in std::fs::read_dir(part.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let files = std::fs::read_dir(seg.path()).into_iter().flatten().count();
                if files > 0 {
                    out.push(seg.file_name().to_string_lossy().into_owned());
                }
            }
        }
    }
    out.sort();
    out
}

/// The files under `delta_log/`.
fn delta_files(root: &Path) -> usize {
    let Ok(colls) = std::fs::read_dir(root.join("delta_log")) else {
        return 0;
    };
    colls
        .flatten()
        .map(|c| std::fs::read_dir(c.path()).into_iter().flatten().count())
        .sum()
}

/// The value of `[key=value]` in a log line ("" when absent).
fn logged(line: &str, key: &str) -> String {
    let tag = format!("[{key}=");
    line.split(&tag)
        .nth(1)
        .and_then(|t| t.split(']').next())
        .unwrap_or_default()
        .to_string()
}

/// The segment ID a script printed after "segment ".
fn printed_segment(text: &str) -> String {
    text.rsplit("segment ")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn small_segments_merge_deleted_rows_go_and_reads_see_each_row_once_throughout() {
    let nats = NatsServer::start();
    let mut c = data_cluster(3, &nats);
    c.set("DATA_COORD_COMPACTION_MIX_TRIGGER_INTERVAL", "2");
    c.set("DATA_COORD_GC_INTERVAL", "1");
    c.set("DATA_COORD_GC_DROP_TOLERANCE", "1");
    c.set("DATA_COORD_COMPACTION_DELTA_RETENTION", "1");
    let procs = all_roles(&c);
    let uri = format!("http://127.0.0.1:{}", procs[7].port);
    let (ok, text) = compat(&["compaction", &uri, "auto"]);
    assert!(
        ok && text.contains("compaction: auto checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
    println!("{text}");
    let (datacoord, datanode) = (1, 4);
    // Each line is written after the effect the client saw (the plan in etcd, the
    // merged segment registered): waited for, not read at once.
    assert!(
        procs[datacoord].wait_log("compaction planned", Duration::from_secs(10)),
        "{}",
        logs(&procs)
    );
    assert!(
        procs[datanode].wait_log("compaction finished", Duration::from_secs(10)),
        "{}",
        logs(&procs)
    );
    let (ok, text) = compat(&["compaction", &uri, "manual"]);
    assert!(
        ok && text.contains("compaction: manual checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
    // The replaced segments' files are collected; the compacted segment's stays.
    let seg = printed_segment(&text);
    let root = storage_dir(&c);
    assert!(
        wait_until(Duration::from_secs(30), || segment_dirs(&root)
            == vec![seg.clone()]),
        "insert_log holds {:?}, expected only segment {seg}\n{}",
        segment_dirs(&root),
        logs(&procs)
    );
    // The delete records, applied to the one segment left, are dropped and collected.
    assert!(
        wait_until(Duration::from_secs(30), || delta_files(&root) == 0),
        "delta_log still holds {} files\n{}",
        delta_files(&root),
        logs(&procs)
    );
    assert!(
        procs[datacoord]
            .log()
            .contains("delete record applied to every segment: dropped"),
        "{}",
        logs(&procs)
    );
    // Merged indexed segments: the merged segment's graph starts from its sources'
    // (the largest's as it is, the others merged into it), and their index files go once
    // the merged build is recorded.
    let (ok, text) = compat(&["compaction", &uri, "seeded"]);
    assert!(
        ok && text.contains("compaction: seeded checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
    let merged = printed_segment(&text);
    let indexnode = &procs[5];
    let started = "index build started from the graphs of segments compacted into this one";
    let line = indexnode
        .log()
        .lines()
        .find(|l| l.contains(started) && logged(l, "segment") == merged)
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no seeded build of segment {merged}\n{}", logs(&procs)));
    // The largest source (1,600 rows) first, after none, one or both of the others (the
    // plan orders its segments); the others' builds, when finished before the merge.
    assert_eq!(logged(&line, "seed_rows"), "1600", "{line}");
    assert!(
        ["0", "1100", "1300", "2400"].contains(&logged(&line, "first_row").as_str()),
        "{line}"
    );
    let seeds = logged(&line, "seed_builds");
    assert_eq!(
        seeds.split(',').count().to_string(),
        logged(&line, "seeds"),
        "{line}"
    );
    let index_file = |build: &str| root.join("index_files").join(build).join("index");
    let build = logged(&line, "build");
    for seed in seeds.split(',') {
        assert!(
            wait_until(Duration::from_secs(30), || !index_file(seed).exists()),
            "the seed build's files stay: {:?}\n{}",
            index_file(seed),
            logs(&procs)
        );
    }
    assert!(index_file(&build).exists(), "{line}");
    // A clustering compaction rewrites a clustering-key collection in key order.
    let storage = root.display().to_string();
    let (ok, text) = compat(&["compaction", &uri, "clustering", &storage]);
    assert!(
        ok && text.contains("compaction: clustering checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
    // Deleted keys stay deleted for a querynode that loads the collection afresh.
    let (ok, text) = compat(&["compaction", &uri, "reload"]);
    assert!(
        ok && text.contains("compaction: reload checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
}

#[test]
fn the_datanode_running_a_compaction_the_active_datacoord_and_the_querynode_killed_every_row_once()
{
    let nats = NatsServer::start();
    let mut c = data_cluster(3, &nats);
    // Manual compaction only: the kill lands on the plan the test starts.
    c.set("DATA_COORD_COMPACTION_ENABLE_AUTO_COMPACTION", "false");
    c.set("DATA_COORD_ENABLE_ACTIVE_STANDBY", "true");
    c.set("DATA_COORD_GC_INTERVAL", "1");
    c.set("DATA_COORD_GC_DROP_TOLERANCE", "1");
    c.set("DATA_COORD_GC_MISSING_TOLERANCE", "6");
    // Each datanode holds a written compaction 2 s before registering it: the kill lands
    // there (output in storage, not in the catalog) however fast the merge is. Under half
    // the missing tolerance, as a writer registers files only while that young.
    c.set(milvus::crash::TEST_FAULTS_ENV, "1");
    c.set(milvus::crash::COMPACTION_HOLD_ENV, "2000");
    let mut procs = all_roles(&c);
    let uri = format!("http://127.0.0.1:{}", procs[7].port);
    // A second datanode and a standby datacoord.
    procs.push(c.start("datanode", &[]));
    procs.push(c.start("datacoord", &[]));
    common::data::healthy(&procs[8]);
    assert!(
        procs[9].wait_state("StandBy", Duration::from_secs(10)),
        "{}",
        procs[9].log()
    );
    let (ok, text) = compat(&["compaction", &uri, "kill-write"]);
    assert!(ok, "{text}\n{}", logs(&procs));
    let job = text
        .rsplit("started ")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    // The datanode that ran the plan is killed once its output is written and before it
    // registers it, with the active datacoord.
    const HOLDING: &str = "compaction output written, holding its registration";
    let mut running = None;
    assert!(
        wait_until(Duration::from_secs(60), || {
            running = [4usize, 8]
                .into_iter()
                .find(|i| procs[*i].log().contains(HOLDING));
            running.is_some()
        }),
        "no datanode wrote the compaction's output\n{}",
        logs(&procs)
    );
    let victim = running.expect("found");
    procs[victim].signal(Signal::SIGKILL);
    procs[1].signal(Signal::SIGKILL);
    // And the querynode serving the collection: its replacement loads whatever the
    // records say when it starts, before or after the compaction's switch.
    procs[6].signal(Signal::SIGKILL);
    procs.push(c.start("querynode", &[]));
    common::data::healthy(procs.last().expect("started"));
    assert!(
        !procs[victim].log().contains("compaction finished"),
        "the compaction finished before its datanode was killed: the kill did not land mid-run\n{}",
        logs(&procs)
    );
    let survivor = if victim == 4 { 8 } else { 4 };
    let (ok, text) = compat(&["compaction", &uri, "kill-verify", &job]);
    assert!(
        ok && text.contains("compaction: kill checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
    // The line follows the registration the client saw: waited for.
    assert!(
        wait_until(Duration::from_secs(10), || procs[survivor]
            .log()
            .contains("compaction finished")),
        "the other datanode ran the plan again\n{}",
        logs(&procs)
    );
    // No orphaned file once GC ran: the killed datanode's unregistered output (if it got
    // that far) and the replaced segments' files are gone, the new segment's stays.
    let seg = printed_segment(&text);
    let root = storage_dir(&c);
    assert!(
        wait_until(Duration::from_secs(30), || segment_dirs(&root)
            == vec![seg.clone()]),
        "insert_log holds {:?}, expected only segment {seg}\n{}",
        segment_dirs(&root),
        logs(&procs)
    );
}

/// A compaction's new segment whose index is not built yet (the indexnode is down): its
/// sources stand in for it. DescribeIndex counts its rows as indexed through them, the
/// querynode keeps serving them, and a querynode loading afresh loads them (with the
/// delete records they need, which the datacoord keeps though the new segment applied
/// them, for as long as the sources may stand in) instead of the unindexed segment; once
/// its index is built the new segment replaces them.
#[test]
fn a_compacted_segment_s_indexed_sources_stand_in_while_its_index_is_built() {
    let nats = NatsServer::start();
    let mut c = data_cluster(3, &nats);
    c.set("DATA_COORD_COMPACTION_ENABLE_AUTO_COMPACTION", "false");
    c.set("DATA_COORD_GC_INTERVAL", "1");
    // Delete records applied to every Flushed segment go a second after their deletes.
    c.set("DATA_COORD_COMPACTION_DELTA_RETENTION", "1");
    let mut procs = all_roles(&c);
    let uri = format!("http://127.0.0.1:{}", procs[7].port);
    let (datacoord, indexnode) = (1, 5);
    let (ok, text) = compat(&["compaction", &uri, "standin-write"]);
    assert!(
        ok && text.contains("compaction: standin-write checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
    procs[indexnode].signal(Signal::SIGKILL);
    let (ok, text) = compat(&["compaction", &uri, "standin-compact"]);
    assert!(
        ok && text.contains("compaction: standin-compact checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
    // The merged segment applied the deletes, but its sources, which a loading querynode
    // loads in its place, did not: their delete record stays (its retention, a second,
    // and several datacoord passes go by).
    let dropped = "delete record applied to every segment: dropped";
    assert!(
        !wait_until(Duration::from_secs(5), || procs[datacoord]
            .log()
            .contains(dropped)),
        "{}",
        logs(&procs)
    );
    let (ok, text) = compat(&["compaction", &uri, "standin-reload"]);
    assert!(
        ok && text.contains("compaction: standin-reload checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
    let querynode = 6;
    assert!(
        procs[querynode].log().contains(
            "querynode loads the indexed segments a compaction replaced while the new segment's index is built"
        ),
        "{}",
        logs(&procs)
    );
    let of = |key: &str| {
        text.split(&format!("; {key} "))
            .nth(1)
            .and_then(|t| t.split([' ', ';', '\n']).next())
            .unwrap_or_default()
            .to_string()
    };
    let (merged, fresh) = (of("segment"), of("fresh"));
    let indexcoord = 3;
    let created = format!("[segment={fresh}]");
    assert!(
        wait_until(Duration::from_secs(10), || procs[indexcoord]
            .log()
            .lines()
            .any(|l| l.contains("index build created") && l.contains(&created))),
        "no build of segment {fresh}\n{}",
        logs(&procs)
    );
    let assigned_before = procs[indexcoord]
        .log()
        .matches("index build assigned")
        .count();
    procs.push(c.start("indexnode", &[]));
    let (ok, text) = compat(&["compaction", &uri, "standin-built"]);
    assert!(
        ok && text.contains("compaction: standin-built checks passed"),
        "{text}\n{}",
        logs(&procs)
    );
    // The segment flushed while the indexnode was down, which nothing stands in for,
    // was given out before the merged segment, whose build was made first.
    let log = procs[indexcoord].log();
    let order: Vec<String> = log
        .lines()
        .filter(|l| l.contains("index build assigned"))
        .skip(assigned_before)
        .map(|l| logged(l, "segment"))
        .filter(|s| *s == merged || *s == fresh)
        .collect();
    assert_eq!(
        order.first().map(String::as_str),
        Some(fresh.as_str()),
        "assignments after the indexnode came back {order:?} (merged {merged}, fresh {fresh})\n{log}"
    );
    assert!(order.contains(&merged), "{order:?}\n{log}");
}
