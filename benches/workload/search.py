"""Search workload (pymilvus MilvusClient), reusable against any Milvus-compatible endpoint
(real Milvus too): ROWS x DIM uniform random vectors (fixed seed) in a one-shard
collection, flushed, HNSW (M / efConstruction as given, L2) built; then for each run:
release, load (timed until loaded), and QUERIES searches top-10 at each ef, by 1 and by
8 client processes. Recall@10 against exact numpy results. Prints one JSON line per
measurement:

    {"what": "load", "s": ...}
    {"what": "search", "ef": 64, "clients": 1, "qps": ..., "p50_ms": ..., "p99_ms": ..., "recall": ...}

    python search.py URI [--rows N] [--dim D] [--queries Q] [--ef 16,64,128] [--clients 1,8]
                         [--runs R] [--metric L2] [--m M] [--efc E] [--seed S] [--reuse]
                         [--no-features] [--only text_match|sparse|bm25|scalar_index|grouping]

Then, unless --no-features, one client at ef 64 over the first 200 queries measures the
search features beside plain top-10 (a system without one prints "unsupported" for it):

    {"what": "feature", "name": "range", ...}   radius at each query's 100th distance,
        range_filter between its 5th and 6th: recall@10 against the exact in-range top-10
    {"what": "feature", "name": "hybrid", ...}  hybrid_search of two requests (the query and
        its negation's neighbourhood), RRF k 60, top-10: recall of each fused hit against
        the same fusion of exact results
    {"what": "feature", "name": "binary", ...}  ROWS random 256-bit vectors, BIN_IVF_FLAT
        (nlist 128, nprobe 8) HAMMING, top-10: recall against exact Hamming distances (a
        hit counts when it is within the 10th exact distance: ties are common)
    {"what": "feature", "name": "float16", ...}  the base as float16, HNSW (M / efConstruction
        as given) L2 at ef 64, top-10: recall against exact distances of the float16 values
    {"what": "feature", "name": "scalar_index", ...}  the base with an INT64 field `num`
        uniform over 0..1000 and an STL_SORT index on it beside HNSW as given; searches
        top-10 at ef 64 filtered by `num >= x and num < x + 5` (about 0.5% of the rows):
        recall against the exact top-10 of the matching rows (--only scalar_index)
    {"what": "feature", "name": "grouping", ...}  the base with an INT64 field `grp` uniform
        over 20 groups, HNSW as given; searches top-10 at ef 64 with group_by_field="grp"
        (one hit per group): recall of the groups against the groups of the exact nearest
        rows (--only grouping)
    {"what": "feature", "name": "text_match", ...}  the base with a text field of 12 words a
        row (uniform over 2,000 words, so a word is in about 0.6% of rows; enable_match,
        standard analyzer), HNSW as given; searches top-10 at ef 64 filtered by
        TEXT_MATCH(text, 'word'): recall against the exact top-10 of the matching rows
        (alone, once per run: --only text_match)
    {"what": "feature", "name": "sparse", ...}  ROWS sparse rows of 24 non-zeros each over
        30,000 dimensions drawn Zipf-like (s 1.1, as learned sparse embeddings skew),
        SPARSE_INVERTED_INDEX IP; 200 queries of 24 non-zeros, top-10: recall against the
        exact inner products (--only sparse)
    {"what": "feature", "name": "bm25", ...}  ROWS texts of 12 words drawn Zipf-like from
        5,000 words, a BM25 function into a sparse field (SPARSE_INVERTED_INDEX, BM25, k1
        1.2, b 0.75); 200 searches by a 3-word text, top-10: recall against a numpy BM25 over
        the same rows (Milvus 2.5's formula; --only bm25)
"""
import argparse
import json
import queue
import multiprocessing as mp
import time

import numpy as np
from pymilvus import DataType, MilvusClient

NAME = "bench_search"


def prepare(c, a, base):
    if a.reuse and c.has_collection(NAME):
        return
    if c.has_collection(NAME):
        c.drop_collection(NAME)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=a.dim)
    c.create_collection(NAME, schema=schema, shards_num=1)
    for start in range(0, a.rows, 5000):
        n = min(5000, a.rows - start)
        c.insert(NAME, [{"id": start + i, "vec": base[start + i].tolist()} for i in range(n)])
    c.flush(NAME)
    params = MilvusClient.prepare_index_params()
    params.add_index(field_name="vec", index_type="HNSW", metric_type=a.metric,
                     params={"M": a.m, "efConstruction": a.efc})
    c.create_index(NAME, params)


def truth(base, queries, k):
    out = []
    bn = (base * base).sum(1)
    for s in range(0, len(queries), 100):
        q = queries[s:s + 100]
        d = bn[None, :] - 2 * q @ base.T
        out.append(np.argsort(d, axis=1)[:, :k])
    return np.vstack(out)


def worker(uri, slot, queries, ef, out):
    """Searches QUERIES; puts (slot, latencies, ids), or (slot, None, error) if it fails
    (so the parent never waits for a result that will not come)."""
    try:
        c = MilvusClient(uri=uri)
        lat, ids = [], []
        for q in queries:
            t = time.perf_counter()
            r = c.search(NAME, data=[q.tolist()], limit=10, search_params={"params": {"ef": ef}})
            lat.append(time.perf_counter() - t)
            ids.append([h["id"] for h in r[0]])
        out.put((slot, lat, ids))
    except Exception as e:  # noqa: BLE001 - reported to the parent
        out.put((slot, None, f"{type(e).__name__}: {e}"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("uri")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--ef", default="16,64,128")
    p.add_argument("--clients", default="1,8")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--metric", default="L2")
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--efc", type=int, default=200)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--reuse", action="store_true")
    p.add_argument("--no-features", action="store_true")
    p.add_argument("--only", choices=["text_match", "sparse", "bm25", "scalar_index", "grouping"],
                   help="measure only this feature (no plain search runs)")
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    base = rng.random((a.rows, a.dim), dtype=np.float32)
    queries = rng.random((a.queries, a.dim), dtype=np.float32)
    c = MilvusClient(uri=a.uri)
    if a.only:
        only = {"text_match": text_feature, "sparse": sparse_feature, "bm25": bm25_feature,
                "scalar_index": scalar_feature, "grouping": grouping_feature}[a.only]
        for _ in range(a.runs):
            only(c, base, queries, a)
        return
    prepare(c, a, base)
    gt = truth(base, queries, 10)
    for run in range(a.runs):
        c.release_collection(NAME)
        t = time.perf_counter()
        c.load_collection(NAME)
        print(json.dumps({"what": "load", "run": run, "s": round(time.perf_counter() - t, 3)}), flush=True)
        # Warm up the connection and caches.
        for q in queries[:20]:
            c.search(NAME, data=[q.tolist()], limit=10, search_params={"params": {"ef": 64}})
        for ef in [int(x) for x in a.ef.split(",")]:
            for clients in [int(x) for x in a.clients.split(",")]:
                parts = np.array_split(np.arange(len(queries)), clients)
                q = mp.Queue()
                procs = [mp.Process(target=worker, args=(a.uri, i, queries[s], ef, q))
                         for i, s in enumerate(parts)]
                started = time.perf_counter()
                for pr in procs:
                    pr.start()
                results = []
                for _ in procs:
                    try:
                        results.append(q.get(timeout=600))
                    except queue.Empty:
                        raise SystemExit("a search client gave no result within 600 s") from None
                wall = time.perf_counter() - started
                for pr in procs:
                    pr.join()
                failed = [r[2] for r in results if r[1] is None]
                if failed:
                    raise SystemExit(f"search clients failed: {failed}")
                lat = sorted(x for r in results for x in r[1])
                hits = 0
                for slot, _, ids in results:
                    for qi, row in zip(parts[slot], ids):
                        hits += len(set(row) & set(gt[qi].tolist()))
                print(json.dumps({
                    "what": "search", "run": run, "ef": ef, "clients": clients,
                    "qps": round(len(lat) / wall, 1),
                    "p50_ms": round(lat[len(lat) // 2] * 1000, 2),
                    "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 2),
                    "recall": round(hits / (len(queries) * 10), 4),
                }), flush=True)
    if not a.no_features:
        features(c, base, queries)
        typed_features(c, base, queries, a)
        text_feature(c, base, queries, a)
        scalar_feature(c, base, queries, a)
        sparse_feature(c, base, queries, a)
        bm25_feature(c, base, queries, a)


def timed(fn, items):
    lat, out = [], []
    for q in items:
        t = time.perf_counter()
        out.append(fn(q))
        lat.append(time.perf_counter() - t)
    lat.sort()
    return out, {"qps": round(len(lat) / sum(lat), 1), "p50_ms": round(lat[len(lat) // 2] * 1000, 2),
                 "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 2)}


def features(c, base, queries):
    """Range and hybrid search at ef 64, one client, against exact answers."""
    bn = (base * base).sum(1)
    qs = queries[:200]
    exact = [np.argsort(bn - 2 * base @ q + q @ q) for q in qs]
    dists = [(bn - 2 * base @ q + q @ q) for q in qs]
    bounds = {}
    for i, q in enumerate(qs):
        s = dists[i][exact[i]]
        bounds[i] = (float(s[4] + s[5]) / 2, float(s[99] + s[100]) / 2)

    def range_one(i):
        rf, radius = bounds[i]
        r = c.search(NAME, data=[qs[i].tolist()], limit=10,
                     search_params={"params": {"ef": 64, "radius": radius, "range_filter": rf}})
        return [h["id"] for h in r[0]]
    try:
        got, stats = timed(range_one, range(len(qs)))
        hits = sum(len(set(g) & set(exact[i][5:15].tolist())) for i, g in enumerate(got))
        print(json.dumps({"what": "feature", "name": "range", **stats,
                          "recall": round(hits / (10 * len(qs)), 4)}), flush=True)
    except Exception as e:  # noqa: BLE001 - a system without the feature
        print(json.dumps({"what": "feature", "name": "range", "unsupported": str(e)[:200]}), flush=True)

    def hybrid_one(i):
        from pymilvus import AnnSearchRequest, RRFRanker
        other = qs[(i + 1) % len(qs)]
        reqs = [AnnSearchRequest([qs[i].tolist()], "vec", {"params": {"ef": 64}}, 10),
                AnnSearchRequest([other.tolist()], "vec", {"params": {"ef": 64}}, 10)]
        r = c.hybrid_search(NAME, reqs, RRFRanker(60), limit=10)
        return [h["id"] for h in r[0]]
    try:
        got, stats = timed(hybrid_one, range(len(qs)))
        hits = 0
        for i, g in enumerate(got):
            fused = {}
            for lst in (exact[i][:10], exact[(i + 1) % len(qs)][:10]):
                for rank, key in enumerate(lst.tolist()):
                    fused[key] = fused.get(key, 0.0) + 1 / (61 + rank)
            # Ties at the 10th score make any of the tied keys right.
            cut = sorted(fused.values(), reverse=True)[9]
            hits += sum(1 for key in g if fused.get(key, 0.0) >= cut - 1e-9)
        print(json.dumps({"what": "feature", "name": "hybrid", **stats,
                          "recall": round(hits / (10 * len(qs)), 4)}), flush=True)
    except Exception as e:  # noqa: BLE001 - a system without the feature
        print(json.dumps({"what": "feature", "name": "hybrid", "unsupported": str(e)[:200]}), flush=True)


def wait_indexed(c, name, field, rows, deadline_s=1800):
    """Until the index of FIELD covers every row (describe_index's counts)."""
    end = time.time() + deadline_s
    while time.time() < end:
        d = c.describe_index(name, field)
        if d.get("indexed_rows", 0) >= rows and d.get("pending_index_rows", 0) == 0:
            return
        time.sleep(0.5)
    raise SystemExit(f"the index of {name}.{field} was not built within {deadline_s} s")


def typed(c, name, dtype, dim, values, index, queries, params, exact):
    """A collection of one vector field of DTYPE holding VALUES, indexed, loaded; QUERIES
    searched top-10 one at a time; recall against EXACT (per query: distances to every
    row, smaller better)."""
    if c.has_collection(name):
        c.drop_collection(name)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", dtype, dim=dim)
    c.create_collection(name, schema=schema, shards_num=1)
    for start in range(0, len(values), 5000):
        c.insert(name, [{"id": start + i, "v": values[start + i]}
                        for i in range(min(5000, len(values) - start))])
    c.flush(name)
    ip = MilvusClient.prepare_index_params()
    ip.add_index(field_name="v", **index)
    c.create_index(name, ip)
    wait_indexed(c, name, "v", len(values))
    c.load_collection(name)
    for q in queries[:10]:
        c.search(name, data=[q], anns_field="v", limit=10, search_params=params)
    got, stats = timed(lambda q: [h["id"] for h in c.search(name, data=[q], anns_field="v", limit=10,
                                                           search_params=params)[0]], queries)
    hits = 0
    for i, ids in enumerate(got):
        d = exact(i)
        cut = np.partition(d, 9)[9]
        hits += sum(1 for key in ids if d[key] <= cut)
    c.drop_collection(name)
    return {**stats, "recall": round(hits / (10 * len(queries)), 4)}


def typed_features(c, base, queries, a):
    """Binary and float16 vectors (see the module's docstring)."""
    n = len(base)
    rng = np.random.default_rng(a.seed + 1)
    bits = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    qbits = rng.integers(0, 256, size=(200, 32), dtype=np.uint8)
    try:
        stats = typed(c, "bench_binary", DataType.BINARY_VECTOR, 256, [b.tobytes() for b in bits],
                      {"index_type": "BIN_IVF_FLAT", "metric_type": "HAMMING", "params": {"nlist": 128}},
                      [q.tobytes() for q in qbits], {"metric_type": "HAMMING", "params": {"nprobe": 8}},
                      lambda i: np.unpackbits(bits ^ qbits[i], axis=1).sum(1))
        print(json.dumps({"what": "feature", "name": "binary", **stats}), flush=True)
    except Exception as e:  # noqa: BLE001 - a system without the feature
        print(json.dumps({"what": "feature", "name": "binary", "unsupported": str(e)[:200]}), flush=True)
    half = base.astype(np.float16)
    hq = queries[:200].astype(np.float16)
    wide = half.astype(np.float32)
    wn = (wide * wide).sum(1)
    try:
        stats = typed(c, "bench_float16", DataType.FLOAT16_VECTOR, base.shape[1], list(half),
                      {"index_type": "HNSW", "metric_type": "L2", "params": {"M": a.m, "efConstruction": a.efc}},
                      list(hq), {"metric_type": "L2", "params": {"ef": 64}},
                      lambda i: wn - 2 * wide @ hq[i].astype(np.float32))
        print(json.dumps({"what": "feature", "name": "float16", **stats}), flush=True)
    except Exception as e:  # noqa: BLE001 - a system without the feature
        print(json.dumps({"what": "feature", "name": "float16", "unsupported": str(e)[:200]}), flush=True)



def filtered_feature(c, base, queries, a, feature, fields, row, scalar_indexes, filter_of, matches_of,
                     group_by=None):
    """Times 200 searches (ef 64, limit 10) of a collection of BASE with the scalar FIELDS
    (name -> add_field keyword arguments), row i holding ROW(i), the vectors indexed HNSW and
    SCALAR_INDEXES (field -> index type) built; query i is filtered by FILTER_OF(i), and its
    recall is counted against the exact top 10 among MATCHES_OF(i), the rows the filter
    matches. With GROUP_BY (a field of ROW): searched with group_by_field, and recall is of
    the groups: the 10 groups of the exact nearest rows against the groups returned (a
    system that returns a group twice did not group). Prints the feature's line, or
    "unsupported" with the error."""
    name = f"bench_{feature}"
    n = len(base)
    qs = queries[:200]
    try:
        if c.has_collection(name):
            c.drop_collection(name)
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=base.shape[1])
        for field, kw in fields.items():
            schema.add_field(field, **kw)
        c.create_collection(name, schema=schema, shards_num=1)
        for start in range(0, n, 5000):
            c.insert(name, [{"id": i, "vec": base[i].tolist(), **row(i)}
                            for i in range(start, min(n, start + 5000))])
        c.flush(name)
        ip = MilvusClient.prepare_index_params()
        ip.add_index(field_name="vec", index_type="HNSW", metric_type="L2",
                     params={"M": a.m, "efConstruction": a.efc})
        for field, index_type in scalar_indexes.items():
            ip.add_index(field_name=field, index_type=index_type)
        c.create_index(name, ip)
        for field in ["vec", *scalar_indexes]:
            wait_indexed(c, name, field, n)
        c.load_collection(name)
        params = {"metric_type": "L2", "params": {"ef": 64}}
        grouping = {"group_by_field": group_by} if group_by else {}
        search = lambda i: [h["id"] for h in c.search(  # noqa: E731
            name, data=[qs[i].tolist()], anns_field="vec", limit=10, search_params=params,
            filter=filter_of(i), **grouping)[0]]
        for i in range(10):
            search(i)
        got, stats = timed(search, range(len(qs)))
        bn = (base * base).sum(1)
        key = (lambda r: row(r)[group_by]) if group_by else (lambda r: r)
        hits = total = 0
        for i, ids in enumerate(got):
            rows = np.nonzero(matches_of(i))[0]
            d = bn[rows] - 2 * base[rows] @ qs[i]
            want = []
            for r in rows[np.argsort(d)]:
                if key(r) not in want:
                    want.append(key(r))
                if len(want) == 10:
                    break
            returned = [key(r) for r in ids]
            if len(set(returned)) < len(returned):
                raise RuntimeError(f"a group returned twice: {returned}")
            total += len(want)
            hits += len(set(want) & set(returned))
        c.drop_collection(name)
        print(json.dumps({"what": "feature", "name": feature, **stats,
                          "recall": round(hits / max(total, 1), 4)}), flush=True)
    except Exception as e:  # noqa: BLE001 - a system without the feature
        print(json.dumps({"what": "feature", "name": feature, "unsupported": str(e)[:200]}),
              flush=True)


def text_feature(c, base, queries, a):
    """Search filtered by TEXT_MATCH (see the module's docstring)."""
    rng = np.random.default_rng(a.seed + 2)
    words = rng.integers(0, 2000, size=(len(base), 12))
    qwords = rng.integers(0, 2000, size=200)
    filtered_feature(
        c, base, queries, a, "text_match",
        {"text": {"datatype": DataType.VARCHAR, "max_length": 512, "enable_analyzer": True,
                  "enable_match": True}},
        lambda i: {"text": " ".join(f"w{x}" for x in words[i])}, {},
        lambda i: f"TEXT_MATCH(text, 'w{qwords[i]}')",
        lambda i: (words == qwords[i]).any(1))


def scalar_feature(c, base, queries, a):
    """Search filtered through a scalar index (see the module's docstring)."""
    rng = np.random.default_rng(a.seed + 5)
    num = rng.integers(0, 1000, size=len(base))
    lows = rng.integers(0, 995, size=200)
    filtered_feature(
        c, base, queries, a, "scalar_index", {"num": {"datatype": DataType.INT64}},
        lambda i: {"num": int(num[i])}, {"num": "STL_SORT"},
        lambda i: f"num >= {lows[i]} and num < {lows[i] + 5}",
        lambda i: (num >= lows[i]) & (num < lows[i] + 5))


def grouping_feature(c, base, queries, a):
    """Grouping search (see the module's docstring)."""
    rng = np.random.default_rng(a.seed + 6)
    grp = rng.integers(0, 20, size=len(base))
    filtered_feature(
        c, base, queries, a, "grouping", {"grp": {"datatype": DataType.INT64}},
        lambda i: {"grp": int(grp[i])}, {}, lambda i: "", lambda i: np.ones(len(base), bool),
        group_by="grp")


def zipf_ids(rng, n, vocab, s=1.1):
    """N draws from 0..VOCAB with probability proportional to 1 / (rank + 1) ** S."""
    p = 1.0 / np.arange(1, vocab + 1) ** s
    return rng.choice(vocab, size=n, p=p / p.sum())


def postings(rows):
    """Inverted lists of ROWS (dicts of dim -> value): dim -> (row ids, values)."""
    lists = {}
    for r, row in enumerate(rows):
        for d, x in row.items():
            lists.setdefault(d, ([], []))
            lists[d][0].append(r)
            lists[d][1].append(x)
    return {d: (np.array(ids), np.array(xs, dtype=np.float64)) for d, (ids, xs) in lists.items()}


def top10(scores):
    nz = np.nonzero(scores)[0]
    return set(nz[np.argsort(-scores[nz], kind="stable")[:10]].tolist()), scores


def measure_sparse(c, name, schema, rows, index, search, exact, feature):
    """Creates NAME, inserts ROWS, builds INDEX on "sv", loads; SEARCH(i) -> hit ids for 200
    queries, recall against EXACT(i) -> (exact top-10 ids, all scores)."""
    try:
        if c.has_collection(name):
            c.drop_collection(name)
        c.create_collection(name, schema=schema, shards_num=1)
        for start in range(0, len(rows), 5000):
            c.insert(name, rows[start:start + 5000])
        c.flush(name)
        ip = MilvusClient.prepare_index_params()
        ip.add_index(field_name="sv", **index)
        c.create_index(name, ip)
        wait_indexed(c, name, "sv", len(rows))
        c.load_collection(name)
        for i in range(10):
            search(i)
        got, stats = timed(search, range(200))
        hits = total = 0
        for i, ids in enumerate(got):
            want, scores = exact(i)
            cut = min((scores[w] for w in want), default=0)
            total += len(want)
            # Ties at the 10th score: any row scoring at least it counts.
            hits += min(len(want), sum(1 for key in ids if scores[key] >= cut - 1e-6 * abs(cut)))
        c.drop_collection(name)
        print(json.dumps({"what": "feature", "name": feature, **stats,
                          "recall": round(hits / max(total, 1), 4)}), flush=True)
    except Exception as e:  # noqa: BLE001 - a system without the feature
        print(json.dumps({"what": "feature", "name": feature, "unsupported": str(e)[:200]}),
              flush=True)


def sparse_feature(c, base, queries, a):
    """SPARSE_FLOAT_VECTOR search by inner product (see the module's docstring)."""
    n = len(base)
    rng = np.random.default_rng(a.seed + 3)

    def row():
        dims = np.unique(zipf_ids(rng, 24, 30_000))
        return {int(d): float(x) for d, x in zip(dims, rng.random(len(dims)) + 0.01)}
    rows = [row() for _ in range(n)]
    qs = [row() for _ in range(200)]
    lists = postings(rows)

    def exact(i):
        scores = np.zeros(n)
        for d, x in qs[i].items():
            if d in lists:
                ids, xs = lists[d]
                scores[ids] += x * xs
        return top10(scores)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("sv", DataType.SPARSE_FLOAT_VECTOR)
    name = "bench_sparse"
    measure_sparse(
        c, name, schema, [{"id": i, "sv": r} for i, r in enumerate(rows)],
        {"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "IP"},
        lambda i: [h["id"] for h in c.search(name, data=[qs[i]], anns_field="sv", limit=10,
                                             search_params={"metric_type": "IP"})[0]],
        exact, "sparse")


def bm25_feature(c, base, queries, a):
    """Full-text search by BM25 (see the module's docstring)."""
    n = len(base)
    rng = np.random.default_rng(a.seed + 4)
    words = zipf_ids(rng, n * 12, 5000).reshape(n, 12)
    qwords = zipf_ids(rng, 600, 5000).reshape(200, 3)
    rows = [{str(w): float(cnt) for w, cnt in zip(*np.unique(r, return_counts=True))} for r in words]
    lists = postings(rows)
    avgdl = 12.0
    k1, b = 1.2, 0.75

    def exact(i):
        scores = np.zeros(n)
        terms, counts = np.unique(qwords[i], return_counts=True)
        for t, qtf in zip(terms, counts):
            if str(t) not in lists:
                continue
            ids, tf = lists[str(t)]
            idf = np.log(1 + (n - len(ids) + 0.5) / (len(ids) + 0.5))
            scores[ids] += qtf * idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * 12 / avgdl))
        return top10(scores)
    from pymilvus import Function, FunctionType
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=512, enable_analyzer=True)
    schema.add_field("sv", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["text"], output_field_names=["sv"]))
    name = "bench_bm25"
    measure_sparse(
        c, name, schema,
        [{"id": i, "text": " ".join(f"w{x}" for x in r)} for i, r in enumerate(words)],
        {"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "BM25",
         "params": {"bm25_k1": k1, "bm25_b": b}},
        lambda i: [h["id"] for h in c.search(name, data=[" ".join(f"w{x}" for x in qwords[i])],
                                             anns_field="sv", limit=10,
                                             search_params={"metric_type": "BM25"})[0]],
        exact, "bm25")


if __name__ == "__main__":
    main()
