"""Worker processes: a master binds the socket once, forks the workers that
share it, restarts those that die, and forwards graceful shutdown."""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import sys
import tempfile
import time
import traceback
from collections import deque
from typing import TYPE_CHECKING

from cello import _cello
from cello._server import CANCEL_GRACE, serve, url
from cello._settings import STARTUP_FAILED, ConfigError, RunConfig

if TYPE_CHECKING:
    from cello.types import ServedApp

# SIGHUP reloads the TLS certificate: the master passes it on to each worker.
_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP}


def _say(message: str) -> None:
    print(f"cello: {message}", file=sys.stderr, flush=True)


class Supervisor:
    def __init__(self, app: ServedApp, config: RunConfig, fd: int, udp_fds: list[int]) -> None:
        self.app = app
        self.config = config
        self.fd = fd
        # HTTP/3: one UDP socket per worker slot, bound before any fork.
        self.udp_fds = udp_fds
        self.children: set[int] = set()
        # Each worker's slot: a replacement takes the slot (its UDP socket,
        # its CPU) of the worker it replaces.
        self.slots: dict[int, int] = {}
        self.restarts: deque[float] = deque()
        self.stopping_since: float | None = None
        self.aborted = False
        self.failure = 0
        self.spawned = 0

    def spawn(self) -> None:
        taken = set(self.slots.values())
        slot = next((i for i in range(self.config.workers) if i not in taken), len(taken))
        self.spawned += 1
        pid = os.fork()
        if pid:
            self.children.add(pid)
            self.slots[pid] = slot
            return
        # In the worker. Own process group: a terminal's Ctrl+C reaches only
        # the master, which forwards one signal (two would force an exit).
        code = 1
        try:
            os.setpgid(0, 0)
            if self.config.cluster.cpu_affinity:
                cpus = sorted(os.sched_getaffinity(0))
                os.sched_setaffinity(0, {cpus[slot % len(cpus)]})
            # Dispositions before the unblock: a signal already pending is
            # delivered by the unblock itself, under these.
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            # Until the server installs its reload handler, a SIGHUP passed
            # on by the master must not kill the worker.
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
            # A worker that will not stop is sent SIGABRT first: its threads'
            # Python stacks on stderr say where it hangs.
            faulthandler.enable()
            udp_fd = self.udp_fds[slot % len(self.udp_fds)] if self.udp_fds else None
            serve(self.app, self.config, fd=self.fd, udp_fd=udp_fd)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def signal_children(self, sig: int) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                self.children.discard(pid)

    def abort_children(self) -> None:
        """SIGABRT to each worker in turn, so the stacks they dump do not
        interleave; SIGKILL to one that outlives it."""
        for pid in sorted(self.children):
            try:
                os.kill(pid, signal.SIGABRT)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + ABORT_GRACE
            while time.monotonic() < deadline:
                try:
                    if os.waitpid(pid, os.WNOHANG)[0]:
                        break
                except ChildProcessError:
                    break
                time.sleep(0.02)
            else:
                _say(f"worker {pid} still running after SIGABRT: killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                continue
            self.children.discard(pid)
            self.slots.pop(pid, None)

    def begin_stop(self, sig: int) -> None:
        self.stopping_since = time.monotonic()
        self.signal_children(sig)

    def reap(self) -> None:
        """Collects exited workers, restarting them or starting the stop."""
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                break
            if pid == 0:
                break
            self.children.discard(pid)
            self.slots.pop(pid, None)
            code = os.waitstatus_to_exitcode(status)
            if self.stopping_since is not None:
                continue
            if code == STARTUP_FAILED:
                _say(f"worker {pid} failed during startup; stopping")
                self.begin_stop(signal.SIGTERM)
                self.failure = 1
                continue
            now = time.monotonic()
            window = self.config.cluster.restart_window or 60.0
            while self.restarts and now - self.restarts[0] > window:
                self.restarts.popleft()
            if len(self.restarts) >= self.config.cluster.max_restarts:
                _say(
                    f"worker {pid} exited ({_describe(code)}); "
                    f"{len(self.restarts)} restarts in {window:g}s, giving up"
                )
                self.begin_stop(signal.SIGTERM)
                self.failure = 1
                continue
            self.restarts.append(now)
            _say(f"worker {pid} exited ({_describe(code)}); starting a replacement")
            self.spawn()

    def run(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        for _ in range(self.config.workers):
            self.spawn()
        # A worker's stop: the drain, then up to three bounded cleanup waits
        # (requests cancelled, tasks cancelled, executor), plus its hooks.
        grace = (self.config.cluster.shutdown_timeout or 0.0) + 3 * CANCEL_GRACE + 5.0
        while True:
            info = signal.sigtimedwait(_SIGNALS, 0.5)
            if info is not None and info.si_signo in (signal.SIGINT, signal.SIGTERM):
                if self.stopping_since is not None:
                    _say("second signal: killing workers")
                    self.signal_children(signal.SIGKILL)
                    self.failure = 1
                else:
                    self.begin_stop(info.si_signo)
            elif info is not None and info.si_signo == signal.SIGHUP:
                if self.config.tls is not None and self.stopping_since is None:
                    self.signal_children(signal.SIGHUP)
            self.reap()
            if self.stopping_since is not None:
                if not self.children:
                    return self.failure
                if not self.aborted and time.monotonic() - self.stopping_since > grace:
                    _say(
                        f"workers {sorted(self.children)} did not stop in time: "
                        "aborting them (their stacks follow)"
                    )
                    self.aborted = True
                    self.failure = 1
                    self.abort_children()


# How long a worker sent SIGABRT gets to write its stacks before SIGKILL.
ABORT_GRACE = 5.0


def _describe(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"status {code}"


def supervise(app: ServedApp, config: RunConfig) -> int:
    """Runs ``config.workers`` processes on one socket; returns the exit status."""
    try:
        fd, host, port = _cello.bind_listener(config.host, config.port)
        # HTTP/3: every worker's UDP socket bound now, so the kernel's spread
        # of QUIC clients over them is fixed before the first one arrives (a
        # socket joining later would move clients away from their state).
        udp_fds = (
            [_cello.bind_udp_listener(host, port) for _ in range(config.workers)]
            if config.http3
            else []
        )
    except OSError as exc:
        raise ConfigError(str(exc)) from None
    # State the workers share (sessions' SQLite file) lives in a directory
    # the master makes before forking and removes when the last worker is
    # gone; the workers end with os._exit and never unwind this block.
    with tempfile.TemporaryDirectory(prefix="cello-shared-") as directory:
        before_fork = getattr(app, "_before_fork", None)
        if before_fork is not None:
            before_fork(directory)
        # The supervisor waits for these signals; blocked before the line
        # below, a Ctrl+C right after it is a graceful stop rather than a
        # KeyboardInterrupt in the master.
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        shown = url(host, port, config.tls is not None)
        also = f" and HTTP/3 on UDP port {port}" if config.http3 else ""
        print(
            f"Cello running on {shown}{also} with {config.workers} workers "
            f"(master {os.getpid()}; Press CTRL+C to quit)",
            flush=True,
        )
        return Supervisor(app, config, fd, udp_fds).run()
