"""Bulk import as a user runs it: files written into the object storage bucket (here the
local storage directory), imported with pymilvus's `utility.do_bulk_insert` (gRPC) and
with the RESTful `jobs/import/*`. Run by tests/import.rs.

    python import_client.py formats URI BUCKET_DIR       # JSON and Parquet, refusals
    python import_client.py big URI BUCKET_DIR ROWS      # writes ROWS rows, starts the job, prints JOB <id>
    python import_client.py verify URI JOB ROWS          # waits for the job, checks every row once

Exits 0 when every check passes; prints what failed otherwise.
"""
import json
import os
import sys
import time
import urllib.request

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pymilvus import DataType, MilvusClient, connections, utility

from pymilvus_client import check

DIM = 8


def rest(uri, path, body):
    req = urllib.request.Request(uri + "/v2/vectordb/" + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def collection(client, name):
    if client.has_collection(name):
        client.drop_collection(name)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("title", DataType.VARCHAR, max_length=64)
    schema.add_field("meta", DataType.JSON)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")


def vec(i):
    return [float(i % 97), float(i % 13), 1.0, 0.0, 0.5, float(i % 7), 0.0, 1.0]


def write_json(bucket, key, ids):
    os.makedirs(os.path.dirname(os.path.join(bucket, key)), exist_ok=True)
    rows = [{"id": i, "vector": vec(i), "title": f"t{i}", "meta": {"n": i}, "color": "red"} for i in ids]
    with open(os.path.join(bucket, key), "w") as f:
        json.dump({"rows": rows}, f)


def write_parquet(bucket, key, ids):
    """The columns pymilvus's bulk writers write: vectors as lists, JSON and $meta as text."""
    os.makedirs(os.path.dirname(os.path.join(bucket, key)), exist_ok=True)
    ids = list(ids)
    table = pa.table({
        "id": pa.array(ids, pa.int64()),
        "vector": pa.array([np.array(vec(i), dtype=np.float32) for i in ids], pa.list_(pa.float32())),
        "title": pa.array([f"t{i}" for i in ids], pa.string()),
        "meta": pa.array([json.dumps({"n": i}) for i in ids], pa.string()),
        "$meta": pa.array([json.dumps({"color": "blue"}) for _ in ids], pa.string()),
    })
    pq.write_table(table, os.path.join(bucket, key))


def wait_count(client, name, rows, deadline_s=60):
    """Imported segments reach a loaded collection's querynodes shortly after the job
    completes (as in Milvus): wait until they are all served."""
    deadline = time.time() + deadline_s
    while True:
        n = client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]
        if n == rows or time.time() > deadline:
            return n
        time.sleep(0.2)


def wait_job(uri, job, deadline_s=120):
    deadline = time.time() + deadline_s
    while time.time() < deadline:
        d = rest(uri, "jobs/import/describe", {"jobId": str(job)})
        check(d["code"] == 0, f"describe {d}")
        if d["data"]["state"] in ("Completed", "Failed"):
            return d["data"]
        time.sleep(0.2)
    raise AssertionError(f"job {job} did not end in time")


def formats(uri, bucket):
    client = MilvusClient(uri=uri)
    connections.connect("imp", uri=uri)
    collection(client, "imp")
    write_json(bucket, "bulk/a.json", range(0, 1000))
    write_parquet(bucket, "bulk/b.parquet", range(1000, 2500))
    # gRPC: pymilvus's do_bulk_insert / get_bulk_insert_state.
    task = utility.do_bulk_insert("imp", files=["bulk/a.json"], using="imp")
    deadline = time.time() + 120
    while True:
        st = utility.get_bulk_insert_state(task, using="imp")
        if st.state_name in ("Completed", "Failed") or time.time() > deadline:
            break
        time.sleep(0.2)
    check(st.state_name == "Completed" and st.row_count == 1000, f"json import {st}")
    check(st.collection_name == "imp" and st.files == "bulk/a.json" and st.progress == 100, f"state infos {st}")
    # REST: jobs/import/create, describe, list.
    r = rest(uri, "jobs/import/create", {"collectionName": "imp", "files": [["bulk/b.parquet"]]})
    check(r["code"] == 0 and r["data"]["jobId"].isdigit(), f"create {r}")
    d = wait_job(uri, r["data"]["jobId"])
    check(d["state"] == "Completed" and d["progress"] == 100 and d["importedRows"] == 1500, f"parquet import {d}")
    listed = rest(uri, "jobs/import/list", {"collectionName": "imp"})["data"]["records"]
    check({x["jobId"] for x in listed} == {str(task), r["data"]["jobId"]}, f"list {listed}")
    tasks = utility.list_bulk_insert_tasks(collection_name="imp", using="imp")
    check(len(tasks) == 2 and all(t.state_name == "Completed" for t in tasks), f"list_bulk_insert_tasks {tasks}")
    # The rows, with their fields and dynamic keys, searchable and queryable.
    client.load_collection("imp")
    n = wait_count(client, "imp", 2500)
    check(n == 2500, f"all rows {n}")
    got = client.query("imp", filter="id in [5, 1005]", output_fields=["title", "meta", "color"])
    got = sorted(got, key=lambda x: x["id"])
    check(got == [{"id": 5, "title": "t5", "meta": {"n": 5}, "color": "red"},
                  {"id": 1005, "title": "t1005", "meta": {"n": 1005}, "color": "blue"}], f"rows {got}")
    hits = client.search("imp", data=[vec(1234)], limit=1, output_fields=["title"])
    check(hits[0][0]["id"] == 1234 or hits[0][0]["distance"] == 0.0, f"search {hits}")
    segs = client._get_connection().get_persistent_segment_infos("imp")
    check(sum(s.num_rows for s in segs) == 2500, f"segments {segs}")
    # What cannot be imported fails the job with the reason; nothing is added.
    for files, needle in [
        (["bulk/missing.json"], "does not exist"),
        (["bulk/x.csv"], "unsupported file type"),
        (["bulk/id.npy", "bulk/vector.npy"], "NumPy (.npy) files are not supported"),
    ]:
        r = rest(uri, "jobs/import/create", {"collectionName": "imp", "files": [files]})
        d = wait_job(uri, r["data"]["jobId"])
        check(d["state"] == "Failed" and needle in d.get("reason", ""), f"{files}: {d}")
    os.makedirs(os.path.join(bucket, "bulk"), exist_ok=True)
    with open(os.path.join(bucket, "bulk/bad.json"), "w") as f:
        json.dump([{"id": 1, "title": "no vector"}], f)
    r = rest(uri, "jobs/import/create", {"collectionName": "imp", "files": [["bulk/bad.json"]]})
    d = wait_job(uri, r["data"]["jobId"])
    check(d["state"] == "Failed" and "vector" in d.get("reason", ""), f"bad rows: {d}")
    check(client.query("imp", filter="", output_fields=["count(*)"])[0]["count(*)"] == 2500, "nothing added")
    r = rest(uri, "jobs/import/create", {"collectionName": "nowhere", "files": [["bulk/a.json"]]})
    check(r["code"] == 100, f"missing collection {r}")
    r = rest(uri, "jobs/import/create", {"collectionName": "imp"})
    check(r["code"] == 1802, f"no files {r}")
    r = rest(uri, "jobs/import/describe", {"jobId": "12345"})
    check(r["code"] == 2101 and "import job not found" in r["message"], f"missing job {r}")
    client.drop_collection("imp")
    print("formats: all checks passed")


def big(uri, bucket, rows):
    client = MilvusClient(uri=uri)
    collection(client, "imp_big")
    write_parquet(bucket, "bulk/big.parquet", range(rows))
    r = rest(uri, "jobs/import/create", {"collectionName": "imp_big", "files": [["bulk/big.parquet"]]})
    check(r["code"] == 0, f"create {r}")
    print(f"JOB {r['data']['jobId']}", flush=True)


def verify(uri, job, rows):
    d = wait_job(uri, job, 300)
    check(d["state"] == "Completed" and d["importedRows"] == rows, f"job {d}")
    client = MilvusClient(uri=uri)
    segs = client._get_connection().get_persistent_segment_infos("imp_big")
    check(sum(s.num_rows for s in segs) == rows, f"every row once in the segments: {sum(s.num_rows for s in segs)}")
    client.load_collection("imp_big")
    n = wait_count(client, "imp_big", rows)
    check(n == rows, f"count {n}")
    got = client.query("imp_big", filter=f"id in [0, {rows - 1}]", output_fields=["title"])
    check(sorted(x["id"] for x in got) == [0, rows - 1], f"first and last rows {got}")
    print("verify: all checks passed")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "formats":
        formats(sys.argv[2], sys.argv[3])
    elif mode == "big":
        big(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif mode == "verify":
        verify(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode}")
