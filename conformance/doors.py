"""The three ways a request reaches a Cello app, behind one interface.

- ``native``: the app's own server (``app.run``), over a socket;
- ``uvicorn``: the app as an ASGI application under uvicorn, over a socket;
- ``asgi``: the app called in-process through ``httpx.ASGITransport``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from cello.testing import TestClient

ROOT = Path(__file__).resolve().parent.parent

# Headers a server adds on its own; every other header must be identical.
SERVER_HEADERS = {"date", "server"}
# A transport-level header the in-process transport cannot produce.
HOP_BY_HOP = {"transfer-encoding"}


@dataclass(frozen=True)
class Observed:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def json(self) -> object:
        import json

        return json.loads(self.body)


def _observe(response: httpx.Response, ignore: set[str]) -> Observed:
    headers = tuple(
        sorted((k.lower(), v) for k, v in response.headers.multi_items() if k.lower() not in ignore)
    )
    return Observed(response.status_code, headers, response.content)


def pipelined(port: int, *requests: bytes, timeout: float = 10) -> tuple[bytes, bool]:
    """Sends raw HTTP/1.1 requests back to back on one connection; returns
    what came back, and whether the server closed the connection (False if it
    was still open after ``timeout`` seconds of silence)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"".join(requests))
        received = []
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                return b"".join(received), False
            except ConnectionResetError:
                return b"".join(received), True
            if not data:
                return b"".join(received), True
            received.append(data)


_URL = re.compile(r"running on (https?://[^\s]+)", re.IGNORECASE)


def _startup_url(process: subprocess.Popen[str], what: str) -> tuple[str, threading.Thread]:
    """Reads the server's output until its startup line; keeps draining it after."""
    assert process.stdout is not None
    found: list[str] = []
    ready = threading.Event()

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = _URL.search(line)
            if match and not found:
                found.append(match.group(1))
                ready.set()
        ready.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    if not ready.wait(60) or not found:
        process.kill()
        raise RuntimeError(f"{what} did not start")
    return found[0], reader


class Door:
    name = ""

    def __init__(self, app_target: str) -> None:
        self.app_target = app_target

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def send(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> Observed:
        raise NotImplementedError


class _LiveDoor(Door):
    """A server in a subprocess, driven by one keep-alive client.

    The server binds port 0 and its startup line ("... running on http://...")
    says which port it got: picking a free port beforehand could race with
    other processes on the machine.
    """

    def command(self, port: int) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command(0),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # A fixed hash seed: frameworks that build headers from sets
            # (Starlette's Allow) then give the same order in every process.
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONHASHSEED": "0"},
        )
        url, self.reader = _startup_url(self.process, self.name)
        self.client = httpx.Client(base_url=url, timeout=15)

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.reader.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def send(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> Observed:
        response = self.client.request(method, path, headers=headers, content=body)
        return _observe(response, SERVER_HEADERS)


class NativeDoor(_LiveDoor):
    name = "native"

    def command(self, port: int) -> list[str]:
        module, _, attr = self.app_target.partition(":")
        # No cap on requests per connection: the fuzzer sends thousands on one
        # keep-alive connection, and uvicorn has no such cap to compare with.
        boot = (
            f"import {module} as m; from cello import LimitsConfig; "
            f"m.{attr}.run(host='127.0.0.1', port={port}, env='production', logs=False, "
            "limits=LimitsConfig(max_requests_per_connection=None))"
        )
        return [sys.executable, "-c", boot]


class UvicornDoor(_LiveDoor):
    name = "uvicorn"

    def command(self, port: int) -> list[str]:
        return [
            sys.executable, "-m", "uvicorn", self.app_target,
            "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log", "--log-level", "info", "--lifespan", "on",
        ]  # fmt: skip


class AsgiTransportDoor(Door):
    name = "asgi"

    def start(self) -> None:
        import importlib

        module, _, attr = self.app_target.partition(":")
        app = getattr(importlib.import_module(module), attr)
        self.client = TestClient(app)
        self.client.__enter__()

    def stop(self) -> None:
        self.client.__exit__(None, None, None)

    def send(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> Observed:
        response = self.client.request(method, path, headers=headers, content=body)
        return _observe(response, SERVER_HEADERS | HOP_BY_HOP)


DOORS = (NativeDoor, UvicornDoor, AsgiTransportDoor)


def comparable(observed: Observed, door: str) -> Observed:
    """``observed`` with the headers one door cannot produce removed, so that
    every door can be compared with every other."""
    if door == "asgi":
        return observed
    headers = tuple(h for h in observed.headers if h[0] not in HOP_BY_HOP)
    return Observed(observed.status, headers, observed.body)


@contextmanager
def started_doors(app_target: str) -> Iterator[dict[str, Door]]:
    """Every door of ``DOORS`` serving ``app_target``, stopped on exit."""
    started: dict[str, Door] = {}
    try:
        for door_type in DOORS:
            door = door_type(app_target)
            door.start()
            started[door.name] = door
        yield started
    finally:
        for door in started.values():
            door.stop()
