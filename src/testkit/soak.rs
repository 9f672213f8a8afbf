//! The soak: a whole cluster in HA (two of each coordinator, two of each worker kind, a
//! proxy) on a 3-member etcd cluster and a nats-server, under a nonstop workload, with
//! failures of every kind one after another (one round is [`ROUND`]): SIGKILL, SIGTERM,
//! SIGSTOP past the TTL and a network partition ([`super::partition`]) of each active
//! coordinator, SIGKILL of a datanode, a querynode and an indexnode, a restart of an etcd
//! member and of nats-server.
//!
//! Two workloads run throughout and their histories are checked afterwards:
//! - rootcoord clients (Rust, straight to the active rootcoord) allocating timestamps and
//!   IDs and creating collections: no call failed; timestamps and IDs strictly increase
//!   per client and no value is handed out twice; no two processes served as active at
//!   once (no term answered a call sent after a later term had already answered one);
//!   every acknowledged collection is in the catalog exactly once, and nothing else is;
//! - pymilvus through the proxy (`tests/python/chaos_client.py`): writers inserting,
//!   upserting, deleting and flushing their own keys, each round checked by a Strong
//!   query; Strong searches checked for well-formed answers with no key deleted before
//!   they were sent; create/describe/list/drop rounds; at the end every acknowledged live
//!   key is read back exactly once with its last acknowledged version, no acknowledged
//!   delete is visible, count(*) agrees, and no call failed.
//!
//! Besides, etcd's own history of the four ACTIVE keys is replayed: a term begins only by
//! creating the key (nobody overwrote a live holder's key), and a paused or partitioned
//! active is never taken over sooner than its lease could have expired, nor on evidence
//! of death.
//!
//! Per failure kind the report gives the takeover time (to the standby serving; for a
//! worker, to its session being gone; for etcd and nats, to the restarted server serving)
//! and the longest client call that overlapped it.
//!
//! Used by `tests/soak.rs` (one round) and `cargo bench --bench soak` (any number).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etcd_client::{EventType, WatchOptions};
use nix::sys::signal::Signal;

use super::partition::Partition;
use super::stats::{median_p99, ms};
use super::{freeze, python, EtcdCluster, Milvus, NatsServer, Spawned, TempDir};
use crate::coord_client::ActiveRootCoord;
use crate::etcd::Etcd;
use crate::proto::milvus as pb;
use crate::proto::rootcoord::AllocRequest;
use crate::session::{Keys, SessionValue};
use crate::status::is_ok;

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// Failures to induce, in the order of [`ROUND`], round after round.
    pub failovers: usize,
    /// Concurrent rootcoord clients.
    pub clients: usize,
    /// pymilvus writer threads.
    pub writers: usize,
    /// Session TTL of every process, seconds.
    pub ttl: u64,
}

/// A kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SIGKILL: of the active coordinator, or of one worker.
    Kill,
    /// SIGTERM to the active coordinator: a graceful handover.
    Term,
    /// SIGSTOP to the active coordinator until the standby serves, then SIGCONT.
    Stop,
    /// The active coordinator cut off the network until the standby serves.
    Partition,
    /// A restart of one etcd member (in turn) or of nats-server.
    Restart,
}

/// The coordinators, each an HA pair.
pub const COORDINATORS: [&str; 4] = ["rootcoord", "datacoord", "querycoord", "indexcoord"];
/// The workers, two of each.
pub const WORKERS: [&str; 3] = ["datanode", "querynode", "indexnode"];

/// One round of failures: every kind on every coordinator, each worker kind killed, an
/// etcd member and nats-server restarted, interleaved so that any run of them mixes
/// targets.
pub const ROUND: [(Kind, &str); 21] = [
    (Kind::Kill, "rootcoord"),
    (Kind::Kill, "querynode"),
    (Kind::Term, "datacoord"),
    (Kind::Stop, "querycoord"),
    (Kind::Partition, "indexcoord"),
    (Kind::Restart, "etcd"),
    (Kind::Kill, "datacoord"),
    (Kind::Kill, "datanode"),
    (Kind::Term, "querycoord"),
    (Kind::Stop, "indexcoord"),
    (Kind::Partition, "rootcoord"),
    (Kind::Restart, "nats"),
    (Kind::Kill, "querycoord"),
    (Kind::Kill, "indexnode"),
    (Kind::Term, "indexcoord"),
    (Kind::Stop, "rootcoord"),
    (Kind::Partition, "datacoord"),
    (Kind::Kill, "indexcoord"),
    (Kind::Term, "rootcoord"),
    (Kind::Stop, "datacoord"),
    (Kind::Partition, "querycoord"),
];

fn label(kind: Kind, target: &str) -> String {
    match kind {
        Kind::Kill => format!("SIGKILL {target}"),
        Kind::Term => format!("SIGTERM {target}"),
        Kind::Stop => format!("SIGSTOP {target}"),
        Kind::Partition => format!("partition {target}"),
        Kind::Restart if target == "etcd" => "restart etcd member".to_string(),
        Kind::Restart => format!("restart {target}"),
    }
}

/// One recorded call.
#[derive(Debug, Clone)]
struct Call {
    what: &'static str,
    sent: Instant,
    answered: Instant,
    /// `Err(reason)` for a failed call.
    result: Result<Answer, String>,
    /// The collection a create names (its outcome is unknown when the call failed).
    creates: Option<String>,
}

#[derive(Debug, Clone)]
enum Answer {
    Timestamps { first: u64, count: u64, epoch: i64 },
    Ids { first: i64, count: u64, epoch: i64 },
    Created(String),
}

/// What the soak saw.
#[derive(Debug, Default)]
pub struct SoakReport {
    /// Calls made (both workloads).
    pub calls: usize,
    /// Failed calls, with their reasons.
    pub failed: Vec<String>,
    /// History violations.
    pub violations: Vec<String>,
    /// Takeover time per failure kind (see the module doc).
    pub takeovers: BTreeMap<String, Vec<Duration>>,
    /// The longest client call that ended after a failure of the kind began and began
    /// before it was over (plus a second), counted for the latest such failure, per
    /// kind, with the call's name; "between failures" for the rest.
    pub stalls: BTreeMap<String, (Duration, String)>,
    /// Failures induced.
    pub induced: usize,
    /// Distinct rootcoord terms that answered.
    pub terms: usize,
    /// Terms per coordinator in etcd's history of the ACTIVE keys.
    pub active_terms: BTreeMap<String, usize>,
    /// Longest time one rootcoord call took.
    pub max_call: Duration,
    /// The data workload's own summary (rows read back, deletes, DDL rounds, ...).
    pub data: String,
}

impl SoakReport {
    /// True when no call failed and the history holds.
    pub fn passed(&self) -> bool {
        self.failed.is_empty() && self.violations.is_empty()
    }

    /// A plain-text summary, one fact per line.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "soak: {} failures induced, {} calls, {} failed, {} history violations, {} rootcoord terms, longest rootcoord call {} ms\n",
            self.induced,
            self.calls,
            self.failed.len(),
            self.violations.len(),
            self.terms,
            ms(self.max_call)
        );
        out += &format!("  data: {}\n", self.data);
        out += &format!("  terms in etcd's ACTIVE keys: {:?}\n", self.active_terms);
        out +=
            "  | failure | count | takeover min / median / p99 / max ms | client stall max ms |\n";
        out += "  |---|---|---|---|\n";
        for (kind, times) in &self.takeovers {
            let mut t = times.clone();
            let (median, p99) = median_p99(&mut t);
            out += &format!(
                "  | {kind} | {} | {} / {} / {} / {} | {} |\n",
                t.len(),
                ms(*t.first().unwrap_or(&Duration::ZERO)),
                ms(median),
                ms(p99),
                ms(*t.last().unwrap_or(&Duration::ZERO)),
                self.stalls
                    .get(kind)
                    .map_or("0".to_string(), |(d, what)| format!("{} ({what})", ms(*d)))
            );
        }
        if let Some((d, what)) = self.stalls.get(BETWEEN) {
            out += &format!("  longest client call {BETWEEN}: {} ms ({what})\n", ms(*d));
        }
        for f in self.failed.iter().take(10) {
            out += &format!("  failed: {f}\n");
        }
        for v in self.violations.iter().take(20) {
            out += &format!("  violation: {v}\n");
        }
        out
    }
}

const BETWEEN: &str = "between failures";

/// The meta root every process of the soak uses.
const META: &str = "by-dev/meta";

/// The cluster's processes by role, and how to start more.
struct Fleet {
    bin: PathBuf,
    env: Vec<(String, String)>,
    dir: TempDir,
    procs: BTreeMap<&'static str, Vec<Milvus>>,
}

impl Fleet {
    fn spawn(&self, role: &str) -> Milvus {
        Milvus::start(&self.bin, role, &self.env, &self.dir.0)
    }

    /// Starts a process of `role` and waits until `/status` says `state`.
    fn up(&self, role: &str, state: &str) -> Milvus {
        let m = self.spawn(role);
        assert!(
            m.wait_state(state, Duration::from_secs(30)),
            "soak: a {role} never became {state}:\n{}",
            m.log()
        );
        m
    }

    /// Puts `m` in the place of `procs[role][i]`; returns the process it replaces.
    fn replace(&mut self, role: &str, i: usize, m: Milvus) -> Milvus {
        let slot = &mut self.procs.get_mut(role).expect("a role of the fleet")[i];
        std::mem::replace(slot, m)
    }

    /// The index of the `role` process that serves as active.
    fn active(&self, role: &str) -> Option<usize> {
        self.procs[role]
            .iter()
            .position(|p| p.state().as_deref() == Some("Healthy"))
    }
}

/// The log line a standby writes when it takes over on evidence of death.
const EVIDENCE: &str = "is gone; revoked";

/// Runs the soak with `bin` as the `milvus` binary.
pub fn run(bin: &Path, cfg: &SoakConfig) -> SoakReport {
    let mut etcd = EtcdCluster::start(3);
    let mut nats = NatsServer::start();
    let dir = TempDir::new("soak");
    let mut env = vec![
        ("ETCD_ENDPOINTS".to_string(), etcd.endpoints()),
        ("NATSMQ_ADDRESS".to_string(), nats.address()),
        ("COMMON_SESSION_TTL".to_string(), cfg.ttl.to_string()),
        ("MILVUS_PID_DIR".to_string(), dir.0.display().to_string()),
        (
            "LOCAL_STORAGE_PATH".to_string(),
            dir.0.join("data").display().to_string(),
        ),
        ("LOG_LEVEL".to_string(), "info".to_string()),
        // Log retention deletes what every reader has passed within a second.
        (
            "DATA_COORD_LOG_RETENTION_GRACE".to_string(),
            "1".to_string(),
        ),
    ];
    for section in ["ROOT_COORD", "DATA_COORD", "QUERY_COORD", "INDEX_COORD"] {
        env.push((format!("{section}_ENABLE_ACTIVE_STANDBY"), "true".into()));
    }
    let mut fleet = Fleet {
        bin: bin.to_path_buf(),
        env,
        dir,
        procs: BTreeMap::new(),
    };
    for role in COORDINATORS {
        let a = fleet.up(role, "Healthy");
        let b = fleet.up(role, "StandBy");
        fleet.procs.insert(role, vec![a, b]);
    }
    for role in WORKERS {
        let pair = vec![fleet.up(role, "Healthy"), fleet.up(role, "Healthy")];
        fleet.procs.insert(role, pair);
    }
    let proxy = fleet.up("proxy", "Healthy");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let etcd_cfg = super::sample::etcd_config(&etcd.endpoints());
    let client_etcd = rt
        .block_on(Etcd::connect(&etcd_cfg))
        .expect("soak: etcd client");
    let keys = Keys::new(META);

    // The data workload, through the proxy.
    let stop_file = fleet.dir.0.join("stop-data-client");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/chaos_client.py");
    let mut data = Spawned::start(
        &python(),
        &[
            &script.display().to_string(),
            &format!("http://127.0.0.1:{}", proxy.port),
            &stop_file.display().to_string(),
            &cfg.writers.to_string(),
        ],
    );
    data.wait_started(Duration::from_secs(120));

    // The rootcoord workload.
    let stop = Arc::new(AtomicBool::new(false));
    let history: Arc<Mutex<Vec<Vec<Call>>>> = Arc::new(Mutex::new(Vec::new()));
    let retry_for = Duration::from_secs(cfg.ttl * 3 + 10);
    let mut tasks = Vec::new();
    for client in 0..cfg.clients {
        let rc = {
            let _g = rt.enter();
            ActiveRootCoord::new(
                client_etcd.clone(),
                keys.clone(),
                retry_for,
                Duration::from_secs(2),
            )
        };
        let (stop, history) = (stop.clone(), history.clone());
        tasks.push(rt.spawn(async move {
            let calls = client_loop(client, rc, stop).await;
            history.lock().expect("history lock").push(calls);
        }));
    }

    let mut report = SoakReport::default();
    let mut windows: Vec<(String, SystemTime, SystemTime)> = Vec::new();
    let limit = Duration::from_secs(cfg.ttl * 3 + 5);
    let (mut etcd_turn, mut worker_turn) = (0usize, 0usize);
    for n in 0..cfg.failovers {
        // A pause between failures, so each one starts from a cluster at work.
        std::thread::sleep(Duration::from_millis(300));
        let (kind, target) = ROUND[n % ROUND.len()];
        let what = label(kind, target);
        let (t0, w0) = (Instant::now(), SystemTime::now());
        let took = if COORDINATORS.contains(&target) {
            coordinator_failure(&mut fleet, kind, target, cfg.ttl, limit, n, &mut report)
        } else if WORKERS.contains(&target) {
            worker_turn += 1;
            let victim = worker_turn / WORKERS.len() % 2;
            let (took, replacement) = kill_worker(&fleet, target, victim, &rt, &client_etcd, limit);
            fleet.replace(target, victim, replacement);
            if took.is_none() {
                report.violations.push(format!(
                    "failure {n} ({what}): the killed worker's session never went away"
                ));
            }
            took
        } else if target == "etcd" {
            let k = etcd_turn % etcd.members.len();
            etcd.members[k].restart();
            etcd_turn += 1;
            Some(t0.elapsed())
        } else {
            nats.restart();
            Some(t0.elapsed())
        };
        windows.push((what.clone(), w0, SystemTime::now()));
        if let Some(t) = took {
            report.takeovers.entry(what).or_default().push(t);
        }
        report.induced += 1;
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    for (client, t) in tasks.into_iter().enumerate() {
        // A client that panicked has no history to check: that is a failure of the soak.
        if let Err(e) = rt.block_on(t) {
            report
                .violations
                .push(format!("client {client} stopped without a history: {e}"));
        }
    }
    std::fs::write(&stop_file, b"stop").expect("soak: stop file");
    let (_, text) = data.finish();
    data_history(&text, &windows, &mut report);

    let histories = std::mem::take(&mut *history.lock().expect("history lock"));
    let listed = rt.block_on(async {
        let rc = ActiveRootCoord::new(
            client_etcd.clone(),
            keys.clone(),
            retry_for,
            Duration::from_secs(2),
        );
        rc.call(
            pb::ShowCollectionsRequest::default(),
            |mut c, r| async move { c.show_collections(r).await },
        )
        .await
        .map(|r| r.collection_names)
    });
    check(&histories, listed, &mut report);
    drop(proxy);
    drop(fleet);
    rt.block_on(active_history(&client_etcd, &mut report));
    report
}

/// One failure of the active `role`: the time until the standby served.
fn coordinator_failure(
    fleet: &mut Fleet,
    kind: Kind,
    role: &'static str,
    ttl: u64,
    limit: Duration,
    n: usize,
    report: &mut SoakReport,
) -> Option<Duration> {
    let what = label(kind, role);
    let mut active = None;
    super::wait_until(Duration::from_secs(30), || {
        active = fleet.active(role);
        active.is_some()
    });
    let Some(i) = active else {
        report
            .violations
            .push(format!("failure {n} ({what}): no active {role} before it"));
        return None;
    };
    let j = 1 - i;
    let verdicts = fleet.procs[role][j].count_log(EVIDENCE);
    let t0 = Instant::now();
    // The time from the failure until the standby answers Healthy, within `limit`.
    let served = |m: &Milvus| {
        m.state_reached(
            "Healthy",
            Duration::from_millis(2),
            limit.saturating_sub(t0.elapsed()),
        )
        .map(|at| at - t0)
    };
    let took = match kind {
        Kind::Kill | Kind::Term => {
            let sig = if kind == Kind::Kill {
                Signal::SIGKILL
            } else {
                Signal::SIGTERM
            };
            fleet.procs[role][i].signal(sig);
            let took = served(&fleet.procs[role][j]);
            let replacement = fleet.spawn(role);
            let mut dead = fleet.replace(role, i, replacement);
            if dead.wait_exit(Duration::from_secs(10)).is_none() {
                report
                    .violations
                    .push(format!("failure {n} ({what}): the {role} did not exit"));
            }
            took
        }
        Kind::Stop | Kind::Partition => {
            let pid = fleet.procs[role][i].pid();
            let cut = if kind == Kind::Stop {
                freeze(pid);
                None
            } else {
                Some(Partition::isolate(pid))
            };
            let took = served(&fleet.procs[role][j]);
            match cut {
                Some(p) => p.heal(),
                None => fleet.procs[role][i].signal(Signal::SIGCONT),
            }
            // A live holder is replaced only once its lease could have expired: its last
            // keep-alive was at most TTL/3 before the failure.
            let early = fleet.procs[role][j].count_log(EVIDENCE) > verdicts
                || took.is_some_and(|t| t < Duration::from_secs(ttl) * 2 / 3);
            if early {
                report.violations.push(format!(
                    "failure {n} ({what}): a live active was taken over early ({took:?})"
                ));
            }
            took
        }
        Kind::Restart => unreachable!("coordinators are not restarted"),
    };
    if took.is_none() {
        report
            .violations
            .push(format!("failure {n} ({what}): the standby never took over"));
    }
    if !fleet.procs[role][i].wait_state("StandBy", Duration::from_secs(30)) {
        report.violations.push(format!(
            "failure {n} ({what}): the old or restarted {role} never stood by again"
        ));
    }
    took
}

/// SIGKILL of `fleet.procs[role][victim]`: the time until its session is gone from etcd
/// (revoked on evidence of its death by its coordinator), and its replacement (Healthy).
fn kill_worker(
    fleet: &Fleet,
    role: &str,
    victim: usize,
    rt: &tokio::runtime::Runtime,
    etcd: &Etcd,
    limit: Duration,
) -> (Option<Duration>, Milvus) {
    let m = &fleet.procs[role][victim];
    let key = m
        .server_id()
        .map(|id| format!("{META}/session/{role}-{id}"));
    let t0 = Instant::now();
    m.signal(Signal::SIGKILL);
    let gone = || {
        let Some(key) = &key else { return false };
        rt.block_on(etcd.get_prefix(key))
            .is_ok_and(|(kvs, _)| !kvs.iter().any(|kv| kv.key() == key.as_bytes()))
    };
    let mut took = None;
    while t0.elapsed() < limit {
        if gone() {
            took = Some(t0.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    (took, fleet.up(role, "Healthy"))
}

/// Folds the data workload's summary (its last output line) into the report, and
/// attributes its slow calls to the failures they overlapped.
fn data_history(text: &str, windows: &[(String, SystemTime, SystemTime)], report: &mut SoakReport) {
    let Some(v) = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
    else {
        report.violations.push(format!(
            "the data client printed no summary:\n{}",
            &text[text.len().saturating_sub(3000)..]
        ));
        return;
    };
    report.calls += v["calls"].as_u64().unwrap_or(0) as usize;
    let strings = |k: &str| -> Vec<String> {
        v[k].as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let failed = v["failed"].as_u64().unwrap_or(0) as usize;
    let mut listed = strings("failures");
    listed.extend((listed.len()..failed).map(|_| "data: (one more failed call)".to_string()));
    report
        .failed
        .extend(listed.into_iter().map(|f| format!("data: {f}")));
    report.violations.extend(
        strings("violations")
            .into_iter()
            .map(|f| format!("data: {f}")),
    );
    report.violations.extend(
        strings("crashed")
            .into_iter()
            .map(|f| format!("data client thread crashed: {f}")),
    );
    report.data = format!(
        "{} rows read back ({} live acknowledged, {} deleted, {} uncertain), {} DDL rounds",
        v["rows"], v["live"], v["deleted"], v["uncertain"], v["ddl_rounds"]
    );
    let unix = |t: &SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
    };
    for s in v["stalls"].as_array().into_iter().flatten() {
        let (Some(start), Some(took), what) = (s[0].as_f64(), s[1].as_f64(), &s[2]) else {
            continue;
        };
        let end = start + took;
        // The latest failure that began before the call ended, if the call began
        // before that failure was over (plus a second).
        let kind = windows
            .iter()
            .rev()
            .find(|(_, a, _)| unix(a) <= end)
            .filter(|(_, _, b)| start <= unix(b) + 1.0)
            .map_or(BETWEEN.to_string(), |(k, _, _)| k.clone());
        let d = Duration::from_secs_f64(took);
        let e = report.stalls.entry(kind).or_default();
        if d > e.0 {
            *e = (d, what.as_str().unwrap_or_default().to_string());
        }
    }
}

/// Replays etcd's history of the four ACTIVE keys: every term began by creating the key,
/// never by overwriting a live holder's.
/// Runs once every process is gone: a marker key written under the sessions' prefix then
/// ends the replay.
async fn active_history(etcd: &Etcd, report: &mut SoakReport) {
    let prefix = format!("{META}/session/");
    let marker = format!("{prefix}~soak-replay-end");
    let m = marker.clone();
    let now = match etcd
        .call(|mut c| async move { c.put(m, "end", None).await })
        .await
    {
        Ok(r) => r.header().map_or(0, |h| h.revision()),
        Err(e) => {
            report
                .violations
                .push(format!("cannot write the replay marker: {e}"));
            return;
        }
    };
    let mut stream = match etcd
        .watch(
            &prefix,
            WatchOptions::new().with_prefix().with_start_revision(1),
        )
        .await
    {
        Ok(s) => s,
        Err(e) => {
            report
                .violations
                .push(format!("cannot replay etcd's history: {e}"));
            return;
        }
    };
    let actives: Vec<String> = COORDINATORS
        .iter()
        .map(|r| format!("{prefix}{r}"))
        .collect();
    let mut holder: BTreeMap<String, i64> = BTreeMap::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.message()).await;
        let resp = match next {
            Ok(Ok(Some(r))) => r,
            other => {
                report
                    .violations
                    .push(format!("etcd's history replay stopped: {other:?}"));
                return;
            }
        };
        if resp.compact_revision() > 0 {
            report
                .violations
                .push("etcd's history was compacted; ACTIVE keys not checked".into());
            return;
        }
        for ev in resp.events() {
            let Some(kv) = ev.kv() else { continue };
            let key = String::from_utf8_lossy(kv.key()).to_string();
            if !actives.contains(&key) {
                continue;
            }
            if ev.event_type() == EventType::Delete {
                holder.remove(&key);
                continue;
            }
            let Ok(v) = SessionValue::parse(&key, kv.value()) else {
                report
                    .violations
                    .push(format!("{key}: not a session value"));
                continue;
            };
            let role = key.rsplit('/').next().unwrap_or_default().to_string();
            match holder.insert(key.clone(), v.server_id) {
                None if kv.version() == 1 => {
                    *report.active_terms.entry(role).or_default() += 1;
                }
                Some(prev) if prev == v.server_id => {}
                prev => report.violations.push(format!(
                    "{key} written by ServerID {} at revision {} while held by {prev:?} (version {})",
                    v.server_id,
                    kv.mod_revision(),
                    kv.version()
                )),
            }
        }
        if resp
            .events()
            .iter()
            .any(|e| e.kv().is_some_and(|kv| kv.mod_revision() >= now))
        {
            return;
        }
    }
}

async fn client_loop(client: usize, rc: ActiveRootCoord, stop: Arc<AtomicBool>) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let count = 1 + (i % 7) as u32;
        let sent = Instant::now();
        let r = rc
            .call(AllocRequest { count }, |mut c, r| async move {
                c.alloc_timestamp(r).await
            })
            .await;
        let result = match r {
            // An answer without a status is not a success.
            Ok(a) if a.status.as_ref().is_some_and(is_ok) => Ok(Answer::Timestamps {
                first: a.timestamp,
                count: u64::from(a.count),
                epoch: a.epoch,
            }),
            Ok(a) => Err(format!("AllocTimestamp: {:?}", a.status)),
            Err(e) => Err(format!("AllocTimestamp: {e}")),
        };
        calls.push(Call {
            what: "ts",
            sent,
            answered: Instant::now(),
            result,
            creates: None,
        });
        let sent = Instant::now();
        let r = rc
            .call(AllocRequest { count }, |mut c, r| async move {
                c.alloc_id(r).await
            })
            .await;
        let result = match r {
            Ok(a) if a.status.as_ref().is_some_and(is_ok) => Ok(Answer::Ids {
                first: a.id,
                count: u64::from(a.count),
                epoch: a.epoch,
            }),
            Ok(a) => Err(format!("AllocID: {:?}", a.status)),
            Err(e) => Err(format!("AllocID: {e}")),
        };
        calls.push(Call {
            what: "id",
            sent,
            answered: Instant::now(),
            result,
            creates: None,
        });
        if i.is_multiple_of(10) {
            let name = format!("soak_{client}_{i}");
            let req = pb::CreateCollectionRequest {
                collection_name: name.clone(),
                schema: super::sample::schema(&name, "8"),
                ..Default::default()
            };
            let sent = Instant::now();
            let r = rc
                .call_write(req, |mut c, r| async move { c.create_collection(r).await })
                .await;
            let result = match r {
                Ok(s) if is_ok(&s) => Ok(Answer::Created(name.clone())),
                Ok(s) => Err(format!("CreateCollection {name}: {s:?}")),
                Err(e) => Err(format!("CreateCollection {name}: {e}")),
            };
            calls.push(Call {
                what: "create",
                sent,
                answered: Instant::now(),
                result,
                creates: Some(name),
            });
        }
    }
    calls
}

/// Checks the recorded history (see the module doc).
fn check(
    histories: &[Vec<Call>],
    listed: Result<Vec<String>, crate::coord_client::CoordError>,
    report: &mut SoakReport,
) {
    // (first, end, epoch) of every range handed out, per kind.
    let mut ranges: BTreeMap<&str, Vec<(u128, u128)>> = BTreeMap::new();
    // Per epoch: latest send among its answers, earliest answer.
    let mut terms: BTreeMap<i64, (Instant, Instant)> = BTreeMap::new();
    let mut created = Vec::new();
    // Collections whose create failed: the outcome is unknown, listed or not (the failed
    // call itself is reported).
    let mut uncertain = Vec::new();
    for calls in histories {
        let mut last: BTreeMap<&str, u128> = BTreeMap::new();
        for c in calls {
            report.calls += 1;
            report.max_call = report.max_call.max(c.answered - c.sent);
            let answer = match &c.result {
                Ok(a) => a,
                Err(e) => {
                    report.failed.push(e.clone());
                    uncertain.extend(c.creates.clone());
                    continue;
                }
            };
            let (first, count, epoch) = match answer {
                Answer::Timestamps {
                    first,
                    count,
                    epoch,
                } => (u128::from(*first), u128::from(*count), *epoch),
                Answer::Ids {
                    first,
                    count,
                    epoch,
                } => (*first as u128, u128::from(*count), *epoch),
                Answer::Created(name) => {
                    created.push(name.clone());
                    continue;
                }
            };
            if let Some(prev) = last.get(c.what) {
                if first < *prev {
                    report.violations.push(format!(
                        "{}: {first} handed out after {prev} to the same client",
                        c.what
                    ));
                }
            }
            last.insert(c.what, first + count);
            ranges
                .entry(c.what)
                .or_default()
                .push((first, first + count));
            let t = terms.entry(epoch).or_insert((c.sent, c.answered));
            t.0 = t.0.max(c.sent);
            t.1 = t.1.min(c.answered);
        }
    }
    for (what, rs) in &mut ranges {
        rs.sort();
        for w in rs.windows(2) {
            if w[1].0 < w[0].1 {
                report.violations.push(format!(
                    "{what}: [{}, {}) and [{}, {}) overlap",
                    w[0].0, w[0].1, w[1].0, w[1].1
                ));
            }
        }
    }
    report.terms = terms.len();
    let epochs: Vec<(&i64, &(Instant, Instant))> = terms.iter().collect();
    for (i, (e1, (last_sent, _))) in epochs.iter().enumerate() {
        for (e2, (_, first_answer)) in &epochs[i + 1..] {
            if last_sent > first_answer {
                report.violations.push(format!(
                    "term {e1} answered a call sent after term {e2} had answered one: two actives at once"
                ));
            }
        }
    }
    match listed {
        Ok(names) => {
            for n in &created {
                let k = names.iter().filter(|x| *x == n).count();
                if k != 1 {
                    report
                        .violations
                        .push(format!("acknowledged collection {n} is listed {k} times"));
                }
            }
            for n in names.iter().filter(|n| n.starts_with("soak_")) {
                if !created.contains(n) && !uncertain.contains(n) {
                    report.violations.push(format!(
                        "collection {n} is listed but was never acknowledged"
                    ));
                }
            }
        }
        Err(e) => report
            .violations
            .push(format!("cannot list the collections at the end: {e}")),
    }
}
