"""The Helm chart deploy/helm/milvus, checked by rendering (no Kubernetes cluster can run
here): run by tests/deploy.rs.

    python helm_chart.py HELM MILVUS_BIN CHART_DIR

`helm lint`; `helm template` with the defaults and with the coordinator-HA page's values
(every coordinator: replicas 2, activeStandby.enabled true); every rendered object
validated against the Kubernetes 1.30 schemas (kubernetes-validate, strict); assertions
on the objects; `replicas: 2` without active-standby refused with the reason; the
rendered milvus.yaml + user.yaml + a pod's environment loaded by `milvus dry-run`.
Exits 0 when every check passes; prints what failed otherwise.
"""
import os
import subprocess
import sys
import tempfile

import kubernetes_validate
import yaml

K8S = "1.30.0"
COORDS = {"rootCoordinator": ("rootcoord", "ROOT_COORD", 53100),
          "dataCoordinator": ("datacoord", "DATA_COORD", 13333),
          "queryCoordinator": ("querycoord", "QUERY_COORD", 19531),
          "indexCoordinator": ("indexcoord", "INDEX_COORD", 31000)}
WORKERS = {"proxy": ("proxy", "PROXY", 19530), "queryNode": ("querynode", "QUERY_NODE", 21123),
           "dataNode": ("datanode", "DATA_NODE", 21124), "indexNode": ("indexnode", "INDEX_NODE", 21121)}

# The coordinator-HA page's snippet, for each coordinator.
SEED = """
{key}:
  enabled: true
  # You can set the number of replicas greater than 1 only if you also need to set activeStandby.enabled to true.
  replicas: 2  # Otherwise, remove this configuration item.
  resources: {{}}
  nodeSelector: {{}}
  affinity: {{}}
  tolerations: []
  extraEnv: []
  heaptrack:
    enabled: false
  profiling:
    enabled: false  # Enable live profiling
  activeStandby:
    enabled: true  # Set this to true to have RootCoordinators work in active-standby mode.
"""


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def run(cmd, ok=True):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if ok and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}{p.stderr}")
    return p


def render(helm, chart, *args):
    out = run([helm, "template", "rel", chart, *args]).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    for d in docs:
        try:
            kubernetes_validate.validate(d, K8S, strict=True)
        except kubernetes_validate.ValidationError as e:
            raise AssertionError(f"{d['kind']} {d['metadata']['name']} is not a valid Kubernetes {K8S} object: {e}")
    return docs


def by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def env_of(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def check_deployments(docs, replicas, standby):
    deps = by_kind(docs, "Deployment")
    for key, (role, env, port) in {**COORDS, **WORKERS}.items():
        d = deps.get(f"rel-milvus-{role}")
        check(d is not None, f"no Deployment for {role}: {sorted(deps)}")
        want = replicas if key in COORDS else 1
        check(d["spec"]["replicas"] == want, f"{role} replicas {d['spec']['replicas']} != {want}")
        pod = d["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        check(c["command"] == ["milvus", "run", role], f"{role} command {c['command']}")
        check(c["image"] == "milvus-ha:0.1.0", f"{role} image {c['image']}")
        for probe in ("livenessProbe", "readinessProbe"):
            get = c[probe]["httpGet"]
            check(get == {"path": "/healthz", "port": port}, f"{role} {probe} {get}")
        e = env_of(c)
        # One address per pod: its own IP, from the downward API.
        check(e.get("POD_IP") == {"fieldRef": {"fieldPath": "status.podIP"}}, f"{role} POD_IP {e.get('POD_IP')}")
        check(e.get(f"{env}_ADDRESS") == f"$(POD_IP):{port}", f"{role} address {e.get(f'{env}_ADDRESS')}")
        if key in COORDS:
            check(e.get(f"{env}_ACTIVE_STANDBY_ENABLED") == str(standby).lower(),
                  f"{role} active-standby env {e.get(f'{env}_ACTIVE_STANDBY_ENABLED')}")
            strategy = d["spec"]["strategy"]["type"]
            check(strategy == ("RollingUpdate" if standby else "Recreate"), f"{role} strategy {strategy}")
        mounts = {m["mountPath"]: m["subPath"] for m in c["volumeMounts"]}
        check(mounts == {"/milvus/configs/milvus.yaml": "milvus.yaml", "/milvus/configs/user.yaml": "user.yaml"},
              f"{role} mounts {mounts}")
    return deps


def check_services(docs):
    svcs = by_kind(docs, "Service")
    check(svcs["rel-milvus"]["spec"]["ports"][0]["port"] == 19530, "proxy Service port")
    check(svcs["rel-milvus"]["spec"]["selector"]["component"] == "proxy", "proxy Service selector")
    for key, (role, _, port) in COORDS.items():
        s = svcs.get(f"rel-milvus-{role}")
        check(s is not None and s["spec"]["ports"][0]["targetPort"] == port, f"no Service for {role}")


def dry_run(milvus, docs, role, env_prefix, port):
    """The ConfigMap's files as a pod sees them, with the pod's environment, through the
    binary's own configuration loader."""
    cm = by_kind(docs, "ConfigMap")["rel-milvus"]["data"]
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "configs"))
        for name, text in cm.items():
            with open(os.path.join(d, "configs", name), "w") as f:
                f.write(text)
        env = {"PATH": os.environ.get("PATH", ""), f"{env_prefix}_ADDRESS": f"10.0.0.7:{port}",
               f"{env_prefix}_ACTIVE_STANDBY_ENABLED": "true"}
        p = subprocess.run([milvus, "dry-run", role], cwd=d, env=env, capture_output=True, text=True)
        check(p.returncode == 0, f"dry-run {role} exited {p.returncode}: {p.stdout}{p.stderr}")
        return p.stdout


def main():
    helm, milvus, chart = sys.argv[1:4]
    run([helm, "lint", "--strict", chart])

    # Defaults: one of everything, no active-standby.
    docs = render(helm, chart)
    check_deployments(docs, 1, False)
    check_services(docs)
    cm = by_kind(docs, "ConfigMap")["rel-milvus"]["data"]
    config = yaml.safe_load(cm["milvus.yaml"])
    check(config["etcd"]["endpoints"] == ["localhost:2379"], f"etcd endpoints {config['etcd']}")
    check(config["rootCoord"]["activeStandby"]["enabled"] is False, "default active-standby off")
    check("user.yaml" in cm, "extraConfigFiles user.yaml in the ConfigMap")

    with tempfile.TemporaryDirectory() as d:
        # The seed's values for every coordinator, plus an external etcd and a user.yaml.
        seed = os.path.join(d, "values.yaml")
        with open(seed, "w") as f:
            for key in COORDS:
                f.write(SEED.format(key=key))
            f.write("externalEtcd:\n  endpoints: [etcd-0.etcd:2379, etcd-1.etcd:2379]\n")
            f.write("extraConfigFiles:\n  user.yaml: |+\n    common:\n      session:\n        ttl: 5\n")
        run([helm, "lint", "--strict", chart, "-f", seed])
        docs = render(helm, chart, "-f", seed)
        check_deployments(docs, 2, True)
        check_services(docs)
        cm = by_kind(docs, "ConfigMap")["rel-milvus"]["data"]
        config = yaml.safe_load(cm["milvus.yaml"])
        for key, (role, env, port) in COORDS.items():
            section = {"rootcoord": "rootCoord", "datacoord": "dataCoord", "querycoord": "queryCoord",
                       "indexcoord": "indexCoord"}[role]
            check(config[section]["activeStandby"]["enabled"] is True, f"{section} active-standby in milvus.yaml")
            out = dry_run(milvus, docs, role, env, port)
            check("active standby: enabled" in out, f"dry-run {role}:\n{out}")
            check("10.0.0.7:%d" % port in out, f"dry-run {role} address:\n{out}")
            check("config file over it: configs/user.yaml" in out, f"dry-run {role} user.yaml:\n{out}")
            check("common.session.ttl = 5 (file configs/user.yaml)" in out, f"dry-run {role} ttl:\n{out}")
        check(config["etcd"]["endpoints"] == ["etcd-0.etcd:2379", "etcd-1.etcd:2379"], "external etcd endpoints")

        # replicas: 2 without active-standby: refused, saying why.
        p = run([helm, "template", "rel", chart, "--set", "queryCoordinator.replicas=2"], ok=False)
        check(p.returncode != 0, "replicas 2 without active-standby rendered")
        check("queryCoordinator.replicas is 2 but queryCoordinator.activeStandby.enabled is false" in p.stderr,
              f"refusal message: {p.stderr}")
        # A subchart this chart does not have: refused, saying why.
        p = run([helm, "template", "rel", chart, "--set", "etcd.enabled=true"], ok=False)
        check(p.returncode != 0 and "this chart deploys no etcd subchart" in p.stderr, f"etcd.enabled: {p.stderr}")
    print("helm chart: every check passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}")
        sys.exit(1)
