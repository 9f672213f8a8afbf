"""pymilvus 2.5.18 against the proxy: run by tests/python_client.rs, which starts etcd,
the rootcoords and the proxy and passes the proxy's URI.

    python pymilvus_client.py basic URI
    python pymilvus_client.py failover URI SECONDS
    python pymilvus_client.py create_nonstop URI SECONDS
    python pymilvus_client.py write URI
    python pymilvus_client.py insert_nonstop URI SECONDS [NAME [SHARDS]]
    python pymilvus_client.py flush URI STORAGE_DIR
    python pymilvus_client.py flush_count URI NAME [TIMEOUT]
    python pymilvus_client.py drop URI NAME
    python pymilvus_client.py index URI STORAGE_DIR
    python pymilvus_client.py index_build URI NAME ROWS DIM

Exits 0 when every check passes; prints what failed otherwise.
"""
import json
import sys
import time

from pymilvus import DataType, MilvusClient, MilvusException


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Started:
    """Prints (once, flushed) that the first call was answered: the test waits for this
    line (milvus::testkit::client::STARTED) before it kills or restarts servers."""

    def __init__(self):
        self.done = False

    def __call__(self):
        if not self.done:
            self.done = True
            print("client: first call answered", file=sys.stderr, flush=True)


def make_schema():
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True, description="primary key")
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
    schema.add_field("title", DataType.VARCHAR, max_length=64)
    return schema


def basic(uri):
    client = MilvusClient(uri=uri)
    version = client.get_server_version()
    check(isinstance(version, str) and version, f"server version {version!r}")

    client.create_collection("books", schema=make_schema(), consistency_level="Strong")
    check("books" in client.list_collections(), "books listed")
    check(client.has_collection("books") is True, "has books")
    check(client.has_collection("nope") is False, "has nope is False")

    d = client.describe_collection("books")
    check(d["collection_name"] == "books", f"name: {d}")
    fields = {f["name"]: f for f in d["fields"]}
    check(list(fields) == ["id", "vec", "title"], f"fields (no $meta): {list(fields)}")
    check(fields["id"]["type"] == DataType.INT64 and fields["id"].get("is_primary"), f"id: {fields['id']}")
    check(fields["id"]["field_id"] == 100, f"field ids from 100: {fields['id']}")
    check(fields["vec"]["type"] == DataType.FLOAT_VECTOR and fields["vec"]["params"]["dim"] == 8, f"vec: {fields['vec']}")
    check(fields["title"]["type"] == DataType.VARCHAR and fields["title"]["params"]["max_length"] == 64, f"title: {fields['title']}")
    check(d["enable_dynamic_field"] is True, "dynamic field on")
    check(d["consistency_level"] in (0, "Strong"), f"consistency level {d['consistency_level']!r}")
    check(isinstance(d["collection_id"], int) and d["collection_id"] > 0, f"collection id {d['collection_id']}")
    check(d["created_timestamp"] >> 18 > 1_700_000_000_000, f"created timestamp {d['created_timestamp']}")
    check(d["num_shards"] == 1, f"shards {d['num_shards']}")

    client.create_partition("books", "p2024")
    check(client.has_partition("books", "p2024") is True, "has partition")
    parts = client.list_partitions("books")
    check(parts == ["_default", "p2024"], f"partitions {parts}")
    client.drop_partition("books", "p2024")
    check(client.has_partition("books", "p2024") is False, "partition dropped")

    client.create_database("library")
    check(set(client.list_databases()) >= {"default", "library"}, f"databases {client.list_databases()}")
    client.using_database("library")
    check(client.list_collections() == [], "new database is empty")
    client.create_collection("papers", schema=make_schema())
    check(client.list_collections() == ["papers"], f"scoped: {client.list_collections()}")
    client.using_database("default")
    check("papers" not in client.list_collections(), "papers is not in default")
    client.using_database("library")
    client.drop_collection("papers")
    client.using_database("default")
    client.drop_database("library")
    check("library" not in client.list_databases(), "database dropped")

    try:
        client.describe_collection("missing")
        raise AssertionError("describing a missing collection did not raise")
    except MilvusException as e:
        check(e.code == 100, f"missing collection code {e.code}: {e}")

    client.drop_collection("books")
    check(client.has_collection("books") is False, "books dropped")
    print("basic: all checks passed")


def failover(uri, seconds):
    """Calls without pause for SECONDS while the test kills and stops rootcoords."""
    client = MilvusClient(uri=uri)
    created = {}
    calls, failures, max_stall = 0, [], 0.0
    end = time.monotonic() + seconds
    i = 0
    first = Started()
    while time.monotonic() < end:
        i += 1
        started = time.monotonic()
        try:
            if i % 5 == 1:
                name = f"f{i}"
                client.create_collection(name, schema=make_schema())
                created[name] = client.describe_collection(name)
            names = client.list_collections()
            for name in created:
                check(name in names, f"{name} missing from {names}")
            check(client.has_collection("nope") is False, "has nope")
            calls += 1
            first()
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failures.append(f"{type(e).__name__}: {e}")
        max_stall = max(max_stall, time.monotonic() - started)
    for name, before in created.items():
        after = client.describe_collection(name)
        if after != before:
            failures.append(f"{name} changed: {before} -> {after}")
    print(json.dumps({"calls": calls, "collections": len(created), "failures": failures,
                      "max_stall_ms": round(max_stall * 1000, 1)}))
    if failures:
        sys.exit(1)


def create_nonstop(uri, seconds):
    """Creates collections one after another for SECONDS while the test kills the active
    rootcoord again and again; then checks every created name is listed exactly once."""
    client = MilvusClient(uri=uri)
    created, failures, max_stall = [], [], 0.0
    end = time.monotonic() + seconds
    i = 0
    first = Started()
    while time.monotonic() < end:
        i += 1
        name = f"n{i}"
        started = time.monotonic()
        try:
            client.create_collection(name, schema=make_schema())
            created.append(name)
            first()
            print(f"created {name}", file=sys.stderr, flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failures.append(f"create {name}: {type(e).__name__}: {e}")
        max_stall = max(max_stall, time.monotonic() - started)
    listed = client.list_collections()
    for name in created:
        if listed.count(name) != 1:
            failures.append(f"{name} listed {listed.count(name)} times")
    extra = sorted(set(listed) - set(created))
    if extra:
        failures.append(f"listed but never acknowledged: {extra}")
    print(json.dumps({"created": len(created), "listed": len(listed), "failures": failures,
                      "max_stall_ms": round(max_stall * 1000, 1)}))
    if failures:
        sys.exit(1)


def expect_error(what, fn, *needles):
    try:
        fn()
    except MilvusException as e:
        text = f"{e.code} {e.message}"
        for n in needles:
            check(n in text, f"{what}: {n!r} not in {text!r}")
        return e
    raise AssertionError(f"{what}: no error")


def write(uri):
    """insert, upsert, delete by ids and bad inputs; the test reads the log afterwards."""
    client = MilvusClient(uri=uri)
    client.create_collection("w", schema=make_schema())
    rows = [{"id": i, "vec": [float(i)] * 8, "title": f"t{i}", "color": "red"} for i in range(100)]
    r = client.insert("w", rows)
    check(r["insert_count"] == 100, f"insert: {r}")
    check(list(r["ids"]) == list(range(100)), f"insert ids: {r}")
    r = client.upsert("w", [{"id": 5, "vec": [0.5] * 8, "title": "five"}])
    check(r["upsert_count"] == 1, f"upsert: {r}")
    r = client.delete("w", ids=[1, 2, 3])
    check(isinstance(r, dict) and r["delete_count"] == 3, f"delete: {r}")
    # Bad input: refused with Milvus's code and a reason, nothing written.
    expect_error("wrong dim", lambda: client.insert("w", [{"id": 1, "vec": [1.0] * 4, "title": "x"}]),
                 "1100", "dim")
    expect_error("too long", lambda: client.insert("w", [{"id": 1, "vec": [1.0] * 8, "title": "x" * 100}]),
                 "1100", "length of varchar field title exceeds max length", "max length: 64")
    expect_error("missing collection", lambda: client.insert("nope", rows[:1]), "100")
    # Delete by a filter other than keys reads the keys from the loaded collection.
    expect_error("delete by filter, not loaded", lambda: client.delete("w", filter="title == 'a'"),
                 "101", "collection not loaded")
    expect_error("bad delete filter", lambda: client.delete("w", filter="title =="),
                 "1100", "cannot parse expression")
    # autoID: the keys come from the server.
    auto = MilvusClient.create_schema(auto_id=True)
    auto.add_field("pk", DataType.INT64, is_primary=True)
    auto.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    client.create_collection("auto", schema=auto)
    r = client.insert("auto", [{"vec": [0.1] * 4} for _ in range(10)])
    ids = list(r["ids"])
    check(r["insert_count"] == 10 and len(set(ids)) == 10, f"auto insert: {r}")
    expect_error("pk with autoID", lambda: client.insert("auto", [{"pk": 1, "vec": [0.1] * 4}]),
                 "auto id")
    # A batch larger than the log's message limit (1 MiB): split, still one answer.
    big = MilvusClient.create_schema(auto_id=False)
    big.add_field("id", DataType.INT64, is_primary=True)
    big.add_field("vec", DataType.FLOAT_VECTOR, dim=256)
    client.create_collection("big", schema=big)
    r = client.insert("big", [{"id": i, "vec": [0.25] * 256} for i in range(2000)])
    check(r["insert_count"] == 2000, f"big insert: {r}")
    print(json.dumps({"w": client.describe_collection("w")["collection_id"],
                      "auto": client.describe_collection("auto")["collection_id"],
                      "big": client.describe_collection("big")["collection_id"]}))
    print("write: all checks passed")


def insert_nonstop(uri, seconds, name="nonstop", shards=1):
    """Inserts batches of 100 new keys for SECONDS while the test kills or restarts
    servers; prints the acknowledged keys' count and every failure."""
    client = MilvusClient(uri=uri)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
    client.create_collection(name, schema=schema, shards_num=shards)
    acked, failures, max_stall = [], [], 0.0
    end = time.monotonic() + seconds
    batch = 0
    first = Started()
    while time.monotonic() < end:
        ids = list(range(batch * 100, batch * 100 + 100))
        batch += 1
        started = time.monotonic()
        try:
            r = client.insert(name, [{"id": i, "vec": [0.5] * 8} for i in ids])
            check(r["insert_count"] == 100, f"insert: {r}")
            acked.extend(ids)
            first()
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failures.append(f"{type(e).__name__}: {e}")
        max_stall = max(max_stall, time.monotonic() - started)
    print(json.dumps({"collection": client.describe_collection(name)["collection_id"],
                      "acked": len(acked), "batches": batch, "failures": failures,
                      "max_stall_ms": round(max_stall * 1000, 1)}))
    # A run that never got an insert acknowledged proves nothing about what follows.
    check(acked, "no insert was acknowledged")


def row_count(client, name):
    return int(client.get_collection_stats(name)["row_count"])


def flush(uri, storage):
    """insert, upsert, delete, flush: statistics count the rows, pyarrow reads the
    segment and delta files under STORAGE_DIR, bad input changes nothing."""
    import glob
    import pyarrow.parquet as pq

    client = MilvusClient(uri=uri)
    client.create_collection("f", schema=make_schema(), shards_num=2)
    check(row_count(client, "f") == 0, "an empty collection has rows")
    started = time.monotonic()
    client.flush("f")
    empty_ms = (time.monotonic() - started) * 1000
    rows = [{"id": i, "vec": [float(i)] * 8, "title": f"t{i}", "tag": i % 3} for i in range(1000)]
    client.insert("f", rows[:500])
    client.insert("f", rows[500:])
    client.upsert("f", [{"id": 7, "vec": [0.7] * 8, "title": "seven"}])
    client.delete("f", ids=[1, 2, 3])
    started = time.monotonic()
    client.flush("f")
    flush_ms = (time.monotonic() - started) * 1000
    # Milvus counts persisted rows without subtracting deletes: 1000 + the upserted one.
    check(row_count(client, "f") == 1001, f"row_count {row_count(client, 'f')}, expected 1001")
    expect_error("wrong dim", lambda: client.insert("f", [{"id": 1, "vec": [1.0] * 4, "title": "x"}]),
                 "1100", "dim")
    expect_error("missing collection", lambda: client.flush("nope"), "100")
    expect_error("missing collection stats", lambda: client.get_collection_stats("nope"), "100")
    client.flush("f")
    check(row_count(client, "f") == 1001, "a refused insert changed row_count")
    coll = client.describe_collection("f")["collection_id"]
    files = glob.glob(f"{storage}/insert_log/{coll}/**/*.parquet", recursive=True)
    tables = [pq.read_table(f) for f in files]
    check(sum(t.num_rows for t in tables) == 1001, f"segment files hold {[t.num_rows for t in tables]}")
    for t in tables:
        check({"RowID", "Timestamp", "id", "vec", "title", "$meta"} <= set(t.column_names),
              f"columns {t.column_names}")
    keys = sorted(k for t in tables for k in t.column("id").to_pylist())
    check(keys == sorted(list(range(1000)) + [7]), "segment keys are not the inserted ones")
    deltas = glob.glob(f"{storage}/delta_log/{coll}/*.parquet")
    deleted = sorted(k for f in deltas for k in pq.read_table(f).column("id").to_pylist())
    check(deleted == [1, 2, 3, 7], f"delta files hold {deleted}")
    print(json.dumps({"collection": coll, "segments": len(files), "empty_flush_ms": round(empty_ms, 1),
                      "flush_ms": round(flush_ms, 1)}))
    print("flush: all checks passed")


def vectors(n, dim, seed):
    import random
    rng = random.Random(seed)
    return [[rng.random() for _ in range(dim)] for _ in range(n)]


def fill(client, name, rows, dim, batch=5000):
    """A collection NAME of ROWS random DIM vectors, flushed."""
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    client.create_collection(name, schema=schema)
    for start in range(0, rows, batch):
        n = min(batch, rows - start)
        vs = vectors(n, dim, start)
        client.insert(name, [{"id": start + i, "vec": vs[i]} for i in range(n)])
    client.flush(name)


def index_params(field, index_type, metric, **params):
    p = MilvusClient.prepare_index_params()
    p.add_index(field_name=field, index_type=index_type, metric_type=metric, params=params)
    return p


def index(uri, storage):
    """create_index / describe_index / list_indexes / drop_index as pymilvus uses them,
    over 30,000 rows; bad parameters refused with 1100 and nothing created."""
    import glob

    client = MilvusClient(uri=uri)
    fill(client, "ix", 30000, 32)
    for what, params, needle in [
        ("M out of range", index_params("vec", "HNSW", "L2", M=4096, efConstruction=64), "'M' (4096)"),
        ("efConstruction missing", index_params("vec", "HNSW", "L2", M=16), "efConstruction"),
        ("unknown type", index_params("vec", "HNSW_X", "L2"), "invalid index type: HNSW_X"),
        ("binary metric on floats", index_params("vec", "FLAT", "HAMMING"),
         "float vector index does not support metric type: HAMMING"),
        ("unknown metric", index_params("vec", "FLAT", "EUCLID"), "metric type EUCLID not found"),
        ("AUTOINDEX with params", index_params("vec", "AUTOINDEX", "L2", M=8), "only metric type"),
        ("nlist out of range", index_params("vec", "IVF_FLAT", "L2", nlist=70000), "'nlist' (70000)"),
        ("unsupported sq_type", index_params("vec", "HNSW_SQ", "L2", M=8, efConstruction=32, sq_type="SQ4U"),
         "'sq_type' (SQ4U)"),
    ]:
        expect_error(what, lambda: client.create_index("ix", params), "1100", needle)
    # Milvus answers these with its generic code (65535).
    expect_error("missing field", lambda: client.create_index("ix", index_params("nope", "FLAT", "L2")),
                 "65535", "cannot create index on non-exist field: nope")
    check(client.list_indexes("ix") == [], "a refused create_index left an index")
    check(client.describe_index("ix", "vec") is None, "describe_index of no index")
    started = time.monotonic()
    client.create_index("ix", index_params("vec", "HNSW", "L2", M=16, efConstruction=64))
    build_s = time.monotonic() - started
    d = client.describe_index("ix", "vec")
    check(d["state"] == "Finished", f"state {d}")
    check(d["indexed_rows"] == 30000 and d["total_rows"] == 30000 and d["pending_index_rows"] == 0,
          f"rows {d}")
    check(d["index_type"] == "HNSW" and d["metric_type"] == "L2" and str(d["M"]) == "16", f"params {d}")
    check(client.list_indexes("ix") == ["vec"], f"list_indexes {client.list_indexes('ix')}")
    coll = client.describe_collection("ix")["collection_id"]
    files = glob.glob(f"{storage}/index_files/*/index")
    check(len(files) >= 1, "no index file written")
    # The same index again is fine; a different one on the same field is not.
    client.create_index("ix", index_params("vec", "HNSW", "L2", M=16, efConstruction=64))
    expect_error("second index", lambda: client.create_index(
        "ix", index_params("vec", "IVF_FLAT", "L2", nlist=64)), "65535", "at most one distinct index")
    client.drop_index("ix", "vec")
    check(client.list_indexes("ix") == [], "drop_index left the index")
    deadline = time.monotonic() + 15
    while glob.glob(f"{storage}/index_files/*/index") and time.monotonic() < deadline:
        time.sleep(0.2)
    check(not glob.glob(f"{storage}/index_files/*/index"), "index files of a dropped index remain")
    # The other kinds, and an empty collection (Finished at once, 0 rows).
    for kind, params in [("IVF_FLAT", {"nlist": 64}), ("FLAT", {}),
                         ("HNSW_SQ", {"M": 8, "efConstruction": 32, "sq_type": "SQ8"})]:
        client.create_index("ix", index_params("vec", kind, "IP", **params))
        d = client.describe_index("ix", "vec")
        check(d["state"] == "Finished" and d["indexed_rows"] == 30000, f"{kind}: {d}")
        client.drop_index("ix", "vec")
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
    client.create_collection("empty", schema=schema)
    client.create_index("empty", index_params("vec", "AUTOINDEX", "COSINE"))
    d = client.describe_index("empty", "vec")
    check(d["state"] == "Finished" and d["total_rows"] == 0, f"empty: {d}")
    check(d["index_type"] == "AUTOINDEX" and d["metric_type"] == "COSINE", f"AUTOINDEX echo: {d}")
    print(json.dumps({"collection": coll, "hnsw_build_s": round(build_s, 2)}))
    print("index: all checks passed")


def index_build(uri, name, rows, dim):
    """NAME with ROWS x DIM vectors, flushed; then HNSW (M 16, efConstruction 200), waited
    for; prints the description."""
    client = MilvusClient(uri=uri)
    fill(client, name, rows, dim)
    print("filled", flush=True)
    started = time.monotonic()
    client.create_index(name, index_params("vec", "HNSW", "L2", M=16, efConstruction=200))
    d = client.describe_index(name, "vec")
    d["build_s"] = round(time.monotonic() - started, 2)
    d["collection"] = client.describe_collection(name)["collection_id"]
    print(json.dumps(d))


def drop(uri, name):
    MilvusClient(uri=uri).drop_collection(name)


def flush_count(uri, name, timeout=None):
    """Flushes NAME and prints its row_count."""
    client = MilvusClient(uri=uri)
    started = time.monotonic()
    client.flush(name, timeout=timeout)
    print(json.dumps({"row_count": row_count(client, name),
                      "flush_ms": round((time.monotonic() - started) * 1000, 1)}))


if __name__ == "__main__":
    mode, uri = sys.argv[1], sys.argv[2]
    if mode == "basic":
        basic(uri)
    elif mode == "failover":
        failover(uri, float(sys.argv[3]))
    elif mode == "create_nonstop":
        create_nonstop(uri, float(sys.argv[3]))
    elif mode == "write":
        write(uri)
    elif mode == "insert_nonstop":
        insert_nonstop(uri, float(sys.argv[3]), *sys.argv[4:5], *map(int, sys.argv[5:6]))
    elif mode == "flush":
        flush(uri, sys.argv[3])
    elif mode == "index":
        index(uri, sys.argv[3])
    elif mode == "index_build":
        index_build(uri, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "drop":
        drop(uri, sys.argv[3])
    elif mode == "flush_count":
        flush_count(uri, sys.argv[3], *map(float, sys.argv[4:5]))
    else:
        sys.exit(f"unknown mode {mode!r}: expected basic, failover, create_nonstop, write, "
                 "insert_nonstop, flush, drop, flush_count, index or index_build")
