"""Duration text ('250ms', '1.5s', '200us', '2m') -> seconds, shared by every server option parser."""

from __future__ import annotations

import math
import re

from tfsbench.payloads.errors import InputError

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|µs|ms|s|m)?\s*$")
_UNIT_S = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, None: 1.0}


def parse_duration_s(text: str, *, what: str = "duration") -> float:
    """A bare number is seconds. The result is finite and >= 0; `what` names the option in errors."""
    match = _DURATION_RE.match(str(text))
    if not match:
        raise InputError(f"{what}: {text!r} is not a duration (examples: 5ms, 1.5s, 200us)")
    value_s = float(match.group(1)) * _UNIT_S[match.group(2)]
    if not math.isfinite(value_s):
        raise InputError(f"{what}: {text!r} is not a finite duration")
    return value_s
