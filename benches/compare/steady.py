"""A day in the life: MINUTES of nonstop mixed traffic against one system (this project's
cluster, or real Milvus standalone from PyPI's `milvus` wheel), sampled every 30 s.
Run through scripts/steady.sh.

Workload (pymilvus MilvusClient, one seed): a 2-shard collection (id INT64, tag INT64,
vec FLOAT_VECTOR(DIM), HNSW M=16 efConstruction=128 L2, loaded), then
  - 4 writers, each inserting a batch of 200 new rows every WRITE_EVERY s; after each
    batch, 10 % of that many live keys are deleted and 5 % upserted (new vectors);
  - a flush every 10 s;
  - 4 clients, each alternating a search (top 10, ef 64, Bounded) and a query by
    filter (`tag == t`, limit 100), one call every 50 ms at most.
Every 30 s (writers paused for the probe): segments per shard, the log's messages and
bytes (this project: JetStream; Milvus: its rocksmq directory), disk used by the log and
by objects (segment data, delete logs, index files, statistics; by kind), RSS of every process, search p50/p99 of the window, recall@10 of 20 Strong
searches against exact results on the live rows, failed calls.

    python steady.py ours|VERSION --bin BIN --out FILE.json [--minutes 30] [--dim 32]
                     [--write-every 2] [--cache DIR] [--work DIR]
"""
import argparse
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np
from pymilvus import DataType, MilvusClient

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare  # noqa: E402

NAME = "steady"
SHARDS = 2
SAMPLE_EVERY = 30
# Both systems keep a dropped segment's files this long (Milvus's default is 3 h, this
# project's 24 h): within a 30-minute run the disk shows what compaction frees.
GC_ENV = {"DATACOORD_GC_INTERVAL": "60", "DATACOORD_GC_DROPTOLERANCE": "120",
          "DATA_COORD_GC_INTERVAL": "60", "DATA_COORD_GC_DROP_TOLERANCE": "120"}


def log(msg):
    print(f"[steady] {msg}", file=sys.stderr, flush=True)


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


KINDS = ("insert_log", "delta_log", "index_files", "stats_log")


def disk_by_kind(root):
    """Bytes under every directory named one of KINDS below `root`, by kind (segment
    data, delete logs, index files, statistics), the same layout in both systems."""
    out = {k: 0 for k in KINDS}
    for path, dirs, _ in os.walk(root):
        for d in list(dirs):
            if d in KINDS:
                out[d] += du(os.path.join(path, d))
                dirs.remove(d)
    return out


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class Workload:
    def __init__(self, uri, dim, write_every, seed=7):
        self.uri, self.dim, self.write_every = uri, dim, write_every
        self.rng = np.random.default_rng(seed)
        self.live = {}  # id -> vector
        self.next_id = 0
        self.lock = threading.Lock()  # the live map and the ID counter
        self.gate = threading.Lock()  # writers hold it per batch; the probe pauses them
        self.stop = threading.Event()
        self.lat = []  # search latencies (s) of the current window
        self.qlat = []
        self.failed = {}
        self.calls = 0

    def fail(self, what, e):
        with self.lock:
            self.failed[what] = self.failed.get(what, 0) + 1
        if self.failed[what] <= 3:
            log(f"{what} failed: {e}")

    def setup(self):
        c = MilvusClient(uri=self.uri)
        if c.has_collection(NAME):
            c.drop_collection(NAME)
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("tag", DataType.INT64)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=self.dim)
        idx = c.prepare_index_params()
        idx.add_index("vec", index_type="HNSW", metric_type="L2", params={"M": 16, "efConstruction": 128})
        c.create_collection(NAME, schema=schema, index_params=idx, num_shards=SHARDS,
                            consistency_level="Bounded")
        c.load_collection(NAME)

    def writer(self, slot):
        c = MilvusClient(uri=self.uri)
        rng = np.random.default_rng(1000 + slot)
        while not self.stop.is_set():
            started = time.time()
            with self.gate:
                with self.lock:
                    ids = list(range(self.next_id, self.next_id + 200))
                    self.next_id += 200
                vecs = rng.random((200, self.dim), dtype=np.float32)
                rows = [{"id": i, "tag": i % 1000, "vec": vecs[k]} for k, i in enumerate(ids)]
                try:
                    c.insert(NAME, rows)
                    with self.lock:
                        for k, i in enumerate(ids):
                            self.live[i] = vecs[k]
                        keys = list(self.live.keys())
                    gone = [keys[j] for j in rng.choice(len(keys), 20, replace=False)]
                    c.delete(NAME, ids=gone)
                    with self.lock:
                        for i in gone:
                            self.live.pop(i, None)
                        keys = list(self.live.keys())
                    again = [keys[j] for j in rng.choice(len(keys), 10, replace=False)]
                    nv = rng.random((10, self.dim), dtype=np.float32)
                    c.upsert(NAME, [{"id": i, "tag": i % 1000, "vec": nv[k]} for k, i in enumerate(again)])
                    with self.lock:
                        for k, i in enumerate(again):
                            self.live[i] = nv[k]
                except Exception as e:  # noqa: BLE001 - counted and reported
                    self.fail("write", e)
            self.stop.wait(max(0.0, self.write_every - (time.time() - started)))

    def flusher(self):
        c = MilvusClient(uri=self.uri)
        while not self.stop.wait(10):
            try:
                c.flush(NAME)
            except Exception as e:  # noqa: BLE001
                self.fail("flush", e)

    def reader(self, slot):
        c = MilvusClient(uri=self.uri)
        rng = np.random.default_rng(2000 + slot)
        turn = 0
        while not self.stop.is_set():
            started = time.time()
            try:
                if turn % 2 == 0:
                    q = rng.random((1, self.dim), dtype=np.float32)
                    c.search(NAME, data=[q[0]], limit=10, anns_field="vec", search_params={"params": {"ef": 64}},
                             consistency_level="Bounded")
                    with self.lock:
                        self.lat.append(time.time() - started)
                else:
                    c.query(NAME, filter=f"tag == {int(rng.integers(1000))}", output_fields=["id"], limit=100,
                            consistency_level="Bounded")
                    with self.lock:
                        self.qlat.append(time.time() - started)
                with self.lock:
                    self.calls += 1
            except Exception as e:  # noqa: BLE001
                self.fail("search" if turn % 2 == 0 else "query", e)
            turn += 1
            self.stop.wait(max(0.0, 0.05 - (time.time() - started)))

    def recall(self, c):
        """recall@10 of 20 Strong searches against exact results on the live rows (writers
        paused, so both see the same rows)."""
        with self.gate:
            with self.lock:
                ids = np.fromiter(self.live.keys(), dtype=np.int64)
                base = np.stack(list(self.live.values())) if len(ids) else np.zeros((0, self.dim), np.float32)
            if len(ids) < 10:
                return None
            qs = self.rng.random((20, self.dim), dtype=np.float32)
            d = (qs ** 2).sum(1)[:, None] - 2 * qs @ base.T + (base ** 2).sum(1)[None, :]
            exact = ids[np.argsort(d, axis=1)[:, :10]]
            res = c.search(NAME, data=list(qs), limit=10, anns_field="vec", search_params={"params": {"ef": 64}},
                           consistency_level="Strong")
            hits = sum(len(set(int(h["id"]) for h in r) & set(exact[i].tolist())) for i, r in enumerate(res))
            return hits / (20 * 10), len(ids)


def segments_per_shard(c):
    try:
        segs = c._get_connection().get_persistent_segment_infos(NAME)
        return len(segs) / SHARDS, sum(s.num_rows for s in segs)
    except Exception as e:  # noqa: BLE001
        log(f"segment info failed: {e}")
        return None, None


def ours_log_state(monitor):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/jsz", timeout=2) as r:
            j = json.loads(r.read())
        return j.get("messages"), j.get("bytes")
    except Exception:  # noqa: BLE001
        return None, None


def run(a):
    work = a.work or tempfile.mkdtemp(prefix="steady-")
    stop_system = None
    if a.system == "ours":
        monitor = compare.free_port()
        env = {"DATA_COORD_GC_INTERVAL": "60", "DATA_COORD_GC_DROP_TOLERANCE": "120"}
        ours = compare.Ours(a.bin, os.path.join(work, "ours"), {"GOMEMLIMIT": "512MiB"},
                            nats_args=("-m", str(monitor)), role_env=env)
        uri = f"http://127.0.0.1:{ours.ports['proxy']}"
        pids = dict(zip([n for n, _ in ours.procs], ours.pids()))
        log_dir, obj_dir = os.path.join(work, "ours", "nats"), os.path.join(work, "ours", "data")
        log_state = lambda: ours_log_state(monitor)  # noqa: E731
        stop_system = ours.stop
    else:
        pkg = compare.wheel(a.system, a.cache)
        port = compare.free_port()
        data = os.path.join(work, f"milvus-{a.system}")
        os.environ.update(GC_ENV)
        pid, handle = compare.start_real(pkg, data, "standalone", port)
        uri = f"http://127.0.0.1:{port}"
        pids = {"milvus": pid}
        log_dir, obj_dir = None, None
        log_state = lambda: (None, None)  # noqa: E731
        stop_system = lambda: compare.stop_real(handle)  # noqa: E731
    samples = []
    try:
        w = Workload(uri, a.dim, a.write_every)
        w.setup()
        threads = [threading.Thread(target=w.writer, args=(i,), daemon=True) for i in range(4)]
        threads += [threading.Thread(target=w.reader, args=(i,), daemon=True) for i in range(4)]
        threads.append(threading.Thread(target=w.flusher, daemon=True))
        for t in threads:
            t.start()
        c = MilvusClient(uri=uri)
        started = time.time()
        end = started + a.minutes * 60
        next_at = started + SAMPLE_EVERY
        while time.time() < end:
            time.sleep(max(0.0, next_at - time.time()))
            next_at += SAMPLE_EVERY
            with w.lock:
                lat, qlat, w.lat, w.qlat = w.lat, w.qlat, [], []
                failed, calls = dict(w.failed), w.calls
            segs, seg_rows = segments_per_shard(c)
            msgs, log_bytes = log_state()
            kinds = disk_by_kind(obj_dir or os.path.join(work, f"milvus-{a.system}"))
            disk_obj = sum(kinds.values())
            if log_dir is None:
                # Real Milvus standalone: its rocksmq directories are the log.
                data_dir = os.path.join(work, f"milvus-{a.system}", "data")
                disk_log = sum(du(e.path) for e in os.scandir(data_dir) if e.is_dir() and "rocksmq" in e.name)
                log_bytes = disk_log
            else:
                disk_log = du(log_dir)
            try:
                r = w.recall(c)
            except Exception as e:  # noqa: BLE001
                w.fail("recall", e)
                r = None
            s = {
                "t": round(time.time() - started),
                "segments_per_shard": segs,
                "segment_rows": seg_rows,
                "live_rows": r[1] if r else None,
                "log_messages": msgs,
                "log_bytes": log_bytes,
                "disk_log": disk_log,
                "disk_objects": disk_obj,
                "disk_by_kind": kinds,
                "rss_mib": {n: round(compare.proc_mib(p, "VmRSS"), 1) for n, p in pids.items()},
                "search_p50_ms": round(1000 * pct(lat, 50), 2) if lat else None,
                "search_p99_ms": round(1000 * pct(lat, 99), 2) if lat else None,
                "query_p50_ms": round(1000 * pct(qlat, 50), 2) if qlat else None,
                "query_p99_ms": round(1000 * pct(qlat, 99), 2) if qlat else None,
                "searches": len(lat),
                "recall": round(r[0], 4) if r else None,
                "failed": failed,
                "calls": calls,
            }
            samples.append(s)
            log(json.dumps(s))
        w.stop.set()
        for t in threads:
            t.join(30)
    finally:
        if stop_system:
            stop_system()
    out = {"system": a.system, "minutes": a.minutes, "dim": a.dim, "write_every": a.write_every,
           "samples": samples}
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    log(f"wrote {a.out}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("system")
    p.add_argument("--bin", default=os.path.join(HERE, "..", "..", "bin", "milvus"))
    p.add_argument("--out", required=True)
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--write-every", type=float, default=2.0)
    p.add_argument("--cache", default=os.path.expanduser("~/.cache/milvus-compare"))
    p.add_argument("--work")
    run(p.parse_args())


if __name__ == "__main__":
    main()
