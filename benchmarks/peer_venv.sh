# Sourced by benchmarks/run.sh and benchmarks/autobahn/run.sh.
#
# peer_venv VENV REQUIREMENTS: the peer servers in a venv of their own, so
# they never touch .venv. A stamp holding a copy of the requirements file
# skips pip when nothing changed.
peer_venv() {
    local venv="$1" requirements="$2"
    local stamp="$venv/.requirements-installed"
    if [ ! -x "$venv/bin/python" ]; then
        echo "== creating $venv"
        python3 -m venv "$venv" || return 1
    fi
    if ! cmp -s "$requirements" "$stamp"; then
        echo "== installing $(basename "$requirements") into $venv"
        # `|| return` because set -e is off inside a function called with ||.
        "$venv/bin/python" -m pip install --quiet --upgrade pip || return 1
        "$venv/bin/python" -m pip install --quiet -r "$requirements" || return 1
        cp "$requirements" "$stamp"
    fi
}
