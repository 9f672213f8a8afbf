//! The querynode's gRPC service: shard searches and queries from proxies. A shard that
//! is not served here (moved, not loaded yet) is refused with a retriable status, so the
//! proxy asks another replica.

use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response};

use super::search::{self, Grouping, QueryInput, SearchInput, SparseQueries};
use super::{QueryNode, Shard, ShardKey, Shared};
use crate::expr::Filter;
use crate::index::params::{Metric, Range, Ratio, SearchParams};
use crate::index::sparse;
use crate::proto::common::Status;
use crate::proto::milvus as pb;
use crate::proto::querynode as qn;
use crate::proto::querynode::query_node_server::{QueryNode as QueryNodeApi, QueryNodeServer};
use crate::schema::vectors;
use crate::status::{code, component_states, error, ok, retriable};

/// The gRPC face of a [`QueryNode`].
pub struct Service(pub Arc<QueryNode>);

impl Service {
    /// A tonic service for it.
    pub fn server(q: Arc<QueryNode>) -> QueryNodeServer<Service> {
        QueryNodeServer::new(Service(q))
    }
}

type Reply<T> = Result<Response<T>, tonic::Status>;

/// Freshness modes of [`qn::Freshness`].
pub mod mode {
    /// No wait.
    pub const EVENTUALLY: i32 = 0;
    /// Every write acknowledged before the request.
    pub const STRONG: i32 = 1;
    /// Every write acknowledged more than `staleness_ms` ago.
    pub const BOUNDED: i32 = 2;
}

/// The served, ready shard of a request, fresh enough for it.
async fn ready_shard(shared: &Shared, base: &qn::ShardRequestBase) -> Result<Arc<Shard>, Status> {
    let key: ShardKey = (base.collection_id, base.replica, base.vchannel.clone());
    let shard = shared
        .shard(&key)
        .filter(|s| s.ready.load(std::sync::atomic::Ordering::Acquire))
        .ok_or_else(|| {
            retriable(
                code::SERVICE_UNAVAILABLE,
                format!(
                    "shard {} (replica {}) is not served by this querynode",
                    base.vchannel, base.replica
                ),
            )
        })?;
    let f = base.freshness.unwrap_or_default();
    if f.mode != mode::EVENTUALLY {
        let wal = shared
            .wal()
            .await
            .map_err(|e| retriable(code::UNEXPECTED, format!("the log is not reachable: {e}")))?;
        let timeout = Duration::from_millis(if f.timeout_ms > 0 {
            f.timeout_ms as u64
        } else {
            10_000
        });
        shard
            .wait_fresh(
                wal,
                f.mode == mode::STRONG,
                Duration::from_millis(f.staleness_ms.max(0) as u64),
                timeout,
            )
            .await
            .map_err(|e| retriable(code::UNEXPECTED, e.to_string()))?;
    }
    Ok(shard)
}

fn filter_of(shard: &Shard, base: &qn::ShardRequestBase) -> Result<Option<Filter>, Status> {
    if base.filter.trim().is_empty() {
        return Ok(None);
    }
    Filter::compile(&base.filter, &shard.schema, &base.template_values)
        .map(Some)
        .map_err(|e| error(code::PARAMETER_INVALID, e.to_string()))
}

async fn do_search(
    shared: &Shared,
    req: qn::ShardSearchRequest,
) -> Result<qn::ShardSearchResults, Status> {
    let base = req.base.clone().unwrap_or_default();
    let shard = ready_shard(shared, &base).await?;
    let filter = filter_of(&shard, &base)?;
    let metric = Metric::parse(&req.metric_type).map_err(|e| error(code::PARAMETER_INVALID, e))?;
    let dim = req.dim.max(1) as usize;
    if !req.vectors.len().is_multiple_of(4 * dim) {
        return Err(error(
            code::PARAMETER_INVALID,
            format!(
                "{} bytes of query vectors are not rows of dim {dim}",
                req.vectors.len()
            ),
        ));
    }
    let vectors: Vec<f32> = req
        .vectors
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let params = SearchParams {
        ef: (req.ef > 0).then_some(req.ef as usize),
        nprobe: (req.nprobe > 0).then_some(req.nprobe as usize),
        reorder_k: (req.reorder_k > 0).then_some(req.reorder_k as usize),
        drop_ratio_search: Some(Ratio(req.drop_ratio_search)),
    };
    let sparse = if req.sparse_vectors.is_empty() {
        None
    } else {
        let mut queries = Vec::with_capacity(req.sparse_vectors.len());
        for v in &req.sparse_vectors {
            queries.push(sparse::validate_row(v).map_err(|e| error(code::PARAMETER_INVALID, e))?);
        }
        Some(SparseQueries {
            queries,
            bm25: req.bm25.then_some((req.bm25_k1, req.bm25_b)),
        })
    };
    let mut range = if req.has_radius {
        let rf = req.has_range_filter.then_some(f64::from(req.range_filter));
        Some(
            Range::new(metric, f64::from(req.radius), rf)
                .map_err(|e| error(code::PARAMETER_INVALID, e))?,
        )
    } else {
        None
    };
    if req.has_after {
        let r = range.unwrap_or_else(|| Range::unbounded(metric));
        range = Some(if req.after_inclusive {
            r.at_or_after(req.after)
        } else {
            r.after(req.after)
        });
    }
    let found = tokio::task::spawn_blocking(move || {
        let d = shard.data.read().expect("shard lock");
        let found = search::search(
            &d,
            &SearchInput {
                field_id: req.field_id,
                vectors: &vectors,
                dim,
                topk: req.topk.max(0) as usize,
                metric,
                params,
                filter: filter.as_ref(),
                partitions: &base.partition_ids,
                output: &base.output_field_ids,
                expire_before: base.expire_before,
                range,
                group: (req.group_by_field_id != 0).then(|| Grouping {
                    field_id: req.group_by_field_id,
                    size: req.group_size.max(1) as usize,
                }),
                sparse: sparse.as_ref(),
            },
        );
        found.map(|mut f| {
            f.fields.iter_mut().for_each(vectors::from_words);
            f
        })
    })
    .await
    .map_err(|e| error(code::UNEXPECTED, e.to_string()))?
    .map_err(|e| error(code::PARAMETER_INVALID, e))?;
    Ok(qn::ShardSearchResults {
        status: Some(ok()),
        topks: found.topks,
        ids: found.ids,
        scores: found.scores,
        fields_data: found.fields,
        scanned: found.scanned,
    })
}

async fn do_query(
    shared: &Shared,
    req: qn::ShardQueryRequest,
) -> Result<qn::ShardQueryResults, Status> {
    let base = req.base.clone().unwrap_or_default();
    let shard = ready_shard(shared, &base).await?;
    let filter = filter_of(&shard, &base)?;
    let found = tokio::task::spawn_blocking(move || {
        let d = shard.data.read().expect("shard lock");
        let mut found = search::query(
            &d,
            &QueryInput {
                filter: filter.as_ref(),
                partitions: &base.partition_ids,
                output: &base.output_field_ids,
                limit: req.limit.max(0) as usize,
                count_only: req.count_only,
                expire_before: base.expire_before,
            },
        );
        found.fields.iter_mut().for_each(vectors::from_words);
        found
    })
    .await
    .map_err(|e| error(code::UNEXPECTED, e.to_string()))?;
    Ok(qn::ShardQueryResults {
        status: Some(ok()),
        ids: found.ids,
        fields_data: found.fields,
        count: found.count,
        scanned: found.scanned,
    })
}

#[tonic::async_trait]
impl QueryNodeApi for Service {
    async fn get_component_states(
        &self,
        _req: Request<pb::GetComponentStatesRequest>,
    ) -> Reply<pb::ComponentStates> {
        Ok(Response::new(component_states(&self.0.shared().ctx.state)))
    }

    async fn search(&self, req: Request<qn::ShardSearchRequest>) -> Reply<qn::ShardSearchResults> {
        let r = do_search(self.0.shared(), req.into_inner()).await;
        Ok(Response::new(r.unwrap_or_else(|s| {
            qn::ShardSearchResults {
                status: Some(s),
                ..Default::default()
            }
        })))
    }

    async fn query(&self, req: Request<qn::ShardQueryRequest>) -> Reply<qn::ShardQueryResults> {
        let r = do_query(self.0.shared(), req.into_inner()).await;
        Ok(Response::new(r.unwrap_or_else(|s| qn::ShardQueryResults {
            status: Some(s),
            ..Default::default()
        })))
    }

    async fn list_segments(
        &self,
        req: Request<qn::ShardSegmentsRequest>,
    ) -> Reply<qn::ShardSegments> {
        let req = req.into_inner();
        let base = qn::ShardRequestBase {
            collection_id: req.collection_id,
            vchannel: req.vchannel,
            replica: req.replica,
            ..Default::default()
        };
        let shard = match ready_shard(self.0.shared(), &base).await {
            Ok(s) => s,
            Err(s) => {
                return Ok(Response::new(qn::ShardSegments {
                    status: Some(s),
                    ..Default::default()
                }))
            }
        };
        let d = shard.data.read().expect("shard data lock");
        let segments = d
            .sealed
            .values()
            .map(|s| {
                let index_bytes: usize = s.indexes.values().map(|i| i.memory_usage()).sum();
                let mut indexed_field_ids: Vec<i64> = s.indexes.keys().copied().collect();
                indexed_field_ids.sort_unstable();
                qn::ShardSegment {
                    id: s.chunk.id,
                    partition_id: s.chunk.partition,
                    num_rows: s.chunk.rows as i64,
                    mem_size: (s.chunk.memory_usage() + index_bytes) as i64,
                    indexed_field_ids,
                }
            })
            .collect();
        Ok(Response::new(qn::ShardSegments {
            status: Some(ok()),
            segments,
            growing_rows: d.growing.iter().map(|c| c.rows as i64).sum(),
        }))
    }
}
