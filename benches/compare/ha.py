"""Rootcoord takeover side by side: two rootcoords of one implementation in active-standby
on one etcd (under their own root path), session TTL as given. The active is sent SIGTERM
(graceful) or SIGKILL (crash); measured from the signal:

  missed      signals after which the key did not move within 3 x TTL + 30 s (the
              process is then SIGKILLed to go on)
  key_ms      until the ACTIVE session key (`<root>/meta/session/rootcoord`) names the
              standby's ServerID (the election; read through etcd's JSON gateway, every 2 ms)
  healthy_ms  until the standby answers GetComponentStates with Healthy (when the
              implementation can get there here: real Milvus rootcoords wait for a Pulsar
              or Kafka broker this machine does not have, so they stay Initializing)

The signalled process is then restarted and waited for as the standby. Used by compare.py.
"""
import base64
import json
import os
import signal
import subprocess
import time
import urllib.request

import grpc
from pymilvus.grpc_gen import milvus_pb2

HEALTHY, STANDBY = 1, 3


def component(port, timeout=0.5):
    """(state code, ServerID) a rootcoord reports, or (None, None)."""
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            call = ch.unary_unary(
                "/milvus.proto.rootcoord.RootCoord/GetComponentStates",
                request_serializer=milvus_pb2.GetComponentStatesRequest.SerializeToString,
                response_deserializer=milvus_pb2.ComponentStates.FromString,
            )
            r = call(milvus_pb2.GetComponentStatesRequest(), timeout=timeout)
            return r.state.state_code, r.state.nodeID
    except grpc.RpcError:
        return None, None


def active_server(endpoint, root):
    """The ServerID in the ACTIVE rootcoord key, or None."""
    key = base64.b64encode(f"{root}/meta/session/rootcoord".encode()).decode()
    req = urllib.request.Request(f"http://{endpoint}/v3/kv/range", data=json.dumps({"key": key}).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=1) as r:
            kvs = json.loads(r.read()).get("kvs") or []
    except OSError:
        return None
    if not kvs:
        return None
    try:
        return json.loads(base64.b64decode(kvs[0]["value"]))["ServerID"]
    except (KeyError, ValueError):
        return None


def until(cond, limit, step=0.05):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return None


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Pair:
    """Two rootcoords: `start(i)` starts slot i on ports[i] and returns (pid, handle)."""

    def __init__(self, start, ports, endpoint, root, healthy):
        self.start, self.ports, self.endpoint, self.root, self.healthy = start, ports, endpoint, root, healthy
        self.procs = [None, None]

    def launch(self, i, standby):
        """Starts slot i and waits until it answers (and, where it can, reports StandBy)."""
        self.procs[i] = self.start(i)
        if not until(lambda: component(self.ports[i])[0] is not None, 120):
            raise RuntimeError(f"rootcoord {i} does not answer GetComponentStates")
        if standby and self.healthy and not until(lambda: component(self.ports[i])[0] == STANDBY, 120):
            raise RuntimeError(f"rootcoord {i} did not become StandBy")
        # Time to start watching the ACTIVE key (where there is no StandBy state to see).
        time.sleep(3)

    def pid(self, i):
        return self.procs[i][0]


def measure(pair, terms, kills, ttl):
    """Runs the takeovers; returns {"sigterm": {...}, "sigkill": {...}, "idle_rss_mib": x}."""
    try:
        pair.launch(0, standby=False)
        if not until(lambda: active_server(pair.endpoint, pair.root), 120):
            raise RuntimeError("the first rootcoord did not take the ACTIVE key")
        if pair.healthy and not until(lambda: component(pair.ports[0])[0] == HEALTHY, 120):
            raise RuntimeError("the first rootcoord did not become Healthy")
        pair.launch(1, standby=True)
        out = {"idle_rss_mib": round(rss_mib(pair.pid(0)) + rss_mib(pair.pid(1)), 1),
               "sigterm": {"key_ms": [], "healthy_ms": [], "missed": 0},
               "sigkill": {"key_ms": [], "healthy_ms": [], "missed": 0}}
        a = 0
        for sig, n, name in ((signal.SIGTERM, terms, "sigterm"), (signal.SIGKILL, kills, "sigkill")):
            for _ in range(n):
                b = 1 - a
                holder = active_server(pair.endpoint, pair.root)
                if not holder:
                    raise RuntimeError("no ACTIVE rootcoord key")
                t = time.monotonic()
                os.kill(pair.pid(a), sig)
                limit = 3 * ttl + 30
                moved = lambda: active_server(pair.endpoint, pair.root) not in (None, holder)  # noqa: E731
                if not until(moved, limit, 0.002):
                    # No hand-over in time (a stop that hangs): counted, then forced.
                    out[name]["missed"] += 1
                    os.kill(pair.pid(a), signal.SIGKILL)
                    if not until(moved, limit, 0.05):
                        raise RuntimeError("no takeover of the ACTIVE key even after SIGKILL")
                    stop(pair.procs[a])
                    pair.launch(a, standby=True)
                    a = b
                    continue
                out[name]["key_ms"].append(round((time.monotonic() - t) * 1000, 1))
                if pair.healthy:
                    if not until(lambda: component(pair.ports[b], 0.2)[0] == HEALTHY, limit, 0.002):
                        raise RuntimeError(f"the standby did not become Healthy after {sig.name}")
                    out[name]["healthy_ms"].append(round((time.monotonic() - t) * 1000, 1))
                stop(pair.procs[a])
                pair.launch(a, standby=True)
                a = b
        return out
    finally:
        for p in pair.procs:
            if p:
                end(p)


def end(proc):
    """SIGTERM, then SIGKILL after 20 s (a real Milvus rootcoord without a broker may hang
    in its stop), then the helper."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(proc[0], sig)
        except ProcessLookupError:
            break
        if until(lambda: not os.path.exists(f"/proc/{proc[0]}") or _zombie(proc[0]), 20):
            break
    stop(proc)


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def stop(proc):
    """Waits for the process (or the helper it was started through) to end."""
    handle = proc[1]
    if isinstance(handle, subprocess.Popen):
        try:
            if handle.stdin:
                handle.stdin.close()
            handle.wait(60)
        except subprocess.TimeoutExpired:
            handle.kill()
            handle.wait()
