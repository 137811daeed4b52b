"""Malformed predict bodies get a 4xx with a JSON error, and the server keeps serving."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tfsbench.server.testing import http_request

VALID = {
    "numeric": json.dumps({"instances": [[1.0, 2.0, 3.0, 4.0], [0.5, 0.5, 0.5, 0.5]]}).encode(),
    "text": json.dumps({"instances": [["hello world"], ["bye"]]}).encode(),
    "image": json.dumps({"instances": [{"b64": "iVBORw0KGgo="}]}).encode(),
}


def assert_clean_4xx(url: str, model: str, body: bytes) -> None:
    status, headers, data = http_request(url, "POST", f"/v1/models/{model}:predict", body)
    assert 400 <= status < 500, (status, body[:200], data[:300])
    assert headers["content-type"] == "application/json"
    doc = json.loads(data)
    assert isinstance(doc["error"], str) and doc["error"]


def assert_alive(url: str) -> None:
    status, _, data = http_request(url, "POST", "/v1/models/numeric:predict", VALID["numeric"])
    assert status == 200 and len(json.loads(data)["predictions"]) == 2


DEEP = 100_000

CASES = {
    "deep_list": b'{"instances": ' + b"[" * DEEP + b"]" * DEEP + b"}",
    "deep_object": b'{"instances": [' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"]}",
    "deep_unclosed": b"[" * DEEP,
    "huge_float": b'{"instances": [[1e400, 2, 3, 4]]}',
    "huge_int": b'{"instances": [[' + b"9" * 5000 + b', 2, 3, 4]]}',
    "float32_overflow": b'{"instances": [[3.5e38, 1e39, 3, 4]]}',
    "empty_batch": b'{"instances": []}',
    "empty_inputs": b'{"inputs": []}',
    "empty_rows": b'{"instances": [[]]}',
    "null_instances": b'{"instances": null}',
    "string_instances": b'{"instances": "abc"}',
    "number_body": b"42",
    "array_body": b"[1, 2, 3]",
    "bool_values": b'{"instances": [[true, false, true, false]]}',
    "nested_too_deep": b'{"instances": [[[[1, 2, 3, 4]]]]}',
    "mixed_types": b'{"instances": [[1, "2", null, {}]]}',
    "wrong_signature_type": b'{"signature_name": 5, "instances": [[1, 2, 3, 4]]}',
    "b64_for_float": b'{"instances": [[{"b64": "AAAA"}, 2, 3, 4]]}',
    "invalid_utf8": b'{"instances": [["\xff\xfe"]]}',
    "nul_bytes": b"\x00" * 100,
    "truncated": VALID["numeric"][:-7],
    "trailing_garbage": VALID["numeric"] + b"}}",
    "nan_tokens": b'{"instances": [[NaN, Infinity, -Infinity, 1]]}',
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_named_malformed_bodies(tfs_url, name):
    body = CASES[name]
    if name == "nan_tokens":  # TF Serving accepts the tokens: not an error, but must not crash
        status = http_request(tfs_url, "POST", "/v1/models/numeric:predict", body)[0]
        assert status == 200
    else:
        assert_clean_4xx(tfs_url, "numeric", body)
    assert_alive(tfs_url)


@pytest.mark.parametrize(
    "model, body",
    [
        ("text", b'{"instances": [[1.5]]}'),
        ("text", b'{"instances": ["not nested"]}'),
        ("text", b'{"instances": [[{"b64": "%%%"}]]}'),
        ("image", b'{"instances": [{"b64": "iVBORw0KGgo="}]}'),  # a PNG signature and nothing else
        ("image", b'{"instances": [[1, 2]]}'),
        ("image", b'{"instances": [{"b64": "' + b"A" * 4000 + b'"}]}'),
    ],
)
def test_malformed_for_string_models(tfs_url, model, body):
    assert_clean_4xx(tfs_url, model, body)
    assert_alive(tfs_url)


json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
json_value = st.recursive(
    json_leaf,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(
    model=st.sampled_from(sorted(VALID)),
    doc=st.fixed_dictionaries({}, optional={"instances": json_value, "inputs": json_value, "signature_name": json_value}),
    cut=st.integers(min_value=0, max_value=400),
    raw=st.binary(max_size=64),
    mode=st.sampled_from(["doc", "truncate", "raw"]),
)
@pytest.mark.slow
def test_fuzz_predict_never_5xx(tfs_url, model, doc, cut, raw, mode):
    if mode == "doc":
        body = json.dumps(doc).encode()
    elif mode == "truncate":
        body = VALID[model][: cut % len(VALID[model])]
    else:
        body = raw
    status, headers, data = http_request(tfs_url, "POST", f"/v1/models/{model}:predict", body)
    assert status < 500, (status, body[:200], data[:300])
    if status != 200:
        assert 400 <= status < 500
        assert isinstance(json.loads(data)["error"], str)


def test_still_alive_after_fuzzing(tfs_url):
    assert_alive(tfs_url)


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"POST /v1/models/numeric:predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /v1/models/numeric:predict HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
        b"POST /v1/models/numeric:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS ClientHello on the plain port
    ],
)
def test_broken_http_is_refused_and_server_survives(tfs_url, raw):
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(tfs_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        try:
            sock.sendall(raw)
            reply = sock.recv(200)
        except ConnectionError:
            reply = b""
    assert reply == b"" or re.match(rb"HTTP/1\.[01] 4\d\d ", reply), reply
    assert_alive(tfs_url)


def test_chunked_body_without_length_is_read_with_the_limit(tfs_server):
    import http.client
    from urllib.parse import urlsplit

    url = tfs_server(max_body_bytes=300)
    parts = urlsplit(url)

    def send_chunked(chunks):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            conn.request("POST", "/v1/models/numeric:predict", body=iter(chunks), encode_chunked=True)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    assert send_chunked([b'{"instances": ', b"[[1, 2, 3, 4]]}"])[0] == 200
    status, body = send_chunked([b'{"instances": [' + b"[1, 2, 3, 4], " * 30, b"[1, 2, 3, 4]]}"])
    assert status == 413 and "more than 300 bytes" in json.loads(body)["error"]
