//! The proxy's MilvusService from Rust, without Python: the same ground as the pymilvus
//! test, malformed requests, UNIMPLEMENTED for what is not served, health, identifiers.

mod common;

use std::time::Duration;

use common::Cluster;
use milvus::proto::common::{ConsistencyLevel, Status};
use milvus::proto::milvus as pb;
use milvus::testkit::milvus_client::{call, channel};
use milvus::testkit::{sample, Milvus};
use nix::sys::signal::Signal;
use tonic::transport::Channel;

const SEC: Duration = Duration::from_secs(1);

fn fields() -> Vec<milvus::proto::schema::FieldSchema> {
    sample::fields("8")
}

fn schema_bytes(name: &str, fields: Vec<milvus::proto::schema::FieldSchema>) -> Vec<u8> {
    sample::schema_with(name, fields)
}

async fn create(ch: &Channel, db: &str, name: &str, schema: Vec<u8>) -> Status {
    let req = pb::CreateCollectionRequest {
        collection_name: name.into(),
        schema,
        consistency_level: ConsistencyLevel::Bounded as i32,
        ..Default::default()
    };
    call(ch, "CreateCollection", req, db).await.unwrap()
}

async fn list(ch: &Channel, db: &str) -> Vec<String> {
    let r: pb::ShowCollectionsResponse = call(
        ch,
        "ShowCollections",
        pb::ShowCollectionsRequest::default(),
        db,
    )
    .await
    .unwrap();
    r.collection_names
}

async fn describe(ch: &Channel, db: &str, name: &str) -> pb::DescribeCollectionResponse {
    let req = pb::DescribeCollectionRequest {
        collection_name: name.into(),
        ..Default::default()
    };
    call(ch, "DescribeCollection", req, db).await.unwrap()
}

fn start() -> (Cluster, Milvus, Milvus) {
    let c = Cluster::new(2);
    let rc = c.rootcoord_ha();
    assert!(rc.wait_state("Healthy", 10 * SEC), "{}", rc.log());
    let p = c.start("proxy", &[]);
    assert!(p.wait_state("Healthy", 10 * SEC), "{}", p.log());
    (c, rc, p)
}

#[test]
fn the_client_protocol_end_to_end() {
    let (c, _rc, p) = start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ch = channel(p.port);
        let a: pb::ConnectResponse = call(&ch, "Connect", pb::ConnectRequest::default(), "")
            .await
            .unwrap();
        let b: pb::ConnectResponse = call(&ch, "Connect", pb::ConnectRequest::default(), "")
            .await
            .unwrap();
        assert_ne!(
            a.identifier, b.identifier,
            "identifiers are unique per connection"
        );
        let v: pb::GetVersionResponse = call(&ch, "GetVersion", pb::GetVersionRequest {}, "")
            .await
            .unwrap();
        assert!(v.version.starts_with("v2.5"), "{}", v.version);
        let h: pb::CheckHealthResponse = call(&ch, "CheckHealth", pb::CheckHealthRequest {}, "")
            .await
            .unwrap();
        assert!(h.is_healthy, "{:?}", h.reasons);
        let st: pb::ComponentStates = call(
            &ch,
            "GetComponentStates",
            pb::GetComponentStatesRequest {},
            "",
        )
        .await
        .unwrap();
        assert_eq!(st.state.unwrap().state_code, 1);
        let ts: pb::AllocTimestampResponse = call(
            &ch,
            "AllocTimestamp",
            pb::AllocTimestampRequest::default(),
            "",
        )
        .await
        .unwrap();
        assert!(ts.timestamp >> 18 > 1_700_000_000_000);

        // Collections, scoped by the dbname header (empty means default).
        assert_eq!(
            create(&ch, "", "books", schema_bytes("books", fields()))
                .await
                .code,
            0
        );
        assert_eq!(list(&ch, "").await, vec!["books".to_string()]);
        assert_eq!(list(&ch, "default").await, vec!["books".to_string()]);
        let d = describe(&ch, "", "books").await;
        let names: Vec<&str> = d
            .schema
            .as_ref()
            .unwrap()
            .fields
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(
            names,
            vec!["id", "vec", "title"],
            "the dynamic field is hidden"
        );
        assert_eq!(d.consistency_level, ConsistencyLevel::Bounded as i32);
        assert_eq!(d.num_partitions, 1);
        let has = |name: &'static str| {
            let ch = ch.clone();
            async move {
                let r: pb::BoolResponse = call(
                    &ch,
                    "HasCollection",
                    pb::HasCollectionRequest {
                        collection_name: name.into(),
                        ..Default::default()
                    },
                    "",
                )
                .await
                .unwrap();
                r.value
            }
        };
        assert!(has("books").await);
        assert!(!has("nope").await);
        let missing = describe(&ch, "", "nope").await.status.unwrap();
        assert_eq!((missing.code, missing.error_code), (100, 4));

        // Partitions.
        let s: Status = call(
            &ch,
            "CreatePartition",
            pb::CreatePartitionRequest {
                collection_name: "books".into(),
                partition_name: "p1".into(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap();
        assert_eq!(s.code, 0);
        let parts: pb::ShowPartitionsResponse = call(
            &ch,
            "ShowPartitions",
            pb::ShowPartitionsRequest {
                collection_name: "books".into(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap();
        assert_eq!(parts.partition_names, vec!["_default", "p1"]);
        let s: Status = call(
            &ch,
            "DropPartition",
            pb::DropPartitionRequest {
                collection_name: "books".into(),
                partition_name: "p1".into(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap();
        assert_eq!(s.code, 0);
        let hp: pb::BoolResponse = call(
            &ch,
            "HasPartition",
            pb::HasPartitionRequest {
                collection_name: "books".into(),
                partition_name: "p1".into(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap();
        assert!(!hp.value);

        // Databases.
        let s: Status = call(
            &ch,
            "CreateDatabase",
            pb::CreateDatabaseRequest {
                db_name: "lib".into(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap();
        assert_eq!(s.code, 0);
        let dbs: pb::ListDatabasesResponse = call(
            &ch,
            "ListDatabases",
            pb::ListDatabasesRequest::default(),
            "",
        )
        .await
        .unwrap();
        assert_eq!(dbs.db_names, vec!["default", "lib"]);
        assert_eq!(
            create(&ch, "lib", "papers", schema_bytes("papers", fields()))
                .await
                .code,
            0
        );
        assert_eq!(list(&ch, "lib").await, vec!["papers".to_string()]);
        assert_eq!(list(&ch, "").await, vec!["books".to_string()]);
        let dd: pb::DescribeDatabaseResponse = call(
            &ch,
            "DescribeDatabase",
            pb::DescribeDatabaseRequest {
                db_name: "lib".into(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap();
        assert_eq!(dd.db_name, "lib");
        let s: Status = call(
            &ch,
            "DropCollection",
            pb::DropCollectionRequest {
                collection_name: "papers".into(),
                ..Default::default()
            },
            "lib",
        )
        .await
        .unwrap();
        assert_eq!(s.code, 0);
        let s: Status = call(
            &ch,
            "DropDatabase",
            pb::DropDatabaseRequest {
                db_name: "lib".into(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap();
        assert_eq!(s.code, 0);

        // A method of Milvus's API this build does not serve yet: Milvus's "service
        // unimplemented" status, naming it. One that is not in the API at all: gRPC
        // UNIMPLEMENTED.
        let s = call::<_, Status>(&ch, "RestoreRBAC", pb::GetVersionRequest {}, "")
            .await
            .unwrap();
        assert_eq!(s.code, 10, "{s:?}");
        assert!(s.reason.contains("RestoreRBAC") && s.reason.contains("service unimplemented"));
        let e = call::<_, Status>(&ch, "NoSuchMethod", pb::GetVersionRequest {}, "")
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unimplemented);
    });
    // Proxies are workers: each registers proxy-<ServerID>.
    let p2 = c.start("proxy", &[]);
    assert!(p2.wait_state("Healthy", 10 * SEC));
    let keys = c.session_keys();
    assert_eq!(
        keys.iter()
            .filter(|k| k.contains("/session/proxy-"))
            .count(),
        2,
        "{keys:?}"
    );
}

#[test]
fn malformed_requests_get_in_band_errors_and_change_nothing() {
    let (_c, _rc, p) = start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ch = channel(p.port);
        assert_eq!(
            create(&ch, "", "keep", schema_bytes("keep", fields()))
                .await
                .code,
            0
        );
        let before = describe(&ch, "", "keep").await;
        let mut no_pk = fields();
        no_pk[0].is_primary_key = false;
        let mut two_pk = fields();
        two_pk[2].is_primary_key = true;
        let mut no_dim = fields();
        no_dim[1].type_params.clear();
        let mut unknown_type = fields();
        unknown_type[2].data_type = 77;
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("", schema_bytes("", fields()), "should not be empty"),
            ("x", schema_bytes("x", no_pk), "exactly one primary key"),
            ("x", schema_bytes("x", two_pk), "exactly one primary key"),
            ("x", schema_bytes("x", no_dim), "dimension is not defined"),
            ("x", schema_bytes("x", unknown_type), "unknown data type"),
            ("x", vec![0x0a, 0x02, 0xc3, 0x28], "not a valid serialized"),
            (
                "x",
                b"definitely not protobuf".to_vec(),
                "not a valid serialized",
            ),
        ];
        for (name, schema, reason) in cases {
            let s = create(&ch, "", name, schema).await;
            assert_eq!(
                (s.code, s.error_code),
                (1100, 5),
                "{name:?} {reason}: {s:?}"
            );
            assert!(s.reason.contains(reason), "{reason}: {}", s.reason);
        }
        let s: Status = call(
            &ch,
            "CreatePartition",
            pb::CreatePartitionRequest {
                collection_name: "keep".into(),
                partition_name: "".into(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap();
        // Milvus answers a bad partition name with its generic code.
        assert_eq!(s.code, 65535, "{s:?}");
        assert!(s.reason.contains("Invalid partition name"), "{s:?}");
        assert_eq!(list(&ch, "").await, vec!["keep".to_string()]);
        assert_eq!(describe(&ch, "", "keep").await, before);
    });
}

#[test]
fn without_an_active_rootcoord_the_proxy_answers_unavailable_after_its_retry_limit() {
    let mut c = Cluster::new(2);
    c.set("PROXY_COORD_RETRY_TIMEOUT", "1500");
    let mut rc = c.rootcoord_ha();
    assert!(rc.wait_state("Healthy", 10 * SEC));
    let p = c.start("proxy", &[]);
    assert!(p.wait_state("Healthy", 10 * SEC));
    rc.signal(Signal::SIGTERM);
    assert_eq!(rc.wait_exit(5 * SEC).and_then(|s| s.code()), Some(0));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ch = channel(p.port);
        let started = std::time::Instant::now();
        let e = call::<_, pb::ShowCollectionsResponse>(
            &ch,
            "ShowCollections",
            pb::ShowCollectionsRequest::default(),
            "",
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(1400) && waited < 4 * SEC,
            "{waited:?}"
        );
        let h: pb::CheckHealthResponse = call(&ch, "CheckHealth", pb::CheckHealthRequest {}, "")
            .await
            .unwrap();
        assert!(
            !h.is_healthy && h.reasons.iter().any(|r| r.contains("rootcoord")),
            "{h:?}"
        );
    });
}
