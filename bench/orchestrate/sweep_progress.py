"""The progress display of a sweep or search: one bar over the planned seconds of the remaining
runs, with an ETA, redrawn on the runner's updates."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from tfsbench.bench.orchestrate.grid import planned_s
from tfsbench.bench.results import RunConfig, RunResult


def one_line(result: RunResult) -> str:
    """Throughput, p50, p99 and errors of a finished run, for logs and the progress display."""
    s = result.summary
    return (f"{s.throughput_rps:.1f} req/s, p50 {s.latency_ms.p50:.2f} ms, p99 {s.latency_ms.p99:.2f} ms, "
            f"{s.error_count} errors{'' if s.stable else ', unstable'}")


class SweepProgress:
    """A rich progress bar over the planned seconds of the remaining runs, with an ETA."""

    def __init__(self, todo: Sequence[tuple[str, RunConfig]], enabled: bool) -> None:
        self.enabled = enabled and bool(todo)
        self.todo = todo
        self.total_s = sum(max(planned_s(c), 0.001) for _, c in todo)
        self.done_s = 0.0
        self.current_s = 0.0
        self.current_cfg: RunConfig | None = None
        self.label = ""
        self._progress: Any = None
        self._task: Any = None
        self._started = time.monotonic()

    def __enter__(self) -> SweepProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=Console(stderr=True), transient=False,
                auto_refresh=False,  # redrawn on progress updates: see tfsbench.commands.run's bar
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("sweep", total=self.total_s)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def start_run(self, index: int, rid: str, cfg: RunConfig) -> None:
        self.current_cfg = cfg
        self.current_s = max(planned_s(cfg), 0.001)
        self.label = f"[{index + 1}/{len(self.todo)}] {rid}"
        self._show(0.0, self.label)

    def update(self, update: Any) -> None:
        if self._progress is None or self.current_cfg is None:
            return
        cfg = self.current_cfg
        elapsed = float(getattr(update, "elapsed_s", 0.0) or 0.0)
        if cfg.duration_s is None and cfg.requests_limit:
            frac = min(1.0, float(getattr(update, "requests", 0) or 0) / cfg.requests_limit)
            elapsed = frac * self.current_s
        phase = getattr(update, "phase", "")
        rps = float(getattr(update, "rps", 0.0) or 0.0)
        errors = int(getattr(update, "errors", 0) or 0)
        self._show(min(elapsed, self.current_s), f"{self.label} {phase} {rps:,.0f} req/s {errors} err")

    def finish_run(self, rid: str, result: RunResult | None) -> None:
        self.done_s += self.current_s
        self.current_cfg = None
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done_s, refresh=True)
            if result is not None:
                self._progress.console.print(f"finished {rid}: {one_line(result)}", soft_wrap=True)

    def _show(self, run_elapsed_s: float, description: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done_s + run_elapsed_s, description=description,
                                  refresh=True)
