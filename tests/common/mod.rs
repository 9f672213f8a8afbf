//! Shared set-up for the integration tests: a real etcd, real `milvus` processes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use milvus::testkit::{EtcdServer, Milvus, TempDir};

pub mod data;
pub mod tls;

/// The `milvus` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_milvus"))
}

/// Runs the binary to completion with `args` and extra environment, in `dir`.
pub fn run_cmd(args: &[&str], env: &[(&str, &str)], dir: &Path) -> Output {
    Command::new(bin())
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .current_dir(dir)
        .output()
        .expect("cannot run milvus")
}

/// Text of a command's stdout and stderr together.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A test cluster: one etcd, a log dir, a pid dir, and the processes started.
pub struct Cluster {
    pub etcd: EtcdServer,
    pub dir: TempDir,
    pub ttl: u64,
    env: Vec<(String, String)>,
}

impl Cluster {
    /// A fresh etcd and settings for processes with session TTL `ttl` seconds.
    pub fn new(ttl: u64) -> Cluster {
        let etcd = EtcdServer::start();
        Cluster::with_endpoints(etcd, ttl)
    }

    /// Uses this etcd (its endpoint) for the processes.
    pub fn with_endpoints(etcd: EtcdServer, ttl: u64) -> Cluster {
        let dir = TempDir::new("cluster");
        std::fs::create_dir_all(dir.0.join("pids")).unwrap();
        let env = vec![
            ("ETCD_ENDPOINTS".to_string(), etcd.endpoint()),
            ("COMMON_SESSION_TTL".to_string(), ttl.to_string()),
            ("LOG_LEVEL".to_string(), "debug".to_string()),
            (
                "MILVUS_PID_DIR".to_string(),
                dir.0.join("pids").display().to_string(),
            ),
            (
                "LOCAL_STORAGE_PATH".to_string(),
                dir.0.join("data").display().to_string(),
            ),
        ];
        Cluster {
            etcd,
            dir,
            ttl,
            env,
        }
    }

    /// Sets a variable for every process started after this.
    pub fn set(&mut self, k: &str, v: &str) {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.to_string(), v.to_string()));
    }

    /// The environment processes get.
    pub fn env(&self) -> Vec<(String, String)> {
        self.env.clone()
    }

    /// Starts `milvus run <role>` with the cluster's environment plus `extra`.
    pub fn start(&self, role: &str, extra: &[(&str, &str)]) -> Milvus {
        let mut env = self.env.clone();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Milvus::start(&bin(), role, &env, &self.dir.0)
    }

    /// Starts an HA rootcoord.
    pub fn rootcoord_ha(&self) -> Milvus {
        self.start("rootcoord", &[("ROOT_COORD_ENABLE_ACTIVE_STANDBY", "true")])
    }

    /// Runs a one-shot subcommand with the cluster's environment.
    pub fn cmd(&self, args: &[&str]) -> Output {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        run_cmd(args, &env, &self.dir.0)
    }

    /// Every key and value under `prefix` in etcd.
    pub fn etcd_get_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        etcd_get_prefix(&self.etcd.endpoint(), prefix)
    }

    /// The session keys (ServerID counter excluded), sorted.
    pub fn session_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .etcd_get_prefix("by-dev/meta/session/")
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k != "by-dev/meta/session/id")
            .collect();
        keys.sort();
        keys
    }
}

/// A fresh cluster with session TTL `ttl` s, an HA rootcoord pair (active first) and a
/// proxy, each waited for.
pub fn ha_pair_and_proxy(ttl: u64) -> (Cluster, Vec<Milvus>, Milvus) {
    let sec = Duration::from_secs(1);
    let c = Cluster::new(ttl);
    let a = c.rootcoord_ha();
    assert!(a.wait_state("Healthy", 10 * sec), "{}", a.log());
    let b = c.rootcoord_ha();
    assert!(b.wait_state("StandBy", 10 * sec), "{}", b.log());
    let p = c.start("proxy", &[]);
    assert!(p.wait_state("Healthy", 10 * sec), "{}", p.log());
    (c, vec![a, b], p)
}

/// Every key and value under `prefix` at `endpoint`.
pub fn etcd_get_prefix(endpoint: &str, prefix: &str) -> Vec<(String, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = etcd_client::Client::connect([endpoint], None)
            .await
            .unwrap();
        let resp = tokio::time::timeout(
            Duration::from_secs(5),
            c.get(prefix, Some(etcd_client::GetOptions::new().with_prefix())),
        )
        .await
        .expect("etcd get timed out")
        .unwrap();
        resp.kvs()
            .iter()
            .map(|kv| {
                (
                    String::from_utf8_lossy(kv.key()).to_string(),
                    String::from_utf8_lossy(kv.value()).to_string(),
                )
            })
            .collect()
    })
}

/// The time of the first log line containing `needle` (the `[YYYY/MM/DD hh:mm:ss.mmm
/// +zz:zz]` prefix every line starts with), in ms since the epoch.
pub fn log_time_ms(log: &str, needle: &str) -> Option<i64> {
    let line = log.lines().find(|l| l.contains(needle))?;
    let stamp = line.strip_prefix('[')?.split(']').next()?;
    chrono::DateTime::parse_from_str(stamp, "%Y/%m/%d %H:%M:%S%.3f %:z")
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Asserts that the log lines containing `needles` appear in this order.
pub fn assert_in_order(log: &str, needles: &[&str]) {
    let mut from = 0;
    for n in needles {
        match log[from..].find(n) {
            Some(i) => from += i + n.len(),
            None => panic!("log line {n:?} missing or out of order in:\n{log}"),
        }
    }
}

/// A tokio runtime and a client of the active rootcoord of `c`.
pub fn rootcoord_client(
    c: &Cluster,
    retry_for: Duration,
) -> (
    tokio::runtime::Runtime,
    milvus::coord_client::ActiveRootCoord,
    milvus::etcd::Etcd,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cfg = milvus::testkit::sample::etcd_config(&c.etcd.endpoint());
    let etcd = rt.block_on(milvus::etcd::Etcd::connect(&cfg)).unwrap();
    let client = {
        let _g = rt.enter();
        milvus::coord_client::ActiveRootCoord::new(
            etcd.clone(),
            milvus::session::Keys::new("by-dev/meta"),
            retry_for,
            Duration::from_secs(2),
        )
    };
    (rt, client, etcd)
}
