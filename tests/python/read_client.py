"""pymilvus 2.5.18 on the read path (load, search, query, get, delete by filter): run by
tests/read_path.rs against a cluster with querycoord and querynodes.

    python read_client.py quickstart URI
    python read_client.py recall URI
    python read_client.py strong URI
    python read_client.py hybrid URI
    python read_client.py grouping URI
    python read_client.py vector_types URI
    python read_client.py quantized URI
    python read_client.py varchar_auto_id URI
    python read_client.py prepare URI NAME ROWS REPLICAS
    python read_client.py search_nonstop URI NAME SECONDS
    python read_client.py verify URI NAME

Exits 0 when every check passes; prints what failed otherwise.
"""
import json
import random
import sys
import threading
import time

from pymilvus import DataType, MilvusClient, MilvusException

from pymilvus_client import Started, check, expect_error, index_params


def quickstart(uri):
    """The Milvus docs quickstart, unchanged, plus the answers it shows."""
    client = MilvusClient(uri=uri)
    if client.has_collection(collection_name="demo_collection"):
        client.drop_collection(collection_name="demo_collection")
    client.create_collection(collection_name="demo_collection", dimension=768)
    check(client.list_indexes("demo_collection") == ["vector"], "quick setup index name")
    check(client.get_load_state("demo_collection")["state"].name == "Loaded", "quick setup loads")

    docs = [
        "Artificial intelligence was founded as an academic discipline in 1956.",
        "Alan Turing was the first person to conduct substantial research in AI.",
        "Born in Maida Vale, London, Turing was raised in southern England.",
    ]
    rng = random.Random(7)
    vectors = [[rng.uniform(-1, 1) for _ in range(768)] for _ in docs]
    data = [{"id": i, "vector": vectors[i], "text": docs[i], "subject": "history"} for i in range(len(vectors))]
    res = client.insert(collection_name="demo_collection", data=data)
    check(res["insert_count"] == 3, f"insert {res}")

    res = client.search(
        collection_name="demo_collection",
        data=[vectors[1]],
        limit=2,
        output_fields=["text", "subject"],
    )
    check(len(res) == 1 and len(res[0]) == 2, f"search shape {res}")
    top = res[0][0]
    check(top["id"] == 1, f"the nearest neighbour of row 1's vector is row 1: {res}")
    check(abs(top["distance"] - 1.0) < 1e-4, f"COSINE score of a vector with itself is 1: {top}")
    check(top["entity"] == {"text": docs[1], "subject": "history"}, f"entity {top['entity']}")
    check(res[0][0]["distance"] >= res[0][1]["distance"], "COSINE best first")

    docs2 = [
        "Machine learning has been used for drug design.",
        "Computational synthesis with AI algorithms predicts molecular properties.",
        "DDR1 is involved in cancers and fibrosis.",
    ]
    vectors2 = [[rng.uniform(-1, 1) for _ in range(768)] for _ in docs2]
    data = [{"id": 3 + i, "vector": vectors2[i], "text": docs2[i], "subject": "biology"} for i in range(len(vectors2))]
    client.insert(collection_name="demo_collection", data=data)

    res = client.search(
        collection_name="demo_collection",
        data=[vectors[0]],
        filter="subject == 'biology'",
        limit=2,
        output_fields=["text", "subject"],
    )
    check(len(res[0]) == 2, f"filtered search {res}")
    check(all(h["entity"]["subject"] == "biology" for h in res[0]), f"filter kept only biology: {res}")

    res = client.query(collection_name="demo_collection", filter="subject == 'history'", output_fields=["text", "subject"])
    check(sorted(r["id"] for r in res) == [0, 1, 2], f"query history {res}")
    check(all(set(r) == {"id", "text", "subject"} for r in res), f"query columns {res}")

    res = client.query(collection_name="demo_collection", ids=[0, 2], output_fields=["vector", "text", "subject"])
    check(sorted(r["id"] for r in res) == [0, 2], f"query by ids {res}")
    got = {r["id"]: r for r in res}
    check(all(abs(a - b) < 1e-6 for a, b in zip(got[2]["vector"], vectors[2])), "vector returned as inserted")

    res = client.get(collection_name="demo_collection", ids=[1])
    check(len(res) == 1 and res[0]["text"] == docs[1] and len(res[0]["vector"]) == 768, f"get {res}")

    res = client.delete(collection_name="demo_collection", ids=[0, 2])
    check(res["delete_count"] == 2, f"delete by ids {res}")
    res = client.delete(collection_name="demo_collection", filter="subject == 'biology'")
    check(res["delete_count"] == 3, f"delete by filter {res}")

    res = client.query(collection_name="demo_collection", filter="", output_fields=["count(*)"])
    check(res[0]["count(*)"] == 1, f"count(*) after deletes {res}")
    res = client.query(collection_name="demo_collection", filter="id >= 0", output_fields=["*"], limit=10)
    check([r["id"] for r in res] == [1], f"rows left {res}")

    # Bad requests: Milvus's codes and messages, nothing changed.
    expect_error("type mismatch in filter", lambda: client.query("demo_collection", filter="id == 'a'",
                                                                   output_fields=["id"]), "1100", "cannot compare")
    expect_error("vector in filter", lambda: client.query("demo_collection", filter="vector > 1"), "vector field")
    expect_error("bad expression", lambda: client.query("demo_collection", filter="id >> 1"), "cannot parse expression")
    expect_error("wrong dim", lambda: client.search("demo_collection", data=[[0.1] * 8], limit=2), "dim")
    expect_error("metric mismatch", lambda: client.search("demo_collection", data=[vectors[0]], limit=2,
                                                          search_params={"metric_type": "L2"}), "metric type not match")
    expect_error("empty expr without limit", lambda: client.query("demo_collection", filter=""),
                 "empty expression should be used with limit")
    expect_error("unknown collection", lambda: client.query("missing_collection", filter="id > 0"), "100", "collection not found")
    expect_error("drop index while loaded", lambda: client.drop_index("demo_collection", "vector"),
                 "index cannot be dropped, collection is loaded, please release it first")
    client.release_collection("demo_collection")
    expect_error("search unloaded", lambda: client.search("demo_collection", data=[vectors[0]], limit=2),
                 "not loaded")
    check(client.get_load_state("demo_collection")["state"].name == "NotLoad", "released")
    client.drop_index("demo_collection", "vector")
    # No index at all: Milvus 2.5's 700 (a collection with an index, but none on some
    # vector field, gets 1100 "there is no vector index on field: [...]").
    expect_error("load without index", lambda: client.load_collection("demo_collection"),
                 "700", "index not found[collection=demo_collection]")
    client.flush("demo_collection")
    res = client.get_collection_stats("demo_collection")
    # Milvus counts persisted rows without subtracting deletes: the 6 inserted.
    check(res["row_count"] == 6, f"stats {res}")
    client.drop_collection(collection_name="demo_collection")
    print("quickstart: all checks passed")


def exact(base, queries, k, metric):
    import numpy as np
    b = np.asarray(base, dtype=np.float32)
    q = np.asarray(queries, dtype=np.float32)
    if metric == "L2":
        d = (q * q).sum(1)[:, None] - 2 * q @ b.T + (b * b).sum(1)[None, :]
        return np.argsort(d, axis=1)[:, :k]
    if metric == "COSINE":
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    return np.argsort(-(q @ b.T), axis=1)[:, :k]


def recall(uri):
    """HNSW recall@10 >= 0.95 at ef 256 on 20,000 x 64 (flushed, indexed, sealed); FLAT
    exact; a filtered search returns only matching rows."""
    import numpy as np
    client = MilvusClient(uri=uri)
    n, dim, k = 20000, 64, 10
    rng = np.random.default_rng(42)
    base = rng.random((n, dim), dtype=np.float32)
    queries = rng.random((100, dim), dtype=np.float32)
    out = {}
    for name, itype, params, sp in [
        ("rc_hnsw", "HNSW", {"M": 16, "efConstruction": 200}, {"ef": 256}),
        ("rc_flat", "FLAT", {}, {}),
    ]:
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("tag", DataType.INT64)
        client.create_collection(name, schema=schema)
        for s in range(0, n, 5000):
            client.insert(name, [{"id": s + i, "vec": base[s + i].tolist(), "tag": (s + i) % 10} for i in range(5000)])
        client.flush(name)
        client.create_index(name, index_params("vec", itype, "L2", **params))
        client.load_collection(name)
        truth = exact(base, queries, k, "L2")
        res = client.search(name, data=queries.tolist(), limit=k, search_params={"params": sp}, consistency_level="Strong")
        hits = sum(len(set(h["id"] for h in r) & set(t.tolist())) for r, t in zip(res, truth))
        out[name] = hits / (len(queries) * k)
        if itype == "HNSW":
            # At a small ef the graph is approximate: recall below 1 proves the sealed
            # segment was searched through its index, not exactly.
            res = client.search(name, data=queries.tolist(), limit=k, search_params={"params": {"ef": 10}},
                                consistency_level="Strong")
            hits = sum(len(set(h["id"] for h in r) & set(t.tolist())) for r, t in zip(res, truth))
            out[name + "_ef10"] = hits / (len(queries) * k)
        # Filtered: only tag == 3, against exact search over those rows.
        res = client.search(name, data=queries[:20].tolist(), limit=k, filter="tag == 3",
                            output_fields=["tag"], search_params={"params": sp})
        check(len(res) == 20 and all(len(r) == k for r in res), f"{name}: filtered search is short: {res}")
        check(all(h["entity"]["tag"] == 3 for r in res for h in r), f"{name}: filter kept other tags")
        sub = np.where(np.arange(n) % 10 == 3)[0]
        t2 = sub[exact(base[sub], queries[:20], k, "L2")]
        hits = sum(len(set(h["id"] for h in r) & set(t.tolist())) for r, t in zip(res, t2))
        out[name + "_filtered"] = hits / (20 * k)
        # Scores: squared L2 distances, ascending.
        r0 = res[0]
        check(all(r0[i]["distance"] <= r0[i + 1]["distance"] for i in range(len(r0) - 1)), "L2 ascending")
        d = float(((base[r0[0]["id"]] - queries[0]) ** 2).sum())
        check(abs(d - r0[0]["distance"]) < 1e-3 * max(1.0, d), f"L2 score is the squared distance {d} {r0[0]}")
        # offset / round_decimal
        full = client.search(name, data=queries[:1].tolist(), limit=6, search_params={"params": sp})[0]
        page = client.search(name, data=queries[:1].tolist(), limit=3, offset=3, search_params={"params": sp},
                             round_decimal=2)[0]
        check([h["id"] for h in page] == [h["id"] for h in full[3:6]], f"offset {page} {full}")
        check(all(round(h["distance"], 2) == h["distance"] for h in page), "round_decimal")
        range_search(client, name, base, queries[:10], sp, out)
        iterate(client, name, base, queries[0], sp, itype == "FLAT")
    print(json.dumps(out))
    check(out["rc_hnsw"] >= 0.95, f"HNSW recall@10 at ef 256: {out['rc_hnsw']}")
    check(0.2 <= out["rc_hnsw_ef10"] < 0.999, f"HNSW recall@10 at ef 10 is approximate: {out['rc_hnsw_ef10']}")
    check(out["rc_hnsw_filtered"] >= 0.9, f"filtered HNSW recall@10 at ef 256: {out['rc_hnsw_filtered']}")
    check(out["rc_flat"] == 1.0, f"FLAT is exact: {out['rc_flat']}")
    check(out["rc_flat_filtered"] == 1.0, f"filtered FLAT is exact: {out['rc_flat_filtered']}")
    check(out["rc_hnsw_range"] >= 0.9, f"HNSW range search recall: {out['rc_hnsw_range']}")
    check(out["rc_flat_range"] == 1.0, f"FLAT range search is exact: {out['rc_flat_range']}")
    print("recall: all checks passed")


def range_search(client, name, base, queries, sp, out):
    """Range search (L2): only hits with range_filter <= d < radius, the best `limit` of
    them, against exact distances; bounds set midway between two rows' distances."""
    import numpy as np
    limit, hits, want = 50, 0, 0
    for q in queries:
        d = ((base - q) ** 2).sum(1)
        order = np.argsort(d)
        s = d[order]
        rf, radius = float(s[4] + s[5]) / 2, float(s[299] + s[300]) / 2
        res = client.search(name, data=[q.tolist()], limit=limit, consistency_level="Strong",
                            search_params={"params": {**sp, "radius": radius, "range_filter": rf}})[0]
        check(len(res) == limit, f"{name}: range search returned {len(res)} of {limit}")
        check(all(rf <= h["distance"] < radius for h in res), f"{name}: a hit outside [{rf}, {radius}): {res}")
        check(all(res[i]["distance"] <= res[i + 1]["distance"] for i in range(len(res) - 1)), "range: ascending")
        truth = set(order[5:5 + limit].tolist())
        hits += len(truth & {h["id"] for h in res})
        want += limit
    out[name + "_range"] = hits / want
    # A radius alone: every row closer than it, when the limit allows.
    q = queries[0]
    s = np.sort(((base - q) ** 2).sum(1))
    radius = float(s[119] + s[120]) / 2
    params = {**sp, "radius": radius}
    if "ef" in params:
        params["ef"] = 1000
    res = client.search(name, data=[q.tolist()], limit=1000, consistency_level="Strong",
                        search_params={"params": params})[0]
    if name.endswith("flat"):
        check(len(res) == 120, f"{name}: radius alone found {len(res)} rows, 120 are closer")
    check(all(h["distance"] < radius for h in res), f"{name}: radius alone: a hit past it")
    # Milvus's order rule, its message and code.
    expect_error("range_filter past radius",
                 lambda: client.search(name, data=[q.tolist()], limit=5,
                                       search_params={"params": {"radius": 1.0, "range_filter": 2.0}}),
                 "1100", "range_filter must be less than radius for L2/HAMMING/JACCARD")
    expect_error("radius not a number",
                 lambda: client.search(name, data=[q.tolist()], limit=5,
                                       search_params={"params": {"radius": "far"}}),
                 "1100", "must pass numpy type for radius")


def iterate(client, name, base, q, sp, exact_index):
    """pymilvus's search_iterator pages with range searches: every row once, best
    first, the first 2,000 rows exactly those of an exact search on FLAT."""
    import numpy as np
    it = client.search_iterator(name, data=[q.tolist()], batch_size=150, limit=2000,
                                search_params={"metric_type": "L2", "params": sp})
    ids, dists = [], []
    while True:
        page = it.next()
        if not page:
            it.close()
            break
        ids.extend(h["id"] for h in page)
        dists.extend(h["distance"] for h in page)
    check(len(ids) == 2000, f"{name}: the iterator returned {len(ids)} rows, not 2000")
    check(len(set(ids)) == len(ids), f"{name}: the iterator returned a row twice")
    check(all(dists[i] <= dists[i + 1] + 1e-6 for i in range(len(dists) - 1)), f"{name}: iterator order")
    if exact_index:
        truth = set(np.argsort(((base - q) ** 2).sum(1))[:2000].tolist())
        check(len(truth & set(ids)) >= 1998, f"{name}: the iterator's rows are not the 2,000 nearest")


def hybrid(uri):
    """hybrid_search over two vector fields (L2 and COSINE, FLAT: exact), each request
    with its own filter and limit, fused by RRFRanker and WeightedRanker; the fused
    scores against the same fusion computed here from exact distances."""
    import math
    import numpy as np
    from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker
    client = MilvusClient(uri=uri)
    n = 3000
    rng = np.random.default_rng(7)
    a, b = rng.random((n, 16), dtype=np.float32), rng.random((n, 8), dtype=np.float32) - 0.5
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("a", DataType.FLOAT_VECTOR, dim=16)
    schema.add_field("b", DataType.FLOAT_VECTOR, dim=8)
    schema.add_field("tag", DataType.INT64)
    client.create_collection("hy", schema=schema)
    rows = [{"id": i, "a": a[i].tolist(), "b": b[i].tolist(), "tag": i % 4} for i in range(n)]
    client.insert("hy", rows[:2500])
    client.flush("hy")
    ip = client.prepare_index_params()
    ip.add_index("a", index_type="FLAT", metric_type="L2")
    ip.add_index("b", index_type="FLAT", metric_type="COSINE")
    client.create_index("hy", ip)
    client.load_collection("hy")
    client.insert("hy", rows[2500:])  # growing rows too
    qa, qb = rng.random(16, dtype=np.float32), rng.random(8, dtype=np.float32) - 0.5
    tags = np.arange(n) % 4
    da = ((a - qa) ** 2).sum(1)
    bn = b / np.linalg.norm(b, axis=1, keepdims=True)
    db = bn @ (qb / np.linalg.norm(qb))
    la = [int(i) for i in np.argsort(da) if tags[i] != 0][:20]      # filter tag != 0, limit 20
    lb = [int(i) for i in np.argsort(-db) if tags[i] in (0, 1)][:30]  # filter tag in [0, 1], limit 30
    reqs = [AnnSearchRequest([qa.tolist()], "a", {"metric_type": "L2"}, 20, expr="tag != 0"),
            AnnSearchRequest([qb.tolist()], "b", {"metric_type": "COSINE"}, 30, expr="tag in [0, 1]")]

    def fuse(score_a, score_b):
        s = {}
        for r, i in enumerate(la):
            s[i] = s.get(i, 0.0) + score_a(r, i)
        for r, i in enumerate(lb):
            s[i] = s.get(i, 0.0) + score_b(r, i)
        return s

    def compare(what, res, want, limit, offset=0):
        check(len(res) == limit, f"{what}: {len(res)} hits, not {limit}")
        ranked = sorted(want.values(), reverse=True)[offset:offset + limit]
        got = [h["distance"] for h in res]
        check(all(abs(x - y) < 1e-4 for x, y in zip(got, ranked)), f"{what}: scores {got} != {ranked}")
        for h in res:
            check(abs(want[h["id"]] - h["distance"]) < 1e-4, f"{what}: {h} should score {want.get(h['id'])}")
            check(h["entity"]["tag"] == tags[h["id"]], f"{what}: output field of {h}")

    rrf = fuse(lambda r, i: 1 / (60 + r + 1), lambda r, i: 1 / (60 + r + 1))
    res = client.hybrid_search("hy", reqs, RRFRanker(60), limit=10, output_fields=["tag"],
                               consistency_level="Strong")[0]
    compare("rrf", res, rrf, 10)
    page = client.hybrid_search("hy", reqs, RRFRanker(60), limit=5, offset=3, output_fields=["tag"],
                                consistency_level="Strong")[0]
    compare("rrf offset", page, rrf, 5, offset=3)
    weighted = fuse(lambda r, i: 0.3 * (1 - 2 * math.atan(da[i]) / math.pi),
                    lambda r, i: 0.7 * (1 + db[i]) / 2)
    res = client.hybrid_search("hy", reqs, WeightedRanker(0.3, 0.7), limit=15, output_fields=["tag"],
                               consistency_level="Strong")[0]
    compare("weighted", res, weighted, 15)
    # Grouping inside a hybrid search (Milvus 2.5's rankSearchResultDataByGroup): each
    # search groups by tag (its limit counts groups), the RRF-fused keys fill groups of 2
    # best first (ties: smaller key), groups ordered by their best score.
    def grouped(dist, keep, groups_wanted, size, higher):
        ranked = sorted((i for i in range(n) if keep(i)), key=lambda i: -dist[i] if higher else dist[i])
        groups, first = {}, {}
        for pos, i in enumerate(ranked):
            g = groups.setdefault(int(tags[i]), [])
            first.setdefault(int(tags[i]), pos)
            if len(g) < size:
                g.append(i)
        ordered = sorted(groups, key=lambda t: first[t])[:groups_wanted]
        return [i for t in ordered for i in groups[t]]

    fused = {}
    for lst in (grouped(da, lambda i: tags[i] != 0, 20, 2, False),
                grouped(db, lambda i: tags[i] in (0, 1), 30, 2, True)):
        for r, i in enumerate(lst):
            fused[i] = fused.get(i, 0.0) + 1 / (60 + r + 1)
    buckets = {}
    for i in sorted(fused, key=lambda i: (-fused[i], i)):
        b = buckets.setdefault(int(tags[i]), [])
        if len(b) < 2:
            b.append(i)
    for limit, offset in ((3, 0), (2, 1)):
        best = sorted(buckets.values(), key=lambda b: (-max(fused[i] for i in b), -len(b), b[0]))
        want = [i for b in best[offset:offset + limit] for i in b]
        res = client.hybrid_search("hy", reqs, RRFRanker(60), limit=limit, offset=offset, group_by_field="tag",
                                   group_size=2, output_fields=["tag"], consistency_level="Strong")[0]
        check([h["id"] for h in res] == want, f"grouped hybrid ({limit}, {offset}): {[h['id'] for h in res]} != {want}")
        check(all(abs(h["distance"] - fused[h["id"]]) < 1e-5 for h in res), f"grouped hybrid scores: {res}")
    expect_error("an unknown group scorer",
                 lambda: client.hybrid_search("hy", reqs, RRFRanker(), limit=3, group_by_field="tag",
                                              rank_group_scorer="median"),
                 "input group scorer type: median is not supported!")
    expect_error("weights of another length",
                 lambda: client.hybrid_search("hy", reqs, WeightedRanker(1.0), limit=5),
                 "1100", "the length of weights param mismatch with ann search requests")
    expect_error("limit past the window",
                 lambda: client.hybrid_search("hy", reqs, RRFRanker(), limit=16385),
                 "(offset+limit) should be in range [1, 16384]")
    expect_error("a field that does not exist",
                 lambda: client.hybrid_search("hy", [AnnSearchRequest([qa.tolist()], "nope", {}, 5)],
                                              RRFRanker(), limit=5),
                 "fieldName(nope) not found")
    client.drop_collection("hy")
    print("hybrid: all checks passed")


def vector_types(uri):
    """BINARY_VECTOR, FLOAT16_VECTOR and BFLOAT16_VECTOR fields (pymilvus: bytes and numpy
    float16 / ml_dtypes bfloat16 arrays): sealed and growing rows searched against exact
    distances computed here (BIN_IVF_FLAT JACCARD probing every list, BIN_FLAT HAMMING, FLAT
    IP) and HNSW recall; vectors returned byte for byte by query and search; Milvus's
    refusals for wrong dims, types, metrics and values."""
    import ml_dtypes
    import numpy as np
    client = MilvusClient(uri=uri)
    n, bits_dim, dim = 3000, 128, 32
    rng = np.random.default_rng(11)
    b1 = rng.integers(0, 256, size=(n, bits_dim // 8), dtype=np.uint8)
    b2 = rng.integers(0, 256, size=(n, bits_dim // 8), dtype=np.uint8)
    h = rng.random((n, dim)).astype(np.float16)
    bh = (rng.random((n, dim)) - 0.5).astype(ml_dtypes.bfloat16)
    tags = np.arange(n) % 3
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("jac", DataType.BINARY_VECTOR, dim=bits_dim)
    schema.add_field("ham", DataType.BINARY_VECTOR, dim=bits_dim)
    schema.add_field("h", DataType.FLOAT16_VECTOR, dim=dim)
    schema.add_field("bh", DataType.BFLOAT16_VECTOR, dim=dim)
    schema.add_field("tag", DataType.INT64)
    client.create_collection("vt", schema=schema)
    rows = [{"id": i, "jac": b1[i].tobytes(), "ham": b2[i].tobytes(), "h": h[i], "bh": bh[i],
             "tag": int(tags[i])} for i in range(n)]
    client.insert("vt", rows[:2500])
    client.flush("vt")
    ip = client.prepare_index_params()
    ip.add_index("jac", index_type="BIN_IVF_FLAT", metric_type="JACCARD", params={"nlist": 16})
    ip.add_index("ham", index_type="BIN_FLAT", metric_type="HAMMING")
    ip.add_index("h", index_type="HNSW", metric_type="L2", params={"M": 16, "efConstruction": 200})
    ip.add_index("bh", index_type="FLAT", metric_type="IP")
    client.create_index("vt", ip)
    client.load_collection("vt")
    client.insert("vt", rows[2500:])  # growing rows too
    described = client.describe_index("vt", "ham")
    check(described.get("index_type") == "BIN_FLAT" and described.get("metric_type") == "HAMMING",
          f"describe_index: {described}")

    def popcount(x):
        return np.unpackbits(x, axis=-1).sum(-1)

    def compare(what, got, want, tol):
        check(len(got) == len(want), f"{what}: {len(got)} hits, not {len(want)}")
        check(all(abs(a - b) <= tol * max(1.0, abs(b)) for a, b in zip(got, want)),
              f"{what}: distances {got} != {want}")

    for qi in range(5):
        q1, q2 = rng.integers(0, 256, size=(2, bits_dim // 8), dtype=np.uint8)
        inter = popcount(b1 & q1).astype(np.float64)
        union = popcount(b1 | q1).astype(np.float64)
        jac = np.where(union == 0, 1.0, 1.0 - inter / np.maximum(union, 1))
        res = client.search("vt", [q1.tobytes()], anns_field="jac", limit=10,
                            search_params={"metric_type": "JACCARD", "params": {"nprobe": 16}},
                            output_fields=["jac", "tag"], consistency_level="Strong")[0]
        compare(f"jaccard {qi}", [x["distance"] for x in res], sorted(jac)[:10], 1e-5)
        for x in res:
            check(x["entity"]["jac"] == b1[x["id"]].tobytes(), f"jaccard {qi}: returned vector of {x['id']}")
            check(abs(jac[x["id"]] - x["distance"]) < 1e-5, f"jaccard {qi}: {x} should score {jac[x['id']]}")
        ham = popcount(b2 ^ q2)
        res = client.search("vt", [q2.tobytes()], anns_field="ham", limit=10, filter="tag == 1",
                            search_params={"metric_type": "HAMMING"}, output_fields=["tag"],
                            consistency_level="Strong")[0]
        compare(f"hamming {qi}", [x["distance"] for x in res], sorted(ham[tags == 1])[:10], 0)
        check(all(x["entity"]["tag"] == 1 for x in res), f"hamming {qi}: filter: {res}")
        # Range search: HAMMING keeps range_filter <= d < radius.
        lo, hi = sorted(ham)[3], sorted(ham)[40]
        res = client.search("vt", [q2.tobytes()], anns_field="ham", limit=100,
                            search_params={"metric_type": "HAMMING",
                                           "params": {"radius": float(hi), "range_filter": float(lo)}},
                            consistency_level="Strong")[0]
        inside = sorted(d for d in ham if lo <= d < hi)[:100]
        compare(f"hamming range {qi}", [x["distance"] for x in res], inside, 0)
        qb = (rng.random(dim) - 0.5).astype(ml_dtypes.bfloat16)
        ipv = bh.astype(np.float32) @ qb.astype(np.float32)
        res = client.search("vt", [qb], anns_field="bh", limit=10, search_params={"metric_type": "IP"},
                            output_fields=["bh"], consistency_level="Strong")[0]
        compare(f"bfloat16 ip {qi}", [x["distance"] for x in res], sorted(ipv, reverse=True)[:10], 1e-4)
        for x in res:
            check(x["entity"]["bh"] == bh[x["id"]].tobytes(), f"bfloat16 {qi}: returned vector of {x['id']}")
    # float16 HNSW: recall@10 against exact L2 over the widened values.
    hw = h.astype(np.float32)
    hits = 0
    for qi in range(20):
        q = rng.random(dim).astype(np.float16)
        d = ((hw - q.astype(np.float32)) ** 2).sum(1)
        want = set(int(i) for i in np.argsort(d)[:10])
        res = client.search("vt", [q], anns_field="h", limit=10,
                            search_params={"metric_type": "L2", "params": {"ef": 64}},
                            consistency_level="Strong")[0]
        hits += len(want & {x["id"] for x in res})
        for x in res:
            check(abs(d[x["id"]] - x["distance"]) < 1e-3 * max(1.0, d[x["id"]]),
                  f"float16 {qi}: {x} should score {d[x['id']]}")
    check(hits / 200 >= 0.9, f"float16 HNSW recall@10 {hits / 200}")
    # Every value back as written, sealed and growing rows alike.
    got = client.query("vt", filter="id in [0, 7, 2999]", output_fields=["jac", "ham", "h", "bh"],
                       consistency_level="Strong")
    check(len(got) == 3, f"query: {got}")
    for r in got:
        i = r["id"]
        for name, arr in (("jac", b1), ("ham", b2), ("h", h), ("bh", bh)):
            value = r[name][0] if isinstance(r[name], list) else r[name]
            check(value == arr[i].tobytes(), f"query: {name} of {i}: {r[name]!r}")
    # Refusals, in Milvus's words.
    expect_error("float search data on a binary field",
                 lambda: client.search("vt", [[0.5] * dim], anns_field="ham", limit=3),
                 "vector type must be the same, field ham - type VECTOR_BINARY, search info type VECTOR_FLOAT")
    expect_error("binary search data of the wrong size",
                 lambda: client.search("vt", [bytes(15)], anns_field="ham", limit=3),
                 "vector dimension mismatch, expected vector size(byte) 16, actual 15.")
    expect_error("binary rows of the wrong dim",
                 lambda: client.insert("vt", [{**rows[0], "id": n, "ham": bytes(15)}]),
                 "the dim (120) of field data(ham) is not equal to schema dim (128)")
    nan = np.full(dim, np.nan, dtype=np.float16)
    expect_error("NaN in a float16 vector",
                 lambda: client.insert("vt", [{**rows[0], "id": n, "h": nan}]),
                 "float16 vector contain nan or infinity value.")
    check(client.query("vt", filter=f"id >= {n}", output_fields=["count(*)"],
                       consistency_level="Strong")[0]["count(*)"] == 0, "a refused row was stored")
    bad = MilvusClient.create_schema(auto_id=False)
    bad.add_field("id", DataType.INT64, is_primary=True)
    bad.add_field("b", DataType.BINARY_VECTOR, dim=12)
    expect_error("a binary dim that is not a multiple of 8",
                 lambda: client.create_collection("vt_bad", schema=bad),
                 "binary vector dimension should be multiple of 8")
    client.release_collection("vt")
    client.drop_index("vt", "ham")
    for params, needle in (
            ({"index_type": "HNSW", "metric_type": "HAMMING", "params": {"M": 8, "efConstruction": 64}},
             "data type BinaryVector can't build with this index HNSW"),
            ({"index_type": "BIN_IVF_FLAT", "metric_type": "L2"},
             "binary vector index does not support metric type: L2")):
        bad_ip = client.prepare_index_params()
        bad_ip.add_index("ham", **params)
        expect_error(f"index {params}", lambda: client.create_index("vt", bad_ip), needle)
    ip = client.prepare_index_params()
    ip.add_index("ham")  # AUTOINDEX: BIN_IVF_FLAT, HAMMING
    client.create_index("vt", ip)
    described = client.describe_index("vt", "ham")
    check(described.get("index_type") == "AUTOINDEX" and described.get("metric_type") == "HAMMING",
          f"describe_index after AUTOINDEX: {described}")
    client.drop_collection("vt")
    print("vector_types: all checks passed")


def quantized(uri):
    """IVF_SQ8 (L2), IVF_PQ (IP), SCANN (COSINE, raw data kept) and DISKANN (L2, a Vamana
    graph) on sealed rows, growing rows searched exactly beside them: recall@10 against
    exact results, the indexes described, knowhere's refusals for m / sub_dim that do not
    divide the dim, a reorder_k or search_list below the limit, a max_degree too large."""
    import numpy as np
    client = MilvusClient(uri=uri)
    n, dim = 6000, 32
    rng = np.random.default_rng(5)
    data = {f: rng.random((n, dim), dtype=np.float32) - 0.5 for f in ("sq", "pq", "sc", "da")}
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    for f in data:
        schema.add_field(f, DataType.FLOAT_VECTOR, dim=dim)
    client.create_collection("qz", schema=schema)
    rows = [{"id": i, **{f: v[i].tolist() for f, v in data.items()}} for i in range(n)]
    client.insert("qz", rows[:5500])
    client.flush("qz")
    bad = client.prepare_index_params()
    bad.add_index("pq", index_type="IVF_PQ", metric_type="IP", params={"nlist": 32, "m": 5})
    expect_error("IVF_PQ m that does not divide the dim", lambda: client.create_index("qz", bad),
                 "The dimension of a vector (dim) should be a multiple of the number of subquantizers (m). Dimension: 32, m: 5")
    bad = client.prepare_index_params()
    bad.add_index("sc", index_type="SCANN", metric_type="COSINE", params={"nlist": 32, "sub_dim": 3})
    expect_error("SCANN sub_dim that does not divide the dim", lambda: client.create_index("qz", bad),
                 "should be a multiple of sub_dim. Dimension:32, sub_dim:3")
    ip = client.prepare_index_params()
    ip.add_index("sq", index_type="IVF_SQ8", metric_type="L2", params={"nlist": 32})
    ip.add_index("pq", index_type="IVF_PQ", metric_type="IP", params={"nlist": 32, "m": 8, "nbits": 8})
    ip.add_index("sc", index_type="SCANN", metric_type="COSINE", params={"nlist": 32})
    ip.add_index("da", index_type="DISKANN", metric_type="L2")
    client.create_index("qz", ip)
    client.load_collection("qz")
    client.insert("qz", rows[5500:])
    for f, t in (("sq", "IVF_SQ8"), ("pq", "IVF_PQ"), ("sc", "SCANN"), ("da", "DISKANN")):
        d = client.describe_index("qz", f)
        check(d.get("index_type") == t, f"describe {f}: {d}")
    metric = {"sq": "L2", "pq": "IP", "sc": "COSINE", "da": "L2"}
    floor = {"sq": 0.9, "pq": 0.6, "sc": 0.9, "da": 0.95}
    for f, base in data.items():
        hits = 0
        for _ in range(20):
            q = rng.random(dim, dtype=np.float32) - 0.5
            if metric[f] == "L2":
                want = np.argsort(((base - q) ** 2).sum(1))[:10]
            elif metric[f] == "IP":
                want = np.argsort(-(base @ q))[:10]
            else:
                unit = base / np.linalg.norm(base, axis=1, keepdims=True)
                want = np.argsort(-(unit @ (q / np.linalg.norm(q))))[:10]
            params = {"nprobe": 32, **({"reorder_k": 100} if f == "sc" else {}),
                      **({"search_list": 64} if f == "da" else {})}
            res = client.search("qz", [q.tolist()], anns_field=f, limit=10,
                                search_params={"metric_type": metric[f], "params": params},
                                consistency_level="Strong")[0]
            check(len(res) == 10, f"{f}: {len(res)} hits")
            hits += len(set(int(i) for i in want) & {x["id"] for x in res})
        check(hits / 200 >= floor[f], f"{f}: recall@10 {hits / 200} below {floor[f]}")
        print(f"quantized: {f} recall@10 {hits / 200}")
    expect_error("reorder_k below the limit",
                 lambda: client.search("qz", [[0.1] * dim], anns_field="sc", limit=10,
                                       search_params={"metric_type": "COSINE", "params": {"reorder_k": 5}}),
                 "reorder_k(5) should be larger than k(10)")
    expect_error("search_list below the limit",
                 lambda: client.search("qz", [[0.1] * dim], anns_field="da", limit=10,
                                       search_params={"metric_type": "L2", "params": {"search_list": 5}}),
                 "search_list(5) should be larger than k(10)")
    client.release_collection("qz")
    client.drop_index("qz", "da")
    bad = client.prepare_index_params()
    bad.add_index("da", index_type="DISKANN", metric_type="L2", params={"max_degree": 600})
    expect_error("DISKANN max_degree over 512", lambda: client.create_index("qz", bad),
                 "param 'max_degree' (600) should be in range [1, 512]")
    client.drop_collection("qz")
    print("quantized: all checks passed")


def varchar_auto_id(uri):
    """An autoID VarChar primary key: the keys are the row IDs in decimal (as Milvus gives
    them), flushed and growing rows alike, found by search, query and get."""
    import numpy as np
    client = MilvusClient(uri=uri)
    schema = MilvusClient.create_schema(auto_id=True)
    schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("n", DataType.INT64)
    ip = client.prepare_index_params()
    ip.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection("va", schema=schema, index_params=ip, consistency_level="Strong")
    rng = np.random.default_rng(3)
    vecs = rng.random((150, 4), dtype=np.float32)
    first = client.insert("va", [{"v": vecs[i].tolist(), "n": i} for i in range(100)])
    client.flush("va")
    second = client.insert("va", [{"v": vecs[i].tolist(), "n": i} for i in range(100, 150)])
    ids = list(first["ids"]) + list(second["ids"])
    check(len(ids) == 150 and all(isinstance(k, str) and k.isdigit() for k in ids), f"autoID keys {ids[:3]}")
    check(client.query("va", filter="", output_fields=["count(*)"])[0]["count(*)"] == 150, "count")
    for i in (7, 120):
        res = client.search("va", [vecs[i].tolist()], limit=3, output_fields=["n"])[0]
        check(res[0]["pk"] == ids[i] and res[0]["entity"]["n"] == i, f"search row {i}: {res}")
    got = client.get("va", ids=[ids[3], ids[140]], output_fields=["n"])
    check(sorted(r["n"] for r in got) == [3, 140], f"get: {got}")
    client.drop_collection("va")
    print("varchar_auto_id: all checks passed")


def grouping(uri):
    """Grouping search (group_by_field, group_size, offset in groups) over sealed and
    growing rows, FLAT (exact): on one shard, against the same grouping of exact results;
    on two shards (each groups its own rows, as Milvus's segments do), the groups and
    their best hits are still exact."""
    import numpy as np
    client = MilvusClient(uri=uri)
    n = 3000
    rng = np.random.default_rng(11)
    vecs = rng.random((n, 8), dtype=np.float32)
    docs = rng.integers(0, 40, n)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
    schema.add_field("doc", DataType.INT64)
    schema.add_field("title", DataType.VARCHAR, max_length=16)
    schema.add_field("weight", DataType.FLOAT)
    rows = [{"id": i, "vec": vecs[i].tolist(), "doc": int(docs[i]), "title": f"t{docs[i] % 7}",
             "weight": 0.5} for i in range(n)]
    for name, shards in [("grp", 1), ("grp2", 2)]:
        client.create_collection(name, schema=schema, num_shards=shards)
        client.insert(name, rows[:2000])
        client.flush(name)
        client.create_index(name, index_params("vec", "FLAT", "L2"))
        client.load_collection(name)
        client.insert(name, rows[2000:])
    q = rng.random(8, dtype=np.float32)
    order = np.argsort(((vecs - q) ** 2).sum(1))

    def expect(key, limit, size, offset=0):
        groups, skipped, index = [], set(), {}
        for i in order.tolist():
            g = key(i)
            if len(skipped) < offset or g in skipped:
                skipped.add(g)
                continue
            if g in index:
                if len(groups[index[g]]) < size:
                    groups[index[g]].append(i)
            elif len(groups) < limit:
                index[g] = len(groups)
                groups.append([i])
        return [i for grp in groups for i in grp]

    for limit, size, offset in [(5, 3, 0), (4, 1, 0), (3, 2, 2)]:
        res = client.search("grp", data=[q.tolist()], limit=limit, offset=offset, group_by_field="doc",
                            group_size=size, output_fields=["doc"], consistency_level="Strong")[0]
        want = expect(lambda i: int(docs[i]), limit, size, offset)
        got = [h["id"] for h in res]
        check(got == want, f"group by doc limit {limit} size {size} offset {offset}: {got} != {want}")
        check(all(h["entity"]["doc"] == docs[h["id"]] for h in res), f"group field output {res}")
    res = client.search("grp", data=[q.tolist()], limit=3, group_by_field="title", group_size=2,
                        strict_group_size=True, consistency_level="Strong")[0]
    got = [h["id"] for h in res]
    want = expect(lambda i: f"t{docs[i] % 7}", 3, 2)
    check(got == want, f"group by a VarChar: {got} != {want}")
    check(all(set(h["entity"].keys()) <= {"title"} for h in res), f"only asked fields: {res}")
    res = client.search("grp2", data=[q.tolist()], limit=6, group_by_field="doc", group_size=3,
                        output_fields=["doc"], consistency_level="Strong")[0]
    leaders, sizes = [], {}
    for h in res:
        d = h["entity"]["doc"]
        if d not in sizes:
            leaders.append(h["id"])
        sizes[d] = sizes.get(d, 0) + 1
    want = expect(lambda i: int(docs[i]), 6, 1)
    check(leaders == want, f"two shards: group leaders {leaders} != {want}")
    check(len(sizes) == 6 and all(1 <= v <= 3 for v in sizes.values()), f"two shards: groups {sizes}")
    check(len({h["id"] for h in res}) == len(res), f"two shards: a row twice {res}")
    expect_error("group by a float", lambda: client.search("grp", data=[q.tolist()], limit=3,
                                                           group_by_field="weight"),
                 "unsupported data type")
    expect_error("group by nothing", lambda: client.search("grp", data=[q.tolist()], limit=3,
                                                           group_by_field="nope"),
                 "groupBy field not found in schema: field not found[field=nope]")
    expect_error("range and group", lambda: client.search("grp", data=[q.tolist()], limit=3, group_by_field="doc",
                                                          search_params={"params": {"radius": 1.0}}),
                 "Not allowed to do range-search when doing search-group-by")
    expect_error("iterate and group", lambda: client.search_iterator("grp", data=[q.tolist()], batch_size=5,
                                                                     group_by_field="doc").next(),
                 "Not allowed to do groupBy when doing iteration")
    client.drop_collection("grp")
    client.drop_collection("grp2")
    print("grouping: all checks passed")


def strong(uri):
    """An acknowledged insert is returned by the next Strong query of another client."""
    a, b = MilvusClient(uri=uri), MilvusClient(uri=uri)
    a.create_collection("strong", dimension=8, metric_type="L2", consistency_level="Bounded")
    misses = 0
    for i in range(200):
        a.insert("strong", [{"id": i, "vector": [float(i)] * 8}])
        got = b.query("strong", filter=f"id == {i}", output_fields=["id"], consistency_level="Strong")
        if [r["id"] for r in got] != [i]:
            misses += 1
        if i % 50 == 49:
            a.delete("strong", ids=[i])
            got = b.query("strong", filter=f"id == {i}", consistency_level="Strong")
            check(got == [], f"a deleted row is gone for a Strong query: {got}")
    check(misses == 0, f"{misses} of 200 acknowledged inserts were not seen by the next Strong query")
    n = b.query("strong", filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
    check(n == 196, f"count(*) {n}")
    print("strong: all checks passed")


def prepare(uri, name, rows, replicas):
    """A loaded collection of ROWS 16-dim vectors (part flushed and indexed, part growing)."""
    client = MilvusClient(uri=uri)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=16)
    client.create_collection(name, schema=schema, num_shards=2)
    rng = random.Random(1)
    half = rows // 2
    for s in range(0, half, 2000):
        client.insert(name, [{"id": s + i, "vec": [rng.random() for _ in range(16)]} for i in range(min(2000, half - s))])
    client.flush(name)
    client.create_index(name, index_params("vec", "HNSW", "L2", M=16, efConstruction=64))
    client.load_collection(name, replica_number=replicas)
    for s in range(half, rows, 2000):
        client.insert(name, [{"id": s + i, "vec": [rng.random() for _ in range(16)]} for i in range(min(2000, rows - s))])
    client.delete(name, ids=list(range(0, rows, 100)))
    print(json.dumps({"rows": rows, "deleted": len(range(0, rows, 100))}))


def search_nonstop(uri, name, seconds):
    """Searches for SECONDS, in turn a plain search, a hybrid search (RRF over two
    requests) and two pages of a search iterator (range searches); prints counts of calls
    and failures."""
    from pymilvus import AnnSearchRequest, RRFRanker
    client = MilvusClient(uri=uri, timeout=30)
    rng = random.Random(2)
    end = time.time() + seconds
    calls = failures = empty = deleted = 0
    errors = []
    first = Started()
    turn = 0
    while time.time() < end:
        turn += 1
        q = [rng.random() for _ in range(16)]
        try:
            if turn % 3 == 0:
                reqs = [AnnSearchRequest([q], "vec", {"params": {"ef": 32}}, 5),
                        AnnSearchRequest([[rng.random() for _ in range(16)]], "vec", {"params": {"ef": 32}}, 5)]
                res = client.hybrid_search(name, reqs, RRFRanker(), limit=5)
            elif turn % 3 == 1:
                it = client.search_iterator(name, data=[q], batch_size=5, limit=10,
                                            search_params={"metric_type": "L2", "params": {"ef": 32}})
                pages = [it.next(), it.next()]
                it.close()
                ids = [h["id"] for p in pages for h in p]
                if len(set(ids)) != len(ids):
                    errors.append(f"the iterator returned a row twice: {ids}")
                res = [[h for p in pages for h in p][:5]]
            else:
                res = client.search(name, data=[q], limit=5, search_params={"params": {"ef": 32}})
            calls += 1
            first()
            if len(res[0]) != 5:
                empty += 1
            if any(h["id"] % 100 == 0 for h in res[0]):
                deleted += 1
                errors.append(f"deleted row returned: {res[0]}")
        except MilvusException as e:
            failures += 1
            errors.append(str(e))
        time.sleep(0.01)
    print(json.dumps({"calls": calls, "failures": failures, "short": empty, "deleted_back": deleted,
                      "errors": errors[:5]}))
    check(failures == 0 and empty == 0 and deleted == 0 and not errors, f"search_nonstop: {errors[:5]}")


def verify(uri, name):
    """count(*) and that no deleted row comes back (Strong)."""
    client = MilvusClient(uri=uri)
    # Each question twice in a row: the proxy sends a shard's successive requests to its
    # replicas in turn, so with 2 replicas both answer (a replica that lost its deletes
    # must not hide behind the other).
    counts = [client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
              for _ in range(2)]
    back = [len(client.query(name, filter="id % 100 == 0", output_fields=["id"], consistency_level="Strong"))
            for _ in range(2)]
    print(json.dumps({"count": counts[0] if counts[0] == counts[1] else counts, "deleted_back": max(back)}))


def grow(uri, name, start, rows):
    """Inserts ROWS more rows from id START, flushes, and prints the Strong count(*)."""
    client = MilvusClient(uri=uri, timeout=60)
    rng = random.Random(start)
    client.insert(name, [{"id": start + i, "vec": [rng.random() for _ in range(16)]} for i in range(rows)])
    client.flush(name)
    count = client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
    print(json.dumps({"count": count}))


if __name__ == "__main__":
    mode, uri = sys.argv[1], sys.argv[2]
    if mode == "quickstart":
        quickstart(uri)
    elif mode == "recall":
        recall(uri)
    elif mode == "hybrid":
        hybrid(uri)
    elif mode == "vector_types":
        vector_types(uri)
    elif mode == "quantized":
        quantized(uri)
    elif mode == "varchar_auto_id":
        varchar_auto_id(uri)
    elif mode == "grouping":
        grouping(uri)
    elif mode == "strong":
        strong(uri)
    elif mode == "prepare":
        prepare(uri, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "search_nonstop":
        search_nonstop(uri, sys.argv[3], float(sys.argv[4]))
    elif mode == "verify":
        verify(uri, sys.argv[3])
    elif mode == "grow":
        grow(uri, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        raise SystemExit(f"unknown mode {mode}")
