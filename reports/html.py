"""report.html: one self-contained page (inline CSS, figures as PNG data URIs, no scripts, no
network), rendered from Jinja2 templates in reports/templates/ with autoescape on.

This module only shapes data: tables are `Table(head, rows)` of plain strings or `Cell(text, cls)`,
and the templates escape every one of them. The only markup that passes unescaped is a Section's
`html` fragment, which its own module builds and escapes (see reports.context.Section).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from tfsbench.bench.results import SCHEMA_VERSION, RunResult
from tfsbench.reports import tables
from tfsbench.reports.compare import METRIC_LABELS, TEST_DESCRIPTION, ComparisonTable
from tfsbench.reports.context import ReportContext
from tfsbench.reports.dataset import load_of, report_warnings
from tfsbench.reports.plan import Plan
from tfsbench.reports.trust import how_sure

MAX_WARNINGS_SHOWN = 12
KIND_ORDER = {"numeric": 0, "text": 1, "image": 2}
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True, slots=True)
class Cell:
    """A table cell with a CSS class (status-bad, status-warn, better, worse, noise)."""

    text: str
    cls: str = ""


@dataclass(frozen=True, slots=True)
class Table:
    """What the `table` macro draws. A column added here (say '± CI') needs no template change."""

    head: Sequence[str]
    rows: Sequence[Sequence[str | Cell]]
    text_cols: frozenset[int] = field(default_factory=frozenset)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The templates' environment: autoescape for every template, undefined names are errors."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def _table(head: Sequence[str], rows: Iterable[Sequence[str | Cell]], *, text_cols: Iterable[int] = ()) -> Table:
    return Table(head=list(head), rows=[list(r) for r in rows], text_cols=frozenset(text_cols))


# ---- sections ---------------------------------------------------------------------------------


def _warnings(ctx: ReportContext) -> dict[str, Any] | None:
    items: list[tuple[str, str]] = report_warnings(ctx.runs)
    for section in ctx.sections:
        items += [(section.title, w) for w in section.warnings]
    if ctx.plan is not None:
        items += [("plan", w) for w in ctx.plan.warnings]
    for src in getattr(ctx, "sources", None) or ():  # sweeps' over-saturation stops (bench/orchestrate/saturation.py)
        skipped = (src.manifest or {}).get("saturated") or {}
        if isinstance(skipped, dict) and skipped:
            rule = src.manifest.get("saturation_rule") or "throughput stopped rising while latency kept climbing"
            items.append((f"sweep {src.path}", f"over-saturation stop: {rule}"))
            items += [(f"sweep {src.path}", f"{rid} not run: {why}") for rid, why in skipped.items()]
    if not items:
        return None
    unstable = sum(1 for r in ctx.runs if not r.summary.stable)
    partial = sum(1 for r in ctx.runs if r.partial)
    errors = sum(1 for r in ctx.runs if r.summary.error_count)
    saturated = sum(1 for r in ctx.runs if r.summary.client_saturated)
    counts = [f"{n} {what}" for n, what in ((unstable, "unstable"), (partial, "partial"),
                                            (errors, "with errors"), (saturated, "load-generator saturated")) if n]
    return {"total": len(items), "head": f"{len(ctx.runs)} runs" + (": " + ", ".join(counts) if counts else ""),
            "shown": items[:MAX_WARNINGS_SHOWN], "rest": items[MAX_WARNINGS_SHOWN:]}


def findings(runs: Sequence[RunResult]) -> list[str]:
    """A few plain sentences: the best configuration per kind, and what JSON costs on the wire."""
    out = []
    by_kind: dict[str, list[RunResult]] = {}
    for r in runs:
        if r.summary.ok:
            by_kind.setdefault(r.config.kind, []).append(r)
    for kind, members in by_kind.items():
        best = max(members, key=lambda r: r.summary.throughput_ips)
        s = best.summary
        out.append(
            f"{kind}: peak {tables.fmt_num(s.throughput_ips)} predictions/s "
            f"({tables.fmt_num(s.throughput_rps)} req/s) with batch {best.config.batch_size}, "
            f"{best.config.format}, {tables.load_text(best)}; p99 {tables.fmt_ms(s.latency_ms.p99)} ms there."
        )
        big = max(members, key=lambda r: r.config.batch_size)
        if big.summary.raw_bytes > 0:
            ratio = big.summary.request_bytes / big.summary.raw_bytes
            out.append(f"{kind}: a JSON request at batch {big.config.batch_size} is "
                       f"{tables.fmt_bytes(big.summary.request_bytes)}, {ratio:.2f}x the raw tensor bytes.")
    return out


def _status_cell(status: str) -> str | Cell:
    if status in ("PARTIAL", "UNSTABLE"):
        return Cell(status, "status-bad")
    if status != "ok":
        return Cell(status, "status-warn")
    return status


def _summary(ctx: ReportContext) -> Table:
    with_model = tables.needs_model_column(ctx.runs)
    rows = []
    for run in sorted(ctx.runs, key=lambda r: (KIND_ORDER.get(r.config.kind, 9), r.config.kind, r.config.model,
                                               r.config.batch_size, r.config.format, r.config.mode, load_of(r))):
        row: list[str | Cell] = list(tables.display_row(run, with_model=with_model))
        row[-1] = _status_cell(str(row[-1]))
        rows.append(row)
    return _table(tables.headings(), rows)


def _searches(ctx: ReportContext) -> list[dict[str, Any]]:
    """One block per SLO search input: the rate it found, why it stopped, and every probe."""
    out = []
    for src in ctx.sources:
        info = src.search
        if not info:
            continue
        best = info.get("best_rate_rps")
        run = src.runs[0].config if src.runs else None
        rows = []
        for probe in info.get("probes") or []:
            if not isinstance(probe, dict):
                continue
            value = probe.get("value_ms")
            rows.append([_num(probe.get("rate_rps")), _num(probe.get("achieved_rps")),
                         tables.fmt_ms(value) if isinstance(value, int | float) else "-",
                         "pass" if probe.get("passed") else "fail", str(probe.get("reason", ""))])
        out.append({
            "what": f"{run.kind} b={run.batch_size} {run.format} ({run.model})" if run else src.name,
            "slo": info.get("slo", ""),
            "best": _num(best) if isinstance(best, int | float) else None,
            "reason": info.get("reason", ""),
            "probes": _table(["offered (req/s)", "achieved (req/s)", "SLO statistic (ms)", "verdict", "why"], rows,
                             text_cols=(4,)),
        })
    return out


def _num(v: Any) -> str:
    return tables.fmt_num(float(v)) if isinstance(v, int | float) and not isinstance(v, bool) else "-"


def _plan(plan: Plan) -> dict[str, Any]:
    head = ["configuration", "basis", "capacity (req/s)", "capacity (inst/s)", f"{plan.slo_metric} at capacity (ms)",
            "replicas", "load per replica (req/s)", f"expected {plan.slo_metric} (ms)", "expected p50 (ms)"]
    if plan.cost_per_replica_hour is not None:
        head += ["cost / hour", "cost / M predictions"]
    rows = []
    for i, c in enumerate(plan.configs):
        name = f"{c.name}" + (" (recommended)" if i == plan.recommended else "")
        row = [name, c.basis, tables.fmt_num(c.capacity_rps), tables.fmt_num(c.capacity_ips),
               tables.fmt_ms(c.slo_value_at_capacity_ms), str(c.replicas) if c.replicas else "not feasible",
               tables.fmt_num(c.per_replica_rps), tables.fmt_ms(c.expected_ms), tables.fmt_ms(c.expected_p50_ms)]
        if plan.cost_per_replica_hour is not None:
            row += [f"{c.cost_per_hour:.2f}" if c.cost_per_hour is not None else "-",
                    f"{c.cost_per_million:.4f}" if c.cost_per_million is not None else "-"]
        rows.append(row)
    target = []
    if plan.target_qps:
        target.append(f"{plan.target_qps:g} requests/s")
    if plan.target_ips:
        target.append(f"{plan.target_ips:g} predictions/s")
    data_rows = [[c.name, p.run, f"{p.load:g}", tables.fmt_num(p.throughput_rps), tables.fmt_ms(p.slo_value_ms),
                  tables.fmt_ms(p.p50_ms), "yes" if p.met else "no", p.reason]
                 for c in plan.configs for p in c.points]
    return {
        "recommendation": plan.recommendation, "slo": plan.slo, "target": " and ".join(target),
        "headroom": f"{plan.headroom:.0%}",
        "cost": f"{plan.cost_per_replica_hour:g}" if plan.cost_per_replica_hour is not None else None,
        "formula": plan.formula, "table": _table(head, rows), "assumptions": list(plan.assumptions),
        "expected": [(c.name, c.expected_note) for c in plan.configs if c.feasible],
        "notes": [(c.name, w) for c in plan.configs for w in c.warnings],
        "data": _table(["configuration", "run", "load", "throughput (req/s)", f"{plan.slo_metric} (ms)", "p50 (ms)",
                        "met SLO", "why"], data_rows, text_cols=(7,)),
    }


def plan_html(plan: Plan) -> str:
    """The capacity-plan section alone (for pages other than the report)."""
    return environment().get_template("plan.html.j2").render(plan=_plan(plan))


def _comparison(table: ComparisonTable, index: int = 0) -> dict[str, Any]:
    metrics = ["throughput_rps", "p50", "p99", "error_rate"]
    label = ""
    if len(table.rows) == 1:
        row = table.rows[0]
        label = row.label
        body = []
        for name, m in row.metrics.items():
            ci = f"[{100 * m.ci[0]:+.1f}%, {100 * m.ci[1]:+.1f}%]" if m.ci else "-"
            body.append([METRIC_LABELS.get(name, name), _val(name, m.a), _val(name, m.b), _change_cell(m), ci, m.test])
        grid = _table(["metric", table.baseline_name, table.other_name, "change", "95% interval", "test"], body)
    else:
        head = ["configuration"]
        for m in metrics:
            head += [f"{METRIC_LABELS[m]} {table.baseline_name}", f"{table.other_name}", "change"]
        body = []
        for row in table.rows:
            cells: list[str | Cell] = [row.label]
            for name in metrics:
                m = row.metrics.get(name)
                cells += ["-", "-", "-"] if m is None else [_val(name, m.a), _val(name, m.b), _change_cell(m)]
            body.append(cells)
        grid = _table(head, body)
    counts = table.summary_counts()
    unmatched = (len(table.unmatched_a), len(table.unmatched_b)) if table.unmatched_a or table.unmatched_b else None
    return {"index": index, "other": table.other_name, "baseline": table.baseline_name,
            "description": TEST_DESCRIPTION, "noise": f"{table.noise_threshold:.0%}", "resamples": table.resamples,
            "better": counts["better"], "worse": counts["worse"], "noise_count": counts["within noise"],
            "n_rows": len(table.rows), "label": label, "table": grid, "unmatched": unmatched}


def comparison_html(table: ComparisonTable, index: int = 0) -> str:
    """One comparison section alone."""
    return environment().get_template("comparison.html.j2").render(c=_comparison(table, index))


def _val(name: str, v: float | None) -> str:
    if v is None:
        return "-"
    if name == "error_rate":
        return f"{v:.2%}"
    if name.startswith("throughput"):
        return tables.fmt_num(v)
    if name == "request_bytes":
        return tables.fmt_bytes(v)
    return tables.fmt_ms(v)


def _change_cell(m: Any) -> Cell:
    return Cell(m.change_text(), "noise" if not m.significant else ("better" if m.better else "worse"))


def _configs(ctx: ReportContext) -> dict[str, Any]:
    head = ["run", "model", "url", "mode", "engine", "arrival", "duration (s)", "warmup (s)", "timeout (s)",
            "processes", "seed", "source", "started"]
    rows = [[r.config.label_text(), r.config.model, r.config.url, r.config.mode, r.config.engine,
             r.config.arrival or "-", f"{r.config.duration_s or 0:g}", f"{r.config.warmup_s:g}",
             f"{r.config.timeout_s:g}", str(r.config.processes), str(r.config.seed), r.config.source, r.started_at]
            for r in ctx.runs]
    envs: list[Mapping[str, Any]] = []
    for r in ctx.runs:
        if r.environment not in envs:
            envs.append(r.environment)
    samples = [[r.config.label_text(), sample] for r in ctx.runs for sample in r.summary.error_samples]
    return {
        "inputs": [(s.path, s.kind, len(s.runs)) for s in ctx.sources],
        "runs": _table(head, rows, text_cols=(2,)),
        "errors": _table(["run", "error"], samples[:50], text_cols=(1,)) if samples else None,
        "environments": [[(k, _env_value(v)) for k, v in sorted(env.items(), key=lambda kv: str(kv[0]))]
                         for env in envs[:5]],
        "more_environments": max(0, len(envs) - 5),
    }


def _env_value(v: Any) -> str:
    if isinstance(v, Mapping | list | tuple):
        return json.dumps(v, sort_keys=True, default=str)
    return str(v)


def _nav(ctx: ReportContext, has_search: bool) -> list[tuple[str, str]]:
    nav = [("summary", "Summary"), ("figures", "Figures")]
    if has_search:
        nav.insert(0, ("search", "SLO search"))
    if ctx.plan is not None:
        nav.insert(0, ("plan", "Plan"))
    nav += [(f"compare-{i}", f"Comparison {i + 1}") for i, _t in enumerate(ctx.comparisons)]
    nav += [(s.id, s.title) for s in ctx.sections]
    nav.append(("configs", "Configurations"))
    return nav


def render_html(ctx: ReportContext) -> str:
    searches = _searches(ctx)
    return environment().get_template("report.html.j2").render(
        title=ctx.title, n_runs=len(ctx.runs), n_sources=len(ctx.sources), generated_at=ctx.generated_at,
        how_sure=how_sure(ctx.runs),
        slo=str(ctx.slo) if ctx.slo is not None else None, nav=_nav(ctx, bool(searches)), warnings=_warnings(ctx),
        findings=findings(ctx.runs), plan=_plan(ctx.plan) if ctx.plan is not None else None, searches=searches,
        comparisons=[_comparison(t, i) for i, t in enumerate(ctx.comparisons)], summary=_summary(ctx),
        figures=[{"name": f.name, "title": f.title, "caption": f.caption,
                  "png_b64": base64.b64encode(f.png).decode("ascii")} for f in ctx.figures],
        # a Section's fragment is built and escaped by its own module (reports.context.Section)
        sections=[{"id": s.id, "title": s.title, "html": Markup(s.html)} for s in ctx.sections],  # noqa: S704
        configs=_configs(ctx), schema_version=SCHEMA_VERSION,
    )
