use std::collections::BTreeMap;

use super::params::{self, IndexSpec, Kind, Metric, SearchParams};
use super::{flat, Allowed, Seed, VectorIndex};
use crate::proto::schema::DataType;
use crate::testkit::sample::random_vectors;

/// `idx`'s graph, read from its file as a build reads a seed.
fn seed_of(spec: IndexSpec, idx: &VectorIndex) -> Seed {
    Seed::from_bytes(spec, &idx.to_bytes().unwrap()).unwrap()
}

/// `idx` written and read back, a FLAT index given `vectors` (what a querynode does with
/// the segment's column).
fn reread(spec: IndexSpec, idx: &VectorIndex, vectors: &[f32]) -> VectorIndex {
    let mut back = VectorIndex::from_bytes(spec, &idx.to_bytes().unwrap()).unwrap();
    if back.needs_vectors() {
        back.adopt_vectors(vectors.to_vec()).unwrap();
    }
    back
}

/// HNSW with `M` = `m` and `efConstruction` 100.
fn hnsw(m: usize, metric: Metric) -> IndexSpec {
    IndexSpec {
        kind: Kind::Hnsw {
            m,
            ef_construction: 100,
        },
        metric,
        auto: false,
    }
}

fn spec(pairs: &[(&str, &str)]) -> Result<IndexSpec, String> {
    let m: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    params::parse(&m, DataType::FloatVector)
}

#[test]
fn parameters_are_checked_as_milvus_checks_them() {
    let auto = spec(&[("index_type", "AUTOINDEX")]).unwrap();
    assert_eq!(auto.metric, Metric::Cosine);
    assert_eq!(
        auto.kind,
        Kind::Hnsw {
            m: 18,
            ef_construction: 240
        }
    );
    // No index_type is AUTOINDEX, with the metric given (Milvus 2.5).
    let none = spec(&[("metric_type", "L2")]).unwrap();
    assert!(none.auto && none.metric == Metric::L2, "{none:?}");
    assert_eq!(spec(&[]).unwrap(), auto);
    let e = spec(&[("M", "8")]).unwrap_err();
    assert!(e.contains("only metric type can be passed"), "{e}");
    // Index properties (AlterIndex) are no build parameters: AUTOINDEX keeps building.
    let with_mmap = spec(&[("index_type", "AUTOINDEX"), ("mmap.enabled", "True")]).unwrap();
    assert_eq!(with_mmap, auto);
    let e = spec(&[("index_type", "AUTOINDEX"), ("M", "8")]).unwrap_err();
    assert!(
        e.contains("only metric type can be passed when use AutoIndex"),
        "{e}"
    );
    let e = spec(&[
        ("index_type", "HNSW"),
        ("metric_type", "L2"),
        ("M", "4096"),
        ("efConstruction", "100"),
    ])
    .unwrap_err();
    assert!(
        e.contains("param 'M' (4096) should be in range [2, 2048]"),
        "{e}"
    );
    let e = spec(&[("index_type", "HNSW"), ("metric_type", "L2"), ("M", "16")]).unwrap_err();
    assert!(e.contains("efConstruction"), "{e}");
    let e = spec(&[("index_type", "DISKANN_X"), ("metric_type", "L2")]).unwrap_err();
    assert!(e.contains("invalid index type: DISKANN_X"), "{e}");
    let e = spec(&[("index_type", "FLAT"), ("metric_type", "HAMMING")]).unwrap_err();
    assert!(
        e.contains("float vector index does not support metric type: HAMMING"),
        "{e}"
    );
    let e = spec(&[("index_type", "FLAT"), ("metric_type", "EUCLID")]).unwrap_err();
    assert!(e.contains("metric type EUCLID not found"), "{e}");
    let e = spec(&[
        ("index_type", "IVF_FLAT"),
        ("metric_type", "IP"),
        ("nlist", "0"),
    ])
    .unwrap_err();
    assert!(e.contains("param 'nlist' (0)"), "{e}");
    // The JSON `params` pair of older clients is flattened.
    let pairs = vec![
        crate::testkit::sample::kv("index_type", "HNSW"),
        crate::testkit::sample::kv("metric_type", "IP"),
        crate::testkit::sample::kv("params", r#"{"M": 8, "efConstruction": 64}"#),
    ];
    let s = params::parse(&params::flatten(&pairs).unwrap(), DataType::FloatVector).unwrap();
    assert_eq!(
        s.kind,
        Kind::Hnsw {
            m: 8,
            ef_construction: 64
        }
    );
    // Search parameters.
    let hnsw = spec(&[
        ("index_type", "HNSW"),
        ("metric_type", "L2"),
        ("M", "16"),
        ("efConstruction", "64"),
    ])
    .unwrap();
    let ef: BTreeMap<String, String> = [("ef".to_string(), "5".to_string())].into();
    let e = SearchParams::parse(&ef, &hnsw, 10).unwrap_err();
    assert!(e.contains("ef(5) should be larger than k(10)"), "{e}");
}

#[test]
fn scalar_indexes_fit_their_field_types_as_milvus_checks_them() {
    use crate::proto::schema::DataType as T;
    let field = |data_type, element_type, primary| params::ScalarField {
        data_type,
        element_type,
        primary,
    };
    let of = |pairs: &[(&str, &str)], f| {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        params::scalar_index_type(&m, f)
    };
    let int = field(T::Int64, T::None, false);
    let text = field(T::VarChar, T::None, false);
    assert_eq!(of(&[], int).unwrap(), "INVERTED");
    assert_eq!(
        of(
            &[("index_type", "AUTOINDEX")],
            field(T::Bool, T::None, false)
        )
        .unwrap(),
        "BITMAP"
    );
    assert_eq!(of(&[("index_type", "STL_SORT")], int).unwrap(), "STL_SORT");
    assert_eq!(of(&[("index_type", "trie")], text).unwrap(), "Trie");
    for (ty, f, want) in [
        (
            "STL_SORT",
            text,
            "STL_SORT are only supported on numeric field",
        ),
        ("Trie", int, "TRIE are only supported on varchar field"),
        (
            "BITMAP",
            field(T::Int64, T::None, true),
            "create bitmap index on primary key not supported",
        ),
        (
            "BITMAP",
            field(T::Float, T::None, false),
            "bitmap index are only supported on bool, int, string and array field",
        ),
        (
            "BITMAP",
            field(T::Array, T::Double, false),
            "bitmap index are only supported on bool, int, string for array field",
        ),
        (
            "INVERTED",
            field(T::Json, T::None, false),
            "json index must specify cast type",
        ),
        ("HNSW", int, "invalid index type: HNSW"),
    ] {
        let e = of(&[("index_type", ty)], f).unwrap_err();
        assert!(e.contains(want), "{ty} on {f:?}: {e}");
    }
    let json = of(
        &[("index_type", "INVERTED"), ("json_cast_type", "double")],
        field(T::Json, T::None, false),
    );
    assert_eq!(json.unwrap(), "INVERTED");
}

fn truth(metric: Metric, data: &[f32], dim: usize, q: &[f32], k: usize) -> Vec<u32> {
    let mut d = data.to_vec();
    let mut q = q.to_vec();
    if metric == Metric::Cosine {
        flat::normalize(&mut d, dim);
        flat::normalize(&mut q, dim);
    }
    flat::search(metric, &d, dim, &q, k, None)
        .into_iter()
        .map(|(r, _)| r)
        .collect()
}

#[test]
fn every_kind_finds_neighbours_and_reads_back_identically() {
    let (n, dim, k) = (3000, 16, 10);
    let data = random_vectors(n, dim, 7);
    let queries = random_vectors(20, dim, 8);
    for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
        for kind in [
            Kind::Flat,
            Kind::IvfFlat { nlist: 16 },
            Kind::IvfSq8 { nlist: 16 },
            Kind::IvfPq {
                nlist: 16,
                m: 8,
                nbits: 8,
            },
            Kind::Scann {
                nlist: 16,
                sub_dim: 2,
                with_raw_data: true,
            },
            Kind::Hnsw {
                m: 16,
                ef_construction: 100,
            },
            Kind::DiskAnn {
                max_degree: 32,
                search_list_size: 64,
            },
        ] {
            let spec = IndexSpec {
                kind,
                metric,
                auto: false,
            };
            let idx = VectorIndex::build(spec, dim, data.clone(), 2).unwrap();
            let p = SearchParams {
                ef: Some(64),
                nprobe: Some(16),
                reorder_k: Some(50),
                ..SearchParams::default()
            };
            let back = reread(spec, &idx, &data);
            let mut hits = 0;
            for q in queries.chunks_exact(dim) {
                let got = idx.search(q, k, &p).unwrap();
                assert_eq!(got.len(), k);
                // Best first, by the metric's convention.
                for w in got.windows(2) {
                    if metric.higher_is_better() {
                        assert!(w[0].1 >= w[1].1, "{metric:?} {kind:?} {got:?}");
                    } else {
                        assert!(w[0].1 <= w[1].1, "{metric:?} {kind:?} {got:?}");
                    }
                }
                assert_eq!(back.search(q, k, &p).unwrap(), got, "{metric:?} {kind:?}");
                let want = truth(metric, &data, dim, q, k);
                hits += got.iter().filter(|(r, _)| want.contains(r)).count();
                if kind == Kind::Flat {
                    let rows: Vec<u32> = got.iter().map(|(r, _)| *r).collect();
                    assert_eq!(rows, want, "FLAT is exact");
                }
            }
            let recall = hits as f64 / (queries.len() / dim * k) as f64;
            // IVF_SQ8 and IVF_PQ rank by codes: approximate even when every list is probed
            // (SCANN rescores its best `reorder_k` from the raw vectors).
            // Normalized uniform vectors (COSINE) crowd into a narrow cone, where 4-bit
            // codes pick the 50 candidates loosely.
            let floor = match kind {
                Kind::IvfSq8 { .. } => 0.85,
                Kind::IvfPq { .. } => 0.75,
                Kind::Scann { .. } if metric == Metric::Cosine => 0.65,
                _ => 0.95,
            };
            assert!(recall >= floor, "{metric:?} {kind:?} recall {recall}");
            // The file in parts (how a build is written) is the file.
            let file = idx.to_bytes().unwrap();
            assert_eq!(
                idx.into_file().concat(),
                file,
                "{metric:?} {kind:?}: the file in parts"
            );
        }
    }
}

/// recall@k of `idx` over `queries` against exact search, and each answer's length.
fn recall_of(
    idx: &VectorIndex,
    metric: Metric,
    data: &[f32],
    dim: usize,
    queries: &[f32],
    k: usize,
    p: &SearchParams,
) -> f64 {
    let mut hits = 0;
    for q in queries.chunks_exact(dim) {
        let got = idx.search(q, k, p).unwrap();
        assert_eq!(got.len(), k, "{got:?}");
        let want = truth(metric, data, dim, q, k);
        hits += got.iter().filter(|(r, _)| want.contains(r)).count();
    }
    hits as f64 / (queries.len() / dim * k) as f64
}

#[test]
fn hnsw_sq_searches_its_quantized_graph_and_reads_back_identically() {
    let (n, dim, k) = (3000, 32, 10);
    // Centred on 0: the quantizer's minimum is about -1, so the inner product's terms
    // in the minimum (zero for data in [0, 1)) are exercised.
    let centred = |v: Vec<f32>| v.into_iter().map(|x| 2.0 * x - 1.0).collect::<Vec<f32>>();
    let data = centred(random_vectors(n, dim, 21));
    let queries = centred(random_vectors(30, dim, 22));
    for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
        let spec = IndexSpec {
            kind: Kind::HnswSq {
                m: 16,
                ef_construction: 100,
            },
            metric,
            auto: false,
        };
        let idx = VectorIndex::build(spec, dim, data.clone(), 2).unwrap();
        assert!(!idx.keeps_raw_vectors(), "HNSW_SQ keeps 8-bit codes only");
        let p = SearchParams {
            ef: Some(128),
            nprobe: None,
            ..Default::default()
        };
        let r = recall_of(&idx, metric, &data, dim, &queries, k, &p);
        assert!(r >= 0.85, "{metric:?} HNSW_SQ recall {r}");
        // Quantization loses a little: never better than exact, and a small ef is worse.
        let small = SearchParams {
            ef: Some(10),
            nprobe: None,
            ..Default::default()
        };
        let r_small = recall_of(&idx, metric, &data, dim, &queries, k, &small);
        assert!(r_small < r, "{metric:?}: ef 10 {r_small} vs ef 128 {r}");
        let back = reread(spec, &idx, &data);
        for q in queries.chunks_exact(dim) {
            assert_eq!(
                back.search(q, k, &p).unwrap(),
                idx.search(q, k, &p).unwrap()
            );
        }
    }
}

/// A merged segment's graph started from its sources' graphs (the rows a compaction
/// copied whole: the largest's graph taken as it is, the others' merged through their
/// join sets, the remaining rows inserted) searches as well as one built from scratch; a
/// seed of another definition or shape, or overlapping another, is not used.
#[test]
fn an_hnsw_graph_started_from_its_sources_graphs_finds_what_a_fresh_one_finds() {
    let (n, dim, k) = (4000, 32, 10);
    let data = random_vectors(n, dim, 31);
    let queries = random_vectors(40, dim, 32);
    // Sources at rows 0..1000, 1000..2800 (the largest) and 2800..3400; 3400.. in none.
    let sources = [(0, 1000), (1000, 1800), (2800, 600)];
    let rows = sources[1].1;
    let p = SearchParams {
        ef: Some(32),
        nprobe: None,
        ..Default::default()
    };
    let sq = IndexSpec {
        kind: Kind::HnswSq {
            m: 16,
            ef_construction: 100,
        },
        ..hnsw(16, Metric::L2)
    };
    for spec in [hnsw(16, Metric::L2), hnsw(16, Metric::Cosine), sq] {
        let (kind, metric) = (spec.kind, spec.metric);
        let built: Vec<(Seed, usize)> = sources
            .iter()
            .map(|&(at, rows)| {
                let part = data[at * dim..(at + rows) * dim].to_vec();
                (
                    seed_of(spec, &VectorIndex::build(spec, dim, part, 2).unwrap()),
                    at,
                )
            })
            .collect();
        let seeds: Vec<(&Seed, usize)> = built.iter().map(|(s, at)| (s, *at)).collect();
        let (seeded, used) = VectorIndex::build_seeded(spec, dim, data.clone(), 2, &seeds).unwrap();
        assert_eq!(used, 3, "{kind:?} {metric:?}: seeds not used");
        assert_eq!(seeded.rows(), n);
        let fresh = VectorIndex::build(spec, dim, data.clone(), 2).unwrap();
        let r_seeded = recall_of(&seeded, metric, &data, dim, &queries, k, &p);
        let r_fresh = recall_of(&fresh, metric, &data, dim, &queries, k, &p);
        assert!(
            r_seeded >= 0.9 && r_seeded >= r_fresh - 0.03,
            "{kind:?} {metric:?}: recall {r_seeded} started from a seed, {r_fresh} fresh"
        );
        // The seed's rows and the inserted ones find themselves. HNSW does not promise
        // it for every row (a row whose in-links were all pruned away is unreachable; a
        // fresh build of these vectors misses one now and then, with thread timing; a
        // seeded one up to 11 in one run of ten, most of them seed rows), so at most 1 %
        // may miss.
        let exact = SearchParams {
            ef: Some(200),
            nprobe: None,
            ..Default::default()
        };
        let missed: Vec<usize> = (0..n)
            .filter(|&row| {
                let q = &data[row * dim..(row + 1) * dim];
                seeded.search(q, 1, &exact).unwrap()[0].0 != row as u32
            })
            .collect();
        assert!(
            missed.len() <= n / 100,
            "{kind:?} {metric:?}: rows that do not find themselves: {missed:?}"
        );
    }
    // Seeds that do not fit: past the end, another M, another kind, overlapping another
    // (the larger is kept).
    let spec = hnsw(16, Metric::L2);
    let part = data[..rows * dim].to_vec();
    let source = seed_of(
        spec,
        &VectorIndex::build(spec, dim, part.clone(), 2).unwrap(),
    );
    let small = seed_of(
        spec,
        &VectorIndex::build(spec, dim, data[..500 * dim].to_vec(), 2).unwrap(),
    );
    let (_, used) =
        VectorIndex::build_seeded(spec, dim, data.clone(), 2, &[(&small, 1000), (&source, 0)])
            .unwrap();
    assert_eq!(used, 1, "overlapping seeds");
    let (_, used) =
        VectorIndex::build_seeded(spec, dim, data.clone(), 2, &[(&small, 1800), (&source, 0)])
            .unwrap();
    assert_eq!(used, 2, "adjacent seeds");
    let at = n - rows + 1;
    let (_, used) =
        VectorIndex::build_seeded(spec, dim, data.clone(), 2, &[(&source, at)]).unwrap();
    assert!(used == 0, "a seed past the last row");
    let other_m = hnsw(8, Metric::L2);
    let source = seed_of(
        other_m,
        &VectorIndex::build(other_m, dim, part.clone(), 2).unwrap(),
    );
    let (idx, used) =
        VectorIndex::build_seeded(spec, dim, data.clone(), 2, &[(&source, 0)]).unwrap();
    assert!(used == 0 && idx.rows() == n, "a seed of another M");
    let ivf = IndexSpec {
        kind: Kind::IvfFlat { nlist: 16 },
        ..spec
    };
    let source = seed_of(ivf, &VectorIndex::build(ivf, dim, part, 2).unwrap());
    let (_, used) = VectorIndex::build_seeded(spec, dim, data, 2, &[(&source, 0)]).unwrap();
    assert!(used == 0, "a seed without a graph");
}

/// DISKANN's Vamana graph: every node within `max_degree` links, every node reachable
/// from the medoid (the search can find any row), recall that rises with `search_list`,
/// and the same graph from 1 and 2 threads (batches, not thread timing, decide it).
#[test]
fn diskann_builds_a_bounded_connected_vamana_graph() {
    let (n, dim, k) = (4000, 24, 10);
    let data = random_vectors(n, dim, 31);
    let queries = random_vectors(40, dim, 32);
    let space = super::graph::FloatSpace {
        vectors: &data,
        dim,
        ip: false,
    };
    let g = super::graph::Graph::build_vamana(&space, 24, 48, 1.2, false, 2);
    let one = super::graph::Graph::build_vamana(&space, 24, 48, 1.2, false, 1);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    g.to_bytes(&mut a);
    one.to_bytes(&mut b);
    assert!(a == b, "the graph does not depend on the thread count");
    // Every row is found when it is the query itself (reachable, and its own nearest).
    let all = |_: u32| true;
    for row in (0..n as u32).step_by(97) {
        let q = space.row(row).to_vec();
        let found = g.search(&space, &|x| space.to(&q, x), 1, 64, &all);
        assert_eq!(found.first().map(|f| f.0), Some(row), "row {row} reachable");
    }
    let vamana = IndexSpec {
        kind: Kind::DiskAnn {
            max_degree: 24,
            search_list_size: 48,
        },
        metric: Metric::L2,
        auto: false,
    };
    let idx = VectorIndex::build(vamana, dim, data.clone(), 2).unwrap();
    let at = |l: usize| SearchParams {
        ef: Some(l),
        ..Default::default()
    };
    let low = recall_of(&idx, Metric::L2, &data, dim, &queries, k, &at(10));
    let high = recall_of(&idx, Metric::L2, &data, dim, &queries, k, &at(100));
    assert!(
        high >= 0.95 && high > low,
        "recall {low} at L 10, {high} at L 100"
    );
    assert!(spec(&[
        ("index_type", "DISKANN"),
        ("metric_type", "L2"),
        ("max_degree", "600")
    ])
    .unwrap_err()
    .contains("param 'max_degree' (600) should be in range [1, 512]"));
    let s = spec(&[("index_type", "DISKANN"), ("metric_type", "COSINE")]).unwrap();
    assert_eq!(
        s.kind,
        Kind::DiskAnn {
            max_degree: 56,
            search_list_size: 100
        }
    );
    let p = SearchParams::parse(
        &[("search_list".to_string(), "5".to_string())].into(),
        &s,
        10,
    );
    assert!(p
        .unwrap_err()
        .contains("search_list(5) should be larger than k(10)"));
}

#[test]
fn ivf_flat_probes_only_nprobe_lists() {
    let (n, dim, k) = (4000, 16, 10);
    let data = random_vectors(n, dim, 31);
    let queries = random_vectors(40, dim, 32);
    let spec = IndexSpec {
        kind: Kind::IvfFlat { nlist: 64 },
        metric: Metric::L2,
        auto: false,
    };
    let idx = VectorIndex::build(spec, dim, data.clone(), 2).unwrap();
    let probe = |nprobe| SearchParams {
        ef: None,
        nprobe: Some(nprobe),
        ..Default::default()
    };
    let all = recall_of(&idx, Metric::L2, &data, dim, &queries, k, &probe(64));
    assert_eq!(all, 1.0, "every list probed is an exact scan");
    let few = recall_of(&idx, Metric::L2, &data, dim, &queries, k, &probe(4));
    assert!((0.4..0.999).contains(&few), "4 of 64 lists: recall {few}");
    let one = recall_of(&idx, Metric::L2, &data, dim, &queries, k, &probe(1));
    assert!(one < few, "1 list {one} vs 4 lists {few}");
}

#[test]
fn scores_follow_milvus_conventions() {
    let data = vec![1.0, 0.0, 0.0, 2.0];
    let q = [1.0, 1.0];
    for (metric, want) in [
        (Metric::L2, vec![(0u32, 1.0f32), (1, 2.0)]),
        (Metric::Ip, vec![(1, 2.0), (0, 1.0)]),
        (
            Metric::Cosine,
            vec![
                (0, std::f32::consts::FRAC_1_SQRT_2),
                (1, std::f32::consts::FRAC_1_SQRT_2),
            ],
        ),
    ] {
        for kind in [
            Kind::Flat,
            Kind::Hnsw {
                m: 4,
                ef_construction: 8,
            },
        ] {
            let idx = VectorIndex::build(
                IndexSpec {
                    kind,
                    metric,
                    auto: false,
                },
                2,
                data.clone(),
                1,
            )
            .unwrap();
            let got = idx.search(&q, 2, &SearchParams::default()).unwrap();
            assert_eq!(got.len(), want.len(), "{metric:?} {kind:?}: {got:?}");
            for ((_, s), (_, w)) in got.iter().zip(&want) {
                assert!(
                    (s - w).abs() < 1e-5,
                    "{metric:?} {kind:?}: {got:?}, want {want:?}"
                );
            }
        }
    }
}

#[test]
fn a_flat_index_file_is_a_header_searched_over_the_segments_vectors() {
    let (n, dim) = (500, 16);
    let data = random_vectors(n, dim, 21);
    let queries = random_vectors(20, dim, 22);
    for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
        let spec = IndexSpec {
            kind: Kind::Flat,
            metric,
            auto: false,
        };
        let p = SearchParams::default();
        let built = VectorIndex::build(spec, dim, data.clone(), 1).unwrap();
        // What an indexnode writes: no vectors, whatever it was built from.
        let header = VectorIndex::flat_over_segment(spec, dim, n).unwrap();
        let file = header.to_bytes().unwrap();
        assert_eq!(file, built.to_bytes().unwrap());
        assert!(file.len() < 64, "{} bytes", file.len());
        let mut back = VectorIndex::from_bytes(spec, &file).unwrap();
        assert!(back.needs_vectors());
        assert_eq!(back.transforms_vectors(), metric == Metric::Cosine);
        // Not searchable before it has the vectors, and only the right count is taken.
        assert!(back.search(&queries[..dim], 5, &p).is_err());
        assert!(back.adopt_vectors(data[dim..].to_vec()).is_err());
        assert!(back.needs_vectors());
        back.adopt_vectors(data.clone()).unwrap();
        assert!(!back.needs_vectors());
        assert!(back.adopt_vectors(data.clone()).is_err(), "taken twice");
        for q in queries.chunks_exact(dim) {
            assert_eq!(
                back.search(q, 10, &p).unwrap(),
                built.search(q, 10, &p).unwrap()
            );
        }
        assert_eq!(back.keeps_raw_vectors(), metric != Metric::Cosine);
        // A file written before (kind 0, the vectors inside) still reads, vectors and all.
        let mut old = file[..10].to_vec();
        old[8] = 0;
        let mut stored = data.clone();
        if metric == Metric::Cosine {
            flat::normalize(&mut stored, dim);
        }
        old.extend_from_slice(&file[10..18]);
        old.extend(stored.iter().flat_map(|x| x.to_le_bytes()));
        let was = VectorIndex::from_bytes(spec, &old).unwrap();
        assert!(!was.needs_vectors());
        for q in queries.chunks_exact(dim) {
            assert_eq!(
                was.search(q, 10, &p).unwrap(),
                built.search(q, 10, &p).unwrap()
            );
        }
    }
    let hnsw = IndexSpec {
        kind: Kind::Hnsw {
            m: 8,
            ef_construction: 40,
        },
        metric: Metric::L2,
        auto: false,
    };
    assert!(VectorIndex::flat_over_segment(hnsw, dim, n).is_err());
}

#[test]
fn an_index_loaded_back_from_object_storage_finds_the_same_neighbours() {
    let (n, dim) = (2000, 24);
    let data = random_vectors(n, dim, 11);
    let spec = hnsw(16, Metric::L2);
    let idx = VectorIndex::build(spec, dim, data, 2).unwrap();
    let dir = crate::testkit::TempDir::new("index-store");
    let rt = crate::testkit::runtime();
    let store =
        crate::storage::Storage::local(&dir.0, "files", std::time::Duration::from_secs(5)).unwrap();
    let bytes = idx.to_bytes().unwrap();
    let back = rt.block_on(async {
        store
            .put("index_files/1/index", bytes::Bytes::from(bytes))
            .await
            .unwrap();
        store.get("index_files/1/index").await.unwrap()
    });
    let loaded = VectorIndex::from_bytes(spec, &back).unwrap();
    let p = SearchParams {
        ef: Some(64),
        nprobe: None,
        ..Default::default()
    };
    for q in random_vectors(50, dim, 12).chunks_exact(dim) {
        assert_eq!(
            loaded.search(q, 10, &p).unwrap(),
            idx.search(q, 10, &p).unwrap()
        );
    }
    // A file of another kind or metric is refused, not misread.
    let ivf = IndexSpec {
        kind: Kind::IvfFlat { nlist: 8 },
        ..spec
    };
    assert!(VectorIndex::from_bytes(ivf, &back).is_err());
    assert!(VectorIndex::from_bytes(spec, &back[..back.len() / 2]).is_err());
}

#[test]
fn the_benchmark_vectors_are_the_documented_stream() {
    // benches/workload/faiss_hnsw.py generates the same numbers in numpy; this pins them.
    let v = random_vectors(1, 4, 42);
    let want = [0.741_564_87, 0.159_910_38, 0.278_601_1, 0.344_190_66];
    for (a, b) in v.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{v:?}");
    }
}

/// Every row's score for `q` under `metric`, as the index reports them.
fn all_scores(metric: Metric, data: &[f32], dim: usize, q: &[f32]) -> Vec<(u32, f32)> {
    let n = data.len() / dim;
    let mut q = q.to_vec();
    if metric == Metric::Cosine {
        flat::normalize(&mut q, dim);
    }
    flat::search_raw(metric, data, dim, &q, n, None, None)
}

/// FLAT, IVF_FLAT and HNSW indexes of `data` under each of L2, IP and COSINE: what the
/// searches of every kind and metric are checked on.
fn float_indexes(data: &[f32], dim: usize) -> Vec<(Metric, Kind, VectorIndex)> {
    let mut out = Vec::new();
    for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
        for kind in [
            Kind::Flat,
            Kind::IvfFlat { nlist: 8 },
            Kind::Hnsw {
                m: 16,
                ef_construction: 100,
            },
        ] {
            let spec = IndexSpec {
                kind,
                metric,
                auto: false,
            };
            out.push((
                metric,
                kind,
                VectorIndex::build(spec, dim, data.to_vec(), 2).unwrap(),
            ));
        }
    }
    out
}

#[test]
fn range_search_returns_the_best_hits_within_the_bounds_for_every_kind_and_metric() {
    let (n, dim, k) = (3000, 16, 20);
    let data = random_vectors(n, dim, 31);
    let queries = random_vectors(10, dim, 32);
    // Milvus's order rule and messages.
    let e = params::Range::new(Metric::L2, 1.0, Some(2.0)).unwrap_err();
    assert!(
        e.starts_with("range_filter must be less than radius for L2/HAMMING/JACCARD, range_filter:2.000000, radius:1.000000"),
        "{e}"
    );
    let e = params::Range::new(Metric::Cosine, 0.9, Some(0.1)).unwrap_err();
    assert!(
        e.starts_with("range_filter must be greater than radius for IP/COSINE"),
        "{e}"
    );
    for (metric, kind, idx) in float_indexes(&data, dim) {
        let p = SearchParams {
            ef: Some(64),
            nprobe: Some(8),
            ..Default::default()
        };
        let (mut hits, mut wanted) = (0, 0);
        for q in queries.chunks_exact(dim) {
            // Bounds midway between the 10th/11th and the 400th/401st best scores.
            let ranked = all_scores(metric, &data, dim, q);
            let mid = |i: usize| (ranked[i].1 + ranked[i + 1].1) / 2.0;
            let (inner, outer) = (mid(9), mid(399));
            let range =
                params::Range::new(metric, f64::from(outer), Some(f64::from(inner))).unwrap();
            let got = idx.search_in(q, k, &p, None, Some(&range)).unwrap();
            assert_eq!(got.len(), k, "{metric:?} {kind:?}");
            assert!(
                got.iter().all(|(_, s)| range.contains(*s)),
                "{metric:?} {kind:?}: a hit out of range {got:?} {range:?}"
            );
            let want: Vec<u32> = ranked[10..10 + k].iter().map(|(r, _)| *r).collect();
            hits += got.iter().filter(|(r, _)| want.contains(r)).count();
            wanted += k;
            // A radius alone, with room for every row within it: exactly those rows
            // on FLAT, a subset of them otherwise.
            let radius_only = params::Range::new(metric, f64::from(mid(49)), None).unwrap();
            let got = idx
                .search_in(
                    q,
                    200,
                    &SearchParams {
                        ef: Some(200),
                        nprobe: Some(8),
                        ..Default::default()
                    },
                    None,
                    Some(&radius_only),
                )
                .unwrap();
            assert!(got.iter().all(|(_, s)| radius_only.contains(*s)));
            if kind == Kind::Flat {
                assert_eq!(got.len(), 50, "{metric:?}: {got:?}");
            }
            // A search iterator's page: only scores strictly worse than the last
            // one of the page before, the next best `k` of them.
            // (The bound is the index's own 10th score: its floats may differ in the
            // last bit from a score computed another way.)
            let first = idx.search_in(q, 10 + k, &p, None, None).unwrap();
            let page = params::Range::unbounded(metric).after(first[9].1);
            let got = idx.search_in(q, k, &p, None, Some(&page)).unwrap();
            assert!(got.iter().all(|(_, s)| page.contains(*s)));
            if kind == Kind::Flat {
                assert_eq!(
                    got,
                    first[10..].to_vec(),
                    "{metric:?}: the page after the 10th"
                );
            }
        }
        let recall = hits as f64 / wanted as f64;
        let floor = if kind == Kind::Flat { 1.0 } else { 0.9 };
        assert!(recall >= floor, "{metric:?} {kind:?} range recall {recall}");
    }
}

/// A filtered search given a list of rows answers exactly as one given a test of the same
/// rows, for every kind and metric, with few rows (scored alone) and many (the index's own
/// search through a mask), with and without a range; rows past the index are ignored.
#[test]
fn a_list_of_rows_filters_a_search_as_a_test_of_those_rows() {
    let (n, dim, k) = (2000, 16, 10);
    let data = random_vectors(n, dim, 41);
    let queries = random_vectors(5, dim, 42);
    let mut checked = 0;
    for (metric, kind, idx) in float_indexes(&data, dim) {
        let p = SearchParams {
            ef: Some(64),
            nprobe: Some(8),
            ..Default::default()
        };
        // 1 in 97 rows (under 1/20: scored alone) and 1 in 3 (searched).
        for step in [97, 3] {
            let rows: Vec<u32> = (0..n as u32).filter(|r| r % step == 5).collect();
            let mut listed = rows.clone();
            listed.push(n as u32 + 7);
            let test = |r: u32| r % step == 5 && (r as usize) < n;
            for q in queries.chunks_exact(dim) {
                let ranked = all_scores(metric, &data, dim, q);
                let radius = (ranked[n / 2].1 + ranked[n / 2 + 1].1) / 2.0;
                let range = params::Range::new(metric, f64::from(radius), None).unwrap();
                for range in [None, Some(&range)] {
                    let want = idx
                        .search_in(q, k, &p, Some(Allowed::Accept(&test, rows.len())), range)
                        .unwrap();
                    let got = idx
                        .search_in(q, k, &p, Some(Allowed::Rows(&listed)), range)
                        .unwrap();
                    assert_eq!(got, want, "{metric:?} {kind:?} 1 in {step} {range:?}");
                    assert!(got.iter().all(|(r, _)| test(*r)), "{metric:?} {kind:?}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 3 * 3 * 2 * 5 * 2);
}

/// A FLAT index large enough to be scanned in parts answers exactly as one sequential
/// scan: the same rows and scores, ties (duplicate vectors) resolved to the earlier row,
/// with and without a filter and a range.
#[test]
fn a_large_flat_scan_in_parts_answers_as_one_scan() {
    let dim = 64;
    let n = (super::PARALLEL_SCAN_FLOATS / dim) + 1000;
    let mut data = random_vectors(n, dim, 11);
    // Every 1000th row repeats row 0: equal scores across the parts.
    for r in (1000..n).step_by(1000) {
        let (head, tail) = data.split_at_mut(r * dim);
        tail[..dim].copy_from_slice(&head[..dim]);
    }
    let spec = IndexSpec {
        kind: Kind::Flat,
        metric: Metric::L2,
        auto: false,
    };
    let idx = VectorIndex::build(spec, dim, data.clone(), 1).unwrap();
    let p = SearchParams::default();
    let odd = |r: u32| r % 2 == 1;
    for (qi, q) in [data[..dim].to_vec(), random_vectors(1, dim, 12)]
        .iter()
        .enumerate()
    {
        let want = flat::search_raw(Metric::L2, &data, dim, q, 20, None, None);
        assert_eq!(
            idx.search_in(q, 20, &p, None, None).unwrap(),
            want,
            "query {qi}"
        );
        let want = flat::search_raw(Metric::L2, &data, dim, q, 20, Some(&odd), None);
        let got = idx
            .search_in(q, 20, &p, Some(Allowed::Accept(&odd, n / 2)), None)
            .unwrap();
        assert_eq!(got, want, "query {qi}, odd rows");
        // Even rows (row 0 and its repeats among them) as a list, scored alone in one
        // pass, against the same rows tested in the parallel scan: the same answer,
        // ties included.
        let even = |r: u32| r.is_multiple_of(2);
        let even_rows: Vec<u32> = (0..n as u32).filter(|r| even(*r)).collect();
        let want = idx
            .search_in(
                q,
                20,
                &p,
                Some(Allowed::Accept(&even, even_rows.len())),
                None,
            )
            .unwrap();
        let got = idx
            .search_in(q, 20, &p, Some(Allowed::Rows(&even_rows)), None)
            .unwrap();
        assert_eq!(got, want, "query {qi}, even rows listed");
    }
}

/// Random binary vectors of `bits` as words (schema::vectors packing).
fn random_bits(n: usize, bits: usize, seed: u64) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let bytes: Vec<u8> = (0..n * bits / 8)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect();
    crate::schema::vectors::Encoding::Binary.decode(&bytes, bits)
}

#[test]
fn binary_indexes_score_hamming_and_jaccard_exactly_and_survive_their_file() {
    let bits = 72; // not a whole number of words: padding must add nothing
    let words = crate::schema::vectors::Encoding::Binary.words(bits);
    let (n, nq) = (1500, 10);
    let base = random_bits(n, bits, 3);
    let queries = random_bits(nq, bits, 4);
    for (ty, metric, m) in [
        ("BIN_FLAT", "HAMMING", Metric::Hamming),
        ("BIN_FLAT", "JACCARD", Metric::Jaccard),
        ("BIN_IVF_FLAT", "HAMMING", Metric::Hamming),
        ("BIN_IVF_FLAT", "JACCARD", Metric::Jaccard),
    ] {
        let mut p: BTreeMap<String, String> = [("index_type", ty), ("metric_type", metric)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        p.insert("nlist".into(), "8".into());
        let s = params::parse(&p, DataType::BinaryVector).unwrap();
        assert_eq!(s.metric, m);
        let built = VectorIndex::build(s, words, base.clone(), 2).unwrap();
        let index = reread(s, &built, &base);
        let all = SearchParams {
            ef: None,
            nprobe: Some(8),
            ..Default::default()
        };
        let one = SearchParams {
            ef: None,
            nprobe: Some(1),
            ..Default::default()
        };
        let mut found = 0;
        for q in queries.chunks(words) {
            // Every list probed: the exact answer, by distance.
            let want = flat::search(m, &base, words, q, 10, None);
            let got = index.search(q, 10, &all).unwrap();
            let scores = |v: &[(u32, f32)]| v.iter().map(|(_, s)| *s).collect::<Vec<_>>();
            assert_eq!(scores(&got), scores(&want), "{ty} {metric}");
            for (r, s) in &got {
                let v = &base[*r as usize * words..(*r as usize + 1) * words];
                assert_eq!(*s, flat::score(m, q, v));
            }
            let near: std::collections::HashSet<u32> = want.iter().map(|(r, _)| *r).collect();
            found += index
                .search(q, 10, &one)
                .unwrap()
                .iter()
                .filter(|(r, _)| near.contains(r))
                .count();
        }
        if ty == "BIN_FLAT" {
            assert_eq!(found, nq * 10);
        } else {
            // One list of eight: some of the nearest, not all (the lists are real).
            assert!(found > 0 && found < nq * 10, "{ty} {metric}: {found}");
        }
    }
    // A Hamming distance counts bits; a query scores 0 against itself.
    let index = VectorIndex::build(
        params::parse(
            &[("index_type", "BIN_FLAT"), ("metric_type", "HAMMING")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            DataType::BinaryVector,
        )
        .unwrap(),
        words,
        base.clone(),
        1,
    )
    .unwrap();
    let got = index.search(&base[5 * words..6 * words], 1, &SearchParams::default());
    assert_eq!(got.unwrap(), vec![(5, 0.0)]);
}

#[test]
fn vector_types_take_only_their_index_types_and_metrics() {
    let parse = |pairs: &[(&str, &str)], t: DataType| {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        params::parse(&m, t)
    };
    let auto = parse(&[], DataType::BinaryVector).unwrap();
    assert_eq!(auto.metric, Metric::Hamming);
    assert_eq!(
        auto.kind,
        Kind::IvfFlat {
            nlist: params::AUTO_BINARY_NLIST
        }
    );
    let auto = parse(&[("metric_type", "JACCARD")], DataType::BinaryVector).unwrap();
    assert_eq!(auto.metric, Metric::Jaccard);
    for t in [DataType::Float16Vector, DataType::BFloat16Vector] {
        let s = parse(&[], t).unwrap();
        assert_eq!(s.metric, Metric::Cosine);
        let s = parse(
            &[
                ("index_type", "HNSW"),
                ("metric_type", "L2"),
                ("M", "8"),
                ("efConstruction", "64"),
            ],
            t,
        )
        .unwrap();
        assert_eq!(s.metric, Metric::L2);
    }
    let err = |pairs: &[(&str, &str)], t: DataType| parse(pairs, t).unwrap_err();
    assert!(err(
        &[("index_type", "BIN_IVF_FLAT"), ("metric_type", "L2")],
        DataType::BinaryVector
    )
    .contains("binary vector index does not support metric type: L2"));
    assert!(err(
        &[("index_type", "HNSW"), ("metric_type", "HAMMING")],
        DataType::BinaryVector
    )
    .contains("data type BinaryVector can't build with this index HNSW"));
    assert!(err(
        &[("index_type", "FLAT"), ("metric_type", "JACCARD")],
        DataType::Float16Vector
    )
    .contains("float vector index does not support metric type: JACCARD"));
    assert!(err(
        &[("index_type", "BIN_FLAT"), ("metric_type", "L2")],
        DataType::FloatVector
    )
    .contains("data type FloatVector can't build with this index BIN_FLAT"));
    assert!(err(&[("index_type", "BIN_FLAT")], DataType::BinaryVector)
        .contains("metric type not set for vector index"));
}

#[test]
fn structure_metrics_return_only_matching_rows_scored_zero() {
    let bits = 64;
    let words = crate::schema::vectors::Encoding::Binary.words(bits);
    // Sparse random rows (about 1 bit in 8 set) and queries made of a few of a row's bits.
    let dense = random_bits(2000, bits, 9);
    let mask = random_bits(2000, bits, 10);
    let base: Vec<f32> = dense
        .iter()
        .zip(&mask)
        .map(|(a, b)| f32::from_bits(a.to_bits() & b.to_bits() & 0x1111_1111))
        .collect();
    for (metric, m) in [
        ("SUBSTRUCTURE", Metric::Substructure),
        ("SUPERSTRUCTURE", Metric::Superstructure),
    ] {
        let p: BTreeMap<String, String> = [("index_type", "BIN_FLAT"), ("metric_type", metric)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let s = params::parse(&p, DataType::BinaryVector).unwrap();
        let index = VectorIndex::build(s, words, base.clone(), 1).unwrap();
        for row in [3usize, 50, 700] {
            let q = &base[row * words..(row + 1) * words];
            let matches: Vec<u32> = (0..2000u32)
                .filter(|r| {
                    let v = &base[*r as usize * words..(*r as usize + 1) * words];
                    q.iter().zip(v).all(|(a, b)| {
                        let (a, b) = (a.to_bits(), b.to_bits());
                        if m == Metric::Substructure {
                            a & b == a
                        } else {
                            a & b == b
                        }
                    })
                })
                .collect();
            let got = index.search(q, 50, &SearchParams::default()).unwrap();
            assert_eq!(got.len(), matches.len().min(50), "{metric} row {row}");
            assert!(got.iter().all(|(r, s)| *s == 0.0 && matches.contains(r)));
            // The row itself matches (kept when no more than 50 do: ties keep earlier rows).
            assert!(matches.contains(&(row as u32)));
            if matches.len() <= 50 {
                assert!(got.iter().any(|(r, _)| *r as usize == row));
            }
        }
        // BIN_IVF_FLAT and AUTOINDEX refuse them (knowhere's words).
        let mut p = p.clone();
        p.insert("index_type".into(), "BIN_IVF_FLAT".into());
        assert!(params::parse(&p, DataType::BinaryVector)
            .unwrap_err()
            .contains("not found or not supported, supported: [HAMMING JACCARD]"));
    }
}

fn sparse_spec(pairs: &[(&str, &str)]) -> Result<IndexSpec, String> {
    let m: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    params::parse(&m, DataType::SparseFloatVector)
}

/// Random sparse rows: up to 12 of 300 dimensions each (some rows empty).
fn random_sparse(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut x = seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|_| {
            let mut dims: Vec<u32> = (0..next() % 13).map(|_| (next() % 300) as u32).collect();
            dims.sort_unstable();
            dims.dedup();
            let pairs: Vec<(u32, f32)> = dims
                .into_iter()
                .map(|d| (d, (next() % 1000) as f32 / 100.0 + 0.01))
                .collect();
            super::sparse::encode_pairs(&pairs)
        })
        .collect()
}

#[test]
fn sparse_index_parameters_are_checked_as_milvus_checks_them() {
    let auto = sparse_spec(&[]).unwrap();
    assert!(auto.auto && auto.metric == Metric::Ip, "{auto:?}");
    let bm25 = sparse_spec(&[
        ("index_type", "SPARSE_WAND"),
        ("metric_type", "BM25"),
        ("bm25_k1", "1.5"),
        ("bm25_b", "0.5"),
    ])
    .unwrap();
    assert_eq!(
        bm25.kind,
        Kind::Sparse {
            wand: true,
            k1: params::Ratio(1.5),
            b: params::Ratio(0.5)
        }
    );
    let refused = |pairs: &[(&str, &str)], want: &str| {
        let e = sparse_spec(pairs).unwrap_err();
        assert!(e.contains(want), "{pairs:?}: {e}");
    };
    refused(
        &[("index_type", "HNSW"), ("metric_type", "IP")],
        "data type SparseFloatVector can't build with this index HNSW",
    );
    refused(
        &[
            ("index_type", "SPARSE_INVERTED_INDEX"),
            ("metric_type", "L2"),
        ],
        "only IP&BM25 is the supported metric type for sparse index",
    );
    refused(
        &[("index_type", "SPARSE_INVERTED_INDEX")],
        "metric type not set for vector index",
    );
    refused(
        &[
            ("index_type", "SPARSE_INVERTED_INDEX"),
            ("metric_type", "IP"),
            ("drop_ratio_build", "1"),
        ],
        "Out of range in json: param 'drop_ratio_build' (1) should be in range [0.000000, 1.000000)",
    );
    refused(
        &[
            ("metric_type", "BM25"),
            ("index_type", "SPARSE_WAND"),
            ("bm25_k1", "3.5"),
        ],
        "param 'bm25_k1' (3.5) should be in range [0.000000, 3.000000]",
    );
    refused(
        &[
            ("metric_type", "IP"),
            ("index_type", "SPARSE_WAND"),
            ("inverted_index_algo", "FAST"),
        ],
        "sparse inverted index algo FAST not found or not supported",
    );
    let sp = SearchParams::parse(
        &[("drop_ratio_search".to_string(), "1.2".to_string())]
            .into_iter()
            .collect(),
        &auto,
        10,
    );
    assert!(sp.unwrap_err().contains("drop_ratio_search"));
    let sp = SearchParams::parse(
        &[("dim_max_score_ratio".to_string(), "1.4".to_string())]
            .into_iter()
            .collect(),
        &auto,
        10,
    );
    assert!(sp
        .unwrap_err()
        .contains("param 'dim_max_score_ratio' (1.4) should be in range [0.500000, 1.300000]"));
    for edge in ["0.5", "1.3"] {
        let ok = SearchParams::parse(
            &[("dim_max_score_ratio".to_string(), edge.to_string())]
                .into_iter()
                .collect(),
            &auto,
            10,
        );
        assert!(ok.is_ok(), "{edge}: {ok:?}");
    }
    // BM25 is a metric of sparse fields only.
    let e = spec(&[
        ("index_type", "HNSW"),
        ("metric_type", "BM25"),
        ("M", "8"),
        ("efConstruction", "64"),
    ]);
    assert!(e
        .unwrap_err()
        .contains("float vector index does not support metric type: BM25"));
}

#[test]
fn sparse_rows_are_checked_with_milvus_s_messages() {
    use super::sparse::{encode_pairs, validate_row};
    let ok = validate_row(&encode_pairs(&[(1, 0.5), (7, 0.0)])).unwrap();
    assert_eq!(ok.dims, vec![1, 7]);
    assert!(
        validate_row(&[]).unwrap().dims.is_empty(),
        "an empty row is a row"
    );
    let cases: [(Vec<u8>, &str); 5] = [
        (vec![0; 7], "invalid data length in sparse float vector: 7"),
        (
            encode_pairs(&[(u32::MAX, 1.0)]),
            "invalid index in sparse float vector: must be less than 2^32-1",
        ),
        (
            encode_pairs(&[(3, 1.0), (3, 2.0)]),
            "unsorted or same indices in sparse float vector",
        ),
        (
            encode_pairs(&[(1, f32::NAN)]),
            "is not a number or infinity",
        ),
        (
            encode_pairs(&[(1, -1.0)]),
            "negative value in sparse float vector",
        ),
    ];
    for (row, want) in cases {
        let e = validate_row(&row).unwrap_err();
        assert!(e.contains(want), "{e}");
    }
}

#[test]
fn a_sparse_index_answers_as_the_exact_scan_and_round_trips() {
    use super::sparse::{prune_query, search_rows, validate_row, Scoring, SparseRows};
    let data = random_sparse(2000, 7);
    let rows = SparseRows::from_contents(&data);
    for (metric, scoring) in [
        ("IP", Scoring::Ip),
        (
            "BM25",
            Scoring::Bm25 {
                k1: 1.2,
                b: 0.75,
                avgdl: 30.0,
            },
        ),
    ] {
        let spec = sparse_spec(&[
            ("index_type", "SPARSE_INVERTED_INDEX"),
            ("metric_type", metric),
        ])
        .unwrap();
        let built = VectorIndex::build_sparse(spec, &rows).unwrap();
        let idx = VectorIndex::from_bytes(spec, &built.to_bytes().unwrap()).unwrap();
        assert_eq!(idx.rows(), 2000);
        let odd = |r: u32| r % 2 == 1;
        for (qi, q) in random_sparse(40, 99).iter().enumerate() {
            let q = validate_row(q).unwrap();
            let p = SearchParams::default();
            let accept = (qi % 2 == 0).then_some(&odd as &flat::Accept<'_>);
            let got = idx
                .search_sparse(&q, scoring, 10, &p, accept, None)
                .unwrap();
            let want = search_rows(&rows, &prune_query(&q, 0.0), scoring, 10, accept, None);
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g.1 - w.1).abs() <= 1e-4 * w.1.abs().max(1.0),
                    "{g:?} {w:?}"
                );
                assert!(g.1 != 0.0 && accept.is_none_or(|a| a(g.0)));
            }
            // Only rows sharing a dimension with the query score.
            for (r, _) in &got {
                let (dims, _) = rows.row(*r as usize);
                assert!(dims.iter().any(|d| q.dims.contains(d)));
            }
        }
    }
    // BM25 by hand: one term, tf 2, row length 4, avgdl 2: 3 * 2 * 2.2 / (2 + 1.2 * (0.25 + 1.5)).
    let one = SparseRows::from_contents(&[super::sparse::encode_pairs(&[(5, 2.0), (6, 2.0)])]);
    let s = search_rows(
        &one,
        &[(5, 3.0)],
        Scoring::Bm25 {
            k1: 1.2,
            b: 0.75,
            avgdl: 2.0,
        },
        1,
        None,
        None,
    );
    let want = 3.0 * 2.0 * 2.2 / (2.0 + 1.2 * (0.25 + 0.75 * 2.0));
    assert!((s[0].1 - want).abs() < 1e-5, "{s:?} vs {want}");
}

#[test]
fn drop_ratio_search_leaves_out_the_query_s_smallest_values() {
    use super::sparse::{prune_query, SparseVec};
    let q = SparseVec {
        dims: vec![1, 2, 3, 4, 5],
        values: vec![0.5, 0.1, 0.9, 0.3, 0.7],
    };
    assert_eq!(prune_query(&q, 0.0).len(), 5);
    // floor(0.4 * 5) = 2: the third smallest (0.5) is the threshold.
    assert_eq!(prune_query(&q, 0.4), vec![(1, 0.5), (3, 0.9), (5, 0.7)]);
}

#[test]
fn an_inclusive_bound_takes_the_tied_score_and_an_exclusive_one_does_not() {
    for metric in [Metric::L2, Metric::Ip, Metric::Bm25] {
        let r = params::Range::unbounded(metric);
        let worse = if metric.higher_is_better() { 1.0 } else { 3.0 };
        assert!(r.after(2.0).contains(worse) && !r.after(2.0).contains(2.0));
        assert!(r.at_or_after(2.0).contains(2.0) && r.at_or_after(2.0).contains(worse));
        let better = if metric.higher_is_better() { 3.0 } else { 1.0 };
        assert!(!r.at_or_after(2.0).contains(better));
    }
}

/// X1: a scalar index lists the rows with a comparable value in value order (nulls and
/// NaN left out, equal values in row order), survives its file, and a file that does not
/// fit a column (another column, a damaged file) is found out.
#[test]
fn scalar_indexes_sort_comparable_rows_and_check_their_files() {
    use super::scalar::ScalarIndex;
    use crate::proto::schema::{
        field_data, scalar_field::Data as D, DoubleArray, FieldData, LongArray, ScalarField,
        StringArray,
    };
    let col = |data: D, valid: Vec<bool>| FieldData {
        field_name: "f".into(),
        valid_data: valid,
        field: Some(field_data::Field::Scalars(ScalarField { data: Some(data) })),
        ..Default::default()
    };
    let longs = col(
        D::LongData(LongArray {
            data: vec![5, -2, 5, 9, 0, -2],
        }),
        vec![true, true, true, true, false, true],
    );
    let ix = ScalarIndex::build(&longs).unwrap();
    assert_eq!(ix.order(), &[1, 5, 0, 2, 3]);
    assert_eq!(ix.rows(), 6);
    assert!(ix.fits(&longs));
    let doubles = col(
        D::DoubleData(DoubleArray {
            data: vec![1.5, f64::NAN, -0.0, 0.0, -3.0],
        }),
        vec![],
    );
    let dx = ScalarIndex::build(&doubles).unwrap();
    assert_eq!(dx.order(), &[4, 2, 3, 0]);
    assert!(dx.fits(&doubles));
    let strings = col(
        D::StringData(StringArray {
            data: ["b", "ab", "", "abc", "b"].map(String::from).to_vec(),
        }),
        vec![],
    );
    let sx = ScalarIndex::build(&strings).unwrap();
    assert_eq!(sx.order(), &[2, 1, 3, 0, 4]);

    // The file round-trips; damaged files are refused.
    let bytes = ix.to_bytes();
    assert_eq!(ScalarIndex::from_bytes(&bytes).unwrap(), ix);
    assert!(ScalarIndex::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    let mut twice = bytes.clone();
    let n = twice.len();
    twice[n - 4..].copy_from_slice(&1u32.to_le_bytes());
    assert!(
        ScalarIndex::from_bytes(&twice).is_err(),
        "row 1 named twice"
    );
    let mut past = bytes.clone();
    past[n - 4..].copy_from_slice(&6u32.to_le_bytes());
    assert!(ScalarIndex::from_bytes(&past).is_err(), "row 6 of 6");
    assert!(ScalarIndex::from_bytes(b"MVIX\x01\x00\x00\x00").is_err());

    // An index of one column does not fit another.
    assert!(!ix.fits(&strings));
    assert!(!sx.fits(&longs));
    let mut moved = longs.clone();
    moved.valid_data[4] = true;
    assert!(!ix.fits(&moved), "a row with a value is missing");
    let reordered = col(
        D::LongData(LongArray {
            data: vec![6, -2, 7, 9, 0, -2],
        }),
        vec![true, true, true, true, false, true],
    );
    assert!(ix.fits(&reordered), "same order, other values");
    let unsorted = col(
        D::LongData(LongArray {
            data: vec![5, -2, 6, 1, 0, -2],
        }),
        vec![true, true, true, true, false, true],
    );
    assert!(!ix.fits(&unsorted));
    // Vectors have no scalar index.
    assert!(ScalarIndex::build(&FieldData::default()).is_err());
}

/// X2: a JSON path index lists the rows whose value at the path is of its cast's kind,
/// in value order (integers and floats as real numbers), and its file says so; one
/// holding an integer past 2^53, or read against other documents, does not fit.
#[test]
fn json_path_indexes_list_rows_of_their_cast_in_value_order() {
    use super::scalar::{pointer_keys, JsonCast, ScalarIndex};
    use crate::proto::schema::{
        field_data, scalar_field::Data as D, FieldData, JsonArray, ScalarField,
    };
    let docs = [
        r#"{"a": {"b": 3}}"#,
        r#"{"a": {"b": 2.5}}"#,
        r#"{"a": {"b": "3"}}"#,
        r#"{"a": {"b": true}}"#,
        r#"{"a": [1]}"#,
        r#"{"a": {"b": 3.0}}"#,
        r#"{"a": {"b": -1}}"#,
        "not json",
        r#"{"a": {"b": 3}}"#,
        r#"{"a": {"b": false}}"#,
    ];
    let col = |docs: &[&str], valid: Vec<bool>| FieldData {
        field_name: "j".into(),
        valid_data: valid,
        field: Some(field_data::Field::Scalars(ScalarField {
            data: Some(D::JsonData(JsonArray {
                data: docs.iter().map(|d| d.as_bytes().to_vec()).collect(),
            })),
        })),
        ..Default::default()
    };
    let parsed = |docs: &[&str]| -> Vec<serde_json::Value> {
        docs.iter()
            .map(|d| serde_json::from_str(d).unwrap_or(serde_json::Value::Null))
            .collect()
    };
    let keys = pointer_keys("/a/b");
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(pointer_keys("/x~1y/~0z"), ["x/y", "~z"]);
    assert!(pointer_keys("").is_empty());
    let mut valid = vec![true; docs.len()];
    valid[8] = false;
    let c = col(&docs, valid.clone());
    let all = parsed(&docs);
    let ok = |r: usize| valid[r];

    let num = ScalarIndex::build_json(&c, &keys, JsonCast::Double).unwrap();
    // -1 < 2.5 < 3.0 = 3 (equal numbers: floats before integers; row 8 is null).
    assert_eq!(num.order(), &[6, 1, 5, 0]);
    assert_eq!(num.cast(), Some(JsonCast::Double));
    assert!(num.fits_json(&all, ok, &keys));
    assert!(!num.fits(&c), "a JSON index is no flat column's");
    let text = ScalarIndex::build_json(&c, &keys, JsonCast::Varchar).unwrap();
    assert_eq!(text.order(), &[2]);
    let bools = ScalarIndex::build_json(&c, &keys, JsonCast::Bool).unwrap();
    assert_eq!(bools.order(), &[9, 3]);
    assert!(bools.fits_json(&all, ok, &keys));
    assert!(
        !bools.fits_json(&all, ok, &pointer_keys("/a")),
        "another path"
    );
    assert!(
        bools.fits_json(&all, |_| true, &keys),
        "row 8 holds no boolean"
    );

    // The file keeps the cast.
    let bytes = num.to_bytes();
    assert_eq!(ScalarIndex::from_bytes(&bytes).unwrap(), num);
    let mut bad = bytes.clone();
    bad[9] = 9;
    assert!(ScalarIndex::from_bytes(&bad).is_err(), "unknown cast");
    assert!(ScalarIndex::from_bytes(&bytes[..bytes.len() - 2]).is_err());

    // Checked against the documents: a row it leaves out, or lists wrongly, is found.
    assert!(
        !num.fits_json(&all, |_| true, &keys),
        "row 8 now has a number"
    );
    let mut changed = all.clone();
    changed[1] = serde_json::json!({"a": {"b": 9}});
    assert!(!num.fits_json(&changed, ok, &keys), "out of order");
    assert!(!num.fits_json(&all[..9], ok, &keys), "fewer rows");
    let big = [r#"{"a": {"b": 1152921504606846977}}"#, r#"{"a": {"b": 1}}"#];
    let bx = ScalarIndex::build_json(&col(&big, vec![]), &keys, JsonCast::Double).unwrap();
    assert_eq!(bx.order(), &[1, 0]);
    assert!(
        !bx.fits_json(&parsed(&big), |_| true, &keys),
        "an integer past 2^53 is not compared as a real number"
    );
    assert!(ScalarIndex::build_json(&FieldData::default(), &keys, JsonCast::Bool).is_err());
}
