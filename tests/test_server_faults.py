"""Fault injection: the spec parser, and each fault alone (and all together) against a real server.

The injector draws from a seeded RNG in request order, so with sequential requests the expected
faults are replayed exactly with `FaultInjector` and compared one by one.
"""

from __future__ import annotations

import http.client
import json
import time

import pytest
from tfsbench.payloads.errors import InputError
from tfsbench.server.faults import FaultInjector, FaultPlan, StallFault, StatusFault, parse_faults
from tfsbench.server.testing import http_request

BODY = json.dumps({"instances": [[1.0, 2.0, 3.0, 4.0]]}).encode()
PREDICT = "/v1/models/numeric:predict"


def expected_kinds(spec: str, n: int) -> list:
    injector = FaultInjector(parse_faults(spec), 0.0)
    return [injector.decide() for _ in range(n)]


def predict_raw(url: str):
    """(status, body, error): error is the exception name when the connection broke."""
    try:
        status, headers, body = http_request(url, "POST", PREDICT, BODY)
        return status, headers, body, None
    except (ConnectionError, http.client.HTTPException) as exc:
        return None, {}, b"", type(exc).__name__


# ------------------------------------------------------------------------------------------ parser


def test_parse_full_spec_and_describe_round_trip():
    plan = parse_faults("status=503:5%,status=429:0.02,delay=exp:20ms:0.1,stall=1s/10s,reset=0.01,"
                        "truncate=0.01,nonjson=1%,trickle=200ms:0.01,seed=7")
    assert plan.statuses == (StatusFault(503, 0.05), StatusFault(429, 0.02))
    assert plan.delays[0].distribution == "exp" and plan.delays[0].delay_s == pytest.approx(0.02)
    assert plan.stall == StallFault(1.0, 10.0)
    assert plan.reset == plan.truncate == plan.nonjson == 0.01
    assert plan.trickle.duration_s == pytest.approx(0.2)
    assert plan.seed == 7 and plan.active
    assert parse_faults(plan.describe()) == plan


@pytest.mark.parametrize("spec", ["", "none", "off"])
def test_empty_specs_inject_nothing(spec):
    assert parse_faults(spec) == FaultPlan() and not FaultPlan().active


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("status=abc:0.1", "is not an integer"),
        ("status=200:0.1", "400-599"),
        ("status=503:1.5", "outside [0, 1]"),
        ("status=503:x", "is not a fraction"),
        ("delay=fast:0.1", "is not a duration"),
        ("delay=10ms:0.1:3", "delay=[exp:]DURATION:FRACTION"),
        ("stall=1s", "stall=DURATION/PERIOD"),
        ("stall=5s/1s", "0 < DURATION < PERIOD"),
        ("reset", "KIND=VALUE"),
        ("explode=0.1", "unknown fault kind 'explode'"),
        ("status=503:0.6,reset=0.6", "sum to 1.2 > 1"),
        ("seed=x", "seed must be an integer"),
        ("trickle=0s:0.1", "trickle duration"),
    ],
)
def test_bad_specs_raise_input_error(spec, fragment):
    with pytest.raises(InputError) as info:
        parse_faults(spec)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_injector_is_deterministic_and_close_to_fractions():
    spec = "status=503:0.2,reset=0.1,delay=5ms:0.3,seed=11"
    first = expected_kinds(spec, 2000)
    assert first == expected_kinds(spec, 2000)
    kinds = [d.kind for d in first]
    assert 0.17 < kinds.count("status") / 2000 < 0.23
    assert 0.08 < kinds.count("reset") / 2000 < 0.12
    assert 0.26 < sum(1 for d in first if d.delay_s) / 2000 < 0.34


def test_stall_windows_end_each_period():
    injector = FaultInjector(parse_faults("stall=1s/4s"), start_s=100.0)
    assert injector.stall_remaining_s(100.0) == 0
    assert injector.stall_remaining_s(102.9) == 0
    assert injector.stall_remaining_s(103.25) == pytest.approx(0.75)
    assert injector.stall_remaining_s(107.5) == pytest.approx(0.5)


# ------------------------------------------------------------------------------ each fault alone


def test_status_faults_match_the_seeded_plan_and_metrics(tfs_server):
    spec = "status=503:0.25,status=429:0.1,status=500:0.05,seed=3"
    url = tfs_server(faults=spec)
    n = 120
    plan = expected_kinds(spec, n)
    seen = []
    for want in plan:
        status, headers, body, _ = predict_raw(url)
        seen.append(status)
        if want.kind == "status":
            assert status == want.status
            assert headers["content-type"] == "application/json"
            assert "Injected fault" in json.loads(body)["error"]
        else:
            assert status == 200
    assert 15 <= seen.count(503) <= 50  # 30 expected
    metrics = http_request(url, "GET", "/monitoring/prometheus/metrics")[2].decode()
    for code, name in ((503, "UNAVAILABLE"), (429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL")):
        line = f':tensorflow:serving:request_count{{model_name="numeric",status="{name}"}} {seen.count(code)}'
        assert line in metrics
    # Status and metadata are never faulted, so preflight keeps working.
    for _ in range(10):
        assert http_request(url, "GET", "/v1/models/numeric/metadata")[0] == 200


@pytest.mark.slow
def test_delay_fault_delays_exactly_the_chosen_requests(tfs_server):
    spec = "delay=150ms:0.3,seed=5"
    url = tfs_server(faults=spec)
    plan = expected_kinds(spec, 20)
    assert any(d.delay_s for d in plan) and not all(d.delay_s for d in plan)
    for want in plan:
        start = time.perf_counter()
        status, *_ = predict_raw(url)
        elapsed = time.perf_counter() - start
        assert status == 200
        if want.delay_s:
            assert elapsed >= 0.14


def test_exponential_delays_are_drawn_per_request():
    draws = [d.delay_s for d in expected_kinds("delay=exp:20ms:1.0,seed=2", 4000)]
    assert len(set(draws)) > 3900
    assert 0.018 < sum(draws) / len(draws) < 0.022


@pytest.mark.slow
def test_stall_pauses_the_whole_server(tfs_server):
    url = tfs_server(faults="stall=600ms/1s")
    latencies = []
    deadline = time.monotonic() + 1.6
    while time.monotonic() < deadline:
        start = time.perf_counter()
        # During a stall even the status endpoint waits.
        assert http_request(url, "GET", "/v1/models/numeric")[0] == 200
        latencies.append(time.perf_counter() - start)
    assert max(latencies) >= 0.3
    assert min(latencies) < 0.3  # and outside stalls it answers at once


def test_reset_breaks_the_connection_mid_response(tfs_server, tfs_url):
    url = tfs_server(faults="reset=1.0")
    for _ in range(3):
        status, _, body, error = predict_raw(url)
        assert error in ("IncompleteRead", "ConnectionResetError", "RemoteDisconnected"), (status, body, error)
    # The server keeps serving what is not faulted.
    assert http_request(url, "GET", "/v1/models/numeric")[0] == 200


def test_truncate_and_nonjson_give_200_with_bad_bodies(tfs_server, tfs_url):
    good = http_request(tfs_url, "POST", PREDICT, BODY)[2]
    url = tfs_server(faults="truncate=1.0")
    status, headers, body, _ = predict_raw(url)
    assert status == 200 and headers["content-type"] == "application/json"
    assert good.startswith(body) and len(body) < len(good)
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    url = tfs_server(faults="nonjson=1.0")
    status, headers, body, _ = predict_raw(url)
    assert status == 200 and headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)


def test_trickle_sends_the_right_body_slowly(tfs_server, tfs_url):
    good = http_request(tfs_url, "POST", PREDICT, BODY)[2]
    url = tfs_server(faults="trickle=400ms:1.0")
    start = time.perf_counter()
    status, _, body, _ = predict_raw(url)
    assert status == 200 and body == good
    assert time.perf_counter() - start >= 0.35


@pytest.mark.slow
def test_all_faults_together_server_survives_and_every_request_is_classified(tfs_server):
    spec = "status=503:0.1,status=429:0.05,delay=exp:5ms:0.2,reset=0.05,truncate=0.05,nonjson=0.05,trickle=20ms:0.05,seed=9"
    url = tfs_server(faults=spec)
    plan = expected_kinds(spec, 150)
    for want in plan:
        status, headers, body, error = predict_raw(url)
        if want.kind == "status":
            assert status == want.status
        elif want.kind == "reset":
            assert error is not None
        elif want.kind in ("truncate", "nonjson"):
            assert status == 200
            with pytest.raises(json.JSONDecodeError):
                json.loads(body)
        else:
            assert status == 200 and "predictions" in json.loads(body)
    assert http_request(url, "GET", "/v1/models/numeric")[0] == 200
