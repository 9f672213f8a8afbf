//! The HA core under the conditions that broke it: retried changes, catalogs past the
//! gRPC message limit, Milvus's own session TTL, shared advertised addresses, and
//! allocator bounds written late. Real etcd, real `milvus` processes.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Cluster;
use milvus::proto::common::{KeyValuePair, Status};
use milvus::proto::milvus as pb;
use milvus::proto::rootcoord::root_coord_client::RootCoordClient;
use milvus::proto::rootcoord::AllocRequest;
use milvus::testkit::milvus_client::channel;
use milvus::testkit::{runtime, sample, wait_until, Milvus};
use nix::sys::signal::Signal;
use tonic::Request;

const SEC: Duration = Duration::from_secs(1);

/// A request carrying `requestid: id`.
fn with_id<T>(message: T, id: &str) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut()
        .insert("requestid", id.parse().expect("ascii id"));
    r
}

fn db_req(name: &str) -> pb::CreateDatabaseRequest {
    pb::CreateDatabaseRequest {
        db_name: name.into(),
        ..Default::default()
    }
}

fn drop_db_req(name: &str) -> pb::DropDatabaseRequest {
    pb::DropDatabaseRequest {
        db_name: name.into(),
        ..Default::default()
    }
}

fn assert_ok(s: &Status, what: &str) {
    assert!(s.code == 0 && s.error_code == 0, "{what}: {s:?}");
}

async fn keys_under(e: &mut etcd_client::Client, prefix: &str) -> Vec<String> {
    let opts = etcd_client::GetOptions::new()
        .with_prefix()
        .with_keys_only();
    let resp = tokio::time::timeout(5 * SEC, e.get(prefix, Some(opts)))
        .await
        .expect("etcd get timed out")
        .unwrap();
    resp.kvs()
        .iter()
        .map(|kv| String::from_utf8_lossy(kv.key()).to_string())
        .collect()
}

#[test]
fn a_repeated_request_id_is_applied_once_and_names_are_keys_in_etcd() {
    let c = Cluster::new(2);
    let a = c.rootcoord_ha();
    assert!(a.wait_state("Healthy", 10 * SEC), "{}", a.log());
    let rt = runtime();
    rt.block_on(async {
        let mut rc = RootCoordClient::new(channel(a.port));
        let mut e = etcd_client::Client::connect([c.etcd.endpoint()], None)
            .await
            .unwrap();
        let first = rc
            .create_database(with_id(db_req("db1"), "t-1"))
            .await
            .unwrap();
        assert_ok(first.get_ref(), "create db1");
        assert!(keys_under(&mut e, "by-dev/meta/root-coord/names/database/")
            .await
            .contains(&"by-dev/meta/root-coord/names/database/db1".to_string()));
        assert_eq!(
            keys_under(&mut e, "by-dev/meta/root-coord-requests/").await,
            vec!["by-dev/meta/root-coord-requests/t-1".to_string()]
        );
        // The same request again (a retry after an unknown outcome): recorded answer.
        let again = rc
            .create_database(with_id(db_req("db1"), "t-1"))
            .await
            .unwrap();
        assert_ok(again.get_ref(), "repeated create db1");
        // Another request with the same name is a real duplicate.
        let dup = rc
            .create_database(with_id(db_req("db1"), "t-2"))
            .await
            .unwrap();
        assert_eq!(dup.get_ref().code, 1100, "{dup:?}");
        let dropped = rc
            .drop_database(with_id(drop_db_req("db1"), "t-3"))
            .await
            .unwrap();
        assert_ok(dropped.get_ref(), "drop db1");
        assert!(
            keys_under(&mut e, "by-dev/meta/root-coord/names/database/db1")
                .await
                .is_empty()
        );
        // A late retry of the first create must not bring db1 back.
        let late = rc
            .create_database(with_id(db_req("db1"), "t-1"))
            .await
            .unwrap();
        assert_ok(late.get_ref(), "late retry of create db1");
        let dbs = rc
            .list_databases(pb::ListDatabasesRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(dbs.db_names, vec!["default".to_string()]);
        // A request ID that is not an ID is refused, and nothing is created.
        let bad = rc
            .create_database(with_id(db_req("db2"), "a/b"))
            .await
            .unwrap();
        assert_eq!(bad.get_ref().code, 1100, "{bad:?}");
        assert!(bad.get_ref().reason.contains("request ID"), "{bad:?}");
        // Collections and partitions have name keys too; drops remove them.
        let mut create = pb::CreateCollectionRequest {
            collection_name: "c1".into(),
            schema: sample::schema("c1", "8"),
            ..Default::default()
        };
        assert_ok(
            rc.create_collection(with_id(create.clone(), "t-4"))
                .await
                .unwrap()
                .get_ref(),
            "create c1",
        );
        let names = keys_under(&mut e, "by-dev/meta/root-coord/names/").await;
        assert!(
            names.iter().any(|k| k.ends_with("/names/collection/1/c1")),
            "{names:?}"
        );
        assert!(names.iter().any(|k| k.ends_with("/_default")), "{names:?}");
        // Same name and schema again under a new ID: Milvus's idempotent success.
        assert_ok(
            rc.create_collection(with_id(create.clone(), "t-5"))
                .await
                .unwrap()
                .get_ref(),
            "identical create c1",
        );
        create.schema = sample::schema("c1", "16");
        let differs = rc.create_collection(with_id(create, "t-6")).await.unwrap();
        assert_eq!(differs.get_ref().code, 1100, "{differs:?}");
        let drop = pb::DropCollectionRequest {
            collection_name: "c1".into(),
            ..Default::default()
        };
        assert_ok(
            rc.drop_collection(with_id(drop, "t-7"))
                .await
                .unwrap()
                .get_ref(),
            "drop c1",
        );
        let names = keys_under(&mut e, "by-dev/meta/root-coord/names/").await;
        assert_eq!(
            names,
            vec!["by-dev/meta/root-coord/names/database/default".to_string()]
        );
    });
}

/// 8-byte big-endian nanoseconds, as the allocators store their bound.
fn bound_bytes(ms: u64) -> Vec<u8> {
    (ms * 1_000_000).to_be_bytes().to_vec()
}

#[test]
fn the_saved_allocator_bound_is_never_lowered_and_the_next_active_starts_above_it() {
    let c = Cluster::new(2);
    let a = c.rootcoord_ha();
    assert!(a.wait_state("Healthy", 10 * SEC), "{}", a.log());
    let b = c.rootcoord_ha();
    assert!(b.wait_state("StandBy", 10 * SEC));
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let future = now_ms + 3_600_000;
    let rt = runtime();
    rt.block_on(async {
        let mut e = etcd_client::Client::connect([c.etcd.endpoint()], None)
            .await
            .unwrap();
        e.put("by-dev/kv/tso/timestamp", bound_bytes(future), None)
            .await
            .unwrap();
        // The active keeps renewing its own, lower bound: a conditional write never
        // replaces the higher one.
        let mut rc = RootCoordClient::new(channel(a.port));
        for _ in 0..20 {
            let r = rc
                .alloc_timestamp(AllocRequest { count: 1000 })
                .await
                .unwrap();
            assert_ok(r.get_ref().status.as_ref().unwrap(), "alloc");
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        let stored = e.get("by-dev/kv/tso/timestamp", None).await.unwrap();
        assert_eq!(stored.kvs()[0].value(), bound_bytes(future).as_slice());
    });
    a.signal(Signal::SIGTERM);
    assert!(b.wait_state("Healthy", 5 * SEC), "{}", b.log());
    rt.block_on(async {
        let mut rc = RootCoordClient::new(channel(b.port));
        let r = rc.alloc_timestamp(AllocRequest { count: 1 }).await.unwrap();
        let ts = r.get_ref().timestamp;
        assert!(
            ts >> 18 > future,
            "new active started below the saved bound: {ts}"
        );
        // More than one millisecond's logical space is refused with the limit named.
        let too_many = rc
            .alloc_timestamp(AllocRequest { count: 1 << 18 })
            .await
            .unwrap();
        let st = too_many.get_ref().status.clone().unwrap();
        assert_eq!(st.code, 1100, "{st:?}");
        assert!(st.reason.contains("262143"), "{st:?}");
    });
}

#[test]
fn a_catalog_past_the_grpc_message_limit_activates_and_serves() {
    let c = Cluster::new(2);
    let a = c.rootcoord_ha();
    assert!(a.wait_state("Healthy", 10 * SEC), "{}", a.log());
    let (rt, rc, _) = common::rootcoord_client(&c, 20 * SEC);
    let big = "x".repeat(900 * 1024);
    rt.block_on(async {
        for i in 0..12 {
            let name = format!("big{i}");
            let req = pb::CreateCollectionRequest {
                collection_name: name.clone(),
                schema: sample::schema(&name, "8"),
                properties: vec![KeyValuePair {
                    key: "blob".into(),
                    value: big.clone(),
                }],
                ..Default::default()
            };
            let s = rc
                .call_write(req, |mut c, r| async move { c.create_collection(r).await })
                .await
                .unwrap();
            assert_ok(&s, &name);
        }
    });
    // About 11 MB of catalog: a fresh standby reads it, then takes over and serves.
    let b = c.rootcoord_ha();
    assert!(b.wait_state("StandBy", 10 * SEC), "{}", b.log());
    a.signal(Signal::SIGKILL);
    assert!(b.wait_state("Healthy", 10 * SEC), "{}", b.log());
    assert!(!b.log().contains("catalog read failed"), "{}", b.log());
    // And a cold one started now (no hot copy) reads it at activation.
    let cold = c.start(
        "rootcoord",
        &[
            ("ROOT_COORD_ENABLE_ACTIVE_STANDBY", "true"),
            ("ROOT_COORD_HOT_STANDBY", "false"),
        ],
    );
    assert!(cold.wait_state("StandBy", 10 * SEC), "{}", cold.log());
    b.signal(Signal::SIGTERM);
    assert!(cold.wait_state("Healthy", 10 * SEC), "{}", cold.log());
    rt.block_on(async {
        let names = rc
            .call(
                pb::ShowCollectionsRequest::default(),
                |mut c, r| async move { c.show_collections(r).await },
            )
            .await
            .unwrap()
            .collection_names;
        assert_eq!(names.len(), 12, "{names:?}");
        let d = rc
            .call(
                pb::DescribeCollectionRequest {
                    collection_name: "big11".into(),
                    ..Default::default()
                },
                |mut c, r| async move { c.describe_collection(r).await },
            )
            .await
            .unwrap();
        assert_eq!(d.properties[0].value.len(), big.len());
    });
}

#[test]
fn milvus_session_ttl_of_30_s_runs_without_connection_churn() {
    let (_c, rcs, p) = common::ha_pair_and_proxy(30);
    let (a, b) = (&rcs[0], &rcs[1]);
    // 40 s: four keep-alive intervals, and many of etcd's 5 s ping windows.
    std::thread::sleep(40 * SEC);
    for proc in [a, b, &p] {
        let log = proc.log();
        for churn in [
            "keep-alive failed",
            "keep-alive not answered",
            "keep-alive stream closed",
            "watch ended",
            "cannot watch",
            "too_many_pings",
        ] {
            assert!(
                !log.contains(churn),
                "{} logged {churn:?}:\n{log}",
                proc.role
            );
        }
    }
    assert_eq!(a.state().as_deref(), Some("Healthy"));
    assert_eq!(b.state().as_deref(), Some("StandBy"));
}

/// Starts a querycoord (HA off) advertising `address`, optionally in its own UTS
/// namespace under another host name.
fn querycoord_at(c: &Cluster, address: &str, other_host: Option<&str>) -> Milvus {
    let mut env = c.env();
    env.push(("QUERY_COORD_ADDRESS".into(), address.into()));
    let script;
    let wrapper: Vec<&str> = match other_host {
        Some(h) => {
            script = format!("hostname {h} && exec \"$0\" \"$@\"");
            vec!["unshare", "-u", "sh", "-c", &script]
        }
        None => vec![],
    };
    Milvus::start_wrapped(
        &wrapper,
        &common::bin(),
        "querycoord",
        &env,
        &c.dir.0,
        milvus::testkit::free_port(),
    )
}

#[test]
fn two_live_processes_sharing_an_address_never_depose_each_other() {
    let c = Cluster::new(2);
    let first = querycoord_at(&c, "qc.svc:19531", None);
    assert!(first.wait_state("Healthy", 10 * SEC), "{}", first.log());
    let id = first.server_id().unwrap();
    // Another host (its own UTS namespace), same advertised address: it waits TTL + 1 s
    // for the key and exits 1 naming the holder.
    let mut other_host = querycoord_at(&c, "qc.svc:19531", Some("qc-host-b"));
    let status = other_host
        .wait_exit(15 * SEC)
        .expect("the newcomer did not exit");
    assert_eq!(status.code(), Some(1), "{}", other_host.log());
    assert!(
        other_host.log().contains(&format!("ServerID={id}")),
        "{}",
        other_host.log()
    );
    // The same host, while the holder is alive: the same.
    let mut same_host = querycoord_at(&c, "qc.svc:19531", None);
    let status = same_host
        .wait_exit(15 * SEC)
        .expect("the newcomer did not exit");
    assert_eq!(status.code(), Some(1), "{}", same_host.log());
    // The holder never lost its key, and no ServerIDs were burned.
    assert_eq!(first.state().as_deref(), Some("Healthy"));
    assert_eq!(first.server_id(), Some(id));
    assert!(!first.log().contains("no longer ACTIVE"), "{}", first.log());
    let counter = c
        .etcd_get_prefix("by-dev/meta/session/id")
        .first()
        .map(|(_, v)| v.parse::<i64>().unwrap())
        .unwrap();
    assert!(
        counter <= id + 3,
        "ServerIDs burned: counter {counter}, holder {id}"
    );
    // A dead predecessor at the same address on this host is still replaced at once:
    // the newcomer removes its key as provably gone (it does not wait for the lease).
    first.signal(Signal::SIGKILL);
    let next = querycoord_at(&c, "qc.svc:19531", None);
    assert!(next.wait_state("Healthy", 10 * SEC), "{}", next.log());
    assert!(
        wait_until(5 * SEC, || next.log().contains("which is gone")),
        "the dead predecessor was not purged:\n{}",
        next.log()
    );
}

#[test]
fn an_active_whose_key_is_deleted_or_whose_lease_is_revoked_stops_serving_at_once() {
    // TTL 10 s: every stop below is far quicker than a lease expiry.
    let c = Cluster::new(10);
    let a = c.rootcoord_ha();
    assert!(a.wait_state("Healthy", 10 * SEC), "{}", a.log());
    let b = c.rootcoord_ha();
    assert!(b.wait_state("StandBy", 10 * SEC), "{}", b.log());
    let first_id = a.server_id().unwrap();
    let rt = runtime();
    let mut e = rt
        .block_on(etcd_client::Client::connect([c.etcd.endpoint()], None))
        .unwrap();
    // Someone deletes the ACTIVE key by hand.
    rt.block_on(e.delete("by-dev/meta/session/rootcoord", None))
        .unwrap();
    assert!(
        wait_until(SEC, || a.state().as_deref() != Some("Healthy")),
        "{}",
        a.log()
    );
    assert!(b.wait_state("Healthy", 3 * SEC), "{}", b.log());
    // The deposed one comes back as a standby with a new session.
    assert!(a.wait_state("StandBy", 10 * SEC), "{}", a.log());
    assert_ne!(a.server_id(), Some(first_id));
    // Someone revokes the new active's lease: it stops within one keep-alive interval
    // (TTL/3), and the standby takes over.
    let lease = b.status().unwrap()["lease_id"].as_i64().unwrap();
    let stopped = "is no longer ACTIVE, stopped serving";
    let stopped_before = b.count_log(stopped);
    rt.block_on(e.lease_revoke(lease)).unwrap();
    let revoked = std::time::Instant::now();
    // Its log says it stopped. (Its state is no witness: it rejoins as a new session at
    // once and may win the election again within milliseconds, between two polls.)
    assert!(
        wait_until(5 * SEC, || b.count_log(stopped) > stopped_before),
        "{}",
        b.log()
    );
    assert!(
        revoked.elapsed() < Duration::from_millis(10_000 / 3 + 1000),
        "stopped only after {:?}",
        revoked.elapsed()
    );
    // The next active is whichever session wins the election: usually the standby,
    // but the deposed process rejoins at once as a new session and may win the race.
    // Either way exactly one serves, and not under the revoked lease.
    assert!(
        wait_until(3 * SEC, || {
            let states = [a.state(), b.state()];
            states
                .iter()
                .filter(|s| s.as_deref() == Some("Healthy"))
                .count()
                == 1
                && states
                    .iter()
                    .filter(|s| s.as_deref() == Some("StandBy"))
                    .count()
                    == 1
        }),
        "no single active after the revoke:\n{}\n{}",
        a.log(),
        b.log()
    );
    assert_ne!(b.status().and_then(|s| s["lease_id"].as_i64()), Some(lease));
}

#[test]
fn a_full_ddl_queue_refuses_work_before_it_starts_with_a_retriable_status() {
    let c = Cluster::new(2);
    let a = c.start(
        "rootcoord",
        &[
            ("ROOT_COORD_ENABLE_ACTIVE_STANDBY", "true"),
            ("MILVUS_TEST_DDL_DELAY_MS", "40"),
        ],
    );
    assert!(a.wait_state("Healthy", 10 * SEC), "{}", a.log());
    let rt = runtime();
    let statuses: Vec<Status> = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..240 {
            // Several connections, so that HTTP/2 stream limits do not queue the
            // requests on the client side.
            let ch = channel(a.port);
            tasks.push(tokio::spawn(async move {
                let name = format!("q{i}");
                let req = pb::CreateCollectionRequest {
                    collection_name: name.clone(),
                    schema: sample::schema(&name, "8"),
                    ..Default::default()
                };
                RootCoordClient::new(ch)
                    .create_collection(req)
                    .await
                    .unwrap()
                    .into_inner()
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let accepted = statuses.iter().filter(|s| s.code == 0).count();
    let refused: Vec<&Status> = statuses.iter().filter(|s| s.code == 8).collect();
    assert!(
        !refused.is_empty(),
        "no change was refused: {accepted} accepted"
    );
    assert_eq!(accepted + refused.len(), statuses.len(), "{statuses:?}");
    assert!(accepted > 128, "only {accepted} accepted");
    for s in &refused {
        assert!(s.retriable && s.error_code == 49, "{s:?}");
        assert!(s.reason.contains("DDL queue is full"), "{s:?}");
    }
    // Exactly the accepted ones exist.
    let shown = rt.block_on(async {
        RootCoordClient::new(channel(a.port))
            .show_collections(pb::ShowCollectionsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .collection_names
    });
    assert_eq!(shown.len(), accepted);
}
