#!/usr/bin/env bash
# Run lockwatch from this checkout: builds (debug, the same build the test suite makes, in the
# same target directory, so neither command rebuilds what the other built) and runs with the
# given arguments, by default the daemon on the shipped config.
#   ./scripts/run.sh                                   # lockwatch --config config/lockwatch.toml run
#   ./scripts/run.sh --config config/lockwatch.toml scan
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lockwatch-target}"
if [ $# -eq 0 ]; then
  set -- --config config/lockwatch.toml run
fi
exec cargo run --locked --quiet -- "$@"
