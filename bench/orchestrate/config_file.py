"""Reading TOML configuration files strictly: every key known, every value checked, one clear line.

A misspelled key in a benchmark config silently falls back to a default and an hour of results
measures the wrong thing (k6#1526 is the same failure for thresholds). So unknown keys are errors,
with a "did you mean" suggestion, and every error names the file, the table and the key.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tfsbench.payloads import units
from tfsbench.payloads.errors import InputError


def load_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; unreadable or malformed files become one InputError line."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{p}: no such config file") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory, not a config file") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read config file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{p}: config file is not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{p}: invalid TOML ({str(exc).splitlines()[0]})") from None


def suggest(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest known name, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(table: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    """Reject keys of `table` that are not in `known`, suggesting the closest known key."""
    for key in table:
        if key not in known:
            raise InputError(f"{where}: unknown key {key!r}{suggest(key, known)}; known keys: {', '.join(known)}")


def get_table(doc: Mapping[str, Any], name: str, where: str, *, required: bool = False) -> dict[str, Any]:
    value = doc.get(name)
    if value is None:
        if required:
            raise InputError(f"{where}: missing [{name}] table")
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{where}: {name!r} must be a table ([{name}]), not {_type_name(value)}")
    return dict(value)


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def as_str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where} must be a non-empty string, not {value!r}")
    return value.strip()


def as_positive_int(value: Any, where: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{where} must be an integer >= {minimum}, not {value!r}")
    return value


def as_positive_float(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{where} must be a positive number, not {value!r}")
    return float(value)


def as_list(value: Any, where: str) -> list[Any]:
    """A TOML array, or a single scalar taken as a one-element list; never empty."""
    if isinstance(value, str) and "," in value:
        items: list[Any] = [v.strip() for v in value.split(",")]
    elif isinstance(value, list):
        items = list(value)
    else:
        items = [value]
    if not items:
        raise InputError(f"{where} must not be empty")
    return items


def parse_duration_s(value: Any, where: str, *, allow_zero: bool = False) -> float:
    """A duration as seconds: a number (seconds) or text like '500ms', '10s', '2m', '1h'."""
    if isinstance(value, bool):
        raise InputError(f"{where} must be a duration like '10s', not {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = units.parse_duration_s(value, where)  # the one grammar of durations (payloads.units)
    else:
        raise InputError(f"{where} must be a duration like '10s', not {_type_name(value)}")
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        raise InputError(f"{where} must be a {'non-negative' if allow_zero else 'positive'} duration, not {value!r}")
    return seconds
