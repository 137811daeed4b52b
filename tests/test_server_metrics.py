"""Prometheus metrics with TF Serving's names, labels and buckets, and counts that follow traffic."""

from __future__ import annotations

import json
import re

import pytest
from tfsbench.server.metrics import QUEUING_LATENCY_BOUNDS_US, REQUEST_LATENCY_BOUNDS_US
from tfsbench.server.testing import http_request

PATH = "/monitoring/prometheus/metrics"
LINE_RE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse the exposition text strictly: every non-comment line must be `name{labels} value`."""
    status, headers, body = http_request(url, "GET", PATH)
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    samples = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            assert not line or re.match(r"^# (TYPE \S+ (counter|histogram|gauge|untyped)|HELP \S+ .*)$", line), line
            continue
        match = LINE_RE.match(line)
        assert match, f"unparsable metrics line: {line!r}"
        labels = tuple(LABEL_RE.findall(match.group("labels") or ""))
        samples[(match.group("name"), labels)] = float(match.group("value"))
    return samples


def predict(url: str, model: str, body: dict) -> int:
    return http_request(url, "POST", f"/v1/models/{model}:predict", json.dumps(body).encode())[0]


def test_bucket_bounds_are_tf_servings():
    assert len(REQUEST_LATENCY_BOUNDS_US) == 33
    assert REQUEST_LATENCY_BOUNDS_US[0] == 10 and REQUEST_LATENCY_BOUNDS_US[1] == pytest.approx(18)
    assert REQUEST_LATENCY_BOUNDS_US[-1] == pytest.approx(10 * 1.8**32)
    assert len(QUEUING_LATENCY_BOUNDS_US) == 52 and QUEUING_LATENCY_BOUNDS_US[0] == 100


def test_counts_and_latency_histogram_follow_requests(tfs_server):
    url = tfs_server()
    for _ in range(5):
        assert predict(url, "numeric", {"instances": [[1, 2, 3, 4]]}) == 200
    assert predict(url, "numeric", {"instances": [[1, 2]]}) == 400
    assert predict(url, "ghost", {"instances": [[1, 2, 3, 4]]}) == 404
    samples = scrape(url)
    count = ":tensorflow:serving:request_count"
    assert samples[(count, (("model_name", "numeric"), ("status", "OK")))] == 5
    assert samples[(count, (("model_name", "numeric"), ("status", "INVALID_ARGUMENT")))] == 1
    # Names of models that are not loaded share one bounded label value (issue 13 section 3).
    assert samples[(count, (("model_name", "(unknown)"), ("status", "NOT_FOUND")))] == 1
    assert not any(("model_name", "ghost") in lab for _, lab in samples)

    labels = (("API", "predict"), ("entrypoint", "REST"), ("model_name", "numeric"))  # sorted by prometheus_client
    hist = ":tensorflow:serving:request_latency"
    # REST records latency only for successful requests.
    assert samples[(hist + "_count", labels)] == 5
    assert samples[(hist + "_sum", labels)] > 0
    buckets = [(labels_, v) for (name, labels_), v in samples.items()
               if name == hist + "_bucket" and tuple(x for x in labels_ if x[0] != "le") == labels]
    assert len(buckets) == 34  # 33 finite bounds + "+Inf"
    values = [v for _, v in buckets]
    assert values == sorted(values), "buckets must be cumulative"
    les = [dict(lab)["le"] for lab, _ in buckets]
    assert les[-1] == "+Inf" and values[-1] == 5
    assert les[:2] == ["10", "18"]  # TF's bound text (6 significant digits)
    assert not any(name == hist + "_count" and ("model_name", "(unknown)") in lab for name, lab in samples)


def test_counts_increase_between_scrapes(tfs_server):
    url = tfs_server()
    predict(url, "text", {"instances": [["hi"]]})
    key = (":tensorflow:serving:request_count", (("model_name", "text"), ("status", "OK")))
    before = scrape(url)[key]
    for _ in range(3):
        predict(url, "text", {"instances": [["hello"], ["there"]]})
    assert scrape(url)[key] == before + 3


def test_label_values_are_escaped(tfs_server):
    from tfsbench.server.models import NumericModel
    from tfsbench.server.registry import ModelRegistry

    url = tfs_server(registry=ModelRegistry({'a"b\\c\nd': {1: NumericModel(1)}}))
    status, _, _ = http_request(url, "POST", '/v1/models/a%22b%5Cc%0Ad:predict', b'{"instances":[[1,2,3,4]]}')
    assert status == 200
    body = http_request(url, "GET", PATH)[2].decode()
    assert 'model_name="a\\"b\\\\c\\nd",status="OK"' in body
    scrape(url)  # still parses


def test_queuing_latency_only_with_batching(tfs_server):
    plain = tfs_server()
    predict(plain, "numeric", {"instances": [[1, 2, 3, 4]]})
    assert not any(name.startswith(":tensorflow:serving:batching_session") for name, _ in scrape(plain))
    batched = tfs_server(batching="max_batch_size=8,batch_timeout_micros=1000")
    for _ in range(3):
        assert predict(batched, "numeric", {"instances": [[1, 2, 3, 4]]}) == 200
    samples = scrape(batched)
    key = (":tensorflow:serving:batching_session:queuing_latency_count", (("thread_pool_name", "batch_threads"),))
    assert samples[key] == 3
