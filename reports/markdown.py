"""summary.md: the report in GitHub-flavoured Markdown, for a CI job summary or a pull-request comment.

Cells are escaped for Markdown tables and for the HTML that GitHub renders inside Markdown.
"""

from __future__ import annotations

import html as _html
from collections.abc import Sequence

from tfsbench.reports import tables
from tfsbench.reports.compare import METRIC_LABELS, TEST_DESCRIPTION, ComparisonTable
from tfsbench.reports.context import ReportContext
from tfsbench.reports.dataset import load_of, report_warnings
from tfsbench.reports.html import KIND_ORDER, findings
from tfsbench.reports.plan import Plan
from tfsbench.reports.trust import how_sure

MAX_WARNINGS = 15


def md(value: object) -> str:
    """Escape a string for a Markdown table cell (pipes, HTML, emphasis, newlines)."""
    text = _html.escape("" if value is None else str(value), quote=False)
    for ch in ("\\", "|", "*", "_", "`", "[", "]"):
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", " ").replace("\r", " ")


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(md(h) for h in head) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
    lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def plan_markdown(plan: Plan) -> str:
    head = ["configuration", "basis", "capacity (req/s)", "replicas", f"expected {plan.slo_metric} (ms)"]
    if plan.cost_per_replica_hour is not None:
        head.append("cost / M predictions")
    rows = []
    for i, c in enumerate(plan.configs):
        row = [c.name + (" (recommended)" if i == plan.recommended else ""), c.basis, tables.fmt_num(c.capacity_rps),
               str(c.replicas) if c.replicas else "not feasible", tables.fmt_ms(c.expected_ms)]
        if plan.cost_per_replica_hour is not None:
            row.append(f"{c.cost_per_million:.4f}" if c.cost_per_million is not None else "-")
        rows.append(row)
    return "\n\n".join([
        "## Capacity plan",
        f"**Recommendation.** {md(plan.recommendation)}",
        f"SLO {md(plan.slo)}, headroom {plan.headroom:.0%}; {md(plan.formula)}.",
        _table(head, rows),
    ])


def comparison_markdown(table: ComparisonTable) -> str:
    metrics = ["throughput_rps", "p50", "p99", "error_rate"]
    head = ["configuration"] + [f"{METRIC_LABELS[m]} change" for m in metrics]
    rows = [[r.label] + [r.metrics[m].change_text() if m in r.metrics else "-" for m in metrics] for r in table.rows]
    c = table.summary_counts()
    return "\n\n".join([
        f"## Comparison: {md(table.other_name)} vs {md(table.baseline_name)}",
        f"{c['better']} better, {c['worse']} worse, {c['within noise']} within noise. {md(TEST_DESCRIPTION)}",
        _table(head, rows),
    ])


def render_markdown(ctx: ReportContext) -> str:
    out = [f"# {md(ctx.title)}", f"{len(ctx.runs)} runs from {len(ctx.sources)} input(s); generated {md(ctx.generated_at)}."]
    if how_sure(ctx.runs):
        out.append(f"**How sure:** {md(how_sure(ctx.runs))}")
    warns = report_warnings(ctx.runs)
    if ctx.plan is not None:
        warns += [("plan", w) for w in ctx.plan.warnings]
    for s in ctx.sections:
        warns += [(s.title, w) for w in s.warnings]
    if warns:
        lines = [f"- **{md(who)}**: {md(w)}" for who, w in warns[:MAX_WARNINGS]]
        if len(warns) > MAX_WARNINGS:
            lines.append(f"- ... and {len(warns) - MAX_WARNINGS} more (see report.html)")
        out.append(f"> **Warnings ({len(warns)})**\n\n" + "\n".join(lines))
    f = findings(ctx.runs)
    if f:
        out.append("## Key numbers\n\n" + "\n".join(f"- {md(x)}" for x in f))
    if ctx.plan is not None:
        out.append(plan_markdown(ctx.plan))
    for t in ctx.comparisons:
        out.append(comparison_markdown(t))
    with_model = tables.needs_model_column(ctx.runs)
    rows = [tables.display_row(r, with_model=with_model)
            for r in sorted(ctx.runs, key=lambda r: (KIND_ORDER.get(r.config.kind, 9), r.config.kind, r.config.model,
                                                     r.config.batch_size, r.config.format, load_of(r)))]
    out.append("## Summary\n\n" + _table(tables.headings(), rows))
    for s in ctx.sections:
        if s.markdown:
            out.append(f"## {md(s.title)}\n\n{s.markdown}")
    if ctx.figures:
        out.append("Figures: " + ", ".join(md(fig.name) for fig in ctx.figures) + " (and report.html).")
    return "\n\n".join(out) + "\n"
