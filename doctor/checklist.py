"""`tfsbench doctor`: a checklist that finds, before a load test, why a client (often a browser) fails.

Each check gives pass/warn/fail, the reason, and the fix. The CORS checks do what a browser does
(the Fetch standard's CORS-preflight fetch and CORS check): an OPTIONS preflight with `Origin`,
`Access-Control-Request-Method: POST` and `Access-Control-Request-Headers: content-type` (a JSON
POST is not a "simple" request), then the POST itself, whose answer must carry an
`Access-Control-Allow-Origin` that is `*` or the page's origin. TF Serving sends these headers only
when started with `--rest_api_enable_cors_support` (2.5+), and always with origin `*`.

Body checks use the one TF Serving JSON codec (`tfsbench.payloads.codec`), then name common mistakes in plain
words: base64 without its `{"b64": ...}` wrapper, `instances` and `inputs` together, integers sent to
a float input (TF Serving >= 2.5 rounds them silently), rows of different lengths.

Network calls use urllib: a handful of requests, no load.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tfsbench.payloads.credentials import redact_url
from tfsbench.payloads.errors import InputError

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
CORS_FIX = (
    "start TF Serving with --rest_api_enable_cors_support or put a proxy in front that answers OPTIONS "
    "and adds Access-Control-Allow-Origin and -Headers (the flag exists since TF Serving 2.5)"
)
_ORIGIN_RE = re.compile(r"^https?://[^/\s?#]+$")
_B64_RE = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_FLOAT_DTYPES = ("DT_FLOAT", "DT_DOUBLE", "DT_HALF", "DT_BFLOAT16")
_FLOAT32_EXACT = 2**24


@dataclass(frozen=True, slots=True)
class Finding:
    name: str
    status: str  # pass | warn | fail | skip
    reason: str
    fix: str = ""
    details: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DoctorReport:
    url: str
    model: str
    findings: tuple[Finding, ...]
    browser: Mapping[str, Any] | None = None
    sent_body: bytes | None = None  # the body checked and POSTed (yours or the generated one)

    @property
    def failed(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.status == FAIL)

    @property
    def exit_status(self) -> int:
        return 1 if self.failed else 0


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    headers: Any  # email.message.Message: .get_all(name)
    body: bytes
    elapsed_ms: float

    def header_values(self, name: str) -> list[str]:
        return list(self.headers.get_all(name) or [])


@dataclass(frozen=True, slots=True)
class Target:
    """Where the model lives: base URL, model name, optional version or label."""

    url: str
    model: str
    version: int | None = None
    label: str | None = None
    signature: str | None = None
    timeout_s: float = 10.0
    extra: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # --header: sent with every request but OPTIONS

    @property
    def model_path(self) -> str:
        path = f"/v1/models/{urllib.parse.quote(self.model, safe='')}"
        if self.version is not None:
            path += f"/versions/{self.version}"
        elif self.label is not None:
            path += f"/labels/{urllib.parse.quote(self.label, safe='')}"
        return path

    @property
    def status_url(self) -> str:
        return self.url.rstrip("/") + self.model_path

    @property
    def metadata_url(self) -> str:
        return self.status_url + "/metadata"

    @property
    def predict_url(self) -> str:
        return self.status_url + ":predict"


def validate_origin(origin: str) -> str:
    """A browser origin: scheme://host[:port], nothing after it."""
    text = origin.strip().rstrip("/")
    if not _ORIGIN_RE.match(text):
        raise InputError(
            f"--origin {origin!r} is not a web origin like https://app.example or http://localhost:3000"
        )
    return text


def request(
    url: str, method: str = "GET", body: bytes | None = None, headers: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
) -> HttpAnswer:
    """One HTTP exchange; HTTP errors are answers, not exceptions. Unreachable -> InputError."""
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - the user's target
            data = resp.read()
            return HttpAnswer(resp.status, resp.headers, data, (time.perf_counter() - start) * 1000)
    except urllib.error.HTTPError as exc:
        data = exc.read() if exc.fp is not None else b""
        return HttpAnswer(exc.code, exc.headers, data, (time.perf_counter() - start) * 1000)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"cannot reach {redact_url(url)} ({reason})") from None


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _error_text(answer: HttpAnswer) -> str:
    doc = _json_or_none(answer.body)
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return doc["error"]
    text = answer.body[:200].decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else "(empty body)"


# ---- 1. status and metadata -------------------------------------------------------------------


def check_status(target: Target) -> Finding:
    answer = request(target.status_url, headers=target.headers, timeout_s=target.timeout_s)
    where = f"GET {target.model_path}"
    if answer.status == 404:
        return Finding(
            "model status", FAIL, f"{where}: HTTP 404, {_error_text(answer)}",
            "check --model (and --version/--label): TF Serving serves the names from --model_name or "
            "--model_config_file",
        )
    if answer.status != 200:
        return Finding(
            "model status", FAIL, f"{where}: HTTP {answer.status}, {_error_text(answer)}",
            "is --url the REST port (8501 in the Docker image), not gRPC (8500)?",
        )
    doc = _json_or_none(answer.body)
    versions = doc.get("model_version_status") if isinstance(doc, dict) else None
    if not isinstance(versions, list) or not versions:
        return Finding(
            "model status", FAIL, f"{where}: not a TF Serving status answer",
            "point --url at TF Serving's REST API (http://HOST:8501)",
        )
    states = [f"version {v.get('version', '?')} {v.get('state', '?')}" for v in versions if isinstance(v, dict)]
    available = [v for v in versions if isinstance(v, dict) and v.get("state") == "AVAILABLE"]
    if not available:
        errors = [
            v.get("status", {}).get("error_message", "") for v in versions if isinstance(v, dict)
        ]
        why = "; ".join(e for e in errors if e)
        return Finding(
            "model status", FAIL, f"{where}: no AVAILABLE version ({', '.join(states)}){': ' + why if why else ''}",
            "wait for the model to load, or read TF Serving's log for the load error",
        )
    return Finding("model status", PASS, f"{where}: {', '.join(states)} ({answer.elapsed_ms:.1f} ms)")


def check_metadata(target: Target) -> tuple[Finding, Any]:
    """The metadata finding and the parsed ModelMetadata (None when unusable)."""
    from tfsbench.payloads.signature import parse_metadata

    answer = request(target.metadata_url, headers=target.headers, timeout_s=target.timeout_s)
    where = f"GET {target.model_path}/metadata"
    if answer.status != 200:
        return Finding(
            "metadata", FAIL, f"{where}: HTTP {answer.status}, {_error_text(answer)}",
            "the metadata endpoint needs TF Serving 1.13+; without it, pass --body with a request you know works",
        ), None
    doc = _json_or_none(answer.body)
    try:
        meta = parse_metadata(doc)
    except InputError as exc:
        return Finding("metadata", FAIL, f"{where}: {exc}", "is --url a TF Serving REST endpoint?"), None
    lines = []
    for name, sig in sorted(meta.signatures.items()):
        ins = ", ".join(f"{t.name} {t.dtype} {_shape(t.shape)}" for t in sig.inputs)
        outs = ", ".join(f"{t.name} {t.dtype} {_shape(t.shape)}" for t in sig.outputs)
        lines.append(f"signature {name}: inputs {ins or '(none)'} -> outputs {outs or '(none)'}")
    if not meta.signatures:
        return Finding("metadata", FAIL, f"{where}: the model lists no callable signature",
                       "export the SavedModel with a serving signature"), None
    try:
        meta.signature(target.signature)
    except InputError as exc:
        return Finding("metadata", FAIL, str(exc), "pass --signature with one of the listed names",
                       tuple(lines)), meta
    return Finding("metadata", PASS, f"{len(meta.signatures)} signature(s), version {meta.version}",
                   details=tuple(lines)), meta


def _shape(shape: Sequence[int] | None) -> str:
    return "[?]" if shape is None else "[" + ",".join(str(d) for d in shape) + "]"


def check_server_metrics(target: Target) -> Finding:
    """Informational: does the target expose TF Serving's Prometheus page (the run's server view)?"""
    from tfsbench.bench.measure import server_metrics

    url = server_metrics.metrics_url(target.url)
    scrape = server_metrics.scrape(url, timeout_s=target.timeout_s)
    if scrape.samples is None:
        return Finding(
            "server metrics", WARN,
            f"{scrape.error}; runs will record no server-side latency",
            "optional: " + server_metrics.ENABLE_HINT,
        )
    names = {s.name for s in scrape.samples}
    if f"{server_metrics.REQUEST_LATENCY}_count" not in names:
        return Finding(
            "server metrics", PASS,
            f"GET {url}: Prometheus page, no {server_metrics.REQUEST_LATENCY} yet (it appears after the first predict)",
        )
    return Finding("server metrics", PASS, f"GET {url}: {server_metrics.REQUEST_LATENCY} present; runs record the server's view")


# ---- 2. CORS, as a browser does it ------------------------------------------------------------


def cors_check(answer: HttpAnswer, origin: str) -> str | None:
    """The Fetch standard's CORS check on a response (no credentials). None when it passes."""
    values = answer.header_values("Access-Control-Allow-Origin")
    if not values:
        return "no Access-Control-Allow-Origin header"
    if len(values) > 1 or "," in values[0]:
        return f"Access-Control-Allow-Origin has several values ({', '.join(values)}); browsers allow one"
    value = values[0].strip()
    if value == "*" or value == origin:
        return None
    return f"Access-Control-Allow-Origin is {value!r}, not {origin!r} or '*'"


def _header_list(answer: HttpAnswer, name: str) -> list[str]:
    out = []
    for value in answer.header_values(name):
        out.extend(v.strip().lower() for v in value.split(",") if v.strip())
    return out


def _request_header_names(target: Target) -> list[str]:
    """What a browser lists in Access-Control-Request-Headers: content-type plus the --header names."""
    names = ["content-type"]
    names += [n.lower() for n in target.headers if n.lower() not in ("content-type", "origin")]
    return names


def check_cors_preflight(target: Target, origin: str) -> Finding:
    answer = request(
        target.predict_url,
        method="OPTIONS",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": ",".join(_request_header_names(target)),
        },
        timeout_s=target.timeout_s,
    )
    where = f"OPTIONS {target.model_path}:predict from {origin}"
    if not 200 <= answer.status < 300:
        return Finding(
            "CORS preflight", FAIL,
            f"{where}: HTTP {answer.status} ({_error_text(answer)}); a browser needs a 2xx answer", CORS_FIX,
        )
    problem = cors_check(answer, origin)
    if problem is not None:
        return Finding("CORS preflight", FAIL, f"{where}: {problem}", CORS_FIX)
    # Access-Control-Allow-Methods is not checked: POST is CORS-safelisted, browsers accept it anyway.
    allowed = _header_list(answer, "Access-Control-Allow-Headers")
    missing = [h for h in _request_header_names(target) if h not in allowed and "*" not in allowed]
    if missing:
        return Finding(
            "CORS preflight", FAIL,
            f"{where}: Access-Control-Allow-Headers ({', '.join(allowed) or 'absent'}) does not allow "
            f"{', '.join(missing)}, which the POST sends",
            CORS_FIX,
        )
    return Finding(
        "CORS preflight", PASS,
        f"{where}: HTTP {answer.status}, allow-origin {answer.header_values('Access-Control-Allow-Origin')[0]}, "
        f"allow-headers {', '.join(allowed)}",
    )


def check_cors_response(answer: HttpAnswer, origin: str, preflight_ok: bool) -> Finding:
    problem = cors_check(answer, origin)
    if problem is not None:
        return Finding(
            "CORS response", FAIL,
            f"POST answer: {problem}; the browser hides the response from the page", CORS_FIX,
        )
    note = "" if preflight_ok else " (but the browser never sends it: the preflight fails)"
    status = PASS if preflight_ok else FAIL
    fix = "" if preflight_ok else CORS_FIX
    allow = answer.header_values("Access-Control-Allow-Origin")[0]
    return Finding("CORS response", status, f"POST answer carries Access-Control-Allow-Origin {allow}{note}", fix)


# ---- 3. the request body ----------------------------------------------------------------------


def parse_body(raw: bytes, source: str) -> Any:
    """The user's body as JSON, or InputError (a body that is not JSON is bad input)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{source}: not UTF-8 text, so not a JSON request body") from None
    from tfsbench.payloads.codec import CodecError, parse_json

    try:
        return parse_json(text)
    except CodecError as exc:
        raise InputError(f"{source}: not JSON ({exc})") from None


def generate_body(meta: Any, signature: str | None, batch_size: int = 1) -> bytes:
    """A small valid body built from the signature by the payloads generators (`--kind auto`):
    JPEGs for image-like string inputs, text for other strings, numbers of the input's dtype."""
    import numpy as np
    from tfsbench.payloads.codec import encode_request
    from tfsbench.payloads.generators import make_generator
    from tfsbench.payloads.spec import PayloadSpec

    spec = PayloadSpec(kind="auto", batch_size=batch_size, signature_name=signature, image_size=(32, 32))
    gen = make_generator(spec, meta)
    tensors = gen.batch(batch_size, np.random.default_rng(0))
    return encode_request(tensors, "row", signature_name=signature, binary_inputs=gen.binary_inputs)


def check_body(body: bytes, meta: Any, signature: str | None, source: str) -> list[Finding]:
    """Does the body fit the signature? Codec verdict plus plain-language diagnoses."""
    from tfsbench.payloads.codec import CodecError, decode_request

    doc = parse_body(body, source)
    sig_name = signature
    if isinstance(doc, dict) and isinstance(doc.get("signature_name"), str):
        sig_name = doc["signature_name"] or signature
    findings: list[Finding] = []
    hints = list(_diagnose(doc, meta, sig_name))
    try:
        decoded = decode_request(body, meta.signatures, default_signature=sig_name or "serving_default")
    except CodecError as exc:
        plain = [h for h in hints if h.status == FAIL]
        if plain:
            first = plain[0]
            findings.append(Finding("request body", FAIL, f"{source}: {first.reason} (TF Serving: {exc})",
                                    first.fix))
            findings.extend(plain[1:])
        else:
            findings.append(Finding("request body", FAIL, f"{source}: TF Serving would answer 400: {exc}",
                                    "make the body match the signature listed above"))
        findings.extend(h for h in hints if h.status == WARN)
        return findings
    from tfsbench.payloads.signature import dtype_for_numpy

    shapes = ", ".join(f"{k} {list(v.shape)} {dtype_for_numpy(v.dtype)}" for k, v in decoded.inputs.items())
    fits = f"{decoded.format} format, batch {decoded.batch_size}, signature {decoded.signature.name}: {shapes}"
    plain = [h for h in hints if h.status == FAIL]
    if plain:  # valid JSON for TF Serving, but not what the model needs (e.g. base64 text as bytes)
        first = plain[0]
        findings.append(Finding("request body", FAIL, f"{source}: {first.reason} (parses as {fits})", first.fix))
        findings.extend(plain[1:])
    else:
        findings.append(Finding("request body", PASS, f"{source}: {fits}"))
    findings.extend(h for h in hints if h.status == WARN)
    return findings


def _diagnose(doc: Any, meta: Any, signature: str | None) -> Iterator[Finding]:
    """Common mistakes, named plainly. FAIL hints explain a codec error; WARN hints stand alone."""
    if not isinstance(doc, dict):
        yield Finding("request body", FAIL, "the body must be a JSON object like {\"instances\": [...]}",
                      "wrap the data: {\"instances\": [...]} (row) or {\"inputs\": ...} (columnar)")
        return
    if "instances" in doc and "inputs" in doc:
        yield Finding(
            "request body", FAIL, "both 'instances' and 'inputs' are present; TF Serving takes exactly one",
            "send rows as {\"instances\": [...]} OR columns as {\"inputs\": {...}}, not both",
        )
        return
    if "instances" not in doc and "inputs" not in doc:
        yield Finding("request body", FAIL, "neither 'instances' nor 'inputs' is present",
                      "put the data under \"instances\" (a list of rows) or \"inputs\" (named columns)")
        return
    try:
        sig = meta.signature(signature)
    except InputError:
        return
    for name, value, dtype in _input_values(doc, sig):
        if dtype == "DT_STRING":
            bare = _bare_b64_example(value)
            if bare is not None:
                yield Finding(
                    "base64 wrapper", FAIL,
                    f"input '{name}' gets strings that look like base64 ({bare}) without the {{\"b64\": ...}} "
                    "wrapper: TF Serving passes the base64 TEXT to the model, not the decoded bytes",
                    f"send each value as {{\"b64\": \"...\"}} (standard alphabet) for input '{name}'",
                )
        else:
            if _contains_b64_object(value):
                yield Finding(
                    "base64 wrapper", FAIL,
                    f"input '{name}' is {dtype}, but gets {{\"b64\": ...}} objects, which only DT_STRING inputs accept",
                    f"send numbers for '{name}', or base64 only to a DT_STRING input",
                )
            if dtype in _FLOAT_DTYPES:
                ints = list(_ints(value))
                if ints:
                    big = [i for i in ints if abs(i) > _FLOAT32_EXACT]
                    loss = (
                        f"; {len(big)} of them exceed 2^24 and lose precision (e.g. {big[0]})" if big else ""
                    )
                    yield Finding(
                        "integers to a float input", WARN,
                        f"input '{name}' is {dtype} but gets {len(ints)} integer value(s) (e.g. {ints[0]}): "
                        f"TF Serving >= 2.5 rounds them silently to float, older versions reject them{loss}",
                        f"send floats (e.g. {ints[0]}.0) to '{name}', or export the input as an integer dtype",
                    )
        ragged = _ragged(value) if "instances" in doc else None
        if ragged is not None:
            yield Finding(
                "ragged rows", FAIL,
                f"input '{name}': the rows have different lengths ({ragged}); every instance of a batch "
                "must have the same shape",
                "pad or truncate each row to one length (and mask in the model), or send one request per row",
            )


def _input_values(doc: Mapping[str, Any], sig: Any) -> Iterator[tuple[str, Any, str]]:
    dtypes = {t.name: t.dtype for t in sig.inputs}
    if "instances" in doc:
        rows = doc["instances"]
        if not isinstance(rows, list):
            return
        if rows and all(isinstance(r, dict) and "b64" not in r for r in rows):
            for name, dtype in dtypes.items():
                yield name, [r.get(name) for r in rows], dtype
        elif len(dtypes) == 1:
            name, dtype = next(iter(dtypes.items()))
            yield name, rows, dtype
    else:
        cols = doc["inputs"]
        if isinstance(cols, dict) and "b64" not in cols:
            for name, dtype in dtypes.items():
                if name in cols:
                    yield name, cols[name], dtype
        elif len(dtypes) == 1:
            name, dtype = next(iter(dtypes.items()))
            yield name, cols, dtype


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _ints(value: Any) -> Iterator[int]:
    for leaf in _leaves(value):
        if isinstance(leaf, int) and not isinstance(leaf, bool):
            yield leaf


def _contains_b64_object(value: Any) -> bool:
    return any(isinstance(leaf, dict) and "b64" in leaf for leaf in _leaves(value))


def _bare_b64_example(value: Any) -> str | None:
    """A short description of the first string that is very likely base64 of binary data."""
    for leaf in _leaves(value):
        if not isinstance(leaf, str) or len(leaf) < 16 or len(leaf) % 4 or not _B64_RE.match(leaf):
            continue
        try:
            raw = base64.b64decode(leaf, validate=True)
        except (binascii.Error, ValueError):
            continue
        if raw.startswith(b"\xff\xd8\xff"):
            return "a JPEG image"
        if raw.startswith(b"\x89PNG"):
            return "a PNG image"
        if len(leaf) >= 64 and not _printable(raw):
            return f"{len(raw)} bytes of binary data"
    return None


def _printable(raw: bytes) -> bool:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch.isspace() for ch in text)


def _ragged(rows: Any) -> str | None:
    """'row 0 has 4 values, row 2 has 3' when the rows' nested list lengths differ."""
    if not isinstance(rows, list) or len(rows) < 2:
        return None
    first = _dims(rows[0])
    for i, row in enumerate(rows[1:], 1):
        dims = _dims(row)
        if dims != first:
            return f"row 0 has shape {first}, row {i} has shape {dims}"
    return None


def _dims(value: Any) -> list[int] | str:
    if not isinstance(value, list):
        return []
    if not value:
        return [0]
    inner = [_dims(v) for v in value]
    if any(d != inner[0] for d in inner):
        return "ragged"
    first = inner[0]
    return [len(value)] + (first if isinstance(first, list) else [])


# ---- 4. one predict ---------------------------------------------------------------------------


def check_predict(target: Target, body: bytes, origin: str) -> tuple[Finding, HttpAnswer]:
    answer = request(
        target.predict_url,
        method="POST",
        body=body,
        headers={"Content-Type": "application/json", **target.headers, "Origin": origin},
        timeout_s=target.timeout_s,
    )
    where = f"POST {target.model_path}:predict ({len(body)} bytes)"
    if answer.status != 200:
        return Finding(
            "predict", FAIL, f"{where}: HTTP {answer.status}, {_error_text(answer)}",
            "fix the body as the checks above say; TF Serving's message names the field",
        ), answer
    doc = _json_or_none(answer.body)
    if not isinstance(doc, dict) or not ({"predictions", "outputs"} & set(doc)):
        return Finding("predict", FAIL, f"{where}: HTTP 200 but not a predict answer",
                       "is a proxy rewriting answers?"), answer
    key = "predictions" if "predictions" in doc else "outputs"
    return Finding(
        "predict", PASS,
        f"{where}: HTTP 200 in {answer.elapsed_ms:.1f} ms (one call, includes connect), "
        f"response {len(answer.body)} bytes with '{key}'",
    ), answer


# ---- the whole checklist ----------------------------------------------------------------------


def diagnose(target: Target, origin: str, body: bytes | None = None, body_source: str = "--body") -> DoctorReport:
    """Run every check in order; later checks are skipped when an earlier one makes them moot."""
    findings: list[Finding] = []
    status = check_status(target)
    findings.append(status)
    meta = None
    if status.status == PASS:
        meta_finding, meta = check_metadata(target)
        findings.append(meta_finding)
    else:
        findings.append(Finding("metadata", SKIP, "skipped: the model is not available"))
    if status.status == PASS:
        findings.append(check_server_metrics(target))
    preflight = check_cors_preflight(target, origin)
    findings.append(preflight)
    if body is None:
        if meta is None:
            findings.append(Finding("request body", SKIP, "no --body and no usable metadata to generate one"))
            findings.append(Finding("predict", SKIP, "skipped: no body to send"))
            return DoctorReport(target.url, target.model, tuple(findings))
        body = generate_body(meta, target.signature)
        body_source = "generated body"
    else:
        parse_body(body, body_source)  # not JSON: bad input, exit 2, before anything else is sent
    if meta is not None:
        findings.extend(check_body(body, meta, target.signature, body_source))
    else:
        findings.append(Finding("request body", SKIP, "cannot check the body without the model's metadata"))
    predict, answer = check_predict(target, body, origin)
    findings.append(predict)
    findings.append(check_cors_response(answer, origin, preflight.status == PASS))
    return DoctorReport(target.url, target.model, tuple(findings), sent_body=body)


def render_text(report: DoctorReport) -> str:
    label = {PASS: "PASS", WARN: "WARN", FAIL: "FAIL", SKIP: "skip"}
    lines = [f"tfsbench doctor: {report.url} model {report.model}"]
    width = max(len(f.name) for f in report.findings) if report.findings else 10
    for f in report.findings:
        lines.append(f"{label[f.status]:<4}  {f.name:<{width}}  {f.reason}")
        lines.extend(f"{'':<4}  {'':<{width}}    {d}" for d in f.details)
        if f.fix and f.status in (FAIL, WARN):
            lines.append(f"{'':<4}  {'':<{width}}  fix: {f.fix}")
    failed = len(report.failed)
    warned = sum(f.status == WARN for f in report.findings)
    total = len(report.findings)
    verdict = f"{failed} of {total} checks failed" if failed else f"all {total} checks passed"
    lines.append(f"doctor: {verdict}" + (f", {warned} warning(s)" if warned else ""))
    return "\n".join(lines)


def browser_finding(seen: Mapping[str, Any]) -> Finding:
    """The browser check as one checklist line (see doctor/browser.py)."""
    where = f"Chromium page at {seen.get('page_origin')}: fetch() POST to {seen.get('predict_url')}"
    sandbox = (f"Chromium sandbox: {seen['sandbox']}",) if seen.get("sandbox") else ()
    if seen.get("ok"):
        lat = seen.get("latency_ms", {})
        return Finding(
            "browser fetch", PASS,
            f"{where}: {seen.get('completed')} of {seen.get('calls')} calls succeeded",
            details=(
                f"browser-measured latency: first {lat.get('first', 0):.1f} ms (with preflight and connect), "
                f"median {lat.get('median', 0):.1f} ms, p90 {lat.get('p90', 0):.1f} ms, max {lat.get('max', 0):.1f} ms",
                *sandbox,
            ),
        )
    error = str(seen.get("error") or "fetch() failed")
    is_cors = bool(seen.get("cors_error"))
    return Finding(
        "browser fetch", FAIL,
        f"{where}: failed after {seen.get('completed', 0)} call(s): {error}",
        CORS_FIX if is_cors else "see the error above; run without --browser for the server-side checks",
        details=sandbox,
    )
