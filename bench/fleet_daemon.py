#!/usr/bin/env python3
"""The daemon over a large AWS fleet: memory, store growth, API calls and CPU per cycle.

usage: python3 bench/fleet_daemon.py [--sgs 10000 --domains 500 --rds 1000] [--cycles 1000] [--schedule "* * * * * *"]
                                     [--churn-cycles 1000 --churn-percent 1]

A moto server of its own is seeded (bench/fleet_seed.py) and put behind bench/aws_replay.py in
replay mode (answers from memory, paginated as AWS does), so a cycle costs what lockwatch costs,
not moto's rendering. `lockwatch run` (release build, or LOCKWATCH_BIN) watches it on the given
schedule. Reported: RSS after the first cycle and after CYCLES unchanged cycles (and the peak),
the state (database + WAL) after the first cycle and after CYCLES cycles, API calls per cycle
against the minimum (bench/floor.py's calls), and CPU seconds per cycle. With --churn-cycles,
a second phase edits 1% of the resources after every cycle (bench/aws_replay.py's churn) and
reports the same figures again.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from fleet_scan import TEST_VENV, Server, http  # noqa: E402


def resources(d):
    """Resources watched, summed over lockwatch_resources' series."""
    total = 0.0
    for line in (d.metrics() or "").splitlines():
        if line.startswith("lockwatch_resources{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sgs", type=int, default=10000)
    ap.add_argument("--domains", type=int, default=500)
    ap.add_argument("--rds", type=int, default=1000)
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--schedule", default="* * * * * *")
    ap.add_argument("--churn-cycles", type=int, default=0, help="then this many cycles with churn")
    ap.add_argument("--churn-percent", type=float, default=1.0, help="resources changed per churn cycle")
    a = ap.parse_args()
    wd = common.workdir("lockwatch-bench-fleet-daemon-")
    moto_port, replay_port, metrics_port = common.free_port(), common.free_port(), common.free_port()
    servers = [Server("moto", [os.path.join(TEST_VENV, "bin", "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
                      moto_port, os.path.join(wd, "moto.log"))]
    out = {"date": datetime.date.today().isoformat(), "command": " ".join(["python3"] + sys.argv),
           "fleet": {"security_groups": a.sgs + 1, "domains": a.domains, "rds": a.rds}, "schedule": a.schedule}
    d = None
    try:
        subprocess.run([os.path.join(TEST_VENV, "bin", "python"), os.path.join(common.ROOT, "bench", "fleet_seed.py"),
                        f"http://127.0.0.1:{moto_port}", "--sgs", str(a.sgs), "--domains", str(a.domains), "--rds", str(a.rds)],
                       check=True, stdout=subprocess.DEVNULL)
        servers.append(Server("replay", [sys.executable, os.path.join(common.ROOT, "bench", "aws_replay.py"), "--upstream",
                                         f"http://127.0.0.1:{moto_port}", "--port", str(replay_port), "--mode", "replay"],
                              replay_port, os.path.join(wd, "replay.log")))
        endpoint = f"http://127.0.0.1:{replay_port}"
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_ENDPOINT_URL": endpoint,
               "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
        # The minimum: the floor's calls (this also fills the replay memory).
        subprocess.run([os.path.join(TEST_VENV, "bin", "python"), os.path.join(common.ROOT, "bench", "floor.py")], env=env,
                       check=True, stderr=subprocess.DEVNULL)
        http(f"{endpoint}/_bench/reset", b"")
        subprocess.run([os.path.join(TEST_VENV, "bin", "python"), os.path.join(common.ROOT, "bench", "floor.py")], env=env,
                       check=True, stderr=subprocess.DEVNULL)
        out["floor_calls_per_scan"] = http(f"{endpoint}/_bench/stats")
        cfg = f"""[daemon]
schedule = "{a.schedule}"
state_dir = "{wd}/state"
metrics_listen = "127.0.0.1:{metrics_port}"
[[sources]]
kind = "aws"
name = "fleet"
regions = ["us-east-1"]
endpoint_url = "{endpoint}"
timeout = "120s"
"""
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_") and k != "AWS_ENDPOINT_URL"})
        http(f"{endpoint}/_bench/reset", b"")
        d = common.Daemon(wd, cfg, metrics_port)
        common.wait_cycles(d, 1, 600)
        c0, cpu0, t0 = d.metric("lockwatch_cycles_total"), d.cpu_seconds(), time.time()
        calls0 = http(f"{endpoint}/_bench/stats")["calls"]
        out["after_first_cycle"] = {"cycles": c0, "state_bytes": common.state_bytes(wd), "rss_kb": d.status("VmRSS"),
                                    "peak_rss_kb": d.status("VmHWM"), "resources": resources(d)}
        print("after the first cycle:", out["after_first_cycle"], flush=True)
        last = time.time()
        while True:
            c = common.wait_cycles(d, c0 + 1, 600)
            if c >= c0 + a.cycles:
                break
            if time.time() - last > 60:
                print(f"  {c - c0:.0f} cycles, RSS {d.status('VmRSS')} kB, state {common.state_bytes(wd)} B", flush=True)
                last = time.time()
            time.sleep(1)
        c1, cpu1 = d.metric("lockwatch_cycles_total"), d.cpu_seconds()
        stats = http(f"{endpoint}/_bench/stats")
        n = c1 - c0
        out["after_cycles"] = {"cycles": n, "wall_seconds": round(time.time() - t0, 1), "state_bytes": common.state_bytes(wd),
                               "rss_kb": d.status("VmRSS"), "peak_rss_kb": d.status("VmHWM"),
                               "cpu_seconds_per_cycle": round((cpu1 - cpu0) / n, 4),
                               "api_calls_per_cycle": round((stats["calls"] - calls0) / n, 2),
                               "api_calls_by_action_total": stats["by_action"]}
        out["state_growth_bytes"] = out["after_cycles"]["state_bytes"] - out["after_first_cycle"]["state_bytes"]
        if a.churn_cycles:
            # Churn: right after each cycle, edit 1% of the resources (security groups' private
            # rules, in the replay memory); the next cycle sees them changed.
            per = max(1, round(out["after_first_cycle"]["resources"] * a.churn_percent / 100))
            start, cpu_s, t_s = d.metric("lockwatch_cycles_total"), d.cpu_seconds(), time.time()
            seen, edits, last = start, 0, time.time()
            while seen < start + a.churn_cycles:
                c = common.wait_cycles(d, seen + 1, 600)
                if c > seen:
                    edits += http(f"{endpoint}/_bench/churn?n={per}", b"")["changed"]
                    seen = c
                if time.time() - last > 60:
                    print(f"  churn: {seen - start:.0f} cycles, {edits} edits, RSS {d.status('VmRSS')} kB, state {common.state_bytes(wd)} B", flush=True)
                    last = time.time()
                time.sleep(0.05)
            n2 = d.metric("lockwatch_cycles_total") - start
            out["after_churn"] = {"cycles": n2, "edits": edits, "edits_per_cycle": per, "wall_seconds": round(time.time() - t_s, 1),
                                  "state_bytes": common.state_bytes(wd), "rss_kb": d.status("VmRSS"), "peak_rss_kb": d.status("VmHWM"),
                                  "cpu_seconds_per_cycle": round((d.cpu_seconds() - cpu_s) / n2, 4),
                                  "drift_events": sum(float(l.rsplit(" ", 1)[1]) for l in (d.metrics() or "").splitlines()
                                                      if l.startswith("lockwatch_drift_events_total{"))}
            out["churn_state_growth_bytes"] = out["after_churn"]["state_bytes"] - out["after_cycles"]["state_bytes"]
            out["churn_bytes_per_edit"] = round(out["churn_state_growth_bytes"] / max(1, edits), 1)
    finally:
        if d:
            d.stop()
        for s in reversed(servers):
            s.stop()
        common.cleanup(wd)
    print(json.dumps(out, indent=1))
    label = f"{a.cycles}-cycles" + (f"-churn-{a.churn_cycles}" if a.churn_cycles else "")
    path = os.path.join(common.ROOT, "bench", "results", f"fleet_daemon-{label}-{out['date']}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
    print("written", path)


if __name__ == "__main__":
    main()
