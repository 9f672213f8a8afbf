"""Index workload (pymilvus MilvusClient): ROWS x DIM uniform random vectors (fixed seed)
with an Int64 key in batches of 5,000 into a fresh one-shard collection, flush, then
`create_index` (HNSW by default, M / efConstruction as given, L2) waited for until
Finished. Prints one JSON line: rows, insert_s, flush_s, index_s (from the create_index
call until the index reports Finished), state. Reusable against any Milvus-compatible
endpoint (real Milvus too).

    python index.py URI [--rows N] [--dim D] [--m M] [--efc E] [--index-type T] [--seed S]
"""
import argparse
import json
import time

import numpy as np
from pymilvus import DataType, MilvusClient

NAME = "bench_index"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("uri")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--efc", type=int, default=200)
    p.add_argument("--index-type", default="HNSW")
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    c = MilvusClient(uri=a.uri)
    if c.has_collection(NAME):
        c.drop_collection(NAME)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=a.dim)
    c.create_collection(NAME, schema=schema, shards_num=1)
    rng = np.random.default_rng(a.seed)
    started = time.monotonic()
    for start in range(0, a.rows, 5000):
        n = min(5000, a.rows - start)
        vecs = rng.random((n, a.dim), dtype=np.float32)
        c.insert(NAME, [{"id": start + i, "vec": vecs[i].tolist()} for i in range(n)])
    insert_s = time.monotonic() - started
    started = time.monotonic()
    c.flush(NAME)
    flush_s = time.monotonic() - started
    params = MilvusClient.prepare_index_params()
    params.add_index(field_name="vec", index_type=a.index_type, metric_type="L2",
                     params={"M": a.m, "efConstruction": a.efc})
    started = time.monotonic()
    c.create_index(NAME, params)
    index_s = time.monotonic() - started
    d = c.describe_index(NAME, "vec")
    print(json.dumps({"rows": a.rows, "insert_s": round(insert_s, 2), "flush_s": round(flush_s, 2),
                      "index_s": round(index_s, 2), "state": d["state"],
                      "indexed_rows": d["indexed_rows"]}))
    # A time is only a build time if the build finished over every row.
    if d["state"] != "Finished" or int(d["indexed_rows"]) != a.rows:
        raise SystemExit(f"the index did not finish over {a.rows} rows: {d}")


if __name__ == "__main__":
    main()
