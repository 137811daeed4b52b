"""Build a report directory from loaded results: figures (PNG), report.html, summary.md, results.csv,
and plan.json when a plan was made.

Everything is computed in memory first and written only at the end, report.html last, so a failure
halfway leaves no file that looks like a finished report.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tfsbench.bench.results import RunResult, write_bytes_atomic, write_json_atomic
from tfsbench.reports import figures, style
from tfsbench.reports.compare import ComparisonTable, compare_sources
from tfsbench.reports.context import EXTRA_SECTION_MODULES, FigureOut, ReportContext, Section
from tfsbench.reports.dataset import Source, all_runs, run_warnings, source_map
from tfsbench.reports.payload_sizes import gzip_estimates

MAX_TIMESERIES_FIGURES = 3
MAX_COMPARISON_FIGURES = 3

CAPTIONS = {
    "throughput_vs_batch": (
        "Peak throughput by batch size",
        "Higher is better. Each point is the best throughput measured for that batch size over the load "
        "levels tried; where a line flattens, bigger batches stop paying.",
    ),
    "latency_vs_load": (
        "Latency percentiles vs load",
        "Lower is better. Solid lines are p99, dotted lines p50, one colour per batch size. Where the lines "
        "turn upward the server is saturated and more load only adds queueing.",
    ),
    "latency_throughput": (
        "Latency-throughput curve",
        "Each point is one run, in load order. Right is more throughput, up is worse latency. Capacity under "
        "the SLO is the rightmost point below the dashed red line; the star marks the knee (the most "
        "throughput per millisecond of latency).",
    ),
    "latency_spectrum": (
        "Latency distribution (HDR percentile spectrum)",
        "Latency at every percentile from each run's HdrHistogram. The x axis is in nines (50%, 90%, 99%, "
        "99.9%...) so the tail gets room; a curve that shoots up on the right means rare but very slow "
        "requests. Curves stop at the highest percentile the run's request count supports.",
    ),
    "payload_overhead": (
        "Payload overhead on the wire",
        "Left: request bytes per instance against the raw tensor bytes (xN is the overhead factor of JSON, "
        "base64 and the envelope). Right: request body size against batch size (log-log); lines parallel "
        "to the raw-tensor line mean a constant per-instance cost. gzip sizes are recorded by the run or, "
        "when not, measured by regenerating a few of the run's bodies (same spec and seed) and compressing them.",
    ),
    "timeseries": (
        "Time series",
        "Successful requests per second and p50/p99 latency for each second of the run. The grey band is "
        "warmup, not counted. Flat lines mean a stable run; dips, spikes or gaps are stalls or outages.",
    ),
    "comparison": (
        "Comparison",
        "Relative change of throughput and p99 for each matched configuration with its 95% bootstrap "
        "interval. Green is better, red worse, grey within noise (inside the shaded band or an interval "
        "that crosses zero).",
    ),
}


@dataclass(frozen=True, slots=True)
class ReportFiles:
    out_dir: Path
    html: Path
    markdown: Path
    csv: Path
    figures: tuple[Path, ...]
    plan_json: Path | None
    timings_s: dict[str, float]


def _render(name: str, fig, *, title: str | None = None, caption: str | None = None) -> FigureOut | None:
    if fig is None:
        return None
    base = name.split("_")[0] if name.startswith(("timeseries", "comparison")) else name
    t, c = CAPTIONS[base]
    return FigureOut(name=f"{name}.png", title=title or t, caption=caption or c, png=style.png_bytes(fig))


def featured_timeseries(runs: Sequence[RunResult]) -> list[RunResult]:
    """The runs whose second-by-second view is worth a figure: troubled runs first, then the busiest."""
    with_ts = [r for r in runs if len(r.timeseries) >= 2]
    troubled = [r for r in with_ts if r.partial or not r.summary.stable or r.summary.error_count]
    chosen = troubled[: MAX_TIMESERIES_FIGURES - 1]
    if with_ts:
        busiest = max(with_ts, key=lambda r: r.summary.throughput_rps)
        if busiest not in chosen:
            chosen.append(busiest)
    return chosen[:MAX_TIMESERIES_FIGURES]


def make_figures(ctx: ReportContext) -> list[FigureOut]:
    runs = ctx.runs
    # inputs being compared are drawn apart (a line style each); otherwise runs of one configuration
    # from several inputs (e.g. a sweep and a search) form one curve
    src = source_map(ctx.sources) if ctx.comparisons else None
    out: list[FigureOut | None] = [
        _render("throughput_vs_batch", figures.throughput_vs_batch(runs, src)),
        _render("latency_vs_load", figures.latency_vs_load(runs, source_of=src)),
        _render("latency_throughput", figures.latency_throughput(runs, ctx.slo, source_of=src)),
        _render("latency_spectrum", figures.latency_spectrum(runs, source_of=src)),
        _render("payload_overhead", figures.payload_overhead(runs, gzip_estimates(runs))),
    ]
    for i, run in enumerate(featured_timeseries(runs), start=1):
        why = "; ".join(run_warnings(run)[:1])
        out.append(_render(f"timeseries_{i}", figures.timeseries(run),
                           title=f"Time series of {run.config.label_text()} ({run.config.model})",
                           caption=CAPTIONS["timeseries"][1] + (f" Shown because: {why}." if why else
                                                                " Shown as the run with the highest throughput.")))
    for i, table in enumerate(ctx.comparisons[:MAX_COMPARISON_FIGURES], start=1):
        out.append(_render(f"comparison_{i}", figures.comparison(table),
                           title=f"Comparison: {table.other_name} vs {table.baseline_name}"))
    return [f for f in out if f is not None]


def extra_sections(ctx: ReportContext) -> tuple[list[Section], list[FigureOut]]:
    """Sections from optional modules (see tfsbench.reports.context.EXTRA_SECTION_MODULES)."""
    sections, figs = [], []
    for name in EXTRA_SECTION_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        if hasattr(module, "build_figures"):
            figs += list(module.build_figures(ctx) or [])
        section = module.build_section(ctx) if hasattr(module, "build_section") else None
        if section is not None:
            sections.append(section)
    return sections, figs


def build_context(
    sources: Sequence[Source],
    *,
    slo=None,
    plan=None,
    title: str = "tfsbench report",
    compare: bool = True,
    comparisons: Sequence[ComparisonTable] | None = None,
    log: Callable[[str], None] | None = None,
) -> ReportContext:
    """Everything the renderers need, in memory (figures rendered to PNG bytes)."""
    log = log or (lambda _m: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    ctx = ReportContext(title=title, sources=list(sources), runs=all_runs(sources), slo=slo, plan=plan,
                        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    if comparisons is not None:
        ctx.comparisons = list(comparisons)
    elif compare and len(sources) >= 2:
        ctx.comparisons = comparisons_for(sources)
        timings["compare"] = time.perf_counter() - t0
    log(f"rendering figures for {len(ctx.runs)} runs")
    t1 = time.perf_counter()
    ctx.figures = make_figures(ctx)
    timings["figures"] = time.perf_counter() - t1
    sections, extra_figs = extra_sections(ctx)
    ctx.sections = sections
    ctx.figures += extra_figs
    ctx.timings_s = timings
    return ctx


def comparisons_for(sources: Sequence[Source]) -> list[ComparisonTable]:
    """Each later input against the first (the baseline)."""
    base = sources[0]
    tables = [compare_sources(base, other) for other in sources[1:]]
    return [t for t in tables if t.rows]  # inputs with nothing in common with the baseline are not compared


def write_report(ctx: ReportContext, out_dir: str | os.PathLike[str]) -> ReportFiles:
    from tfsbench.reports.html import render_html
    from tfsbench.reports.markdown import render_markdown
    from tfsbench.reports.tables import to_csv

    t0 = time.perf_counter()
    html_text = render_html(ctx)
    md_text = render_markdown(ctx)
    csv_text = to_csv(ctx.runs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig_paths = []
    for fig in ctx.figures:
        path = out / fig.name
        write_bytes_atomic(path, fig.png)
        fig_paths.append(path)
    write_bytes_atomic(out / "results.csv", csv_text.encode("utf-8"))
    write_bytes_atomic(out / "summary.md", md_text.encode("utf-8"))
    plan_path = None
    if ctx.plan is not None:
        plan_path = out / "plan.json"
        write_json_atomic(plan_path, _finite(ctx.plan.to_dict()))
    write_bytes_atomic(out / "report.html", html_text.encode("utf-8"))
    from tfsbench.reports.output_dir import replace_listing

    replace_listing(out, [*fig_paths, out / "results.csv", out / "summary.md", out / "report.html",
                          *([plan_path] if plan_path else [])])
    ctx.timings_s["render+write"] = time.perf_counter() - t0
    return ReportFiles(out_dir=out, html=out / "report.html", markdown=out / "summary.md", csv=out / "results.csv",
                       figures=tuple(fig_paths), plan_json=plan_path, timings_s=dict(ctx.timings_s))


def _finite(obj):
    """JSON has no NaN: replace non-finite floats with None."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None
    return obj


def build_report(sources: Sequence[Source], out_dir: str | os.PathLike[str], **kwargs) -> ReportFiles:
    """Load-free entry point: sources in, report directory out."""
    ctx = build_context(sources, **kwargs)
    return write_report(ctx, out_dir)
