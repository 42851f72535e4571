"""A Cello app served natively in a subprocess on an ephemeral port."""

from __future__ import annotations

import importlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
URL_LINE = re.compile(r"running on (https?://\S+)")

_BOOT = """
import importlib, sys
module, _, attr = sys.argv[1].partition(":")
module = importlib.import_module(module)
app = getattr(module, attr or "app")
sys.argv = sys.argv[1:]
app.run(host="127.0.0.1", port=0, **getattr(module, "RUN_OPTIONS", {}))
"""


class LiveServer:
    """Starts ``module:attr`` with ``app.run(port=0, **module.RUN_OPTIONS)``
    and learns its URL from the startup line.

    ``args`` are command-line flags given to the app (``--debug``...).
    Standard error is kept in a file so tests can read what was logged.
    """

    def __init__(self, target: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.target = target
        self.args = args
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.url = ""
        self.stderr_file = tempfile.NamedTemporaryFile(prefix="cello-stderr-", delete=False)
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 30) -> LiveServer:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _BOOT, self.target, *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=self.stderr_file,
            text=True,
        )
        found = threading.Event()

        def read() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)
                match = URL_LINE.search(line)
                if match and not found.is_set():
                    self.url = match.group(1)
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(timeout):
            self.stop()
            raise RuntimeError(f"server {self.target} did not start:\n{self.stderr()}")
        return self

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stderr(self) -> str:
        return Path(self.stderr_file.name).read_text(errors="replace")

    def stop(self, timeout: float = 15) -> int | None:
        """SIGINT, then SIGKILL if it does not exit; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def close(self) -> None:
        self.stop()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.stderr_file.close()
        os.unlink(self.stderr_file.name)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def door_client(door: str, target: str, *args: str) -> Iterator[httpx.Client]:
    """A client of the app ``module:attr`` through one door: ``"native"``
    (a live server given ``args``) or ``"asgi"`` (in process, through
    ``cello.testing``). Made for parametrised fixtures: ``yield from``."""
    if door == "native":
        with LiveServer(target, *args) as live, httpx.Client(base_url=live.url, timeout=10) as c:
            yield c
        return
    from cello.testing import TestClient

    module, _, attr = target.partition(":")
    with TestClient(getattr(importlib.import_module(module), attr or "app")) as c:
        yield c
