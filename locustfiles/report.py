"""What the master (or the local runner) does when Locust quits: gates, payload CSV, result files.

- the headless CI bounds (`--slo-p99-ms`, `--max-fail-ratio`, `--min-rps`): each failed bound is
  printed on stderr and `environment.process_exit_code` becomes 1;
- `<csv-prefix>_payload.csv` next to Locust's own CSV files, and `<csv-prefix>_tfsbench.json`,
  a sidecar with what Locust's CSVs cannot hold (exact latency histograms, error classes, the
  payload configuration) that `tfsbench locust-export` reads;
- `--tfs-result FILE`: the run-result JSON directly.

Duck-typed on Locust's environment and stats objects: no locust import.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Any

from tfsbench.bench.results import save_result, write_json_atomic
from tfsbench.locustfiles import config as options
from tfsbench.locustfiles import gates as gates_mod
from tfsbench.locustfiles.metrics import rows_to_csv
from tfsbench.payloads.errors import InputError

logger = logging.getLogger("tfsbench.locust")

SIDECAR_TYPE = "tfsbench.locust-sidecar"
SIDECAR_VERSION = 1


def _errors(stats: Any) -> dict[str, dict[str, int]]:
    """Request name -> failure message -> occurrences."""
    out: dict[str, dict[str, int]] = {}
    for err in getattr(stats, "errors", {}).values():
        message = err.parse_error(err.error) if hasattr(err, "parse_error") else str(err.error)
        per = out.setdefault(str(err.name), {})
        per[message] = per.get(message, 0) + int(err.occurrences)
    return out


def interruption(environment: Any, state: Any) -> str | None:
    """Why the run is partial, or None: it stopped well before its `--run-time` (Ctrl-C, SIGTERM)."""
    run_time = getattr(environment.parsed_options, "run_time", None)
    if not run_time or not state.started_at:
        return None
    elapsed = (state.stopped_at or time.time()) - state.started_at
    if elapsed < float(run_time) - 1.0:
        return f"interrupted after {elapsed:.1f} s of the planned {float(run_time):g} s"
    return None


def _recordable(cfg: Any) -> dict[str, Any] | None:
    """The user config as written to files: --header values (tokens) never leave the process; their
    names say which headers were sent."""
    if cfg is None:
        return None
    doc = dataclasses.asdict(cfg)
    doc["headers"] = [name for name, _ in getattr(cfg, "headers", ())]
    return doc


def sidecar(environment: Any, state: Any) -> dict[str, Any]:
    """Everything export needs that Locust's CSV files do not carry."""
    stats = environment.runner.stats
    total = stats.total
    runner = environment.runner
    cfg = state.cfg
    ended = state.stopped_at or time.time()
    workers = len(state.worker_ids) or 1  # 1: a local runner
    return {
        "type": SIDECAR_TYPE,
        "version": SIDECAR_VERSION,
        "host": state.host or environment.host or "",
        "user_config": _recordable(cfg),
        "user_classes": sorted(u.__name__ for u in environment.user_classes),
        "started_at": state.started_at,
        "ended_at": ended,
        "locust_start_time": getattr(total, "start_time", None),
        "locust_last_request": getattr(total, "last_request_timestamp", None),
        "requests": int(total.num_requests),
        "failures": int(total.num_failures),
        "attempts": int(state.metrics.attempts),
        "partial_reason": interruption(environment, state),
        "max_users": int(max(getattr(runner, "target_user_count", 0) or 0, runner.user_count or 0)),
        "workers": workers,
        "errors": _errors(stats),
        "payload": state.metrics.snapshot(),
    }


def check_gates(environment: Any) -> list[str]:
    """Evaluate the CI bounds on Locust's totals; print and set the exit code when one fails."""
    try:
        g = options.gates(environment.parsed_options)
    except InputError as exc:
        print(f"locust: error: {exc}", file=sys.stderr, flush=True)
        environment.process_exit_code = 2
        return [str(exc)]
    if not g.any:
        return []
    total = environment.runner.stats.total
    p99 = total.get_response_time_percentile(0.99) if total.num_requests else None
    failed = gates_mod.evaluate(g, int(total.num_requests), int(total.num_failures), p99, float(total.total_rps))
    for line in failed:
        print(f"tfsbench gate failed: {line}", file=sys.stderr, flush=True)
    if failed:
        environment.process_exit_code = 1
    else:
        print("tfsbench gates passed", file=sys.stderr, flush=True)
        if environment.process_exit_code is None:
            environment.process_exit_code = 0
    return failed


def finish(environment: Any, state: Any) -> None:
    check_gates(environment)
    reason = interruption(environment, state)
    if reason:
        print(f"tfsbench: run {reason}; results are marked partial", file=sys.stderr, flush=True)
        if environment.process_exit_code != 2:
            environment.process_exit_code = 130
    opts = environment.parsed_options
    elapsed = None
    if state.started_at:
        elapsed = (state.stopped_at or time.time()) - state.started_at
    rows = state.metrics.rows(elapsed)
    prefix = getattr(opts, "csv_prefix", None)
    doc = None
    try:
        if prefix:
            Path(f"{prefix}_payload.csv").parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(f"{prefix}_payload.csv.tmp")
            tmp.write_text(rows_to_csv(rows), encoding="utf-8")
            tmp.replace(f"{prefix}_payload.csv")
            doc = sidecar(environment, state)
            write_json_atomic(f"{prefix}_tfsbench.json", doc)
        out = getattr(opts, "tfs_result", "") or ""
        if out:
            from tfsbench.locustfiles.export import result_from_live

            doc = doc or sidecar(environment, state)
            save_result(result_from_live(environment, doc), out)
            logger.info("wrote run result %s", out)
    except (OSError, InputError) as exc:
        print(f"locust: error: cannot write results: {exc}", file=sys.stderr, flush=True)
        environment.process_exit_code = 2
