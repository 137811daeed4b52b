"""Synthetic results for the report, compare, plan and demo tests (real HdrHistograms, seeded).

Import the fixtures into a test module with `from reports_fixtures import *  # noqa: F403`.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest
from helpers import ROOT, run_tfsbench
from tfsbench.bench.results import save_result
from tfsbench.reports.synthetic import make_run, write_search, write_sweep

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="session")
def synth(tmp_path_factory) -> dict[str, Path]:
    """A small sweep, a faster 'after' sweep, an SLO search and troubled single runs, on disk."""
    base = tmp_path_factory.mktemp("synth")
    paths = {
        "sweep": base / "sweep",
        "after": base / "after",
        "search": base / "search",
        "bad": base / "bad.json",
        "locust": base / "locust.json",
        "xss": base / "xss.json",
    }
    write_sweep(paths["sweep"], batch_sizes=(1, 8, 32), concurrencies=(1, 4, 16))
    write_sweep(paths["after"], batch_sizes=(1, 8, 32), concurrencies=(1, 4, 16), speed=1.3, seed=11)
    write_search(paths["search"], kind="numeric", batch_size=8, slo_text="p99<=20ms", slo_bound_ms=20.0)
    save_result(make_run("text", 8, concurrency=8, unstable=True, error_rate=0.03), paths["bad"])
    locust = make_run("numeric", 1, concurrency=10, source="locust", with_histogram=False)
    locust = dataclasses.replace(locust, timeseries=())
    save_result(locust, paths["locust"])
    xss = make_run("numeric", 4, concurrency=2, model=XSS)
    xss = dataclasses.replace(
        xss,
        environment={**dict(xss.environment), "hostname": XSS, "server": {"banner": XSS}},
        warnings=(f"server said {XSS}",),
        summary=dataclasses.replace(xss.summary, error_samples=(XSS,)),
    )
    save_result(xss, paths["xss"])
    return paths


def run_cli(*args: object, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """`python -m tfsbench ARGS` (the wiring test of a command); see helpers.cli for in-process calls."""
    return run_tfsbench(*args, timeout=timeout)


def write_doc(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc, encoding="utf-8")
    return path


__all__ = ["ROOT", "XSS", "run_cli", "synth", "write_doc"]
