"""Configuration classes: documented spellings, defaults and validation."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from cello import ClusterConfig, Http2Config, Http3Config, LimitsConfig, TimeoutConfig, TlsConfig
from tests.live import ROOT


def test_timeout_defaults_and_aliases():
    t = TimeoutConfig()
    assert (t.read_header_timeout, t.read_body_timeout, t.write_timeout) == (5, 30, 30)
    assert (t.idle_timeout, t.handler_timeout) == (60, 30)
    t = TimeoutConfig(request_timeout=10, response_timeout=20, keep_alive_timeout=75)
    assert (t.read_body_timeout, t.handler_timeout, t.idle_timeout) == (10, 20, 75)
    assert TimeoutConfig(idle_timeout=3).idle_timeout == 3


@pytest.mark.parametrize(
    "kwargs",
    [{"read_header": 0}, {"idle": -1}, {"handler": "30"}, {"read_body": True}],
)
def test_timeout_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match="positive number of seconds"):
        TimeoutConfig(**kwargs)


def test_timeout_rejects_two_spellings_of_one_setting():
    with pytest.raises(ValueError, match="conflicting settings"):
        TimeoutConfig(idle=5, keep_alive_timeout=75)


def test_limits():
    limits = LimitsConfig(max_request_size=2048, max_headers=50)
    assert limits.max_body_size == limits.max_request_size == 2048
    assert limits.max_headers == 50
    assert LimitsConfig().max_requests_per_connection == 1000
    assert LimitsConfig(max_requests_per_connection=None).max_requests_per_connection is None
    with pytest.raises(ValueError, match="max_connections"):
        LimitsConfig(max_connections=0)
    with pytest.raises(ValueError, match="at least 1024"):
        LimitsConfig(max_header_size=100)


def test_cluster():
    assert ClusterConfig(processes=3).workers == 3
    assert ClusterConfig(workers=2).processes == 2
    assert ClusterConfig.auto().workers >= 1
    with pytest.raises(ValueError, match="workers"):
        ClusterConfig(workers=0)
    with pytest.raises(ValueError, match="max_restarts"):
        ClusterConfig(max_restarts=-1)


def test_protocol_configs_validate():
    assert TlsConfig("cert.pem", "key.pem").min_version == "1.2"
    with pytest.raises(ValueError, match="cert_path"):
        TlsConfig("", "key.pem")
    with pytest.raises(ValueError, match="min_version"):
        TlsConfig("c", "k", min_version="1.0")
    with pytest.raises(ValueError, match="above max_version"):
        TlsConfig("c", "k", min_version="1.3", max_version="1.2")
    assert Http2Config().enabled is True
    assert Http3Config().enabled is False
    with pytest.raises(ValueError, match="max_frame_size"):
        Http2Config(max_frame_size=10)


def _run(code: str) -> subprocess.Popen[str]:
    script = f"from cello import ClusterConfig\nfrom examples.hello import app\napp.run({code})\n"
    return subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_run_workers_and_cluster_workers_that_disagree_are_an_error():
    with _run("port=0, workers=3, cluster=ClusterConfig(workers=2)") as process:
        try:
            _, stderr = process.communicate(timeout=30)
        finally:
            process.kill()
    assert process.returncode == 2
    assert stderr.strip() == (
        "cello: error: run(workers=3) and ClusterConfig(workers=2) disagree: "
        "give the number of worker processes once"
    )


def test_run_workers_and_cluster_workers_that_agree_are_one_setting():
    with _run("port=0, workers=2, cluster=ClusterConfig(workers=2)") as process:
        try:
            assert process.stdout is not None
            assert "with 2 workers" in process.stdout.readline()
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=30)
        finally:
            process.kill()
    assert process.returncode == 0


def test_beside_cluster_processes_run_workers_counts_threads_per_process():
    """The server-configuration document's "processes x workers": with
    ClusterConfig(processes=N), run(workers=M) is each process's threads."""
    with _run("port=0, workers=3, cluster=ClusterConfig(processes=2)") as process:
        try:
            assert process.stdout is not None
            assert "with 2 workers" in process.stdout.readline()
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=30)
        finally:
            process.kill()
    assert process.returncode == 0
    code = "port=0, workers=3, threads=1, cluster=ClusterConfig(processes=2)"
    with _run(code) as process:
        try:
            _, stderr = process.communicate(timeout=30)
        finally:
            process.kill()
    assert process.returncode == 2
    assert "counts the threads of each process, and threads=1 disagrees" in stderr
