"""faiss's HNSW on exactly the vectors `cargo bench --bench index` uses (the same
splitmix64 stream, seeds 42 for the data and 4242 for the queries), for a same-seed
recall and build-time comparison:

    python faiss_hnsw.py [--rows N] [--dim D] [--queries Q] [--m M] [--efc E] [--threads T]
"""
import argparse
import json
import time

import faiss
import numpy as np


def random_vectors(n, dim, seed):
    """testkit::sample::random_vectors: splitmix64, top 24 bits / 2^24."""
    i = np.arange(1, n * dim + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(40)).astype(np.float64) / float(1 << 24)).astype(np.float32).reshape(n, dim)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--efc", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    faiss.omp_set_num_threads(a.threads)
    data = random_vectors(a.rows, a.dim, 42)
    queries = random_vectors(a.queries, a.dim, 4242)
    exact = faiss.IndexFlatL2(a.dim)
    exact.add(data)
    _, truth = exact.search(queries, 10)
    index = faiss.IndexHNSWFlat(a.dim, a.m)
    index.hnsw.efConstruction = a.efc
    started = time.monotonic()
    index.add(data)
    build = time.monotonic() - started
    out = {"build_s": round(build, 2), "recall": {}}
    faiss.omp_set_num_threads(1)
    for ef in (16, 32, 64, 128, 256):
        index.hnsw.efSearch = ef
        started = time.monotonic()
        _, got = index.search(queries, 10)
        qps = a.queries / (time.monotonic() - started)
        hits = sum(len(set(g) & set(t)) for g, t in zip(got, truth))
        out["recall"][ef] = {"recall": round(hits / (a.queries * 10), 3), "qps_1_thread": round(qps)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
