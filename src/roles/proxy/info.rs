//! What a client can ask about the cluster's state: replicas (`GetReplicas`), loaded and
//! persisted segments (`GetQuerySegmentInfo`, `GetPersistentSegmentInfo`) and the system
//! topology (`GetMetrics`); row counts are `flush`'s statistics.
//!
//! Replicas and loaded segments come from the records the proxy follows (loads and
//! which querynode serves each shard of each replica) and from those querynodes;
//! persisted segments from the active datacoord; the topology from the
//! session keys in etcd. Nothing here changes anything.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::{coord_down, Proxy};
use crate::proto::common::{SegmentLevel, SegmentState, Status};
use crate::proto::datacoord as dc;
use crate::proto::milvus as pb;
use crate::proto::querynode::ShardSegmentsRequest;
use crate::session::discovery::{self, Standing};
use crate::status::{code, error, is_ok, retriable, WithStatus};

/// The resource group every querynode is in (resource groups are not built).
const DEFAULT_RESOURCE_GROUP: &str = "__default_resource_group";

impl Proxy {
    /// `GetReplicas`: each replica of a loaded collection (by ID or by name) with the
    /// querynode serving each of its shards; none when it is not loaded. A replica's ID
    /// is its number (0, 1, ...).
    pub async fn get_replicas(
        &self,
        db: &str,
        req: pb::GetReplicasRequest,
    ) -> pb::GetReplicasResponse {
        let answer = async {
            let record = if req.collection_name.is_empty() {
                self.collection_by_id(req.collection_id).await?
            } else {
                self.collection_record(db, &req.collection_name).await?
            };
            // Not loaded: no replicas (Milvus answers an empty list, not an error).
            let Some(info) = self.load_info(record.id) else {
                return Ok(vec![]);
            };
            let serving = self.serving_of(record.id);
            let replicas = (0..info.replica_number.max(1))
                .map(|replica| {
                    let mut nodes = BTreeSet::new();
                    let shard_replicas = info
                        .vchannels
                        .iter()
                        .map(|vch| {
                            let here: Vec<_> = serving
                                .iter()
                                .filter(|s| s.replica == replica && &s.vchannel == vch)
                                .collect();
                            nodes.extend(here.iter().map(|s| s.node_id));
                            pb::ShardReplica {
                                leader_id: here.first().map_or(0, |s| s.node_id),
                                leader_addr: here
                                    .first()
                                    .map_or_else(String::new, |s| s.address.clone()),
                                dm_channel_name: vch.clone(),
                                node_ids: if req.with_shard_nodes {
                                    here.iter().map(|s| s.node_id).collect()
                                } else {
                                    vec![]
                                },
                            }
                        })
                        .collect();
                    pb::ReplicaInfo {
                        replica_id: replica as i64,
                        collection_id: record.id,
                        partition_ids: info.partition_ids.clone(),
                        shard_replicas,
                        node_ids: nodes.into_iter().collect(),
                        resource_group_name: DEFAULT_RESOURCE_GROUP.to_string(),
                        num_outbound_node: Default::default(),
                    }
                })
                .collect();
            Ok::<_, Status>(replicas)
        };
        match answer.await {
            Ok(replicas) => pb::GetReplicasResponse {
                status: Some(Status::default()),
                replicas,
            },
            Err(s) => pb::GetReplicasResponse::from_status(s),
        }
    }

    /// `GetQuerySegmentInfo`: the sealed segments the querynodes hold for a loaded
    /// collection, each with the querynodes holding it (one per replica); none when it
    /// is not loaded. Rows not yet
    /// in a sealed segment (the growing part) are not segments here.
    pub async fn get_query_segment_info(
        &self,
        db: &str,
        req: pb::GetQuerySegmentInfoRequest,
    ) -> pb::GetQuerySegmentInfoResponse {
        let answer = async {
            let record = self.collection_record(db, &req.collection_name).await?;
            if self.load_info(record.id).is_none() {
                return Ok(vec![]); // not loaded: no segments (as Milvus answers)
            }
            let defs = self.index_defs(record.id);
            let mut infos: BTreeMap<i64, pb::QuerySegmentInfo> = BTreeMap::new();
            for s in self.serving_of(record.id) {
                let held = self
                    .shard_segments(
                        &s.address,
                        ShardSegmentsRequest {
                            collection_id: record.id,
                            vchannel: s.vchannel.clone(),
                            replica: s.replica,
                        },
                    )
                    .await?;
                for seg in held.segments {
                    let index = defs
                        .iter()
                        .find(|d| seg.indexed_field_ids.contains(&d.field_id));
                    let info = infos.entry(seg.id).or_insert_with(|| pb::QuerySegmentInfo {
                        segment_id: seg.id,
                        collection_id: record.id,
                        partition_id: seg.partition_id,
                        mem_size: seg.mem_size,
                        num_rows: seg.num_rows,
                        index_name: index.map_or_else(String::new, |d| d.index_name.clone()),
                        index_id: index.map_or(0, |d| d.id),
                        state: SegmentState::Sealed as i32,
                        level: SegmentLevel::L1 as i32,
                        ..Default::default()
                    });
                    #[allow(deprecated)]
                    if info.node_id == 0 {
                        info.node_id = s.node_id;
                    }
                    info.node_ids.push(s.node_id);
                }
            }
            Ok(infos.into_values().collect())
        };
        match answer.await {
            Ok(infos) => pb::GetQuerySegmentInfoResponse {
                status: Some(Status::default()),
                infos,
            },
            Err(s) => pb::GetQuerySegmentInfoResponse::from_status(s),
        }
    }

    /// The active datacoord's live segment records of a collection (of `partitions`
    /// only, unless empty).
    async fn persisted_segments(
        &self,
        coll: i64,
        partitions: Vec<i64>,
    ) -> Result<Vec<dc::SegmentRecord>, Status> {
        let r = self
            .datacoord
            .call(
                dc::CollectionRequest {
                    collection_id: coll,
                    partition_ids: partitions,
                },
                |mut c, r| async move { c.list_segments(r).await },
            )
            .await
            .map_err(coord_down)?;
        match r.status {
            Some(s) if !is_ok(&s) => Err(s),
            _ => Ok(r.segments),
        }
    }

    /// `GetPersistentSegmentInfo`: the collection's segments in object storage
    /// (Flushed; rows still in a datanode's buffer are in no segment yet).
    pub async fn get_persistent_segment_info(
        &self,
        db: &str,
        req: pb::GetPersistentSegmentInfoRequest,
    ) -> pb::GetPersistentSegmentInfoResponse {
        let answer = async {
            let c = self.target(db, &req.collection_name, "").await?.collection;
            let segments = self.persisted_segments(c.collection_id, vec![]).await?;
            Ok::<_, Status>(
                segments
                    .into_iter()
                    .map(|s| pb::PersistentSegmentInfo {
                        segment_id: s.id,
                        collection_id: s.collection_id,
                        partition_id: s.partition_id,
                        num_rows: s.num_rows,
                        state: SegmentState::Flushed as i32,
                        level: SegmentLevel::L1 as i32,
                        is_sorted: false,
                    })
                    .collect(),
            )
        };
        match answer.await {
            Ok(infos) => pb::GetPersistentSegmentInfoResponse {
                status: Some(Status::default()),
                infos,
            },
            Err(s) => pb::GetPersistentSegmentInfoResponse::from_status(s),
        }
    }

    /// `GetMetrics` with `{"metric_type": "system_info"}`: the cluster's topology in
    /// Milvus's JSON (`nodes_info`, each with `identifier`, `connected` and `infos`:
    /// name, type, id, has_error, the address and versions), read off the session
    /// keys: one entry per process, standbys included and marked so.
    pub async fn get_metrics(&self, req: pb::GetMetricsRequest) -> pb::GetMetricsResponse {
        let metric_type = serde_json::from_str::<serde_json::Value>(&req.request)
            .ok()
            .and_then(|v| v.get("metric_type")?.as_str().map(str::to_string));
        let Some(metric_type) = metric_type else {
            return pb::GetMetricsResponse::from_status(error(
                code::PARAMETER_INVALID,
                format!(
                    "invalid metrics request {:?}: expected JSON such as {{\"metric_type\": \"system_info\"}}",
                    req.request
                ),
            ));
        };
        if metric_type != "system_info" {
            return pb::GetMetricsResponse::from_status(error(
                code::PARAMETER_INVALID,
                format!("unsupported metric type: {metric_type} (supported: system_info)"),
            ));
        }
        let (sessions, _) = match discovery::all(&self.ctx.etcd, &self.ctx.keys).await {
            Ok(s) => s,
            Err(e) => {
                return pb::GetMetricsResponse::from_status(retriable(
                    code::SERVICE_UNAVAILABLE,
                    format!("cannot read the sessions from etcd: {e}"),
                ))
            }
        };
        let me = self.ctx.state.report().server_id;
        let mut nodes = Vec::new();
        let mut coordinators = Vec::new();
        for (s, standing) in discovery::processes(&sessions, &self.ctx.keys) {
            let v = &s.value;
            let name = format!("{}{}", v.server_name, v.server_id);
            if standing == Standing::Active {
                coordinators.push(json!({
                    "connected_identifier": v.server_id,
                    "type": "forward",
                    "target_type": v.server_name,
                }));
            }
            nodes.push((
                v.server_id,
                json!({
                    "identifier": v.server_id,
                    "connected": [],
                    "infos": {
                        "has_error": false,
                        "error_reason": "",
                        "name": name,
                        "type": v.server_name,
                        "id": v.server_id,
                        "hardware_infos": { "ip": v.address, "host_name": v.host_name },
                        "system_info": {
                            "system_version": super::service::SERVER_VERSION,
                            "deploy_mode": "CLUSTER",
                            "build_version": v.project_version,
                        },
                        "system_configurations": {},
                        "standing": standing.as_str(),
                    },
                }),
            ));
        }
        for (id, node) in nodes.iter_mut() {
            if *id == me {
                node["connected"] = json!(coordinators);
            }
        }
        let body = json!({
            "nodes_info": nodes.into_iter().map(|(_, n)| n).collect::<Vec<_>>(),
            "self_name": format!("proxy{me}"),
        });
        pb::GetMetricsResponse {
            status: Some(Status::default()),
            response: body.to_string(),
            component_name: format!("proxy{me}"),
        }
    }
}

/// Milvus's check of a resource group name (code 1100 when it fails).
fn check_resource_group_name(name: &str) -> Result<(), Status> {
    let invalid = |why: &str| {
        error(
            code::PARAMETER_INVALID,
            format!("Invalid resource group name {name}. {why}: invalid parameter"),
        )
    };
    let Some(first) = name.bytes().next() else {
        return Err(error(
            code::PARAMETER_INVALID,
            "resource group name couldn't be empty".to_string(),
        ));
    };
    if name.len() > 255 {
        return Err(invalid(
            "the length of a resource group name must be less than 255 characters",
        ));
    }
    if first != b'_' && !first.is_ascii_alphabetic() {
        return Err(invalid(
            "the first character of a resource group name must be an underscore or letter.",
        ));
    }
    if !name.bytes().all(|c| c == b'_' || c.is_ascii_alphanumeric()) {
        return Err(invalid(
            "resource group name can only contain numbers, letters and underscores.",
        ));
    }
    Ok(())
}

/// The answer to the calls that would place querynodes or replicas in other groups.
fn one_group_only(method: &str) -> Status {
    error(
        code::SERVICE_UNIMPLEMENTED,
        format!(
            "{method} is not supported by this Milvus-compatible cluster: it has one resource group, \
             {DEFAULT_RESOURCE_GROUP}, holding every querynode, and places each replica over all of them"
        ),
    )
}

impl Proxy {
    /// `ListResourceGroups`: the default group, the only one.
    pub fn list_resource_groups(&self) -> pb::ListResourceGroupsResponse {
        pb::ListResourceGroupsResponse {
            status: Some(Status::default()),
            resource_groups: vec![DEFAULT_RESOURCE_GROUP.to_string()],
        }
    }

    /// `DescribeResourceGroup`: the default group as Milvus describes it (capacity
    /// 1,000,000, requests 0 / limits 1,000,000 nodes), with every live querynode and
    /// the replicas of each loaded collection; another name is not found (300).
    pub async fn describe_resource_group(
        &self,
        req: pb::DescribeResourceGroupRequest,
    ) -> pb::DescribeResourceGroupResponse {
        if req.resource_group != DEFAULT_RESOURCE_GROUP {
            return pb::DescribeResourceGroupResponse::from_status(error(
                code::RESOURCE_GROUP_NOT_FOUND,
                format!("resource group not found[rg={}]", req.resource_group),
            ));
        }
        let sessions = match discovery::all(&self.ctx.etcd, &self.ctx.keys).await {
            Ok((s, _)) => s,
            Err(e) => {
                return pb::DescribeResourceGroupResponse::from_status(retriable(
                    code::SERVICE_UNAVAILABLE,
                    format!("cannot read the sessions from etcd: {e}"),
                ))
            }
        };
        let nodes: Vec<pb::NodeInfo> = discovery::processes(&sessions, &self.ctx.keys)
            .into_iter()
            .filter(|(s, _)| s.value.server_name == "querynode")
            .map(|(s, _)| pb::NodeInfo {
                node_id: s.value.server_id,
                address: s.value.address.clone(),
                hostname: s.value.host_name.clone(),
            })
            .collect();
        let mut num_loaded_replica = std::collections::HashMap::new();
        for (id, load) in self.load_infos() {
            if let Some(schema) = self.collection_by_id(id).await.ok().and_then(|r| r.schema) {
                num_loaded_replica.insert(schema.name, load.replica_number.max(1));
            }
        }
        const CAPACITY: i32 = 1_000_000;
        pb::DescribeResourceGroupResponse {
            status: Some(Status::default()),
            resource_group: Some(pb::ResourceGroup {
                name: DEFAULT_RESOURCE_GROUP.to_string(),
                capacity: CAPACITY,
                num_available_node: nodes.len() as i32,
                num_loaded_replica,
                num_outgoing_node: Default::default(),
                num_incoming_node: Default::default(),
                config: Some(pb::ResourceGroupConfig {
                    requests: Some(pb::ResourceGroupLimit { node_num: 0 }),
                    limits: Some(pb::ResourceGroupLimit { node_num: CAPACITY }),
                    transfer_from: vec![],
                    transfer_to: vec![],
                    node_filter: None,
                }),
                nodes,
            }),
        }
    }

    /// `CreateResourceGroup`: a valid name is refused all the same (one group only).
    pub fn create_resource_group(&self, req: pb::CreateResourceGroupRequest) -> Status {
        if let Err(s) = check_resource_group_name(&req.resource_group) {
            return s;
        }
        one_group_only("CreateResourceGroup")
    }

    /// `DropResourceGroup`: the default group cannot be dropped (Milvus's words); any
    /// other name does not exist, and dropping it is no error (as in Milvus).
    pub fn drop_resource_group(&self, req: pb::DropResourceGroupRequest) -> Status {
        if req.resource_group == DEFAULT_RESOURCE_GROUP {
            return error(
                code::PARAMETER_INVALID,
                format!(
                    "delete default rg is not permitted: invalid parameter[expected=not default resource group][actual={DEFAULT_RESOURCE_GROUP}]"
                ),
            );
        }
        Status::default()
    }

    /// `UpdateResourceGroups`, `TransferNode`, `TransferReplica`: refused (one group).
    pub fn refuse_resource_group_change(&self, method: &str) -> Status {
        one_group_only(method)
    }
}
