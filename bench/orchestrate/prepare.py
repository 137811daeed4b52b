"""Before and around the runs of a sweep or search: validate every configuration, preflight each
payload configuration once, build each body pool once, and the runner's keyword arguments.

Shared by sweeps and searches, so both refuse bad input before any load in the same way.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tfsbench.bench.orchestrate.grid import plain
from tfsbench.bench.results import RunConfig


def preflight_key(config: RunConfig) -> tuple[Any, ...]:
    """What makes two runs need separate preflights (and pools): everything but the load level."""
    return (config.url, config.version, config.label, config.signature, *config.config_key(),
            json.dumps(plain(dict(config.extra)), sort_keys=True, default=str))


def preflight_all(configs: Sequence[RunConfig], headers: Mapping[str, str] | None = None,
                  preflight_fn: Callable[..., Any] | None = None) -> dict[tuple[Any, ...], Any]:
    """One preflight per payload configuration, all before any load; the first failure raises."""
    if preflight_fn is None:
        from tfsbench.bench.measure.preflight import preflight as preflight_fn
    done: dict[tuple[Any, ...], Any] = {}
    for cfg in configs:
        key = preflight_key(cfg)
        if key not in done:
            done[key] = preflight_fn(cfg, headers=headers)
    return done


def check_configs(configs: Sequence[RunConfig]) -> None:
    """Every run configuration and payload spec valid, before anything is sent."""
    from tfsbench.bench.measure.runner import check_config, payload_spec_for

    seen: set[tuple[Any, ...]] = set()
    for cfg in configs:
        check_config(cfg)
        key = preflight_key(cfg)
        if cfg.kind != "constant" and key not in seen:
            seen.add(key)
            payload_spec_for(cfg)


def run_kwargs(headers: Mapping[str, str] | None, progress: Callable[[Any], None], stop: threading.Event,
               preflight_info: Any) -> dict[str, Any]:
    """Keyword arguments for `run_benchmark`; the preflight answer goes into environment.target."""
    kwargs: dict[str, Any] = {"headers": headers, "progress": progress, "stop": stop}
    if isinstance(preflight_info, Mapping):
        kwargs["environment"] = {"target": dict(preflight_info)}
    return kwargs


def cached_pool_factory() -> Callable[[RunConfig], Any]:
    """Build each payload configuration's body pool once: the grid order keeps the load levels of
    one payload configuration together, so a one-entry cache is enough (and bounds memory)."""
    from tfsbench.bench.measure.runner import build_pool_for

    cache: dict[str, Any] = {}

    def factory(config: RunConfig) -> Any:
        key = json.dumps([preflight_key(config), config.seed, config.pool_size], default=str)
        if key not in cache:
            cache.clear()
            cache[key] = build_pool_for(config)
        return cache[key]

    return factory
