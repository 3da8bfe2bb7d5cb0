#!/usr/bin/env bash
# lockwatch's whole test suite: unit tables, end-to-end tests against real Redis, PostgreSQL and
# SMTP servers that the tests start themselves, promtool and systemd-analyze checks.
# Installs what it needs when missing (Debian packages, a Python venv with aiosmtpd); running it
# again installs nothing. Never touches the machine's own database services.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lockwatch-target}"
export LOCKWATCH_VENV="${LOCKWATCH_VENV:-$HOME/.cache/lockwatch-venv}"
export LOCKWATCH_TEST_PYTHON="$LOCKWATCH_VENV/bin/python"

if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh: run as root: the tests start their own PostgreSQL as user postgres (runuser) and install packages" >&2
  exit 2
fi

# --- Debian packages -------------------------------------------------------------------------
pkgs=()
command -v redis-server >/dev/null || pkgs+=(redis-server)
command -v redis-cli >/dev/null || pkgs+=(redis-tools)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || pkgs+=(postgresql)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || pkgs+=(mariadb-server)
command -v mariadb >/dev/null || pkgs+=(mariadb-client)
command -v promtool >/dev/null || pkgs+=(prometheus)
[ -x /usr/bin/prometheus-alertmanager ] || pkgs+=(prometheus-alertmanager)
[ -x /usr/bin/chromium ] || pkgs+=(chromium)
command -v systemd-analyze >/dev/null || pkgs+=(systemd)
command -v runuser >/dev/null || pkgs+=(util-linux)
if [ ${#pkgs[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
id postgres >/dev/null 2>&1 || { echo "no 'postgres' user after installing postgresql" >&2; exit 2; }
id mysql >/dev/null 2>&1 || { echo "no 'mysql' user after installing mariadb-server" >&2; exit 2; }

# --- Python venv: a real SMTP server (aiosmtpd) and a real AWS API (moto_server) -------------
# and the official clients that prove the stand-ins honest (pymongo, elasticsearch, opensearch-py)
if ! "$LOCKWATCH_TEST_PYTHON" -c 'import aiosmtpd, moto.server, boto3, pymongo, elasticsearch, opensearchpy' 2>/dev/null || [ ! -x "$LOCKWATCH_VENV/bin/moto_server" ]; then
  echo "== preparing Python venv $LOCKWATCH_VENV (aiosmtpd, moto[server], pymongo, elasticsearch, opensearch-py)"
  [ -x "$LOCKWATCH_TEST_PYTHON" ] || python3 -m venv "$LOCKWATCH_VENV" 2>/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$LOCKWATCH_VENV"
  }
  "$LOCKWATCH_VENV/bin/pip" install -q --disable-pip-version-check 'aiosmtpd==1.4.6' 'moto[server]==5.2.5' \
    'pymongo==4.10.1' 'elasticsearch==8.11.1' 'opensearch-py==2.4.2'
fi

# --- Stand-ins, checked against official clients ----------------------------------------------
# No Elasticsearch/OpenSearch/MongoDB server can run here: the tests use protocol stand-ins.
# These checks drive each stand-in with the vendor's own client (and the fault proxy with
# boto3), so a stand-in cannot drift into agreeing with lockwatch instead of the real server.
for check in fake_es_check fake_mongo_check fault_proxy_check; do
  echo "== stand-in check: tests/support/$check.py"
  "$LOCKWATCH_TEST_PYTHON" "tests/support/$check.py"
done

# --- Rust ------------------------------------------------------------------------------------
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo test (target dir $CARGO_TARGET_DIR)"
cargo test --all-targets --locked
