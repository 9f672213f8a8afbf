//! Hybrid timestamps (`physical_ms << 18 | logical`) and IDs that strictly increase across
//! any failover, whatever the clocks say.
//!
//! The active saves an upper bound `now + 3 s` (8-byte big-endian nanoseconds) with a
//! fenced write before handing out anything below it, and renews it ahead of time; a new
//! active starts above the saved bound. The hot path takes a mutex, never etcd.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client::TxnOp;

use crate::etcd::EtcdError;
use crate::session::fenced::{FenceError, FencedStore};

/// Bits of the logical part.
pub const LOGICAL_BITS: u32 = 18;
const MAX_LOGICAL: i64 = 1 << LOGICAL_BITS;
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
    #[error("count must be between 1 and {max}, got {0}", max = MAX_LOGICAL - 1)]
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
        if count == 0 || i64::from(count) >= MAX_LOGICAL {
            return Err(TsoError::BadCount(count));
        }
        loop {
            match self.try_alloc(i64::from(count)) {
                Ok(v) => return Ok(v),
                Err(None) => return Err(TsoError::NotActive),
                Err(Some(())) => self.renew(store, true).await?,
            }
        }
    }

    /// `Err(None)`: inactive; `Err(Some(()))`: the bound must be renewed first.
    fn try_alloc(&self, count: i64) -> Result<u64, Option<()>> {
        let now = self.now_ms();
        let mut s = self.lock();
        if s.bound == 0 {
            return Err(None);
        }
        if now > s.physical {
            s.physical = now;
            s.logical = 0;
        }
        if s.logical + count > MAX_LOGICAL {
            s.physical += 1;
            s.logical = 0;
        }
        if s.physical >= s.bound {
            return Err(Some(()));
        }
        let v = ((s.physical as u64) << LOGICAL_BITS) | s.logical as u64;
        s.logical += count;
        Ok(v)
    }

    /// Saves a new bound when less than 2 s is left (or always, with `force`).
    pub async fn renew(&self, store: &FencedStore, force: bool) -> Result<(), TsoError> {
        let _one_at_a_time = self.renewing.lock().await;
        let (physical, bound) = {
            let s = self.lock();
            (s.physical, s.bound)
        };
        if bound == 0 {
            return Err(TsoError::NotActive);
        }
        let base = self.now_ms().max(physical);
        if !force && bound - base >= RENEW_BELOW_MS {
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

fn save(key: &str, bound_ms: i64) -> TxnOp {
    let ns = (bound_ms as u64).saturating_mul(1_000_000);
    TxnOp::put(key, ns.to_be_bytes().to_vec(), None)
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
