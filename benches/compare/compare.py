"""Side by side with real Milvus: runs one pymilvus workload (workload.py) on real Milvus
standalone (2.2.16 and 2.3.5, from PyPI's `milvus` wheels) and on this project's cluster
(etcd, nats-server and all eight roles, one of each), one after the other on free ports,
then the rootcoord takeover comparison (ha.py), and writes the Markdown report and PNG
plots. Run through scripts/compare_milvus.sh.

    python compare.py --bin BIN --out DIR [--rows N] [--dim D] [--queries Q] [--runs R]
                      [--ef 16,64,128] [--clients 1,8] [--versions 2.2.16,2.3.5]
                      [--cache DIR] [--ha-term 5] [--ha-kill 3] [--ttl 10] [--skip-ha]
                      [--skip-data] [--quick]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ha  # noqa: E402

ROLES = ["rootcoord", "datacoord", "querycoord", "indexcoord", "datanode", "indexnode", "querynode", "proxy"]
ENV_PREFIX = {"rootcoord": "ROOT_COORD", "datacoord": "DATA_COORD", "querycoord": "QUERY_COORD",
              "indexcoord": "INDEX_COORD", "datanode": "DATA_NODE", "indexnode": "INDEX_NODE",
              "querynode": "QUERY_NODE", "proxy": "PROXY"}


STEADY_HEADER = "## Steady state"


def log(msg):
    print(f"[compare] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, limit=60):
    end = time.time() + limit
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def breakdown(pids, field="VmRSS"):
    """Each process's RSS (or another /proc status field, such as VmHWM: its peak RSS),
    named by its command (and a role's by its role), largest first."""
    def name(pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            return str(pid)
        if len(args) >= 3 and args[1] == "run":
            return args[2]
        return os.path.basename(args[0]) if args else str(pid)
    parts = sorted(((proc_mib(p, field), name(p)) for p in pids), reverse=True)
    return ", ".join(f"{n} {r:.0f}" for r, n in parts)


def proc_mib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def pss_mib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def spread(xs):
    xs = sorted(xs)
    return {"min": xs[0], "median": statistics.median(xs), "max": xs[-1], "n": len(xs)}


# ---------------------------------------------------------------- real Milvus wheels

def wheel(version, cache):
    """The directory holding the `milvus` package of the wheel (downloaded once)."""
    root = os.path.join(cache, version)
    pkg = os.path.join(root, "pkg")
    if os.path.isfile(os.path.join(pkg, "milvus", "__init__.py")):
        return pkg
    os.makedirs(root, exist_ok=True)
    log(f"downloading milvus=={version} from PyPI")
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"milvus=={version}",
                    "-d", root], check=True)
    whl = [f for f in os.listdir(root) if f.endswith(".whl")][0]
    with zipfile.ZipFile(os.path.join(root, whl)) as z:
        z.extractall(pkg)
    return pkg


def private_run_dir():
    """A command prefix giving the child a private /run/milvus (its own mount namespace):
    real Milvus writes pid files there whatever MILVUS_RUN_DIR says."""
    if os.geteuid() == 0 and shutil.which("unshare"):
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                'mkdir -p /run/milvus && mount -t tmpfs tmpfs /run/milvus && exec "$@"', "sh"]
    log("not root: real Milvus shares /run/milvus with anything else running")
    return []


def start_real(pkg, data, kind, port, *extra):
    cmd = private_run_dir() + [sys.executable, os.path.join(HERE, "real_milvus.py"), pkg, data, kind,
                               str(port), *extra]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line:
        raise SystemExit(f"real Milvus ({kind}) did not start; see {data}")
    return json.loads(line)["pid"], p


def stop_real(p):
    try:
        p.stdin.close()
        p.wait(90)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


# ---------------------------------------------------------------- this project

def binary(name, *fallbacks):
    for c in [shutil.which(name), *fallbacks]:
        if c and os.path.exists(c):
            return c
    raise SystemExit(f"{name} not found; run scripts/install_deps.sh")


class Ours:
    """etcd, nats-server and the eight roles on free ports under a temporary directory."""

    def __init__(self, bin_path, work, nats_env, nats_args=(), role_env=None):
        self.bin, self.work, self.procs = bin_path, work, []
        os.makedirs(work, exist_ok=True)
        etcd_port, peer, nats_port = free_port(), free_port(), free_port()
        self.etcd_endpoint = f"127.0.0.1:{etcd_port}"
        self.spawn("etcd", [binary("etcd", "/usr/bin/etcd"), "--data-dir", os.path.join(work, "etcd"),
                            "--listen-client-urls", f"http://{self.etcd_endpoint}",
                            "--advertise-client-urls", f"http://{self.etcd_endpoint}",
                            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                            "--initial-cluster", f"default=http://127.0.0.1:{peer}"], {})
        wait_port(etcd_port)
        self.spawn("nats-server", [binary("nats-server", "/usr/sbin/nats-server"), "-js", "-a", "127.0.0.1",
                                   "-p", str(nats_port), "-sd", os.path.join(work, "nats"), *nats_args],
                   nats_env)
        wait_port(nats_port)
        self.env = {"ETCD_ENDPOINTS": self.etcd_endpoint, "NATSMQ_ADDRESS": f"nats://127.0.0.1:{nats_port}",
                    "LOCAL_STORAGE_PATH": os.path.join(work, "data"), "MILVUS_PID_DIR": os.path.join(work, "pids"),
                    "LOG_LEVEL": "warn", **(role_env or {})}
        os.makedirs(self.env["MILVUS_PID_DIR"], exist_ok=True)
        self.ports = {}
        for role in ROLES:
            port = free_port()
            self.ports[role] = port
            self.spawn(role, [self.bin, "run", role], {**self.env, f"{ENV_PREFIX[role]}_PORT": str(port),
                                                       f"{ENV_PREFIX[role]}_ADDRESS": "127.0.0.1"})
        for role in ROLES:
            if not wait_port(self.ports[role]):
                raise SystemExit(f"{role} did not listen")
        time.sleep(1)

    def spawn(self, name, cmd, env):
        out = open(os.path.join(self.work, f"{name}.log"), "a")
        p = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append((name, p))

    def pids(self):
        return [p.pid for _, p in self.procs]

    def stop(self):
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _, p in reversed(self.procs):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# ---------------------------------------------------------------- the data workload

class Sampler(threading.Thread):
    """Samples the summed RSS of `pids` every 100 ms: the peak, each process's share of it
    and the workload's phase it came in (where the memory was when the sum was highest)."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids, self.peak, self.done = pids, 0.0, False
        self.phase, self.at_peak = "start", ""

    def run(self):
        while not self.done:
            each = [proc_mib(p, "VmRSS") for p in self.pids]
            if sum(each) > self.peak:
                self.peak = sum(each)
                self.at_peak = f"{self.phase}: {breakdown(self.pids)}"
            time.sleep(0.1)


def run_workload(uri, pids, a):
    cmd = [sys.executable, os.path.join(HERE, "workload.py"), uri, "--rows", str(a.rows), "--dim", str(a.dim),
           "--queries", str(a.queries), "--runs", str(a.runs), "--ef", a.ef, "--clients", a.clients,
           "--index", a.index]
    sampler = Sampler(pids)
    sampler.start()
    out = {"m": [], "rss": {"loaded": [], "loaded_pss": []}}
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        line = line.strip()
        if not line.startswith("{"):
            continue
        v = json.loads(line)
        if "phase" in v:
            sampler.phase = v["phase"]
            rss = sum(proc_mib(x, "VmRSS") for x in pids)
            pss = sum(pss_mib(x) for x in pids)
            if v["phase"] == "loaded":
                time.sleep(1)
                rss = sum(proc_mib(x, "VmRSS") for x in pids)
                pss = sum(pss_mib(x) for x in pids)
                out["rss"]["loaded"].append(round(rss, 1))
                out["rss"]["loaded_pss"].append(round(pss, 1))
            else:
                out["rss"][v["phase"]] = round(rss, 1)
                out["rss"][v["phase"] + "_pss"] = round(pss, 1)
            log(f"  {v['phase']}: RSS {rss:.0f} MiB, PSS {pss:.0f} MiB ({breakdown(pids)})")
            if v["phase"] == "done":
                log(f"  each process's peak RSS, MiB: {breakdown(pids, 'VmHWM')}")
        else:
            log(f"  {line}")
            out["m"].append(v)
            sampler.phase = f"after {v.get('m', '?')}"
    if p.wait() != 0:
        raise SystemExit("the workload failed")
    sampler.done = True
    sampler.join()
    out["rss"]["peak"] = round(sampler.peak, 1)
    log(f"  peak RSS {sampler.peak:.0f} MiB, {sampler.at_peak}")
    return out


def data_side(a, work):
    results = {}
    for version in a.versions:
        pkg = wheel(version, a.cache)
        port = free_port()
        data = os.path.join(work, f"milvus-{version}")
        log(f"real Milvus {version} standalone on port {port}")
        pid, handle = start_real(pkg, data, "standalone", port)
        time.sleep(2)
        try:
            results[f"Milvus {version}"] = run_workload(f"http://127.0.0.1:{port}", [pid], a)
        finally:
            stop_real(handle)
    log("this project: etcd, nats-server and the eight roles")
    ours = Ours(a.bin, os.path.join(work, "ours"), {"GOMEMLIMIT": a.nats_memlimit} if a.nats_memlimit else {})
    try:
        results["this project"] = run_workload(f"http://127.0.0.1:{ours.ports['proxy']}", ours.pids(), a)
    finally:
        ours.stop()
    return results


# ---------------------------------------------------------------- the HA side

def ha_side(a, work):
    results = {}
    etcd_dir = os.path.join(work, "ha-etcd")
    etcd_port, peer = free_port(), free_port()
    endpoint = f"127.0.0.1:{etcd_port}"
    etcd = subprocess.Popen([binary("etcd", "/usr/bin/etcd"), "--data-dir", etcd_dir,
                             "--listen-client-urls", f"http://{endpoint}", "--advertise-client-urls",
                             f"http://{endpoint}", "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                             "--initial-cluster", f"default=http://127.0.0.1:{peer}"],
                            stdout=open(etcd_dir + ".log", "w"), stderr=subprocess.STDOUT)
    wait_port(etcd_port)
    try:
        for version in a.versions:
            pkg = wheel(version, a.cache)
            ports = [free_port(), free_port()]

            def start(i, pkg=pkg, ports=ports, version=version):
                data = os.path.join(work, f"ha-{version}-{i}-{time.monotonic_ns()}")
                return start_real(pkg, data, "rootcoord", ports[i], endpoint, f"real-{version}", str(a.ttl))
            log(f"HA: two Milvus {version} rootcoords, TTL {a.ttl} s")
            pair = ha.Pair(start, ports, endpoint, f"real-{version}", healthy=False)
            try:
                results[f"Milvus {version}"] = ha.measure(pair, a.ha_term, a.ha_kill, a.ttl)
            except RuntimeError as e:
                results[f"Milvus {version}"] = {"error": str(e)}
            log(f"  {results[f'Milvus {version}']}")
        ports = [free_port(), free_port()]
        pid_dir = os.path.join(work, "ha-pids")
        os.makedirs(pid_dir, exist_ok=True)

        def start_ours(i):
            env = {**os.environ, "ETCD_ENDPOINTS": endpoint, "ETCD_ROOT_PATH": "ours",
                   "ROOT_COORD_ENABLE_ACTIVE_STANDBY": "true", "COMMON_SESSION_TTL": str(a.ttl),
                   "ROOT_COORD_PORT": str(ports[i]), "ROOT_COORD_ADDRESS": "127.0.0.1",
                   "MILVUS_PID_DIR": pid_dir, "LOG_LEVEL": "warn"}
            p = subprocess.Popen([a.bin, "run", "rootcoord"], env=env,
                                 stdout=open(os.path.join(work, f"ha-ours-{i}.log"), "a"), stderr=subprocess.STDOUT)
            return p.pid, p
        log(f"HA: two rootcoords of this project, TTL {a.ttl} s")
        pair = ha.Pair(start_ours, ports, endpoint, "ours", healthy=True)
        try:
            results["this project"] = ha.measure(pair, a.ha_term, a.ha_kill, a.ttl)
        except RuntimeError as e:
            results["this project"] = {"error": str(e)}
        log(f"  {results['this project']}")
    finally:
        etcd.terminate()
        etcd.wait()
    return results


# ---------------------------------------------------------------- the report

def collect(res):
    """name -> metric -> spread over runs."""
    table = {}
    for name, r in res.items():
        m = {}
        for kind in ("insert_1", "insert_4"):
            m[kind] = spread([x["rows_per_s"] for x in r["m"] if x["m"] == kind])
        for kind in ("flush", "build", "load"):
            m[kind] = spread([x["s"] for x in r["m"] if x["m"] == kind])
        for x in r["m"]:
            if x["m"] == "search":
                key = ("search", x["ef"], x["clients"])
                m.setdefault(key, {"qps": [], "p50_ms": [], "p99_ms": [], "recall": []})
                for k in ("qps", "p50_ms", "p99_ms", "recall"):
                    m[key][k].append(x[k])
        q = [x for x in r["m"] if x["m"] == "query"]
        m["query_p50"] = spread([x["p50_ms"] for x in q])
        m["query_p99"] = spread([x["p99_ms"] for x in q])
        for x in r["m"]:
            if x["m"] == "filter":
                key = ("filter", x["kind"], x["limit"])
                m.setdefault(key, {"p50_ms": [], "p99_ms": []})
                for k in ("p50_ms", "p99_ms"):
                    m[key][k].append(x[k])
        for key in [k for k in m if isinstance(k, tuple)]:
            m[key] = {k: spread(v) for k, v in m[key].items()}
        m["rss"] = r["rss"]
        table[name] = m
    return table


# The filtered queries of the workload (benches/compare/workload.py FILTERS), as reported.
FILTER_ROWS = {}
for _kind, _text in (("eq", "`num == x` (1 row)"), ("range", "`num` in a window of 50"),
                     ("in", "`num in [3 values]`"), ("like", "`tag like \"t012%\"` (rows / 1000)")):
    FILTER_ROWS[("filter", _kind, 0)] = f"filter {_text}"
    FILTER_ROWS[("filter", _kind, 10)] = f"filter {_text}, limit 10"
for _key, _label in list(FILTER_ROWS.items()):
    FILTER_ROWS[("filter", _key[1] + "_ix", _key[2])] = _label + ", scalar index"


def fmt(s, digits=1):
    if s is None:
        return "-"
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def best_real(table, pick, better):
    """The best real Milvus value of `pick(m)` (better: max or min)."""
    vals = [pick(m) for name, m in table.items() if name != "this project"]
    return better(vals) if vals else None


def report(a, data, hares, out_dir):
    lines = ["# Side by side with real Milvus", "",
             f"Generated by `scripts/compare_milvus.sh {' '.join(a.argv)}` on "
             f"{time.strftime('%Y-%m-%d')} ({os.cpu_count()} cores). Real Milvus: PyPI's `milvus` wheels "
             f"({', '.join(a.versions)}), `milvus run standalone` (embedded etcd and rocksmq, local storage). "
             "This project: etcd, nats-server and one process of each of the eight roles. One pymilvus 2.5.18 "
             f"workload (`benches/compare/workload.py`), same seed: {a.rows:,} x {a.dim} uniform random vectors, "
             f"{'HNSW M 16 / efConstruction 200' if a.index == 'HNSW' else a.index}, L2. "
             f"Every figure is the median of {a.runs} run(s) with (min-max).", ""]
    if data:
        t = collect(data)
        names = list(t)
        lines += ["## Data path", "", "| measure | " + " | ".join(names) + " | this project / best Milvus |",
                  "|---|" + "---|" * (len(names) + 1)]

        def row(label, pick, digits=1, higher=True):
            def value(n):
                try:
                    return pick(t[n])
                except KeyError:  # a measure this system could not take (e.g. refused an index)
                    return None
            vals = [value(n) for n in names]
            ours = value("this project") if "this project" in t else None
            real = [value(n)["median"] for n in names if n != "this project" and value(n)]
            ratio = ""
            if ours and real:
                best = max(real) if higher else min(real)
                r = ours["median"] / best if higher else best / ours["median"]
                ratio = f"{r:.2f}x {'better' if r >= 1 else 'worse'}"
            lines.append(f"| {label} | " + " | ".join(fmt(v, digits) for v in vals) + f" | {ratio} |")
        row("insert, 1 client, rows/s", lambda m: m["insert_1"], 0)
        row("insert, 4 clients, rows/s", lambda m: m["insert_4"], 0)
        row("flush, s", lambda m: m["flush"], 2, higher=False)
        row(f"{a.index} build (create_index until Finished), s", lambda m: m["build"], 2, higher=False)
        row("load, s", lambda m: m["load"], 2, higher=False)
        for key in sorted(k for k in t[names[0]] if isinstance(k, tuple) and k[0] == "search"):
            _, ef, clients = key
            row(f"search ef {ef}, {clients} client(s): QPS", lambda m, key=key: m[key]["qps"], 0)
            row(f"search ef {ef}, {clients} client(s): p50 ms", lambda m, key=key: m[key]["p50_ms"], 2, higher=False)
            row(f"search ef {ef}, {clients} client(s): p99 ms", lambda m, key=key: m[key]["p99_ms"], 2, higher=False)
            row(f"search ef {ef}, {clients} client(s): recall@10", lambda m, key=key: m[key]["recall"], 3)
        row("query by primary key: p50 ms", lambda m: m["query_p50"], 2, higher=False)
        row("query by primary key: p99 ms", lambda m: m["query_p99"], 2, higher=False)
        for key in [k for k in FILTER_ROWS if any(k in t[n] for n in names)]:
            label = FILTER_ROWS[key]
            row(f"{label}: p50 ms", lambda m, key=key: m[key]["p50_ms"], 2, higher=False)
            row(f"{label}: p99 ms", lambda m, key=key: m[key]["p99_ms"], 2, higher=False)
        mem = lambda m, k: spread(m["rss"][k]) if isinstance(m["rss"][k], list) else spread([m["rss"][k]])  # noqa: E731
        row("memory idle, RSS MiB (sum of processes)", lambda m: mem(m, "idle"), 0, higher=False)
        row("memory idle, PSS MiB (shared pages divided)", lambda m: mem(m, "idle_pss"), 0, higher=False)
        row("memory loaded, RSS MiB", lambda m: mem(m, "loaded"), 0, higher=False)
        row("memory loaded, PSS MiB (shared pages divided)", lambda m: mem(m, "loaded_pss"), 0, higher=False)
        row("memory peak, RSS MiB (sampled every 100 ms)", lambda m: mem(m, "peak"), 0, higher=False)
        lines += ["", "Ratios compare medians: for rates this project / best Milvus, for times and memory "
                  "best Milvus / this project (above 1 means this project is better).", ""]
        plots(t, hares, out_dir, lines)
    if hares:
        lines += ["## Rootcoord takeover", "",
                  f"Two rootcoords in active-standby on one etcd (each implementation under its own root path), "
                  f"session TTL {a.ttl} s. From the signal to the active until the ACTIVE session key names the "
                  "standby (*key*), and until the standby answers GetComponentStates Healthy (*healthy*), "
                  "polled every 2 ms; median (min-max) over the runs. Real Milvus rootcoords cannot become "
                  "Healthy here: they wait for a Pulsar or Kafka broker, which this machine cannot install "
                  "(2.3.5 refuses its local queues outside standalone), so only their election is timed.", "",
                  "| implementation | SIGTERM runs | SIGTERM key ms | SIGTERM healthy ms | SIGKILL runs | "
                  "SIGKILL key ms | SIGKILL healthy ms | idle RSS of the pair, MiB |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, r in hares.items():
            if "error" in r:
                lines.append(f"| {name} | failed: {r['error']} | | | | | | |")
                continue
            cells = []
            for sig in ("sigterm", "sigkill"):
                k = r[sig]["key_ms"]
                h = r[sig]["healthy_ms"]
                missed = r[sig].get("missed", 0)
                runs = str(len(k) + missed) + (f" ({missed} with no hand-over within {3 * a.ttl + 30} s)"
                                              if missed else "")
                cells += [runs, fmt(spread(k)) if k else "-", fmt(spread(h)) if h else "-"]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {r['idle_rss_mib']} |")
        lines.append("")
    path = os.path.join(out_dir, "benchmarks.md")
    # The steady-state section (benches/compare/steady_report.py) is kept as it is.
    kept = ""
    if os.path.exists(path):
        old = open(path).read()
        if STEADY_HEADER in old:
            kept = "\n" + old[old.index(STEADY_HEADER):]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n" + kept)
    with open(os.path.join(out_dir, "benchmarks.json"), "w") as f:
        json.dump({"args": vars(a), "data": data, "ha": hares}, f, indent=1, default=str)


def plots(t, hares, out_dir, lines):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no plots")
        return
    img = os.path.join(out_dir, "img")
    os.makedirs(img, exist_ok=True)
    names = list(t)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, clients in zip(axes, (1, 8)):
        for n in names:
            keys = sorted(k for k in t[n] if isinstance(k, tuple) and k[0] == "search" and k[2] == clients)
            if not keys:
                continue
            ax.plot([t[n][k]["recall"]["median"] for k in keys], [t[n][k]["qps"]["median"] for k in keys],
                    marker="o", label=n)
            for k in keys:
                ax.annotate(f"ef {k[1]}", (t[n][k]["recall"]["median"], t[n][k]["qps"]["median"]), fontsize=7)
        ax.set_xlabel("recall@10")
        ax.set_ylabel("queries per second")
        ax.set_title(f"search, {clients} client(s)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(img, "recall_qps.png"), dpi=110)
    plt.close(fig)

    def bars(fname, title, metrics, ylabel):
        fig, ax = plt.subplots(figsize=(8, 4))
        width = 0.8 / len(names)
        for i, n in enumerate(names):
            vals = [pick(t[n]) for _, pick in metrics]
            med = [v["median"] for v in vals]
            err = [[v["median"] - v["min"] for v in vals], [v["max"] - v["median"] for v in vals]]
            ax.bar([j + i * width for j in range(len(metrics))], med, width, yerr=err, label=n, capsize=3)
        ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(metrics))])
        ax.set_xticklabels([m for m, _ in metrics])
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(img, fname), dpi=110)
        plt.close(fig)
    bars("insert.png", "insert rate (median, min-max)",
         [("1 client", lambda m: m["insert_1"]), ("4 clients", lambda m: m["insert_4"])], "rows/s")
    bars("times.png", "build, load, flush (median, min-max)",
         [("HNSW build", lambda m: m["build"]), ("load", lambda m: m["load"]), ("flush", lambda m: m["flush"])],
         "seconds")

    def memv(m, k):
        v = m["rss"][k]
        return spread(v if isinstance(v, list) else [v])
    bars("memory.png", "memory, all processes",
         [("idle RSS", lambda m: memv(m, "idle")), ("loaded RSS", lambda m: memv(m, "loaded")),
          ("loaded PSS", lambda m: memv(m, "loaded_pss")), ("peak RSS", lambda m: memv(m, "peak"))], "MiB")
    lines += ["![recall vs QPS](img/recall_qps.png)", "", "![insert](img/insert.png)", "",
              "![build, load, flush](img/times.png)", "", "![memory](img/memory.png)", ""]
    if takeover_plot(hares, img):
        lines += ["![rootcoord takeover](img/takeover.png)", ""]


def takeover_plot(hares, img):
    """Draws img/takeover.png (median with min-max per implementation and signal, log
    scale: a lease expiry and an evidence takeover differ a thousandfold); False if no
    implementation has both measures."""
    hn = [n for n in (hares or {}) if "error" not in hares[n]
          and all(hares[n][s]["key_ms"] for s in ("sigterm", "sigkill"))]
    if not hn:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, sig in enumerate(("sigterm", "sigkill")):
        vals = [spread(hares[n][sig]["key_ms"]) for n in hn]
        ax.bar([j + i * 0.4 for j in range(len(hn))], [v["median"] for v in vals], 0.4,
               yerr=[[v["median"] - v["min"] for v in vals], [v["max"] - v["median"] for v in vals]],
               label=f"{sig.upper()} (ACTIVE key moved)", capsize=3)
    ax.set_xticks([j + 0.2 for j in range(len(hn))])
    ax.set_xticklabels(hn)
    ax.set_yscale("log")
    ax.set_ylabel("ms until the ACTIVE key names the standby")
    ax.set_title("rootcoord takeover (log scale)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(img, "takeover.png"), dpi=110)
    plt.close(fig)
    return True


def scale_report(a, by_size, out_dir):
    """Appends the scale section: each measure at each size per system, the growth from
    the smallest to the largest size, and docs/img/scale_*.png."""
    tables = {rows: collect(res) for rows, res in by_size.items()}
    sizes = sorted(tables)
    names = list(tables[sizes[0]])
    measures = [("insert, 1 client, rows/s", lambda m: m["insert_1"]),
                ("load, s", lambda m: m["load"]),
                (f"{a.index} build, s", lambda m: m["build"]),
                ("query by primary key: p50 ms", lambda m: m["query_p50"])]
    first = tables[sizes[0]][names[0]]
    search = sorted(k for k in first if isinstance(k, tuple) and k[0] == "search")
    if search:
        k = search[0]
        measures += [(f"search ef {k[1]}, {k[2]} client(s): p50 ms", lambda m, k=k: m[k]["p50_ms"]),
                     (f"search ef {k[1]}, {k[2]} client(s): recall@10", lambda m, k=k: m[k]["recall"])]
    for key, label in FILTER_ROWS.items():
        if any(key in tables[sizes[0]][n] for n in names):
            measures += [(f"{label}: p50 ms", lambda m, key=key: m[key]["p50_ms"]),
                         (f"{label}: p99 ms", lambda m, key=key: m[key]["p99_ms"])]
    lines = ["", "## At scale", "",
             f"`scripts/compare_milvus.sh {' '.join(a.argv)}`: the data side at "
             f"{', '.join(f'{s:,}' for s in sizes)} rows, {a.index} index. Median of {a.runs} run(s) per size; "
             f"*growth* is the value at {sizes[-1]:,} rows over the value at {sizes[0]:,}.", "",
             "| measure | system | " + " | ".join(f"{s:,} rows" for s in sizes) + " | growth |",
             "|---|---|" + "---|" * (len(sizes) + 1)]
    for label, pick in measures:
        for n in names:
            try:
                vals = [pick(tables[s][n])["median"] for s in sizes]
            except KeyError:
                continue
            growth = f"{vals[-1] / vals[0]:.2f}x" if vals[0] else "-"
            cell = (lambda v: f"{v:,.0f}") if max(vals) >= 1000 else (lambda v: f"{v:.2f}")
            lines.append(f"| {label} | {n} | " + " | ".join(cell(v) for v in vals) + f" | {growth} |")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        img = os.path.join(out_dir, "img")
        os.makedirs(img, exist_ok=True)
        cols = 3
        rows_n = -(-len(measures) // cols)
        fig, axes = plt.subplots(rows_n, cols, figsize=(5 * cols, 3.4 * rows_n), squeeze=False)
        for ax, (label, pick) in zip([x for r in axes for x in r], measures):
            for n in names:
                try:
                    ax.plot(sizes, [pick(tables[s][n])["median"] for s in sizes], marker="o", label=n)
                except KeyError:
                    pass
            ax.set_xscale("log")
            ax.set_title(label, fontsize=8)
            ax.set_xlabel("rows", fontsize=8)
            ax.legend(fontsize=7)
        for ax in [x for r in axes for x in r][len(measures):]:
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(os.path.join(img, "scale_measures.png"), dpi=100)
        plt.close(fig)
        lines += ["", "![each measure against size](img/scale_measures.png)", ""]
    except ImportError:
        log("matplotlib is not installed: no scale plots")
    path = os.path.join(out_dir, "benchmarks.md")
    with open(path) as f:
        text = f.read()
    if STEADY_HEADER in text:
        i = text.index(STEADY_HEADER)
        text = text[:i] + "\n".join(lines) + "\n\n" + text[i:]
    else:
        text += "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, "benchmarks_scale.json"), "w") as f:
        json.dump({"args": vars(a), "by_size": by_size}, f, indent=1, default=str)


def main():
    # A SIGTERM unwinds like an error, so everything started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--ef", default="16,64,128")
    p.add_argument("--clients", default="1,8")
    p.add_argument("--versions", default="2.2.16,2.3.5")
    p.add_argument("--cache", default=os.path.expanduser("~/.cache/milvus-compare"))
    p.add_argument("--ha-term", type=int, default=5)
    p.add_argument("--ha-kill", type=int, default=3)
    p.add_argument("--ttl", type=int, default=10)
    p.add_argument("--nats-memlimit", default="")
    p.add_argument("--skip-ha", action="store_true")
    p.add_argument("--skip-data", action="store_true")
    p.add_argument("--index", default="HNSW", choices=["HNSW", "FLAT"],
                   help="the vector index (FLAT: to time everything but the HNSW build at large sizes)")
    p.add_argument("--sizes", default="",
                   help="comma-separated row counts: the data side at each, a scale section and plots")
    a = p.parse_args()
    # The command line as reported: without the paths the script fills in itself.
    argv, skip = [], False
    for x in sys.argv[1:]:
        if skip:
            skip = False
        elif x in ("--bin", "--out"):
            skip = True
        else:
            argv.append(x)
    a.argv = argv
    a.versions = [v for v in a.versions.split(",") if v]
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="milvus-compare-")
    log(f"work directory {work}")
    try:
        sizes = [int(x) for x in a.sizes.split(",") if x] if a.sizes else []
        by_size = {}
        for rows in sizes:
            a.rows = rows
            log(f"size {rows:,}")
            sub = os.path.join(work, f"rows-{rows}")
            os.makedirs(sub, exist_ok=True)
            by_size[rows] = data_side(a, sub)
        data = by_size[sizes[-1]] if sizes else (None if a.skip_data else data_side(a, work))
        hares = None if a.skip_ha else ha_side(a, work)
        report(a, data, hares, a.out)
        if by_size:
            scale_report(a, by_size, a.out)
        log(f"wrote {a.out}/benchmarks.md")
    finally:
        if not os.environ.get("COMPARE_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
