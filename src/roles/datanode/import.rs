//! Bulk import: the jobs the active datacoord assigned to this datanode. A job's files
//! (row-based JSON or Parquet, keys relative to the bucket, as Milvus reads them) are
//! read, checked against the schema as an insert is, given row IDs (and keys, with
//! autoID), split by shard by their key's hash, and written as Parquet segments; then
//! one etcd txn registers the segments and marks the job Completed, only while the job
//! is still this datanode's (its record unchanged since it was assigned) and this
//! session lives. A datanode that dies or loses the job before that txn registers
//! nothing (its files are garbage the datacoord collects); the job's next datanode starts
//! over, so every row is imported exactly once. A file that cannot be imported (missing,
//! not the schema's shape) fails the job with the reason, the same way.
//!
//! Imported rows never pass through the log: their segments hold no log messages, so
//! they leave every channel checkpoint where it is; querynodes load them as new sealed
//! segments and indexcoords index them like any other.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType as Arrow;
use bytes::Bytes;
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use prost::Message;
use serde_json::{Map, Value};

use super::Shared;
use crate::meta::data::insert_file;
use crate::proto::datacoord::{ImportJob, ImportState, SegmentRecord, SegmentState};
use crate::proto::rootcoord::AllocRequest;
use crate::proto::schema::{CollectionSchema, DataType};
use crate::roles::worker::{Owner, Task};
use crate::schema::{self, rows, Pks};
use crate::storage::segment::{self, SegmentBatch};
use crate::storage::StorageError;

/// How often the datanode looks for jobs assigned to it.
const LOOK_EVERY: Duration = Duration::from_millis(200);
/// Rows per segment an import writes at most (per shard).
const ROWS_PER_SEGMENT: usize = 100_000;

/// Why a job could not be imported.
#[derive(Debug, thiserror::Error)]
enum ImportError {
    /// The files cannot be imported as they are: the job fails with this reason.
    #[error("{0}")]
    Bad(String),
    /// Something that may work on the next attempt (storage, etcd, the rootcoord).
    #[error("{0}")]
    Transient(String),
}

use ImportError::{Bad, Transient};

fn storage_error(path: &str, e: StorageError) -> ImportError {
    let text = e.to_string();
    if matches!(e, StorageError::Store { .. }) && text.to_ascii_lowercase().contains("not found") {
        Bad(format!(
            "file {path} does not exist in the object storage bucket"
        ))
    } else {
        Transient(text)
    }
}

/// Runs every job assigned to this session, each bound to the assignment (the job
/// record's revision) it started from.
pub(crate) async fn run(shared: Arc<Shared>, owner: Arc<Owner>) {
    let mut running: HashMap<i64, (i64, Task)> = HashMap::new();
    loop {
        let wanted: Vec<(ImportJob, i64)> = shared
            .data
            .read()
            .expect("data meta lock")
            .imports()
            .filter(|i| {
                i.job.node_id == owner.node_id && i.job.state() == ImportState::ImportRunning
            })
            .map(|i| (i.job.clone(), i.revision))
            .collect();
        running.retain(|id, (rev, task)| {
            wanted.iter().any(|(j, r)| j.id == *id && r == rev) && !task.0.is_finished()
        });
        for (job, rev) in wanted {
            if running.contains_key(&job.id) {
                continue;
            }
            log::info!(job = job.id, collection = job.collection_name.as_str(), files = job.files.len(),
                attempt = job.attempts; "datanode starts import job");
            let id = job.id;
            let task = tokio::spawn(execute(shared.clone(), owner.clone(), job, rev));
            running.insert(id, (rev, Task(task)));
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

/// One job to its end (Completed, Failed, or no longer this datanode's).
async fn execute(shared: Arc<Shared>, owner: Arc<Owner>, job: ImportJob, revision: i64) {
    let started = std::time::Instant::now();
    let mut backoff = Duration::from_millis(200);
    loop {
        let outcome = match prepare(&shared, &owner, &job).await {
            Ok((records, rows)) => {
                finish(&shared, &owner, &job, revision, Ok((records, rows))).await
            }
            Err(Bad(reason)) => finish(&shared, &owner, &job, revision, Err(reason)).await,
            Err(Transient(e)) => {
                log::warn!(job = job.id, error = e.as_str(); "import attempt failed, retrying");
                let still_mine = shared
                    .data
                    .read()
                    .expect("data meta lock")
                    .import(job.id)
                    .is_some_and(|i| i.revision == revision);
                if !still_mine {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        match outcome {
            Ok(true) => {
                log::info!(job = job.id, took:? = started.elapsed(); "import job finished");
                return;
            }
            Ok(false) => {
                log::warn!(job = job.id; "import job is no longer this datanode's: nothing registered");
                return;
            }
            Err(e) => {
                log::warn!(job = job.id, error = e.as_str(); "import job not registered, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Registers the outcome: the segments and Completed, or Failed with the reason, only
/// while the job record is the one assigned and this session lives. Ok(false): it was
/// not (the job moved on).
async fn finish(
    shared: &Shared,
    owner: &Owner,
    job: &ImportJob,
    revision: i64,
    outcome: Result<(Vec<SegmentRecord>, usize), String>,
) -> Result<bool, String> {
    let key = shared.keys.import(job.id);
    let mut done = job.clone();
    done.finished_ms = crate::meta::now_ms();
    let mut ops = Vec::new();
    match outcome {
        Ok((records, rows)) => {
            done.state = ImportState::ImportCompleted as i32;
            done.imported_rows = rows as i64;
            done.segment_ids = records.iter().map(|r| r.id).collect();
            for r in records {
                ops.push(TxnOp::put(
                    shared.keys.segment(r.collection_id, r.partition_id, r.id),
                    r.encode_to_vec(),
                    None,
                ));
            }
        }
        Err(reason) => {
            log::warn!(job = job.id, reason = reason.as_str(); "import job failed");
            done.state = ImportState::ImportFailed as i32;
            done.reason = reason;
        }
    }
    ops.push(TxnOp::put(key.clone(), done.encode_to_vec(), None));
    let when = vec![
        Compare::mod_revision(key, CompareOp::Equal, revision),
        owner.alive(),
    ];
    let resp = shared
        .ctx
        .etcd
        .call(|mut c| {
            let txn = Txn::new().when(when.clone()).and_then(ops.clone());
            async move { c.txn(txn).await }
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(resp.succeeded())
}

/// Reads, checks and writes the job's rows: the segment records to register and the
/// number of rows.
async fn prepare(
    shared: &Shared,
    owner: &Owner,
    job: &ImportJob,
) -> Result<(Vec<SegmentRecord>, usize), ImportError> {
    let schema = shared
        .catalog
        .read()
        .expect("catalog lock")
        .collection_by_id(job.collection_id)
        .and_then(|c| c.schema.clone())
        .ok_or_else(|| Bad(format!("collection {} does not exist", job.collection_name)))?;
    if job.files.is_empty() {
        return Err(Bad("the job names no files".into()));
    }
    let mut all = Vec::new();
    for unit in &job.files {
        all.extend(read_unit(shared, &schema, &unit.paths).await?);
    }
    if all.is_empty() {
        return Err(Bad("the files hold no rows".into()));
    }
    let columns =
        rows::rows_to_columns(&schema, schema.enable_dynamic_field, &all, false).map_err(Bad)?;
    let n = all.len();
    drop(all);
    let mut v =
        schema::validate_rows(&schema, columns, n as u32, false).map_err(|s| Bad(s.reason))?;
    let shards = job.vchannels.len().max(1);
    // Row IDs (also the keys, with autoID), then one ID per segment.
    let segments_at_most = shards + n.div_ceil(ROWS_PER_SEGMENT);
    let first = alloc_ids(shared, (n + segments_at_most) as u32).await?;
    let row_ids: Vec<i64> = (first..first + n as i64).collect();
    schema::fill_auto_ids(&schema, &mut v, &row_ids);
    let pks = v
        .pks
        .take()
        .ok_or_else(|| Bad("the rows have no primary keys".into()))?;
    if let Some(k) = pks_repeated(&pks) {
        return Err(Bad(format!(
            "duplicate primary keys in the import files: {k} appears more than once"
        )));
    }
    let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); shards];
    for i in 0..pks.len() {
        by_shard[pks.shard(i, shards)].push(i);
    }
    let mut next_segment = first + n as i64;
    let mut records = Vec::new();
    for (shard, idx) in by_shard.iter().enumerate() {
        for part in idx.chunks(ROWS_PER_SEGMENT) {
            let seg = next_segment;
            next_segment += 1;
            let batch = SegmentBatch {
                row_ids: part.iter().map(|i| row_ids[*i]).collect(),
                timestamps: vec![job.timestamp; part.len()],
                fields: schema::take_rows(&v.fields, part),
            };
            let file = segment::encode(&schema, &batch).map_err(|e| Bad(e.to_string()))?;
            let path = insert_file(job.collection_id, job.partition_id, seg);
            let size = file.len() as i64;
            shared
                .storage
                .put(&path, file)
                .await
                .map_err(|e| Transient(e.to_string()))?;
            records.push(SegmentRecord {
                id: seg,
                collection_id: job.collection_id,
                partition_id: job.partition_id,
                vchannel: job.vchannels.get(shard).cloned().unwrap_or_default(),
                state: SegmentState::Flushed as i32,
                num_rows: part.len() as i64,
                insert_files: vec![path],
                size_bytes: size,
                // No log messages: positions 0, checkpoints untouched.
                start_sequence: 0,
                end_sequence: 0,
                start_ts: job.timestamp,
                end_ts: job.timestamp,
                node_id: owner.node_id,
                dropped_at_ms: 0,
            });
        }
    }
    Ok((records, n))
}

fn pks_repeated(pks: &Pks) -> Option<String> {
    pks.first_repeated()
}

async fn alloc_ids(shared: &Shared, count: u32) -> Result<i64, ImportError> {
    let r = shared
        .rootcoord
        .call(AllocRequest { count }, |mut c, r| async move {
            c.alloc_id(r).await
        })
        .await
        .map_err(|e| Transient(e.to_string()))?;
    match r.status {
        Some(s) if !crate::status::is_ok(&s) => {
            Err(Transient(format!("cannot allocate row IDs: {}", s.reason)))
        }
        _ => Ok(r.id),
    }
}

/// The rows of one import unit, as JSON objects.
async fn read_unit(
    shared: &Shared,
    schema: &CollectionSchema,
    paths: &[String],
) -> Result<Vec<Value>, ImportError> {
    let [path] = paths else {
        if paths.iter().all(|p| p.ends_with(".npy")) {
            return Err(Bad(
                "NumPy (.npy) files are not supported by this build yet: use JSON or Parquet"
                    .into(),
            ));
        }
        return Err(Bad(format!(
            "an import unit is one JSON or Parquet file, got {} files: {paths:?}",
            paths.len()
        )));
    };
    let lower = path.to_ascii_lowercase();
    let bytes = |b: Result<Bytes, StorageError>| b.map_err(|e| storage_error(path, e));
    if lower.ends_with(".json") {
        let data = bytes(shared.storage.get_in_bucket(path).await)?;
        json_rows(path, &data)
    } else if lower.ends_with(".parquet") {
        let data = bytes(shared.storage.get_in_bucket(path).await)?;
        parquet_rows(path, data, schema)
    } else if lower.ends_with(".npy") {
        Err(Bad(
            "NumPy (.npy) files are not supported by this build yet: use JSON or Parquet".into(),
        ))
    } else {
        Err(Bad(format!(
            "unsupported file type of {path}: expected .json or .parquet"
        )))
    }
}

/// A JSON file: `{"rows": [...]}` (Milvus's row-based format) or a list of rows.
fn json_rows(path: &str, data: &[u8]) -> Result<Vec<Value>, ImportError> {
    let v: Value =
        serde_json::from_slice(data).map_err(|e| Bad(format!("{path} is not valid JSON: {e}")))?;
    match v {
        Value::Object(mut o) => match o.remove("rows") {
            Some(Value::Array(rows)) => Ok(rows),
            _ => Err(Bad(format!(
                "{path}: expected {{\"rows\": [...]}} or a list of rows"
            ))),
        },
        Value::Array(rows) => Ok(rows),
        _ => Err(Bad(format!(
            "{path}: expected {{\"rows\": [...]}} or a list of rows"
        ))),
    }
}

/// A Parquet file: one column per field (vectors as lists of floats, JSON fields and the
/// dynamic `$meta` column as JSON text), as pymilvus's bulk writers write it.
fn parquet_rows(
    path: &str,
    data: Bytes,
    schema: &CollectionSchema,
) -> Result<Vec<Value>, ImportError> {
    let bad =
        |e: &dyn std::fmt::Display| Bad(format!("{path} is not a readable Parquet file: {e}"));
    let reader = ParquetRecordBatchReaderBuilder::try_new(data)
        .map_err(|e| bad(&e))?
        .build()
        .map_err(|e| bad(&e))?;
    let json_fields: Vec<&str> = schema
        .fields
        .iter()
        .filter(|f| f.data_type() == DataType::Json && !f.is_dynamic)
        .map(|f| f.name.as_str())
        .collect();
    let mut out = Vec::new();
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| bad(&e))?;
        let names: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for row in 0..batch.num_rows() {
            let mut m = Map::new();
            for (col, name) in batch.columns().iter().zip(&names) {
                let v = arrow_value(col, row)
                    .map_err(|e| Bad(format!("{path}, column {name}: {e}")))?;
                if name == rows::META {
                    // Dynamic keys: a JSON object (as text) spread into the row.
                    let parsed = match v {
                        Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::Null),
                        other => other,
                    };
                    if let Value::Object(o) = parsed {
                        m.extend(o);
                    }
                } else if json_fields.contains(&name.as_str()) {
                    let parsed = match v {
                        Value::String(s) => serde_json::from_str(&s).map_err(|e| {
                            Bad(format!("{path}, column {name}, row {row}: not JSON: {e}"))
                        })?,
                        other => other,
                    };
                    m.insert(name.clone(), parsed);
                } else {
                    m.insert(name.clone(), v);
                }
            }
            out.push(Value::Object(m));
        }
    }
    Ok(out)
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// One cell of an Arrow column as JSON.
fn arrow_value(col: &ArrayRef, row: usize) -> Result<Value, String> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    if col.is_null(row) {
        return Ok(Value::Null);
    }
    Ok(match col.data_type() {
        Arrow::Boolean => Value::Bool(col.as_boolean().value(row)),
        Arrow::Int8 => Value::from(col.as_primitive::<Int8Type>().value(row)),
        Arrow::Int16 => Value::from(col.as_primitive::<Int16Type>().value(row)),
        Arrow::Int32 => Value::from(col.as_primitive::<Int32Type>().value(row)),
        Arrow::Int64 => Value::from(col.as_primitive::<Int64Type>().value(row)),
        Arrow::UInt8 => Value::from(col.as_primitive::<UInt8Type>().value(row)),
        Arrow::UInt16 => Value::from(col.as_primitive::<UInt16Type>().value(row)),
        Arrow::UInt32 => Value::from(col.as_primitive::<UInt32Type>().value(row)),
        Arrow::Float32 => number(col.as_primitive::<Float32Type>().value(row) as f64),
        Arrow::Float64 => number(col.as_primitive::<Float64Type>().value(row)),
        Arrow::Utf8 => Value::String(col.as_string::<i32>().value(row).to_string()),
        Arrow::LargeUtf8 => Value::String(col.as_string::<i64>().value(row).to_string()),
        Arrow::List(_) => list(&col.as_list::<i32>().value(row))?,
        Arrow::LargeList(_) => list(&col.as_list::<i64>().value(row))?,
        Arrow::FixedSizeList(_, _) => list(&col.as_fixed_size_list().value(row))?,
        other => return Err(format!("Arrow type {other} is not supported")),
    })
}

fn list(values: &ArrayRef) -> Result<Value, String> {
    (0..values.len())
        .map(|i| arrow_value(values, i))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}
