"""pymilvus 2.5.18 under chaos: the data workload of the soak (milvus::testkit::soak), run
beside failures of every process until STOP_FILE exists, then a check of the whole history.

    python chaos_client.py URI STOP_FILE [WRITERS]

Threads, each with its own MilvusClient:
- writers (default 2), each owning its keys (writer w: w * 10**9 + n, never reused): insert
  batches of new rows (ver 1), upsert some live keys (ver + 1), delete some live keys,
  flush now and then; after each round a Strong query of the keys it just touched and a
  sample of older ones: every acknowledged live key once with its last acknowledged ver,
  no acknowledged delete visible;
- a searcher: Strong searches whose hits must be well formed (at most `limit`, distances
  in order, no key twice, only keys some writer sent, none deleted before the search
  was sent);
- a DDL thread: create, describe, list, drop a small collection, round after round.

After STOP_FILE: every writer's whole key range is read back with Strong queries and must
hold exactly its acknowledged live keys, each once, with its last acknowledged ver;
count(*) must agree; every DDL collection acknowledged as dropped must be gone.

Every call has a 90 s timeout; none is retried here (pymilvus's own retries of
UNAVAILABLE stand, as for any application). A key touched by a failed call is left out of
the checks (its outcome is unknown); the failed call itself fails the run.

Prints one JSON line {calls, failures, violations, stalls, rows, ...}; exits 1 when any
call failed or any check did not hold.
"""
import json
import os
import random
import sys
import threading
import time
import traceback

from pymilvus import DataType, MilvusClient

from pymilvus_client import Started, index_params

DIM = 8
BASE = 10**9
TIMEOUT = 90
NAME = "chaos"
STALL_S = 0.5  # calls slower than this are reported with their wall-clock times


class History:
    """What every thread saw, under one lock."""

    def __init__(self, writers):
        self.lock = threading.Lock()
        self.calls = 0
        self.failures = []
        self.violations = []
        self.stalls = []  # [start unix s, seconds, what]
        self.issued = [0] * writers  # keys handed to an insert call so far, per writer
        self.deleted_at = {}  # key -> wall time its delete was acknowledged
        self.started = Started()

    def call(self, what, fn, *args, **kw):
        t0, w0 = time.monotonic(), time.time()
        try:
            out = fn(*args, timeout=TIMEOUT, **kw)
            ok = True
        except Exception as e:  # every failed call is reported; none is retried here
            out, ok = None, False
            with self.lock:
                self.failures.append(f"{time.strftime('%H:%M:%S')} {what}: {type(e).__name__}: {e}"[:400])
        took = time.monotonic() - t0
        with self.lock:
            self.calls += 1
            if took > STALL_S and len(self.stalls) < 100000:
                self.stalls.append([round(w0, 3), round(took, 3), what])
        if ok:
            self.started()
        return ok, out

    def violation(self, text):
        with self.lock:
            if len(self.violations) < 200:
                self.violations.append(f"{time.strftime('%H:%M:%S')} {text}"[:600])


def schema():
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("ver", DataType.INT64)
    s.add_field("writer", DataType.INT64)
    return s


def row(rng, key, ver, w):
    return {"id": key, "vec": [rng.random() for _ in range(DIM)], "ver": ver, "writer": w}


class Writer:
    def __init__(self, uri, h, w, stop):
        self.client = MilvusClient(uri=uri, timeout=TIMEOUT)
        self.h, self.w, self.stop = h, w, stop
        self.rng = random.Random(1000 + w)
        self.live = {}  # key -> last acknowledged ver
        self.deleted = set()
        self.uncertain = set()  # touched by a failed call

    def run(self):
        i = 0
        while not self.stop.is_set():
            i += 1
            touched = self.round(i)
            self.check(touched)

    def round(self, i):
        h, w, rng = self.h, self.w, self.rng
        start = w * BASE + h.issued[w]
        keys = list(range(start, start + 20))
        with h.lock:
            h.issued[w] += len(keys)
        ok, _ = h.call("insert", self.client.insert, NAME, [row(rng, k, 1, w) for k in keys])
        if ok:
            self.live.update((k, 1) for k in keys)
        else:
            self.uncertain.update(keys)
        touched = list(keys)
        if i % 3 == 0 and len(self.live) > 10:
            up = rng.sample(sorted(self.live), 5)
            ok, _ = h.call("upsert", self.client.upsert, NAME, [row(rng, k, self.live[k] + 1, w) for k in up])
            for k in up:
                if ok:
                    self.live[k] += 1
                else:
                    self.live.pop(k)
                    self.uncertain.add(k)
            touched += up
        if i % 4 == 0 and len(self.live) > 10:
            gone = rng.sample(sorted(self.live), 4)
            ok, _ = h.call("delete", self.client.delete, NAME, ids=gone)
            now = time.time()
            for k in gone:
                self.live.pop(k)
                if ok:
                    self.deleted.add(k)
                    with h.lock:
                        h.deleted_at[k] = now
                else:
                    self.uncertain.add(k)
            touched += gone
        if i % 10 == 0:
            h.call("flush", self.client.flush, NAME)
        return touched

    def check(self, touched):
        """A Strong query of the touched keys and a sample of older ones."""
        sample = set(touched)
        if self.live:
            sample.update(self.rng.sample(sorted(self.live), min(10, len(self.live))))
        if self.deleted:
            sample.update(self.rng.sample(sorted(self.deleted), min(5, len(self.deleted))))
        sample -= self.uncertain
        if not sample:
            return
        keys = sorted(sample)
        ok, got = self.h.call("query", self.client.query, NAME, filter=f"id in {keys}", output_fields=["ver"])
        if ok:
            self.compare(keys, got, "query")

    def compare(self, keys, got, what):
        seen = {}
        for r in got:
            k = r["id"]
            if k in seen:
                self.h.violation(f"{what}: key {k} returned twice")
            seen[k] = r["ver"]
        for k in keys:
            if k in self.uncertain:
                continue
            if k in self.live:
                if k not in seen:
                    self.h.violation(f"{what}: acknowledged key {k} (ver {self.live[k]}) is missing")
                elif seen[k] != self.live[k]:
                    self.h.violation(f"{what}: key {k} has ver {seen[k]}, last acknowledged {self.live[k]}")
            elif k in self.deleted and k in seen:
                self.h.violation(f"{what}: deleted key {k} came back (ver {seen[k]})")
        for k in seen:
            if k not in self.live and k not in self.deleted and k not in self.uncertain:
                self.h.violation(f"{what}: key {k} was never acknowledged")

    def verify(self, client):
        """After the run: the writer's whole key range, read back."""
        hi = self.h.issued[self.w]
        got = []
        for lo in range(0, hi, 10000):
            a, b = self.w * BASE + lo, self.w * BASE + min(hi, lo + 10000)
            ok, part = self.h.call("final query", client.query, NAME,
                                   filter=f"id >= {a} and id < {b}", output_fields=["ver"], limit=16384)
            if not ok:
                return 0
            got += part
        keys = set(self.live) | self.deleted
        self.compare(sorted(keys), got, "final read")
        return len(got)


def searcher(uri, h, writers, stop):
    client = MilvusClient(uri=uri, timeout=TIMEOUT)
    rng = random.Random(7)
    while not stop.is_set():
        sent = time.time()
        ok, res = h.call("search", client.search, NAME, [[rng.random() for _ in range(DIM)]], limit=10,
                         output_fields=["ver"], search_params={"params": {"ef": 32}})
        if not ok:
            continue
        if len(res) != 1:
            h.violation(f"search: {len(res)} result lists for one query")
            continue
        hits = res[0]
        if len(hits) > 10:
            h.violation(f"search: {len(hits)} hits for limit 10")
        ids = [x["id"] for x in hits]
        if len(set(ids)) != len(ids):
            h.violation(f"search: a key twice in {ids}")
        dist = [x["distance"] for x in hits]
        if dist != sorted(dist):
            h.violation(f"search: L2 distances out of order {dist}")
        with h.lock:
            issued = list(h.issued)
            gone = [(k, h.deleted_at[k]) for k in ids if k in h.deleted_at]
        for x in hits:
            k, w = x["id"], x["id"] // BASE
            if not (0 <= w < writers and k % BASE < issued[w]):
                h.violation(f"search: key {k} was never sent")
            if x["entity"].get("ver", 0) < 1:
                h.violation(f"search: key {k} without its ver: {x}")
        for k, at in gone:
            if at < sent:
                h.violation(f"search: key {k} deleted at {at:.3f} found by a Strong search sent at {sent:.3f}")


def ddl(uri, h, stop, dropped):
    client = MilvusClient(uri=uri, timeout=TIMEOUT)
    i = 0
    while not stop.wait(0.5):
        i += 1
        name = f"chaos_ddl_{i}"
        if not h.call("create_collection", client.create_collection, name, schema=schema())[0]:
            continue
        ok, d = h.call("describe_collection", client.describe_collection, name)
        if ok and d.get("collection_name") != name:
            h.violation(f"describe {name}: {d.get('collection_name')}")
        ok, names = h.call("list_collections", client.list_collections)
        if ok and name not in names:
            h.violation(f"list_collections misses the acknowledged {name}")
        if h.call("drop_collection", client.drop_collection, name)[0]:
            dropped.append(name)


def main():
    uri, stop_file = sys.argv[1], sys.argv[2]
    writers = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    h = History(writers)
    client = MilvusClient(uri=uri, timeout=TIMEOUT)
    if client.has_collection(NAME):
        client.drop_collection(NAME)
    client.create_collection(NAME, schema=schema(), num_shards=2, consistency_level="Strong")
    client.create_index(NAME, index_params("vec", "HNSW", "L2", M=8, efConstruction=32))
    client.load_collection(NAME)

    stop = threading.Event()
    ws = [Writer(uri, h, w, stop) for w in range(writers)]
    dropped = []
    threads = [threading.Thread(target=w.run) for w in ws]
    threads.append(threading.Thread(target=searcher, args=(uri, h, writers, stop)))
    threads.append(threading.Thread(target=ddl, args=(uri, h, stop, dropped)))
    crashed = []

    def guarded(t):
        target = t._target

        def run(*a):
            try:
                target(*a)
            except Exception:
                crashed.append(traceback.format_exc()[-1500:])
                stop.set()
        t._target = run

    for t in threads:
        guarded(t)
        t.start()
    while not os.path.exists(stop_file) and not stop.is_set():
        stop.wait(0.2)
    stop.set()
    for t in threads:
        t.join()

    rows = sum(w.verify(client) for w in ws)
    live = sum(len(w.live) for w in ws)
    uncertain = sum(len(w.uncertain) for w in ws)
    ok, got = h.call("final count", client.query, NAME, filter="", output_fields=["count(*)"])
    if ok and uncertain == 0 and got[0]["count(*)"] != live:
        h.violation(f"final count(*) {got[0]['count(*)']} != {live} acknowledged live keys")
    ok, names = h.call("final list", client.list_collections)
    if ok:
        for n in dropped:
            if n in names:
                h.violation(f"{n} was dropped (acknowledged) but is still listed")
    print(json.dumps({
        "calls": h.calls,
        "failures": h.failures[:50],
        "failed": len(h.failures),
        "violations": h.violations,
        "crashed": crashed,
        "rows": rows,
        "live": live,
        "deleted": sum(len(w.deleted) for w in ws),
        "uncertain": uncertain,
        "ddl_rounds": len(dropped),
        "stalls": h.stalls,
    }))
    sys.exit(0 if not h.failures and not h.violations and not crashed else 1)


if __name__ == "__main__":
    main()
