"""Shared helpers for lockwatch's benchmarks: own Redis instances, the daemon, metrics."""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary():
    """LOCKWATCH_BIN, or the release build (built if missing)."""
    if os.environ.get("LOCKWATCH_BIN"):
        return os.environ["LOCKWATCH_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/lockwatch-target"))
    path = os.path.join(target, "release", "lockwatch")
    if not os.path.exists(path):
        subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True, env={**os.environ, "CARGO_TARGET_DIR": target})
    return path


class Redis:
    """redis-server with a password, on its own loopback port and directory."""

    def __init__(self, workdir, password):
        self.port, self.password = free_port(), password
        d = os.path.join(workdir, f"redis-{self.port}")
        os.makedirs(d)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", d, "--requirepass", password], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if "PONG" in self.cli("PING"):
                return
            time.sleep(0.05)
        raise RuntimeError("redis did not start")

    def cli(self, *args, password=True):
        cmd = ["redis-cli", "-p", str(self.port), "--no-auth-warning"] + (["-a", self.password] if password else []) + list(args)
        return subprocess.run(cmd, capture_output=True, text=True).stdout

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Daemon:
    """`lockwatch run` with a config file; log to a file."""

    def __init__(self, workdir, config_text, metrics_port):
        self.workdir, self.metrics_port = workdir, metrics_port
        self.config = os.path.join(workdir, "lockwatch.toml")
        with open(self.config, "w") as f:
            f.write(config_text)
        self.log_path = os.path.join(workdir, "lockwatch.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary(), "--config", self.config, "run"], stdout=self.log, stderr=self.log,
                                     env={**os.environ, "LOCKWATCH_LOG": "info"})
        for _ in range(200):
            if self.metrics() is not None:
                return
            time.sleep(0.05)
        raise RuntimeError("lockwatch did not start: " + open(self.log_path).read())

    def metrics(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
                return r.read().decode()
        except OSError:
            return None

    def metric(self, series):
        text = self.metrics() or ""
        m = re.search(r"^" + re.escape(series) + r" (\S+)$", text, re.M)
        return float(m.group(1)) if m else None

    def status(self, field):
        """A /proc/PID/status field in kB (VmRSS, VmHWM)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return None

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def wait_cycles(d, n, timeout):
    """Wait until the daemon has completed n cycles; returns the count."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        c = d.metric("lockwatch_cycles_total") or 0
        if c >= n:
            return c
        time.sleep(0.5)
    raise RuntimeError(f"only {d.metric('lockwatch_cycles_total')} cycles after {timeout}s; see {d.log_path}")


def state_bytes(workdir):
    state = os.path.join(workdir, "state")
    return sum(os.path.getsize(os.path.join(state, f)) for f in os.listdir(state) if f.startswith("lockwatch.db"))


def workdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)


def cleanup(path):
    shutil.rmtree(path, ignore_errors=True)
