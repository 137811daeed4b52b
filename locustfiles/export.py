"""Convert a Locust run into the suite's run-result schema (`bench/results.py`).

Inputs, best first:
- the sidecar `<csv-prefix>_tfsbench.json` our locustfile writes at quit: exact HdrHistograms of
  successful latencies, classified error counts, exact totals, payload sizes and configuration;
- Locust's own `--csv` files (`_stats.csv`, `_stats_history.csv`, `_failures.csv`) and our
  `_payload.csv`;
- Locust's `--json` / `--json-file` output, whose per-name `response_times` buckets rebuild an
  HdrHistogram (at Locust's rounding: 1 ms under 100 ms, 10 ms under 1 s, 100 ms under 10 s).

Every result says it came from Locust (`engine="locust"`, `source="locust"`, `mode="closed"`) and
carries warnings that Locust's percentiles are rounded and that closed-loop latency is measured from
the actual send time (no coordinated-omission correction). No locust import here.
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tfsbench.bench.measure import hist
from tfsbench.bench.results import LatencySummary, ResultError, RunConfig, RunResult, Summary, TimePoint
from tfsbench.locustfiles.config import parse_request_name
from tfsbench.locustfiles.metrics import read_payload_csv
from tfsbench.locustfiles.outcome import error_class, unwrap
from tfsbench.payloads.errors import InputError

WARN_ROUNDED = (
    "Locust rounds response times before computing percentiles (to 1 ms under 100 ms, 10 ms under "
    "1 s, 100 ms under 10 s); percentiles taken from Locust's stats are approximate"
)
WARN_CLOSED = (
    "closed loop (Locust users wait for each answer): latency is measured from the actual send time, "
    "so stalls are under-represented (coordinated omission is not corrected)"
)
PERCENTILE_COLUMNS = {"50%": 50.0, "90%": 90.0, "95%": 95.0, "99%": 99.0, "99.9%": 99.9, "100%": 100.0}


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of Locust's stats (one request name, or 'Aggregated')."""

    name: str
    requests: int
    failures: int
    avg_ms: float = 0.0
    min_ms: float = 0.0
    max_ms: float = 0.0
    response_bytes: float = 0.0
    rps: float = 0.0
    percentiles_ms: Mapping[float, float] = field(default_factory=dict)
    response_times: Mapping[int, int] | None = None  # rounded ms -> count (JSON input only)
    start_ts: float | None = None
    last_ts: float | None = None


@dataclass(frozen=True, slots=True)
class HistoryRow:
    ts: float
    users: int
    total_requests: int
    total_failures: int
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True, slots=True)
class LocustRun:
    """What Locust's own output files say about a run."""

    entries: Mapping[str, Entry]
    errors: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # name -> message -> count
    history: tuple[HistoryRow, ...] = ()
    payload: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # from _payload.csv
    sources: tuple[str, ...] = ()


# ---- readers ----------------------------------------------------------------------------------


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file ({what})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read {what} ({exc})") from None


def _num(value: Any) -> float | None:
    if value in (None, "", "N/A"):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _rows(text: str, path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in required if c not in (reader.fieldnames or ())]
    if missing:
        raise InputError(f"{path}: not a Locust CSV file (missing column {missing[0]!r})")
    return list(reader)


def read_csv(prefix: str) -> LocustRun:
    """Read `<prefix>_stats.csv` (required) and the history, failures and payload CSVs (optional)."""
    stats_path = Path(f"{prefix}_stats.csv")
    rows = _rows(_read_text(stats_path, "Locust --csv stats"), stats_path, ("Name", "Request Count", "Failure Count"))
    entries: dict[str, Entry] = {}
    for r in rows:
        try:
            entries[r["Name"]] = Entry(
                name=r["Name"],
                requests=int(r["Request Count"]),
                failures=int(r["Failure Count"]),
                avg_ms=_num(r.get("Average Response Time")) or 0.0,
                min_ms=_num(r.get("Min Response Time")) or 0.0,
                max_ms=_num(r.get("Max Response Time")) or 0.0,
                response_bytes=_num(r.get("Average Content Size")) or 0.0,
                rps=_num(r.get("Requests/s")) or 0.0,
                percentiles_ms={
                    p: v for col, p in PERCENTILE_COLUMNS.items() if (v := _num(r.get(col))) is not None
                },
            )
        except (TypeError, ValueError):
            raise InputError(f"{stats_path}: row {r.get('Name')!r} has non-numeric counts") from None
    if not entries:
        raise InputError(f"{stats_path}: no rows (did the run send any request?)")
    sources = [str(stats_path)]
    history: list[HistoryRow] = []
    hist_path = Path(f"{prefix}_stats_history.csv")
    if hist_path.exists():
        sources.append(str(hist_path))
        for r in _rows(_read_text(hist_path, "Locust stats history"), hist_path, ("Timestamp", "Name")):
            if r.get("Name") != "Aggregated":
                continue
            ts = _num(r.get("Timestamp"))
            if ts is None:
                continue
            history.append(
                HistoryRow(
                    ts=ts,
                    users=int(_num(r.get("User Count")) or 0),
                    total_requests=int(_num(r.get("Total Request Count")) or 0),
                    total_failures=int(_num(r.get("Total Failure Count")) or 0),
                    p50_ms=_num(r.get("50%")),
                    p99_ms=_num(r.get("99%")),
                )
            )
    errors: dict[str, dict[str, int]] = {}
    fail_path = Path(f"{prefix}_failures.csv")
    if fail_path.exists():
        sources.append(str(fail_path))
        for r in _rows(_read_text(fail_path, "Locust failures"), fail_path, ("Name", "Error", "Occurrences")):
            per = errors.setdefault(r["Name"], {})
            per[r["Error"]] = per.get(r["Error"], 0) + int(_num(r["Occurrences"]) or 0)
    payload: dict[str, dict[str, float]] = {}
    pay_path = Path(f"{prefix}_payload.csv")
    if pay_path.exists():
        sources.append(str(pay_path))
        try:
            payload = read_payload_csv(_read_text(pay_path, "payload CSV"))
        except ValueError as exc:
            raise InputError(f"{pay_path}: {exc}") from None
    return LocustRun(entries, errors, tuple(history), payload, tuple(sources))


def read_json(path: str) -> LocustRun:
    """Read Locust's `--json` output (a list of stats entries, one per request name)."""
    p = Path(path)
    text = _read_text(p, "Locust --json output")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(doc, Mapping) and isinstance(doc.get("stats"), list):
        doc = doc["stats"]
    if not isinstance(doc, list) or not all(isinstance(e, Mapping) and "name" in e for e in doc):
        raise InputError(f"{p}: not Locust --json output (expected a list of stats entries with 'name')")
    entries: dict[str, Entry] = {}
    for e in doc:
        try:
            n = int(e.get("num_requests", 0))
            rt = {int(float(k)): int(v) for k, v in (e.get("response_times") or {}).items()}
            total_ms = float(e.get("total_response_time", 0.0))
            last, start = _num(e.get("last_request_timestamp")), _num(e.get("start_time"))
            span = (last - start) if last is not None and start is not None else 0.0
            entries[str(e["name"])] = Entry(
                name=str(e["name"]),
                requests=n,
                failures=int(e.get("num_failures", 0)),
                avg_ms=total_ms / n if n else 0.0,
                min_ms=_num(e.get("min_response_time")) or 0.0,
                max_ms=_num(e.get("max_response_time")) or 0.0,
                response_bytes=float(e.get("total_content_length", 0)) / n if n else 0.0,
                rps=n / span if span > 0 else 0.0,
                response_times=rt,
                start_ts=start,
                last_ts=last,
            )
        except (TypeError, ValueError, AttributeError):
            raise InputError(f"{p}: entry {e.get('name')!r} has malformed numbers") from None
    if not entries:
        raise InputError(f"{p}: no stats entries (did the run send any request?)")
    return LocustRun(entries, sources=(str(p),))


def read_sidecar(path: str | Path) -> dict[str, Any] | None:
    p = Path(path)
    if not p.exists():
        return None
    text = _read_text(p, "tfsbench sidecar")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: corrupt JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, Mapping) or doc.get("type") != "tfsbench.locust-sidecar":
        raise InputError(f"{p}: not a tfsbench Locust sidecar file")
    if doc.get("version") != 1:
        raise InputError(f"{p}: sidecar version {doc.get('version')!r} is not supported (expected 1)")
    return dict(doc)


# ---- conversion -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Overrides:
    """What the user states on the command line when the files cannot tell."""

    name: str | None = None
    url: str | None = None
    model: str | None = None
    kind: str | None = None
    batch_size: int | None = None
    format: str | None = None
    users: int | None = None


def _pick_name(run: LocustRun, sidecar: Mapping[str, Any] | None, wanted: str | None) -> str:
    names = [n for n in run.entries if n != "Aggregated" and not n.endswith(" setup")]
    if sidecar:
        names = sorted(set(names) | set((sidecar.get("payload") or {}).get("totals", {})))
    if wanted is not None:
        if wanted not in names:
            raise InputError(f"--name: no request name {wanted!r} in the run (names: {', '.join(names) or 'none'})")
        return wanted
    if len(names) == 1:
        return names[0]
    if not names:
        raise InputError("the Locust run has no request names to export")
    raise InputError(f"the run has {len(names)} request names; choose one with --name ({', '.join(names)})")


def _histogram_from_buckets(response_times: Mapping[int, int]) -> Any:
    h = hist.new()
    for ms, count in response_times.items():
        if count > 0:
            h.record_value(max(1, int(round(ms * 1000))), count)
    return h


def _latency_from_percentiles(entry: Entry) -> LatencySummary:
    p = entry.percentiles_ms
    return LatencySummary(
        mean=entry.avg_ms,
        p50=p.get(50.0, 0.0),
        p90=p.get(90.0, 0.0),
        p95=p.get(95.0, 0.0),
        p99=p.get(99.0, 0.0),
        p999=p.get(99.9, 0.0),
        max=entry.max_ms or p.get(100.0, 0.0),
        min=entry.min_ms,
    )


def _classify(messages: Mapping[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for message, count in messages.items():
        cls = error_class(message)
        out[cls] = out.get(cls, 0) + int(count)
    return out


def _timeseries(history: tuple[HistoryRow, ...], start_ts: float | None) -> tuple[TimePoint, ...]:
    if not history:
        return ()
    t0 = start_ts if start_ts is not None else history[0].ts
    out: list[TimePoint] = []
    prev_req = prev_fail = 0
    for row in history:
        if row.ts < t0 and row.total_requests == 0:  # before the test started
            continue
        if row.total_requests < prev_req:  # stats were reset
            prev_req = prev_fail = 0
        out.append(
            TimePoint(
                t_s=round(row.ts - t0, 3),
                requests=row.total_requests - prev_req,
                errors=row.total_failures - prev_fail,
                p50_ms=row.p50_ms,
                p99_ms=row.p99_ms,
            )
        )
        prev_req, prev_fail = row.total_requests, row.total_failures
    return tuple(out)


@dataclass(frozen=True, slots=True)
class _Identity:
    """Which configuration a request name measured: from the flags, the name, then the sidecar."""

    name: str
    url: str
    model: str
    kind: str
    batch_size: int
    format: str
    user_config: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Counts:
    requests: int
    ok: int
    errors: dict[str, int]  # error class -> count, summing to requests - ok
    messages: dict[str, int]  # error message -> count (the samples)


@dataclass(frozen=True, slots=True)
class _Window:
    start_ts: float | None
    measured_s: float


@dataclass(frozen=True, slots=True)
class _Latency:
    summary: LatencySummary
    histogram: str | None  # encoded HdrHistogram, when one could be had
    warning: str


@dataclass(frozen=True, slots=True)
class _Sizes:
    request_bytes: float
    raw_bytes: float
    response_bytes: float
    warning: str | None = None


def _sidecar_part(sidecar: Mapping[str, Any] | None, table: str, name: str) -> Any:
    """sidecar["payload"][table][name], or None."""
    return ((sidecar or {}).get("payload") or {}).get(table, {}).get(name)


def _identify(run: LocustRun, sidecar: Mapping[str, Any] | None, overrides: Overrides) -> _Identity:
    name = _pick_name(run, sidecar, overrides.name)
    parsed = parse_request_name(name)
    ucfg: Mapping[str, Any] = (sidecar or {}).get("user_config") or {}
    kind = overrides.kind or (parsed[0] if parsed else None) or ucfg.get("kind")
    batch = overrides.batch_size or (parsed[1] if parsed else None) or ucfg.get("batch_size")
    fmt = overrides.format or (parsed[2] if parsed else None) or ucfg.get("format")
    model = overrides.model or ucfg.get("model")
    url = overrides.url or (sidecar or {}).get("host")
    missing = [flag for flag, v in (("--model", model), ("--kind", kind), ("--batch-size", batch), ("--format", fmt))
               if not v]
    if missing:
        raise InputError(
            f"cannot tell {', '.join(missing)} of request name {name!r} from the files; give {' '.join(missing)}"
        )
    return _Identity(name=name, url=url or "", model=str(model), kind=str(kind), batch_size=int(batch),
                     format=str(fmt), user_config=ucfg)


def _counts(run: LocustRun, sidecar: Mapping[str, Any] | None, name: str, warnings: list[str]) -> _Counts:
    """Requests, successes and error classes. The sidecar's counts are exact; Locust's final CSV can
    be up to a second stale."""
    entry = run.entries.get(name)
    pay_totals = _sidecar_part(sidecar, "totals", name)
    if pay_totals:
        requests, ok = int(pay_totals["requests"]), int(pay_totals["ok"])
    elif entry is not None:
        requests, ok = entry.requests, entry.requests - entry.failures
    else:
        raise InputError(f"request name {name!r} has no statistics")
    if entry is not None and pay_totals and entry.requests != requests:
        warnings.append(
            f"Locust's stats file counted {entry.requests} requests, the tfsbench sidecar {requests}; "
            "the sidecar's totals (recorded at quit) are used"
        )
    messages: dict[str, int] = {}
    side_errors = (sidecar or {}).get("errors") or {}
    for msg, c in (side_errors.get(name) or {}).items():
        messages[unwrap(msg)] = messages.get(unwrap(msg), 0) + int(c)
    for msg, c in run.errors.get(name, {}).items():
        messages.setdefault(unwrap(msg), c)
    return _Counts(requests=requests, ok=ok, errors=_errors_matching(_classify(messages), requests - ok),
                   messages=messages)


def _errors_matching(errors: dict[str, int], failures: int) -> dict[str, int]:
    """Error classes made to sum to the failure count: trimmed when a stale file over-counts, the rest
    'unclassified' when messages are missing."""
    counted = sum(errors.values())
    if counted != failures:
        if counted > failures and failures >= 0:
            errors = _scale_errors(errors, failures)
        else:
            errors["unclassified"] = errors.get("unclassified", 0) + failures - counted
    return {k: v for k, v in errors.items() if v > 0}


def _measured_window(run: LocustRun, sidecar: Mapping[str, Any] | None, entry: Entry | None) -> _Window:
    """Start and length of the measured window: the sidecar's, else the stats entry's, else the history's."""
    measured_s = 0.0
    start_ts: float | None = None
    if sidecar and sidecar.get("started_at") and sidecar.get("ended_at"):
        start_ts = float(sidecar["started_at"])
        measured_s = float(sidecar["ended_at"]) - start_ts
    elif entry is not None and entry.start_ts is not None and entry.last_ts is not None:
        start_ts = entry.start_ts
        measured_s = entry.last_ts - entry.start_ts
    elif run.history:
        start_ts = run.history[0].ts
        measured_s = run.history[-1].ts - run.history[0].ts
    if measured_s <= 0 and entry is not None and entry.rps > 0:
        measured_s = entry.requests / entry.rps
    return _Window(start_ts=start_ts, measured_s=measured_s)


def _latency(sidecar: Mapping[str, Any] | None, entry: Entry | None, name: str) -> _Latency:
    """Exact HdrHistogram from the sidecar, else rebuilt from Locust's rounded buckets, else its percentiles."""
    pay_hist = _sidecar_part(sidecar, "hists", name)
    if pay_hist:
        return _Latency(LatencySummary(**hist.summary_ms(hist.decode(pay_hist))), pay_hist,
                        "latency: exact HdrHistogram of successful requests recorded by the tfsbench users")
    if entry is not None and entry.response_times:
        h = _histogram_from_buckets(entry.response_times)
        return _Latency(LatencySummary(**{**hist.summary_ms(h), "mean": entry.avg_ms}), hist.encode(h),
                        WARN_ROUNDED + " (histogram rebuilt from Locust's rounded buckets)")
    if entry is not None:
        return _Latency(_latency_from_percentiles(entry), None, WARN_ROUNDED)
    raise InputError(f"request name {name!r} has no latency statistics")


def _sizes(run: LocustRun, sidecar: Mapping[str, Any] | None, entry: Entry | None, name: str) -> _Sizes:
    """Mean request, raw tensor and response bytes: the sidecar's totals, else the _payload.csv."""
    pay_totals = _sidecar_part(sidecar, "totals", name)
    response_bytes = entry.response_bytes if entry is not None else 0.0
    if pay_totals and pay_totals["requests"]:
        n = pay_totals["requests"]
        return _Sizes(pay_totals["request_bytes"] / n, pay_totals["raw_bytes"] / n,
                      pay_totals.get("response_bytes", 0) / n)
    if name in run.payload:
        return _Sizes(run.payload[name].get("Request bytes (mean)", 0.0),
                      run.payload[name].get("Raw tensor bytes (mean)", 0.0), response_bytes)
    return _Sizes(0.0, 0.0, response_bytes, "request and raw tensor sizes unknown (no _payload.csv or sidecar)")


def _config(ident: _Identity, run: LocustRun, sidecar: Mapping[str, Any] | None, overrides: Overrides,
            window: _Window, exact_latency: bool) -> RunConfig:
    ucfg = ident.user_config
    users = (overrides.users or (sidecar or {}).get("max_users") or max((r.users for r in run.history), default=0)
             or None)
    workers = (sidecar or {}).get("workers")
    return RunConfig(
        url=ident.url,
        model=ident.model,
        kind=ident.kind,
        batch_size=ident.batch_size,
        format=ident.format,
        mode="closed",
        engine="locust",
        version=ucfg.get("version"),
        label=ucfg.get("label"),
        signature=ucfg.get("signature"),
        concurrency=int(users) if users else None,
        duration_s=round(window.measured_s, 3) if window.measured_s else None,
        processes=int(workers) if isinstance(workers, int) and workers > 0 else 1,
        seed=int(ucfg.get("seed", 0) or 0),
        timeout_s=float(ucfg.get("timeout_s", 30.0) or 30.0),
        pool_size=int(ucfg.get("pool_size", 64) or 64),
        source="locust",
        extra={
            "locust_request_name": ident.name,
            "locust_percentiles": "exact (sidecar HdrHistogram)" if exact_latency else "rounded (Locust buckets)",
            "locust_files": list(run.sources),
        },
    )


def to_result(run: LocustRun, sidecar: Mapping[str, Any] | None, overrides: Overrides) -> RunResult:
    """Build the run result of one request name of a Locust run."""
    ident = _identify(run, sidecar, overrides)
    entry = run.entries.get(ident.name)
    warnings = [WARN_CLOSED]
    counts = _counts(run, sidecar, ident.name, warnings)
    window = _measured_window(run, sidecar, entry)
    latency = _latency(sidecar, entry, ident.name)
    warnings.append(latency.warning)
    sizes = _sizes(run, sidecar, entry, ident.name)
    if sizes.warning:
        warnings.append(sizes.warning)
    throughput = counts.ok / window.measured_s if window.measured_s > 0 else 0.0
    summary = Summary(
        requests=counts.requests,
        ok=counts.ok,
        errors=counts.errors,
        throughput_rps=throughput,
        throughput_ips=throughput * ident.batch_size,
        latency_ms=latency.summary,
        request_bytes=float(sizes.request_bytes),
        response_bytes=float(sizes.response_bytes),
        raw_bytes=float(sizes.raw_bytes),
        stable=True,
        stability_reason="not assessed for Locust runs (closed loop, Locust's own statistics)",
        measured_s=round(window.measured_s, 3),
        error_samples=tuple(sorted(counts.messages, key=lambda m: -counts.messages[m])[:5]),
    )
    return RunResult(
        config=_config(ident, run, sidecar, overrides, window,
                       exact_latency=bool(_sidecar_part(sidecar, "hists", ident.name))),
        environment={
            "source": "locust",
            "python": platform.python_version(),
            "platform": platform.platform(),
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        summary=summary,
        timeseries=_timeseries(run.history, window.start_ts),
        histogram=latency.histogram,
        warnings=tuple(warnings),
        partial=bool((sidecar or {}).get("partial_reason")),
        partial_reason=(sidecar or {}).get("partial_reason"),
        started_at=datetime.fromtimestamp(window.start_ts, UTC).isoformat(timespec="seconds") if window.start_ts else "",
    )


def _scale_errors(errors: dict[str, int], failures: int) -> dict[str, int]:
    """Trim classified counts to the failure count, largest first (a stale file can over-count)."""
    out: dict[str, int] = {}
    left = failures
    for cls, count in sorted(errors.items(), key=lambda kv: -kv[1]):
        take = min(count, left)
        if take:
            out[cls] = take
        left -= take
    return out


def export(
    csv_prefix: str | None = None,
    json_path: str | None = None,
    sidecar_path: str | None = None,
    overrides: Overrides | None = None,
) -> RunResult:
    """Read Locust's files (CSV prefix or JSON) and return the run result."""
    if bool(csv_prefix) == bool(json_path):
        raise InputError("give exactly one of --csv-prefix and --json")
    if csv_prefix:
        run = read_csv(csv_prefix)
        side = read_sidecar(sidecar_path or f"{csv_prefix}_tfsbench.json")
    else:
        assert json_path is not None
        run = read_json(json_path)
        side = read_sidecar(sidecar_path) if sidecar_path else None
    if sidecar_path and side is None:
        raise InputError(f"{sidecar_path}: no such file (--sidecar)")
    try:
        return to_result(run, side, overrides or Overrides())
    except ResultError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"cannot convert the Locust run ({type(exc).__name__}: {exc})") from None


def result_from_live(environment: Any, sidecar_doc: Mapping[str, Any]) -> RunResult:
    """The run result straight from a live Locust environment at quit (for `--tfs-result`)."""
    stats = environment.runner.stats
    entries: dict[str, Entry] = {}
    for (name, _method), e in stats.entries.items():
        entries[name] = Entry(
            name=name,
            requests=int(e.num_requests),
            failures=int(e.num_failures),
            avg_ms=float(e.avg_response_time),
            min_ms=float(e.min_response_time or 0.0),
            max_ms=float(e.max_response_time),
            response_bytes=float(e.avg_content_length),
            rps=float(e.total_rps),
            response_times=dict(e.response_times),
            start_ts=float(e.start_time),
            last_ts=float(e.last_request_timestamp or time.time()),
        )
    run = LocustRun(entries=entries, sources=("live",))
    return to_result(run, sidecar_doc, Overrides())
