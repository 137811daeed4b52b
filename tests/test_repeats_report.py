"""Repeats in the report: the table says '1,285 ± 40 req/s' (mean and 95% Student-t CI across
repeats), the figure has error bars, and runs measured once add nothing."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from tfsbench.bench.results import save_result
from tfsbench.reports.build import build_context, write_report
from tfsbench.reports.dataset import load_sources
from tfsbench.reports.repeats_view import pm, repeat_rows
from tfsbench.reports.synthetic import make_run

from tests.helpers import cli


def repeats(rps: list[float], p99: list[float], concurrency: int = 4, batch: int = 8):
    out = []
    for i, (t, p) in enumerate(zip(rps, p99, strict=True)):
        run = make_run("numeric", batch, concurrency=concurrency, seed=i)
        lat = dataclasses.replace(run.summary.latency_ms, p99=p)
        out.append(dataclasses.replace(run, summary=dataclasses.replace(run.summary, throughput_rps=t,
                                                                        latency_ms=lat)))
    return out


def test_rows_carry_mean_and_student_t_interval() -> None:
    runs = repeats([1250.0, 1285.0, 1320.0], [10.0, 12.0, 14.0]) + repeats([500.0], [5.0], concurrency=1)
    rows = repeat_rows(runs)
    assert len(rows) == 1  # the configuration measured once has no row
    row = rows[0]
    half = 4.302653 * 35.0 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert row.throughput_rps.mean == pytest.approx(1285.0)
    assert row.throughput_rps.half_width == pytest.approx(half, rel=1e-5)
    assert pm(row.throughput_rps, "req/s") == f"1,285 ± {half:,.0f} req/s"
    assert row.p99_ms.high == pytest.approx(12.0 + 4.302653 * 2 / math.sqrt(3), rel=1e-5)


def test_partial_repeats_are_left_out() -> None:
    runs = repeats([100.0, 110.0, 120.0], [1.0, 1.0, 1.0])
    runs[2] = dataclasses.replace(runs[2], partial=True, partial_reason="interrupted")
    assert repeat_rows(runs)[0].n == 2


def test_report_shows_the_table_and_the_error_bar_figure(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    for c in (1, 4):
        for k, run in enumerate(repeats([100.0 * c, 104.0 * c, 98.0 * c], [2.0 * c, 2.2 * c, 2.1 * c],
                                        concurrency=c), start=1):
            save_result(run, d / f"numeric-b8-row-c{c}-r{k}.json")
    ctx = build_context(load_sources([str(d)]))
    files = write_report(ctx, tmp_path / "report")
    html = files.html.read_text()
    assert 'id="repeats"' in html and "Repeats: mean and 95% CI" in html
    assert "403 ± 30 req/s" in html and "3 of 3" in html
    assert (tmp_path / "report" / "repeats.png").stat().st_size > 5000
    assert "± " in files.markdown.read_text()


def test_no_repeats_no_section(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    save_result(make_run("numeric", 1, concurrency=1), d / "a.json")
    ctx = build_context(load_sources([str(d)]))
    assert all(s.id != "repeats" for s in ctx.sections)
    assert all(f.name != "repeats.png" for f in ctx.figures)


@pytest.mark.slow
def test_report_command_wiring(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    for k, run in enumerate(repeats([100.0, 104.0, 98.0], [2.0, 2.2, 2.1]), start=1):
        save_result(run, d / f"r{k}.json")
    res = cli("report", d, "--out", tmp_path / "rep")
    assert res.code == 0, res.stderr
    assert "Repeats: mean and 95% CI" in (tmp_path / "rep" / "report.html").read_text()


def test_runs_of_two_inputs_are_not_repeats(tmp_path: Path) -> None:
    for name, rps in (("before", 100.0), ("after", 130.0)):
        d = tmp_path / name
        d.mkdir()
        save_result(repeats([rps], [2.0])[0], d / "a.json")
    ctx = build_context(load_sources([str(tmp_path / "before"), str(tmp_path / "after")]))
    assert all(s.id != "repeats" for s in ctx.sections)
    assert len(repeat_rows(ctx.runs)) == 1  # without the inputs, the two would be pooled
