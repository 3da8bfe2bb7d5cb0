"""A protocol-faithful stand-in for Elasticsearch 7.17, Elasticsearch 8.11 and OpenSearch 2.11
over plain HTTP, for lockwatch's tests (no such server can be installed on the test machines).

It answers the requests lockwatch makes with the status codes, headers and JSON bodies those
versions send, with security on or off:
  GET /                                  cluster info, or 401 with WWW-Authenticate
  GET /_cat/indices?format=json          index list, or 401
  GET /_xpack?categories=features        (Elasticsearch) features.security.enabled
  GET /_security/_authenticate           (Elasticsearch) who the caller is; 500 with security off
  GET /_plugins/_security/health         (OpenSearch) {"status":"UP"}; 400 with the plugin off
  GET /_plugins/_security/authinfo       (OpenSearch) who the caller is; 400 with the plugin off
  GET /_nodes/settings?filter_path=...   http.cors settings per node
  GET /_nodes/http?filter_path=...       http.bound_address per node

usage: fake_es.py PORT STATE_FILE
STATE_FILE is JSON, re-read on every request:
  {"flavor": "es7" | "es8" | "os2", "security": true, "anonymous_roles": [],
   "cors_any": false, "bind": ["127.0.0.1:9200"], "users": {"lockwatch": "password"}}
"""
import base64
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

PORT, STATE = int(sys.argv[1]), sys.argv[2]
NODE_ID = "Xq2r7tYkQmWlq4oY2vC5Zw"

INFO = {
    "es7": {"name": "es-node-1", "cluster_name": "docker-cluster", "cluster_uuid": "Bf3vQ8ZCQ0W9rk0gLd5wLQ",
            "version": {"number": "7.17.18", "build_flavor": "default", "build_type": "docker",
                        "build_hash": "8682172c2130b9a411b1bd5ff37c9792367de6b0", "build_date": "2024-02-02T12:04:59.691750271Z",
                        "build_snapshot": False, "lucene_version": "8.11.1",
                        "minimum_wire_compatibility_version": "6.8.0", "minimum_index_compatibility_version": "6.0.0-beta1"},
            "tagline": "You Know, for Search"},
    "es8": {"name": "es01", "cluster_name": "docker-cluster", "cluster_uuid": "p5gC8tq1Sr2DD7iW0kc0UA",
            "version": {"number": "8.11.3", "build_flavor": "default", "build_type": "docker",
                        "build_hash": "64cf052f3b56b1fd4449f5454cb88aca7e739d9a", "build_date": "2023-12-08T11:33:53.634979452Z",
                        "build_snapshot": False, "lucene_version": "9.8.0",
                        "minimum_wire_compatibility_version": "7.17.0", "minimum_index_compatibility_version": "7.0.0"},
            "tagline": "You Know, for Search"},
    "os2": {"name": "opensearch-node1", "cluster_name": "opensearch-cluster", "cluster_uuid": "t3ZBbOXoS5yqfTfPj3bV6w",
            "version": {"distribution": "opensearch", "number": "2.11.1", "build_type": "tar",
                        "build_hash": "6b1986e964d440be9137eba1413015c31c5a7752", "build_date": "2023-11-29T21:43:10.135035992Z",
                        "build_snapshot": False, "lucene_version": "9.7.0",
                        "minimum_wire_compatibility_version": "7.10.0", "minimum_index_compatibility_version": "7.0.0"},
            "tagline": "The OpenSearch Project: https://opensearch.org/"},
}
INDICES = [{"health": "yellow", "status": "open", "index": "users", "uuid": "kq1ZJ5c0T2Wm1l3mXJ7Hpw", "pri": "1", "rep": "1",
            "docs.count": "2400000", "docs.deleted": "0", "store.size": "1.2gb", "pri.store.size": "1.2gb"},
           {"health": "yellow", "status": "open", "index": "cameras", "uuid": "f0oBfYQpTtmG0S4Hq8XbLw", "pri": "1", "rep": "1",
            "docs.count": "513221", "docs.deleted": "0", "store.size": "210mb", "pri.store.size": "210mb"}]
ES_CHALLENGES = {"es7": ['Basic realm="security" charset="UTF-8"'],
                 "es8": ['Basic realm="security" charset="UTF-8"', 'Bearer realm="security"', "ApiKey"]}


def state():
    with open(STATE) as f:
        s = json.load(f)
    s.setdefault("security", True)
    s.setdefault("anonymous_roles", [])
    s.setdefault("cors_any", False)
    s.setdefault("bind", ["127.0.0.1:9200"])
    s.setdefault("users", {})
    return s


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=(), flavor="es8"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        ctype = "text/plain; charset=UTF-8" if isinstance(body, str) else "application/json; charset=UTF-8"
        self.send_header("content-type", ctype)
        if flavor != "os2":
            self.send_header("X-elastic-product", "Elasticsearch")
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def caller(self, s):
        """'user' name, '' for anonymous, None for bad credentials."""
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return ""
        user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        return user if s["users"].get(user) == password else None

    def unauthorized(self, s, path, user):
        flavor = s["flavor"]
        if flavor == "os2":
            return self.reply(401, "Unauthorized", [("WWW-Authenticate", 'Basic realm="OpenSearch Security"')], flavor)
        reason = (f"unable to authenticate user [{user}] for REST request [{path}]" if user
                  else f"missing authentication credentials for REST request [{path}]")
        challenges = ES_CHALLENGES[flavor]
        header = challenges[0] if len(challenges) == 1 else challenges
        err = {"type": "security_exception", "reason": reason, "header": {"WWW-Authenticate": header}}
        self.reply(401, {"error": {"root_cause": [err], **err}, "status": 401},
                   [("WWW-Authenticate", c) for c in challenges], flavor)

    def no_handler(self, s, path):
        self.reply(400, {"error": f"no handler found for uri [{path}] and method [GET]"}, flavor=s["flavor"])

    def do_GET(self):
        s = state()
        flavor = s["flavor"]
        url = urlparse(self.path)
        path = url.path
        who = self.caller(s) if s["security"] else "anonymous-without-security"
        anonymous_allowed = bool(s["anonymous_roles"])
        authenticated = who not in ("", None) or (who == "" and anonymous_allowed)
        health = path == "/_plugins/_security/health"
        if s["security"] and not authenticated and not (health and flavor == "os2"):
            return self.unauthorized(s, self.path, who)

        if path == "/":
            return self.reply(200, INFO[flavor], flavor=flavor)
        if path == "/_cat/indices":
            return self.reply(200, INDICES, flavor=flavor)
        if path == "/_xpack" and flavor != "os2":
            return self.reply(200, {"features": {
                "security": {"available": True, "enabled": s["security"]},
                "monitoring": {"available": True, "enabled": True},
                "ml": {"available": False, "enabled": True}}}, flavor=flavor)
        if path == "/_security/_authenticate" and flavor != "os2":
            if not s["security"]:
                reason = ("Security must be explicitly enabled when using a [basic] license. Enable security by setting "
                          "[xpack.security.enabled] to [true] in the elasticsearch.yml file and restart the node."
                          if flavor == "es7" else "Security is not enabled but a security rest handler is registered")
                err = {"type": "exception", "reason": reason}
                return self.reply(500, {"error": {"root_cause": [err], **err}, "status": 500}, flavor=flavor)
            if who == "":
                return self.reply(200, {"username": "_anonymous", "roles": s["anonymous_roles"], "full_name": None, "email": None,
                                        "metadata": {"_reserved": True}, "enabled": True,
                                        "authentication_realm": {"name": "__anonymous", "type": "__anonymous"},
                                        "lookup_realm": {"name": "__anonymous", "type": "__anonymous"},
                                        "authentication_type": "anonymous"}, flavor=flavor)
            return self.reply(200, {"username": who, "roles": ["monitoring_user"], "full_name": None, "email": None,
                                    "metadata": {}, "enabled": True,
                                    "authentication_realm": {"name": "default_native", "type": "native"},
                                    "lookup_realm": {"name": "default_native", "type": "native"},
                                    "authentication_type": "realm"}, flavor=flavor)
        if flavor == "os2" and path.startswith("/_plugins/_security/"):
            if not s["security"]:
                return self.no_handler(s, path)
            if health:
                return self.reply(200, {"message": None, "mode": "strict", "status": "UP"}, flavor=flavor)
            if path == "/_plugins/_security/authinfo":
                anon = who == ""
                name = "opendistro_security_anonymous" if anon else who
                backend = ["opendistro_security_anonymous_backendrole"] if anon else []
                roles = s["anonymous_roles"] if anon else ["readall_and_monitor"]
                return self.reply(200, {"user": f"User [name={name}, backend_roles={backend}, requestedTenant=null]",
                                        "user_name": name, "user_requested_tenant": None,
                                        "remote_address": "127.0.0.1:51234", "backend_roles": backend,
                                        "custom_attribute_names": [], "roles": roles, "tenants": {},
                                        "principal": None, "peer_certificates": "0", "sso_logout_url": None}, flavor=flavor)
        if path == "/_nodes/settings":
            if not s["cors_any"]:
                return self.reply(200, {}, flavor=flavor)
            return self.reply(200, {"nodes": {NODE_ID: {"settings": {"http": {"cors": {"allow-origin": "*", "enabled": "true"}}}}}}, flavor=flavor)
        if path == "/_nodes/http":
            return self.reply(200, {"nodes": {NODE_ID: {"http": {"bound_address": s["bind"]}}}}, flavor=flavor)
        return self.no_handler(s, path)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()
