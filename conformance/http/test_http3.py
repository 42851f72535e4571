"""The corpus over HTTP/3: the native server with HTTP/3 on must give every
case its expected answer over QUIC too, and the same status, body and
headers as over TCP (less what only one protocol has: the TCP connection's
own fields, and ``Alt-Svc``, which TCP responses carry to announce HTTP/3).

Cases that set ``Host`` are left out (HTTP/3 carries the authority in
``:authority``), and so are the header echoes, whose body lists the
headers each client library sends."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

pytest.importorskip("aioquic")

from conformance.doors import ROOT, _startup_url
from conformance.http.corpus import CASES, Case
from tests.h3client import Certs, H3Client, Response, h3_connect, make_certs

# Fields of one protocol only: the TCP connection's, the announcement of
# HTTP/3 and what a server adds on its own.
NOT_COMPARED = {"connection", "keep-alive", "transfer-encoding", "alt-svc", "date", "server"}

H3_CASES = [
    c
    for c in CASES
    if not any(k.lower() == "host" for k, _ in c.headers) and not c.path.startswith("/echo/headers")
]


class Http3Server:
    def __init__(self, certs: Certs) -> None:
        boot = (
            "import conformance.http.app as m\n"
            "from cello import Http3Config, LimitsConfig, TlsConfig\n"
            "m.app.run(host='127.0.0.1', port=0, env='production', logs=False,\n"
            f"    tls=TlsConfig(cert_path={str(certs.cert)!r}, key_path={str(certs.key)!r}),\n"
            "    http3=Http3Config(enabled=True),\n"
            "    limits=LimitsConfig(max_requests_per_connection=None))\n"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", boot],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONHASHSEED": "0"},
        )
        self.url, self.reader = _startup_url(self.process, "native with HTTP/3")
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Http3Server, Path]]:
    certs = make_certs(tmp_path_factory.mktemp("h3-conformance"))
    server = Http3Server(certs)
    try:
        yield server, certs.ca
    finally:
        server.stop()


def _headers(pairs: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k.lower(), v) for k, v in pairs if k.lower() not in NOT_COMPARED))


async def _over_h3(client: H3Client, case: Case) -> Response:
    headers = [(k.lower(), v) for k, v in case.headers]
    return await client.request(case.method, case.path, headers, case.body)


def test_the_corpus_over_http3(server: tuple[Http3Server, Path]) -> None:
    live, ca = server

    async def run() -> dict[str, Response]:
        async with h3_connect(live.port, ca) as client:
            return {case.name: await _over_h3(client, case) for case in H3_CASES}

    answers = asyncio.run(asyncio.wait_for(run(), 120))
    # TCP is HTTPS with the same certificate.
    trust = ssl.create_default_context(cafile=str(ca))
    with httpx.Client(base_url=live.url, verify=trust, timeout=15) as tcp:
        for case in H3_CASES:
            h3 = answers[case.name]
            grouped: dict[str, list[str]] = {}
            for key, value in h3.headers:
                grouped.setdefault(key, []).append(value)
            # The connection's own fields have no place in HTTP/3 (RFC 9114 §4.2).
            expected = {k: v for k, v in case.expect_headers.items() if k not in NOT_COMPARED}
            replace(case, expect_headers=expected).check(h3.status, grouped, h3.body)
            over_tcp = tcp.request(case.method, case.path, headers=case.headers, content=case.body)
            assert h3.status == over_tcp.status_code, case.name
            assert h3.body == over_tcp.content, case.name
            tcp_headers = _headers([(k, v) for k, v in over_tcp.headers.multi_items()])
            h3_headers = _headers(h3.headers)
            if "content-length" not in dict(tcp_headers):
                # A streamed TCP body is chunked; HTTP/3 frames it without a length.
                h3_headers = tuple(h for h in h3_headers if h[0] != "content-length")
            assert h3_headers == tcp_headers, case.name
    assert len(H3_CASES) > 50
