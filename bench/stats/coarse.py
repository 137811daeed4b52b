"""Percentiles from coarse cumulative buckets (Prometheus histograms such as TF Serving's
`:tensorflow:serving:request_latency`), as the range the buckets allow rather than one number.

TF Serving's latency buckets grow by 1.8x each, so the bucket holding the p99 spans e.g. 6.4 to
11.6 ms. Prometheus' `histogram_quantile` interpolates linearly inside it, which can put the server's
p99 above the client's, although every request's server time is part of its client time. What the
counts do prove is only the bucket: the percentile lies in (lower bound, upper bound].

Since each request's server time is at most its client time, the server's q-th percentile is at
most the client's q-th percentile (pointwise domination carries over to quantiles), so a share of
the client's latency is capped at 100%.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def _bound(le: float | str) -> float:
    return math.inf if isinstance(le, str) and le.strip().lstrip("+").lower() == "inf" else float(le)


def percentile_bounds(cumulative: Sequence[Sequence[float | str]], percentile: float) -> tuple[float, float] | None:
    """(low, high] holding the percentile (0-100) of cumulative buckets [(le, count), ...] in
    ascending `le`; high is inf when it falls in the +Inf bucket. None when there are no counts."""
    rows = [(_bound(le), float(c)) for le, c in cumulative]
    if not rows or rows[-1][1] <= 0:
        return None
    total = rows[-1][1]
    rank = max(percentile / 100.0 * total, min(1.0, total))
    low = 0.0
    for le, cum in rows:
        if cum >= rank:
            return low, le
        low = le
    return low, math.inf  # pragma: no cover - the last row holds the total


@dataclass(frozen=True, slots=True)
class Share:
    """The server's share of the client's latency at one percentile: a range, each end in [0, 1]."""

    low: float
    high: float
    capped: bool  # the server's estimate (or bucket) reached past the client's latency

    def text(self) -> str:
        lo, hi = round(self.low * 100), round(self.high * 100)
        if self.capped and hi - lo < 2:  # a point estimate past the client's latency
            return "100% (capped)"
        if hi - lo < 2:
            return f"{hi}%" if self.high >= 0.005 else "<1%"
        return f"{lo}–{hi}%"


def share_of_client(client_ms: float, server_ms: float | None,
                    bounds_ms: tuple[float, float] | None) -> Share | None:
    """The server's share of `client_ms` as the range its bucket allows (or its point estimate when
    the buckets are unknown), never above 100%; None without a server value or client latency."""
    if client_ms <= 0 or (server_ms is None and bounds_ms is None):
        return None
    if bounds_ms is not None:
        low_ms, high_ms = bounds_ms
    else:
        low_ms = high_ms = float(server_ms)  # type: ignore[arg-type]
    capped = high_ms > client_ms or (server_ms is not None and server_ms > client_ms)
    low = min(1.0, max(0.0, low_ms / client_ms))
    high = min(1.0, max(low, high_ms / client_ms))
    return Share(low, high, capped)


__all__ = ["Share", "percentile_bounds", "share_of_client"]
