//! A session's lease, kept alive about every TTL/3, and the self-fencing deadline.
//!
//! `deadline = send time of the last acknowledged keep-alive + TTL - margin`. etcd cannot
//! expire the lease before `send time + TTL`, so while `now < deadline` no other process
//! can have taken this session's keys. Past the deadline the lease counts as lost for
//! good, even if a late acknowledgement arrives: a paused process must not resume acting.
//! The deadline is kept on the boot-time clock ([`BootInstant`]), which keeps counting
//! through a suspend, as etcd's clock does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{LeaseKeepAliveStream, LeaseKeeper};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::clock::BootInstant;
use crate::etcd::Etcd;

/// A granted lease and the deadline up to which this process may trust it.
pub struct Lease {
    id: i64,
    ttl: Duration,
    margin: Duration,
    deadline: Mutex<BootInstant>,
    lost: AtomicBool,
    lost_tx: watch::Sender<bool>,
}

const RETRY_MIN: Duration = Duration::from_millis(100);
/// Longest sleep of the deadline watchdog between looks at the boot clock.
const WATCHDOG_NAP: Duration = Duration::from_millis(250);

/// How much earlier than etcd's own expiry the process stops trusting its lease.
pub fn fencing_margin(ttl: Duration) -> Duration {
    (ttl / 5).clamp(Duration::from_millis(300), Duration::from_secs(2))
}

impl Lease {
    /// A lease granted by a request sent at `sent`.
    pub fn new(id: i64, ttl: Duration, sent: BootInstant) -> Arc<Self> {
        let margin = fencing_margin(ttl);
        Arc::new(Lease {
            id,
            ttl,
            margin,
            deadline: Mutex::new(sent + ttl - margin),
            lost: AtomicBool::new(false),
            lost_tx: watch::Sender::new(false),
        })
    }

    /// The lease ID.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The lease TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// True while the process may act on this lease.
    pub fn valid(&self) -> bool {
        !self.lost.load(Ordering::SeqCst) && BootInstant::now() < self.deadline()
    }

    /// The self-fencing deadline.
    pub fn deadline(&self) -> BootInstant {
        *self.deadline.lock().expect("lease deadline lock")
    }

    /// Time left before etcd could expire the lease (0 once lost), for `/status`.
    pub fn ttl_left(&self) -> Duration {
        if self.lost.load(Ordering::SeqCst) {
            return Duration::ZERO;
        }
        (self.deadline() + self.margin).remaining()
    }

    /// Records an acknowledged keep-alive sent at `sent`. Returns false (and the lease
    /// stays lost) when the deadline has passed, even if `sent` was before it: once
    /// [`Lease::valid`] could have answered false, a late acknowledgement revives nothing.
    fn renew(&self, sent: BootInstant, granted: Duration) -> bool {
        let mut d = self.deadline.lock().expect("lease deadline lock");
        if self.lost.load(Ordering::SeqCst) || BootInstant::now() >= *d {
            return false;
        }
        let new = sent + granted.min(self.ttl).saturating_sub(self.margin);
        if new > *d {
            *d = new;
        }
        true
    }

    /// Marks the lease lost, once, and wakes everyone waiting in [`Lease::lost`].
    pub fn mark_lost(&self, why: &str) {
        if !self.lost.swap(true, Ordering::SeqCst) {
            log::warn!(LeaseID = self.id, reason = why; "session lease lost, this process stops acting on it");
            self.lost_tx.send_replace(true);
        }
    }

    /// Waits until the lease is lost (deadline passed, expired or revoked).
    pub async fn lost(&self) {
        let mut rx = self.lost_tx.subscribe();
        let _ = rx.wait_for(|lost| *lost).await;
    }

    /// Starts the keep-alive loop and the deadline watchdog; both end when the lease is
    /// lost. Abort the returned handles when the session is dropped.
    pub fn spawn_keepalive(self: &Arc<Self>, etcd: Etcd) -> [JoinHandle<()>; 2] {
        let watchdog = {
            let lease = self.clone();
            tokio::spawn(async move {
                loop {
                    // Short naps: tokio's timer runs on the monotonic clock, which
                    // stands still during a suspend; the deadline is on the boot clock.
                    let nap = lease.deadline().remaining().min(WATCHDOG_NAP);
                    tokio::select! {
                        _ = tokio::time::sleep(nap) => {}
                        _ = lease.lost() => return,
                    }
                    if BootInstant::now() >= lease.deadline() {
                        lease.mark_lost("no keep-alive acknowledged before the fencing deadline");
                        return;
                    }
                }
            })
        };
        let keeper = {
            let lease = self.clone();
            tokio::spawn(async move { lease.keepalive_loop(etcd).await })
        };
        [watchdog, keeper]
    }

    async fn keepalive_loop(&self, etcd: Etcd) {
        let interval = (self.ttl / 3).max(Duration::from_millis(200));
        // A keep-alive answers in about a millisecond; one that takes longer is retried on
        // a new stream (another endpoint, or after an etcd leader change) well before the
        // deadline instead of waiting a whole interval.
        let per_call = (self.ttl / 6)
            .clamp(Duration::from_millis(200), Duration::from_secs(1))
            .min(etcd.timeout());
        let mut retry = RETRY_MIN;
        let mut stream: Option<(LeaseKeeper, LeaseKeepAliveStream)> = None;
        let mut endpoint = 0;
        let mut next = Instant::now() + interval;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = self.lost() => return,
            }
            let sent = BootInstant::now();
            next = Instant::now() + interval;
            let answer = tokio::time::timeout(per_call, async {
                if stream.is_none() {
                    // Opening the stream sends one keep-alive and consumes its answer.
                    let (mut client, used) = etcd.stream_client();
                    endpoint = used;
                    stream = Some(client.lease_keep_alive(self.id).await?);
                }
                let (keeper, s) = stream.as_mut().expect("stream just opened");
                keeper.keep_alive().await?;
                s.message().await
            })
            .await;
            match answer {
                Ok(Ok(Some(resp))) if resp.ttl() > 0 => {
                    let granted = Duration::from_secs(resp.ttl() as u64);
                    if !self.renew(sent, granted) {
                        self.mark_lost("keep-alive acknowledged after the fencing deadline");
                        return;
                    }
                    retry = RETRY_MIN;
                    continue;
                }
                Ok(Ok(Some(_))) => {
                    self.mark_lost("etcd reports the lease expired or revoked");
                    return;
                }
                Ok(Ok(None)) => {
                    log::debug!(LeaseID = self.id; "keep-alive stream closed, reopening");
                    stream = None;
                }
                Ok(Err(etcd_client::Error::LeaseKeepAliveError(e))) if e.contains("not found") => {
                    self.mark_lost("etcd reports the lease is gone");
                    return;
                }
                Ok(Err(e)) => {
                    log::warn!(LeaseID = self.id, error:% = e; "keep-alive failed, retrying");
                    stream = None;
                }
                Err(_) => {
                    log::warn!(LeaseID = self.id, timeout:? = per_call; "keep-alive not answered in time, retrying");
                    stream = None;
                }
            }
            // Failed: retry soon on the next endpoint, backing off up to the interval.
            etcd.failed(endpoint);
            next = Instant::now() + retry;
            retry = (retry * 2).min(interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_acknowledgement_never_revives_a_lease() {
        let ttl = Duration::from_secs(2);
        // Granted long enough ago that the deadline has passed.
        let lease = Lease::new(1, ttl, BootInstant::now() - ttl);
        assert!(!lease.valid());
        // A keep-alive sent a moment before the deadline, acknowledged after it.
        let sent = lease.deadline() - Duration::from_millis(1);
        assert!(!lease.renew(sent, ttl));
        assert!(!lease.valid());
    }

    #[test]
    fn timely_acknowledgement_extends_the_deadline() {
        let ttl = Duration::from_secs(10);
        let lease = Lease::new(1, ttl, BootInstant::now() - Duration::from_secs(5));
        let before = lease.deadline();
        assert!(lease.renew(BootInstant::now(), ttl));
        assert!(lease.deadline() > before);
        assert!(lease.valid());
    }
}
