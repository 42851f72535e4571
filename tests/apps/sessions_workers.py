"""``tests.apps.sessions:shared`` under ``run(workers=2)``."""

from tests.apps.sessions import shared as app

RUN_OPTIONS = {"workers": 2}

__all__ = ["RUN_OPTIONS", "app"]
