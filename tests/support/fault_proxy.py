"""An HTTP proxy in front of moto that injects AWS-shaped faults, for lockwatch's fault suite.

usage: fault_proxy.py PORT UPSTREAM_PORT CONTROL_FILE

CONTROL_FILE holds one mode, re-read on every request:
  pass                 forward everything to moto
  error500             answer every request with a 500 InternalError
  throttle             answer every request with the service's throttling error
  fail-region:REGION   500 for requests signed for REGION; forward the rest
  fail-action:NAME     500 for requests whose Action (query APIs) or path contains NAME
Each request is logged as one line: MODE SERVICE REGION ACTION -> STATUS.
"""
import http.client
import os
import re
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, UPSTREAM, CONTROL = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "content-length"}


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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        scope = re.search(r"Credential=[^/]+/\d+/([^/]+)/([^/]+)/", self.headers.get("Authorization", ""))
        region, service = (scope.group(1), scope.group(2)) if scope else ("", "")
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace")) if b"Action=" in body else {}
        action = (form.get("Action") or [""])[0] or self.path
        m = mode()
        fault = None
        if m == "error500":
            fault = (500, "InternalError", "injected internal error")
        elif m == "throttle":
            code = {"ec2": "RequestLimitExceeded", "es": "ThrottlingException"}.get(service, "Throttling")
            fault = (503 if service == "ec2" else 400 if service in ("rds", "sts") else 429, code, "Rate exceeded")
        elif m.startswith("fail-region:") and region == m.split(":", 1)[1]:
            fault = (500, "InternalError", f"injected failure for {region}")
        elif m.startswith("fail-action:") and m.split(":", 1)[1] in action:
            fault = (500, "InternalError", f"injected failure for {action}")
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
        else:
            conn = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
            self.send_response(status)
            for k, v in resp.getheaders():
                if k.lower() not in HOP:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()
        print(f"{m} {service} {region} {action} -> {status}", flush=True)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = handle_any


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()
