"""report.html, summary.md and results.csv: self-contained, escaped, complete, honest about problems."""

from __future__ import annotations

import csv
import io
import re

import pytest
from reports_fixtures import (
    XSS,
    synth,  # noqa: F401
)
from tfsbench.bench.stats.slo import parse_slo
from tfsbench.reports.build import build_report
from tfsbench.reports.dataset import all_runs, load_sources
from tfsbench.reports.markdown import md
from tfsbench.reports.plan import make_plan
from tfsbench.reports.tables import CSV_COLUMNS

pytestmark = pytest.mark.xdist_group("test_reports_html")  # module fixtures built once, on one xdist worker


@pytest.fixture(scope="module")
def report(synth, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("report")
    sources = load_sources([str(synth["sweep"]), str(synth["search"]), str(synth["bad"]), str(synth["xss"]),
                            str(synth["locust"])])
    slo = parse_slo("p99<=20ms")
    plan = make_plan(sources, slo, target_ips=5000, cost_per_replica_hour=0.5)
    files = build_report(sources, out, slo=slo, plan=plan, compare=False)
    return files, all_runs(sources)


def test_html_is_self_contained(report) -> None:
    files, _ = report
    page = files.html.read_text(encoding="utf-8")
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'href="(?!#)', page), "links only within the page"
    assert "<script" not in page.lower()
    assert "<link" not in page.lower() and "@import" not in page
    assert "Content-Security-Policy" in page


def test_every_string_from_results_is_escaped(report) -> None:
    files, _ = report
    page = files.html.read_text(encoding="utf-8")
    assert XSS not in page
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # shown, as text
    md_text = files.markdown.read_text(encoding="utf-8")
    assert "<img" not in md_text
    # and the PNGs rendered the name as text without mathtext or crashes (the file exists)
    assert all(p.exists() and p.stat().st_size > 5000 for p in files.figures)


def test_summary_table_has_a_row_per_run_and_figures_have_captions(report) -> None:
    files, runs = report
    page = files.html.read_text(encoding="utf-8")
    summary = page.split('<section id="summary">')[1].split("</section>")[0]
    assert summary.count("<tr>") == len(runs) + 1  # header + one per run
    assert page.count("<figure") == len(files.figures)
    assert page.count("<figcaption>") == len(files.figures)
    for name in ("throughput_vs_batch", "latency_vs_load", "latency_throughput", "latency_spectrum",
                 "payload_overhead", "timeseries_1"):
        assert f'id="fig-{name}.png"' in page


def test_warnings_are_prominent_and_name_the_problems(report) -> None:
    files, _ = report
    page = files.html.read_text(encoding="utf-8")
    warnings = page.split('<section class="warnings"')[1].split("</section>")[0]
    assert page.index('class="warnings"') < page.index('id="summary"'), "warnings come before the data"
    assert "unstable" in warnings
    assert "errors" in warnings
    assert "Locust export: percentiles are rounded" in page
    assert "UNSTABLE" in page


def test_plan_section_states_formula_assumptions_and_data(report) -> None:
    files, _ = report
    page = files.html.read_text(encoding="utf-8")
    plan = page.split('<section id="plan">')[1].split("</section>")[0]
    assert "replicas = ceil(target / (capacity x (1 - headroom)))" in plan
    assert "Recommendation" in plan and "open-loop search" in plan and "closed-loop sweep" in plan
    assert "Assumptions" in plan and "linearly" in plan
    assert "The data behind every number" in plan
    assert files.plan_json is not None and files.plan_json.exists()


def test_csv_has_perf_analyzer_like_columns_and_a_row_per_run(report) -> None:
    files, runs = report
    rows = list(csv.DictReader(io.StringIO(files.csv.read_text(encoding="utf-8"))))
    assert len(rows) == len(runs)
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    for col in ("throughput_ips", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "request_bytes"):
        assert all(float(r[col]) >= 0 for r in rows)
    assert {r["kind"] for r in rows} == {"numeric", "text", "image"}


def test_markdown_summary_is_a_valid_table(report) -> None:
    files, runs = report
    text = files.markdown.read_text(encoding="utf-8")
    assert text.startswith("# ")
    table = text.split("## Summary")[1].strip().split("\n\n")[0].splitlines()
    assert len(table) == len(runs) + 2
    widths = {len(re.split(r"(?<!\\)\|", line)) for line in table}
    assert len(widths) == 1, "every row has the same number of cells"
    assert md("a|b") == "a\\|b"


def test_report_refuses_to_overwrite_a_file(tmp_path, synth) -> None:  # noqa: F811
    from tfsbench.payloads.errors import InputError

    from tfsbench.commands.report import check_out_dir

    target = tmp_path / "afile"
    target.write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        check_out_dir(str(target))


def test_warnings_repeated_across_runs_fold_into_one_line() -> None:
    import dataclasses

    from tfsbench.reports.dataset import report_warnings
    from tfsbench.reports.synthetic import make_run

    runs = []
    for c in (1, 2, 4, 8):
        r = make_run("numeric", 1, concurrency=c, duration_s=0.2)  # short: < 1000 requests each
        runs.append(dataclasses.replace(r, summary=dataclasses.replace(
            r.summary, stable=False, stability_reason="unstable: too short: 2 whole seconds measured")))
    items = report_warnings(runs)
    unstable = [w for who, w in items if "too short: 2 whole seconds" in w]
    assert len(unstable) == 1 and "unstable: too short" in unstable[0] and "numeric b=1 row c=8" in unstable[0]
    assert "unstable: unstable" not in unstable[0]
    assert any(who == "4 runs" and "too few requests" in w for who, w in items)


def test_search_inputs_get_their_own_section(report, synth) -> None:  # noqa: F811
    import json

    files, _ = report
    page = files.html.read_text(encoding="utf-8")
    section = page.split('<section id="search">')[1].split("</section>")[0]
    manifest = json.loads((synth["search"] / "manifest.json").read_text())
    assert section.count("<tr>") == len(manifest["search"]["probes"]) + 1
    assert "p99&lt;=20ms" in section and "highest offered rate that met the SLO" in section
