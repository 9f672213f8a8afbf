//! The seed's docker-compose recipe for real: `deploy/docker-compose.yml` brought up in a
//! Docker engine with the images `scripts/build_images.sh` builds from Debian packages
//! (no registry), then killed, partitioned, restarted and taken down and up again while
//! a pymilvus client works through the published proxy port.
//!
//! Needs a running Docker engine, `docker-compose` and `debootstrap` (`.ci/run` installs
//! Debian's `docker.io`, `docker-compose` and `debootstrap` and starts `dockerd`); without
//! them the test fails and says what is missing. One compose project at a time: the
//! containers have the fixed names Milvus's compose file gives them (`milvus-rootcoord`).

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::data::{run_script, summary, wait_until};
use milvus::testkit::{python, Spawned, TempDir};
use serde_json::Value;

const PROJECT: &str = "milvushatest";
/// `common.session.ttl`'s default: a killed active coordinator's lease runs this long.
const TTL_S: u64 = 10;
const COORDS: [&str; 4] = ["rootcoord", "datacoord", "querycoord", "indexcoord"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker {args:?}: {e}"))
}

fn docker_ok(args: &[&str]) -> String {
    let o = docker(args);
    assert!(o.status.success(), "docker {args:?} failed:\n{}", text(&o));
    text(&o)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The compose project under test; `down -v` when dropped (its logs printed on failure).
struct Compose {
    port: u16,
    files: Vec<PathBuf>,
}

impl Compose {
    fn new() -> Compose {
        let o = Command::new("docker").arg("info").output();
        assert!(
            o.as_ref().is_ok_and(|o| o.status.success()),
            "no Docker engine answers `docker info`: start one (as root: `dockerd &`; .ci/run \
             does) or install it with scripts/install_deps.sh --docker"
        );
        let o = Command::new("docker-compose").arg("version").output();
        assert!(
            o.as_ref().is_ok_and(|o| o.status.success()),
            "docker-compose not found: install Debian's docker-compose (scripts/install_deps.sh --docker)"
        );
        // The images, from the binary under test (skipped when nothing changed).
        let o = Command::new("bash")
            .arg(repo().join("scripts/build_images.sh"))
            .env("MILVUS_BIN", env!("CARGO_BIN_EXE_milvus"))
            .output()
            .expect("run scripts/build_images.sh");
        assert!(o.status.success(), "build_images.sh failed:\n{}", text(&o));
        eprintln!("images:\n{}", String::from_utf8_lossy(&o.stdout));
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Compose {
            port,
            files: vec![repo().join("deploy/docker-compose.yml")],
        };
        // A project left by an interrupted run would hold the container names.
        c.run(&["down", "-v", "--remove-orphans"]);
        c
    }

    fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn command(&self, files: &[PathBuf], args: &[&str]) -> Output {
        let mut cmd = Command::new("docker-compose");
        cmd.arg("-p").arg(PROJECT);
        for f in files {
            cmd.arg("-f").arg(f);
        }
        cmd.args(args)
            .env("MILVUS_PROXY_PORT", self.port.to_string())
            .current_dir(repo())
            .output()
            .expect("run docker-compose")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(&self.files, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "docker-compose {args:?} failed:\n{}",
            text(&o)
        );
        text(&o)
    }

    fn services(&self) -> Vec<String> {
        self.ok(&["config", "--services"])
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    /// The health of a service's container (`healthy`, `starting`, `unhealthy`, or its
    /// state when it has none).
    fn health(service: &str) -> String {
        let o = docker(&[
            "inspect",
            "-f",
            "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}",
            &container(service),
        ]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Waits until every service's container is healthy; panics naming those that are not.
    fn wait_healthy(&self, limit: Duration) {
        let services = self.services();
        let ok = wait_until(limit, || {
            services.iter().all(|s| Self::health(s) == "healthy")
        });
        let states: Vec<String> = services
            .iter()
            .map(|s| format!("{s}={}", Self::health(s)))
            .collect();
        assert!(ok, "not every service healthy within {limit:?}: {states:?}");
    }

    /// `milvus status --json` inside a milvus container that is running.
    fn status(&self) -> Vec<Value> {
        for c in ["milvus-proxy", "milvus-querynode", "milvus-datanode"] {
            let o = docker(&["exec", c, "milvus", "status", "--json"]);
            if o.status.success() {
                if let Ok(Value::Array(rows)) = serde_json::from_slice(&o.stdout) {
                    return rows;
                }
            }
        }
        Vec::new()
    }

    /// The container whose process holds `role`'s ACTIVE key, with its ServerID.
    fn active(&self, role: &str) -> Option<(String, i64)> {
        self.with_state(role, "ACTIVE").into_iter().next()
    }

    /// The containers (by their advertised address) in `state` for `role`.
    fn with_state(&self, role: &str, state: &str) -> Vec<(String, i64)> {
        self.status()
            .iter()
            .filter(|r| r["role"] == role && r["state"] == state)
            .map(|r| {
                let host = r["address"]
                    .as_str()
                    .unwrap_or("")
                    .split(':')
                    .next()
                    .unwrap_or("");
                (container(host), r["ServerID"].as_i64().unwrap_or(-1))
            })
            .collect()
    }

    fn logs_since(container: &str, since_ms: i64) -> String {
        let since = format!("{:.3}", since_ms as f64 / 1000.0);
        text(&docker(&["logs", "--since", &since, container]))
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let o = self.run(&["logs", "--no-color", "--tail", "40"]);
            eprintln!("docker-compose logs (last 40 lines each):\n{}", text(&o));
            let o = self.run(&["ps"]);
            eprintln!("{}", text(&o));
        }
        self.run(&["down", "-v", "--remove-orphans"]);
    }
}

/// Milvus's container names: service `rootcoord-1` runs in `milvus-rootcoord-1`.
fn container(service: &str) -> String {
    format!("milvus-{service}")
}

fn client(args: &[&str]) -> (bool, String) {
    run_script(&repo().join("tests/python/deploy_client.py"), args)
}

fn spawn_client(args: &[&str]) -> Spawned {
    let script = repo().join("tests/python/deploy_client.py");
    let mut all = vec![script.to_str().expect("UTF-8 path")];
    all.extend_from_slice(args);
    Spawned::start(&python(), &all)
}

/// A client running DDL, inserts, flushes, searches and queries until [`Nonstop::stop`].
struct Nonstop {
    client: Spawned,
    stop: PathBuf,
    _dir: TempDir,
}

impl Nonstop {
    fn start(uri: &str) -> Nonstop {
        let dir = TempDir::new("deploy-nonstop");
        let stop = dir.0.join("stop");
        let mut client = spawn_client(&["nonstop", uri, stop.to_str().unwrap()]);
        client.wait_started(Duration::from_secs(120));
        Nonstop {
            client,
            stop,
            _dir: dir,
        }
    }

    /// Stops the loop; asserts no call failed; returns the summary.
    fn stop(self) -> Value {
        std::fs::write(&self.stop, b"stop").unwrap();
        let (ok, out) = self.client.finish();
        assert!(ok, "the nonstop client saw failed calls:\n{out}");
        let s = summary(&out);
        assert!(s["calls"].as_i64().unwrap_or(0) > 0, "{out}");
        s
    }
}

/// Kills the active coordinator's container (SIGKILL), waits for the other one to take
/// over, starts the killed one again and waits until it is STANDBY. Returns the takeover
/// time (kill to the new ACTIVE key, as `milvus status` shows it).
fn kill_active(c: &Compose, role: &str) -> Duration {
    let (victim, old_id) = c
        .active(role)
        .unwrap_or_else(|| panic!("no ACTIVE {role}: {:?}", c.status()));
    let t0 = Instant::now();
    let t0_ms = now_ms();
    docker_ok(&["kill", "-s", "KILL", &victim]);
    let mut took = None;
    let mut successor = String::new();
    let ok = wait_until(Duration::from_secs(TTL_S + 20), || match c.active(role) {
        Some((now, id)) if now != victim && id != old_id => {
            took = Some(t0.elapsed());
            successor = now;
            true
        }
        _ => false,
    });
    assert!(
        ok,
        "no {role} took over from {victim} within {}s: {:?}",
        TTL_S + 20,
        c.status()
    );
    // The killed container's process closed its connections as it died: the standby took
    // that as evidence and did not wait out the lease.
    let log = Compose::logs_since(&successor, t0_ms - 1000);
    let evidence = common::log_time_ms(
        &log,
        "is gone; revoked its session lease instead of waiting for its TTL",
    )
    .unwrap_or_else(|| {
        panic!("{successor} took over without evidence of {victim}'s death:\n{log}")
    });
    eprintln!(
        "figure: {role} kill to evidence in the standby's log: {} ms",
        evidence - t0_ms
    );
    docker_ok(&["start", &victim]);
    let back = wait_until(Duration::from_secs(60), || {
        c.with_state(role, "STANDBY")
            .iter()
            .any(|(name, _)| *name == victim)
    });
    assert!(back, "{victim} did not rejoin as STANDBY: {:?}", c.status());
    took.unwrap()
}

/// Cuts the active rootcoord's container off the compose network (it keeps running):
/// the standby takes over within TTL + 1 s, the cut-off process stops acting on its
/// session before that, never registers under its old ServerID again, and rejoins as
/// STANDBY once reconnected. Returns the takeover time from the standby's log.
fn partition_active_rootcoord(c: &Compose) -> Duration {
    let network = format!("{PROJECT}_default");
    let (victim, old_id) = c.active("rootcoord").expect("an ACTIVE rootcoord");
    let other = if victim == container("rootcoord") {
        container("rootcoord-1")
    } else {
        container("rootcoord")
    };
    let t0 = now_ms();
    docker_ok(&["network", "disconnect", &network, &victim]);
    let ok = wait_until(Duration::from_secs(TTL_S + 20), || {
        c.active("rootcoord").is_some_and(|(now, _)| now == other)
    });
    assert!(
        ok,
        "{other} did not take over from the cut-off {victim}: {:?}",
        c.status()
    );
    let standby_log = Compose::logs_since(&other, t0 - 1000);
    let victim_log = Compose::logs_since(&victim, t0 - 1000);
    let took = common::log_time_ms(&standby_log, "register ACTIVE service successfully")
        .unwrap_or_else(|| panic!("{other} logged no takeover:\n{standby_log}"));
    let stopped = common::log_time_ms(
        &victim_log,
        "session lease lost, this process stops acting on it",
    )
    .unwrap_or_else(|| panic!("the cut-off {victim} never stopped acting:\n{victim_log}"));
    assert!(
        took - t0 <= (TTL_S as i64) * 1000 + 1000,
        "takeover {} ms after the partition (TTL {TTL_S} s + 1 s allowed)",
        took - t0
    );
    assert!(
        stopped <= took,
        "the cut-off {victim} stopped acting at {stopped}, after the standby took over at {took}"
    );
    // A cut-off process is alive: no evidence of death, only its lease's expiry.
    assert!(
        !standby_log.contains("is gone; revoked"),
        "the standby took a partitioned active for dead:\n{standby_log}"
    );
    // Reconnect under its service name (the alias its address uses).
    let alias = victim.trim_start_matches("milvus-");
    docker_ok(&["network", "connect", "--alias", alias, &network, &victim]);
    let back = wait_until(Duration::from_secs(60), || {
        c.with_state("rootcoord", "STANDBY")
            .iter()
            .any(|(name, id)| *name == victim && *id != old_id)
    });
    assert!(back, "{victim} did not rejoin as STANDBY: {:?}", c.status());
    assert!(
        !c.status()
            .iter()
            .any(|r| r["ServerID"].as_i64() == Some(old_id)),
        "the cut-off process's old session {old_id} is registered again: {:?}",
        c.status()
    );
    Duration::from_millis((took - t0) as u64)
}

#[test]
fn compose_cluster_survives_kills_partitions_restarts_and_down_up() {
    let c = Compose::new();

    // 1. Up: every service healthy within 60 s; the docs quickstart runs unchanged.
    let t0 = Instant::now();
    c.ok(&["up", "-d"]);
    c.wait_healthy(Duration::from_secs(60));
    eprintln!("figure: up -d to every service healthy: {:?}", t0.elapsed());
    let ok = wait_until(Duration::from_secs(30), || {
        COORDS
            .iter()
            .all(|r| c.active(r).is_some() && !c.with_state(r, "STANDBY").is_empty())
    });
    assert!(
        ok,
        "not one ACTIVE and one STANDBY per coordinator: {:?}",
        c.status()
    );
    let quick = repo().join("tests/python/read_client.py");
    let (ok, out) = run_script(&quick, &["quickstart", &c.uri()]);
    assert!(
        ok,
        "the quickstart failed against the compose cluster:\n{out}"
    );

    // The indexnode's container gets a quarter of the default CPU weight (its builds'
    // nice value does not rank it below a querynode in another container).
    let shares = |service: &str| {
        docker_ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.CpuShares}}",
            &container(service),
        ])
        .trim()
        .to_string()
    };
    assert_eq!(shares("indexnode"), "256");
    assert_eq!(shares("querynode"), "0", "the default weight (1024)");

    // 5 (prepared here, checked after down/up): acknowledged rows, collection and index.
    let (ok, reference) = client(&["prepare", &c.uri(), "deploy_keep", "5000"]);
    assert!(ok, "{reference}");
    let reference = reference
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap()
        .to_string();

    // 2 and 3. SIGKILL each active coordinator's container in turn, then cut the active
    // rootcoord off the network, under a client that must see no failed call.
    let load = Nonstop::start(&c.uri());
    for role in COORDS {
        let took = kill_active(&c, role);
        eprintln!("figure: {role} takeover after docker kill: {took:?}");
    }
    let took = partition_active_rootcoord(&c);
    eprintln!("figure: rootcoord takeover after a partition: {took:?}");
    let s = load.stop();
    eprintln!("nonstop client during kills and partition: {s}");

    // 4. `docker-compose restart` of every service, one at a time, under the client.
    let load = Nonstop::start(&c.uri());
    for service in c.services() {
        c.ok(&["restart", &service]);
        c.wait_healthy(Duration::from_secs(60));
    }
    c.wait_healthy(Duration::from_secs(60));
    let s = load.stop();
    eprintln!("nonstop client during restarts: {s}");

    // 5. down, then up with the volumes kept: the rows, the collection, the index and the
    // neighbours are all there.
    c.ok(&["down"]);
    c.ok(&["up", "-d"]);
    c.wait_healthy(Duration::from_secs(60));
    let (ok, out) = client(&["verify", &c.uri(), "deploy_keep", &reference]);
    assert!(ok, "after down and up:\n{out}");

    // 6. A bad value in one service's environment: that container exits 2, its logs say
    // what is wrong, and the rest keeps serving.
    let dir = TempDir::new("deploy-bad-env");
    let bad = dir.0.join("bad.yml");
    std::fs::write(
        &bad,
        "services:\n  indexnode:\n    environment:\n      INDEX_NODE_BUILD_PARALLEL: \"many\"\n",
    )
    .unwrap();
    let files = vec![c.files[0].clone(), bad];
    let o = c.command(&files, &["up", "-d", "--no-deps", "indexnode"]);
    assert!(o.status.success(), "{}", text(&o));
    let exited = wait_until(Duration::from_secs(30), || {
        docker(&["inspect", "-f", "{{.State.ExitCode}}", "milvus-indexnode"]).stdout == b"2\n"
    });
    assert!(exited, "indexnode with a bad environment did not exit 2");
    let logs = c.ok(&["logs", "--no-color", "indexnode"]);
    assert!(
        logs.contains("INDEX_NODE_BUILD_PARALLEL") && logs.contains("many"),
        "the logs do not name the variable and the value:\n{logs}"
    );
    let (ok, out) = client(&["verify", &c.uri(), "deploy_keep", &reference]);
    assert!(
        ok,
        "with one bad container the rest did not keep serving:\n{out}"
    );
    c.ok(&["up", "-d", "--no-deps", "indexnode"]);
    c.wait_healthy(Duration::from_secs(60));
}

/// The Helm chart, checked the only way possible here (no Kubernetes cluster can run):
/// the real `helm` (scripts/get_helm.sh) lints and renders it with the defaults and with
/// the coordinator-HA page's values, every object validates against the Kubernetes 1.30
/// schemas, and tests/python/helm_chart.py asserts on the objects and feeds the rendered
/// configuration through the binary's own loader.
#[test]
fn helm_chart_renders_valid_objects_with_milvus_values() {
    let o = Command::new("bash")
        .arg(repo().join("scripts/get_helm.sh"))
        .output()
        .expect("run scripts/get_helm.sh");
    assert!(o.status.success(), "no helm binary:\n{}", text(&o));
    let helm = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let (ok, out) = run_script(
        &repo().join("tests/python/helm_chart.py"),
        &[
            &helm,
            env!("CARGO_BIN_EXE_milvus"),
            repo().join("deploy/helm/milvus").to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
}
