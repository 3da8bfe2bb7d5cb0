#!/usr/bin/env python3
"""Scan identity: does a change leave `lockwatch scan` output byte-identical on the bench fleet?

usage: python3 bench/scan_identity.py OLD_BIN NEW_BIN [--fleet small|large]

Seeds a moto server with the fleet of bench/fleet_seed.py, serves it through bench/aws_replay.py
(replay mode, paginated as AWS does), runs `scan --format json` and `scan --format text` with both
binaries, and compares the outputs byte for byte (exit 0 when identical, 1 when not, with the
first differing line). For refactors that must not change a verdict.
"""
import argparse
import hashlib
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, free_port, workdir, cleanup  # noqa: E402
from fleet_scan import FLEETS, TEST_VENV, Server, Tools  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--fleet", choices=list(FLEETS), default="large")
    args = ap.parse_args()
    sgs, domains, rds = FLEETS[args.fleet]
    work = workdir("lockwatch-scan-identity-")
    moto_port, replay_port = free_port(), free_port()
    servers = [Server("moto", [os.path.join(TEST_VENV, "bin", "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
                      moto_port, os.path.join(work, "moto.log"))]
    try:
        subprocess.run([os.path.join(TEST_VENV, "bin", "python"), os.path.join(ROOT, "bench", "fleet_seed.py"),
                        f"http://127.0.0.1:{moto_port}", "--sgs", str(sgs), "--domains", str(domains), "--rds", str(rds)],
                       check=True, capture_output=True)
        servers.append(Server("replay", [sys.executable, os.path.join(ROOT, "bench", "aws_replay.py"), "--upstream",
                                         f"http://127.0.0.1:{moto_port}", "--port", str(replay_port), "--mode", "replay"],
                              replay_port, os.path.join(work, "replay.log")))
        endpoint = f"http://127.0.0.1:{replay_port}"
        tools = Tools(work, [])
        same = True
        for fmt in ("json", "text"):
            outs = {}
            for name, binary in (("old", args.old), ("new", args.new)):
                tools.bin["lockwatch"] = binary
                cmd = tools.command("lockwatch", endpoint, os.path.join(work, name))
                cmd[cmd.index("json")] = fmt
                outs[name] = subprocess.run(cmd, env=tools.env(endpoint), capture_output=True).stdout
            digests = {k: hashlib.sha256(v).hexdigest()[:16] for k, v in outs.items()}
            print(f"scan --format {fmt}: {len(outs['old'])} bytes, old {digests['old']}, new {digests['new']}")
            if outs["old"] != outs["new"]:
                same = False
                for i, (a, b) in enumerate(zip(outs["old"].splitlines(), outs["new"].splitlines())):
                    if a != b:
                        print(f"  first difference, line {i + 1}:\n  old: {a[:300]!r}\n  new: {b[:300]!r}")
                        break
        print("identical" if same else "DIFFERENT")
        return 0 if same else 1
    finally:
        for s in reversed(servers):
            s.stop()
        cleanup(work)


if __name__ == "__main__":
    sys.exit(main())
