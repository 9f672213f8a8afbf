//! Hybrid timestamps (`physical_ms << 18 | logical`) and IDs that strictly increase across
//! any failover, whatever the clocks say.
//!
//! The active saves an upper bound `now + 3 s` (8-byte big-endian nanoseconds) with a
//! fenced write before handing out anything below it, and renews it ahead of time; a new
//! active starts above the saved bound. The hot path takes a mutex, never etcd.
//!
//! The bound write is conditional (`version == 0`, or the stored value is below the new
//! one: 8-byte big-endian values compare numerically), so a late, lower write can never
//! replace a newer bound. When the logical part of the current millisecond is used up,
//! the allocator waits for the clock instead of moving the physical part ahead of it, as
//! PD and Milvus do. One call allocates at most [`MAX_COUNT`] values.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client::{Compare, CompareOp, Txn, TxnOp};

use crate::etcd::EtcdError;
use crate::session::fenced::{FenceError, FencedStore};

/// Bits of the logical part.
pub const LOGICAL_BITS: u32 = 18;
const MAX_LOGICAL: i64 = 1 << LOGICAL_BITS;
/// The most values one allocation may ask for: one millisecond's logical space, less one.
pub const MAX_COUNT: u32 = (MAX_LOGICAL - 1) as u32;
/// How far ahead of the clock the saved bound is.
const WINDOW_MS: i64 = 3000;
/// Renew once less than this is left before the bound.
const RENEW_BELOW_MS: i64 = 2000;
/// How often the renewal task looks.
pub const RENEW_EVERY: Duration = Duration::from_millis(200);

/// Allocation failures.
#[derive(Debug, thiserror::Error)]
pub enum TsoError {
    /// Not active (no saved bound for this term).
    #[error("the allocator is not active")]
    NotActive,
    /// A count of 0, or more than one millisecond's worth.
    #[error("count must be between 1 and {MAX_COUNT}, got {0}")]
    BadCount(u32),
    /// The saved bound could not be written.
    #[error(transparent)]
    Fence(#[from] FenceError),
    /// The saved bound could not be read, or is corrupt.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
}

#[derive(Default)]
struct State {
    physical: i64,
    logical: i64,
    /// Exclusive bound on `physical`; 0 when not active.
    bound: i64,
}

/// One allocator, persisted at `key`.
pub struct Tso {
    key: String,
    clock_offset_ms: i64,
    state: Mutex<State>,
    renewing: tokio::sync::Mutex<()>,
}

impl Tso {
    /// An inactive allocator saving its bound at `key`; `clock_offset_ms` shifts this
    /// process's clock (tests only).
    pub fn new(key: String, clock_offset_ms: i64) -> Self {
        Tso {
            key,
            clock_offset_ms,
            state: Mutex::new(State::default()),
            renewing: tokio::sync::Mutex::new(()),
        }
    }

    fn now_ms(&self) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        now + self.clock_offset_ms
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("tso lock")
    }

    /// Starts a term: reads the saved bound, starts above it, saves a new bound.
    pub async fn activate(&self, store: &FencedStore) -> Result<(), TsoError> {
        let saved_ms = match store.get(&self.key).await? {
            None => 0,
            Some(v) => decode_bound(&self.key, &v)?,
        };
        let physical = self.now_ms().max(saved_ms + 1);
        let bound = physical + WINDOW_MS;
        store.write(vec![save(&self.key, bound)]).await?;
        *self.lock() = State {
            physical,
            logical: 0,
            bound,
        };
        Ok(())
    }

    /// Ends the term: nothing more is handed out.
    pub fn deactivate(&self) {
        self.lock().bound = 0;
    }

    /// Allocates `count` consecutive values and returns the first.
    pub async fn alloc(&self, store: &FencedStore, count: u32) -> Result<u64, TsoError> {
        if count == 0 || count > MAX_COUNT {
            return Err(TsoError::BadCount(count));
        }
        loop {
            match self.try_alloc(i64::from(count)) {
                Next::Value(v) => return Ok(v),
                Next::Inactive => return Err(TsoError::NotActive),
                Next::Renew { seen_bound } => self.renew_past(store, Some(seen_bound)).await?,
                Next::WaitMs(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            }
        }
    }

    fn try_alloc(&self, count: i64) -> Next {
        let now = self.now_ms();
        let mut s = self.lock();
        if s.bound == 0 {
            return Next::Inactive;
        }
        if now > s.physical {
            s.physical = now;
            s.logical = 0;
        }
        if s.logical + count > MAX_LOGICAL {
            // This millisecond is used up and the clock has not passed it yet.
            return Next::WaitMs((s.physical - now + 1) as u64);
        }
        if s.physical >= s.bound {
            return Next::Renew {
                seen_bound: s.bound,
            };
        }
        let v = ((s.physical as u64) << LOGICAL_BITS) | s.logical as u64;
        s.logical += count;
        Next::Value(v)
    }

    /// Saves a new bound when less than 2 s is left (the periodic renewal).
    pub async fn renew(&self, store: &FencedStore) -> Result<(), TsoError> {
        self.renew_past(store, None).await
    }

    /// Saves a new bound: when `seen_bound` is given, unless another caller has already
    /// moved the bound past it (so waiters on one exhausted bound cause one etcd write);
    /// otherwise only when less than 2 s is left.
    async fn renew_past(
        &self,
        store: &FencedStore,
        seen_bound: Option<i64>,
    ) -> Result<(), TsoError> {
        let _one_at_a_time = self.renewing.lock().await;
        let (physical, bound) = {
            let s = self.lock();
            (s.physical, s.bound)
        };
        if bound == 0 {
            return Err(TsoError::NotActive);
        }
        let base = self.now_ms().max(physical);
        let needed = match seen_bound {
            Some(seen) => bound <= seen,
            None => bound - base < RENEW_BELOW_MS,
        };
        if !needed {
            return Ok(());
        }
        let new_bound = base + WINDOW_MS;
        store.write(vec![save(&self.key, new_bound)]).await?;
        let mut s = self.lock();
        if s.bound != 0 {
            s.bound = s.bound.max(new_bound);
        }
        Ok(())
    }
}

/// What [`Tso::try_alloc`] found.
enum Next {
    Value(u64),
    Inactive,
    /// The saved bound is reached; this is the bound that was seen.
    Renew {
        seen_bound: i64,
    },
    /// Wait this many milliseconds for the clock.
    WaitMs(u64),
}

/// Writes the bound only if the key is new or holds a lower value (compared as bytes,
/// which for 8-byte big-endian numbers is numeric order).
fn save(key: &str, bound_ms: i64) -> TxnOp {
    let ns = (bound_ms as u64).saturating_mul(1_000_000);
    let v = ns.to_be_bytes().to_vec();
    let if_lower = Txn::new()
        .when([Compare::value(key, CompareOp::Less, v.clone())])
        .and_then([TxnOp::put(key, v.clone(), None)]);
    TxnOp::txn(
        Txn::new()
            .when([Compare::version(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, v, None)])
            .or_else([TxnOp::txn(if_lower)]),
    )
}

fn decode_bound(key: &str, v: &[u8]) -> Result<i64, EtcdError> {
    let bytes: [u8; 8] = v.try_into().map_err(|_| EtcdError::Data {
        key: key.to_string(),
        why: format!(
            "expected 8 bytes of big-endian nanoseconds, found {} bytes",
            v.len()
        ),
    })?;
    Ok((u64::from_be_bytes(bytes) / 1_000_000) as i64 + 1)
}

/// The physical milliseconds of a hybrid timestamp.
pub fn physical_ms(ts: u64) -> u64 {
    ts >> LOGICAL_BITS
}
