"""Users, passwords and privileges through pymilvus 2.5.18 and the REST API, against a
cluster with common.security.authorizationEnabled: run by tests/security.rs.

    python security_client.py auth URI          # credentials; leaves root's password "Milvus2"
    python security_client.py rbac URI          # roles and grants; alice reads A only
    python security_client.py grants URI        # after a rootcoord failover: grants hold
    python security_client.py rest URI          # REST: Bearer tokens and privileges
    python security_client.py tls PORT MODE CERT_DIR [TOKEN]   # tlsMode 1 or 2 on the proxy's port
    python security_client.py internal PORT COORD_PORT CERT_DIR TOKEN
        # every link encrypted: the quick start through tlsMode 2 with a user, and a
        # coordinator's port refusing callers without the cluster certificate

Exits 0 when every check passes; prints what failed otherwise.
"""
import json
import sys
import time
import urllib.error
import urllib.request

import numpy as np
from pymilvus import MilvusClient, MilvusException

from pymilvus_client import check, expect_error

ROOT_PW = "Milvus2"


def refused(what, fn, *needles):
    """fn fails: with a MilvusException (whose code and message hold the needles) or a
    gRPC error (whose details do); returns the error text."""
    try:
        fn()
    except MilvusException as e:
        text = f"{e.code} {e.message}"
    except Exception as e:  # grpc.RpcError from the channel itself
        text = f"{type(e).__name__} {e}"
    else:
        raise AssertionError(f"{what}: no error")
    for n in needles:
        check(n in text, f"{what}: {n!r} not in {text!r}")
    return text


def connect(uri, user=None, password=None, token=None):
    """A client; with user and password, as a token: pymilvus keeps one connection per
    uri and user, whatever the password, but one per token."""
    kw = {}
    if token is not None:
        kw["token"] = token
    elif user is not None:
        kw["token"] = f"{user}:{password}"
    return MilvusClient(uri=uri, timeout=10, **kw)


def auth(uri):
    refused("no credentials", lambda: connect(uri).list_collections(), "auth")
    refused("user= and password=", lambda: MilvusClient(uri=uri, user="root", password="wrong1"),
            "auth check failure")
    refused("wrong password", lambda: connect(uri, "root", "wrong1").list_collections(), "auth check failure")
    refused("unknown user", lambda: connect(uri, "nobody", "Milvus").list_collections(), "auth check failure")
    root = connect(uri, "root", "Milvus")
    check(isinstance(root.list_collections(), list), "root lists collections")
    check(isinstance(connect(uri, token="root:Milvus").list_collections(), list), "a user:password token works")
    # Milvus's rules for names and passwords.
    expect_error("short password", lambda: root.create_user("alice", "12345"), "1100", "password")
    expect_error("long password", lambda: root.create_user("alice", "x" * 257), "1100", "password")
    expect_error("digit first", lambda: root.create_user("1alice", "123456"), "1100", "first character")
    expect_error("bad character", lambda: root.create_user("al ice", "123456"), "1100", "user name")
    expect_error("too long", lambda: root.create_user("a" * 33, "123456"), "1100", "length")
    root.create_user("alice", "alice-pw")
    expect_error("existing user", lambda: root.create_user("alice", "alice-pw"), "already exist")
    users = root.list_users()
    check(set(users) >= {"root", "alice"}, f"list_users: {users}")
    check(isinstance(connect(uri, "alice", "alice-pw").list_collections(), list), "alice signs in")
    # A user changes its own password; the old one stops working at once.
    alice = connect(uri, "alice", "alice-pw")
    expect_error("wrong old password", lambda: alice.update_password("alice", "nope-nope", "alice-pw2"),
                 "old password not correct")
    alice.update_password("alice", "alice-pw", "alice-pw2")
    refused("alice's old password", lambda: connect(uri, "alice", "alice-pw").list_collections(), "auth check failure")
    check(isinstance(connect(uri, "alice", "alice-pw2").list_collections(), list), "alice's new password")
    # root cannot be dropped; root changes its own password.
    expect_error("drop root", lambda: root.drop_user("root"), "root")
    root.update_password("root", "Milvus", ROOT_PW)
    refused("root's old password", lambda: connect(uri, "root", "Milvus").list_collections(), "auth check failure")
    root = connect(uri, "root", ROOT_PW)
    root.create_user("temp", "temp-pw1")
    root.drop_user("temp")
    refused("a dropped user", lambda: connect(uri, "temp", "temp-pw1").list_collections(), "auth check failure")
    print("auth: all checks passed")


def make(client, name, n=200):
    if client.has_collection(name):
        client.drop_collection(name)
    client.create_collection(name, dimension=8, consistency_level="Strong")
    rng = np.random.default_rng(7)
    rows = [{"id": i, "vector": v} for i, v in enumerate(rng.random((n, 8), dtype=np.float32).tolist())]
    client.insert(name, rows)


def rbac(uri):
    root = connect(uri, "root", ROOT_PW)
    make(root, "A")
    make(root, "B")
    root.create_role("reader")
    expect_error("existing role", lambda: root.create_role("reader"), "already exist")
    for p in ["Search", "Query"]:
        root.grant_privilege("reader", "Collection", p, "A")
    expect_error("unknown privilege", lambda: root.grant_privilege("reader", "Collection", "Fly", "A"), "privilege")
    expect_error("unknown object type", lambda: root.grant_privilege("reader", "Table", "Search", "A"), "object type")
    root.grant_role("alice", "reader")
    info = root.describe_user("alice")
    check("reader" in list(info.get("roles", [])), f"describe_user: {info}")
    role = root.describe_role("reader")
    privileges = sorted((g["object_name"], g["privilege"]) for g in role["privileges"])
    check(privileges == [("A", "Query"), ("A", "Search")], f"describe_role: {role}")
    check("reader" in root.list_roles(), f"list_roles: {root.list_roles()}")
    # Revoking what is not held succeeds at once, as in Milvus.
    root.create_role("other")
    started = time.monotonic()
    root.revoke_role("alice", "other")
    root.revoke_privilege("reader", "Collection", "Delete", "A")
    took = time.monotonic() - started
    print(f"two revokes of what is not held took {took:.2f} s")
    root.drop_role("other")
    expect_error("drop admin", lambda: root.drop_role("admin"), "admin")
    expect_error("drop a role with grants", lambda: root.drop_role("reader"), "privilege")
    alice_can_read_a_only(uri)
    print("rbac: all checks passed")


def alice_can_read_a_only(uri):
    alice = connect(uri, "alice", "alice-pw2")
    q = [[0.5] * 8]
    hits = alice.search("A", data=q, limit=3)
    check(len(hits[0]) == 3, f"alice searches A: {hits}")
    rows = alice.query("A", filter="id < 5")
    check(len(rows) == 5, f"alice queries A: {rows}")
    refused("alice inserts into A", lambda: alice.insert("A", [{"id": 1000, "vector": [0.1] * 8}]),
            "permission deny", "Insert")
    refused("alice searches B", lambda: alice.search("B", data=q, limit=3), "permission deny", "Search")
    refused("alice creates a user", lambda: alice.create_user("mallory", "123456"), "permission deny")
    refused("alice drops A", lambda: alice.drop_collection("A"), "permission deny")
    refused("alice grants herself", lambda: alice.grant_role("alice", "admin"), "permission deny")
    root = connect(uri, "root", ROOT_PW)
    check(root.query("A", filter="id >= 1000") == [], "nothing alice was refused was written")
    check(root.has_collection("A"), "A is still there")


def grants(uri):
    alice_can_read_a_only(uri)
    print("grants: all checks passed")


def rest(uri):
    base = uri.replace("grpc://", "http://")

    def post(path, body, token=None):
        req = urllib.request.Request(f"{base}/v2/vectordb/{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    r = post("collections/list", {})
    check(r["code"] == 1800, f"REST without a token: {r}")
    r = post("collections/list", {}, "root:wrong")
    check(r["code"] == 1800, f"REST with a wrong password: {r}")
    r = post("collections/list", {}, f"root:{ROOT_PW}")
    check(r["code"] == 0 and "A" in r["data"], f"REST as root: {r}")
    r = post("entities/query", {"collectionName": "A", "filter": "id < 3"}, "alice:alice-pw2")
    check(r["code"] == 0 and len(r["data"]) == 3, f"REST query as alice: {r}")
    r = post("entities/insert", {"collectionName": "A", "data": [{"id": 2000, "vector": [0.1] * 8}]},
             "alice:alice-pw2")
    check(r["code"] == 1401 and "permission deny" in r["message"], f"REST insert as alice: {r}")
    print("rest: all checks passed")


def tls(port, mode, certs, token=None):
    """The quick start over TLS; plain gRPC and REST refused, plain probes answered.
    With a token (authorization on), every call carries it."""
    import base64
    import os
    import ssl
    import grpc
    uri = f"https://localhost:{port}"
    ca = os.path.join(certs, "ca.pem")
    kw = {"server_name": "localhost"}
    if token:
        kw["token"] = token
    metadata = [("authorization", base64.b64encode(token.encode()).decode())] if token else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if mode == "1":
        kw.update(server_pem_path=ca)
    else:
        kw.update(ca_pem_path=ca, client_pem_path=os.path.join(certs, "client.pem"),
                  client_key_path=os.path.join(certs, "client.key"))
    client = MilvusClient(uri=uri, timeout=15, **kw)
    if client.has_collection("tls"):
        client.drop_collection("tls")
    client.create_collection("tls", dimension=8, consistency_level="Strong")
    rng = np.random.default_rng(3)
    rows = [{"id": i, "vector": v} for i, v in enumerate(rng.random((100, 8), dtype=np.float32).tolist())]
    check(client.insert("tls", rows)["insert_count"] == 100, "insert over TLS")
    hits = client.search("tls", data=[rows[7]["vector"]], limit=3)
    check(hits[0][0]["id"] == 7, f"search over TLS: {hits}")
    check(len(client.query("tls", filter="id < 10")) == 10, "query over TLS")
    client.flush("tls")
    check(client.get_collection_stats("tls")["row_count"] == 100, "row count after a flush over TLS")
    # Plain gRPC on the same port: never served.
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    from pymilvus.grpc_gen import milvus_pb2, milvus_pb2_grpc
    stub = milvus_pb2_grpc.MilvusServiceStub(channel)
    try:
        stub.ShowCollections(milvus_pb2.ShowCollectionsRequest(), timeout=5)
        check(False, "a plain gRPC call was answered")
    except grpc.RpcError as e:
        print(f"plain gRPC refused: {e.code()}")
    # REST over https works; plain REST is not served; plain probes answer.
    ctx = ssl.create_default_context(cafile=ca)
    if mode == "2":
        ctx.load_cert_chain(os.path.join(certs, "client.pem"), os.path.join(certs, "client.key"))
    req = urllib.request.Request(f"https://localhost:{port}/v2/vectordb/collections/list", data=b"{}",
                                 headers=headers)
    with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
        body = json.loads(r.read())
    check(body["code"] == 0 and "tls" in body["data"], f"REST over https: {body}")
    try:
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/v2/vectordb/collections/list",
                                                      data=b"{}"), timeout=10)
        check(False, "plain REST was served")
    except urllib.error.HTTPError as e:
        check(e.code == 404, f"plain REST: HTTP {e.code}")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
        check(r.status == 200, "plain /healthz")
    if mode == "2":
        # No client certificate, or one of another CA: refused at the handshake (raw
        # channels: pymilvus would reuse its open connection for the same uri).
        def read(p):
            with open(os.path.join(certs, p), "rb") as f:
                return f.read()
        for what, creds in [("no client certificate", grpc.ssl_channel_credentials(read("ca.pem"))),
                            ("an untrusted client certificate",
                             grpc.ssl_channel_credentials(read("ca.pem"), read("rogue.key"), read("rogue.pem")))]:
            stub = milvus_pb2_grpc.MilvusServiceStub(grpc.secure_channel(f"localhost:{port}", creds))
            try:
                stub.ShowCollections(milvus_pb2.ShowCollectionsRequest(), timeout=5)
                check(False, f"{what}: answered")
            except grpc.RpcError as e:
                check(e.code() == grpc.StatusCode.UNAVAILABLE, f"{what}: {e.code()} {e.details()}")
                print(f"{what}: refused ({e.code()})")
        good = grpc.ssl_channel_credentials(read("ca.pem"), read("client.key"), read("client.pem"))
        stub = milvus_pb2_grpc.MilvusServiceStub(grpc.secure_channel(f"localhost:{port}", good))
        r = stub.ShowCollections(milvus_pb2.ShowCollectionsRequest(), timeout=5, metadata=metadata)
        check("tls" in list(r.collection_names), f"raw channel with the client certificate: {r}")
    print("tls: all checks passed")


def internal(port, coord_port, certs, token):
    """Every link encrypted: the quick start through the proxy (tlsMode 2, a user), and
    a coordinator's internal port: not served in the clear, refused at the handshake
    without the cluster certificate, served with it."""
    import os
    import grpc
    from pymilvus.grpc_gen import milvus_pb2
    tls(port, "2", certs, token)

    def read(p):
        with open(os.path.join(certs, p), "rb") as f:
            return f.read()
    method = "/milvus.proto.rootcoord.RootCoord/GetComponentStates"
    request = milvus_pb2.GetComponentStatesRequest().SerializeToString()

    def call(channel):
        return channel.unary_unary(method)(request, timeout=5)
    try:
        call(grpc.insecure_channel(f"127.0.0.1:{coord_port}"))
        check(False, "a coordinator answered a plain gRPC call")
    except grpc.RpcError as e:
        print(f"coordinator, plain gRPC: {e.code()}")
    for what, creds in [("no certificate", grpc.ssl_channel_credentials(read("ca.pem"))),
                        ("a client certificate of another CA",
                         grpc.ssl_channel_credentials(read("ca.pem"), read("rogue.key"), read("rogue.pem"))),
                        # A user's certificate of the cluster CA: valid, but not for the
                        # cluster's name (internaltls.sni).
                        ("a user's client certificate of the cluster CA",
                         grpc.ssl_channel_credentials(read("ca.pem"), read("client.key"), read("client.pem")))]:
        try:
            call(grpc.secure_channel(f"localhost:{coord_port}", creds))
            check(False, f"coordinator, {what}: answered")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.UNAVAILABLE, f"coordinator, {what}: {e.code()} {e.details()}")
            print(f"coordinator, {what}: refused ({e.code()})")
    cluster = grpc.ssl_channel_credentials(read("ca.pem"), read("server.key"), read("server.pem"))
    states = milvus_pb2.ComponentStates.FromString(call(grpc.secure_channel(f"localhost:{coord_port}", cluster)))
    check(states.state.role == "rootcoord", f"coordinator with the cluster certificate: {states}")
    print("internal: all checks passed")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "tls":
        tls(*sys.argv[2:6])
    elif mode == "internal":
        internal(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        {"auth": auth, "rbac": rbac, "grants": grants, "rest": rest}[mode](sys.argv[2])
