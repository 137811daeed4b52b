"""The one recorder both engines feed: counts, error classes, HDR histograms, a per-second series.

Memory is O(1) in the number of requests: latencies are buffered (flat `array('d')` buffers, no
float objects kept) until the next tick, at most a tenth of a second, and then folded into
HdrHistograms (`tfsbench.bench.measure.hist.record_many`); each finished second keeps only its counts and a
compressed histogram of that second (a few hundred bytes), so a 30-minute run holds ~2k of them.
Folding on every tick, rather than once a second, matters for the open loop: folding a whole
second at 45k req/s took about 10 ms of the event loop, which made hundreds of arrivals late once
a second; a tick's share takes a fraction of a millisecond.

A request belongs to the phase in which it was (intended to be) sent: warmup requests appear in the
time series (negative seconds) but never in the statistics. A run whose warm-up ends when throughput
settles moves the start of the measured window while it runs (`begin_measuring`): the second in
progress is cut short there, and the warm-up seconds are renumbered so that second 0 starts it.

Latency statistics are over successful responses; failures are counted by class and kept out of
the percentiles (a fast 500 must not make p99 look good, a 30 s timeout is reported as a timeout).
"""

from __future__ import annotations

import math
import resource
import time
from array import array
from dataclasses import dataclass, field

import numpy as np
from tfsbench.bench.measure import hist
from tfsbench.bench.measure.engine import Outcome

LATE_S = 0.001  # open loop: a request sent more than 1 ms after its intended time is late
MAX_ERROR_SAMPLES = 5


@dataclass(frozen=True, slots=True)
class SecondPoint:
    """One second of one engine process; `sec` counts from the measured window's start."""

    sec: int
    requests: int
    errors: int
    histogram: str | None  # latencies (us) of ok responses completed in this second


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """Everything one engine process measured; the runner merges these exactly."""

    index: int
    requests: int
    ok: int
    errors: dict[str, int]
    error_samples: tuple[str, ...]
    histogram: str
    lag_histogram: str | None
    late_requests: int
    refused_inflight: int
    request_bytes_total: int
    response_bytes_total: int
    seconds: tuple[SecondPoint, ...]
    measure_start: float  # perf_counter (system-wide monotonic clock, comparable across processes)
    measure_end: float  # last completion of a measured request, or the stop time
    cpu_s: float  # process CPU time (user + system) over the run
    wall_s: float
    max_rss_kb: int
    connections_opened: int = 0
    idle_spin_s: float = 0.0  # open loop: part of cpu_s spent spinning for timer precision
    warmup_requests: int = 0
    warmup_errors: int = 0
    extra: dict[str, float] = field(default_factory=dict)


class Recorder:
    """Not thread-safe: one per engine process, called from its event loop only."""

    def __init__(self, measure_start: float, run_start: float, open_loop: bool, index: int = 0) -> None:
        self.index = index
        self.measure_start = measure_start
        self.open_loop = open_loop
        self.requests = 0
        self.ok = 0
        self.errors: dict[str, int] = {}
        self.error_samples: list[str] = []
        self.request_bytes_total = 0
        self.response_bytes_total = 0
        self.late = 0
        self.refused = 0
        self.warm_requests = 0
        self.warm_errors = 0
        self.last_done = measure_start
        # not yet folded into the histograms (us): ok latencies of measured requests (for the run
        # and the current second) and of warmup requests (for the current second only), and
        # open-loop lags; one append per response
        self._lat = array("d")
        self._warm_lat = array("d")
        self._lag = array("d")
        self._hist = hist.new()
        self._lag_hist = hist.new() if open_loop else None
        self._sec_hist = hist.new()
        self._sec = math.floor(run_start - measure_start)
        self._next_boundary = measure_start + self._sec + 1
        self._sec_req = 0
        self._sec_err = 0
        self._seconds: list[SecondPoint] = []
        self._cut: float | None = None  # a new measure_start not yet reached (begin_measuring)
        self._taken = 0  # seconds already handed out by take_seconds
        self.idle_spin_s = 0.0  # open loop: time spent yielding with nothing to do (not work)
        self._cpu0 = time.process_time()
        self._wall0 = time.perf_counter()

    # ---- hot path -----------------------------------------------------------------------------

    def record(self, t_send: float, t_done: float, outcome: Outcome, request_bytes: int) -> None:
        """One finished attempt. `t_send` is the intended send time in open loop (so a stalled
        server shows up in the latency), the actual send time in closed loop."""
        if t_done >= self._next_boundary:
            self.roll(t_done)
        self._sec_req += 1
        err = outcome.error
        if t_send >= self.measure_start:
            self.requests += 1
            self.request_bytes_total += request_bytes
            self.response_bytes_total += outcome.response_bytes
            if t_done > self.last_done:
                self.last_done = t_done
            if err is None:
                self.ok += 1
                self._lat.append((t_done - t_send) * 1e6)
                return
            self.errors[err] = self.errors.get(err, 0) + 1
        else:
            self.warm_requests += 1
            if err is None:
                self._warm_lat.append((t_done - t_send) * 1e6)
                return
            self.warm_errors += 1
        self._sec_err += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES and outcome.detail:
            sample = f"{err}: {outcome.detail}"
            if sample not in self.error_samples:
                self.error_samples.append(sample)

    def record_lag(self, intended: float, actual: float) -> None:
        """Open loop: how late a measured request left compared with its schedule."""
        lag = actual - intended
        if lag > LATE_S:
            self.late += 1
        self._lag.append(lag * 1e6)

    def refuse(self, intended: float) -> None:
        """Open loop: an arrival not sent because --max-inflight requests were already in flight."""
        if intended >= self.measure_start:
            self.refused += 1

    # ---- once a second ------------------------------------------------------------------------

    def roll(self, now: float) -> None:
        """Fold the buffers into the histograms, and close every second that ended before `now`
        (empty seconds too: a stall shows as a gap). Called on every tick and from `record`."""
        self._fold()
        while now >= self._next_boundary:
            self._close_second()
            if self._cut is not None and self._next_boundary == self._cut:
                self._restart_grid()
                continue
            self._next_boundary += 1.0
            if self._cut is not None and self._next_boundary > self._cut:
                self._next_boundary = self._cut

    def begin_measuring(self, t: float) -> None:
        """Start the measured window at `t` (perf_counter, not yet passed) instead of the planned
        time: requests sent from `t` on are measured, the second in progress ends at `t`."""
        if t >= self.measure_start:
            return
        self._fold()
        self.measure_start = t
        self.last_done = t
        self._cut = t
        if self._next_boundary > t:
            self._next_boundary = t

    def _restart_grid(self) -> None:
        n = len(self._seconds)
        self._seconds = [SecondPoint(i - n, p.requests, p.errors, p.histogram) for i, p in enumerate(self._seconds)]
        self._sec = 0
        self._next_boundary = self._cut + 1.0  # type: ignore[operator]
        self._cut = None

    def take_seconds(self) -> list[SecondPoint]:
        """Seconds closed since the last call (for a controller deciding when to stop)."""
        new = self._seconds[self._taken:]
        self._taken = len(self._seconds)
        return new

    def _close_second(self) -> None:
        enc = None
        if self._sec_hist.total_count:
            enc = hist.encode(self._sec_hist)
            hist.clear(self._sec_hist)
        self._seconds.append(SecondPoint(self._sec, self._sec_req, self._sec_err, enc))
        self._sec_req = 0
        self._sec_err = 0
        self._sec += 1

    def _fold(self) -> None:
        if self._lat:  # one index computation for the run's and the second's histogram
            hist.record_many(self._hist, self._lat, also=(self._sec_hist,))
            self._lat = array("d")
        if self._warm_lat:
            hist.record_many(self._sec_hist, self._warm_lat)
            self._warm_lat = array("d")
        if self._lag and self._lag_hist is not None:
            hist.record_many(self._lag_hist, np.maximum(np.frombuffer(self._lag), 0.0))
            self._lag = array("d")

    # ---- the end --------------------------------------------------------------------------------

    def report(self, end: float, connections_opened: int = 0) -> WorkerReport:
        """Everything so far; the current (incomplete) second is included as the last point."""
        self.roll(end)
        if self._sec_req:
            self._close_second()
        return WorkerReport(
            index=self.index,
            requests=self.requests,
            ok=self.ok,
            errors=dict(self.errors),
            error_samples=tuple(self.error_samples),
            histogram=hist.encode(self._hist),
            lag_histogram=hist.encode(self._lag_hist) if self._lag_hist is not None else None,
            late_requests=self.late,
            refused_inflight=self.refused,
            request_bytes_total=self.request_bytes_total,
            response_bytes_total=self.response_bytes_total,
            seconds=tuple(self._seconds),
            measure_start=self.measure_start,
            measure_end=self.last_done if self.requests else end,
            cpu_s=time.process_time() - self._cpu0,
            wall_s=time.perf_counter() - self._wall0,
            max_rss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            connections_opened=connections_opened,
            idle_spin_s=self.idle_spin_s,
            warmup_requests=self.warm_requests,
            warmup_errors=self.warm_errors,
        )
