"""Parsing of load options written by people: durations ('30s', '500ms', '2m'), rates ('200', '1.5k/s')
and counts (positive or non-negative integers).

Shared by every command and benchmark script so they accept the same spellings; the argparse
`type=` wrappers raise ArgumentTypeError (one line, exit 2) and the plain functions InputError.
"""

from __future__ import annotations

import argparse
import math
import re

from tfsbench.payloads.errors import InputError

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|µs|ms|s|sec|m|min|h)?\s*$")
_DURATION_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0,
                   "h": 3600.0, None: 1.0}
_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(k)?\s*(/s|rps)?\s*$", re.IGNORECASE)


def parse_duration_s(text: str, what: str = "duration") -> float:
    """'30s', '500ms', '2m', '1.5h', '250us' or a bare number of seconds -> seconds (finite, >= 0)."""
    match = _DURATION_RE.match(str(text))
    if not match:
        raise InputError(f"{what}: {text!r} is not a duration (examples: 30s, 500ms, 2m)")
    value = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if not math.isfinite(value):
        raise InputError(f"{what}: {text!r} is not a finite duration")
    return value


def parse_rate_rps(text: str, what: str = "rate") -> float:
    """'200', '200/s', '1.5k' -> requests per second (finite, > 0)."""
    match = _RATE_RE.match(str(text))
    if not match:
        raise InputError(f"{what}: {text!r} is not a rate (examples: 200, 200/s, 1.5k)")
    value = float(match.group(1)) * (1000.0 if match.group(2) else 1.0)
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{what}: must be > 0 requests per second, got {text!r}")
    return value


def duration_arg(text: str) -> float:
    """argparse type: a duration > 0."""
    try:
        value = parse_duration_s(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("duration: ")) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be longer than 0, got {text!r}")
    return value


def duration_or_zero_arg(text: str) -> float:
    """argparse type: a duration >= 0 (warmup)."""
    try:
        return parse_duration_s(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("duration: ")) from None


def rate_arg(text: str) -> float:
    try:
        return parse_rate_rps(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("rate: ")) from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def format_duration(seconds: float) -> str:
    """Short human text: 0.25 -> '250ms', 30 -> '30s', 150 -> '2m30s'."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds < 120:
        return f"{seconds:g}s"
    m, s = divmod(round(seconds), 60)
    return f"{m}m{s}s" if s else f"{m}m"
