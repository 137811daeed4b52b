"""The command-line grammar: every argparse `type=` callable and every exit status, in one place.

Each value type is spelled the same way in every command (and benchmark script): a duration is
'30s', '500ms', '2m', '1h', '1e1' or a bare number of seconds everywhere; a fraction is '0.05' or '5%'
everywhere; the range of a value is the option's (a warmup may be 0, a duration may not). A refused
value is one line on stderr and exit status 2 (argparse turns ArgumentTypeError into that).
docs/cli.md lists the grammar; tests/test_args_grammar.py runs it through every command.

Exit status of every command (and benchmark script): 0 ok, 1 a check failed, 2 bad input, 130
interrupted (the EXIT_* constants below).
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from tfsbench.payloads.credentials import redact_url, refuse_userinfo
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.spec import MAX_IMAGE_SIDE
from tfsbench.payloads.units import parse_duration_s, parse_rate_rps

EXIT_OK = 0  # done, every check passed
EXIT_FAILED = 1  # a check, gate or SLO failed (or a run of a sweep crashed)
EXIT_USAGE = 2  # bad input: one line on stderr, nothing sent, nothing half-written
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM (128 + SIGINT, as shells report it); partial results are kept

T = TypeVar("T")
_NUMBER_RE = re.compile(r"^\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?\s*$", re.IGNORECASE)


def from_input_error(parse: Callable[[str], T], name: str | None = None, *,
                     strip_prefix: str | None = None) -> Callable[[str], T]:
    """An argparse `type=` from a parser that raises InputError (one-line error, exit 2).
    `strip_prefix` drops a leading 'what: ' the parser adds, since argparse names the option."""

    def check(text: str) -> T:
        try:
            return parse(text)
        except InputError as exc:
            message = str(exc)
            if strip_prefix is not None:
                message = message.removeprefix(strip_prefix)
            raise argparse.ArgumentTypeError(message) from None

    check.__name__ = name or getattr(parse, "__name__", "value")
    return check


# ---- numbers ----------------------------------------------------------------------------------


def _integer(text: str, expected: str) -> int:
    try:
        return int(text.strip(), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def positive_int(text: str) -> int:
    """An integer >= 1 (counts: concurrency, requests, processes, batch size...)."""
    value = _integer(text, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (seeds, model versions)."""
    value = _integer(text, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def int_in_range(low: int, high: int, what: str = "value") -> Callable[[str], int]:
    """An integer in [low, high] (e.g. doctor --calls 1..10000, serve --workers 1..64)."""

    def parse(text: str) -> int:
        value = _integer(text, f"an integer from {low} to {high}")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be between {low} and {high}, got {value}")
        return value

    parse.__name__ = f"integer {low}..{high}"
    return parse


def port(text: str) -> int:
    """A TCP port, 0-65535 (0 picks a free port)."""
    try:
        value = int(text.strip(), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is outside 0-65535 (0 picks a free port)")
    return value


def _float(text: str, expected: str) -> float:
    if not _NUMBER_RE.match(text):  # float() also takes 'nan', 'inf', '1_000': not numbers people mean
        raise argparse.ArgumentTypeError(f"{text!r} is not {expected}")
    return float(text)


def positive_float(text: str) -> float:
    """A finite number > 0 (rates in req/s for --lo/--hi, traffic targets)."""
    value = _float(text, "a positive number")
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (costs)."""
    value = _float(text, "a number >= 0")
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number >= 0")
    return value


def number_in_range(low: float, high: float, what: str = "value", *, low_open: bool = False) -> Callable[[str], float]:
    """A finite number in [low, high] ((low, high] with low_open), e.g. trace --hours (0, 744]."""

    def parse(text: str) -> float:
        value = _float(text, f"a number ({what})")
        below = value <= low if low_open else value < low
        if not math.isfinite(value) or below or value > high:
            interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
            raise argparse.ArgumentTypeError(f"{text!r}: {what} must be in {interval}")
        return value

    parse.__name__ = what
    return parse


def parse_fraction(text: str) -> float:
    """'0.05' or '5%' -> 0.05; InputError otherwise (no range check)."""
    raw = str(text).strip()
    percent = raw.endswith("%")
    number = raw[:-1] if percent else raw
    if not _NUMBER_RE.match(number):
        raise InputError(f"{text!r} is not a fraction like 0.05 or 5%")
    value = float(number) / (100.0 if percent else 1.0)
    if not math.isfinite(value):
        raise InputError(f"{text!r} is not a fraction like 0.05 or 5%")
    return value


def fraction(text: str) -> float:
    """A fraction in [0, 1): '0.3' or '30%' (headroom, noise threshold)."""
    value = from_input_error(parse_fraction)(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be in [0, 1) (or 0%..99%)")
    return value


def positive_fraction(text: str) -> float:
    """A fraction in (0, 1): '0.05' or '5%' (a search's tolerance: 0 would never end)."""
    value = from_input_error(parse_fraction)(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be in (0, 1) (or between 0% and 100%)")
    return value


# ---- durations and rates ---------------------------------------------------------------------


def duration(text: str) -> float:
    """A duration > 0 in seconds: '30s', '500ms', '2m', '1h', '1e1', '10'."""
    value = from_input_error(parse_duration_s, strip_prefix="duration: ")(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be longer than 0, got {text!r}")
    return value


def duration_or_zero(text: str) -> float:
    """A duration >= 0 (warmups)."""
    return from_input_error(parse_duration_s, strip_prefix="duration: ")(text)


def duration_at_most(limit_s: float) -> Callable[[str], float]:
    """A duration in (0, limit_s] (doctor's per-request timeout)."""

    def parse(text: str) -> float:
        value = duration(text)
        if value > limit_s:
            raise argparse.ArgumentTypeError(f"must be at most {limit_s:g} s, got {text!r}")
        return value

    parse.__name__ = "duration"
    return parse


def rate(text: str) -> float:
    """Requests per second > 0: '200', '200/s', '1.5k', '2e3'."""
    return from_input_error(parse_rate_rps, strip_prefix="rate: ")(text)


def slo(text: str) -> Any:
    """A latency SLO such as 'p99<=50ms' or 'p95<0.2s' (see bench.stats.slo)."""
    from tfsbench.bench.stats.slo import parse_slo

    return from_input_error(parse_slo)(text)


# ---- URLs and names ---------------------------------------------------------------------------


def parse_url(url: str, where: str = "--url") -> str:
    """An http(s) URL with a host and a valid port, no query or fragment and no user name or password
    (credentials go in a header); returned stripped and without a trailing slash. A path is kept (for
    proxies in front of TF Serving). Messages never show a password."""
    if not isinstance(url, str):
        raise InputError(f"{where} must be a URL string, not {type(url).__name__}")
    text = url.strip()
    shown = repr(redact_url(text) if "://" in text or "@" not in text else "***@" + text.rsplit("@", 1)[1])
    try:
        parts = urlsplit(text)
    except ValueError:
        raise InputError(f"{where} {shown} is not a URL") from None
    if parts.scheme not in ("http", "https"):
        raise InputError(f"{where} {shown} needs an http:// or https:// scheme, e.g. http://127.0.0.1:8501")
    refuse_userinfo(text, where)
    if not parts.hostname:
        raise InputError(f"{where} {shown} has no host")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InputError(f"{where} {shown} has an invalid port") from None
    if parts.query or parts.fragment:
        raise InputError(f"{where} {shown} must not have a query or fragment")
    return text.rstrip("/")


def url(text: str) -> str:
    """argparse type of --url: see parse_url."""
    return from_input_error(lambda t: parse_url(t, "URL"))(text)


def out_file(text: str) -> Path:
    """--out FILE: a file path, not a directory, whose directory exists or can be created."""
    path = Path(text)
    if not text or path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a directory; give a file such as results/bench.json")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not os.access(parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write under {parent}")
    return path


def choice_of(choices: Sequence[str], what: str) -> Callable[[str], str]:
    """One of `choices`, with a did-you-mean when a value is close."""

    def parse(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {text!r}{_suggest(text, choices)} (choose from {', '.join(choices)})")
        return text

    parse.__name__ = what
    return parse


def comma_list(item: Callable[[str], T], what: str) -> Callable[[str], list[T]]:
    """'a,b,c' -> [item('a'), item('b'), item('c')]; no empty items, at least one."""

    def parse(text: str) -> list[T]:
        parts = [p.strip() for p in text.split(",")]
        if not text.strip() or any(not p for p in parts):
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of {what}")
        try:
            return [item(p) for p in parts]
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None

    parse.__name__ = f"{what} list"
    return parse


def comma_tuple(item: Callable[[str], T], what: str) -> Callable[[str], tuple[T, ...]]:
    """comma_list as a tuple (for values that end up in frozen records)."""
    as_list = comma_list(item, what)

    def parse(text: str) -> tuple[T, ...]:
        return tuple(as_list(text))

    parse.__name__ = f"{what} list"
    return parse


# ---- payload shapes ---------------------------------------------------------------------------


def word_range(text: str) -> tuple[int, int]:
    """"16" -> (16, 16); "8-32" -> (8, 32)."""
    parts = text.split("-")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or MIN-MAX words, got {text!r}") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or values[0] < 1 or values[1] < values[0]:
        raise argparse.ArgumentTypeError(f"expected N or MIN-MAX words with 1 <= MIN <= MAX, got {text!r}")
    return values[0], values[1]


def image_size(text: str) -> tuple[int, int]:
    """"128x96" -> (128, 96) as (width, height); "224" -> (224, 224)."""
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, e.g. 128x128, got {text!r}") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, e.g. 128x128, got {text!r}")
    for side in values:
        if not 1 <= side <= MAX_IMAGE_SIDE:
            raise argparse.ArgumentTypeError(
                f"image size {text} is out of range: each side must be 1..{MAX_IMAGE_SIDE} px"
            )
    return values[0], values[1]


def dims(text: str) -> tuple[int, ...]:
    """"784" or "28,28" or "28x28" -> a tuple of positive dims."""
    items = [t for t in text.replace("x", ",").split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected dims like 784 or 28,28, got {text!r}")
    try:
        values = tuple(int(t) for t in items)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected dims like 784 or 28,28, got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"dims must be >= 1, got {text!r}")
    return values


def shape_override(text: str) -> tuple[str, tuple[int, ...]]:
    """"image=1,224,224,3" -> ("image", (1, 224, 224, 3)); -1 allowed only as a leading batch dim."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip() or not rest.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=D1,D2,... e.g. image=224,224,3, got {text!r}")
    try:
        values = tuple(int(t) for t in rest.replace("x", ",").split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=D1,D2,... with integer dims, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected NAME=D1,D2,... e.g. image=224,224,3, got {text!r}")
    body = values[1:] if values[0] == -1 else values
    if any(v < 1 for v in body):
        raise argparse.ArgumentTypeError(f"dims in {text!r} must be >= 1 (only a leading batch dim may be -1)")
    if values[0] == -1:
        values = (1, *body)  # a full shape with an open batch dim: dim 0 is replaced by the batch size
    return name.strip(), values


def _suggest(name: str, known: Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
