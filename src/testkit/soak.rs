//! The soak: an HA rootcoord pair on a 3-member etcd cluster, clients that allocate
//! timestamps and IDs and create collections without pause, and failovers of mixed kinds
//! (SIGTERM, SIGKILL, SIGSTOP past the TTL, an etcd member restart) one after another.
//! Every call and its answer is recorded, then the history is checked:
//! - no call failed;
//! - timestamps and IDs strictly increase per client and no value is handed out twice;
//! - no two processes served as active at once: no term answered a call sent after a
//!   later term had already answered one;
//! - every acknowledged collection is in the catalog exactly once, and nothing else is.
//!
//! Used by `tests/soak.rs` (20 failovers) and `cargo bench --bench soak` (any number).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::stats::{median_p99, ms};
use super::{EtcdCluster, Milvus, TempDir};
use crate::coord_client::ActiveRootCoord;
use crate::etcd::Etcd;
use crate::proto::milvus as pb;
use crate::proto::rootcoord::AllocRequest;
use crate::session::Keys;
use crate::status::is_ok;

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// Failovers and disruptions to induce, in turn of [`Kind::ALL`].
    pub failovers: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Session TTL of the rootcoords, seconds.
    pub ttl: u64,
}

/// A kind of failure the soak induces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// SIGTERM to the active: a graceful handover.
    Term,
    /// SIGKILL to the active.
    Kill,
    /// SIGSTOP to the active until the standby serves, then SIGCONT.
    Stop,
    /// Restart of one etcd member (the one the cluster's processes use first).
    EtcdRestart,
}

impl Kind {
    /// The order the soak cycles through.
    pub const ALL: [Kind; 4] = [Kind::Kill, Kind::Term, Kind::Stop, Kind::EtcdRestart];
}

/// One recorded call.
#[derive(Debug, Clone)]
struct Call {
    what: &'static str,
    sent: Instant,
    answered: Instant,
    /// `Err(reason)` for a failed call.
    result: Result<Answer, String>,
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
    /// Calls made.
    pub calls: usize,
    /// Failed calls, with their reasons.
    pub failed: Vec<String>,
    /// History violations.
    pub violations: Vec<String>,
    /// Time from the failure until a rootcoord served again, per kind (etcd restarts
    /// that caused no failover are not timed).
    pub takeovers: BTreeMap<String, Vec<Duration>>,
    /// Failures induced.
    pub induced: usize,
    /// Distinct terms that answered.
    pub terms: usize,
    /// Longest time one call took.
    pub max_call: Duration,
}

impl SoakReport {
    /// True when no call failed and the history holds.
    pub fn passed(&self) -> bool {
        self.failed.is_empty() && self.violations.is_empty()
    }

    /// A plain-text summary, one fact per line.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "soak: {} failures induced, {} calls, {} failed, {} history violations, {} terms, longest call {} ms\n",
            self.induced,
            self.calls,
            self.failed.len(),
            self.violations.len(),
            self.terms,
            ms(self.max_call)
        );
        for (kind, times) in &self.takeovers {
            let mut t = times.clone();
            let (median, p99) = median_p99(&mut t);
            out += &format!(
                "  {kind}: {} takeovers, min {} / median {} / p99 {} / max {} ms\n",
                t.len(),
                ms(*t.first().unwrap_or(&Duration::ZERO)),
                ms(median),
                ms(p99),
                ms(*t.last().unwrap_or(&Duration::ZERO))
            );
        }
        for f in self.failed.iter().take(10) {
            out += &format!("  failed: {f}\n");
        }
        for v in self.violations.iter().take(10) {
            out += &format!("  violation: {v}\n");
        }
        out
    }
}

/// Runs the soak with `bin` as the `milvus` binary.
pub fn run(bin: &Path, cfg: &SoakConfig) -> SoakReport {
    let etcd = EtcdCluster::start(3);
    let dir = TempDir::new("soak");
    let env = vec![
        ("ETCD_ENDPOINTS".to_string(), etcd.endpoints()),
        ("COMMON_SESSION_TTL".to_string(), cfg.ttl.to_string()),
        (
            "ROOT_COORD_ENABLE_ACTIVE_STANDBY".to_string(),
            "true".to_string(),
        ),
        ("MILVUS_PID_DIR".to_string(), dir.0.display().to_string()),
        ("LOG_LEVEL".to_string(), "info".to_string()),
    ];
    let mut etcd = etcd;
    let start = |dir: &TempDir| Milvus::start(bin, "rootcoord", &env, &dir.0);
    let mut procs = vec![start(&dir)];
    assert!(
        procs[0].wait_state("Healthy", Duration::from_secs(20)),
        "soak: the first rootcoord never became active:\n{}",
        procs[0].log()
    );
    procs.push(start(&dir));
    assert!(procs[1].wait_state("StandBy", Duration::from_secs(20)));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let etcd_cfg = super::sample::etcd_config(&etcd.endpoints());
    let client_etcd = rt
        .block_on(Etcd::connect(&etcd_cfg))
        .expect("soak: etcd client");
    let stop = Arc::new(AtomicBool::new(false));
    let history: Arc<Mutex<Vec<Vec<Call>>>> = Arc::new(Mutex::new(Vec::new()));
    let retry_for = Duration::from_secs(cfg.ttl * 3 + 10);
    let mut tasks = Vec::new();
    for client in 0..cfg.clients {
        let rc = {
            let _g = rt.enter();
            ActiveRootCoord::new(
                client_etcd.clone(),
                Keys::new("by-dev/meta"),
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
    for n in 0..cfg.failovers {
        std::thread::sleep(Duration::from_millis(300));
        let kind = Kind::ALL[n % Kind::ALL.len()];
        let Some(i) = procs
            .iter()
            .position(|p| p.state().as_deref() == Some("Healthy"))
        else {
            report
                .violations
                .push(format!("no active rootcoord before failure {n}"));
            break;
        };
        let j = 1 - i;
        let t0 = Instant::now();
        match kind {
            Kind::Term | Kind::Kill => {
                procs[i].signal(if kind == Kind::Term {
                    Signal::SIGTERM
                } else {
                    Signal::SIGKILL
                });
                if procs[j].wait_state("Healthy", Duration::from_secs(cfg.ttl * 3 + 5)) {
                    report
                        .takeovers
                        .entry(format!("{kind:?}"))
                        .or_default()
                        .push(t0.elapsed());
                } else {
                    report.violations.push(format!(
                        "failure {n} ({kind:?}): the standby never took over"
                    ));
                }
                let mut dead = std::mem::replace(&mut procs[i], start(&dir));
                dead.wait_exit(Duration::from_secs(5));
                if !procs[i].wait_state("StandBy", Duration::from_secs(20)) {
                    report.violations.push(format!(
                        "failure {n}: the restarted rootcoord never stood by"
                    ));
                }
            }
            Kind::Stop => {
                procs[i].signal(Signal::SIGSTOP);
                let took = procs[j].wait_state("Healthy", Duration::from_secs(cfg.ttl * 3 + 5));
                let elapsed = t0.elapsed();
                procs[i].signal(Signal::SIGCONT);
                if took {
                    report
                        .takeovers
                        .entry("Stop".to_string())
                        .or_default()
                        .push(elapsed);
                } else {
                    report
                        .violations
                        .push(format!("failure {n} (Stop): the standby never took over"));
                }
                if !procs[i].wait_state("StandBy", Duration::from_secs(20)) {
                    report.violations.push(format!(
                        "failure {n}: the resumed rootcoord never stood by again"
                    ));
                }
            }
            Kind::EtcdRestart => {
                etcd.members[0].restart();
            }
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
    let histories = std::mem::take(&mut *history.lock().expect("history lock"));
    let listed = rt.block_on(async {
        let rc = ActiveRootCoord::new(
            client_etcd.clone(),
            Keys::new("by-dev/meta"),
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
    drop(procs);
    report
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
                Ok(s) if is_ok(&s) => Ok(Answer::Created(name)),
                Ok(s) => Err(format!("CreateCollection {name}: {s:?}")),
                Err(e) => Err(format!("CreateCollection {name}: {e}")),
            };
            calls.push(Call {
                what: "create",
                sent,
                answered: Instant::now(),
                result,
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
    for calls in histories {
        let mut last: BTreeMap<&str, u128> = BTreeMap::new();
        for c in calls {
            report.calls += 1;
            report.max_call = report.max_call.max(c.answered - c.sent);
            let answer = match &c.result {
                Ok(a) => a,
                Err(e) => {
                    report.failed.push(e.clone());
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
            for n in &names {
                if !created.contains(n) {
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
