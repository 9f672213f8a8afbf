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
ROOT_PATH, session TTL TTL, gRPC on PORT. Without a Pulsar or Kafka broker (none can be
installed here; 2.3.5 refuses its local queues outside standalone) it stays Initializing,
but its session election and takeover work.

Prints one JSON line {"pid": ..., "port": ..., "metrics_port": ...} once started, then
waits; SIGTERMs the process when stdin closes.
"""
import json
import os
import re
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
    if kind == "standalone":
        cfg = milvus.MilvusServerConfig(data_dir=data, proxy_port=port)
    else:
        cfg = milvus.MilvusServerConfig(data_dir=data, root_coord_port=port)
    cfg.set("system_log_level", "info")
    cfg.resolve()
    metrics = free_port()
    env = dict(os.environ)
    env.update({
        "LD_LIBRARY_PATH": os.path.dirname(exe) + ":" + env.get("LD_LIBRARY_PATH", ""),
        "METRICS_PORT": str(metrics),
        "MILVUSCONF": os.path.join(data, "configs"),
    })
    if kind == "standalone":
        env["DEPLOY_MODE"] = "STANDALONE"
        args = [exe, "run", "standalone"]
    else:
        etcd, root, ttl = sys.argv[5], sys.argv[6], sys.argv[7]
        # The settings go into the written milvus.yaml (2.2.16 panics on some environment
        # overrides of etcd keys): external etcd under ROOT_PATH, active-standby, TTL.
        path = os.path.join(data, "configs", "milvus.yaml")
        text = open(path).read()
        text = text.replace(f"localhost:{cfg.get('etcd_port')}", etcd)
        text = re.sub(r"(\n\s+embed:\s*)true", r"\1false", text, count=1)
        text = re.sub(r"(\n  rootPath:\s*)by-dev", rf"\g<1>{root}", text, count=1)
        at = text.index("\nrootCoord:")
        text = text[:at] + re.sub(r"enableActiveStandby:\s*false", "enableActiveStandby: true",
                                  text[at:], count=1)
        text = re.sub(r"(\n  session:\n    ttl:\s*)\d+", rf"\g<1>{ttl}", text, count=1)
        # 2.3.5 refuses its local queue outside standalone: name the default (Pulsar).
        text = re.sub(r"(\nmq:\n(?:\s*#.*\n)*\s*type:\s*)rocksmq", r"\1pulsar", text, count=1)
        open(path, "w").write(text)
        env["DEPLOY_MODE"] = "CLUSTER"
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
