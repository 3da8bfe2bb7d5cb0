"""An AWS endpoint for benchmarks: counts every API call, and either forwards it to moto or replays it.

usage: aws_replay.py --upstream http://127.0.0.1:MOTO --port PORT --mode proxy|replay

proxy   every request goes to moto; the endpoint only counts calls (the "on moto" runs).
replay  the first time a request is seen (pagination parameters aside) its full answer is fetched
        from moto (following moto's own pages where moto paginates) and kept in memory; from then
        on it is served from memory. List calls are paginated the way AWS paginates them, which
        moto does not: EC2 Describe* honour MaxResults (5..1000; all items when absent) and
        NextToken; RDS Describe* honour MaxRecords (20..100, default 100) and Marker.
        A warm-up pass of each tool fills the memory before anything is timed, so a timed run
        measures the clients, not moto's rendering.

GET /_bench/stats  -> {"calls": N, "by_action": {...}, "upstream": N}; POST /_bench/reset zeroes them.
POST /_bench/churn?n=N  (replay mode) edits N recorded security groups, round robin among those
        with a rule from 10.0.0.0/8 or 10.0.0.0/16, flipping that range to the other: a posture
        change on the next scan, as when someone edits a private rule.
Loopback only. Signatures are not checked (moto does not check them either).
"""
import argparse
import base64
import http.client
import json
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# (service, action) -> how AWS paginates it.
#   container/item: the XML list and its element; max/token: request parameters; resp_token: the
#   response element carrying the next token; default/lo/hi: page size when absent, and bounds.
PAGINATED = {
    ("ec2", "DescribeSecurityGroups"): ("securityGroupInfo", "item", "MaxResults", "NextToken", "nextToken", None, 5, 1000),
    ("ec2", "DescribeNetworkInterfaces"): ("networkInterfaceSet", "item", "MaxResults", "NextToken", "nextToken", None, 5, 1000),
    ("ec2", "DescribeInstances"): ("reservationSet", "item", "MaxResults", "NextToken", "nextToken", None, 5, 1000),
    ("ec2", "DescribeVpcs"): ("vpcSet", "item", "MaxResults", "NextToken", "nextToken", None, 5, 1000),
    ("ec2", "DescribeSubnets"): ("subnetSet", "item", "MaxResults", "NextToken", "nextToken", None, 5, 1000),
    ("rds", "DescribeDBInstances"): ("DBInstances", "DBInstance", "MaxRecords", "Marker", "Marker", 100, 20, 100),
    ("rds", "DescribeDBClusters"): ("DBClusters", "DBCluster", "MaxRecords", "Marker", "Marker", 100, 20, 100),
}
PAGE_PARAMS = {"MaxResults", "NextToken", "MaxRecords", "Marker"}
CRED = re.compile(r"Credential=[^/]+/[^/]+/([^/]+)/([^/]+)/aws4_request")


class Split:
    """A recorded list answer cut into its items: prefix + items[i:j] + token + suffix."""

    def __init__(self, body, container, item, resp_token):
        text = body.decode()
        # Drop any token moto put in (we paginate ourselves).
        text = re.sub(rf"<{resp_token}>[^<]*</{resp_token}>|<{resp_token}\s*/>", "", text)
        empty = re.search(rf"<{container}\s*/>", text)
        if empty:
            text = text[: empty.start()] + f"<{container}></{container}>" + text[empty.end():]
        start = text.index(f"<{container}>") + len(container) + 2
        tags = re.compile(rf"<(/?)({re.escape(item)}|{re.escape(container)})(?:\s[^>]*)?(/?)>")
        depth, begin, items, end = 0, None, [], None
        for m in tags.finditer(text, start):
            closing, name, selfclosing = m.group(1), m.group(2), m.group(3)
            if name == container and closing and depth == 0:
                end = m.start()
                break
            if name != item:
                continue
            if selfclosing:
                if depth == 0:
                    items.append(m.group(0).encode())
            elif closing:
                depth -= 1
                if depth == 0:
                    items.append(text[begin:m.end()].encode())
            else:
                if depth == 0:
                    begin = m.start()
                depth += 1
        if end is None:
            raise ValueError(f"unterminated <{container}> in a recorded answer")
        self.prefix = text[:start].encode()
        self.close = text[end: end + len(container) + 3].encode()
        self.suffix = text[end + len(container) + 3:].encode()
        self.items, self.resp_token = items, resp_token
        self.churn_next = 0
        self.action = None

    def churn(self, n):
        a, b = b"<cidrIp>10.0.0.0/8</cidrIp>", b"<cidrIp>10.0.0.0/16</cidrIp>"
        candidates = [i for i, it in enumerate(self.items) if a in it or b in it]
        changed = 0
        for k in range(min(n, len(candidates))):
            i = candidates[(self.churn_next + k) % len(candidates)]
            it = self.items[i]
            self.items[i] = it.replace(a, b) if a in it else it.replace(b, a)
            changed += 1
        if candidates:
            self.churn_next = (self.churn_next + changed) % len(candidates)
        return changed

    def page(self, offset, size):
        chunk = self.items[offset: offset + size] if size else self.items[offset:]
        nxt = offset + len(chunk)
        token = b""
        if size and nxt < len(self.items):
            t = base64.urlsafe_b64encode(f"o:{nxt}".encode()).decode()
            token = f"<{self.resp_token}>{t}</{self.resp_token}>".encode()
        return self.prefix + b"".join(chunk) + self.close + token + self.suffix

    def merge(self, other):
        self.items.extend(other.items)


def error(service, code, message):
    if service == "ec2":
        body = f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>replay</RequestID></Response>"
    else:
        body = f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>replay</RequestId></ErrorResponse>"
    return 400, "text/xml", body.encode()


class State:
    def __init__(self, upstream, mode):
        u = urllib.parse.urlparse(upstream)
        self.host, self.port, self.mode = u.hostname, u.port, mode
        self.lock = threading.Lock()
        self.cache = {}
        self.local = threading.local()
        self.reset()

    def reset(self):
        with self.lock:
            self.calls, self.upstream_calls, self.by_action = 0, 0, {}

    def count(self, name):
        with self.lock:
            self.calls += 1
            self.by_action[name] = self.by_action.get(name, 0) + 1

    def forward(self, method, path, headers, body):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
        hdrs = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length", "transfer-encoding", "connection", "expect")}
        hdrs["Content-Length"] = str(len(body))
        with self.lock:
            self.upstream_calls += 1
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return r.status, r.getheader("Content-Type", "application/octet-stream"), r.read()
        except (http.client.HTTPException, OSError):
            conn.close()
            self.local.conn = None
            raise


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", "replay")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def handle_any(self, method):
        st = self.server.state
        body = self.body()
        if self.path.startswith("/_bench/"):
            if self.path == "/_bench/reset":
                st.reset()
                return self.reply(200, "application/json", b"{}")
            if self.path.startswith("/_bench/churn"):
                n = int(urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query).get("n", ["1"])[0])
                with st.lock:
                    changed = sum(hit[3].churn(n) for hit in st.cache.values()
                                  if hit[3] is not None and hit[3].action == "DescribeSecurityGroups")
                return self.reply(200, "application/json", json.dumps({"changed": changed}).encode())
            with st.lock:
                out = {"calls": st.calls, "upstream": st.upstream_calls, "by_action": dict(sorted(st.by_action.items()))}
            return self.reply(200, "application/json", json.dumps(out).encode())
        m = CRED.search(self.headers.get("Authorization", ""))
        region, service = (m.group(1), m.group(2)) if m else ("", "")
        ctype = self.headers.get("Content-Type", "")
        params = None
        if "x-www-form-urlencoded" in ctype:
            params = urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)
            action = dict(params).get("Action", "?")
        else:
            action = self.headers.get("X-Amz-Target") or f"{method} {urllib.parse.urlparse(self.path).path}"
            action = re.sub(r"/domain/[^/]+", "/domain/{name}", action)
        st.count(f"{service}:{action}")
        try:
            status, rtype, rbody = self.answer(st, method, service, region, action, params, body)
        except (http.client.HTTPException, OSError, ValueError) as e:
            status, rtype, rbody = 502, "text/plain", f"replay: {e}".encode()
        self.reply(status, rtype, rbody)

    def answer(self, st, method, service, region, action, params, body):
        if st.mode == "proxy":
            return st.forward(method, self.path, self.headers, body)
        account = self.headers.get("x-moto-account-id", "")
        spec = PAGINATED.get((service, action)) if params is not None else None
        if params is not None:
            key = (account, service, region, method, self.path, tuple(sorted((k, v) for k, v in params if k not in PAGE_PARAMS)))
        else:
            key = (account, service, region, method, self.path, body)
        with st.lock:
            hit = st.cache.get(key)
        if hit is None:
            hit = self.record(st, method, service, spec, params, body)
            with st.lock:
                st.cache.setdefault(key, hit)
        if spec is None or hit[0] != 200:
            return hit[0], hit[1], hit[2]
        _, _, maxp, tokp, _, default, lo, hi = spec
        p = dict(params)
        size = default
        if maxp in p:
            try:
                size = int(p[maxp])
            except ValueError:
                return error(service, "InvalidParameterValue", f"{maxp} is not a number")
            if not lo <= size <= hi:
                return error(service, "InvalidParameterValue", f"{maxp} must be between {lo} and {hi}")
        offset = 0
        if p.get(tokp):
            try:
                offset = int(base64.urlsafe_b64decode(p[tokp]).decode().split(":", 1)[1])
            except (ValueError, IndexError):
                return error(service, "InvalidNextToken" if service == "ec2" else "InvalidParameterValue", "bad token")
        return 200, hit[1], hit[3].page(offset, size)

    def record(self, st, method, service, spec, params, body):
        """Fetch the whole answer from moto (all of moto's pages), as (status, type, body, split)."""
        if spec is None:
            status, rtype, rbody = st.forward(method, self.path, self.headers, body)
            return status, rtype, rbody, None
        container, item, maxp, tokp, resp_token, default, _, _ = spec
        base = [(k, v) for k, v in params if k not in PAGE_PARAMS]
        split, token = None, None
        while True:
            q = base + ([(maxp, str(default))] if default else []) + ([(tokp, token)] if token else [])
            status, rtype, rbody = st.forward(method, self.path, self.headers, urllib.parse.urlencode(q).encode())
            if status != 200:
                return status, rtype, rbody, None
            m = re.search(rf"<{resp_token}>([^<]+)</{resp_token}>".encode(), rbody)
            page = Split(rbody, container, item, resp_token)
            if split is None:
                split = page
            else:
                split.merge(page)
            if not m:
                split.action = dict(params).get("Action")
                return 200, rtype, b"", split
            token = m.group(1).decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=["proxy", "replay"], required=True)
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.state = State(a.upstream, a.mode)
    print("ready", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
