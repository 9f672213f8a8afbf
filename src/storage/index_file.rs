//! Vector index files read in pieces. A file read whole is held beside what is made of
//! it: an HNSW file of 1,000,000 rows of dim 128 is 660 MB, and the querynode loading it
//! held 1.3 GB until the file was freed. Here the header is read first, then the vectors
//! in pieces of [`PIECE`] bytes straight into the index's own vector, then what follows
//! them (the graph, the lists or the codes: those are still read whole and parsed into
//! a copy); a seed's vectors (and HNSW_SQ's codes) are not read at all. A file below
//! [`WHOLE`] bytes is read with one GET (after the HEAD that gives its size).
//!
//! A read in pieces may span two writes of one path (a superseded indexnode writes its
//! build's file again, invariant I1): both are of one build record, so the header and
//! the vectors are the same bytes, and what follows them is read in one request.

use super::Storage;
use crate::index::params::IndexSpec;
use crate::index::{extend_floats, FileLayout, Seed, VectorIndex};

/// Files smaller than this are read whole.
pub const WHOLE: u64 = 16 << 20;
/// The size of each piece of the vectors.
pub const PIECE: u64 = 32 << 20;

/// The vector index in the file at `key`, built for `spec`.
pub async fn read_vector_index(
    storage: &Storage,
    key: &str,
    spec: IndexSpec,
) -> Result<VectorIndex, String> {
    read_in_pieces(storage, key, spec, WHOLE, PIECE).await
}

/// [`read_vector_index`] with files from `whole` bytes read in pieces of `piece` bytes
/// (whole floats).
async fn read_in_pieces(
    storage: &Storage,
    key: &str,
    spec: IndexSpec,
    whole: u64,
    piece: u64,
) -> Result<VectorIndex, String> {
    debug_assert!(
        piece > 0 && piece.is_multiple_of(4),
        "pieces of whole floats"
    );
    let size = storage.size(key).await.map_err(|e| e.to_string())?;
    if size < whole {
        let bytes = storage.get(key).await.map_err(|e| e.to_string())?;
        return blocking(key, move || VectorIndex::from_bytes(spec, &bytes)).await;
    }
    let layout = layout(storage, key, spec, size).await?;
    let (start, end) = (layout.vectors.start as u64, layout.vectors.end as u64);
    let mut vectors: Vec<f32> = Vec::new();
    vectors
        .try_reserve_exact(layout.vectors.len() / 4)
        .map_err(|e| format!("{key}: {} bytes of vectors: {e}", layout.vectors.len()))?;
    let mut at = start;
    while at < end {
        let next = (at + piece).min(end);
        let piece = storage
            .get_range(key, at..next)
            .await
            .map_err(|e| e.to_string())?;
        if piece.len() as u64 != next - at {
            return Err(format!(
                "{key}: cut short at byte {}",
                at + piece.len() as u64
            ));
        }
        vectors = blocking(key, move || {
            extend_floats(&mut vectors, &piece);
            Ok(vectors)
        })
        .await?;
        at = next;
    }
    let rest = rest(storage, key, end, size).await?;
    blocking(key, move || {
        VectorIndex::from_parts(spec, &layout, vectors, &rest)
    })
    .await
}

/// The graph of the index file at `key` (built for `spec`), to start another build
/// from; its vectors and codes are not read.
pub async fn read_seed(storage: &Storage, key: &str, spec: IndexSpec) -> Result<Seed, String> {
    let size = storage.size(key).await.map_err(|e| e.to_string())?;
    let layout = layout(storage, key, spec, size).await?;
    let rest = rest(storage, key, layout.seed_from as u64, size).await?;
    blocking(key, move || Seed::from_parts(spec, &layout, &rest)).await
}

/// The layout of the file at `key` (of `size` bytes), checked to fit in it.
async fn layout(
    storage: &Storage,
    key: &str,
    spec: IndexSpec,
    size: u64,
) -> Result<FileLayout, String> {
    if size < FileLayout::HEADER as u64 {
        return Err(format!("{key}: not an index file: {size} bytes"));
    }
    let head = storage
        .get_range(key, 0..FileLayout::HEADER as u64)
        .await
        .map_err(|e| e.to_string())?;
    let layout = FileLayout::read(spec, &head).map_err(|e| format!("{key}: {e}"))?;
    if layout.vectors.end as u64 > size {
        return Err(format!(
            "{key}: not an index file: its header names {} bytes of vectors, the file has {size} bytes",
            layout.vectors.len()
        ));
    }
    Ok(layout)
}

/// The bytes from `from` to the end (`size`).
async fn rest(storage: &Storage, key: &str, from: u64, size: u64) -> Result<bytes::Bytes, String> {
    if from >= size {
        return Ok(bytes::Bytes::new());
    }
    storage
        .get_range(key, from..size)
        .await
        .map_err(|e| e.to_string())
}

/// `f` (reading the file at `key`) on a blocking thread; its error names the file.
async fn blocking<T: Send + 'static>(
    key: &str,
    f: impl FnOnce() -> Result<T, crate::index::IndexError> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("{key}: the reading task failed: {e}"))?
        .map_err(|e| format!("{key}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::params::{Kind, Metric};
    use crate::testkit::sample::random_vectors;

    #[test]
    fn a_file_written_and_read_in_pieces_is_the_file_whole() {
        let (n, dim) = (1500, 16);
        let data = random_vectors(n, dim, 5);
        let dir = crate::testkit::TempDir::new("index-pieces");
        let rt = crate::testkit::runtime();
        let store = Storage::local(&dir.0, "files", std::time::Duration::from_secs(5)).unwrap();
        let hnsw = Kind::Hnsw {
            m: 16,
            ef_construction: 64,
        };
        let kinds = [
            (hnsw, Metric::L2),
            (hnsw, Metric::Cosine),
            (
                Kind::HnswSq {
                    m: 16,
                    ef_construction: 64,
                },
                Metric::Ip,
            ),
            (Kind::IvfFlat { nlist: 8 }, Metric::L2),
            (Kind::IvfSq8 { nlist: 8 }, Metric::L2),
            (
                Kind::IvfPq {
                    nlist: 8,
                    m: 4,
                    nbits: 8,
                },
                Metric::Ip,
            ),
            (
                Kind::Scann {
                    nlist: 8,
                    sub_dim: 2,
                    with_raw_data: false,
                },
                Metric::L2,
            ),
            (Kind::Flat, Metric::L2),
        ];
        let mut last = Vec::new();
        for (i, (kind, metric)) in kinds.into_iter().enumerate() {
            let spec = IndexSpec {
                kind,
                metric,
                auto: false,
            };
            let idx = VectorIndex::build(spec, dim, data.clone(), 2).unwrap();
            let whole = idx.to_bytes().unwrap();
            let key = format!("index_files/{i}/index");
            rt.block_on(store.put(&key, object_store::PutPayload::from_iter(idx.into_file())))
                .unwrap();
            assert_eq!(
                rt.block_on(store.get(&key)).unwrap(),
                whole,
                "{kind:?}: written in parts"
            );
            // In pieces of 999 floats (the 24,000 floats end mid-piece), and whole.
            for (from, piece) in [(0, 3996), (WHOLE, PIECE)] {
                let read = rt
                    .block_on(read_in_pieces(&store, &key, spec, from, piece))
                    .unwrap();
                assert_eq!(
                    read.to_bytes().unwrap(),
                    whole,
                    "{kind:?}: read in pieces of {piece}"
                );
            }
            // A seed's graph, started from: only the kinds with a graph.
            let seed = rt.block_on(read_seed(&store, &key, spec)).unwrap();
            assert_eq!(seed.rows(), n);
            let (_, used) =
                VectorIndex::build_seeded(spec, dim, data.clone(), 2, &[(&seed, 0)]).unwrap();
            let graph = matches!(kind, Kind::Hnsw { .. } | Kind::HnswSq { .. });
            assert_eq!(used, usize::from(graph), "{kind:?}: seed used");
            if i == 0 {
                last = whole;
            }
        }
        // Files cut short: in the vectors, in the graph; with the reason.
        let spec = IndexSpec {
            kind: hnsw,
            metric: Metric::L2,
            auto: false,
        };
        for (cut, says) in [
            (50_000, "its header names 96000 bytes of vectors"),
            (last.len() - 10, "the graph is cut short"),
            (10, "not an index file: 10 bytes"),
        ] {
            let key = format!("index_files/cut{cut}/index");
            rt.block_on(store.put(&key, bytes::Bytes::from(last[..cut].to_vec())))
                .unwrap();
            let err = rt
                .block_on(read_in_pieces(&store, &key, spec, 0, 4000))
                .err()
                .unwrap();
            assert!(
                err.contains(says) && err.contains(&key),
                "cut at {cut}: {err}"
            );
            let err = rt.block_on(read_seed(&store, &key, spec)).err().unwrap();
            assert!(err.contains(says), "seed cut at {cut}: {err}");
        }
    }
}
