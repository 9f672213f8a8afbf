"""Spatial filters on a GEOMETRY field, without and with an RTREE index (pymilvus
MilvusClient), reusable against any endpoint with Milvus 2.6's GEOMETRY: ROWS rows of an
8-dim vector and a point `geo` uniform in lon -180..180, lat -60..60 (fixed seed), one
shard, flushed, FLAT index on the vector, loaded. Then, for each run, QUERIES queries of
each filter with `count(*)` (the whole answer counted), each answer checked against numpy:

    within     ST_WITHIN(geo, box of 2 x 2 degrees)        (about 0.01 % of the rows)
    intersects ST_INTERSECTS(geo, box of 36 x 12 degrees)  (about 1 %)
    dwithin    ST_DWITHIN(geo, 'POINT (lon lat)', 100 km) (about 0.002 %; haversine)

first with no index on `geo` ("scan": every row's box tested, then the exact predicate on
those that meet), then after an RTREE index is built and the collection reloaded
("rtree"; a system without GEOMETRY prints "unsupported" with its error). One JSON line
each:

    {"what": "filter", "kind": "within", "index": "scan", "run": 0, "p50_ms": ..., "p99_ms": ...}

    python geo_filter.py URI [--rows N] [--queries Q] [--runs R] [--seed S]
"""
import argparse
import json
import time

import numpy as np
from pymilvus import DataType, MilvusClient

NAME = "bench_geo_filter"
R = 6371000.0


def say(**kv):
    print(json.dumps(kv), flush=True)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def wait_index(c, names, deadline_s=1800):
    deadline = time.time() + deadline_s
    while True:
        ds = [c.describe_index(NAME, n) for n in names]
        if all(d.get("state") == "Finished" and d.get("pending_index_rows", 0) == 0 for d in ds):
            return
        if time.time() > deadline:
            raise RuntimeError(f"indexes not built: {ds}")
        time.sleep(0.5)


def box(x1, y1, x2, y2):
    return f"POLYGON (({x1} {y1}, {x2} {y1}, {x2} {y2}, {x1} {y2}, {x1} {y1}))"


def measure(c, rng, lon, lat, queries, label, run):
    def within():
        x, y = round(float(rng.uniform(-170, 168)), 3), round(float(rng.uniform(-55, 53)), 3)
        want = int(((lon > x) & (lon < x + 2) & (lat > y) & (lat < y + 2)).sum())
        return f"ST_WITHIN(geo, '{box(x, y, x + 2, y + 2)}')", want

    def intersects():
        x, y = round(float(rng.uniform(-170, 134)), 3), round(float(rng.uniform(-55, 43)), 3)
        want = int(((lon >= x) & (lon <= x + 36) & (lat >= y) & (lat <= y + 12)).sum())
        return f"ST_INTERSECTS(geo, '{box(x, y, x + 36, y + 12)}')", want

    def dwithin():
        x, y = round(float(rng.uniform(-170, 170)), 3), round(float(rng.uniform(-55, 55)), 3)
        p1, p2 = np.radians(y), np.radians(lat)
        a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon - x) / 2) ** 2
        d = 2 * R * np.arcsin(np.sqrt(a))
        return f"ST_DWITHIN(geo, 'POINT ({x} {y})', 100000)", int((d <= 100000).sum())

    for kind, make in {"within": within, "intersects": intersects, "dwithin": dwithin}.items():
        lat_s = []
        for _ in range(queries):
            expr, want = make()
            t = time.perf_counter()
            got = c.query(NAME, filter=expr, output_fields=["count(*)"])[0]["count(*)"]
            lat_s.append(time.perf_counter() - t)
            assert got == want, (expr, got, want)
        say(what="filter", kind=kind, index=label, run=run,
            p50_ms=round(pct(lat_s, 0.5) * 1000, 3), p99_ms=round(pct(lat_s, 0.99) * 1000, 3))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("uri")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    c = MilvusClient(uri=a.uri)
    if c.has_collection(NAME):
        c.drop_collection(NAME)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
    try:
        schema.add_field("geo", DataType.GEOMETRY)
        c.create_collection(NAME, schema=schema, shards_num=1)
    except Exception as e:  # a system without GEOMETRY
        say(what="filter", index="scan", unsupported=str(e)[:200])
        return
    # Coordinates with 6 decimals, as stored and compared (no point on a query's edge:
    # query edges have 3 decimals and no point is within 1e-6 of one by the draw below).
    lon = np.round(rng.uniform(-180, 180, a.rows), 6) + 4e-7
    lat = np.round(rng.uniform(-60, 60, a.rows), 6) + 4e-7
    vec = rng.random((a.rows, 8), dtype=np.float32)
    t = time.perf_counter()
    for at in range(0, a.rows, 10_000):
        end = min(a.rows, at + 10_000)
        c.insert(NAME, [{"id": i, "vec": vec[i].tolist(), "geo": f"POINT ({float(lon[i])!r} {float(lat[i])!r})"}
                        for i in range(at, end)])
    c.flush(NAME)
    say(what="insert", rows=a.rows, s=round(time.perf_counter() - t, 3))
    ip = MilvusClient.prepare_index_params()
    ip.add_index("vec", index_type="FLAT", metric_type="L2")
    c.create_index(NAME, ip)
    wait_index(c, ["vec"])
    t = time.perf_counter()
    c.load_collection(NAME)
    say(what="loaded", rows=a.rows, s=round(time.perf_counter() - t, 3))
    for run in range(a.runs):
        measure(c, rng, lon, lat, a.queries, "scan", run)
    c.release_collection(NAME)
    ip = MilvusClient.prepare_index_params()
    ip.add_index("geo", index_type="RTREE")
    t = time.perf_counter()
    c.create_index(NAME, ip)
    wait_index(c, ["geo"])
    say(what="build", s=round(time.perf_counter() - t, 3))
    c.load_collection(NAME)
    for run in range(a.runs):
        measure(c, rng, lon, lat, a.queries, "rtree", run)
    c.drop_collection(NAME)


if __name__ == "__main__":
    main()
