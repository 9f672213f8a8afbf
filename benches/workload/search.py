"""Search workload (pymilvus MilvusClient), reusable against any Milvus-compatible endpoint
(real Milvus too): ROWS x DIM uniform random vectors (fixed seed) in a one-shard
collection, flushed, HNSW (M / efConstruction as given, L2) built; then for each run:
release, load (timed until loaded), and QUERIES searches top-10 at each ef, by 1 and by
8 client processes. Recall@10 against exact numpy results. Prints one JSON line per
measurement:

    {"what": "load", "s": ...}
    {"what": "search", "ef": 64, "clients": 1, "qps": ..., "p50_ms": ..., "p99_ms": ..., "recall": ...}

    python search.py URI [--rows N] [--dim D] [--queries Q] [--ef 16,64,128] [--clients 1,8]
                         [--runs R] [--metric L2] [--m M] [--efc E] [--seed S] [--reuse]
"""
import argparse
import json
import queue
import multiprocessing as mp
import time

import numpy as np
from pymilvus import DataType, MilvusClient

NAME = "bench_search"


def prepare(c, a, base):
    if a.reuse and c.has_collection(NAME):
        return
    if c.has_collection(NAME):
        c.drop_collection(NAME)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=a.dim)
    c.create_collection(NAME, schema=schema, shards_num=1)
    for start in range(0, a.rows, 5000):
        n = min(5000, a.rows - start)
        c.insert(NAME, [{"id": start + i, "vec": base[start + i].tolist()} for i in range(n)])
    c.flush(NAME)
    params = MilvusClient.prepare_index_params()
    params.add_index(field_name="vec", index_type="HNSW", metric_type=a.metric,
                     params={"M": a.m, "efConstruction": a.efc})
    c.create_index(NAME, params)


def truth(base, queries, k):
    out = []
    bn = (base * base).sum(1)
    for s in range(0, len(queries), 100):
        q = queries[s:s + 100]
        d = bn[None, :] - 2 * q @ base.T
        out.append(np.argsort(d, axis=1)[:, :k])
    return np.vstack(out)


def worker(uri, slot, queries, ef, out):
    """Searches QUERIES; puts (slot, latencies, ids), or (slot, None, error) if it fails
    (so the parent never waits for a result that will not come)."""
    try:
        c = MilvusClient(uri=uri)
        lat, ids = [], []
        for q in queries:
            t = time.perf_counter()
            r = c.search(NAME, data=[q.tolist()], limit=10, search_params={"params": {"ef": ef}})
            lat.append(time.perf_counter() - t)
            ids.append([h["id"] for h in r[0]])
        out.put((slot, lat, ids))
    except Exception as e:  # noqa: BLE001 - reported to the parent
        out.put((slot, None, f"{type(e).__name__}: {e}"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("uri")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--ef", default="16,64,128")
    p.add_argument("--clients", default="1,8")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--metric", default="L2")
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--efc", type=int, default=200)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--reuse", action="store_true")
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    base = rng.random((a.rows, a.dim), dtype=np.float32)
    queries = rng.random((a.queries, a.dim), dtype=np.float32)
    c = MilvusClient(uri=a.uri)
    prepare(c, a, base)
    gt = truth(base, queries, 10)
    for run in range(a.runs):
        c.release_collection(NAME)
        t = time.perf_counter()
        c.load_collection(NAME)
        print(json.dumps({"what": "load", "run": run, "s": round(time.perf_counter() - t, 3)}), flush=True)
        # Warm up the connection and caches.
        for q in queries[:20]:
            c.search(NAME, data=[q.tolist()], limit=10, search_params={"params": {"ef": 64}})
        for ef in [int(x) for x in a.ef.split(",")]:
            for clients in [int(x) for x in a.clients.split(",")]:
                parts = np.array_split(np.arange(len(queries)), clients)
                q = mp.Queue()
                procs = [mp.Process(target=worker, args=(a.uri, i, queries[s], ef, q))
                         for i, s in enumerate(parts)]
                started = time.perf_counter()
                for pr in procs:
                    pr.start()
                results = []
                for _ in procs:
                    try:
                        results.append(q.get(timeout=600))
                    except queue.Empty:
                        raise SystemExit("a search client gave no result within 600 s") from None
                wall = time.perf_counter() - started
                for pr in procs:
                    pr.join()
                failed = [r[2] for r in results if r[1] is None]
                if failed:
                    raise SystemExit(f"search clients failed: {failed}")
                lat = sorted(x for r in results for x in r[1])
                hits = 0
                for slot, _, ids in results:
                    for qi, row in zip(parts[slot], ids):
                        hits += len(set(row) & set(gt[qi].tolist()))
                print(json.dumps({
                    "what": "search", "run": run, "ef": ef, "clients": clients,
                    "qps": round(len(lat) / wall, 1),
                    "p50_ms": round(lat[len(lat) // 2] * 1000, 2),
                    "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 2),
                    "recall": round(hits / (len(queries) * 10), 4),
                }), flush=True)


if __name__ == "__main__":
    main()
