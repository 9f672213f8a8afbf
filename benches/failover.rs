//! Failover benchmark: how long until a standby serves, after the active is stopped
//! (SIGTERM) or crashes (SIGKILL), side by side with etcd's own election primitives
//! (`etcdctl elect`, `etcdctl lock --ttl`) on the same etcd.
//!
//! A panic in the active and the kernel's OOM kill of it (a memory cgroup; needs root)
//! are timed like a SIGKILL.
//!
//! A paused active (SIGSTOP) is measured too, with how many of those pauses were taken
//! over early (on evidence of death, or before the lease could have expired): a live
//! process must never be.
//!
//! Workers: `--workers N` measures instead N SIGKILLs of the querynode serving a
//! single-replica collection's shards to the first full Strong search, the same for a
//! 2-replica collection (the other replica serves), and N SIGKILLs of
//! the datanode consuming its channels to the first completed flush, and N SIGKILLs of
//! the indexnode in the middle of a build to that build started again on the other
//! indexnode (a whole cluster, default TTL 10 s; `benches/workload/worker_failover.py`
//! drives pymilvus).
//!
//! `cargo bench --bench failover` (options after `--`: `--runs N`, `--crash-runs N`,
//! `--pause-runs N`, `--etcd-only` for the etcdctl rows alone, `--crash-only` for the
//! rootcoord crash rows alone (SIGKILL, panic, OOM kill), `--workers N`).
//! Prints median and p99 of each measure, in milliseconds, as a Markdown table.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use milvus::testkit::memlimit::MemoryLimit;
use milvus::testkit::stats::{arg, median_p99, ms};
use milvus::testkit::{python, wait_until, BenchCluster, EtcdServer, Milvus, TempDir};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_milvus"))
}

/// The time `m` first answers Healthy (polled every millisecond), or `None` after `limit`.
fn wait_healthy(m: &Milvus, limit: Duration) -> Option<Instant> {
    m.state_reached("Healthy", Duration::from_millis(1), limit)
}

/// An HA rootcoord pair on `etcd` with session TTL `ttl`: (active, standby).
fn milvus_pair(etcd: &EtcdServer, dir: &TempDir, ttl: u64) -> (Milvus, Milvus) {
    let env = vec![
        ("ETCD_ENDPOINTS".to_string(), etcd.endpoint()),
        ("COMMON_SESSION_TTL".to_string(), ttl.to_string()),
        (
            "ROOT_COORD_ENABLE_ACTIVE_STANDBY".to_string(),
            "true".to_string(),
        ),
        ("MILVUS_PID_DIR".to_string(), dir.0.display().to_string()),
        ("LOG_LEVEL".to_string(), "warn".to_string()),
        // SIGUSR2 panics, SIGUSR1 grows until the OOM killer ends it (src/crash.rs).
        (milvus::crash::TEST_FAULTS_ENV.to_string(), "1".to_string()),
    ];
    let a = Milvus::start(&bin(), "rootcoord", &env, &dir.0);
    wait_healthy(&a, Duration::from_secs(30)).expect("first rootcoord never became active");
    let b = Milvus::start(&bin(), "rootcoord", &env, &dir.0);
    assert!(
        b.wait_state("StandBy", Duration::from_secs(10)),
        "no standby"
    );
    // Let the active's keep-alive cycle run for a while, as in a long-lived deployment.
    std::thread::sleep(Duration::from_millis(300));
    (a, b)
}

/// How the active is ended.
#[derive(Clone, Copy)]
enum End {
    /// A signal (SIGTERM: graceful; SIGKILL: a crash).
    Signal(Signal),
    /// A panic on one of its runtime tasks (the test faults' SIGUSR2).
    Panic,
    /// The kernel's OOM killer: a 64 MiB memory cgroup, then unbounded allocation (the
    /// test faults' SIGUSR1).
    Oom,
}

/// One handover of an HA rootcoord pair: the time from the end of the active (the
/// signal, the panic's trigger, the allocation's start) to the standby serving.
fn milvus_handover(etcd: &EtcdServer, dir: &TempDir, ttl: u64, end: End) -> Duration {
    let (mut a, b) = milvus_pair(etcd, dir, ttl);
    let limit = matches!(end, End::Oom).then(|| MemoryLimit::apply(a.pid(), 64 << 20));
    let sent = Instant::now();
    a.signal(match end {
        End::Signal(sig) => sig,
        End::Panic => Signal::SIGUSR2,
        End::Oom => Signal::SIGUSR1,
    });
    let at = wait_healthy(&b, Duration::from_secs(ttl * 3)).expect("standby never took over");
    let status = a.wait_exit(Duration::from_secs(10));
    if let Some(limit) = limit {
        assert_eq!(
            limit.oom_kills(),
            1,
            "not ended by the OOM killer: {status:?}"
        );
    }
    if matches!(end, End::Panic) {
        use std::os::unix::process::ExitStatusExt;
        let signal = status.and_then(|s| s.signal());
        assert_eq!(signal, Some(6), "a panic did not abort the process");
    }
    at - sent
}

/// One pause (SIGSTOP) of the active: the time to the standby serving, and whether the
/// takeover was early: on evidence of death (the standby's log says the holder is gone),
/// or sooner than etcd could have expired the lease (its last keep-alive was at most
/// TTL/3 before the pause, so expiry comes no sooner than 2/3 TTL after it).
fn milvus_pause(etcd: &EtcdServer, dir: &TempDir, ttl: u64) -> (Duration, bool) {
    let (a, b) = milvus_pair(etcd, dir, ttl);
    let sent = Instant::now();
    a.signal(Signal::SIGSTOP);
    let at = wait_healthy(&b, Duration::from_secs(ttl * 3)).expect("standby never took over");
    a.signal(Signal::SIGCONT);
    let took = at - sent;
    let early = b.log().contains("is gone; revoked") || took < Duration::from_secs(ttl) * 2 / 3;
    (took, early)
}

/// Spawns `etcdctl <args>` and returns it with a channel that gets the time of its
/// first line of output (the moment it holds the election or lock).
fn etcdctl(endpoint: &str, args: &[&str]) -> (Child, mpsc::Receiver<Instant>) {
    let mut child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcdctl not found (Debian package etcd-client)");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(out).lines();
        if let Some(Ok(_)) = lines.next() {
            let _ = tx.send(Instant::now());
        }
        for _ in lines {}
    });
    (child, rx)
}

/// Stops an etcdctl gracefully (it revokes its session), so the next round starts clean.
fn stop(mut c: Child) {
    let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// How many candidates (keys under `<name>/`) an etcd election or lock has.
fn candidates(etcd: &EtcdServer, name: &str) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut c = etcd_client::Client::connect([etcd.endpoint()], None)
            .await
            .expect("etcd");
        let opts = etcd_client::GetOptions::new()
            .with_prefix()
            .with_count_only();
        tokio::time::timeout(
            Duration::from_secs(5),
            c.get(format!("{name}/"), Some(opts)),
        )
        .await
        .expect("etcd get timed out")
        .map_or(0, |r| r.count() as usize)
    })
}

/// One handover between two `etcdctl` holders of the same election or lock.
fn etcd_handover(etcd: &EtcdServer, args: &[&str], sig: Signal, limit: Duration) -> Duration {
    let (first, got1) = etcdctl(&etcd.endpoint(), args);
    got1.recv_timeout(Duration::from_secs(10))
        .expect("first etcdctl never won");
    let (second, got2) = etcdctl(&etcd.endpoint(), args);
    // The second is campaigning once its key is under the election's prefix too.
    let name = args
        .iter()
        .find(|a| a.starts_with("bench-"))
        .expect("election name");
    assert!(
        wait_until(Duration::from_secs(10), || candidates(etcd, name) == 2),
        "the second etcdctl never campaigned"
    );
    assert!(
        got2.try_recv().is_err(),
        "second etcdctl won while the first held"
    );
    let sent = Instant::now();
    let _ = kill(Pid::from_raw(first.id() as i32), sig);
    let at = got2.recv_timeout(limit).expect("second etcdctl never won");
    stop(first);
    stop(second);
    at - sent
}

fn row(name: &str, ttl: Option<u64>, mut xs: Vec<Duration>) {
    let (med, p99) = median_p99(&mut xs);
    let mult = |d: Duration| match ttl {
        Some(t) => format!("{:.2}", d.as_secs_f64() / t as f64),
        None => "-".to_string(),
    };
    println!(
        "| {name} | {} | {} | {} | {} | {} |",
        xs.len(),
        ms(med),
        ms(p99),
        mult(med),
        mult(p99)
    );
}

/// SIGKILLs of workers in a whole cluster: for each of `runs`, the oldest querynode (it
/// serves shards: each replacement starts empty) is killed and the time to the first full
/// Strong search is taken; then the same for the oldest datanode and a completed flush;
/// then the indexnode that started a build (50,000 x 64 HNSW), to that build started again
/// on the other indexnode. A replacement is started after each kill.
fn worker_rows(runs: usize) {
    use std::io::Write;
    let roles = [
        "rootcoord",
        "datacoord",
        "querycoord",
        "indexcoord",
        "datanode",
        "datanode",
        "indexnode",
        "indexnode",
        "querynode",
        "querynode",
        "proxy",
    ];
    // At `info` the indexnodes log each build they start (the indexnode row needs it).
    let mut c = BenchCluster::start(&bin(), &roles, &[("LOG_LEVEL", "info")]);
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/workload/worker_failover.py");
    let mut helper = Command::new(python())
        .arg(script)
        .arg(c.proxy_uri())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    let mut input = helper.stdin.take().unwrap();
    let mut output = BufReader::new(helper.stdout.take().unwrap()).lines();
    let mut next = || -> serde_json::Value {
        let line = output
            .next()
            .expect("the pymilvus helper ended")
            .expect("read");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    assert_eq!(next()["ready"], true);
    for (role, cmd, name) in [
        (
            "querynode",
            "search",
            "querynode SIGKILL to a full Strong search of its shards (1 replica), TTL 10 s",
        ),
        (
            "querynode",
            "search2",
            "querynode SIGKILL to a full Strong search of a 2-replica collection (the other replica serves), TTL 10 s",
        ),
        (
            "datanode",
            "flush",
            "datanode SIGKILL to a completed flush of its channels, TTL 10 s",
        ),
    ] {
        let mut xs = Vec::new();
        for _ in 0..runs {
            if cmd == "search2" {
                // Both replicas served again (the last replacement loaded) before a kill.
                writeln!(input, "settle2").unwrap();
                let reply = next();
                assert!(reply["done"].is_number(), "settle2: {reply}");
            }
            let i = c.procs.iter().position(|m| m.role == role).unwrap();
            let mut victim = c.procs.remove(i);
            let sent = std::time::SystemTime::now();
            victim.signal(Signal::SIGKILL);
            // Dead before the first call, so no answer comes from it.
            assert!(wait_until(Duration::from_secs(5), || victim
                .exited()
                .is_some()));
            writeln!(input, "{cmd}").unwrap();
            let reply = next();
            let done = reply["done"]
                .as_f64()
                .unwrap_or_else(|| panic!("{role} {cmd}: {reply}"));
            // Calls the helper made until one succeeded (1: the first call did).
            eprintln!("{role} {cmd}: {} call(s)", reply["attempts"]);
            let sent = sent
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            xs.push(Duration::from_secs_f64((done - sent).max(0.0)));
            drop(victim);
            c.add(role);
        }
        row(name, Some(10), xs);
    }
    // An indexnode killed mid-build: its build must start again on the other one.
    let mut xs = Vec::new();
    let mut whole = Vec::new();
    for _ in 0..runs {
        writeln!(input, "prepare").unwrap();
        let reply = next();
        assert!(reply["done"].is_number(), "prepare: {reply}");
        let started = |m: &Milvus| m.count_log("index build started");
        let before: Vec<usize> = c.procs.iter().map(started).collect();
        writeln!(input, "index").unwrap();
        let mut victim = None;
        assert!(
            wait_until(Duration::from_secs(60), || {
                victim = c
                    .procs
                    .iter()
                    .zip(&before)
                    .position(|(m, b)| m.role == "indexnode" && started(m) > *b);
                victim.is_some()
            }),
            "no indexnode started the build"
        );
        let victim = c.procs.remove(victim.unwrap());
        let build = build_of_last_start(&victim.log());
        let t0 = Instant::now();
        victim.signal(Signal::SIGKILL);
        let needle = format!("[build={build}]");
        let mut took = None;
        let restarted = wait_until(Duration::from_secs(60), || {
            let seen = c.procs.iter().any(|m| {
                m.role == "indexnode"
                    && m.log()
                        .lines()
                        .any(|l| l.contains("index build started") && l.contains(&needle))
            });
            if seen {
                took = Some(t0.elapsed());
            }
            seen
        });
        assert!(restarted, "build {build} was not started again");
        xs.push(took.unwrap());
        let reply = next();
        let built = reply["build_s"]
            .as_f64()
            .unwrap_or_else(|| panic!("index: {reply}"));
        whole.push(Duration::from_secs_f64(built));
        drop(victim);
        c.add("indexnode");
    }
    row(
        "indexnode SIGKILL mid-build to the build started again on the other indexnode, TTL 10 s",
        Some(10),
        xs,
    );
    row(
        "create_index call with its indexnode SIGKILLed mid-build (50,000 x 64 HNSW), TTL 10 s",
        None,
        whole,
    );
    drop(input);
    let _ = helper.wait();
}

/// The build ID of the last "index build started" line of a log.
fn build_of_last_start(log: &str) -> String {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("index build started"))
        .expect("a build started");
    let at = line.find("[build=").expect("a build field") + "[build=".len();
    line[at..].split(']').next().unwrap().to_string()
}

fn main() {
    let workers = arg("--workers", 0);
    if workers > 0 {
        println!("| measure | runs | median ms | p99 ms | median / TTL | p99 / TTL |");
        println!("|---|---|---|---|---|---|");
        worker_rows(workers);
        return;
    }
    let runs = arg("--runs", 20);
    let crash_runs = arg("--crash-runs", 8);
    let pause_runs = arg("--pause-runs", 8);
    let only_etcd = std::env::args().any(|a| a == "--etcd-only");
    let only_crash = std::env::args().any(|a| a == "--crash-only");
    let etcd = EtcdServer::start();
    let dir = TempDir::new("bench");
    println!("| measure | runs | median ms | p99 ms | median / TTL | p99 / TTL |");
    println!("|---|---|---|---|---|---|");
    if !only_etcd && !only_crash {
        let xs = (0..runs)
            .map(|_| milvus_handover(&etcd, &dir, 10, End::Signal(Signal::SIGTERM)))
            .collect();
        row("milvus rootcoord, graceful (SIGTERM), TTL 10 s", None, xs);
        // A paused active is alive: it must be replaced only once its lease can have
        // expired, never on (mistaken) evidence of death.
        let outcomes: Vec<(Duration, bool)> = (0..pause_runs)
            .map(|_| milvus_pause(&etcd, &dir, 2))
            .collect();
        let early = outcomes.iter().filter(|(_, e)| *e).count();
        row(
            &format!(
                "milvus rootcoord, paused (SIGSTOP), TTL 2 s: {early} of {pause_runs} taken over early"
            ),
            Some(2),
            outcomes.into_iter().map(|(d, _)| d).collect(),
        );
    }
    if !only_etcd {
        for ttl in [2, 10] {
            let xs = (0..crash_runs)
                .map(|_| milvus_handover(&etcd, &dir, ttl, End::Signal(Signal::SIGKILL)))
                .collect();
            row(
                &format!("milvus rootcoord, crash (SIGKILL), TTL {ttl} s"),
                Some(ttl),
                xs,
            );
        }
        for (end, name) in [
            (End::Panic, "a panic (aborts the process)"),
            (End::Oom, "the kernel's OOM kill (64 MiB memory cgroup)"),
        ] {
            let xs = (0..crash_runs)
                .map(|_| milvus_handover(&etcd, &dir, 10, end))
                .collect();
            row(&format!("milvus rootcoord, {name}, TTL 10 s"), Some(10), xs);
        }
    }
    if only_crash {
        return;
    }
    let xs = (0..runs)
        .map(|_| {
            etcd_handover(
                &etcd,
                &["elect", "bench-elect", "p"],
                Signal::SIGTERM,
                Duration::from_secs(10),
            )
        })
        .collect();
    row("etcdctl elect, graceful (SIGTERM)", None, xs);
    let xs = (0..runs)
        .map(|_| {
            etcd_handover(
                &etcd,
                &["lock", "--ttl=10", "bench-lock"],
                Signal::SIGTERM,
                Duration::from_secs(10),
            )
        })
        .collect();
    row("etcdctl lock --ttl 10, graceful (SIGTERM)", None, xs);
    for ttl in [2u64, 10] {
        let flag = format!("--ttl={ttl}");
        let xs = (0..crash_runs)
            .map(|_| {
                etcd_handover(
                    &etcd,
                    &["lock", &flag, "bench-lock"],
                    Signal::SIGKILL,
                    Duration::from_secs(ttl * 3),
                )
            })
            .collect();
        row(
            &format!("etcdctl lock --ttl {ttl}, crash (SIGKILL)"),
            Some(ttl),
            xs,
        );
    }
    println!();
    println!("(etcdctl elect has no --ttl in etcd 3.4: its session TTL is fixed at 60 s, so its crash case is not measured.)");
}
