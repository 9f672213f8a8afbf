"""Insert workload (pymilvus MilvusClient, rows as dicts, the way the Milvus docs insert):
ROWS x DIM uniform random float vectors (fixed seed) with an Int64 key, in batches of
BATCH rows, from CLIENTS processes at once, into a fresh collection of one shard, then
one flush (unless --no-flush) and get_collection_stats. Prints one JSON line: rows,
seconds, rows_per_s, flush_s (seconds from the flush call until it returned, i.e. until
the rows are persisted) and row_count. Reusable against any Milvus-compatible endpoint
(real Milvus too).

    python insert.py URI [--rows N] [--dim D] [--batch B] [--clients C] [--seed S] [--no-flush]
"""
import argparse
import json
import queue
import multiprocessing as mp
import time

import numpy as np
from pymilvus import DataType, MilvusClient

NAME = "bench_insert"


def make_rows(start, count, dim, seed):
    rng = np.random.default_rng(seed + start)
    vecs = rng.random((count, dim), dtype=np.float32)
    return [{"id": start + i, "vec": vecs[i].tolist()} for i in range(count)]


def client(uri, part, parts, args, ready, go, out):
    try:
        run_client(uri, part, parts, args, ready, go, out)
    except Exception as e:  # noqa: BLE001 - reported to the parent, which fails
        ready.abort()
        go.abort()
        out.put(("error", f"{type(e).__name__}: {e}"))


def run_client(uri, part, parts, args, ready, go, out):
    c = MilvusClient(uri=uri)
    share = args.rows // parts
    first = part * share
    batches = [make_rows(first + b, min(args.batch, share - b), args.dim, args.seed)
               for b in range(0, share, args.batch)]
    ready.wait()
    go.wait()
    started = time.monotonic()
    n = 0
    for rows in batches:
        r = c.insert(NAME, rows)
        n += r["insert_count"]
    out.put((n, time.monotonic() - started))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("uri")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--batch", type=int, default=5_000)
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--no-flush", action="store_true")
    args = p.parse_args()
    c = MilvusClient(uri=args.uri)
    if c.has_collection(NAME):
        c.drop_collection(NAME)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=args.dim)
    c.create_collection(NAME, schema=schema, shards_num=1)
    # Spawned, not forked: a gRPC channel does not survive a fork.
    ctx = mp.get_context("spawn")
    ready = ctx.Barrier(args.clients + 1)
    go = ctx.Barrier(args.clients + 1)
    out = ctx.Queue()
    procs = [ctx.Process(target=client, args=(args.uri, i, args.clients, args, ready, go, out))
             for i in range(args.clients)]
    for pr in procs:
        pr.start()
    try:
        ready.wait()  # every client has built its rows
        started = time.monotonic()
        go.wait()
    except Exception:  # a client failed before starting: its error is in the queue
        started = time.monotonic()
    try:
        results = [out.get(timeout=1800) for _ in procs]
    except queue.Empty:
        raise SystemExit("an insert client gave no result within 1800 s") from None
    seconds = time.monotonic() - started
    errors = [r[1] for r in results if r[0] == "error"]
    if errors:
        raise SystemExit(f"insert failed: {errors}")
    for pr in procs:
        pr.join()
    rows = sum(n for n, _ in results)
    out = {"rows": rows, "seconds": round(seconds, 3), "rows_per_s": round(rows / seconds)}
    if not args.no_flush:
        started = time.monotonic()
        c.flush(NAME)
        out["flush_s"] = round(time.monotonic() - started, 3)
        out["row_count"] = int(c.get_collection_stats(NAME)["row_count"])
        if out["row_count"] != rows:
            raise SystemExit(f"row_count {out['row_count']} after flush, inserted {rows}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
