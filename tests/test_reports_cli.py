"""`tfsbench report` end to end in a subprocess, and every bad input (in-process, `helpers.cli`): one line,
exit 2, no report."""

from __future__ import annotations

import json

import pytest
from helpers import cli
from reports_fixtures import (
    run_cli,
    synth,  # noqa: F401
    write_doc,
)


@pytest.mark.slow
def test_report_writes_everything(synth, tmp_path) -> None:  # noqa: F811
    out = tmp_path / "rep"
    proc = run_cli("report", synth["sweep"], synth["after"], "--out", out, "--slo", "p99<=20ms",
                   "--target-ips", "3000")
    assert proc.returncode == 0, proc.stderr
    for name in ("report.html", "summary.md", "results.csv", "plan.json", "throughput_vs_batch.png",
                 "comparison_1.png"):
        assert (out / name).exists(), name
    assert "report:" in proc.stdout
    page = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="compare-0"' in page and 'id="plan"' in page
    plan = json.loads((out / "plan.json").read_text())
    assert plan["type"] == "tfsbench.plan" and plan["configs"]


def _one_line_exit_2(proc, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def _bad_result_files(tmp_path, synth):  # noqa: F811
    good = json.loads(next(synth["sweep"].glob("numeric-*.json")).read_text())
    newer = dict(good, schema_version=99)
    empty = tmp_path / "empty"
    empty.mkdir()
    return {
        "corrupt": (write_doc(tmp_path / "corrupt.json", '{"type": "tfsbench.run", "schema'), "corrupt JSON"),
        "newer": (write_doc(tmp_path / "newer.json", newer), "newer than this tfsbench supports"),
        "foreign": (write_doc(tmp_path / "foreign.json", {"hello": "world"}), "not a tfsbench result"),
        "empty": (empty, "no result files"),
        "missing": (tmp_path / "nope.json", "no such file"),
        "truncated": (write_doc(tmp_path / "trunc.json", {"type": "tfsbench.run", "schema_version": 1}),
                      "not a valid tfsbench result"),
    }


@pytest.mark.parametrize("case", ["corrupt", "newer", "foreign", "empty", "missing", "truncated"])
def test_bad_results_file_is_one_line_exit_2_and_no_report(case, synth, tmp_path) -> None:  # noqa: F811
    path, message = _bad_result_files(tmp_path, synth)[case]
    out = tmp_path / "out"
    proc = cli("report", synth["sweep"], path, "--out", out)
    _one_line_exit_2(proc, message, path.name)
    assert not (out / "report.html").exists()
    assert not out.exists() or not any(out.iterdir()), "nothing written that looks like a result"


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--slo", "p99 under 100"], "--slo"),
        (["--slo", "p42<=10ms"], "--slo"),
        (["--slo", "p99<=100ms", "--target-qps", "0"], "--target-qps"),
        (["--slo", "p99<=100ms", "--target-ips", "-5"], "--target-ips"),
        (["--slo", "p99<=100ms", "--target-qps", "10", "--headroom", "1.5"], "--headroom"),
        (["--target-qps", "10"], "--slo"),
    ],
)
def test_bad_report_arguments(args, needle, synth, tmp_path) -> None:  # noqa: F811
    out = tmp_path / "out"
    proc = cli("report", synth["sweep"], "--out", out, *args)
    _one_line_exit_2(proc, needle)
    assert not (out / "report.html").exists()


def test_out_that_is_a_file_is_refused(synth, tmp_path) -> None:  # noqa: F811
    f = tmp_path / "file"
    f.write_text("keep me")
    proc = cli("report", synth["sweep"], "--out", f)
    _one_line_exit_2(proc, "--out")
    assert f.read_text() == "keep me"
