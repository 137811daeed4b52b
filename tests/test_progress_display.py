"""Progress bars redraw on the runner's updates, never from a refresh thread of their own.

A one-process run drives its engine in a thread of the same process: a redraw holds the GIL for
about a millisecond, and rich's default refresh thread redraws ten times a second, which made the
open loop's arrivals late (lag p99 doubled at 30k req/s). These tests pin that down without timing:
no thread appears while a bar is shown, and updates still reach the terminal.
"""

from __future__ import annotations

import io
import threading

from rich.console import Console
from tfsbench.bench.measure.runner import ProgressUpdate
from tfsbench.bench.orchestrate.sweep import _SweepProgress
from tfsbench.bench.results import RunConfig

from tfsbench.commands.run import _progress_display


def _update(elapsed: float, requests: int) -> ProgressUpdate:
    return ProgressUpdate(elapsed_s=elapsed, phase="measure", requests=requests, errors=0, rps=1234.0,
                          planned_s=10.0)


def test_run_bar_redraws_on_updates_without_a_refresh_thread() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    before = threading.active_count()
    with _progress_display(console, quiet=False) as update:
        assert threading.active_count() == before
        update(_update(1.0, 1000))
        first = out.getvalue()
        update(_update(2.0, 2345))
        assert threading.active_count() == before
    assert "1,000 req" in first
    assert "2,345 req" in out.getvalue()[len(first):]


def test_sweep_bar_redraws_on_updates_without_a_refresh_thread() -> None:
    out = io.StringIO()
    cfg = RunConfig(url="http://127.0.0.1:1", model="m", kind="numeric", batch_size=1, format="row",
                    mode="closed", engine="fast", concurrency=1, duration_s=10.0, warmup_s=0.0)
    before = threading.active_count()
    bar = _SweepProgress([("r1", cfg)], enabled=True)
    with bar:
        bar._progress.console.file = out  # the bar writes to stderr; capture it here
        assert threading.active_count() == before
        bar.start_run(0, "r1", cfg)
        bar.update(_update(3.0, 3000))
        assert threading.active_count() == before
    assert "1234 req/s" in out.getvalue() or "1,234 req/s" in out.getvalue()
