"""Multipart uploads through both doors: fields and files, the documented
FormData/UploadedFile interface, the 413 limits, malformed bodies as 400s,
client file names that never become paths, and temporary files that are
gone once the request is over (also when the handler fails)."""

from __future__ import annotations

import hashlib
import importlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cello import FormData, Request, UploadedFile
from cello.exceptions import BadRequest, PayloadTooLarge
from cello.testing import TestClient
from tests.live import LiveServer

PROBLEM = "application/problem+json"
MiB = 1024 * 1024
LEFTOVER_PREFIXES = ("cello-upload-", "cello-spool-")


class Door:
    def __init__(self, name: str, client: httpx.Client, tmp: Path, save_dir: Path) -> None:
        self.name = name
        self.client = client
        self.tmp = tmp
        self.save_dir = save_dir
        self.live: LiveServer | None = None

    def leftovers(self) -> list[str]:
        return [p.name for p in self.tmp.iterdir() if p.name.startswith(LEFTOVER_PREFIXES)]

    def wait_until_clean(self) -> list[str]:
        """The temporary files left, once the server had every chance to
        remove them (it does so when the request object goes)."""
        deadline = time.monotonic() + 20
        while self.leftovers() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.leftovers()


@pytest.fixture(scope="module", params=["native", "asgi"])
def door(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Door]:
    tmp = tmp_path_factory.mktemp(f"uploads-tmp-{request.param}")
    save_dir = tmp_path_factory.mktemp(f"uploads-saved-{request.param}")
    env = {"TMPDIR": str(tmp), "UPLOADS_SAVE_DIR": str(save_dir)}
    if request.param == "native":
        with (
            LiveServer("tests.apps.uploads:app", env=env) as live,
            httpx.Client(base_url=live.url, timeout=60) as client,
        ):
            door = Door("native", client, tmp, save_dir)
            door.live = live
            yield door
        return
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        app = importlib.import_module("tests.apps.uploads").app
        with TestClient(app) as client:
            yield Door("asgi", client, tmp, save_dir)


def multipart(*parts: tuple[str, bytes], boundary: str = "XyZ") -> tuple[dict[str, str], bytes]:
    """A hand-made multipart body: each part is (headers, content)."""
    body = b""
    for headers, content in parts:
        body += f"--{boundary}\r\n{headers}\r\n\r\n".encode() + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return {"content-type": f"multipart/form-data; boundary={boundary}"}, body


def assert_problem(response: httpx.Response, status: int, detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == detail


# Happy paths.


@pytest.mark.parametrize("path", ["/echo", "/echo-async"])
def test_fields_and_files_in_order(door: Door, path: str) -> None:
    response = door.client.post(
        path,
        data={"title": "Hello", "tags": ["a", "b"]},
        files=[
            ("doc", ("notes.TXT", b"first file", "text/plain")),
            ("doc", ("more.bin", b"\x00\x01\x02", "application/octet-stream")),
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    items = body["items"]
    assert items[:3] == [["title", "Hello"], ["tags", "a"], ["tags", "b"]]
    assert [name for name, _ in items[3:]] == ["doc", "doc"]
    first, second = items[3][1], items[4][1]
    assert first == {
        "filename": "notes.TXT",
        "content_type": "text/plain",
        "size": 10,
        "extension": "txt",
        "content": "first file",
        "on_disk": True,
    }
    assert second["content"] == "\x00\x01\x02"
    assert second["content_type"] == "application/octet-stream"
    assert body["fields"] == ["title", "tags"]
    assert body["files"] == ["doc"]
    assert body["counts"] == [3, 2]
    assert door.wait_until_clean() == []


def test_a_body_read_on_demand_is_parsed_too(door: Door) -> None:
    headers, body = multipart(
        ('Content-Disposition: form-data; name="f"; filename="a.txt"', b"lazy"),
    )
    response = door.client.request("GET", "/echo-lazy", headers=headers, content=body)
    assert response.json()["items"][0][1]["content"] == "lazy"
    assert door.wait_until_clean() == []


def test_files_gives_the_uploads_by_name(door: Door) -> None:
    response = door.client.post(
        "/files",
        data={"not": "a file"},
        files=[("a", ("1.txt", b"1")), ("a", ("2.txt", b"2")), ("b", ("3.txt", b"3"))],
    )
    assert response.json() == {
        "by_name": {"a": ["1.txt", "2.txt"], "b": ["3.txt"]},
        "in_order": ["1.txt", "2.txt", "3.txt"],
        "last_a": "2.txt",
        "items": [["a", "2.txt"], ["b", "3.txt"]],
    }
    assert door.client.post("/files", data={"only": "fields"}).json()["in_order"] == []


def test_an_empty_file_and_an_empty_filename(door: Door) -> None:
    headers, body = multipart(
        ('Content-Disposition: form-data; name="empty"; filename="empty.txt"', b""),
        ('Content-Disposition: form-data; name="none"; filename=""', b""),
    )
    items = door.client.post("/echo", headers=headers, content=body).json()["items"]
    assert items[0][1]["size"] == 0 and items[0][1]["content"] == ""
    assert items[1][1]["filename"] == "" and items[1][1]["extension"] is None


def test_an_rfc_5987_filename_wins_over_the_plain_one(door: Door) -> None:
    headers, body = multipart(
        (
            'Content-Disposition: form-data; name="doc"; filename="fallback.txt"; '
            "filename*=UTF-8''na%C3%AFve%20%E2%82%AC.txt",
            b"x",
        ),
    )
    items = door.client.post("/echo", headers=headers, content=body).json()["items"]
    assert items[0][1]["filename"] == "naïve €.txt"


def test_a_hostile_filename_is_kept_as_text_and_never_used_as_a_path(door: Door) -> None:
    response = door.client.post("/save", files={"doc": ("../../../etc/cron.d/evil", b"payload")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["client_said"] == "../../../etc/cron.d/evil"
    assert Path(body["saved"]) == door.save_dir / "saved.bin"
    assert (door.save_dir / "saved.bin").read_bytes() == b"payload"
    # The saved copy outlives the request; the temporary one does not.
    assert door.wait_until_clean() == []
    assert (door.save_dir / "saved.bin").read_bytes() == b"payload"


def test_url_encoded_forms_still_read_as_a_dict(door: Door) -> None:
    response = door.client.post("/echo", data={"a": "1", "b": "two words"})
    assert response.json()["items"] == [["a", "1"], ["b", "two words"]]


# Limits: 413.


@pytest.mark.parametrize(
    ("limits", "files", "data", "detail"),
    [
        (
            "max_file_size=5",
            {"doc": ("a.txt", b"123456")},
            {},
            'file "doc" exceeds the limit of 5 bytes per file',
        ),
        (
            "max_form_size=100",
            {"doc": ("a.txt", b"x" * 200)},
            {},
            "the form exceeds the limit of 100 bytes",
        ),
        (
            "max_field_size=3",
            {"doc": ("a", b"")},
            {"note": "four"},
            'form field "note" exceeds the limit of 3 bytes per field',
        ),
        (
            "max_fields=2",
            {"doc": ("a", b"")},
            {"a": "1", "b": "2", "c": "3"},
            "the form has more than 2 fields",
        ),
        (
            "max_files=1",
            [("a", ("1", b"1")), ("b", ("2", b"2"))],
            {},
            "the form has more than 1 files",
        ),
    ],
)
def test_limits_give_413_problems(door: Door, limits, files, data, detail) -> None:
    response = door.client.post(f"/limited?{limits}", files=files, data=data)
    assert_problem(response, 413, detail)
    assert door.wait_until_clean() == []


def test_the_default_file_limit_is_10_mib(door: Door) -> None:
    response = door.client.post("/limited", files={"doc": ("big", b"x" * (10 * MiB + 1))})
    # The route keeps the default 10 MiB body limit, which the whole body passes first.
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM


def test_a_negative_limit_is_a_programming_error(door: Door) -> None:
    response = door.client.post("/limited?max_files=-1", files={"doc": ("a", b"1")})
    assert response.status_code == 500


def test_a_large_upload_streams_to_disk(door: Door) -> None:
    """20 MiB through a route whose body limit is raised to 30 MiB: the
    server's peak memory grows by far less than the file."""
    warm = door.client.post("/big", files={"blob": ("warm.bin", os.urandom(2 * MiB))})
    assert warm.status_code == 200, warm.text
    before = door.client.get("/peak-memory").json()["kib"]
    blob = os.urandom(20 * MiB)
    response = door.client.post("/big", files={"blob": ("big.bin", blob, "application/x-raw")})
    assert response.status_code == 200, response.text
    assert response.json() == {"size": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
    if door.name == "native":
        # Only the server process is measured (the ASGI door shares this
        # process with the test client, which holds the whole body).
        after = door.client.get("/peak-memory").json()["kib"]
        assert before is not None and after is not None
        assert (after - before) * 1024 < len(blob) // 2
    assert door.wait_until_clean() == []


def test_the_raw_body_of_a_spooled_form_is_still_there(door: Door) -> None:
    blob = os.urandom(3 * MiB)
    request = door.client.build_request("POST", "/raw", files={"blob": ("b.bin", blob)})
    sent = request.read()
    response = door.client.send(request)
    assert response.json() == {
        "size": len(sent),
        "sha256": hashlib.sha256(sent).hexdigest(),
        "file_size": len(blob),
    }


# Malformed bodies: 400.


@pytest.mark.parametrize(
    ("content_type", "body", "detail"),
    [
        (
            "multipart/form-data",
            b"--XyZ--\r\n",
            "the multipart/form-data Content-Type has no boundary",
        ),
        (
            "multipart/form-data; boundary=XyZ",
            b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\nunfinished',
            'form part "a" ends before its closing boundary',
        ),
        (
            "multipart/form-data; boundary=XyZ",
            b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--XyZ',
            "the multipart body ends before its closing boundary",
        ),
        (
            "multipart/form-data; boundary=XyZ",
            b"not multipart at all",
            "the multipart body ends before its closing boundary",
        ),
        (
            "multipart/form-data; boundary=XyZ",
            b"--XyZ\r\nno colon in this header\r\n\r\n1\r\n--XyZ--\r\n",
            "a form part has malformed headers",
        ),
        (
            "multipart/form-data; boundary=XyZ",
            b"--XyZ\r\nContent-Type: text/plain\r\n\r\n1\r\n--XyZ--\r\n",
            "a form part has no Content-Disposition",
        ),
        (
            "multipart/form-data; boundary=XyZ",
            b'--XyZ\r\nContent-Disposition: form-data; filename="a"\r\n\r\n1\r\n--XyZ--\r\n',
            "a form part has no name in its Content-Disposition",
        ),
        (
            "multipart/form-data; boundary=XyZ",
            b'--XyZ\r\nContent-Disposition: form-data; name="t"\r\n\r\n\xff\xfe\r\n--XyZ--\r\n',
            'form field "t" is not valid UTF-8',
        ),
    ],
)
def test_malformed_multipart_gives_400_problems(door: Door, content_type, body, detail) -> None:
    response = door.client.post("/echo", headers={"content-type": content_type}, content=body)
    assert_problem(response, 400, detail)


def test_a_file_that_is_not_text_gives_400_on_read_text(door: Door) -> None:
    response = door.client.post("/text", files={"doc": ("a.txt", b"\xff\xfe\xfd")})
    assert_problem(response, 400, "uploaded file 'doc' is not valid utf-8")
    ok = door.client.post("/text", files={"doc": ("a.txt", "héllo".encode())})
    assert ok.json() == {"text": "héllo"}


def test_json_is_not_a_form(door: Door) -> None:
    response = door.client.post("/echo", json={"a": 1})
    assert response.status_code == 415


# Temporary files.


def test_temporary_files_go_when_the_handler_fails(door: Door) -> None:
    response = door.client.post("/fails", files={"doc": ("a.txt", b"x" * 2 * MiB)})
    assert response.status_code == 500
    assert door.wait_until_clean() == []


def test_temporary_files_go_with_the_response_even_if_the_handler_keeps_them(
    door: Door,
) -> None:
    response = door.client.post("/keep", files={"doc": ("a.txt", b"kept")})
    assert response.status_code == 200
    assert door.wait_until_clean() == []
    assert door.client.get("/kept").json()["exists"][-1] is False


def test_a_client_leaving_mid_upload_leaves_nothing_behind(door: Door) -> None:
    if door.live is None:
        pytest.skip("a raw socket needs the native server")
    with socket.create_connection(("127.0.0.1", door.live.port)) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=XyZ\r\n"
            b"Content-Length: 5000000\r\n\r\n"
            b'--XyZ\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\n'
            + b"x"
            * (2 * MiB)
        )
    assert door.wait_until_clean() == []
    assert door.client.post("/echo", data={"still": "serving"}).status_code == 200


# The classes on their own.


def test_form_data_and_uploaded_file_in_process(tmp_path: Path) -> None:
    headers, body = multipart(
        ('Content-Disposition: form-data; name="a"', b"1"),
        ('Content-Disposition: form-data; name="f"; filename="dir\\pic.PNG"', b"png"),
        ('Content-Disposition: form-data; name="a"', b"2"),
    )
    request = Request("POST", "/", headers=headers, body=body)
    form = request.form()
    assert isinstance(form, FormData) and isinstance(form, dict)
    assert form is request.form()  # parsed once
    assert form["a"] == "2" and form.getlist("a") == ["1", "2"]
    assert form.get_or("a") == "2" and form.get_or("f", "d") == "d" and form.get_or("zz") is None
    assert form.has_field("a") and not form.has_field("f")
    assert form.has_file("f") and not form.has_file("a")
    upload = form.get_file("f")
    assert isinstance(upload, UploadedFile)
    assert form.get_files() == [upload] and form.get_files("a") == []
    assert upload.extension() == "png" and upload.size == 3 and upload.size() == 3
    assert upload.read() == b"png" and upload.read_text() == "png"
    with upload.open() as f:
        assert f.read(2) == b"pn"
    assert Path(upload.temp_path).parent.name.startswith("cello-upload-")
    saved = upload.save(tmp_path / "kept.png")
    assert saved.read_bytes() == b"png"
    assert (saved.stat().st_mode & 0o777) == 0o600
    upload.save(tmp_path / "kept.png")  # replacing is fine
    temp = Path(upload.temp_path)
    del form, upload
    assert temp.exists()  # the request still holds the form
    del request
    assert not temp.exists() and not temp.parent.exists()
    assert saved.read_bytes() == b"png"


def test_form_data_built_by_hand() -> None:
    assert FormData({"a": "1"}).getlist("a") == ["1"]
    built = FormData([("a", "1"), ("a", "2")])
    assert built == {"a": "2"} and built.multi_items() == [("a", "1"), ("a", "2")]
    assert FormData().field_count() == 0


def test_await_form_and_files_in_process() -> None:
    import asyncio

    headers, body = multipart(('Content-Disposition: form-data; name="f"; filename="x"', b"1"))
    request = Request("POST", "/", headers=headers, body=body)

    async def read() -> tuple[FormData, object]:
        return await request.form(), await request.files()

    form, files = asyncio.run(read())
    upload = form.get_file("f")
    assert upload is not None
    assert list(files) == [upload] and files[0] is upload and files["f"] is upload
    assert "f" in files and "g" not in files and upload in files
    assert files.get("g") is None and files.keys() == ["f"]
    with pytest.raises(KeyError):
        files["g"]


def test_limit_errors_in_process() -> None:
    headers, body = multipart(('Content-Disposition: form-data; name="f"; filename="x"', b"12"))
    request = Request("POST", "/", headers=headers, body=body)
    with pytest.raises(PayloadTooLarge, match="exceeds the limit of 1 bytes per file"):
        request.form(max_file_size=1)
    with pytest.raises(ValueError, match="max_fields must be 0 or more, not -3"):
        request.form(max_fields=-3)
    bad = Request("POST", "/", headers={"content-type": "multipart/form-data"}, body=b"")
    with pytest.raises(BadRequest, match="no boundary"):
        bad.form()


@pytest.fixture(scope="module", params=["native", "asgi"])
def wrapped(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Door]:
    tmp = tmp_path_factory.mktemp(f"uploads-wrapped-{request.param}")
    if request.param == "native":
        with (
            LiveServer("tests.apps.uploads:wrapped", env={"TMPDIR": str(tmp)}) as live,
            httpx.Client(base_url=live.url, timeout=60) as client,
        ):
            yield Door("native", client, tmp, tmp)
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(tmp))
        app = importlib.import_module("tests.apps.uploads").wrapped
        with TestClient(app) as client:
            yield Door("asgi", client, tmp, tmp)


def test_a_middleware_and_its_handler_share_one_parse(wrapped: Door) -> None:
    response = wrapped.client.post("/echo", data={"a": "1"}, files={"doc": ("a.txt", b"x")})
    assert response.status_code == 200
    assert response.headers["x-files"] == "1"
    assert response.json()["items"][1][1]["on_disk"] is True
    assert wrapped.wait_until_clean() == []
    failed = wrapped.client.post("/fails", files={"doc": ("a.txt", b"x" * MiB)})
    assert failed.status_code == 500
    assert wrapped.wait_until_clean() == []


# Property tests: whatever the fields and contents, the parse gives them back.

# Header values carry no control characters (DEL included); quotes and
# backslashes are left out, as clients differ in how they escape them.
_names = st.text(
    st.characters(blacklist_characters='"\\', blacklist_categories=("Cc", "Cs")), min_size=1
)
_parts = st.lists(
    st.tuples(
        _names,
        st.one_of(st.none(), _names),  # a file name, or None for a text field
        st.binary(max_size=300).filter(lambda b: b"\r\n--Bnd" not in b),
    ),
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(_parts)
def test_any_well_formed_form_round_trips(parts) -> None:
    body = b""
    expected = []
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is None:
            content = content.decode("utf-8", "replace").encode()
        else:
            disposition += f'; filename="{filename}"'
        body += b"--Bnd\r\nContent-Disposition: " + disposition.encode() + b"\r\n\r\n"
        body += content + b"\r\n"
        expected.append((name, filename, content))
    body += b"--Bnd--\r\n"
    request = Request(
        "POST", "/", headers={"content-type": "multipart/form-data; boundary=Bnd"}, body=body
    )
    got = [
        (k, None, v.encode()) if isinstance(v, str) else (k, v.filename, v.read())
        for k, v in request.form().multi_items()
    ]
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_any_body_is_a_form_or_a_client_error(body) -> None:
    request = Request(
        "POST",
        "/",
        headers={"content-type": "multipart/form-data; boundary=Bnd"},
        body=b"--Bnd\r\n" + body,
    )
    try:
        request.form()
    except (BadRequest, PayloadTooLarge) as exc:
        assert exc.status_code in (400, 413)
