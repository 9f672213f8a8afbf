"""Rootcoord takeover side by side: two rootcoords of one implementation in active-standby
on one etcd (their own root path), TTL as given; the active is sent SIGTERM (graceful) or
SIGKILL (crash) and the time until the standby answers GetComponentStates with Healthy
is measured (polled every 2 ms); the signalled one is restarted and waited for as
standby before the next round. Used by compare.py.
"""
import json
import os
import signal
import subprocess
import sys
import time

import grpc
from pymilvus.grpc_gen import milvus_pb2

HEALTHY, STANDBY = 1, 3


def state(port, timeout=0.5):
    """The state code a rootcoord reports (None when it does not answer)."""
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            call = ch.unary_unary(
                "/milvus.proto.rootcoord.RootCoord/GetComponentStates",
                request_serializer=milvus_pb2.GetComponentStatesRequest.SerializeToString,
                response_deserializer=milvus_pb2.ComponentStates.FromString,
            )
            r = call(milvus_pb2.GetComponentStatesRequest(), timeout=timeout)
            return r.state.state_code
    except grpc.RpcError:
        return None


def wait_state(port, want, limit):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if state(port) == want:
            return True
        time.sleep(0.05)
    return False


class Pair:
    """Two rootcoords; `start(i)` returns (pid, handle) for slot i on its port."""

    def __init__(self, start, ports):
        self.start, self.ports = start, ports
        self.procs = [None, None]

    def launch(self, i):
        self.procs[i] = self.start(i)

    def pid(self, i):
        return self.procs[i][0]

    def active(self):
        for i in (0, 1):
            if state(self.ports[i]) == HEALTHY:
                return i
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


def measure(pair, terms, kills, ttl):
    """Runs the takeovers; returns {"sigterm_ms": [...], "sigkill_ms": [...], "idle_rss_mib": x}."""
    pair.launch(0)
    if not wait_state(pair.ports[0], HEALTHY, 120):
        raise SystemExit("the first rootcoord did not become Healthy")
    pair.launch(1)
    if not wait_state(pair.ports[1], STANDBY, 120):
        raise SystemExit("the second rootcoord did not become StandBy")
    time.sleep(2)
    idle = rss_mib(pair.pid(0)) + rss_mib(pair.pid(1))
    out = {"sigterm_ms": [], "sigkill_ms": [], "idle_rss_mib": round(idle, 1)}
    for sig, n, key in ((signal.SIGTERM, terms, "sigterm_ms"), (signal.SIGKILL, kills, "sigkill_ms")):
        for _ in range(n):
            a = pair.active()
            if a is None:
                raise SystemExit("no active rootcoord")
            b = 1 - a
            if not wait_state(pair.ports[b], STANDBY, 60):
                raise SystemExit("the other rootcoord is not StandBy")
            t = time.monotonic()
            os.kill(pair.pid(a), sig)
            limit = t + 3 * ttl + 30
            while time.monotonic() < limit:
                if state(pair.ports[b], timeout=0.2) == HEALTHY:
                    break
                time.sleep(0.002)
            else:
                raise SystemExit(f"no takeover after {sig.name}")
            out[key].append(round((time.monotonic() - t) * 1000, 1))
            # Reap the old one, restart it as the standby.
            try:
                os.waitpid(pair.pid(a), 0)
            except ChildProcessError:
                pass
            stop(pair.procs[a])
            pair.launch(a)
            if not wait_state(pair.ports[a], STANDBY, 120):
                raise SystemExit("a restarted rootcoord did not become StandBy")
    for i in (0, 1):
        os.kill(pair.pid(i), signal.SIGTERM)
        stop(pair.procs[i])
    return out


def stop(proc):
    """Ends the helper a rootcoord was started through (if any)."""
    handle = proc[1]
    if isinstance(handle, subprocess.Popen):
        try:
            if handle.stdin:
                handle.stdin.close()
            handle.wait(60)
        except subprocess.TimeoutExpired:
            handle.kill()
            handle.wait()


if __name__ == "__main__":
    print(json.dumps({"state": state(int(sys.argv[1]))}))
