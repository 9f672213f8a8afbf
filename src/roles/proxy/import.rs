//! Bulk import (`Import`, `GetImportState`, `ListImportTasks`, and the RESTful
//! `jobs/import/*`): the proxy checks the collection and partition, allocates the job's
//! ID and its rows' timestamp, and has the active datacoord record the job; a datanode
//! runs it (see `roles/datanode/import.rs`). Files are keys relative to the object
//! storage bucket (the local storage directory), as Milvus reads them.

use super::{coord_down, Proxy};
use crate::proto::common::{ImportState as ClientState, KeyValuePair, Status};
use crate::proto::datacoord::{self as dc, ImportFiles, ImportJob, ImportState};
use crate::proto::milvus as pb;
use crate::status::{code, error, is_ok, WithStatus};

/// The files one job may name at most (Milvus's limit).
const MAX_IMPORT_FILES: usize = 1024;

/// Milvus's code for an import job that does not exist.
pub const IMPORT_JOB_NOT_FOUND: i32 = 2101;

/// What REST reports of a job: its state's name and progress (0-100).
pub fn rest_state(job: &ImportJob) -> (&'static str, i64) {
    match job.state() {
        ImportState::ImportPending => ("Pending", 0),
        ImportState::ImportRunning => ("Importing", 50),
        ImportState::ImportCompleted => ("Completed", 100),
        ImportState::ImportFailed => ("Failed", 0),
    }
}

impl Proxy {
    /// Records an import job of `units` (each the files of one import unit) into the
    /// collection (and partition, default `_default`); its ID.
    pub async fn create_import(
        &self,
        db: &str,
        collection: &str,
        partition: &str,
        units: Vec<Vec<String>>,
    ) -> Result<i64, Status> {
        if units.is_empty()
            || units
                .iter()
                .any(|u| u.is_empty() || u.iter().any(|p| p.trim().is_empty()))
        {
            return Err(error(
                code::PARAMETER_INVALID,
                "import files are required: a list of file groups, each a non-empty list of paths in the bucket",
            ));
        }
        let files: usize = units.iter().map(Vec::len).sum();
        if files > MAX_IMPORT_FILES {
            return Err(error(
                code::PARAMETER_INVALID,
                format!("the number of import files ({files}) exceeds the limit ({MAX_IMPORT_FILES}): split the job"),
            ));
        }
        let t = self.write_target(db, collection, partition).await?;
        let (id, ts) = self.alloc(1).await?;
        let job = ImportJob {
            id,
            collection_id: t.collection.collection_id,
            collection_name: collection.to_string(),
            db_name: db.to_string(),
            partition_id: t.partition_id,
            partition_name: if partition.is_empty() {
                "_default".to_string()
            } else {
                partition.to_string()
            },
            vchannels: t.collection.virtual_channel_names.clone(),
            files: units
                .into_iter()
                .map(|paths| ImportFiles { paths })
                .collect(),
            timestamp: ts,
            ..Default::default()
        };
        let s = self
            .datacoord
            .call_write(job, |mut c, r| async move { c.create_import(r).await })
            .await
            .map_err(coord_down)?;
        if !is_ok(&s) {
            return Err(s);
        }
        Ok(id)
    }

    /// Import jobs: one (`job_id`), or all (of one collection when `collection_id` is not
    /// 0), oldest first.
    pub async fn import_jobs(
        &self,
        job_id: i64,
        collection_id: i64,
    ) -> Result<Vec<ImportJob>, Status> {
        let r = self
            .datacoord
            .call(
                dc::ImportQuery {
                    job_id,
                    collection_id,
                },
                |mut c, r| async move { c.list_imports(r).await },
            )
            .await
            .map_err(coord_down)?;
        match r.status {
            Some(s) if !is_ok(&s) => Err(s),
            _ => Ok(r.jobs),
        }
    }

    /// One import job, or Milvus's "not found".
    pub async fn import_job(&self, job_id: i64) -> Result<ImportJob, Status> {
        if job_id <= 0 {
            return Err(error(
                IMPORT_JOB_NOT_FOUND,
                format!("import job not found[jobID={job_id}]"),
            ));
        }
        self.import_jobs(job_id, 0)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                error(
                    IMPORT_JOB_NOT_FOUND,
                    format!("import job not found[jobID={job_id}]"),
                )
            })
    }

    /// `Import` (pymilvus `utility.do_bulk_insert`): its files are one import unit.
    pub async fn import(&self, db: &str, req: pb::ImportRequest) -> pb::ImportResponse {
        match self
            .create_import(
                db,
                &req.collection_name,
                &req.partition_name,
                vec![req.files],
            )
            .await
        {
            Ok(id) => pb::ImportResponse {
                status: Some(Status::default()),
                tasks: vec![id],
            },
            Err(s) => pb::ImportResponse::from_status(s),
        }
    }

    /// `GetImportState` (pymilvus `utility.get_bulk_insert_state`).
    pub async fn get_import_state(
        &self,
        req: pb::GetImportStateRequest,
    ) -> pb::GetImportStateResponse {
        match self.import_job(req.task).await {
            Ok(job) => state_of(&job),
            Err(s) => pb::GetImportStateResponse::from_status(s),
        }
    }

    /// `ListImportTasks` (pymilvus `utility.list_bulk_insert_tasks`): newest first, at
    /// most `limit` (0: all).
    pub async fn list_import_tasks(
        &self,
        db: &str,
        req: pb::ListImportTasksRequest,
    ) -> pb::ListImportTasksResponse {
        let answer = async {
            let coll = if req.collection_name.is_empty() {
                0
            } else {
                self.target(db, &req.collection_name, "")
                    .await?
                    .collection
                    .collection_id
            };
            let mut jobs = self.import_jobs(0, coll).await?;
            jobs.retain(|j| j.db_name == db);
            jobs.reverse();
            if req.limit > 0 {
                jobs.truncate(req.limit as usize);
            }
            Ok::<_, Status>(jobs.iter().map(state_of).collect())
        };
        match answer.await {
            Ok(tasks) => pb::ListImportTasksResponse {
                status: Some(Status::default()),
                tasks,
            },
            Err(s) => pb::ListImportTasksResponse::from_status(s),
        }
    }
}

fn kv(key: &str, value: impl ToString) -> KeyValuePair {
    KeyValuePair {
        key: key.to_string(),
        value: value.to_string(),
    }
}

/// A job as `GetImportState` reports it (pymilvus's `BulkInsertState` reads the infos).
fn state_of(job: &ImportJob) -> pb::GetImportStateResponse {
    let state = match job.state() {
        ImportState::ImportPending => ClientState::ImportPending,
        ImportState::ImportRunning => ClientState::ImportStarted,
        ImportState::ImportCompleted => ClientState::ImportCompleted,
        ImportState::ImportFailed => ClientState::ImportFailed,
    };
    let files: Vec<String> = job.files.iter().flat_map(|f| f.paths.clone()).collect();
    let mut infos = vec![
        kv("files", files.join(",")),
        kv("collection", &job.collection_name),
        kv("partition", &job.partition_name),
        kv("progress_percent", rest_state(job).1),
    ];
    if !job.reason.is_empty() {
        infos.push(kv("failed_reason", &job.reason));
    }
    pb::GetImportStateResponse {
        status: Some(Status::default()),
        state: state as i32,
        row_count: job.imported_rows,
        id_list: vec![],
        infos,
        id: job.id,
        collection_id: job.collection_id,
        segment_ids: job.segment_ids.clone(),
        create_ts: job.created_ms / 1000,
    }
}
