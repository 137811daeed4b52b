"""The traffic trace format: one request per line, with its send time, for replay and plans.

A trace is JSONL or CSV (by file suffix: `.csv` is CSV, anything else JSONL). The first line says
what the file is and which version of the format it uses:

JSONL::

    {"format": "tfsbench.trace", "version": 1, "start": "2026-12-01T00:00:00+00:00", "duration_s": 86400}
    {"t_s": 0.0132, "model": "numeric", "batch_size": 8}
    {"t_s": 0.0410, "model": "text", "version": 2, "kind": "text", "request_bytes": 912}

CSV::

    # tfsbench.trace v1 start=2026-12-01T00:00:00+00:00 duration_s=86400
    t_s,model,version,label,kind,batch_size,request_bytes
    0.0132,numeric,,,,8,

Fields of a request line: `t_s` (send time in seconds from the trace's start) or `ts` (absolute send
time: Unix seconds or ISO 8601; offsets are then taken from the earliest), and optionally `model`,
`version` (integer) or `label`, `kind` (text | image | numeric | auto), `batch_size` (>= 1),
`request_bytes` (as logged). Header keys: `start` (wall clock of t_s = 0, ISO 8601), `duration_s`
(the trace's length; default: the last send time), `source` (free text). Lines need not be in time
order; they are sorted on reading. A line that cannot be used is counted, with its line number, and
the rest of the file is still read; a file with no usable line is an input error.

Format history
--------------
1 (2026-12): first version.

Traces are held column-wise (numpy arrays plus a small table of distinct request keys), so a 24-hour
trace of millions of requests costs tens of megabytes, not a Python object per request.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tfsbench.payloads.errors import InputError

TRACE_FORMAT = "tfsbench.trace"
TRACE_VERSION = 1
CSV_COLUMNS = ("t_s", "model", "version", "label", "kind", "batch_size", "request_bytes")
TRACE_KINDS = ("text", "image", "numeric", "auto")
MAX_BAD_EXAMPLES = 10  # line numbers kept for the message; all bad lines are counted


@dataclass(frozen=True, slots=True)
class TraceKey:
    """What distinguishes one request from another besides its time (None: not recorded)."""

    model: str | None = None
    version: int | None = None
    label: str | None = None
    kind: str | None = None
    batch_size: int | None = None


@dataclass(frozen=True, slots=True)
class BadLines:
    """Lines that could not be used: how many, and the first few (line number, reason)."""

    count: int = 0
    examples: tuple[tuple[int, str], ...] = ()
    skipped: int = 0  # well-formed lines that are not predict requests (health checks, metadata...)

    def describe(self) -> str:
        """One line for stderr, e.g. '3 bad lines (line 4: no timestamp; line 9: ...)'."""
        parts = []
        if self.count:
            shown = "; ".join(f"line {n}: {why}" for n, why in self.examples)
            more = ", ..." if self.count > len(self.examples) else ""
            parts.append(f"{self.count} bad line{'s' if self.count != 1 else ''} ({shown}{more})")
        if self.skipped:
            parts.append(f"{self.skipped} line{'s' if self.skipped != 1 else ''} not predict requests, skipped")
        return ", ".join(parts)


class BadLineCounter:
    """Collects bad lines while a file is read."""

    def __init__(self) -> None:
        self.count = 0
        self.skipped = 0
        self.examples: list[tuple[int, str]] = []

    def bad(self, line_no: int, reason: str) -> None:
        self.count += 1
        if len(self.examples) < MAX_BAD_EXAMPLES:
            self.examples.append((line_no, reason))

    def freeze(self) -> BadLines:
        return BadLines(self.count, tuple(self.examples), self.skipped)


@dataclass(frozen=True, slots=True, eq=False)
class Trace:
    """Requests in send-time order: `t_s[i]` seconds from the start, key `keys[key_index[i]]`,
    `request_bytes[i]` (-1: not recorded)."""

    t_s: np.ndarray
    key_index: np.ndarray
    keys: tuple[TraceKey, ...]
    request_bytes: np.ndarray
    duration_s: float
    start: str | None = None  # ISO 8601 wall clock of t_s = 0
    source: str = ""
    bad: BadLines = field(default_factory=BadLines)

    def __len__(self) -> int:
        return int(self.t_s.size)

    @property
    def mean_rps(self) -> float:
        return len(self) / self.duration_s if self.duration_s > 0 else 0.0

    def window_counts(self, window_s: float) -> np.ndarray:
        """Requests per window of `window_s` seconds of trace time, covering [0, duration_s)."""
        n = max(1, math.ceil(self.duration_s / window_s - 1e-9))
        idx = np.minimum((self.t_s // window_s).astype(np.int64), n - 1)
        return np.bincount(idx, minlength=n)

    def key_counts(self) -> dict[TraceKey, int]:
        counts = np.bincount(self.key_index, minlength=len(self.keys))
        return {k: int(c) for k, c in zip(self.keys, counts, strict=True) if c}


def make_trace(t_s: Sequence[float] | np.ndarray, keys: Sequence[TraceKey] | None = None,
               request_bytes: Sequence[int] | np.ndarray | None = None, *, duration_s: float | None = None,
               start: str | None = None, source: str = "", bad: BadLines | None = None) -> Trace:
    """A Trace from per-request columns (keys per request, deduplicated here); sorted by time,
    shifted so nothing is before 0."""
    t = np.asarray(t_s, dtype=np.float64)
    n = t.size
    if n == 0:
        raise InputError("the trace has no requests")
    if not np.all(np.isfinite(t)):
        raise InputError("the trace has non-finite send times")
    per_request = list(keys) if keys is not None else [TraceKey()] * n
    if len(per_request) != n:
        raise ValueError("keys and t_s differ in length")
    table: dict[TraceKey, int] = {}
    key_index = np.fromiter((table.setdefault(k, len(table)) for k in per_request), dtype=np.int32, count=n)
    rb = (np.asarray(request_bytes, dtype=np.int64) if request_bytes is not None
          else np.full(n, -1, dtype=np.int64))
    return _from_columns(t, key_index, tuple(table), rb, duration_s=duration_s, start=start, source=source,
                         bad=bad)


def _from_columns(t: np.ndarray, key_index: np.ndarray, keys: tuple[TraceKey, ...], rb: np.ndarray, *,
                  duration_s: float | None, start: str | None, source: str, bad: BadLines | None) -> Trace:
    if not np.all(np.isfinite(t)):
        raise InputError("the trace has non-finite send times")
    order = np.argsort(t, kind="stable")
    t = t[order]
    if t[0] < 0:
        t = t - t[0]
    last = float(t[-1])
    dur = float(duration_s) if duration_s is not None else last
    if dur < last:
        raise InputError(f"the trace's duration_s {dur:g} is shorter than its last send time {last:g}")
    if dur <= 0:
        dur = max(last, 1e-3)
    return Trace(t_s=t, key_index=key_index[order], keys=keys, request_bytes=rb[order], duration_s=dur,
                 start=start, source=source, bad=bad or BadLines())


# ---- reading ----------------------------------------------------------------------------------


def _opt_int(value: Any, name: str, minimum: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        value = int(value.strip())
    if not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}")
    return value


def _opt_str(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


def parse_time(value: Any) -> float:
    """Unix seconds (number or numeric string) or ISO 8601 (naive means UTC) -> Unix seconds."""
    if isinstance(value, bool):
        raise ValueError("bad timestamp")
    if isinstance(value, int | float):
        out = float(value)
    else:
        text = str(value).strip()
        try:
            out = float(text)
        except ValueError:
            try:
                dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"bad timestamp {text[:40]!r}") from None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            out = dt.timestamp()
    if not math.isfinite(out):
        raise ValueError("bad timestamp")
    return out


KEY_FIELDS = ("model", "version", "label", "kind", "batch_size")


def _key_of(row: Any) -> TraceKey:
    """The TraceKey of a line's fields (a mapping); ValueError says what is wrong."""
    kind = _opt_str(row.get("kind"), "kind")
    if kind is not None and kind not in TRACE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(TRACE_KINDS)}")
    version = _opt_int(row.get("version"), "version", 0)
    label = _opt_str(row.get("label"), "label")
    if version is not None and label is not None:
        raise ValueError("give version or label, not both")
    return TraceKey(model=_opt_str(row.get("model"), "model"), version=version, label=label, kind=kind,
                    batch_size=_opt_int(row.get("batch_size"), "batch_size", 1))


def _time_of(t_s: Any, ts: Any) -> tuple[float, bool]:
    """(seconds, is absolute) from a line's t_s or ts."""
    if t_s is not None and t_s != "":
        if isinstance(t_s, bool):
            raise ValueError("t_s must be a number >= 0")
        try:
            t = float(t_s)
        except (TypeError, ValueError):
            raise ValueError("t_s must be a number >= 0") from None
        if not (t >= 0 and t != math.inf):
            raise ValueError("t_s must be a number >= 0")
        return t, False
    if ts is not None and ts != "":
        return parse_time(ts), True
    raise ValueError("no send time (t_s or ts)")


class _Columns:
    """The columns being read, with each distinct key validated once (a day's trace has millions of
    lines and a handful of keys)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.absolute: set[bool] = set()
        self.kidx: list[int] = []
        self.sizes: list[int] = []
        self.table: dict[TraceKey, int] = {}
        self._cache: dict[tuple, int | str] = {}

    def add(self, t_s: Any, ts: Any, raw_key: tuple, fields: Any, rb: Any) -> None:
        """Raises ValueError (the reason) for an unusable line; nothing is added then."""
        t, is_abs = _time_of(t_s, ts)
        try:
            k = self._cache.get(raw_key)
        except TypeError:  # an unhashable JSON value (a list...) where a key field belongs
            raise ValueError("model, version, label, kind and batch_size must be plain values") from None
        if k is None:
            try:
                key = _key_of(fields)
                k = self.table.setdefault(key, len(self.table))
            except ValueError as exc:
                k = str(exc)
            self._cache[raw_key] = k
        if isinstance(k, str):
            raise ValueError(k)
        size = -1 if rb is None or rb == "" else _opt_int(rb, "request_bytes", 0)
        self.times.append(t)
        self.absolute.add(is_abs)
        self.kidx.append(k)
        self.sizes.append(size)  # type: ignore[arg-type]


def _header_of(first: str, path: str) -> dict[str, Any]:
    text = first.strip()
    if text.startswith("#"):
        words = text.lstrip("#").split()
        if len(words) < 2 or words[0] != TRACE_FORMAT or not words[1].startswith("v"):
            raise InputError(f"{path}: not a tfsbench trace (first line must be '# {TRACE_FORMAT} v1 ...')")
        header: dict[str, Any] = {"format": TRACE_FORMAT, "version": words[1][1:]}
        for word in words[2:]:
            k, sep, v = word.partition("=")
            if sep:
                header[k] = v
        return header
    try:
        header = json.loads(text)
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != TRACE_FORMAT:
        raise InputError(f"{path}: not a tfsbench trace (first line must be a header with "
                         f"\"format\": \"{TRACE_FORMAT}\"; import logs with `tfsbench trace import`)")
    return header


def _check_header(header: dict[str, Any], path: str) -> tuple[float | None, str | None, str]:
    try:
        version = int(header.get("version"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{path}: the trace header has no valid version") from None
    if version > TRACE_VERSION or version < 1:
        raise InputError(f"{path}: trace format version {version} is not supported (this tfsbench reads "
                         f"version {TRACE_VERSION}); upgrade tfsbench")
    duration = header.get("duration_s")
    try:
        dur = float(duration) if duration not in (None, "") else None
    except (TypeError, ValueError):
        raise InputError(f"{path}: the trace header's duration_s is not a number") from None
    if dur is not None and not (math.isfinite(dur) and dur > 0):
        raise InputError(f"{path}: the trace header's duration_s must be > 0")
    start = header.get("start")
    return dur, start if isinstance(start, str) else None, str(header.get("source", ""))


def _read_csv(lines: Iterator[str], cols: _Columns, counter: BadLineCounter) -> None:
    header: list[str] | None = None
    for line_no, line in enumerate(lines, start=2):
        if not line.strip() or line.startswith("#"):
            continue
        text = line.rstrip("\r\n")
        cells = text.split(",") if '"' not in text else next(csv.reader([text]))
        if header is None:
            header = [c.strip() for c in cells]
            if "t_s" not in header and "ts" not in header:
                raise InputError(f"line {line_no}: the CSV column header must name t_s or ts")
            width = len(header)
            at = {name: i for i, name in enumerate(header)}
            key_at = [at.get(f) for f in KEY_FIELDS]
            t_at, ts_at, rb_at = at.get("t_s"), at.get("ts"), at.get("request_bytes")
            continue
        if len(cells) != width:
            counter.bad(line_no, f"{len(cells)} cells, expected {width}")
            continue
        raw = tuple(cells[i].strip() if i is not None else "" for i in key_at)
        try:
            cols.add(cells[t_at].strip() if t_at is not None else None,
                     cells[ts_at].strip() if ts_at is not None else None, raw,
                     _RawKey(raw), cells[rb_at].strip() if rb_at is not None else None)
        except ValueError as exc:
            counter.bad(line_no, str(exc).splitlines()[0][:80])


class _RawKey:
    """A CSV line's key cells, read like a JSON object's fields."""

    __slots__ = ("raw",)

    def __init__(self, raw: tuple) -> None:
        self.raw = raw

    def get(self, name: str) -> Any:
        return self.raw[KEY_FIELDS.index(name)]


def _read_jsonl(lines: Iterator[str], cols: _Columns, counter: BadLineCounter) -> None:
    import orjson

    for line_no, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            counter.bad(line_no, "not JSON")
            continue
        if not isinstance(row, dict):
            counter.bad(line_no, "not a JSON object")
            continue
        get = row.get
        raw = (get("model"), get("version"), get("label"), get("kind"), get("batch_size"))
        try:
            cols.add(get("t_s"), get("ts"), raw, row, get("request_bytes"))
        except ValueError as exc:
            counter.bad(line_no, str(exc).splitlines()[0][:80])


def read_trace(path: str | os.PathLike[str]) -> Trace:
    """Read a trace file; bad lines are counted in `trace.bad`. Input errors are one line."""
    p = Path(path)
    try:
        fh = p.open(encoding="utf-8", newline="")
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror})") from None
    counter = BadLineCounter()
    cols = _Columns()
    try:
        with fh:
            lines = iter(fh)
            first = next(lines, "")
            if not first.strip():
                raise InputError(f"{p}: empty file, not a tfsbench trace")
            dur, start, source = _check_header(_header_of(first, str(p)), str(p))
            (_read_csv if p.suffix.lower() == ".csv" else _read_jsonl)(lines, cols, counter)
    except UnicodeDecodeError:
        raise InputError(f"{p}: not a text file") from None
    bad = counter.freeze()
    if not cols.times:
        detail = f": {bad.describe()}" if bad.count or bad.skipped else ""
        raise InputError(f"{p}: no usable request lines{detail}")
    if len(cols.absolute) > 1:
        raise InputError(f"{p}: mixes absolute ts and relative t_s send times; use one")
    t = np.asarray(cols.times)
    if True in cols.absolute:
        t0 = float(t.min())
        t = t - t0
        start = start or datetime.fromtimestamp(t0, UTC).isoformat()
    return _from_columns(t, np.asarray(cols.kidx, dtype=np.int32), tuple(cols.table),
                         np.asarray(cols.sizes, dtype=np.int64), duration_s=dur, start=start, source=source, bad=bad)


# ---- writing ----------------------------------------------------------------------------------


def _header(trace: Trace) -> dict[str, Any]:
    header: dict[str, Any] = {"format": TRACE_FORMAT, "version": TRACE_VERSION}
    if trace.start:
        header["start"] = trace.start
    header["duration_s"] = round(trace.duration_s, 6)
    header["requests"] = len(trace)
    if trace.source:
        header["source"] = trace.source
    return header


def _key_fields(key: TraceKey) -> dict[str, Any]:
    return {k: v for k, v in (("model", key.model), ("version", key.version), ("label", key.label),
                              ("kind", key.kind), ("batch_size", key.batch_size)) if v is not None}


def iter_lines(trace: Trace, as_csv: bool) -> Iterable[str]:
    """The file's lines (with newlines): header first."""
    header = _header(trace)
    if as_csv:
        extras = " ".join(f"{k}={v}" for k, v in header.items()
                          if k not in ("format", "version") and " " not in str(v))
        yield f"# {TRACE_FORMAT} v{TRACE_VERSION} {extras}".rstrip() + "\n"
        yield ",".join(CSV_COLUMNS) + "\n"
    else:
        yield json.dumps(header) + "\n"
    key_text = []
    for key in trace.keys:
        if as_csv:
            buf = io.StringIO()
            csv.writer(buf, lineterminator="").writerow(
                ["" if v is None else v for v in (key.model, key.version, key.label, key.kind, key.batch_size)])
            key_text.append(buf.getvalue())
        else:
            key_text.append(json.dumps(_key_fields(key))[1:-1])
    times = trace.t_s.tolist()
    kidx = trace.key_index.tolist()
    rbs = trace.request_bytes.tolist()
    for t, k, rb in zip(times, kidx, rbs, strict=True):
        if as_csv:
            yield f"{t:.6f},{key_text[k]},{'' if rb < 0 else rb}\n"
        else:
            parts = [f'"t_s": {t:.6f}']
            if key_text[k]:
                parts.append(key_text[k])
            if rb >= 0:
                parts.append(f'"request_bytes": {rb}')
            yield "{" + ", ".join(parts) + "}\n"


def write_trace(trace: Trace, path: str | os.PathLike[str]) -> None:
    """Write atomically (readers never see half a trace; payloads cannot import bench's helper);
    CSV when the name ends in .csv."""
    import tempfile

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(iter_lines(trace, p.suffix.lower() == ".csv"))
            fh.flush()
            os.fsync(fh.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
