"""Units written by people: durations ('30s', '500ms', '2m', '1e1') and rates ('200', '1.5k/s'), and
durations written back for people ('2m30s').

One grammar for every command, config file, trace tool and benchmark script (`tfsbench.bench.args`
wraps these for argparse). It lives in payloads, the bottom layer, so that server/ and payloads' own
trace tools use it too. Parsers raise InputError with one line; never NaN, infinity or a sign.
"""

from __future__ import annotations

import math
import re

from tfsbench.payloads.errors import InputError

# A number: 10, 1.5, .5, 2., 1e1, 2.5E-3 (no sign: durations and rates are never negative).
NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?"
DURATION_UNITS_S: dict[str | None, float] = {
    "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0,
    None: 1.0,
}
_DURATION_RE = re.compile(rf"^\s*({NUMBER})\s*(us|µs|ms|sec|s|min|m|h|d)?\s*$", re.IGNORECASE)
# per second unless written per minute or hour: '200', '200/s', '1.5k', '2e3 rps', '18000/min', '1e6/h'
_RATE_PER_S = {None: 1.0, "/s": 1.0, "/sec": 1.0, "rps": 1.0, "/m": 60.0, "/min": 60.0, "/h": 3600.0}
_RATE_RE = re.compile(rf"^\s*({NUMBER})\s*(k)?\s*(/sec|/s|rps|/min|/m|/h)?\s*$", re.IGNORECASE)
DURATION_EXAMPLES = "30s, 500ms, 2m, 1h"


def parse_duration_s(text: str, what: str = "duration") -> float:
    """'30s', '500ms', '2m', '1.5h', '1d', '250us', '1e1' or a bare number of seconds -> seconds (finite, >= 0)."""
    match = _DURATION_RE.match(str(text))
    if not match:
        raise InputError(f"{what}: {text!r} is not a duration (examples: {DURATION_EXAMPLES})")
    unit = match.group(2).lower() if match.group(2) else None
    value = float(match.group(1)) * DURATION_UNITS_S[unit]
    if not math.isfinite(value):
        raise InputError(f"{what}: {text!r} is not a finite duration")
    return value


def parse_rate_rps(text: str, what: str = "rate") -> float:
    """'200', '200/s', '1.5k', '2e3 rps', '18000/min', '1e6/h' -> requests per second (finite, > 0)."""
    match = _RATE_RE.match(str(text))
    if not match:
        raise InputError(f"{what}: {text!r} is not a rate (examples: 200, 200/s, 1.5k)")
    per = match.group(3).lower() if match.group(3) else None
    value = float(match.group(1)) * (1000.0 if match.group(2) else 1.0) / _RATE_PER_S[per]
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{what}: must be > 0 requests per second, got {text!r}")
    return value


def format_duration(seconds: float) -> str:
    """Short human text: 0.25 -> '250ms', 30 -> '30s', 150 -> '2m30s'."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds < 120:
        return f"{seconds:g}s"
    m, s = divmod(round(seconds), 60)
    return f"{m}m{s}s" if s else f"{m}m"
