"""Pure helpers of the Locust integration (no locust/gevent import in this module)."""

from __future__ import annotations

import json

import orjson
import pytest
from helpers import cli, run_tfsbench
from tfsbench.bench.measure import hist
from tfsbench.bench.results import RunResult
from tfsbench.locustfiles import config, export, gates, outcome
from tfsbench.locustfiles.metrics import PayloadMetrics, read_payload_csv, rows_to_csv
from tfsbench.locustfiles.shape_plans import KneePlan, SpikePlan, StepPlan
from tfsbench.payloads.errors import InputError


def test_user_config_parses_text_values_as_the_web_ui_sends_them():
    cfg = config.user_config(
        {"model": "numeric", "kind": "NUMERIC", "batch_size": "8", "format": "columnar", "image_size": "64x32",
         "text_words": "2-5", "model_label": "stable", "request_timeout": "2.5", "pool_size": "3"}
    )
    assert (cfg.kind, cfg.batch_size, cfg.format, cfg.image_size, cfg.text_words) == (
        "numeric", 8, "columnar", (64, 32), (2, 5))
    assert cfg.predict_path() == "/v1/models/numeric/labels/stable:predict"
    assert cfg.timeout_s == 2.5 and cfg.pool_size == 3
    assert config.user_config({"model": "m", "model_version": "2"}).predict_path() == "/v1/models/m/versions/2:predict"


@pytest.mark.parametrize(
    ("opts", "flag"),
    [
        ({"model": ""}, "--model"),
        ({"model": "a/b"}, "--model"),
        ({"model": "m", "kind": "video"}, "--kind"),
        ({"model": "m", "batch_size": "0"}, "--batch-size"),
        ({"model": "m", "batch_size": "-3"}, "--batch-size"),
        ({"model": "m", "batch_size": "two"}, "--batch-size"),
        ({"model": "m", "batch_size": 2.5}, "--batch-size"),
        ({"model": "m", "format": "tabular"}, "--format"),
        ({"model": "m", "image_size": "big"}, "--image-size"),
        ({"model": "m", "text_words": "9-3"}, "--text-words"),
        ({"model": "m", "model_version": "x"}, "--model-version"),
        ({"model": "m", "model_version": "1", "model_label": "stable"}, "--model-version"),
        ({"model": "m", "request_timeout": "0"}, "--request-timeout"),
        ({"model": "m", "pool_size": "0"}, "--pool-size"),
    ],
)
def test_bad_user_options_name_the_flag(opts, flag):
    with pytest.raises(InputError) as err:
        config.user_config(opts)
    assert str(err.value).startswith(flag)
    assert "\n" not in str(err.value)


def test_check_host():
    assert config.check_host("http://127.0.0.1:8501/") == "http://127.0.0.1:8501"
    for bad in ("", "127.0.0.1:8501", "ftp://x", "http://host:99999"):
        with pytest.raises(InputError, match="--host"):
            config.check_host(bad)


def test_gates_parse_and_evaluate():
    g = config.gates({"slo_p99_ms": "50", "max_fail_ratio": "0.01", "min_rps": "100"})
    assert gates.evaluate(g, requests=1000, failures=5, p99_ms=40.0, rps=150.0) == []
    failed = gates.evaluate(g, requests=1000, failures=50, p99_ms=60.0, rps=90.0)
    assert [line.split(":")[0] for line in failed] == ["--slo-p99-ms 50", "--max-fail-ratio 0.01", "--min-rps 100"]
    assert "p99 was 60 ms" in failed[0]
    assert not config.gates({}).any
    with pytest.raises(InputError, match="--max-fail-ratio"):
        config.gates({"max_fail_ratio": "2"})


def test_check_response_classifies_like_the_engines():
    ok = orjson.dumps({"predictions": [[0.1, 0.2, 0.7]] * 4})
    assert outcome.check_response(200, ok, 4) is None
    assert outcome.check_response(200, ok, 8).startswith("batch_mismatch: status 200 but response has 4 items")
    assert outcome.check_response(200, b"<html>oops</html>", 1).startswith("invalid_json: status 200 but not JSON")
    assert outcome.check_response(200, b'{"predictions": [1, 2', 2).startswith("invalid_json")
    assert outcome.check_response(200, b'{"foo": 1}', 1).startswith("invalid_response")
    assert outcome.check_response(200, b"", 1).startswith("invalid_json")
    assert outcome.check_response(503, b'{"error": "overloaded"}', 1) == 'http_503: {"error": "overloaded"}'
    assert outcome.check_response(500, b"", 1) == "http_500"
    assert outcome.check_response(200, orjson.dumps({"outputs": {"scores": [[1, 2]] * 3}}), 3) is None


def test_classify_exception_and_error_class():
    assert outcome.classify_exception(ConnectionRefusedError(111, "Connection refused")).startswith("refused")
    assert outcome.classify_exception(ConnectionResetError(104, "reset")).startswith("reset: ")
    assert outcome.classify_exception(TimeoutError("timed out"), 2.0) == "timeout: no complete response within 2 s"

    class HTTPConnectionClosed(Exception):  # the name geventhttpclient uses
        pass

    assert outcome.classify_exception(HTTPConnectionClosed("closed")).startswith("reset")
    for message, cls in [
        ("http_503: overloaded", "http_503"),
        ("CatchResponseError('timeout: slow')", "timeout"),
        ("batch_mismatch: status 200 but x", "batch_mismatch"),
        ("reset", "reset"),
        ("something else", "other"),
        ("resetting: x", "other"),
    ]:
        assert outcome.error_class(message) == cls


def test_metrics_merge_equals_single_recorder():
    one, w1, w2 = PayloadMetrics(), PayloadMetrics(), PayloadMetrics()
    for i in range(100):
        args = ("numeric b=4 row", 4, 300 + i % 3, 64, 50, 1.0 + i / 10, i % 10 != 0, 1000.0 + i / 10)
        one.record(*args)
        (w1 if i % 2 else w2).record(*args)
    master = PayloadMetrics()
    master.merge_delta(json.loads(json.dumps(w1.take_delta())))  # plain data, as Locust messages carry it
    master.merge_delta(json.loads(json.dumps(w2.take_delta())))
    assert w1.totals == {}  # a delta resets the worker
    assert master.totals == one.totals
    assert master.histogram().get_total_count() == one.histogram().get_total_count() == 90
    (row,) = master.rows(elapsed_s=10.0)
    assert (row.requests, row.ok, row.failures, row.instances) == (100, 90, 10, 360)
    assert row.request_bytes == pytest.approx(sum(300 + i % 3 for i in range(100)) / 100)
    assert row.overhead_ratio == pytest.approx(row.request_bytes / 64)
    assert row.instances_per_s == pytest.approx(90 / 10.0 * 4)
    parsed = read_payload_csv(rows_to_csv(master.rows(10.0)))
    assert parsed["numeric b=4 row"]["Instances/s"] == pytest.approx(36.0)


def test_step_and_spike_plans():
    step = StepPlan(users_per_step=5, step_s=10, steps=3)
    assert [step.tick(t) for t in (0, 9.9, 10, 25, 30)] == [(5, 5.0), (5, 5.0), (10, 5.0), (15, 5.0), None]
    spike = SpikePlan(base_users=2, spike_users=20, calm_s=5, spike_s=3)
    assert [spike.tick(t)[0] if spike.tick(t) else None for t in (0, 5, 7.9, 8, 12.9, 13)] == [2, 20, 20, 2, 2, None]


def test_knee_plan_stops_at_first_step_over_bound():
    plan = KneePlan(users_per_step=4, step_s=10, max_steps=10, p99_bound_ms=50)
    assert plan.tick(0, None) == (4, 4.0)
    assert plan.tick(10.1, 20.0) == (8, 4.0)  # step 1 (4 users) had p99 20 ms
    assert plan.tick(20.1, 45.0) == (12, 4.0)
    assert plan.tick(30.1, 80.0) is None  # step 3 (12 users) broke the bound
    assert plan.knee_users == 12
    assert "12 users" in plan.verdict() and "8 users" in plan.verdict()
    assert plan.tick(31, 10.0) is None
    broken = KneePlan(users_per_step=1, step_s=5, max_steps=3, p99_bound_ms=50)
    assert broken.tick(0, None) == (1, 1.0)
    assert broken.tick(5, None) is None  # no success at all in the first step: over the bound
    assert "no successful request" in broken.verdict()
    easy = KneePlan(users_per_step=1, step_s=5, max_steps=2, p99_bound_ms=50)
    assert [easy.tick(t, 1.0) for t in (0, 5, 10)] == [(1, 1.0), (2, 1.0), None]
    assert easy.knee_users is None and "not reached" in easy.verdict()


def test_percentile_since_mark_covers_only_new_successes():
    m = PayloadMetrics()
    for _ in range(100):
        m.record("n", 1, 10, 5, 5, 2.0, True, 1.0)
    mark = m.histogram()
    assert m.percentile_since(mark, 99.0) is None
    for _ in range(100):
        m.record("n", 1, 10, 5, 5, 80.0, True, 2.0)
    assert m.percentile_since(mark, 50.0) == pytest.approx(80.0, rel=0.01)
    assert m.percentile_since(None, 25.0) == pytest.approx(2.0, rel=0.01)


STATS_CSV = """Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
POST,numeric b=8 columnar,1000,30,4,5.5,1.2,120,300,100.0,3.0,4,5,6,6,9,12,20,40,110,120,120
,Aggregated,1000,30,4,5.5,1.2,120,300,100.0,3.0,4,5,6,6,9,12,20,40,110,120,120
"""
HISTORY_CSV = """Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size
1700000000,4,,Aggregated,0,0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,0,0,0,0,0,0,0
1700000001,4,,Aggregated,100,3,4,5,6,6,9,12,20,40,110,120,120,100,3,4,5,1,9,300
1700000002,4,,Aggregated,100,3,4,5,6,6,9,12,20,40,110,120,120,250,10,4,5,1,9,300
"""
FAILURES_CSV = """Method,Name,Error,Occurrences,First Seen,Last Seen
POST,numeric b=8 columnar,http_503: overloaded,20,1,2
POST,numeric b=8 columnar,timeout: no complete response in time (Timeout),10,1,2
"""


def test_export_from_locust_csv_files(tmp_path):
    prefix = tmp_path / "run"
    (tmp_path / "run_stats.csv").write_text(STATS_CSV)
    (tmp_path / "run_stats_history.csv").write_text(HISTORY_CSV)
    (tmp_path / "run_failures.csv").write_text(FAILURES_CSV)
    result = export.export(csv_prefix=str(prefix), overrides=export.Overrides(model="numeric", url="http://x"))
    doc = json.loads(json.dumps(result.to_dict()))
    back = RunResult.from_dict(doc)
    c, s = back.config, back.summary
    assert (c.engine, c.source, c.mode, c.kind, c.batch_size, c.format) == (
        "locust", "locust", "closed", "numeric", 8, "columnar")
    assert (s.requests, s.ok, dict(s.errors)) == (1000, 970, {"http_503": 20, "timeout": 10})
    assert s.latency_ms.p99 == 40 and s.latency_ms.p50 == 4
    assert any("rounds response times" in w for w in back.warnings)
    assert any("closed loop" in w for w in back.warnings)
    assert [(p.requests, p.errors) for p in back.timeseries] == [(0, 0), (100, 3), (150, 7)]
    assert s.throughput_ips == pytest.approx(s.throughput_rps * 8)


def test_export_from_locust_json_rebuilds_histogram(tmp_path):
    entry = {
        "name": "text b=2 row", "method": "POST", "num_requests": 10, "num_failures": 1,
        "total_response_time": 100.0, "min_response_time": 2.0, "max_response_time": 40.0,
        "response_times": {"5": 8, "40": 2}, "total_content_length": 1000,
        "start_time": 1700000000.0, "last_request_timestamp": 1700000005.0, "num_none_requests": 0,
    }
    path = tmp_path / "stats.json"
    path.write_text(json.dumps([entry]))
    result = export.export(json_path=str(path), overrides=export.Overrides(model="text"))
    assert hist.total_count(result.histogram) == 10
    assert result.summary.latency_ms.p50 == pytest.approx(5.0, rel=0.01)
    assert result.summary.latency_ms.max == pytest.approx(40.0, rel=0.01)
    assert result.summary.errors == {"unclassified": 1}
    assert result.summary.throughput_rps == pytest.approx(9 / 5.0)


def test_export_bad_input(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        export.export(csv_prefix=str(tmp_path / "missing"))
    (tmp_path / "x_stats.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not a Locust CSV"):
        export.export(csv_prefix=str(tmp_path / "x"))
    (tmp_path / "y_stats.csv").write_text(STATS_CSV)
    with pytest.raises(InputError, match="--model"):
        export.export(csv_prefix=str(tmp_path / "y"))
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(InputError, match="not JSON"):
        export.export(json_path=str(tmp_path / "bad.json"))


def _cli(*args: str):
    return run_tfsbench("locust-export", *args, timeout=60)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--out", "x"), "one of the arguments --csv-prefix --json is required"),
        (("--csv-prefix", "p", "--json", "f", "--out", "x"), "not allowed with argument"),
        (("--csv-prefix", "{tmp}/missing", "--out", "{tmp}/o.json"), "missing_stats.csv: no such file"),
        (("--csv-prefix", "{tmp}/run", "--out", "{tmp}/o.json", "--batch-size", "0"), "--batch-size: must be >= 1"),
        (("--csv-prefix", "{tmp}/run", "--out", "{tmp}/o.json", "--kind", "video"), "unknown kind 'video'"),
        (("--csv-prefix", "{tmp}/run", "--out", "{tmp}/o.json"), "give --model"),
        (("--csv-prefix", "{tmp}/run", "--out", "{tmp}/o.json", "--model", "m", "--name", "x"), "--name: no request"),
        (("--csv-prefix", "{tmp}/bad", "--out", "{tmp}/o.json", "--model", "m"), "bad_tfsbench.json: corrupt JSON"),
        (("--json", "{tmp}/run_stats.csv", "--out", "{tmp}/o.json"), "not JSON"),
    ],
)
def test_locust_export_cli_bad_input_is_one_line_exit_2(tmp_path, args, needle):
    (tmp_path / "run_stats.csv").write_text(STATS_CSV)
    (tmp_path / "bad_stats.csv").write_text(STATS_CSV)
    (tmp_path / "bad_tfsbench.json").write_text("{")
    proc = cli("locust-export", *(a.format(tmp=tmp_path) for a in args))  # in-process (helpers.cli)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "o.json").exists()


@pytest.mark.slow
def test_locust_export_cli_writes_a_loadable_result(tmp_path):
    (tmp_path / "run_stats.csv").write_text(STATS_CSV)
    (tmp_path / "run_failures.csv").write_text(FAILURES_CSV)
    proc = _cli("--csv-prefix", str(tmp_path / "run"), "--out", str(tmp_path / "o.json"), "--model", "numeric",
                "--users", "4")
    assert proc.returncode == 0, proc.stderr
    assert "numeric b=8 columnar c=4" in proc.stdout
    from tfsbench.bench.results import load_result

    r = load_result(tmp_path / "o.json")
    assert r.config.concurrency == 4 and r.summary.errors == {"http_503": 20, "timeout": 10}
