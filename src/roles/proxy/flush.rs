//! `Flush`, `GetFlushState`, `FlushAll`, `GetFlushAllState` and
//! `GetCollectionStatistics` / `GetPartitionStatistics`. A flush is a marker in each of
//! the collection's channels, after every write acknowledged before it: the datanode
//! consuming the channel writes out everything before the marker and moves the channel's
//! checkpoint to it. The flush is done when every channel's checkpoint has reached the
//! flush timestamp (the datacoord answers that from the registered checkpoints).

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::write::body;
use super::{coord_down, Proxy};
use crate::proto::common::{KeyValuePair, Status};
use crate::proto::datacoord as dc;
use crate::proto::milvus as pb;
use crate::proto::schema::LongArray;
use crate::proto::wal::{wal_message, FlushMsg};
use crate::status::{code, error, is_ok, WithStatus};
use crate::wal;

/// How long `Flush` waits at most for the flush to finish before it answers anyway (the
/// client then polls `GetFlushState` with the flush timestamp); a shorter deadline of the
/// client's (`grpc-timeout`) is kept.
const FLUSH_WAIT: Duration = Duration::from_secs(60);

impl Proxy {
    /// `Flush` of every named collection: answers once every one is flushed (its
    /// segment IDs in `coll_segIDs`, which `GetFlushState` by segment IDs then reports
    /// flushed, as the Node SDK's `flushSync` polls), or after `wait` with what is done.
    pub async fn flush(
        &self,
        db: &str,
        req: pb::FlushRequest,
        wait: Option<Duration>,
    ) -> pb::FlushResponse {
        let wait = wait.map_or(FLUSH_WAIT, |w| w.min(FLUSH_WAIT));
        match self.try_flush(db, req, wait).await {
            Ok(r) => r,
            Err(s) => pb::FlushResponse {
                status: Some(s),
                ..Default::default()
            },
        }
    }

    async fn try_flush(
        &self,
        db: &str,
        req: pb::FlushRequest,
        wait: Duration,
    ) -> Result<pb::FlushResponse, Status> {
        if req.collection_names.is_empty() {
            return Err(error(
                code::PARAMETER_INVALID,
                "flush needs at least one collection name",
            ));
        }
        let mut flush_ts = HashMap::new();
        let mut pending = Vec::new();
        for name in &req.collection_names {
            let t = self.target(db, name, "").await?;
            let c = t.collection;
            let (_, ts) = self.alloc(1).await?;
            self.mark_flush(c.collection_id, &c.virtual_channel_names, ts)
                .await?;
            flush_ts.insert(name.clone(), ts);
            pending.push((name.clone(), c.collection_id, c.virtual_channel_names, ts));
        }
        // Answer as soon as the flush is done (up to `wait`), so the client's first
        // GetFlushState already says flushed.
        let deadline = Instant::now() + wait;
        let mut segments = HashMap::new();
        while let Some((name, coll, vchannels, ts)) = pending.last().cloned() {
            let state = self.flush_state(coll, ts, vchannels).await;
            match state {
                // The datacoord says why the flush cannot finish (a failing sync).
                Err(s) if !s.retriable => return Err(s),
                Ok(s) if s.flushed => {
                    segments.insert(
                        name,
                        LongArray {
                            data: s.segment_ids,
                        },
                    );
                    pending.pop();
                }
                _ if Instant::now() >= deadline => break,
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        Ok(pb::FlushResponse {
            status: Some(Status::default()),
            db_name: db.to_string(),
            coll_seg_i_ds: segments,
            coll_flush_ts: flush_ts,
            ..Default::default()
        })
    }

    /// Publishes a flush marker at `ts` in each of a collection's channels.
    async fn mark_flush(&self, coll: i64, vchannels: &[String], ts: u64) -> Result<(), Status> {
        let rid = self.request_id();
        let messages = vchannels
            .iter()
            .enumerate()
            .map(|(shard, vch)| {
                let m = FlushMsg {
                    collection_id: coll,
                    vchannel: vch.clone(),
                    timestamp: ts,
                };
                (
                    wal::pchannel_of(vch).to_string(),
                    format!("{rid}-f{shard}"),
                    body(wal_message::Body::Flush(m)),
                )
            })
            .collect();
        self.publish_all(messages).await
    }

    /// `FlushAll`: a flush marker at one timestamp in every channel of every collection
    /// of the database (of every database when `db_name` is empty); answers at once
    /// with that timestamp, which `GetFlushAllState` then checks.
    pub async fn flush_all(&self, db: &str) -> pb::FlushAllResponse {
        let answer = async {
            let collections = self.collections_of(db).await?;
            let (_, ts) = self.alloc(1).await?;
            for c in &collections {
                self.mark_flush(c.id, &c.virtual_channel_names, ts).await?;
            }
            Ok(ts)
        };
        match answer.await {
            Ok(ts) => pb::FlushAllResponse {
                status: Some(Status::default()),
                flush_all_ts: ts,
            },
            Err(s) => pb::FlushAllResponse::from_status(s),
        }
    }

    /// `GetFlushAllState`: whether every collection of the database (every database
    /// when `db_name` is empty) that existed at `flush_all_ts` is persisted up to it.
    pub async fn get_flush_all_state(
        &self,
        db: &str,
        flush_all_ts: u64,
    ) -> pb::GetFlushAllStateResponse {
        let answer = async {
            for c in self.collections_of(db).await? {
                if c.created_timestamp > flush_all_ts {
                    continue; // created after the flush: nothing of it to flush
                }
                let s = self
                    .flush_state(c.id, flush_all_ts, c.virtual_channel_names)
                    .await?;
                if !s.flushed {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        match answer.await {
            Ok(flushed) => pb::GetFlushAllStateResponse {
                status: Some(Status::default()),
                flushed,
            },
            Err(s) => pb::GetFlushAllStateResponse::from_status(s),
        }
    }

    async fn flush_state(
        &self,
        collection_id: i64,
        flush_ts: u64,
        vchannels: Vec<String>,
    ) -> Result<dc::FlushStateResponse, Status> {
        let req = dc::FlushStateRequest {
            collection_id,
            flush_ts,
            vchannels,
        };
        let r = self
            .datacoord
            .call(req, |mut c, r| async move { c.get_flush_state(r).await })
            .await
            .map_err(coord_down)?;
        match r.status.clone() {
            Some(s) if !is_ok(&s) => Err(s),
            _ => Ok(r),
        }
    }

    /// `GetFlushState`: whether the collection is persisted up to `flush_ts`. Asked
    /// by segment IDs alone (older clients, the Node SDK's `flushSync`), it answers as
    /// Milvus does for segments that exist flushed or not at all: flushed. Segments
    /// here are registered only once written, and `Flush` listed only those.
    pub async fn get_flush_state(
        &self,
        db: &str,
        req: pb::GetFlushStateRequest,
    ) -> pb::GetFlushStateResponse {
        let answer = async {
            if req.collection_name.is_empty() {
                return Ok(dc::FlushStateResponse {
                    flushed: true,
                    ..Default::default()
                });
            }
            let c = self.target(db, &req.collection_name, "").await?.collection;
            self.flush_state(c.collection_id, req.flush_ts, c.virtual_channel_names)
                .await
        };
        match answer.await {
            Ok(s) => pb::GetFlushStateResponse {
                status: Some(Status::default()),
                flushed: s.flushed,
            },
            Err(s) => pb::GetFlushStateResponse {
                status: Some(s),
                flushed: false,
            },
        }
    }

    /// Rows of a collection's persisted segments (of `partitions` only, unless empty).
    async fn persisted_rows(&self, coll: i64, partitions: Vec<i64>) -> Result<i64, Status> {
        let r = self
            .datacoord
            .call(
                dc::CollectionRequest {
                    collection_id: coll,
                    partition_ids: partitions,
                },
                |mut c, r| async move { c.get_collection_statistics(r).await },
            )
            .await
            .map_err(coord_down)?;
        match r.status {
            Some(s) if !is_ok(&s) => Err(s),
            _ => Ok(r.row_count),
        }
    }

    /// `GetCollectionStatistics`: `row_count` of the collection's persisted segments.
    pub async fn get_collection_statistics(
        &self,
        db: &str,
        req: pb::GetCollectionStatisticsRequest,
    ) -> pb::GetCollectionStatisticsResponse {
        let answer = async {
            let c = self.target(db, &req.collection_name, "").await?.collection;
            self.persisted_rows(c.collection_id, vec![]).await
        };
        match answer.await {
            Ok(rows) => pb::GetCollectionStatisticsResponse {
                status: Some(Status::default()),
                stats: row_count_stats(rows),
            },
            Err(s) => pb::GetCollectionStatisticsResponse::from_status(s),
        }
    }

    /// `GetPartitionStatistics`: `row_count` of the partition's persisted segments.
    pub async fn get_partition_statistics(
        &self,
        db: &str,
        req: pb::GetPartitionStatisticsRequest,
    ) -> pb::GetPartitionStatisticsResponse {
        let answer = async {
            let t = self
                .target(db, &req.collection_name, &req.partition_name)
                .await?;
            self.persisted_rows(t.collection.collection_id, vec![t.partition_id])
                .await
        };
        match answer.await {
            Ok(rows) => pb::GetPartitionStatisticsResponse {
                status: Some(Status::default()),
                stats: row_count_stats(rows),
            },
            Err(s) => pb::GetPartitionStatisticsResponse::from_status(s),
        }
    }
}

/// Statistics as Milvus answers them: `row_count`.
fn row_count_stats(rows: i64) -> Vec<KeyValuePair> {
    vec![KeyValuePair {
        key: "row_count".to_string(),
        value: rows.to_string(),
    }]
}
