"""Hypothesis-generated requests against the conformance app: whatever the
request, every door must answer identically."""

from __future__ import annotations

import json
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.doors import comparable

SEGMENTS = ["users", "me", "files", "items", "uuid", "slug", "two", "multi", "things",
            "echo", "query", "json", "text", "body", "form", "path", "ret", "ret-async",
            "dict", "list", "str", "bytes", "none", "tuple2", "resp", "text", "html",
            "xml", "api", "v1", "trailing", "42", "-3", "abc", "hello-world", "stream-list"]  # fmt: skip
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
# Requests sent so far, for the `make conformance` summary.
generated = 0

segment = st.one_of(
    st.sampled_from(SEGMENTS),
    st.text(min_size=1, max_size=12).map(lambda s: quote(s, safe="")),
)
path = st.lists(segment, min_size=0, max_size=5).map("/".join).map(lambda p: "/" + p) | st.just("/")
trailing = st.booleans()
query_item = st.tuples(st.text(max_size=8), st.text(max_size=8)).map(
    lambda kv: f"{quote(kv[0], safe='')}={quote(kv[1], safe='')}"
)
query = st.lists(query_item | st.sampled_from(["flag", "a=1", "a=2", "", "x=%FF"]), max_size=5)
header_name = st.from_regex(r"x-[a-z0-9-]{1,12}", fullmatch=True)
header_value = st.from_regex(r"[!-~]([ !-~]{0,20}[!-~])?", fullmatch=True)
headers = st.lists(st.tuples(header_name, header_value), max_size=4)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
body = st.one_of(
    st.none(),
    st.binary(max_size=200),
    json_value.map(lambda v: json.dumps(v).encode()),
)


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(METHODS),
    path=path,
    slash=trailing,
    query=query,
    headers=headers,
    body=body,
)
def test_doors_agree(doors, method, path, slash, query, headers, body):
    global generated
    generated += 1
    if slash and not path.endswith("/"):
        path += "/"
    target = path + ("?" + "&".join(query) if query else "")
    answers = {
        name: comparable(door.send(method, target, headers, body), name)
        for name, door in doors.items()
    }
    native = answers["native"]
    for name, observed in answers.items():
        assert observed == native, f"{name} differs from native for {method} {target}"
