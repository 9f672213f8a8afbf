//! Rootcoord benchmark: activation time (won -> serving) of a hot standby against a cold
//! reload, with 10, 1,000 and 10,000 collections in the catalog and with a catalog of
//! `--catalog-mb` megabytes (collections with 900 KB properties each, default 100 MB);
//! and timestamps per second through `AllocTimestamp` from 1 and 8 concurrent clients.
//!
//! `cargo bench --bench rootcoord` (options after `--`: `--runs N`, `--max N` to stop at
//! a smaller catalog, `--catalog-mb N` (0 skips it), `--seconds N` per throughput run).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use milvus::coord_client::ActiveRootCoord;
use milvus::etcd::Etcd;
use milvus::proto::milvus as pb;
use milvus::proto::rootcoord::root_coord_client::RootCoordClient;
use milvus::proto::rootcoord::AllocRequest;
use milvus::session::Keys;
use milvus::testkit::stats::{arg, median_p99, ms, parse_debug_duration};
use milvus::testkit::{EtcdServer, Milvus, TempDir};
use nix::sys::signal::Signal;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_milvus"))
}

fn env(etcd: &EtcdServer, dir: &TempDir, hot: bool) -> Vec<(String, String)> {
    vec![
        ("ETCD_ENDPOINTS".into(), etcd.endpoint()),
        ("COMMON_SESSION_TTL".into(), "10".into()),
        ("ROOT_COORD_ENABLE_ACTIVE_STANDBY".into(), "true".into()),
        ("ROOT_COORD_HOT_STANDBY".into(), hot.to_string()),
        ("MILVUS_PID_DIR".into(), dir.0.display().to_string()),
        ("LOG_LEVEL".into(), "info".into()),
    ]
}

fn client(rt: &tokio::runtime::Runtime, etcd: &EtcdServer) -> ActiveRootCoord {
    let cfg = milvus::testkit::sample::etcd_config(&etcd.endpoint());
    let e = rt.block_on(Etcd::connect(&cfg)).unwrap();
    let _g = rt.enter();
    ActiveRootCoord::new(
        e,
        Keys::new("by-dev/meta"),
        Duration::from_secs(30),
        Duration::from_secs(5),
    )
}

/// The `total=` of the last "rootcoord activation stages" line in a log.
fn activation_time(log: &str) -> Option<Duration> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("rootcoord activation stages"))?;
    let total = line.split("[total=").nth(1)?.split(']').next()?;
    parse_debug_duration(total)
}

/// Size of the `blob` property of each collection of the large catalog.
const BLOB_BYTES: usize = 900 * 1024;

fn activation_rows(rt: &tokio::runtime::Runtime, sizes: &[(usize, usize)], runs: usize) {
    println!("| collections | catalog MB | standby | runs | activation median ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    for &(n, blob) in sizes {
        let megabytes = n * blob / (1 << 20);
        let etcd = EtcdServer::start();
        let dir = TempDir::new("bench-rc");
        let first = Milvus::start(&bin(), "rootcoord", &env(&etcd, &dir, true), &dir.0);
        assert!(first.wait_state("Healthy", Duration::from_secs(20)));
        let rc = client(rt, &etcd);
        rt.block_on(async {
            for i in 0..n {
                let name = format!("c{i}");
                let req = pb::CreateCollectionRequest {
                    collection_name: name.clone(),
                    schema: milvus::testkit::sample::schema(&name, "128"),
                    properties: if blob > 0 {
                        vec![milvus::testkit::sample::kv("blob", &"x".repeat(blob))]
                    } else {
                        vec![]
                    },
                    ..Default::default()
                };
                let s = rc
                    .call(req, |mut c, r| async move { c.create_collection(r).await })
                    .await
                    .unwrap();
                assert_eq!(s.code, 0, "{s:?}");
            }
        });
        let mut active = first;
        for hot in [true, false] {
            let mut xs = Vec::new();
            for _ in 0..runs {
                let next = Milvus::start(&bin(), "rootcoord", &env(&etcd, &dir, hot), &dir.0);
                assert!(next.wait_state("StandBy", Duration::from_secs(60)));
                // A hot standby has the catalog in memory before the handover.
                if hot {
                    assert!(
                        next.wait_log("hot standby follows the catalog", Duration::from_secs(120)),
                        "{}",
                        next.log()
                    );
                }
                active.signal(Signal::SIGTERM);
                assert!(
                    next.wait_state("Healthy", Duration::from_secs(120)),
                    "{}",
                    next.log()
                );
                xs.push(activation_time(&next.log()).expect("activation line"));
                active = next;
            }
            let (med, p99) = median_p99(&mut xs);
            let kind = if hot { "hot" } else { "cold (reload)" };
            println!(
                "| {n} | {megabytes} | {kind} | {runs} | {} | {} |",
                ms(med),
                ms(p99)
            );
        }
    }
}

fn throughput_rows(rt: &tokio::runtime::Runtime, seconds: u64) {
    let etcd = EtcdServer::start();
    let dir = TempDir::new("bench-tso");
    let a = Milvus::start(&bin(), "rootcoord", &env(&etcd, &dir, true), &dir.0);
    assert!(a.wait_state("Healthy", Duration::from_secs(20)));
    println!();
    println!("| AllocTimestamp clients | calls/s | median latency ms | p99 ms |");
    println!("|---|---|---|---|");
    for clients in [1usize, 8] {
        let lat: Vec<Duration> = rt.block_on(async {
            let tasks: Vec<_> = (0..clients)
                .map(|_| {
                    let url = format!("http://127.0.0.1:{}", a.port);
                    tokio::spawn(async move {
                        let mut c = RootCoordClient::connect(url).await.unwrap();
                        let end = Instant::now() + Duration::from_secs(seconds);
                        let mut lat = Vec::new();
                        while Instant::now() < end {
                            let t = Instant::now();
                            let r = c
                                .alloc_timestamp(AllocRequest { count: 1 })
                                .await
                                .unwrap()
                                .into_inner();
                            assert_eq!(r.status.unwrap().code, 0);
                            lat.push(t.elapsed());
                        }
                        lat
                    })
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all
        });
        let mut lat = lat;
        let n = lat.len();
        let (med, p99) = median_p99(&mut lat);
        println!(
            "| {clients} | {:.0} | {} | {} |",
            n as f64 / seconds as f64,
            ms(med),
            ms(p99)
        );
    }
}

fn main() {
    let runs = arg("--runs", 5);
    let max = arg("--max", 10_000);
    let seconds = arg("--seconds", 5) as u64;
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
    let catalog_mb = arg("--catalog-mb", 100);
    let mut sizes: Vec<(usize, usize)> = [10, 1_000, 10_000]
        .into_iter()
        .filter(|n| *n <= max)
        .map(|n| (n, 0))
        .collect();
    if catalog_mb > 0 {
        sizes.push(((catalog_mb << 20).div_ceil(BLOB_BYTES), BLOB_BYTES));
    }
    activation_rows(&rt, &sizes, runs);
    throughput_rows(&rt, seconds);
}
