#!/usr/bin/env python3
"""Detection latency (issue 6, part 2): change → email accepted by a real SMTP server.

The daemon runs on its DEFAULT schedule (every 30 s) against two Redis servers of its own, a
moto server of its own (an AWS source: two security groups, each in front of a running
instance) and a real SMTP server (aiosmtpd, tests/support/smtp_sink.py). CHANGES times, at a
random moment, protection is removed — in turn: a Redis server's password, a security group
opened to 0.0.0.0/0 on 9200 — and we time until the CRITICAL email is accepted, then restore it
(each resource's turn comes back after three others, so each RESOLVED has a cycle to go out). The split:
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
    moto_port = common.free_port()
    moto = subprocess.Popen([os.path.join(os.path.dirname(python), "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{moto_port}"
    fixture = os.path.join(common.ROOT, "tests/support/aws_fixture.py")

    def aws(*args):
        for _ in range(100):
            r = subprocess.run([python, fixture, endpoint, "123456789012", "us-east-1", *args], capture_output=True, text=True)
            if r.returncode == 0:
                return json.loads(r.stdout or "{}")
            time.sleep(0.2)
        raise RuntimeError(f"aws_fixture {args}: {r.stderr[-2000:]}")

    groups = [aws("sg", f"latency-{i}")["id"] for i in range(2)]
    for g in groups:
        aws("instance", g)
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_EC2_METADATA_DISABLED="true")
    port = common.free_port()
    srcs = "".join(f'[[sources]]\nkind = "redis"\nname = "r{i}"\nurl = "redis://:lat-pw@127.0.0.1:{s.port}"\n' for i, s in enumerate(servers))
    srcs += f'[[sources]]\nkind = "aws"\nname = "aws"\nregions = ["us-east-1"]\nendpoint_url = "{endpoint}"\nservices = ["ec2"]\n'

    cfg = (f'[daemon]\nstate_dir = "{wd}/state"\nmetrics_listen = "127.0.0.1:{port}"\n'
           f'[alerts.email]\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp_port}\ntls = "none"\nfrom = "lw@example.com"\nto = ["oncall@example.com"]\n{srcs}')
    d = common.Daemon(wd, cfg, port)
    rows = []
    try:
        while (d.metric("lockwatch_cycles_total") or 0) < 1:
            time.sleep(0.2)
        for i in range(a.changes):
            target = i % 4  # redis 0, sg 0, redis 1, sg 1
            if target % 2 == 0:
                s = servers[target // 2]
                rid = f"r{target // 2}/redis/127.0.0.1:{s.port}"
                remove = lambda: s.cli("CONFIG", "SET", "requirepass", "")  # noqa: E731
                restore = lambda: s.cli("CONFIG", "SET", "requirepass", "lat-pw", password=False)  # noqa: E731
            else:
                g = groups[target // 2]
                rid = f"aws/security-group/123456789012/us-east-1/{g}"
                remove = lambda: aws("open", g, "9200")  # noqa: E731
                restore = lambda: aws("close", g, "9200")  # noqa: E731
            time.sleep(rng.uniform(0, PERIOD))
            before = set(glob.glob(os.path.join(mail_dir, "*.json")))
            t0 = time.time()
            remove()
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
            rows.append({"kind": "redis" if target % 2 == 0 else "aws", "total": t_mail - t0, "wait": max(0.0, fire - t0),
                         "scan": max(0.0, t_q - fire), "send": max(0.0, t_mail - t_q)})
            restore()
            print(f"change {i + 1} ({rows[-1]['kind']}): {rows[-1]['total']:.2f} s", file=sys.stderr)
    finally:
        d.stop()
        sink.terminate()
        moto.kill()
        for s in servers:
            s.stop()
        common.cleanup(wd)
    summary = {k: {"p50": round(pct([r[k] for r in rows], 50), 3), "p95": round(pct([r[k] for r in rows], 95), 3),
                   "max": round(max(r[k] for r in rows), 3)} for k in ("total", "wait", "scan", "send")}
    by_kind = {k: {"p50": round(pct([r["total"] for r in rows if r["kind"] == k], 50), 3),
                   "max": round(max(r["total"] for r in rows if r["kind"] == k), 3)} for k in ("redis", "aws")}
    print(json.dumps({"changes": len(rows), "schedule_seconds": PERIOD, "seed": a.seed, "latency_seconds": summary,
                      "total_by_source": by_kind, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
