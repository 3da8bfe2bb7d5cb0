#!/usr/bin/env python3
"""Honesty check for fake_mongo.py: drive it with the official driver (pymongo).

Run: /root/.cache/lockwatch-venv/bin/python tests/support/fake_mongo_check.py
Exit status 0 = every scenario passed.
"""
import json
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import bson
import pymongo
from pymongo.errors import AutoReconnect, OperationFailure, ServerSelectionTimeoutError

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake_mongo.py")
TMP = tempfile.mkdtemp(prefix="fake_mongo_check_")

LOCKWATCH = {"db": "admin", "user": "lockwatch", "password": "pw", "mechanisms": ["SCRAM-SHA-256"],
             "roles": [{"role": "clusterMonitor", "db": "admin"}]}
SHA1ONLY = {"db": "admin", "user": "legacy", "password": "old-secret", "mechanisms": ["SCRAM-SHA-1"],
            "roles": [{"role": "clusterMonitor", "db": "admin"}]}
BOTH = {"db": "admin", "user": "both", "password": "b0th", "mechanisms": ["SCRAM-SHA-1", "SCRAM-SHA-256"],
        "roles": [{"role": "root", "db": "admin"}]}
READER = {"db": "admin", "user": "reader", "password": "r", "mechanisms": ["SCRAM-SHA-256"],
          "roles": [{"role": "read", "db": "events"}]}
USERADMIN = {"db": "admin", "user": "uadmin", "password": "u", "mechanisms": ["SCRAM-SHA-256"],
             "roles": [{"role": "userAdminAnyDatabase", "db": "admin"}]}
BASE_STATE = {"users": [LOCKWATCH, SHA1ONLY, BOTH, READER, USERADMIN]}


def write_state(path, state):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, path)


class Server:
    def __init__(self, state, name, tls=None):
        self.state_path = os.path.join(TMP, name + ".json")
        self.log_path = os.path.join(TMP, name + ".log")
        write_state(self.state_path, state)
        cmd = [sys.executable, FAKE, "0", self.state_path]
        if tls:
            cmd += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True)
        r, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline() if r else ""
        if not line.startswith("ready port="):
            self.stop()
            raise RuntimeError("fake_mongo did not start: %r" % line)
        self.port = int(line.strip().split("=", 1)[1])

    def set_state(self, state):
        write_state(self.state_path, state)

    def stderr(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)
        self.log.close()


def client(port, **kw):
    kw.setdefault("serverSelectionTimeoutMS", 5000)
    kw.setdefault("directConnection", True)
    return pymongo.MongoClient("mongodb://127.0.0.1:%d/" % port, **kw)


def expect_failure(fn, code):
    try:
        fn()
    except OperationFailure as e:
        assert e.code == code, "expected code %d, got %r (%s)" % (code, e.code, e.details)
        return e
    raise AssertionError("expected OperationFailure code %d, got success" % code)


# ---------------------------------------------------------------------------
def s1_unauthenticated(srv):
    c = client(srv.port)
    try:
        info = c.server_info()
        assert info["version"] == "7.0.14" and info["versionArray"] == [7, 0, 14, 0], info
        assert info["ok"] == 1.0 and isinstance(info["ok"], float)
        assert c.admin.command("ping")["ok"] == 1.0
        hello = c.admin.command("hello")
        assert hello["isWritablePrimary"] is True and hello["maxWireVersion"] == 21, hello
        assert isinstance(hello["topologyVersion"]["counter"], int)
        e = expect_failure(c.list_database_names, 13)
        assert e.details["errmsg"] == "Command listDatabases requires authentication", e.details
        assert e.details["codeName"] == "Unauthorized"
        expect_failure(lambda: c.admin.command("getCmdLineOpts"), 13)
        st = c.admin.command("connectionStatus")
        assert st["authInfo"]["authenticatedUsers"] == [], st
        e = expect_failure(lambda: c.admin.command("frobnicate"), 59)
        assert e.details["errmsg"] == "no such command: 'frobnicate'", e.details
    finally:
        c.close()
    srv.set_state(dict(BASE_STATE, version="6.0.16"))
    c = client(srv.port)
    try:
        assert c.server_info()["versionArray"] == [6, 0, 16, 0]
        assert c.admin.command("hello")["maxWireVersion"] == 17
    finally:
        c.close()
        srv.set_state(BASE_STATE)


def s2_scram_sha256(srv):
    c = client(srv.port, username="lockwatch", password="pw", authSource="admin",
               authMechanism="SCRAM-SHA-256")
    try:
        assert c.list_database_names() == ["admin", "events"]
        full = c.admin.command("listDatabases")
        assert full["databases"][0] == {"name": "admin", "sizeOnDisk": 40960, "empty": False}, full
        assert isinstance(full["databases"][0]["sizeOnDisk"], bson.int64.Int64)
        assert full["totalSize"] == 40960 + 8192
        opts = c.admin.command("getCmdLineOpts")
        assert opts["parsed"]["security"]["authorization"] == "enabled", opts
        assert opts["parsed"]["net"]["bindIp"] == "127.0.0.1" and opts["parsed"]["net"]["port"] == 27017
        me = c.admin.command("usersInfo", "lockwatch")
        assert [u["_id"] for u in me["users"]] == ["admin.lockwatch"], me
        u = me["users"][0]
        assert u["mechanisms"] == ["SCRAM-SHA-256"] and u["roles"] == [{"role": "clusterMonitor", "db": "admin"}]
        assert u["userId"].subtype == 4 if isinstance(u["userId"], bson.Binary) else True
        # usersInfo: 1 lists *other* users too -> needs viewUser; clusterMonitor lacks it (as in mongod).
        e = expect_failure(lambda: c.admin.command("usersInfo", 1), 13)
        assert e.details["errmsg"].startswith("not authorized on admin to execute command { usersInfo: 1"), e.details
        gp = c.admin.command({"getParameter": 1, "authenticationMechanisms": 1})
        assert gp == {"authenticationMechanisms": ["SCRAM-SHA-1", "SCRAM-SHA-256"], "ok": 1.0}, gp
        assert c.admin.command({"getParameter": "*"})["tlsMode"] == "disabled"
        st = c.admin.command("connectionStatus")
        assert st["authInfo"]["authenticatedUsers"] == [{"user": "lockwatch", "db": "admin"}], st
        assert c.admin.command("serverStatus")["process"] == "mongod"
    finally:
        c.close()
    c = client(srv.port, username="uadmin", password="u", authSource="admin", authMechanism="SCRAM-SHA-256")
    try:
        allu = c.admin.command("usersInfo", 1)
        assert [u["user"] for u in allu["users"]] == ["lockwatch", "legacy", "both", "reader", "uadmin"], allu
        one = c.admin.command("usersInfo", {"user": "lockwatch", "db": "admin"})
        assert one["users"][0]["_id"] == "admin.lockwatch"
        every = c.admin.command("usersInfo", {"forAllDBs": True})
        assert len(every["users"]) == 5
    finally:
        c.close()
    assert "user=lockwatch db=admin mechanism=SCRAM-SHA-256" in srv.stderr()


def s3_sha1_and_negotiation(srv):
    c = client(srv.port, username="legacy", password="old-secret", authSource="admin",
               authMechanism="SCRAM-SHA-1")
    try:
        assert c.list_database_names() == ["admin", "events"]
        assert "auth ok" in srv.stderr() and "user=legacy db=admin mechanism=SCRAM-SHA-1" in srv.stderr()
    finally:
        c.close()
    c = client(srv.port, username="both", password="b0th", authSource="admin")  # no authMechanism
    try:
        assert c.admin.command("usersInfo", 1)["ok"] == 1.0  # root
        assert "user=both db=admin mechanism=SCRAM-SHA-256" in srv.stderr()
        assert "user=both db=admin mechanism=SCRAM-SHA-1" not in srv.stderr()
    finally:
        c.close()
    c = client(srv.port, username="legacy", password="old-secret", authSource="admin")  # negotiates SHA-1
    try:
        c.admin.command("getCmdLineOpts")
    finally:
        c.close()
    # A mechanism the user has no credentials for fails like a bad password.
    c = client(srv.port, username="legacy", password="old-secret", authSource="admin",
               authMechanism="SCRAM-SHA-256")
    try:
        expect_failure(c.list_database_names, 18)
    finally:
        c.close()


def s4_wrong_password(srv):
    for mech, user in (("SCRAM-SHA-256", "lockwatch"), ("SCRAM-SHA-1", "legacy"), ("SCRAM-SHA-256", "ghost")):
        c = client(srv.port, username=user, password="nope", authSource="admin", authMechanism=mech)
        try:
            e = expect_failure(c.list_database_names, 18)
            assert e.details == {"ok": 0.0, "errmsg": "Authentication failed.", "code": 18,
                                 "codeName": "AuthenticationFailed"}, e.details
        finally:
            c.close()


def s5_authorization_disabled(srv):
    srv.set_state(dict(BASE_STATE, authorization="disabled"))
    try:
        c = client(srv.port)
        try:
            assert c.list_database_names() == ["admin", "events"]
            opts = c.admin.command("getCmdLineOpts")
            assert "security" not in opts["parsed"], opts
            assert c.admin.command("usersInfo", 1)["ok"] == 1.0
        finally:
            c.close()
        srv.set_state(dict(BASE_STATE, authorization="disabled", keyFile="/etc/mongo.key"))
        c = client(srv.port)
        try:
            # keyFile implies access control in mongod even without security.authorization.
            expect_failure(c.list_database_names, 13)
        finally:
            c.close()
        c = client(srv.port, username="lockwatch", password="pw", authSource="admin")
        try:
            assert c.admin.command("getCmdLineOpts")["parsed"]["security"] == {"keyFile": "/etc/mongo.key"}
        finally:
            c.close()
    finally:
        srv.set_state(BASE_STATE)
    c = client(srv.port)
    try:
        expect_failure(c.list_database_names, 13)  # state change seen by the live server
    finally:
        c.close()


def s6_missing_role(srv):
    c = client(srv.port, username="reader", password="r", authSource="admin")
    try:
        assert c.list_database_names() == ["admin", "events"]
        e = expect_failure(lambda: c.admin.command("getCmdLineOpts"), 13)
        msg = e.details["errmsg"]
        assert msg.startswith("not authorized on admin to execute command { getCmdLineOpts: 1"), msg
        assert msg.endswith('$db: "admin" }') and e.details["codeName"] == "Unauthorized", msg
        expect_failure(lambda: c.admin.command({"getParameter": 1, "authenticationMechanisms": 1}), 13)
        assert c.admin.command("usersInfo", "reader")["users"][0]["user"] == "reader"
        expect_failure(lambda: c.admin.command("usersInfo", "lockwatch"), 13)
    finally:
        c.close()


def make_certs():
    d = os.path.join(TMP, "pki")
    os.makedirs(d)

    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
        "-subj", "/CN=lockwatch-fake-ca", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "1", "-extfile", "ext.cnf")
    return [os.path.join(d, n) for n in ("ca.pem", "server.pem", "server.key")]


def s7_tls(_srv):
    ca, cert, key = make_certs()
    srv = Server(BASE_STATE, "tls", tls=(cert, key))
    try:
        c = client(srv.port, tls=True, tlsCAFile=ca, username="lockwatch", password="pw", authSource="admin")
        try:
            assert c.list_database_names() == ["admin", "events"]
            net = c.admin.command("getCmdLineOpts")["parsed"]["net"]
            assert net["tls"]["mode"] == "requireTLS", net
        finally:
            c.close()
        t0 = time.monotonic()
        c = client(srv.port, serverSelectionTimeoutMS=2000)
        try:
            c.admin.command("ping")
            raise AssertionError("plain client talked to a requireTLS server")
        except (ServerSelectionTimeoutError, AutoReconnect):
            assert time.monotonic() - t0 < 6, "plain client took too long to fail"
        finally:
            c.close()
        c = client(srv.port, tls=True, serverSelectionTimeoutMS=2000)  # untrusted CA
        try:
            c.admin.command("ping")
            raise AssertionError("TLS client accepted an untrusted certificate")
        except (ServerSelectionTimeoutError, AutoReconnect):
            pass
        finally:
            c.close()
    finally:
        srv.stop()


def s8_concurrency(srv):
    c = client(srv.port, username="lockwatch", password="pw", authSource="admin")
    try:
        for i in range(150):
            assert c.admin.command(["ping", "getCmdLineOpts", "listDatabases"][i % 3])["ok"] == 1.0
    finally:
        c.close()
    errors, done = [], []

    def worker(n):
        try:
            kw = {} if n % 2 else {"username": "lockwatch", "password": "pw", "authSource": "admin"}
            cc = client(srv.port, maxPoolSize=4, **kw)
            try:
                for _ in range(30):
                    cc.admin.command("ping")
                    if kw:
                        assert cc.list_database_names() == ["admin", "events"]
                    else:
                        expect_failure(cc.list_database_names, 13)
            finally:
                cc.close()
            done.append(n)
        except Exception as e:  # noqa: BLE001
            errors.append("thread %d: %r" % (n, e))

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not errors, errors
    assert sorted(done) == list(range(8)), "threads hung: %r" % sorted(set(range(8)) - set(done))


def _raw_roundtrip(port, msg):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(msg)
        hdr = b""
        while len(hdr) < 16:
            chunk = s.recv(16 - len(hdr))
            if not chunk:
                return None, None
            hdr += chunk
        length, _, resp_to, op = struct.unpack("<iiii", hdr)
        body = b""
        while len(body) < length - 16:
            body += s.recv(length - 16 - len(body))
        return op, body
    finally:
        s.close()


def s9_raw_wire(srv):
    # Legacy OP_QUERY isMaster -> OP_REPLY.
    q = struct.pack("<i", 0) + b"admin.$cmd\x00" + struct.pack("<ii", 0, -1) + bson.encode({"isMaster": 1, "helloOk": True})
    op, body = _raw_roundtrip(srv.port, struct.pack("<iiii", 16 + len(q), 7, 0, 2004) + q)
    assert op == 1, op
    flags, cursor, start, n = struct.unpack_from("<iqii", body)
    doc = bson.decode(body[20:])
    assert n == 1 and doc["ismaster"] is True and doc["helloOk"] is True and doc["ok"] == 1.0, doc
    # OP_QUERY for anything else is refused (MongoDB 6.0+).
    q = struct.pack("<i", 0) + b"admin.$cmd\x00" + struct.pack("<ii", 0, -1) + bson.encode({"listDatabases": 1})
    op, body = _raw_roundtrip(srv.port, struct.pack("<iiii", 16 + len(q), 8, 0, 2004) + q)
    assert op == 1 and bson.decode(body[20:])["code"] == 352
    # OP_MSG with checksum flag and a kind-1 document sequence.
    m = struct.pack("<I", 1) + b"\x00" + bson.encode({"ping": 1, "$db": "admin"})
    seq = b"documents\x00" + bson.encode({"a": 1}) + bson.encode({"b": 2})
    m += b"\x01" + struct.pack("<i", 4 + len(seq)) + seq + b"\x00\x00\x00\x00"
    op, body = _raw_roundtrip(srv.port, struct.pack("<iiii", 16 + len(m), 9, 0, 2013) + m)
    assert op == 2013 and body[:5] == b"\x00\x00\x00\x00\x00", body[:5]
    assert bson.decode(body[5:]) == {"ok": 1.0}
    # Unknown opcode: connection closed without reply.
    op, _ = _raw_roundtrip(srv.port, struct.pack("<iiii", 20, 10, 0, 9999) + b"\x00" * 4)
    assert op is None


SCENARIOS = [
    ("1 unauthenticated: server_info ok, listDatabases code 13", s1_unauthenticated),
    ("2 SCRAM-SHA-256 as lockwatch", s2_scram_sha256),
    ("3 SCRAM-SHA-1 user + mechanism negotiation", s3_sha1_and_negotiation),
    ("4 wrong password / unknown user -> code 18", s4_wrong_password),
    ("5 authorization disabled (Meow state), live state reload", s5_authorization_disabled),
    ("6 user without clusterMonitor -> code 13", s6_missing_role),
    ("7 TLS (requireTLS)", s7_tls),
    ("8 many commands + 8 concurrent clients", s8_concurrency),
    ("9 raw wire: OP_QUERY/OP_REPLY, OP_MSG checksum + kind 1, bad opcode", s9_raw_wire),
]


def main():
    t_start = time.monotonic()
    failures = 0
    srv = Server(BASE_STATE, "main")
    try:
        for title, fn in SCENARIOS:
            t0 = time.monotonic()
            try:
                fn(srv)
                print("PASS  %-66s %5.2fs" % (title, time.monotonic() - t0), flush=True)
            except Exception:  # noqa: BLE001
                failures += 1
                print("FAIL  %s\n%s" % (title, traceback.format_exc()), flush=True)
        if srv.proc.poll() is not None:
            failures += 1
            print("FAIL  fake_mongo exited early (rc=%s)" % srv.proc.returncode)
        if "internal error" in srv.stderr():
            failures += 1
            print("FAIL  fake_mongo logged internal errors:\n" + srv.stderr())
    finally:
        srv.stop()
    print("%d/%d scenarios passed in %.1fs" % (len(SCENARIOS) - failures, len(SCENARIOS),
                                                time.monotonic() - t_start))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
