"""pymilvus 2.5.18 against the docker-compose cluster: run by tests/deploy.rs.

    python deploy_client.py nonstop URI STOP_FILE
        DDL, inserts, flushes, searches and queries in a loop until STOP_FILE exists;
        prints a JSON summary {calls, failures, ...}; exits 1 if any call failed.
    python deploy_client.py prepare URI NAME ROWS
        a collection with ROWS rows, flushed, indexed (HNSW) and loaded; prints
        {"rows": ROWS, "neighbours": [...]} for ten fixed queries.
    python deploy_client.py verify URI NAME EXPECTED_JSON
        the same collection after a restart: every row is there and the ten queries
        find the same neighbours.
"""
import json
import os
import random
import sys
import time
import traceback

from pymilvus import DataType, MilvusClient

from pymilvus_client import Started, check, index_params

DIM = 16
TIMEOUT = 90  # seconds per call: a takeover is at most a session TTL plus the proxy's retry


def schema():
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("tag", DataType.VARCHAR, max_length=32)
    return s


def rows(start, n, seed):
    rng = random.Random(seed)
    return [
        {"id": start + i, "vec": [rng.random() for _ in range(DIM)], "tag": f"t{(start + i) % 7}"}
        for i in range(n)
    ]


def create(client, name):
    client.create_collection(name, schema=schema(), consistency_level="Strong", timeout=TIMEOUT)
    client.create_index(name, index_params("vec", "HNSW", "L2", M=8, efConstruction=64), timeout=TIMEOUT)
    client.load_collection(name, timeout=TIMEOUT)


def nonstop(uri, stop_file):
    client = MilvusClient(uri=uri, timeout=TIMEOUT)
    started = Started()
    calls, failures, inserted, ddl = 0, [], 0, 0
    slowest = (0.0, "")
    main = "deploy_nonstop"

    def call(what, fn, *args, **kw):
        nonlocal calls, slowest
        calls += 1
        t0 = time.monotonic()
        try:
            out = fn(*args, timeout=TIMEOUT, **kw)
            started()
            return True, out
        except Exception as e:  # every failed call is reported, none is retried here
            failures.append(f"{time.strftime('%H:%M:%S')} {what}: {type(e).__name__}: {e}"[:400])
            return False, None
        finally:
            took = time.monotonic() - t0
            if took > slowest[0]:
                slowest = (took, what)

    if client.has_collection(main):
        client.drop_collection(main)
    create(client, main)
    started()
    i = 0
    while not os.path.exists(stop_file):
        i += 1
        batch = rows(inserted, 50, i)
        if call("insert", client.insert, main, batch)[0]:
            inserted += len(batch)
        if i % 10 == 0:
            call("flush", client.flush, main)
        ok, res = call("search", client.search, main, [batch[0]["vec"]], limit=3, output_fields=["tag"])
        if ok and inserted and not res[0]:
            failures.append(f"search {i}: no hits with {inserted} rows inserted")
        if i % 5 == 0:
            ok, got = call("query", client.query, main, filter="", output_fields=["count(*)"])
            if ok and got[0]["count(*)"] != inserted:
                failures.append(f"query {i}: count(*) {got[0]['count(*)']} != {inserted} acknowledged rows")
        if i % 15 == 0:
            name = f"deploy_ddl_{i}"
            if call("create_collection", client.create_collection, name, schema=schema())[0]:
                call("describe_collection", client.describe_collection, name)
                call("drop_collection", client.drop_collection, name)
                ddl += 1
    print(json.dumps({"calls": calls, "failures": failures, "inserted": inserted, "ddl_rounds": ddl,
                      "slowest_call_s": round(slowest[0], 3), "slowest_call": slowest[1]}))
    return not failures


def queries():
    rng = random.Random(7)
    return [[rng.random() for _ in range(DIM)] for _ in range(10)]


def neighbours(client, name):
    res = client.search(name, queries(), limit=5, search_params={"params": {"ef": 64}}, timeout=TIMEOUT)
    return [[hit["id"] for hit in hits] for hits in res]


def prepare(uri, name, n):
    client = MilvusClient(uri=uri, timeout=TIMEOUT)
    if client.has_collection(name):
        client.drop_collection(name)
    client.create_collection(name, schema=schema(), consistency_level="Strong")
    for start in range(0, n, 2000):
        client.insert(name, rows(start, min(2000, n - start), start))
    client.flush(name)
    client.create_index(name, index_params("vec", "HNSW", "L2", M=8, efConstruction=64))
    client.load_collection(name)
    count = client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]
    check(count == n, f"count(*) {count} != {n}")
    print(json.dumps({"rows": n, "neighbours": neighbours(client, name)}))
    return True


def verify(uri, name, expected):
    want = json.loads(expected)
    client = MilvusClient(uri=uri, timeout=TIMEOUT)
    check(client.has_collection(name), f"{name} is gone")
    check(client.list_indexes(name) == ["vec"], f"indexes {client.list_indexes(name)}")
    client.load_collection(name)
    count = client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]
    check(count == want["rows"], f"count(*) {count} != {want['rows']} acknowledged rows")
    got = neighbours(client, name)
    check(got == want["neighbours"], f"neighbours changed: {got} != {want['neighbours']}")
    print(json.dumps({"rows": count, "neighbours_same": True}))
    return True


def main():
    mode, uri = sys.argv[1], sys.argv[2]
    try:
        if mode == "nonstop":
            ok = nonstop(uri, sys.argv[3])
        elif mode == "prepare":
            ok = prepare(uri, sys.argv[3], int(sys.argv[4]))
        elif mode == "verify":
            ok = verify(uri, sys.argv[3], sys.argv[4])
        else:
            print(f"unknown mode {mode}", file=sys.stderr)
            sys.exit(2)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
