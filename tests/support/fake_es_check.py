#!/usr/bin/env python3
"""Honesty check for fake_es.py: drive it with the official clients (elasticsearch-py 8.11 for the
Elasticsearch flavors, opensearch-py 2.4 for OpenSearch) and assert the statuses, exceptions,
headers and bodies the real servers give.

Setup: /root/.cache/lockwatch-venv/bin/pip install 'elasticsearch==8.11.1' 'opensearch-py==2.4.2'
Run:   /root/.cache/lockwatch-venv/bin/python tests/support/fake_es_check.py
Exit status 0 = every scenario passed. Each fake is started on a port it picks (PORT 0) and
killed at the end, whatever happens.
"""
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import traceback
import urllib.error
import urllib.request
import warnings

import elasticsearch
import opensearchpy
from elasticsearch import Elasticsearch, ElasticsearchWarning
from opensearchpy import OpenSearch

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake_es.py")
TMP = tempfile.mkdtemp(prefix="fake_es_check_")
NODE_ID = "Xq2r7tYkQmWlq4oY2vC5Zw"
MONITOR = ("lockwatch", "pw")
# What lockwatch asks for (src/sources/elasticsearch/collect.rs).
LW_CORS = "nodes.*.settings.http.cors"
LW_BIND = "nodes.*.http.bound_address"


class Fake:
    """fake_es.py on a port of its own choosing; stop() kills it."""

    def __init__(self, state, name, tls=None):
        self.state_path = os.path.join(TMP, name + ".json")
        self.set(state)
        cmd = [sys.executable, FAKE, "0", self.state_path]
        if tls:
            cmd += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        self.log = open(os.path.join(TMP, name + ".log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True)
        r, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline() if r else ""
        if not line.startswith("ready port="):
            self.stop()
            raise RuntimeError(f"fake_es did not start: {line!r}")
        self.port = int(line.split("=", 1)[1])
        self.scheme = "https" if tls else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"

    def set(self, state):
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, self.state_path)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


FAKES = []


def fake(state, name, tls=None):
    f = Fake(state, name, tls)
    FAKES.append(f)
    return f


def es_client(f, auth=None, **kw):
    kw.setdefault("request_timeout", 5)
    kw.setdefault("retry_on_timeout", False)
    kw.setdefault("max_retries", 0)
    return Elasticsearch(f.url, basic_auth=auth, **kw)


def os_client(f, auth=None, **kw):
    return OpenSearch([f.url], http_auth=auth, timeout=5, max_retries=0, **kw)


def raw(f, path, auth=None, method="GET", headers=None, context=None):
    """A plain HTTP request: (status, headers, body text) — for what the clients hide."""
    req = urllib.request.Request(f.url + path, method=method)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=5, context=context) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


class Failed(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def raises(exc_type, fn, status=None, error_type=None, contains=None):
    """Run fn; it must raise exc_type (with that HTTP status / error type / text). Returns the exception."""
    try:
        got = fn()
    except exc_type as e:
        st = getattr(e, "status_code", None) or getattr(getattr(e, "meta", None), "status", None)
        if status is not None:
            check(st == status, f"expected status {status}, got {st}: {e!r}")
        if error_type is not None:
            check(error_type in str(e) or error_type == getattr(e, "error", None),
                  f"expected error type {error_type}: {e!r}")
        if contains is not None:
            text = str(e) + " " + json.dumps(getattr(e, "body", None) or getattr(e, "info", None) or "", default=str)
            check(contains in text, f"expected {contains!r} in {text[:600]}")
        return e
    except Exception as e:
        raise Failed(f"expected {exc_type.__name__}, got {type(e).__name__}: {e!r}") from e
    raise Failed(f"expected {exc_type.__name__}, got a success: {str(got)[:300]}")


RESULTS = []


def scenario(fn):
    RESULTS.append(fn)
    return fn


# ------------------------------------------------------------------ Elasticsearch 7.17 and 8.11

def es_flavors(fn):
    for flavor in ("es7", "es8"):
        def one(flavor=flavor):
            return fn(flavor)
        one.__name__ = f"{fn.__name__}[{flavor}]"
        RESULTS.append(one)
    return fn


@es_flavors
def es_secured_cluster_with_and_without_credentials(flavor):
    f = fake({"flavor": flavor, "users": {"lockwatch": "pw"}}, f"{flavor}-secured")
    version = {"es7": "7.17.18", "es8": "8.11.3"}[flavor]
    es = es_client(f, MONITOR)
    info = es.info()
    check(info.meta.status == 200 and info["version"]["number"] == version, f"info: {info}")
    check(info.meta.headers.get("x-elastic-product") == "Elasticsearch", f"product header: {info.meta.headers}")
    check(es.ping() is True, "ping with credentials")
    # No credentials: 401 with the realm's challenges, and the product header is still there.
    anon = es_client(f)
    e = raises(elasticsearch.AuthenticationException, anon.info, 401, "security_exception",
               "missing authentication credentials for REST request [/]")
    check(e.meta.headers.get("x-elastic-product") == "Elasticsearch", "401 carries X-elastic-product")
    challenges = e.meta.headers.get("www-authenticate", "")
    check(challenges.startswith('Basic realm="security"'), f"challenge: {challenges}")
    check(("ApiKey" in challenges) == (flavor == "es8"), f"es8 offers ApiKey and Bearer, es7 only Basic: {challenges}")
    check(anon.ping() is False, "ping without credentials")
    raises(elasticsearch.AuthenticationException, lambda: anon.cat.indices(format="json"), 401)
    raises(elasticsearch.AuthenticationException, anon.security.authenticate, 401)
    # Wrong password: 401 naming the user.
    bad = es_client(f, ("lockwatch", "nope"))
    raises(elasticsearch.AuthenticationException, bad.info, 401, "security_exception",
           "unable to authenticate user [lockwatch] for REST request [/]")
    who = es.security.authenticate()
    check(who["username"] == "lockwatch" and who["authentication_type"] == "realm", f"authenticate: {who}")


@es_flavors
def es_cat_indices_formats(flavor):
    f = fake({"flavor": flavor, "users": {"lockwatch": "pw"}}, f"{flavor}-cat")
    es = es_client(f, MONITOR)
    rows = es.cat.indices(format="json")
    check(sorted(r["index"] for r in rows) == ["cameras", "users"], f"cat json: {rows}")
    check(all(isinstance(v, str) for r in rows for v in r.values()), "_cat JSON values are strings")
    check(("dataset.size" in rows[0]) == (flavor == "es8"), "dataset.size column is 8.x only")
    text = es.cat.indices()
    check(isinstance(text.body, str) and "users" in text.body and not text.body.lstrip().startswith("["),
          f"_cat without format is text: {text.body!r}")
    check(text.meta.headers["content-type"].startswith("text/plain"), f"text content type: {text.meta.headers}")
    header = es.cat.indices(v=True, h="index,docs.count", s="index").body.splitlines()
    check(header[0].split() == ["index", "docs.count"] and header[1].split() == ["cameras", "513221"], f"v/h/s: {header}")
    raw_rows = es.cat.indices(format="json", bytes="b")
    check(any(r["store.size"] == "1288490189" for r in raw_rows), f"bytes=b: {raw_rows}")
    # lockwatch's own request, anonymous, on an open cluster
    f.set({"flavor": flavor, "security": False})
    status, _, body = raw(f, "/_cat/indices?format=json")
    check(status == 200 and json.loads(body)[0]["index"] == "users", f"open cluster lists indices: {status} {body}")
    raises(elasticsearch.NotFoundError, lambda: es.cat.indices(index="nope", format="json"), 404,
           "index_not_found_exception")


@es_flavors
def es_query_strings_are_honoured(flavor):
    f = fake({"flavor": flavor, "users": {"lockwatch": "pw"}, "bind": ["[::]:9200", "0.0.0.0:9200"]}, f"{flavor}-query")
    es = es_client(f, MONITOR)
    got = es.nodes.info(metric="http", filter_path=LW_BIND)
    check(got.body == {"nodes": {NODE_ID: {"http": {"bound_address": ["[::]:9200", "0.0.0.0:9200"]}}}}, f"bind: {got}")
    # A filter that matches nothing is `{}`, as on a real cluster: a typo in lockwatch must show here.
    check(es.nodes.info(metric="http", filter_path="nodes.*.http.bound_adress").body == {}, "typo -> {}")
    check(es.nodes.info(metric="http", filter_path="nodes.http.bound_address").body == {}, "missing * -> {}")
    check(es.nodes.info(metric="settings", filter_path=LW_CORS).body == {}, "no CORS settings -> {}")
    both = es.nodes.info(metric="http", filter_path=["nodes.*.name", "_nodes.total"]).body
    check(both == {"_nodes": {"total": 1}, "nodes": {NODE_ID: {"name": both["nodes"][NODE_ID]["name"]}}}, f"list: {both}")
    deep = es.nodes.info(filter_path="**.bound_address").body
    check(set(deep["nodes"][NODE_ID]) == {"http", "transport"}, f"** matches any depth: {deep}")
    excl = es.nodes.info(metric="http", filter_path="-nodes,-_nodes").body
    check(set(excl) == {"cluster_name"}, f"exclusions: {excl}")
    human = es.nodes.info(metric="http", human=True, filter_path="nodes.*.http.max_content_length*").body
    check(human["nodes"][NODE_ID]["http"] == {"max_content_length": "100mb", "max_content_length_in_bytes": 104857600},
          f"human: {human}")
    # The _nodes path: /{metric}, /{node}, /{node}/{metric}; an unknown metric is a 400.
    check(es.nodes.info(node_id="_local", metric="http", filter_path="nodes.*.http.publish_address").body,
          "_local/http")
    check(es.nodes.info(node_id="no-such-node").body["nodes"] == {}, "unknown node id -> no nodes")
    raises(elasticsearch.BadRequestError,
           lambda: es.perform_request("GET", "/_nodes/_local/htp", headers={"accept": "application/json"}), 400,
           "illegal_argument_exception", "request [/_nodes/_local/htp] contains unrecognized metric: [htp] -> did you mean [http]?")
    # Unknown parameters are refused after authentication, with Elasticsearch's suggestion.
    raises(elasticsearch.BadRequestError,
           lambda: es.perform_request("GET", "/_cat/indices", params={"x": "1"}, headers={"accept": "application/json"}),
           400, "illegal_argument_exception", "request [/_cat/indices] contains unrecognized parameter: [x]")
    raises(elasticsearch.BadRequestError,
           lambda: es.perform_request("GET", "/_nodes/http", params={"filter_paths": "x"}, headers={"accept": "application/json"}),
           400, None, "unrecognized parameter: [filter_paths] -> did you mean [filter_path]?")
    anon = es_client(f)
    raises(elasticsearch.AuthenticationException,
           lambda: anon.perform_request("GET", "/_cat/indices", params={"x": "1"}, headers={"accept": "application/json"}), 401)
    # _xpack: categories, and an unknown one is a 400.
    x = es.xpack.info(categories="features")
    check(set(x.body) == {"features", "tagline"} and x["features"]["security"] == {"available": True, "enabled": True},
          f"xpack features: {x}")
    check(set(es.xpack.info().body) == {"build", "license", "features", "tagline"}, "xpack default categories")
    raises(elasticsearch.BadRequestError, lambda: es.xpack.info(categories="feature"), 400, "illegal_argument_exception")
    # pretty is Jackson's layout; cluster settings with include_defaults/flat_settings.
    _, _, pretty = raw(f, "/", MONITOR)            # GET / is pretty unless pretty=false
    check(pretty.startswith('{\n  "name" : ') and pretty.endswith("}\n"), f"pretty: {pretty[:80]!r}")
    _, _, compact = raw(f, "/?pretty=false", MONITOR)
    check(compact.startswith('{"name":'), f"pretty=false: {compact[:40]!r}")
    _, _, nodes_pretty = raw(f, "/_nodes/http?pretty&filter_path=" + LW_BIND, MONITOR)
    check(nodes_pretty == '{\n  "nodes" : {\n    "%s" : {\n      "http" : {\n        "bound_address" : '
          '[ "[::]:9200", "0.0.0.0:9200" ]\n      }\n    }\n  }\n}\n' % NODE_ID, f"Jackson layout: {nodes_pretty!r}")
    cs = es.cluster.get_settings(include_defaults=True, flat_settings=True)
    check(cs["persistent"] == {} and "http.cors.enabled" in cs["defaults"], f"cluster settings: {str(cs)[:300]}")


@es_flavors
def es_authorization_403(flavor):
    roles = {"no_cluster": {"cluster": [], "indices": [{"names": ["*"], "privileges": ["read"]}]}}
    users = {"lockwatch": "pw", "reader": {"password": "r", "roles": ["no_cluster"]},
             "mon": {"password": "m", "roles": ["monitoring_user"]},
             "ghost": {"password": "g", "roles": ["monitoring_user", "no_such_role"]}}
    f = fake({"flavor": flavor, "users": users, "roles": roles, "role_model": "real"}, f"{flavor}-authz")
    reader = es_client(f, ("reader", "r"))
    e = raises(elasticsearch.AuthorizationException, lambda: reader.nodes.info(metric="http", filter_path=LW_BIND),
               403, "security_exception", "action [cluster:monitor/nodes/info] is unauthorized for user [reader] with ")
    reason = e.body["error"]["reason"]
    if flavor == "es8":
        check("with effective roles [no_cluster], this action is granted by the cluster privileges [monitor,manage,all]"
              in reason, reason)
    else:
        check("with roles [no_cluster], this action is granted by the cluster privileges [monitor,manage,all]" in reason, reason)
    check(e.body["status"] == 403 and e.body["error"]["root_cause"][0]["type"] == "security_exception", f"{e.body}")
    check(e.meta.headers.get("x-elastic-product") == "Elasticsearch", "403 carries X-elastic-product")
    # GET / and _xpack need cluster privileges too (monitoring_user has exactly those two actions).
    raises(elasticsearch.AuthorizationException, reader.info, 403, None, "action [cluster:monitor/main]")
    raises(elasticsearch.AuthorizationException, lambda: reader.xpack.info(categories="features"), 403, None,
           "action [cluster:monitor/xpack/info]")
    reader.security.authenticate()          # always allowed for oneself
    mon = es_client(f, ("mon", "m"))
    check(mon.info()["version"]["number"], "monitoring_user: GET /")
    check(mon.xpack.info(categories="features")["features"]["security"]["enabled"] is True, "monitoring_user: _xpack")
    raises(elasticsearch.AuthorizationException, lambda: mon.nodes.info(metric="settings", filter_path=LW_CORS), 403)
    raises(elasticsearch.AuthorizationException, lambda: mon.cat.indices(format="json"), 403, None,
           "action [cluster:monitor/state]")
    ghost = es_client(f, ("ghost", "g"))
    e = raises(elasticsearch.AuthorizationException, lambda: ghost.nodes.info(metric="http"), 403)
    if flavor == "es8":
        check("with effective roles [monitoring_user] (assigned roles [no_such_role] were not found)"
              in e.body["error"]["reason"], e.body["error"]["reason"])
    lw = es_client(f, MONITOR)        # the legacy user form: a monitoring role with `monitor`
    check(lw.nodes.info(metric="http", filter_path=LW_BIND)["nodes"], "monitor user reads _nodes")


@es_flavors
def es_anonymous_access(flavor):
    roles = {"anon_read": {"cluster": [], "indices": [{"names": ["*"], "privileges": ["read"]}]},
             "anon_mon": {"cluster": ["monitor"], "indices": [{"names": ["users"], "privileges": ["monitor"]}]}}
    state = {"flavor": flavor, "users": {"lockwatch": "pw"}, "roles": roles, "role_model": "real",
             "anonymous_roles": ["anon_read"]}
    f = fake(state, f"{flavor}-anon")
    anon = es_client(f)
    who = anon.security.authenticate()
    check(who["username"] == "_anonymous" and who["roles"] == ["anon_read"] and who["authentication_type"] == "anonymous",
          f"anonymous authenticate: {who}")
    e = raises(elasticsearch.AuthorizationException, anon.info, 403, None, "is unauthorized for user [_anonymous]")
    check("www-authenticate" not in {k.lower() for k in e.meta.headers}, "a 403 has no challenge")
    # Authenticated users inherit the anonymous roles (and _authenticate says so).
    check(es_client(f, MONITOR).security.authenticate()["roles"] == ["remote_monitoring_collector", "anon_read"],
          "anonymous roles added to users")
    # Wrong credentials stay 401 even with anonymous access on.
    raises(elasticsearch.AuthenticationException, es_client(f, ("lockwatch", "x")).info, 401)
    # authz_exception: false turns the anonymous denial into a 401 challenge.
    f.set(dict(state, anonymous_authz_exception=False))
    raises(elasticsearch.AuthenticationException, anon.info, 401, None, "action [cluster:monitor/main] requires authentication")
    # With monitor, anonymous lists exactly the indices its role covers.
    f.set(dict(state, anonymous_roles=["anon_mon"]))
    rows = anon.cat.indices(format="json")
    check([r["index"] for r in rows] == ["users"], f"anonymous sees what its role grants: {rows}")
    check(anon.info()["tagline"] == "You Know, for Search", "anonymous with monitor: GET /")


@es_flavors
def es_security_disabled(flavor):
    f = fake({"flavor": flavor, "security": False}, f"{flavor}-off")
    anon = es_client(f)
    check(anon.info()["version"]["number"].startswith(flavor[2]), "open cluster: info without credentials")
    check(es_client(f, ("anyone", "anything")).info().meta.status == 200, "credentials are ignored")
    check(anon.xpack.info(categories="features")["features"]["security"]["enabled"] is False, "xpack says disabled")
    check(anon.nodes.info(metric="http", filter_path=LW_BIND)["nodes"], "open _nodes")
    if flavor == "es8":
        raises(elasticsearch.BadRequestError, anon.security.authenticate, 400, None,
               "no handler found for uri [/_security/_authenticate] and method [GET]")
        return
    # 7.17 on its basic-license default: the handler exists, the feature does not, and every response warns.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ElasticsearchWarning)
        raises(elasticsearch.ApiError, anon.security.authenticate, 500, None,
               "Security must be explicitly enabled when using a [basic] license")
        anon.info()
    check(any("built-in security features are not enabled" in str(w.message) for w in caught),
          f"the 7.x deprecation warning header: {[str(w.message) for w in caught]}")
    f.set({"flavor": flavor, "security": False, "security_off_by": "setting"})
    raises(elasticsearch.BadRequestError, anon.security.authenticate, 400, None, "no handler found")


@es_flavors
def es_overload_is_not_silence(flavor):
    state = {"flavor": flavor, "users": {"lockwatch": "pw"}}
    f = fake(dict(state, overload={"path": "/_cat/indices", "status": 429}), f"{flavor}-overload")
    es = es_client(f, MONITOR)
    e = raises(elasticsearch.ApiError, lambda: es.cat.indices(format="json"), 429, "es_rejected_execution_exception")
    check(e.body["status"] == 429 and "rejected execution of" in e.body["error"]["reason"], f"{e.body}")
    check(es.info().meta.status == 200, "other paths still answer")
    # Unauthenticated callers are still refused first (the rejection happens when the action runs).
    raises(elasticsearch.AuthenticationException, lambda: es_client(f).cat.indices(format="json"), 401)
    f.set(dict(state, overload={"path": "*", "status": 429, "kind": "circuit_breaking"}))
    e = raises(elasticsearch.ApiError, es.info, 429, "circuit_breaking_exception")
    check(e.body["error"]["durability"] == "PERMANENT" and e.body["error"]["bytes_limit"] > 0, f"{e.body}")
    # The in-flight breaker runs before the 7.x security handler wrapper, after 8.x's HTTP-layer authentication.
    anon = es_client(f)
    raises(elasticsearch.ApiError if flavor == "es7" else elasticsearch.AuthenticationException, anon.info,
           429 if flavor == "es7" else 401)
    f.set(dict(state, overload={"path": "/_nodes/http", "status": 503}))
    raises(elasticsearch.ApiError, lambda: es.nodes.info(metric="http", filter_path=LW_BIND), 503,
           "master_not_discovered_exception")
    f.set(dict(state, security=False, overload={"path": "/_cat/indices", "status": 503, "who": "anonymous"}))
    raises(elasticsearch.ApiError, lambda: es_client(f).cat.indices(format="json"), 503)
    check(es.cat.indices(format="json").meta.status == 200, "'who' selects the anonymous probe only")


SMALL = [{"index": "a", "docs": 12, "bytes": 1000}, {"index": "b", "docs": 30, "bytes": 2000, "pri": 2}]
SEARCH_DENIED = "this action is granted by the index privileges [read,all]"


@es_flavors
def es_search_open_cluster(flavor):
    f = fake({"flavor": flavor, "security": False}, f"{flavor}-search-open")
    anon = es_client(f)
    r = anon.search(index="*", size=0)               # POST /*/_search {"size": 0}
    check(r.meta.status == 200 and r.body == {"took": 1, "timed_out": False,
          "_shards": {"total": 2, "successful": 2, "skipped": 0, "failed": 0},
          "hits": {"total": {"value": 10000, "relation": "gte"}, "max_score": None, "hits": []}},
          f"default track_total_hits caps at 10000: {r.body}")
    exact = anon.search(index="*", size=0, track_total_hits=True)["hits"]["total"]
    check(exact == {"value": 2913221, "relation": "eq"}, f"track_total_hits=true: {exact}")
    check(anon.search(size=0, rest_total_hits_as_int=True)["hits"]["total"] == 2913221, "rest_total_hits_as_int")
    check("total" not in anon.search(index="users", size=0, track_total_hits=False)["hits"], "tracking disabled")
    check(anon.search(index="users", size=0, track_total_hits=True)["hits"]["total"]["value"] == 2400000, "one index")
    # lockwatch's own probe, and the query-string forms
    status, _, body = raw(f, "/_search?size=0")
    check(status == 200 and json.loads(body)["hits"]["total"] == {"value": 10000, "relation": "gte"}, f"{status} {body}")
    status, _, body = raw(f, "/_search?size=0&track_total_hits=true&filter_path=hits.total.value", method="POST")
    check(status == 200 and json.loads(body) == {"hits": {"total": {"value": 2913221}}}, f"POST + filter_path: {body}")
    status, _, body = raw(f, "/_search?size=0&rest_total_hits_as_int=true&track_total_hits=100")
    check(status == 400 and "cannot be used if the tracking of total hits is not accurate, got 100" in body, body)
    raises(elasticsearch.BadRequestError, lambda: anon.perform_request(
        "GET", "/_search", params={"sizee": "0"}, headers={"accept": "application/json"}), 400,
        "illegal_argument_exception", "request [/_search] contains unrecognized parameter: [sizee] -> did you mean [size]?")
    raises(elasticsearch.BadRequestError, lambda: anon.perform_request(
        "GET", "/_search", params={"analyzer": "standard"}, headers={"accept": "application/json"}), 400, None,
        "unrecognized parameter: [analyzer]")         # read only together with q
    check(anon.perform_request("GET", "/_search", params={"q": "x", "analyzer": "standard", "size": "0"},
                               headers={"accept": "application/json"}).meta.status == 200, "q + analyzer")
    raises(elasticsearch.BadRequestError, lambda: anon.perform_request(
        "GET", "/_search", params={"size": "ten"}, headers={"accept": "application/json"}), 400, None,
        "Failed to parse int parameter [size] with value [ten]")
    # Indices: a missing name is a 404, a wildcard matching nothing an empty answer with no shard.
    raises(elasticsearch.NotFoundError, lambda: anon.search(index="nope", size=0), 404, "index_not_found_exception",
           "no such index [nope]")
    none = anon.search(index="nope*", size=0).body
    check(none["_shards"]["total"] == 0 and none["hits"] == {"total": {"value": 0, "relation": "eq"}, "max_score": 0.0,
                                                             "hits": []}, f"no shards: {none}")
    raises(elasticsearch.NotFoundError, lambda: anon.search(index="nope*", size=0, allow_no_indices=False), 404)
    check(anon.search(index="users,nope", size=0, ignore_unavailable=True)["_shards"]["total"] == 1, "ignore_unavailable")
    status, _, _ = raw(f, "/_search", method="PUT")
    check(status == 405, f"PUT /_search: {status}")
    f.set({"flavor": flavor, "security": False, "indices": SMALL})
    small = anon.search(index="*", size=0).body
    check(small["hits"]["total"] == {"value": 42, "relation": "eq"} and small["_shards"]["total"] == 3, f"{small}")


@es_flavors
def es_search_secured(flavor):
    roles = {"all_read": {"cluster": [], "indices": [{"names": ["*"], "privileges": ["read"]}]},
             "users_read": {"cluster": [], "indices": [{"names": ["users"], "privileges": ["read"]}]}}
    users = {"lockwatch": "pw", "reader": {"password": "r", "roles": ["all_read"]},
             "partial": {"password": "p", "roles": ["users_read"]},
             "beats": {"password": "b", "roles": ["beats_system"]}}
    f = fake({"flavor": flavor, "users": users, "roles": roles, "role_model": "real"}, f"{flavor}-search-secured")
    raises(elasticsearch.AuthenticationException, lambda: es_client(f).search(index="*", size=0), 401,
           "security_exception", "missing authentication credentials for REST request [/*/_search]")
    status, headers, _ = raw(f, "/_search?size=0")
    check(status == 401 and headers["WWW-Authenticate"].startswith("Basic"), f"anonymous probe: {status}")
    check(es_client(f, ("reader", "r")).search(index="*", size=0)["_shards"]["total"] == 2, "read on * searches all")
    # Wildcards expand to what the caller may read; a named index it may not read is a 403.
    partial = es_client(f, ("partial", "p"))
    got = partial.search(index="*", size=0, track_total_hits=True).body
    check(got["hits"]["total"]["value"] == 2400000 and got["_shards"]["total"] == 1, f"only users: {got}")
    e = raises(elasticsearch.AuthorizationException, lambda: partial.search(index="cameras", size=0), 403,
               "security_exception")
    who = "with effective roles [users_read]" if flavor == "es8" else "with roles [users_read]"
    check(e.body["error"]["reason"] == f"action [indices:data/read/search] is unauthorized for user [partial] {who} "
          f"on indices [cameras], {SEARCH_DENIED}", e.body["error"]["reason"])
    raises(elasticsearch.NotFoundError, lambda: es_client(f, ("reader", "r")).search(index="nope", size=0), 404)
    raises(elasticsearch.AuthorizationException, lambda: partial.search(index="nope", size=0), 403, None,
           "on indices [nope]")
    # read on some index only (remote_monitoring_collector: .kibana*): `*` is an empty answer, not a 403.
    empty = es_client(f, MONITOR).search(index="*", size=0).body
    check(empty["_shards"]["total"] == 0 and empty["hits"]["total"]["value"] == 0, f"placeholder: {empty}")
    # no index privilege at all: 403, without "on indices".
    e = raises(elasticsearch.AuthorizationException, lambda: es_client(f, ("beats", "b")).search(index="*", size=0), 403)
    who = "with effective roles [beats_system]" if flavor == "es8" else "with roles [beats_system]"
    check(e.body["error"]["reason"] == f"action [indices:data/read/search] is unauthorized for user [beats] {who}, "
          f"{SEARCH_DENIED}", e.body["error"]["reason"])


@es_flavors
def es_anonymous_viewer_searches(flavor):
    state = {"flavor": flavor, "users": {"lockwatch": "pw"}, "role_model": "real", "anonymous_roles": ["viewer"]}
    f = fake(state, f"{flavor}-search-anon")
    anon = es_client(f)
    # The real viewer role has no cluster privilege: / and _cat/indices are refused, searching works.
    raises(elasticsearch.AuthorizationException, anon.info, 403, None, "action [cluster:monitor/main]")
    raises(elasticsearch.AuthorizationException, lambda: anon.cat.indices(format="json"), 403, None,
           "action [cluster:monitor/state] is unauthorized for user [_anonymous]")
    check(anon.search(index="*", size=0)["_shards"]["total"] == 2, "anonymous viewer searches every index")
    status, _, body = raw(f, "/_search?size=0")
    check(status == 200 and json.loads(body)["hits"]["total"]["relation"] == "gte", f"anonymous probe: {status} {body}")
    check(raw(f, "/.internal/_search?size=0")[0] == 403, "viewer excludes dot-indices")
    # An anonymous role without any index privilege: 403, or 401 with authz_exception: false.
    f.set(dict(state, anonymous_roles=["beats_system"]))
    raises(elasticsearch.AuthorizationException, lambda: anon.search(index="*", size=0), 403, None,
           "action [indices:data/read/search] is unauthorized for user [_anonymous]")
    f.set(dict(state, anonymous_roles=["beats_system"], anonymous_authz_exception=False))
    raises(elasticsearch.AuthenticationException, lambda: anon.search(index="*", size=0), 401, None,
           "action [indices:data/read/search] requires authentication")
    # The lenient role model (the default): whatever lists indices may also search.
    f.set(dict(state, role_model="lenient"))
    check(anon.cat.indices(format="json") and anon.search(index="*", size=0).meta.status == 200, "lenient viewer")


@es_flavors
def es_search_overload(flavor):
    state = {"flavor": flavor, "users": {"lockwatch": "pw"}, "role_model": "real", "anonymous_roles": ["viewer"]}
    f = fake(dict(state, overload={"path": "*/_search", "status": 429}), f"{flavor}-search-overload")
    anon, es = es_client(f), es_client(f, MONITOR)
    e = raises(elasticsearch.ApiError, lambda: anon.search(index="*", size=0), 429, "search_phase_execution_exception")
    err = e.body["error"]
    check(err["reason"] == "all shards failed" and err["root_cause"][0]["type"] == "es_rejected_execution_exception"
          and "/search, queue capacity" in err["root_cause"][0]["reason"]
          and sorted(x["index"] for x in err["failed_shards"]) == ["cameras", "users"], f"{e.body}")
    status, _, _ = raw(f, "/_search?size=0")
    check(status == 429, f"lockwatch's probe is rejected too: {status}")
    # Users inherit the anonymous roles (viewer): rejected as well; no shard to search, nothing to reject.
    raises(elasticsearch.ApiError, lambda: es.search(index="*", size=0), 429, "search_phase_execution_exception")
    check(es.search(index="nope*", size=0)["_shards"]["total"] == 0, "no shard to search: nothing to reject")
    f.set(dict(state, overload={"path": "/_search", "status": 503, "who": "anonymous"}))
    status, _, body = raw(f, "/_search?size=0")
    check(status == 503 and json.loads(body)["error"]["type"] == "cluster_block_exception", f"{status} {body}")
    check(raw(f, "/_search?size=0", MONITOR)[0] == 200, "'who' spares the authenticated caller")
    f.set(dict(state, overload={"path": "/_search", "status": 429, "who": "authenticated"}))
    check(raw(f, "/_search?size=0")[0] == 200, "the anonymous probe is spared")
    check(raw(f, "/_search?size=0", MONITOR)[0] == 429, "the authenticated search is rejected")
    f.set({"flavor": flavor, "security": False, "overload": {"path": "/_search", "status": 429, "kind": "circuit_breaking"}})
    e = raises(elasticsearch.ApiError, lambda: anon.perform_request("GET", "/_search", params={"size": "0"},
                                                                    headers={"accept": "application/json"}), 429,
               "circuit_breaking_exception")


@scenario
def es8_https_and_compatibility_headers():
    cert, key = os.path.join(TMP, "cert.pem"), os.path.join(TMP, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    f = fake({"flavor": "es8", "users": {"lockwatch": "pw"}}, "es8-tls", tls=(cert, key))
    es = es_client(f, MONITOR, ca_certs=cert)
    check(es.info()["version"]["number"] == "8.11.3", "https info")
    raises(elasticsearch.AuthenticationException, es_client(f, ca_certs=cert).info, 401)
    raises(elasticsearch.SSLError, es_client(f, MONITOR).info)          # an unknown CA is refused by the client
    plain = Elasticsearch(f"http://127.0.0.1:{f.port}", basic_auth=MONITOR, request_timeout=5, max_retries=0)
    raises(elasticsearch.ConnectionError, plain.info)                    # plain HTTP to the TLS port: dropped
    # Compatible-with: 8 and 7 are served (with the vendor media type back), anything else is a 400.
    status, headers, _ = raw(f, "/", MONITOR, context=__import__("ssl").create_default_context(cafile=cert),
                             headers={"Accept": "application/vnd.elasticsearch+json; compatible-with=7"})
    check(status == 200 and headers["content-type"] == "application/vnd.elasticsearch+json;compatible-with=7",
          f"compat 7: {status} {dict(headers)}")
    status, headers, _ = raw(f, "/", MONITOR, context=__import__("ssl").create_default_context(cafile=cert))
    check(status == 200 and headers["content-type"] == "application/json", f"plain accept: {dict(headers)}")
    raises(elasticsearch.BadRequestError, lambda: es.perform_request(
        "GET", "/", headers={"accept": "application/vnd.elasticsearch+json; compatible-with=9"}), 400,
        "media_type_header_exception", "Accept version must be either version 8 or 7, but found 9")


# ------------------------------------------------------------------ OpenSearch 2.11

@scenario
def os2_secured_cluster():
    users = {"lockwatch": "pw", "reader": {"password": "r", "roles": ["readall"], "backend_roles": ["analysts"]},
             "admin": {"password": "a", "roles": ["all_access"], "backend_roles": ["admin"]}}
    f = fake({"flavor": "os2", "users": users, "role_model": "real"}, "os2-secured")
    client = os_client(f, MONITOR)
    info = client.info()
    check(info["version"]["distribution"] == "opensearch" and info["version"]["number"] == "2.11.1", f"{info}")
    status, headers, _ = raw(f, "/", MONITOR)
    check(status == 200 and "X-elastic-product" not in headers, "OpenSearch never sends X-elastic-product")
    check(headers["content-type"] == "application/json; charset=UTF-8", f"{dict(headers)}")
    anon = os_client(f)
    e = raises(opensearchpy.AuthenticationException, anon.info, 401)
    check(e.error == "Unauthorized" and e.info is None, f"OpenSearch's 401 body is the text Unauthorized: {e.args!r}")
    status, headers, body = raw(f, "/")
    check(headers["WWW-Authenticate"] == 'Basic realm="OpenSearch Security"' and body == "Unauthorized", f"{dict(headers)}")
    raises(opensearchpy.AuthenticationException, os_client(f, ("lockwatch", "x")).info, 401)
    # The health endpoint needs no credentials; authinfo needs an authenticated caller.
    check(anon.transport.perform_request("GET", "/_plugins/_security/health")["status"] == "UP", "health")
    me = client.transport.perform_request("GET", "/_plugins/_security/authinfo")
    check(me["user_name"] == "lockwatch" and me["roles"] == ["readall_and_monitor"], f"authinfo: {me}")
    raises(opensearchpy.AuthenticationException,
           lambda: anon.transport.perform_request("GET", "/_plugins/_security/authinfo"), 401)
    # readall_and_monitor has cluster_monitor but no indices:monitor/* on any index: _cat/indices is refused.
    raises(opensearchpy.AuthorizationException, lambda: client.cat.indices(format="json"), 403, None,
           "no permissions for [indices:monitor/settings/get] and User [name=lockwatch, backend_roles=[], requestedTenant=null]")
    rows = os_client(f, ("admin", "a")).cat.indices(format="json")
    check(sorted(r["index"] for r in rows) == ["cameras", "users"] and "dataset.size" not in rows[0], f"{rows}")
    got = client.nodes.info(metric="http", filter_path=LW_BIND)
    check(got == {"nodes": {NODE_ID: {"http": {"bound_address": ["127.0.0.1:9200"]}}}}, f"{got}")
    check(client.nodes.info(metric="settings", filter_path=LW_CORS) == {}, "no CORS -> {}")
    # readall has no cluster_monitor: 403 in OpenSearch's words.
    reader = os_client(f, ("reader", "r"))
    e = raises(opensearchpy.AuthorizationException, lambda: reader.nodes.info(metric="http"), 403, "security_exception")
    check(e.info["error"]["reason"] == "no permissions for [cluster:monitor/nodes/info] and User [name=reader, "
          "backend_roles=[analysts], requestedTenant=null]", f"{e.info}")
    raises(opensearchpy.AuthorizationException, reader.info, 403, None, "no permissions for [cluster:monitor/main]")
    raises(opensearchpy.RequestError, lambda: client.transport.perform_request("GET", "/_cat/indices", params={"x": "1"}),
           400, "illegal_argument_exception")
    check(client.cluster.get_settings()["persistent"] == {}, "cluster settings")
    raises(opensearchpy.RequestError, lambda: client.transport.perform_request("GET", "/_xpack"), 400)


@scenario
def os2_anonymous_disabled_plugin_and_overload():
    f = fake({"flavor": "os2", "users": {"lockwatch": "pw"}, "anonymous_roles": ["readall_and_monitor"],
              "role_model": "real"}, "os2-anon")
    anon = os_client(f)
    me = anon.transport.perform_request("GET", "/_plugins/_security/authinfo")
    check(me["user_name"] == "opendistro_security_anonymous"
          and me["backend_roles"] == ["opendistro_security_anonymous_backendrole"]
          and me["roles"] == ["readall_and_monitor"], f"anonymous authinfo: {me}")
    check(anon.info()["version"]["distribution"] == "opensearch", "anonymous readall_and_monitor reads /")
    f.set({"flavor": "os2", "security": False})
    raises(opensearchpy.RequestError, lambda: anon.transport.perform_request("GET", "/_plugins/_security/health"), 400,
           None, "no handler found for uri [/_plugins/_security/health] and method [GET]")
    check(anon.cat.indices(format="json")[0]["index"] == "users", "plugin off: open")
    f.set({"flavor": "os2", "security": False, "overload": {"path": "/_cat/indices", "status": 429}})
    e = raises(opensearchpy.TransportError, lambda: anon.cat.indices(format="json"), 429)
    check(e.error == "rejected_execution_exception", f"OpenSearch's type name: {e.error}")


@scenario
def os2_search():
    users = {"lockwatch": "pw", "admin": {"password": "a", "roles": ["all_access"]},
             "partial": {"password": "p", "roles": ["users_read"]}}
    roles = {"users_read": {"cluster": [], "indices": [{"names": ["users"], "privileges": ["search"]}]}}
    f = fake({"flavor": "os2", "security": False}, "os2-search")
    anon = os_client(f)
    r = anon.search(index="*", size=0)               # POST /*/_search?size=0
    check(r == {"took": 1, "timed_out": False, "_shards": {"total": 2, "successful": 2, "skipped": 0, "failed": 0},
                "hits": {"total": {"value": 10000, "relation": "gte"}, "max_score": None, "hits": []}}, f"{r}")
    check(anon.search(index="*", size=0, track_total_hits="true")["hits"]["total"]["value"] == 2913221, "exact")
    check(anon.search(size=0, rest_total_hits_as_int="true")["hits"]["total"] == 2913221, "as int")
    status, headers, body = raw(f, "/_search?size=0")
    check(status == 200 and "X-elastic-product" not in headers, f"open probe: {status} {body}")
    raises(opensearchpy.RequestError, lambda: anon.transport.perform_request("GET", "/_search", params={"sizee": "0"}),
           400, "illegal_argument_exception")
    raises(opensearchpy.NotFoundError, lambda: anon.search(index="nope", size=0), 404, "index_not_found_exception")
    # Secured, the real roles: no anonymous access -> 401 text; readall for anonymous -> search only.
    state = {"flavor": "os2", "users": users, "roles": roles, "role_model": "real"}
    f.set(state)
    status, headers, body = raw(f, "/_search?size=0")
    check(status == 401 and body == "Unauthorized" and headers["WWW-Authenticate"] == 'Basic realm="OpenSearch Security"',
          f"{status} {body}")
    raises(opensearchpy.AuthenticationException, lambda: anon.search(index="*", size=0), 401)
    f.set(dict(state, anonymous_roles=["readall"]))
    check(anon.search(index="*", size=0)["_shards"]["total"] == 2, "anonymous readall searches")
    check(raw(f, "/_search?size=0")[0] == 200, "anonymous probe with readall")
    raises(opensearchpy.AuthorizationException, lambda: anon.cat.indices(format="json"), 403, None,
           "no permissions for [cluster:monitor/state] and User [name=opendistro_security_anonymous, "
           "backend_roles=[opendistro_security_anonymous_backendrole], requestedTenant=null]")
    raises(opensearchpy.AuthorizationException, anon.info, 403, None, "no permissions for [cluster:monitor/main]")
    # Every index a wildcard resolves to must be permitted (do_not_fail_on_forbidden is off).
    partial = os_client(f, ("partial", "p"))
    e = raises(opensearchpy.AuthorizationException, lambda: partial.search(index="*", size=0), 403, "security_exception")
    check(e.info["error"]["reason"] == "no permissions for [indices:data/read/search] and User [name=partial, "
          "backend_roles=[], requestedTenant=null]", f"{e.info}")
    check(partial.search(index="users", size=0, track_total_hits="true")["hits"]["total"]["value"] == 2400000, "users")
    # readall_and_monitor (the legacy user) reads everything; all_access on a missing index: 404.
    check(os_client(f, MONITOR).search(index="*", size=0)["_shards"]["total"] == 2, "readall_and_monitor")
    raises(opensearchpy.NotFoundError, lambda: os_client(f, ("admin", "a")).search(index="nope", size=0), 404)
    raises(opensearchpy.AuthorizationException, lambda: partial.search(index="nope", size=0), 403)
    # Overload on _search: the search pool rejects every shard; a 503 is the state-not-recovered block.
    f.set(dict(state, anonymous_roles=["readall"], overload={"path": "/_search", "status": 429, "who": "anonymous"}))
    status, _, body = raw(f, "/_search?size=0")
    err = json.loads(body)["error"]
    check(status == 429 and err["type"] == "search_phase_execution_exception"
          and err["root_cause"][0]["type"] == "rejected_execution_exception", f"{status} {body}")
    check(raw(f, "/_search?size=0", MONITOR)[0] == 200, "'who' spares the authenticated caller")
    f.set(dict(state, overload={"path": "*/_search", "status": 503}))
    e = raises(opensearchpy.TransportError, lambda: os_client(f, MONITOR).search(index="*", size=0), 503)
    check(e.error == "cluster_block_exception", f"{e.error}")


# ------------------------------------------------------------------ run

def main():
    failed = 0
    # ES 7.17 with security implicitly off warns on every response (asserted where it matters).
    warnings.simplefilter("ignore", ElasticsearchWarning)
    try:
        for fn in RESULTS:
            try:
                fn()
                print(f"PASS {fn.__name__}")
            except Exception as e:
                failed += 1
                print(f"FAIL {fn.__name__}: {e}")
                traceback.print_exc(limit=3)
    finally:
        for f in FAKES:
            f.stop()
        shutil.rmtree(TMP, ignore_errors=True)
    print(f"{len(RESULTS) - failed}/{len(RESULTS)} scenarios passed "
          f"(elasticsearch-py {elasticsearch.__versionstr__}, opensearch-py {opensearchpy.__versionstr__})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
