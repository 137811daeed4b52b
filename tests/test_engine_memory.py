"""Memory after the load: assembling a long run must not grow with the run's length.

The 30-minute soak's load generator went from 55 MiB to 388 MiB after the load ended: hdrh's
histograms hold a reference cycle (histogram <-> encoder), so every per-second histogram that
`assemble` decoded (and its ~185 kB counts array) waited for the cyclic garbage collector.
`tfsbench.bench.measure.hist` now breaks the cycle, so reference counting frees each one at once.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram
from tfsbench.bench.measure import hist
from tfsbench.bench.measure.engine import Outcome
from tfsbench.bench.measure.recorder import Recorder, WorkerReport
from tfsbench.bench.measure.runner import assemble, merge_seconds
from tfsbench.bench.results import RunConfig
from tfsbench.bench.stats import stability

ROOT = Path(__file__).resolve().parent.parent
MEMORY_BOUND_MB = 60.0


def _report(seconds: int, per_second: int, index: int = 0, seed: int = 1, warmup_s: float = 2.0) -> WorkerReport:
    """A synthetic engine report: the recorder fed with made-up times, `per_second` ok responses
    per second with log-normal latencies (a few ms, a slow tail), plus the odd error."""
    rng = np.random.default_rng(seed)
    rec = Recorder(warmup_s, 0.0, True, index)
    ok = Outcome(None, 100)
    bad = Outcome("http_500", 10, "boom")
    lat = rng.lognormal(-6.0, 1.0, size=per_second * int(seconds + warmup_s))
    i = 0
    for s in range(int(seconds + warmup_s)):
        for k in range(per_second):
            t_send = s + (k + 0.5 * index) / per_second
            rec.record(t_send, t_send + float(lat[i]), bad if i % 97 == 0 else ok, 100)
            i += 1
    return rec.report(seconds + warmup_s)


def _cfg(seconds: int, processes: int = 1) -> RunConfig:
    return RunConfig(url="http://127.0.0.1:8501", model="numeric", kind="numeric", batch_size=1, format="row",
                     mode="open", engine="fast", rate_rps=100.0, arrival="constant", duration_s=float(seconds),
                     warmup_s=2.0, processes=processes)


def _reference_decode(encoded: str) -> HdrHistogram:
    """hdrh's own decode, untouched (the path before the fix)."""
    return HdrHistogram.decode(encoded.encode("ascii"))


def test_a_dropped_histogram_is_freed_without_the_cycle_collector() -> None:
    h = hist.new()
    hist.record_many(h, [120.0, 3_000.0, 45_000.0])
    encoded = hist.encode(h)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        decoded = hist.decode(encoded)
        assert hist.encode(decoded) == encoded  # the encoder still works through its weak proxy
        ref = weakref.ref(decoded)
        del decoded
        assert ref() is None, "a decoded histogram outlived its last reference (reference cycle)"
        fresh = hist.new()
        ref = weakref.ref(fresh)
        del fresh
        assert ref() is None
    finally:
        if was_enabled:
            gc.enable()


def test_timeseries_and_stability_match_the_reference_path() -> None:
    """Per-second p50/p99 and the stability verdict equal what plain hdrh decoding gives."""
    seconds = 40
    reports = [_report(seconds, 60, index=i, seed=10 + i) for i in range(2)]
    result = assemble(_cfg(seconds, processes=2), reports, {}, 0.0, "2026-11-27T00:00:00+00:00", None)
    merged = merge_seconds(reports)
    assert len(result.timeseries) == len(merged) == seconds + 2
    for point, (sec, req, err, enc) in zip(result.timeseries, merged, strict=True):
        assert point.t_s == float(sec) and point.requests == req and point.errors == err
        assert enc is not None
        ref = HdrHistogram(hist.LOWEST_US, hist.HIGHEST_US, hist.SIGNIFICANT_DIGITS)
        for r in reports:  # merge the engines' seconds with hdrh alone
            for p in r.seconds:
                if p.sec == sec and p.histogram:
                    ref.add(_reference_decode(p.histogram))
        assert point.p50_ms == ref.get_value_at_percentile(50.0) / 1000.0
        assert point.p99_ms == ref.get_value_at_percentile(99.0) / 1000.0
    measured = [(req - err, _reference_decode(enc)) for sec, req, err, enc in merged if 0 <= sec < seconds]
    s = result.summary
    assert (s.stable, s.stability_reason) == stability.verdict(measured, s.ok, False)
    whole = hist.new()
    for r in reports:
        hist.merge_into(whole, _reference_decode(r.histogram))
    assert s.latency_ms.p99 == whole.get_value_at_percentile(99.0) / 1000.0
    assert s.ok == whole.get_total_count() == sum(r.ok for r in reports)


_PROBE = r"""
import gc, json, resource, sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
from test_engine_memory import _cfg, _report
from tfsbench.bench.measure.runner import assemble
seconds = int(sys.argv[3])
report = _report(seconds, 20)
gc.collect()
if sys.argv[4] == "nogc":
    gc.disable()  # the worst case of the cycle collector's timing: the fix must not depend on it
before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = assemble(_cfg(seconds), [report], {}, 0.0, "x", None)
after_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grew_mb": (after_kb - before_kb) / 1024, "points": len(result.timeseries)}))
"""


def _assemble_growth_mb(seconds: int, gc_mode: str) -> float:
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(ROOT), str(Path(__file__).parent), str(seconds),
                           gc_mode], capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["points"] == seconds + 2
    return float(out["grew_mb"])


@pytest.mark.slow
def test_assembling_a_30_minute_report_keeps_peak_memory_bounded() -> None:
    """1,800 per-second histograms (185 kB each decoded: 333 MB if all alive at once)."""
    for mode in ("nogc", "gc"):
        grew_mb = _assemble_growth_mb(1800, mode)
        assert grew_mb < MEMORY_BOUND_MB, f"assemble of a 1800 s report grew peak RSS by {grew_mb:.0f} MB ({mode})"
