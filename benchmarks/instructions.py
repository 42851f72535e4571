"""Instructions per request of a server, counted by valgrind's callgrind.

Wall-clock figures move from run to run on a shared machine; instruction
counts do not (same binary, same input, same count), so this is the tool for
deciding whether a hot-path change helped before `make bench` confirms it.
Only user-space instructions of the server process are counted: the kernel's
share (sockets, syscalls) is the same for every Python server and is what
the benchmark's CPU µs/req adds on top.

    python benchmarks/instructions.py /                  # Cello app, GET /
    python benchmarks/instructions.py /async-sleep --requests 8000
    python benchmarks/instructions.py / -- .venv/bin/python -m cello serve raw_asgi:app \\
        --port {port} --no-logs --env production

Without a command after `--` it runs `benchmarks/apps/cello_app.py` on a
free port; `{port}` in a command is replaced by that port (the apps also get
it as $PORT). The server starts under callgrind (slow: expect ~50x), gets
`--warmup` requests, then the counters are zeroed, `--requests` requests are
sent over `--connections` keep-alive connections, and the counters dumped.
Servers that fork or spawn workers (granian) are counted whole: callgrind
follows child processes, and every process of the server's tree is counted.
`--keep DIR` keeps the dumps for `callgrind_annotate`. `make bench` runs
the same count for the `GET /` table (see `bench.py`). Needs valgrind
(Debian: `apt-get install valgrind`). Stdlib only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from procs import free_port, process_tree

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
APPS_DIR = BENCH_DIR / "apps"
STARTUP_TIMEOUT_SECONDS = 300  # everything is ~50x slower under valgrind


class CountError(Exception):
    """The server could not be counted: it did not start, or answered wrong."""


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CountError(f"the server exited with {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise CountError(f"nothing listened on port {port} within {STARTUP_TIMEOUT_SECONDS} s")


def request_bytes(method: str, path: str, body: bytes | None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + (body or b"")


def load(port: int, request: bytes, total: int, connections: int) -> None:
    """Sends `total` requests, one at a time per connection, and reads each
    answer whole (content-length framed), failing on anything but 200."""
    errors: list[str] = []

    def one_connection(count: int) -> None:
        sock = None
        try:
            buffer = b""
            for _ in range(count):
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
                sock.sendall(request)
                while True:
                    end = buffer.find(b"\r\n\r\n")
                    if end >= 0:
                        head = buffer[:end].decode("latin-1").lower()
                        length = re.search(r"content-length:\s*(\d+)", head)
                        if length is None or not head.startswith("http/1.1 200"):
                            raise RuntimeError(f"unexpected answer: {head[:80]!r}")
                        size = end + 4 + int(length.group(1))
                        if len(buffer) >= size:
                            buffer = buffer[size:]
                            break
                    data = sock.recv(65536)
                    if not data:
                        raise RuntimeError("the server closed the connection")
                    buffer += data
                # Servers cap requests per connection (Cello: 1000 by default)
                # and announce the last one; carry on over a new connection.
                if re.search(r"^connection:\s*close", head, re.MULTILINE):
                    sock.close()
                    sock, buffer = None, b""
        except Exception as exc:  # reported once all threads are done
            errors.append(str(exc))
        finally:
            if sock is not None:
                sock.close()

    per_connection, extra = divmod(total, connections)
    threads = [
        threading.Thread(target=one_connection, args=(per_connection + (i < extra),))
        for i in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise CountError(f"{len(errors)} connection(s) failed, first: {errors[0]}")


def callgrind_control(action: str, pids: list[int]) -> None:
    for pid in pids:
        subprocess.run(["callgrind_control", action, str(pid)], check=True, capture_output=True)


def total_instructions(dump: Path) -> int:
    text = dump.read_text(errors="replace")
    found = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.MULTILINE)
    if found is None:
        raise CountError(f"no instruction total in {dump}")
    return int(found.group(1))


def missing_tools() -> list[str]:
    return [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]


def count_instructions(
    command: list[str],
    port: int,
    request: bytes,
    *,
    env: dict[str, str] | None = None,
    requests: int = 4000,
    warmup: int = 2000,
    connections: int = 16,
    keep: Path | None = None,
) -> float:
    """User-space instructions per request of the server `command` starts
    (listening on `port`), over `requests` copies of `request` sent after
    `warmup` unmeasured ones. Runs from APPS_DIR; raises CountError."""
    with tempfile.TemporaryDirectory(prefix="cello-callgrind-") as workdir:
        out = Path(workdir) / "callgrind.out"
        process = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}.%p",
                "--trace-children=yes",
                *command,
            ],
            cwd=APPS_DIR,
            env={**os.environ, "PORT": str(port), **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_port(port, process)
            load(port, request, warmup, connections)
            counted = process_tree(process.pid)
            try:
                callgrind_control("-z", counted)
                load(port, request, requests, connections)
                callgrind_control("-d", counted)
            except subprocess.CalledProcessError as error:
                raise CountError(f"callgrind_control failed: {error.stderr!r}") from error
            total = 0
            for pid in counted:
                # A dump made on request is `<out>.<pid>.<n>`; the one written
                # at exit (`<out>.<pid>`) does not exist yet.
                dumps = sorted(Path(workdir).glob(f"callgrind.out.{pid}.*"))
                if not dumps:
                    raise CountError(f"callgrind wrote no dump for process {pid}")
                total += total_instructions(dumps[-1])
                if keep:
                    keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(dumps[-1], keep / f"callgrind.out.{pid}")
            return total / requests
        finally:
            with contextlib.suppress(ProcessLookupError):  # it may have exited already
                os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def split_command(argv: list[str]) -> tuple[list[str], list[str]]:
    """The tool's own arguments and the server command after `--`, so the
    options may come before or after the path without being taken for the
    command's."""
    if "--" not in argv:
        return argv, []
    split = argv.index("--")
    return argv[:split], argv[split + 1 :]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="request path, e.g. / or /users/42")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", help="JSON body to send (with --method POST)")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="copy the callgrind dumps here, for callgrind_annotate or kcachegrind",
    )
    own, server_command = split_command(sys.argv[1:])
    args = parser.parse_args(own)
    if missing := missing_tools():
        raise SystemExit(f"{', '.join(missing)} not found (Debian: apt-get install valgrind)")

    port = free_port()
    command = server_command or [str(REPO / ".venv" / "bin" / "python"), "cello_app.py"]
    command = [part.replace("{port}", str(port)) for part in command]
    request = request_bytes(args.method, args.path, args.body.encode() if args.body else None)
    try:
        per_request = count_instructions(
            command,
            port,
            request,
            requests=args.requests,
            warmup=args.warmup,
            connections=args.connections,
            keep=args.keep,
        )
    except CountError as error:
        raise SystemExit(str(error)) from None
    print(f"{args.method} {args.path}: {per_request:,.0f} instructions per request")


if __name__ == "__main__":
    sys.exit(main())
