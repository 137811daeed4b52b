"""Corrupt or hostile result files: `report`, `compare`, `check` and `plan` exit 0 or 2, never 1 with a
traceback (exit 1 means "gate failed" in CI).

The named cases are the ones found by hand (each crashed before results were validated at load);
the property mutates a real result file and a sweep manifest (types, missing keys, NaN/inf,
negatives, depth) and runs every reading command in-process on it.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tfsbench.bench.results import ResultError, load_result, load_results

from tfsbench import cli

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_RUN = ROOT / "tests" / "fixtures" / "results" / "run-v1.json"
VALID = json.loads(FIXTURE_RUN.read_text())
DEEP = "[" * 100_000 + "]" * 100_000


def run_cli(argv: list[str]) -> tuple[int, str]:
    """`tfsbench ARGV` in this process: (exit status, stderr). Any exception escapes: a traceback."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            status = cli.main(argv)
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 2
    return status, err.getvalue()


def commands(path: Path, out: Path) -> list[list[str]]:
    return [
        ["report", str(path), "--out", str(out / "report")],
        ["compare", str(path), str(path), "--resamples", "50"],
        ["check", str(path), "-t", "p99<100000ms"],
        ["plan", str(path), "--slo", "p99<=50ms", "--target-qps", "100", "--out", str(out / "plan"), "--no-report"],
    ]


def assert_clean(argv: list[str], status: int, stderr: str) -> None:
    where = f"argv={argv!r} status={status!r} stderr={stderr[-1500:]!r}"
    assert "Traceback" not in stderr, where
    allowed = (0, 1, 2) if argv[0] == "check" else (0, 2)  # check: 1 is a gate verdict, not a crash
    assert status in allowed, where
    lines = [line for line in stderr.splitlines() if line.strip()]
    if status == 2:
        assert 1 <= len(lines) <= 4 and "error" in lines[-1], where


def _write(path: Path, doc: Any) -> Path:
    text = json.dumps(doc, allow_nan=True) if not isinstance(doc, str) else doc
    path.write_text(text.replace('"@DEEP@"', DEEP))
    return path


def _with(doc: dict, dotted: str, value: Any) -> dict:
    out = json.loads(json.dumps(doc))
    *parents, last = dotted.split(".")
    node = out
    for key in parents:
        node = node[key]
    node[last] = value
    return out


NAMED_CASES: dict[str, tuple[str, Any, str]] = {
    # case: (field, value, what the one line names)
    "nan_p99": ("summary.latency_ms.p99", math.nan, "summary.latency_ms.p99"),
    "inf_throughput": ("summary.throughput_rps", math.inf, "summary.throughput_rps"),
    "negative_requests": ("summary.requests", -5, "summary.requests"),
    "negative_error_count": ("summary.errors", {"http_503": -2}, "summary.errors"),
    "environment_list": ("environment", [1, 2, 3], "environment"),
    "server_list": ("server", ["x"], "server"),
    "server_bad_latency": ("server", {"found": True, "latency_ms": {"p99": "slow"}}, "server.latency_ms.p99"),
    "server_negative_requests": ("server", {"found": True, "requests": -1}, "server.requests"),
    "deep_environment": ("environment", {"x": "@DEEP@"}, "nested"),
    "deep_but_parseable": ("environment", {"x": json.loads("[" * 200 + "]" * 200)}, "nested deeper"),
    "timeseries_nan": ("timeseries", [{"t_s": 0, "requests": 1, "errors": 0, "p50_ms": math.nan, "p99_ms": 1.0}],
                       "timeseries[0].p50_ms"),
    "warnings_not_strings": ("warnings", [1, {"a": 2}], "warnings"),
    "ok_more_than_requests": ("summary.ok", 10**9, "summary.ok"),
}


@pytest.mark.parametrize("case", sorted(NAMED_CASES))
def test_named_corrupt_results_exit_2_with_one_line(case, tmp_path):
    field, value, named = NAMED_CASES[case]
    path = _write(tmp_path / "bad.json", _with(VALID, field, value))
    with pytest.raises(ResultError, match=f"bad.json.*{named}".replace("[", r"\[").replace("]", r"\]")):
        load_result(path)
    for argv in commands(path, tmp_path):
        status, stderr = run_cli(argv)
        assert status == 2, (argv, status, stderr[-800:])
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "bad.json" in lines[0], (argv, stderr[-800:])
    assert not (tmp_path / "report").exists() and not (tmp_path / "plan").exists()


@pytest.mark.parametrize("manifest", [
    {"runs": [5]}, {"runs": "run.json"}, {"runs": [None]}, {"runs": ["run.json"], "search": [1]},
    {"runs": ["run.json"], "kind": "search", "search": {"best_rate_rps": math.inf}},
    "@DEEP@",
])
def test_corrupt_manifest_exits_2(manifest, tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    shutil.copy(FIXTURE_RUN, sweep / "run.json")
    doc = manifest if isinstance(manifest, str) else {"type": "tfsbench.manifest", "schema_version": 1,
                                                      "kind": "sweep", **manifest}
    _write(sweep / "manifest.json", doc)
    with pytest.raises(ResultError, match="manifest.json"):
        load_results([str(sweep)])
    for argv in commands(sweep, tmp_path):
        status, stderr = run_cli(argv)
        assert status == 2 and "manifest.json" in stderr and "Traceback" not in stderr, (argv, stderr[-800:])


# ---- the property ------------------------------------------------------------------------------


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(VALID)
MUTANTS = st.sampled_from([
    "@DELETE@", None, True, False, 0, -1, -(10**6), 1e308, -1e-9, math.nan, math.inf, -math.inf, "",
    "many", [], [1, "x"], {}, {"a": None}, "@DEEP@", 10**30,
])


@st.composite
def mutated(draw: st.DrawFn) -> dict:
    doc = json.loads(json.dumps(VALID))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        node = doc
        try:
            for key in path[:-1]:
                node = node[key]
            value = draw(MUTANTS)
            if value == "@DELETE@":
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced the parent
    return doc


SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@SETTINGS
@given(doc=mutated(), which=st.sampled_from(["compare", "check", "plan", "report", "compare", "check", "plan"]))
@pytest.mark.slow
def test_mutated_results_exit_0_or_2_without_traceback(doc, which, tmp_path_factory):
    root = tmp_path_factory.mktemp("mut")
    path = _write(root / "run.json", doc)
    argv = next(a for a in commands(path, root) if a[0] == which)
    status, stderr = run_cli(argv)
    assert_clean(argv, status, stderr)
    if status == 2:
        assert not (root / "report").exists() and not (root / "plan").exists()
