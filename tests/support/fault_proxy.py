"""An HTTP proxy in front of moto that injects AWS-shaped faults, for lockwatch's fault suite.

usage: fault_proxy.py PORT UPSTREAM_PORT CONTROL_FILE
PORT may be 0: the system picks one. Prints `ready port=<n>` once listening.

CONTROL_FILE holds one mode, re-read on every request:
  pass                 forward everything to moto
  error500             answer every request with a 500 InternalError
  throttle             answer every request with the service's throttling error
  fail-region:REGION   500 for requests signed for REGION; forward the rest
  fail-action:NAME     500 for requests whose action (see below) or path contains NAME
  fail-page:NAME:N     the N-th page of NAME's listing fails with 500: N counts the distinct
                       pagination tokens (NextToken, Marker, ContinuationToken, ...) the client has
                       sent for NAME since this mode was set, so N=1 is the second page (the first
                       request that carries a token); that page fails every time it is asked for,
                       retries included, while the pages before it pass. Another mode resets the
                       count.
  hang:NAME            read the request and never answer until the client closes the connection
                       (gives up on its timeout); the proxy closes it itself after 600 s
  truncate:NAME        forward to moto, send the status line, moto's headers (with the full
                       Content-Length) and the first half of moto's body, then close the connection
  slow:NAME:MS         forward to moto and answer after MS more milliseconds
NAME matches as a substring of the request's action: the Action parameter (query protocols: EC2,
RDS, IAM, STS...), the operation of the X-Amz-Target header (JSON protocols), or else the method
and path (REST protocols).
Each request is logged as one line: MODE SERVICE REGION ACTION -> STATUS [what the fault did].
"""
import http.client
import json
import re
import select
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, UPSTREAM, CONTROL = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "content-length"}
TOKEN_PARAMS = ("NextToken", "nextToken", "Marker", "marker", "ContinuationToken", "continuation-token",
                "next-token", "key-marker", "StartingToken", "PaginationToken", "ExclusiveStartKey",
                "ExclusiveStartTableName", "NextPageToken", "nextPageToken")
HANG_MAX = 600

_pages_lock = threading.Lock()
_pages = {"mode": None, "tokens": []}   # the distinct tokens seen for the fail-page mode, in order


def mode():
    try:
        with open(CONTROL) as f:
            return f.read().strip() or "pass"
    except FileNotFoundError:
        return "pass"


def error_body(service, code, message):
    """(content type, body) in the shape each protocol's clients parse."""
    if service == "ec2":
        return "text/xml", (f'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{code}</Code>'
                            f"<Message>{message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>")
    if service in ("rds", "sts", "iam"):
        return "text/xml", (f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>{message}</Message>"
                            f"</Error><RequestId>fault-proxy</RequestId></ErrorResponse>")
    return "application/json", '{"message": "%s"}' % message


def describe(headers, path, body):
    """(action label, pagination token or None) of one request."""
    url = urllib.parse.urlsplit(path)
    query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
    form = {}
    ctype = headers.get("Content-Type", "")
    if "x-www-form-urlencoded" in ctype or b"Action=" in body:
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    doc = {}
    if "json" in ctype and body:
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {}
    target = headers.get("X-Amz-Target", "")
    action = form.get("Action") or query.get("Action") or (target.rsplit(".", 1)[-1] if target else "")
    if not action:
        action = path
    token = None
    for source in (form, query, doc if isinstance(doc, dict) else {}):
        for name in TOKEN_PARAMS:
            if source.get(name):
                value = source[name]
                token = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
                break
        if token:
            break
    return action, token


def note_mode(m):
    """Every mode change (even to the same fail-page mode later) starts the page count afresh."""
    with _pages_lock:
        if _pages["mode"] != m:
            _pages["mode"], _pages["tokens"] = m, []


def page_fails(m, token):
    """For fail-page:NAME:N, is this token the N-th distinct one?"""
    n = int(m.rsplit(":", 1)[1])
    with _pages_lock:
        if token is None:
            return False
        if token not in _pages["tokens"]:
            _pages["tokens"].append(token)
        return _pages["tokens"].index(token) + 1 == n


def arg(m, i):
    parts = m.split(":")
    return parts[i] if len(parts) > i else ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        scope = re.search(r"Credential=[^/]+/\d+/([^/]+)/([^/]+)/", self.headers.get("Authorization", ""))
        region, service = (scope.group(1), scope.group(2)) if scope else ("", "")
        action, token = describe(self.headers, self.path, body)
        m = mode()
        note_mode(m)
        kind = m.split(":", 1)[0]
        fault, note = None, ""
        if m == "error500":
            fault = (500, "InternalError", "injected internal error")
        elif m == "throttle":
            code = {"ec2": "RequestLimitExceeded", "es": "ThrottlingException"}.get(service, "Throttling")
            fault = (503 if service == "ec2" else 400 if service in ("rds", "sts") else 429, code, "Rate exceeded")
        elif kind == "fail-region" and region == m.split(":", 1)[1]:
            fault = (500, "InternalError", f"injected failure for {region}")
        elif kind == "fail-action" and m.split(":", 1)[1] in action:
            fault = (500, "InternalError", f"injected failure for {action}")
        elif kind == "fail-page" and arg(m, 1) in action and page_fails(m, token):
            fault = (500, "InternalError", f"injected failure for a later page of {action}")
            note = " (page token " + (token[:24] + "..." if len(token) > 24 else token) + ")"
        elif kind == "hang" and arg(m, 1) in action:
            waited = self.hang()
            return self.log_line(m, service, region, action, f"hang: client gave up after {waited:.1f} s")
        if fault:
            status, code, message = fault
            ctype, text = error_body(service, code, message)
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            if service == "es":
                self.send_header("x-amzn-ErrorType", code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return self.log_line(m, service, region, action, f"{status}{note}")
        status, headers, data = self.forward(body)
        if kind == "slow" and arg(m, 1) in action:
            delay = int(arg(m, 2) or 0)
            time.sleep(delay / 1000)
            note = f" after {delay} ms"
        cut = len(data)
        if kind == "truncate" and arg(m, 1) in action:
            cut = len(data) // 2
            note = f" truncated: {cut} of {len(data)} bytes, then closed"
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data[:cut])
            self.wfile.flush()
        except OSError:
            pass
        if cut < len(data):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.log_line(m, service, region, action, f"{status}{note}")

    def forward(self, body):
        conn = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def hang(self):
        """Keep the connection open without answering until the client closes it."""
        start = time.monotonic()
        self.close_connection = True
        sock = self.connection
        while time.monotonic() - start < HANG_MAX:
            r, _, _ = select.select([sock], [], [], 1.0)
            if r:
                try:
                    if not sock.recv(65536):
                        break          # EOF: the client gave up
                except OSError:
                    break
        return time.monotonic() - start

    def log_line(self, m, service, region, action, outcome):
        print(f"{m} {service} {region} {action} -> {outcome}", flush=True)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = handle_any


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    print(f"ready port={server.server_address[1]}", flush=True)
    server.serve_forever()
