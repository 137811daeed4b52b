"""What a Locust user process prepares before it sends anything: the preflight and the body pool.

The preflight asks the target for the model's status, so that an unreachable host or an unknown
model stops the run with one clear line instead of a screen of failures. The pool holds bodies
encoded once, before the run: tasks only pick bytes from it (no encoding in the request loop).
No locust import here; under Locust, urllib is cooperative because gevent patched the sockets.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from tfsbench.locustfiles.config import UserConfig, request_name
from tfsbench.payloads.errors import InputError

PREFLIGHT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Bodies:
    """A pool reduced to what the request loop needs, with per-body sizes for the payload metrics."""

    kind: str
    name: str
    path: str
    batch_size: int
    bodies: tuple[bytes, ...]
    wire_bytes: tuple[int, ...]
    raw_bytes: tuple[int, ...]
    headers: Mapping[str, str]

    def __len__(self) -> int:
        return len(self.bodies)


def _error_text(body: bytes) -> str:
    try:
        doc = json.loads(body)
        if isinstance(doc, dict) and isinstance(doc.get("error"), str):
            return doc["error"][:200]
    except ValueError:
        pass
    return body[:200].decode("utf-8", "replace").strip()


def _get(url: str, timeout_s: float, headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Accept": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - http(s) only, checked
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read() or b""


def preflight(host: str, cfg: UserConfig, timeout_s: float = PREFLIGHT_TIMEOUT_S) -> None:
    """Raise InputError unless `host` answers and knows the model (and version/label)."""
    url = host.rstrip("/") + cfg.model_path()
    try:
        status, body = _get(url, timeout_s, dict(cfg.headers))
    except urllib.error.URLError as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"--host: cannot reach {host} ({reason})") from None
    except (TimeoutError, OSError) as exc:
        raise InputError(f"--host: cannot reach {host} ({type(exc).__name__}: {exc})") from None
    if status == 200:
        return
    what = f"model {cfg.model!r}"
    if cfg.version is not None:
        what += f" version {cfg.version}"
    elif cfg.label:
        what += f" label {cfg.label!r}"
    if status in (400, 404):
        raise InputError(f"--model: {host} does not serve {what} (HTTP {status}: {_error_text(body)})")
    raise InputError(f"--host: {host} answered HTTP {status} for {what} ({_error_text(body)})")


def build_bodies(host: str, cfg: UserConfig, kind: str) -> Bodies:
    """Encode `cfg.pool_size` request bodies of `kind` (auto reads the model's signature first)."""
    from tfsbench.payloads.pool import build_pool
    from tfsbench.payloads.spec import PayloadSpec

    metadata = None
    if kind == "auto":
        from tfsbench.payloads.metadata_fetch import fetch_metadata

        metadata = fetch_metadata(host, cfg.model, version=cfg.version, label=cfg.label, timeout_s=10,
                                  headers=dict(cfg.headers))
    spec = PayloadSpec(
        kind=kind,
        batch_size=cfg.batch_size,
        format=cfg.format,
        seed=cfg.seed,
        signature_name=cfg.signature,
        text_words=cfg.text_words,
        image_size=cfg.image_size,
        image_format=cfg.image_format,
    )
    pool = build_pool(spec, size=cfg.pool_size, metadata=metadata)
    bodies = tuple(bytes(b) for b in pool.bodies)
    wire = tuple(int(n) for n in pool.wire_bytes)
    raw = tuple(int(n) for n in pool.raw_bytes)
    headers = {**dict(pool.headers), **dict(cfg.headers)}
    return Bodies(
        kind=kind,
        name=pool.name or request_name(kind, cfg.batch_size, cfg.format),
        path=cfg.predict_path(),
        batch_size=cfg.batch_size,
        bodies=bodies,
        wire_bytes=wire,
        raw_bytes=raw,
        headers=headers,
    )
