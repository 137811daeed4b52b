"""tfsbench.bench.measure.server_metrics: Prometheus parsing, histogram deltas, the server view of a run (unit + live target)."""

from __future__ import annotations

import dataclasses
import json
import math
import time
import urllib.request
from collections.abc import Callable

import pytest
from tfsbench.bench.measure import server_metrics as sm
from tfsbench.bench.results import RunResult

from tests.test_check_gates import make_run

PAGE_BEFORE = """# TYPE :tensorflow:serving:request_count counter
:tensorflow:serving:request_count{model_name="numeric",status="OK"} 10
:tensorflow:serving:request_count{model_name="other",status="OK"} 99
# TYPE :tensorflow:serving:request_latency histogram
:tensorflow:serving:request_latency_bucket{model_name="numeric",API="predict",entrypoint="REST",le="1000"} 5
:tensorflow:serving:request_latency_bucket{model_name="numeric",API="predict",entrypoint="REST",le="2000"} 10
:tensorflow:serving:request_latency_bucket{model_name="numeric",API="predict",entrypoint="REST",le="+Inf"} 10
:tensorflow:serving:request_latency_sum{model_name="numeric",API="predict",entrypoint="REST"} 12000
:tensorflow:serving:request_latency_count{model_name="numeric",API="predict",entrypoint="REST"} 10
"""

PAGE_AFTER = """# HELP :tensorflow:serving:request_count The total number of requests.
# TYPE :tensorflow:serving:request_count counter
:tensorflow:serving:request_count{model_name="numeric",status="OK"} 110
:tensorflow:serving:request_count{model_name="numeric",status="INVALID_ARGUMENT"} 4
:tensorflow:serving:request_count{model_name="other",status="OK"} 500
# TYPE :tensorflow:serving:request_latency histogram
:tensorflow:serving:request_latency_bucket{model_name="numeric",API="predict",entrypoint="REST",le="1000"} 5
:tensorflow:serving:request_latency_bucket{model_name="numeric",API="predict",entrypoint="REST",le="2000"} 60
:tensorflow:serving:request_latency_bucket{model_name="numeric",API="predict",entrypoint="REST",le="+Inf"} 110
:tensorflow:serving:request_latency_sum{model_name="numeric",API="predict",entrypoint="REST"} 262000
:tensorflow:serving:request_latency_count{model_name="numeric",API="predict",entrypoint="REST"} 110
:tensorflow:serving:request_latency_bucket{model_name="numeric",API="Predict",entrypoint="GRPC",le="+Inf"} 1000
:tensorflow:serving:request_latency_count{model_name="numeric",API="Predict",entrypoint="GRPC"} 1000
# TYPE :tensorflow:serving:batching_session:queuing_latency histogram
:tensorflow:serving:batching_session:queuing_latency_bucket{thread_pool_name="batch_threads",le="100"} 40
:tensorflow:serving:batching_session:queuing_latency_bucket{thread_pool_name="batch_threads",le="200"} 100
:tensorflow:serving:batching_session:queuing_latency_bucket{thread_pool_name="batch_threads",le="+Inf"} 100
:tensorflow:serving:batching_session:queuing_latency_sum{thread_pool_name="batch_threads"} 12000
:tensorflow:serving:batching_session:queuing_latency_count{thread_pool_name="batch_threads"} 100
"""


def scrape_of(text: str, at_s: float) -> sm.Scrape:
    return sm.Scrape("http://t/monitoring/prometheus/metrics", at_s, tuple(sm.parse_text(text)))


def test_parse_text_reads_labels_values_and_escapes() -> None:
    samples = sm.parse_text(
        '# HELP x y\nm{a="1",b="q\\"uote\\\\n"} 2.5 1700000000\nplain 3\nbig{le="+Inf"} +Inf\nn NaN\n\n'
    )
    assert samples[0].name == "m" and samples[0].label("b") == 'q"uote\\n' and samples[0].value == 2.5
    assert samples[1].labels == () and samples[1].value == 3.0
    assert samples[2].label("le") == "+Inf" and math.isinf(samples[2].value)
    assert math.isnan(samples[3].value)


@pytest.mark.parametrize("bad", ["m{a=1} 2", "m 2x", "{} 3", 'm{a="1" 2'])
def test_parse_text_rejects_garbage(bad: str) -> None:
    with pytest.raises(sm.MetricsError):
        sm.parse_text(bad)


def test_quantile_interpolates_like_histogram_quantile() -> None:
    h = sm.Histogram(((10.0, 0.0), (20.0, 50.0), (40.0, 100.0), (math.inf, 100.0)), 2500.0, 100.0)
    assert sm.quantile(h, 0.5) == pytest.approx(20.0)
    assert sm.quantile(h, 0.25) == pytest.approx(15.0)
    assert sm.quantile(h, 0.75) == pytest.approx(30.0)
    overflow = sm.Histogram(((10.0, 0.0), (math.inf, 5.0)), 100.0, 5.0)
    assert sm.quantile(overflow, 0.99) == pytest.approx(10.0)  # +Inf bucket: highest finite bound
    assert sm.quantile(sm.Histogram(((math.inf, 0.0),), 0.0, 0.0), 0.5) is None


def test_server_view_subtracts_before_from_after() -> None:
    view = sm.server_view(scrape_of(PAGE_BEFORE, 1.0), scrape_of(PAGE_AFTER, 3.5), "numeric")
    assert view["found"] is True and view["error"] is None
    assert view["requests"] == 100  # REST predict only; the GRPC series is not ours
    assert view["window_s"] == pytest.approx(2.5)
    lat = view["latency_ms"]
    assert lat["mean"] == pytest.approx((262000 - 12000) / 100 / 1000)
    # delta buckets: le=1000: 0, le=2000: 50, +Inf: 100 -> the median is at the 2000 us bound
    assert lat["p50"] == pytest.approx(2.0)
    assert lat["p99"] == pytest.approx(2.0)  # beyond the last finite bound: Prometheus reports that bound
    assert view["request_count_by_status"] == {"INVALID_ARGUMENT": 4, "OK": 100}
    queue = view["batching_queuing_latency_ms"]
    assert queue["mean"] == pytest.approx(0.12) and queue["p50"] == pytest.approx(0.1 + 0.1 * (10 / 60), abs=1e-3)
    # only the buckets that carry information are stored: last empty one, the data, +Inf
    assert view["latency_buckets_us"] == [[1000.0, 0], [2000.0, 50], ["+Inf", 100]]
    json.dumps(view, allow_nan=False)  # it must fit in a result file


def test_counter_reset_is_reported_not_subtracted() -> None:
    view = sm.server_view(scrape_of(PAGE_AFTER, 0.0), scrape_of(PAGE_BEFORE, 1.0), "numeric")
    assert view["found"] is False and "restarted" in view["error"]


def test_missing_metric_and_unknown_model_say_why() -> None:
    empty = scrape_of("# nothing here\n", 0.0)
    view = sm.server_view(empty, empty, "numeric")
    assert view["found"] is False and "no :tensorflow:serving:request_latency metric" in view["error"]
    view = sm.server_view(scrape_of(PAGE_BEFORE, 0), scrape_of(PAGE_AFTER, 1), "nope")
    assert view["found"] is False and "no series for model 'nope'" in view["error"]
    failed = sm.Scrape("http://t/m", 0.0, None, "cannot scrape http://t/m (refused)")
    assert sm.server_view(failed, failed, "numeric")["error"] == "cannot scrape http://t/m (refused)"


def test_attach_server_view_round_trips_through_the_result_file(tmp_path) -> None:
    from tfsbench.bench.results import load_result, save_result

    run = sm.attach_server_view(make_run(n=200), scrape_of(PAGE_BEFORE, 0.0), scrape_of(PAGE_AFTER, 2.0))
    save_result(run, tmp_path / "r.json")
    back = load_result(tmp_path / "r.json")
    assert back.server is not None and back.server["requests"] == 100
    from tfsbench.bench.results import SCHEMA_VERSION

    assert json.loads((tmp_path / "r.json").read_text())["schema_version"] == SCHEMA_VERSION


def test_scrape_of_unreachable_or_non_metrics_url_records_the_error(tfs_url: str) -> None:
    refused = sm.scrape("http://127.0.0.1:9/monitoring/prometheus/metrics", timeout_s=2)
    assert refused.samples is None and "cannot scrape" in refused.error
    wrong = sm.scrape(tfs_url + "/monitoring/nothing-here", timeout_s=5)
    assert wrong.samples is None and "HTTP 404" in wrong.error and "--monitoring_config_file" in wrong.error


def _predict(url: str, n: int) -> list[float]:
    body = json.dumps({"instances": [[0.1, 0.2, 0.3, 0.4]] * 4}).encode()
    client_ms = []
    for _ in range(n):
        req = urllib.request.Request(
            url + "/v1/models/numeric:predict", data=body, headers={"Content-Type": "application/json"}
        )
        start = time.perf_counter()
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
            assert resp.status == 200
        client_ms.append((time.perf_counter() - start) * 1000)
    return client_ms


def test_measure_against_the_embedded_target(tfs_server: Callable[..., str]) -> None:
    url = tfs_server(service_time="2ms")
    view = sm.measure(url, "numeric")
    view.begin()
    client_ms = _predict(url, 40)
    bad = urllib.request.Request(
        url + "/v1/models/numeric:predict", data=b'{"instances": [[1, 2]]}', headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(bad, timeout=10)
    view.end()
    result: RunResult = view.attach(make_run(n=40))
    server = result.server
    assert server is not None and server["found"] is True, server
    assert server["requests"] == 40
    assert server["request_count_by_status"].get("OK") == 40
    assert sum(v for k, v in server["request_count_by_status"].items() if k != "OK") == 1
    lat = server["latency_ms"]
    # the 2 ms service time is inside the server's measurement; the client's adds HTTP on top
    assert 1.5 <= lat["p50"] <= sorted(client_ms)[len(client_ms) // 2] * 1.8 + 1.0
    assert lat["mean"] <= sum(client_ms) / len(client_ms) + 0.5


def test_queuing_latency_appears_when_batching_is_on(tfs_server: Callable[..., str]) -> None:
    url = tfs_server(batching="max_batch_size=8,batch_timeout_micros=1000")
    view = sm.measure(url, "numeric")
    view.begin()
    _predict(url, 10)
    view.end()
    server = view.view()
    assert server is not None and server["found"]
    queue = server["batching_queuing_latency_ms"]
    assert queue is not None and queue["mean"] >= 0.0


def test_window_scrapes_at_the_measured_window_and_after(tfs_url: str) -> None:
    """The runner's hook: the before-scrape waits for the engines' start plus warmup."""
    run = make_run(n=50)
    config = dataclasses.replace(run.config, url=tfs_url, warmup_s=0.2)
    started: list[float] = []
    win = sm.window(config, lambda: started[0] if started else None)
    _predict(tfs_url, 3)  # before the engines "start": not part of the window
    started.append(time.perf_counter())
    win._thread.join(10)  # the before-scrape happens once start + warmup has passed
    assert win.measure.before is not None and win.measure.before.at_s >= started[0] + 0.2
    _predict(tfs_url, 7)
    result = win.attach(dataclasses.replace(run, config=config))
    assert result.server is not None and result.server["requests"] == 7


def test_window_off_and_never_started_leave_the_result_alone() -> None:
    run = make_run(n=50)
    off = sm.window(dataclasses.replace(run.config, extra={"server_metrics": "off"}), lambda: 0.0)
    assert off.attach(run).server is None
    never = sm.window(run.config, lambda: None)
    assert never.attach(run).server is None


@pytest.mark.slow
def test_tfsbench_run_records_the_server_view(tfs_server: Callable[..., str], tmp_path) -> None:
    import subprocess
    import sys

    from tfsbench.bench.results import load_result

    url = tfs_server(service_time="1ms")
    out = tmp_path / "run.json"
    r = subprocess.run(
        [sys.executable, "-m", "tfsbench", "run", "--url", url, "--model", "numeric", "--kind", "numeric",
         "--concurrency", "2", "--duration", "1s", "--warmup", "0.5s", "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    result = load_result(out)
    server = result.server
    assert server is not None and server["found"], server
    # requests in flight at either edge of the window may land on the other side: at most 2 x concurrency
    assert abs(server["requests"] - result.summary.ok) <= 4
    assert server["latency_ms"]["mean"] >= 1.0  # the 1 ms service time is inside the server's clock
    assert server["latency_ms"]["mean"] <= result.summary.latency_ms.mean + 0.5


def test_optional_per_window_scrapes(tfs_url: str) -> None:
    run = make_run(n=50)
    config = dataclasses.replace(run.config, url=tfs_url, warmup_s=0.0, extra={"server_metrics_window_s": 0.2})
    win = sm.window(config, time.perf_counter)
    deadline = time.monotonic() + 30
    while len(win.scrapes) < 2 and time.monotonic() < deadline:
        _predict(tfs_url, 2)
    result = win.attach(dataclasses.replace(run, config=config))
    windows = result.server["windows"]
    assert len(windows) >= 3
    assert sum(w["requests"] for w in windows) == result.server["requests"]
    assert [w["t_s"] for w in windows] == sorted(w["t_s"] for w in windows)


# As tensorflow/serving 2.x writes it (prometheus_exporter.cc): TYPE lines without HELP, counters
# without `_total`, `{}` for a series without labels, bounds printed with 6 significant digits.
TF_SERVING_PAGE = """# TYPE :tensorflow:serving:batching_session:wrapped_run_count counter
:tensorflow:serving:batching_session:wrapped_run_count{} 7
# TYPE :tensorflow:serving:request_count counter
:tensorflow:serving:request_count{model_name="resnet",status="OK"} 12
# TYPE :tensorflow:serving:request_latency histogram
:tensorflow:serving:request_latency_bucket{model_name="resnet",API="predict",entrypoint="REST",le="10"} 0
:tensorflow:serving:request_latency_bucket{model_name="resnet",API="predict",entrypoint="REST",le="1.42839e+06"} 12
:tensorflow:serving:request_latency_bucket{model_name="resnet",API="predict",entrypoint="REST",le="+Inf"} 12
:tensorflow:serving:request_latency_sum{model_name="resnet",API="predict",entrypoint="REST"} 3.5e+06
:tensorflow:serving:request_latency_count{model_name="resnet",API="predict",entrypoint="REST"} 12
"""


def test_parse_text_reads_tf_servings_own_page_with_prometheus_client() -> None:
    samples = sm.parse_text(TF_SERVING_PAGE)
    by_name = {(s.name, s.labels): s.value for s in samples}
    assert by_name[(":tensorflow:serving:batching_session:wrapped_run_count", ())] == 7
    assert by_name[(sm.REQUEST_COUNT, (("model_name", "resnet"), ("status", "OK")))] == 12
    hist = sm.histogram(samples, sm.REQUEST_LATENCY, {"model_name": "resnet"})
    assert hist is not None and hist.count == 12 and hist.buckets[1] == (1.42839e06, 12)
