"""Before any load: is the target there, is the model loaded, does it accept our payload?

An unreachable URL, an unknown model or a payload the model rejects stops a run here with one line
that includes TF Serving's own error message, instead of a benchmark full of errors. What we learn
(model status, signature metadata, one request's latency) goes into the result's environment.

Plain urllib on purpose: this sends three requests, not load.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from tfsbench.bench.measure.engine import classify, model_url, predict_url, ssl_context_for, trim
from tfsbench.payloads.errors import InputError

MAX_BODY_BYTES = 64 * 1024 * 1024


def _error_message(body: bytes) -> str:
    """TF Serving's {"error": "..."} text, or the body trimmed."""
    try:
        doc = json.loads(body)
        if isinstance(doc, dict) and "error" in doc:
            return trim(str(doc["error"]))
    except ValueError:
        pass
    return trim(body) or "(empty body)"


def _request(url: str, headers: Mapping[str, str], timeout_s: float, body: bytes | None = None,
             ) -> tuple[int, bytes, float]:
    """(status, body, seconds); raises InputError only when the server cannot be reached."""
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    for k, v in headers.items():
        req.add_header(k, v)
    ctx: ssl.SSLContext | None = ssl_context_for(url)
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout_s, context=ctx) as resp:
            data = resp.read(MAX_BODY_BYTES)
            return resp.status, data, time.perf_counter() - t0
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(MAX_BODY_BYTES) or b"", time.perf_counter() - t0
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise TimedOut(f"{url} did not answer within {timeout_s:g} s") from None
        raise InputError(f"cannot reach {url}: {reason}") from None
    except TimeoutError:
        raise TimedOut(f"{url} did not answer within {timeout_s:g} s") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise InputError(f"cannot reach {url}: {type(exc).__name__}: {exc}") from None


class TimedOut(InputError):
    """No answer within the timeout: not retried (another try would cost another timeout)."""


PROBE_ATTEMPTS = 5  # a target under faults or overload fails a request now and then: retry those


def _json(status: int, body: bytes, url: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise InputError(f"GET {url} returned HTTP {status} but not JSON: {trim(body, 120)}"
                         " (is this TF Serving's REST port?)") from None


def check_target(config: Any, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Model status and metadata, or InputError naming TF Serving's complaint."""
    headers = dict(headers or {})
    timeout_s = min(float(config.timeout_s), 30.0)
    base = model_url(config.url, config.model, config.version, config.label)
    status, body, _ = _request(base, headers, timeout_s)
    if status != 200:
        raise InputError(f"model '{config.model}' is not available at {config.url} "
                         f"(GET {base}: HTTP {status}: {_error_message(body)})")
    status_doc = _json(status, body, base)
    versions = status_doc.get("model_version_status", []) if isinstance(status_doc, dict) else []
    available = [v for v in versions if isinstance(v, dict) and v.get("state") == "AVAILABLE"]
    if versions and not available:
        states = ", ".join(f"version {v.get('version')} {v.get('state')}" for v in versions if isinstance(v, dict))
        raise InputError(f"model '{config.model}' has no AVAILABLE version at {config.url} ({states})")
    meta_url = base + "/metadata"
    mstatus, mbody, _ = _request(meta_url, headers, timeout_s)
    metadata = _json(mstatus, mbody, meta_url) if mstatus == 200 else None
    info: dict[str, Any] = {"url": config.url, "model": config.model, "model_status": status_doc}
    if metadata is not None:
        info["metadata"] = metadata
    else:
        info["metadata_error"] = f"HTTP {mstatus}: {_error_message(mbody)}"
    return info


def probe(config: Any, body: bytes, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Send one predict; InputError (with TF Serving's message) unless it is a valid answer. Transient
    failures (5xx, 429, broken connections, unusable bodies) are retried up to PROBE_ATTEMPTS times, so
    a target that fails now and then can still be measured; a 4xx or a timeout fails at once."""
    url = predict_url(config)
    all_headers = {"Content-Type": "application/json", **dict(headers or {})}
    what = f"a {config.kind} b={config.batch_size} {config.format} request"
    for attempt in range(1, PROBE_ATTEMPTS + 1):
        last = attempt == PROBE_ATTEMPTS
        try:
            status, data, seconds = _request(url, all_headers, float(config.timeout_s), body)
        except TimedOut:
            raise
        except InputError:  # reset or refused mid-way: transient on a target that answered the GETs
            if last:
                raise
            continue
        outcome = classify(status, data, config.batch_size, config.extra.get("validate", "full"))
        if status != 200:
            if (status >= 500 or status == 429) and not last:
                continue  # overloaded or failing now and then: the benchmark will count these
            raise InputError(f"the model rejected {what}: POST {url}: HTTP {status}: {_error_message(data)}")
        if outcome.error is not None:
            if not last:
                continue
            raise InputError(f"{what} got an unusable answer from POST {url}: {outcome.error} ({outcome.detail})")
        return {"probe_latency_ms": round(seconds * 1000.0, 3), "probe_response_bytes": len(data),
                "probe_attempts": attempt}
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def preflight_and_pool(config: Any, headers: Mapping[str, str] | None = None) -> tuple[dict[str, Any], Any]:
    """Check the target, build the body pool (from the fetched signature for --kind auto), send one
    body. Returns (target info for the result's environment, the pool to run with)."""
    if getattr(config, "protocol", "rest") == "grpc":
        from tfsbench.bench.measure import preflight_grpc

        return preflight_grpc.preflight_and_pool(config, headers)
    from tfsbench.bench.measure.runner import build_pool_for, check_config

    check_config(config)
    info = check_target(config, headers)
    metadata = None
    if config.kind == "auto":
        if "metadata" not in info:
            raise InputError(f"--kind auto needs the model's metadata, but {info.get('metadata_error')}")
        from tfsbench.payloads.signature import parse_metadata

        metadata = parse_metadata(info["metadata"])
    pool = build_pool_for(config, metadata)
    pool_headers = dict(getattr(pool, "headers", {}) or {})
    pool_headers.update(headers or {})
    info.update(probe(config, pool.bodies[0], pool_headers))
    return info, pool


def preflight(config: Any, headers: Mapping[str, str] | None = None) -> Mapping[str, Any]:
    """Target info (model status, metadata, probe latency) or InputError in one line."""
    return preflight_and_pool(config, headers)[0]


def fetch_metadata_for(config: Any, headers: Mapping[str, str] | None = None) -> Any:
    """The model's parsed signature metadata (tfsbench.payloads.signature.ModelMetadata)."""
    if getattr(config, "protocol", "rest") == "grpc":
        from tfsbench.bench.measure import preflight_grpc

        return preflight_grpc.fetch_metadata(config, headers)
    from tfsbench.payloads.metadata_fetch import fetch_metadata

    return fetch_metadata(config.url, config.model, config.version, config.label,
                          timeout_s=min(float(config.timeout_s), 30.0))
