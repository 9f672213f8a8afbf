"""Queries while a querynode hands off to a compaction's merged segment (pymilvus
MilvusClient), against any Milvus-compatible endpoint: how long the handoff stalls reads.

A collection `qdh` of ROWS rows (`id` INT64 key, `num` INT64, `tag` VARCHAR, `vec`
FLOAT_VECTOR of 8 with a FLAT index, so no build time enters) is written in SEGMENTS
flushed parts, loaded, and queried by one client nonstop (`num == x`, limit 10): first
for SECONDS with nothing else happening ("alone"), then from a manual compaction's start
until the query segments are one merged segment and SECONDS more ("through_handoff"),
which covers the merge and the querynode's swap of the sources for the merged segment.
Prints one JSON line per phase:

    {"what": "alone", "queries": ..., "p50_ms": ..., "p99_ms": ..., "max_ms": ...}
    {"what": "through_handoff", ..., "handoff_s": ...}

    python query_during_handoff.py URI [--rows N] [--segments S] [--seconds S]
"""
import argparse
import json
import random
import time

from pymilvus import Collection, DataType, MilvusClient, connections, utility

NAME = "qdh"


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")


def report(what, lat, **extra):
    print(json.dumps({"what": what, "queries": len(lat),
                      "p50_ms": round(pct(lat, 0.5) * 1000, 3),
                      "p99_ms": round(pct(lat, 0.99) * 1000, 3),
                      "max_ms": round(max(lat) * 1000, 3), **extra}), flush=True)


def querying(c, rows, until, rng):
    lat = []
    while not until():
        x = rng.randrange(rows)
        t = time.perf_counter()
        c.query(NAME, filter=f"num == {x}", output_fields=["id"], limit=10)
        lat.append(time.perf_counter() - t)
    return lat


def segments(name):
    return sorted(s.segmentID for s in utility.get_query_segment_info(name))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("uri")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--segments", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    c = MilvusClient(uri=a.uri)
    host, port = a.uri.removeprefix("http://").rsplit(":", 1)
    connections.connect(host=host, port=port)
    if c.has_collection(NAME):
        c.drop_collection(NAME)
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("num", DataType.INT64)
    s.add_field("tag", DataType.VARCHAR, max_length=16)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
    p = MilvusClient.prepare_index_params()
    p.add_index(field_name="vec", index_type="FLAT", metric_type="L2")
    c.create_collection(NAME, schema=s, index_params=p, num_shards=1)
    rng = random.Random(7)
    per = a.rows // a.segments
    for seg in range(a.segments):
        for at in range(seg * per, (seg + 1) * per, 10_000):
            c.insert(NAME, [{"id": i, "num": i, "tag": f"t{i % 1000:04}",
                             "vec": [rng.random() for _ in range(8)]}
                            for i in range(at, min(at + 10_000, (seg + 1) * per))])
        c.flush(NAME)
    c.load_collection(NAME)
    Collection(NAME).load()  # the ORM handle the segment listing uses
    before = segments(NAME)
    if len(before) < 2:
        raise SystemExit(f"{len(before)} query segment(s) after loading: nothing to merge")
    end = time.time() + a.seconds
    report("alone", querying(c, a.rows, lambda: time.time() > end, rng),
           segments=len(before))
    start = time.time()
    job = c.compact(NAME)
    state = {"swapped": None, "checked": 0.0}

    def until():
        now = time.time()
        if state["swapped"] is None and now - state["checked"] > 0.2:
            state["checked"] = now
            segs = segments(NAME)
            if len(segs) == 1 and segs[0] not in before:
                state["swapped"] = now
        if now - start > 900:
            raise SystemExit("the querynode did not swap to one merged segment in 900 s: "
                             f"compaction {c.get_compaction_state(job)}, segments {segments(NAME)}")
        return state["swapped"] is not None and now - state["swapped"] > a.seconds

    lat = querying(c, a.rows, until, rng)
    report("through_handoff", lat, handoff_s=round(state["swapped"] - start, 2))
    c.drop_collection(NAME)


if __name__ == "__main__":
    main()
