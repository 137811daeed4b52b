"""Repeats in a report: for each configuration measured more than once (`--repeat N` on run, sweep
or search), the mean and 95% Student-t interval across its repeats of throughput, p99 and the SLO
statistic ("1,285 ± 40 req/s"), as a table and as a figure with error bars.

Repeats are found by the one identity rule of compare, check and plan (bench/stats/pairing.py), so a
report, a gate and a plan agree on which runs are repeats. Partial runs are left out: an
interrupted repeat measured less than its siblings.
"""

from __future__ import annotations

import html as _html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tfsbench.bench.results import RunResult
from tfsbench.bench.stats.intervals import Interval, mean_ci
from tfsbench.bench.stats.pairing import group_repeats
from tfsbench.reports.context import FigureOut, ReportContext, Section

SECTION_ID = "repeats"
TITLE = "Repeats: mean and 95% CI"
FIGURE_NAME = "repeats.png"
CAPTION = ("Each point is the mean of a configuration's repeats; the error bar is the 95% confidence interval "
           "of that mean (Student t, so with 3 repeats it is 4.3 standard errors wide each way). Bars that "
           "overlap a neighbour's mean say the difference is within run-to-run noise.")
MAX_ROWS = 60


@dataclass(frozen=True, slots=True)
class RepeatRow:
    """One configuration's repeats summarised: n, how many were stable, and the intervals."""

    runs: tuple[RunResult, ...]
    throughput_rps: Interval
    p99_ms: Interval
    slo_ms: Interval | None  # the SLO's statistic when the report has an SLO on another metric

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def stable(self) -> int:
        return sum(r.summary.stable for r in self.runs)

    @property
    def name(self) -> str:
        return self.runs[0].config.label_text()


def pm(i: Interval, unit: str = "", digits: int = 0) -> str:
    """'1,285 ± 40 req/s'; a single value has no interval and says so."""
    u = f" {unit}" if unit else ""
    if i.half_width is None:
        return f"{i.mean:,.{digits}f}{u} (n=1)"
    return f"{i.mean:,.{digits}f} ± {i.half_width:,.{digits}f}{u}"


def _ms_digits(value: float) -> int:
    return 0 if value >= 100 else 1 if value >= 10 else 2


def repeat_rows(runs: Sequence[RunResult], slo: Any = None, sources: Sequence[Any] = ()) -> list[RepeatRow]:
    """Configurations with at least two complete repeats, in input order. With `sources` (the
    report's inputs), repeats are looked for within each input: a before and an after sweep are
    not each other's repeats."""
    complete = [r for r in runs if not r.partial and r.summary.ok > 0]
    keep = {id(r) for r in complete}
    per_input = [[r for r in src.runs if id(r) in keep] for src in sources] or [complete]
    groups = [g for rs in per_input for g in group_repeats(rs)]
    out = []
    for group in groups:
        if len(group.runs) < 2:
            continue
        rs = group.runs
        slo_i = None
        if slo is not None and slo.metric != "p99":
            slo_i = mean_ci([slo.value_ms(r.summary) for r in rs])
        out.append(RepeatRow(rs, mean_ci([r.summary.throughput_rps for r in rs]),
                             mean_ci([r.summary.latency_ms.p99 for r in rs]), slo_i))
    return out


def _cells(row: RepeatRow) -> list[str]:
    cells = [row.name, row.runs[0].config.model, str(row.n), f"{row.stable} of {row.n}",
             pm(row.throughput_rps, "req/s", 0 if row.throughput_rps.mean >= 100 else 1),
             pm(row.p99_ms, "ms", _ms_digits(row.p99_ms.mean))]
    if row.slo_ms is not None:
        cells.append(pm(row.slo_ms, "ms", _ms_digits(row.slo_ms.mean)))
    return cells


def _e(value: Any) -> str:
    return _html.escape(str(value), quote=True)


def build_section(ctx: ReportContext) -> Section | None:
    rows = repeat_rows(ctx.runs, ctx.slo, ctx.sources)
    if not rows:
        return None
    head = ["configuration", "model", "repeats", "stable", "throughput", "p99"]
    with_slo = any(r.slo_ms is not None for r in rows)
    if with_slo:
        head.append(f"{ctx.slo.metric} (SLO {ctx.slo})")
    body = [_cells(r) + ([""] if with_slo and r.slo_ms is None else []) for r in rows[:MAX_ROWS]]
    intro = ("Configurations measured more than once. Each cell is the mean across repeats ± the half-width of "
             "its 95% confidence interval (Student t over the repeats' own values): where the configuration's "
             "long-run mean lies, at 95% confidence, given run-to-run noise. The capacity plan uses the conservative end: the low end "
             "of throughput, the high end of latency.")
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    text = ' class="text"'
    trs = "".join("<tr>" + "".join(f"<td{text if i < 2 else ''}>{_e(c)}</td>" for i, c in enumerate(cells))
                  + "</tr>" for cells in body)
    more = (f'<p class="muted">{len(rows) - MAX_ROWS} more configurations in the result files.</p>'
            if len(rows) > MAX_ROWS else "")
    html = f'<p>{_e(intro)}</p><div class="scroll"><table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table></div>{more}'
    md = ("| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n"
          + "\n".join("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in body))
    # no warnings of its own: an unstable repeat is already warned about as a run, and the table's
    # 'stable' column says how many of each configuration's repeats held still
    return Section(SECTION_ID, TITLE, html, f"{intro}\n\n{md}")


def figure(rows: Sequence[RepeatRow]) -> Any:
    """Throughput and p99 against load for each payload configuration, mean with 95% CI error bars."""
    if not rows:
        return None
    from tfsbench.reports import style
    from tfsbench.reports.dataset import load_label, load_of

    series: dict[tuple, list[RepeatRow]] = {}
    for r in rows:
        c = r.runs[0].config
        series.setdefault((c.model, c.kind, c.batch_size, c.encoding, c.mode), []).append(r)
    loads = [load_of(r.runs[0]) for r in rows]
    span = (max(loads) - min(loads)) or max(loads) or 1.0
    with style.styled():
        fig, axes = style.new_figure(2, 1)
        ax_t, ax_l = axes[0]
        for i, ((model, kind, b, enc, _mode), members) in enumerate(series.items()):
            members.sort(key=lambda r: load_of(r.runs[0]))
            # series side by side around each load level, so error bars at one load do not hide each other
            dodge = 0.012 * span * (i - (len(series) - 1) / 2)
            xs = [load_of(r.runs[0]) + dodge for r in members]
            color = style.kind_color(kind, i) if len({k[1] for k in series}) == len(series) else None
            label = f"{kind} b={b} {enc}" + (f" ({model})" if len({k[0] for k in series}) > 1 else "")
            for ax, attr in ((ax_t, "throughput_rps"), (ax_l, "p99_ms")):
                ivs = [getattr(r, attr) for r in members]
                err = [[iv.mean - iv.low if iv.low is not None else 0.0 for iv in ivs],
                       [iv.high - iv.mean if iv.high is not None else 0.0 for iv in ivs]]
                ax.errorbar(xs, [iv.mean for iv in ivs], yerr=err, marker="o", capsize=4, color=color,
                            label=label if ax is ax_t else None)
        modes = {k[4] for k in series}
        xlabel = load_label(modes.pop()) if len(modes) == 1 else "load level"
        ax_t.set(xlabel=xlabel, ylabel="throughput (req/s)", title="Throughput, mean and 95% CI")
        ax_l.set(xlabel=xlabel, ylabel="p99 latency (ms)", title="p99 latency, mean and 95% CI")
        ax_t.set_ylim(bottom=0)
        ax_l.set_ylim(bottom=0)
        ax_t.legend(fontsize="small")
    return fig


def build_figures(ctx: ReportContext) -> list[FigureOut]:
    fig = figure(repeat_rows(ctx.runs, ctx.slo, ctx.sources))
    if fig is None:
        return []
    from tfsbench.reports import style

    return [FigureOut(FIGURE_NAME, TITLE, CAPTION, style.png_bytes(fig))]


__all__ = ["RepeatRow", "build_figures", "build_section", "figure", "pm", "repeat_rows"]
