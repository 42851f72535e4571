#!/usr/bin/env bash
# `make autobahn`: Autobahn|Testsuite's fuzzing client against the WebSocket
# echo endpoints (see docs/websocket-conformance.md).
#
#   bash benchmarks/autobahn/run.sh
#   AUTOBAHN_TARGETS=uvicorn-starlette AUTOBAHN_CASES='1.*,2.*' bash benchmarks/autobahn/run.sh
#
# 1. wstest needs Python 2.7: a virtualenv in target/autobahn-venv/py27 from
#    pyenv's 2.7 (or PYTHON27=...), made with virtualenv 16.7 (the last to run
#    on 2.7; 2.7 has no venv module), holding autobahntestsuite pinned by
#    constraints-py27.txt.
# 2. The uvicorn anchor comes from the benchmark's peer venv, .bench/venv.
# 3. autobahn.py runs the targets and prints the summary; it exits non-zero
#    if any case FAILED.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$repo/benchmarks/autobahn"
cd "$repo"

python27="${PYTHON27:-$(ls -d "$HOME"/.pyenv/versions/2.7.*/bin/python2.7 2>/dev/null | tail -n 1)}"
if [ -z "$python27" ] || [ ! -x "$python27" ]; then
    python27="$(command -v python2.7 || true)"
fi
if [ -z "$python27" ]; then
    echo "make autobahn: no Python 2.7 found (pyenv install 2.7.18, or PYTHON27=/path/to/python2.7)" >&2
    exit 2
fi

base="$repo/target/autobahn-venv"
venv="$base/py27"
stamp="$venv/.constraints-installed"
if ! cmp -s "$here/constraints-py27.txt" "$stamp"; then
    echo "== creating $venv from $python27"
    rm -rf "$venv" "$base/.virtualenv"
    "$python27" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
        --target "$base/.virtualenv" "virtualenv==16.7.12" 2>&1 | grep -v DEPRECATION || true
    PYTHONPATH="$base/.virtualenv" "$python27" -m virtualenv --quiet --no-download "$venv"
    echo "== installing autobahntestsuite (constraints-py27.txt)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        -c "$here/constraints-py27.txt" autobahntestsuite 2>&1 | grep -v DEPRECATION || true
    "$venv/bin/wstest" --autobahnversion >/dev/null
    cp "$here/constraints-py27.txt" "$stamp"
fi

source "$repo/benchmarks/peer_venv.sh"
peer_venv "$repo/.bench/venv" "$repo/benchmarks/requirements.txt"

if ! "$repo/.venv/bin/python" -c "import cello" >/dev/null 2>&1; then
    echo "!! cello is not importable from .venv (run 'make build'); its targets will fail" >&2
fi

export AUTOBAHN_WSTEST="$venv/bin/wstest"
exec python3 "$here/autobahn.py"
