"""The side-by-side workload (pymilvus MilvusClient), the same against any Milvus-compatible
endpoint: ROWS x DIM uniform random float vectors (fixed seed), per run:

  insert_1   ROWS rows in batches of 5,000 from 1 client into a fresh one-shard collection
  insert_4   ROWS rows from 4 client processes into a scratch collection (then dropped)
  flush      flush of the first collection
  build      HNSW (M, efConstruction, L2) from create_index until Finished
  load       load_collection until loaded
  search     QUERIES searches top-10 at each ef, by 1 and by 8 client processes
             (QPS, p50/p99 latency, recall@10 against exact numpy results)
  query      100 queries by filter on the primary key (`id in [..]` and a range), p50/p99
  filter     50 queries of each kind on the scalar fields, each without and with limit 10:
             a selective equality (`num == x`, one row), a range (`num` in a window of 50),
             an `in` list of 3 and a `like` prefix (`tag like "t0012%"`, ROWS / 1000 rows);
             p50/p99 latency, every answer checked against the expected count
  filter_ix  the same after scalar indexes are built on `num` (STL_SORT) and `tag` (Trie),
             the two types every Milvus version measured has (release, create_index until
             Finished, load); a system that refuses them prints {"m": "filter_ix_error"}

Each row has `id`, `vec`, `num` (a permutation of 0..ROWS: `id * 7919 % ROWS`) and `tag`
(VarChar, `t` and `id % 10000` in 4 digits).

Prints one JSON line per measurement ({"m": name, ...}) and {"phase": name} lines at the
points where the driver samples memory (idle, loaded, done).

    python workload.py URI [--rows N] [--dim D] [--queries Q] [--ef 16,64,128]
                           [--clients 1,8] [--runs R] [--m M] [--efc E] [--seed S]
                           [--index HNSW|FLAT]
"""
import argparse
import json
import queue
import multiprocessing as mp
import time

import numpy as np
from pymilvus import DataType, MilvusClient

NAME, SCRATCH = "cmp_bench", "cmp_scratch"


def say(**kv):
    print(json.dumps(kv), flush=True)


def collection(c, name, dim):
    if c.has_collection(name):
        c.drop_collection(name)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("num", DataType.INT64)
    schema.add_field("tag", DataType.VARCHAR, max_length=16)
    c.create_collection(name, schema=schema, num_shards=1)


def make_row(i, vec, rows):
    return {"id": i, "vec": vec.tolist(), "num": i * 7919 % rows, "tag": f"t{i % 10000:04d}"}


def insert_part(uri, name, vectors, ids, rows, ready, go, out):
    c = MilvusClient(uri=uri)
    ready.put(1)
    go.wait()
    for s in range(0, len(ids), 5000):
        c.insert(name, [make_row(int(ids[s + i]), vectors[s + i], rows) for i in range(min(5000, len(ids) - s))])
    out.put(len(ids))


class ClientFailed(Exception):
    """A spawned client raised: its message."""


def guarded(target, *args):
    """Runs `target(*args)` in a spawned process; if it raises, says so on the `ready` and
    `out` queues (its last-but-two and last arguments), so the parent never waits for a
    result that will not come."""
    ready, out = args[-3], args[-1]
    try:
        target(*args)
    except Exception as e:  # noqa: BLE001 - reported to the parent
        msg = ("client failed", f"{type(e).__name__}: {e}")
        ready.put(msg)
        out.put(msg)


def parallel(n, target, args_of, limit=1800):
    """Runs `target` in n spawned processes (not forked: the gRPC client of this process
    must not be copied); the clock starts once every process has connected. A client that
    fails, or gives no answer within `limit` seconds, fails the run."""
    ctx = mp.get_context("spawn")
    ready, go, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=guarded, args=(target, *args_of(i), ready, go, out)) for i in range(n)]
    for p in procs:
        p.start()

    def collect(q):
        try:
            r = q.get(timeout=limit)
        except queue.Empty:
            raise ClientFailed(f"a client gave no answer within {limit} s") from None
        if isinstance(r, tuple) and r and r[0] == "client failed":
            for p in procs:
                p.terminate()
            raise ClientFailed(r[1])
        return r

    for _ in procs:
        collect(ready)
    t = time.perf_counter()
    go.set()
    results = [collect(out) for _ in procs]
    wall = time.perf_counter() - t
    for p in procs:
        p.join()
    return results, wall


def searcher(uri, slot, queries, ef, ready, go, out):
    c = MilvusClient(uri=uri)
    c.search(NAME, data=[queries[0].tolist()], limit=10, search_params={"params": {"ef": ef}})
    ready.put(1)
    go.wait()
    lat, ids = [], []
    for q in queries:
        t = time.perf_counter()
        r = c.search(NAME, data=[q.tolist()], limit=10, search_params={"params": {"ef": ef}})
        lat.append(time.perf_counter() - t)
        ids.append([h["id"] for h in r[0]])
    out.put((slot, lat, ids))


def truth(base, queries, k):
    bn = (base * base).sum(1)
    out = []
    for s in range(0, len(queries), 100):
        d = bn[None, :] - 2 * queries[s:s + 100] @ base.T
        out.append(np.argsort(d, axis=1)[:, :k])
    return np.vstack(out)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round((len(xs) - 1) * p)))]


def _eq(rng, rows):
    return f"num == {int(rng.integers(0, rows))}", 1


def _range(rng, rows):
    lo = int(rng.integers(0, rows - 50))
    return f"num >= {lo} and num < {lo + 50}", 50


def _in(rng, rows):
    xs = rng.choice(rows, 3, replace=False)
    return f"num in [{', '.join(str(int(x)) for x in xs)}]", 3


def _like(rng, rows):
    # `t0012%` matches the tags t0120..t0129: ids whose id % 10000 is in 120..129.
    p = int(rng.integers(0, 1000))
    expect = rows // 10000 * 10 + max(0, min(10, rows % 10000 - p * 10))
    return f'tag like "t{p:03d}%"', expect


# The filtered-query kinds (name, expression maker returning the expected row count).
FILTERS = [("eq", _eq), ("range", _range), ("in", _in), ("like", _like)]


def filters(c, rng, rows, run, suffix):
    """50 queries of each filter kind, without and with limit 10, each answer's size checked."""
    for kind, make in FILTERS:
        for limit in (None, 10):
            lat = []
            for _ in range(50):
                expr, expect = make(rng, rows)
                t = time.perf_counter()
                r = c.query(NAME, filter=expr, output_fields=["id"], limit=limit)
                lat.append(time.perf_counter() - t)
                assert len(r) == (min(expect, limit) if limit else expect), (expr, limit, len(r))
            say(m="filter", run=run, kind=kind + suffix, limit=limit or 0,
                p50_ms=round(pct(lat, 0.5) * 1000, 3), p99_ms=round(pct(lat, 0.99) * 1000, 3))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("uri")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--ef", default="16,64,128")
    p.add_argument("--clients", default="1,8")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--efc", type=int, default=200)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--index", default="HNSW", choices=["HNSW", "FLAT"])
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    base = rng.random((a.rows, a.dim), dtype=np.float32)
    queries = rng.random((a.queries, a.dim), dtype=np.float32)
    gt = truth(base, queries, 10)
    c = MilvusClient(uri=a.uri)
    say(phase="idle")
    for run in range(a.runs):
        collection(c, NAME, a.dim)
        t = time.perf_counter()
        for s in range(0, a.rows, 5000):
            c.insert(NAME, [make_row(s + i, base[s + i], a.rows) for i in range(min(5000, a.rows - s))])
        say(m="insert_1", run=run, rows_per_s=round(a.rows / (time.perf_counter() - t)))
        collection(c, SCRATCH, a.dim)
        ids = np.arange(a.rows)
        chunks = np.array_split(ids, 4)
        _, wall = parallel(4, insert_part, lambda i: (a.uri, SCRATCH, base[chunks[i]], chunks[i], a.rows))
        say(m="insert_4", run=run, rows_per_s=round(a.rows / wall))
        c.drop_collection(SCRATCH)
        t = time.perf_counter()
        c.flush(NAME)
        say(m="flush", run=run, s=round(time.perf_counter() - t, 3))
        params = MilvusClient.prepare_index_params()
        params.add_index(field_name="vec", index_type=a.index, metric_type="L2",
                         params={"M": a.m, "efConstruction": a.efc} if a.index == "HNSW" else {})
        t = time.perf_counter()
        c.create_index(NAME, params)
        say(m="build", run=run, s=round(time.perf_counter() - t, 3))
        t = time.perf_counter()
        c.load_collection(NAME)
        say(m="load", run=run, s=round(time.perf_counter() - t, 3))
        say(phase="loaded", run=run)
        for q in queries[:20]:
            c.search(NAME, data=[q.tolist()], limit=10, search_params={"params": {"ef": 64}})
        for ef in [int(x) for x in a.ef.split(",")]:
            for clients in [int(x) for x in a.clients.split(",")]:
                parts = np.array_split(np.arange(len(queries)), clients)
                results, wall = parallel(clients, searcher, lambda i: (a.uri, i, queries[parts[i]], ef))
                lat = [x for r in results for x in r[1]]
                hits = 0
                for slot, _, got in results:
                    for qi, row in zip(parts[slot], got):
                        hits += len(set(row) & set(gt[qi].tolist()))
                say(m="search", run=run, ef=ef, clients=clients, qps=round(len(lat) / wall, 1),
                    p50_ms=round(pct(lat, 0.5) * 1000, 3), p99_ms=round(pct(lat, 0.99) * 1000, 3),
                    recall=round(hits / (len(queries) * 10), 4))
        lat = []
        for i in range(100):
            lo = int(rng.integers(0, a.rows - 50))
            expr = f"id in [{lo}, {lo + 7}, {lo + 13}]" if i % 2 else f"id >= {lo} and id < {lo + 50}"
            t = time.perf_counter()
            r = c.query(NAME, filter=expr, output_fields=["id"])
            lat.append(time.perf_counter() - t)
            assert len(r) in (3, 50), (expr, len(r))
        say(m="query", run=run, p50_ms=round(pct(lat, 0.5) * 1000, 3), p99_ms=round(pct(lat, 0.99) * 1000, 3))
        filters(c, rng, a.rows, run, "")
        c.release_collection(NAME)
        try:
            params = MilvusClient.prepare_index_params()
            params.add_index(field_name="num", index_type="STL_SORT")
            params.add_index(field_name="tag", index_type="Trie")
            c.create_index(NAME, params)
        except Exception as e:  # noqa: BLE001 (reported, the rest goes on)
            say(m="filter_ix_error", run=run, error=str(e)[:200])
        else:
            c.load_collection(NAME)
            filters(c, rng, a.rows, run, "_ix")
            c.release_collection(NAME)
        c.drop_collection(NAME)
    say(phase="done")


if __name__ == "__main__":
    main()
