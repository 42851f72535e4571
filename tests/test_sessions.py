"""Sessions through both doors (persistence, the cookie's shape, tampered,
forged, replayed and expired cookies, clearing, rotation, caching headers),
two worker processes sharing sessions, the stores, and ``SessionConfig``."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cello
import cello.middleware
from cello import App, Request, SessionConfig, validate_session_config
from cello.middleware import MemoryStore, SessionStore, SqliteStore
from cello.middleware.sessions import SessionMiddleware
from cello.testing import TestClient
from tests.live import LiveServer

COOKIE = re.compile(r"session_id=([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})")
EXPIRED = (
    "session_id=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Lax"
)

Factory = Callable[[], httpx.Client]


def _factory(door: str, target: str) -> Iterator[Factory]:
    """Yields a maker of fresh clients (each its own cookie jar) for one app."""
    opened: list[httpx.Client] = []
    module, _, name = target.partition(":")
    if door == "native":
        with LiveServer(target, "--env", "production") as live:

            def native() -> httpx.Client:
                opened.append(httpx.Client(base_url=live.url, timeout=10))
                return opened[-1]

            yield native
    else:
        import importlib

        app = getattr(importlib.import_module(module), name)

        def asgi() -> httpx.Client:
            opened.append(TestClient(app))
            return opened[-1]

        yield asgi
    for client in opened:
        client.close()


@pytest.fixture(scope="module", params=["native", "asgi"])
def new_client(request: pytest.FixtureRequest) -> Iterator[Factory]:
    yield from _factory(request.param, "tests.apps.sessions:app")


@pytest.fixture(scope="module", params=["native", "asgi"])
def new_strict_client(request: pytest.FixtureRequest) -> Iterator[Factory]:
    yield from _factory(request.param, "tests.apps.sessions:strict")


def _session_cookies(response: httpx.Response) -> list[str]:
    return [c for c in response.headers.get_list("set-cookie") if c.startswith("session_id=")]


def _session_id(response: httpx.Response) -> str:
    (cookie,) = _session_cookies(response)
    match = COOKIE.match(cookie)
    assert match is not None, cookie
    return match.group(1)


def _send_cookie(client: httpx.Client, value: str) -> None:
    client.cookies.clear()
    client.cookies.set("session_id", value)


# -- persistence and the cookie ----------------------------------------------


def test_a_session_persists_across_requests(new_client):
    client = new_client()
    assert client.get("/count").json() == {"count": 1, "new": True}
    assert client.get("/count").json() == {"count": 2, "new": False}
    assert client.get("/count").json() == {"count": 3, "new": False}
    # Another client has its own session.
    assert new_client().get("/count").json() == {"count": 1, "new": True}


def test_the_cookie_is_a_signed_random_id_with_the_configured_attributes(new_client):
    response = new_client().get("/count")
    (cookie,) = _session_cookies(response)
    assert COOKIE.match(cookie), cookie
    _, *attributes = cookie.split("; ")
    assert attributes == ["Max-Age=600", "Path=/", "HttpOnly", "SameSite=Lax"]
    assert response.headers["vary"] == "Cookie"
    assert response.headers["cache-control"] == "private"
    # Two sessions never share an id.
    assert _session_id(new_client().get("/count")) != _session_id(response)


def test_the_default_attributes_are_secure(new_strict_client):
    client = new_strict_client()
    response = client.get("/app/login")
    (cookie,) = _session_cookies(response)
    value, *attributes = cookie.split("; ")
    assert attributes == [
        "Max-Age=86400", "Path=/app", "Domain=example.com", "Secure", "HttpOnly", "SameSite=Lax"
    ]  # fmt: skip
    # The cookie is Secure: a jar would not send it over http, so send it by hand.
    logout = client.get("/app/logout", headers={"Cookie": value})
    assert _session_cookies(logout) == [
        "session_id=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/app; "
        "Domain=example.com; Secure; HttpOnly; SameSite=Lax"
    ]


def test_only_a_changed_session_sends_a_cookie(new_client):
    client = new_client()
    untouched = client.get("/peek")
    assert untouched.json()["data"] == {}
    assert _session_cookies(untouched) == []  # an empty new session is not kept
    client.get("/count")
    read = client.get("/peek")
    assert read.json()["data"] == {"count": 1}
    assert _session_cookies(read) == []
    assert read.headers["vary"] == "Cookie"
    assert "cache-control" not in read.headers


def test_a_public_response_that_sets_the_cookie_becomes_private(new_client):
    response = new_client().get("/cached")
    assert response.headers["cache-control"] == "private, max-age=60"
    assert _session_cookies(response)


def test_a_failed_request_keeps_no_changes(new_client):
    client = new_client()
    client.get("/count")
    assert client.get("/boom").status_code == 500
    assert client.get("/peek").json()["data"] == {"count": 1}


def test_the_apps_python_middleware_sees_the_session(new_client):
    client = new_client()
    assert "x-user" not in client.get("/peek").headers
    client.post("/login", json={"user": "ada"})
    assert client.get("/peek").headers["x-user"] == "ada"


# -- attacks -----------------------------------------------------------------


def test_a_tampered_signature_gets_a_fresh_session(new_client):
    client = new_client()
    client.get("/count")
    client.get("/count")
    session_id = client.get("/peek").json()["id"]
    signed = client.cookies["session_id"]
    forged = signed[:-1] + ("A" if signed[-1] != "A" else "B")
    _send_cookie(client, forged)
    response = client.get("/count")
    assert response.json() == {"count": 1, "new": True}
    assert _session_id(response) != session_id


@pytest.mark.parametrize(
    "cookie",
    ["attacker-chosen-id", "A" * 43, "A" * 43 + "." + "B" * 43, "", "..", "x" * 5000,
     "%C3%A9.%C3%BC", "A" * 43 + ".", "." + "A" * 43],
)  # fmt: skip
def test_a_forged_cookie_is_never_adopted(new_client, cookie):
    client = new_client()
    client.cookies.set("session_id", cookie)
    response = client.get("/count")
    assert response.status_code == 200
    assert response.json() == {"count": 1, "new": True}
    assert _session_id(response) not in cookie


def test_fixation_a_validly_signed_unknown_id_is_not_adopted(new_client):
    # Signed with the app's secret (as if the secret leaked to sign an id the
    # store never issued): still a fresh session under a new id.
    planted = "P" * 43
    signed = SessionMiddleware(SessionConfig(secret="test-secret")).sign(planted)
    client = new_client()
    _send_cookie(client, signed)
    response = client.get("/count")
    assert response.json() == {"count": 1, "new": True}
    assert _session_id(response) != planted


def test_an_expired_session_starts_afresh(new_client):
    client = new_client()
    client.get("/count")
    client.get("/advance", params={"seconds": 599})
    assert client.get("/count").json() == {"count": 2, "new": False}  # saved again: 600 s more
    client.get("/advance", params={"seconds": 601})
    response = client.get("/count")
    assert response.json() == {"count": 1, "new": True}


def test_marking_a_session_modified_extends_it(new_client):
    client = new_client()
    client.get("/count")
    client.get("/advance", params={"seconds": 500})
    touched = client.get("/touch")
    assert touched.json() == {"data": {"count": 1}}
    assert _session_cookies(touched)
    client.get("/advance", params={"seconds": 500})
    assert client.get("/peek").json()["data"] == {"count": 1}
    assert _session_cookies(client.get("/peek")) == []  # reading does not extend it
    client.get("/advance", params={"seconds": 101})
    assert client.get("/peek").json()["data"] == {}


# -- clear and regenerate -----------------------------------------------------


def test_clear_deletes_the_session_and_expires_the_cookie(new_client):
    client = new_client()
    client.post("/login", json={"user": "ada"})
    old_cookie = client.cookies["session_id"]
    response = client.post("/logout")
    assert response.json() == {"data": {}}
    assert _session_cookies(response) == [EXPIRED]
    assert "session_id" not in client.cookies
    # Replaying the cookie from before the logout finds nothing.
    _send_cookie(client, old_cookie)
    replay = client.get("/peek")
    assert replay.json()["data"] == {}
    assert replay.json()["id"] != COOKIE.match(f"session_id={old_cookie}").group(1)


def test_removing_the_last_key_ends_the_session(new_client):
    client = new_client()
    client.get("/count")
    response = client.post("/forget")
    assert response.json() == {"data": {}}
    assert _session_cookies(response) == [EXPIRED]


def test_regenerate_moves_the_data_to_a_new_id(new_client):
    client = new_client()
    first = _session_id(client.get("/count"))
    old_cookie = client.cookies["session_id"]
    login = client.post("/login", json={"user": "ada"})
    assert login.json()["user"] == "ada"
    second = _session_id(login)
    assert second != first
    assert login.json()["id"] == second  # request.context["session_id"] follows
    assert client.get("/peek").json() == {"data": {"count": 1, "user": "ada"}, "id": second}
    # The id from before the login is dead: an attacker who planted it gets nothing.
    _send_cookie(client, old_cookie)
    assert client.get("/peek").json()["data"] == {}


def test_rotate_is_regenerate(new_client):
    client = new_client()
    first = _session_id(client.get("/count"))
    response = client.post("/rotate")
    assert response.json()["id"] == _session_id(response) != first
    assert client.get("/count").json() == {"count": 2, "new": False}


# -- workers -----------------------------------------------------------------


def test_two_workers_share_sessions(tmp_path):
    # No store and no secret given: the master makes both before forking,
    # so a cookie one worker signed and saved is good in the other.
    env = {"TMPDIR": str(tmp_path)}
    with LiveServer("tests.apps.sessions_workers:app", "--env", "production", env=env) as live:
        assert "with 2 workers" in "".join(live.output)
        (shared,) = tmp_path.glob("cello-shared-*")
        assert (shared / "sessions.sqlite3").is_file()
        assert shared.stat().st_mode & 0o077 == 0  # only the server's user may open it
        cookies = httpx.Cookies()
        workers = set()
        for expected in range(1, 201):
            # A new connection each time, so either worker may answer.
            with httpx.Client(base_url=live.url, cookies=cookies, timeout=10) as client:
                response = client.get("/count")
                cookies = client.cookies
            assert response.json()["count"] == expected
            workers.add(response.json()["worker"])
            if len(workers) == 2 and expected >= 20:
                break
        assert len(workers) == 2
        assert live.stop() == 0
    assert not shared.exists()  # removed when the server stopped


# -- without sessions ----------------------------------------------------------


def test_request_session_without_sessions_says_how_to_enable_them():
    with pytest.raises(RuntimeError, match=r"app\.enable_sessions\("):
        _ = Request("GET", "/").session


# -- configuration -------------------------------------------------------------


def test_the_exports():
    assert cello.SessionConfig is cello.middleware.SessionConfig is SessionConfig
    assert cello.validate_session_config is validate_session_config
    for name in ("SessionConfig", "CsrfConfig", "MemoryStore", "SqliteStore", "SessionStore",
                 "csrf_input", "csrf_meta"):  # fmt: skip
        assert name in cello.middleware.__all__


def test_session_config_defaults_and_aliases():
    config = SessionConfig()
    assert (config.secret, config.cookie_name, config.cookie_path, config.cookie_domain) == (
        None, "session_id", "/", None
    )  # fmt: skip
    assert (config.cookie_secure, config.cookie_http_only, config.cookie_same_site) == (
        True, True, "Lax"
    )  # fmt: skip
    assert (config.max_age, config.store) == (86400, None)
    aliased = SessionConfig(
        secret="s", httponly=False, secure=False, same_site="Strict", path="/a", domain="x.org"
    )
    assert aliased.cookie_http_only is False and aliased.http_only is False
    assert aliased.cookie_secure is False and aliased.secure is False
    assert aliased.cookie_same_site == aliased.same_site == "Strict"
    assert aliased.cookie_path == aliased.path == "/a"
    assert aliased.cookie_domain == aliased.domain == "x.org"
    assert SessionConfig(http_only=False).cookie_http_only is False
    aliased.secure = True
    assert aliased.cookie_secure is True
    aliased.max_age = 60
    assert aliased.max_age == 60


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cookie_name": ""}, "cookie_name"),
        ({"cookie_same_site": "Sometimes"}, "cookie_same_site"),
        ({"same_site": None}, "cookie_same_site"),
        ({"cookie_same_site": "None", "cookie_secure": False}, "needs cookie_secure=True"),
        ({"max_age": -1}, "max_age"),
        ({"max_age": 0}, "max_age"),
        ({"max_age": True}, "max_age"),
        ({"max_age": 1.5}, "max_age"),
        ({"secret": ""}, "secret"),
        ({"secret": 42}, "secret"),
        ({"cookie_path": "app"}, "cookie_path"),
        ({"cookie_domain": ""}, "cookie_domain"),
        ({"store": object()}, "store"),
    ],
)
def test_bad_session_config_is_a_value_error_naming_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        SessionConfig(**options)


def test_validate_session_config_sees_attributes_set_later():
    config = SessionConfig()
    config.cookie_name = ""
    with pytest.raises(ValueError, match="cookie_name"):
        validate_session_config(config)
    with pytest.raises(ValueError, match="cookie_name"):
        App().enable_sessions(config)
    config.cookie_name = "sid"
    config.cookie_same_site = "none"
    config.secure = False
    with pytest.raises(ValueError, match="needs cookie_secure"):
        validate_session_config(config)


def test_enable_sessions_arguments():
    with pytest.raises(TypeError, match="unexpected keyword argument 'cookie'"):
        SessionConfig(cookie="x")
    with pytest.raises(ValueError, match="takes a SessionConfig"):
        App().enable_sessions({"secret": "x"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not both"):
        App().enable_sessions(SessionConfig(), secret="x")
    app = App()
    app.enable_session(secret="x", secure=False)  # options build a config


def test_without_a_secret_each_start_has_its_own_key():
    config = SessionConfig()
    first, second = SessionMiddleware(config), SessionMiddleware(config)
    session_id = "A" * 43
    assert first.sign(session_id) != second.sign(session_id)
    assert first.unsign(first.sign(session_id)) == session_id
    assert second.unsign(first.sign(session_id)) is None


# -- stores --------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _store_contract(store: SessionStore, clock: Clock) -> None:
    async def check() -> None:
        assert isinstance(store, SessionStore)
        assert await store.load("missing") is None
        await store.save("a", {"user": "ada", "n": [1, 2]}, 10)
        assert await store.load("a") == {"user": "ada", "n": [1, 2]}
        await store.save("a", {"user": "bob"}, 10)
        assert await store.load("a") == {"user": "bob"}
        clock.now += 9
        assert await store.load("a") == {"user": "bob"}
        clock.now += 1
        assert await store.load("a") is None  # expired
        await store.save("b", {}, 10)
        await store.delete("b")
        await store.delete("b")  # an unknown id is no error
        assert await store.load("b") is None
        with pytest.raises(TypeError, match="JSON-serialisable"):
            await store.save("c", {"when": object()}, 10)

    asyncio.run(check())


def test_memory_store_contract():
    clock = Clock()
    _store_contract(MemoryStore(clock=clock), clock)


def test_sqlite_store_contract(tmp_path):
    clock = Clock()
    store = SqliteStore(tmp_path / "sessions.db", clock=clock)
    try:
        _store_contract(store, clock)
    finally:
        store.close()


def test_sqlite_store_is_shared_by_two_instances_of_one_file(tmp_path):
    async def check() -> None:
        first = SqliteStore(tmp_path / "s.db")
        second = SqliteStore(str(tmp_path / "s.db"))
        await first.save("a", {"x": 1}, 60)
        assert await second.load("a") == {"x": 1}
        await second.delete("a")
        assert await first.load("a") is None
        first.close()
        second.close()

    asyncio.run(check())


def test_memory_store_is_bounded():
    async def check() -> None:
        clock = Clock()
        store = MemoryStore(max_entries=3, clock=clock)
        await store.save("old", {}, 5)
        for name in ("a", "b", "c"):
            await store.save(name, {}, 100)
        assert len(store) == 3
        assert await store.load("old") is None  # the least recently saved went first
        clock.now += 50
        await store.save("d", {}, 10)
        await store.save("a", {}, 100)  # saving again makes it recent
        await store.save("e", {}, 100)
        assert len(store) == 3
        assert await store.load("b") is None
        assert await store.load("a") == {}

    asyncio.run(check())


@pytest.mark.parametrize("bad", [0, -1, True, "10"])
def test_store_options_are_checked(bad, tmp_path):
    with pytest.raises(ValueError, match="max_entries"):
        MemoryStore(max_entries=bad)
    with pytest.raises(ValueError, match="SqliteStore path"):
        SqliteStore("")


@pytest.mark.parametrize(
    ("given", "sent"),
    [(None, "private"), ("public, max-age=60", "private, max-age=60"),
     ("public, s-maxage=600, max-age=60", "private, max-age=60"), ("no-store", "no-store"),
     ("private, max-age=5", "private, max-age=5"), ("max-age=0, must-revalidate",
     "private, max-age=0, must-revalidate")],
)  # fmt: skip
def test_cache_control_of_a_response_that_sets_the_cookie(given, sent):
    from cello.middleware.sessions import _cache_control_for_cookie

    assert _cache_control_for_cookie(given) == sent


@settings(max_examples=300, deadline=None)
@given(cookie=st.one_of(st.none(), st.text(max_size=200)))
def test_unsign_accepts_only_cookies_it_signed(cookie):
    middleware = SessionMiddleware(SessionConfig(secret="s"))
    assert middleware.unsign(cookie) is None
    session_id = "Q" * 43
    assert middleware.unsign(middleware.sign(session_id)) == session_id


def test_sqlite_store_close_releases_its_connection_and_reopens_on_use(tmp_path):
    async def check() -> None:
        store = SqliteStore(tmp_path / "s.db")
        await store.save("a", {"x": 1}, 60)
        store.close()
        assert store._connection is None and store._executor is None
        store.close()  # a second close is a no-op
        assert await store.load("a") == {"x": 1}
        store.close()

    asyncio.run(check())
