"""The statistics core's rules (issue 14 item 3, issue 17 items 1-4), each through the public tools.

Fixtures: tests/fixtures/results/issue17/{a,b}/ are real runs of issue 17's scenario (embedded
targets with --service-time 5ms (a) and 5.4ms (b), closed loop, --concurrency 4 --duration 4s
--warmup 1s, three runs each), recorded on a 2-core machine.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from tfsbench.bench.measure import hist
from tfsbench.bench.results import RunResult, TimePoint, load_results
from tfsbench.payloads.errors import InputError
from tfsbench.reports import check as gates
from tfsbench.reports.compare import compare_pair, compare_runs
from tfsbench.reports.synthetic import make_run

FIX = Path(__file__).parent / "fixtures" / "results" / "issue17"
A = load_results(sorted(str(p) for p in (FIX / "a").glob("*.json")))
B = load_results(sorted(str(p) for p in (FIX / "b").glob("*.json")))


def _with_histogram(run: RunResult, values_us: np.ndarray) -> RunResult:
    h = hist.new()
    hist.record_many(h, values_us)
    lat = dataclasses.replace(run.summary.latency_ms, **{k: v for k, v in hist.summary_ms(h).items()})
    n = int(values_us.size)
    return dataclasses.replace(run, histogram=hist.encode(h),
                               summary=dataclasses.replace(run.summary, latency_ms=lat, ok=n, requests=n))


# ---- one percentile definition (issue 17 item 1) -----------------------------------------------


def test_compare_and_check_read_the_same_p99_from_the_same_histogram() -> None:
    # 1,070 requests: 0.99 * 1070 = 1059.3, so a ceil-rank (1060) and HdrHistogram's rounded rank
    # (1059) land on different values when the 1,059th and 1,060th differ.
    values = np.concatenate([np.full(1059, 5000.0), np.full(11, 10_700.0)])
    base = _with_histogram(A[0], np.full(1070, 5000.0))
    cur = _with_histogram(B[0], values)
    p99_hdr = hist.decode(cur.histogram).get_value_at_percentile(99.0) / 1000.0
    from_compare = compare_pair(base, cur)["p99"].b
    from_check = gates.compare_metric(cur, base, "p99", 0.10).current
    assert from_compare == from_check == pytest.approx(p99_hdr) == pytest.approx(cur.summary.latency_ms.p99)


def test_p99_of_real_runs_is_the_run_summary_value() -> None:
    for run in A + B:
        assert compare_pair(run, run)["p99"].a == pytest.approx(run.summary.latency_ms.p99)


# ---- throughput intervals from whole windows (issue 17 item 2) ---------------------------------


def _longer(run: RunResult, seconds: int, seed: int) -> RunResult:
    """The run with `seconds` whole measured seconds around its own rate, plus its warm-up second
    and the partial last second a closed loop leaves (a few responses after the window closed)."""
    rng = np.random.default_rng(seed)
    rate = run.summary.throughput_rps
    whole = [TimePoint(float(t), int(rng.normal(rate, rate * 0.02)), 0, None, None) for t in range(seconds)]
    series = (TimePoint(-1.0, int(rate), 0, None, None), *whole, TimePoint(float(seconds), 4, 0, None, None))
    ok = sum(p.requests for p in whole) + 4
    summary = dataclasses.replace(run.summary, measured_s=float(seconds), ok=ok, requests=ok,
                                  throughput_rps=ok / seconds, throughput_ips=ok / seconds)
    return dataclasses.replace(run, timeseries=series, summary=summary)


def test_throughput_interval_ignores_warmup_and_the_partial_last_second() -> None:
    base, cur = _longer(A[2], 8, seed=1), _longer(B[2], 8, seed=2)  # both about 550/s
    ci_check = gates.compare_metric(cur, base, "throughput_ips", 0.10).ci
    ci_compare = compare_pair(base, cur)["throughput_rps"].ci
    for lo, hi in (ci_check, ci_compare):
        assert -0.10 < lo < hi < 0.10, (lo, hi)  # a 4-request second would drag the low end to -90%


def test_too_few_whole_windows_means_no_interval_and_says_so() -> None:
    m = compare_pair(A[0], B[0])["throughput_rps"]  # 4 whole seconds each
    assert m.ci is None and m.test == "threshold-only"
    assert "too few whole windows" in m.note and "4 in A, 4 in B" in m.note
    outcome = gates.check_results([B[0]], [], baseline=[A[0]], compare_metrics=("throughput_ips",))
    assert "too few whole windows" in outcome.checks[0].detail


# ---- repeats are pooled, in both tools (issue 17 item 3) ---------------------------------------


def test_repeats_are_pooled_by_compare() -> None:
    table = compare_runs(A, B)
    assert len(table.rows) == 1 and table.unmatched_a == () and table.unmatched_b == ()
    row = table.rows[0]
    assert len(row.a_runs) == 3 and len(row.b_runs) == 3 and "3 vs 3 runs" in row.label
    from tfsbench.bench.stats.histograms import buckets, merge

    pooled = merge([buckets(r.histogram) for r in B])
    assert row.metrics["p99"].b == pytest.approx(pooled.percentile_ms(99.0))
    assert row.metrics["throughput_rps"].b == pytest.approx(sum(r.summary.ok for r in B) / 12.0)
    assert row.metrics["throughput_rps"].ci is not None  # 12 whole windows per side


def test_repeats_are_pooled_by_check_not_refused() -> None:
    outcome = gates.check_results(B, [], baseline=A, compare_metrics=("p50", "p99", "throughput_rps"))
    assert [c.name for c in outcome.checks] == ["baseline p50", "baseline p99", "baseline throughput_rps"]
    assert any("pooled as repeats" in n for n in outcome.notes)
    from tfsbench.bench.stats.histograms import buckets, merge

    pooled = merge([buckets(r.histogram) for r in B])
    assert outcome.checks[1].delta.b == pytest.approx(pooled.percentile_ms(99.0))


def test_spread_between_repeats_widens_the_interval() -> None:
    one = compare_pair(A[0], B[0])["p50"].ci
    pooled = compare_pair(A, B)["p50"].ci
    assert pooled[1] - pooled[0] > 2 * (one[1] - one[0])  # repeats here differ far more than requests do


# ---- an 8% slower server is seen by both (issue 17 item 4) -------------------------------------


def test_an_8_percent_slower_server_is_worse_in_both_tools_with_repeats() -> None:
    a = [make_run("numeric", 1, concurrency=4, duration_s=4.0, seed=s) for s in (1, 2, 3)]
    b = [make_run("numeric", 1, concurrency=4, duration_s=4.0, seed=s, speed=1 / 1.08) for s in (4, 5, 6)]
    row = compare_runs(a, b, noise_threshold=0.05).rows[0]
    assert row.metrics["p50"].verdict == "worse" and row.metrics["p50"].rel_change > 0.05
    outcome = gates.check_results(b, [], baseline=a, max_regression=0.05, compare_metrics=("p50",))
    assert outcome.exit_status == 1 and outcome.checks[0].mark == "worse"


# ---- the significance rule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "ci", "verdict"),
    [(0.04, (0.03, 0.05), "same"),  # significant but within the threshold
     (0.12, (-0.01, 0.20), "noise"),  # beyond the threshold, interval includes 0
     (0.12, (0.02, 0.20), "worse"),
     (-0.12, (-0.20, -0.02), "better"),
     (0.15, None, "noise"),  # untested: needs twice the threshold
     (0.25, None, "worse")],
)
def test_significance_rule(rel: float, ci: tuple[float, float] | None, verdict: str) -> None:
    from tfsbench.bench.stats.change import decide

    assert decide("p99", rel, ci, 0.10) == verdict
    flipped = {"worse": "better", "better": "worse"}.get(verdict, verdict)
    assert decide("throughput_rps", rel, ci, 0.10) == flipped


def test_check_still_refuses_unlike_runs_and_differently_named_models() -> None:
    with pytest.raises(InputError, match=r"concurrency \(4 vs 8\)"):
        gates.check_results(B, [], baseline=[make_run("numeric", 1, concurrency=8)])
    renamed = [dataclasses.replace(r, config=dataclasses.replace(r.config, model="numeric_v2")) for r in B]
    with pytest.raises(InputError, match="refusing to compare unlike runs"):
        gates.check_results(renamed, [], baseline=A)
    table = compare_runs(A, renamed)  # compare pairs them, and says so
    assert len(table.rows) == 1 and any("numeric vs numeric_v2" in n for n in table.notes)


def test_compare_command_says_why_throughput_has_no_interval(capsys) -> None:
    from tfsbench.cli import main

    assert main(["compare", str(FIX / "a" / "a1.json"), str(FIX / "b" / "b1.json")]) == 0
    out = capsys.readouterr().out
    assert "note: throughput (req/s): too few whole windows for an interval: 4 in A, 4 in B" in out
