"""Traces from the access logs people already have: nginx/Envoy JSON logs and nginx `combined`.

Only predict calls become requests: paths `/v1/models/NAME[/versions/N | /labels/L]:predict`; other
well-formed lines (health checks, metadata, classify) are counted as skipped, lines that cannot be
parsed are counted as bad with their line numbers.

Send time. nginx writes a line when the request *ends*: its `$msec`, `$time_iso8601` and
`$time_local` are completion times, so the send time is that minus `$request_time` (when logged).
Envoy's `start_time` is already the start. `combined`'s `$time_local` has one-second resolution:
the requests logged in one second are spread evenly across it (in log order) before subtracting
`$request_time`, so a second's count is exact but the spacing inside it is not; log `$msec` in a
JSON format for real sub-second timing.

JSON keys understood (first present wins):
  time:   msec, start_time (Envoy, a start time), time_iso8601, timestamp, time, @timestamp, time_local
  path:   request_uri, uri, path, x_forwarded_path, request ("POST /v1/... HTTP/1.1")
  method: request_method, method (only POST is a predict call; absent means POST)
  timing: request_time (seconds), duration (Envoy, milliseconds)
  bytes:  request_length, bytes_received (Envoy)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from tfsbench.payloads.errors import InputError
from tfsbench.payloads.trace import BadLineCounter, Trace, TraceKey, make_trace, parse_time

FORMATS = ("nginx-json", "combined")
PREDICT_PATH = re.compile(
    r"^(?:https?://[^/]+)?/v1/models/(?P<model>[^/:?]+)"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:?]+))?:predict(?:[?#].*)?$")
MODEL_PATH = re.compile(r"^(?:https?://[^/]+)?/v1/models/")
COMBINED = re.compile(
    r'^(?P<addr>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) '
    r'(?P<bytes>\d+|-)(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)")?(?P<rest>.*)$')
TIME_LOCAL = "%d/%b/%Y:%H:%M:%S %z"

_TIME_KEYS = ("msec", "start_time", "time_iso8601", "timestamp", "time", "@timestamp", "time_local")
_PATH_KEYS = ("request_uri", "uri", "path", "x_forwarded_path")


class _Skip(Exception):
    """A well-formed line that is not a predict request."""


def _key_of_path(path: str, method: str | None) -> TraceKey:
    if method is not None and method.upper() != "POST":
        raise _Skip()
    m = PREDICT_PATH.match(path)
    if m is None:
        if MODEL_PATH.match(path) or path.startswith("/"):
            raise _Skip()
        raise ValueError(f"not a URL path: {path[:40]!r}")
    version = int(m["version"]) if m["version"] else None
    return TraceKey(model=m["model"], version=version, label=m["label"])


def _seconds(value: object, what: str) -> float | None:
    if value in (None, "", "-"):
        return None
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{what} is not a number: {str(value)[:20]!r}") from None
    if not math.isfinite(out) or out < 0:
        raise ValueError(f"{what} must be >= 0")
    return out


def _bytes(value: object) -> int:
    if value in (None, "", "-"):
        return -1
    try:
        out = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return -1
    return out if out >= 0 else -1


def _json_time(row: dict[str, object]) -> tuple[float, bool]:
    """(Unix seconds, is a start time) from the first time key present."""
    for key in _TIME_KEYS:
        value = row.get(key)
        if value in (None, "", "-"):
            continue
        if key == "time_local":
            try:
                return datetime.strptime(str(value), TIME_LOCAL).timestamp(), False
            except ValueError:
                raise ValueError(f"bad time_local {str(value)[:30]!r}") from None
        return parse_time(value), key == "start_time"
    raise ValueError("no timestamp")


def parse_json_lines(lines: Iterable[str], counter: BadLineCounter) -> tuple[list[float], list[TraceKey], list[int]]:
    """Send times (Unix s), keys and request bytes of the predict calls in a JSON access log."""
    times: list[float] = []
    keys: list[TraceKey] = []
    sizes: list[int] = []
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            counter.bad(line_no, "not JSON")
            continue
        if not isinstance(row, dict):
            counter.bad(line_no, "not a JSON object")
            continue
        try:
            method = row.get("request_method", row.get("method"))
            path = next((row[k] for k in _PATH_KEYS if row.get(k)), None)
            if path is None and isinstance(row.get("request"), str):
                parts = row["request"].split()
                if len(parts) >= 2:
                    method, path = parts[0], parts[1]
            if not isinstance(path, str):
                raise ValueError("no request path")
            key = _key_of_path(path, method if isinstance(method, str) else None)
            t, is_start = _json_time(row)
            if not is_start:
                took = _seconds(row.get("request_time"), "request_time")
                if took is None and row.get("duration") not in (None, "", "-"):
                    took = (_seconds(row.get("duration"), "duration") or 0.0) / 1000.0
                t -= took or 0.0
        except _Skip:
            counter.skipped += 1
            continue
        except ValueError as exc:
            counter.bad(line_no, str(exc))
            continue
        times.append(t)
        keys.append(key)
        sizes.append(_bytes(row.get("request_length", row.get("bytes_received"))))
    return times, keys, sizes


def parse_combined_lines(lines: Iterable[str], counter: BadLineCounter) -> tuple[list[float], list[TraceKey], list[int]]:
    """The same from nginx `combined` lines followed by `$request_time` (and optionally more fields,
    e.g. `$request_length`): the first number after the user agent is the request time, a second
    integer, if present, the request length."""
    ends: list[float] = []
    took: list[float] = []
    keys: list[TraceKey] = []
    sizes: list[int] = []
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        m = COMBINED.match(line.rstrip("\r\n"))
        if m is None:
            counter.bad(line_no, "not in combined format")
            continue
        try:
            parts = m["request"].split()
            if len(parts) < 2:
                raise ValueError(f"bad request line {m['request'][:40]!r}")
            key = _key_of_path(parts[1], parts[0])
            try:
                end = datetime.strptime(m["time"], TIME_LOCAL).timestamp()
            except ValueError:
                raise ValueError(f"bad time {m['time'][:30]!r}") from None
            rest = m["rest"].split()
            if not rest:
                raise ValueError("no $request_time after the user agent")
            request_time = _seconds(rest[0], "request_time")
        except _Skip:
            counter.skipped += 1
            continue
        except ValueError as exc:
            counter.bad(line_no, str(exc))
            continue
        ends.append(end)
        took.append(request_time or 0.0)
        keys.append(key)
        sizes.append(_bytes(rest[1]) if len(rest) > 1 else -1)
    # spread each logged second's requests evenly across it, in log order
    times: list[float] = []
    i = 0
    while i < len(ends):
        j = i
        while j < len(ends) and ends[j] == ends[i]:
            j += 1
        n = j - i
        times.extend(ends[i] + (k + 0.5) / n - took[i + k] for k in range(n))
        i = j
    return times, keys, sizes


def import_log(path: str | Path, fmt: str) -> Trace:
    """A Trace from an access log. InputError (one line) when nothing in it is usable."""
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    p = Path(path)
    counter = BadLineCounter()
    try:
        with p.open(encoding="utf-8", errors="replace") as fh:
            parse = parse_json_lines if fmt == "nginx-json" else parse_combined_lines
            times, keys, sizes = parse(fh, counter)
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror})") from None
    bad = counter.freeze()
    if not times:
        detail = bad.describe() or "the file is empty"
        raise InputError(f"{p}: no usable predict requests in this {fmt} log ({detail})")
    t0 = min(times)

    start = datetime.fromtimestamp(t0, UTC).isoformat()
    offsets = [t - t0 for t in times]
    return make_trace(offsets, keys, sizes, start=start, source=f"{fmt} log {p.name}", bad=bad)
