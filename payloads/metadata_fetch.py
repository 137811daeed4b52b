"""Fetch a model's signature from a running TF Serving (GET /v1/models/NAME[/versions/N]/metadata).

stdlib urllib on purpose: this runs once before a benchmark, not under load.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from tfsbench.payloads.credentials import refuse_userinfo
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.signature import ModelMetadata, parse_metadata

MAX_METADATA_BYTES = 64 * 1024 * 1024


def metadata_url(url: str, model: str, version: int | None = None, label: str | None = None) -> str:
    """The metadata endpoint for a model on a TF Serving base URL (e.g. http://127.0.0.1:8501)."""
    if version is not None and label is not None:
        raise InputError("give either a model version or a label, not both")
    refuse_userinfo(url)
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"--url must look like http://HOST:PORT, got {url!r}")
    if not model:
        raise InputError("--model must name a model")
    path = f"/v1/models/{urllib.parse.quote(model, safe='')}"
    if version is not None:
        path += f"/versions/{int(version)}"
    elif label is not None:
        path += f"/labels/{urllib.parse.quote(label, safe='')}"
    return url.rstrip("/") + path + "/metadata"


def _error_text(body: bytes) -> str:
    try:
        doc = json.loads(body)
        if isinstance(doc, dict) and "error" in doc:
            return str(doc["error"])
    except ValueError:
        pass
    return body.decode("utf-8", errors="replace").strip().replace("\n", " ")[:200]


def fetch_metadata(
    url: str,
    model: str,
    version: int | None = None,
    label: str | None = None,
    timeout_s: float = 10,
    headers: Mapping[str, str] | None = None,
) -> ModelMetadata:
    """The parsed metadata, or InputError in one line (unreachable host, HTTP error with TF's message).
    `headers` (e.g. Authorization from --header) are sent with the request."""
    target = metadata_url(url, model, version, label)
    request = urllib.request.Request(target, headers={"Accept": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read(MAX_METADATA_BYTES + 1)
    except urllib.error.HTTPError as exc:
        detail = _error_text(exc.read() or b"")
        raise InputError(f"GET {target} returned HTTP {exc.code}: {detail or exc.reason}") from None
    except urllib.error.URLError as exc:
        raise InputError(f"cannot reach {target}: {exc.reason}") from None
    except TimeoutError:
        raise InputError(f"GET {target} timed out after {timeout_s:g} s") from None
    except (ConnectionError, OSError) as exc:
        raise InputError(f"cannot reach {target}: {exc}") from None
    if len(body) > MAX_METADATA_BYTES:
        raise InputError(f"GET {target}: metadata larger than {MAX_METADATA_BYTES} bytes")
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise InputError(f"GET {target}: response is not JSON ({exc})") from None
    return parse_metadata(doc)


def load_metadata_file(path: str) -> ModelMetadata:
    """Metadata saved from TF Serving (`curl .../metadata > FILE`)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"--metadata {path}: cannot read ({exc.strerror or exc})") from None
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"--metadata {path}: not JSON ({exc})") from None
    try:
        return parse_metadata(doc)
    except InputError as exc:
        raise InputError(f"--metadata {path}: {exc}") from None
