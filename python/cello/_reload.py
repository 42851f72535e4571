"""``reload=True``: run the app in a child process and restart it whenever a
``.py`` file under the app's directory changes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from cello._settings import ConfigError, RunConfig

_CHILD_MARK = "CELLO_RUN_MAIN"


def is_reloaded_child() -> bool:
    return os.environ.get(_CHILD_MARK) == "true"


def _say(message: str) -> None:
    print(f"cello: {message}", file=sys.stderr, flush=True)


def run_reloader(config: RunConfig) -> int:
    try:
        import watchfiles
    except ImportError:
        raise ConfigError(
            "reload needs the watchfiles package: pip install 'cello[reload]'"
        ) from None

    command = [sys.executable, *sys.orig_argv[1:]]
    env = {**os.environ, _CHILD_MARK: "true"}
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    _say(f"watching {config.reload_dir} for changes to .py files")
    child = subprocess.Popen(command, env=env)
    try:
        for changes in watchfiles.watch(
            config.reload_dir,
            watch_filter=watchfiles.PythonFilter(),
            stop_event=stop,
            rust_timeout=500,
            yield_on_timeout=False,
        ):
            names = ", ".join(sorted({os.path.relpath(p, config.reload_dir) for _, p in changes}))
            _say(f"{names} changed, restarting")
            _stop(child)
            child = subprocess.Popen(command, env=env)
    finally:
        _stop(child)
    return 0


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
