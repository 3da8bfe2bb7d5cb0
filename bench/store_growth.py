#!/usr/bin/env python3
"""Memory and store growth of the lockwatch daemon over many cycles (issue 6, part 3, on
self-hosted sources).

Runs `lockwatch run` (release build) with a 1-second schedule against its own Redis servers:
SOURCES sources spread over SERVERS redis-server instances, so there are SOURCES resources.
Phase 1: CYCLES unchanged cycles. Phase 2: CYCLES cycles in which one server in SERVERS flips
a posture field every cycle (churn = 1/SERVERS of the resources... per cycle).
Reports the state file (database + WAL) and the daemon's RSS after the first cycles and after
each phase, and CPU seconds per cycle.

usage: bench/store_growth.py [--cycles 1000] [--sources 100] [--servers 100]
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--sources", type=int, default=100)
    ap.add_argument("--servers", type=int, default=100)
    a = ap.parse_args()
    wd = common.workdir("lockwatch-bench-store-")
    servers = [common.Redis(wd, "bench-pw") for _ in range(a.servers)]
    srcs = "".join(
        f'[[sources]]\nkind = "redis"\nname = "r{i}"\nurl = "redis://:bench-pw@127.0.0.1:{servers[i % a.servers].port}"\ntimeout = "5s"\n'
        for i in range(a.sources))
    port = common.free_port()
    cfg = f'[daemon]\nschedule = "* * * * * *"\nstate_dir = "{wd}/state"\nmetrics_listen = "127.0.0.1:{port}"\n{srcs}'
    d = common.Daemon(wd, cfg, port)
    out = {"sources": a.sources, "servers": a.servers, "cycles_per_phase": a.cycles}
    try:
        common.wait_cycles(d, 3, 120)
        out["after_first_cycles"] = {"cycles": d.metric("lockwatch_cycles_total"), "state_bytes": common.state_bytes(wd), "rss_kb": d.status("VmRSS")}
        c0, cpu0, t0 = d.metric("lockwatch_cycles_total"), d.cpu_seconds(), time.time()
        common.wait_cycles(d, c0 + a.cycles, a.cycles * 3 + 120)
        c1, cpu1 = d.metric("lockwatch_cycles_total"), d.cpu_seconds()
        out["after_unchanged"] = {"cycles": c1, "state_bytes": common.state_bytes(wd), "rss_kb": d.status("VmRSS"),
                                  "peak_rss_kb": d.status("VmHWM"), "cpu_seconds_per_cycle": round((cpu1 - cpu0) / (c1 - c0), 4),
                                  "wall_seconds": round(time.time() - t0, 1)}
        # Churn: each cycle, flip protected-mode on one server (its resources change posture).
        target = c1 + a.cycles
        i = 0
        while (d.metric("lockwatch_cycles_total") or 0) < target:
            s = servers[i % a.servers]
            s.cli("CONFIG", "SET", "protected-mode", "no" if (i // a.servers) % 2 == 0 else "yes")
            i += 1
            time.sleep(1.0)
        c2, cpu2 = d.metric("lockwatch_cycles_total"), d.cpu_seconds()
        out["after_churn"] = {"cycles": c2, "flips": i, "state_bytes": common.state_bytes(wd), "rss_kb": d.status("VmRSS"),
                              "peak_rss_kb": d.status("VmHWM"), "cpu_seconds_per_cycle": round((cpu2 - cpu1) / (c2 - c1), 4)}
    finally:
        d.stop()
        for s in servers:
            s.stop()
        common.cleanup(wd)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
