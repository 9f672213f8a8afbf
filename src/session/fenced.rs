//! Fenced metadata writes: every write of an active coordinator is one etcd txn whose
//! condition is `create_revision(ACTIVE key) == epoch`. A deposed active cannot write;
//! a write refused by the condition ends the term at once.

use std::sync::Arc;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};

use super::election::{Term, TermEnd};
use crate::etcd::{Etcd, EtcdError};

/// Why a fenced write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    /// The term is over (lease past its deadline, deposed, or already fenced).
    #[error("this coordinator is no longer active")]
    NotActive,
    /// etcd refused the write: another coordinator's term has begun.
    #[error("write refused: another coordinator is active (epoch {epoch} is over)")]
    Fenced {
        /// The epoch that was used.
        epoch: i64,
    },
    /// etcd failed or did not answer; the write may or may not have happened.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
}

/// The only way a coordinator writes its state to etcd.
#[derive(Clone)]
pub struct FencedStore {
    etcd: Etcd,
    term: Arc<Term>,
}

impl FencedStore {
    /// A store for `term`.
    pub fn new(etcd: Etcd, term: Arc<Term>) -> Self {
        FencedStore { etcd, term }
    }

    /// The term this store writes for.
    pub fn term(&self) -> &Arc<Term> {
        &self.term
    }

    /// Applies `ops` atomically if this term still holds; returns the write's revision.
    pub async fn write(&self, ops: Vec<TxnOp>) -> Result<i64, FenceError> {
        // With no compares of its own, the nested txn always applies.
        Ok(self.write_if(Vec::new(), ops).await?.unwrap_or_default())
    }

    /// Applies `ops` if this term still holds and every compare in `when` holds; returns
    /// `Some(revision)`, or `None` when a compare in `when` failed (nothing written). The
    /// conditional part is a txn nested in the fenced one, so a conflict is told apart
    /// from fencing.
    pub async fn write_if(
        &self,
        when: Vec<Compare>,
        ops: Vec<TxnOp>,
    ) -> Result<Option<i64>, FenceError> {
        if !self.term.is_valid() {
            return Err(FenceError::NotActive);
        }
        let key = self.term.active_key.clone();
        let epoch = self.term.epoch;
        let resp = self
            .etcd
            .call(|mut c| async move {
                c.txn(
                    Txn::new()
                        .when([Compare::create_revision(key, CompareOp::Equal, epoch)])
                        .and_then([TxnOp::txn(Txn::new().when(when).and_then(ops))]),
                )
                .await
            })
            .await?;
        if !resp.succeeded() {
            log::warn!(epoch = epoch, key = self.term.active_key.as_str();
                "fenced write refused: another coordinator holds the ACTIVE key, stepping down");
            self.term.end(TermEnd::Fenced);
            return Err(FenceError::Fenced { epoch });
        }
        let inner_ok = resp.op_responses().into_iter().any(|op| match op {
            etcd_client::TxnOpResponse::Txn(t) => t.succeeded(),
            _ => false,
        });
        Ok(inner_ok.then(|| resp.header().map_or(0, |h| h.revision())))
    }

    /// Reads one key (reads need no fence).
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, EtcdError> {
        let k = key.to_string();
        let resp = self
            .etcd
            .call(|mut c| async move { c.get(k, None).await })
            .await?;
        Ok(resp.kvs().first().map(|kv| kv.value().to_vec()))
    }
}
