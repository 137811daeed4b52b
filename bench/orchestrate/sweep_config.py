"""Sweep config files (TOML): a [sweep] table (the grid and the base run), an optional [payload]
table (the payload flags of `tfsbench sweep`) and an optional [check] table (thresholds for
`--check`). Everything is validated before any load, and every error names the file and key, or
the flag when the value came from the command line."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfsbench.bench.orchestrate import config_file as cf
from tfsbench.bench.orchestrate.grid import ARRIVALS, ENGINES, FORMATS, KINDS, SweepPlan
from tfsbench.bench.results import RunConfig
from tfsbench.payloads.errors import InputError

SWEEP_KEYS: tuple[str, ...] = (
    "url", "model", "version", "label", "signature", "kinds", "batch_sizes", "formats", "concurrency",
    "rates", "arrival", "duration", "warmup", "requests", "engine", "processes", "timeout", "seed",
    "max_inflight", "pool_size", "out", "headers", "protocol", "numeric_form", "repeat", "max_duration",
    "max_warmup",
)
TOP_KEYS: tuple[str, ...] = ("sweep", "payload", "check")
CHECK_KEYS: tuple[str, ...] = ("thresholds",)
_REQUIRED: tuple[str, ...] = ("url", "model", "kinds", "batch_sizes")


@dataclass(frozen=True, slots=True)
class SweepFile:
    """A parsed sweep config file. `payload` is the raw [payload] table: option names of the
    `tfsbench sweep` payload flags without the dashes (the command validates them). `thresholds`
    are the [check] table's threshold strings, for `--check`."""

    plan: SweepPlan
    thresholds: tuple[str, ...] = ()
    payload: Mapping[str, Any] = field(default_factory=dict)
    out_dir: Path | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    path: Path | None = None
    repeat: int = 1  # measurements per grid point


@dataclass(frozen=True, slots=True)
class _LoadLevels:
    """The load axis of a sweep: closed-loop concurrencies or open-loop rates (never both)."""

    concurrencies: tuple[int, ...]
    rates: tuple[float, ...]
    arrival: str


@dataclass(frozen=True, slots=True)
class _FirstRun:
    """Target and payload of the grid's first run (the base configuration's fixed fields)."""

    url: str
    model: str
    kind: str
    batch_size: int
    format: str


def validate_url(url: str, where: str = "--url") -> str:
    """An http(s) URL with a host; the path, if any, is kept (for proxies in front of TF Serving)."""
    if not isinstance(url, str):
        raise InputError(f"{where} must be a URL string, not {url!r}")
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https"):
        raise InputError(f"{where} {url!r} needs an http:// or https:// scheme, e.g. http://127.0.0.1:8501")
    if not parsed.hostname:
        raise InputError(f"{where} {url!r} has no host")
    try:
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InputError(f"{where} {url!r} has an invalid port") from None
    return url.strip().rstrip("/")


def check_choice(value: Any, choices: Sequence[str], where: str) -> str:
    """`value` if it is one of `choices`, else InputError with a did-you-mean."""
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"{where} {value!r} is not one of {', '.join(choices)}{cf.suggest(str(value), choices)}")
    return value


ThresholdParser = Callable[[str], object]


def load_sweep_config(path: str | Path, *, check_threshold: ThresholdParser | None = None) -> SweepFile:
    """Read and validate a whole sweep file ([sweep], optional [payload] and [check]) before any load.
    `check_threshold` (reports.check.parse_threshold, passed in by the CLI: verdicts live in
    reports, which bench must not import) parses each [check] threshold now."""
    p = Path(path)
    return parse_sweep_doc(cf.load_toml(p), str(p), path=p, check_threshold=check_threshold)


def parse_sweep_doc(doc: Mapping[str, Any], source: str, *, from_flags: Sequence[str] = (),
                    path: Path | None = None, check_threshold: ThresholdParser | None = None) -> SweepFile:
    """Validate a sweep document (a parsed TOML file, possibly with command-line values merged
    into its [sweep] table). Keys listed in `from_flags` came from flags, and errors about them
    name the flag (`--batch-sizes`) instead of the file."""
    cf.check_keys(doc, TOP_KEYS, source)
    sw = cf.get_table(doc, "sweep", source, required=True)
    cf.check_keys(sw, SWEEP_KEYS, f"{source} [sweep]")
    payload = cf.get_table(doc, "payload", source)
    check = cf.get_table(doc, "check", source)
    cf.check_keys(check, CHECK_KEYS, f"{source} [check]")
    flags = set(from_flags)

    def where(key: str) -> str:
        if key in flags:
            return "--" + key.replace("_", "-")
        return f"{source} [sweep] {key}"

    for required in _REQUIRED:
        if required not in sw:
            raise InputError(f"missing --{required.replace('_', '-')} (or {required!r} in a --config file's [sweep] table)"
                             if not path else f"{source} [sweep]: missing required key {required!r}")
    protocol = check_choice(sw.get("protocol", "rest"), ("rest", "grpc"), where("protocol"))
    if protocol == "grpc":
        from tfsbench.bench.measure.engine_grpc import check_grpc_url

        url = cf.as_str(sw["url"], where("url")).strip()
        check_grpc_url(url)
    else:
        url = validate_url(cf.as_str(sw["url"], where("url")), where("url"))
    model = cf.as_str(sw["model"], where("model"))
    kinds = tuple(check_choice(k, KINDS, where("kinds")) for k in cf.as_list(sw["kinds"], where("kinds")))
    batch_sizes = tuple(cf.as_positive_int(b, where("batch_sizes"))
                        for b in cf.as_list(sw["batch_sizes"], where("batch_sizes")))
    formats = tuple(check_choice(f, FORMATS, where("formats"))
                    for f in cf.as_list(sw.get("formats", ["row"]), where("formats")))
    levels = _load_levels(sw, source, where)
    first = _FirstRun(url=url, model=model, kind=kinds[0], batch_size=batch_sizes[0], format=formats[0])
    base = _base_config(sw, source, where, first, levels)
    plan = SweepPlan(base=base, kinds=kinds, batch_sizes=batch_sizes, formats=formats,
                     concurrencies=levels.concurrencies, rates=levels.rates)
    headers = _headers(sw, source)
    out_dir = Path(cf.as_str(sw["out"], where("out"))) if "out" in sw else None
    thresholds = _thresholds(check, source, check_threshold)
    repeat = cf.as_positive_int(sw.get("repeat", 1), where("repeat"))
    return SweepFile(plan=plan, thresholds=thresholds, payload=payload, out_dir=out_dir,
                     headers=headers, path=path, repeat=repeat)


def _load_levels(sw: Mapping[str, Any], source: str, where: Callable[[str], str]) -> _LoadLevels:
    """`concurrency` (closed loop, default [1]) or `rates` (open loop, with `arrival`)."""
    if "concurrency" in sw and "rates" in sw:
        raise InputError(f"{source} [sweep]: give either 'concurrency' (closed loop) or 'rates' (open loop), not both")
    concurrencies: tuple[int, ...] = ()
    rates: tuple[float, ...] = ()
    if "rates" in sw:
        rates = tuple(cf.as_positive_float(r, where("rates")) for r in cf.as_list(sw["rates"], where("rates")))
    else:
        concurrencies = tuple(cf.as_positive_int(c, where("concurrency"))
                              for c in cf.as_list(sw.get("concurrency", [1]), where("concurrency")))
    arrival = check_choice(sw.get("arrival", "constant"), ARRIVALS, where("arrival"))
    if "arrival" in sw and not rates:
        raise InputError(f"{where('arrival')} only applies to open-loop sweeps ('rates')")
    return _LoadLevels(concurrencies=concurrencies, rates=rates, arrival=arrival)


@dataclass(frozen=True, slots=True)
class _Bounds:
    """How long each run warms up and measures: fixed, by count, or until stable (with a bound)."""

    duration_s: float | None
    requests_limit: int | None
    warmup_s: float
    until_stable: bool = False  # measure until stable, at most duration_s (`max_duration`)
    warmup_auto: bool = False  # warm up until throughput settles, at most warmup_s (`max_warmup`)


def _bounds(sw: Mapping[str, Any], where: Callable[[str], str]) -> _Bounds:
    """A run is bounded by time, by count, until stable (`max_duration`), or 10 s by default; its
    warm-up is fixed (`warmup`, default 2 s) or lasts until throughput settles (`max_warmup`)."""
    for fixed, auto in (("duration", "max_duration"), ("requests", "max_duration"), ("warmup", "max_warmup")):
        if fixed in sw and auto in sw:
            raise InputError(f"give {where(fixed)} or {where(auto)}, not both "
                             f"({auto.replace('_', ' ')} means: until stable, at most this long)")
    requests_limit = cf.as_positive_int(sw["requests"], where("requests")) if "requests" in sw else None
    duration_s = cf.parse_duration_s(sw["duration"], where("duration")) if "duration" in sw else None
    until_stable = "max_duration" in sw
    if until_stable:
        duration_s = cf.parse_duration_s(sw["max_duration"], where("max_duration"))
    if duration_s is None and requests_limit is None:
        duration_s = 10.0
    warmup_auto = "max_warmup" in sw
    warmup_s = (cf.parse_duration_s(sw["max_warmup"], where("max_warmup")) if warmup_auto
                else cf.parse_duration_s(sw.get("warmup", "2s"), where("warmup"), allow_zero=True))
    return _Bounds(duration_s, requests_limit, warmup_s, until_stable, warmup_auto)


def _version_or_label(sw: Mapping[str, Any], source: str, where: Callable[[str], str]) -> tuple[int | None, str | None]:
    version = cf.as_positive_int(sw["version"], where("version"), minimum=0) if "version" in sw else None
    label = cf.as_str(sw["label"], where("label")) if "label" in sw else None
    if version is not None and label is not None:
        raise InputError(f"{source} [sweep]: give either 'version' or 'label', not both")
    return version, label


def _base_config(sw: Mapping[str, Any], source: str, where: Callable[[str], str], first: _FirstRun,
                 levels: _LoadLevels) -> RunConfig:
    """The first run of the grid (`first` holds its target and payload); the plan varies kind,
    batch size, format and load from here."""
    bounds = _bounds(sw, where)
    version, label = _version_or_label(sw, source, where)
    open_loop = bool(levels.rates)
    base = RunConfig(
        url=first.url,
        model=first.model,
        kind=first.kind,
        batch_size=first.batch_size,
        format=first.format,
        mode="open" if open_loop else "closed",
        engine=check_choice(sw.get("engine", "fast"), ENGINES, where("engine")),
        version=version,
        label=label,
        signature=cf.as_str(sw["signature"], where("signature")) if "signature" in sw else None,
        concurrency=None if open_loop else levels.concurrencies[0],
        rate_rps=levels.rates[0] if open_loop else None,
        arrival=levels.arrival if open_loop else None,
        duration_s=bounds.duration_s,
        warmup_s=bounds.warmup_s,
        requests_limit=bounds.requests_limit,
        until_stable=bounds.until_stable,
        warmup_auto=bounds.warmup_auto,
        processes=cf.as_positive_int(sw.get("processes", 1), where("processes")),
        seed=cf.as_positive_int(sw.get("seed", 0), where("seed"), minimum=0),
        timeout_s=cf.parse_duration_s(sw.get("timeout", 30), where("timeout")),
        max_inflight=cf.as_positive_int(sw["max_inflight"], where("max_inflight")) if "max_inflight" in sw else None,
        pool_size=cf.as_positive_int(sw.get("pool_size", 64), where("pool_size")),
    )
    if sw.get("protocol", "rest") == "grpc" or "numeric_form" in sw:
        from tfsbench.bench.measure.engine_grpc import grpc_config

        form = check_choice(sw.get("numeric_form", "content"), ("content", "val"), where("numeric_form"))
        base = grpc_config(base, sw.get("protocol", "rest"), form)
    return base


def _headers(sw: Mapping[str, Any], source: str) -> dict[str, str]:
    headers = cf.get_table(sw, "headers", f"{source} [sweep]")
    for k, v in headers.items():
        if not isinstance(v, str):
            raise InputError(f"{source} [sweep] headers.{k} must be a string, not {v!r}")
    return {str(k): v for k, v in headers.items()}


def _thresholds(check: Mapping[str, Any], source: str, check_threshold: ThresholdParser | None) -> tuple[str, ...]:
    """The [check] table's thresholds, each parsed now so a typo fails before the sweep runs."""
    if "thresholds" not in check:
        return ()
    raw = check["thresholds"]
    if not isinstance(raw, list):
        raise InputError(f"{source} [check] thresholds must be a list of strings like \"p99<50ms\"")
    thresholds = tuple(cf.as_str(t, f"{source} [check] thresholds") for t in raw)
    for t in thresholds if check_threshold is not None else ():
        try:
            check_threshold(t)
        except InputError as exc:
            raise InputError(f"{source} [check] thresholds: {exc}") from None
    return thresholds
