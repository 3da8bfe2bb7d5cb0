#!/usr/bin/env python3
"""Protocol-faithful MongoDB 6.0/7.0 stand-in for lockwatch tests.

Usage: fake_mongo.py PORT STATE_JSON [--tls-cert CERT --tls-key KEY]

Standard library only.  Speaks OP_MSG (+ legacy OP_QUERY hello on admin.$cmd,
answered with OP_REPLY), SCRAM-SHA-1/SCRAM-SHA-256, and a handful of
admin commands.  STATE_JSON is re-read for every command.  See FAKE_MONGO.md.
"""
import base64
import datetime
import hashlib
import hmac
import json
import os
import select
import socket
import ssl
import struct
import sys
import threading
import time
import uuid

# --------------------------------------------------------------------------
# BSON
# --------------------------------------------------------------------------


class Int64(int):
    """An int that is always encoded as BSON int64."""


class Binary(bytes):
    """bytes with an explicit BSON binary subtype (plain bytes = subtype 0)."""

    def __new__(cls, data, subtype=0):
        obj = super().__new__(cls, data)
        obj.subtype = subtype
        return obj


class ObjectId:
    _counter = int.from_bytes(os.urandom(3), "big")
    _rand = os.urandom(5)
    _lock = threading.Lock()

    def __init__(self, raw=None):
        if raw is None:
            with ObjectId._lock:
                ObjectId._counter = (ObjectId._counter + 1) & 0xFFFFFF
                c = ObjectId._counter
            raw = struct.pack(">I", int(time.time()) & 0xFFFFFFFF) + self._rand + c.to_bytes(3, "big")
        assert len(raw) == 12
        self.raw = bytes(raw)

    def __eq__(self, other):
        return isinstance(other, ObjectId) and other.raw == self.raw

    def __hash__(self):
        return hash(self.raw)

    def __repr__(self):
        return "ObjectId('%s')" % self.raw.hex()


class Timestamp:
    def __init__(self, time_, inc):
        self.time, self.inc = time_, inc

    def __repr__(self):
        return "Timestamp(%d, %d)" % (self.time, self.inc)


class Raw:
    """An undecoded value of a BSON type we do not model (kept opaque)."""

    def __init__(self, type_byte, data):
        self.type_byte, self.data = type_byte, data

    def __repr__(self):
        return "Raw(0x%02x)" % self.type_byte


class BSONError(ValueError):
    pass


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def _cstring(s):
    b = s.encode("utf-8")
    if b"\x00" in b:
        raise BSONError("key contains NUL")
    return b + b"\x00"


def _encode_element(key, v):
    k = _cstring(key)
    if isinstance(v, bool):
        return b"\x08" + k + (b"\x01" if v else b"\x00")
    if isinstance(v, float):
        return b"\x01" + k + struct.pack("<d", v)
    if isinstance(v, str):
        b = v.encode("utf-8")
        return b"\x02" + k + struct.pack("<i", len(b) + 1) + b + b"\x00"
    if isinstance(v, dict):
        return b"\x03" + k + encode(v)
    if isinstance(v, (list, tuple)):
        return b"\x04" + k + encode({str(i): x for i, x in enumerate(v)})
    if isinstance(v, (bytes, bytearray)):
        sub = getattr(v, "subtype", 0)
        return b"\x05" + k + struct.pack("<iB", len(v), sub) + bytes(v)
    if isinstance(v, uuid.UUID):
        return b"\x05" + k + struct.pack("<iB", 16, 4) + v.bytes
    if isinstance(v, ObjectId):
        return b"\x07" + k + v.raw
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        ms = (v - _EPOCH) // datetime.timedelta(milliseconds=1)
        return b"\x09" + k + struct.pack("<q", ms)
    if v is None:
        return b"\x0a" + k
    if isinstance(v, Int64):
        return b"\x12" + k + struct.pack("<q", v)
    if isinstance(v, int):
        if -(2 ** 31) <= v < 2 ** 31:
            return b"\x10" + k + struct.pack("<i", v)
        return b"\x12" + k + struct.pack("<q", v)
    if isinstance(v, Timestamp):
        return b"\x11" + k + struct.pack("<II", v.inc, v.time)
    if isinstance(v, Raw):
        return bytes([v.type_byte]) + k + v.data
    raise BSONError("cannot encode %r" % type(v))


def encode(doc):
    body = b"".join(_encode_element(str(k), v) for k, v in doc.items())
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def _read_cstring(buf, pos):
    end = buf.index(b"\x00", pos)
    return buf[pos:end].decode("utf-8"), end + 1


def decode(buf, pos=0, as_array=False):
    """Decode one document starting at pos. Returns (value, new_pos)."""
    if len(buf) - pos < 5:
        raise BSONError("short document")
    (size,) = struct.unpack_from("<i", buf, pos)
    end = pos + size
    if size < 5 or end > len(buf) or buf[end - 1] != 0:
        raise BSONError("bad document length")
    out = {}
    p = pos + 4
    while p < end - 1:
        t = buf[p]
        key, p = _read_cstring(buf, p + 1)
        if t == 0x01:
            (v,) = struct.unpack_from("<d", buf, p); p += 8
        elif t in (0x02, 0x0D, 0x0E):
            (n,) = struct.unpack_from("<i", buf, p)
            v = buf[p + 4:p + 3 + n].decode("utf-8"); p += 4 + n
            if t != 0x02:
                v = Raw(t, buf[p - 4 - n:p])
        elif t == 0x03:
            v, p = decode(buf, p)
        elif t == 0x04:
            v, p = decode(buf, p, as_array=True)
        elif t == 0x05:
            n, sub = struct.unpack_from("<iB", buf, p)
            data = bytes(buf[p + 5:p + 5 + n]); p += 5 + n
            v = uuid.UUID(bytes=data) if sub == 4 and n == 16 else Binary(data, sub)
        elif t == 0x06 or t == 0x0A or t == 0xFF or t == 0x7F:
            v = None if t in (0x06, 0x0A) else Raw(t, b"")
        elif t == 0x07:
            v = ObjectId(buf[p:p + 12]); p += 12
        elif t == 0x08:
            if buf[p] not in (0, 1):
                raise BSONError("bad bool")
            v = buf[p] == 1; p += 1
        elif t == 0x09:
            (ms,) = struct.unpack_from("<q", buf, p); p += 8
            try:
                v = _EPOCH + datetime.timedelta(milliseconds=ms)
            except OverflowError:
                v = Raw(t, buf[p - 8:p])
        elif t == 0x0B:
            _, q = _read_cstring(buf, p)
            _, q = _read_cstring(buf, q)
            v = Raw(t, bytes(buf[p:q])); p = q
        elif t == 0x10:
            (v,) = struct.unpack_from("<i", buf, p); p += 4
        elif t == 0x11:
            inc, ts = struct.unpack_from("<II", buf, p); p += 8
            v = Timestamp(ts, inc)
        elif t == 0x12:
            (v,) = struct.unpack_from("<q", buf, p); p += 8
            v = Int64(v)
        elif t == 0x13:
            v = Raw(t, bytes(buf[p:p + 16])); p += 16
        elif t == 0x0F:
            (n,) = struct.unpack_from("<i", buf, p)
            v = Raw(t, bytes(buf[p:p + n])); p += n
        elif t == 0x0C:
            (n,) = struct.unpack_from("<i", buf, p)
            v = Raw(t, bytes(buf[p:p + 4 + n + 12])); p += 4 + n + 12
        else:
            raise BSONError("unknown BSON type 0x%02x" % t)
        if p > end - 1:
            raise BSONError("element overruns document")
        out[key] = v
    if p != end - 1:
        raise BSONError("trailing garbage in document")
    if as_array:
        return list(out.values()), end
    return out, end


# --------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------

DEFAULT_STATE = {
    "version": "7.0.14",
    "authorization": "enabled",
    "bindIp": "127.0.0.1",
    "port": 27017,
    "tls_mode": "disabled",
    "keyFile": None,
    "authenticationMechanisms": ["SCRAM-SHA-1", "SCRAM-SHA-256"],
    "users": [{"db": "admin", "user": "lockwatch", "password": "pw",
               "mechanisms": ["SCRAM-SHA-256"],
               "roles": [{"role": "clusterMonitor", "db": "admin"}]}],
    "databases": [{"name": "admin", "sizeOnDisk": 40960, "empty": False},
                  {"name": "events", "sizeOnDisk": 8192, "empty": False}],
}

STATE_PATH = None
TLS_CONTEXT = None
START_TIME = time.time()
PROCESS_ID = ObjectId()
_conn_ids = iter(range(1, 1 << 31))
_conn_lock = threading.Lock()


def load_state():
    raw = {}
    for _ in range(20):
        try:
            with open(STATE_PATH, "r", encoding="utf-8") as f:
                raw = json.load(f)
            break
        except FileNotFoundError:
            break
        except (ValueError, OSError):
            time.sleep(0.01)  # caught a non-atomic writer mid-write; retry
    state = dict(DEFAULT_STATE)
    state.update(raw)
    if "tls_mode" not in raw:
        state["tls_mode"] = "requireTLS" if TLS_CONTEXT else "disabled"
    return state


def auth_enabled(state):
    return str(state.get("authorization", "enabled")).lower() == "enabled"


def version_info(state):
    ver = str(state.get("version", "7.0.14"))
    parts = []
    for piece in ver.split("-")[0].split("."):
        try:
            parts.append(int(piece))
        except ValueError:
            parts.append(0)
    while len(parts) < 4:
        parts.append(0)
    return ver, parts[:4]


def max_wire_version(state):
    _, va = version_info(state)
    table = {(8, 0): 25, (7, 0): 21, (6, 0): 17, (5, 0): 13, (4, 4): 9, (4, 2): 8, (4, 0): 7}
    key = (va[0], va[1])
    if key in table:
        return table[key]
    if key >= (8, 0):
        return 25
    if key >= (7, 0):
        return 21  # 7.x rapid releases: approximate
    if key >= (6, 0):
        return 17
    return 6


def find_user(state, db, user):
    for u in state.get("users", []):
        if u.get("db", "admin") == db and u.get("user") == user:
            return u
    return None


def user_roles(u):
    out = []
    for r in u.get("roles", []):
        if isinstance(r, str):
            out.append({"role": r, "db": u.get("db", "admin")})
        else:
            out.append({"role": r.get("role"), "db": r.get("db", u.get("db", "admin"))})
    return out


def user_mechanisms(u):
    return list(u.get("mechanisms", ["SCRAM-SHA-1", "SCRAM-SHA-256"]))


def user_uuid(u):
    if u.get("userId"):
        return uuid.UUID(u["userId"])
    return uuid.uuid5(uuid.NAMESPACE_URL, "lockwatch-fake-mongo:%s.%s" % (u.get("db", "admin"), u["user"]))


# --------------------------------------------------------------------------
# SCRAM (RFC 5802 / RFC 7677, MongoDB flavour)
# --------------------------------------------------------------------------

SCRAM = {
    "SCRAM-SHA-1": (hashlib.sha1, "sha1", 16, 10000),
    "SCRAM-SHA-256": (hashlib.sha256, "sha256", 28, 15000),
}
_cred_cache = {}
_cred_lock = threading.Lock()


def scram_credentials(mech, u):
    """(salt, iterations, stored_key, server_key) -- stable for the server's lifetime."""
    hfn, hname, salt_len, iters = SCRAM[mech]
    password = str(u.get("password", ""))
    key = (mech, u.get("db", "admin"), u["user"], password)
    with _cred_lock:
        if key in _cred_cache:
            return _cred_cache[key]
    if mech == "SCRAM-SHA-1":
        secret = hashlib.md5(("%s:mongo:%s" % (u["user"], password)).encode("utf-8")).hexdigest().encode()
    else:
        secret = password.encode("utf-8")  # ASCII passwords: SASLprep is identity
    salt = os.urandom(salt_len)
    salted = hashlib.pbkdf2_hmac(hname, secret, salt, iters)
    client_key = hmac.new(salted, b"Client Key", hfn).digest()
    stored_key = hfn(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hfn).digest()
    creds = (salt, iters, stored_key, server_key)
    with _cred_lock:
        _cred_cache[key] = creds
    return creds


def parse_scram(msg):
    out = {}
    for part in msg.split(","):
        if len(part) >= 2 and part[1] == "=":
            out.setdefault(part[0], part[2:])
    return out


def scram_unescape(name):
    return name.replace("=2C", ",").replace("=3D", "=")


# --------------------------------------------------------------------------
# Wire protocol
# --------------------------------------------------------------------------

OP_REPLY, OP_QUERY, OP_COMPRESSED, OP_MSG = 1, 2004, 2012, 2013
MAX_MESSAGE = 48000000
MAX_BSON = 16 * 1024 * 1024
HELLO_NAMES = ("hello", "isMaster", "ismaster")
# Commands mongod lets through before authentication.
NO_AUTH_NEEDED = {"hello", "isMaster", "ismaster", "buildInfo", "buildinfo", "ping",
                  "saslStart", "saslContinue", "getnonce", "endSessions", "connectionStatus"}
ADMIN_ONLY = {"listDatabases", "getCmdLineOpts", "getParameter"}
# Arguments drivers attach to every command; never treated as parameters.
GENERIC_ARGS = {"$db", "lsid", "$readPreference", "$clusterTime", "txnNumber", "autocommit",
                "startTransaction", "comment", "maxTimeMS", "readConcern", "writeConcern",
                "apiVersion", "apiStrict", "apiDeprecationErrors", "$audit", "$client"}

CODE_NAMES = {1: "InternalError", 2: "BadValue", 13: "Unauthorized", 17: "ProtocolError",
              18: "AuthenticationFailed", 59: "CommandNotFound", 72: "InvalidOptions",
              334: "MechanismUnavailable", 352: "UnsupportedOpQueryCommand",
              40571: "Location40571"}


class CommandError(Exception):
    def __init__(self, code, errmsg):
        super().__init__(errmsg)
        self.code, self.errmsg = code, errmsg

    def reply(self):
        return {"ok": 0.0, "errmsg": self.errmsg, "code": self.code,
                "codeName": CODE_NAMES.get(self.code, "UnknownError")}


def auth_failed():
    return CommandError(18, "Authentication failed.")


def shell_repr(v):
    """Render a value the way mongod prints commands in error messages."""
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{ " + ", ".join("%s: %s" % (k, shell_repr(x)) for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[ " + ", ".join(shell_repr(x) for x in v) + " ]" if v else "[]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, uuid.UUID):
        return 'UUID("%s")' % v
    if isinstance(v, ObjectId):
        return "ObjectId('%s')" % v.raw.hex()
    if isinstance(v, float):
        return repr(v) if v != int(v) else "%d.0" % v
    if v is None:
        return "null"
    if isinstance(v, Binary):
        return 'BinData(%d, %s)' % (v.subtype, base64.b64encode(v).decode().upper())
    return str(v)


class Connection:
    def __init__(self, sock, peer):
        self.sock = sock
        self.peer = peer
        with _conn_lock:
            self.conn_id = next(_conn_ids)
        self.authed = []          # [(user, db)]
        self.convs = {}           # conversationId -> SCRAM state
        self.next_conv = 1
        self.next_request = 1

    # ---- framing ----
    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return bytes(buf)

    def send(self, op, response_to, payload):
        req_id = self.next_request
        self.next_request += 1
        header = struct.pack("<iiii", 16 + len(payload), req_id, response_to, op)
        self.sock.sendall(header + payload)

    def send_msg(self, response_to, doc):
        self.send(OP_MSG, response_to, struct.pack("<I", 0) + b"\x00" + encode(doc))

    def send_reply(self, response_to, doc, flags=0):
        self.send(OP_REPLY, response_to, struct.pack("<iqii", flags, 0, 0, 1) + encode(doc))

    def serve(self):
        try:
            while True:
                length, req_id, _resp_to, op = struct.unpack("<iiii", self.recv_exact(16))
                if length < 16 or length > MAX_MESSAGE:
                    return
                data = self.recv_exact(length - 16)
                if op == OP_MSG:
                    self.handle_op_msg(req_id, data)
                elif op == OP_QUERY:
                    if not self.handle_op_query(req_id, data):
                        return
                else:
                    return  # unknown / unsupported opcode (incl. OP_COMPRESSED): close
        except (EOFError, OSError, ssl.SSLError):
            pass
        except BSONError as e:
            log("closing connection %d: bad BSON: %s" % (self.conn_id, e))
        finally:
            try:
                self.sock.close()
            except OSError:
                pass

    def handle_op_msg(self, req_id, data):
        (flags,) = struct.unpack_from("<I", data, 0)
        end = len(data) - (4 if flags & 1 else 0)
        pos = 4
        body, seqs = None, []
        while pos < end:
            kind = data[pos]
            pos += 1
            if kind == 0:
                if body is not None:
                    raise BSONError("OP_MSG with two body sections")
                body, pos = decode(data, pos)
            elif kind == 1:
                (size,) = struct.unpack_from("<i", data, pos)
                sec_end = pos + size
                ident, p = _read_cstring(data, pos + 4)
                docs = []
                while p < sec_end:
                    d, p = decode(data, p)
                    docs.append(d)
                seqs.append((ident, docs))
                pos = sec_end
            else:
                raise BSONError("unknown OP_MSG section kind %d" % kind)
        if body is None:
            raise BSONError("OP_MSG without body")
        for ident, docs in seqs:
            body.setdefault(ident, [])
            body[ident].extend(docs)
        if "$db" not in body:
            reply = CommandError(40571, "OP_MSG requests require a $db argument").reply()
        else:
            reply = self.run_command(body, str(body["$db"]))
        if flags & 2:  # moreToCome from client: no response expected
            return
        self.send_msg(req_id, reply)

    def handle_op_query(self, req_id, data):
        _flags = struct.unpack_from("<i", data, 0)[0]
        ns, pos = _read_cstring(data, 4)
        pos += 8  # numberToSkip, numberToReturn
        query, pos = decode(data, pos)
        if "$query" in query and isinstance(query["$query"], dict):
            query = query["$query"]
        name = next(iter(query), "")
        if ns.endswith(".$cmd") and name in HELLO_NAMES:
            self.send_reply(req_id, self.run_command(query, ns[:-5]))
            return True
        err = "Unsupported OP_QUERY command: %s. The client driver may require an upgrade. " \
              "For more details see https://dochub.mongodb.org/core/legacy-opcode-removal" % (name or ns)
        self.send_reply(req_id, {"$err": err, "code": 352, "ok": 0.0}, flags=2)
        return True

    # ---- commands ----
    def run_command(self, body, db):
        if not body:
            return CommandError(59, "no such command: ''").reply()
        name = next(iter(body))
        try:
            state = load_state()
            return self.dispatch(name, body, db, state)
        except CommandError as e:
            return e.reply()
        except Exception as e:  # keep serving; report like a server-side bug would
            log("internal error in %s: %r" % (name, e))
            return CommandError(1, "fake_mongo internal error: %r" % e).reply()

    def current_users(self, state):
        """Authenticated users still present in the state (dropped users lose access)."""
        out = []
        for user, db in self.authed:
            u = find_user(state, db, user)
            if u is not None:
                out.append(u)
        return out

    def roles(self, state):
        out = []
        for u in self.current_users(state):
            for r in user_roles(u):
                if r not in out:
                    out.append(r)
        return out

    def has_role(self, state, names, db="admin"):
        for r in self.roles(state):
            if r["role"] in ("root", "__system") and r["db"] == "admin":
                return True
            if r["role"] in names and (r["db"] == db or r["db"] == "admin"):
                return True
        return False

    def not_authorized(self, body, db):
        return CommandError(13, "not authorized on %s to execute command %s" % (db, shell_repr(body)))

    def dispatch(self, name, body, db, state):
        handler = COMMANDS.get(name)
        if handler is None:
            raise CommandError(59, "no such command: '%s'" % name)
        if name in ADMIN_ONLY and db != "admin":
            raise CommandError(13, "%s may only be run against the admin database." % name)
        enforcing = auth_enabled(state) or bool(state.get("keyFile"))
        if enforcing and name not in NO_AUTH_NEEDED and not self.current_users(state):
            raise CommandError(13, "Command %s requires authentication" % name)
        return handler(self, body, db, state, enforcing)

    # hello / isMaster
    def cmd_hello(self, body, db, state, enforcing):
        name = next(iter(body))
        tv = body.get("topologyVersion")
        wait_ms = body.get("maxAwaitTimeMS")
        if isinstance(tv, dict) and isinstance(wait_ms, int) and tv.get("processId") == PROCESS_ID:
            self.await_hello(min(wait_ms, 60000) / 1000.0)
        reply = {"helloOk": True} if body.get("helloOk") else {}
        if name == "hello":
            reply["isWritablePrimary"] = True
        else:
            reply["ismaster"] = True
        reply["topologyVersion"] = {"processId": PROCESS_ID, "counter": Int64(0)}
        reply.update({
            "maxBsonObjectSize": MAX_BSON,
            "maxMessageSizeBytes": MAX_MESSAGE,
            "maxWriteBatchSize": 100000,
            "localTime": datetime.datetime.now(datetime.timezone.utc),
            "logicalSessionTimeoutMinutes": 30,
            "connectionId": self.conn_id,
            "minWireVersion": 0,
            "maxWireVersion": max_wire_version(state),
            "readOnly": False,
        })
        mechs_for = body.get("saslSupportedMechs")
        if isinstance(mechs_for, str) and "." in mechs_for:
            udb, uname = mechs_for.split(".", 1)
            u = find_user(state, udb, uname)
            if u is not None:
                reply["saslSupportedMechs"] = user_mechanisms(u)
        # speculativeAuthenticate is deliberately not answered: the driver then
        # runs a normal saslStart/saslContinue conversation.
        reply["ok"] = 1.0
        return reply

    def await_hello(self, seconds):
        """Awaitable hello (streaming SDAM): nothing ever changes, so wait it out,
        returning early if the client sends anything / closes the socket."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                r, _, _ = select.select([self.sock], [], [], min(left, 0.5))
            except (OSError, ValueError):
                return
            if r:
                return

    def cmd_buildinfo(self, body, db, state, enforcing):
        ver, va = version_info(state)
        return {
            "version": ver,
            "gitVersion": hashlib.sha1(ver.encode()).hexdigest(),
            "modules": [],
            "allocator": "tcmalloc",
            "javascriptEngine": "mozjs",
            "sysInfo": "deprecated",
            "versionArray": va,
            "openssl": {"running": "OpenSSL 3.0.2 15 Mar 2022", "compiled": "OpenSSL 3.0.2 15 Mar 2022"},
            "buildEnvironment": {"distmod": "ubuntu2204", "distarch": "x86_64", "target_arch": "x86_64"},
            "bits": 64,
            "debug": False,
            "maxBsonObjectSize": MAX_BSON,
            "storageEngines": ["devnull", "wiredTiger"],
            "ok": 1.0,
        }

    def cmd_ping(self, body, db, state, enforcing):
        return {"ok": 1.0}

    def cmd_end_sessions(self, body, db, state, enforcing):
        return {"ok": 1.0}

    # ---- SCRAM ----
    def cmd_sasl_start(self, body, db, state, enforcing):
        mech = body.get("mechanism")
        enabled = state.get("authenticationMechanisms") or []
        if mech not in SCRAM or mech not in enabled:
            raise CommandError(334, "Received authentication for mechanism %s which is not enabled" % mech)
        payload = body.get("payload")
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        if not isinstance(payload, (bytes, bytearray)):
            raise CommandError(2, "saslStart payload must be BinData")
        msg = bytes(payload).decode("utf-8", "replace")
        if not (msg.startswith("n,") or msg.startswith("y,")):
            raise CommandError(17, "SCRAM channel binding is not supported")
        _, _, bare = msg.split(",", 2) if msg.count(",") >= 2 else ("", "", "")
        attrs = parse_scram(bare)
        if "n" not in attrs or "r" not in attrs or not attrs["r"]:
            raise CommandError(17, "Invalid SCRAM client-first message")
        user = scram_unescape(attrs["n"])
        u = find_user(state, db, user)
        if u is None or mech not in user_mechanisms(u):
            log("auth failed conn=%d user=%s db=%s mechanism=%s (%s)" % (
                self.conn_id, user, db, mech, "no such user" if u is None else "mechanism not registered"))
            raise auth_failed()
        salt, iters, _, _ = scram_credentials(mech, u)
        nonce = attrs["r"] + base64.b64encode(os.urandom(24)).decode()
        server_first = "r=%s,s=%s,i=%d" % (nonce, base64.b64encode(salt).decode(), iters)
        conv_id = self.next_conv
        self.next_conv += 1
        opts = body.get("options") if isinstance(body.get("options"), dict) else {}
        self.convs[conv_id] = {"mech": mech, "user": user, "db": db, "bare": bare,
                               "server_first": server_first, "nonce": nonce, "step": 1,
                               "skip_empty": bool(opts.get("skipEmptyExchange"))}
        return {"conversationId": conv_id, "done": False,
                "payload": Binary(server_first.encode()), "ok": 1.0}

    def cmd_sasl_continue(self, body, db, state, enforcing):
        conv_id = body.get("conversationId")
        conv = self.convs.get(conv_id)
        if conv is None:
            raise CommandError(17, "No SASL session state found")
        payload = body.get("payload") or b""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        msg = bytes(payload).decode("utf-8", "replace")
        if conv["step"] == 2:
            del self.convs[conv_id]
            if msg:
                raise auth_failed()
            self.mark_authenticated(conv)
            return {"conversationId": conv_id, "done": True, "payload": Binary(b""), "ok": 1.0}
        u = find_user(state, conv["db"], conv["user"])
        if u is None or ",p=" not in msg:
            del self.convs[conv_id]
            raise auth_failed()
        without_proof, proof_b64 = msg.rsplit(",p=", 1)
        attrs = parse_scram(without_proof)
        hfn = SCRAM[conv["mech"]][0]
        _, _, stored_key, server_key = scram_credentials(conv["mech"], u)
        auth_message = ",".join((conv["bare"], conv["server_first"], without_proof)).encode()
        try:
            proof = base64.b64decode(proof_b64, validate=True)
        except ValueError:
            proof = b""
        client_sig = hmac.new(stored_key, auth_message, hfn).digest()
        ok = (attrs.get("r") == conv["nonce"] and attrs.get("c") in ("biws", "eSws")
              and len(proof) == len(client_sig))
        if ok:
            client_key = bytes(a ^ b for a, b in zip(proof, client_sig))
            ok = hmac.compare_digest(hfn(client_key).digest(), stored_key)
        if not ok:
            del self.convs[conv_id]
            log("auth failed conn=%d user=%s db=%s mechanism=%s (bad proof)" % (
                self.conn_id, conv["user"], conv["db"], conv["mech"]))
            raise auth_failed()
        server_sig = hmac.new(server_key, auth_message, hfn).digest()
        final = ("v=" + base64.b64encode(server_sig).decode()).encode()
        if conv["skip_empty"]:
            del self.convs[conv_id]
            self.mark_authenticated(conv)
            return {"conversationId": conv_id, "done": True, "payload": Binary(final), "ok": 1.0}
        conv["step"] = 2
        return {"conversationId": conv_id, "done": False, "payload": Binary(final), "ok": 1.0}

    def mark_authenticated(self, conv):
        key = (conv["user"], conv["db"])
        log("auth ok conn=%d user=%s db=%s mechanism=%s" % (self.conn_id, conv["user"], conv["db"], conv["mech"]))
        if key not in self.authed:
            self.authed.append(key)

    # ---- admin commands ----
    CLUSTER_MONITOR = ("clusterMonitor", "clusterAdmin")
    USER_VIEWERS = ("viewUser", "userAdminAnyDatabase", "userAdmin", "dbOwner")

    def cmd_list_databases(self, body, db, state, enforcing):
        dbs = state.get("databases") or []
        if body.get("nameOnly"):
            return {"databases": [{"name": d["name"]} for d in dbs], "ok": 1.0}
        out, total = [], 0
        for d in dbs:
            size = int(d.get("sizeOnDisk", 0))
            total += size
            out.append({"name": d["name"], "sizeOnDisk": Int64(size), "empty": bool(d.get("empty", size == 0))})
        return {"databases": out, "totalSize": Int64(total),
                "totalSizeMb": Int64(total // (1024 * 1024)), "ok": 1.0}

    def cmd_get_cmd_line_opts(self, body, db, state, enforcing):
        if enforcing and not self.has_role(state, self.CLUSTER_MONITOR):
            raise self.not_authorized(body, db)
        net = {"bindIp": state.get("bindIp", "127.0.0.1"), "port": int(state.get("port", 27017))}
        if state.get("tls_mode") is not None:
            tls = {"mode": state["tls_mode"]}
            if state["tls_mode"] != "disabled":
                tls["certificateKeyFile"] = "/etc/ssl/mongod.pem"
            net["tls"] = tls
        parsed = {"config": "/etc/mongod.conf", "net": net,
                  "processManagement": {"timeZoneInfo": "/usr/share/zoneinfo"}}
        security = {}
        if auth_enabled(state):
            security["authorization"] = "enabled"
        if state.get("keyFile"):
            security["keyFile"] = state["keyFile"]
        if security:
            parsed["security"] = security
        parsed["storage"] = {"dbPath": "/var/lib/mongodb"}
        parsed["systemLog"] = {"destination": "file", "logAppend": True,
                               "path": "/var/log/mongodb/mongod.log"}
        return {"argv": ["/usr/bin/mongod", "--config", "/etc/mongod.conf"], "parsed": parsed, "ok": 1.0}

    def cmd_get_parameter(self, body, db, state, enforcing):
        if enforcing and not self.has_role(state, self.CLUSTER_MONITOR + ("hostManager",)):
            raise self.not_authorized(body, db)
        ver, va = version_info(state)
        tls_mode = state.get("tls_mode") or "disabled"
        params = {
            "authenticationMechanisms": list(state.get("authenticationMechanisms") or []),
            "enableLocalhostAuthBypass": True,
            "featureCompatibilityVersion": {"version": "%d.%d" % (va[0], va[1])},
            "scramIterationCount": 10000,
            "scramSHA256IterationCount": 15000,
            "sslMode": tls_mode.replace("TLS", "SSL"),
            "tlsMode": tls_mode,
        }
        sel = body.get("getParameter")
        if sel == "*":
            return dict(params, ok=1.0)
        out = {}
        for k in body:
            if k == "getParameter" or k in GENERIC_ARGS:
                continue
            if k in params:
                out[k] = params[k]
        if not out:
            raise CommandError(72, "no option found to get")
        out["ok"] = 1.0
        return out

    def cmd_users_info(self, body, db, state, enforcing):
        arg = body.get("usersInfo")
        users = state.get("users") or []
        targets = None  # None = by filter below
        if isinstance(arg, dict) and arg.get("forAllDBs"):
            selected = list(users)
            need_dbs = {"*"}
        else:
            if isinstance(arg, (int, float)) and not isinstance(arg, bool) and arg == 1:
                selected = [u for u in users if u.get("db", "admin") == db]
                need_dbs = {db}
            else:
                items = arg if isinstance(arg, list) else [arg]
                targets = []
                for it in items:
                    if isinstance(it, str):
                        targets.append((it, db))
                    elif isinstance(it, dict) and isinstance(it.get("user"), str):
                        targets.append((it["user"], str(it.get("db", db))))
                    else:
                        raise CommandError(2, "User and role names must be either strings or objects")
                selected = [u for t in targets for u in [find_user(state, t[1], t[0])] if u is not None]
                need_dbs = {t[1] for t in targets}
        if enforcing:
            me = {(u["user"], u.get("db", "admin")) for u in self.current_users(state)}
            only_self = targets is not None and all(t in me for t in targets)
            if not only_self:
                allowed = all(self.has_role(state, self.USER_VIEWERS if d != "*" else
                                            ("userAdminAnyDatabase",), "admin" if d == "*" else d)
                              for d in need_dbs)
                if not allowed:
                    raise self.not_authorized(body, db)
        out = []
        for u in selected:
            doc = {"_id": "%s.%s" % (u.get("db", "admin"), u["user"]),
                   "userId": Binary(user_uuid(u).bytes, 4),
                   "user": u["user"], "db": u.get("db", "admin"),
                   "roles": user_roles(u), "mechanisms": user_mechanisms(u)}
            if body.get("showCredentials"):
                creds = {}
                for m in user_mechanisms(u):
                    if m in SCRAM:
                        salt, iters, sk, svk = scram_credentials(m, u)
                        creds[m] = {"iterationCount": iters, "salt": base64.b64encode(salt).decode(),
                                    "storedKey": base64.b64encode(sk).decode(),
                                    "serverKey": base64.b64encode(svk).decode()}
                doc["credentials"] = creds
            out.append(doc)
        return {"users": out, "ok": 1.0}

    def cmd_connection_status(self, body, db, state, enforcing):
        users = [{"user": u["user"], "db": u.get("db", "admin")} for u in self.current_users(state)]
        return {"authInfo": {"authenticatedUsers": users,
                             "authenticatedUserRoles": self.roles(state)}, "ok": 1.0}

    def cmd_server_status(self, body, db, state, enforcing):
        if enforcing and not self.has_role(state, self.CLUSTER_MONITOR):
            raise self.not_authorized(body, db)
        ver, _ = version_info(state)
        up = time.time() - START_TIME
        return {"host": "%s:%d" % (socket.gethostname(), int(state.get("port", 27017))),
                "version": ver, "process": "mongod", "pid": Int64(os.getpid()),
                "uptime": float(int(up)), "uptimeMillis": Int64(int(up * 1000)),
                "uptimeEstimate": Int64(int(up)),
                "localTime": datetime.datetime.now(datetime.timezone.utc), "ok": 1.0}


COMMANDS = {
    "hello": Connection.cmd_hello, "isMaster": Connection.cmd_hello, "ismaster": Connection.cmd_hello,
    "buildInfo": Connection.cmd_buildinfo, "buildinfo": Connection.cmd_buildinfo,
    "ping": Connection.cmd_ping, "endSessions": Connection.cmd_end_sessions,
    "saslStart": Connection.cmd_sasl_start, "saslContinue": Connection.cmd_sasl_continue,
    "listDatabases": Connection.cmd_list_databases, "getCmdLineOpts": Connection.cmd_get_cmd_line_opts,
    "getParameter": Connection.cmd_get_parameter, "usersInfo": Connection.cmd_users_info,
    "connectionStatus": Connection.cmd_connection_status, "serverStatus": Connection.cmd_server_status,
}


# --------------------------------------------------------------------------
# Listener
# --------------------------------------------------------------------------

def log(msg):
    sys.stderr.write("fake_mongo: %s\n" % msg)
    sys.stderr.flush()


def handle_client(sock, peer):
    try:
        if TLS_CONTEXT is not None:
            mode = load_state().get("tls_mode")
            use_tls = mode not in (None, "disabled")
            if mode in ("allowTLS", "preferTLS"):
                sock.settimeout(10)
                first = sock.recv(1, socket.MSG_PEEK)
                use_tls = first == b"\x16"  # TLS handshake record
            if use_tls:
                sock.settimeout(10)
                sock = TLS_CONTEXT.wrap_socket(sock, server_side=True)
            sock.settimeout(None)
    except (OSError, ssl.SSLError) as e:
        log("TLS handshake with %s failed: %s" % (peer, e))
        sock.close()
        return
    Connection(sock, peer).serve()


def main(argv):
    global STATE_PATH, TLS_CONTEXT
    args = list(argv[1:])
    cert = key = None
    for flag in ("--tls-cert", "--tls-key"):
        if flag in args:
            i = args.index(flag)
            val = args[i + 1]
            del args[i:i + 2]
            if flag == "--tls-cert":
                cert = val
            else:
                key = val
    if len(args) != 2 or (cert is None) != (key is None):
        sys.stderr.write("usage: fake_mongo.py PORT STATE_JSON [--tls-cert CERT --tls-key KEY]\n")
        return 2
    port, STATE_PATH = int(args[0]), args[1]
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key)
        TLS_CONTEXT = ctx
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(128)
    print("ready port=%d" % srv.getsockname()[1], flush=True)
    while True:
        try:
            sock, peer = srv.accept()
        except InterruptedError:
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handle_client, args=(sock, peer), daemon=True).start()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except KeyboardInterrupt:
        sys.exit(0)
