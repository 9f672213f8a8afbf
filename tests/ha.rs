//! Sessions and coordinator active-standby against a real etcd and real processes.

mod common;

use std::time::{Duration, Instant};

use common::{assert_in_order, log_time_ms, text, Cluster};
use milvus::testkit::{wait_until, EtcdCluster, Milvus};
use nix::sys::signal::Signal;

const SEC: Duration = Duration::from_secs(1);

fn healthy(m: &Milvus) -> bool {
    m.state().as_deref() == Some("Healthy")
}

fn epoch(m: &Milvus) -> i64 {
    m.status()
        .and_then(|s| s["epoch"].as_i64())
        .unwrap_or_else(|| panic!("/status of {} has no epoch:\n{}", m.role, m.log()))
}

/// Starts an active (first) and a standby (second) HA rootcoord.
fn active_and_standby(c: &Cluster) -> (Milvus, Milvus) {
    let a = c.rootcoord_ha();
    assert!(
        a.wait_state("Healthy", 10 * SEC),
        "first rootcoord not Healthy:\n{}",
        a.log()
    );
    let b = c.rootcoord_ha();
    assert!(
        b.wait_state("StandBy", 10 * SEC),
        "second rootcoord not StandBy:\n{}",
        b.log()
    );
    (a, b)
}

#[test]
fn two_rootcoords_one_active_one_standby_with_heartbeat() {
    let c = Cluster::new(2);
    let (a, b) = active_and_standby(&c);
    let ida = a.server_id().unwrap();
    let idb = b.server_id().unwrap();
    assert_eq!(c.session_keys(), {
        let mut v = vec![
            "by-dev/meta/session/rootcoord".to_string(),
            format!("by-dev/meta/session/rootcoord-{ida}"),
            format!("by-dev/meta/session/rootcoord-{idb}"),
        ];
        v.sort();
        v
    });
    let active: serde_json::Value = serde_json::from_str(
        &c.etcd_get_prefix("by-dev/meta/session/rootcoord")
            .into_iter()
            .find(|(k, _)| k == "by-dev/meta/session/rootcoord")
            .unwrap()
            .1,
    )
    .unwrap();
    assert_eq!(active["ServerID"], ida);
    assert_eq!(active["ServerName"], "rootcoord");
    assert_eq!(active["Address"], format!("127.0.0.1:{}", a.port));
    assert_eq!(active["Exclusive"], true);
    assert_eq!(active["Stopping"], false);
    assert_eq!(active["TriggerKill"], true);
    assert_eq!(active["Version"], "2.2.16");
    assert_eq!(active["ProjectVersion"], env!("CARGO_PKG_VERSION"));
    assert!(active["LeaseID"].as_i64().unwrap() > 0);
    assert!(active["HostName"].is_string());
    assert!(b.log().contains("serverName: rootcoord enter STANDBY mode"));
    // The standby says so every 10 s.
    assert!(
        wait_until(25 * SEC, || b
            .count_log("serverName: rootcoord is in STANDBY ...")
            >= 2),
        "{}",
        b.log()
    );
    assert!(healthy(&a));
    assert_eq!(b.state().as_deref(), Some("StandBy"));
    // /healthz: 200 for both Healthy and StandBy.
    assert_eq!(
        milvus::testkit::http_get(b.port, "/healthz").unwrap().0,
        200
    );
}

#[test]
fn sigterm_hands_over_at_once_with_the_seed_log_sequence() {
    let c = Cluster::new(10);
    let (mut a, b) = active_and_standby(&c);
    let ida = a.server_id().unwrap();
    let sent = Instant::now();
    a.signal(Signal::SIGTERM);
    assert!(
        b.wait_state("Healthy", 3 * SEC),
        "standby did not take over:\n{}",
        b.log()
    );
    // With TTL 10 s, a takeover this fast can only come from the revoked lease.
    assert!(sent.elapsed() < 3 * SEC);
    assert_eq!(a.wait_exit(5 * SEC).and_then(|s| s.code()), Some(0));
    assert!(a.log().contains("Get signal to exit"));
    assert_in_order(
        &b.log(),
        &[
            "[\"watch the ACTIVE key\"] [DELETE=\"key:\\\"by-dev/meta/session/rootcoord\\\"",
            "stop watching ACTIVE key",
            "start retrying to register as ACTIVE service...",
            "register ACTIVE service successfully\"] [ServerID=",
            "quit STANDBY mode, this node will become ACTIVE",
            "rootcoord switch from standby to active, activating",
            "RootCoord Register Finished",
            "RootCoord start done ...",
            "RootCoord successfully started",
        ],
    );
    let keys = c.session_keys();
    assert!(
        !keys.contains(&format!("by-dev/meta/session/rootcoord-{ida}")),
        "{keys:?}"
    );
    assert!(keys.contains(&"by-dev/meta/session/rootcoord".to_string()));
}

/// A killed active leaves evidence at once (its sockets close, its port refuses, its pid
/// is gone): the standby revokes its lease and takes over long before the lease could
/// have expired (how fast: `cargo bench --bench failover`).
#[test]
fn sigkill_is_taken_over_on_evidence_before_the_lease_can_expire() {
    let c = Cluster::new(10);
    let (a, b) = active_and_standby(&c);
    let killed = Instant::now();
    a.signal(Signal::SIGKILL);
    assert!(b.wait_state("Healthy", 20 * SEC), "{}", b.log());
    let took = killed.elapsed();
    // The last keep-alive was at most TTL/3 before the kill, so the lease could not
    // expire before TTL - TTL/3 = 6.6 s: taking over sooner proves the evidence path.
    assert!(
        took < Duration::from_millis(6600),
        "takeover after {took:?}: the lease's expiry, not the evidence"
    );
    let log = b.log();
    assert!(
        log.contains("is gone; revoked its session lease instead of waiting for its TTL")
            && log.contains("pid "),
        "the standby logged no evidence:\n{log}"
    );
    assert_in_order(
        &log,
        &[
            "is gone; revoked its session lease",
            "register ACTIVE service successfully",
            "quit STANDBY mode, this node will become ACTIVE",
        ],
    );
}

/// A panic anywhere in an active coordinator ends the whole process (logged with where
/// it happened, then SIGABRT), so it is taken over on evidence as a SIGKILL is: a panic
/// that ended only its task would leave a half-dead active holding its lease.
#[test]
fn a_panic_aborts_the_process_and_is_taken_over_on_evidence() {
    use std::os::unix::process::ExitStatusExt;
    let c = Cluster::new(10);
    let ha = ("ROOT_COORD_ENABLE_ACTIVE_STANDBY", "true");
    let mut a = c.start("rootcoord", &[ha, (milvus::crash::TEST_FAULTS_ENV, "1")]);
    assert!(a.wait_state("Healthy", 10 * SEC), "{}", a.log());
    assert!(a.wait_log("test faults armed", 5 * SEC), "{}", a.log());
    let b = c.rootcoord_ha();
    assert!(b.wait_state("StandBy", 10 * SEC), "{}", b.log());
    let sent = Instant::now();
    a.signal(Signal::SIGUSR2);
    let status = a
        .wait_exit(10 * SEC)
        .expect("the panicking rootcoord did not exit");
    assert_eq!(status.signal(), Some(6), "not ended by SIGABRT: {status:?}");
    let log = a.log();
    assert!(
        log.contains("[ERROR]")
            && log.contains("panic: SIGUSR2 with MILVUS_TEST_FAULTS set: a panic on request, aborting the process")
            && log.contains("[location=src/crash.rs:"),
        "the panic was not logged with its place:\n{log}"
    );
    assert!(b.wait_state("Healthy", 20 * SEC), "{}", b.log());
    assert!(
        sent.elapsed() < Duration::from_millis(6600),
        "takeover after {:?}: the lease's expiry, not the evidence",
        sent.elapsed()
    );
    assert!(
        b.log().contains("is gone; revoked its session lease"),
        "{}",
        b.log()
    );
}

#[test]
fn a_paused_active_is_deposed_and_never_serves_again_in_that_term() {
    let c = Cluster::new(2);
    let (a, b) = active_and_standby(&c);
    let old_epoch = epoch(&a);
    let old_id = a.server_id().unwrap();
    a.signal(Signal::SIGSTOP);
    assert!(b.wait_state("Healthy", 4 * SEC), "{}", b.log());
    a.signal(Signal::SIGCONT);
    // From the moment it resumes, it never reports Healthy with its old term.
    let watched_until = Instant::now() + 3 * SEC;
    let mut saw_standby = false;
    while Instant::now() < watched_until {
        if let Some(s) = a.status() {
            let state = s["state"].as_str().unwrap_or("").to_string();
            assert!(
                !(state == "Healthy" && s["epoch"].as_i64() == Some(old_epoch)),
                "deposed active reported Healthy in its old term: {s}"
            );
            if state == "StandBy" && s["ServerID"].as_i64() != Some(old_id) {
                saw_standby = true;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        saw_standby || a.wait_state("StandBy", 3 * SEC),
        "old active did not rejoin as standby:\n{}",
        a.log()
    );
    assert_ne!(a.server_id(), Some(old_id), "rejoined with a new session");
    assert!(healthy(&b));
    assert!(a.log().contains("is no longer ACTIVE"));
    // A paused process is alive: replaced only at its lease's expiry, never on evidence.
    assert!(
        !b.log().contains("is gone; revoked"),
        "a paused active was taken for dead:\n{}",
        b.log()
    );
}

#[test]
fn a_frozen_etcd_makes_the_active_stop_serving_before_the_ttl() {
    let c = Cluster::new(2);
    let (a, b) = active_and_standby(&c);
    c.etcd.pause();
    assert!(
        wait_until(10 * SEC, || !healthy(&a)),
        "active still Healthy with etcd frozen:\n{}",
        a.log()
    );
    c.etcd.resume();
    // Once etcd answers again there is exactly one active.
    assert!(
        wait_until(15 * SEC, || healthy(&a) as u8 + healthy(&b) as u8 == 1
            && c.session_keys()
                .contains(&"by-dev/meta/session/rootcoord".to_string())),
        "no single active after etcd resumed:\nA:\n{}\nB:\n{}",
        a.log(),
        b.log()
    );
    std::thread::sleep(SEC); // and it stays that way
    assert_eq!(healthy(&a) as u8 + healthy(&b) as u8, 1);
    // Never two actives: if the standby took over, it did so after the frozen-out active
    // had stopped acting on its lease (the processes' own log times, one clock).
    let (la, lb) = (a.log(), b.log());
    if let Some(won) = log_time_ms(&lb, "quit STANDBY mode") {
        let stopped = log_time_ms(&la, "session lease lost")
            .expect("the active took no notice of its lost lease");
        assert!(
            stopped <= won,
            "the standby became active at {won} before the old active stopped at {stopped}:\nA:\n{la}\nB:\n{lb}"
        );
    }
}

#[test]
fn exit_on_lease_loss_exits_80() {
    let mut c = Cluster::new(2);
    c.set("COMMON_SESSION_EXIT_ON_LEASE_LOSS", "true");
    let mut a = c.rootcoord_ha();
    assert!(a.wait_state("Healthy", 10 * SEC), "{}", a.log());
    c.etcd.pause();
    let code = a.wait_exit(5 * SEC).and_then(|s| s.code());
    c.etcd.resume();
    assert_eq!(code, Some(80), "{}", a.log());
}

#[test]
fn a_short_etcd_restart_causes_no_failover() {
    let mut c = Cluster::new(6);
    let (a, b) = active_and_standby(&c);
    let e = epoch(&a);
    c.etcd.restart();
    c.etcd.wait_ready();
    std::thread::sleep(4 * SEC);
    assert!(healthy(&a), "{}", a.log());
    assert_eq!(epoch(&a), e);
    assert_eq!(b.state().as_deref(), Some("StandBy"));
}

#[test]
fn a_second_rootcoord_without_ha_exits_and_names_the_holder() {
    let c = Cluster::new(2);
    let a = c.start("rootcoord", &[]);
    assert!(a.wait_state("Healthy", 10 * SEC), "{}", a.log());
    let ida = a.server_id().unwrap();
    let started = Instant::now();
    let mut b = c.start("rootcoord", &[]);
    let code = b.wait_exit(6 * SEC).and_then(|s| s.code());
    let took = started.elapsed();
    assert_eq!(code, Some(1), "{}", b.log());
    assert!(took <= 4 * SEC + SEC / 2, "exited after {took:?}");
    let log = b.log();
    assert!(log.contains(&format!("ServerID={ida}")), "{log}");
    assert!(log.contains(&format!("127.0.0.1:{}", a.port)), "{log}");
    assert!(log.contains("rootCoord.enableActiveStandby=true"), "{log}");
    assert!(healthy(&a));
    assert_eq!(a.server_id(), Some(ida));
}

#[test]
fn three_rootcoords_survive_two_kills() {
    let c = Cluster::new(2);
    let mut procs = vec![c.rootcoord_ha()];
    assert!(procs[0].wait_state("Healthy", 10 * SEC));
    procs.push(c.rootcoord_ha());
    procs.push(c.rootcoord_ha());
    assert!(wait_until(10 * SEC, || procs[1..]
        .iter()
        .all(|p| p.state().as_deref() == Some("StandBy"))));
    for round in 0..2 {
        let i = procs.iter().position(healthy).expect("one active");
        procs[i].signal(Signal::SIGKILL);
        procs.remove(i);
        assert!(
            wait_until(4 * SEC, || procs.iter().filter(|p| healthy(p)).count() == 1),
            "round {round}: no takeover"
        );
        std::thread::sleep(SEC / 2);
        assert_eq!(
            procs.iter().filter(|p| healthy(p)).count(),
            1,
            "round {round}: not exactly one active"
        );
    }
}

#[test]
fn workers_register_per_process_keys_and_status_lists_everything() {
    let c = Cluster::new(2);
    let rc = c.start("rootcoord", &[]);
    let q1 = c.start("querynode", &[]);
    let q2 = c.start("querynode", &[]);
    for p in [&rc, &q1, &q2] {
        assert!(p.wait_state("Healthy", 10 * SEC), "{}", p.log());
    }
    let (id1, id2) = (q1.server_id().unwrap(), q2.server_id().unwrap());
    let keys = c.session_keys();
    assert!(
        keys.contains(&format!("by-dev/meta/session/querynode-{id1}")),
        "{keys:?}"
    );
    assert!(
        keys.contains(&format!("by-dev/meta/session/querynode-{id2}")),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"by-dev/meta/session/rootcoord".to_string()),
        "{keys:?}"
    );

    let o = c.cmd(&["status", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows
        .iter()
        .any(|r| r["role"] == "rootcoord" && r["state"] == "ACTIVE"));
    assert_eq!(
        rows.iter()
            .filter(|r| r["role"] == "querynode" && r["state"] == "worker")
            .count(),
        2
    );
    let table = text(&c.cmd(&["status"]));
    assert!(
        table.contains("ROLE") && table.contains("querynode") && table.contains("ACTIVE"),
        "{table}"
    );

    // `milvus stop querynode` stops both through their pid files; their keys vanish.
    let o = c.cmd(&["stop", "querynode"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(wait_until(3 * SEC, || !c
        .session_keys()
        .iter()
        .any(|k| k.contains("querynode"))));
    assert!(healthy(&rc));
}

#[test]
fn losing_etcd_members_causes_no_failover() {
    let cluster = EtcdCluster::start(3);
    let m = &cluster.members;
    // The coordinators know two members; the third is stopped first.
    let eps = format!("{},{}", m[0].endpoint(), m[1].endpoint());
    let dir = milvus::testkit::TempDir::new("etcd3");
    let env = vec![
        ("ETCD_ENDPOINTS".to_string(), eps),
        ("COMMON_SESSION_TTL".to_string(), "4".to_string()),
        (
            "ROOT_COORD_ENABLE_ACTIVE_STANDBY".to_string(),
            "true".to_string(),
        ),
        ("MILVUS_PID_DIR".to_string(), dir.0.display().to_string()),
    ];
    let a = Milvus::start(&common::bin(), "rootcoord", &env, &dir.0);
    assert!(a.wait_state("Healthy", 10 * SEC), "{}", a.log());
    let b = Milvus::start(&common::bin(), "rootcoord", &env, &dir.0);
    assert!(b.wait_state("StandBy", 10 * SEC), "{}", b.log());
    let e = epoch(&a);
    let mut members = cluster.members;
    members[2].kill();
    std::thread::sleep(5 * SEC);
    assert!(
        healthy(&a) && epoch(&a) == e,
        "failover after losing a member it does not use:\n{}",
        a.log()
    );
    // Bring it back (one member down at a time keeps the quorum), then stop the pinned one.
    members[2].restart();
    members[2].wait_ready();
    members[0].kill();
    std::thread::sleep(6 * SEC);
    assert!(
        healthy(&a) && epoch(&a) == e,
        "failover after losing the member it used:\n{}",
        a.log()
    );
    assert_eq!(b.state().as_deref(), Some("StandBy"));
}

#[test]
fn discovery_follows_the_active_across_a_failover() {
    use milvus::etcd::Etcd;
    use milvus::roles::Role;
    use milvus::session::discovery::{self, SessionView};
    use milvus::session::Keys;

    let c = Cluster::new(10);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cfg = milvus::testkit::sample::etcd_config(&c.etcd.endpoint());
    let etcd = rt.block_on(Etcd::connect(&cfg)).unwrap();
    let keys = Keys::new("by-dev/meta");
    let view = {
        let _guard = rt.enter();
        SessionView::follow(etcd.clone(), keys.clone())
    };
    let (a, b) = active_and_standby(&c);
    let (ida, idb) = (a.server_id().unwrap(), b.server_id().unwrap());
    let active_is = |id: i64| {
        rt.block_on(view.wait_for(5 * SEC, |m| {
            m.get("by-dev/meta/session/rootcoord")
                .is_some_and(|r| r.value.server_id == id)
        }))
    };
    assert!(active_is(ida));
    assert_eq!(view.snapshot().len(), 3);
    let direct = rt
        .block_on(discovery::active(&etcd, &keys, Role::RootCoord))
        .unwrap()
        .unwrap();
    assert_eq!(direct.value.address, format!("127.0.0.1:{}", a.port));
    a.signal(Signal::SIGTERM);
    assert!(
        active_is(idb),
        "view did not follow the takeover: {:?}",
        view.snapshot()
    );
    assert_eq!(
        view.active(Role::RootCoord).unwrap().value.address,
        format!("127.0.0.1:{}", b.port)
    );
    assert!(!view
        .snapshot()
        .contains_key(&format!("by-dev/meta/session/rootcoord-{ida}")));
}

#[test]
fn a_crashed_predecessor_at_the_same_address_is_replaced_at_once() {
    let c = Cluster::new(10);
    let a = c.start("rootcoord", &[]);
    assert!(a.wait_state("Healthy", 10 * SEC), "{}", a.log());
    let port = a.port;
    a.signal(Signal::SIGKILL);
    drop(a);
    // Its key lingers for the TTL (10 s), but it names this very address: purged at once.
    let started = Instant::now();
    let env = c.env();
    let b = Milvus::start_on(&common::bin(), "rootcoord", &env, &c.dir.0, port);
    assert!(b.wait_state("Healthy", 5 * SEC), "{}", b.log());
    assert!(started.elapsed() < 5 * SEC);
    assert!(
        b.log().contains("earlier process at this address"),
        "{}",
        b.log()
    );
}
