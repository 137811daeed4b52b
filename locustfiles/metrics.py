"""Payload-size and instance metrics per Locust request name, mergeable across workers.

Locust only tracks response sizes. Each request name here also gets its request wire bytes, raw
tensor bytes, the wire/raw overhead ratio and instances/s (ok requests/s x batch size), plus an
exact HdrHistogram of successful latencies (microseconds) that export turns into the run result.

In distributed mode every worker keeps a `PayloadMetrics` of what happened since its last report
and hands `take_delta()` to Locust's `report_to_master` event; the master `merge_delta`s them into
its own totals (Locust's messaging, the same path as Locust's own stats). No locust import here.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from tfsbench.bench.measure import hist

CSV_COLUMNS: tuple[str, ...] = (
    "Name",
    "Batch size",
    "Requests",
    "OK",
    "Failures",
    "Request bytes (mean)",
    "Raw tensor bytes (mean)",
    "Wire/raw ratio",
    "Response bytes (mean)",
    "Requests/s",
    "Instances/s",
    "Instances (ok)",
)
_FLUSH_EVERY = 2048


@dataclass(slots=True)
class NameTotals:
    """Running sums for one request name (mutable: an accumulator, not a record)."""

    batch_size: int
    requests: int = 0
    ok: int = 0
    request_bytes: int = 0
    raw_bytes: int = 0
    response_bytes: int = 0
    first_ts: float = math.inf
    last_ts: float = 0.0

    def add(self, other: NameTotals) -> None:
        self.requests += other.requests
        self.ok += other.ok
        self.request_bytes += other.request_bytes
        self.raw_bytes += other.raw_bytes
        self.response_bytes += other.response_bytes
        self.first_ts = min(self.first_ts, other.first_ts)
        self.last_ts = max(self.last_ts, other.last_ts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "requests": self.requests,
            "ok": self.ok,
            "request_bytes": self.request_bytes,
            "raw_bytes": self.raw_bytes,
            "response_bytes": self.response_bytes,
            "first_ts": self.first_ts if math.isfinite(self.first_ts) else None,
            "last_ts": self.last_ts,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NameTotals:
        first = d.get("first_ts")
        return cls(
            batch_size=int(d["batch_size"]),
            requests=int(d["requests"]),
            ok=int(d["ok"]),
            request_bytes=int(d["request_bytes"]),
            raw_bytes=int(d["raw_bytes"]),
            response_bytes=int(d.get("response_bytes", 0)),
            first_ts=float(first) if first is not None else math.inf,
            last_ts=float(d.get("last_ts", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class PayloadRow:
    """What the web UI tab and the `_payload.csv` file show for one request name."""

    name: str
    batch_size: int
    requests: int
    ok: int
    failures: int
    request_bytes: float
    raw_bytes: float
    overhead_ratio: float
    response_bytes: float
    requests_per_s: float
    instances_per_s: float
    instances: int

    def csv_values(self) -> list[str]:
        return [
            self.name,
            str(self.batch_size),
            str(self.requests),
            str(self.ok),
            str(self.failures),
            f"{self.request_bytes:.1f}",
            f"{self.raw_bytes:.1f}",
            f"{self.overhead_ratio:.3f}",
            f"{self.response_bytes:.1f}",
            f"{self.requests_per_s:.2f}",
            f"{self.instances_per_s:.2f}",
            str(self.instances),
        ]

    def ui_dict(self) -> dict[str, Any]:
        """Row for Locust's extended-stats table (keys match `webui.TABLE_STRUCTURE`)."""
        return {
            "name": self.name,
            "safe_name": self.name,
            "batch_size": self.batch_size,
            "requests": self.requests,
            "failures": self.failures,
            "request_bytes": round(self.request_bytes, 1),
            "raw_bytes": round(self.raw_bytes, 1),
            "overhead_ratio": round(self.overhead_ratio, 3),
            "response_bytes": round(self.response_bytes, 1),
            "requests_per_s": round(self.requests_per_s, 2),
            "instances_per_s": round(self.instances_per_s, 2),
        }


class PayloadMetrics:
    """Accumulates per-name payload sums and latency histograms; cheap to record into."""

    def __init__(self) -> None:
        self.attempts = 0  # requests handed to the client (recorded or not, e.g. killed at stop)
        self.totals: dict[str, NameTotals] = {}
        self._hists: dict[str, Any] = {}
        self._pending_us: dict[str, list[float]] = {}

    def record(
        self,
        name: str,
        batch_size: int,
        request_bytes: int,
        raw_bytes: int,
        response_bytes: int,
        latency_ms: float,
        ok: bool,
        ts: float,
    ) -> None:
        t = self.totals.get(name)
        if t is None:
            t = self.totals[name] = NameTotals(batch_size=batch_size)
        t.requests += 1
        t.request_bytes += request_bytes
        t.raw_bytes += raw_bytes
        t.response_bytes += response_bytes
        if ts < t.first_ts:
            t.first_ts = ts
        if ts > t.last_ts:
            t.last_ts = ts
        if ok:
            t.ok += 1
            buf = self._pending_us.setdefault(name, [])
            buf.append(latency_ms * 1000.0)
            if len(buf) >= _FLUSH_EVERY:
                self._flush(name)

    def _flush(self, name: str | None = None) -> None:
        names = [name] if name is not None else list(self._pending_us)
        for n in names:
            buf = self._pending_us.get(n)
            if buf:
                h = self._hists.get(n)
                if h is None:
                    h = self._hists[n] = hist.new()
                hist.record_many(h, buf)
                buf.clear()

    @property
    def recorded(self) -> int:
        return sum(t.requests for t in self.totals.values())

    def histogram(self, name: str | None = None) -> Any:
        """The latency histogram (us) of one name, or of all names merged."""
        self._flush()
        total = hist.new()
        for n, h in self._hists.items():
            if name is None or n == name:
                hist.merge_into(total, h)
        return total

    def percentile_since(self, mark: Any | None, percentile: float) -> float | None:
        """Latency percentile (ms) of the successes recorded since `mark` (a `histogram()` copy taken
        earlier; None: since the start). None when nothing succeeded in between."""
        now = self.histogram()
        if mark is not None:
            counts = np.ctypeslib.as_array(now.counts)
            counts -= np.ctypeslib.as_array(mark.counts)
            now.total_count -= mark.get_total_count()
        if now.get_total_count() <= 0:
            return None
        return hist.value_at_percentile(now, percentile) / 1000.0

    def reset(self) -> None:
        self.attempts = 0
        self.totals.clear()
        self._hists.clear()
        self._pending_us.clear()

    def take_delta(self) -> dict[str, Any]:
        """Everything recorded since the last call, as plain data for Locust's messaging; resets."""
        self._flush()
        delta = {
            "attempts": self.attempts,
            "totals": {n: t.to_dict() for n, t in self.totals.items()},
            "hists": {n: hist.encode(h) for n, h in self._hists.items() if h.get_total_count()},
        }
        self.reset()
        return delta

    def merge_delta(self, delta: Mapping[str, Any]) -> None:
        """Add a worker's `take_delta()` into these totals (exact for sums and histograms)."""
        self.attempts += int(delta.get("attempts", 0))
        for name, d in (delta.get("totals") or {}).items():
            other = NameTotals.from_dict(d)
            mine = self.totals.get(name)
            if mine is None:
                self.totals[name] = other
            else:
                mine.add(other)
        for name, encoded in (delta.get("hists") or {}).items():
            h = self._hists.get(name)
            if h is None:
                h = self._hists[name] = hist.new()
            hist.merge_into(h, hist.decode(encoded))

    def snapshot(self) -> dict[str, Any]:
        """Like `take_delta` but without resetting (for the result sidecar)."""
        self._flush()
        return {
            "attempts": self.attempts,
            "totals": {n: t.to_dict() for n, t in self.totals.items()},
            "hists": {n: hist.encode(h) for n, h in self._hists.items() if h.get_total_count()},
        }

    def rows(self, elapsed_s: float | None = None) -> list[PayloadRow]:
        """One row per name, plus an 'Aggregated' row when there is more than one name.

        Rates use `elapsed_s` when given (the run's duration so far, like Locust's total RPS),
        else the span between the first and last request of that name.
        """
        out = [_row(n, t, elapsed_s) for n, t in sorted(self.totals.items())]
        if len(out) > 1:
            agg = NameTotals(batch_size=0)
            for t in self.totals.values():
                agg.add(t)
            row = _row("Aggregated", agg, elapsed_s)
            out.append(
                dataclasses.replace(
                    row,
                    instances_per_s=sum(r.instances_per_s for r in out),
                    instances=sum(r.instances for r in out),
                )
            )
        return out


def _row(name: str, t: NameTotals, elapsed_s: float | None) -> PayloadRow:
    n = max(t.requests, 1)
    span = elapsed_s if elapsed_s and elapsed_s > 0 else (t.last_ts - t.first_ts if t.requests > 1 else 0.0)
    rps = t.requests / span if span > 0 else 0.0
    ok_rps = t.ok / span if span > 0 else 0.0
    return PayloadRow(
        name=name,
        batch_size=t.batch_size,
        requests=t.requests,
        ok=t.ok,
        failures=t.requests - t.ok,
        request_bytes=t.request_bytes / n,
        raw_bytes=t.raw_bytes / n,
        overhead_ratio=(t.request_bytes / t.raw_bytes) if t.raw_bytes else 0.0,
        response_bytes=t.response_bytes / n,
        requests_per_s=rps,
        instances_per_s=ok_rps * t.batch_size,
        instances=t.ok * t.batch_size,
    )


def rows_to_csv(rows: Iterable[PayloadRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow(r.csv_values())
    return buf.getvalue()


def read_payload_csv(text: str) -> dict[str, dict[str, float]]:
    """Parse a `_payload.csv` back into name -> {column: number} (export uses it)."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "Name" not in reader.fieldnames:
        raise ValueError("not a payload CSV (no 'Name' column)")
    out: dict[str, dict[str, float]] = {}
    for row in reader:
        name = row.pop("Name")
        out[name] = {k: float(v) for k, v in row.items() if k and v not in (None, "")}
    return out
