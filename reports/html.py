"""report.html: one self-contained page (inline CSS, figures as PNG data URIs, no scripts, no
network). Every string that comes from results, configurations, server answers or the command
line goes through `e()` before it reaches the page.
"""

from __future__ import annotations

import base64
import html as _html
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tfsbench.bench.results import SCHEMA_VERSION, RunResult
from tfsbench.reports import tables
from tfsbench.reports.compare import METRIC_LABELS, TEST_DESCRIPTION, ComparisonTable
from tfsbench.reports.context import FigureOut, ReportContext
from tfsbench.reports.dataset import load_of, report_warnings
from tfsbench.reports.plan import Plan

MAX_WARNINGS_SHOWN = 12
KIND_ORDER = {"numeric": 0, "text": 1, "image": 2}

CSS = """
:root { --fg:#1d2330; --muted:#5b6472; --line:#dde1e7; --bg:#ffffff; --alt:#f6f8fa; --warn:#b35900;
        --warnbg:#fff5e6; --bad:#b91c1c; --good:#15803d; }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); background: var(--bg); }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 6px; }
p.meta, .muted { color: var(--muted); font-size: 13px; }
nav { font-size: 13px; margin: 10px 0 0; }
nav a { margin-right: 14px; color: #1f5fbf; text-decoration: none; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 8px 0 4px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 7px; text-align: right; white-space: nowrap; }
th { background: var(--alt); font-weight: 600; position: sticky; top: 0; white-space: normal;
     vertical-align: bottom; }
td:first-child, th:first-child { text-align: left; }
td.text, th.text { text-align: left; white-space: normal; }
tbody tr:nth-child(even) { background: #fafbfc; }
.scroll { overflow-x: auto; max-height: 620px; overflow-y: auto; border: 1px solid var(--line); }
.warnings { background: var(--warnbg); border-left: 5px solid var(--warn); padding: 10px 16px; margin: 18px 0; }
.warnings h2 { border: 0; margin: 0 0 6px; color: var(--warn); font-size: 18px; }
.warnings li { margin: 2px 0; }
.callout { background: #eef5ff; border-left: 5px solid #1f5fbf; padding: 10px 16px; margin: 12px 0; }
.status-bad { color: var(--bad); font-weight: 600; }
.status-warn { color: var(--warn); font-weight: 600; }
.better { color: var(--good); font-weight: 600; }
.worse { color: var(--bad); font-weight: 600; }
.noise { color: var(--muted); }
figure { margin: 18px 0 28px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { font-size: 13.5px; color: var(--muted); margin-top: 4px; }
figcaption b { color: var(--fg); }
code { background: var(--alt); padding: 1px 4px; border-radius: 3px; font-size: 13px; }
details { margin: 8px 0; }
summary { cursor: pointer; color: #1f5fbf; }
ul.findings li { margin: 3px 0; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; font-size: 13px; }
dl.kv dt { color: var(--muted); } dl.kv dd { margin: 0; word-break: break-all; }
"""


def e(value: Any) -> str:
    """HTML-escape anything (quotes included, so it is safe in attributes too)."""
    return _html.escape("" if value is None else str(value), quote=True)


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], *, text_cols: Iterable[int] = (),
           raw_cells: bool = False, cls: str = "") -> str:
    """A table. Cells are escaped unless `raw_cells` (then the caller escaped them)."""
    text_cols = set(text_cols)
    cell = (lambda v: v) if raw_cells else e

    def td(i: int, v: str, tag: str) -> str:
        attr = ' class="text"' if i in text_cols else ""
        return f"<{tag}{attr}>{cell(v) if tag == 'td' else e(v)}</{tag}>"

    out = [f'<div class="scroll"><table class="{e(cls)}"><thead><tr>']
    out += [td(i, h, "th") for i, h in enumerate(head)]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(td(i, v, "td") for i, v in enumerate(row)) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


# ---- sections ---------------------------------------------------------------------------------


def _warnings_section(ctx: ReportContext) -> str:
    items: list[tuple[str, str]] = report_warnings(ctx.runs)
    for section in ctx.sections:
        items += [(section.title, w) for w in section.warnings]
    if ctx.plan is not None:
        items += [("plan", w) for w in ctx.plan.warnings]
    if not items:
        return ""
    unstable = sum(1 for r in ctx.runs if not r.summary.stable)
    partial = sum(1 for r in ctx.runs if r.partial)
    errors = sum(1 for r in ctx.runs if r.summary.error_count)
    saturated = sum(1 for r in ctx.runs if r.summary.client_saturated)
    counts = [f"{n} {what}" for n, what in ((unstable, "unstable"), (partial, "partial"),
                                            (errors, "with errors"), (saturated, "load-generator saturated")) if n]
    head = f"{len(ctx.runs)} runs" + (": " + ", ".join(counts) if counts else "")
    shown = items[:MAX_WARNINGS_SHOWN]
    rest = items[MAX_WARNINGS_SHOWN:]
    li = "".join(f"<li><b>{e(who)}</b>: {e(what)}</li>" for who, what in shown)
    more = ""
    if rest:
        more = (f"<details><summary>{len(rest)} more warnings</summary><ul>"
                + "".join(f"<li><b>{e(who)}</b>: {e(what)}</li>" for who, what in rest) + "</ul></details>")
    return (f'<section class="warnings" id="warnings"><h2>Warnings ({len(items)})</h2>'
            f"<p>{e(head)}. Numbers from the runs below deserve care.</p><ul>{li}</ul>{more}</section>")


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


def _summary_section(ctx: ReportContext) -> str:
    with_model = tables.needs_model_column(ctx.runs)
    rows = []
    for run in sorted(ctx.runs, key=lambda r: (KIND_ORDER.get(r.config.kind, 9), r.config.kind, r.config.model,
                                               r.config.batch_size, r.config.format, r.config.mode, load_of(r))):
        row = tables.display_row(run, with_model=with_model)
        cells = [e(v) for v in row]
        status = row[-1]
        if status in ("PARTIAL", "UNSTABLE"):
            cells[-1] = f'<span class="status-bad">{e(status)}</span>'
        elif status != "ok":
            cells[-1] = f'<span class="status-warn">{e(status)}</span>'
        rows.append(cells)
    return ('<section id="summary"><h2>Summary</h2>'
            '<p class="muted">One row per run. Throughput counts successful responses over the measured '
            "window (warmup excluded); latency is client-side, to the last byte of a validated response "
            "(open loop: from the intended send time).</p>"
            + _table(tables.headings(), rows, raw_cells=True) + "</section>")


def _search_sections(ctx: ReportContext) -> str:
    """One block per SLO search input: the rate it found, why it stopped, and every probe."""
    parts = []
    for src in ctx.sources:
        info = src.search
        if not info:
            continue
        best = info.get("best_rate_rps")
        run = src.runs[0].config if src.runs else None
        what = f"{run.kind} b={run.batch_size} {run.format} ({run.model})" if run else src.name
        rows = []
        for probe in info.get("probes") or []:
            if not isinstance(probe, dict):
                continue
            rows.append([_num(probe.get("rate_rps")), _num(probe.get("achieved_rps")),
                         tables.fmt_ms(probe.get("value_ms")) if isinstance(probe.get("value_ms"), int | float) else "-",
                         "pass" if probe.get("passed") else "fail", str(probe.get("reason", ""))])
        found = (f"<b>{e(_num(best))} req/s</b> is the highest offered rate that met the SLO"
                 if isinstance(best, int | float) else "<b>no rate</b> met the SLO")
        parts.append(
            f"<h3>{e(what)}: SLO <code>{e(info.get('slo', ''))}</code></h3>"
            f"<p>{found}. {e(info.get('reason', ''))}</p>"
            + (_table(["offered (req/s)", "achieved (req/s)", "SLO statistic (ms)", "verdict", "why"], rows,
                      text_cols=(4,)) if rows else "")
        )
    if not parts:
        return ""
    return ('<section id="search"><h2>SLO search</h2><p class="muted">Open-loop probes, bisecting between the '
            "highest passing and the lowest failing rate. A probe passes when the SLO statistic meets the SLO, "
            "errors stay under 1%, the achieved rate is within 5% of the offered rate and the load generator "
            "kept up.</p>" + "".join(parts) + "</section>")


def _num(v: Any) -> str:
    return tables.fmt_num(float(v)) if isinstance(v, int | float) and not isinstance(v, bool) else "-"


def _figure_html(fig: FigureOut) -> str:
    data = base64.b64encode(fig.png).decode("ascii")
    return (f'<figure id="fig-{e(fig.name)}"><img alt="{e(fig.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption><b>{e(fig.title)}.</b> {e(fig.caption)}</figcaption></figure>")


def plan_html(plan: Plan) -> str:
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
    data_rows = []
    for c in plan.configs:
        for p in c.points:
            data_rows.append([c.name, p.run, f"{p.load:g}", tables.fmt_num(p.throughput_rps),
                              tables.fmt_ms(p.slo_value_ms), tables.fmt_ms(p.p50_ms),
                              "yes" if p.met else "no", p.reason])
    notes = "".join(f"<li><b>{e(c.name)}</b>: {e(w)}</li>" for c in plan.configs for w in c.warnings)
    expected = "".join(f"<li><b>{e(c.name)}</b>: expected latency {e(c.expected_note)}</li>"
                       for c in plan.configs if c.feasible)
    return (
        '<section id="plan"><h2>Capacity plan</h2>'
        f'<div class="callout"><b>Recommendation.</b> {e(plan.recommendation)}</div>'
        f"<p>SLO <code>{e(plan.slo)}</code>; peak traffic {e(' and '.join(target))}; headroom "
        f"{plan.headroom:.0%}"
        + (f"; cost {e(f'{plan.cost_per_replica_hour:g}')} per replica-hour" if plan.cost_per_replica_hour is not None else "")
        + f". Formula: <code>{e(plan.formula)}</code>, with capacity the highest measured throughput of one "
        "replica whose SLO statistic met the SLO.</p>"
        + _table(head, rows)
        + "<h3>Assumptions</h3><ul>" + "".join(f"<li>{e(a)}</li>" for a in plan.assumptions) + "</ul>"
        + (f"<h3>Expected latency</h3><ul>{expected}</ul>" if expected else "")
        + (f"<h3>Notes</h3><ul>{notes}</ul>" if notes else "")
        + "<details><summary>The data behind every number (each measured run)</summary>"
        + _table(["configuration", "run", "load", "throughput (req/s)", f"{plan.slo_metric} (ms)", "p50 (ms)",
                  "met SLO", "why"], data_rows, text_cols=(7,))
        + "</details></section>"
    )


def comparison_html(table: ComparisonTable, index: int = 0) -> str:
    metrics = ["throughput_rps", "p50", "p99", "error_rate"]
    single = len(table.rows) == 1
    parts = [f'<section id="compare-{index}"><h2>Comparison: {e(table.other_name)} vs {e(table.baseline_name)}</h2>',
             f'<p class="muted">{e(TEST_DESCRIPTION)} Noise threshold {table.noise_threshold:.0%}, '
             f"{table.resamples} resamples.</p>"]
    counts = table.summary_counts()
    parts.append(f"<p>{counts['better']} better, {counts['worse']} worse, {counts['within noise']} within noise "
                 f"(over {len(table.rows)} matched configurations).</p>")
    if single:
        row = table.rows[0]
        body = []
        for name, m in row.metrics.items():
            ci = f"[{100 * m.ci[0]:+.1f}%, {100 * m.ci[1]:+.1f}%]" if m.ci else "-"
            body.append([METRIC_LABELS.get(name, name), _val(name, m.a), _val(name, m.b),
                         _change_cell(m), e(ci), e(m.test)])
        parts.append(f"<p>{e(row.label)}</p>")
        parts.append(_table(["metric", table.baseline_name, table.other_name, "change", "95% interval",
                             "test"], body, raw_cells=True))
    else:
        head = ["configuration"]
        for m in metrics:
            head += [f"{METRIC_LABELS[m]} {table.baseline_name}", f"{table.other_name}", "change"]
        body = []
        for row in table.rows:
            cells = [e(row.label)]
            for name in metrics:
                m = row.metrics.get(name)
                if m is None:
                    cells += ["-", "-", "-"]
                else:
                    cells += [_val(name, m.a), _val(name, m.b), _change_cell(m)]
            body.append(cells)
        parts.append(_table(head, body, raw_cells=True))
    if table.unmatched_a or table.unmatched_b:
        parts.append(f"<p class=\"muted\">Not matched: {len(table.unmatched_a)} run(s) only in "
                     f"{e(table.baseline_name)}, {len(table.unmatched_b)} only in {e(table.other_name)}.</p>")
    parts.append("</section>")
    return "".join(parts)


def _val(name: str, v: float | None) -> str:
    if v is None:
        return "-"
    if name == "error_rate":
        return e(f"{v:.2%}")
    if name.startswith("throughput"):
        return e(tables.fmt_num(v))
    if name == "request_bytes":
        return e(tables.fmt_bytes(v))
    return e(tables.fmt_ms(v))


def _change_cell(m) -> str:
    cls = "noise" if not m.significant else ("better" if m.better else "worse")
    return f'<span class="{cls}">{e(m.change_text())}</span>'


def _configs_section(ctx: ReportContext) -> str:
    head = ["run", "model", "url", "mode", "engine", "arrival", "duration (s)", "warmup (s)", "timeout (s)",
            "processes", "seed", "source", "started"]
    rows = []
    for r in ctx.runs:
        c = r.config
        rows.append([c.label_text(), c.model, c.url, c.mode, c.engine, c.arrival or "-", f"{c.duration_s or 0:g}",
                     f"{c.warmup_s:g}", f"{c.timeout_s:g}", str(c.processes), str(c.seed), c.source, r.started_at])
    envs: list[Mapping[str, Any]] = []
    for r in ctx.runs:
        if r.environment not in envs:
            envs.append(r.environment)
    env_html = []
    for i, env in enumerate(envs[:5]):
        items = "".join(f"<dt>{e(k)}</dt><dd>{e(_env_value(v))}</dd>" for k, v in sorted(env.items(), key=lambda kv: str(kv[0])))
        env_html.append(f"<h3>Environment {i + 1}</h3><dl class=\"kv\">{items}</dl>")
    if len(envs) > 5:
        env_html.append(f"<p class=\"muted\">{len(envs) - 5} more distinct environments not shown.</p>")
    inputs = "".join(f"<li><code>{e(s.path)}</code>: {e(s.kind)}, {len(s.runs)} run(s)</li>" for s in ctx.sources)
    samples = [(r.config.label_text(), sample) for r in ctx.runs for sample in r.summary.error_samples]
    if samples:
        env_html.insert(0, "<h3>Error samples</h3><p class=\"muted\">The first error bodies or messages of "
                        "failed requests, as the server or the client library gave them.</p>"
                        + _table(["run", "error"], samples[:50], text_cols=(1,)))
    return ('<section id="configs"><h2>Run configurations and environment</h2>'
            f"<h3>Inputs</h3><ul>{inputs}</ul>"
            "<details open><summary>Configuration of every run</summary>"
            + _table(head, rows, text_cols=(2,)) + "</details>" + "".join(env_html) + "</section>")


def _env_value(v: Any) -> str:
    if isinstance(v, Mapping | list | tuple):
        return json.dumps(v, sort_keys=True, default=str)
    return str(v)


def render_html(ctx: ReportContext) -> str:
    search = _search_sections(ctx)
    nav = ['<a href="#summary">Summary</a>', '<a href="#figures">Figures</a>']
    if search:
        nav.insert(0, '<a href="#search">SLO search</a>')
    if ctx.plan is not None:
        nav.insert(0, '<a href="#plan">Plan</a>')
    for i, _t in enumerate(ctx.comparisons):
        nav.append(f'<a href="#compare-{i}">Comparison {i + 1}</a>')
    for s in ctx.sections:
        nav.append(f'<a href="#{e(s.id)}">{e(s.title)}</a>')
    nav.append('<a href="#configs">Configurations</a>')
    find = findings(ctx.runs)
    body = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # no scripts, no remote content: the page works offline and cannot run injected code
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">",
        f"<title>{e(ctx.title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{e(ctx.title)}</h1>",
        f'<p class="meta">{len(ctx.runs)} runs from {len(ctx.sources)} input(s); generated {e(ctx.generated_at)}'
        + (f"; SLO <code>{e(str(ctx.slo))}</code>" if ctx.slo is not None else "") + "</p>",
        "<nav>" + "".join(nav) + "</nav>",
        _warnings_section(ctx),
    ]
    if find:
        body.append('<section id="findings"><h2>Key numbers</h2><ul class="findings">'
                    + "".join(f"<li>{e(f)}</li>" for f in find) + "</ul></section>")
    if ctx.plan is not None:
        body.append(plan_html(ctx.plan))
    if search:
        body.append(search)
    for i, table in enumerate(ctx.comparisons):
        body.append(comparison_html(table, i))
    body.append(_summary_section(ctx))
    body.append('<section id="figures"><h2>Figures</h2>')
    if not ctx.figures:
        body.append('<p class="muted">These results hold nothing to plot.</p>')
    body += [_figure_html(f) for f in ctx.figures]
    body.append("</section>")
    for s in ctx.sections:
        body.append(f'<section id="{e(s.id)}"><h2>{e(s.title)}</h2>{s.html}</section>')
    body.append(_configs_section(ctx))
    body.append(f'<p class="muted">tfsbench report; result schema version {SCHEMA_VERSION}.</p>')
    body.append("</main></body></html>")
    return "\n".join(body)
