"""The ``cello`` command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx

from cello import __version__
from tests.live import ROOT


def cello(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cello", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_version():
    result = cello("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"cello {__version__}"


def test_routes_prints_the_route_table():
    result = cello("routes", "tests.apps.core:app")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert re.match(r"METHOD\s+PATH\s+HANDLER", lines[0])
    assert any(re.match(r"GET\s+/users/\{id\}\s+user$", line) for line in lines)
    assert any(re.match(r"DELETE\s+/api/v1/users/\{id\}\s+v1_delete$", line) for line in lines)


def test_routes_lists_mounted_apps():
    result = cello("routes", "tests.apps.mounted:app")
    assert result.returncode == 0
    assert any(
        re.match(r"\*\s+/legacy/\{\*path\}\s+mounted ASGI app FastAPI$", line)
        for line in result.stdout.splitlines()
    ), result.stdout


def test_run_serves_the_app():
    with subprocess.Popen(
        [sys.executable, "-m", "cello", "run", "tests.apps.core:app", "--port", "0", "--no-logs"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            url = line.split("running on ", 1)[1].split()[0]
            assert httpx.get(url + "/").json() == {"message": "Hello, World!"}
        finally:
            process.terminate()
            process.wait(30)
    assert process.returncode == 0


def test_console_script_is_installed():
    # Installed beside the interpreter running the tests (.venv, or the abi3 venv).
    script = Path(sys.executable).parent / "cello"
    assert script.exists(), "the cello console script is not installed"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == f"cello {__version__}"


def test_bad_targets_exit_2_with_a_message():
    for target, message in [
        ("no_such_module:app", "cannot import 'no_such_module'"),
        ("tests.apps.core:missing", "has no attribute 'missing'"),
        ("tests.apps.core:STATIC", "not a cello.App"),
    ]:
        result = cello("run", target)
        assert result.returncode == 2, target
        assert message in result.stderr
