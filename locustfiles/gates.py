"""Headless CI bounds for a Locust run: which of p99, failure ratio and request rate failed.

Locust itself only exits 1 on any failure; these bounds let CI say "p99 under 50 ms, under 1%
failures, at least 200 requests/s". Evaluated at quit on the master (or the local runner) from
Locust's aggregated totals, i.e. the numbers its own summary prints (p99 rounded as Locust rounds).
"""

from __future__ import annotations

from tfsbench.locustfiles.config import Gates


def evaluate(g: Gates, requests: int, failures: int, p99_ms: float | None, rps: float) -> list[str]:
    """One line per violated bound; empty when every bound holds (or none is set)."""
    out: list[str] = []
    if g.slo_p99_ms is not None:
        if not requests or p99_ms is None:
            out.append(f"--slo-p99-ms {g.slo_p99_ms:g}: no requests completed, so p99 is unknown")
        elif p99_ms > g.slo_p99_ms:
            out.append(f"--slo-p99-ms {g.slo_p99_ms:g}: p99 was {p99_ms:g} ms")
    if g.max_fail_ratio is not None:
        ratio = failures / requests if requests else 1.0
        if ratio > g.max_fail_ratio:
            out.append(
                f"--max-fail-ratio {g.max_fail_ratio:g}: fail ratio was {ratio:.4f} ({failures} of {requests})"
            )
    if g.min_rps is not None and rps < g.min_rps:
        out.append(f"--min-rps {g.min_rps:g}: total rate was {rps:.2f} requests/s")
    return out
