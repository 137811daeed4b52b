"""The report's first screen says how sure its numbers are (reports/trust.py)."""

from __future__ import annotations

import pytest
from reports_fixtures import synth  # noqa: F401
from test_reports_html import report  # noqa: F401
from tfsbench.bench.results import LatencySummary, RunConfig, RunResult, Summary
from tfsbench.reports.trust import how_sure


def _run(stable: bool, load: float = 0.5) -> RunResult:
    lat = LatencySummary(mean=1, p50=1, p90=1, p95=1, p99=1, p999=1, max=1)
    s = Summary(requests=10, ok=10, errors={}, throughput_rps=1, throughput_ips=1, latency_ms=lat, request_bytes=1,
                response_bytes=1, raw_bytes=1, stable=stable, stability_reason="x")
    cfg = RunConfig(url="http://127.0.0.1:1", model="m", kind="numeric", batch_size=1, format="row", mode="closed",
                    engine="fast", concurrency=1, duration_s=1.0)
    return RunResult(config=cfg, environment={"load_avg": [load, 0, 0], "cpus_usable": 2}, summary=s)


def test_how_sure_counts_stable_runs_and_names_a_busy_machine() -> None:
    assert how_sure([]) == ""
    assert how_sure([_run(True), _run(True)]).startswith("All 2 runs were stable: in each, the thirds")
    mixed = how_sure([_run(True), _run(False, load=6.3), _run(True)])
    assert mixed.startswith("2 of 3 runs were stable") and "never set a capacity" in mixed
    assert mixed.endswith("(load average up to 6.3 on 2 CPUs).")
    assert how_sure([_run(False)]).startswith("None of the 1 runs was stable within its time bound")


def test_how_sure_names_what_stable_rested_on_beyond_the_plain_rule() -> None:
    import dataclasses

    plain = _run(True)
    probe = dataclasses.replace(plain, summary=dataclasses.replace(
        plain.summary, stability_reason="stable for the SLO: ... every third's p99 is within the SLO's 50 ms"))
    settled = [dataclasses.replace(plain, summary=dataclasses.replace(plain.summary, settled_s=k)) for k in (1.0, 2.0)]
    text = how_sure([plain, probe, *settled])
    assert text.startswith("All 4 runs were stable")
    assert "One search probe was stable for the SLO only" in text
    assert "2 runs set aside the first 1-2 s of the measured window" in text
    assert "set aside" not in how_sure([plain, plain]) and "for the SLO" not in how_sure([plain])


@pytest.mark.slow  # builds its own copy of test_reports_html's report (seconds)
def test_the_html_report_opens_with_how_sure(report) -> None:  # noqa: F811 (test_reports_html's fixture)
    files, runs = report
    page = files.html.read_text(encoding="utf-8")
    stable = sum(r.summary.stable for r in runs)
    head = page[:page.index("<nav>")]
    assert '<p class="trust" id="how-sure"><b>How sure:</b>' in head and f"{stable} of {len(runs)} runs" in head
    assert f"**How sure:** {stable} of {len(runs)} runs" in files.markdown.read_text(encoding="utf-8")
