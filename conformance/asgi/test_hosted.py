"""Door 3: real FastAPI and Starlette apps served by Cello, mounted and with
``cello serve``, compared request by request with uvicorn serving the same
apps: identical status, headers (except ``date``/``server``) and bodies."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator

import pytest

from conformance.asgi.corpus import FASTAPI, STARLETTE, HostedCase
from conformance.doors import SERVER_HEADERS, Observed, _LiveDoor

APPS = {
    "fastapi": ("conformance.asgi.fastapi_app:api", FASTAPI),
    "starlette": ("conformance.asgi.starlette_app:app", STARLETTE),
}


class CommandDoor(_LiveDoor):
    """A server started from a command line; requests get ``prefix`` in front."""

    def __init__(self, name: str, command: list[str], prefix: str = "") -> None:
        super().__init__("")
        self.name = name
        self._command = command
        self.prefix = prefix

    def command(self, port: int) -> list[str]:
        return [part.replace("{port}", str(port)) for part in self._command]

    def fetch(self, case: HostedCase) -> Observed:
        # A fixed Host keeps absolute URLs (url_for) independent of the port.
        headers = [("host", "testserver"), *case.headers]
        response = self.client.request(
            case.method, self.prefix + case.path, headers=headers, content=case.body
        )
        kept = tuple(
            sorted(
                (k.lower(), v)
                for k, v in response.headers.multi_items()
                if k.lower() not in SERVER_HEADERS
            )
        )
        return Observed(response.status_code, kept, response.content)


def uvicorn(target: str, root_path: str = "") -> list[str]:
    command = [sys.executable, "-m", "uvicorn", target, "--port", "{port}",
               "--log-level", "info", "--no-access-log"]  # fmt: skip
    return command + (["--root-path", root_path] if root_path else [])


def cello_serve(target: str, *flags: str) -> list[str]:
    return [sys.executable, "-m", "cello", "serve", target, "--port", "{port}", "--no-logs",
            "--env", "production", *flags]  # fmt: skip


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, dict[str, CommandDoor]]]:
    doors: dict[str, dict[str, CommandDoor]] = {}
    mounted = [sys.executable, "-m", "cello", "run", "conformance.asgi.hosts:app",
               "--port", "{port}", "--no-logs", "--env", "production"]  # fmt: skip
    try:
        for name, (target, _) in APPS.items():
            doors[name] = {
                "uvicorn": CommandDoor("uvicorn", uvicorn(target)),
                "uvicorn-root-path": CommandDoor("uvicorn-root-path", uvicorn(target, f"/{name}")),
                "cello-serve": CommandDoor("cello-serve", cello_serve(target)),
                "cello-serve-threads-1": CommandDoor(
                    "cello-serve-threads-1", cello_serve(target, "--threads", "1")
                ),
                "cello-mounted": CommandDoor("cello-mounted", mounted, prefix=f"/{name}"),
            }
            for door in doors[name].values():
                door.start()
        yield doors
    finally:
        for group in doors.values():
            for door in group.values():
                if hasattr(door, "process"):
                    door.stop()


CASES = [(app, case) for app, (_, cases) in APPS.items() for case in cases]


@pytest.mark.parametrize(("app", "case"), CASES, ids=[f"{a}: {c.name}" for a, c in CASES])
def test_hosted_app_matches_uvicorn(servers, app: str, case: HostedCase):
    doors = servers[app]
    served = doors["cello-serve"].fetch(case)
    assert served.status == case.status, served.body[:300]
    assert served == doors["uvicorn"].fetch(case), "cello serve differs from uvicorn"
    threaded = doors["cello-serve-threads-1"].fetch(case)
    assert threaded == served, "cello serve --threads 1 differs from --threads 0"
    mounted = doors["cello-mounted"].fetch(case)
    reference = doors["uvicorn-root-path"].fetch(case)
    assert mounted == reference, "mounted in Cello differs from uvicorn --root-path"


def test_root_path_links_for_mounted_apps(servers):
    door = servers["fastapi"]["cello-mounted"]
    body = door.client.get("/fastapi/url", headers={"host": "testserver"}).json()
    assert body == {
        "url_for": "http://testserver/fastapi/items/3",
        "root_path": "/fastapi",
        "path": "/fastapi/url",
    }
    docs = door.client.get("/fastapi/docs").text
    assert "/fastapi/openapi.json" in docs


@pytest.mark.parametrize("door", ["uvicorn", "cello-serve", "cello-mounted"])
def test_a_starlette_stream_whose_client_left_is_closed(servers, door):
    # Told spec 2.4 or later, Starlette's StreamingResponse stops listening
    # for http.disconnect and relies on send() raising OSError instead.
    served = servers["starlette"][door]
    port = served.client.base_url.port
    name = f"{door}-left"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        request = f"GET {served.prefix}/ticking?name={name} HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(request.encode())
        received = b""
        while b"tick" not in received:
            received += sock.recv(4096)

    def closed() -> list[str]:
        return served.client.get(served.prefix + "/closed").json()

    for _ in range(250):
        if name in closed():
            break
        time.sleep(0.02)
    assert name in closed()
