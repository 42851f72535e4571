"""Static files under two prefixes, with routes beside them. The served
folder is made by the test (tests/test_static_files.py) and named in
``CELLO_TEST_STATIC_ROOT`` for the live server."""

from __future__ import annotations

import os
from typing import Any

from cello import App, StaticFilesConfig


def make_app(root: str) -> App:
    app = App()
    # The implementation's order, and the builders.
    app.enable_static_files(
        StaticFilesConfig(root, "/static")
        .cache_str("1h")
        .hide_pattern("*.bak")
        .header("x-static", "1")
    )
    # The documentation's order, through app.use().
    app.use(StaticFilesConfig("/assets", root).precompressed().dir_listing().no_index())

    @app.get("/static/generated.txt")
    def generated() -> str:
        return "from a route"

    @app.post("/static/hello.txt")
    def post_hello() -> dict[str, bool]:
        return {"posted": True}

    return app


def __getattr__(name: str) -> Any:
    # Built on first use, so importing the module needs no folder.
    if name == "app":
        return make_app(os.environ["CELLO_TEST_STATIC_ROOT"])
    raise AttributeError(name)
