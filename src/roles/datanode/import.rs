//! Bulk import: the jobs the active datacoord assigned to this datanode. A job's files
//! (row-based JSON, Parquet, or NumPy with one `<field>.npy` per field; keys relative
//! to the bucket, as Milvus reads them) are
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
use serde_json::Value;

use super::Shared;
use crate::meta::data::insert_file;
use crate::proto::datacoord::{ImportJob, ImportState, SegmentRecord, SegmentState};
use crate::proto::rootcoord::AllocRequest;
use crate::proto::schema::{CollectionSchema, DataType, FieldData, FieldSchema};
use crate::roles::worker::{to_the_end, Owner, Task};
use crate::schema::{self, rows};
use crate::storage::segment::{self, SegmentBatch};
use crate::storage::{StorageError, WriteWindow};

/// How often the datanode looks for jobs assigned to it.
const LOOK_EVERY: Duration = Duration::from_millis(200);
/// Rows per segment an import writes (per shard), unless that makes too many segments.
const ROWS_PER_SEGMENT: usize = 100_000;
/// Segments of one job beyond its shards' first ones: with one txn op each, the job's
/// registering txn stays under etcd's default limit of 128 ops.
const MAX_SEGMENTS: usize = 100;

/// Runs CPU-heavy work (parsing, checking, encoding) off the async threads; a panic in
/// it fails the job instead of ending the task silently.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImportError> + Send + 'static,
) -> Result<T, ImportError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(Bad(format!("the import stopped on an internal error: {e}"))))
}

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
/// record's revision) it started from, one at a time (an import holds its files and
/// columns in memory). A job is started once per assignment: its task ends with the job
/// Completed, Failed, or no longer this datanode's.
pub(crate) async fn run(shared: Arc<Shared>, owner: Arc<Owner>) {
    let one_at_a_time = Arc::new(tokio::sync::Semaphore::new(1));
    let mut running: HashMap<(i64, i64), Task> = HashMap::new();
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
        running.retain(|(id, rev), _| wanted.iter().any(|(j, r)| j.id == *id && r == rev));
        for (job, rev) in wanted {
            if running.contains_key(&(job.id, rev)) {
                continue;
            }
            let id = job.id;
            let task = tokio::spawn(execute(
                shared.clone(),
                owner.clone(),
                job,
                rev,
                one_at_a_time.clone(),
            ));
            running.insert((id, rev), Task(task));
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

/// Attempts a job gets for errors that may pass (storage, etcd, the rootcoord) before it
/// fails with the last one (about a minute with the backoff).
const TRANSIENT_ATTEMPTS: u32 = 15;

/// One job to its end (Completed, Failed, or no longer this datanode's).
async fn execute(
    shared: Arc<Shared>,
    owner: Arc<Owner>,
    job: ImportJob,
    revision: i64,
    one_at_a_time: Arc<tokio::sync::Semaphore>,
) {
    let Ok(_turn) = one_at_a_time.acquire().await else {
        return;
    };
    log::info!(job = job.id, collection = job.collection_name.as_str(), files = job.files.len(),
        attempt = job.attempts; "datanode starts import job");
    let started = std::time::Instant::now();
    let mut backoff = Duration::from_millis(200);
    let mut transient = 0;
    // Registration changes the job's record, which makes this datanode drop this task: it
    // runs to its end (and logs) on a task of its own.
    let register = |outcome| {
        let (shared, owner, job) = (shared.clone(), owner.clone(), job.clone());
        to_the_end(async move {
            let r = finish(&shared, &owner, &job, revision, outcome).await;
            if matches!(r, Ok(true)) {
                log::info!(job = job.id, took:? = started.elapsed(); "import job finished");
            }
            r
        })
    };
    loop {
        let still_mine = || {
            shared
                .data
                .read()
                .expect("data meta lock")
                .import(job.id)
                .is_some_and(|i| i.revision == revision)
        };
        let window = WriteWindow::open(shared.ctx.config.segment.gc_missing_tolerance);
        let outcome = match prepare(&shared, &owner, &job).await {
            Ok((records, rows)) => match window.check() {
                Ok(()) => register(Ok((records, rows))).await,
                Err(e) => Err(e),
            },
            Err(Bad(reason)) => register(Err(reason)).await,
            Err(Transient(e)) => {
                transient += 1;
                if transient >= TRANSIENT_ATTEMPTS {
                    let why = format!("gave up after {transient} attempts: {e}");
                    register(Err(why)).await
                } else {
                    log::warn!(job = job.id, attempt = transient, error = e.as_str(); "import attempt failed, retrying");
                    if !still_mine() {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
        };
        match outcome {
            Ok(true) => return,
            Ok(false) => {
                log::warn!(job = job.id; "import job is no longer this datanode's: nothing registered");
                return;
            }
            Err(e) => {
                log::warn!(job = job.id, error = e.as_str(); "import job not registered, retrying");
                if !still_mine() {
                    return;
                }
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
    let (schema, key_partitions) = shared
        .catalog
        .read()
        .expect("catalog lock")
        .collection_by_id(job.collection_id)
        .and_then(|c| {
            let named: Vec<(String, i64)> = c
                .partitions
                .iter()
                .map(|p| (p.name.clone(), p.id))
                .collect();
            Some((c.schema.clone()?, schema::partition_key_partitions(&named)))
        })
        // Not in this datanode's catalog yet (or dropped: the datacoord fails the job).
        .ok_or_else(|| {
            Transient(format!(
                "collection {} is not in the catalog",
                job.collection_name
            ))
        })?;
    if job.files.is_empty() {
        return Err(Bad("the job names no files".into()));
    }
    let mut columns: Vec<FieldData> = Vec::new();
    let mut n = 0usize;
    for unit in &job.files {
        let (cols, rows) = read_unit(shared, &schema, &unit.paths).await?;
        n += rows;
        for c in cols {
            match columns.iter_mut().find(|d| d.field_name == c.field_name) {
                Some(d) => schema::extend_field(d, c),
                None => columns.push(c),
            }
        }
    }
    if n == 0 {
        return Err(Bad("the files hold no rows".into()));
    }
    let mut v = {
        let schema = schema.clone();
        blocking(move || {
            schema::validate_rows(&schema, columns, n as u32, false).map_err(|s| Bad(s.reason))
        })
        .await?
    };
    // Segments of at most ROWS_PER_SEGMENT rows, or more rows per segment when that
    // would register more segments than one etcd txn may hold.
    let per_segment = ROWS_PER_SEGMENT.max(n.div_ceil(MAX_SEGMENTS));
    let shards = job.vchannels.len().max(1);
    // Row IDs (also the keys, with autoID), then one ID per segment.
    let segments_at_most = shards + n.div_ceil(per_segment);
    let mut ids = alloc_ids(shared, n + segments_at_most).await?;
    let mut segment_ids = ids.split_off(n);
    let row_ids = ids;
    schema::fill_auto_ids(&schema, &mut v, &row_ids);
    let pks = v
        .pks
        .take()
        .ok_or_else(|| Bad("the rows have no primary keys".into()))?;
    if let Some(k) = pks.first_repeated() {
        return Err(Bad(format!(
            "duplicate primary keys in the import files: {k} appears more than once"
        )));
    }
    // Rows by shard and partition: a partition-key collection's rows go to the partition
    // their key hashes to, as inserted rows do.
    let slots = schema::partition_key_slots(&schema, &v.fields, key_partitions.len())
        .filter(|_| !key_partitions.is_empty());
    let mut groups: std::collections::BTreeMap<(usize, i64), Vec<usize>> = Default::default();
    for i in 0..pks.len() {
        let partition = slots
            .as_ref()
            .map_or(job.partition_id, |s| key_partitions[s[i]]);
        groups
            .entry((pks.shard(i, shards), partition))
            .or_default()
            .push(i);
    }
    // Segment IDs: one per shard and partition beyond the per-row count.
    let more = groups.len().saturating_sub(shards);
    if more > 0 {
        segment_ids.extend(alloc_ids(shared, more).await?);
    }
    let mut segment_ids = segment_ids.into_iter();
    let mut records = Vec::new();
    for ((shard, partition_id), idx) in &groups {
        let (shard, partition_id) = (*shard, *partition_id);
        for part in idx.chunks(per_segment) {
            let seg = segment_ids.next().expect("one ID per segment allocated");
            let batch = SegmentBatch {
                row_ids: part.iter().map(|i| row_ids[*i]).collect(),
                timestamps: vec![job.timestamp; part.len()],
                fields: schema::take_rows(&v.fields, part),
            };
            let file = {
                let schema = schema.clone();
                blocking(move || segment::encode(&schema, &batch).map_err(|e| Bad(e.to_string())))
                    .await?
            };
            let path = insert_file(job.collection_id, partition_id, seg);
            let size = file.len() as i64;
            shared
                .storage
                .put(&path, file)
                .await
                .map_err(|e| Transient(e.to_string()))?;
            records.push(SegmentRecord {
                id: seg,
                collection_id: job.collection_id,
                partition_id,
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
                ..Default::default()
            });
        }
    }
    Ok((records, n))
}

/// The largest block the rootcoord hands out in one call.
const ID_BLOCK: usize = 200_000;

/// `count` new IDs (in blocks: they need not be contiguous).
async fn alloc_ids(shared: &Shared, count: usize) -> Result<Vec<i64>, ImportError> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let want = (count - out.len()).min(ID_BLOCK) as u32;
        let r = shared
            .rootcoord
            .call(AllocRequest { count: want }, |mut c, r| async move {
                c.alloc_id(r).await
            })
            .await
            .map_err(|e| Transient(e.to_string()))?;
        use crate::status::code;
        match r.status {
            Some(s)
                if s.retriable
                    || s.code == code::SERVICE_NOT_READY
                    || s.code == code::SERVICE_UNAVAILABLE =>
            {
                return Err(Transient(format!("cannot allocate row IDs: {}", s.reason)))
            }
            Some(s) if !crate::status::is_ok(&s) => {
                return Err(Bad(format!("cannot allocate row IDs: {}", s.reason)))
            }
            _ => out.extend(r.id..r.id + want as i64),
        }
    }
    Ok(out)
}

/// The columns of one import unit and its number of rows.
async fn read_unit(
    shared: &Shared,
    schema: &CollectionSchema,
    paths: &[String],
) -> Result<(Vec<FieldData>, usize), ImportError> {
    let is_npy = |p: &String| p.to_ascii_lowercase().ends_with(".npy");
    if !paths.is_empty() && paths.iter().all(is_npy) {
        return numpy_unit(shared, schema, paths).await;
    }
    let [path] = paths else {
        return Err(Bad(format!(
            "an import unit is one JSON or Parquet file, or the .npy files of one batch (one per field), got {} files: {paths:?}",
            paths.len()
        )));
    };
    let lower = path.to_ascii_lowercase();
    let bytes = |b: Result<Bytes, StorageError>| b.map_err(|e| storage_error(path, e));
    if lower.ends_with(".json") {
        let data = bytes(shared.storage.get_in_bucket(path).await)?;
        let (path, schema) = (path.clone(), schema.clone());
        blocking(move || {
            let rows = json_rows(&path, &data)?;
            let cols = rows::rows_to_columns(&schema, schema.enable_dynamic_field, &rows, false)
                .map_err(|e| Bad(format!("{path}: {e}")))?;
            Ok((cols, rows.len()))
        })
        .await
    } else if lower.ends_with(".parquet") {
        let data = bytes(shared.storage.get_in_bucket(path).await)?;
        let (path, schema) = (path.clone(), schema.clone());
        blocking(move || parquet_columns(&path, data, &schema)).await
    } else {
        Err(Bad(format!(
            "unsupported file type of {path}: expected .json, .parquet or .npy"
        )))
    }
}

/// A NumPy import unit: one `<field>.npy` file per field, as pymilvus's NPY bulk writer
/// writes a batch (the dynamic field's file is `$meta.npy`).
async fn numpy_unit(
    shared: &Shared,
    schema: &CollectionSchema,
    paths: &[String],
) -> Result<(Vec<FieldData>, usize), ImportError> {
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let data = shared
            .storage
            .get_in_bucket(path)
            .await
            .map_err(|e| storage_error(path, e))?;
        files.push((path.clone(), data));
    }
    let schema = schema.clone();
    blocking(move || numpy_columns(&files, &schema)).await
}

/// The columns of a NumPy unit: each file names its field and holds one row per entity,
/// the same number in every file.
fn numpy_columns(
    files: &[(String, Bytes)],
    schema: &CollectionSchema,
) -> Result<(Vec<FieldData>, usize), ImportError> {
    let mut out: Vec<FieldData> = Vec::new();
    let mut rows: Option<(usize, &str)> = None;
    for (path, data) in files {
        let name = path.rsplit('/').next().unwrap_or(path);
        let stem = &name[..name.len() - ".npy".len()];
        let field = schema
            .fields
            .iter()
            .find(|f| {
                if f.is_dynamic {
                    stem == rows::META
                } else {
                    f.name == stem
                }
            })
            .ok_or_else(|| {
                Bad(format!(
                    "{path}: the file has no corresponding field in the collection (a NumPy file is named after its field: <field>.npy{})",
                    if schema.enable_dynamic_field { ", dynamic keys in $meta.npy" } else { "" }
                ))
            })?;
        if field.is_function_output || (field.is_primary_key && field.auto_id) {
            return Err(Bad(format!(
                "{path}: field {} is generated ({}), it takes no file",
                field.name,
                if field.auto_id {
                    "autoID"
                } else {
                    "a function's output"
                }
            )));
        }
        let fname = if field.is_dynamic {
            rows::META
        } else {
            field.name.as_str()
        };
        if out.iter().any(|c| c.field_name == fname) {
            return Err(Bad(format!("{path}: a second file for field {fname}")));
        }
        let (col, n) = npy_column(field, data).map_err(|e| Bad(format!("{path}: {e}")))?;
        match rows {
            Some((m, other)) if m != n => {
                return Err(Bad(format!(
                    "{path} has {n} rows but {other} has {m}: every file of a batch holds one row per entity"
                )))
            }
            _ => rows = Some((n, path)),
        }
        out.push(arrow_column(field, &col, n).map_err(|e| Bad(format!("{path}: {e}")))?);
    }
    Ok((out, rows.map_or(0, |(n, _)| n)))
}

/// One `.npy` file as an Arrow column for field `f`: 1-D for scalars (bool, int8 to
/// int64, float32/float64, unicode strings, JSON as text), 2-D (rows x dim, C order) for
/// float vectors.
fn npy_column(f: &FieldSchema, data: &[u8]) -> Result<(ArrayRef, usize), String> {
    use arrow_array::{
        BooleanArray, FixedSizeListArray, Float32Array, Float64Array, Int16Array, Int32Array,
        Int64Array, Int8Array, StringArray,
    };
    use npyz::TypeChar;
    let npy = npyz::NpyFile::new(data).map_err(|e| format!("not a readable .npy file: {e}"))?;
    let shape = npy.shape().to_vec();
    let npyz::DType::Plain(ts) = npy.dtype() else {
        return Err(format!(
            "dtype {} is not supported: a file holds one plain column",
            npy.dtype().descr()
        ));
    };
    let vector = crate::schema::vectors::Encoding::of(f.data_type()).is_some();
    let dims = if vector { 2 } else { 1 };
    if shape.len() != dims {
        return Err(format!(
            "shape {shape:?}: field {} of type {} takes a {dims}-D array",
            f.name,
            f.data_type().as_str_name()
        ));
    }
    if vector && npy.order() == npyz::Order::Fortran {
        return Err(
            "Fortran-ordered arrays are not supported: save np.ascontiguousarray(...)".into(),
        );
    }
    let rows = shape[0] as usize;
    let read = |e: std::io::Error| format!("cannot read its {ts} values: {e}");
    let values: ArrayRef = match (ts.type_char(), ts.size_field()) {
        (TypeChar::Bool, _) => Arc::new(BooleanArray::from(npy.into_vec::<bool>().map_err(read)?)),
        (TypeChar::Int, 1) => Arc::new(Int8Array::from(npy.into_vec::<i8>().map_err(read)?)),
        (TypeChar::Int, 2) => Arc::new(Int16Array::from(npy.into_vec::<i16>().map_err(read)?)),
        (TypeChar::Int, 4) => Arc::new(Int32Array::from(npy.into_vec::<i32>().map_err(read)?)),
        (TypeChar::Int, 8) => Arc::new(Int64Array::from(npy.into_vec::<i64>().map_err(read)?)),
        // Binary vectors' bytes, and half floats' bytes as pymilvus's writers save them.
        (TypeChar::Uint, 1) => Arc::new(arrow_array::UInt8Array::from(
            npy.into_vec::<u8>().map_err(read)?,
        )),
        (TypeChar::Float, 4) => Arc::new(Float32Array::from(npy.into_vec::<f32>().map_err(read)?)),
        (TypeChar::Float, 8) => Arc::new(Float64Array::from(npy.into_vec::<f64>().map_err(read)?)),
        (TypeChar::UnicodeStr, _) => {
            Arc::new(StringArray::from(npy.into_vec::<String>().map_err(read)?))
        }
        _ => {
            return Err(format!(
                "NumPy dtype {ts} is not supported: bool, int8 to int64, uint8 (vectors' bytes), float32, float64 and unicode strings (<U) are"
            ))
        }
    };
    if !vector {
        return Ok((values, rows));
    }
    let dim = i32::try_from(shape[1]).map_err(|_| format!("dim {} is too large", shape[1]))?;
    let item = Arc::new(arrow_schema::Field::new(
        "item",
        values.data_type().clone(),
        false,
    ));
    let list = FixedSizeListArray::try_new(item, dim, values, None).map_err(|e| e.to_string())?;
    Ok((Arc::new(list), rows))
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
/// dynamic `$meta` column as JSON text), as pymilvus's bulk writers write it. Columns
/// convert straight to the insert's columns (no per-value JSON on the way).
fn parquet_columns(
    path: &str,
    data: Bytes,
    schema: &CollectionSchema,
) -> Result<(Vec<FieldData>, usize), ImportError> {
    let bad =
        |e: &dyn std::fmt::Display| Bad(format!("{path} is not a readable Parquet file: {e}"));
    let reader = ParquetRecordBatchReaderBuilder::try_new(data)
        .map_err(|e| bad(&e))?
        .build()
        .map_err(|e| bad(&e))?;
    let mut out: Vec<FieldData> = Vec::new();
    let mut n = 0;
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| bad(&e))?;
        let names: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for name in &names {
            let known = schema
                .fields
                .iter()
                .any(|f| &f.name == name && !f.is_dynamic)
                || (name == rows::META && schema.enable_dynamic_field);
            if !known {
                return Err(Bad(format!(
                    "{path}: column {name} is not a field of the collection{}",
                    if schema.enable_dynamic_field {
                        " (dynamic keys go in the $meta column, as JSON)"
                    } else {
                        ""
                    }
                )));
            }
        }
        let mut cols = Vec::new();
        for f in &schema.fields {
            if f.is_function_output || (f.is_primary_key && f.auto_id) {
                continue;
            }
            let name = if f.is_dynamic {
                rows::META
            } else {
                f.name.as_str()
            };
            let Some(i) = names.iter().position(|c| c == name) else {
                continue; // missing: validate_rows says what it needs
            };
            let col = arrow_column(f, batch.column(i), batch.num_rows())
                .map_err(|e| Bad(format!("{path}, column {name}: {e}")))?;
            cols.push(col);
        }
        n += batch.num_rows();
        for c in cols {
            match out.iter_mut().find(|d| d.field_name == c.field_name) {
                Some(d) => schema::extend_field(d, c),
                None => out.push(c),
            }
        }
    }
    Ok((out, n))
}

/// One Arrow column as the insert column of field `f`.
fn arrow_column(f: &FieldSchema, col: &ArrayRef, rows: usize) -> Result<FieldData, String> {
    use crate::proto::schema::{
        field_data, scalar_field, vector_field, ArrayArray, BoolArray, DoubleArray, FloatArray,
        IntArray, JsonArray, LongArray, ScalarField, StringArray, VectorField,
    };
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    let t = f.data_type();
    // A vector field's dim (0 for others).
    let dim = crate::schema::dim(f).max(0) as usize;
    let nullable = f.nullable || f.default_value.is_some();
    if col.null_count() > 0 && !nullable && !f.is_dynamic {
        return Err(format!(
            "field {} is not nullable but has null values",
            f.name
        ));
    }
    let valid: Vec<bool> = if nullable {
        (0..rows).map(|i| !col.is_null(i)).collect()
    } else {
        vec![]
    };
    let wrong = || {
        format!(
            "Arrow type {} cannot be field {} of type {}",
            col.data_type(),
            f.name,
            t.as_str_name()
        )
    };
    let ints = || -> Result<Vec<i64>, String> {
        Ok(match col.data_type() {
            Arrow::Int8 => col
                .as_primitive::<Int8Type>()
                .values()
                .iter()
                .map(|v| *v as i64)
                .collect(),
            Arrow::Int16 => col
                .as_primitive::<Int16Type>()
                .values()
                .iter()
                .map(|v| *v as i64)
                .collect(),
            Arrow::Int32 => col
                .as_primitive::<Int32Type>()
                .values()
                .iter()
                .map(|v| *v as i64)
                .collect(),
            Arrow::Int64 => col.as_primitive::<Int64Type>().values().to_vec(),
            _ => return Err(wrong()),
        })
    };
    let floats = || -> Result<Vec<f64>, String> {
        Ok(match col.data_type() {
            Arrow::Float32 => col
                .as_primitive::<Float32Type>()
                .values()
                .iter()
                .map(|v| *v as f64)
                .collect(),
            Arrow::Float64 => col.as_primitive::<Float64Type>().values().to_vec(),
            _ => return Err(wrong()),
        })
    };
    let strings = || -> Result<Vec<String>, String> {
        Ok(match col.data_type() {
            Arrow::Utf8 => (0..rows)
                .map(|i| col.as_string::<i32>().value(i).to_string())
                .collect(),
            Arrow::LargeUtf8 => (0..rows)
                .map(|i| col.as_string::<i64>().value(i).to_string())
                .collect(),
            _ => return Err(wrong()),
        })
    };
    let scalars = |data| Some(field_data::Field::Scalars(ScalarField { data: Some(data) }));
    let field = match t {
        DataType::Bool => match col.data_type() {
            Arrow::Boolean => scalars(scalar_field::Data::BoolData(BoolArray {
                data: (0..rows).map(|i| col.as_boolean().value(i)).collect(),
            })),
            _ => return Err(wrong()),
        },
        DataType::Int8 | DataType::Int16 | DataType::Int32 => {
            let data = ints()?
                .into_iter()
                .map(|v| i32::try_from(v).map_err(|_| format!("{v} does not fit field {}", f.name)))
                .collect::<Result<_, _>>()?;
            scalars(scalar_field::Data::IntData(IntArray { data }))
        }
        DataType::Int64 => scalars(scalar_field::Data::LongData(LongArray { data: ints()? })),
        DataType::Float => scalars(scalar_field::Data::FloatData(FloatArray {
            data: floats()?.into_iter().map(|v| v as f32).collect(),
        })),
        DataType::Double => scalars(scalar_field::Data::DoubleData(DoubleArray {
            data: floats()?,
        })),
        DataType::VarChar | DataType::String => {
            scalars(scalar_field::Data::StringData(StringArray {
                data: strings()?,
            }))
        }
        // WKT text, checked and made canonical by `validate_rows`.
        DataType::Geometry => scalars(scalar_field::Data::GeometryWktData(
            crate::proto::schema::GeometryWktArray { data: strings()? },
        )),
        DataType::Json => {
            let mut data = Vec::with_capacity(rows);
            for (i, s) in strings()?.into_iter().enumerate() {
                if col.is_null(i) {
                    data.push(b"{}".to_vec());
                    continue;
                }
                serde_json::from_str::<serde::de::IgnoredAny>(&s)
                    .map_err(|e| format!("row {i} is not JSON: {e}"))?;
                data.push(s.into_bytes());
            }
            scalars(scalar_field::Data::JsonData(JsonArray { data }))
        }
        DataType::Array => {
            let mut data = Vec::with_capacity(rows);
            for i in 0..rows {
                let items = match arrow_value(col, i)? {
                    Value::Array(a) => a,
                    Value::Null => vec![],
                    _ => return Err(wrong()),
                };
                data.push(rows::scalar_array(f.element_type(), &items)?);
            }
            scalars(scalar_field::Data::ArrayData(ArrayArray {
                data,
                element_type: f.element_type,
            }))
        }
        DataType::FloatVector => {
            let mut data = Vec::with_capacity(rows * dim);
            for i in 0..rows {
                let row: ArrayRef = match col.data_type() {
                    Arrow::List(_) => col.as_list::<i32>().value(i),
                    Arrow::LargeList(_) => col.as_list::<i64>().value(i),
                    Arrow::FixedSizeList(_, _) => col.as_fixed_size_list().value(i),
                    _ => return Err(wrong()),
                };
                if row.len() != dim {
                    return Err(format!(
                        "row {i}: the vector has {} values, the field's dim is {dim}",
                        row.len()
                    ));
                }
                match row.data_type() {
                    Arrow::Float32 => {
                        data.extend_from_slice(row.as_primitive::<Float32Type>().values())
                    }
                    Arrow::Float64 => data.extend(
                        row.as_primitive::<Float64Type>()
                            .values()
                            .iter()
                            .map(|v| *v as f32),
                    ),
                    _ => return Err(wrong()),
                }
            }
            Some(field_data::Field::Vectors(VectorField {
                dim: dim as i64,
                data: Some(vector_field::Data::FloatVector(FloatArray { data })),
            }))
        }
        DataType::BinaryVector | DataType::Float16Vector | DataType::BFloat16Vector => {
            // Each row: its bytes (uint8 values: pymilvus's writers) or, for half floats,
            // its `dim` numbers (narrowed here).
            let enc = crate::schema::vectors::Encoding::of(t).expect("a dense vector type");
            let width = enc.bytes(dim);
            let mut data = Vec::with_capacity(rows * width);
            for i in 0..rows {
                let before = data.len();
                let row: Option<ArrayRef> = match col.data_type() {
                    Arrow::List(_) => Some(col.as_list::<i32>().value(i)),
                    Arrow::LargeList(_) => Some(col.as_list::<i64>().value(i)),
                    Arrow::FixedSizeList(_, _) => Some(col.as_fixed_size_list().value(i)),
                    Arrow::Binary => {
                        data.extend_from_slice(col.as_binary::<i32>().value(i));
                        None
                    }
                    _ => return Err(wrong()),
                };
                match row.as_ref().map(|r| (r, r.data_type())) {
                    None => {}
                    Some((row, Arrow::UInt8)) => {
                        data.extend_from_slice(row.as_primitive::<UInt8Type>().values())
                    }
                    Some((row, Arrow::Float32 | Arrow::Float64))
                        if enc != crate::schema::vectors::Encoding::Binary =>
                    {
                        let values: Vec<f32> = match row.data_type() {
                            Arrow::Float32 => row.as_primitive::<Float32Type>().values().to_vec(),
                            _ => row
                                .as_primitive::<Float64Type>()
                                .values()
                                .iter()
                                .map(|v| *v as f32)
                                .collect(),
                        };
                        if values.len() != dim {
                            return Err(format!(
                                "row {i}: the vector has {} values, the field's dim is {dim}",
                                values.len()
                            ));
                        }
                        data.extend(enc.encode(&values, dim));
                    }
                    _ => return Err(wrong()),
                }
                if data.len() - before != width {
                    return Err(format!(
                        "row {i}: the vector has {} bytes, a {} vector of dim {dim} has {width}",
                        data.len() - before,
                        t.as_str_name()
                    ));
                }
            }
            Some(field_data::Field::Vectors(VectorField {
                dim: dim as i64,
                data: Some(match t {
                    DataType::BinaryVector => vector_field::Data::BinaryVector(data),
                    DataType::Float16Vector => vector_field::Data::Float16Vector(data),
                    _ => vector_field::Data::Bfloat16Vector(data),
                }),
            }))
        }
        DataType::SparseFloatVector => {
            // Each row: JSON text (pymilvus's writers), `{"index": value, ...}` or
            // `{"indices": [...], "values": [...]}`.
            let mut contents = Vec::with_capacity(rows);
            for i in 0..rows {
                let text = match col.data_type() {
                    Arrow::Utf8 => col.as_string::<i32>().value(i),
                    Arrow::LargeUtf8 => col.as_string::<i64>().value(i),
                    _ => return Err(wrong()),
                };
                let v: Value = serde_json::from_str(text)
                    .map_err(|e| format!("row {i}: {text:?} is not JSON: {e}"))?;
                contents.push(rows::sparse_row(f, &v).map_err(|e| format!("row {i}: {e}"))?);
            }
            crate::index::sparse::column(f, contents).field
        }
        other => {
            return Err(format!(
                "importing {} fields is not supported yet",
                other.as_str_name()
            ))
        }
    };
    Ok(FieldData {
        r#type: f.data_type,
        field_name: if f.is_dynamic {
            rows::META.to_string()
        } else {
            f.name.clone()
        },
        field,
        field_id: f.field_id,
        is_dynamic: f.is_dynamic,
        valid_data: valid,
    })
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
