"""What the benchmark ran on, and how busy the machine was meanwhile (other processes share the cores)."""

from __future__ import annotations

import os
import platform
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else what platform says."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe() -> dict[str, Any]:
    """Cores, memory, CPU model, Python and the library versions that matter to the figures."""
    from importlib.metadata import version

    return {
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "packages": {name: version(name) for name in
                     ("dagster", "pandas", "numpy", "scikit-learn", "mlflow", "bentoml", "locust")},
    }


def _own_cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class LoadMeter:
    """How many cores other processes kept busy during a phase: machine busy time minus the benchmark's own."""

    started: float = field(default_factory=time.monotonic)
    busy_start: float = field(default_factory=lambda: _busy_seconds())
    own_start: float = field(default_factory=_own_cpu_seconds)
    load_start: float = field(default_factory=lambda: os.getloadavg()[0])

    def read(self) -> dict[str, float]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        busy = _busy_seconds() - self.busy_start
        own = _own_cpu_seconds() - self.own_start
        return {
            "seconds": round(elapsed, 1),
            "machine_busy_cores": round(busy / elapsed, 2),
            "benchmark_cores": round(own / elapsed, 2),
            "other_processes_cores": round(max(busy - own, 0.0) / elapsed, 2),
            "load_avg_1min_start": round(self.load_start, 2),
            "load_avg_1min_end": round(os.getloadavg()[0], 2),
        }


def _busy_seconds() -> float:
    """CPU seconds all cores spent on anything but idle and iowait since boot."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))
