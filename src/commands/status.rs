//! `milvus status`: every process registered in etcd, as a table or JSON.

use std::time::Duration;

use serde::Serialize;

use crate::config::Config;
use crate::etcd::{Etcd, EtcdError};
use crate::exit;
use crate::session::discovery::{self, Registered};
use crate::session::Keys;

/// One row of the status table.
#[derive(Debug, Serialize)]
pub struct Row {
    /// Role name.
    pub role: String,
    /// ServerID.
    #[serde(rename = "ServerID")]
    pub server_id: i64,
    /// Address.
    pub address: String,
    /// ACTIVE, STANDBY or worker.
    pub state: String,
    /// Version.
    pub version: String,
    /// Host name.
    pub host: String,
    /// Seconds left on the lease (-1 if unknown).
    pub lease_ttl_left_s: i64,
}

/// Reads the sessions and folds them into one row per process.
pub async fn rows(etcd: &Etcd, keys: &Keys) -> Result<Vec<Row>, EtcdError> {
    let (sessions, _) = discovery::all(etcd, keys).await?;
    let mut out = Vec::new();
    for (s, standing) in discovery::processes(&sessions, keys) {
        let state = standing.as_str();
        out.push(Row {
            role: s.value.server_name.clone(),
            server_id: s.value.server_id,
            address: s.value.address.clone(),
            state: state.to_string(),
            version: s.value.version.clone(),
            host: s.value.host_name.clone(),
            lease_ttl_left_s: ttl_left(etcd, s).await,
        });
    }
    out.sort_by(|a, b| (&a.role, a.server_id).cmp(&(&b.role, b.server_id)));
    Ok(out)
}

async fn ttl_left(etcd: &Etcd, s: &Registered) -> i64 {
    if s.lease == 0 {
        return -1;
    }
    let id = s.lease;
    etcd.call(|mut c| async move { c.lease_time_to_live(id, None).await })
        .await
        .map_or(-1, |r| r.ttl())
}

/// Prints the sessions; returns the exit code.
pub fn run(config: &Config, json: bool) -> i32 {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        eprintln!("milvus: cannot start the async runtime");
        return exit::RUNTIME;
    };
    let keys = Keys::new(config.etcd.meta_root());
    let result = rt.block_on(async {
        let etcd = Etcd::connect(&config.etcd).await?;
        rows(&etcd, &keys).await
    });
    let rows = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "milvus: cannot read sessions from etcd at {}: {e}",
                config.etcd.endpoints.join(",")
            );
            return exit::RUNTIME;
        }
    };
    rt.shutdown_timeout(Duration::from_millis(100));
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("rows serialize")
        );
        return exit::OK;
    }
    if rows.is_empty() {
        println!("no process is registered under {}", keys.session_prefix());
        return exit::OK;
    }
    println!(
        "{:<11} {:>8}  {:<22} {:<8} {:<8} {:<16} {:>8}",
        "ROLE", "SERVERID", "ADDRESS", "STATE", "VERSION", "HOST", "TTL_LEFT"
    );
    for r in rows {
        let ttl = if r.lease_ttl_left_s < 0 {
            "-".to_string()
        } else {
            format!("{}s", r.lease_ttl_left_s)
        };
        println!(
            "{:<11} {:>8}  {:<22} {:<8} {:<8} {:<16} {:>8}",
            r.role, r.server_id, r.address, r.state, r.version, r.host, ttl
        );
    }
    exit::OK
}
