//! Object storage for segment and index files, through the `object_store` crate:
//! `common.storageType: local` keeps objects under `localStorage.path` (every process must
//! see the same directory: one host or a shared volume); `minio` / `remote` use the S3
//! API with Milvus's `minio.*` keys. Every call is bounded by the storage timeout.
//!
//! [`segment`] turns a batch of rows into a Parquet file and back; [`index_file`] reads a
//! large vector index file in pieces.
//!
//! **Unregistered files (invariant GC1).** A datanode writes a segment's or delta's files
//! first and names them in the catalog after (one txn); the datacoord's garbage collector
//! deletes a file no record names once it is older than `dataCoord.gc.missingTolerance`,
//! measured when it reads the records. A writer registers files only while they are
//! younger than half that tolerance ([`WriteWindow`]), so a registration the collector did
//! not see cannot name a file it deletes (given clocks skewed by less than the other half).
//! A writer past its window writes its files again.

pub mod index_file;
pub mod segment;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, PutPayload};

use crate::config::{S3Config, StorageConfig, StorageKind};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The storage settings cannot work.
    #[error("object storage configuration: {0}")]
    Config(String),
    /// No answer within the bound; a write may or may not have happened.
    #[error("object storage did not answer {what} within {limit:?}")]
    Timeout {
        /// What was asked.
        what: String,
        /// The bound.
        limit: Duration,
    },
    /// The store answered with an error.
    #[error("object storage failed {what}: {why}")]
    Store {
        /// What was asked.
        what: String,
        /// The store's reason.
        why: String,
    },
}

/// How long files written from now on may wait for their registration (GC1).
#[derive(Debug, Clone, Copy)]
pub struct WriteWindow {
    since: std::time::Instant,
    limit: Duration,
}

impl WriteWindow {
    /// Opened before the first file is written; `missing_tolerance` is
    /// `dataCoord.gc.missingTolerance`.
    pub fn open(missing_tolerance: Duration) -> WriteWindow {
        WriteWindow {
            since: std::time::Instant::now(),
            limit: missing_tolerance / 2,
        }
    }

    /// Checked just before the registering txn: Err with the reason once the files may
    /// be collected.
    pub fn check(&self) -> Result<(), String> {
        let age = self.since.elapsed();
        if age < self.limit {
            return Ok(());
        }
        Err(format!(
            "its files were written {age:?} ago, half of dataCoord.gc.missingTolerance ({:?}) \
             or more: the garbage collector may delete them, so they are written again",
            self.limit * 2
        ))
    }
}

/// Whether `t` (a listed object's modification time) was at least `age` before `now`: the
/// garbage collectors measure a file's age at the moment they read the records that could
/// name it, not later.
pub fn older_at(now: std::time::SystemTime, t: std::time::SystemTime, age: Duration) -> bool {
    now.duration_since(t).is_ok_and(|elapsed| elapsed >= age)
}

/// Objects under one root path of one store.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    root: String,
    timeout: Duration,
    /// The directory of the objects under the root, for a local store.
    local_root: Option<std::path::PathBuf>,
}

impl Storage {
    /// The store the configuration names (`common.storageType`), objects under
    /// `minio.rootPath`.
    pub fn from_config(c: &StorageConfig) -> Result<Storage, StorageError> {
        match c.kind {
            StorageKind::Local => Storage::local(&c.local_path, &c.root_path, c.timeout),
            StorageKind::S3 => Storage::s3(&c.s3, &c.root_path, c.timeout),
        }
    }

    /// A store in the local directory `dir` (created if missing), objects under `root`.
    pub fn local(
        dir: &std::path::Path,
        root: &str,
        timeout: Duration,
    ) -> Result<Storage, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StorageError::Config(format!(
                "cannot create localStorage.path {}: {e}",
                dir.display()
            ))
        })?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|e| {
            StorageError::Config(format!("localStorage.path {}: {e}", dir.display()))
        })?;
        let root = root.trim_matches('/').to_string();
        Ok(Storage {
            store: Arc::new(store),
            local_root: Some(dir.join(&root)),
            root,
            timeout,
        })
    }

    /// A store in an S3 bucket (path-style requests, as MinIO serves them), objects
    /// under `root`. The bucket must exist.
    pub fn s3(s: &S3Config, root: &str, timeout: Duration) -> Result<Storage, StorageError> {
        let scheme = if s.use_ssl { "https" } else { "http" };
        let host = s
            .address
            .trim_start_matches("http://")
            .trim_start_matches("https://");
        let endpoint = if host.contains(':') {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}:{}", s.port)
        };
        let mut options = object_store::ClientOptions::new()
            .with_timeout(timeout)
            .with_connect_timeout(timeout)
            .with_allow_http(!s.use_ssl);
        // minio.ssl.tlsCACert: trusted besides the system's roots (a private CA).
        if let (true, Some(path)) = (s.use_ssl, &s.ca_cert) {
            let pem = std::fs::read(path).map_err(|e| {
                StorageError::Config(format!(
                    "minio.ssl.tlsCACert: cannot read {}: {e}",
                    path.display()
                ))
            })?;
            let certs = object_store::Certificate::from_pem_bundle(&pem).map_err(|e| {
                StorageError::Config(format!(
                    "minio.ssl.tlsCACert: {} holds no usable PEM certificate: {e}",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(StorageError::Config(format!(
                    "minio.ssl.tlsCACert: {} holds no PEM certificate",
                    path.display()
                )));
            }
            for c in certs {
                options = options.with_root_certificate(c);
            }
        }
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&endpoint)
            .with_bucket_name(&s.bucket)
            .with_access_key_id(&s.access_key_id)
            .with_secret_access_key(&s.secret_access_key)
            .with_region(&s.region)
            .with_virtual_hosted_style_request(false)
            .with_client_options(options)
            .build()
            .map_err(|e| {
                StorageError::Config(format!("S3 endpoint {endpoint}, bucket {}: {e}", s.bucket))
            })?;
        Ok(Storage {
            store: Arc::new(store),
            root: root.trim_matches('/').to_string(),
            timeout,
            local_root: None,
        })
    }

    fn path(&self, key: &str) -> Path {
        let key = key.trim_matches('/');
        if self.root.is_empty() {
            Path::from(key)
        } else {
            Path::from(format!("{}/{key}", self.root))
        }
    }

    async fn bounded<T>(
        &self,
        what: impl Fn() -> String,
        f: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> Result<T, StorageError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StorageError::Store {
                what: what(),
                why: e.to_string(),
            }),
            Err(_) => Err(StorageError::Timeout {
                what: what(),
                limit: self.timeout,
            }),
        }
    }

    /// Writes `bytes` (one piece, or several written one after another) at `key`
    /// (relative to the root), replacing any object there.
    pub async fn put(&self, key: &str, bytes: impl Into<PutPayload>) -> Result<(), StorageError> {
        let p = self.path(key);
        self.bounded(|| format!("writing {p}"), self.store.put(&p, bytes.into()))
            .await
            .map(|_| ())
    }

    /// Reads the object at `key` relative to the bucket (or the local storage
    /// directory), not to the root path: where bulk import files are, as Milvus reads them.
    /// The bound grows with the object's size (1 s per 16 MiB beyond the usual bound):
    /// import files can be large.
    pub async fn get_in_bucket(&self, key: &str) -> Result<Bytes, StorageError> {
        let p = Path::from(key.trim_matches('/'));
        let meta = self
            .bounded(|| format!("reading the size of {p}"), self.store.head(&p))
            .await?;
        let limit = self.timeout + Duration::from_secs(meta.size / (16 << 20));
        match tokio::time::timeout(limit, async { self.store.get(&p).await?.bytes().await }).await {
            Ok(Ok(b)) => Ok(b),
            Ok(Err(e)) => Err(StorageError::Store {
                what: format!("reading {p}"),
                why: e.to_string(),
            }),
            Err(_) => Err(StorageError::Timeout {
                what: format!("reading {p}"),
                limit,
            }),
        }
    }

    /// The size in bytes of the object at `key`.
    pub async fn size(&self, key: &str) -> Result<u64, StorageError> {
        let p = self.path(key);
        self.bounded(|| format!("reading the size of {p}"), self.store.head(&p))
            .await
            .map(|m| m.size)
    }

    /// Reads the bytes `range` of the object at `key`.
    pub async fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes, StorageError> {
        let p = self.path(key);
        let what = || format!("reading bytes {}..{} of {p}", range.start, range.end);
        self.bounded(what, self.store.get_range(&p, range.clone()))
            .await
    }

    /// Reads the object at `key`.
    pub async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        let p = self.path(key);
        self.bounded(|| format!("reading {p}"), async {
            self.store.get(&p).await?.bytes().await
        })
        .await
    }

    /// The keys (relative to the root) of every object under `prefix`, sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let p = self.path(prefix);
        let metas: Vec<object_store::ObjectMeta> = self
            .bounded(
                || format!("listing {p}"),
                self.store.list(Some(&p)).try_collect(),
            )
            .await?;
        let strip = if self.root.is_empty() {
            String::new()
        } else {
            format!("{}/", self.root)
        };
        let mut keys: Vec<String> = metas
            .into_iter()
            .map(|m| {
                let k = m.location.to_string();
                k.strip_prefix(&strip).map(str::to_string).unwrap_or(k)
            })
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Every object under `prefix`: its key (relative to the root) and when it was last
    /// written.
    pub async fn list_with_times(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, std::time::SystemTime)>, StorageError> {
        let p = self.path(prefix);
        let metas: Vec<object_store::ObjectMeta> = self
            .bounded(
                || format!("listing {p}"),
                self.store.list(Some(&p)).try_collect(),
            )
            .await?;
        let strip = if self.root.is_empty() {
            String::new()
        } else {
            format!("{}/", self.root)
        };
        Ok(metas
            .into_iter()
            .map(|m| {
                let k = m.location.to_string();
                let k = k.strip_prefix(&strip).map(str::to_string).unwrap_or(k);
                (k, std::time::SystemTime::from(m.last_modified))
            })
            .collect())
    }

    /// Deletes the object at `key` (no error if it is already gone).
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let p = self.path(key);
        match self
            .bounded(|| format!("deleting {p}"), self.store.delete(&p))
            .await
        {
            Err(StorageError::Store { why, .. }) if why.contains("not found") => Ok(()),
            other => other,
        }
    }

    /// Deletes what writes to a local store that were cut off left behind (a process
    /// killed in the middle of a put or an [`Upload`]): the store writes an object to a
    /// staging file `<object>#<n>` and renames it at the end, and no listing shows such
    /// a file. Those not written to for `age` (`dataCoord.gc.missingTolerance`) go; their
    /// keys (relative to the root) are returned. Deleting one can only make a write still
    /// in progress fail (its rename finds nothing), never lose an object.
    ///
    /// An S3 store keeps the parts of an upload cut off, unseen, until its own expiry
    /// drops them (MinIO: `api.stale_uploads_expiry`, 24 h; AWS: a lifecycle rule with
    /// `AbortIncompleteMultipartUpload`): nothing is done here for it.
    pub async fn remove_cut_off_writes(&self, age: Duration) -> Result<Vec<String>, StorageError> {
        let Some(dir) = self.local_root.clone() else {
            return Ok(Vec::new());
        };
        let what = || format!("removing cut-off writes under {}", dir.display());
        let walk = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || remove_staging_files(&dir, age)
        });
        match tokio::time::timeout(self.timeout, walk).await {
            Ok(joined) => joined
                .map_err(|e| e.to_string())
                .and_then(|walked| walked.map_err(|e| e.to_string()))
                .map_err(|why| StorageError::Store { what: what(), why }),
            Err(_) => Err(StorageError::Timeout {
                what: what(),
                limit: self.timeout,
            }),
        }
    }

    /// An object at `key` written in pieces ([`Upload`]).
    pub fn upload(&self, key: &str) -> Upload<'_> {
        Upload {
            storage: self,
            path: self.path(key),
            pending: Vec::new(),
            pending_len: 0,
            parts: None,
            written: 0,
        }
    }
}

/// Whether `name` is a local store's staging file: `<object>#<digits>` (the store's
/// objects never end so: it refuses such keys).
fn is_staging_file(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes the staging files under `dir` last written `age` ago or earlier; their paths
/// relative to `dir`. A directory that vanishes meanwhile is skipped.
fn remove_staging_files(dir: &std::path::Path, age: Duration) -> std::io::Result<Vec<String>> {
    let now = std::time::SystemTime::now();
    let mut removed = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            if !kind.is_file() || !is_staging_file(&entry.file_name().to_string_lossy()) {
                continue;
            }
            let written = match entry.metadata().and_then(|m| m.modified()) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if !older_at(now, written, age) {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
            let key = path.strip_prefix(dir).unwrap_or(&path);
            removed.push(key.to_string_lossy().into_owned());
        }
    }
    removed.sort();
    Ok(removed)
}

/// The size of each part of an object written in pieces but the last: S3 wants at least
/// 5 MiB, and some stores parts of one size.
pub const UPLOAD_PART: usize = 16 << 20;

/// An object written in pieces, so that a large file (a compaction's merged segment) need
/// not be held whole: the pieces are cut into parts of [`UPLOAD_PART`] bytes, each
/// uploaded as it fills (a multipart upload, begun with the first full part). An object
/// smaller than one part is written by one put in [`Upload::finish`]. Nothing is at the
/// key until `finish` returns; [`Upload::abort`] drops the parts sent. Each request is
/// bounded by the storage timeout.
pub struct Upload<'a> {
    storage: &'a Storage,
    path: Path,
    pending: Vec<Bytes>,
    pending_len: usize,
    parts: Option<Box<dyn MultipartUpload>>,
    written: u64,
}

impl Upload<'_> {
    /// Adds `bytes` to the object, sending each part that fills.
    pub async fn write(&mut self, mut bytes: Bytes) -> Result<(), StorageError> {
        while self.pending_len + bytes.len() >= UPLOAD_PART {
            let head = bytes.split_to(UPLOAD_PART - self.pending_len);
            self.pending.push(head);
            let part = PutPayload::from_iter(std::mem::take(&mut self.pending));
            self.pending_len = 0;
            self.send(part).await?;
        }
        if !bytes.is_empty() {
            self.pending_len += bytes.len();
            self.pending.push(bytes);
        }
        Ok(())
    }

    async fn send(&mut self, part: PutPayload) -> Result<(), StorageError> {
        let (storage, p) = (self.storage, self.path.clone());
        let size = part.content_length() as u64;
        if self.parts.is_none() {
            let started = storage
                .bounded(
                    || format!("starting an upload of {p}"),
                    storage.store.put_multipart(&p),
                )
                .await?;
            self.parts = Some(started);
        }
        let upload = self.parts.as_mut().expect("started above");
        let n = self.written / UPLOAD_PART as u64 + 1;
        storage
            .bounded(|| format!("writing part {n} of {p}"), upload.put_part(part))
            .await?;
        self.written += size;
        Ok(())
    }

    /// Writes what is left and makes the object visible at its key; returns its size.
    /// On failure the parts sent are dropped (as [`Upload::abort`]).
    pub async fn finish(mut self) -> Result<u64, StorageError> {
        match self.complete().await {
            Ok(size) => Ok(size),
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    async fn complete(&mut self) -> Result<u64, StorageError> {
        let rest = PutPayload::from_iter(std::mem::take(&mut self.pending));
        let (storage, p) = (self.storage, self.path.clone());
        if self.parts.is_none() {
            let size = rest.content_length() as u64;
            storage
                .bounded(|| format!("writing {p}"), storage.store.put(&p, rest))
                .await?;
            return Ok(size);
        }
        if rest.content_length() > 0 {
            self.send(rest).await?;
        }
        let upload = self.parts.as_mut().expect("started");
        storage
            .bounded(
                || format!("completing the upload of {p}"),
                upload.complete(),
            )
            .await?;
        self.parts = None;
        Ok(self.written)
    }

    /// Drops the parts sent (a store keeps them, unseen, until told).
    pub async fn abort(mut self) {
        if let Some(mut upload) = self.parts.take() {
            let p = self.path.clone();
            if let Err(e) = self
                .storage
                .bounded(|| format!("aborting the upload of {p}"), upload.abort())
                .await
            {
                let e = e.to_string();
                log::warn!(error = e.as_str(); "cannot abort an upload: its parts stay until the store drops them");
            }
        }
    }
}

/// An upload dropped unfinished (its task cancelled: a compaction plan reassigned)
/// drops its parts in the background, bounded by the storage timeout.
impl Drop for Upload<'_> {
    fn drop(&mut self) {
        let Some(mut upload) = self.parts.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (limit, p) = (self.storage.timeout, self.path.to_string());
        runtime.spawn(async move {
            if !matches!(tokio::time::timeout(limit, upload.abort()).await, Ok(Ok(()))) {
                log::warn!(path = p.as_str(); "cannot abort a dropped upload: its parts stay until the store drops them");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Storage, WriteWindow, UPLOAD_PART};

    #[test]
    fn a_write_window_closes_at_half_the_missing_tolerance() {
        let open = WriteWindow::open(Duration::from_secs(3600));
        assert!(open.check().is_ok());
        let shut = WriteWindow::open(Duration::from_millis(40));
        std::thread::sleep(Duration::from_millis(25));
        let why = shut.check().expect_err("past half of 40 ms");
        assert!(
            why.contains("dataCoord.gc.missingTolerance (40ms)"),
            "{why}"
        );
        assert!(why.contains("written again"), "{why}");
    }

    /// An upload cut off (a process killed in the middle: the upload neither finished
    /// nor aborted) leaves the store's staging file; once idle for the age given it is
    /// removed, and objects and a younger staging file stay.
    #[test]
    fn writes_cut_off_leave_staging_files_that_are_removed_once_old() {
        let dir = crate::testkit::TempDir::new("cut-off-writes");
        let rt = crate::testkit::runtime();
        let store = Storage::local(&dir.0, "files", Duration::from_secs(5)).unwrap();
        rt.block_on(async {
            store
                .put("insert_log/1/whole", vec![7u8; 10])
                .await
                .unwrap();
            let mut cut = store.upload("insert_log/1/cut");
            cut.write(vec![1u8; UPLOAD_PART + 5].into()).await.unwrap();
            // What a killed process leaves: neither finish nor abort (nor Drop) runs.
            std::mem::forget(cut);
        });
        let staged = dir.0.join("files/insert_log/1/cut#1");
        assert!(staged.is_file(), "the store staged the upload elsewhere");
        assert_eq!(
            rt.block_on(store.list("insert_log")).unwrap(),
            ["insert_log/1/whole"],
            "a listing shows staging files"
        );
        let young = dir.0.join("files/index_files/2/index#1");
        std::fs::create_dir_all(young.parent().unwrap()).unwrap();
        std::fs::write(&young, b"part").unwrap();
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&staged)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let removed = rt
            .block_on(store.remove_cut_off_writes(Duration::from_secs(60)))
            .unwrap();
        assert_eq!(removed, ["insert_log/1/cut#1"]);
        assert!(!staged.exists());
        assert!(
            young.exists(),
            "a staging file written just now was removed"
        );
        assert!(dir.0.join("files/insert_log/1/whole").is_file());
        // `#` followed by other than digits is an object's name, not a staging file.
        assert!(super::is_staging_file("a/b#12"));
        assert!(!super::is_staging_file("a/b#"));
        assert!(!super::is_staging_file("a/b#1x"));
        assert!(!super::is_staging_file("a/b"));
    }
}
