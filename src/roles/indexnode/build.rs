//! One build: vectors from the segment's Parquet file (none for FLAT), the index, its
//! file, and the registering txn (conditioned on the build record's revision and this
//! session's key).

use std::sync::Arc;
use std::time::Instant;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use object_store::PutPayload;
use prost::Message;

use super::Shared;
use crate::index::params;
use crate::index::rtree::RTreeIndex;
use crate::index::scalar::ScalarIndex;
use crate::index::sparse::SparseRows;
use crate::index::{Seed, VectorIndex};
use crate::meta::index::index_file;
use crate::proto::common::IndexState;
use crate::proto::indexcoord::{BuildRecord, IndexRecord};
use crate::proto::schema::{DataType, FieldData, FieldSchema};
use crate::roles::worker::Owner;
use crate::schema::vectors::Encoding;
use crate::storage::segment::{self, StoredVectors};

/// Builds `build_id` (as assigned at `revision`) and records the outcome.
pub async fn run(shared: Arc<Shared>, owner: Arc<Owner>, build_id: i64, revision: i64) {
    let Some(record) = shared
        .builds
        .read()
        .expect("builds lock")
        .all()
        .find(|b| b.record.build_id == build_id)
        .map(|b| b.record.clone())
    else {
        return;
    };
    log::info!(build = build_id, segment = record.segment_id, rows = record.num_rows; "index build started");
    let started = Instant::now();
    let outcome = build(&shared, &record).await;
    crate::memory::release_free_memory();
    let mut done = record.clone();
    match outcome {
        Ok((path, size)) => {
            done.state = IndexState::Finished as i32;
            done.index_files = vec![path];
            done.size_bytes = size as i64;
            done.build_ms = started.elapsed().as_millis() as i64;
        }
        Err(e) => {
            log::error!(build = build_id, segment = record.segment_id, error = e.as_str(); "index build failed");
            done.state = IndexState::Failed as i32;
            done.fail_reason = e;
        }
    }
    if !owner.lease.valid() {
        log::warn!(build = build_id; "session lost during the build: not recorded");
        return;
    }
    // The txn changes the build's record, which makes the indexnode drop this task: the
    // registration runs to its end on a task of its own.
    crate::roles::worker::to_the_end(register(shared, owner, build_id, revision, done)).await;
}

/// Records a build's outcome `done` (as assigned at `revision`), retried until decided.
async fn register(
    shared: Arc<Shared>,
    owner: Arc<Owner>,
    build_id: i64,
    revision: i64,
    done: BuildRecord,
) {
    let key = shared
        .keys
        .build(done.collection_id, done.segment_id, build_id);
    let txn = Txn::new()
        .when(vec![
            Compare::mod_revision(key.clone(), CompareOp::Equal, revision),
            owner.alive(),
        ])
        .and_then(vec![TxnOp::put(key, done.encode_to_vec(), None)]);
    // Retried until it is decided: the same txn again cannot apply twice (the revision
    // it checks changes once it applies).
    loop {
        let t = txn.clone();
        match shared
            .ctx
            .etcd
            .call(|mut c| {
                let t = t.clone();
                async move { c.txn(t).await }
            })
            .await
        {
            Ok(r) if r.succeeded() => {
                log::info!(build = build_id, segment = done.segment_id, state:? = done.state(),
                    size = done.size_bytes, took_ms = done.build_ms; "index build recorded");
                return;
            }
            Ok(_) => {
                log::warn!(build = build_id; "index build no longer assigned to this indexnode: not recorded");
                return;
            }
            Err(e) => {
                if !owner.lease.valid() {
                    return;
                }
                log::warn!(build = build_id, error:% = e; "cannot record the index build, retrying");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}

/// Reads, builds and writes; returns the index file's path and size.
async fn build(shared: &Shared, r: &BuildRecord) -> Result<(String, usize), String> {
    let def = shared
        .defs
        .read()
        .expect("defs lock")
        .all()
        .find(|d| d.id == r.index_id)
        .cloned()
        .ok_or_else(|| format!("index {} is not defined (dropped?)", r.index_id))?;
    let file = if def.scalar {
        PutPayload::from(build_scalar(shared, r, &def).await?)
    } else {
        build_vector(shared, r, &def).await?
    };
    let path = index_file(r.build_id);
    let size = file.content_length();
    let started = Instant::now();
    shared
        .storage
        .put(&path, file)
        .await
        .map_err(|e| e.to_string())?;
    log::info!(build = r.build_id, size, write_ms = started.elapsed().as_millis() as u64;
        "index file written");
    Ok((path, size))
}

/// A scalar index of the segment's column, or of a JSON path in it (its rows in value
/// order, `index::scalar`).
async fn build_scalar(
    shared: &Shared,
    r: &BuildRecord,
    def: &IndexRecord,
) -> Result<Vec<u8>, String> {
    let field = FieldSchema {
        field_id: def.field_id,
        name: def.field_name.clone(),
        data_type: def.data_type,
        nullable: true,
        ..Default::default()
    };
    let mut column: Option<FieldData> = None;
    for f in &r.insert_files {
        let bytes = shared.storage.get(f).await.map_err(|e| e.to_string())?;
        let schema = field.clone();
        let part = tokio::task::spawn_blocking(move || segment::read_column(&schema, bytes))
            .await
            .map_err(|e| format!("reading {f} failed: {e}"))?
            .map_err(|e| format!("{f}: {e}"))?;
        match &mut column {
            None => column = Some(part),
            Some(c) => crate::schema::extend_field(c, part),
        }
    }
    let column = column.unwrap_or_default();
    let expected = r.num_rows as usize;
    let json = def
        .json_cast()
        .map(|cast| (crate::index::scalar::pointer_keys(&def.json_path), cast));
    let geometry = def.data_type == DataType::Geometry as i32;
    tokio::task::spawn_blocking(move || {
        // (rows the index covers, its file): RTREE, the one index a GEOMETRY field
        // takes, or the rows in value order.
        let (rows, bytes) = if geometry {
            let index = RTreeIndex::build(&column).map_err(|e| e.to_string())?;
            (index.rows(), index.to_bytes())
        } else {
            let index = match &json {
                Some((keys, cast)) => ScalarIndex::build_json(&column, keys, *cast),
                None => ScalarIndex::build(&column),
            }
            .map_err(|e| e.to_string())?;
            (index.rows(), index.to_bytes())
        };
        if rows != expected {
            return Err(format!(
                "the segment's files hold {rows} rows of {}, expected {expected}",
                column.field_name
            ));
        }
        Ok(bytes)
    })
    .await
    .map_err(|e| format!("the build task failed: {e}"))?
}

/// A vector index of the segment's vectors, its file.
async fn build_vector(
    shared: &Shared,
    r: &BuildRecord,
    def: &IndexRecord,
) -> Result<PutPayload, String> {
    let spec = params::parse(&params::flatten(&def.params)?, def.vector_type())?;
    let threads = match shared.ctx.config.segment.build_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let nice = shared.ctx.config.segment.build_nice;
    let sparse = def.vector_type() == DataType::SparseFloatVector;
    let dim = def.dim as usize;
    // Vectors of every dense type are built over as words (schema::vectors).
    let enc = Encoding::of(def.vector_type()).unwrap_or(Encoding::Float);
    let words = enc.words(dim);
    if spec.kind == params::Kind::Flat && !sparse {
        // A FLAT index is the segment's vectors searched exactly: its file is a header the
        // querynode fills with the column it loaded (`index` kind 8), so nothing is read.
        return VectorIndex::flat_over_segment(spec, words, r.num_rows as usize)
            .and_then(|idx| idx.to_bytes())
            .map(PutPayload::from)
            .map_err(|e| e.to_string());
    }
    let started = Instant::now();
    // A segment of one file (every writer's): its column becomes the build's vectors,
    // which a copy would hold twice while it is made. Of several: each is appended to
    // vectors reserved once.
    let one_file = r.insert_files.len() == 1;
    let mut vectors: Vec<f32> = Vec::new();
    if !one_file && !sparse {
        vectors.reserve_exact((r.num_rows as usize).saturating_mul(words));
    }
    let mut rows: Vec<Vec<u8>> = Vec::new();
    // Each file's vector column alone, a row group at a time (`segment::fetch_vectors`):
    // the file is not held beside the vectors.
    for f in &r.insert_files {
        let v = segment::fetch_vectors(&shared.storage, f, &def.field_name)
            .await
            .map_err(|e| format!("{f}: {e}"))?;
        match v {
            StoredVectors::Floats(v) if one_file => vectors = v,
            StoredVectors::Floats(v) => vectors.extend_from_slice(&v),
            StoredVectors::Bytes(b) if one_file => vectors = enc.decode(&b, dim),
            StoredVectors::Bytes(b) => vectors.extend(enc.decode(&b, dim)),
            StoredVectors::Rows(r) => rows.extend(r),
        }
    }
    let read_ms = started.elapsed().as_millis() as u64;
    let started = Instant::now();
    let built = if sparse {
        if rows.len() != r.num_rows as usize {
            return Err(format!(
                "the segment's files hold {} sparse rows, expected {}",
                rows.len(),
                r.num_rows
            ));
        }
        in_background(nice, move || {
            VectorIndex::build_sparse(spec, &SparseRows::from_contents(&rows))
        })
        .await
    } else {
        if words == 0 || vectors.len() != r.num_rows as usize * words {
            return Err(format!(
                "the segment's files hold {} words, expected {} rows of dim {dim} ({words} words)",
                vectors.len(),
                r.num_rows
            ));
        }
        let seeds = if spec.kind.has_graph() {
            seeds(shared, r, spec).await
        } else {
            Vec::new()
        };
        let (build_id, segment, wanted) = (r.build_id, r.segment_id, r.seeds.len());
        in_background(nice, move || {
            if seeds.is_empty() {
                return VectorIndex::build(spec, words, vectors, threads);
            }
            let graphs: Vec<(&Seed, usize)> =
                seeds.iter().map(|(s, first, _)| (s, *first)).collect();
            let (index, used) =
                VectorIndex::build_seeded(spec, words, vectors, threads, &graphs)?;
            let builds: Vec<String> = seeds.iter().map(|(_, _, b)| b.to_string()).collect();
            let builds = builds.join(",");
            // The indexcoord names the largest first.
            let (largest, first_row, seed_build) = &seeds[0];
            if used > 0 {
                log::info!(build = build_id, segment, seeds = used, seed_builds = builds.as_str(),
                    seed_build, seed_rows = largest.rows(), first_row;
                    "index build started from the graphs of segments compacted into this one");
            }
            if used < wanted {
                log::warn!(build = build_id, seeds = wanted, used, seed_builds = builds.as_str();
                    "not every seed build's graph could be used: the rows of the others were inserted as new");
            }
            Ok(index)
        })
        .await
    };
    let index = built
        .map_err(|e| format!("the build task failed: {e}"))?
        .map_err(|e| e.to_string())?;
    let index_ms = started.elapsed().as_millis() as u64;
    let started = Instant::now();
    // The vectors go to the file as they are: the index is consumed, its graph (or
    // lists, codes) freed once serialized, before the upload.
    let parts = tokio::task::spawn_blocking(move || index.into_file())
        .await
        .map_err(|e| format!("the serializing task failed: {e}"))?;
    log::info!(build = r.build_id, read_ms, index_ms, serialize_ms = started.elapsed().as_millis() as u64;
        "index built");
    Ok(parts.into_iter().collect())
}

/// The graphs a build starts from (its seed builds' files, read), each with the row it
/// starts at and its build ID, in the order the record names them; a seed that cannot
/// be read is left out with the reason logged: seeds are an optimization, never a
/// precondition.
async fn seeds(
    shared: &Shared,
    r: &BuildRecord,
    spec: params::IndexSpec,
) -> Vec<(Seed, usize, i64)> {
    let mut out = Vec::new();
    for seed in &r.seeds {
        let Some(path) = seed.files.first() else {
            continue;
        };
        // Its graph alone: the vectors are the build's own rows.
        match crate::storage::index_file::read_seed(&shared.storage, path, spec).await {
            Ok(index) => out.push((index, seed.first_row.max(0) as usize, seed.build_id)),
            Err(e) => {
                log::warn!(build = r.build_id, seed_build = seed.build_id, error = e.as_str();
                    "a seed build's index file is not usable: its rows are inserted as new");
            }
        }
    }
    out
}

/// Runs `f`, a vector index build, on a thread of its own at nice value `nice`
/// (`indexNode.buildNice`; a process already nicer keeps its own), which the threads it
/// starts inherit. A build is background
/// work: on cores it shares with searches (a querynode on the same host) or with its own
/// process's session keepalive, it takes what they leave. The thread is its own because
/// a nice value, once raised, cannot be lowered again without privilege: a pooled
/// thread would keep it.
async fn in_background<T: Send + 'static>(
    nice: u8,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    // The closure is shared with the fallback below: a thread that cannot be started
    // (the process at its thread limit for a moment) is no reason to fail the build.
    type Job<T, F> = Arc<std::sync::Mutex<Option<(F, tokio::sync::oneshot::Sender<T>)>>>;
    fn runner<T, F: FnOnce() -> T>(job: Job<T, F>, nice: u8) -> impl FnOnce() {
        move || {
            let taken = job.lock().expect("build job lock").take();
            if let Some((f, tx)) = taken {
                if nice > 0 {
                    lower_this_threads_priority(nice);
                }
                let _ = tx.send(f());
            }
        }
    }
    let job: Job<T, _> = Arc::new(std::sync::Mutex::new(Some((f, tx))));
    let started = std::thread::Builder::new()
        .name("index-build".into())
        .spawn(runner(job.clone(), nice));
    if let Err(e) = started {
        log::warn!(error:% = e; "cannot start an index build's own thread: it runs at the process's priority");
        tokio::task::spawn_blocking(runner(job, 0));
    }
    rx.await
        .map_err(|_| "the build's thread panicked".to_string())
}

/// Sets the calling thread's nice value (Linux keeps one per thread; threads it starts
/// inherit it).
fn lower_this_threads_priority(nice: u8) {
    // SAFETY: gettid, getpriority and setpriority take and return plain integers.
    let rc = unsafe {
        let tid = libc::gettid() as libc::id_t;
        if libc::getpriority(libc::PRIO_PROCESS, tid) >= i32::from(nice) {
            return;
        }
        libc::setpriority(libc::PRIO_PROCESS, tid, i32::from(nice))
    };
    if rc != 0 {
        log::warn!(nice, error:% = std::io::Error::last_os_error();
            "cannot lower the index build's priority: it runs at the process's");
    }
}

#[cfg(test)]
mod tests {
    /// The calling thread's nice value.
    fn nice_now() -> i32 {
        // SAFETY: gettid and getpriority take and return plain integers.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[test]
    fn a_build_and_the_threads_it_starts_run_at_the_build_nice_value() {
        let rt = crate::testkit::runtime();
        let before = nice_now();
        let (own, started) = rt
            .block_on(super::in_background(10, || {
                let started = std::thread::scope(|s| s.spawn(nice_now).join().unwrap());
                (nice_now(), started)
            }))
            .unwrap();
        // Nice 10, or the process's own if it already runs nicer (a test run may).
        let want = before.max(10);
        assert_eq!((own, started), (want, want));
        assert_eq!(
            nice_now(),
            before,
            "the caller's priority is left as it was"
        );
        let same = rt.block_on(super::in_background(0, nice_now)).unwrap();
        assert_eq!(same, before, "0 leaves a build at the process's priority");
        let err = rt
            .block_on(super::in_background(10, || panic!("a build panics")))
            .unwrap_err();
        assert!(err.contains("panicked"), "{err}");
    }
}
