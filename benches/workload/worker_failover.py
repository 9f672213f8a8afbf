"""Worker crashes, for `cargo bench --bench failover -- --workers N`.

Prepares two loaded collections, `wf` (2 shards, 1 replica) and `wf2` (2 shards, 2
replicas: one per querynode), each of 4,000 16-dim rows, flushed and indexed with HNSW,
prints {"ready": true}, then answers one command per line on stdin, each right after the
bench has SIGKILLed a worker:

- `search`: searches `wf` (Strong, top 10) until one call returns a full result: the
  shards of the killed querynode are served again;
- `search2`: the same on `wf2`: the other replica serves;
- `settle2` (before a kill, not timed): waits until both replicas of `wf2` are served, each
  shard by a leader, on different querynodes (a replacement started after the previous
  kill must have loaded its replica first, or the next kill leaves one replica and times
  a reload);
- `flush`: inserts 100 rows and flushes until the flush completes: the channels of the
  killed datanode are consumed again;
- `prepare` (not timed): (re)creates `wfi` (1 shard) with 50,000 64-dim rows, flushed into
  one segment, no index;
- `index`: creates its HNSW index and waits until it is built (the bench SIGKILLs the
  indexnode that started the build meanwhile); also prints `build_s`, the call's duration.

and prints {"done": <time.time() of that success>, "attempts": N}, or {"error": ...} after
120 s without one.
"""
import json
import random
import sys
import time

from pymilvus import Collection, DataType, MilvusClient, connections

DIM = 16


def main(uri):
    client = MilvusClient(uri=uri, timeout=30)
    rng = random.Random(3)
    for name, replicas in (("wf", 1), ("wf2", 2)):
        if client.has_collection(name):
            client.drop_collection(name)
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
        client.create_collection(name, schema=schema, num_shards=2)
        client.insert(name, [{"id": i, "vec": [rng.random() for _ in range(DIM)]} for i in range(4000)])
        client.flush(name)
        params = client.prepare_index_params()
        params.add_index(field_name="vec", index_type="HNSW", metric_type="L2",
                         params={"M": 16, "efConstruction": 64})
        client.create_index(name, params)
        client.load_collection(name, replica_number=replicas)
    connections.connect(alias="wf", uri=uri)
    print(json.dumps({"ready": True}), flush=True)
    next_id = 4000
    for line in sys.stdin:
        cmd = line.strip()
        attempts = 0
        extra = {}
        began = time.time()
        deadline = time.time() + 120
        error = None
        while True:
            attempts += 1
            if time.time() > deadline:
                print(json.dumps({"error": f"no success in 120 s: {error}"}), flush=True)
                return
            try:
                if cmd == "settle2":
                    groups = Collection("wf2", using="wf").get_replicas().groups
                    leaders = [{sh.shard_leader for sh in g.shards} for g in groups]
                    if len(groups) == 2 and all(0 not in ls and len(g.shards) == 2
                                                for ls, g in zip(leaders, groups)) \
                            and not leaders[0] & leaders[1]:
                        break
                    time.sleep(0.05)
                    continue
                if cmd in ("search", "search2"):
                    name = "wf" if cmd == "search" else "wf2"
                    res = client.search(name, data=[[rng.random() for _ in range(DIM)]], limit=10,
                                        consistency_level="Strong", timeout=5)
                    if len(res[0]) == 10:
                        break
                elif cmd == "prepare":
                    if client.has_collection("wfi"):
                        client.drop_collection("wfi")
                    schema = MilvusClient.create_schema(auto_id=False)
                    schema.add_field("id", DataType.INT64, is_primary=True)
                    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=64)
                    client.create_collection("wfi", schema=schema, num_shards=1)
                    for start in range(0, 50000, 5000):
                        client.insert("wfi", [{"id": i, "vec": [rng.random() for _ in range(64)]}
                                              for i in range(start, start + 5000)])
                    client.flush("wfi")
                    break
                elif cmd == "index":
                    params = client.prepare_index_params()
                    params.add_index(field_name="vec", index_type="HNSW", metric_type="L2",
                                     params={"M": 16, "efConstruction": 200})
                    client.create_index("wfi", params, timeout=120)
                    # create_index returns once the index is built on every segment.
                    info = client.describe_index("wfi", "vec")
                    if info.get("pending_index_rows", 0) or info.get("indexed_rows") != info.get("total_rows"):
                        error = f"index not finished: {info}"
                        time.sleep(0.05)
                        continue
                    extra = {"build_s": time.time() - began}
                    break
                elif cmd == "flush":
                    client.insert("wf", [{"id": next_id + i, "vec": [rng.random() for _ in range(DIM)]}
                                         for i in range(100)], timeout=5)
                    next_id += 100
                    client.flush("wf", timeout=30)
                    break
                else:
                    raise SystemExit(f"unknown command {cmd!r}")
            except SystemExit:
                raise
            except Exception as e:  # a failed call: try again shortly (the bench times the gap)
                error = e
                time.sleep(0.01)
        print(json.dumps({"done": time.time(), "attempts": attempts, **extra}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
