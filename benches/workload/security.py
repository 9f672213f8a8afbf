"""The cost of TLS and authentication on the client path (pymilvus MilvusClient): the same
cluster reached through proxies configured differently (plain, TLS, authentication, TLS
and authentication). For each run and each proxy, in turn: a fresh client's first call
(connect: TCP, TLS handshake, credentials), INSERTS inserts of BATCH rows x DIM, and
QUERIES searches top-10 (one client) of a loaded collection. Prints one JSON line per
measurement:

    {"what": "connect", "proxy": NAME, "ms": ...}
    {"what": "insert", "proxy": NAME, "p50_ms": ..., "p99_ms": ..., "rows_per_s": ...}
    {"what": "search", "proxy": NAME, "p50_ms": ..., "p99_ms": ..., "qps": ...}

    python security.py CERT_DIR RUNS NAME=PORT[,tls][,auth] ...
"""
import json
import os
import sys
import time

import numpy as np
from pymilvus import MilvusClient

DIM, ROWS, BATCH, INSERTS, QUERIES = 128, 20000, 1000, 30, 500


def client(spec, certs):
    name, rest = spec.split("=", 1)
    port, *flags = rest.split(",")
    kw = {"timeout": 30}
    if "tls" in flags:
        uri = f"https://localhost:{port}"
        kw.update(server_pem_path=os.path.join(certs, "ca.pem"), server_name="localhost")
    else:
        uri = f"http://127.0.0.1:{port}"
    if "auth" in flags:
        kw["token"] = "root:Milvus"
    return name, uri, kw


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def main():
    certs, runs, specs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    rng = np.random.default_rng(11)
    base = rng.random((ROWS, DIM), dtype=np.float32)
    name0, uri0, kw0 = client(specs[0], certs)
    setup = MilvusClient(uri=uri0, **kw0)
    for coll in ["tls_search", "tls_insert"]:
        if setup.has_collection(coll):
            setup.drop_collection(coll)
        setup.create_collection(coll, dimension=DIM, consistency_level="Bounded")
    for start in range(0, ROWS, 5000):
        setup.insert("tls_search", [{"id": start + i, "vector": base[start + i].tolist()} for i in range(5000)])
    setup.flush("tls_search")
    setup.load_collection("tls_search")
    queries = rng.random((QUERIES, DIM), dtype=np.float32).tolist()
    batch = [{"id": i, "vector": base[i].tolist()} for i in range(BATCH)]
    for _ in range(runs):
        for spec in specs:
            name, uri, kw = client(spec, certs)
            started = time.perf_counter()
            # close() below ends the connection: this client opens a new one.
            c = MilvusClient(uri=uri, **kw)
            c.list_collections()
            print(json.dumps({"what": "connect", "proxy": name, "ms": (time.perf_counter() - started) * 1000}), flush=True)
            lat = []
            for _ in range(INSERTS):
                t = time.perf_counter()
                c.insert("tls_insert", batch)
                lat.append((time.perf_counter() - t) * 1000)
            print(json.dumps({"what": "insert", "proxy": name, "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99),
                              "rows_per_s": BATCH * INSERTS / (sum(lat) / 1000)}), flush=True)
            lat = []
            for q in queries:
                t = time.perf_counter()
                c.search("tls_search", data=[q], limit=10)
                lat.append((time.perf_counter() - t) * 1000)
            print(json.dumps({"what": "search", "proxy": name, "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99),
                              "qps": QUERIES / (sum(lat) / 1000)}), flush=True)
            c.close()


if __name__ == "__main__":
    main()
