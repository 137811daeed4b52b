"""The TF Serving JSON codec: encode/decode round trips and every error TF Serving would give."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import orjson
import pytest
from tfsbench.payloads.codec import (
    CodecError,
    check_input_set,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    parse_json,
    response_batch_size,
)
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.signature import SignatureSpec, TensorSpec

NUMERIC = SignatureSpec(
    "serving_default", (TensorSpec("features", "DT_FLOAT", (-1, 4)),), (TensorSpec("probabilities", "DT_FLOAT", (-1, 3)),)
)
IMAGE = SignatureSpec("serving_default", (TensorSpec("image_bytes", "DT_STRING", (-1,)),), ())
TEXT = SignatureSpec("serving_default", (TensorSpec("text", "DT_STRING", (-1, 1)),), ())
MULTI = SignatureSpec(
    "serving_default",
    (
        TensorSpec("ids", "DT_INT64", (-1, 3)),
        TensorSpec("mask", "DT_BOOL", (-1, 3)),
        TensorSpec("scale", "DT_DOUBLE", (-1,)),
        TensorSpec("small", "DT_INT32", (-1,)),
    ),
    (),
)


def sigs(*specs: SignatureSpec) -> dict[str, SignatureSpec]:
    return {s.name: s for s in specs}


def decode(body: str | bytes, *specs: SignatureSpec):
    if isinstance(body, str):
        body = body.encode()
    return decode_request(body, sigs(*(specs or (NUMERIC,))))


def error_of(body: str | bytes, *specs: SignatureSpec) -> CodecError:
    with pytest.raises(CodecError) as info:
        decode(body, *specs)
    assert info.value.status == 400 or info.value.status == 501
    return info.value


# ---- encoding -------------------------------------------------------------------------------------


def test_row_single_input_is_bare_items_and_float32_shortest_repr():
    x = np.array([[0.1, 0.2, 0.3, 1.0], [1e-7, 2.5, -3.0, 4.0]], dtype=np.float32)
    body = encode_request({"features": x}, "row")
    assert body == b'{"instances":[[0.1,0.2,0.3,1.0],[1e-7,2.5,-3.0,4.0]]}'
    assert np.array_equal(np.array(json.loads(body)["instances"], dtype=np.float32), x)


def test_columnar_single_input_bare_unless_named_and_signature_name_first():
    x = np.arange(8, dtype=np.int64).reshape(2, 4)
    assert json.loads(encode_request({"features": x}, "columnar")) == {"inputs": x.tolist()}
    named = json.loads(encode_request({"features": x}, "columnar", named=True, signature_name="sig"))
    assert named == {"signature_name": "sig", "inputs": {"features": x.tolist()}}
    row_named = json.loads(encode_request({"features": x}, "row", named=True))
    assert row_named == {"instances": [{"features": r} for r in x.tolist()]}


def test_row_several_inputs_are_objects_per_instance_and_strings_b64_or_text():
    text = np.empty((2, 1), dtype=object)
    text[:, 0] = [b"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac", "plain str"]
    imgs = np.empty(2, dtype=object)
    imgs[:] = [b"\xff\xd8\x00", b"\x00"]
    doc = json.loads(encode_request({"text": text, "image_bytes": imgs}, "row", binary_inputs={"image_bytes"}))
    assert doc == {
        "instances": [
            {"text": ["café 日本"], "image_bytes": {"b64": base64.b64encode(b"\xff\xd8\x00").decode()}},
            {"text": ["plain str"], "image_bytes": {"b64": "AA=="}},
        ]
    }


def test_encode_rejects_nan_unless_allowed_then_writes_tf_tokens():
    x = np.array([[np.nan, np.inf, -np.inf, 1.5]], dtype=np.float32)
    with pytest.raises(InputError, match="NaN or Infinity"):
        encode_request({"features": x}, "row")
    body = encode_request({"features": x}, "columnar", allow_nan=True)
    assert body == b'{"inputs":[[NaN,Infinity,-Infinity,1.5]]}'
    back = decode(body).inputs["features"]
    assert np.isnan(back[0, 0]) and back[0, 1] == np.inf and back[0, 2] == -np.inf and back[0, 3] == 1.5


def test_encode_bad_arguments_are_input_errors():
    x = np.zeros((2, 4), dtype=np.float32)
    with pytest.raises(InputError, match="format"):
        encode_request({"features": x}, "grid")
    with pytest.raises(InputError, match="batch size 3"):
        encode_request({"a": x, "b": np.zeros((3, 4))}, "row")
    with pytest.raises(InputError, match="binary"):
        encode_request({"features": x}, "row", binary_inputs={"features"})


@pytest.mark.parametrize("fmt", ["row", "columnar"])
@pytest.mark.parametrize(
    "sig,inputs,binary",
    [
        (NUMERIC, {"features": np.arange(12, dtype=np.float32).reshape(3, 4) / 7}, ()),
        (IMAGE, {"image_bytes": np.array([b"\x89PNG\x00", b"", b"\xff" * 5], dtype=object)}, ("image_bytes",)),
        (TEXT, {"text": np.array([[b"\xc3\xa9t\xc3\xa9"], [b"\xf0\x9f\x98\x80 ok"]], dtype=object)}, ()),
        (
            MULTI,
            {
                "ids": np.array([[1, -2, 2**40], [0, 0, 7]], dtype=np.int64),
                "mask": np.array([[True, False, True], [False, False, True]]),
                "scale": np.array([0.1, 1e300]),
                "small": np.array([2**31 - 1, -(2**31)], dtype=np.int32),
            },
            (),
        ),
    ],
)
def test_request_round_trip_keeps_values_dtypes_and_shapes(sig, inputs, binary, fmt):
    body = encode_request(inputs, fmt, binary_inputs=binary)
    decoded = decode(body, sig)
    assert decoded.format == fmt
    assert decoded.signature is sig
    first = next(iter(inputs.values()))
    assert decoded.batch_size == first.shape[0]
    assert set(decoded.inputs) == set(inputs)
    for name, arr in inputs.items():
        got = decoded.inputs[name]
        assert got.shape == arr.shape
        assert got.dtype == sig.input(name).numpy_dtype
        assert got.tolist() == arr.tolist()


def test_decode_accepts_integers_for_float_inputs_and_rows_of_named_objects():
    d = decode('{"instances": [{"features": [1, 2, 3, 4]}]}')
    assert d.inputs["features"].dtype == np.float32 and d.inputs["features"].tolist() == [[1, 2, 3, 4]]
    d = decode('{"signature_name": "", "inputs": {"features": [[1, 2.5, 3, 4]], "ignored": 1}}')
    assert d.inputs["features"].tolist() == [[1, 2.5, 3, 4]]


def test_decode_b64_scalar_columnar_and_whitespace_tolerant_base64():
    any_rank = SignatureSpec("serving_default", (TensorSpec("image_bytes", "DT_STRING", None),), ())
    d = decode('{"inputs": {"b64": "aGVs\\nbG8="}}', any_rank)
    assert d.inputs["image_bytes"].shape == () and d.inputs["image_bytes"].item() == b"hello"
    assert decode('{"inputs": [{"b64": "aGVsbG8"}]}', IMAGE).inputs["image_bytes"].tolist() == [b"hello"]


def test_decode_text_strings_become_utf8_bytes():
    d = decode('{"instances": [["日本語 😀"]]}', TEXT)
    assert d.inputs["text"].dtype == object
    assert d.inputs["text"][0, 0] == "日本語 😀".encode()


def test_signature_selection_by_name_and_default():
    other = SignatureSpec("other", (TensorSpec("x", "DT_INT32", (-1,)),), ())
    d = decode_request(b'{"signature_name": "other", "instances": [1, 2]}', sigs(NUMERIC, other))
    assert d.signature is other and d.inputs["x"].dtype == np.int32
    d = decode_request(b'{"instances": [1, 2]}', sigs(other), default_signature="other")
    assert d.signature is other


# ---- every error, with TF Serving's text ---------------------------------------------------------


@pytest.mark.parametrize(
    "body,expected",
    [
        ("", "JSON Parse error: The document is empty"),
        ("   ", "JSON Parse error: The document is empty"),
        ("{", "JSON Parse error: Missing a name for object member. at offset: 1"),
        ('{"inputs": [1 2]}', "JSON Parse error: Missing a comma or ']' after an array element. at offset: 14"),
        ('{"inputs": 1 "x": 2}', "JSON Parse error: Missing a comma or '}' after an object member. at offset: 13"),
        ('{"inputs": [1]} x', "JSON Parse error: The document root must not be followed by other values. at offset: 16"),
        ("[1, 2]", "JSON Value: [1,2] Is not object"),
        (
            '{"instances": [[1,2,3,4]], "inputs": [[1,2,3,4]]}',
            "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist",
        ),
        ('{"signature_name": "serving_default"}', "Missing 'inputs' or 'instances' key"),
        ('{"instances": []}', "No values in 'instances' array"),
        ('{"instances": {"features": 1}}', "Excepting 'instances' to be an list/array"),
        (
            '{"instances": [[1,2,3,4], [1,2,3]]}',
            "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 4 but got: 3",
        ),
        (
            '{"instances": [[[1,2],[3,4]], [[1,2,3,4]]]}',
            "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting shape [2,2] but got: [1,4]",
        ),
        ('{"inputs": [[1,2,3,4], [1,2,3]]}', "Encountered list at unexpected size: 3 at level: 1 expected size: 4"),
        ('{"inputs": [[1,2,3,[4]]]}', "Encountered list at unexpected level: 2 expected < 2"),
        ('{"inputs": [[1,2,3,4], 5]}', "JSON Value: 5 found at incorrect level: 2 in the JSON DOM. Expected at level: 2"),
        (
            '{"instances": [[1,2,3,"a"]]}',
            'Failed to process element: 0 of \'instances\' list. Error: INVALID_ARGUMENT: JSON Value: "a" Type: String '
            "is not of expected type: float",
        ),
        ('{"inputs": [["1",2,3,4]]}', 'JSON Value: "1" Type: String is not of expected type: float'),
        ('{"inputs": [[null,2,3,4]]}', "JSON Value: null Type: Null is not of expected type: float"),
        ('{"inputs": [[false,2,3,4]]}', "JSON Value: false Type: False is not of expected type: float"),
        ('{"inputs": [[{"b64": "AAAA"},2,3,4]]}', 'JSON Value: {"b64":"AAAA"} Type: Object is not of expected type: float'),
        ('{"inputs": {"x": [[1,2,3,4]]}}', "Missing named input: features in 'inputs' object."),
        ('{"signature_name": "nope", "inputs": [[1,2,3,4]]}', 'Serving signature name: "nope" not found in signature def'),
        ('{"signature_name": 7, "inputs": [[1,2,3,4]]}', "'signature_name' key must be a string value."),
        ('{"inputs": [[1,2,3,1e40]]}', "Cannot convert JSON value: 1e+40 to float without loss of precision."),
        ('{"inputs": [[1,2,3]]}', "input 'features' has shape [1,3] but the signature expects [-1,4]"),
        ('{"inputs": [1,2,3,4]}', "input 'features' has shape [4] but the signature expects [-1,4]"),
    ],
)
def test_numeric_errors_carry_tf_serving_messages(body, expected):
    assert expected in str(error_of(body))


@pytest.mark.parametrize(
    "body,sig,expected",
    [
        ('{"inputs": [{"b64": "AA-_"}]}', IMAGE, "Unable to base64 decode"),  # URL-safe alphabet
        ('{"inputs": [{"b64": "A"}]}', IMAGE, "Unable to base64 decode"),
        ('{"inputs": [{"b64": "é"}]}', IMAGE, "Unable to base64 decode"),
        ('{"inputs": [{"b64": 1}]}', IMAGE, 'JSON Value: {"b64":1} not formatted correctly for base64 data'),
        ('{"inputs": [{"b64": "AA==", "x": 1}]}', IMAGE, "not formatted correctly for base64 data"),
        ('{"inputs": [3]}', IMAGE, "JSON Value: 3 Type: Number is not of expected type: string"),
        ('{"inputs": [["a"]]}', IMAGE, "input 'image_bytes' has shape [1,1] but the signature expects [-1]"),
        ('{"instances": [{"b64": "AA=="}, {"image_bytes": {"b64": "AA=="}}]}', IMAGE,
         "Expecting value/list but got object at item 1 of input list"),
        ('{"instances": [[1,2,3], [true,false,true], 1, 1]}', MULTI,
         "instances is a plain list, but expecting list of objects as multiple input tensors required as per tensorinfo_map"),
        ('{"inputs": [1]}', MULTI,
         "inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map"),
        ('{"instances": [{"ids": [1,2,3], "mask": [true,true,true], "scale": 1, "small": 1}, [1]]}', MULTI,
         "Expecting object but got list at item 1 of input list"),
        ('{"instances": [{"ids": [1,2,3], "mask": [true,true,true], "scale": 1, "small": 1, "zzz": 1}]}', MULTI,
         "Failed to process element: 0 key: zzz of 'instances' list. Error: INVALID_ARGUMENT: JSON object: does not have named input: zzz"),
        ('{"instances": [{"ids": [1,2,3], "mask": [true,true,true], "scale": 1}]}', MULTI,
         "must only have keys: ids,mask,scale,small"),
        ('{"inputs": {"ids": [[1,2,3.5]], "mask": [[true,true,true]], "scale": [1], "small": [1]}}', MULTI,
         "JSON Value: 3.5 Type: Number is not of expected type: int64"),
        ('{"inputs": {"ids": [[1,2,3]], "mask": [[1,0,1]], "scale": [1], "small": [1]}}', MULTI,
         "JSON Value: 1 Type: Number is not of expected type: bool"),
        ('{"inputs": {"ids": [[1,2,3]], "mask": [[true,true,true]], "scale": [1], "small": [2147483648]}}', MULTI,
         "JSON Value: 2147483648 Type: Number is not of expected type: int32"),
        ('{"inputs": {"ids": [[1,2,9223372036854775808]], "mask": [[true,true,true]], "scale": [1], "small": [1]}}',
         MULTI, "JSON Value: 9223372036854775808 Type: Number is not of expected type: int64"),
    ],
)
def test_string_and_multi_input_errors(body, sig, expected):
    assert expected in str(error_of(body, sig))


def test_deep_nesting_is_a_codec_error_not_a_recursion_error():
    for depth in (70, 900, 5000, 200_000):
        body = '{"inputs": ' + "[" * depth + "1" + "]" * depth + "}"
        err = error_of(body)
        assert "nested deeper" in str(err) or "JSON Parse error" in str(err)
    deep_object = '{"inputs": [[' + '{"a":' * 3000 + "1" + "}" * 3000 + "]]}"
    assert "JSON Parse error" in str(error_of(deep_object)) or "Type: Object" in str(error_of(deep_object))
    shallow = '{"inputs": [[' + '{"a":' * 50 + "1" + "}" * 50 + ",2,3,4]]}"
    assert "Type: Object is not of expected type: float" in str(error_of(shallow))


def test_echoed_values_are_truncated_like_tf_serving():
    body = '{"inputs": [["' + "x" * 5000 + '",2,3,4]]}'
    assert len(str(error_of(body))) < 400


def test_check_input_set_message():
    with pytest.raises(CodecError) as info:
        check_input_set(MULTI, {"ids": 1, "extra": 2})
    assert str(info.value) == (
        "input size does not match signature: 2!=4 len({extra,ids}) != len({ids,mask,scale,small}). "
        "Sent extra: {extra}. Missing but required: {mask,scale,small}."
    )


def test_parse_json_accepts_nan_tokens_and_str_input():
    doc = parse_json('{"a": [NaN, Infinity, -Infinity]}')
    assert math.isnan(doc["a"][0]) and doc["a"][1:] == [math.inf, -math.inf]
    with pytest.raises(CodecError, match="Invalid encoding"):
        parse_json(b'{"a": "\xff"}')


# ---- responses ------------------------------------------------------------------------------------


def test_encode_response_row_and_columnar_shapes_of_json():
    scores = np.array([[0.5, 0.25], [1.0, 0.0]], dtype=np.float32)
    classes = np.array([3, 1], dtype=np.int64)
    assert orjson.loads(encode_response({"scores": scores}, "row")) == {"predictions": scores.tolist()}
    assert orjson.loads(encode_response({"scores": scores}, "columnar")) == {"outputs": scores.tolist()}
    row = orjson.loads(encode_response({"scores": scores, "classes": classes}, "row"))
    assert row == {"predictions": [{"scores": [0.5, 0.25], "classes": 3}, {"scores": [1.0, 0.0], "classes": 1}]}
    col = orjson.loads(encode_response({"scores": scores, "classes": classes}, "columnar"))
    assert col == {"outputs": {"scores": scores.tolist(), "classes": [3, 1]}}
    nan = encode_response({"scores": np.array([[np.nan]], dtype=np.float32)}, "row")
    assert nan == b'{"predictions":[[NaN]]}'


def test_encode_response_b64_only_for_bytes_suffix_and_inconsistent_batch_is_500():
    names = np.array([b"cat", b"dog"], dtype=object)
    doc = orjson.loads(encode_response({"label_bytes": names, "label": names}, "columnar"))
    assert doc["outputs"]["label_bytes"] == [{"b64": "Y2F0"}, {"b64": "ZG9n"}]
    assert doc["outputs"]["label"] == ["cat", "dog"]
    with pytest.raises(CodecError) as info:
        encode_response({"a": np.zeros((2, 1)), "b": np.zeros((3, 1))}, "row")
    assert info.value.status == 500 and "has inconsistent batch size: 3 expecting: 2" in str(info.value)


def test_decode_response_round_trip():
    scores = np.array([[0.5, 0.25], [1.0, 0.0]], dtype=np.float32)
    names = np.array([b"\x00\xff", b"ok"], dtype=object)
    for fmt in ("row", "columnar"):
        out = decode_response(encode_response({"scores": scores, "name_bytes": names}, fmt))
        assert out["scores"].tolist() == scores.tolist()
        assert out["name_bytes"].tolist() == [b"\x00\xff", b"ok"]
    assert decode_response(encode_response({"s": scores}, "row"))["predictions"].shape == (2, 2)
    assert decode_response(encode_response({"s": scores}, "columnar"))["outputs"].shape == (2, 2)


def test_response_batch_size_cases():
    assert response_batch_size({"predictions": [[1], [2], [3]]}) == 3
    assert response_batch_size({"outputs": [[1], [2]]}) == 2
    assert response_batch_size({"outputs": {"a": [1, 2, 3, 4], "b": [0]}}) == 4
    with pytest.raises(CodecError, match="neither 'predictions' nor 'outputs'"):
        response_batch_size({"result": []})
    with pytest.raises(CodecError, match="server error"):
        response_batch_size({"error": "Servable not found"})
    with pytest.raises(CodecError, match="not a list"):
        response_batch_size({"predictions": 3})
    with pytest.raises(CodecError, match="scalar"):
        response_batch_size({"outputs": 3.0})
    with pytest.raises(CodecError, match="not a JSON object"):
        response_batch_size([1, 2])


def test_b64_first_item_with_several_inputs_is_an_input_set_mismatch():
    two = SignatureSpec("serving_default", (TensorSpec("a_bytes", "DT_STRING", (-1,)), TensorSpec("b", "DT_FLOAT", (-1,))), ())
    err = error_of('{"instances": [{"b64": "AA=="}]}', two)
    assert "input size does not match signature: 1!=2" in str(err) and "Missing but required: {b}." in str(err)


# ---- properties -----------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(
    arr=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
                   elements=st.floats(width=32, allow_nan=False, allow_infinity=False)),
    fmt=st.sampled_from(["row", "columnar"]),
)
def test_float32_round_trip_is_bit_exact(arr, fmt):
    sig = SignatureSpec("serving_default", (TensorSpec("x", "DT_FLOAT", (-1, *arr.shape[1:])),), ())
    back = decode(encode_request({"x": arr}, fmt), sig).inputs["x"]
    assert back.dtype == np.float32 and back.shape == arr.shape
    assert np.array_equal(back.view(np.uint32), arr.view(np.uint32))  # bit-exact, -0.0 included


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.binary(max_size=40), min_size=1, max_size=6),
       texts=st.lists(st.text(max_size=20), min_size=1, max_size=6), fmt=st.sampled_from(["row", "columnar"]))
def test_strings_round_trip(values, texts, fmt):
    n = min(len(values), len(texts))
    blobs = np.empty(n, dtype=object)
    blobs[:] = values[:n]
    words = np.empty((n, 1), dtype=object)
    words[:, 0] = [t.encode("utf-8", errors="surrogatepass") for t in texts[:n]]
    sig = SignatureSpec("serving_default", (TensorSpec("img_bytes", "DT_STRING", (-1,)),
                                            TensorSpec("text", "DT_STRING", (-1, 1))), ())
    if any("\ud800" <= ch <= "\udfff" for t in texts[:n] for ch in t):
        return  # lone surrogates are not UTF-8; JSON text cannot carry them
    got = decode(encode_request({"img_bytes": blobs, "text": words}, fmt, binary_inputs={"img_bytes"}), sig).inputs
    assert got["img_bytes"].tolist() == blobs.tolist()
    assert got["text"].tolist() == words.tolist()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
    | st.fixed_dictionaries({"b64": st.sampled_from(["AA==", "QUJD", "A", "-_", ""])}),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["features", "ids", "mask", "scale", "small", "image_bytes", "b64", "x"]), children, max_size=4),
    max_leaves=24,
)


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES, key=st.sampled_from(["instances", "inputs", None]),
       sig=st.sampled_from([NUMERIC, IMAGE, TEXT, MULTI]))
@pytest.mark.slow
def test_any_json_decodes_or_raises_codec_error_only(value, key, sig):
    body = orjson.dumps(value if key is None else {key: value})
    try:
        decoded = decode_request(body, sigs(sig))
    except CodecError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    for spec in sig.inputs:
        arr = decoded.inputs[spec.name]
        assert arr.dtype == spec.numpy_dtype and len(arr.shape) == len(spec.shape)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=64))
def test_random_bytes_never_crash_the_decoder(body):
    try:
        decode_request(body, sigs(NUMERIC))
    except CodecError:
        pass


def test_float32_range_edge():
    got = decode('{"inputs": [[3.4028235e+38, -3.4028235e+38, 1e-46, 0]]}').inputs["features"]
    assert got[0, 0] == np.finfo(np.float32).max and got[0, 1] == -np.finfo(np.float32).max and got[0, 2] == 0
    assert "Cannot convert JSON value: 3.5e+38 to float" in str(error_of('{"inputs": [[3.5e38, 0, 0, 0]]}'))
    assert decode('{"inputs": [[NaN, Infinity, 0, 0]]}').inputs["features"][0, 1] == np.inf
