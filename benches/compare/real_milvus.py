"""Runs one real Milvus process from an unpacked PyPI `milvus` wheel (the "milvus-lite"
build: the Go server binary and its libraries, lzma-compressed) until stdin closes.

    python real_milvus.py PKG_DIR DATA_DIR standalone PORT
    python real_milvus.py PKG_DIR DATA_DIR rootcoord PORT ETCD_ENDPOINT ROOT_PATH TTL

The wheel's own config writer (`milvus.MilvusServerConfig`, from its template) writes
DATA_DIR/configs/milvus.yaml; the binary is unpacked once into PKG_DIR/../unpacked and
run with LD_LIBRARY_PATH set to it and DATA_DIR as its working directory.
standalone: `milvus run standalone` (embedded etcd, rocksmq, local storage), the proxy on
PORT; up when its /healthz says OK.
rootcoord: `milvus run rootcoord` with active-standby on an external etcd under
ROOT_PATH, session TTL TTL, gRPC on PORT (its own rocksmq dir: its messages are unused).

Prints one JSON line {"pid": ..., "port": ..., "metrics_port": ...} once started, then
waits; SIGTERMs the process when stdin closes.
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    pkg, data, kind, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    sys.path.insert(0, pkg)
    import milvus  # the wheel's launcher module

    unpacked = os.path.join(os.path.dirname(os.path.abspath(pkg)), "unpacked")
    os.makedirs(unpacked, exist_ok=True)
    milvus._initialize_data_files(unpacked)
    exe = os.path.join(unpacked, "bin", "milvus")
    os.makedirs(data, exist_ok=True)
    cfg = milvus.MilvusServerConfig(data_dir=data, proxy_port=port)
    cfg.set("system_log_level", "info")
    cfg.resolve()
    metrics = free_port()
    env = dict(os.environ)
    env.update({
        "LD_LIBRARY_PATH": os.path.dirname(exe) + ":" + env.get("LD_LIBRARY_PATH", ""),
        "METRICS_PORT": str(metrics),
    })
    if kind == "standalone":
        env["DEPLOY_MODE"] = "STANDALONE"
        args = [exe, "run", "standalone"]
    else:
        etcd, root, ttl = sys.argv[5], sys.argv[6], sys.argv[7]
        env.update({
            "DEPLOY_MODE": "CLUSTER",
            "ETCD_USE_EMBED": "false",
            "ETCD_ENDPOINTS": etcd,
            "ETCD_ROOT_PATH": root,
            "ROOT_COORD_PORT": str(port),
            "ROOT_COORD_ENABLE_ACTIVE_STANDBY": "true",
            "COMMON_SESSION_TTL": ttl,
            "ROCKSMQ_PATH": os.path.join(data, "rdb"),
        })
        args = [exe, "run", "rootcoord"]
    log = open(os.path.join(data, f"{kind}.log"), "w")
    proc = subprocess.Popen(args, cwd=data, env=env, stdout=log, stderr=subprocess.STDOUT)
    if kind == "standalone":
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/healthz", timeout=1) as r:
                    if b"OK" in r.read():
                        break
            except Exception:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit(f"milvus standalone did not become healthy (see {data}/{kind}.log)")
    print(json.dumps({"pid": proc.pid, "port": port, "metrics_port": metrics}), flush=True)
    sys.stdin.read()
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
