"""tfsbench.reports.server_view: the client-vs-server latency section and figure of the report."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from tfsbench.bench.results import save_result
from tfsbench.reports import server_view
from tfsbench.reports.context import ReportContext

from tests.test_check_gates import make_run


def with_server(run, p50: float, p99: float, requests: int | None = None, found: bool = True, error: str | None = None):
    server = {
        "found": found, "error": error, "requests": run.summary.ok if requests is None else requests,
        "latency_ms": {"p50": p50, "p99": p99, "mean": p50} if found else None,
        "request_count_by_status": {"OK": run.summary.ok}, "batching_queuing_latency_ms": None,
    }
    return dataclasses.replace(run, server=server)


def ctx_of(runs) -> ReportContext:
    return ReportContext(title="t", sources=[], runs=list(runs))


def test_no_server_views_no_section() -> None:
    ctx = ctx_of([make_run(n=100)])
    assert server_view.build_section(ctx) is None
    assert server_view.build_figures(ctx) == []


def test_rows_split_client_latency_into_server_and_gap() -> None:
    run = with_server(make_run(median_ms=5.0, n=2000), p50=2.0, p99=4.0)
    (row,) = server_view.rows([run])
    assert row["client_p50"] == pytest.approx(run.summary.latency_ms.p50)
    assert row["gap_p50"] == pytest.approx(run.summary.latency_ms.p50 - 2.0)
    assert row["server_share_p50"] == pytest.approx(2.0 / run.summary.latency_ms.p50)
    section = server_view.build_section(ctx_of([run]))
    assert section is not None and section.id == "server-view"
    assert "server p50" in section.html and "| numeric b=8 row c=4 |" in section.markdown
    assert section.warnings == ()


def test_missing_metrics_and_count_mismatch_are_warned() -> None:
    ok = with_server(make_run(seed=1, n=1000), p50=1.0, p99=2.0, requests=3000)
    missing = with_server(make_run(seed=2, n=1000, batch_size=1), 0, 0, found=False, error="no Prometheus metrics at X")
    section = server_view.build_section(ctx_of([ok, missing]))
    assert section is not None
    assert "1 of 2 run(s) have no server-side latency: no Prometheus metrics at X" in section.html
    assert len(section.warnings) == 1 and "the server counted 3000" in section.warnings[0]


def test_section_escapes_model_names() -> None:
    run = make_run(n=200)
    evil = dataclasses.replace(run, config=dataclasses.replace(run.config, model="<script>x</script>"))
    other = with_server(make_run(n=200, seed=3), 1.0, 2.0)
    section = server_view.build_section(ctx_of([with_server(evil, 1.0, 2.0), other]))
    assert section is not None and "<script>" not in section.html and "&lt;script&gt;" in section.html


def test_figure_renders_a_png(tmp_path: Path) -> None:
    runs = [with_server(make_run(batch_size=b, seed=b, n=500), 0.5 * b, 1.0 * b) for b in (1, 8)]
    (fig,) = server_view.build_figures(ctx_of(runs))
    assert fig.name == "server_view.png" and fig.png.startswith(b"\x89PNG")
    out = Path(__file__).resolve().parent.parent / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "server_view.png").write_bytes(fig.png)


@pytest.mark.slow
def test_report_builder_includes_the_section(tmp_path: Path) -> None:
    from tfsbench.reports.build import build_context
    from tfsbench.reports.dataset import load_sources

    path = tmp_path / "run.json"
    save_result(with_server(make_run(n=500), 1.0, 2.0), path)
    ctx = build_context(load_sources([str(path)]), compare=False)
    assert [s.id for s in ctx.sections] == ["server-view"]
    assert any(f.name == "server_view.png" for f in ctx.figures)


def test_figure_has_a_panel_per_payload_kind_and_one_for_fixed_rate_runs() -> None:
    closed = [with_server(make_run(batch_size=b, seed=b, n=300), 0.5, 1.0) for b in (1, 8)]
    text = dataclasses.replace(closed[0], config=dataclasses.replace(closed[0].config, kind="text", model="text"))
    probe = dataclasses.replace(closed[1], config=dataclasses.replace(
        closed[1].config, mode="open", concurrency=None, rate_rps=500.0))
    fig = server_view.figure([*closed, text, probe])
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles == ["numeric payload, row, closed loop", "text payload, row, closed loop",
                      "numeric payload, row, fixed rate (open loop)"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["b=1 c=4", "b=8 c=4"]
    assert fig.axes[0].get_xlim() == (0.0, 1.0)  # normalised per row: 100% = the client's latency
    labels = [t.get_text() for t in fig.axes[2].texts]
    assert f"p99 {server_view._ms(probe.summary.latency_ms.p99)} ms" in labels


# ---- the server's share is a range, never above 100% (issue 14) --------------------------------


def _demo_like(client_p50: float, client_p99: float):
    """Like the demo's image b=32 c=1: interpolation inside TF Serving's 1.8x buckets puts the server's
    p50 and p99 above the client's (101% and 141%)."""
    run = make_run(median_ms=client_p50, n=400)
    run = dataclasses.replace(run, summary=dataclasses.replace(run.summary, latency_ms=dataclasses.replace(
        run.summary.latency_ms, p50=client_p50, p99=client_p99)))
    run = with_server(run, p50=client_p50 * 1.01, p99=client_p99 * 1.41, requests=400)
    server = dict(run.server)
    server["latency_buckets_us"] = [[client_p50 * 620.0, 0], [client_p50 * 1116.0, 240], [client_p50 * 2009.0, 400],
                                    ["+Inf", 400]]
    return dataclasses.replace(run, server=server)


def test_server_share_is_the_bucket_range_capped_at_the_client() -> None:
    run = _demo_like(100.0, 120.0)
    (row,) = server_view.rows([run])
    p50, p99 = row["share_p50"], row["share_p99"]
    assert p50.low == pytest.approx(0.62) and p50.high == 1.0 and p50.capped
    assert p99.low == pytest.approx(1116 / 1200) and p99.high == 1.0
    assert row["gap_p50"] >= 0 and row["gap_p99"] >= 0
    section = server_view.build_section(ctx_of([run]))
    assert "62–100%" in section.html and "93–100%" in section.html
    assert "never above 100%" in section.html


def test_figure_never_labels_a_share_above_100_percent() -> None:
    import re

    fig = server_view.figure([_demo_like(100.0, 120.0), with_server(make_run(n=300, seed=4), p50=9.9, p99=30.0)])
    labels = [t.get_text() for ax in fig.axes for t in ax.texts]
    shares = [int(n) for label in labels for n in re.findall(r"(\d+)%", label)]
    assert shares and max(shares) <= 100, labels
    assert "62–100%" in labels
    from tfsbench.reports import style

    out = Path(__file__).resolve().parent.parent / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "server_view_range.png").write_bytes(style.png_bytes(fig))


def test_percentile_bounds_from_cumulative_buckets() -> None:
    from tfsbench.bench.stats.coarse import percentile_bounds

    cum = [[3570.47, 0], [6426.84, 2445], [11568.3, 2569], ["+Inf", 2569]]  # a real TF Serving delta
    assert percentile_bounds(cum, 50.0) == (3570.47, 6426.84)
    assert percentile_bounds(cum, 99.0) == (6426.84, 11568.3)
    assert percentile_bounds([[1.0, 0], ["+Inf", 5]], 99.0) == (1.0, float("inf"))
    assert percentile_bounds([["+Inf", 0]], 50.0) is None
