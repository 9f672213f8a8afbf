//! A clock that keeps counting while the machine is suspended (`CLOCK_BOOTTIME`).
//!
//! The self-fencing deadline must not stand still while the process (or the whole
//! machine) is suspended: etcd's own clock keeps running, and the lease expires there.
//! `std`/`tokio` instants use `CLOCK_MONOTONIC`, which stops during a suspend.

use std::ops::{Add, Sub};
use std::time::Duration;

use nix::time::{clock_gettime, ClockId};

/// A point on the boot-time clock (time since boot, suspends included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BootInstant(Duration);

impl BootInstant {
    /// Now.
    pub fn now() -> Self {
        let ts = clock_gettime(ClockId::CLOCK_BOOTTIME)
            .or_else(|_| clock_gettime(ClockId::CLOCK_MONOTONIC))
            .expect("a monotonic clock");
        BootInstant(Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32))
    }

    /// Time from `earlier` to this instant (zero if `earlier` is later).
    pub fn saturating_duration_since(self, earlier: BootInstant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// Time from now until this instant (zero if it has passed).
    pub fn remaining(self) -> Duration {
        self.saturating_duration_since(BootInstant::now())
    }
}

impl Add<Duration> for BootInstant {
    type Output = BootInstant;
    fn add(self, d: Duration) -> BootInstant {
        BootInstant(self.0 + d)
    }
}

impl Sub<Duration> for BootInstant {
    type Output = BootInstant;
    fn sub(self, d: Duration) -> BootInstant {
        BootInstant(self.0.saturating_sub(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_with_sleep() {
        let a = BootInstant::now();
        std::thread::sleep(Duration::from_millis(20));
        let b = BootInstant::now();
        assert!(b.saturating_duration_since(a) >= Duration::from_millis(20));
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
        // At least the 20 ms slept have passed since `a`; how much more depends on the
        // machine's load, so only the bound that cannot flake is asserted.
        assert!((a + Duration::from_secs(1)).remaining() <= Duration::from_millis(980));
        assert!((a + Duration::from_secs(3600)).remaining() > Duration::from_secs(3500));
    }
}
