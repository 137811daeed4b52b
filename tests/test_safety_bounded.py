"""Every load command is bounded (a duration or a request count, with a sane default) and states the
target and the load before it starts.

Load commands: run, sweep, search, selfbench, demo, and the Locust users in headless mode. The
defaults are read from the real parsers (in-process, nothing sent); the announcements from short
real runs against the embedded target (subprocesses).
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import CliOutcome
from helpers import cli as run_in_process
from tfsbench.bench.measure.runner import check_config, run_benchmark
from tfsbench.bench.results import RunConfig
from tfsbench.payloads.errors import InputError

from tfsbench import cli

ROOT = Path(__file__).resolve().parent.parent
CLOSED = "http://127.0.0.1:9"


def _parse(*argv: str):  # -> argparse.Namespace
    return cli.build_parser().parse_args(list(argv))


def test_the_engine_refuses_an_unbounded_run() -> None:
    unbounded = RunConfig(url=CLOSED, model="m", kind="numeric", batch_size=1, format="row", mode="closed",
                          engine="fast", concurrency=1, duration_s=None, requests_limit=None)
    with pytest.raises(InputError, match="bounded"):
        run_benchmark(unbounded)  # refused before anything is sent (nothing listens there anyway)
    for bad in (dict(duration_s=math.inf), dict(duration_s=8 * 86400.0), dict(duration_s=0.0),
                dict(duration_s=None, requests_limit=0)):
        with pytest.raises(InputError):
            check_config(dataclasses.replace(unbounded, **bad))


def test_run_defaults_to_until_stable_within_60_seconds_or_the_request_count() -> None:
    from tfsbench.commands.run import build_config

    base = ("run", "--url", CLOSED, "--model", "m", "--concurrency", "1", "--out", "x.json")
    config = build_config(_parse(*base))  # measures until stable, bounded by --max-duration (default 60 s)
    assert config.until_stable and config.duration_s == 60.0 and config.requests_limit is None
    config = build_config(_parse(*base, "--requests", "500"))
    assert config.duration_s is None and config.requests_limit == 500
    assert 0 < config.timeout_s <= 3600


def test_sweep_and_search_default_to_10_seconds_per_run() -> None:
    from tfsbench.commands.search import build_base
    from tfsbench.commands.sweep import build_sweep

    sweep = build_sweep(_parse("sweep", "--url", CLOSED, "--model", "m", "--kinds", "numeric", "--batch-sizes",
                               "1,2", "--concurrency", "1,4", "--out", "out"))
    configs = sweep.plan.configs()
    assert len(configs) == 4 and all(c.duration_s == 10.0 for c in configs)
    args = _parse("search", "--slo", "p99<=50ms", "--url", CLOSED, "--model", "m", "--out", "out")
    base = build_base(args)
    assert base.duration_s == 10.0 and args.max_probes == 12


def test_selfbench_and_demo_are_bounded() -> None:
    from tfsbench.pipeline import DemoSettings

    args = _parse("selfbench")
    assert args.duration == 5.0 and args.rounds == 1 and len(args.tools) == 4
    demo = DemoSettings()
    runs = len(demo.kinds) * len(demo.batch_sizes) * len(demo.concurrencies) + demo.search_max_probes + 1
    assert runs * (demo.duration_s + demo.warmup_s) < 600  # minutes, not hours


def _tfsbench(*args: str) -> CliOutcome:
    """In-process (helpers.cli): the announcement lines are main()'s; the entry point is tested elsewhere."""
    return run_in_process(*args, env={"COLUMNS": "200"})


@pytest.mark.slow
def test_run_sweep_and_search_state_target_and_load_first(tfs_url: str, tmp_path: Path) -> None:
    run = _tfsbench("run", "--url", tfs_url, "--model", "numeric", "--concurrency", "2", "--requests", "20",
                    "--warmup", "0", "--quiet", "--out", str(tmp_path / "r.json"))
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    assert lines[0] == f"target: POST {tfs_url}/v1/models/numeric:predict"
    assert lines[1].startswith("load:") and "concurrency 2" in lines[1] and "20 requests" in lines[1]
    sweep = _tfsbench("sweep", "--url", tfs_url, "--model", "numeric", "--kinds", "numeric", "--batch-sizes", "1",
                      "--rates", "20", "--requests", "10", "--warmup", "0", "--no-progress",
                      "--out", str(tmp_path / "sweep"))
    assert sweep.returncode == 0, sweep.stderr
    first = sweep.stderr.splitlines()[0]
    assert first.startswith("sweep: 1 runs against " + tfs_url) and "rates 20 req/s" in first
    search = _tfsbench("search", "--slo", "p99<=1s", "--url", tfs_url, "--model", "numeric", "--lo", "10",
                       "--hi", "20", "--max-probes", "1", "--duration", "0.5s", "--warmup", "0", "--allow-unstable",
                       "--no-progress", "--out", str(tmp_path / "search"))
    assert search.returncode in (0, 1), search.stderr
    first = search.stderr.splitlines()[0]
    assert first.startswith("search: ") and tfs_url in first and "at most 1 probes" in first


LOCUST_PROBE = """
import sys, types
import tfsbench.locustfiles.tfserving as t
from tfsbench.locustfiles.config import UserConfig
cfg = UserConfig(model="numeric", kind="numeric", batch_size=4, format="row")
for run_time, shape in ((None, None), (5, None), (None, object)):
    opts = types.SimpleNamespace(run_time=run_time, num_users=3)
    t._bound_and_announce(types.SimpleNamespace(shape_class=shape), opts, "http://127.0.0.1:1", cfg)
    print("run_time", opts.run_time, flush=True)
"""


@pytest.mark.slow
def test_headless_locust_is_bounded_and_announces() -> None:
    """Locust itself would run forever without -t; our locustfile gives headless runs a default
    (a subprocess: importing locust monkey-patches the interpreter)."""
    proc = subprocess.run([sys.executable, "-c", LOCUST_PROBE], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["run_time 60", "run_time 5", "run_time None"]
    assert proc.stderr.count("target: POST http://127.0.0.1:1/v1/models/numeric:predict") == 3
    loads = [line for line in proc.stderr.splitlines() if line.startswith("load:")]
    assert loads[0] == "load:   numeric b=4 row; 3 users (closed loop), for 60 s; timeout 30 s"
    assert "for 5 s" in loads[1] and "until the load shape ends" in loads[2]
    assert "no -t/--run-time given" in proc.stderr
