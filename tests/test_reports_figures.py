"""The report's figures: each returns a Figure with units on its axes, honest scales, and the marks
the issue asks for (SLO line and knee, nines axis, warmup band, gaps for outages)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from matplotlib.figure import Figure
from reports_fixtures import synth  # noqa: F401
from tfsbench.bench.results import TimePoint
from tfsbench.bench.stats.slo import parse_slo
from tfsbench.reports import figures, style
from tfsbench.reports.dataset import all_runs, knee_index, load_sources
from tfsbench.reports.latency import buckets, spectrum_ms
from tfsbench.reports.synthetic import make_run


@pytest.fixture(scope="module")
def runs(synth):  # noqa: F811
    return all_runs(load_sources([str(synth["sweep"]), str(synth["search"])]))


def _visible_axes(fig: Figure):
    return [ax for ax in fig.axes if ax.get_visible()]


def _assert_labelled(fig: Figure) -> None:
    for ax in _visible_axes(fig):
        assert ax.get_xlabel(), f"panel {ax.get_title()!r} has no x label"
        assert ax.get_ylabel(), f"panel {ax.get_title()!r} has no y label"
        assert ax.get_title(), "every panel says what it is"


def test_throughput_vs_batch_has_both_units_and_one_line_per_kind(runs) -> None:
    fig = figures.throughput_vs_batch(runs)
    assert isinstance(fig, Figure)
    _assert_labelled(fig)
    ips, rps = _visible_axes(fig)
    assert "instances/s" in ips.get_ylabel() and "requests/s" in rps.get_ylabel()
    assert len(ips.get_lines()) == 3  # numeric, text, image
    assert ips.get_xscale() == "log"  # batch sizes 1..32 on a log2 axis
    assert ips.get_yscale() == "log"  # image vs numeric throughput spans decades
    numeric = ips.get_lines()[0]
    assert list(numeric.get_xdata()) == [1, 8, 32]


def test_latency_throughput_marks_slo_and_knee(runs) -> None:
    slo = parse_slo("p99<=20ms")
    fig = figures.latency_throughput(runs, slo)
    _assert_labelled(fig)
    axes = _visible_axes(fig)
    for ax in axes:
        ys = [line.get_ydata() for line in ax.get_lines()]
        assert any(len(y) == 2 and all(v == 20.0 for v in y) for y in ys), "SLO line at the bound"
    stars = [line for ax in axes for line in ax.get_lines() if line.get_marker() == "*"]
    assert stars, "the knee is marked"
    assert "SLO p99<=20ms" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_knee_is_the_point_of_highest_throughput_per_latency() -> None:
    assert knee_index([100, 200, 300, 310], [1.0, 1.5, 1.8, 10.0]) == 2  # 100, 133, 167, 31
    assert knee_index([], []) is None


def test_spectrum_uses_a_nines_axis_and_stops_where_the_data_does(runs) -> None:
    fig = figures.latency_spectrum(runs)
    _assert_labelled(fig)
    ax = _visible_axes(fig)[0]
    labels = [ax.xaxis.get_major_formatter()(x, 0) for x in ax.xaxis.get_major_locator()()]
    assert labels[:4] == ["50%", "90%", "99%", "99.9%"]
    assert ax.get_yscale() == "log"
    b = buckets(runs[0].histogram)
    ps, values = spectrum_ms(b)
    assert ps[-1] <= 100.0 * (1 - 1 / b.total) + 1e-9
    assert np.all(np.diff(values) >= 0), "latency never decreases along the percentiles"


def test_payload_overhead_is_log_log_and_includes_gzip(runs) -> None:
    fig = figures.payload_overhead(runs)
    bar, line = _visible_axes(fig)
    assert bar.get_yscale() == "log" and line.get_yscale() == "log" and line.get_xscale() == "log"
    labels = [t.get_text() for t in bar.get_legend().get_texts()]
    assert labels == ["raw tensor", "JSON row", "JSON + gzip"]
    assert any("gzip" in (ln.get_label() or "") for ln in line.get_lines())
    _assert_labelled(fig)


def test_timeseries_shades_warmup_and_breaks_lines_at_gaps() -> None:
    run = make_run("numeric", 1, concurrency=2, error_rate=0.01)
    pts = [p for p in run.timeseries if not 3 <= p.t_s <= 5]  # an outage: seconds 3-5 missing
    run = dataclasses.replace(run, timeseries=tuple(pts))
    fig = figures.timeseries(run)
    axes = _visible_axes(fig)
    assert len(axes) == 3  # errors panel because the run had errors
    rps = axes[0].get_lines()[0].get_ydata()
    assert any(math.isnan(v) for v in rps), "the outage is a gap, not a straight line"
    assert axes[0].patches, "warmup band drawn"
    assert "time since" in axes[-1].get_xlabel()


def test_timeseries_without_errors_has_no_empty_errors_panel() -> None:
    run = make_run("numeric", 1, concurrency=2)
    assert len(_visible_axes(figures.timeseries(run))) == 2


def test_runs_without_histogram_or_timeseries_do_not_break_figures(synth) -> None:  # noqa: F811
    locust = all_runs(load_sources([str(synth["locust"])]))
    assert figures.latency_spectrum(locust) is None
    assert figures.timeseries(locust[0]) is None
    assert isinstance(figures.throughput_vs_batch(locust), Figure)
    assert isinstance(figures.latency_vs_load(locust), Figure)


@pytest.mark.slow
def test_figures_render_to_png(runs) -> None:
    png = style.png_bytes(figures.latency_vs_load(runs))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_timeseries_shades_the_seconds_a_run_set_aside() -> None:
    """A run that set its first 2 s aside (summary.settled_s): they are shaded and named, and the x axis
    still reaches the end of the kept window (t_s counts from the measured window's start)."""
    run = make_run("numeric", 1, concurrency=2)
    s = dataclasses.replace(run.summary, settled_s=2.0, measured_s=run.summary.measured_s - 2.0)
    fig = figures.timeseries(dataclasses.replace(run, summary=s))
    ax = _visible_axes(fig)[0]
    assert len(ax.patches) == 2  # the warm-up band and the set-aside one
    assert any("set aside" in t.get_text() for t in ax.texts)
    assert ax.get_xlim()[1] == pytest.approx(run.summary.measured_s)
    assert "the first 2 s set aside" in fig._suptitle.get_text()
    plain = _visible_axes(figures.timeseries(run))[0]
    assert len(plain.patches) == 1 and not any("set aside" in t.get_text() for t in plain.texts)


def test_a_timeseries_point_with_no_latency_is_a_gap() -> None:
    run = make_run("numeric", 1, concurrency=2)
    pts = list(run.timeseries)
    pts[4] = TimePoint(t_s=pts[4].t_s, requests=0, errors=0, p50_ms=None, p99_ms=None)
    fig = figures.timeseries(dataclasses.replace(run, timeseries=tuple(pts)))
    p50 = _visible_axes(fig)[1].get_lines()[0].get_ydata()
    assert math.isnan(p50[4])


def test_a_corrupt_histogram_is_a_warning_not_a_crash() -> None:
    from tfsbench.reports.dataset import run_warnings

    run = dataclasses.replace(make_run("numeric", 1, concurrency=2), histogram="bm90IGEgaGlzdG9ncmFt")
    assert buckets(run.histogram) is None
    assert figures.latency_spectrum([run]) is None
    assert any("could not be decoded" in w for w in run_warnings(run))


def test_payload_overhead_draws_gzip_from_real_results(tfs_url, tmp_path) -> None:
    """Real `run_benchmark` results carry the gzip size in summary.request_gzip_bytes (schema v6), the
    one spelling the figure reads; written and read back as files, as `tfsbench report` does."""
    from tfsbench.bench.measure.runner import run_benchmark
    from tfsbench.bench.results import RunConfig, load_result, save_result

    real = []
    for batch in (1, 8):
        cfg = RunConfig(url=tfs_url, model="numeric", kind="numeric", batch_size=batch, format="row", mode="closed",
                        engine="fast", concurrency=2, requests_limit=60, warmup_s=0.0, pool_size=4)
        result = run_benchmark(cfg)
        save_result(result, tmp_path / f"b{batch}.json")
        real.append(load_result(tmp_path / f"b{batch}.json"))
    for r in real:
        gz = figures.gzip_bytes(r)
        assert gz is not None and gz > 0
        if r.config.batch_size == 8:  # a tiny body grows under gzip's header; a batch of 8 shrinks
            assert gz < r.summary.request_bytes, (gz, r.summary.request_bytes)
        assert "request_bytes_gzip" not in r.config.extra and "request_bytes_gzip" not in r.environment
    bar, line = _visible_axes(figures.payload_overhead(real))
    assert [t.get_text() for t in bar.get_legend().get_texts()] == ["raw tensor", "JSON row", "JSON + gzip"]
    assert any("gzip" in (ln.get_label() or "") for ln in line.get_lines())


def test_v5_results_migrate_to_one_gzip_spelling() -> None:
    """A real v5 file has no gzip size (None, so reports estimate it); v5 synthetic data kept it in
    config.extra['request_bytes_gzip'], which the migration moves into the summary."""
    from pathlib import Path

    from tfsbench.bench.results import RunResult, load_result, migrate
    from tfsbench.reports.payload_sizes import gzip_estimates

    old = load_result(Path(__file__).parent / "fixtures" / "results" / "run-v5.json")
    assert old.summary.request_gzip_bytes is None and figures.gzip_bytes(old) is None
    estimate = gzip_estimates([old])[id(old)]
    assert 0 < estimate < old.summary.request_bytes
    doc = make_run("numeric", 8, concurrency=2).to_dict()
    doc["schema_version"] = 5
    doc["config"]["extra"] = {"request_bytes_gzip": 123.5}
    del doc["summary"]["request_gzip_bytes"]
    assert RunResult.from_dict(migrate(doc)).summary.request_gzip_bytes == 123.5
