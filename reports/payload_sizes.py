"""gzip sizes for the payload-overhead figure when the results did not record them.

Run results carry the mean wire and raw bytes per request but not the compressed size. The bodies
are deterministic (payload spec + seed), so a few are regenerated with the run's own configuration
and compressed the way the suite's `--gzip` option would send them, with payloads' own pool
builder (reports read results; they never reach into the load runner).
"""

from __future__ import annotations

from collections.abc import Sequence

from tfsbench.bench.results import RunResult

ESTIMATE_POOL_SIZE = 4
_GENERATED_KINDS = ("numeric", "text", "image")


def _key(run: RunResult) -> tuple:
    c = run.config
    return (c.kind, c.batch_size, c.format, repr(sorted(dict(c.extra.get("payload") or {}).items())), c.seed)


def gzip_estimates(runs: Sequence[RunResult]) -> dict[int, float]:
    """id(run) -> mean gzip-compressed request bytes, for runs whose bodies can be regenerated."""
    from tfsbench.reports.figures import gzip_bytes

    out: dict[int, float] = {}
    cache: dict[tuple, float | None] = {}
    for run in runs:
        if gzip_bytes(run) is not None or run.config.source != "tfsbench" or run.config.kind not in _GENERATED_KINDS:
            continue
        key = _key(run)
        if key not in cache:
            cache[key] = _estimate(run)
        if cache[key]:
            out[id(run)] = cache[key]
    return out


def _estimate(run: RunResult) -> float | None:
    try:
        from tfsbench.payloads.pool import build_pool
        from tfsbench.payloads.spec import spec_from_knobs

        c = run.config
        spec = spec_from_knobs(c.extra.get("payload"), kind=c.kind, batch_size=c.batch_size, format=c.format,
                               seed=c.seed, signature_name=c.signature)
        pool = build_pool(spec, min(c.pool_size or 1, ESTIMATE_POOL_SIZE))
        sizes = [s.gzip_bytes for s in pool.sizes]
        return sum(sizes) / len(sizes) if sizes else None
    except Exception:  # noqa: BLE001 - data files gone, unknown knobs...: no estimate, no gzip line
        return None
