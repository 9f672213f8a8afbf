//! `milvus.proto.milvus.MilvusService` as the proxy serves it. Errors travel in-band in
//! `common.Status`; while no active rootcoord answers within `proxy.coordRetryTimeout`,
//! a call gets gRPC UNAVAILABLE, which Milvus clients retry. Methods of Milvus 2.5 this
//! build does not serve yet answer [`not_served`] (code 10, naming the method).

use std::future::Future;
use std::sync::Arc;

use tonic::transport::Channel;
use tonic::{Request, Response};

use super::Proxy;
use crate::auth::Caller;
use crate::coord_client::CoordError;
use crate::proto::common::{ServerInfo, Status};
use crate::proto::milvus as pb;
use crate::proto::milvus::milvus_service_server::{MilvusService, MilvusServiceServer};
use crate::proto::rootcoord::root_coord_client::RootCoordClient;
use crate::proto::rootcoord::AllocRequest;
use crate::roles::rootcoord::validate::FIRST_FIELD_ID;
use crate::schema::names;
use crate::session::state::StateCode;
use crate::status::{code, component_states, error, ok, WithStatus};

/// Request metadata naming the database (pymilvus sends it on every call).
pub const DB_HEADER: &str = "dbname";
/// The server version reported to clients: the Milvus protocol level it speaks.
pub const SERVER_VERSION: &str = concat!("v2.5.0-ha.", env!("CARGO_PKG_VERSION"));

/// The gRPC face of a [`Proxy`].
pub struct Service(pub Arc<Proxy>);

impl Service {
    /// A tonic service for it.
    pub fn server(p: Arc<Proxy>) -> MilvusServiceServer<Service> {
        MilvusServiceServer::new(p.into_service())
    }

    /// Forwards to the active rootcoord (a change when `write`, which is retried only
    /// when it surely did not run); UNAVAILABLE when none answers in time.
    async fn forward<M, T, F, Fut>(
        &self,
        write: bool,
        message: M,
        f: F,
    ) -> Result<Response<T>, tonic::Status>
    where
        M: Clone,
        T: WithStatus,
        F: Fn(RootCoordClient<Channel>, Request<M>) -> Fut,
        Fut: Future<Output = Result<Response<T>, tonic::Status>>,
    {
        let rc = &self.0.rootcoord;
        let answer = if write {
            rc.call_write(message, f).await
        } else {
            rc.call(message, f).await
        };
        match answer {
            Ok(r) => Ok(Response::new(r)),
            Err(e) => coord_failure(e),
        }
    }
}

/// The answer to a call no active coordinator answered: UNAVAILABLE (clients retry) when
/// none was reachable in time, else an unexpected-error status.
pub(crate) fn coord_failure<T: WithStatus>(e: CoordError) -> Result<Response<T>, tonic::Status> {
    match e {
        CoordError::Unavailable(role, d) => Err(tonic::Status::unavailable(format!(
            "no active {role} answered within {d:?} (failover in progress?); retry"
        ))),
        CoordError::Rpc(role, s) => Ok(Response::new(T::from_status(error(
            code::UNEXPECTED,
            format!("{role} call failed: {s}"),
        )))),
    }
}

impl Proxy {
    fn into_service(self: Arc<Self>) -> Service {
        Service(self)
    }
}

/// The database a request is about: its own `db_name` if set, else the `dbname`
/// metadata, else `default`.
pub(crate) fn db_of<T>(req: &Request<T>, own: &str) -> String {
    if !own.is_empty() {
        return own.to_string();
    }
    req.metadata()
        .get(DB_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or("default")
        .to_string()
}

type Reply<T> = Result<Response<T>, tonic::Status>;

/// What is left of the client's deadline (`grpc-timeout`), less a margin for the answer
/// to travel back.
fn client_deadline<T>(req: &Request<T>) -> Option<std::time::Duration> {
    let raw = req.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (n, unit) = raw.split_at(raw.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    let d = match unit {
        "H" => std::time::Duration::from_secs(n * 3600),
        "M" => std::time::Duration::from_secs(n * 60),
        "S" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_millis(n),
        "u" => std::time::Duration::from_micros(n),
        "n" => std::time::Duration::from_nanos(n),
        _ => return None,
    };
    Some(d.saturating_sub(std::time::Duration::from_millis(200)))
}

/// Milvus's answer for a method this build does not serve yet: "service unimplemented"
/// (code 10), naming the method, so a client says what is missing instead of an empty
/// gRPC UNIMPLEMENTED.
pub fn not_served(method: &str) -> Status {
    error(
        code::SERVICE_UNIMPLEMENTED,
        format!(
            "{method} is not supported by this Milvus-compatible cluster ({SERVER_VERSION}) yet: service unimplemented"
        ),
    )
}

/// MilvusService methods answered with [`not_served`]. They are written out in the
/// form `#[tonic::async_trait]` gives trait methods, since it cannot see into a macro.
macro_rules! not_served {
    ($($method:ident($req:ident) -> $resp:ty = $name:literal;)*) => {$(
        fn $method<'life0, 'async_trait>(
            &'life0 self,
            _req: Request<pb::$req>,
        ) -> std::pin::Pin<Box<dyn Future<Output = Reply<$resp>> + Send + 'async_trait>>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async move { Ok(Response::new(<$resp>::from_status(not_served($name)))) })
        }
    )*};
}

/// Answers `$resp` with the status when `$check` fails (a name Milvus refuses before it
/// looks the name up).
macro_rules! refuse {
    ($check:expr, $resp:ty) => {
        if let Err(s) = $check {
            return Ok(Response::new(<$resp as WithStatus>::from_status(s)));
        }
    };
}

/// The collection name, then each partition name (strictly) of a partition call.
fn collection_and_partitions<'a>(
    collection: &str,
    partitions: impl IntoIterator<Item = &'a String>,
    strict: bool,
) -> Result<(), Status> {
    names::collection(collection)?;
    for p in partitions {
        names::partition(p, strict)?;
    }
    Ok(())
}

/// Forwards a collection-scoped request after filling its database.
macro_rules! scoped {
    ($self:ident, $req:ident, $method:ident, $kind:ident) => {{
        let db = db_of(&$req, &$req.get_ref().db_name);
        let mut m = $req.into_inner();
        m.db_name = db;
        let write = stringify!($kind) == "write";
        $self
            .forward(write, m, |mut c, r| async move { c.$method(r).await })
            .await
    }};
}

#[tonic::async_trait]
impl MilvusService for Service {
    async fn connect(&self, req: Request<pb::ConnectRequest>) -> Reply<pb::ConnectResponse> {
        // A client connects to one database (pymilvus's db_name, using_database): it
        // must exist, as Milvus checks.
        let db = db_of(&req, "");
        let dbs = self
            .forward(
                false,
                pb::ListDatabasesRequest::default(),
                |mut c, r| async move { c.list_databases(r).await },
            )
            .await?
            .into_inner();
        if let Some(s) = dbs.status.as_ref().filter(|s| !crate::status::is_ok(s)) {
            return Ok(Response::new(pb::ConnectResponse::from_status(s.clone())));
        }
        if !dbs.db_names.contains(&db) {
            return Ok(Response::new(pb::ConnectResponse::from_status(error(
                code::DATABASE_NOT_FOUND,
                format!("database not found[database={db}]"),
            ))));
        }
        Ok(Response::new(pb::ConnectResponse {
            status: Some(ok()),
            server_info: Some(ServerInfo {
                build_tags: SERVER_VERSION.to_string(),
                deploy_mode: "CLUSTER".to_string(),
                ..Default::default()
            }),
            identifier: self.0.next_identifier(),
        }))
    }

    async fn get_version(
        &self,
        _req: Request<pb::GetVersionRequest>,
    ) -> Reply<pb::GetVersionResponse> {
        Ok(Response::new(pb::GetVersionResponse {
            status: Some(ok()),
            version: SERVER_VERSION.to_string(),
        }))
    }

    async fn check_health(
        &self,
        _req: Request<pb::CheckHealthRequest>,
    ) -> Reply<pb::CheckHealthResponse> {
        let mut reasons = Vec::new();
        if self.0.ctx.state.state() != StateCode::Healthy {
            reasons.push(format!("proxy is {:?}", self.0.ctx.state.state()));
        }
        if !self.0.rootcoord.has_active() {
            reasons.push("no active rootcoord session".to_string());
        }
        Ok(Response::new(pb::CheckHealthResponse {
            status: Some(ok()),
            is_healthy: reasons.is_empty(),
            reasons,
            quota_states: vec![],
        }))
    }

    async fn get_component_states(
        &self,
        _req: Request<pb::GetComponentStatesRequest>,
    ) -> Reply<pb::ComponentStates> {
        Ok(Response::new(component_states(&self.0.ctx.state)))
    }

    async fn alloc_timestamp(
        &self,
        _req: Request<pb::AllocTimestampRequest>,
    ) -> Reply<pb::AllocTimestampResponse> {
        let r = self
            .forward(false, AllocRequest { count: 1 }, |mut c, r| async move {
                c.alloc_timestamp(r).await
            })
            .await?
            .into_inner();
        Ok(Response::new(pb::AllocTimestampResponse {
            status: r.status,
            timestamp: r.timestamp,
        }))
    }

    async fn create_database(&self, req: Request<pb::CreateDatabaseRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        let m = req.into_inner();
        self.forward(
            true,
            m,
            |mut c, r| async move { c.create_database(r).await },
        )
        .await
    }

    async fn drop_database(&self, req: Request<pb::DropDatabaseRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        let m = req.into_inner();
        self.forward(true, m, |mut c, r| async move { c.drop_database(r).await })
            .await
    }

    async fn list_databases(
        &self,
        req: Request<pb::ListDatabasesRequest>,
    ) -> Reply<pb::ListDatabasesResponse> {
        let m = req.into_inner();
        self.forward(
            false,
            m,
            |mut c, r| async move { c.list_databases(r).await },
        )
        .await
    }

    async fn describe_database(
        &self,
        req: Request<pb::DescribeDatabaseRequest>,
    ) -> Reply<pb::DescribeDatabaseResponse> {
        self.0.auth.authorize(&req)?;
        scoped!(self, req, describe_database, read)
    }

    async fn create_collection(&self, req: Request<pb::CreateCollectionRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        scoped!(self, req, create_collection, write)
    }

    async fn drop_collection(&self, req: Request<pb::DropCollectionRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        scoped!(self, req, drop_collection, write)
    }

    async fn has_collection(
        &self,
        req: Request<pb::HasCollectionRequest>,
    ) -> Reply<pb::BoolResponse> {
        refuse!(
            names::collection(&req.get_ref().collection_name),
            pb::BoolResponse
        );
        scoped!(self, req, has_collection, read)
    }

    async fn describe_collection(
        &self,
        req: Request<pb::DescribeCollectionRequest>,
    ) -> Reply<pb::DescribeCollectionResponse> {
        self.0.auth.authorize(&req)?;
        if req.get_ref().collection_id == 0 {
            refuse!(
                names::collection(&req.get_ref().collection_name),
                pb::DescribeCollectionResponse
            );
        }
        let mut r: Response<pb::DescribeCollectionResponse> =
            scoped!(self, req, describe_collection, read)?;
        // Milvus's proxy words a missing collection here its own way, which pymilvus's
        // has_collection looks for.
        if let Some(st) = r.get_mut().status.as_mut() {
            if st.code == code::COLLECTION_NOT_FOUND {
                st.reason = st
                    .reason
                    .replacen("collection not found", "can't find collection", 1);
            }
        }
        // As Milvus's proxy does: clients see neither the dynamic `$meta` field nor
        // system fields.
        if let Some(s) = r.get_mut().schema.as_mut() {
            s.fields
                .retain(|f| !f.is_dynamic && f.field_id >= FIRST_FIELD_ID);
        }
        Ok(r)
    }

    async fn show_collections(
        &self,
        req: Request<pb::ShowCollectionsRequest>,
    ) -> Reply<pb::ShowCollectionsResponse> {
        let caller = req.extensions().get::<Caller>().cloned();
        let db = db_of(&req, &req.get_ref().db_name);
        let mut r: Response<pb::ShowCollectionsResponse> =
            scoped!(self, req, show_collections, read)?;
        // As Milvus 2.5: a user sees the collections its roles have privileges on.
        if self.0.auth.enabled() {
            let auth = &self.0.auth;
            let keep: Vec<bool> = r
                .get_ref()
                .collection_names
                .iter()
                .map(|n| auth.sees_collection(caller.as_ref(), &db, n))
                .collect();
            let m = r.get_mut();
            fn retain<T>(v: &mut Vec<T>, keep: &[bool]) {
                if v.len() == keep.len() {
                    let mut i = 0;
                    v.retain(|_| {
                        i += 1;
                        keep[i - 1]
                    });
                }
            }
            retain(&mut m.collection_names, &keep);
            retain(&mut m.collection_ids, &keep);
            retain(&mut m.created_timestamps, &keep);
            retain(&mut m.created_utc_timestamps, &keep);
            retain(&mut m.in_memory_percentages, &keep);
            retain(&mut m.query_service_available, &keep);
        }
        Ok(r)
    }

    async fn create_partition(&self, req: Request<pb::CreatePartitionRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        refuse!(
            collection_and_partitions(
                &req.get_ref().collection_name,
                [&req.get_ref().partition_name],
                true
            ),
            Status
        );
        scoped!(self, req, create_partition, write)
    }

    async fn drop_partition(&self, req: Request<pb::DropPartitionRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        refuse!(
            collection_and_partitions(
                &req.get_ref().collection_name,
                [&req.get_ref().partition_name],
                true
            ),
            Status
        );
        scoped!(self, req, drop_partition, write)
    }

    async fn has_partition(
        &self,
        req: Request<pb::HasPartitionRequest>,
    ) -> Reply<pb::BoolResponse> {
        self.0.auth.authorize(&req)?;
        refuse!(
            collection_and_partitions(
                &req.get_ref().collection_name,
                [&req.get_ref().partition_name],
                true
            ),
            pb::BoolResponse
        );
        scoped!(self, req, has_partition, read)
    }

    async fn show_partitions(
        &self,
        req: Request<pb::ShowPartitionsRequest>,
    ) -> Reply<pb::ShowPartitionsResponse> {
        self.0.auth.authorize(&req)?;
        refuse!(
            collection_and_partitions(
                &req.get_ref().collection_name,
                &req.get_ref().partition_names,
                true
            ),
            pb::ShowPartitionsResponse
        );
        scoped!(self, req, show_partitions, read)
    }

    async fn insert(&self, req: Request<pb::InsertRequest>) -> Reply<pb::MutationResult> {
        self.0.auth.authorize(&req)?;
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.insert(&db, req.into_inner(), false).await,
        ))
    }

    async fn upsert(&self, req: Request<pb::UpsertRequest>) -> Reply<pb::MutationResult> {
        self.0.auth.authorize(&req)?;
        let db = db_of(&req, &req.get_ref().db_name);
        let r = req.into_inner();
        let as_insert = pb::InsertRequest {
            base: r.base,
            db_name: r.db_name,
            collection_name: r.collection_name,
            partition_name: r.partition_name,
            fields_data: r.fields_data,
            hash_keys: r.hash_keys,
            num_rows: r.num_rows,
            schema_timestamp: r.schema_timestamp,
        };
        Ok(Response::new(self.0.insert(&db, as_insert, true).await))
    }

    async fn delete(&self, req: Request<pb::DeleteRequest>) -> Reply<pb::MutationResult> {
        self.0.auth.authorize(&req)?;
        refuse!(
            collection_and_partitions(
                &req.get_ref().collection_name,
                (!req.get_ref().partition_name.is_empty()).then_some(&req.get_ref().partition_name),
                true
            ),
            pb::MutationResult
        );
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(self.0.delete(&db, req.into_inner()).await))
    }

    async fn flush(&self, req: Request<pb::FlushRequest>) -> Reply<pb::FlushResponse> {
        self.0.auth.authorize(&req)?;
        let db = db_of(&req, &req.get_ref().db_name);
        let wait = client_deadline(&req);
        Ok(Response::new(
            self.0.flush(&db, req.into_inner(), wait).await,
        ))
    }

    async fn get_flush_state(
        &self,
        req: Request<pb::GetFlushStateRequest>,
    ) -> Reply<pb::GetFlushStateResponse> {
        self.0.auth.authorize(&req)?;
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.get_flush_state(&db, req.into_inner()).await,
        ))
    }

    async fn create_index(&self, req: Request<pb::CreateIndexRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        refuse!(names::collection(&req.get_ref().collection_name), Status);
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.create_index(&db, req.into_inner()).await,
        ))
    }

    async fn describe_index(
        &self,
        req: Request<pb::DescribeIndexRequest>,
    ) -> Reply<pb::DescribeIndexResponse> {
        self.0.auth.authorize(&req)?;
        refuse!(
            names::collection(&req.get_ref().collection_name),
            pb::DescribeIndexResponse
        );
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.describe_index(&db, req.into_inner()).await,
        ))
    }

    async fn drop_index(&self, req: Request<pb::DropIndexRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        refuse!(names::collection(&req.get_ref().collection_name), Status);
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.drop_index(&db, req.into_inner()).await,
        ))
    }

    async fn get_collection_statistics(
        &self,
        req: Request<pb::GetCollectionStatisticsRequest>,
    ) -> Reply<pb::GetCollectionStatisticsResponse> {
        self.0.auth.authorize(&req)?;
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0
                .get_collection_statistics(&db, req.into_inner())
                .await,
        ))
    }

    async fn load_collection(&self, req: Request<pb::LoadCollectionRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        refuse!(names::collection(&req.get_ref().collection_name), Status);
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.load_collection(&db, req.into_inner()).await,
        ))
    }

    async fn release_collection(
        &self,
        req: Request<pb::ReleaseCollectionRequest>,
    ) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        refuse!(names::collection(&req.get_ref().collection_name), Status);
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.release_collection(&db, req.into_inner()).await,
        ))
    }

    async fn load_partitions(&self, req: Request<pb::LoadPartitionsRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        refuse!(
            collection_and_partitions(
                &req.get_ref().collection_name,
                &req.get_ref().partition_names,
                false
            ),
            Status
        );
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.load_partitions(&db, req.into_inner()).await,
        ))
    }

    async fn release_partitions(
        &self,
        req: Request<pb::ReleasePartitionsRequest>,
    ) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        refuse!(
            collection_and_partitions(
                &req.get_ref().collection_name,
                &req.get_ref().partition_names,
                false
            ),
            Status
        );
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.release_partitions(&db, req.into_inner()).await,
        ))
    }

    async fn get_loading_progress(
        &self,
        req: Request<pb::GetLoadingProgressRequest>,
    ) -> Reply<pb::GetLoadingProgressResponse> {
        self.0.auth.authorize(&req)?;
        refuse!(
            names::collection(&req.get_ref().collection_name),
            pb::GetLoadingProgressResponse
        );
        let db = db_of(&req, "");
        Ok(Response::new(
            self.0.get_loading_progress(&db, req.into_inner()).await,
        ))
    }

    async fn get_load_state(
        &self,
        req: Request<pb::GetLoadStateRequest>,
    ) -> Reply<pb::GetLoadStateResponse> {
        self.0.auth.authorize(&req)?;
        refuse!(
            names::collection(&req.get_ref().collection_name),
            pb::GetLoadStateResponse
        );
        let db = db_of(&req, "");
        Ok(Response::new(
            self.0.get_load_state(&db, req.into_inner()).await,
        ))
    }

    async fn search(&self, req: Request<pb::SearchRequest>) -> Reply<pb::SearchResults> {
        self.0.auth.authorize(&req)?;
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(self.0.search(&db, req.into_inner()).await))
    }

    async fn hybrid_search(
        &self,
        req: Request<pb::HybridSearchRequest>,
    ) -> Reply<pb::SearchResults> {
        self.0.auth.authorize(&req)?;
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.hybrid_search(&db, req.into_inner()).await,
        ))
    }

    async fn query(&self, req: Request<pb::QueryRequest>) -> Reply<pb::QueryResults> {
        self.0.auth.authorize(&req)?;
        refuse!(
            collection_and_partitions(
                &req.get_ref().collection_name,
                &req.get_ref().partition_names,
                false
            ),
            pb::QueryResults
        );
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(self.0.query(&db, req.into_inner()).await))
    }

    async fn alter_collection(&self, req: Request<pb::AlterCollectionRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        use crate::schema::properties::{LAZYLOAD_KEY, MMAP_KEY};
        let r = req.get_ref();
        refuse!(names::collection(&r.collection_name), Status);
        let memory_key = |k: &str| k == MMAP_KEY || k == LAZYLOAD_KEY;
        let sets = r.properties.iter().any(|p| memory_key(&p.key));
        if sets || r.delete_keys.iter().any(|k| memory_key(k)) {
            let db = db_of(&req, &r.db_name);
            let verb = if sets { "alter" } else { "delete" };
            let what = format!("can not {verb} mmap properties if collection loaded");
            refuse!(
                self.0
                    .refuse_while_loaded(&db, &r.collection_name, &what)
                    .await,
                Status
            );
        }
        scoped!(self, req, alter_collection, write)
    }

    async fn rename_collection(&self, req: Request<pb::RenameCollectionRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        refuse!(names::collection(&req.get_ref().new_name), Status);
        if !req.get_ref().new_db_name.is_empty() {
            refuse!(names::database(&req.get_ref().new_db_name), Status);
        }
        scoped!(self, req, rename_collection, write)
    }

    // Aliases: the rootcoord checks names in Milvus's order (the alias first).
    async fn create_alias(&self, req: Request<pb::CreateAliasRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        scoped!(self, req, create_alias, write)
    }

    async fn drop_alias(&self, req: Request<pb::DropAliasRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        scoped!(self, req, drop_alias, write)
    }

    async fn alter_alias(&self, req: Request<pb::AlterAliasRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        scoped!(self, req, alter_alias, write)
    }

    async fn describe_alias(
        &self,
        req: Request<pb::DescribeAliasRequest>,
    ) -> Reply<pb::DescribeAliasResponse> {
        self.0.auth.authorize(&req)?;
        scoped!(self, req, describe_alias, read)
    }

    async fn list_aliases(
        &self,
        req: Request<pb::ListAliasesRequest>,
    ) -> Reply<pb::ListAliasesResponse> {
        self.0.auth.authorize(&req)?;
        scoped!(self, req, list_aliases, read)
    }

    async fn dummy(&self, _req: Request<pb::DummyRequest>) -> Reply<pb::DummyResponse> {
        Ok(Response::new(pb::DummyResponse::default()))
    }

    async fn register_link(
        &self,
        _req: Request<pb::RegisterLinkRequest>,
    ) -> Reply<pb::RegisterLinkResponse> {
        Ok(Response::new(pb::RegisterLinkResponse {
            status: Some(ok()),
        }))
    }

    async fn get_partition_statistics(
        &self,
        req: Request<pb::GetPartitionStatisticsRequest>,
    ) -> Reply<pb::GetPartitionStatisticsResponse> {
        refuse!(
            collection_and_partitions(
                &req.get_ref().collection_name,
                [&req.get_ref().partition_name],
                true
            ),
            pb::GetPartitionStatisticsResponse
        );
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.get_partition_statistics(&db, req.into_inner()).await,
        ))
    }

    async fn get_index_state(
        &self,
        req: Request<pb::GetIndexStateRequest>,
    ) -> Reply<pb::GetIndexStateResponse> {
        self.0.auth.authorize(&req)?;
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.get_index_state(&db, req.into_inner()).await,
        ))
    }

    async fn get_index_build_progress(
        &self,
        req: Request<pb::GetIndexBuildProgressRequest>,
    ) -> Reply<pb::GetIndexBuildProgressResponse> {
        self.0.auth.authorize(&req)?;
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.get_index_build_progress(&db, req.into_inner()).await,
        ))
    }

    async fn get_index_statistics(
        &self,
        req: Request<pb::GetIndexStatisticsRequest>,
    ) -> Reply<pb::GetIndexStatisticsResponse> {
        self.0.auth.authorize(&req)?;
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.get_index_statistics(&db, req.into_inner()).await,
        ))
    }

    async fn flush_all(&self, req: Request<pb::FlushAllRequest>) -> Reply<pb::FlushAllResponse> {
        self.0.auth.authorize(&req)?;
        // No database named in the request: every database (Milvus's FlushAll), not
        // the connection's.
        let db = req.get_ref().db_name.clone();
        Ok(Response::new(self.0.flush_all(&db).await))
    }

    async fn get_flush_all_state(
        &self,
        req: Request<pb::GetFlushAllStateRequest>,
    ) -> Reply<pb::GetFlushAllStateResponse> {
        let r = req.into_inner();
        Ok(Response::new(
            self.0.get_flush_all_state(&r.db_name, r.flush_all_ts).await,
        ))
    }

    async fn get_persistent_segment_info(
        &self,
        req: Request<pb::GetPersistentSegmentInfoRequest>,
    ) -> Reply<pb::GetPersistentSegmentInfoResponse> {
        refuse!(
            names::collection(&req.get_ref().collection_name),
            pb::GetPersistentSegmentInfoResponse
        );
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0
                .get_persistent_segment_info(&db, req.into_inner())
                .await,
        ))
    }

    async fn get_query_segment_info(
        &self,
        req: Request<pb::GetQuerySegmentInfoRequest>,
    ) -> Reply<pb::GetQuerySegmentInfoResponse> {
        refuse!(
            names::collection(&req.get_ref().collection_name),
            pb::GetQuerySegmentInfoResponse
        );
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.get_query_segment_info(&db, req.into_inner()).await,
        ))
    }

    async fn get_replicas(
        &self,
        req: Request<pb::GetReplicasRequest>,
    ) -> Reply<pb::GetReplicasResponse> {
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.get_replicas(&db, req.into_inner()).await,
        ))
    }

    async fn get_metrics(
        &self,
        req: Request<pb::GetMetricsRequest>,
    ) -> Reply<pb::GetMetricsResponse> {
        Ok(Response::new(self.0.get_metrics(req.into_inner()).await))
    }

    async fn alter_index(&self, req: Request<pb::AlterIndexRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        refuse!(names::collection(&req.get_ref().collection_name), Status);
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.alter_index(&db, req.into_inner()).await,
        ))
    }

    async fn alter_database(&self, req: Request<pb::AlterDatabaseRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        // The database named, else the connection's (Milvus: empty is `default`).
        let db = db_of(&req, &req.get_ref().db_name);
        let mut m = req.into_inner();
        m.db_name = db;
        self.forward(true, m, |mut c, r| async move { c.alter_database(r).await })
            .await
    }

    async fn alter_collection_field(
        &self,
        req: Request<pb::AlterCollectionFieldRequest>,
    ) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        use crate::schema::properties::{check_field_keys, field_key, MMAP_KEY};
        let r = req.get_ref();
        refuse!(names::collection(&r.collection_name), Status);
        refuse!(check_field_keys(&r.properties, &r.delete_keys), Status);
        let sets = r.properties.iter().any(|p| field_key(&p.key) == MMAP_KEY);
        if sets || !r.delete_keys.is_empty() {
            // mmap of a loaded collection's field: refused (Milvus's rule).
            let db = db_of(&req, &r.db_name);
            let verb = if sets { "alter" } else { "drop" };
            let what = format!("can not {verb} collection field properties if collection loaded");
            refuse!(
                self.0
                    .refuse_while_loaded(&db, &r.collection_name, &what)
                    .await,
                Status
            );
        }
        scoped!(self, req, alter_collection_field, write)
    }

    async fn import(&self, req: Request<pb::ImportRequest>) -> Reply<pb::ImportResponse> {
        self.0.auth.authorize(&req)?;
        refuse!(
            names::collection(&req.get_ref().collection_name),
            pb::ImportResponse
        );
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(self.0.import(&db, req.into_inner()).await))
    }

    async fn manual_compaction(
        &self,
        req: Request<pb::ManualCompactionRequest>,
    ) -> Reply<pb::ManualCompactionResponse> {
        self.0.auth.authorize(&req)?;
        if !req.get_ref().collection_name.is_empty() {
            refuse!(
                names::collection(&req.get_ref().collection_name),
                pb::ManualCompactionResponse
            );
        }
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.manual_compaction(&db, req.into_inner()).await,
        ))
    }

    async fn get_compaction_state(
        &self,
        req: Request<pb::GetCompactionStateRequest>,
    ) -> Reply<pb::GetCompactionStateResponse> {
        Ok(Response::new(
            self.0.get_compaction_state(req.into_inner()).await,
        ))
    }

    async fn get_compaction_state_with_plans(
        &self,
        req: Request<pb::GetCompactionPlansRequest>,
    ) -> Reply<pb::GetCompactionPlansResponse> {
        Ok(Response::new(
            self.0.get_compaction_plans(req.into_inner()).await,
        ))
    }

    async fn get_import_state(
        &self,
        req: Request<pb::GetImportStateRequest>,
    ) -> Reply<pb::GetImportStateResponse> {
        Ok(Response::new(
            self.0.get_import_state(req.into_inner()).await,
        ))
    }

    async fn list_import_tasks(
        &self,
        req: Request<pb::ListImportTasksRequest>,
    ) -> Reply<pb::ListImportTasksResponse> {
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.list_import_tasks(&db, req.into_inner()).await,
        ))
    }

    async fn list_resource_groups(
        &self,
        req: Request<pb::ListResourceGroupsRequest>,
    ) -> Reply<pb::ListResourceGroupsResponse> {
        self.0.auth.authorize(&req)?;
        Ok(Response::new(self.0.list_resource_groups()))
    }

    async fn describe_resource_group(
        &self,
        req: Request<pb::DescribeResourceGroupRequest>,
    ) -> Reply<pb::DescribeResourceGroupResponse> {
        self.0.auth.authorize(&req)?;
        Ok(Response::new(
            self.0.describe_resource_group(req.into_inner()).await,
        ))
    }

    async fn create_resource_group(
        &self,
        req: Request<pb::CreateResourceGroupRequest>,
    ) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        Ok(Response::new(
            self.0.create_resource_group(req.into_inner()),
        ))
    }

    async fn drop_resource_group(
        &self,
        req: Request<pb::DropResourceGroupRequest>,
    ) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        Ok(Response::new(self.0.drop_resource_group(req.into_inner())))
    }

    async fn update_resource_groups(
        &self,
        req: Request<pb::UpdateResourceGroupsRequest>,
    ) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        Ok(Response::new(
            self.0.refuse_resource_group_change("UpdateResourceGroups"),
        ))
    }

    async fn transfer_node(&self, req: Request<pb::TransferNodeRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        Ok(Response::new(
            self.0.refuse_resource_group_change("TransferNode"),
        ))
    }

    async fn transfer_replica(&self, req: Request<pb::TransferReplicaRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        Ok(Response::new(
            self.0.refuse_resource_group_change("TransferReplica"),
        ))
    }

    async fn create_credential(&self, req: Request<pb::CreateCredentialRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        Ok(Response::new(
            self.0.create_credential(req.into_inner()).await,
        ))
    }

    async fn update_credential(&self, req: Request<pb::UpdateCredentialRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        let caller = req.extensions().get::<Caller>().cloned();
        Ok(Response::new(
            self.0
                .update_credential(caller.as_ref(), req.into_inner())
                .await,
        ))
    }

    async fn delete_credential(&self, req: Request<pb::DeleteCredentialRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        Ok(Response::new(
            self.0.delete_credential(req.into_inner()).await,
        ))
    }

    async fn list_cred_users(
        &self,
        req: Request<pb::ListCredUsersRequest>,
    ) -> Reply<pb::ListCredUsersResponse> {
        self.0.auth.authorize(&req)?;
        Ok(Response::new(
            self.0
                .rbac_read(req.into_inner(), |mut c, r| async move {
                    c.list_cred_users(r).await
                })
                .await,
        ))
    }

    async fn create_role(&self, req: Request<pb::CreateRoleRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        Ok(Response::new(self.0.create_role(req.into_inner()).await))
    }

    async fn drop_role(&self, req: Request<pb::DropRoleRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        Ok(Response::new(self.0.drop_role(req.into_inner()).await))
    }

    async fn operate_user_role(&self, req: Request<pb::OperateUserRoleRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        Ok(Response::new(
            self.0.operate_user_role(req.into_inner()).await,
        ))
    }

    async fn select_role(
        &self,
        req: Request<pb::SelectRoleRequest>,
    ) -> Reply<pb::SelectRoleResponse> {
        self.0.auth.authorize(&req)?;
        Ok(Response::new(
            self.0
                .rbac_read(req.into_inner(), |mut c, r| async move {
                    c.select_role(r).await
                })
                .await,
        ))
    }

    async fn select_user(
        &self,
        req: Request<pb::SelectUserRequest>,
    ) -> Reply<pb::SelectUserResponse> {
        self.0.auth.authorize(&req)?;
        Ok(Response::new(
            self.0
                .rbac_read(req.into_inner(), |mut c, r| async move {
                    c.select_user(r).await
                })
                .await,
        ))
    }

    async fn operate_privilege(&self, req: Request<pb::OperatePrivilegeRequest>) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        let caller = req.extensions().get::<Caller>().cloned();
        Ok(Response::new(
            self.0
                .operate_privilege(caller.as_ref(), req.into_inner())
                .await,
        ))
    }

    async fn operate_privilege_v2(
        &self,
        req: Request<pb::OperatePrivilegeV2Request>,
    ) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        let caller = req.extensions().get::<Caller>().cloned();
        Ok(Response::new(
            self.0
                .operate_privilege_v2(caller.as_ref(), req.into_inner())
                .await,
        ))
    }

    async fn select_grant(
        &self,
        req: Request<pb::SelectGrantRequest>,
    ) -> Reply<pb::SelectGrantResponse> {
        self.0.auth.authorize_select_grant(&req)?;
        Ok(Response::new(
            self.0
                .rbac_read(req.into_inner(), |mut c, r| async move {
                    c.select_grant(r).await
                })
                .await,
        ))
    }

    async fn create_privilege_group(
        &self,
        req: Request<pb::CreatePrivilegeGroupRequest>,
    ) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        Ok(Response::new(
            self.0.create_privilege_group(req.into_inner()).await,
        ))
    }

    async fn drop_privilege_group(
        &self,
        req: Request<pb::DropPrivilegeGroupRequest>,
    ) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        Ok(Response::new(
            self.0.drop_privilege_group(req.into_inner()).await,
        ))
    }

    async fn list_privilege_groups(
        &self,
        req: Request<pb::ListPrivilegeGroupsRequest>,
    ) -> Reply<pb::ListPrivilegeGroupsResponse> {
        self.0.auth.authorize(&req)?;
        Ok(Response::new(
            self.0
                .rbac_read(req.into_inner(), |mut c, r| async move {
                    c.list_privilege_groups(r).await
                })
                .await,
        ))
    }

    async fn operate_privilege_group(
        &self,
        req: Request<pb::OperatePrivilegeGroupRequest>,
    ) -> Reply<Status> {
        self.0.auth.authorize(&req)?;
        Ok(Response::new(
            self.0.operate_privilege_group(req.into_inner()).await,
        ))
    }

    /// No privilege is needed (none is in Milvus 2.5); the caller is authenticated.
    async fn run_analyzer(
        &self,
        req: Request<pb::RunAnalyzerRequest>,
    ) -> Reply<pb::RunAnalyzerResponse> {
        let db = db_of(&req, &req.get_ref().db_name);
        Ok(Response::new(
            self.0.run_analyzer(&db, req.into_inner()).await,
        ))
    }

    not_served! {
        calc_distance(CalcDistanceRequest) -> pb::CalcDistanceResults = "CalcDistance";
        load_balance(LoadBalanceRequest) -> Status = "LoadBalance";
        list_indexed_segment(ListIndexedSegmentRequest) -> pb::ListIndexedSegmentResponse = "ListIndexedSegment";
        describe_segment_index_data(DescribeSegmentIndexDataRequest) -> pb::DescribeSegmentIndexDataResponse = "DescribeSegmentIndexData";
        replicate_message(ReplicateMessageRequest) -> pb::ReplicateMessageResponse = "ReplicateMessage";
        backup_rbac(BackupRbacMetaRequest) -> pb::BackupRbacMetaResponse = "BackupRBAC";
        restore_rbac(RestoreRbacMetaRequest) -> Status = "RestoreRBAC";
    }
}
