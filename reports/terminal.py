"""Terminal renderings (rich) of a plan and a comparison: what `tfsbench plan` and `compare` print.

Strings from results go through `rich.markup.escape`, so a model named `[bold]x` prints as typed.
"""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from tfsbench.reports import tables
from tfsbench.reports.compare import METRIC_LABELS, TEST_DESCRIPTION, ComparisonTable
from tfsbench.reports.plan import Plan


def console_for(stream: TextIO | None = None, width: int | None = None) -> Console:
    """A console that stays wide enough for the tables when output goes to a file or a pipe."""
    console = Console(file=stream, width=width, highlight=False, soft_wrap=False)
    if width is None and not console.is_terminal:
        console = Console(file=stream, width=160, highlight=False, soft_wrap=False)
    return console


def print_plan(plan: Plan, console: Console) -> None:
    table = Table(title=f"Capacity plan for SLO {escape(plan.slo)}", title_justify="left", header_style="bold")
    cols = ["configuration", "basis", "capacity req/s", "capacity inst/s", f"{plan.slo_metric} at cap. ms",
            "replicas", "req/s per replica", f"expected {plan.slo_metric} ms"]
    if plan.cost_per_replica_hour is not None:
        cols += ["cost/h", "cost/M pred."]
    for i, c in enumerate(cols):
        table.add_column(c, justify="left" if i < 2 else "right", no_wrap=i < 2)
    for i, c in enumerate(plan.configs):
        name = escape(c.name) + (" [green]*[/]" if i == plan.recommended else "")
        row = [name, escape(c.basis), tables.fmt_num(c.capacity_rps), tables.fmt_num(c.capacity_ips),
               tables.fmt_ms(c.slo_value_at_capacity_ms),
               str(c.replicas) if c.replicas else "[red]not feasible[/]",
               tables.fmt_num(c.per_replica_rps), tables.fmt_ms(c.expected_ms)]
        if plan.cost_per_replica_hour is not None:
            row += [f"{c.cost_per_hour:.2f}" if c.cost_per_hour is not None else "-",
                    f"{c.cost_per_million:.4f}" if c.cost_per_million is not None else "-"]
        table.add_row(*row)
    console.print(table)
    console.print(f"[bold]Recommendation[/] (*): {escape(plan.recommendation)}")
    console.print(f"Formula: {escape(plan.formula)}, headroom {plan.headroom:.0%}.")
    console.print("Assumptions:")
    for a in plan.assumptions:
        console.print(f"  - {escape(a)}")
    warnings = list(plan.warnings) + [f"{c.name}: {w}" for c in plan.configs for w in c.warnings]
    if warnings:
        console.print("[bold yellow]Warnings:[/]")
        for w in warnings:
            console.print(f"  [yellow]![/] {escape(w)}")


def print_comparison(table: ComparisonTable, console: Console) -> None:
    if len(table.rows) == 1:
        row = table.rows[0]
        t = Table(title=escape(row.label), title_justify="left", header_style="bold")
        for c in ("metric", escape(table.baseline_name), escape(table.other_name), "change", "95% interval", "test"):
            t.add_column(c, justify="left" if c in ("metric", "test") else "right")
        for name, m in row.metrics.items():
            ci = f"[{100 * m.ci[0]:+.1f}%, {100 * m.ci[1]:+.1f}%]" if m.ci else "-"
            t.add_row(METRIC_LABELS.get(name, name), _v(name, m.a), _v(name, m.b), _change(m), escape(ci), m.test)
        console.print(t)
    else:
        metrics = ["throughput_rps", "p50", "p99", "p999", "error_rate"]
        t = Table(title=f"{escape(table.other_name)} vs {escape(table.baseline_name)} (values: A -> B)",
                  title_justify="left", header_style="bold")
        t.add_column("configuration", no_wrap=True)
        for m in metrics:
            t.add_column(METRIC_LABELS[m], justify="right")
            t.add_column("change", justify="right")
        for row in table.rows:
            cells = [escape(row.label)]
            for name in metrics:
                m = row.metrics.get(name)
                cells += [f"{_v(name, m.a)} -> {_v(name, m.b)}", _change(m)] if m else ["-", "-"]
            t.add_row(*cells)
        console.print(t)
    counts = table.summary_counts()
    console.print(f"{counts['better']} better, {counts['worse']} worse, {counts['within noise']} within noise "
                  f"({len(table.rows)} matched configuration(s)).")
    if table.unmatched_a or table.unmatched_b:
        console.print(f"[yellow]Not matched:[/] {len(table.unmatched_a)} run(s) only in "
                      f"{escape(table.baseline_name)}, {len(table.unmatched_b)} only in {escape(table.other_name)}.")
    console.print(f"[dim]{escape(TEST_DESCRIPTION)} Noise threshold {table.noise_threshold:.0%}, "
                  f"{table.resamples} resamples.[/]")


def _v(name: str, v: float | None) -> str:
    if v is None:
        return "-"
    if name == "error_rate":
        return f"{v:.2%}"
    if name.startswith("throughput"):
        return tables.fmt_num(v)
    if name == "request_bytes":
        return tables.fmt_bytes(v)
    return tables.fmt_ms(v)


def _change(m) -> str:
    text = escape(m.change_text())
    if not m.significant:
        return f"[dim]{text}[/]"
    return f"[green]{text}[/]" if m.better else f"[red]{text}[/]"
