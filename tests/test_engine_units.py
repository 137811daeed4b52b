"""Unit tests of the engine's pure parts: arrivals, histograms, stability, classification, merging."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tfsbench.bench.measure import hist
from tfsbench.bench.measure.engine import classify, header_dict, model_url, predict_url
from tfsbench.bench.measure.recorder import Recorder
from tfsbench.bench.measure.runner import (
    assemble,
    check_config,
    merge_seconds,
    payload_extra,
    payload_spec_for,
    plans_for,
)
from tfsbench.bench.measure.schedule import arrival_offsets, interarrival_s
from tfsbench.bench.results import RunConfig, RunResult, load_result
from tfsbench.bench.stats import stability
from tfsbench.bench.units import parse_duration_s, parse_rate_rps
from tfsbench.payloads.errors import InputError

FIXTURES = Path(__file__).parent / "fixtures" / "results"


def _cfg(**kw: object) -> RunConfig:
    base = dict(url="http://127.0.0.1:8501", model="numeric", kind="numeric", batch_size=2, format="row",
                mode="closed", engine="fast", concurrency=4, duration_s=10.0)
    base.update(kw)
    return RunConfig(**base)  # type: ignore[arg-type]


# ---- arrivals -----------------------------------------------------------------------------------


def test_poisson_interarrival_mean_and_variance_match_exponential() -> None:
    rate = 250.0
    gaps = interarrival_s(rate, "poisson", 200_000, np.random.default_rng(7))
    # exponential(1/rate): mean 1/rate, variance 1/rate^2 (coefficient of variation 1)
    assert gaps.mean() == pytest.approx(1 / rate, rel=0.01)
    assert gaps.var() == pytest.approx(1 / rate**2, rel=0.03)
    assert (gaps > 0).all()


def test_poisson_counts_per_second_have_variance_equal_to_mean() -> None:
    offsets = arrival_offsets(100.0, "poisson", seed=3)
    counts = np.zeros(400, dtype=int)
    for t in offsets:
        if t >= 400:
            break
        counts[int(t)] += 1
    assert counts.mean() == pytest.approx(100.0, rel=0.02)
    assert counts.var() == pytest.approx(100.0, rel=0.2)  # Poisson: variance == mean


def test_constant_arrivals_are_exact_and_phase_shifted() -> None:
    it = arrival_offsets(200.0, "constant", phase_s=0.0025)
    first = [next(it) for _ in range(10_001)]
    assert first[0] == pytest.approx(0.0025)
    assert first[10_000] == pytest.approx(0.0025 + 50.0, abs=1e-9)  # no drift over 10k arrivals
    assert np.allclose(np.diff(first), 1 / 200.0)


def test_processes_split_load_exactly() -> None:
    plans = plans_for(_cfg(concurrency=7, processes=3, requests_limit=1000, duration_s=None))
    assert [p.concurrency for p in plans] == [3, 2, 2]
    assert sum(p.requests_limit or 0 for p in plans) == 1000
    open_plans = plans_for(_cfg(mode="open", concurrency=None, rate_rps=300.0, arrival="constant", processes=2))
    assert [p.rate_rps for p in open_plans] == [150.0, 150.0]
    # process 1 is shifted by one global gap, so the union is evenly spaced at 300/s
    assert open_plans[1].phase_s == pytest.approx(1 / 300.0)
    assert open_plans[0].seed != open_plans[1].seed


# ---- histograms ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_bulk_recording_equals_one_by_one() -> None:
    values = np.random.default_rng(1).lognormal(7, 1.5, 20_000)
    bulk, single = hist.new(), hist.new()
    hist.record_many(bulk, values)
    for v in values:
        single.record_value(int(round(min(max(v, 1), hist.HIGHEST_US))))
    assert list(bulk.counts) == list(single.counts)
    assert bulk.get_total_count() == single.get_total_count() == 20_000
    assert hist.summary_ms(bulk) == hist.summary_ms(single)


def test_bulk_recording_into_several_histograms_equals_separate_recordings() -> None:
    values = np.random.default_rng(3).lognormal(6, 1.0, 5_000)
    a, b, ref = hist.new(), hist.new(), hist.new()
    hist.record_many(ref, values)
    hist.record_many(b, [42.0])  # `also` adds to what a histogram already holds
    assert hist.record_many(a, values, also=(b,)) == 5_000
    assert list(a.counts) == list(ref.counts)
    assert b.get_total_count() == 5_001 and b.get_min_value() == min(42, ref.get_min_value())
    assert b.get_max_value() == ref.get_max_value()
    from hdrh.histogram import HdrHistogram

    with pytest.raises(ValueError, match="different shapes"):
        hist.record_many(a, values, also=(HdrHistogram(1, 1000, 2),))
    assert list(a.counts) == list(ref.counts)  # refused before anything was recorded


def test_recorder_folding_on_ticks_keeps_seconds_and_warmup_exact() -> None:
    """Latencies are folded on every tick, not once a second (a second's worth stalled the open
    loop for ~10 ms); each second's histogram must still hold exactly that second's responses, and
    the run's histogram only the measured ones (warmup excluded)."""
    from tfsbench.bench.measure.engine import OK_EMPTY, Outcome

    rng = np.random.default_rng(4)
    measure_start = 100.0
    rec = Recorder(measure_start, measure_start - 1.0, open_loop=True)  # one warmup second
    expected: dict[int, list[float]] = {}
    measured: list[float] = []
    t = measure_start - 1.0
    for k in range(3000):  # 3 s of completions, 1 ms apart, with a tick every 100 ms
        t += 0.001
        lat = float(rng.uniform(100, 50_000))  # us
        send = t - lat / 1e6
        rec.record(send, t, OK_EMPTY if k % 7 else Outcome("http_500", 0, "x"), 10)
        if k % 7:
            expected.setdefault(int(np.floor(t - measure_start)), []).append(lat)
            if send >= measure_start:
                measured.append(lat)
        rec.record_lag(send, send + 0.0002)
        if k % 100 == 0:
            rec.roll(t)  # the ticker's call
    report = rec.report(t + 0.0005)
    by_sec = {p.sec: p for p in report.seconds}
    assert sorted(by_sec) == sorted(expected) and min(by_sec) == -1
    for sec, lats in expected.items():
        h, ref = hist.decode(by_sec[sec].histogram), hist.new()
        hist.record_many(ref, lats)
        assert list(h.counts) == list(ref.counts), f"second {sec}"
    ref = hist.new()
    hist.record_many(ref, measured)
    assert list(hist.decode(report.histogram).counts) == list(ref.counts)
    assert hist.total_count(report.lag_histogram) == 3000
    assert report.ok == len(measured)


def test_merging_encoded_histograms_equals_one_histogram() -> None:
    rng = np.random.default_rng(2)
    parts = [rng.exponential(2000, 5000) for _ in range(3)]
    whole = hist.new()
    hist.record_many(whole, np.concatenate(parts))
    encoded = []
    for p in parts:
        h = hist.new()
        hist.record_many(h, p)
        encoded.append(hist.encode(h))
    merged = hist.decode(hist.merge(encoded))
    assert list(merged.counts) == list(whole.counts)
    assert hist.percentiles_ms(merged, [50, 99, 99.9]) == hist.percentiles_ms(whole, [50, 99, 99.9])
    spectrum = hist.spectrum_ms(hist.encode(merged))
    assert spectrum[-1][0] == 100.0 and spectrum[-1][1] == pytest.approx(merged.get_max_value() / 1000)
    assert all(a[1] <= b[1] for a, b in zip(spectrum, spectrum[1:], strict=False))


def test_decode_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        hist.decode("not a histogram")


# ---- stability ------------------------------------------------------------------------------------


def _seconds(rates: list[int], p99_us: list[float]) -> list[tuple[int, object]]:
    out = []
    rng = np.random.default_rng(5)
    for n, p in zip(rates, p99_us, strict=True):
        h = hist.new()
        hist.record_many(h, rng.uniform(0.5 * p, p, n))
        out.append((n, h))
    return out


def test_stable_when_last_windows_agree() -> None:
    secs = _seconds([2000] * 12, [5000] * 12)
    ok, reason = stability.verdict(secs, 24_000)
    assert ok, reason
    assert "stable" in reason and "p99" in reason and "windows of 4 s" in reason


def test_unstable_when_throughput_drifts() -> None:
    secs = _seconds([2000] * 9 + [2000, 1500, 1000], [5000] * 12)
    ok, reason = stability.verdict(secs, 21_000)
    assert not ok and "throughput" in reason


def test_unstable_when_p99_drifts() -> None:
    secs = _seconds([2000] * 12, [5000] * 10 + [9000, 9000])
    ok, reason = stability.verdict(secs, 24_000)
    assert not ok and "p99" in reason


def test_too_few_samples_and_partial_and_short() -> None:
    ok, reason = stability.verdict(_seconds([100] * 6, [5000] * 6), 600)
    assert not ok and "too few samples" in reason and "1000" in reason
    ok, reason = stability.verdict(_seconds([2000] * 6, [5000] * 6), 12_000, partial=True)
    assert not ok and "interrupted" in reason
    ok, reason = stability.verdict(_seconds([2000] * 2, [5000] * 2), 4000)
    assert not ok and "too short" in reason


# ---- classification and URLs ------------------------------------------------------------------


@pytest.mark.parametrize(("status", "body", "batch", "expected"), [
    (200, b'{"predictions": [[1], [2]]}', 2, None),
    (200, b'{"outputs": {"scores": [[1], [2]], "classes": [1, 2]}}', 2, None),
    (200, b'{"predictions": [[1]]}', 2, "batch_mismatch"),
    (200, b"<html>oops</html>", 1, "invalid_json"),
    (200, b'{"result": 1}', 1, "invalid_response"),
    (503, b'{"error": "overloaded"}', 1, "http_503"),
])
def test_classify(status: int, body: bytes, batch: int, expected: str | None) -> None:
    out = classify(status, body, batch)
    assert out.error == expected
    assert out.response_bytes == len(body)
    if status != 200:
        assert out.detail == '{"error": "overloaded"}'


def test_urls_and_headers() -> None:
    assert predict_url(_cfg()) == "http://127.0.0.1:8501/v1/models/numeric:predict"
    assert predict_url(_cfg(version=2)) == "http://127.0.0.1:8501/v1/models/numeric/versions/2:predict"
    assert model_url("https://h:1/", "m", label="stable") == "https://h:1/v1/models/m/labels/stable"
    assert header_dict(["Authorization: Bearer x", "X-A:b"]) == {"Authorization": "Bearer x", "X-A": "b"}
    for bad in ("NoColon", ": v", "A B: c"):
        with pytest.raises(InputError):
            header_dict([bad])


@pytest.mark.parametrize(("kw", "fragment"), [
    (dict(url="ftp://x"), "http://"),
    (dict(url="http://"), "no host"),
    (dict(batch_size=0), "--batch-size"),
    (dict(concurrency=0), "--concurrency"),
    (dict(duration_s=None), "bounded"),
    (dict(timeout_s=7200.0), "--timeout"),
    (dict(mode="open", concurrency=None, rate_rps=0.0), "--rate"),
    (dict(processes=5), "--processes"),
    (dict(version=1, label="x"), "not both"),
])
def test_bad_configs_are_one_line_input_errors(kw: dict, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        check_config(_cfg(**kw))
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_units() -> None:
    assert parse_duration_s("30s") == 30 and parse_duration_s("500ms") == 0.5 and parse_duration_s("2m") == 120
    assert parse_duration_s("1.5") == 1.5 and parse_duration_s("250us") == pytest.approx(0.00025)
    assert parse_rate_rps("1.5k") == 1500 and parse_rate_rps("200/s") == 200
    for bad in ("", "3x", "-1s", "nan"):
        with pytest.raises(InputError):
            parse_duration_s(bad)
    with pytest.raises(InputError):
        parse_rate_rps("0")


def test_payload_options_round_trip_through_config_extra() -> None:
    from tfsbench.payloads.spec import PayloadSpec

    spec = PayloadSpec(kind="image", batch_size=3, image_size=(64, 32), text_words=(2, 4), seed=9)
    cfg = _cfg(kind="image", batch_size=3, seed=9, extra={"payload": json.loads(json.dumps(payload_extra(spec)))})
    assert payload_spec_for(cfg) == spec
    with pytest.raises(InputError):
        payload_spec_for(_cfg(extra={"payload": {"image_sise": [1, 2]}}))


# ---- recorder, merging, schema ----------------------------------------------------------------


def _fake_report(index: int, start: float, latencies_ms: list[float], errors: int):
    from tfsbench.bench.measure.engine import Outcome

    rec = Recorder(measure_start=start, run_start=start - 1.0, open_loop=False, index=index)
    t = start - 0.5
    rec.record(t, t + 0.001, Outcome(None, 10), 20)  # warmup: time series only
    for k, ms in enumerate(latencies_ms):
        t0 = start + k * 0.01
        rec.record(t0, t0 + ms / 1000, Outcome(None, 10), 20)
    for k in range(errors):
        t0 = start + 0.5 + k * 0.01
        rec.record(t0, t0 + 0.002, Outcome("http_500", 5, "boom"), 20)
    return rec.report(start + 3.0)


def test_assemble_merges_processes_exactly_and_round_trips(tmp_path: Path) -> None:
    start = 1000.0
    a = _fake_report(0, start, [1.0] * 100 + [50.0] * 5, errors=3)
    b = _fake_report(1, start, [2.0] * 200, errors=0)
    cfg = _cfg(processes=2, duration_s=3.0)
    result = assemble(cfg, [a, b], {"host": "x"}, 16.0, "2026-11-27T00:00:00+00:00", None)
    s = result.summary
    assert (s.requests, s.ok, s.errors) == (308, 305, {"http_500": 3})
    assert s.ok + sum(s.errors.values()) == s.requests
    assert s.measured_s == 3.0 and s.throughput_rps == pytest.approx(305 / 3.0)  # the window, not the drain
    assert hist.decode(result.histogram).get_total_count() == 305
    assert s.latency_ms.max == pytest.approx(50.0, rel=0.002)
    assert s.request_bytes == 20 and s.raw_bytes == 16.0
    assert result.timeseries[0].t_s == -1.0 and result.timeseries[0].requests == 2  # warmup, both processes
    assert sum(p.requests for p in result.timeseries if p.t_s >= 0) == 308
    assert sum(p.requests for p in result.timeseries) == 310
    assert merge_seconds([a, b])[0][0] == -1
    again = RunResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result


def test_old_version_fixture_still_loads() -> None:
    """tests/fixtures/results/run-v1.json: a real `tfsbench run` result written as schema 1."""
    path = FIXTURES / "run-v1.json"
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == 1
    result = load_result(path)
    s = result.summary
    assert s.ok + sum(s.errors.values()) == s.requests > 0
    assert result.config.engine in ("fast", "aiohttp")
    assert hist.decode(result.histogram).get_total_count() == s.ok
    assert result.server is None  # v2 field, filled by the migration


@pytest.mark.parametrize("kind", ["timerfd", "loop"])
def test_open_loop_sleepers_never_wake_early(kind: str) -> None:
    """Waking before the intended time would send early; the loop's own 1 ms timers can."""
    import asyncio
    import time

    import uvloop
    from tfsbench.bench.measure.schedule import _LoopSleeper, make_sleeper

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        rec = Recorder(0.0, 0.0, True)
        sleeper = make_sleeper(loop, rec) if kind == "timerfd" else _LoopSleeper(rec)
        lags = []
        for k in range(60):
            t = time.perf_counter() + (0.0003 if k % 2 else 0.004)
            await sleeper.sleep_until(t)
            lags.append(time.perf_counter() - t)
        sleeper.close()
        return lags

    lags = uvloop.run(main())
    assert min(lags) >= 0.0
    assert float(np.median(lags)) < 0.02  # generous: the machine is shared
