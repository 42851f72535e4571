"""The two-worker caching app (see tests/apps/caching.py)."""

from tests.apps.caching import workers as app

RUN_OPTIONS = {"workers": 2}

__all__ = ["RUN_OPTIONS", "app"]
