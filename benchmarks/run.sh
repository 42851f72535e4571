#!/usr/bin/env bash
# Side-by-side benchmark: installs what it needs, then runs bench.py.
#
#   bash benchmarks/run.sh                      # everything, 2 x 3 s per row
#   BENCH_DURATION=2 BENCH_SERVERS=cello,hyper-ceiling bash benchmarks/run.sh
#
# Expects Cello to be importable from the repo's .venv (`make build`); if it
# is not, the cello rows are reported as failed and the peers still run.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$repo/benchmarks"
cd "$repo"

# Root needs no sudo (and minimal containers have none); others do.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# 1. wrk, the load generator, and valgrind, for the instruction count, from
#    Debian's packages.
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [ "${BENCH_INSTRUCTIONS:-1}" != 0 ] && ! command -v valgrind >/dev/null 2>&1; then
    missing+=(valgrind)
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    # On a fresh machine the package lists are empty until the first update.
    if ! as_root apt-get install -y "${missing[@]}" 2>/dev/null; then
        as_root apt-get update
        as_root apt-get install -y "${missing[@]}"
    fi
fi

# 2. The peer servers, in their own venvs so they never touch .venv (see
#    peer_venv.sh). Robyn gets a venv of its own: it pins an older uvloop
#    than the others.
source "$bench/peer_venv.sh"
peer_venv "$repo/.bench/venv" "$bench/requirements.txt"
# A failed Robyn install only costs the Robyn rows (reported as failed).
peer_venv "$repo/.bench/robyn" "$bench/requirements-robyn.txt" ||
    echo "!! could not install robyn; its rows will fail" >&2

# 3. The ceiling: its own cargo project, built into the repo's ignored target/.
echo "== building the hyper ceiling"
export CARGO_TARGET_DIR="$repo/target/bench-ceiling"
cargo build --release --quiet --manifest-path "$bench/ceiling/Cargo.toml"
export CEILING_BIN="$CARGO_TARGET_DIR/release/ceiling"

# 4. wsload, the WebSocket tables' load generator: its own cargo project too.
echo "== building wsload"
export CARGO_TARGET_DIR="$repo/target/bench-wsload"
cargo build --release --quiet --manifest-path "$bench/wsload/Cargo.toml"
export WSLOAD_BIN="$CARGO_TARGET_DIR/release/wsload"
unset CARGO_TARGET_DIR

# The idle WebSocket table holds 10,000 connections open at once: as many
# open files as allowed, for the servers and wsload (bench.py asks again).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if ! "$repo/.venv/bin/python" -c "import cello" >/dev/null 2>&1; then
    echo "!! cello is not importable from .venv (run 'make build'); its rows will fail" >&2
fi

# 5. Measure. bench.py is stdlib-only, so any python3 will do.
status=0
python3 "$bench/bench.py" || status=$?

# 6. The SSE fan-out table (1,000 clients on one event stream), unless
#    BENCH_SSE=0; its own script, as it is not a wrk load.
if [ "${BENCH_SSE:-1}" != 0 ]; then
    python3 "$bench/sse_fanout.py" || status=$?
fi
exit "$status"
