"""The JWT table's Cello app: the benchmark's Cello app (``cello_app.py``,
same handlers), with ``app.enable_jwt(JwtConfig(SECRET))`` when
``BENCH_JWT=1`` and without it otherwise (the no-auth baseline).

Run directly: ``BENCH_JWT=1 PORT=8000 .venv/bin/python benchmarks/apps/cello_jwt_app.py``.
"""

import os

from cello_app import app, unavailable
from jwt_payloads import SECRET

if os.environ.get("BENCH_JWT") == "1":
    if not hasattr(app, "enable_jwt"):
        unavailable("this build of Cello has no App.enable_jwt()")
    from cello import JwtConfig

    app.enable_jwt(JwtConfig(SECRET))


if __name__ == "__main__":
    app.run(
        host="127.0.0.1",
        port=int(os.environ.get("PORT", "8000")),
        env="production",
        logs=False,
    )
