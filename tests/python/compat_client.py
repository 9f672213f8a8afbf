"""What real Milvus clients hit first (the client-defects issue), through pymilvus 2.5.18:
run by tests/compat.rs against a cluster of every role.

    python compat_client.py sizes URI LIMIT_BYTES
    python compat_client.py indexes URI
    python compat_client.py scalar_filters URI
    python compat_client.py geometry URI
    python compat_client.py versions URI
    python compat_client.py calls URI
    python compat_client.py collections URI N
    python compat_client.py batches URI NAME N
    python compat_client.py aliases URI
    python compat_client.py rename URI
    python compat_client.py info URI
    python compat_client.py alter URI
    python compat_client.py compaction URI auto|manual|kill-write|kill-verify

Exits 0 when every check passes; prints what failed otherwise.
"""
import asyncio
import json
import os
import random
import sys
import threading
import time

import grpc
import numpy as np
import zlib

from pymilvus import (AsyncMilvusClient, Collection, DataType, MilvusClient, MilvusException,
                      connections, utility)

from pymilvus_client import check, expect_error


def fresh(client, name):
    if client.has_collection(name):
        client.drop_collection(name)


def sizes(uri, limit):
    """An insert over 4 MiB works; one over proxy.grpc.serverMaxRecvSize is refused at
    once with a message naming the key (never a hang of retries)."""
    client = MilvusClient(uri=uri)
    fresh(client, "big")
    client.create_collection("big", dimension=128)
    rng = np.random.default_rng(1)
    rows = [{"id": i, "vector": v} for i, v in enumerate(rng.random((10000, 128), dtype=np.float32).tolist())]
    res = client.insert("big", rows)  # about 5 MB on the wire
    check(res["insert_count"] == 10000, f"10,000 x 128 insert: {res}")
    n = limit // (128 * 4) + 2000
    rows = [{"id": i, "vector": v} for i, v in enumerate(rng.random((n, 128), dtype=np.float32).tolist())]
    started = time.monotonic()
    try:
        client.insert("big", rows)
        check(False, f"an insert of {n} rows over the {limit}-byte limit was accepted")
    except grpc.RpcError as e:
        took = time.monotonic() - started
        check(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, f"code {e.code()}: {e.details()}")
        check("proxy.grpc.serverMaxRecvSize" in e.details(), f"message {e.details()}")
        check(took < 10, f"the refusal took {took:.1f} s")
    res = client.query("big", filter="", output_fields=["count(*)"], consistency_level="Strong")
    check(res[0]["count(*)"] == 10000, f"nothing of the refused insert was stored: {res}")
    print("sizes: all checks passed")


def indexes(uri):
    """No index_type is AUTOINDEX; scalar and JSON path indexes are accepted, described,
    dropped, refused as Milvus refuses them, and leave filters working."""
    client = MilvusClient(uri=uri)
    fresh(client, "ix")
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
    schema.add_field("age", DataType.INT64)
    schema.add_field("name", DataType.VARCHAR, max_length=32)
    schema.add_field("flag", DataType.BOOL)
    schema.add_field("doc", DataType.JSON)
    schema.add_field("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=8)
    client.create_collection("ix", schema=schema)
    ip = client.prepare_index_params()
    ip.add_index("vec", metric_type="L2")
    client.create_index("ix", ip)
    d = client.describe_index("ix", "vec")
    check(d["index_type"] == "AUTOINDEX" and d["metric_type"] == "L2", f"no index_type is AUTOINDEX: {d}")
    # The same index again, spelled out: Milvus takes it as the same one.
    ip = client.prepare_index_params()
    ip.add_index("vec", index_type="AUTOINDEX", metric_type="L2")
    client.create_index("ix", ip)
    ip = client.prepare_index_params()
    ip.add_index("vec", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 32})
    expect_error("another vector index on the field", lambda: client.create_index("ix", ip),
                 "at most one distinct index is allowed per field")
    scalar = {"age": "STL_SORT", "name": "Trie", "flag": "BITMAP", "tags": "INVERTED"}
    ip = client.prepare_index_params()
    for field, kind in scalar.items():
        ip.add_index(field, index_type=kind)
    client.create_index("ix", ip)
    for field, kind in scalar.items():
        d = client.describe_index("ix", field)
        check(d["index_type"] == kind and d["state"] == "Finished", f"{field}: {d}")
    # JSON path indexes: one per path, on a JSON field and on a dynamic key.
    ip = client.prepare_index_params()
    ip.add_index("doc", index_type="INVERTED", index_name="doc_a",
                 params={"json_cast_type": "double", "json_path": "doc['a']"})
    ip.add_index("doc", index_type="INVERTED", index_name="doc_b",
                 params={"json_cast_type": "varchar", "json_path": "doc['b']"})
    ip.add_index("color", index_type="INVERTED", params={"json_cast_type": "varchar"})
    client.create_index("ix", ip)
    names = client.list_indexes("ix")
    for n in ["vec", "age", "name", "flag", "tags", "doc_a", "doc_b"]:
        check(n in names, f"{n} not in {names}")
    d = client.describe_index("ix", "doc_a")
    check(d["field_name"] == "doc" and d["json_path"] == "doc['a']", f"json path index: {d}")
    dynamic = [n for n in names if n not in ("vec", "age", "name", "flag", "tags", "doc_a", "doc_b")]
    check(len(dynamic) == 1, f"one index on the dynamic key: {names}")
    check(client.describe_index("ix", dynamic[0])["field_name"] == "color", "dynamic key index")
    ip = client.prepare_index_params()
    ip.add_index("doc", index_type="INVERTED", index_name="doc_a2",
                 params={"json_cast_type": "double", "json_path": "doc['a']"})
    expect_error("a second index on one JSON path", lambda: client.create_index("ix", ip),
                 "creating multiple indexes on same field is not supported")
    for field, kind, msg in [
        ("name", "STL_SORT", "STL_SORT are only supported on numeric field"),
        ("age", "Trie", "TRIE are only supported on varchar field"),
        ("id", "BITMAP", "create bitmap index on primary key not supported"),
        ("name", "NOPE", "invalid index type: NOPE"),
    ]:
        ip = client.prepare_index_params()
        ip.add_index(field, index_type=kind, index_name=f"bad_{field}")
        expect_error(f"{kind} on {field}", lambda: client.create_index("ix", ip), msg)
    ip = client.prepare_index_params()
    ip.add_index("doc", index_type="INVERTED", index_name="no_cast", params={"json_path": "doc['c']"})
    expect_error("JSON index without cast type", lambda: client.create_index("ix", ip),
                 "json index must specify cast type")
    check(client.list_indexes("ix") == names, "refused indexes left nothing behind")
    rows = [{"id": i, "vec": [float(i)] * 8, "age": i, "name": f"n{i}", "flag": i % 2 == 0,
             "doc": {"a": i, "b": str(i)}, "tags": [i, i + 1], "color": "red" if i < 5 else "blue"}
            for i in range(10)]
    client.insert("ix", rows)
    client.flush("ix")
    client.load_collection("ix")
    for expr, want in [("age >= 7", [7, 8, 9]), ("name == 'n3'", [3]), ("flag == false and age < 4", [1, 3]),
                       ("doc['a'] < 2", [0, 1]), ("array_contains(tags, 5)", [4, 5]), ("color == 'red' and id > 2", [3, 4])]:
        got = sorted(r["id"] for r in client.query("ix", filter=expr, output_fields=["id"], consistency_level="Strong"))
        check(got == want, f"{expr}: {got}")
    client.release_collection("ix")
    client.drop_index("ix", "age")
    client.drop_index("ix", "doc_b")
    left = client.list_indexes("ix")
    check("age" not in left and "doc_b" not in left and "doc_a" in left, f"after drops: {left}")
    print("indexes: all checks passed")


def versions(uri):
    """Several clients insert (keys repeated across and within requests), upsert and
    delete over shared keys; every key then shows its newest acknowledged version, and
    query, count(*), get and search agree, growing, sealed and after a reload."""
    connections.connect(uri=uri)
    client = MilvusClient(uri=uri)
    fresh(client, "ver")
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("ver", DataType.INT64)
    client.create_collection("ver", schema=schema, num_shards=2)
    ip = client.prepare_index_params()
    ip.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_index("ver", ip)
    client.load_collection("ver")
    col = Collection("ver")
    keys = list(range(60))
    counter = iter(range(1, 10 ** 9))
    lock = threading.Lock()
    events = []  # (timestamp, position in request, key, ver or None for a delete)
    failures = []

    def vec(ver):
        return [float(ver), float(ver % 7), float(ver % 11), 1.0]

    def worker(seed):
        rng = random.Random(seed)
        for _ in range(40):
            op = rng.choice(["insert", "insert", "upsert", "delete"])
            try:
                if op == "delete":
                    ks = rng.sample(keys, rng.randint(1, 4))
                    r = col.delete(f"id in {ks}")
                    with lock:
                        events.extend((r.timestamp, 0, k, None) for k in ks)
                    continue
                if op == "insert":
                    # Keys may repeat inside one insert: the later row wins.
                    ks = [rng.choice(keys) for _ in range(rng.randint(1, 5))]
                else:
                    ks = rng.sample(keys, rng.randint(1, 5))
                with lock:
                    vers = [next(counter) for _ in ks]
                rows = [{"id": k, "vec": vec(v), "ver": v} for k, v in zip(ks, vers)]
                r = col.insert(rows) if op == "insert" else col.upsert(rows)
                with lock:
                    events.extend((r.timestamp, i + 1, k, v) for i, (k, v) in enumerate(zip(ks, vers)))
            except Exception as e:  # noqa: BLE001 - every failure is reported
                failures.append(f"{op}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(not failures, f"failed calls: {failures[:5]}")
    # An upsert batch naming a key twice is refused and changes nothing.
    expect_error("upsert repeating a key", lambda: client.upsert("ver", [{"id": 1, "vec": vec(0), "ver": -1},
                                                                       {"id": 1, "vec": vec(0), "ver": -2}]),
                 "duplicate primary keys are not allowed in the same batch")
    newest = {}
    for ts, pos, k, v in sorted(events):
        newest[k] = v
    live = {k: v for k, v in newest.items() if v is not None}

    def verify(stage):
        rows = client.query("ver", filter="id >= 0", output_fields=["ver"], consistency_level="Strong")
        got = {r["id"]: r["ver"] for r in rows}
        check(len(rows) == len(got), f"{stage}: a key returned twice")
        check(got == live, f"{stage}: visible rows {sorted(got.items())} != newest {sorted(live.items())}")
        n = client.query("ver", filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
        check(n == len(live), f"{stage}: count(*) {n} != {len(live)} live keys")
        got = {r["id"]: r["ver"] for r in client.get("ver", ids=keys, output_fields=["ver"])}
        check(got == live, f"{stage}: get disagrees")
        probes = list(live.items())[:20]
        res = client.search("ver", data=[vec(v) for _, v in probes], limit=3, output_fields=["ver"],
                            consistency_level="Strong")
        for (k, v), hits in zip(probes, res):
            check(hits and hits[0]["id"] == k and hits[0]["entity"]["ver"] == v,
                  f"{stage}: search for version {v} of key {k}: {hits}")
            check(len({h["id"] for h in hits}) == len(hits), f"{stage}: a key twice in {hits}")
            for h in hits:
                check(live.get(h["id"]) == h["entity"]["ver"], f"{stage}: an old version was found: {h}")
        return len(live)

    verify("growing")
    client.flush("ver")
    verify("sealed")
    client.release_collection("ver")
    client.load_collection("ver")
    n = verify("reloaded")
    print(json.dumps({"events": len(events), "live_keys": n}))
    print("versions: all checks passed")


def calls(uri):
    """The smaller defects: each a call a user makes."""
    client = MilvusClient(uri=uri)
    for name in ["c1", "auto1", "parts"]:
        fresh(client, name)
    client.create_collection("c1", dimension=8, metric_type="L2")
    client.insert("c1", [{"id": i, "vector": [float(i)] * 8, "age": i} for i in range(10)])
    # delete(filter, filter_params) uses the template values.
    res = client.delete("c1", filter="age >= {lo} and age < {hi}", filter_params={"lo": 2, "hi": 5})
    check(res["delete_count"] == 3, f"templated delete {res}")
    left = sorted(r["id"] for r in client.query("c1", filter="id >= 0", output_fields=["id"],
                                                  consistency_level="Strong"))
    check(left == [0, 1, 5, 6, 7, 8, 9], f"templated delete removed {left}")
    # A search carries its cost (rows considered).
    res = client.search("c1", data=[[1.0] * 8], limit=3, consistency_level="Strong")
    check(res.extra.get("cost", 0) > 0, f"search extra {res.extra}")
    # Range search: only the hits within the bounds (ids 0-9 at [i] * 8, 2-4 deleted:
    # squared distances to [1] * 8 are 0 (id 1), 8 (id 0), 128 (id 5), ...).
    res = client.search("c1", data=[[1.0] * 8], limit=5, consistency_level="Strong",
                        search_params={"params": {"radius": 150.0, "range_filter": 0.5}})[0]
    check([h["id"] for h in res] == [0, 5], f"range search {res}")
    # search_iterator pages through every row once, best first, and ends.
    it = client.search_iterator("c1", data=[[1.0] * 8], batch_size=2, limit=6)
    ids = []
    for _ in range(10):
        page = it.next()
        if not page:
            break
        ids.extend(h["id"] for h in page)
    it.close()
    check(ids == [1, 0, 5, 6, 7, 8], f"search_iterator pages {ids}")
    # A method this build lacks names itself with Milvus's "service unimplemented".
    connections.connect("lb", uri=uri)
    try:
        utility.load_balance("c1", 1, [2], using="lb")
        check(False, "load_balance answered")
    except MilvusException as e:
        check(e.code == 10 and "LoadBalance" in e.message, f"{e}")
    analyzer(client)
    sparse(client)
    full_text(client)
    # Names, dims and types Milvus refuses.
    expect_error("invalid collection name", lambda: client.create_collection("12-s", dimension=8), "1100",
                 "Invalid collection name: 12-s. the first character of a collection name must be an underscore or letter")
    expect_error("invalid name on load", lambda: client.load_collection("12-s"), "Invalid collection name: 12-s.")
    expect_error("missing collection", lambda: client.load_collection("no_such_coll"), "100",
                 "collection not found[database=default][collection=no_such_coll]")
    check(client.has_collection("no_such_coll") is False, "has_collection of a missing collection")
    expect_error("invalid partition name", lambda: client.create_partition("c1", "a b"),
                 "Invalid partition name: a b. Partition name can only contain numbers, letters and underscores.")
    client.create_partition("c1", "1-ok")  # digits first and '-' are fine in partition names
    expect_error("missing partition", lambda: client.insert("c1", [{"id": 99, "vector": [0.0] * 8}],
                                                            partition_name="nopart"), "partition not found[partition=nopart]")
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=1)
    expect_error("dim 1", lambda: client.create_collection("d1", schema=schema), "invalid dimension: 1")
    # GEOMETRY is served now (the `geometry` mode); a bad default value is refused whole.
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=8)
    schema.add_field("x", DataType.GEOMETRY, default_value="POINT (1)")
    expect_error("GEOMETRY default", lambda: client.create_collection("t1", schema=schema), "1100",
                 "invalid default value for geometry field x")
    check(not client.has_collection("t1"), "a refused collection was created")
    expect_error("missing database", lambda: MilvusClient(uri=uri, db_name="nodb"), "800",
                 "database not found[database=nodb]")
    # An upsert on an autoID collection gets new keys, and the given one is gone.
    client.create_collection("auto1", dimension=4, auto_id=True)
    old = client.insert("auto1", [{"vector": [0.1] * 4}])["ids"][0]
    new = client.upsert("auto1", [{"id": old, "vector": [0.2] * 4}])["primary_keys"][0]
    check(new != old, f"autoID upsert kept the key {old}")
    ids = [r["id"] for r in client.query("auto1", filter="", output_fields=["id"], limit=10,
                                         consistency_level="Strong")]
    check(ids == [new], f"after the autoID upsert: {ids}")

    # release_partitions after load_partitions, through the async client.
    async def partitions():
        a = AsyncMilvusClient(uri=uri)
        await a.create_collection("parts", dimension=4)
        await a.create_partition("parts", "p1")
        await a.insert("parts", [{"id": i, "vector": [0.1] * 4} for i in range(5)], partition_name="p1")
        await a.release_collection("parts")
        await a.load_partitions("parts", ["p1"])
        started = time.monotonic()
        await a.release_partitions("parts", ["p1"])
        check(time.monotonic() - started < 5, "release_partitions took long")
        state = MilvusClient(uri=uri).get_load_state("parts")
        check(state["state"].name == "NotLoad", f"after release_partitions: {state}")
        # A partition released from a whole-collection load leaves the others loaded.
        await a.load_collection("parts")
        await a.release_partitions("parts", ["p1"])
        res = await a.query("parts", filter="id >= 0", output_fields=["id"], consistency_level="Strong")
        check(res == [], f"rows of a released partition: {res}")
        await a.close()

    asyncio.run(partitions())
    print("calls: all checks passed")


def analyzer(client):
    """run_analyzer: Milvus's analyzers (standard, english, jieba, ...) by parameters or by a
    collection field's own analyzer, with offsets, positions and Milvus's token hashes."""
    res = client.run_analyzer("The Quick, brown fox!", analyzer_params={"type": "english"},
                              with_detail=True, with_hash=True)
    check([t["token"] for t in res.tokens] == ["quick", "brown", "fox"], f"english: {res.tokens}")
    quick = res.tokens[0]
    check((quick["start_offset"], quick["end_offset"], quick["position"], quick["position_length"])
          == (4, 9, 1, 1), f"token detail {quick}")
    check(quick["hash"] == zlib.crc32(b"quick") % 0xFFFFFFFF, f"token hash {quick}")
    many = client.run_analyzer(["Hello World", "milvus结巴分词器中文测试", ""],
                               analyzer_params={"tokenizer": "jieba"})
    check([[t for t in r.tokens] for r in many] ==
          [["Hello", "World"], ["milvus", "结巴", "分词", "分词器", "中文", "测试"], []],
          f"jieba: {[r.tokens for r in many]}")
    default = client.run_analyzer("Milvus, the DB")
    check(default.tokens == ["milvus", "the", "db"], f"default analyzer: {default.tokens}")
    expect_error("unknown tokenizer",
                 lambda: client.run_analyzer("x", analyzer_params={"tokenizer": "nope"}),
                 "2000", "unsupported tokenizer: nope")
    expect_error("stop filter without words",
                 lambda: client.run_analyzer("x", analyzer_params={"tokenizer": "standard",
                                                                   "filter": [{"type": "stop"}]}),
                 "stop filter stop_words can't be empty")
    # By a collection's field: the field's own analyzer; a field without one is refused.
    fresh(client, "docs")
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("text", DataType.VARCHAR, max_length=256, enable_analyzer=True, enable_match=True,
                     analyzer_params={"tokenizer": "whitespace", "filter": ["lowercase"]})
    schema.add_field("title", DataType.VARCHAR, max_length=64)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection("docs", schema=schema, index_params=index)
    res = client.run_analyzer("Hello, World", collection_name="docs", field_name="text")
    check(res.tokens == ["hello,", "world"], f"field analyzer: {res.tokens}")
    expect_error("field without analyzer",
                 lambda: client.run_analyzer("x", collection_name="docs", field_name="title"),
                 "1100", "field title has no analyzer")
    expect_error("missing field",
                 lambda: client.run_analyzer("x", collection_name="docs", field_name="nope"),
                 "1700", "field not found[field=nope]")
    # TEXT_MATCH: rows with any of the query's tokens, in sealed and growing segments.
    texts = ["Vector search with Milvus", "the quick brown fox", "Milvus scales out", "nothing here"]
    client.insert("docs", [{"id": i, "v": [float(i)] * 4, "text": t, "title": "t"} for i, t in enumerate(texts)])
    client.flush("docs")
    client.insert("docs", [{"id": 10, "v": [9.0] * 4, "text": "FOX and milvus", "title": "t"}])
    hits = sorted(r["id"] for r in client.query("docs", filter="TEXT_MATCH(text, 'milvus')",
                                                output_fields=["id"], consistency_level="Strong"))
    check(hits == [0, 2, 10], f"TEXT_MATCH milvus: {hits}")
    hits = sorted(r["id"] for r in client.query("docs", filter="TEXT_MATCH(text, 'fox vector') and id < 5",
                                                output_fields=["id"], consistency_level="Strong"))
    check(hits == [0, 1], f"TEXT_MATCH fox vector: {hits}")
    res = client.search("docs", data=[[0.0] * 4], limit=10, filter="TEXT_MATCH(text, 'fox')",
                        consistency_level="Strong")[0]
    check(sorted(h["id"] for h in res) == [1, 10], f"search filtered by TEXT_MATCH: {res}")
    expect_error("TEXT_MATCH without enable_match",
                 lambda: client.query("docs", filter="TEXT_MATCH(title, 't')"), "field title does not enable match")
    # PHRASE_MATCH: the tokens as a phrase, within the slop (sealed rows and a growing one).
    for expr, want in [("PHRASE_MATCH(text, 'milvus scales')", [2]),
                       ("PHRASE_MATCH(text, 'quick fox')", []),
                       ("PHRASE_MATCH(text, 'quick fox', 1)", [1]),
                       ("phrase_match(text, 'milvus fox', 2)", []),
                       ("phrase_match(text, 'milvus fox', 3)", [10]),
                       ("PHRASE_MATCH(text, 'MILVUS') and id > 0", [2, 10])]:
        hits = sorted(r["id"] for r in client.query("docs", filter=expr, output_fields=["id"],
                                                    consistency_level="Strong"))
        check(hits == want, f"{expr}: {hits}")
    res = client.search("docs", data=[[0.0] * 4], limit=10, filter="PHRASE_MATCH(text, 'with milvus')",
                        consistency_level="Strong")[0]
    check([h["id"] for h in res] == [0], f"search filtered by PHRASE_MATCH: {res}")
    expect_error("negative slop", lambda: client.query("docs", filter="PHRASE_MATCH(text, 'a b', -1)"),
                 "1100", '"slop" should not be a negative interger')
    expect_error("PHRASE_MATCH without enable_match",
                 lambda: client.query("docs", filter="PHRASE_MATCH(title, 't u')"), "field title does not enable match")
    client.drop_collection("docs")
    # enable_match needs enable_analyzer and analyzer parameters that build.
    for kw, needle in [({"enable_match": True}, "is set to enable match or bm25 function but not enable analyzer"),
                       ({"enable_match": True, "enable_analyzer": True,
                         "analyzer_params": {"tokenizer": "nope"}}, "unsupported tokenizer: nope")]:
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
        schema.add_field("text", DataType.VARCHAR, max_length=64, **kw)
        expect_error(f"create with {kw}", lambda: client.create_collection("docs", schema=schema), "1100", needle)
    check(not client.has_collection("docs"), "a refused text collection was created")


def sparse(client):
    """SPARSE_FLOAT_VECTOR: dict rows in, the same rows out; SPARSE_INVERTED_INDEX / SPARSE_WAND
    answers by inner product as an exact scan does, over sealed and growing rows."""
    fresh(client, "sp")
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("sv", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("tag", DataType.INT64)
    client.create_collection("sp", schema=schema)
    rnd = random.Random(5)
    rows = [{"id": i, "tag": i % 3,
             "sv": {rnd.randrange(500): round(rnd.random(), 3) for _ in range(rnd.randrange(1, 15))}}
            for i in range(400)]
    client.insert("sp", rows[:300])
    client.flush("sp")
    index = client.prepare_index_params()
    for metric, needle in [("L2", "only IP&BM25 is the supported metric type for sparse index"),
                           ("BM25", "only BM25 Function output field support BM25 metric type")]:
        index = client.prepare_index_params()
        index.add_index("sv", index_type="SPARSE_INVERTED_INDEX", metric_type=metric)
        expect_error(f"sparse index with {metric}", lambda: client.create_index("sp", index), "1100", needle)
    index = client.prepare_index_params()
    index.add_index("sv", index_type="SPARSE_WAND", metric_type="IP", params={"drop_ratio_build": 0.1})
    client.create_index("sp", index)
    client.load_collection("sp")
    client.insert("sp", rows[300:])

    def exact(q, keep=lambda r: True):
        scored = [(sum(v * r["sv"].get(k, 0.0) for k, v in q.items()), r["id"]) for r in rows if keep(r)]
        return sorted([x for x in scored if x[0] > 0], key=lambda x: (-x[0], x[1]))[:5]
    for qi in [3, 310, 77]:
        q = rows[qi]["sv"]
        for flt, keep in [("", lambda r: True), ("tag == 1", lambda r: r["tag"] == 1)]:
            got = client.search("sp", data=[q], limit=5, filter=flt, output_fields=["sv"],
                                 consistency_level="Strong")[0]
            want = exact(q, keep)
            check([h["id"] for h in got] == [i for _, i in want]
                  and all(abs(h["distance"] - s) < 1e-4 for h, (s, _) in zip(got, want)),
                  f"sparse search {qi} {flt!r}: {[(h['id'], h['distance']) for h in got]} vs {want}")
            for h in got:
                back = {int(k): v for k, v in h["entity"]["sv"].items()}
                check(back.keys() == rows[h["id"]]["sv"].keys()
                      and all(abs(back[k] - v) < 1e-6 for k, v in rows[h["id"]]["sv"].items()),
                      f"sparse output of {h['id']}: {back}")
    # drop_ratio_search leaves out the query's smaller values: still well-formed answers.
    got = client.search("sp", data=[rows[3]["sv"]], limit=5, search_params={"params": {"drop_ratio_search": 0.5}},
                        consistency_level="Strong")[0]
    check(0 < len(got) <= 5 and all(h["distance"] > 0 for h in got), f"drop_ratio_search: {got}")
    res = client.query("sp", filter="id in [7]", output_fields=["sv"], consistency_level="Strong")
    check({int(k) for k in res[0]["sv"]} == set(rows[7]["sv"]), f"sparse query: {res}")
    expect_error("negative sparse value", lambda: client.insert("sp", [{"id": 1000, "tag": 0, "sv": {3: -1.0}}]),
                 "1100", "negative value in sparse float vector")
    check(len(client.query("sp", filter="id == 1000", consistency_level="Strong")) == 0, "a refused row was stored")
    client.drop_collection("sp")
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("sv", DataType.SPARSE_FLOAT_VECTOR, dim=8)
    expect_error("sparse with dim", lambda: client.create_collection("sp", schema=schema),
                 "dim should not be specified for sparse vector field sv")


def bm25_reference(docs, query, k1=1.2, b=0.75):
    """BM25 as Milvus 2.5 scores it: IDF ln(1 + (N - df + 0.5) / (df + 0.5)) over the shard's
    rows times the query's term count, the row's length its token count (standard analyzer:
    lowercase words)."""
    import re
    toks = [re.findall(r"[a-z0-9]+", d.lower()) for d in docs]
    n = len(docs)
    avgdl = max(sum(len(t) for t in toks) / n, 1.0)
    q = {}
    for t in re.findall(r"[a-z0-9]+", query.lower()):
        q[t] = q.get(t, 0) + 1
    scores = []
    for i, t in enumerate(toks):
        s = 0.0
        for term, qtf in q.items():
            tf = t.count(term)
            if tf:
                df = sum(1 for x in toks if term in x)
                idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
                s += qtf * idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(t) / avgdl))
        if s > 0:
            scores.append((s, i))
    return sorted(scores, key=lambda x: (-x[0], x[1]))


def full_text(client):
    """A BM25 function: texts in, term counts written to a sparse field, searched by raw text
    with BM25 scores (Milvus 2.5's formula and per-shard statistics)."""
    from pymilvus import Function, FunctionType
    fresh(client, "ft")
    fresh(client, "ftm")
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=512, enable_analyzer=True)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["text"], output_field_names=["sparse"]))
    index = client.prepare_index_params()
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                    params={"bm25_k1": 1.4, "bm25_b": 0.7})
    client.create_collection("ft", schema=schema, index_params=index, num_shards=1)
    docs = ["information retrieval is a field of study",
            "information retrieval focuses on finding relevant information in large datasets",
            "data mining and information retrieval overlap in research",
            "the cat sat on the mat", "dogs and cats are pets", "a field guide to cats and dogs"]
    client.insert("ft", [{"id": i, "text": t} for i, t in enumerate(docs[:4])])
    client.flush("ft")
    client.insert("ft", [{"id": i + 4, "text": t} for i, t in enumerate(docs[4:])])
    for query in ["information retrieval research", "cats and dogs in the field"]:
        got = client.search("ft", data=[query], anns_field="sparse", limit=4, output_fields=["text"],
                            consistency_level="Strong")[0]
        want = bm25_reference(docs, query, k1=1.4, b=0.7)[:4]
        check([h["id"] for h in got] == [i for _, i in want]
              and all(abs(h["distance"] - s) < 1e-3 * max(s, 1) for h, (s, _) in zip(got, want))
              and all(h["entity"]["text"] == docs[h["id"]] for h in got),
              f"BM25 {query!r}: {[(h['id'], h['distance']) for h in got]} vs {want}")
    fields = client.describe_collection("ft")["functions"]
    check(len(fields) == 1 and fields[0]["input_field_names"] == ["text"], f"functions {fields}")
    expect_error("output of a function field", lambda: client.query("ft", filter="id >= 0", output_fields=["sparse"]),
                 "not allowed to retrieve raw data of field sparse")
    row = client.query("ft", filter="id == 0", output_fields=["*"], consistency_level="Strong")
    check(row and set(row[0]) == {"id", "text"}, f"* leaves the function output out: {row}")
    expect_error("vectors for BM25", lambda: client.search("ft", data=[{1: 0.5}], anns_field="sparse", limit=2),
                 "please provide varchar for BM25 Function based search")
    client.drop_collection("ft")
    # A search iterator pages through hits that tie (identical texts score alike): each once.
    client.create_collection("ft", schema=schema, index_params=index)
    client.insert("ft", [{"id": i, "text": "apple pie" if i < 5 else ["apple", "banana"][i - 5]}
                         for i in range(7)])
    it = client.search_iterator("ft", data=["apple"], anns_field="sparse", batch_size=2, limit=20,
                                search_params={"metric_type": "BM25"})
    paged = []
    for _ in range(10):
        page = it.next()
        if not page:
            break
        paged.extend(h["id"] for h in page)
    it.close()
    check(sorted(paged) == [0, 1, 2, 3, 4, 5] and paged[0] == 5, f"iterator over tied BM25 hits: {paged}")
    client.drop_collection("ft")
    # Several analyzers on one field: each row cut by the one its language names (alias,
    # else default), each search by its analyzer_name.
    multi = {"by_field": "lang", "alias": {"eng": "en"},
             "analyzers": {"en": {"type": "english"}, "zh": {"tokenizer": "jieba"},
                           "default": {"tokenizer": "icu"}}}
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("lang", DataType.VARCHAR, max_length=16)
    schema.add_field("text", DataType.VARCHAR, max_length=256, enable_analyzer=True,
                     multi_analyzer_params=multi)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["text"], output_field_names=["sparse"]))
    client.create_collection("ftm", schema=schema, index_params=index)
    client.insert("ftm", [{"id": 0, "lang": "en", "text": "He runs every day"},
                         {"id": 1, "lang": "zh", "text": "自然语言处理很有趣"},
                         {"id": 2, "lang": "fr", "text": "running club"}])

    def found(text, **params):
        hits = client.search("ftm", data=[text], anns_field="sparse", limit=5, consistency_level="Strong",
                             search_params={"metric_type": "BM25", **params})[0]
        return sorted(h["id"] for h in hits)
    check(found("running", analyzer_name="eng") == [0], f"english stems: {found('running', analyzer_name='eng')}")
    check(found("running") == [2], f"default analyzer: {found('running')}")
    check(found("自然语言", analyzer_name="zh") == [1], f"jieba: {found('自然语言', analyzer_name='zh')}")
    res = client.run_analyzer(["runs", "runs"], collection_name="ftm", field_name="text", analyzer_names=["en", "x"])
    check([r.tokens for r in res] == [["run"], ["runs"]], f"run_analyzer by name: {[r.tokens for r in res]}")
    client.drop_collection("ftm")
    del multi["analyzers"]["default"]
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("lang", DataType.VARCHAR, max_length=16)
    schema.add_field("text", DataType.VARCHAR, max_length=256, enable_analyzer=True,
                     multi_analyzer_params=multi)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["text"], output_field_names=["sparse"]))
    expect_error("multi analyzer without default", lambda: client.create_collection("ftm", schema=schema),
                 "multi analyzer must set default analyzer for all unknown value")
    # (pymilvus itself refuses other input types.)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=64)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["text"], output_field_names=["sparse"]))
    expect_error("BM25 input without an analyzer", lambda: client.create_collection("ft", schema=schema),
                 "65535", "BM25 function input field must set enable_analyzer to true")
    check(not client.has_collection("ft"), "a refused BM25 collection was created")


def collections(uri, n):
    """N loaded collections of one shard each, the quick-setup way (mc_0 ... mc_N-1)."""
    client = MilvusClient(uri=uri)
    for i in range(n):
        client.create_collection(f"mc_{i}", dimension=8, num_shards=1)
    print(f"collections: {n} loaded")


def batches(uri, name, n):
    """N inserts of 10 rows into NAME, then a flush: N + 1 messages in its shard."""
    client = MilvusClient(uri=uri)
    for b in range(n):
        client.insert(name, [{"id": b * 10 + i, "vector": [0.5] * 8} for i in range(10)])
    client.flush(name)
    print(f"batches: {n} inserts and a flush into {name}")


def aliases(uri):
    """Collection aliases as Milvus 2.5 has them: created, described, listed, used as the
    collection's name by every call, moved, in the way of dropping, and refused with
    Milvus's codes and words."""
    client = MilvusClient(uri=uri)
    for name in ["books", "films"]:
        fresh(client, name)
        client.create_collection(name, dimension=4, consistency_level="Strong")
    client.create_alias("books", "shelf")
    client.create_alias("books", "shelf")  # the same again: a success
    client.create_alias("books", "library")
    d = client.describe_alias("shelf")
    check(d["alias"] == "shelf" and d["collection_name"] == "books" and d["db_name"] == "default", f"describe_alias {d}")
    check(sorted(client.list_aliases("books")["aliases"]) == ["library", "shelf"], "list_aliases of books")
    check(sorted(client.list_aliases()["aliases"]) == ["library", "shelf"], "list_aliases of the database")
    check(client.list_aliases("films")["aliases"] == [], "films has no alias")
    check(sorted(client.describe_collection("shelf")["aliases"]) == ["library", "shelf"], "describe_collection aliases")
    check(client.describe_collection("shelf")["collection_name"] == "books", "describe through an alias: the real name")
    check(client.has_collection("shelf"), "has_collection(alias)")
    check("shelf" not in client.list_collections(), "aliases are not collections")
    # Every call takes the alias for the collection's name.
    client.insert("shelf", [{"id": i, "vector": [1.0, float(i), 0.0, 0.0]} for i in range(10)])
    client.flush("shelf")
    client.load_collection("shelf")
    res = client.search("shelf", data=[[1.0, 9.0, 0.0, 0.0]], limit=3)  # COSINE
    check([h["id"] for h in res[0]] == [9, 8, 7], f"search through the alias {res}")
    res = client.query("library", filter="id < 3", output_fields=["id"])
    check(sorted(r["id"] for r in res) == [0, 1, 2], f"query through the alias {res}")
    check(client.list_partitions("shelf") == client.list_partitions("books"), "partitions through the alias")
    check(client.get_collection_stats("shelf")["row_count"] == 10, "stats through the alias")
    # Refusals, with Milvus's codes and messages.
    expect_error("alias named like a collection", lambda: client.create_alias("books", "films"),
                 "1601", "alias and collection name conflict[database=default][alias=films]")
    expect_error("alias taken by another collection", lambda: client.create_alias("films", "shelf"),
                 "1602", "shelf is alias to another collection: books: alias already exist[database=default][alias=shelf]")
    expect_error("alias of a missing collection", lambda: client.create_alias("nowhere", "x1"),
                 "100", "collection not found[database=1][collection=nowhere]")
    expect_error("alias of an alias", lambda: client.create_alias("shelf", "x2"),
                 "100", "collection not found[database=default][collection=shelf]")
    expect_error("bad alias", lambda: client.create_alias("books", "12-s"), "1100",
                 "Invalid collection alias: 12-s. the first character of a collection alias must be an underscore or letter")
    expect_error("long alias", lambda: client.create_alias("books", "a" * 511), "1100",
                 "the length of a collection alias must be less than 255 characters")
    expect_error("bad collection name", lambda: client.create_alias("12-s", "ok_alias"), "1100",
                 "Invalid collection name: 12-s. the first character of a collection name must be an underscore or letter")
    expect_error("describe a missing alias", lambda: client.describe_alias("nothing"),
                 "1600", "alias not found[database=default][alias=nothing]")
    expect_error("list of an alias", lambda: client.list_aliases("shelf"),
                 "100", "collection not found[collection=shelf]")
    expect_error("drop through an alias", lambda: client.drop_collection("shelf"),
                 "cannot drop the collection via alias = shelf")
    expect_error("drop with aliases", lambda: client.drop_collection("books"),
                 "unable to drop the collection [books] because it has associated aliases [library shelf], "
                 "please remove all aliases before dropping the collection")
    expect_error("collection named like an alias",
                 lambda: client.create_collection("shelf", dimension=4),
                 "collection name [shelf] conflicts with an existing alias, please choose a unique name")
    expect_error("alter a missing alias", lambda: client.alter_alias("films", "nothing"),
                 "1600", "alias not found[database=default][alias=nothing]")
    expect_error("alter to a missing collection", lambda: client.alter_alias("nowhere", "nothing"),
                 "100", "collection not found[collection=nowhere]")
    expect_error("alter onto a collection name", lambda: client.alter_alias("films", "books"),
                 "1601", "alias and collection name conflict[database=default][alias=books]")
    check(client.has_collection("books"), "the refused drops dropped nothing")
    # alter_alias moves the alias: the next call through it reaches the other collection;
    # a search iterator begun through it refuses to go on in another collection.
    it = client.search_iterator("shelf", data=[[1.0, 9.0, 0.0, 0.0]], batch_size=3, limit=9)
    check([h["id"] for h in it.next()] == [9, 8, 7], "the iterator's first page")
    client.alter_alias("films", "shelf")
    expect_error("an iterator across an alias change", it.next,
                 "alias or database may have been changed")
    check(client.describe_alias("shelf")["collection_name"] == "films", "shelf now stands for films")
    check(client.list_aliases("books")["aliases"] == ["library"], "books kept library only")
    check(client.get_collection_stats("shelf")["row_count"] == 0, "stats of films through the moved alias")
    client.release_collection("library")
    # Aliases belong to their database.
    if "aliasdb" in client.list_databases():
        client.using_database("aliasdb")
        for c in client.list_collections():
            for a in client.list_aliases(c)["aliases"]:
                client.drop_alias(a)
            client.drop_collection(c)
        client.using_database("default")
        client.drop_database("aliasdb")
    client.create_database("aliasdb")
    other = MilvusClient(uri=uri, db_name="aliasdb")
    other.create_collection("books", dimension=4)
    other.create_alias("books", "shelf")  # same alias name, other database
    check(other.describe_alias("shelf")["collection_name"] == "books", "shelf in aliasdb")
    check(client.describe_alias("shelf")["collection_name"] == "films", "shelf in default unchanged")
    other.drop_alias("shelf")
    other.drop_collection("books")
    # Drops: an alias that does not exist is a success; once the aliases are gone the
    # collection drops, and the names are free again.
    client.drop_alias("never_was")
    for a in ["shelf", "library"]:
        client.drop_alias(a)
    check(client.list_aliases()["aliases"] == [], "every alias dropped")
    check(not client.has_collection("shelf"), "a dropped alias names nothing")
    client.drop_collection("books")
    client.create_collection("shelf", dimension=4)
    client.create_alias("films", "books")
    check(client.describe_alias("books")["collection_name"] == "films", "a dropped collection's name reused as an alias")
    client.drop_alias("books")
    for name in ["shelf", "films"]:
        client.drop_collection(name)
    print("aliases: all checks passed")


def rename(uri):
    """rename_collection within a database and into another: the collection keeps its rows,
    index, load and aliases; Milvus's refusals with its codes and words."""
    client = MilvusClient(uri=uri)
    if "renamedb" in client.list_databases():
        other = MilvusClient(uri=uri, db_name="renamedb")
        for c in other.list_collections():
            other.drop_collection(c)
        client.drop_database("renamedb")
    for name in ["old_c", "new_c", "newer", "taken"]:
        fresh(client, name)
    client.create_collection("old_c", dimension=4, consistency_level="Strong")
    client.create_collection("taken", dimension=4)
    client.insert("old_c", [{"id": i, "vector": [1.0, float(i), 0.0, 0.0]} for i in range(10)])
    client.flush("old_c")
    client.load_collection("old_c")
    client.rename_collection("old_c", "new_c")
    names = client.list_collections()
    check("new_c" in names and "old_c" not in names, f"list after the rename {names}")
    check(not client.has_collection("old_c"), "the old name is gone")
    check(client.describe_collection("new_c")["collection_name"] == "new_c", "described by its new name")
    check(client.get_load_state("new_c")["state"].name == "Loaded", "still loaded")
    res = client.search("new_c", data=[[1.0, 9.0, 0.0, 0.0]], limit=3)
    check([h["id"] for h in res[0]] == [9, 8, 7], f"search under the new name {res}")
    check(client.query("new_c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 10, "rows kept")
    client.insert("new_c", [{"id": 10, "vector": [1.0, 10.0, 0.0, 0.0]}])
    check(client.query("new_c", filter="id == 10", output_fields=["id"]) == [{"id": 10}], "writes under the new name")
    # Refusals.
    expect_error("rename onto a collection", lambda: client.rename_collection("new_c", "taken"),
                 "duplicated new collection name default:taken with other collection name or alias")
    expect_error("rename onto itself", lambda: client.rename_collection("new_c", "new_c"),
                 "duplicated new collection name default:new_c with other collection name or alias")
    expect_error("rename a missing collection", lambda: client.rename_collection("12-s", "x"),
                 "100", "collection not found[database=1][collection=12-s]")
    expect_error("rename to a bad name", lambda: client.rename_collection("new_c", "12-s"),
                 "1100", "Invalid collection name: 12-s")
    expect_error("rename into a missing database", lambda: client.rename_collection("new_c", "x", "nodb"),
                 "target database:nodb not found")
    # Aliases follow their collection; an alias is neither renamed nor a target.
    client.create_alias("new_c", "al")
    client.rename_collection("new_c", "newer")
    check(client.describe_alias("al")["collection_name"] == "newer", "the alias follows the rename")
    expect_error("rename through an alias", lambda: client.rename_collection("al", "x"),
                 "unsupported use an alias to rename collection, alias:al")
    expect_error("rename onto an alias", lambda: client.rename_collection("taken", "al"),
                 "cannot rename collection to an existing alias: al")
    client.create_database("renamedb")
    expect_error("move with aliases", lambda: client.rename_collection("newer", "moved", "renamedb"),
                 "fail to rename db name, must drop all aliases of this collection before rename")
    client.drop_alias("al")
    client.release_collection("newer")
    client.rename_collection("newer", "moved", "renamedb")
    check("newer" not in client.list_collections(), "moved out of default")
    other = MilvusClient(uri=uri, db_name="renamedb")
    check(other.list_collections() == ["moved"], f"moved into renamedb {other.list_collections()}")
    other.load_collection("moved")
    check(other.query("moved", filter="", output_fields=["count(*)"])[0]["count(*)"] == 11, "rows moved along")
    other.release_collection("moved")
    other.drop_collection("moved")
    client.drop_database("renamedb")
    # The old names are free again.
    client.create_collection("old_c", dimension=4)
    # Collection properties: set, replaced, dropped; bad values
    # refused, nothing changed by a refusal.
    client.load_collection("old_c")
    expect_error("mmap of a loaded collection", lambda: client.alter_collection_properties("old_c", {"mmap.enabled": True}),
                 "can not alter mmap properties if collection loaded")
    client.release_collection("old_c")
    client.alter_collection_properties("old_c", {"mmap.enabled": True, "app.owner": "search-team"})
    props = client.describe_collection("old_c")["properties"]
    check(props.get("mmap.enabled") == "True" and props.get("app.owner") == "search-team", f"properties set {props}")
    client.alter_collection_properties("old_c", {"mmap.enabled": False})
    check(client.describe_collection("old_c")["properties"]["mmap.enabled"] == "False", "property replaced")
    expect_error("bad mmap value", lambda: client.alter_collection_properties("old_c", {"mmap.enabled": "maybe"}),
                 "1100", "invalid mmap.enabled value")
    expect_error("bad autocompaction value",
                 lambda: client.alter_collection_properties("old_c", {"collection.autocompaction.enabled": "later"}),
                 "1100", "invalid collection.autocompaction.enabled value: later, expected: true, false")
    expect_error("bad ttl", lambda: client.alter_collection_properties("old_c", {"collection.ttl.seconds": "1h"}),
                 "1100", "collection TTL is not a valid positive integer")
    expect_error("bad ttl at create", lambda: client.create_collection("ttl_c", dimension=4,
                                                                       properties={"collection.ttl.seconds": "x"}),
                 "collection TTL is not a valid positive integer")
    check(not client.has_collection("ttl_c"), "the refused collection was not created")
    expect_error("alter a missing collection", lambda: client.alter_collection_properties("nowhere", {"a": 1}),
                 "100", "collection not found")
    client.drop_collection_properties("old_c", ["mmap.enabled"])
    props = client.describe_collection("old_c")["properties"]
    check("mmap.enabled" not in props and props.get("app.owner") == "search-team", f"property dropped {props}")
    for name in ["old_c", "taken"]:
        client.drop_collection(name)
    print("rename: all checks passed")


def info(uri):
    """What a user asks about the cluster's state (two querynodes are up): index state and
    build progress, partition statistics, replicas, loaded and persisted segments,
    flush_all, the system topology; and Milvus's refusals."""
    from pymilvus import utility
    from pymilvus.grpc_gen import milvus_pb2

    client = MilvusClient(uri=uri)
    connections.connect("info", uri=uri)
    stub = client._get_connection()._stub
    fresh(client, "info_c")
    client.create_collection("info_c", dimension=4, consistency_level="Strong")
    client.create_partition("info_c", "p1")
    client.insert("info_c", [{"id": i, "vector": [1.0, float(i), 0.0, 0.0]} for i in range(100)])
    client.insert("info_c", [{"id": 100 + i, "vector": [0.0, 1.0, float(i), 0.0]} for i in range(50)],
                  partition_name="p1")
    client.flush("info_c")
    # Partition statistics: rows persisted per partition.
    check(client.get_partition_stats("info_c", "p1") == {"row_count": 50}, "p1 row count")
    check(client.get_partition_stats("info_c", "_default") == {"row_count": 100}, "_default row count")
    expect_error("stats of a missing partition", lambda: client.get_partition_stats("info_c", "nope"),
                 "200", "partition not found[partition=nope]")
    # Index state and build progress, through the RPCs themselves (the Node SDK's calls).
    client.release_collection("info_c")
    client.drop_index("info_c", "vector")
    params = client.prepare_index_params()
    params.add_index("vector", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 64})
    client.create_index("info_c", params)
    deadline = time.time() + 60
    while True:
        st = stub.GetIndexState(milvus_pb2.GetIndexStateRequest(collection_name="info_c", index_name="vector"))
        check(st.status.code == 0, f"index state: {st.status}")
        if st.state == 3 or time.time() > deadline:  # Finished
            break
        time.sleep(0.2)
    check(st.state == 3, f"index Finished in time: {st}")
    pr = stub.GetIndexBuildProgress(milvus_pb2.GetIndexBuildProgressRequest(collection_name="info_c",
                                                                            field_name="vector"))
    check(pr.status.code == 0 and pr.indexed_rows == 150 and pr.total_rows == 150, f"progress {pr}")
    st = stub.GetIndexState(milvus_pb2.GetIndexStateRequest(collection_name="info_c", index_name="nope"))
    check(st.status.code == 700 and "index not found[indexName=nope]" in st.status.reason, f"missing index {st.status}")
    stats = stub.GetIndexStatistics(milvus_pb2.GetIndexStatisticsRequest(collection_name="info_c"))
    check([d.index_name for d in stats.index_descriptions] == ["vector"], f"index statistics {stats}")
    check(utility.index_building_progress("info_c", using="info")["indexed_rows"] == 150, "pymilvus progress")
    # Replicas: not loaded, then two.
    check(client.describe_replica("info_c") == [], "no replicas while released")
    check(list(utility.get_query_segment_info("info_c", using="info")) == [], "no loaded segments while released")
    expect_error("segments of a missing collection", lambda: utility.get_query_segment_info("nowhere", using="info"),
                 "100", "collection not found[database=default][collection=nowhere]")
    client.load_collection("info_c", replica_number=2)
    replicas = client.describe_replica("info_c")
    check(len(replicas) == 2, f"two replicas {replicas}")
    nodes = [set(r.group_nodes) for r in replicas]
    check(all(len(n) == 1 for n in nodes) and not (nodes[0] & nodes[1]), f"one querynode each {nodes}")
    for r in replicas:
        check(r.resource_group == "__default_resource_group", f"resource group {r}")
        check(len(r.shards) == 1 and r.shards[0].channel_name.endswith("v0"), f"shards {r.shards}")
        check(r.shards[0].shard_leader in r.group_nodes, f"leader {r.shards[0]}")
    col = Collection("info_c", using="info")
    check(len(col.get_replicas().groups) == 2, "the ORM's replicas")
    # Loaded segments: each held by both replicas' querynodes; persisted ones match.
    loaded = utility.get_query_segment_info("info_c", using="info")
    check(sum(s.num_rows for s in loaded) == 150, f"loaded rows {loaded}")
    check(all(len(s.nodeIds) == 2 and s.state == 3 for s in loaded), f"held twice, sealed {loaded}")
    check(all(s.index_name == "vector" and s.indexID > 0 and s.mem_size > 0 for s in loaded),
          f"searched through the index {loaded}")
    persisted = client._get_connection().get_persistent_segment_infos("info_c")
    check(sorted(s.segmentID for s in persisted) == sorted(s.segmentID for s in loaded),
          f"persisted {persisted} vs loaded {loaded}")
    check(all(s.state == 4 for s in persisted), f"persisted are Flushed {persisted}")
    by_part = {}
    for s in persisted:
        by_part[s.partitionID] = by_part.get(s.partitionID, 0) + s.num_rows
    check(sorted(by_part.values()) == [50, 100], f"rows per partition {by_part}")
    # flush_all: rows written since are persisted once it returns (every database).
    client.insert("info_c", [{"id": 1000 + i, "vector": [0.5, 0.5, float(i), 0.0]} for i in range(10)])
    utility.flush_all(using="info", timeout=60)
    check(client.get_collection_stats("info_c")["row_count"] == 160, "flush_all persisted the new rows")
    resp = stub.FlushAll(milvus_pb2.FlushAllRequest(db_name="nodb"))
    check(resp.status.code == 800 and "database not found[database=nodb]" in resp.status.reason, f"flush_all nodb {resp.status}")
    # The topology (Attu's system view).
    m = stub.GetMetrics(milvus_pb2.GetMetricsRequest(request=json.dumps({"metric_type": "system_info"})))
    check(m.status.code == 0, f"metrics {m.status}")
    topo = json.loads(m.response)
    kinds = sorted(n["infos"]["type"] for n in topo["nodes_info"])
    check(kinds.count("querynode") == 2 and "proxy" in kinds and "rootcoord" in kinds, f"topology {kinds}")
    me = [n for n in topo["nodes_info"] if n["infos"]["name"] == topo["self_name"]]
    check(len(me) == 1 and len(me[0]["connected"]) >= 4, f"the proxy and its coordinators {me}")
    m = stub.GetMetrics(milvus_pb2.GetMetricsRequest(request="{}"))
    check(m.status.code == 1100 and "metric_type" in m.status.reason, f"bad metrics request {m.status}")
    check(client.get_server_version().startswith("v2.5"), "server version")
    # Resource groups: the default one holds both querynodes and the loaded replicas.
    check(client.list_resource_groups() == ["__default_resource_group"], "one resource group")
    rg = client.describe_resource_group("__default_resource_group")
    check(rg.name == "__default_resource_group" and rg.capacity == 1000000 and rg.num_available_node == 2,
          f"the default group {rg}")
    check(rg.num_loaded_replica == {"info_c": 2} and len(rg.nodes) == 2, f"its replicas and nodes {rg}")
    check(sorted(n.node_id for n in rg.nodes) == sorted(set().union(*nodes)), f"its querynodes {rg.nodes}")
    check(rg.config.limits.node_num == 1000000, f"its config {rg.config}")
    check(utility.list_resource_groups(using="info") == ["__default_resource_group"], "the ORM's list")
    expect_error("describe a missing group", lambda: client.describe_resource_group("rg1"),
                 "300", "resource group not found[rg=rg1]")
    expect_error("create a group", lambda: client.create_resource_group("rg1"),
                 "it has one resource group")
    expect_error("create a bad name", lambda: client.create_resource_group("1rg"),
                 "1100", "the first character of a resource group name must be an underscore or letter")
    expect_error("drop the default group", lambda: client.drop_resource_group("__default_resource_group"),
                 "1100", "delete default rg is not permitted")
    client.drop_resource_group("rg_missing")
    client.drop_collection("info_c")
    print("info: all checks passed")


def alter(uri):
    """alter_index_properties, alter_collection_field and alter_database_properties as
    Milvus 2.5 has them: what each may change, when, and its refusals."""
    client = MilvusClient(uri=uri)
    fresh(client, "alt_c")
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.VARCHAR, max_length=16, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("title", DataType.VARCHAR, max_length=16, mmap_enabled=True)
    schema.add_field("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=8)
    params = client.prepare_index_params()
    params.add_index("vector", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 64})
    client.create_collection("alt_c", schema=schema, index_params=params, consistency_level="Strong")
    client.insert("alt_c", [{"id": f"id_{i}", "vector": [1.0, float(i), 0.0, 0.0], "title": "x" * 16,
                             "tags": [i]} for i in range(20)])
    # Index properties: only mmap.enabled / indexoffsetcache.enabled, only while released.
    check(client.describe_index("alt_c", "vector").get("mmap.enabled") is None, "no mmap at first")
    expect_error("alter index while loaded", lambda: client.alter_index_properties("alt_c", "vector", {"mmap.enabled": True}),
                 "104", "can't alter index on loaded collection, please release the collection first: "
                 "collection already loaded[collection=alt_c]")
    expect_error("drop index property while loaded", lambda: client.drop_index_properties("alt_c", "vector", ["mmap.enabled"]),
                 "104", "can't alter index on loaded collection")
    client.release_collection("alt_c")
    for key in ["index_type", "M", "metric_type", "state"]:
        expect_error(f"alter {key}", lambda: client.alter_index_properties("alt_c", "vector", {key: "x"}),
                     "1100", f"{key} is not a configable index proptery")
    for bad in [None, "", 20, "maybe"]:
        expect_error(f"mmap value {bad!r}", lambda: client.alter_index_properties("alt_c", "vector", {"mmap.enabled": bad}),
                     "1100", f"invalid mmap.enabled value: {bad}, expected: true, false")
    expect_error("offset cache on HNSW", lambda: client.alter_index_properties("alt_c", "vector", {"indexoffsetcache.enabled": True}),
                 "1100", "only bitmap index support")
    expect_error("missing index", lambda: client.alter_index_properties("alt_c", "nope", {"mmap.enabled": True}),
                 "700", "index not found[indexName=nope]")
    expect_error("missing collection", lambda: client.alter_index_properties("nowhere", "vector", {"mmap.enabled": True}),
                 "100", "collection not found")
    client.alter_index_properties("alt_c", "vector", {"mmap.enabled": True})
    d = client.describe_index("alt_c", "vector")
    check(d.get("mmap.enabled") == "True" and d.get("M") == "8" and d["index_type"] == "HNSW", f"mmap set {d}")
    client.drop_index_properties("alt_c", "vector", ["mmap.enabled"])
    check("mmap.enabled" not in client.describe_index("alt_c", "vector"), "mmap dropped")
    # An AUTOINDEX index (the quick setup's) with mmap set still builds, loads and searches.
    fresh(client, "alt_auto")
    client.create_collection("alt_auto", dimension=4, consistency_level="Strong")
    client.insert("alt_auto", [{"id": i, "vector": [1.0, float(i), 0.0, 0.0]} for i in range(10)])
    client.release_collection("alt_auto")
    client.alter_index_properties("alt_auto", "vector", {"mmap.enabled": True})
    client.load_collection("alt_auto")
    hits = client.search("alt_auto", data=[[1.0, 3.0, 0.0, 0.0]], limit=1)
    check(hits[0][0]["id"] == 3, f"search after mmap on AUTOINDEX {hits}")
    client.drop_collection("alt_auto")
    # Field properties: max_length applies to later writes, old rows stay.
    client.alter_collection_field("alt_c", "title", {"max_length": 8, "mmap.enabled": False})
    client.alter_collection_field("alt_c", "id", {"max_length": 8})
    client.alter_collection_field("alt_c", "tags", {"max_capacity": 2})
    fields = {f["name"]: f for f in client.describe_collection("alt_c")["fields"]}
    check(fields["title"]["params"].get("max_length") == 8 and fields["title"]["params"].get("mmap_enabled") is False,
          f"title altered {fields['title']}")
    check(fields["tags"]["params"].get("max_capacity") == 2, f"tags altered {fields['tags']}")
    expect_error("max_length of a vector", lambda: client.alter_collection_field("alt_c", "vector", {"max_length": 8}),
                 "1100", "can not modify the maxlength for non-string types")
    expect_error("max_capacity of a string", lambda: client.alter_collection_field("alt_c", "title", {"max_capacity": 8}),
                 "1100", "can not modify the maxcapacity for non-array types")
    expect_error("dim", lambda: client.alter_collection_field("alt_c", "vector", {"dim": 8}),
                 "1100", "dim does not allow update in collection field param")
    from pymilvus.grpc_gen import milvus_pb2
    st = client._get_connection()._stub.AlterCollectionField(milvus_pb2.AlterCollectionFieldRequest(
        collection_name="alt_c", field_name="title", delete_keys=["max_length"]))
    check(st.code == 1100 and "max_length is not allowed to drop in collection field param" in st.reason, f"drop max_length {st}")
    expect_error("missing field", lambda: client.alter_collection_field("alt_c", "nope", {"max_length": 8}),
                 "field nope does not exist in collection")
    expect_error("a long id now", lambda: client.insert("alt_c", [{"id": "x" * 12, "vector": [0.0] * 4, "title": "t", "tags": []}]),
                 "1100", "length of varchar field id exceeds max length")
    expect_error("a long title now", lambda: client.insert("alt_c", [{"id": "new_1", "vector": [0.0] * 4, "title": "t" * 12, "tags": []}]),
                 "1100", "length of varchar field title exceeds max length")
    client.insert("alt_c", [{"id": f"new_{i}", "vector": [0.0] * 4, "title": "t" * 8, "tags": [1, 2]} for i in range(5)])
    client.load_collection("alt_c")
    expect_error("field mmap while loaded", lambda: client.alter_collection_field("alt_c", "title", {"mmap.enabled": True}),
                 "104", "can not alter collection field properties if collection loaded")
    client.alter_collection_field("alt_c", "id", {"max_length": 16})  # max_length: no load check
    check(len(client.query("alt_c", filter="id in ['id_10', 'id_11']", output_fields=["title"])) == 2, "old rows kept")
    check(len(client.query("alt_c", filter="id like 'new_%'")) == 5, "new rows written")
    # Database properties: any key, merged, removed (absent keys ignored).
    if "alt_db" in client.list_databases():
        client.drop_database("alt_db")
    client.create_database("alt_db", properties={"database.replica.number": "3"})
    client.alter_database_properties("alt_db", {"database.replica.number": 2, "key1": "v1", "key2": [1, 2]})
    d = client.describe_database("alt_db")
    check(d == {"name": "alt_db", "database.replica.number": "2", "key1": "v1", "key2": "[1, 2]"}, f"database altered {d}")
    client.drop_database_properties("alt_db", ["key1", "key_non_exist"])
    d = client.describe_database("alt_db")
    check(d == {"name": "alt_db", "database.replica.number": "2", "key2": "[1, 2]"}, f"database key dropped {d}")
    client.alter_database_properties("default", {"owner": "me"})
    check(client.describe_database("default").get("owner") == "me", "default database altered")
    client.drop_database_properties("default", ["owner", "name"])
    check(client.describe_database("default") == {"name": "default"}, "default database back")
    expect_error("alter a missing database", lambda: client.alter_database_properties("nodb", {"a": 1}),
                 "800", "database not found[database=nodb]")
    client.drop_database("alt_db")
    client.drop_collection("alt_c")
    print("alter: all checks passed")


def ttl(uri):
    """collection.ttl.seconds: rows older than the TTL are invisible to query, get and
    search at once, newer rows stay; a sealed segment of only expired rows is dropped
    (gone from the persistent segments); removing the TTL shows what was not dropped."""
    client = MilvusClient(uri=uri)
    fresh(client, "ttl_c")
    client.create_collection("ttl_c", dimension=4, consistency_level="Strong")
    old = [{"id": i, "vector": [1.0, float(i), 0.0, 0.0]} for i in range(10)]
    client.insert("ttl_c", old)
    client.flush("ttl_c")
    written = time.time()
    conn = client._get_connection()
    sealed = [s.segmentID for s in conn.get_persistent_segment_infos("ttl_c")]
    check(len(sealed) == 1, f"one sealed segment of old rows {sealed}")
    check(client.query("ttl_c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 10, "10 old rows")
    # The old rows age past a TTL of 5 s; new rows (growing, not flushed) are younger.
    while time.time() < written + 6:
        time.sleep(0.1)
    new = [{"id": 100 + i, "vector": [1.0, float(i), 0.0, 0.0]} for i in range(10)]
    client.insert("ttl_c", new)
    client.alter_collection_properties("ttl_c", {"collection.ttl.seconds": 5})
    check(client.describe_collection("ttl_c")["properties"].get("collection.ttl.seconds") == "5", "TTL recorded")
    count = client.query("ttl_c", filter="", output_fields=["count(*)"])[0]["count(*)"]
    check(count == 10, f"only the 10 new rows are counted, got {count}")
    ids = sorted(r["id"] for r in client.query("ttl_c", filter="id >= 0", output_fields=["id"]))
    check(ids == list(range(100, 110)), f"query sees the new rows only {ids}")
    check(client.get("ttl_c", ids=[3]) == [], "get of an expired row finds nothing")
    hits = [h["id"] for h in client.search("ttl_c", data=[[1.0, 3.0, 0.0, 0.0]], limit=20)[0]]
    check(sorted(hits) == list(range(100, 110)), f"search finds the new rows only {hits}")
    # The segment of only expired rows is dropped by the datacoord, then released by the
    # querynode holding it.
    deadline = time.time() + 30
    while time.time() < deadline:
        now = [s.segmentID for s in conn.get_persistent_segment_infos("ttl_c")]
        held = [s.segmentID for s in conn.get_query_segment_info("ttl_c")]
        if not set(sealed) & (set(now) | set(held)):
            break
        time.sleep(0.2)
    check(not set(sealed) & (set(now) | set(held)), f"the expired segment is dropped {sealed} {now} {held}")
    # Without the TTL the new rows stay; the dropped rows do not come back.
    client.drop_collection_properties("ttl_c", ["collection.ttl.seconds"])
    count = client.query("ttl_c", filter="", output_fields=["count(*)"])[0]["count(*)"]
    check(count == 10, f"the dropped segment's rows stay gone, got {count}")
    client.drop_collection("ttl_c")
    print("ttl: all checks passed")


def key_schema(key_type=DataType.VARCHAR, **key_args):
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tenant", key_type, is_partition_key=True, **key_args)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
    return schema


def partition_key(uri):
    """A partition-key collection as Milvus 2.5 has it: num_partitions partitions named
    _default_0.., each row in the partition its key hashes to (CRC32 of a VarChar key
    modulo the partition count), reads over all of them, Milvus's refusals."""
    import zlib
    client = MilvusClient(uri=uri)
    fresh(client, "pk_c")
    index = client.prepare_index_params()
    index.add_index("vector", index_type="FLAT", metric_type="L2")
    client.create_collection("pk_c", schema=key_schema(max_length=32), index_params=index, num_partitions=8,
                             consistency_level="Strong")
    parts = client.list_partitions("pk_c")
    check(sorted(parts) == sorted(f"_default_{i}" for i in range(8)), f"eight key partitions {parts}")
    rows = [{"id": i, "tenant": f"t{i % 10}", "vector": [1.0, float(i % 10), 0.0, 0.0]} for i in range(800)]
    client.insert("pk_c", rows[:500])
    client.upsert("pk_c", rows[500:])
    client.flush("pk_c")
    expected = [0] * 8
    for r in rows:
        expected[zlib.crc32(r["tenant"].encode()) % 8] += 1
    got = [client.get_partition_stats("pk_c", f"_default_{i}")["row_count"] for i in range(8)]
    check(got == expected, f"rows by key hash: {got}, expected {expected}")
    check(client.query("pk_c", filter='tenant == "t3"', output_fields=["count(*)"])[0]["count(*)"] == 80, "a tenant's rows")
    hits = client.search("pk_c", data=[[1.0, 3.0, 0.0, 0.0]], filter='tenant == "t3"', limit=5, output_fields=["tenant"])
    check(len(hits[0]) == 5 and all(h["entity"]["tenant"] == "t3" for h in hits[0]), f"a tenant's search {hits}")
    # Partition-key pruning: a filter that bounds the key reads only the partitions its
    # values hash to (the query's cost is the rows it read).
    cost_all = client.query("pk_c", filter="id >= 0", output_fields=["id"]).extra["cost"]
    one = client.query("pk_c", filter='tenant == "t3" and id >= 0', output_fields=["id"])
    check(len(one) == 80 and 80 <= one.extra["cost"] <= cost_all // 2,
          f"a key filter reads its partition only: cost {one.extra['cost']} of {cost_all}")
    two = client.query("pk_c", filter='tenant in ["t3", "t4"] or tenant == "t5"', output_fields=["id"])
    check(len(two) == 240 and two.extra["cost"] < cost_all,
          f"a key list reads its partitions only: cost {two.extra['cost']} of {cost_all}")
    other = client.query("pk_c", filter='tenant == "t3" or id == 1', output_fields=["id"])
    check(len(other) == 81 and other.extra["cost"] == cost_all,
          f"a filter that does not bound the key reads every partition: {other.extra['cost']} of {cost_all}")
    client.delete("pk_c", filter='tenant == "t3"')
    check(client.query("pk_c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 720, "a tenant deleted")
    manual = "not support manually specifying the partition names if partition key mode is used"
    expect_error("insert into a named partition", lambda: client.insert("pk_c", rows[:1], partition_name="_default_1"),
                 "1100", manual)
    expect_error("search named partitions", lambda: client.search("pk_c", data=[[1.0, 0, 0, 0]], partition_names=["_default_1"]),
                 manual)
    expect_error("query named partitions", lambda: client.query("pk_c", filter="id > 0", partition_names=["_default_1"]),
                 manual)
    expect_error("delete in a named partition", lambda: client.delete("pk_c", ids=[1], partition_name="_default_1"),
                 manual)
    expect_error("create a partition", lambda: client.create_partition("pk_c", "p1"),
                 "disable create partition if partition key mode is used")
    expect_error("drop a partition", lambda: client.drop_partition("pk_c", "_default_1"),
                 "disable drop partition if partition key mode is used")
    expect_error("load partitions", lambda: client.load_partitions("pk_c", ["_default_1"]),
                 "disable load partitions if partition key mode is used")
    expect_error("release partitions", lambda: client.release_partitions("pk_c", ["_default_1"]),
                 "disable release partitions if partition key mode is used")
    # Schemas Milvus refuses.
    fresh(client, "pk_bad")
    # pymilvus checks the key's type and count itself; other clients (REST here) get the
    # server's refusals.
    import urllib.request

    def rest_create(fields):
        body = {"collectionName": "pk_bad", "schema": {"fields": fields}}
        req = urllib.request.Request(uri + "/v2/vectordb/collections/create", data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())
    base = [{"fieldName": "id", "dataType": "Int64", "isPrimary": True},
            {"fieldName": "vector", "dataType": "FloatVector", "elementTypeParams": {"dim": 4}}]
    for extra, needle in [
        ([{"fieldName": "k", "dataType": "Float", "isPartitionKey": True}],
         "the data type of partition key should be Int64 or VarChar"),
        ([{"fieldName": "k", "dataType": "Int64", "isPartitionKey": True},
          {"fieldName": "k2", "dataType": "Int64", "isPartitionKey": True}],
         "there are more than one partition key, field name = k, k2"),
    ]:
        r = rest_create(base + extra)
        check(r["code"] == 1100 and needle in r["message"], f"REST partition key refusal {r}")
    expect_error("num_partitions without a key", lambda: client.create_collection("pk_bad", dimension=4, num_partitions=4),
                 "num_partitions should only be specified with partition key field enabled")
    check(not client.has_collection("pk_bad"), "nothing refused was created")
    # An Int64 key: 16 partitions by default.
    client.create_collection("pk_bad", schema=key_schema(DataType.INT64), index_params=index, consistency_level="Strong")
    check(len(client.list_partitions("pk_bad")) == 16, "16 partitions by default")
    client.insert("pk_bad", [{"id": i, "tenant": i % 7, "vector": [1.0, 0.0, 0.0, 0.0]} for i in range(70)])
    client.flush("pk_bad")
    counts = [client.get_partition_stats("pk_bad", f"_default_{i}")["row_count"] for i in range(16)]
    check(sum(counts) == 70 and sum(1 for c in counts if c) > 1 and all(c % 10 == 0 for c in counts),
          f"each key's rows together, keys spread {counts}")
    client.drop_collection("pk_bad")
    client.drop_collection("pk_c")
    print("partition_key: all checks passed")


def retention(uri, phase):
    """Log retention: "write" leaves ret_a's 2,000 rows flushed and ret_b's 1,000 rows only
    in the log; "verify" (after the log dropped what every reader passed, and a datanode
    was killed and replaced) finds every row of both."""
    client = MilvusClient(uri=uri)
    if phase == "write":
        for name in ["ret_a", "ret_b"]:
            fresh(client, name)
            client.create_collection(name, dimension=4, consistency_level="Strong")
        for b in range(20):
            client.insert("ret_a", [{"id": b * 100 + i, "vector": [1.0, float(i), 0.0, 0.0]} for i in range(100)])
        client.flush("ret_a")
        for b in range(10):
            client.insert("ret_b", [{"id": b * 100 + i, "vector": [1.0, float(i), 0.0, 0.0]} for i in range(100)])
        print("retention: written")
        return
    client.flush("ret_b")
    for name, rows in [("ret_a", 2000), ("ret_b", 1000)]:
        client.release_collection(name)
        client.load_collection(name)
        n = client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]
        check(n == rows, f"{name}: every row kept, {n} of {rows}")
        ids = sorted(r["id"] for r in client.query(name, filter="id >= 0", output_fields=["id"], limit=rows))
        check(ids == list(range(rows)), f"{name}: each row once")
    print("retention: all checks passed")


def segments_of(conn, name):
    return [(s.segmentID, s.num_rows) for s in conn.get_persistent_segment_infos(name)]


def wait_compacted(client, name, live, done, what, timeout=90):
    """Waits until done() while checking, on every turn, that Strong reads see each live
    row exactly once: count(*), the IDs of a filtered query, a search's hits."""
    deadline = time.time() + timeout
    turns = 0
    while True:
        n = client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]
        check(n == len(live), f"{what}: count(*) {n} while compacting, expected {len(live)}")
        ids = [r["id"] for r in client.query(name, filter="id >= 0", output_fields=["id"], limit=16384)]
        check(len(ids) == len(set(ids)), f"{what}: a row seen twice while compacting")
        check(set(ids) == live, f"{what}: rows missing or extra while compacting "
              f"{sorted(set(ids) ^ live)[:10]}")
        hits = [h["id"] for h in client.search(name, data=[[0.5] * 8], limit=100)[0]]
        check(len(hits) == len(set(hits)) == min(100, len(live)), f"{what}: search hits {len(hits)}")
        check(set(hits) <= live, f"{what}: search found a deleted row")
        turns += 1
        if done():
            return turns
        check(time.time() < deadline, f"{what}: not done in {timeout} s")
        time.sleep(0.2)


def hnsw_collection(client, name):
    """A fresh one-shard Strong collection `name` (Int64 `id`, 8-dim `vector`) with an HNSW
    index (M 8, efConstruction 64), loaded."""
    fresh(client, name)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=8)
    idx = client.prepare_index_params()
    idx.add_index("vector", index_type="HNSW", metric_type="L2",
                  params={"M": 8, "efConstruction": 64})
    client.create_collection(name, schema=schema, index_params=idx, num_shards=1,
                             consistency_level="Strong")


# Rows of the compaction kill test's collection.
KILL_ROWS = 40000


def compaction(uri, phase):
    """Compaction: "auto" writes six small flushed segments of one shard and deletes a
    third of the keys; the datacoord merges them by itself into one segment of the live
    rows only, and reads during the switch see every live row once. "manual" upserts
    and flushes (a second small segment), compacts with `compact` and checks the state,
    the plans and the result; bad calls get Milvus's errors. "kill-write" writes eight
    segments and starts a compaction (the test kills the datanode running it);
    "kill-verify" waits for it to finish and checks every row is there once."""
    client = MilvusClient(uri=uri)
    conn = client._get_connection()
    name = "cmp_c"
    vec = lambda i, v=0.0: [float(np.sin(i * 0.37 * (k + 1))) + v for k in range(8)]
    if phase == "auto":
        # A collection with no index yet: its small segments are left alone until the
        # index is created (Milvus's indexBasedCompaction), checked once cmp_c (created
        # and flushed after it) was merged, so a planning pass saw both.
        unindexed = "cmp_u"
        fresh(client, unindexed)
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=8)
        client.create_collection(unindexed, schema=schema, num_shards=1, consistency_level="Strong")
        for b in range(3):
            client.insert(unindexed, [{"id": b * 500 + i, "vector": vec(b * 500 + i)} for i in range(500)])
            client.flush(unindexed)
        check(len(segments_of(conn, unindexed)) == 3, f"three unindexed segments {segments_of(conn, unindexed)}")
        fresh(client, name)
        # Automatic compaction off while the segments are written (Milvus's collection
        # property), so one plan takes all six: a planning pass between two flushes
        # would merge some, and the two segments left could not make an automatic plan
        # (at least dataCoord.compaction.min.segment, 3).
        client.create_collection(name, dimension=8, consistency_level="Strong", num_shards=1,
                                 properties={"collection.autocompaction.enabled": "false"})
        for b in range(6):
            client.insert(name, [{"id": b * 500 + i, "vector": vec(b * 500 + i)} for i in range(500)])
            client.flush(name)
        check(len(segments_of(conn, name)) == 6, f"six small flushed segments {segments_of(conn, name)}")
        client.delete(name, filter="id % 3 == 0")
        client.flush(name)
        client.alter_collection_properties(name, {"collection.autocompaction.enabled": "true"})
        live = {i for i in range(3000) if i % 3}
        turns = wait_compacted(client, name, live,
                               lambda: [r for _, r in segments_of(conn, name)] == [2000], "auto")
        print(f"compaction auto: one segment of the 2000 live rows after {turns} checked reads")
        left = segments_of(conn, unindexed)
        check(sorted(r for _, r in left) == [500, 500, 500],
              f"segments of a collection with no index are not merged automatically {left}")
        idx = client.prepare_index_params()
        idx.add_index("vector", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 64})
        client.create_index(unindexed, idx)
        deadline = time.time() + 60
        while [r for _, r in segments_of(conn, unindexed)] != [1500]:
            check(time.time() < deadline,
                  f"indexed, the segments are merged automatically {segments_of(conn, unindexed)}")
            time.sleep(0.2)
        print("compaction auto: an unindexed collection's segments were merged once it had an index")
        client.drop_collection(unindexed)
        print("compaction: auto checks passed")
        return
    if phase == "seeded":
        # Three indexed segments, nothing deleted: the datacoord merges them, and the
        # merged segment's graph starts from its largest source's (the test reads the
        # indexnode's log and the index files); searches find every row.
        sname = "cmp_s"
        hnsw_collection(client, sname)
        sizes = [1100, 1600, 1300]
        # Random vectors: `vec` repeats itself (sin), and a row whose near-twin is
        # nearer than every other row need not find itself.
        rows = np.random.default_rng(11).random((sum(sizes), 8), dtype=np.float32)
        start = 0
        for n in sizes:
            client.insert(sname, [{"id": start + i, "vector": rows[start + i].tolist()} for i in range(n)])
            client.flush(sname)
            start += n
        live = set(range(start))
        wait_compacted(client, sname, live, lambda: [r for _, r in segments_of(conn, sname)] == [start],
                       "seeded")
        deadline = time.time() + 90
        while True:
            d = client.describe_index(sname, "vector")
            if d["state"] == "Finished" and int(d["indexed_rows"]) == start:
                break
            check(time.time() < deadline, f"the merged segment's index did not finish: {d}")
            time.sleep(0.2)
        # The rows of every source find themselves. HNSW does not promise it for every
        # row (a row whose in-links were all pruned away is unreachable, in a fresh build
        # too), so at most 0.5 % may miss.
        missed = []
        for at in range(0, start, 500):
            probe = list(range(at, min(at + 500, start)))
            res = client.search(sname, data=[rows[i].tolist() for i in probe], limit=1,
                                search_params={"params": {"ef": 64}})
            missed += [(p, hits[0]["id"], round(hits[0]["distance"], 4))
                       for p, hits in zip(probe, res) if hits[0]["id"] != p]
        check(len(missed) <= start // 200,
              f"{len(missed)} rows that do not find themselves (row, found, distance): {missed[:20]}; "
              f"served {[(s.segmentID, s.num_rows, s.index_name) for s in conn.get_query_segment_info(sname)]}")
        merged = segments_of(conn, sname)[0][0]
        print(f"compaction: seeded checks passed; segment {merged}")
        return
    if phase.startswith("standin-"):
        # Two indexed segments, a third of the keys deleted; the test kills the indexnode
        # after "standin-write", so the merged segment's index is not built until it
        # starts one again after "standin-reload".
        hname = "cmp_h"
        rows = np.random.default_rng(5).random((3000, 8), dtype=np.float32)
        live = {i for i in range(3000) if i % 3}

        def loaded():
            return sorted((s.segmentID, s.index_name) for s in conn.get_query_segment_info(hname))

        def reads(what):
            wait_compacted(client, hname, live, lambda: True, what)
            gone = client.query(hname, filter="id in [0, 3, 2997]", output_fields=["id"])
            check(gone == [], f"{what}: deleted rows seen {gone}")
            hits = client.search(hname, data=[rows[1].tolist()], limit=1,
                                 search_params={"params": {"ef": 64}})
            check(hits[0][0]["id"] == 1, f"{what}: a row finds itself {hits}")

        def index_of(what):
            d = client.describe_index(hname, "vector")
            return d["state"], int(d["indexed_rows"]), int(d["total_rows"])

        if phase == "standin-write":
            hnsw_collection(client, hname)
            for at in (0, 1500):
                client.insert(hname, [{"id": i, "vector": rows[i].tolist()} for i in range(at, at + 1500)])
                client.flush(hname)
            deadline = time.time() + 90
            while index_of("write") != ("Finished", 3000, 3000):
                check(time.time() < deadline, f"the sources' index did not finish: {index_of('write')}")
                time.sleep(0.2)
            client.delete(hname, filter="id % 3 == 0")
            client.flush(hname)
            sources = [s for s, _ in segments_of(conn, hname)]
            check(len(sources) == 2, f"two segments {segments_of(conn, hname)}")
            reads("write")
            print(f"compaction: standin-write checks passed; sources {','.join(map(str, sources))}")
            return
        if phase == "standin-compact":
            sources = sorted(s for s, _ in segments_of(conn, hname))
            job = client.compact(hname)
            wait_compacted(client, hname, live, lambda: client.get_compaction_state(job) == "Completed",
                           "standin-compact")
            merged = segments_of(conn, hname)
            check([r for _, r in merged] == [2000], f"one segment of the live rows {merged}")
            # Its index is not built (no indexnode): its rows count as indexed through
            # the sources', which the querynode keeps serving.
            deadline = time.time() + 30
            while index_of("compact") != ("Finished", 2000, 2000):
                check(time.time() < deadline,
                      f"the merged segment counts through its sources: {index_of('compact')}")
                time.sleep(0.2)
            check(loaded() == [(s, "vector") for s in sources], f"the sources still served {loaded()}")
            print(f"compaction: standin-compact checks passed; segment {merged[0][0]}")
            return
        if phase == "standin-reload":
            merged = segments_of(conn, hname)[0][0]
            client.release_collection(hname)
            client.load_collection(hname)
            # A querynode loading now loads the indexed sources, not the unindexed merged
            # segment, with the deletes they need.
            served = loaded()
            check(len(served) == 2 and merged not in [s for s, _ in served]
                  and all(i == "vector" for _, i in served), f"the sources loaded in its place {served}")
            reads("standin-reload")
            check(index_of("reload") == ("Finished", 2000, 2000), f"index {index_of('reload')}")
            # A segment flushed now, with nothing to stand in for it, waits for a build
            # made after the merged segment's: the test checks it is built first.
            nname = "cmp_n"
            hnsw_collection(client, nname)
            client.insert(nname, [{"id": i, "vector": rows[i].tolist()} for i in range(1500)])
            client.flush(nname)
            fresh_segment = segments_of(conn, nname)[0][0]
            print(f"compaction: standin-reload checks passed; segment {merged}; fresh {fresh_segment}")
            return
        if phase == "standin-built":
            merged = segments_of(conn, hname)[0][0]
            deadline = time.time() + 90
            while loaded() != [(merged, "vector")]:
                check(time.time() < deadline, f"the merged segment was not taken once indexed {loaded()}")
                time.sleep(0.2)
            reads("standin-built")
            d = client.describe_index("cmp_n", "vector")
            check((d["state"], int(d["indexed_rows"])) == ("Finished", 1500), f"the fresh segment's index {d}")
            client.drop_collection("cmp_n")
            print(f"compaction: standin-built checks passed; segment {merged}")
            return
    if phase == "manual":
        live = {i for i in range(3000) if i % 3}
        before = segments_of(conn, name)
        upserted = [i for i in range(1, 60) if i % 3]
        client.upsert(name, [{"id": i, "vector": vec(i, 5.0)} for i in upserted])
        client.flush(name)
        check(len(segments_of(conn, name)) == 2, f"a second segment {segments_of(conn, name)}")
        job = client.compact(name)
        check(isinstance(job, int) and job > 0, f"a compaction ID {job}")
        wait_compacted(client, name, live, lambda: client.get_compaction_state(job) == "Completed", "manual")
        after = segments_of(conn, name)
        check([r for _, r in after] == [2000], f"one segment of the live rows {after}")
        plans = client._get_connection().get_compaction_plans(job)
        merged = [(sorted(p.sources), p.target) for p in plans.plans]
        check(len(merged) == 1 and len(merged[0][0]) == 2 and merged[0][1] == after[0][0],
              f"the plan merged two segments into {after}: {merged}")
        check(before[0][0] in merged[0][0], f"the auto-compacted segment was merged {before} {merged}")
        rows = client.query(name, filter=f"id in {upserted}", output_fields=["vector"])
        check(len(rows) == len(upserted) and all(abs(r["vector"][0] - vec(r["id"], 5.0)[0]) < 1e-6 for r in rows),
              "upserted rows show their new vectors")
        # The RESTful API v2 does the same.
        import urllib.request

        def rest(path, body):
            req = urllib.request.Request(f"{uri}/v2/vectordb/collections/{path}", data=json.dumps(body).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read())
        r = rest("compact", {"collectionName": name})
        # The collection is one segment now: nothing to compact, so ID -1 (as Milvus).
        check(r["code"] == 0 and r["data"]["compactionID"] == -1, f"REST compact {r}")
        st = rest("get_compaction_state", {"jobID": r["data"]["compactionID"]})
        check(st["code"] == 0 and st["data"]["state"] == "Completed", f"REST compaction state {st}")
        missing = rest("compact", {"collectionName": "cmp_missing"})
        check(missing["code"] == 100, f"REST compact of a missing collection {missing}")
        # Nothing to compact: a compaction with no plans, Completed at once.
        fresh(client, "cmp_empty")
        client.create_collection("cmp_empty", dimension=8)
        empty = client.compact("cmp_empty")
        check(client.get_compaction_state(empty) == "Completed", "an empty collection's compaction is Completed")
        client.drop_collection("cmp_empty")
        expect_error("compact of a missing collection", lambda: client.compact("cmp_missing"),
                     "100", "collection not found")
        # A clustering compaction of a collection without a clustering key: nothing to do.
        none = client.compact(name, is_clustering=True)
        check(none == -1 and client.get_compaction_state(none) == "Completed",
              f"clustering compaction without a clustering key: {none}")
        print(f"compaction: manual checks passed; segment {after[0][0]}")
        return
    if phase == "clustering":
        # Rows of two flushes (automatic compaction merges three) with random clustering
        # keys: a clustering compaction rewrites them in key order; every row stays once.
        import pyarrow.parquet as pq
        storage = sys.argv[4]
        fresh(client, "cmp_k")
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("k", DataType.INT64, is_clustering_key=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=8)
        idx = client.prepare_index_params()
        idx.add_index("vector", metric_type="L2")
        client.create_collection("cmp_k", schema=schema, index_params=idx, num_shards=1,
                                 consistency_level="Strong")
        rng = np.random.default_rng(3)
        for b in range(2):
            keys = rng.integers(0, 1000, 750)
            client.insert("cmp_k", [{"id": b * 750 + i, "k": int(keys[i]), "vector": vec(b * 750 + i)}
                                    for i in range(750)])
            client.flush("cmp_k")
        before = segments_of(conn, "cmp_k")
        job = client.compact("cmp_k", is_clustering=True)
        check(job > 0, f"a clustering compaction ID {job}")
        wait_compacted(client, "cmp_k", set(range(1500)),
                       lambda: client.get_compaction_state(job) == "Completed", "clustering")
        after = segments_of(conn, "cmp_k")
        check(sum(r for _, r in after) == 1500 and not set(before) & set(after),
              f"every row in new segments {before} -> {after}")
        coll = client.describe_collection("cmp_k")["collection_id"]
        for seg, _ in after:
            files = [os.path.join(root, f) for root, _, fs in os.walk(os.path.join(storage, "insert_log", str(coll)))
                     for f in fs if root.endswith(str(seg))]
            check(len(files) == 1, f"segment {seg} has one file {files}")
            ks = pq.read_table(files[0]).column("k").to_pylist()
            check(ks == sorted(ks), f"segment {seg} is in clustering-key order")
        client.drop_collection("cmp_k")
        print("compaction: clustering checks passed")
        return
    if phase == "reload":
        live = {i for i in range(3000) if i % 3}
        client.release_collection(name)
        client.load_collection(name)
        wait_compacted(client, name, live, lambda: True, "reload")
        print("compaction: reload checks passed")
        return
    if phase == "kill-write":
        fresh(client, name)
        # 8 segments of 5,000 x 128 (the test holds the merge's registration to kill it).
        client.create_collection(name, dimension=128, consistency_level="Strong", num_shards=1)
        rng = np.random.default_rng(7)
        for b in range(8):
            vectors = rng.random((KILL_ROWS // 8, 128), dtype=np.float32)
            client.insert(name, [{"id": b * (KILL_ROWS // 8) + i, "vector": vectors[i]} for i in range(KILL_ROWS // 8)])
            client.flush(name)
        job = client.compact(name)
        print(f"compaction: started {job}")
        return
    if phase == "kill-verify":
        job = int(sys.argv[4])
        live = set(range(KILL_ROWS))
        deadline = time.time() + 120
        while client.get_compaction_state(job) != "Completed":
            check(time.time() < deadline, "the compaction did not finish within 120 s of its datanode being killed")
            time.sleep(0.5)
        n = client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]
        check(n == len(live), f"count(*) {n}, expected {len(live)}")
        ids = []
        for lo in range(0, KILL_ROWS, 16000):
            ids += [r["id"] for r in client.query(name, filter=f"id >= {lo} and id < {lo + 16000}",
                                                  output_fields=["id"], limit=16384)]
        check(len(ids) == len(set(ids)) and set(ids) == live, f"each row once: {len(ids)} rows, {len(set(ids))} distinct")
        segs = segments_of(conn, name)
        check(sum(r for _, r in segs) == len(live) and len(segs) == 1, f"one segment of every row {segs}")
        print(f"compaction: kill checks passed; segment {segs[0][0]}")
        return
    raise SystemExit(f"unknown compaction phase {phase}")


def scalar_filters(uri):
    """Scalar indexes (STL_SORT, INVERTED, Trie, BITMAP, and JSON path indexes of casts
    DOUBLE, VARCHAR and BOOL on a JSON field and a dynamic key) are built for sealed
    segments and filters through them answer exactly as Python's reading of every row:
    equality, ranges, in lists, like prefixes, nulls and NaN, JSON values of other kinds
    than the index's, over indexed sealed rows and growing rows together."""
    client = MilvusClient(uri=uri)
    name = "scalar_ix"
    fresh(client, name)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("doc", DataType.JSON)
    schema.add_field("num", DataType.INT64)
    schema.add_field("small", DataType.INT8)
    schema.add_field("price", DataType.DOUBLE, nullable=True)
    schema.add_field("tag", DataType.VARCHAR, max_length=16, nullable=True)
    schema.add_field("flag", DataType.BOOL)
    client.create_collection(name, schema=schema, shards_num=1)
    sealed, total = 3000, 3400

    def doc(i):
        if i % 19 == 0:
            return {}
        if i % 23 == 0:
            return {"n": f"x{i % 10}", "s": i}
        if i % 29 == 0:
            return {"n": True, "b": "yes"}
        if i % 37 == 0:
            return {"n": float(i % 50), "s": f"k{i % 60:02d}", "b": i % 2 == 0}
        n = (i * 31) % 2000
        return {"n": n if i % 2 == 0 else n + 0.5, "s": f"k{i % 60:02d}", "b": i % 5 == 0}

    def row(i):
        price = None if i % 11 == 0 else (float("nan") if i % 17 == 0 else (i % 200) / 2 - 20)
        r = {"id": i, "vec": [float(i % 10), 1.0, 0.0, float(i % 3)], "num": (i * 7919) % 4001,
             "small": i % 7 - 3, "price": price, "tag": None if i % 13 == 0 else f"t{i % 50:03d}",
             "flag": i % 3 == 0, "doc": doc(i)}
        if i % 4 != 2:
            r["color"] = ["red", "green", None, 7][i % 4]
        return r

    rows = [row(i) for i in range(total)]
    for at in range(0, sealed, 1000):
        client.insert(name, rows[at:at + 1000])
    client.flush(name)
    kinds = {"num": "STL_SORT", "small": "INVERTED", "price": "INVERTED", "tag": "Trie", "flag": "BITMAP"}
    ip = client.prepare_index_params()
    ip.add_index("vec", index_type="FLAT", metric_type="L2")
    for field, kind in kinds.items():
        ip.add_index(field, index_type=kind)
    paths = {"doc_n": ("doc", "doc['n']", "double"), "doc_s": ("doc", "doc['s']", "varchar"),
             "doc_b": ("doc", "doc['b']", "bool"), "color_ix": ("color", "color", "varchar")}
    for index_name, (field, path, cast) in paths.items():
        ip.add_index(field, index_type="INVERTED", index_name=index_name,
                     params={"json_cast_type": cast, "json_path": path})
    client.create_index(name, ip)
    deadline = time.time() + 60
    while True:
        ds = {f: client.describe_index(name, f) for f in list(kinds) + list(paths)}
        if all(d["state"] == "Finished" and d["indexed_rows"] == d["total_rows"] >= sealed
               for d in ds.values()):
            break
        check(time.time() < deadline, f"scalar index builds did not finish: {ds}")
        time.sleep(0.2)
    for f, kind in kinds.items():
        check(ds[f]["index_type"] == kind, f"{f}: {ds[f]}")
    client.load_collection(name)
    # Growing rows beside the indexed sealed ones; deleted rows, sealed and growing,
    # are not found through an index either.
    client.insert(name, rows[sealed:])
    client.delete(name, ids=[i for i in range(0, total, 31)])
    rows = [r for r in rows if r["id"] % 31 != 0]

    def number(x):
        return x is not None and x == x

    def d(r, key):
        return r["doc"].get(key)

    def real(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    def text(v):
        return isinstance(v, str)

    cases = [
        ("num == 1234", lambda r: r["num"] == 1234),
        # Rows 7 (sealed) and 3130 (growing) live, 31 (sealed) and 3100 (growing)
        # deleted: found by the index on num, and by key.
        ("num in [%s]" % ", ".join(str(i * 7919 % 4001) for i in (7, 31, 3100, 3130)),
         lambda r: r["id"] in (7, 31, 3100, 3130)),
        ("id in [7, 31, 3100, 3130]", lambda r: r["id"] in (7, 31, 3100, 3130)),
        ("num < 10", lambda r: r["num"] < 10),
        ("num >= 3990", lambda r: r["num"] >= 3990),
        ("num > 10.5 and num <= 20", lambda r: 10.5 < r["num"] <= 20),
        ("num in [1, 5, 3999, 70000]", lambda r: r["num"] in (1, 5, 3999, 70000)),
        ("num not in [1, 2, 3]", lambda r: r["num"] not in (1, 2, 3)),
        ("not (num < 3900)", lambda r: not r["num"] < 3900),
        ("small == -3", lambda r: r["small"] == -3),
        ("small in [2, 3] and num < 500", lambda r: r["small"] in (2, 3) and r["num"] < 500),
        ("price < -19", lambda r: number(r["price"]) and r["price"] < -19),
        ("price == 0", lambda r: number(r["price"]) and r["price"] == 0),
        ("price != 5 and price > -100 and num < 300",
         lambda r: number(r["price"]) and r["price"] != 5 and r["num"] < 300),
        ("price >= 79.5", lambda r: number(r["price"]) and r["price"] >= 79.5),
        ("price is null and num < 1000", lambda r: r["price"] is None and r["num"] < 1000),
        ("tag == 't007'", lambda r: r["tag"] == "t007"),
        ("tag like 't00%'", lambda r: r["tag"] is not None and r["tag"].startswith("t00")),
        ("tag like 't04_'", lambda r: r["tag"] is not None and r["tag"][:3] == "t04" and len(r["tag"]) == 4),
        ("tag in ['t001', 't049', 'zz']", lambda r: r["tag"] in ("t001", "t049", "zz")),
        ("tag > 't047'", lambda r: r["tag"] is not None and r["tag"] > "t047"),
        ("flag == true and num < 100", lambda r: r["flag"] and r["num"] < 100),
        ("flag == false and tag == 't010'", lambda r: not r["flag"] and r["tag"] == "t010"),
        # JSON path indexes: rows whose value is of another kind than the index's never
        # match a constant of the index's kind; other constants are left to the scan.
        ("doc['n'] == 1240", lambda r: real(d(r, "n")) and d(r, "n") == 1240),
        ("doc['n'] == 12", lambda r: real(d(r, "n")) and d(r, "n") == 12),
        ("doc['n'] < 15", lambda r: real(d(r, "n")) and d(r, "n") < 15),
        ("doc['n'] >= 1990.5", lambda r: real(d(r, "n")) and d(r, "n") >= 1990.5),
        ("doc['n'] > 100 and doc['n'] < 140", lambda r: real(d(r, "n")) and 100 < d(r, "n") < 140),
        ("doc['n'] in [2, 12.0, 1240, 77.5]", lambda r: real(d(r, "n")) and d(r, "n") in (2, 12, 1240, 77.5)),
        ("doc['n'] != 12 and id < 400", lambda r: real(d(r, "n")) and d(r, "n") != 12 and r["id"] < 400),
        ("doc['n'] not in [1, 2] and id < 300",
         lambda r: d(r, "n") is not None and not (real(d(r, "n")) and d(r, "n") in (1, 2)) and r["id"] < 300),
        ("doc['n'] == 'x3'", lambda r: d(r, "n") == "x3"),
        ("doc['s'] == 'k07'", lambda r: d(r, "s") == "k07"),
        ("doc['s'] like 'k1%'", lambda r: text(d(r, "s")) and d(r, "s").startswith("k1")),
        ("doc['s'] in ['k01', 'k59']", lambda r: d(r, "s") in ("k01", "k59")),
        ("doc['s'] > 'k57'", lambda r: text(d(r, "s")) and d(r, "s") > "k57"),
        ("doc['s'] < 100", lambda r: real(d(r, "s")) and d(r, "s") < 100),
        ("doc['b'] == true and id < 2000", lambda r: d(r, "b") is True and r["id"] < 2000),
        ("doc['b'] == false", lambda r: d(r, "b") is False),
        ("doc['n'] < 15 and doc['s'] like 'k0%'",
         lambda r: real(d(r, "n")) and d(r, "n") < 15 and text(d(r, "s")) and d(r, "s").startswith("k0")),
        ("color == 'red' and id < 500", lambda r: r.get("color") == "red" and r["id"] < 500),
        ("color in ['green']", lambda r: r.get("color") == "green"),
        ("color like 'gr%'", lambda r: text(r.get("color")) and r["color"].startswith("gr")),
        ("color == 7", lambda r: r.get("color") == 7),
    ]
    for expr, pred in cases:
        want = sorted(r["id"] for r in rows if pred(r))
        got = client.query(name, filter=expr, output_fields=["id"], limit=16384, consistency_level="Strong")
        got = sorted(r["id"] for r in got)
        check(got == want, f"{expr}: {len(got)} rows, expected {len(want)}")
        n = client.query(name, filter=expr, output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
        check(n == len(want), f"count(*) {expr}: {n}, expected {len(want)}")
    # A filtered search keeps to the rows the index selects.
    hits = client.search(name, data=[[0.0, 1.0, 0.0, 0.0]], filter="tag == 't020' and num < 2000", limit=100,
                         output_fields=["tag", "num"], consistency_level="Strong")[0]
    want = sorted(r["id"] for r in rows if r["tag"] == "t020" and r["num"] < 2000)
    check(sorted(h["id"] for h in hits) == want, f"filtered search: {len(hits)} hits, expected {len(want)}")
    client.release_collection(name)
    print("scalar_filters: all checks passed")


def geometry(uri):
    """GEOMETRY fields (Milvus 2.6): WKT in and out in Milvus's canonical text, bad WKT
    refused without storing anything, nulls and defaults, the spatial functions in query,
    search and delete filters answering as an independent Python reading of every row
    (points in boxes, boxes meeting boxes, haversine distances), over RTREE-indexed sealed
    rows and growing rows together, and Milvus's refusals."""
    import math

    client = MilvusClient(uri=uri)
    name = "geo_ix"
    fresh(client, name)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("geo", DataType.GEOMETRY, nullable=True)
    schema.add_field("home", DataType.GEOMETRY, default_value="MULTIPOINT (0 0, 1 1)")
    schema.add_field("tag", DataType.VARCHAR, max_length=16)
    client.create_collection(name, schema=schema, shards_num=1)
    rng = random.Random(7)
    sealed, total = 3000, 3400
    lon0, lat0 = -74.006, 40.7128

    def make(i):
        # Points near New York on a 1e-4 degree grid, boxes elsewhere, a few nulls and
        # empty points; query boxes have edges at odd 1e-5 so no point is on one.
        if i % 17 == 0:
            return None, None
        if i % 29 == 0:
            return "POINT EMPTY", ("empty",)
        if i % 5 == 0:
            x, y = round(rng.uniform(10, 20), 2), round(rng.uniform(10, 20), 2)
            w, h = round(rng.uniform(0.1, 2), 2), round(rng.uniform(0.1, 2), 2)
            return (f"POLYGON(({x} {y}, {x + w:.2f} {y}, {x + w:.2f} {y + h:.2f}, {x} {y + h:.2f}, {x} {y}))",
                    ("box", x, y, float(f"{x + w:.2f}"), float(f"{y + h:.2f}")))
        x = round(lon0 + rng.uniform(-0.2, 0.2), 4)
        y = round(lat0 + rng.uniform(-0.2, 0.2), 4)
        return f"POINT({x} {y})", ("point", x, y)

    made = [make(i) for i in range(total)]
    rows = []
    for i, (text, shape) in enumerate(made):
        r = {"id": i, "vec": [float(i % 10), 1.0, 0.0, float(i % 3)], "geo": text, "tag": f"t{i % 7}"}
        if i % 3 != 0:
            r["home"] = "POINT (5 5)"
        rows.append(r)
    for at in range(0, sealed, 1000):
        client.insert(name, rows[at:at + 1000])
    client.flush(name)
    # Bad WKT is refused in Milvus's words and stores nothing.
    for bad in ["POINT ()", "LINESTRING (0 0)", "POLYGON ((0 0, 1 0, 1 1, 0 1))", "", "INVALID WKT"]:
        row = {"id": 99999, "vec": [0.0] * 4, "geo": bad, "tag": "bad"}
        expect_error(f"insert {bad!r}", lambda: client.insert(name, [row]), "syntax error")
    ip = client.prepare_index_params()
    ip.add_index("vec", index_type="FLAT", metric_type="L2")
    ip.add_index("geo", index_type="RTREE")
    client.create_index(name, ip)
    deadline = time.time() + 60
    while True:
        d = client.describe_index(name, "geo")
        if d["state"] == "Finished" and d["indexed_rows"] == d["total_rows"] >= sealed:
            break
        check(time.time() < deadline, f"RTREE build did not finish: {d}")
        time.sleep(0.2)
    check(d["index_type"] == "RTREE", f"describe_index: {d}")
    for field, kind, needle in [("tag", "RTREE", "RTREE index can only be built on geometry field"),
                                ("home", "INVERTED", "INVERTED are not supported on Geometry field")]:
        bad_ip = client.prepare_index_params()
        bad_ip.add_index(field, index_type=kind)
        expect_error(f"{kind} on {field}", lambda: client.create_index(name, bad_ip), needle)
    client.load_collection(name)
    client.insert(name, rows[sealed:])

    # Values come back in Milvus's canonical text.
    got = {r["id"]: r for r in client.query(name, filter="id in [0, 1, 3, 5, 29]",
                                            output_fields=["geo", "home"], consistency_level="Strong")}
    check(got[0]["geo"] is None and got[29]["geo"] == "POINT (NaN NaN)", f"null and empty: {got}")
    check(got[1]["geo"] == made[1][0].replace("POINT(", "POINT ("), f"point text: {got[1]}")
    check(got[5]["geo"].startswith("POLYGON ((") and ", " in got[5]["geo"], f"polygon text: {got[5]}")
    check(got[0]["home"] == "MULTIPOINT ((0 0), (1 1))" and got[1]["home"] == "POINT (5 5)", f"default: {got}")

    def haversine(x1, y1, x2, y2):
        p1, p2 = math.radians(y1), math.radians(y2)
        a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(x2 - x1) / 2) ** 2
        return 2 * 6371000 * math.asin(math.sqrt(a))

    def box(x1, y1, x2, y2):
        return f"POLYGON (({x1} {y1}, {x2} {y1}, {x2} {y2}, {x1} {y2}, {x1} {y1}))"

    def kind(r, k):
        s = made[r["id"]][1]
        return s is not None and s[0] == k

    def inside(r, x1, y1, x2, y2):
        s = made[r["id"]][1]
        return kind(r, "point") and x1 < s[1] < x2 and y1 < s[2] < y2

    def meets(r, x1, y1, x2, y2):
        s = made[r["id"]][1]
        if kind(r, "point"):
            return x1 <= s[1] <= x2 and y1 <= s[2] <= y2
        return kind(r, "box") and s[1] <= x2 and x1 <= s[3] and s[2] <= y2 and y1 <= s[4]

    def holds(r, x, y):
        s = made[r["id"]][1]
        return kind(r, "box") and s[1] < x < s[3] and s[2] < y < s[4]

    def near(r, meters):
        s = made[r["id"]][1]
        return kind(r, "point") and haversine(lon0, lat0, s[1], s[2]) <= meters

    b1 = (-74.05005, 40.70005, -73.98005, 40.76005)
    b2 = (12.00005, 12.00005, 14.50005, 13.00005)
    # Distances chosen away from every point's (no point within 0.5 m of the boundary).
    dists = sorted(haversine(lon0, lat0, s[1], s[2]) for _, s in made if s and s[0] == "point")
    radius = next(d + 0.5 * (e - d) for d, e in zip(dists[100:], dists[101:]) if e - d > 1.0)
    cases = [
        (f"ST_WITHIN(geo, '{box(*b1)}')", lambda r: inside(r, *b1)),
        (f"st_intersects(geo, '{box(*b1)}')", lambda r: meets(r, *b1)),
        (f"ST_INTERSECTS(geo, '{box(*b2)}')", lambda r: meets(r, *b2)),
        ("ST_CONTAINS(geo, 'POINT (15.005 15.005)')", lambda r: holds(r, 15.005, 15.005)),
        (f"ST_DWITHIN(geo, 'POINT ({lon0} {lat0})', {radius})", lambda r: near(r, radius)),
        (f"ST_DWITHIN(geo, 'POINT ({lon0} {lat0})', 0)", lambda r: near(r, 0)),
        (f"ST_WITHIN(geo, '{box(*b1)}') and tag == 't3'", lambda r: inside(r, *b1) and r["tag"] == "t3"),
        (f"not ST_WITHIN(geo, '{box(*b1)}') and id < 500", lambda r: not inside(r, *b1) and r["id"] < 500),
        (f"ST_WITHIN(geo, '{box(*b1)}') or ST_INTERSECTS(geo, '{box(*b2)}')",
         lambda r: inside(r, *b1) or meets(r, *b2)),
        ("ST_EQUALS(home, 'MULTIPOINT ((1 1), (0 0))')", lambda r: r["id"] % 3 == 0),
        ("geo is null", lambda r: made[r["id"]][0] is None),
    ]
    for expr, pred in cases:
        want = sorted(r["id"] for r in rows if pred(r))
        got = client.query(name, filter=expr, output_fields=["id"], limit=16384, consistency_level="Strong")
        got = sorted(r["id"] for r in got)
        check(got == want, f"{expr}: {len(got)} rows, expected {len(want)}")
    check(len(sorted(r["id"] for r in rows if near(r, radius))) > 100, "the distance case selects rows")
    hits = client.search(name, data=[[0.0, 1.0, 0.0, 0.0]], filter=f"ST_WITHIN(geo, '{box(*b1)}')",
                         limit=50, output_fields=["geo"], consistency_level="Strong")[0]
    want = {r["id"] for r in rows if inside(r, *b1)}
    check(len(hits) == min(50, len(want)) and all(h["id"] in want for h in hits),
          f"filtered search: {len(hits)} hits")
    check(all(h["entity"]["geo"].startswith("POINT (") for h in hits), f"search output: {hits[:2]}")
    # Refusals in Milvus's words.
    for expr, needle in [("ST_WITHIN(tag, 'POINT (1 1)')", "cannot parse expression"),
                         ("ST_CONTAINS(geo)", "cannot parse expression"),
                         ("ST_WITHIN(geo, 'POINT (1')", "cannot parse expression"),
                         ("ST_DWITHIN(geo, 'POINT (1 1)', -5)", "distance parameter must be non-negative"),
                         ("ST_DWITHIN(geo, 'LINESTRING (0 0, 1 1)', 5)", "cannot parse expression"),
                         ("ST_INTERSECT(geo, 'POINT (1 1)')", "Create retrieve plan by expr failed")]:
        expect_error(expr, lambda: client.query(name, filter=expr, output_fields=["id"]), needle)
    # A delete by a spatial filter removes exactly those rows.
    gone = sorted(r["id"] for r in rows if meets(r, *b2))
    client.delete(name, filter=f"ST_INTERSECTS(geo, '{box(*b2)}')")
    left = client.query(name, filter="id >= 0", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
    check(left == total - len(gone) and gone, f"after a spatial delete: {left} rows, {len(gone)} deleted")
    # Over REST: WKT in and out, a spatial filter, a bad value refused.
    from rest_client import Rest
    rest = Rest(uri)
    rest.ok("entities/insert", {"collectionName": name, "data": [
        {"id": 90001, "vec": [0.0, 1.0, 0.0, 0.0], "geo": "point(1 2)", "tag": "rest"},
        {"id": 90002, "vec": [0.0, 1.0, 0.0, 0.0], "geo": None, "tag": "rest"}]})
    deadline = time.time() + 10
    while True:
        got = rest.ok("entities/query", {"collectionName": name, "filter": "ST_EQUALS(geo, 'POINT (1 2)')",
                                         "outputFields": ["geo", "home"]})["data"]
        if got or time.time() > deadline:
            break
        time.sleep(0.1)
    check([(r["id"], r["geo"], r["home"]) for r in got] == [(90001, "POINT (1 2)", "MULTIPOINT ((0 0), (1 1))")],
          f"REST query: {got}")
    rest.error("entities/insert", {"collectionName": name, "data": [
        {"id": 90003, "vec": [0.0] * 4, "geo": "POINT (1)", "tag": "rest"}]}, 1100, "syntax error")
    fields = lambda default: {"fields": [
        {"fieldName": "id", "dataType": "Int64", "isPrimary": True},
        {"fieldName": "vec", "dataType": "FloatVector", "elementTypeParams": {"dim": 4}},
        {"fieldName": "geo", "dataType": "Geometry", "defaultValue": default}]}
    rest.error("collections/create", {"collectionName": "geo_rest", "schema": fields("POINT (1")},
               1100, "invalid default value for geometry field geo")
    rest.ok("collections/create", {"collectionName": "geo_rest", "schema": fields("point (1 1)")})
    d = client.describe_collection("geo_rest")
    check([f for f in d["fields"] if f["name"] == "geo"][0]["type"] == DataType.GEOMETRY, f"REST schema: {d}")
    client.drop_collection("geo_rest")
    client.release_collection(name)
    print("geometry: all checks passed")


if __name__ == "__main__":
    mode, uri = sys.argv[1], sys.argv[2]
    if mode == "sizes":
        sizes(uri, int(sys.argv[3]))
    elif mode == "indexes":
        indexes(uri)
    elif mode == "scalar_filters":
        scalar_filters(uri)
    elif mode == "geometry":
        geometry(uri)
    elif mode == "versions":
        versions(uri)
    elif mode == "calls":
        calls(uri)
    elif mode == "collections":
        collections(uri, int(sys.argv[3]))
    elif mode == "batches":
        batches(uri, sys.argv[3], int(sys.argv[4]))
    elif mode == "aliases":
        aliases(uri)
    elif mode == "rename":
        rename(uri)
    elif mode == "info":
        info(uri)
    elif mode == "alter":
        alter(uri)
    elif mode == "ttl":
        ttl(uri)
    elif mode == "partition_key":
        partition_key(uri)
    elif mode == "retention":
        retention(uri, sys.argv[3])
    elif mode == "compaction":
        compaction(uri, sys.argv[3])
    else:
        raise SystemExit(f"unknown mode {mode}")
