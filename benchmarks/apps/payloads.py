"""Bodies shared by every benchmark app and by the runner (stdlib only).

Keeping them in one module means each app serializes exactly the same data
and the runner checks every answer against the same expectation.
"""

# GET /: the classic hello world.
INDEX = {"message": "Hello, World!"}

# GET /query?a=1&b=two answers with both parameters, as strings.
QUERY_PATH = "/query?a=1&b=two"
QUERY = {"a": "1", "b": "two"}


def _echo_body() -> dict:
    # A flat-ish JSON object of about 1 KiB, the kind of payload a form or an
    # API client posts: a few scalar fields and a short list of records.
    return {
        "id": 1234,
        "name": "benchmark",
        "active": True,
        "tags": ["alpha", "beta", "gamma"],
        "items": [{"sku": f"SKU-{i:04d}", "qty": i, "note": "x" * 21} for i in range(16)],
    }


# POST /echo takes this body and answers with the parsed object.
ECHO = _echo_body()

# GET /big returns this list: 1000 small records, about 100 KiB of JSON. The
# app serializes it on every request; nothing is cached as bytes.
BIG = [
    {
        "id": i,
        "name": f"item-{i:05d}",
        "active": i % 2 == 0,
        "tags": ["red", "green"],
        "owner": {"id": i % 97, "login": f"user{i % 97:02d}"},
    }
    for i in range(1000)
]

# The middleware tables. Requests carry an Origin so CORS has work to do, and
# the gzip table asks for gzip alone, so every server picks the same encoding.
ORIGIN = "http://client.example"

# GET /static/big.bin: a 1 MiB file the runner writes into a temporary
# directory at the start of a run (not committed), named to the apps by
# BENCH_STATIC_DIR. Seeded random bytes: the same file on every run, and
# nothing a server could compress or cache by content.
STATIC_FILE = "big.bin"
STATIC_SIZE = 1 << 20


def static_bytes() -> bytes:
    import random

    return random.Random(20240601).randbytes(STATIC_SIZE)


# A Cello app started with a middleware that its build does not have (an
# `App.enable_*` method or config class missing) exits with this code after
# printing why; the runner reports its rows as not available, not failed.
UNAVAILABLE_EXIT_CODE = 3
