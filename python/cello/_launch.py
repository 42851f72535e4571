"""Starting a run: the reloader, the worker supervisor, or one process."""

from __future__ import annotations

from cello import _reload, _server, _workers
from cello._settings import RunConfig
from cello.types import ServedApp


def run_app(app: ServedApp, config: RunConfig) -> None:
    """Serves ``app`` as configured: reloader, supervisor, or one process."""
    _server.check_tls(config)
    if config.reload and not _reload.is_reloaded_child():
        raise SystemExit(_reload.run_reloader(config))
    if config.workers > 1:
        raise SystemExit(_workers.supervise(app, config))
    _server.serve(app, config)
