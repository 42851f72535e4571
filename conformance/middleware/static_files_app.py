"""The app behind the static files conformance cases: the committed folder
``conformance/middleware/static/`` served under ``/static`` with a cache
setting, precompressed variants and listings, and a route under the same
prefix that missing files fall through to."""

from __future__ import annotations

from pathlib import Path

from cello import App, StaticFilesConfig

ROOT = Path(__file__).resolve().parent / "static"

app = App()
app.enable_static_files(
    StaticFilesConfig("/static", ROOT).cache_str("10m").precompressed().dir_listing()
)


@app.get("/static/dynamic")
def dynamic() -> dict[str, bool]:
    return {"dynamic": True}
