#!/usr/bin/env python3
"""Check of fault_proxy.py: boto3 against a moto_server this script starts, through the proxy, must
see every fault the proxy claims to inject (and nothing else).

Run:   /root/.cache/lockwatch-venv/bin/python tests/support/fault_proxy_check.py
Exit status 0 = every scenario passed. moto_server and the proxy are killed at the end.
"""
import os
import queue
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

import boto3
import botocore
import botocore.parsers
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

HERE = os.path.dirname(os.path.abspath(__file__))
PROXY = os.path.join(HERE, "fault_proxy.py")
MOTO_SERVER = os.path.join(os.path.dirname(sys.executable), "moto_server")
TMP = tempfile.mkdtemp(prefix="fault_proxy_check_")
CONTROL = os.path.join(TMP, "mode.txt")
PROCS = []


class Failed(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_moto():
    port = free_port()
    log = open(os.path.join(TMP, "moto.log"), "w")
    p = subprocess.Popen([MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    PROCS.append(p)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return port
        except Exception:
            if p.poll() is not None:
                raise RuntimeError("moto_server exited")
            time.sleep(0.2)
    raise RuntimeError("moto_server did not answer")


class Proxy:
    def __init__(self, upstream):
        set_mode("pass")
        self.proc = subprocess.Popen([sys.executable, PROXY, "0", str(upstream), CONTROL],
                                     stdout=subprocess.PIPE, text=True)
        PROCS.append(self.proc)
        r, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline() if r else ""
        check(line.startswith("ready port="), f"proxy ready line: {line!r}")
        self.port = int(line.split("=", 1)[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.queue.put(line.rstrip("\n"))

    def lines(self, timeout=0.5):
        """The log lines written since the last call (waiting up to `timeout` for stragglers)."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                out.append(self.queue.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                return out


def set_mode(m):
    with open(CONTROL + ".tmp", "w") as f:
        f.write(m)
    os.replace(CONTROL + ".tmp", CONTROL)


def client(service, endpoint, region="us-east-1", attempts=1, read_timeout=10):
    cfg = Config(retries={"mode": "standard", "total_max_attempts": attempts},
                 read_timeout=read_timeout, connect_timeout=5)
    return boto3.client(service, region_name=region, endpoint_url=endpoint, config=cfg)


def client_error(fn, status, code):
    try:
        fn()
    except ClientError as e:
        got = (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"])
        check(got == (status, code), f"expected {status} {code}, got {got}: {e}")
        return e
    raise Failed(f"expected ClientError {status} {code}, got a success")


# ------------------------------------------------------------------ scenarios

def existing_modes(px):
    ec2, rds = client("ec2", px.endpoint), client("rds", px.endpoint)
    check(ec2.describe_security_groups()["SecurityGroups"], "pass: EC2 answers")
    set_mode("error500")
    client_error(ec2.describe_security_groups, 500, "InternalError")
    set_mode("throttle")
    client_error(ec2.describe_security_groups, 503, "RequestLimitExceeded")
    client_error(rds.describe_db_instances, 400, "Throttling")
    set_mode("fail-region:us-west-2")
    client_error(client("ec2", px.endpoint, "us-west-2").describe_security_groups, 500, "InternalError")
    check(ec2.describe_security_groups()["SecurityGroups"], "fail-region: other regions pass")
    set_mode("fail-action:DescribeNetworkInterfaces")
    client_error(ec2.describe_network_interfaces, 500, "InternalError")
    check(ec2.describe_security_groups()["SecurityGroups"], "fail-action: other actions pass")
    lines = px.lines()
    check(len(lines) == 8, f"one log line per request (8 requests): {lines}")
    check(lines[-1].startswith("fail-action:DescribeNetworkInterfaces ec2 us-east-1 DescribeSecurityGroups -> 200"),
          lines[-1])


def fail_page(px, moto_port):
    direct = client("rds", f"http://127.0.0.1:{moto_port}")
    for i in range(45):
        direct.create_db_instance(DBInstanceIdentifier=f"db{i:02d}", DBInstanceClass="db.t3.micro", Engine="postgres",
                                  MasterUsername="admin1", MasterUserPassword="password1", AllocatedStorage=20)
    rds = client("rds", px.endpoint, attempts=3)

    def pages():
        got = []
        try:
            for page in rds.get_paginator("describe_db_instances").paginate(PaginationConfig={"PageSize": 20}):
                got.append(len(page["DBInstances"]))
        except ClientError as e:
            return got, e
        return got, None

    set_mode("pass")
    check(pages() == ([20, 20, 5], None), "three pages through the proxy")
    px.lines()
    set_mode("fail-page:DescribeDBInstances:1")
    got, err = pages()
    check(got == [20] and err is not None and err.response["Error"]["Code"] == "InternalError"
          and err.response["ResponseMetadata"]["HTTPStatusCode"] == 500, f"page 2 fails: {got} {err}")
    lines = px.lines()
    check([l.rsplit("-> ", 1)[1][:3] for l in lines] == ["200", "500", "500", "500"],
          f"the failing page fails on every retry (3 attempts): {lines}")
    check(rds.describe_db_instances(MaxRecords=20)["DBInstances"], "a first page (no token) still passes")
    got, err = pages()
    check(got == [20] and err is not None, "asked again, the same page fails again")
    set_mode("fail-page:DescribeDBInstances:2")
    got, err = pages()
    check(got == [20, 20] and err is not None, f"N=2: the third page fails: {got}")
    set_mode("fail-page:DescribeSecurityGroups:1")
    check(pages() == ([20, 20, 5], None), "another action's pages pass")
    px.lines()


def hang(px):
    set_mode("hang:DescribeSecurityGroups")
    ec2 = client("ec2", px.endpoint, read_timeout=2)
    start = time.monotonic()
    try:
        ec2.describe_security_groups()
        raise Failed("hang: got an answer")
    except ReadTimeoutError:
        pass
    waited = time.monotonic() - start
    check(1.8 <= waited < 6, f"the client gave up on its own timeout: {waited:.1f} s")
    check(client("ec2", px.endpoint).describe_regions()["Regions"], "hang: other actions answer meanwhile")
    lines = px.lines(timeout=3)
    check(any("DescribeSecurityGroups -> hang: client gave up after" in l for l in lines), f"hang logged: {lines}")


def truncate(px):
    set_mode("truncate:DescribeSecurityGroups")
    ec2 = client("ec2", px.endpoint)
    try:
        ec2.describe_security_groups()
        raise Failed("truncate: boto3 accepted half a body")
    except (botocore.parsers.ResponseParserError, botocore.exceptions.IncompleteReadError,
            botocore.exceptions.ResponseStreamingError, botocore.exceptions.ConnectionClosedError) as e:
        kind = type(e).__name__
    check(client("ec2", px.endpoint).describe_regions()["Regions"], "truncate: other actions answer")
    lines = px.lines()
    check(any("DescribeSecurityGroups -> 200 truncated:" in l for l in lines), f"truncate logged: {lines}")
    return kind


def slow(px):
    set_mode("slow:DescribeSecurityGroups:1500")
    ec2 = client("ec2", px.endpoint)
    start = time.monotonic()
    check(ec2.describe_security_groups()["SecurityGroups"], "slow: the answer arrives")
    took = time.monotonic() - start
    check(took >= 1.5, f"slow: delayed by at least 1500 ms ({took:.2f} s)")
    start = time.monotonic()
    check(client("ec2", px.endpoint).describe_regions()["Regions"] and time.monotonic() - start < 1.0,
          "slow: other actions are not delayed")
    try:
        client("ec2", px.endpoint, read_timeout=0.5).describe_security_groups()
        raise Failed("slow: a 0.5 s read timeout should fire")
    except ReadTimeoutError:
        pass
    lines = px.lines(timeout=2)
    check(any("DescribeSecurityGroups -> 200 after 1500 ms" in l for l in lines), f"slow logged: {lines}")


def main():
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_EC2_METADATA_DISABLED="true",
                      AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    failed, total = 0, 0
    try:
        moto_port = start_moto()
        px = Proxy(moto_port)
        for name, fn in [("existing modes (error500, throttle, fail-region, fail-action)", lambda: existing_modes(px)),
                         ("fail-page:ACTION:N", lambda: fail_page(px, moto_port)),
                         ("hang:ACTION", lambda: hang(px)),
                         ("truncate:ACTION", lambda: truncate(px)),
                         ("slow:ACTION:MS", lambda: slow(px))]:
            total += 1
            try:
                out = fn()
                print(f"PASS {name}" + (f" (boto3 raised {out})" if out else ""))
            except Exception as e:
                failed += 1
                print(f"FAIL {name}: {e}")
                traceback.print_exc(limit=3)
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(TMP, ignore_errors=True)
    print(f"{total - failed}/{total} scenarios passed (boto3 {boto3.__version__}, botocore {botocore.__version__})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
