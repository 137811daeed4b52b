"""Importers (payloads/trace_import.py): real-looking nginx JSON, Envoy JSON and nginx combined lines,
malformed ones among them; and the `tfsbench trace` command's wiring."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import cli
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.trace import TraceKey, read_trace
from tfsbench.payloads.trace_import import import_log

NGINX_JSON = [
    {"time_iso8601": "2026-12-01T10:00:00+00:00", "msec": "1796119200.512", "remote_addr": "192.0.2.10",
     "request_method": "POST", "request_uri": "/v1/models/resnet/versions/2:predict", "status": "200",
     "request_time": "0.012", "request_length": "1532", "body_bytes_sent": "88",
     "http_user_agent": "python-requests/2.31"},
    {"msec": "1796119200.530", "request_method": "POST", "request_uri": "/v1/models/bert/labels/canary:predict",
     "status": "503", "request_time": "0.005", "request_length": "900"},
    {"msec": "1796119200.700", "request_method": "GET", "request_uri": "/v1/models/resnet/metadata",
     "status": "200", "request_time": "0.001"},
    {"msec": "1796119201.000", "request_method": "POST", "request_uri": "/v1/models/resnet:predict",
     "status": "200", "request_time": "-"},
    {"msec": "1796119201.100", "request_method": "POST", "request_uri": "/v1/models/resnet:predict",
     "request_time": "fast"},
    {"request_method": "POST", "request_uri": "/v1/models/resnet:predict", "request_time": "0.010"},
]
ENVOY_JSON = {"start_time": "2026-12-01T10:00:00.600Z", "method": "POST", "path": "/v1/models/bert:predict",
              "response_code": 200, "duration": 15, "bytes_received": 912, "upstream_host": "192.0.2.20:8501"}

COMBINED = [
    '192.0.2.10 - - [01/Dec/2026:10:00:00 +0000] "POST /v1/models/resnet:predict HTTP/1.1" 200 88 "-" '
    '"python-requests/2.31" 0.100 1532',
    '192.0.2.11 - - [01/Dec/2026:10:00:00 +0000] "POST /v1/models/resnet/versions/3:predict HTTP/1.1" 200 88 "-" '
    '"grpc-gateway" 0.200',
    '192.0.2.11 - - [01/Dec/2026:10:00:01 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.29" 0.000',
    '192.0.2.12 - - [01/Dec/2026:10:00:02 +0000] "POST /v1/models/resnet:predict HTTP/1.1" 504 160 "-" '
    '"curl/8.5.0" 30.001',
    '192.0.2.12 - - [01/Dec/2026:10:00:03 +0000] "POST /v1/models/resnet:predict HTTP/1.1" 200 88 "-" "curl/8.5.0"',
    'garbage line with no structure',
    '192.0.2.12 - - [31/Foo/2026:10:00:03 +0000] "POST /v1/models/resnet:predict HTTP/1.1" 200 88 "-" "x" 0.1',
]


def test_nginx_and_envoy_json_lines(tmp_path):
    log = tmp_path / "access.json"
    lines = [json.dumps(r) for r in NGINX_JSON] + [json.dumps(ENVOY_JSON), "{truncated", "[1, 2]"]
    log.write_text("\n".join(lines) + "\n")
    trace = import_log(log, "nginx-json")
    keys = [trace.keys[i] for i in trace.key_index]
    # send time = completion (msec) - request_time; Envoy's start_time is already the start
    assert trace.t_s.tolist() == pytest.approx([0.0, 0.025, 0.1, 0.5], abs=1e-6)
    assert keys == [TraceKey("resnet", 2), TraceKey("bert", None, "canary"), TraceKey("bert"), TraceKey("resnet")]
    assert trace.request_bytes.tolist() == [1532, 900, 912, -1]
    assert trace.bad.skipped == 1  # the metadata GET
    assert trace.bad.count == 4
    assert [n for n, _ in trace.bad.examples] == [5, 6, 8, 9]
    assert "request_time is not a number" in dict(trace.bad.examples)[5]
    assert dict(trace.bad.examples)[6] == "no timestamp"


def test_combined_with_request_time(tmp_path):
    log = tmp_path / "access.log"
    log.write_text("\n".join(COMBINED) + "\n")
    trace = import_log(log, "combined")
    keys = [trace.keys[i] for i in trace.key_index]
    # the two requests logged in second 0 are spread to .25 and .75, minus their request times (0.15, 0.55);
    # the 504, alone in second 2 (so at 2.5), took 30.001 s: sent first, at -27.501
    assert trace.t_s.tolist() == pytest.approx([0.0, 27.651, 28.051], abs=1e-6)
    assert keys == [TraceKey("resnet"), TraceKey("resnet"), TraceKey("resnet", 3)]
    assert trace.request_bytes.tolist() == [-1, 1532, -1]
    assert trace.bad.skipped == 1
    assert [n for n, _ in trace.bad.examples] == [5, 6, 7]
    reasons = dict(trace.bad.examples)
    assert "request_time" in reasons[5] and reasons[6] == "not in combined format" and "bad time" in reasons[7]


@pytest.mark.parametrize("fmt, text", [("combined", "junk\nmore junk\n"), ("nginx-json", ""),
                                       ("nginx-json", json.dumps(NGINX_JSON[2]) + "\n")])
def test_no_usable_line_is_one_line_error(tmp_path, fmt, text):
    log = tmp_path / "access.log"
    log.write_text(text)
    with pytest.raises(InputError, match="no usable predict requests") as info:
        import_log(log, fmt)
    assert "\n" not in str(info.value)


def test_trace_command_wiring(tmp_path):
    log = tmp_path / "access.log"
    log.write_text("\n".join(COMBINED) + "\n")
    out = tmp_path / "trace.csv"
    ok = subprocess.run([sys.executable, "-m", "tfsbench", "trace", "import", str(log), "--format", "combined",
                         "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "3 bad lines (line 5:" in ok.stderr
    assert len(read_trace(out)) == 3
    junk = tmp_path / "junk.log"
    junk.write_text("junk\n")
    bad = cli("trace", "import", str(junk), "--format", "combined", "--out", str(tmp_path / "never.jsonl"))
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "line 1: not in combined format" in bad.stderr
    assert not (tmp_path / "never.jsonl").exists()
