#!/usr/bin/env python3
"""Detection latency (issue 6, part 2): change → email accepted by a real SMTP server.

The daemon runs on its DEFAULT schedule (every 30 s) against two Redis servers of its own and a
real SMTP server (aiosmtpd, tests/support/smtp_sink.py). CHANGES times, at a random moment, the
password of one server is removed; we time until the CRITICAL email is accepted, then restore it
(the two servers alternate so that each RESOLVED has a full cycle to go out). The split:
waiting for the cycle (change → the schedule's next fire time), scanning (fire time → alert
queued, from the daemon's log), sending (queued → accepted by the SMTP server).

usage: bench/detection_latency.py [--changes 20] [--seed 1]
"""
import argparse
import datetime
import glob
import json
import math
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

PERIOD = 30.0  # the default schedule "*/30 * * * * *"


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, math.ceil(p / 100 * len(v)) - 1))]


def queued_at(log_path, resource, after):
    """Unix time of the first 'alert queued' line for `resource` after `after`."""
    for line in open(log_path):
        if "alert queued" in line and resource in line and "CRITICAL" in line:
            t = datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
            if t >= after:
                return t
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    wd = common.workdir("lockwatch-bench-latency-")
    servers = [common.Redis(wd, "lat-pw"), common.Redis(wd, "lat-pw")]
    smtp_port = common.free_port()
    mail_dir = os.path.join(wd, "mail")
    python = os.environ.get("LOCKWATCH_TEST_PYTHON", os.path.expanduser("~/.cache/lockwatch-venv/bin/python"))
    sink = subprocess.Popen([python, os.path.join(common.ROOT, "tests/support/smtp_sink.py"), str(smtp_port), mail_dir],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert "ready" in sink.stdout.readline()
    port = common.free_port()
    srcs = "".join(f'[[sources]]\nkind = "redis"\nname = "r{i}"\nurl = "redis://:lat-pw@127.0.0.1:{s.port}"\n' for i, s in enumerate(servers))
    cfg = (f'[daemon]\nstate_dir = "{wd}/state"\nmetrics_listen = "127.0.0.1:{port}"\n'
           f'[alerts.email]\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp_port}\ntls = "none"\nfrom = "lw@example.com"\nto = ["oncall@example.com"]\n{srcs}')
    d = common.Daemon(wd, cfg, port)
    rows = []
    try:
        while (d.metric("lockwatch_cycles_total") or 0) < 1:
            time.sleep(0.2)
        for i in range(a.changes):
            s = servers[i % 2]
            rid = f"r{i % 2}/redis/127.0.0.1:{s.port}"
            time.sleep(rng.uniform(0, PERIOD))
            before = set(glob.glob(os.path.join(mail_dir, "*.json")))
            t0 = time.time()
            s.cli("CONFIG", "SET", "requirepass", "")
            mail = None
            while mail is None:
                for f in sorted(set(glob.glob(os.path.join(mail_dir, "*.json"))) - before):
                    m = json.load(open(f))
                    if m["subject"].startswith(f"[lockwatch] CRITICAL {rid}"):
                        mail = f
                time.sleep(0.02)
            t_mail = os.stat(mail).st_mtime
            fire = math.ceil(t0 / PERIOD) * PERIOD
            t_q = queued_at(d.log_path, rid, t0) or t_mail
            rows.append({"total": t_mail - t0, "wait": max(0.0, fire - t0), "scan": max(0.0, t_q - fire), "send": max(0.0, t_mail - t_q)})
            s.cli("CONFIG", "SET", "requirepass", "lat-pw", password=False)
            print(f"change {i + 1}: {rows[-1]['total']:.2f} s", file=sys.stderr)
    finally:
        d.stop()
        sink.terminate()
        for s in servers:
            s.stop()
        common.cleanup(wd)
    summary = {k: {"p50": round(pct([r[k] for r in rows], 50), 3), "p95": round(pct([r[k] for r in rows], 95), 3),
                   "max": round(max(r[k] for r in rows), 3)} for k in ("total", "wait", "scan", "send")}
    print(json.dumps({"changes": len(rows), "schedule_seconds": PERIOD, "seed": a.seed, "latency_seconds": summary}, indent=2))


if __name__ == "__main__":
    main()
