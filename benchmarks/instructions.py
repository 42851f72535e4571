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
Needs valgrind (Debian: `apt-get install valgrind`). Stdlib only.
"""

from __future__ import annotations

import argparse
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

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
APPS_DIR = BENCH_DIR / "apps"
STARTUP_TIMEOUT_SECONDS = 300  # everything is ~50x slower under valgrind


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"nothing listened on port {port} within {STARTUP_TIMEOUT_SECONDS} s")


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
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
                buffer = b""
                for _ in range(count):
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
        except Exception as exc:  # reported once all threads are done
            errors.append(str(exc))

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
        raise SystemExit(f"{len(errors)} connection(s) failed, first: {errors[0]}")


def total_instructions(dump: Path) -> int:
    text = dump.read_text(errors="replace")
    found = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.MULTILINE)
    if found is None:
        raise SystemExit(f"no instruction total in {dump}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="request path, e.g. / or /users/42")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", help="JSON body to send (with --method POST)")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- server command")
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (Debian: apt-get install valgrind)")

    port = free_port()
    command = [part for part in args.command if part != "--"] or [
        str(REPO / ".venv" / "bin" / "python"),
        "cello_app.py",
    ]
    command = [part.replace("{port}", str(port)) for part in command]
    request = request_bytes(args.method, args.path, args.body.encode() if args.body else None)

    with tempfile.TemporaryDirectory(prefix="cello-callgrind-") as workdir:
        out = Path(workdir) / "callgrind.out"
        process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],
            cwd=APPS_DIR,
            env={**os.environ, "PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_port(port, process)
            load(port, request, args.warmup, args.connections)
            subprocess.run(["callgrind_control", "-z", str(process.pid)], check=True,
                           capture_output=True)  # fmt: skip
            load(port, request, args.requests, args.connections)
            subprocess.run(["callgrind_control", "-d", str(process.pid)], check=True,
                           capture_output=True)  # fmt: skip
            dumps = sorted(Path(workdir).glob("callgrind.out.*"))
            if not dumps:
                raise SystemExit("callgrind wrote no dump")
            per_request = total_instructions(dumps[-1]) / args.requests
        finally:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    print(f"{args.method} {args.path}: {per_request:,.0f} instructions per request")


if __name__ == "__main__":
    sys.exit(main())
