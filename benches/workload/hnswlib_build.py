"""hnswlib yardstick for the in-process graph build: builds an HNSW index with hnswlib (the
library Milvus's knowhere HNSW is built on) over ROWS x 128 uniform random vectors (fixed
seed), M 16, efConstruction 200, on THREADS threads, RUNS times, and prints the build
times and recall@10 at ef 64 / 128 / 256 against exact search (up to 100,000 rows).
Compare with `cargo bench --bench index -- --rows ROWS --threads THREADS`.

    pip install numpy hnswlib   # hnswlib builds from source (needs g++)
    python hnswlib_build.py ROWS [THREADS] [RUNS]
"""
import sys
import time

import hnswlib
import numpy as np

rows = int(sys.argv[1]); threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
dim = 128
rng = np.random.default_rng(42)
data = rng.random((rows, dim), dtype=np.float32)
qs = rng.random((200, dim), dtype=np.float32)
times = []
for run in range(int(sys.argv[3]) if len(sys.argv) > 3 else 3):
    idx = hnswlib.Index(space='l2', dim=dim)
    idx.init_index(max_elements=rows, M=16, ef_construction=200, random_seed=run)
    idx.set_num_threads(threads)
    t = time.monotonic(); idx.add_items(data, np.arange(rows)); times.append(time.monotonic() - t)
d = ((qs[:, None, :] - data[None, :, :]) ** 2).sum(-1) if rows <= 100000 else None
out = {"rows": rows, "threads": threads, "build_s": sorted(times)}
if d is not None:
    truth = np.argsort(d, axis=1)[:, :10]
    for ef in (64, 128, 256):
        idx.set_ef(ef); idx.set_num_threads(1)
        labels, _ = idx.knn_query(qs, k=10)
        out[f"recall@{ef}"] = round(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(labels, truth)]), 3)
print(out)
