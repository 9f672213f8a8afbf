//! A whole cluster for benchmarks: a real etcd and nats-server on free ports, a temporary
//! directory for storage and pid files, and one `milvus` process per role asked for,
//! each waited for until Healthy. Dropping it stops everything (by pid).

use std::path::Path;
use std::time::Duration;

use super::{EtcdServer, Milvus, NatsServer, TempDir};

/// Every role, in the order a cluster starts them (the proxy last).
pub const ALL_ROLES: [&str; 8] = [
    "rootcoord",
    "datacoord",
    "querycoord",
    "indexcoord",
    "datanode",
    "indexnode",
    "querynode",
    "proxy",
];

/// A running cluster.
pub struct BenchCluster {
    /// etcd.
    pub etcd: EtcdServer,
    /// The log.
    pub nats: NatsServer,
    /// The processes, in the order of the roles given.
    pub procs: Vec<Milvus>,
    /// Storage and pid files.
    pub dir: TempDir,
    /// The environment every process was started with.
    env: Vec<(String, String)>,
    /// The binary.
    binary: std::path::PathBuf,
}

impl BenchCluster {
    /// Starts `roles` of `binary` with the cluster's environment plus `extra`
    /// (`LOG_LEVEL` defaults to `warn`).
    pub fn start(binary: &Path, roles: &[&str], extra: &[(&str, &str)]) -> BenchCluster {
        Self::start_on(
            binary,
            roles,
            extra,
            EtcdServer::start(),
            NatsServer::start(),
        )
    }

    /// As [`BenchCluster::start`], on this etcd and nats-server (secured ones, say:
    /// `extra` then carries the settings to reach them).
    pub fn start_on(
        binary: &Path,
        roles: &[&str],
        extra: &[(&str, &str)],
        etcd: EtcdServer,
        nats: NatsServer,
    ) -> BenchCluster {
        let dir = TempDir::new("bench-cluster");
        let mut env = vec![
            ("ETCD_ENDPOINTS".to_string(), etcd.endpoint()),
            ("NATSMQ_ADDRESS".to_string(), nats.address()),
            ("MILVUS_PID_DIR".to_string(), dir.0.display().to_string()),
            ("LOG_LEVEL".to_string(), "warn".to_string()),
            (
                "LOCAL_STORAGE_PATH".to_string(),
                dir.0.join("data").display().to_string(),
            ),
        ];
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push((k.to_string(), v.to_string()));
        }
        let procs: Vec<Milvus> = roles
            .iter()
            .map(|r| Milvus::start(binary, r, &env, &dir.0))
            .collect();
        for m in &procs {
            assert!(
                m.wait_state("Healthy", Duration::from_secs(20)),
                "{} did not become Healthy:\n{}",
                m.role,
                m.log()
            );
        }
        BenchCluster {
            etcd,
            nats,
            procs,
            dir,
            env,
            binary: binary.to_path_buf(),
        }
    }

    /// Starts one more process of `role` with the cluster's environment and waits until
    /// it is Healthy.
    pub fn add(&mut self, role: &str) {
        self.add_with(role, &[]);
    }

    /// Starts one more process of `role` with the cluster's environment plus `extra`
    /// and waits until it is Healthy.
    pub fn add_with(&mut self, role: &str, extra: &[(&str, &str)]) {
        let mut env = self.env.clone();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let m = Milvus::start(&self.binary, role, &env, &self.dir.0);
        assert!(
            m.wait_state("Healthy", Duration::from_secs(20)),
            "{role} did not become Healthy:\n{}",
            m.log()
        );
        self.procs.push(m);
    }

    /// The process of `role` (the first one).
    pub fn role(&self, role: &str) -> &Milvus {
        self.procs
            .iter()
            .find(|m| m.role == role)
            .unwrap_or_else(|| panic!("no {role} in this cluster"))
    }

    /// `http://127.0.0.1:<proxy port>`.
    pub fn proxy_uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.role("proxy").port)
    }

    /// The pids of every process, etcd and nats-server included.
    pub fn pids(&self) -> Vec<i32> {
        self.procs
            .iter()
            .map(Milvus::pid)
            .chain([self.etcd.pid(), self.nats.pid_number()])
            .collect()
    }
}
