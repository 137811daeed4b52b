"""When warm-up ends and when measuring stops, decided while a run goes (perf_analyzer's idea).

The engines report what they measured on every tick (cumulative counts, and each second as it
closes); `StopControl`, in the process that started them, decides from that:

- warm-up (config.warmup_auto; config.warmup_s is then its bound): ends once every engine's
  throughput over its last two slots of about half a second has settled (stability.settled),
  after at least stability.MIN_WARMUP_S;
- measuring (config.until_stable; config.duration_s is then its bound): stops as soon as the
  stability verdict over the whole measured seconds holds: enough samples for the p99, and the
  thirds of the measured window agreeing beyond sampling noise (re-judged after every second); a
  closed-loop run also stops when the seconds from some second s on are stable, setting aside at
  most the first third (stability.settled_start): its result is then those seconds (`cut_s` = s, no errors before).

Decisions are written to a two-slot channel (measure start, measure end; 0 = as planned) that
the engines read on their next tick (within 0.1 s): each decision lies LEAD_S in the future, so
every engine process switches at the same instant on the shared monotonic clock.
"""

from __future__ import annotations

from collections.abc import MutableSequence

from tfsbench.bench.measure import hist
from tfsbench.bench.measure.recorder import SecondPoint
from tfsbench.bench.results import RunConfig
from tfsbench.bench.stats import stability

LEAD_S = 0.2
SLOT_S = 0.45  # warm-up slots: at least this long (ticks come every 0.5 s)


SLO_BOUND_KEY = "stability_slo_p99_ms"  # config.extra: an SLO search's bound on the p99 its probes judge


def slo_bound_us(config: RunConfig) -> float | None:
    """The SLO bound (us) a search probe's stability is judged against (stability.verdict), or None."""
    value = (config.extra or {}).get(SLO_BOUND_KEY)
    return float(value) * 1000.0 if isinstance(value, int | float) and value > 0 else None


class StopControl:
    """Not thread-safe: fed from the one thread that reads the engines' messages."""

    def __init__(self, config: RunConfig, n_engines: int, channel: MutableSequence[float]) -> None:
        self.auto_warmup = bool(config.warmup_auto) and config.warmup_s > 0
        self.until_stable = bool(config.until_stable) and config.duration_s is not None
        self.config = config
        self.channel = channel
        self.start_at: float | None = None
        self.measure_at: float | None = None
        self.end_at: float | None = None
        self.warmup_how = "fixed --warmup" if not self.auto_warmup else ""
        self.stop_how = ""
        self.cut_s = 0  # measured seconds set aside at the start (stability.settled_start)
        self._may_cut = config.mode == "closed"
        self._errors: list[int] = []  # per measured second
        self._bound_us = slo_bound_us(config)
        self._history: dict[int, list[tuple[float, int]]] = {i: [] for i in range(n_engines)}
        self._pending: dict[int, dict[int, SecondPoint]] = {}
        self._closed_upto = {i: -1 for i in range(n_engines)}
        self._points: list[tuple[int, hist.Sparse | None]] = []

    @property
    def active(self) -> bool:
        return self.auto_warmup or self.until_stable

    def started(self, start_at: float) -> None:
        self.start_at = start_at
        if not self.auto_warmup:
            self.measure_at = start_at + self.config.warmup_s

    def tick(self, index: int, now: float, completions: int, closed: tuple[SecondPoint, ...]) -> None:
        if self.start_at is None:
            return
        if self.measure_at is None:
            self._warmup_tick(index, now, completions)
        for p in closed:
            if p.sec >= 0:
                self._pending.setdefault(p.sec, {})[index] = p
                self._closed_upto[index] = max(self._closed_upto[index], p.sec)
        self._merge_complete()
        if self.until_stable and self.end_at is None and self._points:
            ok_total = sum(ok for ok, _ in self._points)
            stable, _ = stability.verdict(self._points, ok_total, bound_us=self._bound_us)
            if stable:
                self._set_end(now + LEAD_S)
                self.stop_how = "until stable"
            elif self._may_cut:
                clean = next((i for i, e in enumerate(self._errors) if e), len(self._errors))
                cut = stability.settled_start(self._points, max_start=clean, bound_us=self._bound_us)
                if cut is not None:
                    self.cut_s = cut
                    self._set_end(now + LEAD_S)
                    self.stop_how = f"until stable from its second {cut}"

    def _warmup_tick(self, index: int, now: float, completions: int) -> None:
        assert self.start_at is not None
        planned = self.start_at + self.config.warmup_s
        if now + LEAD_S >= planned:
            self.measure_at = planned
            self.warmup_how = f"throughput did not settle within the {self.config.warmup_s:g} s bound"
            return
        history = self._history[index]
        if not history or now - history[-1][0] >= SLOT_S:
            history.append((now, completions))
        if now - self.start_at < stability.MIN_WARMUP_S:
            return
        k = stability.SETTLE_SLOTS
        for h in self._history.values():
            if len(h) < k + 1 or not stability.settled(
                    [(h[j][1] - h[j - 1][1], h[j][0] - h[j - 1][0]) for j in range(len(h) - k, len(h))]):
                return
        at = now + LEAD_S
        self.measure_at = at
        self.channel[0] = at
        self.warmup_how = "throughput settled"
        if self.config.duration_s is not None:
            self._set_end(at + self.config.duration_s)
            self.end_at = None  # the bound, not a decision

    def _set_end(self, at: float) -> None:
        self.end_at = at
        self.channel[1] = at

    def _merge_complete(self) -> None:
        done = min(self._closed_upto.values())
        while len(self._points) <= done:
            parts = self._pending.pop(len(self._points), {})
            encoded = [p.histogram for p in parts.values() if p.histogram]
            merged: hist.Sparse | None = None
            if encoded:  # decoded once here, not at every verdict: the verdict runs every second
                h = hist.new()
                for e in encoded:
                    hist.merge_into(h, hist.decode(e))
                merged = hist.sparse_counts(h)
            self._points.append((sum(p.requests - p.errors for p in parts.values()), merged))
            self._errors.append(sum(p.errors for p in parts.values()))
