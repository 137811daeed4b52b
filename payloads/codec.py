"""TF Serving's REST JSON rules, written once: encode and decode predict requests and responses.

The rules and error texts follow TF Serving's `tensorflow_serving/util/json_tensor.cc` and
`g3doc/api_rest.md`: row format `{"instances": [...]}`, columnar format `{"inputs": ...}`,
`{"b64": ...}` objects only for DT_STRING, NaN/Infinity tokens accepted, `_bytes` outputs base64-wrapped.
The embedded server imports this module instead of keeping a twin.

Decoding has a fast path (numpy converts the whole nested list at once) and a slow, exact path that
walks the JSON the way TF Serving does; the slow path only runs when the fast one cannot prove the
value is well formed (or when a `true`/`false` token could hide among numbers, which numpy would
silently accept), so typical bodies never pay for it and bad ones get TF Serving's message.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.signature import (
    DEFAULT_SIGNATURE,
    NUMPY_DTYPES,
    TF_TYPE_NAMES,
    SignatureSpec,
    TensorSpec,
    dtype_for_numpy,
)

FORMATS = ("row", "columnar")
_NUMPY_OPT = orjson.OPT_SERIALIZE_NUMPY
# TF Serving (since 2.18) truncates values it echoes in error messages to 256 bytes.
_ECHO_LIMIT = 256
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
# Doubles at or beyond this round to inf in float32 (FLT_MAX plus half an ulp).
_FLOAT32_OVERFLOW = 2.0**128 - 2.0**103
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class CodecError(InputError):
    """A body that TF Serving would reject; the message is TF Serving's text, `status` its HTTP code."""

    status: int = 400

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class DecodedRequest:
    format: str  # "row" | "columnar"
    signature: SignatureSpec
    inputs: dict[str, np.ndarray]
    batch_size: int | None  # row: number of instances; columnar: common dim 0, if any


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return fmt


# --------------------------------------------------------------------------------------------------
# encoding


def _b64(value: bytes | str) -> dict[str, str]:
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return {"b64": base64.b64encode(raw).decode("ascii")}


def _text(value: bytes | str) -> str:
    if isinstance(value, str):
        return value
    return bytes(value).decode("utf-8", errors="replace")


def _strings_to_json(value: Any, binary: bool) -> Any:
    """Nested lists of bytes/str -> nested lists of JSON strings or b64 objects."""
    if isinstance(value, list):
        return [_strings_to_json(v, binary) for v in value]
    return _b64(value) if binary else _text(value)


def _nonfinite_token(v: float) -> bytes:
    return b"NaN" if math.isnan(v) else (b"Infinity" if v > 0 else b"-Infinity")


def _float_fragment(arr: np.ndarray) -> orjson.Fragment:
    """A float tensor with NaN/Infinity written as the tokens TF Serving reads and writes."""
    if arr.ndim == 0:
        value = float(arr)
        if math.isfinite(value):
            return orjson.Fragment(orjson.dumps(arr[()], option=_NUMPY_OPT))
        return orjson.Fragment(_nonfinite_token(value))
    # orjson writes non-finite floats as null; nothing else in a numeric array can be null, so the
    # k-th null is the k-th non-finite value in C order.
    body = orjson.dumps(np.ascontiguousarray(arr), option=_NUMPY_OPT)
    bad = arr[~np.isfinite(arr)].ravel().tolist()
    parts = body.split(b"null")
    out = [parts[0]]
    for value, part in zip(bad, parts[1:], strict=True):
        out.append(_nonfinite_token(value))
        out.append(part)
    return orjson.Fragment(b"".join(out))


def _tensor_json(name: str, value: Any, binary: bool, allow_nan: bool, what: str) -> Any:
    """Something orjson can serialize for one tensor or one instance of it (array, numpy scalar,
    or a bare bytes/str item taken from an object array)."""
    if isinstance(value, bytes | bytearray | memoryview | str):
        return _b64(value) if binary else _text(value)
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    if arr.dtype.kind in "OSU":
        if arr.ndim == 0:
            item = arr.item()
            return _b64(item) if binary else _text(item)
        return _strings_to_json(arr.tolist(), binary)
    if binary:
        raise InputError(f"{what} '{name}' is listed as binary (b64) but has dtype {arr.dtype}; only strings are")
    if arr.dtype.kind == "f":
        if arr.dtype not in (np.float32, np.float64):
            arr = arr.astype(np.float32)
        if not np.isfinite(arr).all():
            if not allow_nan:
                raise InputError(
                    f"{what} '{name}' contains NaN or Infinity; strict JSON cannot carry them "
                    "(allow them explicitly with --allow-nan; TF Serving accepts the tokens)"
                )
            return _float_fragment(arr)
    elif arr.dtype.kind not in "biu":
        raise InputError(f"{what} '{name}' has dtype {arr.dtype}, which JSON cannot carry")
    if arr.ndim == 0:
        return arr.item() if arr.dtype.kind in "biu" else arr[()]
    return np.ascontiguousarray(arr)


def _as_arrays(tensors: Mapping[str, Any], what: str) -> dict[str, np.ndarray]:
    if not tensors:
        raise InputError(f"no {what}s to encode")
    out = {}
    for name, value in tensors.items():
        if isinstance(value, np.ndarray):
            out[str(name)] = value
        elif isinstance(value, list | tuple) and any(isinstance(v, bytes | str) for v in value):
            arr = np.empty(len(value), dtype=object)  # keep bytes intact (numpy's S dtype drops NULs)
            arr[:] = list(value)
            out[str(name)] = arr
        else:
            out[str(name)] = np.asarray(value)
    return out


def _batch_size(arrays: Mapping[str, np.ndarray], what: str) -> int:
    batch = None
    for name, arr in arrays.items():
        if arr.ndim == 0:
            raise InputError(f"{what} '{name}' is a scalar; the row format needs a batch dimension")
        if batch is None:
            batch = arr.shape[0]
        elif arr.shape[0] != batch:
            raise InputError(
                f"{what} '{name}' has batch size {arr.shape[0]}, expected {batch}: the row format needs "
                "every tensor to share dim 0 (use the columnar format)"
            )
    assert batch is not None
    return batch


def _row_items(
    arrays: Mapping[str, np.ndarray], binary: Collection[str], allow_nan: bool, what: str, named: bool
) -> Any:
    batch = _batch_size(arrays, what)
    if not named:
        (name, arr), = arrays.items()
        return _tensor_json(name, arr, name in binary, allow_nan, what)
    # Convert each tensor once, then slice per instance (cheap views, no per-value Python work).
    items: list[dict[str, Any]] = [{} for _ in range(batch)]
    for name, arr in arrays.items():
        is_bin = name in binary
        for i in range(batch):
            items[i][name] = _tensor_json(name, arr[i], is_bin, allow_nan, what)
    return items


def _dumps(doc: Any, pretty: bool = False) -> bytes:
    option = _NUMPY_OPT | (orjson.OPT_INDENT_2 if pretty else 0)
    return orjson.dumps(doc, option=option)


def encode_request(
    inputs: Mapping[str, np.ndarray],
    fmt: str,
    *,
    signature_name: str | None = None,
    binary_inputs: Collection[str] = (),
    allow_nan: bool = False,
    named: bool | None = None,
) -> bytes:
    """One predict request body. Row: `{"instances": [...]}`; columnar: `{"inputs": ...}`.

    With one input the tensor is written bare unless `named=True`; with several, keyed by name.
    String tensors (object arrays of bytes or str) go as UTF-8 strings, or as `{"b64": ...}` for
    names in `binary_inputs`. NaN/Infinity raise InputError unless `allow_nan`.
    """
    check_format(fmt)
    arrays = _as_arrays(inputs, "input")
    use_names = len(arrays) > 1 or bool(named)
    if len(arrays) > 1 and named is False:
        raise InputError("several inputs must be sent by name (named=False needs exactly one input)")
    doc: dict[str, Any] = {}
    if signature_name is not None:
        doc["signature_name"] = signature_name
    if fmt == "row":
        doc["instances"] = _row_items(arrays, binary_inputs, allow_nan, "input", use_names)
    elif use_names:
        doc["inputs"] = {
            name: _tensor_json(name, arr, name in binary_inputs, allow_nan, "input")
            for name, arr in arrays.items()
        }
    else:
        (name, arr), = arrays.items()
        doc["inputs"] = _tensor_json(name, arr, name in binary_inputs, allow_nan, "input")
    return _dumps(doc)


def encode_response(outputs: Mapping[str, np.ndarray], fmt: str, *, pretty: bool = False) -> bytes:
    """A predict response as TF Serving writes it: `{"predictions": ...}` (row) or `{"outputs": ...}`.

    String outputs whose name ends in `_bytes` are base64-wrapped; NaN/Infinity are written as tokens.
    Raises CodecError (status 500, like TF Serving) when row-format outputs disagree on dim 0.
    """
    check_format(fmt)
    arrays = _as_arrays(outputs, "output")
    binary = {name for name in arrays if name.endswith("_bytes")}
    if fmt == "row":
        first_batch = None
        for name, arr in arrays.items():
            if arr.ndim == 0:
                raise CodecError(f"Tensor name: {name} has no shape information ", status=500)
            if first_batch is not None and arr.shape[0] != first_batch:
                raise CodecError(
                    f"Tensor name: {name} has inconsistent batch size: {arr.shape[0]} expecting: {first_batch}",
                    status=500,
                )
            first_batch = arr.shape[0]
        body = _row_items(arrays, binary, True, "output", len(arrays) > 1)
        return _dumps({"predictions": body}, pretty)
    if len(arrays) == 1:
        (name, arr), = arrays.items()
        return _dumps({"outputs": _tensor_json(name, arr, name in binary, True, "output")}, pretty)
    return _dumps(
        {"outputs": {n: _tensor_json(n, a, n in binary, True, "output") for n, a in arrays.items()}}, pretty
    )


# --------------------------------------------------------------------------------------------------
# parsing

_RAPIDJSON_MESSAGES = (
    # (prefix of Python's json message, rapidjson's GetParseError_En text)
    ("Expecting value", "Invalid value."),
    ("Extra data", "The document root must not be followed by other values."),
    ("Expecting property name enclosed in double quotes", "Missing a name for object member."),
    ("Expecting ':' delimiter", "Missing a colon after a name of object member."),
    ("Expecting ',' delimiter", "Missing a comma or ']' after an array element."),
    ("Unterminated string", "Missing a closing quotation mark in string."),
    ("Invalid control character", "Invalid encoding in string."),
    ("Invalid \\escape", "Invalid escape character in string."),
    ("Invalid \\uXXXX escape", "Incorrect hex digit after \\u escape in string."),
)


def _parse_error(exc: json.JSONDecodeError, text: str) -> CodecError:
    msg = "Invalid value."
    for prefix, rapid in _RAPIDJSON_MESSAGES:
        if exc.msg.startswith(prefix):
            msg = rapid
            break
    if exc.msg.startswith("Expecting ',' delimiter"):
        # Python says the same thing inside objects and arrays; rapidjson does not.
        depth_char = _innermost_open(text, exc.pos)
        if depth_char == "{":
            msg = "Missing a comma or '}' after an object member."
    offset = len(text[: exc.pos].encode("utf-8"))
    return CodecError(f"JSON Parse error: {msg} at offset: {offset}")


def _innermost_open(text: str, pos: int) -> str:
    depth: list[str] = []
    in_str = False
    escaped = False
    for ch in text[:pos]:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth.append(ch)
        elif ch in "]}" and depth:
            depth.pop()
    return depth[-1] if depth else ""


# [server helper fix, minimal] rapidjson refuses numbers that overflow a double ("Number too big to be
# stored in double."); Python's json would make them inf (or raise ValueError past 4300 digits).
_TOO_BIG = "JSON Parse error: Number too big to be stored in double."


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise CodecError(_TOO_BIG)
    return value


def _json_int(text: str) -> int | float:
    if len(text) <= 19:
        return int(text)
    value = int(text) if len(text) < 4000 else math.inf  # rapidjson keeps int64/uint64, else double
    if -(2**63) <= value < 2**64:
        return value
    return _finite_float(str(value) if value != math.inf else "inf")


def _constant(name: str) -> float:
    # Python's json also knows "NaN", "Infinity" and "-Infinity"; they map to floats as TF Serving does.
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name]


def parse_json(body: bytes | str, *, max_depth: int = 64) -> Any:
    """Parse a body as TF Serving does (NaN/Infinity tokens allowed); CodecError with its message."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not body.strip():
        raise CodecError("JSON Parse error: The document is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass  # NaN tokens, bad JSON or deep nesting: let the slower, more telling parser decide
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError(f"JSON Parse error: Invalid encoding in string. at offset: {exc.start}") from None
    try:
        return json.loads(text, parse_constant=_constant, parse_float=_finite_float, parse_int=_json_int)
    except json.JSONDecodeError as exc:
        raise _parse_error(exc, text) from None
    except RecursionError:
        raise CodecError("JSON Parse error: document nested deeper than 1000 levels at offset: 0") from None


def _echo(value: Any) -> str:
    """Compact JSON of a value for error messages, truncated like TF Serving's (256 bytes)."""
    if isinstance(value, float) and not math.isfinite(value):
        text = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    else:
        try:
            text = orjson.dumps(value, option=_NUMPY_OPT).decode("utf-8")
        except (TypeError, orjson.JSONEncodeError, RecursionError):
            text = f"<{_json_type(value)} too deeply nested to print>"
    if len(text) > _ECHO_LIMIT:
        text = text[:_ECHO_LIMIT] + "..."
    return text


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _type_error(value: Any, dtype: str) -> CodecError:
    return CodecError(
        f"JSON Value: {_echo(value)} Type: {_json_type(value)} is not of expected type: "
        f"{TF_TYPE_NAMES.get(dtype, dtype)}"
    )


def _is_b64_object(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


def _b64_decode(value: dict[str, str]) -> bytes:
    """absl::Base64Unescape's rules: standard alphabet, padding optional, whitespace tolerated."""
    text = value["b64"]
    if not text.isascii():
        raise CodecError("Unable to base64 decode")
    raw = text.encode("ascii")
    try:
        return base64.b64decode(raw, validate=True)  # the common, canonical case
    except (binascii.Error, ValueError):
        pass
    raw = raw.translate(None, b" \t\r\n")
    stripped = raw.rstrip(b"=")
    if raw.translate(None, _B64_ALPHABET) or b"=" in stripped or len(raw) - len(stripped) > 2:
        raise CodecError("Unable to base64 decode")
    if len(stripped) % 4 == 1:
        raise CodecError("Unable to base64 decode")
    try:
        return base64.b64decode(stripped + b"=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise CodecError("Unable to base64 decode") from None


def _leaf(value: Any, dtype: str) -> Any:
    """One scalar JSON value converted for `dtype`, with TF Serving's AddValueToTensor checks."""
    if isinstance(value, dict):
        if dtype != "DT_STRING":
            raise _type_error(value, dtype)
        if not _is_b64_object(value):
            raise CodecError(f"JSON Value: {_echo(value)} not formatted correctly for base64 data")
        return _b64_decode(value)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if dtype in ("DT_FLOAT", "DT_DOUBLE", "DT_HALF"):
        if not is_number:
            raise _type_error(value, dtype)
        return value
    if dtype == "DT_INT32":
        if not (is_number and isinstance(value, int) and _INT32_MIN <= value <= _INT32_MAX):
            raise _type_error(value, dtype)
        return value
    if dtype == "DT_INT64":
        if not (is_number and isinstance(value, int) and _INT64_MIN <= value <= _INT64_MAX):
            raise _type_error(value, dtype)
        return value
    if dtype == "DT_BOOL":
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    if dtype == "DT_STRING":
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode("utf-8")
    raise CodecError(
        f"Conversion of JSON Value: {_echo(value)} to type: {TF_TYPE_NAMES.get(dtype, dtype)}", status=501
    )


def _dense_shape(value: Any, max_depth: int) -> list[int]:
    """TF Serving's GetDenseTensorShape: follow first elements down to a non-list."""
    shape: list[int] = []
    while isinstance(value, list):
        if len(shape) >= max_depth:
            raise CodecError(f"JSON value nested deeper than {max_depth} levels")
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value: Any, level: int, shape: list[int], dtype: str, out: list[Any]) -> None:
    """TF Serving's FillTensorProto: exact errors for ragged lists, wrong levels and wrong types."""
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise CodecError(
                f"JSON Value: {_echo(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {rank}"
            )
        out.append(_leaf(value, dtype))
        return
    if level >= rank:
        raise CodecError(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise CodecError(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def _slow_tensor(value: Any, dtype: str, max_depth: int) -> np.ndarray:
    shape = _dense_shape(value, max_depth)
    flat: list[Any] = []
    _fill(value, 0, shape, dtype, flat)
    return _flat_to_array(flat, dtype).reshape(shape)


def _flat_to_array(flat: list[Any], dtype: str) -> np.ndarray:
    """Checked leaf values (see `_leaf`) -> 1-D array of the signature's dtype."""
    if dtype not in NUMPY_DTYPES:
        raise CodecError(f"Conversion of JSON values to type: {TF_TYPE_NAMES.get(dtype, dtype)}", status=501)
    if dtype == "DT_STRING":
        arr = np.empty(len(flat), dtype=object)
        arr[:] = flat
        return arr
    if dtype in ("DT_FLOAT", "DT_DOUBLE"):
        return _cast(np.array(flat, dtype=np.float64), dtype)
    return np.array(flat, dtype=NUMPY_DTYPES[dtype])


def _cast(arr: np.ndarray, dtype: str) -> np.ndarray:
    target = NUMPY_DTYPES[dtype]
    if arr.dtype == target:
        return arr
    if dtype == "DT_FLOAT" and arr.dtype.kind == "f" and arr.size:
        lo, hi = arr.min(), arr.max()
        if not (-_FLOAT32_OVERFLOW < lo and hi < _FLOAT32_OVERFLOW):  # also true for NaN/inf: look closer
            finite = arr[np.isfinite(arr)]
            big = finite[np.abs(finite) >= _FLOAT32_OVERFLOW]
            if big.size:
                # Finite doubles beyond float32's range: TF Serving refuses them rather than send inf.
                raise CodecError(
                    f"Cannot convert JSON value: {float(big[0])!r} to float without loss of precision."
                )
    return arr.astype(target)


def _fast_tensor(value: Any, dtype: str, bools_possible: bool = True) -> np.ndarray | None:
    """numpy's converter for well-formed numeric lists; None when the slow walk must decide.

    numpy silently turns `true` into 1 inside number lists, which TF Serving rejects; so when the body
    may contain a JSON boolean (`bools_possible`), numeric inputs take the exact walk instead.
    """
    if dtype == "DT_STRING" or dtype not in NUMPY_DTYPES:
        return None
    if bools_possible and dtype != "DT_BOOL":
        return None
    try:
        arr = np.array(value)
    except (ValueError, TypeError, OverflowError):
        return None
    kind = arr.dtype.kind
    if dtype in ("DT_FLOAT", "DT_DOUBLE"):
        ok = kind in "fi"
    elif dtype == "DT_BOOL":
        ok = kind == "b"
    elif dtype == "DT_INT32":
        ok = kind == "i" and (arr.size == 0 or (arr.min() >= _INT32_MIN and arr.max() <= _INT32_MAX))
    else:  # DT_INT64
        ok = kind == "i"
    if not ok:
        return None
    if arr.size == 0 and isinstance(value, list) and kind == "f":
        return arr.astype(NUMPY_DTYPES[dtype])
    return _cast(arr, dtype)


def to_tensor(value: Any, dtype: str, *, max_depth: int = 64, bools_possible: bool = True) -> np.ndarray:
    """One JSON tensor value (nested lists of scalars) -> numpy array of the signature's dtype.

    Pass `bools_possible=False` only when the JSON text has no `true`/`false` token (fast path)."""
    arr = _fast_tensor(value, dtype, bools_possible)
    if arr is not None and arr.ndim <= max_depth:
        return arr
    return _slow_tensor(value, dtype, max_depth)


def _shape_str(shape: tuple[int, ...] | list[int] | None) -> str:
    if shape is None:
        return "[?]"
    return "[" + ",".join(str(d) for d in shape) + "]"


def check_shape(spec_shape: tuple[int, ...] | None, arr: np.ndarray, name: str) -> None:
    """Shape of a decoded input against the signature: rank and known dims must match."""
    if spec_shape is None:
        return
    got = arr.shape
    if len(got) != len(spec_shape) or any(want not in (-1, have) for want, have in zip(spec_shape, got, strict=False)):
        raise CodecError(
            f"input '{name}' has shape {_shape_str(got)} but the signature expects {_shape_str(spec_shape)} "
            "(-1 = any size)"
        )


def _format_error(doc: Any, text: str) -> CodecError:
    return CodecError(f"JSON Value: {_echo(doc)} {text}")


def _select_signature(
    doc: dict[str, Any], signatures: Mapping[str, SignatureSpec], default_signature: str
) -> SignatureSpec:
    if "signature_name" in doc:
        name = doc["signature_name"]
        if not isinstance(name, str):
            raise _format_error(doc, "not formatted correctly. 'signature_name' key must be a string value.")
        name = name or default_signature
    else:
        name = default_signature
    sig = signatures.get(name)
    if sig is None:
        raise CodecError(f'Serving signature name: "{name}" not found in signature def')
    if not sig.inputs:
        raise CodecError(f"Failed to get input map for signature: {name or 'DEFAULT'}")
    return sig


def _wrap_row(index: int, exc: CodecError, key: str | None = None) -> CodecError:
    where = f"{index} key: {key}" if key is not None else f"{index}"
    return CodecError(
        f"Failed to process element: {where} of 'instances' list. Error: INVALID_ARGUMENT: {exc}", exc.status
    )


def _instances_slow(items: list[Any], spec: TensorSpec, max_depth: int) -> np.ndarray:
    """Row-format stacking with AddInstanceItem's per-element size and shape checks."""
    first_shape: list[int] | None = None
    first_size = 0
    flat: list[Any] = []
    for index, item in enumerate(items):
        try:
            shape = _dense_shape(item, max_depth)
            part: list[Any] = []
            _fill(item, 0, shape, spec.dtype, part)
        except CodecError as exc:
            raise _wrap_row(index, exc) from None
        if first_shape is None:
            first_shape, first_size = shape, len(part)
        elif len(part) != first_size:
            raise _wrap_row(index, CodecError(f"Expecting tensor size: {first_size} but got: {len(part)}"))
        elif shape != first_shape:
            raise _wrap_row(
                index, CodecError(f"Expecting shape {_shape_str(first_shape)} but got: {_shape_str(shape)}")
            )
        flat.extend(part)
    assert first_shape is not None
    return _flat_to_array(flat, spec.dtype).reshape([len(items), *first_shape])


def _instances_tensor(items: list[Any], spec: TensorSpec, max_depth: int, bools: bool) -> np.ndarray:
    arr = _fast_tensor(items, spec.dtype, bools)
    if arr is not None and arr.ndim <= max_depth + 1:
        return arr
    return _instances_slow(items, spec, max_depth)


def _decode_row(doc: dict[str, Any], sig: SignatureSpec, max_depth: int, bools: bool) -> dict[str, np.ndarray]:
    instances = doc["instances"]
    if not isinstance(instances, list):
        raise _format_error(doc, "Excepting 'instances' to be an list/array")
    if not instances:
        raise _format_error(doc, "No values in 'instances' array")
    first = instances[0]
    if not isinstance(first, dict) and len(sig.inputs) > 1:
        raise CodecError(
            "instances is a plain list, but expecting list of objects as multiple input tensors required "
            "as per tensorinfo_map"
        )
    objects = isinstance(first, dict) and not _is_b64_object(first)
    if not objects:
        spec = sig.inputs[0]
        for index, item in enumerate(instances):
            if isinstance(item, dict) and not _is_b64_object(item):
                raise CodecError(f"Expecting value/list but got object at item {index} of input list")
        return {spec.name: _instances_tensor(instances, spec, max_depth, bools)}
    names = set(sig.input_names)
    for index, item in enumerate(instances):
        if not isinstance(item, dict) or _is_b64_object(item):
            raise CodecError(f"Expecting object but got list at item {index} of input list")
        for key in item:
            if key not in names:
                raise _wrap_row(index, CodecError(f"JSON object: does not have named input: {key}"), key)
        if len(item) != len(names):
            raise CodecError(
                f"Failed to process element: {index} of 'instances' list. JSON object: {_echo(item)} "
                f"must only have keys: {','.join(sorted(names))}"
            )
    return {
        spec.name: _instances_tensor([item[spec.name] for item in instances], spec, max_depth, bools)
        for spec in sig.inputs
    }


def _decode_columnar(
    doc: dict[str, Any], sig: SignatureSpec, max_depth: int, bools: bool
) -> dict[str, np.ndarray]:
    value = doc["inputs"]
    if not isinstance(value, dict) or _is_b64_object(value):
        if len(sig.inputs) > 1:
            raise CodecError(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required "
                "as per tensorinfo_map"
            )
        spec = sig.inputs[0]
        return {spec.name: to_tensor(value, spec.dtype, max_depth=max_depth, bools_possible=bools)}
    out = {}
    for spec in sig.inputs:
        if spec.name not in value:
            raise CodecError(f"Missing named input: {spec.name} in 'inputs' object.")
        out[spec.name] = to_tensor(value[spec.name], spec.dtype, max_depth=max_depth, bools_possible=bools)
    return out


def check_input_set(sig: SignatureSpec, inputs: Mapping[str, Any]) -> None:
    """predict_util.cc's check that a request names exactly the signature's inputs."""
    sent, wanted = set(inputs), set(sig.input_names)
    if sent == wanted:
        return
    raise CodecError(
        f"input size does not match signature: {len(sent)}!={len(wanted)} len({{{','.join(sorted(sent))}}}) "
        f"!= len({{{','.join(sorted(wanted))}}}). Sent extra: {{{','.join(sorted(sent - wanted))}}}. "
        f"Missing but required: {{{','.join(sorted(wanted - sent))}}}."
    )


def decode_request(
    body: bytes,
    signatures: Mapping[str, SignatureSpec],
    *,
    default_signature: str = DEFAULT_SIGNATURE,
    max_depth: int = 64,
) -> DecodedRequest:
    """Decode a predict body against the model's signatures, or raise CodecError with TF Serving's text.

    Checks run in TF Serving's order: JSON syntax, top-level object, signature_name, instances/inputs,
    per-value types and list sizes, then (beyond TF Serving's JSON layer) shapes against the signature.
    """
    doc = parse_json(body, max_depth=max_depth)
    if not isinstance(doc, dict):
        raise _format_error(doc, "Is not object")
    sig = _select_signature(doc, signatures, default_signature)
    has_rows, has_cols = "instances" in doc, "inputs" in doc
    if has_rows and has_cols:
        raise _format_error(doc, "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist")
    if not has_rows and not has_cols:
        raise CodecError("Missing 'inputs' or 'instances' key")
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    bools = b"true" in raw or b"false" in raw
    try:
        if has_rows:
            inputs = _decode_row(doc, sig, max_depth, bools)
        else:
            inputs = _decode_columnar(doc, sig, max_depth, bools)
    except RecursionError:
        raise CodecError(f"JSON value nested deeper than {max_depth} levels") from None
    check_input_set(sig, inputs)
    for spec in sig.inputs:
        check_shape(spec.shape, inputs[spec.name], spec.name)
    if has_rows:
        batch: int | None = len(doc["instances"])
    else:
        dims = {arr.shape[0] if arr.ndim else None for arr in inputs.values()}
        batch = dims.pop() if len(dims) == 1 else None
    return DecodedRequest("row" if has_rows else "columnar", sig, inputs, batch)


# --------------------------------------------------------------------------------------------------
# responses


def response_batch_size(obj: Any) -> int:
    """Batch length of a parsed predict response; CodecError if it is not one."""
    if not isinstance(obj, dict):
        raise CodecError(f"response is not a JSON object: {_echo(obj)}")
    if "predictions" in obj:
        preds = obj["predictions"]
        if not isinstance(preds, list):
            raise CodecError("response 'predictions' is not a list")
        return len(preds)
    if "outputs" in obj:
        outputs = obj["outputs"]
        if isinstance(outputs, list):
            return len(outputs)
        if isinstance(outputs, dict) and not _is_b64_object(outputs):
            if not outputs:
                raise CodecError("response 'outputs' object is empty")
            first = next(iter(outputs.values()))
            if isinstance(first, list):
                return len(first)
            raise CodecError("response 'outputs' first tensor is a scalar (no batch dimension)")
        raise CodecError("response 'outputs' is a scalar (no batch dimension)")
    if "error" in obj:
        raise CodecError(f"server error: {_echo(obj['error'])}")
    raise CodecError("response has neither 'predictions' nor 'outputs'")


def _loose_tensor(value: Any) -> np.ndarray:
    """Best-effort conversion of a response tensor (b64 objects -> bytes, strings -> bytes)."""
    def conv(v: Any) -> Any:
        if isinstance(v, list):
            return [conv(x) for x in v]
        if _is_b64_object(v):
            return _b64_decode(v)
        if isinstance(v, str):
            return v.encode("utf-8")
        return v

    converted = conv(value)
    try:
        arr = np.array(converted)
    except ValueError:
        arr = np.empty(len(converted), dtype=object)
        arr[:] = converted
        return arr
    if arr.dtype.kind == "S":
        out = np.empty(arr.shape, dtype=object)
        flat = out.reshape(-1)
        flat[:] = [bytes(x) for x in np.asarray(converted, dtype=object).reshape(-1)]
        return out
    if arr.dtype == np.float64:
        return arr
    return arr


def decode_response(body: bytes) -> dict[str, np.ndarray]:
    """Named arrays from a predict response (best effort, for tests and `doctor`).

    A bare single output is returned under the key "predictions" (row) or "outputs" (columnar).
    """
    doc = parse_json(body)
    response_batch_size(doc)  # raises for errors and foreign shapes
    if "predictions" in doc:
        preds = doc["predictions"]
        if preds and all(isinstance(p, dict) and not _is_b64_object(p) for p in preds):
            names = list(preds[0])
            return {name: _loose_tensor([p.get(name) for p in preds]) for name in names}
        return {"predictions": _loose_tensor(preds)}
    outputs = doc["outputs"]
    if isinstance(outputs, dict) and not _is_b64_object(outputs):
        return {name: _loose_tensor(v) for name, v in outputs.items()}
    return {"outputs": _loose_tensor(outputs)}


def tf_dtype_of(arr: np.ndarray) -> str:
    """TF dtype name of an array (a convenience for callers building signatures from data)."""
    return dtype_for_numpy(arr.dtype)
