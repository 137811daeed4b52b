"""Server-side batching (TF Serving's parameters) and service time."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from tfsbench.payloads.errors import InputError
from tfsbench.server.batching import QUEUE_FULL_MESSAGE
from tfsbench.server.options import BatchingOptions, parse_batching, parse_batching_file, parse_service_time
from tfsbench.server.testing import http_request

PREDICT = "/v1/models/numeric:predict"


def predict(url: str, rows: list) -> tuple[int, dict]:
    status, _, body = http_request(url, "POST", PREDICT, json.dumps({"instances": rows}).encode())
    return status, json.loads(body)


def metric(url: str, name: str) -> float:
    text = http_request(url, "GET", "/monitoring/prometheus/metrics")[2].decode()
    for line in text.splitlines():
        if line.startswith(name):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


def test_batched_results_equal_unbatched_ones(tfs_server, tfs_url):
    url = tfs_server(batching="max_batch_size=16,batch_timeout_micros=300000,num_batch_threads=1")
    inputs = [[[float(i), -1.0, 0.5 * i, 2.0]] * (1 + i % 3) for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        batched = list(pool.map(lambda rows: predict(url, rows), inputs))
    for rows, (status, doc) in zip(inputs, batched, strict=True):
        assert status == 200
        # BLAS picks kernels by matrix shape, so batched and unbatched runs may differ in the last
        # float32 digit; TF Serving's batching promises no bitwise equality either.
        expected = predict(tfs_url, rows)[1]
        assert doc.keys() == expected.keys() == {"predictions"}
        assert np.allclose(doc["predictions"], expected["predictions"], rtol=1e-6, atol=1e-7)
        assert np.asarray(doc["predictions"]).shape == np.asarray(expected["predictions"]).shape
    # 8 concurrent requests within one 300 ms window are merged into fewer model runs.
    runs = metric(url, ":tensorflow:serving:batching_session:wrapped_run_count")
    assert 1 <= runs < 8


@pytest.mark.slow
def test_full_queue_answers_503_unavailable(tfs_server):
    url = tfs_server(
        batching="max_batch_size=1,batch_timeout_micros=0,num_batch_threads=1,max_enqueued_batches=1",
        service_time="700ms",
    )
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: predict(url, [[1, 2, 3, 4]]), range(6)))
    statuses = [status for status, _ in results]
    assert statuses.count(200) >= 2  # one running, one queued (more if late arrivals find room)
    assert statuses.count(503) >= 1
    assert set(statuses) <= {200, 503}
    for status, doc in results:
        if status == 503:
            assert doc == {"error": QUEUE_FULL_MESSAGE}


def test_task_larger_than_max_batch_size_is_400(tfs_server):
    url = tfs_server(batching="max_batch_size=4")
    status, doc = predict(url, [[1, 2, 3, 4]] * 5)
    assert status == 400
    assert doc == {"error": "Task size 5 is larger than maximum input batch size 4"}
    assert predict(url, [[1, 2, 3, 4]] * 4)[0] == 200


def test_bad_input_in_a_batch_fails_only_its_own_request(tfs_server):
    url = tfs_server(batching="max_batch_size=8,batch_timeout_micros=200000")
    bodies = [[[1, 2, 3, 4]], [[1, 2, 3]], [[4, 3, 2, 1]]]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda rows: predict(url, rows), bodies))
    assert [status for status, _ in results] == [200, 400, 200]  # the codec rejects it before batching


def test_service_time_adds_latency(tfs_server):
    url = tfs_server(service_time="250ms")
    start = time.perf_counter()
    assert predict(url, [[1, 2, 3, 4]])[0] == 200
    assert time.perf_counter() - start >= 0.24


@pytest.mark.serial
def test_service_time_does_not_block_other_requests(tfs_server):
    url = tfs_server(service_time="500ms")
    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        statuses = [s for s, _ in pool.map(lambda _: predict(url, [[1, 2, 3, 4]]), range(4))]
    assert statuses == [200] * 4
    assert time.perf_counter() - start < 1.9  # 4 x 500 ms would be 2 s if they were serialised


def test_option_parsers():
    assert parse_batching("max_batch_size=32, batch_timeout_micros=2000") == BatchingOptions(32, 2000)
    assert parse_service_time("exp:5ms").distribution == "exp"
    assert parse_service_time("5ms").mean_s == pytest.approx(0.005)
    assert parse_service_time("0") is None
    for bad in ("max_batch_size=0", "max_batch=3", "max_batch_size=x", "num_batch_threads=-1"):
        with pytest.raises(InputError):
            parse_batching(bad)
    for bad in ("fast", "gauss:5ms", "-5ms", "2h"):
        with pytest.raises(InputError):
            parse_service_time(bad)


def test_batching_parameters_file(tmp_path):
    path = tmp_path / "batching.txt"
    path.write_text("# TF Serving format\nmax_batch_size { value: 64 }\nbatch_timeout_micros { value: 1000 }\n"
                    "max_enqueued_batches { value: 100 }\nnum_batch_threads { value: 2 }\n")
    assert parse_batching_file(str(path)) == BatchingOptions(64, 1000, 2, 100)
    path.write_text("max_batch_size { value: 64 }\nnonsense here\n")
    with pytest.raises(InputError, match="cannot parse 'nonsense'"):
        parse_batching_file(str(path))
    with pytest.raises(InputError, match="cannot read"):
        parse_batching_file(str(tmp_path / "missing.txt"))


def test_make_options_parses_friendly_values_and_rejects_unknown_keys():
    from tfsbench.server.options import ServiceTime, make_options

    options = make_options(faults="status=503:0.1", service_time="exp:2ms", batching={"max_batch_size": 4},
                           enable_cors=True)
    assert options.faults.statuses[0].status == 503
    assert options.service_time == ServiceTime(0.002, "exp")
    assert options.batching == BatchingOptions(max_batch_size=4)
    assert make_options(batching=True).batching == BatchingOptions()
    with pytest.raises(InputError, match="unknown server option"):
        make_options(enable_corz=True)
    with pytest.raises(InputError, match="max_body_bytes must be a positive integer"):
        make_options(max_body_bytes=0)


@pytest.mark.serial
@pytest.mark.slow
def test_num_threads_serialises_model_runs(tfs_server):
    url = tfs_server(service_time="300ms", num_threads=1)
    start = time.perf_counter()
    with ThreadPoolExecutor(3) as pool:
        statuses = [s for s, _ in pool.map(lambda _: predict(url, [[1, 2, 3, 4]]), range(3))]
    assert statuses == [200] * 3
    assert time.perf_counter() - start >= 0.85  # one at a time: 3 x 300 ms


def test_run_timeout_answers_504_deadline_exceeded(tfs_server):
    url = tfs_server(service_time="2s", timeout_ms=200)
    start = time.perf_counter()
    status, doc = predict(url, [[1, 2, 3, 4]])
    assert (status, doc) == (504, {"error": "Timed out waiting for notification"})
    assert time.perf_counter() - start < 1.9
    text = http_request(url, "GET", "/monitoring/prometheus/metrics")[2].decode()
    assert ':tensorflow:serving:request_count{model_name="numeric",status="DEADLINE_EXCEEDED"} 1' in text


def test_run_timeout_with_batching(tfs_server):
    url = tfs_server(batching="max_batch_size=4", service_time="1s", timeout_ms=100)
    assert predict(url, [[1, 2, 3, 4]])[0] == 504
