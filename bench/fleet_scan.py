#!/usr/bin/env python3
"""Fleet scan: lockwatch side by side with Cloud Custodian, Prowler and a boto3 floor.

usage: python3 bench/fleet_scan.py [--fleet small|large|both] [--runs 3] [--tools lockwatch,c7n,prowler,floor]

For each fleet (small: 1,000 security groups, 100 OpenSearch domains, 1,000 RDS instances;
large: 10,000 / 500 / 1,000) a moto server of its own is seeded (bench/fleet_seed.py), and every
tool scans it twice over:
  moto    through bench/aws_replay.py in proxy mode (moto answers, the endpoint counts calls);
  replay  through bench/aws_replay.py in replay mode (answers from memory, paginated as AWS does).
Runs alternate between tools (the order rotates each round); each run is a fresh process whose
wall time and peak RSS (wait4) are recorded with its API calls; medians are reported, and ratios
to lockwatch. What each tool found is compared with the fleet's ground truth.

Peers are installed from PyPI into throwaway venvs under ~/.cache/lockwatch-bench on first use;
nothing of theirs is in this repository. lockwatch: LOCKWATCH_BIN, or the release build.
"""
import argparse
import datetime
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, binary, free_port, workdir, cleanup  # noqa: E402

CACHE = os.path.expanduser("~/.cache/lockwatch-bench")
TEST_VENV = os.path.expanduser("~/.cache/lockwatch-venv")
FLEETS = {"small": (1000, 100, 1000), "large": (10000, 500, 1000)}
PROWLER_CHECKS = [
    "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_mysql_3306",
    "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_postgres_5432",
    "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_redis_6379",
    "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_elasticsearch_kibana_9200_9300_5601",
    "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_mongodb_27017_27018",
    "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_memcached_11211",
    "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_oracle_1521_2483",
    "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_sql_server_1433_1434",
    "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_cassandra_7199_9160_8888",
    "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_kafka_9092",
    "opensearch_service_domains_not_publicly_accessible",
    "rds_instance_no_public_access",
]


def venv(name, package):
    """A throwaway venv with `package` from PyPI (created once, reused)."""
    path = os.path.join(CACHE, f"{name}-venv")
    if not os.path.exists(os.path.join(path, ".installed")):
        os.makedirs(CACHE, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", path], check=True)
        subprocess.run([os.path.join(path, "bin", "pip"), "install", "-q", package], check=True)
        open(os.path.join(path, ".installed"), "w").close()
    return path


def http(url, data=None):
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST" if data is not None else "GET"), timeout=30) as r:
        return json.loads(r.read() or b"{}")


class Server:
    def __init__(self, name, cmd, port, log):
        self.port, self.log = port, open(log, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_bench/stats" if "replay" in name else f"http://127.0.0.1:{port}/moto-api/", timeout=2)
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{name} did not start: see {log}")

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


def measured(cmd, env, out_path, timeout):
    """Run cmd; return wall seconds, peak RSS in MB, exit code.

    Peak RSS comes from GNU time (%M, the child's own high-water mark). wait4 from this process
    would be wrong: a child forked from a large parent keeps the parent's high-water mark across
    exec, so every tool would show at least this harness's size.
    """
    rss_file = out_path + ".rss"
    with open(out_path, "w") as out, open(out_path + ".err", "w") as err:
        t0 = time.monotonic()
        try:
            code = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file, *cmd], stdout=out, stderr=err,
                                  env=env, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
        wall = time.monotonic() - t0
    try:
        rss = int(open(rss_file).read().split()[-1]) / 1024
    except (OSError, ValueError, IndexError):
        rss = float("nan")
    return wall, rss, code


class Tools:
    def __init__(self, work, wanted):
        self.work = work
        self.bin = {}
        if "lockwatch" in wanted:
            self.bin["lockwatch"] = binary()
        if "c7n" in wanted:
            self.bin["c7n"] = os.path.join(venv("c7n", "c7n"), "bin", "custodian")
        if "prowler" in wanted:
            self.bin["prowler"] = os.path.join(venv("prowler", "prowler"), "bin", "prowler")
        if "floor" in wanted:
            self.bin["floor"] = os.path.join(TEST_VENV, "bin", "python")
        self.wanted = wanted

    def command(self, tool, endpoint, outdir):
        os.makedirs(outdir, exist_ok=True)
        if tool == "lockwatch":
            cfg = os.path.join(outdir, "lockwatch.toml")
            with open(cfg, "w") as f:
                f.write(f"""[daemon]
state_dir = "{outdir}/state"
[alerts.email]
smtp_host = "127.0.0.1"
tls = "none"
from = "lockwatch@example.com"
to = ["oncall@example.com"]
[[sources]]
kind = "aws"
name = "fleet"
regions = ["us-east-1"]
endpoint_url = "{endpoint}"
timeout = "600s"
""")
            return [self.bin[tool], "--config", cfg, "scan", "--format", "json"]
        if tool == "c7n":
            return [self.bin[tool], "run", "-s", outdir, "--cache-period", "0", "-r", "us-east-1",
                    os.path.join(ROOT, "bench", "peers", "c7n-policies.yml")]
        if tool == "prowler":
            return [self.bin[tool], "aws", "--checks", *PROWLER_CHECKS, "--scan-unused-services", "-f", "us-east-1",
                    "-M", "json-ocsf", "-o", outdir, "-F", "findings", "--no-banner", "--ignore-exit-code-3"]
        return [self.bin[tool], os.path.join(ROOT, "bench", "floor.py")]

    def env(self, endpoint):
        e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        e.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
                 AWS_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint, AWS_EC2_METADATA_DISABLED="true",
                 AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", LOCKWATCH_LOG="warn")
        return e


def last_segment(s):
    return re.split(r"[/:]", s.rstrip("/"))[-1]


def findings(tool, outdir, stdout_path):
    """The resources a tool reported, per question: security_groups, domains, rds."""
    found = {"security_groups": set(), "domains": set(), "rds": set()}
    if tool == "lockwatch":
        doc = json.load(open(stdout_path))
        for r in doc["resources"]:
            rules = {f["rule"] for f in r["findings"]}
            name = last_segment(r["id"])
            if "ec2.sg.datastore_open_to_world" in rules:
                found["security_groups"].add(re.search(r"sg-[0-9a-f]+", r["id"]).group(0))
            if rules & {"opensearch.policy.public", "opensearch.fgac.anonymous_auth"}:
                found["domains"].add(name)
            if rules & {"rds.public.open_to_world", "rds.publicly_accessible"}:
                found["rds"].add(name)
    elif tool == "c7n":
        for policy, key, field in [("sg-datastore-open-to-world", "security_groups", "GroupId"),
                                   ("opensearch-public-policy", "domains", "DomainName"),
                                   ("rds-publicly-accessible", "rds", "DBInstanceIdentifier")]:
            p = os.path.join(outdir, policy, "resources.json")
            if os.path.exists(p):
                found[key] |= {r[field] for r in json.load(open(p))}
    elif tool == "prowler":
        for p in glob.glob(os.path.join(outdir, "**", "*.ocsf.json"), recursive=True):
            for f in json.load(open(p)):
                if f.get("status_code") != "FAIL":
                    continue
                check = f["metadata"]["event_code"]
                uid = f["resources"][0]["uid"]
                key = "security_groups" if check.startswith("ec2_") else "domains" if check.startswith("opensearch") else "rds"
                found[key].add(last_segment(uid))
    return {k: sorted(v) for k, v in found.items()}


def compare(found, truth):
    out = {}
    for key in ("security_groups", "domains", "rds"):
        t, f = set(truth[key]), set(found[key])
        out[key] = {"found": len(f), "truth": len(t), "missed": sorted(t - f), "extra": sorted(f - t)}
    return out


def scan_fleet(name, args, tools):
    sgs, domains, rds = FLEETS[name]
    work = workdir(f"lockwatch-fleet-{name}-")
    moto_port, proxy_port, replay_port = free_port(), free_port(), free_port()
    moto = Server("moto", [os.path.join(TEST_VENV, "bin", "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
                  moto_port, os.path.join(work, "moto.log"))
    servers = [moto]
    try:
        t0 = time.monotonic()
        seeded = subprocess.run([os.path.join(TEST_VENV, "bin", "python"), os.path.join(ROOT, "bench", "fleet_seed.py"),
                                 f"http://127.0.0.1:{moto_port}", "--sgs", str(sgs), "--domains", str(domains), "--rds", str(rds)],
                                capture_output=True, text=True)
        if seeded.returncode != 0:
            raise RuntimeError(f"seeding moto failed:\n{seeded.stderr[-3000:]}")
        truth = json.loads(seeded.stdout)
        print(f"[{name}] seeded in {time.monotonic() - t0:.0f} s: {truth['counts']}", flush=True)
        for mode, port in (("proxy", proxy_port), ("replay", replay_port)):
            servers.append(Server(f"{mode} replay", [sys.executable, os.path.join(ROOT, "bench", "aws_replay.py"), "--upstream",
                                                     f"http://127.0.0.1:{moto_port}", "--port", str(port), "--mode", mode],
                                  port, os.path.join(work, f"{mode}.log")))
        result = {"fleet": {"security_groups": truth["counts"]["security_groups"], "domains": domains, "rds": rds},
                  "backends": {}, "findings": {}}
        for backend, port in [(b, p) for b, p in (("replay", replay_port), ("moto", proxy_port)) if b in args.backends]:
            endpoint = f"http://127.0.0.1:{port}"
            runs = {t: [] for t in args.tools}
            # Warm-up on replay (fills the replay memory; checks every tool works; findings).
            for tool in args.tools if backend == "replay" else []:
                outdir = os.path.join(work, backend, tool, "warmup")
                stdout = os.path.join(outdir, "stdout")
                os.makedirs(outdir, exist_ok=True)
                wall, rss, code = measured(tools.command(tool, endpoint, outdir), tools.env(endpoint), stdout, args.timeout)
                print(f"[{name}/{backend}] warm-up {tool}: {wall:.1f} s, exit {code}", flush=True)
                if backend == "replay":
                    try:
                        f = findings(tool, outdir, stdout)
                        result["findings"][tool] = {"found": f, "vs_truth": compare(f, truth)}
                    except (OSError, ValueError, KeyError) as e:
                        result["findings"][tool] = {"error": f"{type(e).__name__}: {e} (see {outdir})"}
            for r in range(args.runs):
                order = args.tools[r % len(args.tools):] + args.tools[: r % len(args.tools)]
                for tool in order:
                    if tool == "prowler" and r >= args.prowler_runs:
                        continue
                    outdir = os.path.join(work, backend, tool, f"run{r}")
                    http(f"{endpoint}/_bench/reset", b"")
                    wall, rss, code = measured(tools.command(tool, endpoint, outdir), tools.env(endpoint),
                                               os.path.join(outdir, "stdout"), args.timeout)
                    stats = http(f"{endpoint}/_bench/stats")
                    runs[tool].append({"wall_s": round(wall, 3), "peak_rss_mb": round(rss, 1), "exit": code,
                                       "api_calls": stats["calls"], "by_action": stats["by_action"]})
                    print(f"[{name}/{backend}] run {r} {tool}: {wall:.2f} s, {rss:.0f} MB, {stats['calls']} calls, exit {code}", flush=True)
                    shutil.rmtree(os.path.join(outdir, "state"), ignore_errors=True)
            summary = {}
            for tool, rs in runs.items():
                summary[tool] = {"median_wall_s": round(statistics.median(x["wall_s"] for x in rs), 3),
                                 "median_peak_rss_mb": round(statistics.median(x["peak_rss_mb"] for x in rs), 1),
                                 "api_calls": statistics.median(x["api_calls"] for x in rs),
                                 "by_action": rs[0]["by_action"], "exits": [x["exit"] for x in rs],
                                 "walls_s": [x["wall_s"] for x in rs]}
            if "lockwatch" in summary:
                base = summary["lockwatch"]["median_wall_s"]
                for s in summary.values():
                    s["wall_ratio_to_lockwatch"] = round(s["median_wall_s"] / base, 2)
            result["backends"][backend] = summary
        result["truth"] = {k: truth[k] for k in ("security_groups", "security_groups_attached", "domains", "rds", "rds_open_to_world")}
        result["shapes"] = truth["shapes"]
        return result
    finally:
        for s in reversed(servers):
            s.stop()
        if not args.keep:
            cleanup(work)
        else:
            print(f"kept {work}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fleet", choices=["small", "large", "both"], default="both")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tools", default="lockwatch,c7n,prowler,floor")
    ap.add_argument("--prowler-runs", type=int, default=None,
                    help="timed Prowler runs per backend (default --runs; Prowler takes minutes per run)")
    ap.add_argument("--backends", default="replay,moto", help="replay, moto or both (comma-separated)")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--keep", action="store_true", help="keep the work directory (tool outputs, logs)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    args.tools = args.tools.split(",")
    args.backends = args.backends.split(",")
    if args.prowler_runs is None:
        args.prowler_runs = args.runs
    if not os.path.exists("/usr/bin/time"):
        sys.exit("GNU time is needed for peak RSS: apt-get install time")
    tools = Tools(None, args.tools)
    fleets = ["small", "large"] if args.fleet == "both" else [args.fleet]
    results = {"date": datetime.date.today().isoformat(), "command": " ".join(["python3"] + sys.argv),
               "lockwatch_bin": tools.bin.get("lockwatch"), "fleets": {}}
    for f in fleets:
        results["fleets"][f] = scan_fleet(f, args, tools)
    out = args.out or os.path.join(ROOT, "bench", "results", f"fleet_scan-{results['date']}.json")
    with open(out, "w") as fh:
        json.dump(results, fh, indent=1, sort_keys=True)
    for f, r in results["fleets"].items():
        for backend, s in r["backends"].items():
            print(f"\n{f} fleet {r['fleet']} on {backend}")
            print(f"{'tool':10} {'wall s':>9} {'ratio':>7} {'RSS MB':>8} {'calls':>7}")
            for tool, x in s.items():
                print(f"{tool:10} {x['median_wall_s']:9.2f} {x.get('wall_ratio_to_lockwatch', 0):7.2f} {x['median_peak_rss_mb']:8.1f} {x['api_calls']:7}")
        for tool, x in r["findings"].items():
            v = x.get("vs_truth")
            print(f"{f} findings {tool}: " + (json.dumps({k: (y['found'], y['truth'], len(y['missed']), len(y['extra'])) for k, y in v.items()}) if v else x["error"]))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
