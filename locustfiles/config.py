"""The Locust users' parameters: one table of custom arguments, one strict parser.

Locust shows custom arguments in its web UI (`include_in_web_ui`) and reads them from the command
line and `locust.conf`. The web UI hands values back as text, so every value is parsed here from
either text or its typed default, and every problem is one line naming the argument. This module
does not import locust, so the tests (and `tfsbench`) can use it without gevent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tfsbench.bench.args import parse_url
from tfsbench.payloads import units
from tfsbench.payloads.errors import InputError

KINDS: tuple[str, ...] = ("auto", "text", "image", "numeric")
FORMATS: tuple[str, ...] = ("row", "columnar")
IMAGE_FORMATS: tuple[str, ...] = ("jpeg", "png")
SHAPES: tuple[str, ...] = ("step", "spike", "knee")


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One custom argument: `--flag`, stored as `dest` in Locust's parsed options."""

    flag: str
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    required: bool = False
    group: str = "payload"  # payload | gates | shape | output | auth (never in the web UI)

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("--model", "", "model name, as in /v1/models/NAME (required)", required=True),
    OptionSpec("--model-version", "", "model version number (empty: latest); not with --model-label"),
    OptionSpec("--model-label", "", "model version label such as 'stable'; not with --model-version"),
    OptionSpec("--signature", "", "signature name (empty: the server's default)"),
    OptionSpec(
        "--kind",
        "auto",
        "payload kind; selects the user class unless classes are picked explicitly",
        choices=KINDS,
    ),
    OptionSpec("--batch-size", 1, "instances per request (>= 1)"),
    OptionSpec("--format", "row", "request format: row ('instances') or columnar ('inputs')", choices=FORMATS),
    OptionSpec("--pool-size", 64, "pre-encoded request bodies per user process (>= 1)"),
    OptionSpec("--image-size", "128x128", "image payloads: WIDTHxHEIGHT in pixels"),
    OptionSpec("--image-format", "jpeg", "image payloads: encoding", choices=IMAGE_FORMATS),
    OptionSpec("--text-words", "8-32", "text payloads: words per instance, MIN-MAX"),
    OptionSpec("--seed", 0, "random seed of the payload generator"),
    OptionSpec("--request-timeout", 30.0, "seconds before a request counts as a timeout failure (> 0)"),
    OptionSpec("--slo-p99-ms", 0.0, "headless CI gate: fail (exit 1) if p99 exceeds this many ms (0: off)", group="gates"),
    OptionSpec("--max-fail-ratio", -1.0, "headless CI gate: fail if failures/requests exceeds this (-1: off)", group="gates"),
    OptionSpec("--min-rps", 0.0, "headless CI gate: fail if total requests/s is below this (0: off)", group="gates"),
    OptionSpec("--shape", "step", "load shape used with locustfiles/shapes.py", choices=SHAPES, group="shape"),
    OptionSpec("--shape-users", 10, "step/knee: users added per step; spike: base users", group="shape"),
    OptionSpec("--shape-step-s", 10.0, "seconds per step (spike: seconds before and after the spike)", group="shape"),
    OptionSpec("--shape-steps", 5, "number of steps (knee: most steps before giving up)", group="shape"),
    OptionSpec("--shape-spike-users", 50, "spike: users during the spike", group="shape"),
    OptionSpec("--shape-spike-s", 10.0, "spike: seconds the spike lasts", group="shape"),
    OptionSpec("--shape-p99-ms", 100.0, "knee: stop at the first step whose p99 exceeds this many ms", group="shape"),
    OptionSpec("--tfs-result", "", "write a tfsbench run-result JSON file here when the run ends", group="output"),
    OptionSpec("--header", (), "extra HTTP header on every request, 'NAME: VALUE' (repeatable), e.g. "
               "'Authorization: Bearer x'; never shown in or settable from the web UI", group="auth"),
)

OPTION_BY_DEST: Mapping[str, OptionSpec] = {o.dest: o for o in OPTIONS}


@dataclass(frozen=True, slots=True)
class UserConfig:
    """What every user process needs to build its pool and name its requests."""

    model: str
    kind: str
    batch_size: int
    format: str
    version: int | None = None
    label: str | None = None
    signature: str | None = None
    pool_size: int = 64
    image_size: tuple[int, int] = (128, 128)
    image_format: str = "jpeg"
    text_words: tuple[int, int] = (8, 32)
    seed: int = 0
    timeout_s: float = 30.0
    headers: tuple[tuple[str, str], ...] = ()  # --header, in order

    def predict_path(self) -> str:
        """`/v1/models/M[/versions/V|/labels/L]:predict`."""
        return f"{self.model_path()}:predict"

    def model_path(self) -> str:
        path = f"/v1/models/{quote(self.model, safe='')}"
        if self.version is not None:
            path += f"/versions/{self.version}"
        elif self.label:
            path += f"/labels/{quote(self.label, safe='')}"
        return path


@dataclass(frozen=True, slots=True)
class Gates:
    """Headless CI bounds; None means the bound is off."""

    slo_p99_ms: float | None = None
    max_fail_ratio: float | None = None
    min_rps: float | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.slo_p99_ms, self.max_fail_ratio, self.min_rps))


@dataclass(frozen=True, slots=True)
class ShapeConfig:
    shape: str = "step"
    users: int = 10
    step_s: float = 10.0
    steps: int = 5
    spike_users: int = 50
    spike_s: float = 10.0
    p99_ms: float = 100.0


def request_name(kind: str, batch_size: int, fmt: str) -> str:
    """The Locust request name that groups results, e.g. 'numeric b=8 columnar'."""
    return f"{kind} b={batch_size} {fmt}"


def parse_request_name(name: str) -> tuple[str, int, str] | None:
    """The inverse of `request_name`, or None for other names."""
    m = re.fullmatch(r"(\w+) b=(\d+) (\w+)", name.strip())
    if not m:
        return None
    return m[1], int(m[2]), m[3]


# ---- value parsers: each takes text or a typed value and names the flag on error ----------------


def _get(opts: Any, dest: str) -> Any:
    if isinstance(opts, Mapping):
        value = opts.get(dest, OPTION_BY_DEST[dest].default)
    else:
        value = getattr(opts, dest, OPTION_BY_DEST[dest].default)
    if value is None:
        value = OPTION_BY_DEST[dest].default
    return value.strip() if isinstance(value, str) else value


def _flag(dest: str) -> str:
    return OPTION_BY_DEST[dest].flag


def _int(opts: Any, dest: str, minimum: int | None = None) -> int:
    value = _get(opts, dest)
    if isinstance(value, bool):
        raise InputError(f"{_flag(dest)}: expected an integer, got {value!r}")
    try:
        number = int(value) if not isinstance(value, float) or value.is_integer() else None
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise InputError(f"{_flag(dest)}: expected an integer, got {value!r}")
    if minimum is not None and number < minimum:
        raise InputError(f"{_flag(dest)}: must be >= {minimum}, got {number}")
    return number


def _float(opts: Any, dest: str) -> float:
    value = _get(opts, dest)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{_flag(dest)}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{_flag(dest)}: expected a finite number, got {value!r}")
    return number


def _positive(opts: Any, dest: str) -> float:
    number = _float(opts, dest)
    if number <= 0:
        raise InputError(f"{_flag(dest)}: must be > 0, got {number:g}")
    return number


def _duration_s(opts: Any, dest: str) -> float:
    """Seconds > 0: a number, or a duration in the project's grammar ('30s', '500ms', '2m')."""
    value = _get(opts, dest)
    if isinstance(value, str):
        number = units.parse_duration_s(value, _flag(dest))
    else:
        number = _float(opts, dest)
    if number <= 0:
        raise InputError(f"{_flag(dest)}: must be > 0, got {number:g}")
    return number


def _choice(opts: Any, dest: str) -> str:
    value = str(_get(opts, dest)).lower()
    choices = OPTION_BY_DEST[dest].choices or ()
    if value not in choices:
        raise InputError(f"{_flag(dest)}: unknown value {value!r} (choose from {', '.join(choices)})")
    return value


def _pair(opts: Any, dest: str, sep_re: str, example: str) -> tuple[int, int]:
    value = _get(opts, dest)
    if isinstance(value, list | tuple) and len(value) == 2:
        value = f"{value[0]}x{value[1]}"
    m = re.fullmatch(rf"\s*(\d+)\s*{sep_re}\s*(\d+)\s*", str(value))
    if not m:
        raise InputError(f"{_flag(dest)}: expected {example}, got {value!r}")
    a, b = int(m[1]), int(m[2])
    if a < 1 or b < 1:
        raise InputError(f"{_flag(dest)}: both numbers must be >= 1, got {value!r}")
    return a, b


def _headers(opts: Any) -> tuple[tuple[str, str], ...]:
    from tfsbench.bench.measure.engine import header_dict

    value = _get(opts, "header")
    items = [value] if isinstance(value, str) else list(value or ())
    return tuple(header_dict([str(v) for v in items if str(v).strip()]).items())


def user_config(opts: Any) -> UserConfig:
    """Parse and check the payload options (argparse Namespace, Locust parsed_options or a dict)."""
    model = str(_get(opts, "model"))
    if not model:
        raise InputError("--model: a model name is required (as in /v1/models/NAME)")
    if "/" in model or any(c.isspace() for c in model):
        raise InputError(f"--model: {model!r} is not a model name (no '/' or spaces)")
    version_text = str(_get(opts, "model_version"))
    label = str(_get(opts, "model_label")) or None
    version = None
    if version_text:
        if not version_text.isdigit():
            raise InputError(f"--model-version: expected a version number, got {version_text!r}")
        version = int(version_text)
    if version is not None and label:
        raise InputError("--model-version and --model-label: give one or the other, not both")
    if label and not re.fullmatch(r"[A-Za-z0-9_]+", label):
        raise InputError(f"--model-label: {label!r} is not a label (letters, digits, '_')")
    text_words = _pair(opts, "text_words", "-", "MIN-MAX words such as 8-32")
    if text_words[0] > text_words[1]:
        raise InputError(f"--text-words: MIN must be <= MAX, got {text_words[0]}-{text_words[1]}")
    return UserConfig(
        model=model,
        kind=_choice(opts, "kind"),
        batch_size=_int(opts, "batch_size", minimum=1),
        format=_choice(opts, "format"),
        version=version,
        label=label,
        signature=str(_get(opts, "signature")) or None,
        pool_size=_int(opts, "pool_size", minimum=1),
        image_size=_pair(opts, "image_size", "x", "WIDTHxHEIGHT such as 128x128"),
        image_format=_choice(opts, "image_format"),
        text_words=text_words,
        seed=_int(opts, "seed", minimum=0),
        timeout_s=_duration_s(opts, "request_timeout"),
        headers=_headers(opts),
    )


def gates(opts: Any) -> Gates:
    """Parse the headless CI bounds; 0 (or -1 for the fail ratio) switches a bound off."""
    slo = _float(opts, "slo_p99_ms")
    fail = _float(opts, "max_fail_ratio")
    rps = _float(opts, "min_rps")
    if slo < 0:
        raise InputError(f"--slo-p99-ms: must be >= 0 (0 switches it off), got {slo:g}")
    if rps < 0:
        raise InputError(f"--min-rps: must be >= 0 (0 switches it off), got {rps:g}")
    if fail != -1 and not 0 <= fail <= 1:
        raise InputError(f"--max-fail-ratio: must be in [0, 1] (or -1 for off), got {fail:g}")
    return Gates(
        slo_p99_ms=slo if slo > 0 else None,
        max_fail_ratio=fail if fail >= 0 else None,
        min_rps=rps if rps > 0 else None,
    )


def shape_config(opts: Any) -> ShapeConfig:
    return ShapeConfig(
        shape=_choice(opts, "shape"),
        users=_int(opts, "shape_users", minimum=1),
        step_s=_duration_s(opts, "shape_step_s"),
        steps=_int(opts, "shape_steps", minimum=1),
        spike_users=_int(opts, "shape_spike_users", minimum=1),
        spike_s=_duration_s(opts, "shape_spike_s"),
        p99_ms=_positive(opts, "shape_p99_ms"),
    )


def check_host(host: str | None) -> str:
    """The target base URL: scheme and host required, no trailing slash."""
    text = (host or "").strip()
    if not text:
        raise InputError("--host: the target URL is required, e.g. http://127.0.0.1:8501")
    return parse_url(text, "--host")  # the one URL grammar (tfsbench.bench.args)
