"""A stand-in for Elasticsearch 7.17, Elasticsearch 8.11 and OpenSearch 2.11 over HTTP or HTTPS,
for lockwatch's tests (no such server can be installed on the test machines). Checked against
the official Python clients by fake_es_check.py.

usage: fake_es.py PORT STATE_FILE [--tls-cert CERT.pem --tls-key KEY.pem]
PORT may be 0: the system picks one. Prints `ready port=<n>` once listening.

STATE_FILE is JSON, re-read on every request (every key optional except flavor):
  flavor            "es7" | "es8" | "os2"
  security          true: xpack security / the OpenSearch security plugin is on
  security_off_by   (es7 only, when security is false) "basic_license_default" (the default: the
                    setting is absent, 7.x disables security implicitly on a basic license) or
                    "setting" (xpack.security.enabled: false). es8 can only be "setting".
  users             {"name": "password"} (the first version's form: such a user has the roles
                    remote_monitoring_collector (ES) / readall_and_monitor (OpenSearch), both with
                    the cluster monitor privilege) or
                    {"name": {"password": "pw", "roles": ["r1"], "backend_roles": ["b"]}}
  anonymous_roles   non-empty = anonymous access is enabled with these roles (ES:
                    xpack.security.authc.anonymous.roles; OpenSearch: anonymous_auth_enabled and the
                    roles mapped to opendistro_security_anonymous_backendrole)
  anonymous_authz_exception  (ES) default true: a denied anonymous request is 403; false: 401
  role_model        "lenient" (default, what the first version of this fake did): every role name
                    grants the cluster `monitor` privilege and monitor/read on every index.
                    "real": the built-in roles below as the real servers define them, plus `roles`;
                    an unknown role grants nothing (ES 8 says "assigned roles [x] were not found").
  roles             custom roles: {"name": {"cluster": ["monitor" | action | pattern ...],
                    "indices": [{"names": ["logs-*"], "privileges": ["monitor", "read"]}]}};
                    OpenSearch: cluster entries are action groups (cluster_monitor, cluster_all,
                    cluster_composite_ops[_readonly]) or action patterns, index privileges are action
                    groups (read, indices_monitor, indices_all, *) or action patterns.
  cors_any          true: the node has http.cors.enabled: true and http.cors.allow-origin: "*"
  node_settings     extra nested node settings merged into GET _nodes/settings
  cluster_settings  {"persistent": {...}, "transient": {...}} for GET _cluster/settings
  bind              the node's http.bound_address list
  indices           [{"index": "users", "docs": 2400000, "bytes": 1288490189, "health": "yellow",
                      "status": "open", "pri": 1, "rep": 1}] replaces the two default indices
  overload          {"path": "/_cat/indices" | "/_search" | "/*/_search" | "*" (`*` globs), "status": 429 | 503,
                     "kind": ..., "who": "any" | "anonymous" | "authenticated"} or a list of them.
                    429 kinds: "rejected" (default; es_rejected_execution_exception, OpenSearch
                    rejected_execution_exception) or "circuit_breaking" (circuit_breaking_exception,
                    the parent breaker; checked before authentication on es7/os2 where the in-flight
                    breaker runs before the security handler wrapper, after it on es8).
                    503 kinds: "master_not_discovered" (default) or "cluster_block".
                    On _search (which needs no master): 503 is the cluster_block_exception of a node whose
                    cluster state was never recovered, either kind; a "rejected" 429 is the search pool
                    refusing every shard: search_phase_execution_exception "all shards failed" (status 429,
                    failed_shards and root_cause es_rejected_execution_exception / OpenSearch
                    rejected_execution_exception), and no rejection at all when no shard is searched.

REQUESTS ANSWERED (GET; the action each needs on the right):
  /                               cluster info, pretty-printed unless pretty=false; HEAD / (ping)
                                  answers the same headers without a body   cluster:monitor/main
  /_cat/indices[/{index}]         plain text columns, or JSON with format=json (v, h, s, bytes, help)
                                  cluster:monitor/state (the real handler also runs
                                  cluster:monitor/health and index-level actions; a denial names
                                  cluster:monitor/state here)
  /_xpack                         (ES) build/license/features, categories=...  cluster:monitor/xpack/info
  /_security/_authenticate        (ES) who the caller is; any authenticated caller
  /_plugins/_security/health      (OpenSearch) {"status":"UP"}; no authentication needed
  /_plugins/_security/authinfo    (OpenSearch; also /_opendistro/_security/authinfo) who the caller is
  /_nodes[/{node_id}][/{metrics}] node info: settings, http, os, process, ... cluster:monitor/nodes/info
  /_search, /{index}/_search      GET or POST; {index} a name, comma list, wildcard, `_all`, `-x` exclusions
                                  (also ?index= on /_search); a JSON body's size, from and track_total_hits
                                  are read, URL parameters win        indices:data/read/search on each index
  /_cluster/settings              persistent/transient (include_defaults adds defaults) (8.x:
                                  cluster:monitor/settings, 7.x and OpenSearch: cluster:monitor/state);
                                  PUT is authorized (cluster:admin/settings/update) and then refused
                                  with 400 "no settings to update": nothing is ever written
Other methods on these paths: 405 "Incorrect HTTP method"; other paths: 400 "no handler found".

MODELLED
  * Query strings: filter_path (comma-separated, `*` globs inside a segment, `**` for any depth,
    `-path` exclusions applied first; arrays do not consume a segment; nothing matched -> `{}`,
    error bodies are never filtered), pretty (Jackson's layout: `"k" : v`, arrays inline, trailing
    newline), human (e.g. max_content_length next to max_content_length_in_bytes), format=json on
    _cat (text columns otherwise), categories on _xpack (an unknown category is 400).
    Unknown parameters: 400 illegal_argument_exception "request [/path] contains unrecognized
    parameter: [x]" with Elasticsearch's "-> did you mean [y]?" (Levenshtein similarity > 0.5
    against the parameters the handler reads plus format, filter_path, pretty, human,
    error_trace), after authentication as on the real servers. Unknown _nodes metrics: 400.
  * Authentication: Basic only. ES: 401 security_exception with every WWW-Authenticate challenge
    (es8: Basic, Bearer, ApiKey), "missing authentication credentials" / "unable to authenticate
    user [x]" naming the REST request URI. OpenSearch: 401 text "Unauthorized" with
    WWW-Authenticate: Basic realm="OpenSearch Security". Wrong credentials are 401 even when
    anonymous access is on. Security off: credentials are ignored, everything is open.
  * Authorization by action name and role (see role_model): 403 security_exception,
    ES 8 "action [a] is unauthorized for user [u] with effective roles [r] (assigned roles [x]
    were not found), this action is granted by the cluster privileges [monitor,manage,all]",
    ES 7.17 "... for user [u] with roles [r], this action is granted by ...", OpenSearch
    "no permissions for [a] and User [name=u, backend_roles=[..], requestedTenant=null]".
    ES adds the anonymous roles to every authenticated user when anonymous access is on.
    _cat/indices lists only the indices a role grants monitor/manage/all on (ES) or
    indices:monitor/settings/get on (OpenSearch; none at all -> 403).
  * Security off: ES 8 and ES 7 with the setting: /_security/* -> 400 no handler; ES 7.17 on its
    basic-license default: 500 "Security must be explicitly enabled when using a [basic]
    license..." and the deprecation `Warning: 299 Elasticsearch-7.17.18-... "Elasticsearch
    built-in security features are not enabled..."` header on every response; OpenSearch with
    the plugin disabled: /_plugins/_security/* -> 400 no handler. _xpack reports
    features.security.enabled.
  * Headers: every Elasticsearch response (errors, 401 and 400 included) carries
    X-elastic-product: Elasticsearch (RestController.dispatchRequest/dispatchBadRequest add it
    before any handler or authentication runs); OpenSearch never sends it. No Date or Server
    header. content-type: es8 `application/json`, or `application/vnd.elasticsearch+json;
    compatible-with=N` when the client's Accept asks for compatible-with=7|8 (elasticsearch-py 8
    always does); any other compatible-with is a 400 media_type_header_exception ("Accept version
    must be either version 8 or 7, but found 9"). es7/os2: `application/json; charset=UTF-8`
    whatever the Accept (es7 accepting compatible-with=8 is inferred from 7.11+'s handling of
    versioned media types, not verified on a node). `text/plain; charset=UTF-8` for _cat text and
    OpenSearch's 401. _cat picks JSON from format=json, else from a JSON first Accept type.
  * _search: took, timed_out, _shards {total = successful = the primaries searched, skipped 0, failed 0},
    hits {total, max_score, hits: []}. total counts the docs of the indices searched (state `docs`) up to
    track_total_hits (default 10000: {"value": 10000, "relation": "gte"} beyond, as
    SearchPhaseController caps it; true = exact, false = no total, N = up to N); rest_total_hits_as_int
    makes it an integer, counted exactly (-1 when disabled; with track_total_hits=N: 400). max_score null
    (size=0, or no docs), 1.0 otherwise (match_all); no shard at all (nothing matched): took 0, shards 0,
    total 0 eq, max_score 0.0 (SearchHits.empty). Indices: expand_wildcards (open default, closed,
    hidden, all, none; other -> 400), ignore_unavailable, allow_no_indices (a wildcard matching nothing
    -> 404 index_not_found_exception when false); a missing named index 404, a closed one 400
    index_closed_exception. Parameters: those RestSearchAction reads (size, from, q, track_total_hits,
    scroll -> a _scroll_id, sort, _source*, routing, preference, search_type, timeout, terminate_after,
    request_cache, typed_keys, rest_total_hits_as_int, ccs_minimize_roundtrips, batched_reduce_size,
    pre_filter_shard_size, max_concurrent_shard_requests, allow_partial_search_results, ...; es7 type,
    es7/es8 min_compatible_shard_node, enable_fields_emulation, es8 force_synthetic_source, os2
    cancel_after_time_interval, search_pipeline); df/analyzer/analyze_wildcard/lenient/default_operator
    only with q and suggest_text/size/mode only with suggest_field (otherwise "unrecognized", as the
    handler reads them only then). Bad ints: 400 "Failed to parse int parameter [size] with value [x]";
    bad booleans: "Failed to parse value [x] as only [true] or [false] are allowed." (IndicesOptions
    flags: "Could not convert [ignore_unavailable] to boolean"); negative size/from: 400.
    Authorization (security on): Elasticsearch expands wildcards (and `_all`, nothing) to the indices
    the caller may search only (IndicesAndAliasesResolver); named indices must all be allowed, else 403
    "action [indices:data/read/search] is unauthorized for user [u] with effective roles [r] on indices
    [x], this action is granted by the index privileges [read,all]" (7.17: "with roles [r]"); nothing
    left to search is an empty 200 if some role grants search on some index, else the same 403 without
    "on indices" (RBACEngine). Index privileges granting it: read, all, or an action pattern. OpenSearch:
    every index the expression resolves to must be permitted (read, search, data_access, crud, unlimited,
    indices_all, * or a pattern), else 403 "no permissions for [indices:data/read/search] and User
    [...]". ES anonymous with authz_exception false: 401 "action [...] requires authentication".
  * Overload: 429/503 with the real error shapes (see overload above).
  * Transport: HTTP/1.1 keep-alive; HTTPS with --tls-cert/--tls-key (plain HTTP to a TLS port is
    closed, as ES 8 does).
  * Routing order: es7/os2 answer 400 (unknown path) and 405 before authentication (the security
    filter wraps handlers); es8.11 authenticates first (in the HTTP layer), so an unauthenticated
    request to an unknown path is 401 there.

Sources: Elasticsearch's ReservedRolesStore, AuthorizationDenialMessages (effective roles since
8.5; 7.12+ "with roles"), Security.getRestHandlers (no security handlers when disabled),
SecurityBaseRestHandler, RestController (product header, no-handler body), BaseRestHandler
(unrecognized parameters), RestCompatibleVersionHelper; for _search: RestSearchAction (ES 8.x and
OpenSearch), RestActions.urlParamsToQueryBuilder, SearchHits.toXContent, SearchPhaseController
(total hits cap), AbstractSearchAsyncAction (zero shards), RBACEngine.authorizeIndexAction and
IndexAuthorizationResult.getFailureContext, IndicesAndAliasesResolver; OpenSearch security's static
roles and action groups; elastic/elasticsearch issues 53761, 61355, 89680, 79719 (q-only params are
"unrecognized" without q), PR 60357 ("on indices [..]", backported to 7.12), kibana issue 155385
(a 7.17 search denial: "with roles [..] on indices [..], ... index privileges [read,all]").

NOT MODELLED (a test relying on these would test the fake, not lockwatch)
  * Any write or document API, and in _search: documents (hits.hits is always [], even when size > 0),
    queries (q and a body's query are accepted and ignored: the total counts every document), aggs,
    partial shard failures, max_result_window, hidden/system indices and aliases, the exact text of
    body parse errors (a fake parsing_exception here), the executor details in rejection reasons;
    es8's later "contains parameters [df] but missing query string parameter 'q'" wording.
    API keys, bearer tokens, service accounts, PKI, realms other than native/file, run-as, DLS/FLS,
    tenants, remote clusters; more than one node.
  * ES 7.x typed routes and `GET /{index}`: a real 7.17 node may answer an unknown 2- or 3-segment
    path (e.g. /_plugins/_security/health) with an index error rather than "no handler found".
  * filter_path on field names that themselves contain dots (`docs.count` in _cat JSON) and on a
    top-level array when nothing matches (answered `[]` here; not verified on a real node).
  * _cat: only the indices columns health status index uuid pri rep docs.count docs.deleted
    store.size pri.store.size (+ dataset.size on es8); format=yaml/cbor/smile; time units.
  * Built-in roles beyond: superuser, monitoring_user, remote_monitoring_collector,
    remote_monitoring_agent, kibana_system, logstash_system, beats_system, viewer, editor (ES);
    all_access, readall, readall_and_monitor, kibana_user, kibana_server, own_index (OpenSearch).
    In the default lenient role_model `viewer` lists indices, which the real one (no cluster
    privilege at all) does not: with role_model "real" an anonymous viewer (ES) or readall
    (OpenSearch) gets 403 on / and _cat/indices while /_search answers 200. In the lenient model
    whatever may list an index in _cat/indices may also search it.
  * Response timing, compression, chunked encoding, pipelining, HTTP/2; X-Opaque-Id echoing; HEAD
    on anything but `/` (405 here).
"""
import argparse
import base64
import fnmatch
import json
import re
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

ARGS = argparse.ArgumentParser(description="fake Elasticsearch / OpenSearch")
ARGS.add_argument("port", type=int)
ARGS.add_argument("state")
ARGS.add_argument("--tls-cert")
ARGS.add_argument("--tls-key")
OPTS = ARGS.parse_args()
STATE = OPTS.state

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
DEFAULT_INDICES = [
    {"index": "users", "uuid": "kq1ZJ5c0T2Wm1l3mXJ7Hpw", "docs": 2400000, "bytes": 1288490189},
    {"index": "cameras", "uuid": "f0oBfYQpTtmG0S4Hq8XbLw", "docs": 513221, "bytes": 220200960},
]
ES_CHALLENGES = {"es7": ['Basic realm="security" charset="UTF-8"'],
                 "es8": ['Basic realm="security" charset="UTF-8"', 'Bearer realm="security"', "ApiKey"]}
OS_CHALLENGE = 'Basic realm="OpenSearch Security"'
ES7_IMPLICIT_WARNING = ('299 Elasticsearch-7.17.18-8682172c2130b9a411b1bd5ff37c9792367de6b0 "Elasticsearch built-in '
                        'security features are not enabled. Without authentication, your cluster could be accessible '
                        'to anyone. See https://www.elastic.co/guide/en/elasticsearch/reference/7.17/security-minimal-'
                        'setup.html to enable security."')
# Parameters every REST channel reads (AbstractRestChannel / RestController), never "unrecognized".
GLOBAL_PARAMS = {"format", "filter_path", "pretty", "human", "error_trace"}
CAT_PARAMS = {"h", "help", "v", "s", "bytes", "time", "ts", "pri", "health", "expand_wildcards",
              "include_unloaded_segments", "master_timeout", "local", "size", "index"}
NODES_METRICS = ["settings", "os", "process", "jvm", "thread_pool", "transport", "http", "plugins",
                 "ingest", "aggregations", "indices"]
XPACK_CATEGORIES = ["build", "license", "features"]
CLUSTER_PRIVS_THAT_GRANT_MONITOR = ["monitor", "manage", "all"]
SEARCH_ACTION = "indices:data/read/search"
# What RestSearchAction.parseSearchRequest (and IndicesOptions.fromRequest, RestActions, FetchSourceContext,
# StoredFieldsContext, withContentOrSourceParamParserOrNull) read, plus its response params.
SEARCH_PARAMS = {"index", "batched_reduce_size", "pre_filter_shard_size", "max_concurrent_shard_requests",
                 "allow_partial_search_results", "search_type", "request_cache", "scroll", "routing", "preference",
                 "expand_wildcards", "ignore_unavailable", "allow_no_indices", "ignore_throttled",
                 "rest_total_hits_as_int", "typed_keys", "ccs_minimize_roundtrips", "q", "from", "size", "explain",
                 "version", "seq_no_primary_term", "timeout", "terminate_after", "stored_fields", "docvalue_fields",
                 "_source", "_source_includes", "_source_excludes", "track_scores", "track_total_hits", "sort",
                 "stats", "suggest_field", "source", "source_content_type"}
SEARCH_PARAMS_FLAVOR = {"es7": {"type", "min_compatible_shard_node", "enable_fields_emulation"},
                        "es8": {"min_compatible_shard_node", "enable_fields_emulation", "force_synthetic_source"},
                        "os2": {"cancel_after_time_interval", "search_pipeline"}}
SEARCH_PARAMS_WITH_Q = {"df", "analyzer", "analyze_wildcard", "lenient", "default_operator"}   # read only when q is
SEARCH_PARAMS_WITH_SUGGEST = {"suggest_text", "suggest_size", "suggest_mode"}    # read only when suggest_field is
DEFAULT_TRACK_TOTAL_HITS = 10000
TRACK_TOTAL_HITS_ACCURATE = 2 ** 31 - 1

# Built-in roles, as the servers define them (ReservedRolesStore; OpenSearch static_roles.yml).
ES_BUILTIN_ROLES = {
    "superuser": {"cluster": ["all"], "indices": [{"names": ["*"], "privileges": ["all"]}]},
    "monitoring_user": {"cluster": ["cluster:monitor/main", "cluster:monitor/xpack/info", "cluster:monitor/remote/info"],
                        "indices": [{"names": [".monitoring-*", "metricbeat-*"], "privileges": ["read", "read_cross_cluster"]}]},
    "remote_monitoring_collector": {"cluster": ["monitor"], "indices": [{"names": ["*"], "privileges": ["monitor"]},
                                                                         {"names": [".kibana*"], "privileges": ["read"]}]},
    "remote_monitoring_agent": {"cluster": ["manage_index_templates", "manage_ingest_pipelines", "monitor"],
                                "indices": [{"names": [".monitoring-*"], "privileges": ["all"]}]},
    "kibana_system": {"cluster": ["monitor", "manage_index_templates", "manage_saml", "manage_token"],
                      "indices": [{"names": [".kibana*"], "privileges": ["all"]}, {"names": [".monitoring-*"], "privileges": ["read"]}]},
    "logstash_system": {"cluster": ["monitor", "cluster:admin/xpack/monitoring/bulk"], "indices": []},
    "beats_system": {"cluster": ["monitor", "cluster:admin/xpack/monitoring/bulk"], "indices": []},
    "viewer": {"cluster": [], "indices": [{"names": ["/~(([.]|ilm-history-).*)/"], "privileges": ["read", "view_index_metadata"]}]},
    "editor": {"cluster": [], "indices": [{"names": ["/~(([.]|ilm-history-).*)/"],
                                           "privileges": ["read", "view_index_metadata", "write", "maintenance"]}]},
}
OS_BUILTIN_ROLES = {
    "all_access": {"cluster": ["*"], "indices": [{"names": ["*"], "privileges": ["*"]}]},
    "readall": {"cluster": ["cluster_composite_ops_readonly"], "indices": [{"names": ["*"], "privileges": ["read"]}]},
    "readall_and_monitor": {"cluster": ["cluster_monitor", "cluster_composite_ops_readonly"],
                            "indices": [{"names": ["*"], "privileges": ["read"]}]},
    "kibana_user": {"cluster": ["cluster_composite_ops"], "indices": [{"names": [".kibana*"], "privileges": ["read", "delete", "manage", "index"]}]},
    "kibana_server": {"cluster": ["cluster_monitor", "cluster_composite_ops", "manage_point_in_time"],
                      "indices": [{"names": [".kibana*", ".opensearch_dashboards*"], "privileges": ["indices_all"]},
                                  {"names": ["*"], "privileges": ["indices:admin/aliases*"]}]},
    "own_index": {"cluster": ["cluster_composite_ops"], "indices": []},
}
OS_ACTION_GROUPS = {
    "*": ["*"], "cluster_all": ["cluster:*"], "cluster_monitor": ["cluster:monitor/*"],
    "cluster_composite_ops_readonly": ["indices:data/read/mget", "indices:data/read/msearch", "indices:data/read/mtv",
                                       "indices:admin/aliases/exists*", "indices:admin/aliases/get*",
                                       "indices:data/read/scroll", "indices:admin/resolve/index"],
    "cluster_composite_ops": ["indices:data/write/bulk", "indices:admin/aliases*", "indices:data/write/reindex",
                              "indices:data/read/mget", "indices:data/read/msearch", "indices:admin/aliases/get*"],
    "read": ["indices:data/read*", "indices:admin/mappings/fields/get*", "indices:admin/resolve/index"],
    "indices_monitor": ["indices:monitor/*"], "indices_all": ["indices:*"],
    "search": ["indices:data/read/search*", "indices:data/read/msearch*", "indices:admin/resolve/index", "suggest"],
    "suggest": ["indices:data/read/suggest*"], "get": ["indices:data/read/get*", "indices:data/read/mget*"],
    "write": ["indices:data/write*", "indices:admin/mapping/put"], "crud": ["read", "write"],
    "data_access": ["indices:data/*", "crud"], "manage": ["indices:monitor/*", "indices:admin/*"], "unlimited": ["*"],
}
LEGACY_USER_ROLES = {"es7": ["remote_monitoring_collector"], "es8": ["remote_monitoring_collector"],
                     "os2": ["readall_and_monitor"]}
LENIENT_ROLE = {"cluster": ["monitor"], "indices": [{"names": ["*"], "privileges": ["monitor", "read"]}]}


def load_state():
    with open(STATE) as f:
        s = json.load(f)
    s.setdefault("flavor", "es8")
    s.setdefault("security", True)
    s.setdefault("anonymous_roles", [])
    s.setdefault("anonymous_authz_exception", True)
    s.setdefault("role_model", "lenient")
    s.setdefault("roles", {})
    s.setdefault("cors_any", False)
    s.setdefault("bind", ["127.0.0.1:9200"])
    s.setdefault("users", {})
    s.setdefault("security_off_by", "basic_license_default" if s["flavor"] == "es7" else "setting")
    ov = s.get("overload") or []
    s["overload"] = [ov] if isinstance(ov, dict) else list(ov)
    return s


# ---------------------------------------------------------------- who is calling, what may they do

def user_record(s, name):
    u = s["users"].get(name)
    if u is None:
        return None
    if isinstance(u, str):
        return {"password": u, "roles": list(LEGACY_USER_ROLES[s["flavor"]]), "backend_roles": []}
    return {"password": u.get("password", ""), "roles": list(u.get("roles", [])),
            "backend_roles": list(u.get("backend_roles", []))}


def authenticate(s, headers):
    """("user", caller) | ("anonymous", caller) | ("missing", None) | ("bad", username)."""
    auth = headers.get("Authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            user, sep, password = base64.b64decode(auth[6:].strip(), validate=True).decode().partition(":")
        except Exception:
            return "bad", ""
        rec = user_record(s, user)
        if not sep or rec is None or rec["password"] != password:
            return "bad", user
        return "user", {"name": user, "roles": rec["roles"], "backend_roles": rec["backend_roles"], "anonymous": False}
    # No credentials (or a scheme this fake does not know): anonymous, if it is enabled.
    if s["anonymous_roles"]:
        if s["flavor"] == "os2":
            return "anonymous", {"name": "opendistro_security_anonymous", "roles": list(s["anonymous_roles"]),
                                 "backend_roles": ["opendistro_security_anonymous_backendrole"], "anonymous": True}
        return "anonymous", {"name": "_anonymous", "roles": list(s["anonymous_roles"]), "backend_roles": [],
                             "anonymous": True}
    return "missing", None


def lenient_role(flavor):
    if flavor == "os2":
        return {"cluster": ["cluster_monitor"], "indices": [{"names": ["*"], "privileges": ["indices_monitor", "read"]}]}
    return LENIENT_ROLE


def role_def(s, name):
    if name in s["roles"]:
        return s["roles"][name]
    if s["role_model"] != "real":
        return lenient_role(s["flavor"])
    return (OS_BUILTIN_ROLES if s["flavor"] == "os2" else ES_BUILTIN_ROLES).get(name)


def assigned_roles(s, caller):
    roles = list(caller["roles"])
    # ES: with anonymous access on, every authenticated user also gets the anonymous roles.
    if s["flavor"] != "os2" and not caller["anonymous"] and s["anonymous_roles"]:
        roles += [r for r in s["anonymous_roles"] if r not in roles]
    return roles


def effective_roles(s, caller):
    """[(name, definition)] for the roles that exist, and the sorted names that do not."""
    found, missing = [], []
    for r in assigned_roles(s, caller):
        d = role_def(s, r)
        (found.append((r, d)) if d is not None else missing.append(r))
    return found, sorted(missing)


def expand_os(perms):
    out = []
    for p in perms:
        if p in OS_ACTION_GROUPS:
            out += expand_os(OS_ACTION_GROUPS[p]) if OS_ACTION_GROUPS[p] != [p] else [p]
        else:
            out.append(p)
    return out


def es_cluster_grants(priv, action):
    if priv == "all":
        return action.startswith("cluster:") or action.startswith("indices:admin/template/")
    if priv == "manage":
        return action.startswith("cluster:") and not action.startswith("cluster:admin/xpack/security/")
    if priv == "monitor":
        return action.startswith("cluster:monitor/")
    return ":" in priv and fnmatch.fnmatchcase(action, priv)


def cluster_allowed(s, caller, action):
    roles, _ = effective_roles(s, caller)
    for _, d in roles:
        privs = d.get("cluster", [])
        if s["flavor"] == "os2":
            if any(fnmatch.fnmatchcase(action, p) for p in expand_os(privs)):
                return True
        elif any(es_cluster_grants(p, action) for p in privs):
            return True
    return False


def name_matches(pattern, index):
    if len(pattern) > 1 and pattern.startswith("/") and pattern.endswith("/"):
        rx = pattern[1:-1]
        if rx.startswith("~(") and rx.endswith(")"):      # Lucene complement, as in the viewer role
            return re.fullmatch(rx[2:-1], index) is None
        try:
            return re.fullmatch(rx, index) is not None
        except re.error:
            return False
    return fnmatch.fnmatchcase(index, pattern)


def index_listable(s, caller, index):
    """May this caller see `index` in _cat/indices?"""
    roles, _ = effective_roles(s, caller)
    for _, d in roles:
        for entry in d.get("indices", []):
            if isinstance(entry, str):
                entry = {"names": [entry], "privileges": ["monitor"]}
            if not any(name_matches(n, index) for n in entry.get("names", [])):
                continue
            privs = entry.get("privileges", [])
            if s["flavor"] == "os2":
                if any(fnmatch.fnmatchcase("indices:monitor/settings/get", p) for p in expand_os(privs)):
                    return True
            elif set(privs) & {"monitor", "manage", "all"}:
                return True
    return False


def es_index_grants(priv, action):
    """IndexPrivilege: does this named privilege (or action pattern) grant `action`?"""
    if priv == "all":
        return action.startswith("indices:")
    if priv == "read":
        return action.startswith("indices:data/read/") or action == "indices:admin/resolve/index"
    if priv == "monitor":
        return action.startswith("indices:monitor/")
    if priv == "manage":
        return action.startswith("indices:monitor/") or action.startswith("indices:admin/")
    return ":" in priv and fnmatch.fnmatchcase(action, priv)


def index_entries(s, caller):
    roles, _ = effective_roles(s, caller)
    for _, d in roles:
        for entry in d.get("indices", []):
            yield {"names": [entry], "privileges": ["monitor"]} if isinstance(entry, str) else entry


def entry_grants(s, entry, action):
    """Does this index-permission entry grant `action`? In the lenient role_model whatever lists an index
    in _cat/indices may also run the action on it."""
    privs = entry.get("privileges", [])
    if s["flavor"] == "os2":
        perms = expand_os(privs)
        if any(fnmatch.fnmatchcase(action, p) for p in perms):
            return True
        return s["role_model"] != "real" and any(fnmatch.fnmatchcase("indices:monitor/settings/get", p) for p in perms)
    if any(es_index_grants(p, action) for p in privs):
        return True
    return s["role_model"] != "real" and bool(set(privs) & {"monitor", "manage", "all"})


def index_action_allowed(s, caller, index, action):
    """May the caller run an index `action` on `index` (a name, existing or not)?"""
    return any(entry_grants(s, e, action) and any(name_matches(n, index) for n in e.get("names", []))
               for e in index_entries(s, caller))


def index_action_anywhere(s, caller, action):
    """Role.checkIndicesAction: does some role grant `action` on some index pattern?"""
    return any(entry_grants(s, e, action) and e.get("names") for e in index_entries(s, caller))


def denial_reason(s, caller, action, context=None):
    if s["flavor"] == "os2":
        return (f"no permissions for [{action}] and User [name={caller['name']}, "
                f"backend_roles={fmt_list(caller['backend_roles'])}, requestedTenant=null]")
    if s["flavor"] == "es8":
        found, missing = effective_roles(s, caller)
        who = f"with effective roles [{','.join(sorted(n for n, _ in found))}]"
        if missing:
            who += f" (assigned roles [{','.join(missing)}] were not found)"
    else:
        who = f"with roles [{','.join(caller['roles'])}]"
    msg = f"action [{action}] is unauthorized for user [{caller['name']}] {who}"
    if context:          # IndexAuthorizationResult.getFailureContext: "on indices [a,b]"
        msg += " " + context
    if action.startswith("cluster:"):
        msg += f", this action is granted by the cluster privileges [{','.join(CLUSTER_PRIVS_THAT_GRANT_MONITOR)}]"
    elif action.startswith("indices:data/read/"):
        # IndexPrivilege.findPrivilegesThatGrant, least privileged first
        msg += ", this action is granted by the index privileges [read,all]"
    return msg


def fmt_list(items):
    return "[" + ", ".join(items) + "]"


# ---------------------------------------------------------------- filter_path, pretty, _cat text

MISSING = object()


def compile_filter(expr):
    inc, exc = [], []
    for part in (expr or "").split(","):
        part = part.strip()
        if not part:
            continue
        (exc if part.startswith("-") else inc).append(part.lstrip("-").split("."))
    return inc, exc


def advance(paths, key):
    """Match one field name against the remaining path segments: (whole subtree matched?, paths left)."""
    full, left = False, []
    for p in paths:
        if not p:
            continue
        head = p[0]
        if head == "**":
            if len(p) == 1:
                full = True
                continue
            f, rest = advance([p[1:]], key)      # `**` matching zero levels
            full |= f
            left += rest
            left.append(p)                       # ... or this level, and maybe more
        elif glob(head, key):
            if len(p) == 1:
                full = True
            else:
                left.append(p[1:])
    return full, left


def include(value, paths):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            full, left = advance(paths, k)
            if full:
                out[k] = v
            elif left:
                sub = include(v, left)
                if sub is not MISSING:
                    out[k] = sub
        return out if out else MISSING
    if isinstance(value, list):
        items = [x for x in (include(v, paths) for v in value) if x is not MISSING]
        return items if items else MISSING
    return MISSING


def exclude(value, paths):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            full, left = advance(paths, k)
            if full:
                continue
            out[k] = exclude(v, left) if left else v
        return out
    if isinstance(value, list):
        return [exclude(v, paths) for v in value]
    return value


def apply_filter(body, expr):
    inc, exc = compile_filter(expr)
    if exc:
        body = exclude(body, exc)
    if inc:
        res = include(body, inc)
        if res is MISSING:
            return [] if isinstance(body, list) else {}   # the root object is always written
        return res
    return body


def jackson_pretty(v, level=0):
    """Jackson's DefaultPrettyPrinter, as Elasticsearch's ?pretty prints."""
    pad = "  " * (level + 1)
    if isinstance(v, dict):
        if not v:
            return "{ }"
        inner = ",\n".join(f"{pad}{json.dumps(k)} : {jackson_pretty(x, level + 1)}" for k, x in v.items())
        return "{\n" + inner + "\n" + "  " * level + "}"
    if isinstance(v, list):
        if not v:
            return "[ ]"
        return "[ " + ", ".join(jackson_pretty(x, level) for x in v) + " ]"
    return json.dumps(v)


def serialize(body, q, pretty_default=False):
    if q.flag("pretty", pretty_default):
        return jackson_pretty(body) + "\n"
    return json.dumps(body, separators=(",", ":"))


def byte_size(n):
    """ByteSizeValue.toString: the largest unit >= 1, one decimal truncated (1.2gb, 210mb, 0b)."""
    for unit, size in (("pb", 1 << 50), ("tb", 1 << 40), ("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10)):
        if n >= size:
            value = n / size
            break
    else:
        unit, value = "b", float(n)
    text = repr(value)
    whole, _, frac = text.partition(".")
    return f"{whole}{unit}" if not frac or frac[0] == "0" else f"{whole}.{frac[0]}{unit}"


def levenshtein_similarity(a, b):
    """Lucene's LevenshteinDistance.getDistance: 1 - edits / max(len)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    longest = max(len(a), len(b))
    return 1.0 if longest == 0 else 1.0 - prev[-1] / longest


def unrecognized(path, invalid, candidates, detail="parameter"):
    """BaseRestHandler.unrecognized: the 400 message for unknown parameters (or metrics)."""
    invalid = sorted(invalid)
    msg = f"request [{path}] contains unrecognized {detail}{'s' if len(invalid) > 1 else ''}: "
    parts = []
    for bad in invalid:
        scored = sorted(((levenshtein_similarity(bad, c), c) for c in candidates
                         if levenshtein_similarity(bad, c) > 0.5), key=lambda t: (-t[0], t[1]))
        text = f"[{bad}]"
        keys = [c for _, c in scored]
        if len(keys) == 1:
            text += f" -> did you mean [{keys[0]}]?"
        elif keys:
            text += f" -> did you mean any of [{', '.join(keys)}]?"
        parts.append(text)
    return msg + ", ".join(parts)


class Query:
    """The query string, with the names the handler has read (Elasticsearch's consumed params)."""

    def __init__(self, raw):
        self.values = {}
        for k, v in parse_qsl(raw, keep_blank_values=True):
            self.values[k] = v
        self.consumed = set(GLOBAL_PARAMS)

    def get(self, name, default=None):
        self.consumed.add(name)
        return self.values.get(name, default)

    def flag(self, name, default=False):
        v = self.values.get(name)
        if v is None:
            return default
        return v in ("", "true")

    def unknown(self, allowed):
        self.consumed |= set(allowed)
        return {k for k in self.values if k not in self.consumed}


def glob(pattern, text):
    """Elasticsearch's Glob.globMatch: `*` is the only wildcard."""
    rx = ".*".join(re.escape(p) for p in pattern.split("*"))
    return re.fullmatch(rx, text, re.S) is not None


# ---------------------------------------------------------------- bodies

def index_rows(s):
    rows = []
    for i in s.get("indices") or DEFAULT_INDICES:
        rows.append({"health": i.get("health", "yellow"), "status": i.get("status", "open"), "index": i["index"],
                     "uuid": i.get("uuid", "AAAAAAAAAAAAAAAAAAAAAA"), "pri": i.get("pri", 1), "rep": i.get("rep", 1),
                     "docs.count": i.get("docs", 0), "docs.deleted": i.get("deleted", 0),
                     "store.size": i.get("total_bytes", i.get("bytes", 0)),  # yellow: replicas unassigned
                     "pri.store.size": i.get("bytes", 0), "dataset.size": i.get("bytes", 0)})
    return rows


CAT_INDICES_COLUMNS = [  # name, right-aligned, is a byte size, help text
    ("health", False, False, "current health status"), ("status", False, False, "open/close status"),
    ("index", False, False, "index name"), ("uuid", False, False, "index uuid"),
    ("pri", True, False, "number of primary shards"), ("rep", True, False, "number of replica shards"),
    ("docs.count", True, False, "available docs"), ("docs.deleted", True, False, "deleted docs"),
    ("store.size", True, True, "store size of primaries & replicas"), ("pri.store.size", True, True, "store size of primaries"),
    ("dataset.size", True, True, "total size of dataset"),
]


def cat_indices(s, flavor, rows, q):
    """(status, body, content type) for _cat/indices."""
    cols = [c for c in CAT_INDICES_COLUMNS if flavor == "es8" or c[0] != "dataset.size"]
    if q.flag("help"):
        width = max(len(c[0]) for c in cols)
        return 200, "".join(f"{c[0]:<{width}} | {c[3]}\n" for c in cols), "text/plain; charset=UTF-8"
    health = q.get("health")
    if health:
        rows = [r for r in rows if r["health"] == health]
    h = q.get("h")
    if h:
        wanted = [w.strip() for w in h.split(",") if w.strip()]
        cols = [c for w in wanted for c in cols if glob(w, c[0])]
    sort = q.get("s")
    if sort:
        for key in reversed(sort.split(",")):
            name, _, order = key.partition(":")
            rows = sorted(rows, key=lambda r: r.get(name, ""), reverse=order == "desc")
    unit = q.get("bytes")
    divisor = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40, "pb": 1 << 50}.get(unit or "")

    def cell(r, c):
        v = r[c[0]]
        if c[2]:
            return str(v // divisor) if divisor else byte_size(v)
        return str(v)

    table = [[cell(r, c) for c in cols] for r in rows]
    fmt = (q.get("format") or "").lower()
    if fmt == "json":
        return 200, [dict(zip([c[0] for c in cols], t)) for t in table], None
    lines = ([[c[0] for c in cols]] if q.flag("v") else []) + table
    widths = [max([len(line[i]) for line in lines] or [0]) for i in range(len(cols))]
    out = []
    for line in lines:
        cells = []
        for i, (c, text) in enumerate(zip(cols, line)):
            last = i == len(cols) - 1
            cells.append(text.rjust(widths[i]) if c[1] else (text if last else text.ljust(widths[i])))
        out.append(" ".join(cells) + "\n")
    return 200, "".join(out), "text/plain; charset=UTF-8"


# ---------------------------------------------------------------- _search

class SearchError(Exception):
    """A refusal found while parsing or resolving a search: (status, body)."""

    def __init__(self, status, body):
        super().__init__(status)
        self.status, self.body = status, body


def index_not_found(name):
    return SearchError(404, es_error("index_not_found_exception", f"no such index [{name}]", 404,
                                     **{"resource.type": "index_or_alias", "resource.id": name,
                                        "index_uuid": "_na_", "index": name}))


def expand_states(raw):
    """IndicesOptions.WildcardStates.parseParameter."""
    if raw is None:
        return {"open"}
    states = set()
    for w in [w for w in raw.split(",") if w]:
        if w == "all":
            states |= {"open", "closed", "hidden"}
        elif w in ("open", "closed", "hidden"):
            states.add(w)
        elif w != "none":
            raise SearchError(400, es_error("illegal_argument_exception", f"No valid expand wildcard value [{w}]", 400))
    return states


def state_ok(row, opts):
    return ("open" if row["status"] == "open" else "closed") in opts["expand"]


def search_names(raw):
    """The index expression: nothing, `_all` and `*` all mean every index."""
    names = [n for n in (raw or "").split(",") if n]
    return ["*"] if not names or names == ["_all"] else names


def expand_names(rows, names, opts, ok=lambda n: True, strict=False):
    """Wildcards become the matching index names `ok` accepts (Elasticsearch's security resolver only
    expands to authorized indices); `-x` after a wildcard excludes; explicit names are kept as given, or
    dropped under ignore_unavailable when not `ok`. strict: a wildcard that matches nothing is a 404
    unless allow_no_indices (checked per expression, as core does)."""
    out, wildcard_seen = [], False
    for name in names:
        if name.startswith("-") and wildcard_seen:
            out = [n for n in out if not glob(name[1:], n)]
        elif "*" in name:
            wildcard_seen = True
            matched = [r["index"] for r in rows if glob(name, r["index"]) and state_ok(r, opts) and ok(r["index"])]
            if strict and not matched and not opts["allow_no_indices"]:
                raise index_not_found(name)
            out += [n for n in matched if n not in out]
        elif (not opts["ignore_unavailable"] or ok(name)) and name not in out:
            out.append(name)
    return out


def resolve_core(rows, names, opts):
    """IndexNameExpressionResolver.concreteIndices for a search: the index rows searched."""
    by_name = {r["index"]: r for r in rows}
    out = []
    for name in expand_names(rows, names, opts, strict=True):
        r = by_name.get(name)
        if r is None:
            if opts["ignore_unavailable"]:
                continue
            raise index_not_found(name)
        if r["status"] != "open":     # search forbids closed indices, named or expanded (expand_wildcards=closed)
            if opts["ignore_unavailable"]:
                continue
            raise SearchError(400, es_error("index_closed_exception", "closed", 400, index_uuid=r["uuid"], index=name))
        out.append(r)
    return out


def search_response(rows, opts):
    """SearchResponse for these index rows; documents are not stored, so hits.hits is always []."""
    shards = sum(int(r["pri"]) for r in rows)
    docs = sum(int(r["docs.count"]) for r in rows)
    upto = opts["track_total_hits"]
    if upto is None:    # checkRestTotalHits makes rest_total_hits_as_int count accurately
        upto = TRACK_TOTAL_HITS_ACCURATE if opts["total_as_int"] else DEFAULT_TRACK_TOTAL_HITS
    if upto == -1:
        total = None
    elif docs <= upto:
        total = {"value": docs, "relation": "eq"}
    else:               # SearchPhaseController.TopDocsStats.getTotalHits: the lower bound
        total = {"value": upto, "relation": "gte"}
    hits = {}
    if opts["total_as_int"]:
        hits["total"] = total["value"] if total else -1
    elif total is not None:
        hits["total"] = total
    if not rows:        # no shard to search: SearchHits.empty(), max_score 0
        hits["max_score"] = 0.0
    else:               # NaN (null) when nothing was fetched; match_all scores 1.0
        hits["max_score"] = None if opts["size"] == 0 or docs == 0 else 1.0
    hits["hits"] = []
    body = {}
    if opts["scroll"]:
        body["_scroll_id"] = "FGluY2x1ZGVfY29udGV4dF91dWlkDXF1ZXJ5QW5kRmV0Y2gBFnZfQ0JfTmFrZUZha2VFU19zY3JvbGwAAAAAAAAAARZYcTJy"
    body.update({"took": 1 if rows else 0, "timed_out": False,
                 "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0}, "hits": hits})
    return body


def deep_merge(a, b):
    out = dict(a)
    for k, v in b.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def node_settings(s, flavor):
    info = INFO[flavor]
    home = "/usr/share/opensearch" if flavor == "os2" else "/usr/share/elasticsearch"
    st = {"cluster": {"name": info["cluster_name"]}, "node": {"name": info["name"]},
          "path": {"logs": f"{home}/logs", "home": home}, "discovery": {"type": "single-node"},
          "client": {"type": "node"}, "network": {"host": "0.0.0.0"}}
    if s["cors_any"]:
        st["http"] = {"cors": {"allow-origin": "*", "enabled": "true"}}
    return deep_merge(st, s.get("node_settings") or {})


def node_info(s, flavor, metrics, q):
    info, v = INFO[flavor], INFO[flavor]["version"]
    node = {"name": info["name"], "transport_address": "172.18.0.2:9300", "host": "172.18.0.2", "ip": "172.18.0.2",
            "version": v["number"]}
    if flavor == "es8":
        node["transport_version"] = 8512000
    if flavor != "os2":
        node.update({"build_flavor": "default", "build_type": v["build_type"], "build_hash": v["build_hash"]})
        node["roles"] = ["data", "data_cold", "data_content", "data_frozen", "data_hot", "data_warm", "ingest",
                         "master", "ml", "remote_cluster_client", "transform"]
        node["attributes"] = {"ml.max_jvm_size": "1073741824", "xpack.installed": "true"}
    else:
        node.update({"build_type": v["build_type"], "build_hash": v["build_hash"]})
        node["roles"] = ["cluster_manager", "data", "ingest", "remote_cluster_client"]
        node["attributes"] = {"shard_indexing_pressure_enabled": "true"}
    human = q.flag("human")
    for m in metrics:
        if m == "settings":
            st = node_settings(s, flavor)
            node["settings"] = flatten(st) if q.flag("flat_settings") else st
        elif m == "http":
            http = {"bound_address": s["bind"], "publish_address": "172.18.0.2:9200"}
            if human:
                http["max_content_length"] = "100mb"
            http["max_content_length_in_bytes"] = 104857600
            node["http"] = http
        elif m == "transport":
            node["transport"] = {"bound_address": ["0.0.0.0:9300"], "publish_address": "172.18.0.2:9300", "profiles": {}}
        elif m == "os":
            node["os"] = {"refresh_interval_in_millis": 1000, "name": "Linux", "pretty_name": "Ubuntu 20.04.6 LTS",
                          "arch": "amd64", "version": "6.1.0", "available_processors": 4, "allocated_processors": 4}
        elif m == "process":
            node["process"] = {"refresh_interval_in_millis": 1000, "id": 7, "mlockall": False}
        elif m == "jvm":
            node["jvm"] = {"pid": 7, "version": "21.0.1", "vm_name": "OpenJDK 64-Bit Server VM",
                           "mem": {"heap_init_in_bytes": 1073741824, "heap_max_in_bytes": 1073741824}}
        else:
            node[m] = [] if m in ("plugins",) else {}
    return node


def nodes_response(s, flavor, node_ids, metrics, q):
    info = INFO[flavor]
    selected = any(n in ("_all", "_local", "_master", "_cluster_manager") or glob(n, NODE_ID) or glob(n, info["name"])
                   for n in node_ids)
    nodes = {NODE_ID: node_info(s, flavor, metrics, q)} if selected else {}
    return {"_nodes": {"total": len(nodes), "successful": len(nodes), "failed": 0},
            "cluster_name": info["cluster_name"], "nodes": nodes}


XPACK_FEATURES_ON_BASIC = {
    "aggregate_metric": True, "analytics": True, "ccr": False, "data_streams": True, "data_tiers": True,
    "enrich": True, "eql": True, "frozen_indices": True, "graph": False, "ilm": True, "logstash": False,
    "ml": False, "monitoring": True, "rollup": True, "searchable_snapshots": False, "slm": True,
    "spatial": True, "sql": True, "transform": True, "voting_only": True, "watcher": False,
}


def xpack_info(s, flavor, categories, verbose):
    v = INFO[flavor]["version"]
    out = {}
    if "build" in categories:
        out["build"] = {"hash": v["build_hash"], "date": v["build_date"]}
    if "license" in categories:
        out["license"] = {"uid": "4d5d0a32-6c0d-4d8f-8d24-2b3f0ad6e2c1", "type": "basic", "mode": "basic", "status": "active"}
    if "features" in categories:
        feats = {}
        for name, available in XPACK_FEATURES_ON_BASIC.items():
            feats[name] = {"available": available, "enabled": True}
        feats["security"] = {"available": True, "enabled": bool(s["security"])}
        out["features"] = dict(sorted(feats.items()))
    if verbose:
        out["tagline"] = "You know, for X"
    return out


def es_authenticate_body(s, caller):
    if caller["anonymous"]:
        realm = {"name": "__anonymous", "type": "__anonymous"}
        return {"username": "_anonymous", "roles": caller["roles"], "full_name": None, "email": None,
                "metadata": {"_reserved": True}, "enabled": True, "authentication_realm": realm,
                "lookup_realm": realm, "authentication_type": "anonymous"}
    realm = {"name": "default_native", "type": "native"}
    return {"username": caller["name"], "roles": assigned_roles(s, caller), "full_name": None, "email": None,
            "metadata": {}, "enabled": True, "authentication_realm": realm, "lookup_realm": realm,
            "authentication_type": "realm"}


def os_authinfo_body(s, caller, remote):
    roles = [r for r, _ in effective_roles(s, caller)[0]] if s["role_model"] == "real" else list(caller["roles"])
    return {"user": f"User [name={caller['name']}, backend_roles={fmt_list(caller['backend_roles'])}, requestedTenant=null]",
            "user_name": caller["name"], "user_requested_tenant": None, "remote_address": remote,
            "backend_roles": caller["backend_roles"], "custom_attribute_names": [], "roles": roles,
            "tenants": {caller["name"]: True} if not caller["anonymous"] else {},
            "principal": None, "peer_certificates": "0", "sso_logout_url": None}


# ---------------------------------------------------------------- errors

def es_error(etype, reason, status, **extra):
    err = {"type": etype, "reason": reason, **extra}
    root = {k: v for k, v in err.items() if k != "caused_by"}     # root causes skip their cause
    return {"error": {"root_cause": [root], **err}, "status": status}


def overload_error(flavor, status, kind):
    name = INFO[flavor]["name"]
    if status == 429 and kind == "circuit_breaking":
        reason = ("[parent] Data too large, data for [<http_request>] would be [1021582848/974.2mb], which is larger "
                  "than the limit of [1020054732/972.7mb], real usage: [1021582848/974.2mb], new bytes reserved: "
                  "[0/0b], usages [request=0/0b, fielddata=0/0b, in_flight_requests=0/0b, accounting=0/0b]")
        return es_error("circuit_breaking_exception", reason, 429, bytes_wanted=1021582848, bytes_limit=1020054732,
                        durability="PERMANENT")
    if status == 429:
        return es_error(*rejection(flavor, "management"), 429)
    if status == 503 and kind == "cluster_block":
        return es_error("cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];", 503)
    if status == 503:
        return es_error("master_not_discovered_exception" if flavor != "os2" else "cluster_manager_not_discovered_exception",
                        None, 503)
    return es_error("exception", f"injected failure with status {status}", status)


def rejection(flavor, pool_name, runner_id="3f1c2a7b"):
    """(type, reason) of a thread pool's EsAbortPolicy rejection (the executor details are approximate)."""
    name = INFO[flavor]["name"]
    if flavor == "os2":
        etype, pool = "rejected_execution_exception", "OpenSearchThreadPoolExecutor"
        runner = f"org.opensearch.common.util.concurrent.TimedRunnable@{runner_id}"
    else:
        etype, pool = "es_rejected_execution_exception", "EsThreadPoolExecutor"
        runner = f"org.elasticsearch.common.util.concurrent.TimedRunnable@{runner_id}"
    return etype, (f"rejected execution of {runner} on {pool}[name = {name}/{pool_name}, queue capacity = 1000, "
                   f"{pool}@5e6f7a8b[Running, pool size = 5, active threads = 5, queued tasks = 1000, "
                   f"completed tasks = 48213]]")


def search_overload_error(flavor, status, rows):
    """A search under load. 503: the global block a node without a recovered cluster state (no master ever
    elected) puts on reads; a search needs no master otherwise. 429: every shard's query was rejected by
    the search pool, so the search fails as a whole: search_phase_execution_exception "all shards failed"
    with the status of the shard failures (SearchPhaseExecutionException.status)."""
    if status == 503:
        return es_error("cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];", 503)
    failures, roots = [], []
    for r in rows:
        for shard in range(int(r["pri"])):
            etype, reason = rejection(flavor, "search", f"{(0x3f1c2a7b + 7919 * shard + sum(map(ord, r['index']))) & 0xffffffff:x}")
            cause = {"type": etype, "reason": reason}
            roots.append(cause)
            failures.append({"shard": shard, "index": r["index"], "node": NODE_ID, "reason": cause})
    err = {"type": "search_phase_execution_exception", "reason": "all shards failed", "phase": "query",
           "grouped": True, "failed_shards": failures, "caused_by": roots[0]}
    return {"error": {"root_cause": roots, **err}, "status": 429}


def no_handler(path, method):
    return 400, {"error": f"no handler found for uri [{path}] and method [{method}]"}


# Routes: (regex on the path, flavors, methods). Handlers are Handler.ep_<name>.
ROUTES = [
    (r"/", ("es7", "es8", "os2"), ("GET", "HEAD"), "root"),
    (r"/_cat/indices(?:/(?P<index>[^/]+))?", ("es7", "es8", "os2"), ("GET",), "cat_indices"),
    (r"/_xpack", ("es7", "es8"), ("GET",), "xpack"),
    (r"/_security/_authenticate", ("es7", "es8"), ("GET",), "authenticate"),
    (r"/_plugins/_security/health", ("os2",), ("GET",), "os_health"),
    (r"/_(?:plugins|opendistro)/_security/authinfo", ("os2",), ("GET", "POST"), "os_authinfo"),
    (r"/_nodes(?:/(?P<a>[^/]+))?(?:/(?P<b>[^/]+))?", ("es7", "es8", "os2"), ("GET",), "nodes"),
    (r"/_cluster/settings", ("es7", "es8", "os2"), ("GET", "PUT"), "cluster_settings"),
    (r"/(?:(?P<index>[^/]+)/)?_search", ("es7", "es8", "os2"), ("GET", "POST"), "search"),
]
ACTIONS = {"root": "cluster:monitor/main", "cat_indices": "cluster:monitor/state", "xpack": "cluster:monitor/xpack/info",
           "nodes": "cluster:monitor/nodes/info"}


def route(s, path):
    """(endpoint name, path params, allowed methods) or None when no handler exists."""
    flavor = s["flavor"]
    for rx, flavors, methods, name in ROUTES:
        m = re.fullmatch(rx, path)
        if not m or flavor not in flavors:
            continue
        # Security REST handlers are not registered when security is off (xpack.security.enabled: false,
        # plugins.security.disabled: true); ES 7.17 on its basic-license default keeps them (500 below).
        if not s["security"] and name in ("authenticate", "os_health", "os_authinfo"):
            if not (flavor == "es7" and s["security_off_by"] == "basic_license_default"):
                return None
        return name, {k: unquote(v) for k, v in m.groupdict().items() if v is not None}, methods
    return None


# ---------------------------------------------------------------- the server

COMPAT_RX = re.compile(r"application/vnd\.elasticsearch\+(json|x-ndjson|yaml|smile|cbor)\s*;\s*compatible-with=(\d+)", re.I)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-es"
    sys_version = ""

    def log_message(self, *args):
        pass

    def send_response(self, code, message=None):
        # No Server/Date headers: Elasticsearch's Netty layer sends neither.
        self.log_request(code)
        self.send_response_only(code, message)

    # ------------------------------------------------------------ output

    def json_type(self):
        if self.flavor == "es8":
            return f"application/vnd.elasticsearch+json;compatible-with={self.compat}" if self.compat else "application/json"
        return "application/json; charset=UTF-8"

    def send(self, status, body, ctype=None, headers=(), error=None, pretty_default=False):
        if isinstance(body, (dict, list)):
            if error is None:
                error = status >= 400
            if not error and self.q.values.get("filter_path"):
                body = apply_filter(body, self.q.values["filter_path"])
            data = serialize(body, self.q, pretty_default).encode()
            ctype = ctype or self.json_type()
        else:
            data = (body or "").encode()
            ctype = ctype or "text/plain; charset=UTF-8"
        self.send_response(status)
        if self.flavor != "os2":
            self.send_header("X-elastic-product", "Elasticsearch")
        if self.warning:
            self.send_header("Warning", self.warning)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def unauthorized(self, user=None, reason=None):
        if self.flavor == "os2":
            return self.send(401, "Unauthorized", headers=[("WWW-Authenticate", OS_CHALLENGE)])
        if reason is None:
            reason = (f"unable to authenticate user [{user}] for REST request [{self.path}]" if user is not None
                      else f"missing authentication credentials for REST request [{self.path}]")
        challenges = ES_CHALLENGES[self.flavor]
        header = challenges[0] if len(challenges) == 1 else challenges
        self.send(401, es_error("security_exception", reason, 401, header={"WWW-Authenticate": header}),
                  headers=[("WWW-Authenticate", c) for c in challenges])

    def bad_param(self, message):
        self.send(400, es_error("illegal_argument_exception", message, 400))

    # ------------------------------------------------------------ gates, in the order the servers apply them

    def check_params(self, allowed):
        bad = self.q.unknown(allowed)
        if bad:
            self.bad_param(unrecognized(self.url_path, bad, sorted(self.q.consumed)))
            return False
        return True

    def authorized(self, action):
        """True if the caller may run `action`; otherwise the 403 (or 401) has been sent."""
        if not self.s["security"] or cluster_allowed(self.s, self.caller, action):
            return True
        self.deny(action)
        return False

    def deny(self, action, context=None):
        """The refusal of an authenticated (or anonymous) caller: 403, or 401 for ES anonymous access
        with authz_exception: false."""
        if self.caller["anonymous"] and self.flavor != "os2" and not self.s["anonymous_authz_exception"]:
            return self.unauthorized(reason=f"action [{action}] requires authentication")
        self.send(403, es_error("security_exception", denial_reason(self.s, self.caller, action, context), 403))

    def overloaded(self, phase):
        """phase "pre": before authentication (es7/os2 breaker); "run": at execution."""
        ov = self.overload_match(phase)
        if ov is None:
            return False
        self.send(ov["status"], overload_error(self.flavor, ov["status"], ov["kind"]))
        return True

    def overload_match(self, phase):
        """The overload entry that applies to this request in this phase: {"status", "kind"} or None.
        An entry's path may use `*` globs ("/*/_search")."""
        for ov in self.s["overload"]:
            path = ov.get("path", "*")
            if not glob(path, self.url_path):
                continue
            who = ov.get("who", "any")
            if self.s["security"]:
                anonymous = self.caller is None or self.caller["anonymous"]
            else:
                anonymous = not self.headers.get("Authorization")
            if (who == "anonymous" and not anonymous) or (who == "authenticated" and anonymous):
                continue
            status = int(ov.get("status", 429))
            kind = ov.get("kind", "")
            breaker = status == 429 and kind == "circuit_breaking"
            if phase == "pre" and not (breaker and self.flavor != "es8"):
                continue
            if phase == "run" and breaker and self.flavor != "es8":
                continue
            return {"status": status, "kind": kind}
        return None

    # ------------------------------------------------------------ dispatch

    def handle_any(self):
        try:
            self.s = load_state()
        except Exception as e:
            self.flavor, self.q, self.warning, self.compat = "es8", Query(""), None, None
            return self.send(500, es_error("exception", f"fake_es: unreadable state file: {e}", 500))
        self.flavor = self.s["flavor"]
        url = urlsplit(self.path)
        self.url_path = url.path or "/"
        self.q = Query(url.query)
        self.caller = None
        self.compat = None
        self.warning = (ES7_IMPLICIT_WARNING if self.flavor == "es7" and not self.s["security"]
                        and self.s["security_off_by"] == "basic_license_default" else None)
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        if self.flavor != "os2":
            m = COMPAT_RX.search(self.headers.get("Accept", "") or "")
            if m and self.flavor == "es8":
                version = int(m.group(2))
                if version not in (7, 8):
                    accept = self.headers.get("Accept")
                    err = es_error("media_type_header_exception", "Invalid media-type value on headers [Accept]", 400,
                                   caused_by={"type": "status_exception", "reason":
                                              f"Accept version must be either version 8 or 7, but found {version}. Accept={accept}"})
                    return self.send(400, err)
                self.compat = version
        method = self.command
        r = route(self.s, self.url_path)
        early = self.flavor != "es8"      # es7/os2: routing and the breaker come before the security wrapper
        if early and self.routing_failed(r, method):
            return
        if early and self.overloaded("pre"):
            return
        if self.s["security"] and not (r and r[0] == "os_health"):
            kind, who = authenticate(self.s, self.headers)
            if kind == "bad":
                return self.unauthorized(user=who)
            if kind == "missing":
                return self.unauthorized()
            self.caller = who
        elif self.s["security"]:
            kind, who = authenticate(self.s, self.headers)
            self.caller = who if kind in ("user", "anonymous") else None
        if not early and self.routing_failed(r, method):
            return
        if not early and self.overloaded("pre"):
            return
        name, params, _ = r
        getattr(self, "ep_" + name)(params)

    def routing_failed(self, r, method):
        if r is None:
            self.send(*no_handler(self.url_path, method))
            return True
        if method not in r[2]:
            allowed = list(r[2])
            self.send(405, {"error": f"Incorrect HTTP method for uri [{self.path}] and method [{method}], allowed: "
                                     f"[{', '.join(allowed)}]", "status": 405},
                      headers=[("Allow", ",".join(allowed))])
            return True
        return False

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

    # ------------------------------------------------------------ endpoints

    def run(self, allowed, action):
        """The common gates: parameters, authorization, execution-time overload."""
        if not self.check_params(allowed):
            return False
        if action and not self.authorized(action):
            return False
        return not self.overloaded("run")

    def ep_root(self, params):
        if self.run(set(), ACTIONS["root"]):
            # RestMainAction pretty-prints unless ?pretty=false; HEAD gets the headers only.
            self.send(200, INFO[self.flavor], pretty_default=True)

    def ep_cat_indices(self, params):
        if not self.check_params(CAT_PARAMS):
            return
        if not self.authorized(ACTIONS["cat_indices"]) or self.overloaded("run"):
            return
        rows = index_rows(self.s)
        if "index" in params:
            pats = params["index"].split(",")
            rows = [r for r in rows if any(glob(p, r["index"]) for p in pats)]
            if not rows and not any("*" in p for p in pats):
                missing = pats[0]
                return self.send(404, es_error("index_not_found_exception", f"no such index [{missing}]", 404,
                                               **{"resource.type": "index_or_alias", "resource.id": missing,
                                                  "index_uuid": "_na_", "index": missing}))
        if self.s["security"]:
            visible = [r for r in rows if index_listable(self.s, self.caller, r["index"])]
            if self.flavor == "os2" and rows and not visible:
                return self.send(403, es_error("security_exception", denial_reason(
                    self.s, self.caller, "indices:monitor/settings/get"), 403))
            rows = visible
        fmt = self.q.get("format")
        if not fmt:
            first = (self.headers.get("Accept") or "").split(",")[0].split(";")[0].strip().lower()
            if "json" in first:
                self.q.values["format"] = "json"
        status, body, ctype = cat_indices(self.s, self.flavor, rows, self.q)
        self.send(status, body, ctype=ctype)

    def ep_xpack(self, params):
        if not self.check_params({"categories", "accept_enterprise"}):
            return
        raw = self.q.get("categories", "_all")
        cats = set()
        for c in [c.strip() for c in raw.split(",") if c.strip()] or ["_all"]:
            if c == "_all":
                cats = set(XPACK_CATEGORIES)
                break
            if c == "_none":
                cats = set()
                break
            if c.lower() not in XPACK_CATEGORIES:
                return self.bad_param("No enum constant org.elasticsearch.protocol.xpack.XPackInfoRequest.Category."
                                      + c.upper())
            cats.add(c.lower())
        if not self.authorized(ACTIONS["xpack"]) or self.overloaded("run"):
            return
        self.send(200, xpack_info(self.s, self.flavor, cats, self.q.flag("human", True)))

    def ep_authenticate(self, params):
        if not self.check_params(set()):
            return
        if not self.s["security"]:    # es7 on its basic-license default: the handler is there, the feature is not
            reason = ("Security must be explicitly enabled when using a [basic] license. Enable security by setting "
                      "[xpack.security.enabled] to [true] in the elasticsearch.yml file and restart the node.")
            return self.send(500, es_error("exception", reason, 500))
        if self.overloaded("run"):
            return
        self.send(200, es_authenticate_body(self.s, self.caller))

    def ep_os_health(self, params):
        if not self.check_params({"mode"}):
            return
        if self.overloaded("run"):
            return
        mode = self.q.get("mode", "strict")
        self.send(200, {"message": None, "mode": mode, "status": "UP"})

    def ep_os_authinfo(self, params):
        if not self.check_params({"verbose"}):
            return
        if self.overloaded("run"):
            return
        host, port = self.client_address[:2]
        self.send(200, os_authinfo_body(self.s, self.caller, f"{host}:{port}"))

    def ep_nodes(self, params):
        a, b = params.get("a"), params.get("b")
        if not self.check_params({"timeout", "flat_settings", "settings_filter", "nodeId", "metrics"}):
            return
        if a is not None and b is None:
            parts = [p for p in a.split(",") if p]
            if all(p in NODES_METRICS or p == "_all" for p in parts):
                node_ids, metrics = ["_all"], parts
            else:
                node_ids, metrics = parts, ["_all"]
        else:
            node_ids = [p for p in (a or "_all").split(",") if p]
            metrics = [p for p in (b or "_all").split(",") if p]
        if metrics == ["_all"] or not metrics:
            metrics = list(NODES_METRICS)
        else:
            bad = {m for m in metrics if m not in NODES_METRICS}
            if bad:
                return self.bad_param(unrecognized(self.url_path, bad, NODES_METRICS, "metric"))
        if not self.authorized(ACTIONS["nodes"]) or self.overloaded("run"):
            return
        self.send(200, nodes_response(self.s, self.flavor, node_ids, metrics, self.q))

    def ep_cluster_settings(self, params):
        if not self.check_params({"flat_settings", "include_defaults", "master_timeout", "local", "settings_filter",
                                  "timeout"}):
            return
        action = "cluster:monitor/settings" if self.flavor == "es8" else "cluster:monitor/state"
        if self.command == "PUT":
            action = "cluster:admin/settings/update"
        if not self.authorized(action) or self.overloaded("run"):
            return
        if self.command == "PUT":
            return self.send(400, es_error("action_request_validation_exception",
                                           "Validation Failed: 1: no settings to update;", 400))
        cs = self.s.get("cluster_settings") or {}
        body = {"persistent": cs.get("persistent", {}), "transient": cs.get("transient", {})}
        if self.q.flag("include_defaults"):
            sec = "true" if self.s["security"] else "false"
            body["defaults"] = deep_merge({"http": {"cors": {"enabled": "false", "allow-origin": "",
                                                              "allow-credentials": "false"},
                                                     "port": "9200-9300", "host": []},
                                           "xpack": {"security": {"enabled": sec}} if self.flavor != "os2" else
                                           {"plugins": {"security": {"disabled": "false" if self.s["security"] else "true"}}}},
                                          node_settings(self.s, self.flavor))
        if self.q.flag("flat_settings"):
            body = {k: flatten(v) for k, v in body.items()}
        self.send(200, body)

    # ------------------------------------------------------------ _search

    def int_param(self, name):
        """RestRequest.paramAsInt."""
        v = self.q.get(name)
        if re.fullmatch(r"[+-]?\d+", v) and -2 ** 31 <= int(v) < 2 ** 31:
            return int(v)
        raise SearchError(400, es_error("illegal_argument_exception",
                                        f"Failed to parse int parameter [{name}] with value [{v}]", 400,
                                        caused_by={"type": "number_format_exception", "reason": f'For input string: "{v}"'}))

    def bool_param(self, name, default=None, options=False):
        """RestRequest.paramAsBoolean (an empty value is true), or, for the IndicesOptions flags,
        XContentMapValues.nodeBooleanValue (an empty value is the default)."""
        v = self.q.get(name)
        if v is None or (v == "" and options):
            return default
        if v in ("", "true", "false"):
            return v != "false"
        msg = f"Failed to parse value [{v}] as only [true] or [false] are allowed."
        if options:
            raise SearchError(400, es_error("illegal_argument_exception", f"Could not convert [{name}] to boolean", 400,
                                            caused_by={"type": "illegal_argument_exception", "reason": msg}))
        raise SearchError(400, es_error("illegal_argument_exception", msg, 400))

    def search_options(self):
        """RestSearchAction.parseSearchRequest: the body first, then the URL parameters over it."""
        opts = {"size": 10, "from": 0, "track_total_hits": None}
        if self.body.strip():
            try:
                src = json.loads(self.body)
                if not isinstance(src, dict):
                    raise ValueError("not an object")
                for k in ("size", "from"):
                    if k in src:
                        if isinstance(src[k], bool) or not isinstance(src[k], int):
                            raise ValueError(f"[{k}] is not an integer")
                        opts[k] = src[k]
                tth = src.get("track_total_hits")
                if tth is not None:
                    if isinstance(tth, bool):
                        opts["track_total_hits"] = TRACK_TOTAL_HITS_ACCURATE if tth else -1
                    elif isinstance(tth, int):
                        opts["track_total_hits"] = tth
                    else:
                        raise ValueError("[track_total_hits] is not a boolean or an integer")
            except ValueError as e:   # the real parse errors (x_content_parse_exception, line/col) are not modelled
                raise SearchError(400, es_error("parsing_exception", f"fake_es: unusable search body: {e}", 400)) from None
        for name in ("batched_reduce_size", "pre_filter_shard_size", "max_concurrent_shard_requests", "terminate_after"):
            if name in self.q.values:
                self.int_param(name)
        for name in ("allow_partial_search_results", "explain", "version", "seq_no_primary_term", "track_scores",
                     "request_cache", "ccs_minimize_roundtrips", "force_synthetic_source"):
            if name in self.q.values:
                self.bool_param(name)
        for name in ("from", "size"):
            if name in self.q.values:
                opts[name] = self.int_param(name)
        tth = self.q.get("track_total_hits")
        if tth is not None:
            opts["track_total_hits"] = ({"true": TRACK_TOTAL_HITS_ACCURATE, "false": -1}[tth]
                                        if tth in ("true", "false") else self.int_param("track_total_hits"))
        for name in ("size", "from"):
            if opts[name] < 0 and not (name == "size" and opts[name] == -1 and self.flavor == "es7"):
                raise SearchError(400, es_error("illegal_argument_exception",
                                                f"[{name}] parameter cannot be negative, found [{opts[name]}]", 400))
        if opts["size"] == -1:          # 7.x: -1 means "not set"
            opts["size"] = 10
        if opts["track_total_hits"] is not None and opts["track_total_hits"] < -1:
            raise SearchError(400, es_error("illegal_argument_exception", "[track_total_hits] parameter must be positive "
                                            f"or equals to -1, got {opts['track_total_hits']}", 400))
        opts["scroll"] = self.q.get("scroll")
        opts["expand"] = expand_states(self.q.get("expand_wildcards"))
        opts["ignore_unavailable"] = self.bool_param("ignore_unavailable", False, options=True)
        opts["allow_no_indices"] = self.bool_param("allow_no_indices", True, options=True)
        self.bool_param("ignore_throttled", True, options=True)
        opts["total_as_int"] = self.bool_param("rest_total_hits_as_int", False)
        upto = opts["track_total_hits"]
        if opts["total_as_int"] and upto is not None and upto not in (-1, TRACK_TOTAL_HITS_ACCURATE):
            raise SearchError(400, es_error("illegal_argument_exception", "[rest_total_hits_as_int] cannot be used if "
                                            f"the tracking of total hits is not accurate, got {upto}", 400))
        return opts

    def search_params(self):
        allowed = SEARCH_PARAMS | SEARCH_PARAMS_FLAVOR[self.flavor]
        if "q" in self.q.values:
            allowed |= SEARCH_PARAMS_WITH_Q
        if "suggest_field" in self.q.values:
            allowed |= SEARCH_PARAMS_WITH_SUGGEST
        return allowed

    def ep_search(self, params):
        try:
            opts = self.search_options()
        except SearchError as e:
            return self.send(e.status, e.body)
        if not self.check_params(self.search_params()):
            return
        rows = index_rows(self.s)
        # A path {index} wins over ?index= (the path parameter is put over the query one).
        names = search_names(params.get("index", self.q.values.get("index")))
        try:
            if self.s["security"] and self.flavor != "os2":
                # IndicesAndAliasesResolver: wildcards expand to the indices the caller may search, then RBACEngine
                # authorizes what is left; nothing left is the "-*" placeholder, allowed (an empty answer) if
                # the caller may search somewhere.
                may = lambda n: index_action_allowed(self.s, self.caller, n, SEARCH_ACTION)
                target = expand_names(rows, names, opts, ok=may, strict=True)
                if not target and not opts["allow_no_indices"]:
                    raise index_not_found(",".join(names))
                if not target:
                    if not index_action_anywhere(self.s, self.caller, SEARCH_ACTION):
                        return self.deny(SEARCH_ACTION)
                else:
                    denied = [n for n in target if not may(n)]
                    if denied:
                        return self.deny(SEARCH_ACTION, f"on indices [{','.join(denied)}]")
            elif self.s["security"]:
                # OpenSearch: every index the expression resolves to must be permitted (do_not_fail_on_forbidden
                # is off by default); a name that does not exist is checked as a name.
                wanted = expand_names(rows, names, opts)
                ok = (all(index_action_allowed(self.s, self.caller, n, SEARCH_ACTION) for n in wanted) if wanted
                      else index_action_anywhere(self.s, self.caller, SEARCH_ACTION))
                if not ok:
                    return self.deny(SEARCH_ACTION)
                target = names
            else:
                target = names
            ov = self.overload_match("run")
            if ov and not (ov["status"] == 429 and ov["kind"] != "circuit_breaking"):
                if ov["status"] == 503:
                    return self.send(503, search_overload_error(self.flavor, 503, []))
                return self.send(ov["status"], overload_error(self.flavor, ov["status"], ov["kind"]))
            hit = resolve_core(rows, target, opts) if target else []
        except SearchError as e:
            return self.send(e.status, e.body)
        if ov and hit:                  # search pool rejections need a shard to reject
            return self.send(429, search_overload_error(self.flavor, 429, hit))
        self.send(200, search_response(hit, opts))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    ssl_context = None

    def finish_request(self, request, client_address):
        if self.ssl_context is not None:
            try:
                request.settimeout(30)
                request = self.ssl_context.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError):
                return            # plain HTTP (or garbage) on the TLS port: the connection is dropped
        self.RequestHandlerClass(request, client_address, self)

    def handle_error(self, request, client_address):
        pass                      # a client that went away is not an error of the fake


def main():
    server = Server(("127.0.0.1", OPTS.port), Handler)
    if OPTS.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(OPTS.tls_cert, OPTS.tls_key or None)
        server.ssl_context = ctx
    print(f"ready port={server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
