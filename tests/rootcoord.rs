//! The rootcoord's state across failovers: timestamps, IDs and the catalog, fenced
//! writes and the standby's refusal — real etcd, real processes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{rootcoord_client, Cluster};
use milvus::coord_client::ActiveRootCoord;
use milvus::proto::common::{ConsistencyLevel, Status};
use milvus::proto::milvus as pb;
use milvus::proto::rootcoord::root_coord_client::RootCoordClient;
use milvus::proto::rootcoord::AllocRequest;
use milvus::testkit::{wait_until, Milvus};
use nix::sys::signal::Signal;
use tonic::Request;

const SEC: Duration = Duration::from_secs(1);

use milvus::testkit::sample::{kv, schema};

fn create_req(db: &str, name: &str, schema_bytes: Vec<u8>) -> pb::CreateCollectionRequest {
    pb::CreateCollectionRequest {
        db_name: db.into(),
        collection_name: name.into(),
        schema: schema_bytes,
        consistency_level: ConsistencyLevel::Strong as i32,
        ..Default::default()
    }
}

async fn create(rc: &ActiveRootCoord, db: &str, name: &str) -> Status {
    rc.call_write(
        create_req(db, name, schema(name, "8")),
        |mut c, r| async move { c.create_collection(r).await },
    )
    .await
    .unwrap()
}

async fn describe(rc: &ActiveRootCoord, db: &str, name: &str) -> pb::DescribeCollectionResponse {
    let req = pb::DescribeCollectionRequest {
        db_name: db.into(),
        collection_name: name.into(),
        ..Default::default()
    };
    rc.call(
        req,
        |mut c, r| async move { c.describe_collection(r).await },
    )
    .await
    .unwrap()
}

async fn show(rc: &ActiveRootCoord, db: &str) -> Vec<String> {
    let req = pb::ShowCollectionsRequest {
        db_name: db.into(),
        ..Default::default()
    };
    rc.call(req, |mut c, r| async move { c.show_collections(r).await })
        .await
        .unwrap()
        .collection_names
}

async fn alloc_ts(rc: &ActiveRootCoord) -> u64 {
    let r = rc
        .call(AllocRequest { count: 1 }, |mut c, r| async move {
            c.alloc_timestamp(r).await
        })
        .await
        .unwrap();
    assert_eq!(r.status.as_ref().map(|s| s.code), Some(0), "{r:?}");
    r.timestamp
}

fn ok(s: &Status) -> bool {
    s.code == 0 && s.error_code == 0
}

fn active_of(procs: &[Milvus]) -> Option<usize> {
    procs
        .iter()
        .position(|p| p.state().as_deref() == Some("Healthy"))
}

#[test]
fn timestamps_ids_and_catalog_survive_ten_failovers() {
    let c = Cluster::new(2);
    let ha = [("ROOT_COORD_ENABLE_ACTIVE_STANDBY", "true")];
    let mut procs = vec![c.start("rootcoord", &ha)];
    assert!(
        procs[0].wait_state("Healthy", 10 * SEC),
        "{}",
        procs[0].log()
    );
    procs.push(c.start("rootcoord", &ha));
    assert!(procs[1].wait_state("StandBy", 10 * SEC));
    let (rt, rc, _) = rootcoord_client(&c, 20 * SEC);
    let rc = Arc::new(rc);

    // A client allocating timestamps and IDs without pause through every failover.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<(u64, i64)>>> = Arc::default();
    let worker = {
        let (rc, stop, seen) = (rc.clone(), stop.clone(), seen.clone());
        rt.spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let ts = rc
                    .call(AllocRequest { count: 3 }, |mut c, r| async move {
                        c.alloc_timestamp(r).await
                    })
                    .await;
                let id = rc
                    .call(AllocRequest { count: 5 }, |mut c, r| async move {
                        c.alloc_id(r).await
                    })
                    .await;
                match (ts, id) {
                    (Ok(t), Ok(i))
                        if t.status.as_ref().is_some_and(ok)
                            && i.status.as_ref().is_some_and(ok) =>
                    {
                        seen.lock().unwrap().push((t.timestamp, i.id));
                    }
                    other => panic!("allocation failed during failover: {other:?}"),
                }
            }
        })
    };

    let mut described = Vec::new();
    for round in 0..10 {
        let name = format!("c{round}");
        assert!(ok(&rt.block_on(create(&rc, "", &name))), "round {round}");
        described.push((name.clone(), rt.block_on(describe(&rc, "", &name))));
        let before = seen.lock().unwrap().len();
        let i = active_of(&procs).expect("an active rootcoord");
        let old_id = procs[i].server_id();
        match round % 3 {
            0 => procs[i].signal(Signal::SIGTERM),
            1 => procs[i].signal(Signal::SIGKILL),
            _ => procs[i].signal(Signal::SIGSTOP),
        }
        assert!(
            wait_until(5 * SEC, || procs.iter().any(|p| p.state().as_deref()
                == Some("Healthy")
                && p.server_id() != old_id)),
            "round {round}: no takeover"
        );
        if round % 3 == 2 {
            procs[i].signal(Signal::SIGCONT);
            assert!(
                procs[i].wait_state("StandBy", 5 * SEC),
                "round {round}: old active did not rejoin:\n{}",
                procs[i].log()
            );
        } else {
            procs.remove(i);
            procs.push(c.start("rootcoord", &ha));
            assert!(procs.last().unwrap().wait_state("StandBy", 10 * SEC));
        }
        assert!(
            wait_until(10 * SEC, || seen.lock().unwrap().len() > before + 5),
            "round {round}: allocation stalled"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    rt.block_on(worker).unwrap();

    let seen = seen.lock().unwrap();
    assert!(seen.len() > 50, "only {} allocations", seen.len());
    for w in seen.windows(2) {
        assert!(
            w[1].0 > w[0].0 + 2,
            "timestamps not strictly increasing: {} then {}",
            w[0].0,
            w[1].0
        );
        assert!(
            w[1].1 >= w[0].1 + 5,
            "ID ranges overlap: {} then {}",
            w[0].1,
            w[1].1
        );
    }
    // Every collection is still there, described identically.
    let names = rt.block_on(show(&rc, ""));
    for (name, before) in &described {
        assert!(
            names.contains(name),
            "{name} missing after the failovers: {names:?}"
        );
        assert_eq!(
            &rt.block_on(describe(&rc, "", name)),
            before,
            "{name} changed"
        );
    }
}

#[test]
fn timestamps_increase_across_a_takeover_by_a_standby_whose_clock_is_behind() {
    let c = Cluster::new(2);
    let a = c.start("rootcoord", &[("ROOT_COORD_ENABLE_ACTIVE_STANDBY", "true")]);
    assert!(a.wait_state("Healthy", 10 * SEC));
    let b = c.start(
        "rootcoord",
        &[
            ("ROOT_COORD_ENABLE_ACTIVE_STANDBY", "true"),
            ("MILVUS_TEST_CLOCK_OFFSET_MS", "-600000"),
        ],
    );
    assert!(b.wait_state("StandBy", 10 * SEC));
    let (rt, rc, _) = rootcoord_client(&c, 10 * SEC);
    let last_a = (0..100).map(|_| rt.block_on(alloc_ts(&rc))).max().unwrap();
    a.signal(Signal::SIGTERM);
    assert!(b.wait_state("Healthy", 3 * SEC));
    let first_b = rt.block_on(alloc_ts(&rc));
    assert!(first_b > last_a, "after takeover {first_b} <= {last_a}");
}

#[test]
fn a_standby_refuses_and_a_wrong_server_id_is_a_mismatch() {
    let c = Cluster::new(2);
    let a = c.start("rootcoord", &[("ROOT_COORD_ENABLE_ACTIVE_STANDBY", "true")]);
    assert!(a.wait_state("Healthy", 10 * SEC));
    let b = c.start("rootcoord", &[("ROOT_COORD_ENABLE_ACTIVE_STANDBY", "true")]);
    assert!(b.wait_state("StandBy", 10 * SEC));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut sb = RootCoordClient::connect(format!("http://127.0.0.1:{}", b.port))
            .await
            .unwrap();
        let st = sb
            .get_component_states(pb::GetComponentStatesRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            st.state.unwrap().state_code,
            3,
            "standby answers its state: StandBy"
        );
        let r = sb
            .alloc_timestamp(AllocRequest { count: 1 })
            .await
            .unwrap()
            .into_inner();
        let s = r.status.unwrap();
        assert_eq!((s.code, s.error_code), (1, 56), "{s:?}");
        assert!(
            s.reason.contains("not the active rootcoord"),
            "{}",
            s.reason
        );
        let s = sb
            .create_database(pb::CreateDatabaseRequest {
                db_name: "x".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(s.code, 1);

        let mut act = RootCoordClient::connect(format!("http://127.0.0.1:{}", a.port))
            .await
            .unwrap();
        let mut req = Request::new(AllocRequest { count: 1 });
        req.metadata_mut()
            .insert("serverid", "999999".parse().unwrap());
        let s = act
            .alloc_timestamp(req)
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap();
        assert_eq!(s.code, 2, "{s:?}");
        assert!(s.reason.contains("server ID mismatch"), "{}", s.reason);
        let mut req = Request::new(AllocRequest { count: 1 });
        req.metadata_mut().insert(
            "serverid",
            a.server_id().unwrap().to_string().parse().unwrap(),
        );
        let r = act.alloc_timestamp(req).await.unwrap().into_inner();
        assert_eq!(r.status.unwrap().code, 0);
        assert!(r.timestamp > 0);
    });
}

#[test]
fn a_deposed_active_with_a_pending_write_is_refused_and_steps_down() {
    let c = Cluster::new(2);
    let slow = [
        ("ROOT_COORD_ENABLE_ACTIVE_STANDBY", "true"),
        ("MILVUS_TEST_DDL_DELAY_MS", "1000"),
    ];
    let a = c.start("rootcoord", &slow);
    assert!(a.wait_state("Healthy", 10 * SEC));
    let b = c.start("rootcoord", &[("ROOT_COORD_ENABLE_ACTIVE_STANDBY", "true")]);
    assert!(b.wait_state("StandBy", 10 * SEC));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let port = a.port;
    let pending = rt.spawn(async move {
        let mut cl = RootCoordClient::connect(format!("http://127.0.0.1:{port}"))
            .await
            .unwrap();
        cl.create_collection(create_req(
            "",
            "from_old_active",
            schema("from_old_active", "8"),
        ))
        .await
        .map(|r| r.into_inner())
    });
    // The write waits before its txn; freeze the active once it says it is waiting.
    assert!(
        wait_until(10 * SEC, || a
            .log()
            .contains("test delay before a catalog write")),
        "{}",
        a.log()
    );
    a.signal(Signal::SIGSTOP);
    assert!(b.wait_state("Healthy", 5 * SEC), "{}", b.log());
    let (_rt2, rc, _) = rootcoord_client(&c, 10 * SEC);
    assert!(ok(&_rt2.block_on(create(&rc, "", "from_new_active"))));
    a.signal(Signal::SIGCONT);
    let answer = rt
        .block_on(pending)
        .unwrap()
        .expect("the old active answers");
    assert_ne!(
        answer.code, 0,
        "the deposed active's write went through: {answer:?}"
    );
    assert!(a.wait_state("StandBy", 5 * SEC), "{}", a.log());
    assert!(a.log().contains("is no longer ACTIVE"));
    let names = _rt2.block_on(show(&rc, ""));
    assert_eq!(names, vec!["from_new_active".to_string()]);
}

#[test]
fn bad_requests_get_their_error_codes_and_change_nothing() {
    let c = Cluster::new(2);
    let a = c.start("rootcoord", &[("ROOT_COORD_MAX_PARTITION_NUM", "3")]);
    assert!(a.wait_state("Healthy", 10 * SEC), "{}", a.log());
    let (rt, rc, _) = rootcoord_client(&c, 5 * SEC);
    rt.block_on(async {
        assert!(ok(&create(&rc, "", "good").await));
        let before = describe(&rc, "", "good").await;
        let code_of = |s: Status| (s.code, s.error_code);
        // Bad names, a duplicate, a bad dimension, a missing database.
        for bad in ["", "1abc", "a-b", &"x".repeat(256)] {
            assert_eq!(code_of(create(&rc, "", bad).await), (1100, 5), "{bad:?}");
        }
        // The same collection again is Milvus's idempotent success; another schema
        // under the same name is refused.
        assert_eq!(code_of(create(&rc, "", "good").await), (0, 0));
        let s = rc
            .call(
                create_req("", "good", schema("good", "16")),
                |mut c, r| async move { c.create_collection(r).await },
            )
            .await
            .unwrap();
        assert_eq!(code_of(s.clone()), (1100, 5));
        assert!(s.reason.contains("different parameters"), "{}", s.reason);
        let s = rc
            .call(
                create_req("", "baddim", schema("baddim", "0")),
                |mut c, r| async move { c.create_collection(r).await },
            )
            .await
            .unwrap();
        assert_eq!(code_of(s.clone()), (1100, 5));
        assert!(s.reason.contains("dim"), "{}", s.reason);
        assert_eq!(create(&rc, "nodb", "x").await.code, 800);
        // Missing collection: describe, has, drop, partitions.
        let d = describe(&rc, "", "missing").await.status.unwrap();
        assert_eq!(code_of(d.clone()), (100, 4));
        // The rootcoord's wording; the proxy's DescribeCollection says "can't find".
        assert_eq!(
            d.reason,
            "collection not found[database=default][collection=missing]"
        );
        let has = rc
            .call(
                pb::HasCollectionRequest {
                    collection_name: "missing".into(),
                    ..Default::default()
                },
                |mut c, r| async move { c.has_collection(r).await },
            )
            .await
            .unwrap();
        assert!(!has.value && ok(&has.status.unwrap()));
        let s = rc
            .call(
                pb::DropCollectionRequest {
                    collection_name: "missing".into(),
                    ..Default::default()
                },
                |mut c, r| async move { c.drop_collection(r).await },
            )
            .await
            .unwrap();
        assert_eq!(s.code, 0, "dropping a missing collection succeeds: {s:?}");
        // Too many partitions (limit 3, `_default` is one); an existing one again is
        // an idempotent success.
        for (p, want) in [("p1", 0), ("p2", 0), ("p3", 1100), ("p1", 0)] {
            let req = pb::CreatePartitionRequest {
                collection_name: "good".into(),
                partition_name: p.into(),
                ..Default::default()
            };
            let s = rc
                .call(req, |mut c, r| async move { c.create_partition(r).await })
                .await
                .unwrap();
            assert_eq!(s.code, want, "{p}: {s:?}");
        }
        let req = pb::DropPartitionRequest {
            collection_name: "good".into(),
            partition_name: "nope".into(),
            ..Default::default()
        };
        assert_eq!(
            rc.call(req, |mut c, r| async move { c.drop_partition(r).await })
                .await
                .unwrap()
                .code,
            0,
            "dropping a missing partition succeeds"
        );
        let req = pb::DropPartitionRequest {
            collection_name: "good".into(),
            partition_name: "_default".into(),
            ..Default::default()
        };
        assert_eq!(
            rc.call(req, |mut c, r| async move { c.drop_partition(r).await })
                .await
                .unwrap()
                .code,
            1100
        );
        // Databases: bad name, default cannot be dropped, missing one.
        let s = rc
            .call(
                pb::CreateDatabaseRequest {
                    db_name: "9db".into(),
                    ..Default::default()
                },
                |mut c, r| async move { c.create_database(r).await },
            )
            .await
            .unwrap();
        // Milvus's code for a bad database name.
        assert_eq!(s.code, 802, "{s:?}");
        let s = rc
            .call(
                pb::DropDatabaseRequest {
                    db_name: "default".into(),
                    ..Default::default()
                },
                |mut c, r| async move { c.drop_database(r).await },
            )
            .await
            .unwrap();
        assert_eq!(s.code, 1100);
        let s = rc
            .call(
                pb::DropDatabaseRequest {
                    db_name: "nodb".into(),
                    ..Default::default()
                },
                |mut c, r| async move { c.drop_database(r).await },
            )
            .await
            .unwrap();
        // Dropping a database that does not exist succeeds, as in Milvus.
        assert_eq!(s.code, 0, "{s:?}");
        // Nothing changed but the two partitions that were accepted.
        assert_eq!(show(&rc, "").await, vec!["good".to_string()]);
        let after = describe(&rc, "", "good").await;
        assert_eq!(after.schema, before.schema);
        assert_eq!(after.num_partitions, 3);
        let dbs = rc
            .call(pb::ListDatabasesRequest::default(), |mut c, r| async move {
                c.list_databases(r).await
            })
            .await
            .unwrap();
        assert_eq!(dbs.db_names, vec!["default".to_string()]);
    });
}

#[test]
fn the_catalog_maps_the_client_protocol() {
    let c = Cluster::new(2);
    let a = c.start("rootcoord", &[]);
    assert!(a.wait_state("Healthy", 10 * SEC));
    let (rt, rc, _) = rootcoord_client(&c, 5 * SEC);
    rt.block_on(async {
        let s = rc
            .call(
                pb::CreateDatabaseRequest {
                    db_name: "db1".into(),
                    properties: vec![kv("k", "v")],
                    ..Default::default()
                },
                |mut c, r| async move { c.create_database(r).await },
            )
            .await
            .unwrap();
        assert!(ok(&s), "{s:?}");
        assert!(ok(&create(&rc, "db1", "coll").await));
        assert!(show(&rc, "").await.is_empty());
        assert_eq!(show(&rc, "db1").await, vec!["coll".to_string()]);
        let d = describe(&rc, "db1", "coll").await;
        let sch = d.schema.clone().unwrap();
        assert_eq!(sch.name, "coll");
        let ids: Vec<i64> = sch.fields.iter().map(|f| f.field_id).collect();
        assert_eq!(ids, vec![100, 101, 102, 103]);
        assert!(sch.fields[3].is_dynamic);
        assert_eq!(sch.fields[1].type_params, vec![kv("dim", "8")]);
        assert_eq!(d.shards_num, 1);
        assert_eq!(d.consistency_level, ConsistencyLevel::Strong as i32);
        assert!(
            d.collection_id > 1 << 40,
            "IDs come from the allocator: {}",
            d.collection_id
        );
        assert!(
            d.created_timestamp >> 18 > 1_700_000_000_000,
            "hybrid timestamp: {}",
            d.created_timestamp
        );
        let parts = rc
            .call(
                pb::ShowPartitionsRequest {
                    db_name: "db1".into(),
                    collection_name: "coll".into(),
                    ..Default::default()
                },
                |mut c, r| async move { c.show_partitions(r).await },
            )
            .await
            .unwrap();
        assert_eq!(parts.partition_names, vec!["_default".to_string()]);
        let dd = rc
            .call(
                pb::DescribeDatabaseRequest {
                    db_name: "db1".into(),
                    ..Default::default()
                },
                |mut c, r| async move { c.describe_database(r).await },
            )
            .await
            .unwrap();
        assert_eq!(dd.properties, vec![kv("k", "v")]);
        // A non-empty database cannot be dropped; after its collection it can.
        let drop_db = || {
            rc.call(
                pb::DropDatabaseRequest {
                    db_name: "db1".into(),
                    ..Default::default()
                },
                |mut c, r| async move { c.drop_database(r).await },
            )
        };
        let s = drop_db().await.unwrap();
        assert_eq!(s.code, 65535, "{s:?}");
        assert!(
            s.reason
                .contains("db1 not empty, must drop all collections before drop database"),
            "{s:?}"
        );
        let s = rc
            .call(
                pb::DropCollectionRequest {
                    db_name: "db1".into(),
                    collection_name: "coll".into(),
                    ..Default::default()
                },
                |mut c, r| async move { c.drop_collection(r).await },
            )
            .await
            .unwrap();
        assert!(ok(&s));
        assert!(ok(&drop_db().await.unwrap()));
    });
    // The records are in etcd under <meta>/root-coord/.
    let keys: Vec<String> = c
        .etcd_get_prefix("by-dev/meta/root-coord/")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(
        keys.iter()
            .any(|k| k.starts_with("by-dev/meta/root-coord/database/db-info/")),
        "{keys:?}"
    );
    let _started = Instant::now();
}

#[test]
fn each_shard_gets_a_virtual_channel_on_the_least_used_physical_channel() {
    let c = Cluster::new(2);
    let a = c.start(
        "rootcoord",
        &[
            ("ROOT_COORD_ENABLE_ACTIVE_STANDBY", "true"),
            ("ROOT_COORD_DML_CHANNEL_NUM", "4"),
        ],
    );
    assert!(a.wait_state("Healthy", 10 * SEC), "{}", a.log());
    let (rt, rc, _) = rootcoord_client(&c, 5 * SEC);
    let channels = |name: &str, shards: i32| {
        rt.block_on(async {
            let mut req = create_req("", name, schema(name, "8"));
            req.shards_num = shards;
            let s = rc
                .call_write(req, |mut c, r| async move { c.create_collection(r).await })
                .await
                .unwrap();
            assert!(ok(&s), "{s:?}");
            let d = describe(&rc, "", name).await;
            let id = d.collection_id;
            (id, d.virtual_channel_names, d.physical_channel_names)
        })
    };
    let (id1, v1, p1) = channels("c1", 2);
    assert_eq!(p1, vec!["by-dev-rootcoord-dml_0", "by-dev-rootcoord-dml_1"]);
    assert_eq!(
        v1,
        vec![
            format!("by-dev-rootcoord-dml_0_{id1}v0"),
            format!("by-dev-rootcoord-dml_1_{id1}v1")
        ]
    );
    let (id2, v2, p2) = channels("c2", 3);
    assert_eq!(
        p2,
        vec![
            "by-dev-rootcoord-dml_2",
            "by-dev-rootcoord-dml_3",
            "by-dev-rootcoord-dml_0"
        ]
    );
    assert_eq!(v2[2], format!("by-dev-rootcoord-dml_0_{id2}v2"));
    // The default is one shard.
    let (_, v3, p3) = channels("c3", 0);
    assert_eq!(
        (v3.len(), p3),
        (1, vec!["by-dev-rootcoord-dml_1".to_string()])
    );
}
