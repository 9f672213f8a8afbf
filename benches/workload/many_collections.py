"""Many collections, nonstop small inserts and flushes (the flush stall of the
client-defects issue): creates COLLECTIONS collections (one shard each, spread over the
physical channels), then for SECONDS inserts small batches into random collections from
WRITERS threads while FLUSHERS threads flush random collections, timing every flush.
Prints one JSON line: flushes, flush p50/p99/max seconds, inserts, failures.

    python many_collections.py URI COLLECTIONS SECONDS [WRITERS [FLUSHERS [LOADED [BATCH [DIM]]]]]

LOADED (default 1) makes every collection the quick-setup way (indexed and loaded);
BATCH rows (default 20) of DIM floats (default 8) per insert.

Used by `tests/compat.rs` (a CI-sized run) and `cargo bench --bench collections`.
"""
import json
import random
import sys
import threading
import time

from pymilvus import DataType, MilvusClient


def main(uri, collections, seconds, writers=4, flushers=2, loaded=1, batch=20, dim=8):
    client = MilvusClient(uri=uri)
    names = [f"mc_{i}" for i in range(collections)]
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    started = time.monotonic()
    for n in names:
        if not client.has_collection(n):
            if loaded:
                # Quick setup: indexed and loaded, so querynodes follow every shard too.
                client.create_collection(n, dimension=dim, num_shards=1, primary_field_name="id",
                                         vector_field_name="vec")
            else:
                client.create_collection(n, schema=schema, num_shards=1)
    created_s = time.monotonic() - started
    end = time.monotonic() + seconds
    lock = threading.Lock()
    flushes, failures = [], []
    inserted = [0]
    key = [0]

    def writer(seed):
        c = MilvusClient(uri=uri)
        rng = random.Random(seed)
        while time.monotonic() < end:
            n = rng.choice(names)
            with lock:
                first = key[0]
                key[0] += batch
            try:
                c.insert(n, [{"id": first + i, "vec": [rng.random() for _ in range(dim)]} for i in range(batch)])
                with lock:
                    inserted[0] += batch
            except Exception as e:  # noqa: BLE001 - every failure is reported
                failures.append(f"insert {n}: {e}")

    def flusher(seed):
        c = MilvusClient(uri=uri)
        rng = random.Random(seed)
        while time.monotonic() < end:
            n = rng.choice(names)
            t = time.monotonic()
            try:
                c.flush(n, timeout=300)
                with lock:
                    flushes.append(time.monotonic() - t)
            except Exception as e:  # noqa: BLE001 - every failure is reported
                failures.append(f"flush {n} after {time.monotonic() - t:.1f}s: {e}")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    threads += [threading.Thread(target=flusher, args=(100 + i,)) for i in range(flushers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flushes.sort()

    def q(p):
        return round(flushes[min(len(flushes) - 1, int(p * (len(flushes) - 1) + 0.5))], 3) if flushes else None

    print(json.dumps({"collections": collections, "create_s": round(created_s, 1), "seconds": seconds,
                      "inserted_rows": inserted[0], "flushes": len(flushes), "flush_p50_s": q(0.5),
                      "flush_p99_s": q(0.99), "flush_max_s": q(1.0), "failures": failures[:5],
                      "failed": len(failures)}))


if __name__ == "__main__":
    a = sys.argv
    main(a[1], int(a[2]), float(a[3]), *(int(x) for x in a[4:9]))
