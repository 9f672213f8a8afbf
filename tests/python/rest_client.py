"""Milvus's RESTful API v2 as a user calls it: plain HTTP POSTs with JSON (the standard
library only, as curl would), against the proxy's port. Run by tests/rest.rs.

    python rest_client.py quickstart BASE_URL   # the Milvus quickstart, through REST only
    python rest_client.py endpoints BASE_URL    # every endpoint, its shapes and refusals

Exits 0 when every check passes; prints what failed otherwise.
"""
import base64
import json
import struct
import sys
import time
import urllib.request


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Rest:
    def __init__(self, base):
        self.base = base.rstrip("/")

    def raw(self, path, body, headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.base + "/v2/vectordb/" + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())

    def call(self, path, body=None, headers=None):
        status, reply = self.raw(path, body if body is not None else {}, headers)
        check(status == 200, f"{path}: HTTP {status}")
        return reply

    def ok(self, path, body=None, headers=None):
        reply = self.call(path, body, headers)
        check(reply.get("code") == 0, f"{path} {body}: {reply}")
        return reply

    def error(self, path, body, code, needle):
        reply = self.call(path, body)
        check(reply.get("code") == code and needle in reply.get("message", "") and "data" not in reply,
              f"{path} {body}: expected code {code} with {needle!r}, got {reply}")
        return reply


def wait_loaded(r, name, db=None, partitions=None):
    """Loading is asynchronous (as in Milvus): waits for the load state to say Loaded."""
    body = {"collectionName": name, **({"dbName": db} if db else {}),
            **({"partitionNames": partitions} if partitions else {})}
    deadline = time.time() + 60
    while time.time() < deadline:
        d = r.ok("collections/get_load_state", body)["data"]
        if d.get("loadState") == "LoadStateLoaded":
            return d
        time.sleep(0.2)
    raise AssertionError(f"{name} not loaded in time")


def quickstart(base):
    """The quickstart of Milvus's REST docs: create (quick), insert, search, query, get,
    delete, drop."""
    r = Rest(base)
    if r.ok("collections/has", {"collectionName": "quick_setup"})["data"]["has"]:
        r.ok("collections/drop", {"collectionName": "quick_setup"})
    r.ok("collections/create", {"collectionName": "quick_setup", "dimension": 5,
                                "params": {"consistencyLevel": "Strong"}})
    wait_loaded(r, "quick_setup")
    colors = ["pink_8682", "red_7025", "orange_6781", "pink_9298", "red_4794", "yellow_4222",
              "red_9392", "grey_8510", "white_9381", "purple_4976"]
    rows = [{"id": i, "vector": [float(i) / 10, 0.1 * (i % 3), 0.5, 0.2, 0.1 * i], "color": c}
            for i, c in enumerate(colors)]
    res = r.ok("entities/insert", {"collectionName": "quick_setup", "data": rows})
    check(res["data"] == {"insertCount": 10, "insertIds": list(range(10))}, f"insert {res}")
    check("cost" in res, f"insert cost {res}")
    res = r.ok("entities/search", {"collectionName": "quick_setup", "data": [rows[3]["vector"]],
                                   "limit": 3, "outputFields": ["color"]})
    check(res["topks"] == [3] and len(res["data"]) == 3, f"search {res}")
    first = res["data"][0]
    check(first["id"] == 3 and first["color"] == "pink_9298" and "distance" in first, f"search hit {first}")
    check(sorted(first) == ["color", "distance", "id"], f"search row keys {first}")
    res = r.ok("entities/search", {"collectionName": "quick_setup",
                                   "data": [rows[0]["vector"], rows[9]["vector"]], "limit": 2,
                                   "filter": 'color like "red%"'})
    check(res["topks"] == [2, 2] and all(set(h) == {"id", "distance"} for h in res["data"]), f"nq=2 {res}")
    check({h["id"] for h in res["data"]} <= {1, 4, 6}, f"filtered search {res}")
    res = r.ok("entities/query", {"collectionName": "quick_setup", "filter": "id in [0, 1]",
                                  "outputFields": ["id", "color"]})
    check(sorted(res["data"], key=lambda x: x["id"]) == [{"id": 0, "color": "pink_8682"},
                                                        {"id": 1, "color": "red_7025"}], f"query {res}")
    res = r.ok("entities/query", {"collectionName": "quick_setup", "filter": "",
                                  "outputFields": ["count(*)"]})
    check(res["data"] == [{"count(*)": 10}], f"count {res}")
    res = r.ok("entities/get", {"collectionName": "quick_setup", "id": [2, 5], "outputFields": ["color"]})
    check(sorted(res["data"], key=lambda x: x["id"]) == [{"id": 2, "color": "orange_6781"},
                                                        {"id": 5, "color": "yellow_4222"}], f"get {res}")
    res = r.ok("entities/delete", {"collectionName": "quick_setup", "filter": "id in [0, 1]"})
    check(res["data"] == {"deleteCount": 2}, f"delete {res}")
    res = r.ok("entities/query", {"collectionName": "quick_setup", "filter": "id in [0, 1, 2]"})
    check([x["id"] for x in res["data"]] == [2], f"deleted rows gone {res}")
    res = r.ok("entities/upsert", {"collectionName": "quick_setup",
                                   "data": [{"id": 2, "vector": [0.2] * 5, "color": "blue_1"}]})
    check(res["data"] == {"upsertCount": 1, "upsertIds": [2]}, f"upsert {res}")
    res = r.ok("entities/get", {"collectionName": "quick_setup", "id": 2, "outputFields": ["color"]})
    check(res["data"] == [{"id": 2, "color": "blue_1"}], f"upserted {res}")
    # Without Accept-Type-Allow-Int64, 64-bit integers come back as numbers; with false,
    # as strings (JavaScript clients keep their precision so).
    res = r.ok("entities/get", {"collectionName": "quick_setup", "id": 2, "outputFields": ["id"]},
               headers={"Accept-Type-Allow-Int64": "false"})
    check(res["data"] == [{"id": "2"}], f"int64 as strings {res}")
    r.ok("collections/drop", {"collectionName": "quick_setup"})
    check(not r.ok("collections/has", {"collectionName": "quick_setup"})["data"]["has"], "dropped")
    print("quickstart: all checks passed")


def endpoints(base):
    """Every endpoint served, with Milvus's shapes, and its refusals in Milvus's codes."""
    r = Rest(base)
    for db in r.ok("databases/list")["data"]:
        if db == "rest_db":
            for c in r.ok("collections/list", {"dbName": db})["data"]:
                r.ok("collections/drop", {"dbName": db, "collectionName": c})
            r.ok("databases/drop", {"dbName": db})
    # Envelope and bad requests.
    r.error("collections/list", b"", 1801, "the request body should be nil, however {} is valid")
    r.error("collections/list", b"{\"dbName\": ", 1801, "can only accept json format request, error:")
    r.error("collections/has", {}, 1802, "missing required parameters")
    r.error("collections/has", {"collectionName": 5}, 1801, "collectionName")
    r.error("collections/describe", {"collectionName": "nowhere"}, 100, "can't find collection[database=default][collection=nowhere]")
    r.error("collections/get_load_state", {"collectionName": "nowhere"}, 100,
            "collection not found[database=default][collection=nowhere]")
    # Databases.
    r.ok("databases/create", {"dbName": "rest_db", "properties": {"database.max.collections": 10}})
    check("rest_db" in r.ok("databases/list")["data"], "database listed")
    d = r.ok("databases/describe", {"dbName": "rest_db"})["data"]
    check(d["dbName"] == "rest_db" and {"key": "database.max.collections", "value": "10"} in d["properties"],
          f"database described {d}")
    r.ok("databases/alter", {"dbName": "rest_db", "properties": {"owner": "me"}})
    d = r.ok("databases/describe", {"dbName": "rest_db"})["data"]
    check({"key": "owner", "value": "me"} in d["properties"], f"database altered {d}")
    r.error("databases/describe", {"dbName": "nodb"}, 800, "database not found[database=nodb]")
    # A collection with a schema and indexes, in that database (dbName in the body).
    schema = {"autoID": False, "enableDynamicField": True, "fields": [
        {"fieldName": "pk", "dataType": "VarChar", "isPrimary": True, "elementTypeParams": {"max_length": 32}},
        {"fieldName": "vec", "dataType": "FloatVector", "elementTypeParams": {"dim": 4}},
        {"fieldName": "n", "dataType": "Int64"},
        {"fieldName": "score", "dataType": "Double", "nullable": True},
        {"fieldName": "doc", "dataType": "JSON"},
        {"fieldName": "tags", "dataType": "Array", "elementDataType": "Int64",
         "elementTypeParams": {"max_capacity": 8}},
    ]}
    index = [{"fieldName": "vec", "indexName": "vec_idx", "metricType": "L2", "indexType": "HNSW",
              "params": {"M": 8, "efConstruction": 64}}]
    base = {"dbName": "rest_db", "collectionName": "docs"}
    r.ok("collections/create", {**base, "schema": schema, "indexParams": index,
                                "params": {"consistencyLevel": "Strong"}})
    wait_loaded(r, "docs", "rest_db")
    check(r.ok("collections/list", {"dbName": "rest_db"})["data"] == ["docs"], "listed in its database")
    check(r.ok("collections/list")["data"].count("docs") == 0, "not in default")
    d = r.ok("collections/describe", base)["data"]
    names = [f["name"] for f in d["fields"]]
    check(names == ["pk", "vec", "n", "score", "doc", "tags"], f"fields {names}")
    vec = d["fields"][1]
    check(vec["type"] == "FloatVector" and {"key": "dim", "value": "4"} in vec["params"] and vec["id"] == 101,
          f"vector field {vec}")
    check(d["fields"][5]["elementType"] == "Int64" and d["fields"][3]["nullable"] is True, f"fields {d['fields']}")
    check(d["indexes"] == [{"fieldName": "vec", "indexName": "vec_idx", "metricType": "L2"}], f"indexes {d}")
    check(d["load"] == "LoadStateLoaded" and d["consistencyLevel"] == "Strong" and d["enableDynamicField"] is True
          and d["shardsNum"] == 1 and d["autoId"] is False, f"described {d}")
    rows = [{"pk": f"k{i}", "vec": [1.0, float(i), 0.0, 0.0], "n": i, "doc": {"i": i},
             "tags": [i, i + 1], "extra": f"e{i}", **({"score": i / 2} if i % 2 else {})} for i in range(20)]
    res = r.ok("entities/insert", {**base, "data": rows})
    check(res["data"]["insertCount"] == 20 and res["data"]["insertIds"][:2] == ["k0", "k1"], f"insert {res}")
    res = r.ok("entities/query", {**base, "filter": "n in [3, 4]", "outputFields": ["*"]})
    got = sorted(res["data"], key=lambda x: x["n"])
    check(got[0]["doc"] == '{"i":3}' and got[0]["tags"] == [3, 4] and got[0]["extra"] == "e3"
          and got[0]["score"] == 1.5 and got[1]["score"] is None and got[0]["pk"] == "k3"
          and len(got[0]["vec"]) == 4, f"query row {got}")
    res = r.ok("entities/query", {**base, "filter": "extra == {e}", "exprParams": {"e": "e7"},
                                  "outputFields": ["n"]})
    check(res["data"] == [{"n": 7, "pk": "k7"}], f"templated query {res}")
    res = r.ok("entities/query", {**base, "filter": "n >= 0", "limit": 5, "offset": 2, "outputFields": ["n"]})
    check(len(res["data"]) == 5, f"limit and offset {res}")
    res = r.ok("entities/search", {**base, "data": [[1.0, 7.0, 0.0, 0.0]], "annsField": "vec", "limit": 2,
                                   "outputFields": ["n"], "searchParams": {"params": {"ef": 32}}})
    check([h["pk"] for h in res["data"]] == ["k7", "k6"] or [h["pk"] for h in res["data"]] == ["k7", "k8"],
          f"search by L2 {res}")
    check(res["data"][0]["n"] == 7 and res["data"][0]["distance"] == 0.0, f"search row {res}")
    r.error("entities/search", {**base, "data": [[1.0, 2.0]]}, 1801, "dimension: 4, but length of []float: 2")
    r.error("entities/search", {**base, "data": [[1.0, 7.0, 0.0, 0.0]], "annsField": "nope"}, 1801,
            "cannot find a vector field named: nope")
    r.error("entities/search", {**base, "data": [[1.0, 7.0, 0.0, 0.0]], "consistencyLevel": "Fast"}, 1100,
            "consistencyLevel can only be [Strong, Session, Bounded, Eventually, Customized]")
    r.error("entities/insert", {**base, "data": [{"pk": "x", "n": 1, "doc": {}, "tags": []}]}, 1804,
            "fail to deal the insert data")
    r.error("entities/insert", {**base, "data": [{"pk": "x", "vec": [0.0] * 4, "n": "many", "doc": {}, "tags": []}]},
            1804, "fail to deal the insert data")
    r.error("entities/delete", {**base, "id": ["k1"]}, 1802, "missing required parameters")
    check(r.ok("entities/delete", {**base, "filter": 'pk in ["k1", "k2"]'})["data"] == {"deleteCount": 2}, "delete")
    res = r.ok("entities/get", {**base, "id": ["k1", "k3"], "outputFields": ["n"]})
    check(res["data"] == [{"pk": "k3", "n": 3}], f"get after delete {res}")
    # Hybrid search: two searches with their own filters and limits, fused by RRF.
    res = r.ok("entities/hybrid_search", {**base, "search": [
        {"data": [[1.0, 7.0, 0.0, 0.0]], "annsField": "vec", "filter": "n <= 7", "limit": 2},
        {"data": [[1.0, 12.0, 0.0, 0.0]], "annsField": "vec", "filter": "n >= 12", "limit": 2,
         "params": {"ef": 32}}],
        "rerank": {"strategy": "rrf", "params": {"k": 60}}, "limit": 4, "outputFields": ["n"]})
    got = res["data"]
    check({h["pk"] for h in got[:2]} == {"k7", "k12"} and {h["pk"] for h in got[2:]} == {"k6", "k13"},
          f"hybrid search {res}")
    check(all(abs(h["distance"] - 1 / 61) < 1e-6 for h in got[:2]) and all(h["n"] == int(h["pk"][1:]) for h in got),
          f"hybrid scores and fields {res}")
    r.error("entities/hybrid_search", {**base, "search": []}, 1802, "missing required parameters")
    # Collection statistics, flush and properties.
    r.ok("collections/flush", base)
    check(r.ok("collections/get_stats", base)["data"] == {"rowCount": 20}, "row count persisted")
    r.ok("collections/alter_properties", {**base, "properties": {"app.owner": "team"}})
    d = r.ok("collections/describe", base)["data"]
    check({"key": "app.owner", "value": "team"} in d["properties"], f"properties {d['properties']}")
    r.ok("collections/drop_properties", {**base, "propertyKeys": ["app.owner"]})
    # Partitions.
    r.ok("partitions/create", {**base, "partitionName": "p1"})
    check(r.ok("partitions/list", base)["data"] == ["_default", "p1"], "partitions listed")
    check(r.ok("partitions/has", {**base, "partitionName": "p1"})["data"] == {"has": True}, "has p1")
    r.ok("entities/insert", {**base, "partitionName": "p1",
                             "data": [{"pk": "p", "vec": [0.0] * 4, "n": 99, "doc": {}, "tags": []}]})
    r.ok("collections/flush", base)
    check(r.ok("partitions/get_stats", {**base, "partitionName": "p1"})["data"] == {"rowCount": 1}, "p1 stats")
    r.ok("collections/release", base)
    check(r.ok("collections/get_load_state", base)["data"] == {"loadState": "LoadStateNotLoad"}, "released")
    r.ok("partitions/load", {**base, "partitionNames": ["p1"]})
    wait_loaded(r, "docs", "rest_db", ["p1"])
    res = r.ok("entities/query", {**base, "filter": "n >= 0", "outputFields": ["n"], "partitionNames": ["p1"]})
    check([x["n"] for x in res["data"]] == [99], f"partition query {res}")
    r.ok("partitions/release", {**base, "partitionNames": ["p1"]})
    r.ok("partitions/drop", {**base, "partitionName": "p1"})
    # Indexes.
    check(r.ok("indexes/list", base)["data"] == ["vec_idx"], "indexes listed")
    d = r.ok("indexes/describe", {**base, "indexName": "vec_idx"})["data"]
    check(len(d) == 1 and d[0]["indexType"] == "HNSW" and d[0]["metricType"] == "L2" and d[0]["fieldName"] == "vec"
          and d[0]["indexState"] == "Finished", f"index described {d}")
    r.error("indexes/describe", {**base, "indexName": "nope"}, 700, "index not found")
    r.ok("indexes/drop", {**base, "indexName": "vec_idx"})
    check(r.ok("indexes/list", base)["data"] == [], "index dropped")
    r.ok("indexes/create", {**base, "indexParams": [{"fieldName": "vec", "indexName": "v2", "metricType": "IP"}]})
    d = r.ok("indexes/describe", {**base, "indexName": "v2"})["data"]
    check(d[0]["indexType"] == "AUTOINDEX" and d[0]["metricType"] == "IP", f"autoindex {d}")
    # Aliases.
    r.ok("aliases/create", {**base, "aliasName": "docs_alias"})
    check(r.ok("aliases/list", {"dbName": "rest_db"})["data"] == ["docs_alias"], "aliases listed")
    d = r.ok("aliases/describe", {"dbName": "rest_db", "aliasName": "docs_alias"})["data"]
    check(d == {"dbName": "rest_db", "aliasName": "docs_alias", "collectionName": "docs"}, f"alias {d}")
    r.ok("collections/create", {"dbName": "rest_db", "collectionName": "other", "dimension": 4})
    r.ok("aliases/alter", {"dbName": "rest_db", "collectionName": "other", "aliasName": "docs_alias"})
    d = r.ok("aliases/describe", {"dbName": "rest_db", "aliasName": "docs_alias"})["data"]
    check(d["collectionName"] == "other", f"alias moved {d}")
    r.ok("aliases/drop", {"dbName": "rest_db", "aliasName": "docs_alias"})
    r.error("aliases/describe", {"dbName": "rest_db", "aliasName": "docs_alias"}, 1600, "alias not found")
    # Rename, then clean up.
    r.ok("collections/rename", {**base, "newCollectionName": "docs2"})
    check(sorted(r.ok("collections/list", {"dbName": "rest_db"})["data"]) == ["docs2", "other"], "renamed")
    for c in ["docs2", "other"]:
        r.ok("collections/drop", {"dbName": "rest_db", "collectionName": c})
    r.ok("databases/drop", {"dbName": "rest_db"})
    # Binary and half-float vectors: byte values, numbers or base64 in; base64 out.
    schema = {"autoID": False, "fields": [
        {"fieldName": "id", "dataType": "Int64", "isPrimary": True},
        {"fieldName": "b", "dataType": "BinaryVector", "elementTypeParams": {"dim": 16}},
        {"fieldName": "h", "dataType": "Float16Vector", "elementTypeParams": {"dim": 2}},
    ]}
    index = [{"fieldName": "b", "indexName": "b", "metricType": "HAMMING", "indexType": "BIN_FLAT"},
             {"fieldName": "h", "indexName": "h", "metricType": "L2", "indexType": "FLAT"}]
    bits = {"collectionName": "bits"}
    r.ok("collections/create", {**bits, "schema": schema, "indexParams": index,
                                "params": {"consistencyLevel": "Strong"}})
    wait_loaded(r, "bits")
    b64 = lambda raw: base64.b64encode(raw).decode()
    r.ok("entities/insert", {**bits, "data": [
        {"id": 1, "b": [255, 0], "h": [1.5, -2.0]},
        {"id": 2, "b": b64(bytes([15, 1])), "h": b64(struct.pack("<2e", 0.5, 0.25))}]})
    r.error("entities/insert", {**bits, "data": [{"id": 3, "b": [1, 2, 3], "h": [1.0, 2.0]}]}, 1804,
            "a BinaryVector vector of dim 16 has 2")
    got = {x["id"]: x for x in r.ok("entities/query", {**bits, "filter": "id > 0",
                                                       "outputFields": ["b", "h"]})["data"]}
    check(sorted(got) == [1, 2], f"binary rows {got}")
    check(base64.b64decode(got[1]["b"]) == bytes([255, 0])
          and base64.b64decode(got[1]["h"]) == struct.pack("<2e", 1.5, -2.0), f"row 1 as written: {got[1]}")
    check(base64.b64decode(got[2]["b"]) == bytes([15, 1]), f"row 2 as written: {got[2]}")
    hits = r.ok("entities/search", {**bits, "annsField": "b", "data": [[15, 0]], "limit": 2})["data"]
    check([(h["id"], h["distance"]) for h in hits] == [(2, 1.0), (1, 4.0)], f"hamming hits {hits}")
    hits = r.ok("entities/search", {**bits, "annsField": "h", "data": [[0.5, 0.25]], "limit": 1})["data"]
    check(hits[0]["id"] == 2 and hits[0]["distance"] == 0.0, f"float16 hits {hits}")
    r.ok("collections/drop", bits)
    # Sparse vectors as index -> value objects; a BM25 function declared in the schema and
    # searched by text.
    ft = {"collectionName": "rft"}
    r.call("collections/drop", ft)
    r.ok("collections/create", {**ft, "schema": {
        "fields": [{"fieldName": "id", "dataType": "Int64", "isPrimary": True},
                   {"fieldName": "text", "dataType": "VarChar",
                    "elementTypeParams": {"max_length": 200, "enable_analyzer": True}},
                   {"fieldName": "sparse", "dataType": "SparseFloatVector"},
                   {"fieldName": "sv", "dataType": "SparseFloatVector"}],
        "functions": [{"name": "bm25", "type": "BM25", "inputFieldNames": ["text"],
                       "outputFieldNames": ["sparse"], "params": {}}]},
        "indexParams": [{"fieldName": "sparse", "indexName": "sparse", "metricType": "BM25",
                         "indexType": "SPARSE_INVERTED_INDEX"},
                        {"fieldName": "sv", "indexName": "sv", "metricType": "IP",
                         "indexType": "SPARSE_WAND"}]})
    d = r.ok("collections/describe", ft)["data"]
    check([(f["name"], f["type"], f["inputFieldNames"], f["outputFieldNames"]) for f in d["functions"]]
          == [("bm25", "BM25", ["text"], ["sparse"])], f"functions {d['functions']}")
    r.ok("entities/insert", {**ft, "data": [{"id": 1, "text": "hello world of vectors", "sv": {"1": 0.5, "7": 0.25}},
                                            {"id": 2, "text": "another world", "sv": {"3": 1.0}}]})
    r.error("entities/insert", {**ft, "data": [{"id": 3, "text": "x", "sv": {"5": 1.0, "x": 2}}]}, 1804,
            "sparse vector index \"x\" is not an integer")
    hits = r.ok("entities/search", {**ft, "annsField": "sparse", "data": ["hello world"], "limit": 3,
                                    "outputFields": ["text"]})["data"]
    check([h["id"] for h in hits] == [1, 2] and hits[0]["distance"] > hits[1]["distance"] > 0
          and hits[0]["text"] == "hello world of vectors", f"BM25 hits {hits}")
    hits = r.ok("entities/search", {**ft, "annsField": "sv", "data": [{"1": 1.0, "3": 0.1}], "limit": 3,
                                    "outputFields": ["sv"]})["data"]
    check([(h["id"], round(h["distance"], 4), h["sv"]) for h in hits]
          == [(1, 0.5, {"1": 0.5, "7": 0.25}), (2, 0.1, {"3": 1.0})], f"sparse hits {hits}")
    r.ok("collections/drop", ft)
    # The gRPC side of the same port still answers (HTTP/2); an unknown REST path is 404.
    try:
        r.raw("collections/nothing", {})
        raise AssertionError("unknown path answered")
    except urllib.error.HTTPError as e:
        check(e.code == 404, f"unknown path {e.code}")
    print("endpoints: all checks passed")


if __name__ == "__main__":
    mode, base = sys.argv[1], sys.argv[2]
    {"quickstart": quickstart, "endpoints": endpoints}[mode](base)
