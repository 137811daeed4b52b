"""Turn one response (or one client exception) into success or a classified failure message.

The rules that decide "ok" are the engines' (`tfsbench.bench.measure.engine.classify`), so a Locust run and a
`tfsbench run` classify the same answer the same way. Every failure message starts with its error
class and a colon, e.g. `http_503: ...`, `timeout: ...`, `reset: ...`, `batch_mismatch: ...`;
Locust groups failures by message, and `tfsbench.locustfiles.export` maps them back to the classes of the
run-result schema. Only the gevent client's own exceptions are mapped here.
"""

from __future__ import annotations

import re

from tfsbench.bench.measure.engine import (
    BATCH_MISMATCH,
    INVALID_JSON,
    INVALID_RESPONSE,
    REFUSED,
    RESET,
    TIMEOUT,
    classify,
)
from tfsbench.bench.measure.engine import classify_exception as engine_classify_exception

ERROR_CLASSES: tuple[str, ...] = (TIMEOUT, REFUSED, RESET, INVALID_JSON, INVALID_RESPONSE, BATCH_MISMATCH)
_CLASS_RE = re.compile(
    r"^(http_\d{3}|timeout|refused|reset|invalid_json|invalid_response|batch_mismatch|config)(?=:|$)"
)
_DETAIL_CHARS = 160


def _message(error: str, detail: str | None) -> str:
    if not detail:
        return error
    detail = detail if len(detail) <= _DETAIL_CHARS else detail[: _DETAIL_CHARS - 3] + "..."
    return f"{error}: {detail}"


def check_response(status: int, body: bytes, expected_batch: int) -> str | None:
    """None if this is a good predict answer for `expected_batch` instances, else a failure message."""
    outcome = classify(status, bytes(body), expected_batch)
    if outcome.error is None:
        return None
    detail = outcome.detail
    if outcome.error in (INVALID_JSON, INVALID_RESPONSE, BATCH_MISMATCH):
        detail = f"status 200 but {detail or 'the body is wrong'}"
    return _message(outcome.error, detail)


def classify_exception(exc: BaseException, timeout_s: float | None = None) -> str:
    """A failure message for a client-side exception (no response, or a broken one)."""
    name = type(exc).__name__
    if name == "Timeout" or isinstance(exc, TimeoutError):  # gevent.Timeout is not a TimeoutError
        within = f" within {timeout_s:g} s" if timeout_s else ""
        return f"{TIMEOUT}: no complete response{within}"
    if name == "HTTPConnectionClosed":
        return f"{RESET}: connection closed before a complete response"
    if name == "HTTPParseError":
        text = str(exc).lower()
        if "closed" in text or "eof" in text:
            return f"{RESET}: connection closed before a complete response ({exc})"
        return _message(INVALID_RESPONSE, f"unparsable HTTP response ({exc})")
    outcome = engine_classify_exception(exc)
    return _message(outcome.error or RESET, outcome.detail)


def error_class(message: str) -> str:
    """The error class at the start of a failure message (after any exception-repr wrapper)."""
    m = _CLASS_RE.match(unwrap(message))
    return m[1] if m else "other"


def unwrap(message: str) -> str:
    """`CatchResponseError('http_503: x')` -> `http_503: x` (Locust may store failures as reprs)."""
    text = message.strip()
    m = re.fullmatch(r"\w+\((['\"])(.*)\1\)", text, flags=re.S)
    return m[2] if m else text
