"""The ``system`` section of the health report: facts about this process and
its host, read from the standard library (and ``/proc`` where there is one)."""

from __future__ import annotations

import os
import platform
import resource
import socket
import sys
import threading
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes() -> int:
    """Resident memory now (Linux ``/proc``), else the peak the kernel kept."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def system_info(uptime: float) -> dict[str, Any]:
    rss = _rss_bytes()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "python_version": platform.python_version(),
        "platform": sys.platform,
        "cpu_count": os.cpu_count(),
        "uptime_seconds": int(uptime),
        "memory_rss_bytes": rss,
        "memory_mb": round(rss / (1024 * 1024), 1),
        "cpu_time_seconds": round(usage.ru_utime + usage.ru_stime, 3),
        "threads": threading.active_count(),
    }
    if hasattr(os, "getloadavg"):
        try:
            info["load_average"] = [round(x, 2) for x in os.getloadavg()]
        except OSError:
            pass
    return info
