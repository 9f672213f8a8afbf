//! Proxy benchmark: requests per second and latency of `DescribeCollection` and
//! `ShowCollections` through the proxy from 1 and 16 concurrent clients, and the
//! longest call a client sees stall while the active rootcoord is stopped (SIGTERM) or
//! crashes (SIGKILL, TTL 2 s).
//!
//! `cargo bench --bench proxy` (options after `--`: `--seconds N`, `--runs N`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use milvus::proto::milvus as pb;
use milvus::testkit::milvus_client::{call, channel};
use milvus::testkit::stats::{arg, median_p99, ms};
use milvus::testkit::{wait_until, EtcdServer, Milvus, TempDir};
use nix::sys::signal::Signal;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_milvus"))
}

fn start(role: &str, etcd: &EtcdServer, dir: &TempDir) -> Milvus {
    let env = vec![
        ("ETCD_ENDPOINTS".to_string(), etcd.endpoint()),
        ("COMMON_SESSION_TTL".to_string(), "2".to_string()),
        (
            "ROOT_COORD_ENABLE_ACTIVE_STANDBY".to_string(),
            "true".to_string(),
        ),
        ("MILVUS_PID_DIR".to_string(), dir.0.display().to_string()),
        ("LOG_LEVEL".to_string(), "warn".to_string()),
    ];
    let m = Milvus::start(&bin(), role, &env, &dir.0);
    let up = wait_until(Duration::from_secs(20), || {
        matches!(m.state().as_deref(), Some("Healthy") | Some("StandBy"))
    });
    assert!(up, "{}", m.log());
    m
}

async fn describe(ch: &tonic::transport::Channel) -> Duration {
    let t = Instant::now();
    let req = pb::DescribeCollectionRequest {
        collection_name: "bench".into(),
        ..Default::default()
    };
    let r: pb::DescribeCollectionResponse = call(ch, "DescribeCollection", req, "").await.unwrap();
    assert_eq!(r.status.unwrap().code, 0);
    t.elapsed()
}

async fn show(ch: &tonic::transport::Channel) -> Duration {
    let t = Instant::now();
    let r: pb::ShowCollectionsResponse = call(
        ch,
        "ShowCollections",
        pb::ShowCollectionsRequest::default(),
        "",
    )
    .await
    .unwrap();
    assert_eq!(r.status.unwrap().code, 0);
    t.elapsed()
}

fn main() {
    let seconds = arg("--seconds", 5) as u64;
    let runs = arg("--runs", 5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _in_runtime = rt.enter();
    let etcd = EtcdServer::start();
    let dir = TempDir::new("bench-proxy");
    let mut rcs = vec![
        start("rootcoord", &etcd, &dir),
        start("rootcoord", &etcd, &dir),
    ];
    let p = start("proxy", &etcd, &dir);
    let ch = channel(p.port);
    rt.block_on(async {
        let req = pb::CreateCollectionRequest {
            collection_name: "bench".into(),
            schema: milvus::testkit::sample::schema("bench", "8"),
            ..Default::default()
        };
        let s: milvus::proto::common::Status =
            call(&ch, "CreateCollection", req, "").await.unwrap();
        assert_eq!(s.code, 0, "{s:?}");
    });

    println!("| RPC through the proxy | clients | requests/s | median ms | p99 ms |");
    println!("|---|---|---|---|---|");
    for rpc in ["DescribeCollection", "ShowCollections"] {
        for clients in [1usize, 16] {
            let mut lat: Vec<Duration> = rt.block_on(async {
                let tasks: Vec<_> = (0..clients)
                    .map(|_| {
                        let ch = channel(p.port);
                        tokio::spawn(async move {
                            let end = Instant::now() + Duration::from_secs(seconds);
                            let mut lat = Vec::new();
                            while Instant::now() < end {
                                lat.push(if rpc == "ShowCollections" {
                                    show(&ch).await
                                } else {
                                    describe(&ch).await
                                });
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
            let n = lat.len();
            let (med, p99) = median_p99(&mut lat);
            println!(
                "| {rpc} | {clients} | {:.0} | {} | {} |",
                n as f64 / seconds as f64,
                ms(med),
                ms(p99)
            );
        }
    }

    println!();
    println!("| rootcoord failover (TTL 2 s) | runs | longest client stall, median ms | p99 ms |");
    println!("|---|---|---|---|");
    for (name, sig) in [
        ("graceful (SIGTERM)", Signal::SIGTERM),
        ("crash (SIGKILL)", Signal::SIGKILL),
    ] {
        let mut stalls = Vec::new();
        for _ in 0..runs {
            let stop = Arc::new(AtomicBool::new(false));
            let worker = {
                let (stop, ch) = (stop.clone(), channel(p.port));
                rt.spawn(async move {
                    let mut longest = Duration::ZERO;
                    while !stop.load(Ordering::SeqCst) {
                        longest = longest.max(describe(&ch).await);
                    }
                    longest
                })
            };
            std::thread::sleep(Duration::from_millis(300));
            let i = rcs
                .iter()
                .position(|r| r.state().as_deref() == Some("Healthy"))
                .unwrap();
            rcs[i].signal(sig);
            let mut old = rcs.remove(i);
            assert!(rcs[0].wait_state("Healthy", Duration::from_secs(5)));
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, Ordering::SeqCst);
            stalls.push(rt.block_on(worker).unwrap());
            // Dropping the handle kills the process: let a stopping one finish first.
            old.wait_exit(Duration::from_secs(5));
            rcs.push(start("rootcoord", &etcd, &dir));
        }
        let (med, p99) = median_p99(&mut stalls);
        println!("| {name} | {runs} | {} | {} |", ms(med), ms(p99));
    }
}
