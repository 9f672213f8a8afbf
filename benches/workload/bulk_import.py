"""Bulk import beside insert, for benches/import.rs: writes ROWS x DIM rows as one Parquet
file (pymilvus bulk writer's columns) into the bucket, then per run: a fresh collection,
REST jobs/import/create, polls jobs/import/describe until Completed. Prints one JSON line
per run: {"import_s": ..., "rows": ...}.

    python bulk_import.py URI BUCKET_DIR --rows N --dim D --runs R
"""
import argparse
import json
import os
import time
import urllib.request

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pymilvus import DataType, MilvusClient


def rest(uri, path, body):
    req = urllib.request.Request(uri + "/v2/vectordb/" + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("uri")
    ap.add_argument("bucket")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    key = f"bench/import_{a.rows}x{a.dim}.parquet"
    path = os.path.join(a.bucket, key)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        rng = np.random.default_rng(7)
        vectors = rng.random((a.rows, a.dim), dtype=np.float32)
        table = pa.table({
            "id": pa.array(np.arange(a.rows, dtype=np.int64)),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), a.dim),
        })
        pq.write_table(table, path)
    client = MilvusClient(uri=a.uri)
    for run in range(a.runs):
        name = f"bench_import_{run}"
        if client.has_collection(name):
            client.drop_collection(name)
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=a.dim)
        client.create_collection(name, schema=schema)
        started = time.monotonic()
        r = rest(a.uri, "jobs/import/create", {"collectionName": name, "files": [[key]]})
        assert r["code"] == 0, r
        while True:
            d = rest(a.uri, "jobs/import/describe", {"jobId": r["data"]["jobId"]})["data"]
            if d["state"] in ("Completed", "Failed"):
                break
            time.sleep(0.05)
        took = time.monotonic() - started
        assert d["state"] == "Completed" and d["importedRows"] == a.rows, d
        stats = client.get_collection_stats(name)
        assert int(stats["row_count"]) == a.rows, stats
        print(json.dumps({"import_s": took, "rows": a.rows}), flush=True)
        client.drop_collection(name)


if __name__ == "__main__":
    main()
