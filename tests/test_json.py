"""The JSON writer against orjson: byte-for-byte, over random values."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
import os
import subprocess
import sys
import uuid

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cello._cello import dumps, loads

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.uuids()
    | st.dates()
    # orjson 3.13 writes microseconds 10000-99999 of a bare `time` with five
    # digits ("00:00:00.10000" for 10 ms), a bug Cello does not copy.
    | st.times().filter(lambda t: not 10_000 <= t.microsecond < 100_000)
    | st.datetimes()
    | st.datetimes(timezones=st.just(dt.UTC))
)

values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=6)
        | st.tuples(children, children)
        | st.dictionaries(st.text(), children, max_size=6)
    ),
    max_leaves=30,
)


@settings(max_examples=600, deadline=None)
@given(values)
def test_matches_orjson(value):
    assert dumps(value) == orjson.dumps(value)


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_match_orjson(value):
    assert dumps(value) == orjson.dumps(value)


def test_offsets_and_zones():
    for minutes in (-720, -90, 0, 30, 330, 840):
        tz = dt.timezone(dt.timedelta(minutes=minutes))
        value = dt.datetime(2020, 2, 3, 4, 5, 6, 7, tzinfo=tz)
        assert dumps(value) == orjson.dumps(value)


class Color(enum.Enum):
    RED = 1
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1


class Name(str):
    pass


@dataclasses.dataclass
class Inner:
    when: dt.date
    tags: list[str]


@dataclasses.dataclass
class Outer:
    name: str
    inner: Inner
    color: Color = Color.RED
    extra: dataclasses.InitVar[int] = 0

    def __post_init__(self, extra: int) -> None:
        self.computed = extra


@pytest.mark.parametrize(
    "value",
    [
        [Color.RED, Color.BLUE, Level.LOW],
        {"k": Name("sub")},
        Outer("o", Inner(dt.date(2000, 1, 1), ["a"])),
        {"u": uuid.UUID("12345678-1234-5678-1234-567812345678")},
        [math.nan, -math.inf, -0.0, 1e16, 1.5e-7, 0.00001],
        '\x00\x1f\x7f\u2028\U0001f600"\\/',
    ],
)
def test_supported_types_match_orjson(value):
    assert dumps(value) == orjson.dumps(value)


def test_time_microseconds_are_always_six_digits():
    assert dumps(dt.time(0, 0, 0, 10_000)) == b'"00:00:00.010000"'


def test_pydantic_models_are_written_as_their_dump():
    pydantic = pytest.importorskip("pydantic")

    class Model(pydantic.BaseModel):
        name: str
        when: dt.datetime
        nested: list[int]

    m = Model(name="x", when=dt.datetime(2021, 1, 1, tzinfo=dt.UTC), nested=[1])
    assert dumps(m) == orjson.dumps(m.model_dump())
    assert dumps({"m": [m]}) == orjson.dumps({"m": [m.model_dump()]})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2**64, "Integer exceeds 64-bit range"),
        (-(2**63) - 1, "Integer exceeds 64-bit range"),
        ({1: 2}, "Dict key must be str"),
        ("\ud800", "str is not valid UTF-8: surrogates not allowed"),
        ({1, 2}, "Type is not JSON serializable: set"),
        (b"bytes", "Type is not JSON serializable: bytes"),
        (dt.time(1, tzinfo=dt.UTC), "datetime.time must not have tzinfo set"),
    ],
)
def test_errors_match_orjson(value, message):
    with pytest.raises(TypeError, match=message):
        dumps(value)
    with pytest.raises(TypeError, match=message):
        orjson.dumps(value)


def test_recursion_limit():
    deep: list = []
    node = deep
    for _ in range(300):
        node.append([])
        node = node[0]
    with pytest.raises(TypeError, match="Recursion limit reached"):
        dumps(deep)


@settings(max_examples=300, deadline=None)
@given(values)
def test_loads_reads_what_orjson_writes(value):
    assert loads(orjson.dumps(value)) == orjson.loads(orjson.dumps(value))


def test_loads_errors_are_value_errors():
    with pytest.raises(ValueError, match="line 1 column"):
        loads(b"{")


def test_many_keys_and_key_reuse_match_orjson():
    """Keys are cached between calls (reader and writer): more distinct keys
    than the caches hold, keys that need escaping, equal keys that are
    different objects, and the same parsed keys written again all come out
    exactly as orjson writes them."""
    many = {f"key-{i}": i for i in range(5000)}
    assert dumps(many) == orjson.dumps(many)
    tricky = {'quote"d': 1, "back\\slash": 2, "tab\tkey": 3, "ünï": 4, "x" * 100: 5}
    assert dumps(tricky) == orjson.dumps(tricky)
    rebuilt = {"".join(["ke", "y-1"]): "fresh object, same text"}
    assert dumps(rebuilt) == orjson.dumps(rebuilt)
    for _ in range(3):
        parsed = loads(orjson.dumps([many, tricky]))
        assert parsed == [many, tricky]
        assert dumps(parsed) == orjson.dumps([many, tricky])
    assert dumps(str_subclass_keys()) == orjson.dumps({"plain": 1})


class _Key(str):
    pass


def str_subclass_keys() -> dict:
    return {_Key("plain"): 1}


EMPTIER = """
import dataclasses
from cello._cello import dumps, loads

containers = {}

@dataclasses.dataclass(slots=True)
class Emptier:
    x: int
    y: str

    def __getattribute__(self, name):
        if name == "x":
            containers["dict"].clear()
            containers["list"].clear()
        return object.__getattribute__(self, name)

payload = {"a": Emptier(1, "one"), "b": "x" * 100, "c": [str(i) * 50 for i in range(10)]}
containers["dict"], containers["list"] = payload, []
assert loads(dumps(payload)) == {"a": {"x": 1, "y": "one"}}
items = [Emptier(2, "two"), "y" * 100, {"k": "v" * 100}]
containers["dict"], containers["list"] = {}, items
assert loads(dumps(items)) == [{"x": 2, "y": "two"}]
print("ok")
"""


def test_a_value_that_empties_its_container_while_written_is_safe():
    """Writing a dataclass runs Python code (its attribute access), which may
    drop the dict or list being written, and with it the last reference to
    the dataclass itself: the writer must hold what it still uses. CPython's
    debug allocator poisons freed memory, so a use after free crashes."""
    result = subprocess.run(
        [sys.executable, "-c", EMPTIER],
        env={**os.environ, "PYTHONMALLOC": "debug"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
