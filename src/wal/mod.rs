//! The write-ahead log on NATS JetStream (Milvus's "message queue", `mq.type: natsmq`).
//!
//! One stream per physical DML channel (`by-dev-rootcoord-dml_<n>`), file-backed. Each
//! virtual channel (shard) of a collection has its own subject in its physical
//! channel's stream, `<pchannel>.<vchannel>`, so a reader of one shard is sent only that
//! shard's messages: the server filters, and a process that serves many shards of one
//! physical channel does not receive every message once per shard (with hundreds of
//! collections that overran the client connection: nats-server's "Slow Consumer"). A
//! message's sequence is still its position in the physical channel, so checkpoints
//! compare across shards. Messages an older build wrote to the bare `<pchannel>` subject
//! are still read: a reader that would start at or before one reads the whole channel.
//!
//! Writers publish with a message ID (`Nats-Msg-Id`) and wait for the server's
//! acknowledgement, so a retried publish is stored once (within the stream's duplicate
//! window). Readers consume a shard in order from any sequence. Every call is bounded
//! by the log's timeout: a frozen server makes calls fail, never hang.

use std::future::IntoFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::StreamExt;

use crate::config::{Credentials, LogConfig, NatsTls};

/// The name a process's connection to the log has: `milvus <role> <pid>`.
pub fn connection_name(role: &str) -> String {
    format!("milvus {role} {}", std::process::id())
}

/// How long the server remembers message IDs for de-duplication.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// A log failure.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The server could not be reached.
    #[error("cannot connect to the log (NATS) at {address}: {why}")]
    Connect {
        /// Address tried.
        address: String,
        /// The client's reason.
        why: String,
    },
    /// No answer within the bound; the call may or may not have taken effect.
    #[error("the log (NATS) did not answer {what} within {limit:?}")]
    Timeout {
        /// What was asked.
        what: String,
        /// The bound.
        limit: Duration,
    },
    /// The server answered with an error.
    #[error("the log (NATS) refused {what}: {why}")]
    Server {
        /// What was asked.
        what: String,
        /// The server's or client's reason.
        why: String,
    },
}

impl WalError {
    /// True when retrying later may succeed (every failure here is about the server's
    /// availability, not the request).
    pub fn is_retriable(&self) -> bool {
        true
    }
}

/// The name of physical channel `n`: `<cluster>-<dml prefix>_<n>`, as Milvus names them
/// (`by-dev-rootcoord-dml_0`).
pub fn pchannel_name(cluster_prefix: &str, dml_prefix: &str, n: usize) -> String {
    format!("{cluster_prefix}-{dml_prefix}_{n}")
}

/// The name of shard `shard` of collection `collection_id` on `pchannel`:
/// `<pchannel>_<collectionID>v<shard>`.
pub fn vchannel_name(pchannel: &str, collection_id: i64, shard: usize) -> String {
    format!("{pchannel}_{collection_id}v{shard}")
}

/// The subject of a virtual channel's messages: `<pchannel>.<vchannel>`.
pub fn subject_of(vchannel: &str) -> String {
    format!("{}.{vchannel}", pchannel_of(vchannel))
}

/// The collection a virtual channel belongs to (its name is
/// `<pchannel>_<collectionID>v<shard>`).
pub fn collection_of(vchannel: &str) -> Option<i64> {
    let (_, rest) = vchannel.rsplit_once('_')?;
    rest.split_once('v')?.0.parse().ok()
}

/// The physical channel a virtual channel lives on.
pub fn pchannel_of(vchannel: &str) -> &str {
    vchannel
        .rsplit_once('_')
        .map_or(vchannel, |(pchannel, _)| pchannel)
}

/// What the server answered to a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The message's sequence in its channel.
    pub sequence: u64,
    /// True when the message ID had been stored before: nothing new was stored.
    pub duplicate: bool,
}

/// A channel's stream as the server reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelState {
    /// Sequence of the oldest message kept (last + 1 when none is).
    pub first_sequence: u64,
    /// Sequence of the newest message ever stored (0 when none).
    pub last_sequence: u64,
    /// Messages kept.
    pub messages: u64,
    /// Bytes kept.
    pub bytes: u64,
}

/// One message read back.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its sequence in the channel (from 1).
    pub sequence: u64,
    /// Its payload.
    pub payload: Bytes,
}

/// A connection to the log.
#[derive(Clone)]
pub struct Wal {
    js: jetstream::Context,
    client: async_nats::Client,
    timeout: Duration,
    /// Times the connection was lost (see [`Reader::next`]).
    disconnects: Arc<AtomicU64>,
}

impl Wal {
    /// Connects to `address` (`nats://host:port` or `host:port`) as `name` (what the
    /// server's monitoring shows for the connection, e.g. `milvus datanode 4242`); every
    /// later call is bounded by `timeout`. No user, no TLS.
    pub async fn connect(
        address: &str,
        timeout: Duration,
        name: impl Into<String>,
    ) -> Result<Wal, WalError> {
        Self::open(address, timeout, name.into(), None, None).await
    }

    /// Connects as `natsmq.*` says: `natsmq.address`, bounded by `natsmq.requestTimeout`,
    /// with `natsmq.username` / `password` and `natsmq.tls.*` when they are set.
    pub async fn for_config(log: &LogConfig, name: impl Into<String>) -> Result<Wal, WalError> {
        Self::open(
            &log.address,
            log.timeout,
            name.into(),
            log.auth.as_ref(),
            log.tls.as_ref(),
        )
        .await
    }

    async fn open(
        address: &str,
        timeout: Duration,
        name: String,
        auth: Option<&Credentials>,
        tls: Option<&NatsTls>,
    ) -> Result<Wal, WalError> {
        let disconnects = Arc::new(AtomicU64::new(0));
        let counter = disconnects.clone();
        let mut options = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(timeout)
            .request_timeout(Some(timeout))
            .event_callback(move |event| {
                if matches!(event, async_nats::Event::Disconnected) {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                std::future::ready(())
            });
        if let Some(c) = auth {
            options = options.user_and_password(c.user.clone(), c.password.clone());
        }
        if let Some(t) = tls {
            options = options.require_tls(true);
            if let Some(ca) = &t.ca {
                options = options.add_root_certificates(ca.clone());
            }
            if let Some((cert, key)) = &t.identity {
                options = options.add_client_certificate(cert.clone(), key.clone());
            }
        }
        let connect = options.connect(address);
        let client = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| WalError::Connect {
                address: address.to_string(),
                why: format!("no answer within {timeout:?}"),
            })?
            .map_err(|e| WalError::Connect {
                address: address.to_string(),
                why: e.to_string(),
            })?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(timeout);
        Ok(Wal {
            js,
            client,
            timeout,
            disconnects,
        })
    }

    async fn bounded<T, E: std::fmt::Display>(
        &self,
        what: impl Fn() -> String,
        f: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, WalError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(WalError::Server {
                what: what(),
                why: e.to_string(),
            }),
            Err(_) => Err(WalError::Timeout {
                what: what(),
                limit: self.timeout,
            }),
        }
    }

    /// The largest message the server accepts (its `max_payload`, 1 MiB by default):
    /// writers split larger batches.
    pub fn max_payload(&self) -> usize {
        self.client.server_info().max_payload.max(64 * 1024)
    }

    /// Creates the stream of `pchannel` if it does not exist, with a subject per
    /// virtual channel; a stream an older build made (bare subject only) gets them too.
    pub async fn ensure_channel(&self, pchannel: &str) -> Result<(), WalError> {
        let subjects = vec![pchannel.to_string(), format!("{pchannel}.>")];
        let config = stream::Config {
            name: pchannel.to_string(),
            subjects: subjects.clone(),
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        let what = || format!("creating channel {pchannel}");
        // Two processes creating the same stream at once: the one that loses the race can
        // be refused ("subjects overlap", 10065) instead of given the stream; asked again,
        // it finds the stream the other made.
        let mut s = match self
            .bounded(what, self.js.get_or_create_stream(config.clone()))
            .await
        {
            Ok(s) => s,
            Err(_) => {
                self.bounded(what, self.js.get_or_create_stream(config))
                    .await?
            }
        };
        let info = self.bounded(what, s.info()).await?.config.clone();
        if info.subjects != subjects {
            let updated = stream::Config { subjects, ..info };
            self.bounded(what, self.js.update_stream(updated)).await?;
        }
        Ok(())
    }

    /// Publishes `payload` to `vchannel` under `message_id` and waits for the server to
    /// store it. A repeated `message_id` is answered `duplicate` and stored once.
    ///
    /// nats-server shows a stream another connection is creating a few milliseconds
    /// before the stream listens on its subjects, so a publish right after
    /// [`Wal::ensure_channel`] found it can go unanswered ("no stream found for given
    /// subject"). Such a publish is sent again, with a short pause, until the log's
    /// timeout: no stream stored it, and the message ID keeps a repeat stored once.
    pub async fn publish(
        &self,
        vchannel: &str,
        message_id: &str,
        payload: Bytes,
    ) -> Result<Published, WalError> {
        let what = || format!("a publish to {vchannel}");
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            let msg = jetstream::context::Publish::build()
                .payload(payload.clone())
                .message_id(message_id);
            let sent = tokio::time::timeout_at(deadline, async {
                self.js.send_publish(subject_of(vchannel), msg).await?.await
            })
            .await;
            match sent {
                Ok(Ok(ack)) => {
                    return Ok(Published {
                        sequence: ack.sequence,
                        duplicate: ack.duplicate,
                    })
                }
                Ok(Err(e))
                    if e.kind() == jetstream::context::PublishErrorKind::StreamNotFound
                        && tokio::time::Instant::now() + pause < deadline =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Ok(Err(e)) => {
                    return Err(WalError::Server {
                        what: what(),
                        why: e.to_string(),
                    })
                }
                Err(_) => {
                    return Err(WalError::Timeout {
                        what: what(),
                        limit: self.timeout,
                    })
                }
            }
        }
    }

    /// The sequence of the last message in `pchannel` (0 when empty).
    pub async fn last_sequence(&self, pchannel: &str) -> Result<u64, WalError> {
        let what = || format!("the state of {pchannel}");
        let mut s = self.bounded(what, self.js.get_stream(pchannel)).await?;
        let info = self.bounded(what, s.info()).await?;
        Ok(info.state.last_sequence)
    }

    /// What `pchannel`'s stream holds now.
    pub async fn channel_state(&self, pchannel: &str) -> Result<ChannelState, WalError> {
        let what = || format!("the state of {pchannel}");
        let mut s = self.bounded(what, self.js.get_stream(pchannel)).await?;
        let info = self.bounded(what, s.info()).await?;
        Ok(ChannelState {
            first_sequence: info.state.first_sequence,
            last_sequence: info.state.last_sequence,
            messages: info.state.messages,
            bytes: info.state.bytes,
        })
    }

    /// For each reader of `pchannel` the server knows (every [`Reader`] is one, kept by
    /// the server until it has been idle for 30 s): the shard it reads (None: the whole
    /// channel) and the first sequence it has not been sent yet, what it may still need.
    pub async fn reader_positions(
        &self,
        pchannel: &str,
    ) -> Result<Vec<(Option<String>, u64)>, WalError> {
        let what = || format!("the readers of {pchannel}");
        let s = self.bounded(what, self.js.get_stream(pchannel)).await?;
        let infos = self
            .bounded(what, async {
                let mut out = Vec::new();
                let mut consumers = s.consumers();
                while let Some(info) = consumers.next().await {
                    out.push(info?);
                }
                Ok::<_, async_nats::Error>(out)
            })
            .await?;
        let prefix = format!("{pchannel}.");
        Ok(infos
            .iter()
            .map(|i| {
                let shard = i.config.filter_subject.strip_prefix(&prefix);
                (shard.map(str::to_string), i.delivered.stream_sequence + 1)
            })
            .collect())
    }

    /// The shards (virtual channels) that have messages in `pchannel`'s stream now.
    pub async fn shards_with_messages(&self, pchannel: &str) -> Result<Vec<String>, WalError> {
        let what = || format!("the subjects of {pchannel}");
        let s = self.bounded(what, self.js.get_stream(pchannel)).await?;
        let prefix = format!("{pchannel}.");
        let subjects = self
            .bounded(what, async {
                let mut out = Vec::new();
                let mut subjects = s.info_with_subjects(format!("{prefix}>")).await?;
                while let Some(item) = subjects.next().await {
                    out.push(item?.0);
                }
                Ok::<_, async_nats::Error>(out)
            })
            .await?;
        Ok(subjects
            .iter()
            .filter_map(|s| s.strip_prefix(&prefix).map(str::to_string))
            .collect())
    }

    /// Deletes every message of `pchannel` below sequence `below`; the number deleted.
    pub async fn purge_below(&self, pchannel: &str, below: u64) -> Result<u64, WalError> {
        let what = || format!("purging {pchannel} below {below}");
        let s = self.bounded(what, self.js.get_stream(pchannel)).await?;
        let r = self
            .bounded(what, s.purge().sequence(below).into_future())
            .await?;
        Ok(r.purged)
    }

    /// The sequence of the last message a reader of `vchannel` gets (0 when none): its
    /// own last message, or one an older build wrote to the bare channel subject.
    pub async fn last_sequence_of(&self, vchannel: &str) -> Result<u64, WalError> {
        let pchannel = pchannel_of(vchannel);
        let what = || format!("the state of {vchannel}");
        let s = self.bounded(what, self.js.get_stream(pchannel)).await?;
        let own = self.last_by_subject(&s, &subject_of(vchannel)).await?;
        let legacy = self.last_by_subject(&s, pchannel).await?;
        Ok(own.max(legacy))
    }

    /// The sequence of `vchannel`'s first message at or after `from` (None when it has
    /// none there).
    pub async fn first_sequence_of(
        &self,
        vchannel: &str,
        from: u64,
    ) -> Result<Option<u64>, WalError> {
        let pchannel = pchannel_of(vchannel);
        let what = || format!("the first message of {vchannel} from {from}");
        let s = self.bounded(what, self.js.get_stream(pchannel)).await?;
        let first = s.get_first_raw_message_by_subject(subject_of(vchannel), from.max(1));
        self.sequence_of(what, first).await
    }

    /// The sequence of the message `get` finds (None when there is none), bounded.
    async fn sequence_of(
        &self,
        what: impl Fn() -> String,
        get: impl std::future::Future<
            Output = Result<
                async_nats::jetstream::message::StreamMessage,
                stream::LastRawMessageError,
            >,
        >,
    ) -> Result<Option<u64>, WalError> {
        self.bounded(what, async {
            match get.await {
                Ok(m) => Ok(Some(m.sequence)),
                Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn last_by_subject(&self, s: &stream::Stream, subject: &str) -> Result<u64, WalError> {
        let what = || format!("the last message of {subject}");
        let last = s.get_last_raw_message_by_subject(subject);
        Ok(self.sequence_of(what, last).await?.unwrap_or(0))
    }

    /// Reads `vchannel` in order from `start` (a sequence of its physical channel, from
    /// 1): only its own messages, unless a message an older build wrote to the bare
    /// channel subject lies ahead (then the whole channel; callers skip other shards'
    /// messages).
    pub async fn read_from(&self, vchannel: &str, start: u64) -> Result<Reader, WalError> {
        let pchannel = pchannel_of(vchannel);
        let what = || format!("reading {vchannel} from {start}");
        let s = self.bounded(what, self.js.get_stream(pchannel)).await?;
        let legacy = self.last_by_subject(&s, pchannel).await? >= start.max(1);
        let config = consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start.max(1),
            },
            filter_subject: if legacy {
                String::new()
            } else {
                subject_of(vchannel)
            },
            ..Default::default()
        };
        let c = self.bounded(what, s.create_consumer(config)).await?;
        self.reader(c, vchannel, what).await
    }

    /// Reads all of `pchannel` in order from `start` (every shard's messages).
    pub async fn read_channel(&self, pchannel: &str, start: u64) -> Result<Reader, WalError> {
        let what = || format!("reading {pchannel} from {start}");
        let s = self.bounded(what, self.js.get_stream(pchannel)).await?;
        let config = consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start.max(1),
            },
            ..Default::default()
        };
        let c = self.bounded(what, s.create_consumer(config)).await?;
        self.reader(c, pchannel, what).await
    }

    async fn reader(
        &self,
        c: consumer::Consumer<consumer::pull::OrderedConfig>,
        channel: &str,
        what: impl Fn() -> String,
    ) -> Result<Reader, WalError> {
        // Taken before the consumer exists on the server: a loss after this point makes
        // the reader stale.
        let epoch = self.disconnects.load(Ordering::SeqCst);
        let messages = self.bounded(what, c.messages()).await?;
        Ok(Reader {
            messages,
            channel: channel.to_string(),
            disconnects: self.disconnects.clone(),
            epoch,
        })
    }
}

/// An ordered reader of one shard (or one whole channel).
pub struct Reader {
    messages: consumer::pull::Ordered,
    channel: String,
    disconnects: Arc<AtomicU64>,
    /// `disconnects` when the reader was made.
    epoch: u64,
}

impl Reader {
    /// The next message, or `None` if none arrives within `wait`.
    ///
    /// A reader made before the connection to the server was lost fails from then on:
    /// its consumer lives only in the server's
    /// memory, and a restarted server no longer has it, which the client library would
    /// notice only after its heartbeat timeout (tens of seconds). Its owner reads again
    /// from the next sequence with a new reader.
    pub async fn next(&mut self, wait: Duration) -> Result<Option<Entry>, WalError> {
        if self.disconnects.load(Ordering::SeqCst) != self.epoch {
            return Err(WalError::Server {
                what: format!("reading {}", self.channel),
                why: "the connection to the log server was lost since the reader was made"
                    .to_string(),
            });
        }
        match tokio::time::timeout(wait, self.messages.next()).await {
            Err(_) => Ok(None),
            Ok(None) => Err(WalError::Server {
                what: format!("reading {}", self.channel),
                why: "the reader was closed".to_string(),
            }),
            Ok(Some(Err(e))) => Err(WalError::Server {
                what: format!("reading {}", self.channel),
                why: e.to_string(),
            }),
            Ok(Some(Ok(m))) => {
                let sequence =
                    m.info()
                        .map(|i| i.stream_sequence)
                        .map_err(|e| WalError::Server {
                            what: format!("reading {}", self.channel),
                            why: format!("message without JetStream metadata: {e}"),
                        })?;
                Ok(Some(Entry {
                    sequence,
                    payload: m.message.payload.clone(),
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names() {
        let p = pchannel_name("by-dev", "rootcoord-dml", 3);
        assert_eq!(p, "by-dev-rootcoord-dml_3");
        let v = vchannel_name(&p, 4445, 0);
        assert_eq!(v, "by-dev-rootcoord-dml_3_4445v0");
        assert_eq!(pchannel_of(&v), p);
        assert_eq!(
            subject_of(&v),
            "by-dev-rootcoord-dml_3.by-dev-rootcoord-dml_3_4445v0"
        );
    }
}
