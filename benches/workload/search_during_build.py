"""Searches while an index is built on the same machine (pymilvus MilvusClient), against
any Milvus-compatible endpoint: what `indexNode.buildNice` is for.

A collection `sdb_served` of SERVED x DIM uniform random vectors (HNSW M 16 /
efConstruction 200, L2, loaded) is searched top-10 at ef 64 by one client, nonstop,
for SECONDS with no build ("alone"), then while HNSW (M 16, efConstruction 200) is built
on a second collection `sdb_built` of ROWS x DIM rows, from create_index until
Finished ("during the build"). Each collection is compacted (waited for) after its
rows are flushed, so that no merge lands in a measured phase. Prints one JSON line per phase:

    {"what": "alone", "qps": ..., "p50_ms": ..., "p99_ms": ...}
    {"what": "during_build", "qps": ..., "p50_ms": ..., "p99_ms": ..., "build_s": ...}

    python search_during_build.py URI [--served N] [--rows N] [--dim D] [--seconds S]
"""
import argparse
import json
import threading
import time

import numpy as np
from pymilvus import DataType, MilvusClient

SERVED, BUILT = "sdb_served", "sdb_built"


def make(c, name, dim):
    if c.has_collection(name):
        c.drop_collection(name)
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    c.create_collection(name, schema=s, num_shards=1)


def fill(c, name, base):
    """Inserts, flushes and compacts `base`, waiting for the compaction: so that no merge
    (nor a merged segment's build) lands in a measured phase."""
    for at in range(0, len(base), 5000):
        part = base[at:at + 5000]
        c.insert(name, [{"id": at + i, "vec": v.tolist()} for i, v in enumerate(part)])
    c.flush(name)
    job = c.compact(name)
    end = time.time() + 600
    while c.get_compaction_state(job) != "Completed":
        if time.time() > end:
            raise SystemExit(f"the compaction of {name} did not complete in 600 s")
        time.sleep(0.5)


def hnsw():
    p = MilvusClient.prepare_index_params()
    p.add_index(field_name="vec", index_type="HNSW", metric_type="L2",
                params={"M": 16, "efConstruction": 200})
    return p


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")


def searching(c, queries, until):
    """Searches until `until()` is true; the latencies, and the wall time taken."""
    lat, i, t0 = [], 0, time.perf_counter()
    while not until():
        q = queries[i % len(queries)]
        t = time.perf_counter()
        c.search(SERVED, data=[q.tolist()], limit=10, search_params={"params": {"ef": 64}})
        lat.append(time.perf_counter() - t)
        i += 1
    return lat, time.perf_counter() - t0


def report(what, lat, wall, **extra):
    print(json.dumps({"what": what, "qps": round(len(lat) / wall, 1),
                      "p50_ms": round(pct(lat, 0.5) * 1000, 3),
                      "p99_ms": round(pct(lat, 0.99) * 1000, 3), **extra}), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("uri")
    p.add_argument("--served", type=int, default=50_000)
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--seconds", type=float, default=15)
    a = p.parse_args()
    rng = np.random.default_rng(7)
    c = MilvusClient(uri=a.uri)
    make(c, SERVED, a.dim)
    fill(c, SERVED, rng.random((a.served, a.dim), dtype=np.float32))
    c.create_index(SERVED, hnsw())
    c.load_collection(SERVED)
    queries = rng.random((500, a.dim), dtype=np.float32)
    make(c, BUILT, a.dim)
    fill(c, BUILT, rng.random((a.rows, a.dim), dtype=np.float32))
    for q in queries[:50]:  # warm
        c.search(SERVED, data=[q.tolist()], limit=10, search_params={"params": {"ef": 64}})
    end = time.perf_counter() + a.seconds
    lat, wall = searching(c, queries, lambda: time.perf_counter() >= end)
    report("alone", lat, wall)
    done = threading.Event()
    took = {}

    def build():
        # create_index waits until the index is Finished (pymilvus polls it).
        t = time.perf_counter()
        try:
            MilvusClient(uri=a.uri).create_index(BUILT, hnsw())
            took["s"] = round(time.perf_counter() - t, 2)
        except Exception as e:  # noqa: BLE001 (reported below)
            took["error"] = str(e)
        finally:
            done.set()

    threading.Thread(target=build, daemon=True).start()
    lat, wall = searching(c, queries, done.is_set)
    if "error" in took:
        raise SystemExit(f"the index build failed: {took['error']}")
    report("during_build", lat, wall, build_s=took["s"])
    c.drop_collection(BUILT)
    c.drop_collection(SERVED)


if __name__ == "__main__":
    main()
