//! The record of applied client requests, so that a retried change is applied once.
//!
//! A proxy gives every client change a request ID and sends the same ID on each retry.
//! The rootcoord writes `<meta>/root-coord-requests/<id>` in the same fenced txn as the
//! change, conditioned on the key not existing, and answers a repeated ID with the
//! recorded (successful) result without applying anything. Records are attached to
//! leases that live [`KEEP`] plus [`ROTATE`], one lease per [`ROTATE`] of time, so etcd
//! expires them without a sweeper.

use std::time::Duration;

use tokio::time::Instant;

use crate::etcd::{Etcd, EtcdError};

/// How long a request record lives at least.
pub const KEEP: Duration = Duration::from_secs(600);
/// How long one lease takes new records.
pub const ROTATE: Duration = Duration::from_secs(60);
/// The longest request ID accepted.
pub const MAX_ID_LEN: usize = 128;

/// Where records live and the lease new records are attached to.
pub struct RequestLog {
    prefix: String,
    lease: tokio::sync::Mutex<Option<(i64, Instant)>>,
}

impl RequestLog {
    /// Records under `<meta_root>/root-coord-requests/`.
    pub fn new(meta_root: &str) -> Self {
        RequestLog {
            prefix: format!("{meta_root}/root-coord-requests/"),
            lease: tokio::sync::Mutex::new(None),
        }
    }

    /// The record key of request `id`.
    pub fn key(&self, id: &str) -> String {
        format!("{}{id}", self.prefix)
    }

    /// The lease for records written now (granted anew every [`ROTATE`]).
    pub async fn lease(&self, etcd: &Etcd) -> Result<i64, EtcdError> {
        let mut current = self.lease.lock().await;
        if let Some((id, granted)) = *current {
            if granted.elapsed() < ROTATE {
                return Ok(id);
            }
        }
        let ttl = (KEEP + ROTATE).as_secs() as i64;
        let granted = Instant::now();
        let resp = etcd
            .call(|mut c| async move { c.lease_grant(ttl, None).await })
            .await?;
        *current = Some((resp.id(), granted));
        Ok(resp.id())
    }

    /// Forgets the current lease (after a failed write, in case it is gone).
    pub async fn forget_lease(&self) {
        *self.lease.lock().await = None;
    }
}

/// Checks a request ID from a client: 1-128 characters of `[A-Za-z0-9._:-]`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        assert!(valid_id("7f3a-12"));
        assert!(!valid_id(""));
        assert!(!valid_id("a/b"));
        assert!(!valid_id(&"x".repeat(MAX_ID_LEN + 1)));
    }
}
