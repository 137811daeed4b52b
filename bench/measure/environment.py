"""Where a run happened: host, CPUs, Python and package versions, the project's git commit.

Stored in every result so that two runs can be compared knowing whether anything but the code
under test changed. Cheap (< 50 ms) and never fails: unknown things are simply left out.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("tfsbench", "aiohttp", "uvloop", "httptools", "hdrhistogram", "orjson", "numpy", "locust")
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit(root: Path = _PROJECT_ROOT) -> dict[str, Any] | None:
    """The project's commit and whether the tree had local changes (None outside a checkout)."""
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def cpu_model() -> str | None:
    """The CPU's model name (/proc/cpuinfo), or what platform knows, or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask: a pinned or containerised run has fewer)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def collect(target: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `environment` block of a run result; `target` is what preflight learned."""
    usable = usable_cpus()
    env: dict[str, Any] = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": cpu_model(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "packages": _versions(),
    }
    try:
        env["load_avg"] = list(os.getloadavg())
    except OSError:
        pass
    git = git_commit()
    if git:
        env["git"] = git
    if target:
        env["target"] = dict(target)
    return env
