"""Filters on JSON paths, without and with JSON path indexes (pymilvus MilvusClient),
reusable against any Milvus-compatible endpoint: ROWS rows of an 8-dim vector and a JSON
field `doc` = {"n": integer 0..ROWS/10, "s": "k" + 6 digits 0..ROWS/100, "b": boolean}
(fixed seed), one shard, flushed, FLAT index on the vector, loaded. Then, for each run,
QUERIES queries of each filter with `count(*)` (the whole answer counted, no early stop),
each answer checked against numpy:

    eq      doc['n'] == x          (about 10 rows)
    range   doc['n'] >= x and doc['n'] < x + 50   (about 500 rows)
    in      doc['n'] in [x, y, z]  (about 30 rows)
    prefix  doc['s'] like 'k0012%' (about 1% of the rows)

first with no index on `doc` ("scan"), then after INVERTED indexes on doc['n'] (DOUBLE)
and doc['s'] (VARCHAR) are built and the collection reloaded ("json index"; a system
without JSON path indexes prints "unsupported" with its error). One JSON line each:

    {"what": "filter", "kind": "eq", "index": "scan", "run": 0, "p50_ms": ..., "p99_ms": ...}

    python json_filter.py URI [--rows N] [--queries Q] [--runs R] [--seed S]
"""
import argparse
import json
import time

import numpy as np
from pymilvus import DataType, MilvusClient

NAME = "bench_json_filter"


def say(**kv):
    print(json.dumps(kv), flush=True)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def wait_index(c, names, deadline_s=1800):
    deadline = time.time() + deadline_s
    while True:
        ds = [c.describe_index(NAME, n) for n in names]
        if all(d.get("state") == "Finished" and d.get("pending_index_rows", 0) == 0 for d in ds):
            return
        if time.time() > deadline:
            raise RuntimeError(f"indexes not built: {ds}")
        time.sleep(0.5)


def measure(c, rng, n, s, queries, rows, label, run):
    span = max(1, rows // 10)
    prefixes = max(1, rows // 100)
    makers = {
        "eq": lambda: (lambda x: (f"doc['n'] == {x}", int((n == x).sum())))(int(rng.integers(0, span))),
        "range": lambda: (lambda x: (f"doc['n'] >= {x} and doc['n'] < {x + 50}",
                                     int(((n >= x) & (n < x + 50)).sum())))(int(rng.integers(0, span))),
        "in": lambda: (lambda xs: (f"doc['n'] in [{', '.join(map(str, xs))}]",
                                   int(np.isin(n, xs).sum())))(rng.integers(0, span, 3).tolist()),
        "prefix": lambda: (lambda x: (f"doc['s'] like 'k{x:04d}%'",
                                      int(np.char.startswith(s, f"k{x:04d}").sum())))(
            int(rng.integers(0, max(1, prefixes // 100)))),
    }
    for kind, make in makers.items():
        lat = []
        for _ in range(queries):
            expr, want = make()
            t = time.perf_counter()
            got = c.query(NAME, filter=expr, output_fields=["count(*)"])[0]["count(*)"]
            lat.append(time.perf_counter() - t)
            assert got == want, (expr, got, want)
        say(what="filter", kind=kind, index=label, run=run,
            p50_ms=round(pct(lat, 0.5) * 1000, 3), p99_ms=round(pct(lat, 0.99) * 1000, 3))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("uri")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    c = MilvusClient(uri=a.uri)
    if c.has_collection(NAME):
        c.drop_collection(NAME)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
    schema.add_field("doc", DataType.JSON)
    c.create_collection(NAME, schema=schema, shards_num=1)
    n = rng.integers(0, max(1, a.rows // 10), a.rows)
    s = np.array([f"k{x:06d}" for x in rng.integers(0, max(1, a.rows // 100), a.rows)])
    b = rng.integers(0, 2, a.rows).astype(bool)
    vec = rng.random((a.rows, 8), dtype=np.float32)
    for at in range(0, a.rows, 10_000):
        end = min(a.rows, at + 10_000)
        c.insert(NAME, [{"id": i, "vec": vec[i].tolist(),
                         "doc": {"n": int(n[i]), "s": str(s[i]), "b": bool(b[i])}}
                        for i in range(at, end)])
    c.flush(NAME)
    ip = MilvusClient.prepare_index_params()
    ip.add_index("vec", index_type="FLAT", metric_type="L2")
    c.create_index(NAME, ip)
    wait_index(c, ["vec"])
    c.load_collection(NAME)
    say(what="loaded", rows=a.rows)
    for run in range(a.runs):
        measure(c, rng, n, s, a.queries, a.rows, "scan", run)
    c.release_collection(NAME)
    ip = MilvusClient.prepare_index_params()
    ip.add_index("doc", index_type="INVERTED", index_name="doc_n",
                 params={"json_cast_type": "double", "json_path": "doc['n']"})
    ip.add_index("doc", index_type="INVERTED", index_name="doc_s",
                 params={"json_cast_type": "varchar", "json_path": "doc['s']"})
    try:
        t = time.perf_counter()
        c.create_index(NAME, ip)
        wait_index(c, ["doc_n", "doc_s"])
        say(what="build", s=round(time.perf_counter() - t, 3))
    except Exception as e:  # a system without JSON path indexes
        say(what="filter", index="json index", unsupported=str(e)[:200])
        return
    c.load_collection(NAME)
    for run in range(a.runs):
        measure(c, rng, n, s, a.queries, a.rows, "json index", run)
    c.drop_collection(NAME)


if __name__ == "__main__":
    main()
