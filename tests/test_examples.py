"""Every example app starts and answers as its docstring says."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx

from tests.live import ROOT, LiveServer


def test_hello_example():
    with LiveServer("examples.hello:app") as live:
        assert httpx.get(live.url + "/").json() == {"message": "Hello, World!"}
        assert httpx.get(live.url + "/hello/Ada").json() == {"message": "Hello, Ada!"}


def test_production_example_runs_two_workers():
    with subprocess.Popen(
        [sys.executable, "examples/production.py", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert "with 2 workers" in line
            url = line.split("running on ", 1)[1].split()[0]
            workers = set()
            for _ in range(200):
                with httpx.Client() as client:
                    workers.add(client.get(url + "/").json()["worker"])
                if len(workers) == 2:
                    break
            assert len(workers) == 2
            assert httpx.post(url + "/echo", json={"a": 1}).json() == {"received": {"a": 1}}
            assert httpx.post(url + "/echo", content=b"x" * 70_000).status_code == 413
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
    assert process.returncode == 0
