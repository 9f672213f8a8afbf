//! Index benchmark: `cargo bench --bench index` (options after `--`: `--rows N`,
//! `--dim N`, `--queries N`, `--m N`, `--efc N`, `--runs N`, `--threads N`,
//! `--kind HNSW|HNSW_SQ|IVF_FLAT|DISKANN`, `--nlist N`, `--degree N`, `--list N`; DISKANN's
//! `max_degree` and `search_list_size`, knob `search_list`; `--seed-rows N`, `--parts K`,
//! `--largest-only`). Builds over uniform random vectors in [0, 1) (fixed seed, the same
//! set every run), `--runs` times, and prints the build time (min / median / max), the
//! index's memory, and recall@10 against exact L2 search with single-thread queries per
//! second at several `ef` (or `nprobe`). Seeds (HNSW, HNSW_SQ), as an indexnode builds a
//! merged segment from its sources' graphs (`VectorIndex::build_seeded`): with
//! `--seed-rows N` an index of the first N rows is built once and each run starts from its
//! graph; with `--parts K` the rows are K consecutive sources, each built once, and each
//! run starts from all their graphs (from the first alone with `--largest-only`).

use std::time::Instant;

use milvus::index::flat;
use milvus::index::params::{IndexSpec, Kind, Metric, SearchParams};
use milvus::index::{Seed, VectorIndex};
use milvus::testkit::sample::random_vectors;
use milvus::testkit::stats::{arg, proc_status_mib};

fn text_arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn main() {
    let rows = arg("--rows", 100_000);
    let dim = arg("--dim", 128);
    let queries = arg("--queries", 1000);
    let runs = arg("--runs", 3);
    let threads = arg("--threads", 2);
    let k = 10;
    let kind = match text_arg("--kind", "HNSW").as_str() {
        "IVF_FLAT" => Kind::IvfFlat {
            nlist: arg("--nlist", 1024),
        },
        "HNSW_SQ" => Kind::HnswSq {
            m: arg("--m", 16),
            ef_construction: arg("--efc", 200),
        },
        "DISKANN" => Kind::DiskAnn {
            max_degree: arg("--degree", 56),
            search_list_size: arg("--list", 100),
        },
        _ => Kind::Hnsw {
            m: arg("--m", 16),
            ef_construction: arg("--efc", 200),
        },
    };
    let spec = IndexSpec {
        kind,
        metric: Metric::L2,
        auto: false,
    };
    let data = random_vectors(rows, dim, 42);
    let qs = random_vectors(queries, dim, 4242);
    println!("index: {kind:?} L2 over {rows} x {dim} uniform random, {queries} queries, top {k}, {threads} build threads");
    // Exact neighbours, on every core.
    let started = Instant::now();
    let truth: Vec<Vec<u32>> = std::thread::scope(|s| {
        let per = queries.div_ceil(threads);
        let handles: Vec<_> = qs
            .chunks(per * dim)
            .map(|part| {
                let data = &data;
                s.spawn(move || {
                    part.chunks_exact(dim)
                        .map(|q| {
                            flat::search(Metric::L2, data, dim, q, k, None)
                                .into_iter()
                                .map(|(r, _)| r)
                                .collect()
                        })
                        .collect::<Vec<Vec<u32>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    println!(
        "exact search for ground truth: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Seeds: `--seed-rows N` (the first N rows), or `--parts K` (K consecutive parts of
    // the rows; `--largest-only` uses the first alone, as a merge seeded from one source).
    let seed_rows = arg("--seed-rows", 0).min(rows);
    let parts = arg("--parts", 0).min(rows);
    let bounds: Vec<(usize, usize)> = if parts > 0 {
        let per = rows.div_ceil(parts);
        (0..parts)
            .map(|p| (p * per, ((p + 1) * per).min(rows)))
            .filter(|(a, b)| a < b)
            .collect()
    } else if seed_rows > 0 {
        vec![(0, seed_rows)]
    } else {
        Vec::new()
    };
    let largest_only = std::env::args().any(|a| a == "--largest-only");
    let started = Instant::now();
    let seeds: Vec<(Seed, usize)> = bounds
        .iter()
        .take(if largest_only { 1 } else { bounds.len() })
        .map(|&(a, b)| {
            let part = data[a * dim..b * dim].to_vec();
            let built = VectorIndex::build(spec, dim, part, threads).expect("seed build");
            // Read from its file, as an indexnode reads a seed.
            let file = built.to_bytes().expect("seed file");
            (Seed::from_bytes(spec, &file).expect("seed read"), a)
        })
        .collect();
    if !seeds.is_empty() {
        println!(
            "seeds: rows {:?} built in {:.2} s; each run starts from their graphs",
            &bounds[..seeds.len()],
            started.elapsed().as_secs_f64()
        );
    }
    let seed_refs: Vec<(&Seed, usize)> = seeds.iter().map(|(s, a)| (s, *a)).collect();
    let mut builds = Vec::new();
    let mut index = None;
    for _ in 0..runs {
        let started = Instant::now();
        let idx = if seed_refs.is_empty() {
            VectorIndex::build(spec, dim, data.clone(), threads).expect("build")
        } else {
            let (idx, used) =
                VectorIndex::build_seeded(spec, dim, data.clone(), threads, &seed_refs)
                    .expect("build");
            assert_eq!(used, seed_refs.len(), "a seed does not fit {kind:?}");
            idx
        };
        builds.push(started.elapsed().as_secs_f64());
        index = Some(idx);
    }
    let index = index.expect("at least one run");
    builds.sort_by(f64::total_cmp);
    println!(
        "build s over {runs} runs: min {:.2} / median {:.2} / max {:.2}; index memory {:.1} MiB",
        builds[0],
        builds[builds.len() / 2],
        builds[builds.len() - 1],
        index.memory_usage() as f64 / (1024.0 * 1024.0)
    );
    let hwm = proc_status_mib("self", "VmHWM");
    println!(
        "peak RSS of this process (vectors, queries, ground truth, one index at a time): {:.0} MiB",
        hwm
    );
    println!(
        "| {} | recall@10 | QPS (1 thread) |",
        match kind {
            Kind::IvfFlat { .. } => "nprobe",
            Kind::DiskAnn { .. } => "search_list",
            _ => "ef",
        }
    );
    println!("|---|---|---|");
    let knobs: Vec<usize> = match kind {
        Kind::IvfFlat { .. } => vec![1, 8, 16, 32, 64],
        _ => vec![16, 32, 64, 128, 256],
    };
    for knob in knobs {
        let p = match kind {
            Kind::Hnsw { .. } | Kind::HnswSq { .. } | Kind::DiskAnn { .. } => SearchParams {
                ef: Some(knob.max(k)),
                nprobe: None,
                ..Default::default()
            },
            _ => SearchParams {
                ef: None,
                nprobe: Some(knob),
                ..Default::default()
            },
        };
        let started = Instant::now();
        let mut hits = 0;
        for (q, want) in qs.chunks_exact(dim).zip(&truth) {
            let got = index.search(q, k, &p).expect("search");
            hits += got.iter().filter(|(r, _)| want.contains(r)).count();
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "| {knob} | {:.3} | {:.0} |",
            hits as f64 / (queries * k) as f64,
            queries as f64 / secs
        );
    }
}
