"""tfsbench.reports.check: the threshold language, threshold verdicts, baseline comparison, JUnit and Markdown."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from tfsbench.bench.measure import hist
from tfsbench.bench.results import LatencySummary, RunConfig, RunResult, Summary, TimePoint, load_result
from tfsbench.payloads.errors import InputError
from tfsbench.reports import check as gates

FIXTURE_V1 = Path(__file__).parent / "fixtures" / "results" / "v1_check_numeric_b8.json"


def make_run(
    median_ms: float = 5.0,
    *,
    n: int = 5000,
    sigma: float = 0.25,
    seed: int = 0,
    kind: str = "numeric",
    batch_size: int = 8,
    fmt: str = "row",
    concurrency: int | None = 4,
    errors: int = 0,
    rps_per_s: float = 500.0,
    stable: bool = True,
    model: str = "numeric",
    histogram: bool = True,
) -> RunResult:
    """A run whose latency histogram holds `n` lognormal samples around `median_ms`."""
    rng = np.random.default_rng(seed)
    samples_ms = rng.lognormal(np.log(median_ms), sigma, size=n)
    h = hist.new()
    hist.record_many(h, samples_ms * 1000.0)
    lat = LatencySummary(**hist.summary_ms(h))
    seconds = 10
    per_s = rng.normal(rps_per_s, rps_per_s * 0.02, size=seconds)
    ok = n - errors
    throughput = ok / seconds
    summary = Summary(
        requests=n, ok=ok, errors={"http_503": errors} if errors else {}, throughput_rps=throughput,
        throughput_ips=throughput * batch_size, latency_ms=lat, request_bytes=100.0, response_bytes=50.0,
        raw_bytes=64.0, stable=stable, stability_reason="" if stable else "p99 varies", measured_s=seconds,
    )
    config = RunConfig(
        url="http://127.0.0.1:8501", model=model, kind=kind, batch_size=batch_size, format=fmt,
        mode="closed" if concurrency else "open", engine="aiohttp", concurrency=concurrency,
        rate_rps=None if concurrency else 100.0, arrival=None if concurrency else "constant",
    )
    timeseries = tuple(
        TimePoint(t_s=float(t), requests=int(per_s[t]), errors=0, p50_ms=lat.p50, p99_ms=lat.p99)
        for t in range(seconds)
    )
    return RunResult(
        config=config, environment={}, summary=summary, timeseries=timeseries,
        histogram=hist.encode(h) if histogram else None,
    )


# ---- the language ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "metric", "op", "value"),
    [
        ("p99<50ms", "p99", "<", 50.0),
        ("p50<=10ms", "p50", "<=", 10.0),
        ("p99 < 0.05s", "p99", "<", 50.0),
        ("p99.9<1s", "p999", "<", 1000.0),
        ("mean<=500us", "mean", "<=", 0.5),
        ("error_rate<1%", "error_rate", "<", 0.01),
        ("error_rate<=0.02", "error_rate", "<=", 0.02),
        ("throughput_ips>=200", "throughput_ips", ">=", 200.0),
        ("throughput_rps>100/s", "throughput_rps", ">", 100.0),
        ("errors==0", "errors", "==", 0.0),
        ("stable==true", "stable", "==", 1.0),
        ("client_saturated!=true", "client_saturated", "!=", 1.0),
        ("server_p99<20ms", "server_p99", "<", 20.0),
    ],
)
def test_parse_threshold_forms(text: str, metric: str, op: str, value: float) -> None:
    t = gates.parse_threshold(text)
    assert (t.metric, t.op) == (metric, op)
    assert t.value == pytest.approx(value)
    assert t.scope == ()


@pytest.mark.slow
def test_parse_scoped_threshold() -> None:
    t = gates.parse_threshold("[kind=numeric, batch=8] p99<50ms")
    assert t.scope == (("kind", "numeric"), ("batch_size", "8"))
    assert t.applies_to(make_run().config)
    assert not t.applies_to(make_run(batch_size=16).config)
    assert not t.applies_to(make_run(kind="text").config)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("p99x<50ms", "unknown metric 'p99x' (did you mean 'p99'?)"),
        ("latency<50ms", "unknown metric"),
        ("p99<50", "add a unit"),
        ("p99<fast", "not a time"),
        ("p99 50ms", "not of the form"),
        ("", "empty"),
        ("error_rate<5", "fraction in [0, 1]"),
        ("stable<true", "use == or !="),
        ("stable==yes", "true or false"),
        ("[kind] p99<5ms", "not FIELD=VALUE"),
        ("[color=red] p99<5ms", "unknown scope field 'color'"),
        ("[batch=eight] p99<5ms", "needs a number"),
        ("[] p99<5ms", "empty scope"),
        ("errors<1.5", "whole number"),
    ],
)
def test_parse_threshold_rejects(text: str, needle: str) -> None:
    with pytest.raises(InputError) as info:
        gates.parse_threshold(text)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


# ---- verdicts ----------------------------------------------------------------------------------


def test_thresholds_pass_and_fail_on_measured_values() -> None:
    run = make_run(median_ms=5.0, errors=100)  # 2% errors
    p99 = run.summary.latency_ms.p99
    outcome = gates.check_results(
        [run], [f"p99<{p99 + 1:.3f}ms", f"p99<{p99 - 0.5:.3f}ms", "error_rate<1%", "error_rate<5%", "stable==true"]
    )
    verdicts = [c.passed for c in outcome.checks]
    assert verdicts == [True, False, False, True, True]
    assert outcome.exit_status == 1
    assert "100 of 5000" in outcome.checks[2].measured


def test_all_pass_exit_zero_and_scoped_thresholds_only_touch_their_runs() -> None:
    runs = [make_run(batch_size=1, seed=1), make_run(batch_size=8, seed=2)]
    outcome = gates.check_results(runs, ["[batch=8] p50<100ms", "throughput_ips>1"])
    assert [c.config for c in outcome.checks] == [
        runs[1].config.label_text(), runs[0].config.label_text(), runs[1].config.label_text()
    ]
    assert outcome.exit_status == 0


def test_scope_matching_no_run_is_an_error_not_a_pass() -> None:
    with pytest.raises(InputError, match="matches no run"):
        gates.check_results([make_run()], ["[kind=image] p99<50ms"])


def test_missing_data_fails_instead_of_passing() -> None:
    run = make_run()
    outcome = gates.check_results([run], ["server_p99<1000ms"])
    assert not outcome.checks[0].passed
    assert "no server metrics" in outcome.checks[0].detail
    no_ok = dataclasses.replace(run, summary=dataclasses.replace(run.summary, ok=0))
    outcome = gates.check_results([no_ok], ["p99<1000ms"])
    assert not outcome.checks[0].passed


def test_server_threshold_reads_the_server_view() -> None:
    run = dataclasses.replace(make_run(), server={"found": True, "latency_ms": {"p99": 3.0, "p50": 1.0}})
    outcome = gates.check_results([run], ["server_p99<5ms", "server_p50<0.5ms"])
    assert [c.passed for c in outcome.checks] == [True, False]


def test_nothing_to_check_is_bad_input() -> None:
    with pytest.raises(InputError, match="nothing to check"):
        gates.check_results([make_run()], [])


# ---- baseline ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_same_distribution_is_not_a_regression() -> None:
    base = make_run(seed=1)
    cur = make_run(seed=2)
    outcome = gates.check_results([cur], [], baseline=[base], max_regression=0.10)
    assert outcome.exit_status == 0
    assert {c.mark for c in outcome.checks} <= {"=", "~"}
    assert [c.name for c in outcome.checks] == ["baseline p50", "baseline p99", "baseline throughput_ips"]


@pytest.mark.slow
def test_significant_slowdown_beyond_tolerance_fails() -> None:
    base = make_run(median_ms=5.0, seed=1)
    cur = make_run(median_ms=6.5, seed=2)  # 30% slower with 5000 samples each: clearly significant
    outcome = gates.check_results([cur], [], baseline=[base], max_regression=0.10, compare_metrics=("p50", "p99"))
    assert outcome.exit_status == 1
    p50 = outcome.checks[0]
    assert p50.mark == "worse" and not p50.passed
    assert "95% CI" in p50.detail


@pytest.mark.slow
def test_slowdown_within_tolerance_passes() -> None:
    base = make_run(median_ms=5.0, seed=1)
    cur = make_run(median_ms=5.2, seed=2)  # ~4% slower
    outcome = gates.check_results([cur], [], baseline=[base], max_regression=0.10, compare_metrics=("p50",))
    assert outcome.exit_status == 0
    assert outcome.checks[0].mark == "="


@pytest.mark.slow
def test_difference_within_noise_is_marked_tilde_and_never_fails() -> None:
    # 12 samples each: p99 is the max of a tiny sample, so a 20% gap is noise, not a regression
    base = make_run(median_ms=5.0, n=12, sigma=0.6, seed=3)
    cur = make_run(median_ms=6.0, n=12, sigma=0.6, seed=4)
    cmp = gates.compare_metric(cur, base, "p99", 0.05)
    assert cmp is not None
    assert abs(cmp.change) > 0.05
    assert cmp.ci is not None and cmp.ci[0] < 0 < cmp.ci[1]
    assert cmp.mark == "~" and cmp.passed


@pytest.mark.slow
def test_improvement_is_better() -> None:
    base = make_run(median_ms=6.5, seed=1)
    cur = make_run(median_ms=5.0, seed=2)
    cmp = gates.compare_metric(cur, base, "p50", 0.10)
    assert cmp is not None and cmp.mark == "better" and cmp.passed


@pytest.mark.slow
def test_throughput_drop_is_a_regression() -> None:
    base = make_run(rps_per_s=500.0, n=5000, seed=1)
    cur = make_run(rps_per_s=300.0, n=3000, seed=2)
    cmp = gates.compare_metric(cur, base, "throughput_ips", 0.10)
    assert cmp is not None and cmp.mark == "worse" and not cmp.passed


@pytest.mark.slow
def test_unlike_runs_are_refused_naming_the_fields() -> None:
    with pytest.raises(InputError) as info:
        gates.check_results([make_run(batch_size=8)], [], baseline=[make_run(batch_size=16)])
    msg = str(info.value)
    assert "refusing to compare unlike runs" in msg
    assert "batch_size (8 vs 16)" in msg
    with pytest.raises(InputError, match=r"model \('numeric' vs 'other'\)"):
        gates.check_results([make_run()], [], baseline=[make_run(model="other")])
    with pytest.raises(InputError, match=r"concurrency \(4 vs 8\)"):
        gates.check_results([make_run()], [], baseline=[make_run(concurrency=8)])


@pytest.mark.slow
def test_runs_pair_by_configuration_in_a_sweep() -> None:
    base = [make_run(batch_size=b, seed=b) for b in (1, 8, 32)]
    cur = [make_run(batch_size=b, seed=b + 100) for b in (8, 1)]
    pairs, notes = gates.pair_with_baseline(cur, base)
    assert [(c.config.batch_size, b.config.batch_size) for c, b in pairs] == [(8, 8), (1, 1)]
    assert any("b=32" in n for n in notes)


@pytest.mark.slow
def test_missing_histogram_falls_back_to_the_threshold_alone() -> None:
    base = make_run(median_ms=5.0, seed=1, histogram=False)
    cur = make_run(median_ms=6.5, seed=2, histogram=False)
    cmp = gates.compare_metric(cur, base, "p50", 0.10)
    assert cmp is not None and cmp.ci is None and cmp.mark == "worse"


def test_v1_baseline_fixture_migrates_and_compares() -> None:
    old = load_result(FIXTURE_V1)
    assert old.server is None
    again = gates.check_results([old], ["p99<1s"], baseline=[old])
    assert again.exit_status == 0


def test_tolerance_parsing() -> None:
    assert gates.parse_tolerance("10%") == pytest.approx(0.10)
    assert gates.parse_tolerance("0.05") == pytest.approx(0.05)
    with pytest.raises(InputError):
        gates.parse_tolerance("ten")
    with pytest.raises(InputError):
        gates.parse_tolerance("-5%")


# ---- rendering ---------------------------------------------------------------------------------


def _outcome() -> gates.CheckOutcome:
    runs = [make_run(batch_size=1, seed=1), make_run(batch_size=8, seed=2)]
    return gates.check_results(runs, ["p99<1ms", "error_rate<1%"], baseline=runs, compare_metrics=("p50",))


@pytest.mark.slow
def test_junit_has_one_testcase_per_threshold_and_configuration() -> None:
    outcome = _outcome()
    root = ET.fromstring(gates.render_junit(outcome))
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 2 * 2 + 2  # two thresholds x two configurations + one baseline metric x two
    failures = [c for c in cases if c.find("failure") is not None]
    assert len(failures) == 2  # p99<1ms fails on both configurations
    assert root.find("testsuite").get("failures") == "2"
    assert {c.get("classname") for c in cases} == {"tfsbench.numeric b=1 row c=4", "tfsbench.numeric b=8 row c=4"}
    assert failures[0].find("failure").get("message")


@pytest.mark.slow
def test_markdown_summary_is_a_table_with_the_verdict() -> None:
    md = gates.render_markdown(_outcome())
    assert md.startswith("## tfsbench check: :x: 2 of 6 checks failed")
    assert "| result | configuration | check | measured | detail |" in md
    assert "p99&lt;1ms" in md
    assert "bootstrap" in md
    text = gates.render_text(_outcome())
    assert text.splitlines()[-1] == "check: FAILED: 2 of 6 checks failed"


@pytest.mark.slow
def test_a_new_model_version_is_compared_not_refused() -> None:
    base = make_run(seed=1)
    cur = make_run(seed=2)
    base = dataclasses.replace(base, config=dataclasses.replace(base.config, version=6))
    cur = dataclasses.replace(cur, config=dataclasses.replace(cur.config, version=7))
    outcome = gates.check_results([cur], [], baseline=[base])
    assert outcome.checks and any("model version 7 vs baseline 6" in n for n in outcome.notes)
