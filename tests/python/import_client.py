"""Bulk import as a user runs it: files written into the object storage bucket (here the
local storage directory), imported with pymilvus's `utility.do_bulk_insert` (gRPC) and
with the RESTful `jobs/import/*`. Run by tests/import.rs.

    python import_client.py formats URI BUCKET_DIR       # JSON, Parquet and NumPy, refusals
    python import_client.py writers URI S3_ENDPOINT BUCKET  # pymilvus's RemoteBulkWriter output, each file type
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


def write_numpy(bucket, folder, ids, dynamic=True):
    """One <field>.npy per field, as numpy saves them: vectors 2-D float32, strings and
    JSON as unicode arrays, dynamic keys as JSON text in $meta.npy."""
    os.makedirs(os.path.join(bucket, folder), exist_ok=True)
    ids = list(ids)
    columns = {
        "id": np.array(ids, dtype=np.int64),
        "vector": np.array([vec(i) for i in ids], dtype=np.float32),
        "title": np.array([f"t{i}" for i in ids]),
        "meta": np.array([json.dumps({"n": i}) for i in ids]),
    }
    if dynamic:
        columns["$meta"] = np.array([json.dumps({"color": "green"}) for _ in ids])
    for name, arr in columns.items():
        np.save(os.path.join(bucket, folder, name + ".npy"), arr)
    return [f"{folder}/{name}.npy" for name in columns]


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
    # NumPy: two batches of one file per field, in one job.
    npy = [write_numpy(bucket, "bulk/npy1", range(2500, 3000)), write_numpy(bucket, "bulk/npy2", range(3000, 3200))]
    r3 = rest(uri, "jobs/import/create", {"collectionName": "imp", "files": npy})
    d = wait_job(uri, r3["data"]["jobId"])
    check(d["state"] == "Completed" and d["importedRows"] == 700, f"numpy import {d}")
    listed = rest(uri, "jobs/import/list", {"collectionName": "imp"})["data"]["records"]
    check({x["jobId"] for x in listed} == {str(task), r["data"]["jobId"], r3["data"]["jobId"]}, f"list {listed}")
    tasks = utility.list_bulk_insert_tasks(collection_name="imp", using="imp")
    check(len(tasks) == 3 and all(t.state_name == "Completed" for t in tasks), f"list_bulk_insert_tasks {tasks}")
    # The rows, with their fields and dynamic keys, searchable and queryable.
    client.load_collection("imp")
    n = wait_count(client, "imp", 3200)
    check(n == 3200, f"all rows {n}")
    got = client.query("imp", filter="id in [5, 1005, 3005]", output_fields=["title", "meta", "color"])
    got = sorted(got, key=lambda x: x["id"])
    check(got == [{"id": 5, "title": "t5", "meta": {"n": 5}, "color": "red"},
                  {"id": 1005, "title": "t1005", "meta": {"n": 1005}, "color": "blue"},
                  {"id": 3005, "title": "t3005", "meta": {"n": 3005}, "color": "green"}], f"rows {got}")
    hits = client.search("imp", data=[vec(1234)], limit=1, output_fields=["title"])
    check(hits[0][0]["id"] == 1234 or hits[0][0]["distance"] == 0.0, f"search {hits}")
    segs = client._get_connection().get_persistent_segment_infos("imp")
    check(sum(s.num_rows for s in segs) == 3200, f"segments {segs}")
    # What cannot be imported fails the job with the reason; nothing is added.
    os.makedirs(os.path.join(bucket, "bulk/npybad"), exist_ok=True)
    np.save(os.path.join(bucket, "bulk/npybad/id.npy"), np.arange(5, dtype=np.int64) + 90000)
    np.save(os.path.join(bucket, "bulk/npybad/vector.npy"), np.zeros((4, DIM), dtype=np.float32))
    np.save(os.path.join(bucket, "bulk/npybad/colour.npy"), np.zeros(5, dtype=np.int64))
    np.save(os.path.join(bucket, "bulk/npybad/title.npy"), np.zeros((5, 2), dtype=np.float32))
    for files, needle in [
        (["bulk/missing.json"], "does not exist"),
        (["bulk/x.csv"], "unsupported file type"),
        (["bulk/npybad/id.npy", "bulk/npybad/vector.npy"], "has 4 rows but bulk/npybad/id.npy has 5"),
        (["bulk/npybad/colour.npy"], "no corresponding field in the collection"),
        (["bulk/npybad/title.npy"], "field title of type VarChar takes a 1-D array"),
        (["bulk/a.json", "bulk/npybad/id.npy"], "an import unit is one JSON or Parquet file"),
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
    check(client.query("imp", filter="", output_fields=["count(*)"])[0]["count(*)"] == 3200, "nothing added")
    r = rest(uri, "jobs/import/create", {"collectionName": "nowhere", "files": [["bulk/a.json"]]})
    check(r["code"] == 100, f"missing collection {r}")
    r = rest(uri, "jobs/import/create", {"collectionName": "imp"})
    check(r["code"] == 1802, f"no files {r}")
    r = rest(uri, "jobs/import/describe", {"jobId": "12345"})
    check(r["code"] == 2101 and "import job not found" in r["message"], f"missing job {r}")
    client.drop_collection("imp")
    # A partition-key collection: each imported row in the partition its key hashes to.
    import zlib
    if client.has_collection("imp_pk"):
        client.drop_collection("imp_pk")
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tenant", DataType.VARCHAR, max_length=16, is_partition_key=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection("imp_pk", schema=schema, num_partitions=4)
    rows = [{"id": i, "tenant": f"t{i % 6}", "vector": vec(i)} for i in range(600)]
    with open(os.path.join(bucket, "bulk/pk.json"), "w") as f:
        json.dump({"rows": rows}, f)
    r = rest(uri, "jobs/import/create", {"collectionName": "imp_pk", "files": [["bulk/pk.json"]]})
    d = wait_job(uri, r["data"]["jobId"])
    check(d["state"] == "Completed" and d["importedRows"] == 600, f"partition-key import {d}")
    expected = [0] * 4
    for row in rows:
        expected[zlib.crc32(row["tenant"].encode()) % 4] += 1
    got = [client.get_partition_stats("imp_pk", f"_default_{i}")["row_count"] for i in range(4)]
    check(got == expected, f"imported rows by key hash {got}, expected {expected}")
    r = rest(uri, "jobs/import/create", {"collectionName": "imp_pk", "partitionName": "_default_1",
                                         "files": [["bulk/pk.json"]]})
    check(r["code"] == 1100 and "partition key mode" in r["message"], f"a named partition refused {r}")
    client.drop_collection("imp_pk")
    # JSON rows of a collection with a BM25 function and a sparse field: sparse vectors as
    # index -> value objects, the function's output written at import.
    from pymilvus import Function, FunctionType
    if client.has_collection("impft"):
        client.drop_collection("impft")
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=128, enable_analyzer=True)
    schema.add_field("bm", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("sv", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["text"], output_field_names=["bm"]))
    index = client.prepare_index_params()
    index.add_index("bm", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    index.add_index("sv", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    client.create_collection("impft", schema=schema, index_params=index, consistency_level="Strong")
    texts = ["red apples", "green pears", "red cherries and red apples"]
    os.makedirs(os.path.join(bucket, "bulk"), exist_ok=True)
    with open(os.path.join(bucket, "bulk/ft.json"), "w") as f:
        json.dump({"rows": [{"id": i, "text": t, "sv": {str(i): 1.0, "9": 0.5}} for i, t in enumerate(texts)]}, f)
    r = rest(uri, "jobs/import/create", {"collectionName": "impft", "files": [["bulk/ft.json"]]})
    d = wait_job(uri, r["data"]["jobId"])
    check(d["state"] == "Completed" and d["importedRows"] == 3, f"BM25 JSON import {d}")
    # Parquet: sparse rows as JSON text (pymilvus's bulk writers), both of Milvus's forms.
    pq.write_table(pa.table({"id": [3, 4], "text": ["blue plums", "yellow lemons"],
                             "sv": [json.dumps({"3": 1.0}), json.dumps({"indices": [4, 9], "values": [1.0, 0.25]})]}),
                   os.path.join(bucket, "bulk/ft.parquet"))
    r = rest(uri, "jobs/import/create", {"collectionName": "impft", "files": [["bulk/ft.parquet"]]})
    d = wait_job(uri, r["data"]["jobId"])
    check(d["state"] == "Completed" and d["importedRows"] == 2, f"BM25 Parquet import {d}")
    check(wait_count(client, "impft", 5) == 5, "imported BM25 rows served")
    row = client.query("impft", filter="id == 4", output_fields=["sv"])[0]
    check(row["sv"] == {4: 1.0, 9: 0.25}, f"sparse row from Parquet: {row}")
    hits = client.search("impft", data=["red"], anns_field="bm", limit=3, search_params={"metric_type": "BM25"})[0]
    check(sorted(h["id"] for h in hits) == [0, 2], f"BM25 over imported rows: {hits}")
    hits = client.search("impft", data=[{1: 1.0}], anns_field="sv", limit=3, output_fields=["sv"])[0]
    check([h["id"] for h in hits] == [1] and hits[0]["entity"]["sv"] == {1: 1.0, 9: 0.5},
          f"sparse over imported rows: {hits}")
    client.drop_collection("impft")
    # GEOMETRY fields from JSON and Parquet files: WKT made canonical, nulls kept, bad WKT
    # fails the job with the reason.
    if client.has_collection("impgeo"):
        client.drop_collection("impgeo")
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("geo", DataType.GEOMETRY, nullable=True)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="FLAT", metric_type="L2")
    client.create_collection("impgeo", schema=schema, index_params=index, consistency_level="Strong")
    with open(os.path.join(bucket, "bulk/geo.json"), "w") as f:
        json.dump({"rows": [{"id": 1, "vector": vec(1), "geo": "point(1 2)"},
                            {"id": 2, "vector": vec(2), "geo": None}]}, f)
    pq.write_table(pa.table({"id": pa.array([3], pa.int64()),
                             "vector": pa.array([np.array(vec(3), dtype=np.float32)], pa.list_(pa.float32())),
                             "geo": pa.array(["MULTIPOINT (0 0, 1 1)"], pa.string())}),
                   os.path.join(bucket, "bulk/geo.parquet"))
    for files, rows in [(["bulk/geo.json"], 2), (["bulk/geo.parquet"], 1)]:
        r = rest(uri, "jobs/import/create", {"collectionName": "impgeo", "files": [files]})
        d = wait_job(uri, r["data"]["jobId"])
        check(d["state"] == "Completed" and d["importedRows"] == rows, f"geometry import {files}: {d}")
    with open(os.path.join(bucket, "bulk/badgeo.json"), "w") as f:
        json.dump({"rows": [{"id": 9, "vector": vec(9), "geo": "LINESTRING (0 0)"}]}, f)
    r = rest(uri, "jobs/import/create", {"collectionName": "impgeo", "files": [["bulk/badgeo.json"]]})
    d = wait_job(uri, r["data"]["jobId"])
    check(d["state"] == "Failed" and "syntax error" in d.get("reason", ""), f"bad WKT import: {d}")
    client.load_collection("impgeo")
    check(wait_count(client, "impgeo", 3) == 3, "imported geometry rows served")
    got = sorted(client.query("impgeo", filter="id > 0", output_fields=["geo"]), key=lambda x: x["id"])
    check([r["geo"] for r in got] == ["POINT (1 2)", None, "MULTIPOINT ((0 0), (1 1))"], f"geometry rows: {got}")
    got = client.query("impgeo", filter="ST_INTERSECTS(geo, 'POLYGON ((0 0, 2 0, 2 3, 0 3, 0 0))')",
                       output_fields=["id"])
    check(sorted(r["id"] for r in got) == [1, 3], f"spatial filter over imported rows: {got}")
    client.drop_collection("impgeo")
    print("formats: all checks passed")


def writers(uri, endpoint, bucket):
    """What pymilvus's RemoteBulkWriter writes into the S3 bucket, in each of its file types
    (Parquet, JSON, NumPy), imports unchanged through pymilvus's bulk_import (REST)."""
    from pymilvus.bulk_writer import BulkFileType, RemoteBulkWriter, bulk_import, get_import_progress

    client = MilvusClient(uri=uri)
    from pymilvus import CollectionSchema, FieldSchema  # the writer takes an ORM schema
    fields = [FieldSchema("id", DataType.INT64, is_primary=True),
              FieldSchema("vector", DataType.FLOAT_VECTOR, dim=DIM),
              FieldSchema("title", DataType.VARCHAR, max_length=64),
              FieldSchema("meta", DataType.JSON),
              FieldSchema("bits", DataType.BINARY_VECTOR, dim=16),
              FieldSchema("half", DataType.FLOAT16_VECTOR, dim=2)]
    schema = CollectionSchema(fields, enable_dynamic_field=True)
    if client.has_collection("imp_w"):
        client.drop_collection("imp_w")
    index = client.prepare_index_params()
    index.add_index("vector", index_type="FLAT", metric_type="L2")
    index.add_index("bits", index_type="BIN_FLAT", metric_type="HAMMING")
    index.add_index("half", index_type="FLAT", metric_type="L2")
    client.create_collection("imp_w", schema=schema, index_params=index, consistency_level="Strong")

    def bits(i):
        return bytes([i % 256, (i * 7) % 256])

    def half(i):
        return [float(i % 50) / 4, -1.5]
    conn = RemoteBulkWriter.S3ConnectParam(endpoint=endpoint, access_key="minioadmin", secret_key="minioadmin",
                                           bucket_name=bucket, secure=False)
    total = 0
    for n, file_type in enumerate([BulkFileType.PARQUET, BulkFileType.JSON, BulkFileType.NUMPY]):
        with RemoteBulkWriter(schema=schema, remote_path=f"writer_{file_type.name}", connect_param=conn,
                              file_type=file_type) as w:
            for i in range(n * 1000, n * 1000 + 700):
                w.append_row({"id": i, "vector": vec(i), "title": f"t{i}", "meta": {"n": i}, "kind": file_type.name,
                              "bits": bits(i), "half": half(i)})
            w.commit()
            files = w.batch_files
        check(files and all(files), f"{file_type.name}: the writer wrote {files}")
        r = bulk_import(url=uri, collection_name="imp_w", files=files).json()
        check(r["code"] == 0, f"{file_type.name}: bulk_import {r}")
        job = r["data"]["jobId"]
        deadline = time.time() + 120
        while True:
            p = get_import_progress(url=uri, job_id=job).json()
            if p["data"]["state"] in ("Completed", "Failed") or time.time() > deadline:
                break
            time.sleep(0.2)
        check(p["data"]["state"] == "Completed" and p["data"]["importedRows"] == 700, f"{file_type.name}: {p}")
        total += 700
    client.load_collection("imp_w")
    check(wait_count(client, "imp_w", total) == total, "every written row imported")
    got = client.query("imp_w", filter="id in [5, 1005, 2005]", output_fields=["title", "meta", "kind"])
    got = sorted(got, key=lambda x: x["id"])
    check(got == [{"id": 5, "title": "t5", "meta": {"n": 5}, "kind": "PARQUET"},
                  {"id": 1005, "title": "t1005", "meta": {"n": 1005}, "kind": "JSON"},
                  {"id": 2005, "title": "t2005", "meta": {"n": 2005}, "kind": "NUMPY"}], f"rows {got}")
    # Binary and float16 vectors from every file type, byte for byte.
    import numpy as np
    got = client.query("imp_w", filter="id in [5, 1005, 2005]", output_fields=["bits", "half"])
    for r in got:
        b = r["bits"][0] if isinstance(r["bits"], list) else r["bits"]
        h = r["half"][0] if isinstance(r["half"], list) else r["half"]
        check(b == bits(r["id"]), f"bits of {r['id']}: {b!r}")
        check(h == np.array(half(r["id"]), dtype=np.float16).tobytes(), f"half of {r['id']}: {h!r}")
    client.drop_collection("imp_w")
    print("writers: all checks passed")


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
    elif mode == "writers":
        writers(sys.argv[2], sys.argv[3], sys.argv[4])
    elif mode == "big":
        big(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif mode == "verify":
        verify(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode}")
