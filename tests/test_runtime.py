"""The server runtime with real processes, signals and sockets: flags,
worker processes, graceful shutdown, startup failures, timeouts, limits,
access logs."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.live import ROOT, LiveServer


def pids_seen(url: str, want: int, attempts: int = 400) -> set[int]:
    """PIDs answering ``/pid``, one fresh connection per request."""
    seen: set[int] = set()
    for _ in range(attempts):
        with httpx.Client() as client:
            seen.add(client.get(url + "/pid").json()["pid"])
        if len(seen) >= want:
            break
    return seen


def wait_for(predicate, what: str, attempts: int = 300, pause: float = 0.05):
    for _ in range(attempts):
        value = predicate()
        if value:
            return value
        time.sleep(pause)
    raise AssertionError(f"gave up waiting for {what}")


def test_flags_override_code(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with LiveServer("tests.apps.runtime:app", "--port", str(port), "--env", "production") as live:
        assert live.port == port
        # production turns the access log off (it defaults to on in development)
        httpx.get(live.url + "/pid")
        time.sleep(0.2)
        assert not any('"GET /pid' in line for line in live.output)


def test_access_log_text_and_json():
    with LiveServer("tests.apps.runtime:app", "--logs") as live:
        httpx.get(live.url + "/pid?x=1")
        line = wait_for(
            lambda: next((ln for ln in live.output if "/pid?x=1" in ln), None), "access log"
        )
        assert '"GET /pid?x=1 HTTP/1.1" 200' in line
        # The duration, then the request ID ("-": this app gives none).
        assert re.search(r" \d+\.\d{3}ms -$", line.rstrip()), line
    with LiveServer("tests.apps.runtime:app", "--logs", "--log-format", "json") as live:
        httpx.get(live.url + "/nope")
        line = wait_for(
            lambda: next((ln for ln in live.output if '"/nope"' in ln), None), "json log"
        )
        entry = json.loads(line)
        assert entry["method"] == "GET"
        assert entry["status"] == 404
        assert entry["size"] > 0
        assert entry["client"].startswith("127.0.0.1:")


def test_two_workers_serve_from_two_pids():
    with LiveServer("tests.apps.runtime:app", "--workers", "2") as live:
        assert "with 2 workers" in "".join(live.output)
        pids = pids_seen(live.url, 2)
        assert len(pids) == 2
        assert os.getpid() not in pids


def test_killed_worker_is_replaced_and_service_continues():
    with LiveServer("tests.apps.runtime:app", "--workers", "2") as live:
        victim, survivor = sorted(pids_seen(live.url, 2))
        failures = 0
        stop = threading.Event()

        def load() -> None:
            nonlocal failures
            for _ in range(2000):
                if stop.is_set():
                    return
                try:
                    with httpx.Client(timeout=5) as client:
                        client.get(live.url + "/pid")
                except httpx.TransportError:
                    failures += 1

        worker = threading.Thread(target=load)
        worker.start()
        os.kill(victim, signal.SIGKILL)
        replacement = wait_for(
            lambda: (pids_seen(live.url, 3, attempts=50) - {victim, survivor}) or None,
            "a replacement worker",
        )
        stop.set()
        worker.join(30)
        assert victim not in pids_seen(live.url, 2)
        assert len(replacement) == 1
        # Only requests in flight on the killed worker can fail.
        assert failures <= 2
        for _ in range(50):
            assert httpx.get(live.url + "/pid").status_code == 200
        assert "starting a replacement" in live.stderr()


@pytest.mark.parametrize(("workers", "threads"), [("1", "0"), ("2", "0"), ("1", "1"), ("1", "2")])
def test_sigterm_lets_in_flight_requests_finish(workers, threads):
    live = LiveServer("tests.apps.runtime:app", "--workers", workers, "--threads", threads).start()
    try:
        results: list[int] = []

        def slow() -> None:
            results.append(httpx.get(live.url + "/slow?s=1", timeout=20).status_code)

        threads = [threading.Thread(target=slow) for _ in range(8)]
        for t in threads:
            t.start()
        # Each worker counts its own slow requests: sample both until all 8 landed.
        seen: dict[int, int] = {}

        def all_started() -> bool:
            with httpx.Client() as fresh:
                body = fresh.get(live.url + "/started").json()
            seen[body["pid"]] = max(seen.get(body["pid"], 0), body["started"])
            return sum(seen.values()) >= 8

        wait_for(all_started, "the slow requests to start", attempts=600)
        live.signal(signal.SIGTERM)
        for t in threads:
            t.join(30)
        assert results == [200] * 8
        assert live.wait(30) == 0
    finally:
        live.close()


def test_new_connections_are_refused_after_sigterm():
    live = LiveServer("tests.apps.runtime:app").start()
    try:
        in_flight = threading.Thread(target=lambda: httpx.get(live.url + "/slow?s=1", timeout=20))
        in_flight.start()
        wait_for(lambda: httpx.get(live.url + "/started").json()["started"] >= 1, "start")
        live.signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.ConnectError):
            httpx.get(live.url + "/pid", timeout=2)
        in_flight.join(20)
        assert live.wait(30) == 0
    finally:
        live.close()


def test_second_signal_forces_exit():
    live = LiveServer("tests.apps.runtime:app").start()
    try:

        def doomed() -> None:
            with pytest.raises(httpx.TransportError):
                httpx.get(live.url + "/slow?s=20", timeout=30)

        blocked = threading.Thread(target=doomed, daemon=True)
        blocked.start()
        wait_for(lambda: httpx.get(live.url + "/started").json()["started"] >= 1, "start")
        live.signal(signal.SIGINT)
        time.sleep(0.3)
        live.signal(signal.SIGINT)
        assert live.wait(10) == 1
        assert "second signal" in live.stderr()
        blocked.join(10)
    finally:
        live.close()


def run_app(module: str, *flags: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    boot = f"import {module} as m; m.app.run(host='127.0.0.1', port=0)"
    return subprocess.run(
        [sys.executable, "-c", boot, *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_startup_hook_failure_exits_non_zero_with_traceback():
    result = run_app("tests.apps.badstart")
    assert result.returncode == 3
    assert "startup failed" in result.stderr
    assert "RuntimeError: database unreachable" in result.stderr


def test_startup_failure_in_workers_stops_the_master():
    result = run_app("tests.apps.badstart", "--workers", "2")
    assert result.returncode == 1
    assert "failed during startup; stopping" in result.stderr
    assert "starting a replacement" not in result.stderr


def test_crash_looping_workers_make_the_master_give_up():
    with LiveServer("tests.apps.runtime:app", "--workers", "2") as live:
        # Each /exit kills the worker that serves it; the default allows 5 restarts.
        for _ in range(12):
            try:
                httpx.get(live.url + "/exit", timeout=2)
            except httpx.TransportError:
                pass
            if live.process.poll() is not None:
                break
            time.sleep(0.1)
        assert live.wait(30) == 1
        assert "giving up" in live.stderr()


def test_slow_loris_is_cut_off_while_others_are_served():
    with LiveServer("tests.apps.runtime:app") as live:
        loris = socket.create_connection(("127.0.0.1", live.port))
        loris.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n")
        loris.settimeout(10)
        # Others are served while the slow client dribbles.
        for _ in range(5):
            assert httpx.get(live.url + "/pid").status_code == 200
        # read_header=1s: the server closes the connection without answering.
        assert loris.recv(1024) == b""
        loris.close()


def test_idle_keep_alive_connection_is_closed_after_idle_timeout():
    with LiveServer("tests.apps.runtime:app") as live:
        with socket.create_connection(("127.0.0.1", live.port)) as sock:
            sock.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(10)
            first = sock.recv(4096)
            assert first.startswith(b"HTTP/1.1 200")
            # idle=2s: longer than the header timeout, and then the close.
            assert sock.recv(4096) == b""


def test_handler_timeout_is_504():
    with LiveServer("tests.apps.runtime:app") as live:
        response = httpx.get(live.url + "/too-slow", timeout=10)
        assert response.status_code == 504
        assert response.headers["content-type"] == "application/problem+json"
        assert "did not respond within 2.000s" in response.json()["detail"]


def test_sync_handler_that_overruns_is_504():
    # A sync handler cannot be interrupted: its answer is replaced once it returns.
    with LiveServer("tests.apps.runtime:app") as live:
        response = httpx.get(live.url + "/blocking?s=2.5", timeout=10)
        assert response.status_code == 504
        assert "did not respond within 2.000s" in response.json()["detail"]
        assert httpx.get(live.url + "/blocking?s=0").json() == {"blocked": True}


@pytest.mark.parametrize("threads", ["0", "1", "3"])
def test_sync_and_async_handlers_share_the_process(threads):
    """Sync handlers run on the I/O threads and async ones on the event loop;
    with I/O threads of their own they take turns holding the GIL."""
    with LiveServer("tests.apps.runtime:app", "--threads", threads) as live:
        failures: list[object] = []

        def hammer(path: str) -> None:
            with httpx.Client(base_url=live.url, timeout=10) as c:
                for _ in range(50):
                    response = c.get(path)
                    if response.status_code != 200:
                        failures.append((path, response.status_code))

        paths = ["/pid", "/slow?s=0", "/pid", "/blocking?s=0"] * 2
        workers = [threading.Thread(target=hammer, args=(p,)) for p in paths]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        assert failures == []
        assert live.stop() == 0


@pytest.mark.parametrize("threads", ["0", "1"])
def test_threads_decides_where_sync_handlers_run(threads):
    """`threads=0` serves from the event loop's (main) thread; `threads=1`
    from one Rust I/O thread of its own, beside the loop."""
    with LiveServer("tests.apps.runtime:app", "--threads", threads) as live:
        on_loop = httpx.get(live.url + "/loop-thread").json()
        assert on_loop["thread"] == on_loop["main"]
        sync = {httpx.get(live.url + "/sync-thread").json()["thread"] for _ in range(5)}
        assert len(sync) == 1
        if threads == "0":
            assert sync == {on_loop["main"]}
        else:
            assert on_loop["main"] not in sync


@pytest.mark.parametrize("suffix", ["", "-async"])
def test_unread_oversize_get_body_closes_the_connection(suffix):
    """GET bodies are read before the handler runs (sync, or async on the
    one-thread server); one that turns out to be over the limit (chunked, so
    no Content-Length said so) is raised only if the handler asks for it."""

    def chunked(size: int) -> Iterator[bytes]:
        yield b"x" * size

    with LiveServer("tests.apps.runtime:app") as live:
        with httpx.Client(base_url=live.url, timeout=10) as c:
            asked = c.request("GET", f"/read-body{suffix}", content=chunked(2000))
            assert asked.status_code == 413
            assert "exceeds the limit of 1024 bytes" in asked.json()["detail"]
            ignored = c.request("GET", f"/ignore-body{suffix}", content=chunked(2000))
            assert ignored.json() == {"ignored": True}
            assert ignored.headers["connection"] == "close"
            read = c.request("GET", f"/read-body{suffix}", content=chunked(1000))
            assert read.json() == {"size": 1000}
            assert c.get(f"/ignore-body{suffix}").headers.get("connection") != "close"


def test_body_read_timeout_is_408():
    with LiveServer("tests.apps.runtime:app") as live:
        with socket.create_connection(("127.0.0.1", live.port)) as sock:
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
            sock.settimeout(10)
            reply = sock.recv(4096)
            assert reply.startswith(b"HTTP/1.1 408")


def test_body_limit_from_limits_config():
    with LiveServer("tests.apps.runtime:app") as live:
        assert httpx.post(live.url + "/upload", content=b"x" * 1024).json() == {"size": 1024}
        assert httpx.post(live.url + "/upload", content=b"x" * 1025).status_code == 413

        def chunks():
            for _ in range(100):
                yield b"x" * 512

        # A chunked body is cut off once it passes the limit, not read to the end.
        assert httpx.post(live.url + "/upload", content=chunks()).status_code == 413


def test_header_size_limit_is_431():
    with LiveServer("tests.apps.runtime:app") as live:
        response = httpx.get(live.url + "/pid", headers={"X-Big": "v" * 5000})
        assert response.status_code == 431


def test_max_requests_per_connection():
    with LiveServer("tests.apps.runtime:app") as live:
        with socket.create_connection(("127.0.0.1", live.port)) as sock:
            sock.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n" * 4)
            sock.settimeout(10)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.count(b"HTTP/1.1 200") == 3
        assert b"connection: close" in data


def test_reload_restarts_on_py_change(tmp_path):
    pytest.importorskip("watchfiles")
    app_file = tmp_path / "app.py"
    app_file.write_text(
        "from cello import App\napp = App()\n\n"
        "@app.get('/')\ndef index(request):\n    return {'version': 1}\n\n"
        "if __name__ == '__main__':\n    app.run(port=0)\n"
    )
    with subprocess.Popen(
        [sys.executable, str(app_file), "--reload"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            url = _read_url(process)
            assert httpx.get(url + "/").json() == {"version": 1}
            app_file.write_text(app_file.read_text().replace("'version': 1", "'version': 2"))
            new_url = _read_url(process)
            assert httpx.get(new_url + "/").json() == {"version": 2}
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(30)
    assert process.returncode == 0


def _read_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if "running on" in line:
            return line.split("running on ", 1)[1].split()[0]
    raise AssertionError("no startup line")


def test_reload_without_watchfiles_is_a_clear_error(tmp_path):
    blocker = tmp_path / "watchfiles.py"
    blocker.write_text("raise ImportError('no watchfiles here')\n")
    result = subprocess.run(
        [sys.executable, "-c", "import examples.hello as m; m.app.run(port=0)", "--reload"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{tmp_path}:{ROOT}"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "reload needs the watchfiles package" in result.stderr


def test_idle_keep_alive_connections_do_not_delay_shutdown():
    # The core app keeps the default 60 s idle timeout.
    live = LiveServer("tests.apps.core:app").start()
    try:
        with socket.create_connection(("127.0.0.1", live.port)) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(10)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            live.signal(signal.SIGTERM)
            # Closed by the shutdown itself: nothing is in flight on it.
            assert sock.recv(4096) == b""
        assert live.wait(10) == 0
    finally:
        live.close()


def test_cpu_affinity_pins_each_worker_to_one_cpu():
    script = (
        "import os\n"
        "from cello import App, ClusterConfig\n"
        "app = App()\n"
        "@app.get('/cpus')\n"
        "def cpus(request):\n"
        "    return {'pid': os.getpid(), 'cpus': sorted(os.sched_getaffinity(0))}\n"
        "app.run(port=0, cluster=ClusterConfig(workers=2, cpu_affinity=True))\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        try:
            url = process.stdout.readline().split("running on ", 1)[1].split()[0]
            seen = {}
            for _ in range(200):
                with httpx.Client() as client:
                    body = client.get(url + "/cpus").json()
                seen[body["pid"]] = body["cpus"]
                if len(seen) == 2:
                    break
            assert all(len(cpus) == 1 for cpus in seen.values())
            if len(os.sched_getaffinity(0)) > 1:
                assert len({tuple(c) for c in seen.values()}) == 2
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)


def _stop_with_work_left(tmp_path, sig: int, *flags: str, env: dict[str, str] | None = None):
    """Serves tests/apps/shutdown.py, leaves a request running, a task
    spawned and an async generator suspended, then sends ``sig``. Returns
    the server and the in-flight request's outcome."""
    live = LiveServer(
        "tests.apps.shutdown:app", *flags, env={"CELLO_TEST_MARKERS": str(tmp_path), **(env or {})}
    ).start()
    outcome: list[object] = []

    def in_flight() -> None:
        try:
            outcome.append(httpx.get(live.url + "/stuck?s=5", timeout=30).status_code)
        except httpx.TransportError as exc:
            outcome.append(exc)

    try:
        assert httpx.post(live.url + "/spawn").json() == {"spawned": True}
        assert httpx.post(live.url + "/agen").json() == {"suspended": True}
        request = threading.Thread(target=in_flight)
        request.start()
        wait_for(lambda: (tmp_path / "stuck-started").exists(), "the request to start")
        live.signal(sig)
        request.join(30)
        return live, outcome
    except BaseException:
        live.close()
        raise


@pytest.mark.parametrize(("workers", "threads"), [("1", "0"), ("1", "1"), ("2", "0")])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_cancels_what_is_left_and_runs_its_cleanup(tmp_path, sig, workers, threads):
    # shutdown_timeout=1: the request (5 s) is still running when it passes.
    live, outcome = _stop_with_work_left(tmp_path, sig, "--workers", workers, "--threads", threads)
    try:
        assert live.wait(30) == 0
        assert isinstance(outcome[0], httpx.TransportError)
        cleaned = {p.name for p in tmp_path.iterdir()} - {"stuck-started"}
        assert cleaned == {"stuck", "task", "agen"}
        assert "cancelling 1 request(s) still running at shutdown" in live.stderr()
        assert "was destroyed but it is pending" not in live.stderr()
    finally:
        live.close()


def test_without_graceful_shutdown_in_flight_requests_are_cut_off(tmp_path):
    # The request (5 s) would finish well within shutdown_timeout=30 if it
    # were waited for.
    env = {"CELLO_TEST_GRACEFUL": "0", "CELLO_TEST_SHUTDOWN_TIMEOUT": "30"}
    live, outcome = _stop_with_work_left(tmp_path, signal.SIGTERM, env=env)
    try:
        assert live.wait(30) == 0
        assert isinstance(outcome[0], httpx.TransportError)
        assert (tmp_path / "stuck").exists()
    finally:
        live.close()


def test_graceful_shutdown_waits_for_in_flight_requests(tmp_path):
    env = {"CELLO_TEST_SHUTDOWN_TIMEOUT": "30"}
    live, outcome = _stop_with_work_left(tmp_path, signal.SIGTERM, env=env)
    try:
        assert live.wait(30) == 0
        assert outcome == [200]
    finally:
        live.close()


# The signal lands in the window between the server's start and its loop's
# (here: while the startup line is being made, after the handlers are in).
SIGNAL_WHILE_STARTING = """
import os, signal, sys
from cello import App, _server

app = App()

@app.on_event("shutdown")
def bye():
    print("shutdown hook ran", flush=True)

def url(*args):
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))
    return real_url(*args)

real_url, _server.url = _server.url, url
app.run(host="127.0.0.1", port=0, threads=int(sys.argv[2]))
"""


@pytest.mark.parametrize("threads", [0, 2])
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_stop_signal_sent_while_the_server_starts_is_not_lost(tmp_path, sig, threads):
    """uvloop (the loop with ``threads``) dropped a signal that arrived
    before its loop ran: the server then served on past its SIGTERM."""
    script = tmp_path / "starting.py"
    script.write_text(SIGNAL_WHILE_STARTING)
    result = subprocess.run(
        [sys.executable, str(script), sig, str(threads)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "shutdown hook ran" in result.stdout


HANGING_SHUTDOWN = """
import os, time
from cello import App, ClusterConfig

app = App()

@app.get("/pid")
def pid(request):
    return {"pid": os.getpid()}

@app.on_event("shutdown")
def hang_forever():
    time.sleep(600)

app.run(host="127.0.0.1", port=0, cluster=ClusterConfig(workers=2, shutdown_timeout=0.1))
"""


def test_workers_that_will_not_stop_are_aborted_with_their_stacks(tmp_path):
    """Past the stop's grace the master aborts the workers, whose dumped
    stacks name the code they hang in, and exits 1."""
    script = tmp_path / "hang.py"
    script.write_text(HANGING_SHUTDOWN)
    with (tmp_path / "stderr").open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr,
            text=True,
        )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert len(pids_seen(line.split("running on ", 1)[1].split()[0], 2)) == 2
        process.send_signal(signal.SIGTERM)
        assert process.wait(50) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()  # type: ignore[union-attr]
    stderr_text = (tmp_path / "stderr").read_text()
    assert "did not stop in time: aborting them" in stderr_text
    assert stderr_text.count("in hang_forever") == 2, stderr_text
    assert "killing it" not in stderr_text
