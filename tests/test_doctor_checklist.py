"""`tfsbench doctor` against the embedded target: status, metadata, CORS on/off, body diagnoses, predict."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from helpers import cli
from tfsbench.doctor import checklist as doctor
from tfsbench.payloads.errors import InputError


def run_doctor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tfsbench", "doctor", *args], capture_output=True, text=True, timeout=120
    )


def by_name(report: doctor.DoctorReport) -> dict[str, doctor.Finding]:
    return {f.name: f for f in report.findings}


@pytest.fixture(scope="module")
def cors_url() -> str:
    from tfsbench.server.testing import serve_in_thread

    with serve_in_thread(enable_cors=True) as url:
        yield url


@pytest.fixture(scope="module")
def numeric_meta(tfs_url: str):
    _, meta = doctor.check_metadata(doctor.Target(tfs_url, "numeric"))
    assert meta is not None
    return meta


def test_everything_passes_with_cors_on(cors_url: str) -> None:
    report = doctor.diagnose(doctor.Target(cors_url, "numeric"), "https://app.example")
    found = by_name(report)
    assert [f.status for f in report.findings] == ["pass"] * 7, doctor.render_text(report)
    assert "/monitoring/prometheus/metrics" in found["server metrics"].reason
    assert "AVAILABLE" in found["model status"].reason
    assert any("features DT_FLOAT [-1,4]" in d for d in found["metadata"].details)
    assert "allow-origin *" in found["CORS preflight"].reason
    assert "HTTP 200" in found["predict"].reason and "bytes" in found["predict"].reason
    assert report.exit_status == 0


def test_cors_off_fails_with_the_flag_or_proxy_fix(tfs_url: str) -> None:
    report = doctor.diagnose(doctor.Target(tfs_url, "numeric"), "https://app.example")
    found = by_name(report)
    assert found["predict"].status == "pass"  # the server works; only browsers are refused
    for name in ("CORS preflight", "CORS response"):
        assert found[name].status == "fail"
        assert "--rest_api_enable_cors_support" in found[name].fix and "proxy" in found[name].fix
    assert "no Access-Control-Allow-Origin" in found["CORS response"].reason
    assert report.exit_status == 1


def test_cors_check_follows_the_fetch_standard() -> None:
    from email.message import Message

    def answer(**headers: str) -> doctor.HttpAnswer:
        msg = Message()
        for k, v in headers.items():
            msg[k.replace("_", "-")] = v
        return doctor.HttpAnswer(200, msg, b"", 1.0)

    origin = "https://app.example"
    assert doctor.cors_check(answer(Access_Control_Allow_Origin="*"), origin) is None
    assert doctor.cors_check(answer(Access_Control_Allow_Origin=origin), origin) is None
    assert "not 'https://app.example'" in doctor.cors_check(answer(Access_Control_Allow_Origin="https://x.example"), origin)
    assert "several values" in doctor.cors_check(answer(Access_Control_Allow_Origin="*, https://app.example"), origin)
    assert "no Access-Control-Allow-Origin" in doctor.cors_check(answer(), origin)


def test_unknown_model_fails_and_skips_what_depends_on_it(tfs_url: str) -> None:
    report = doctor.diagnose(doctor.Target(tfs_url, "nope"), "https://app.example")
    found = by_name(report)
    assert found["model status"].status == "fail" and "404" in found["model status"].reason
    assert found["metadata"].status == "skip" and found["predict"].status == "skip"


def test_version_and_label_are_checked(tfs_url: str) -> None:
    assert doctor.check_status(doctor.Target(tfs_url, "numeric", version=1)).status == "pass"
    assert doctor.check_status(doctor.Target(tfs_url, "numeric", label="stable")).status == "pass"
    assert doctor.check_status(doctor.Target(tfs_url, "numeric", version=7)).status == "fail"


def test_generated_bodies_fit_every_demo_model(cors_url: str) -> None:
    for model in ("numeric", "text", "image"):
        report = doctor.diagnose(doctor.Target(cors_url, model), "http://localhost:3000")
        assert report.exit_status == 0, doctor.render_text(report)


# ---- body diagnoses ------------------------------------------------------------------------------


def body_findings(meta, doc: object) -> dict[str, doctor.Finding]:
    return {f.name: f for f in doctor.check_body(json.dumps(doc).encode(), meta, None, "--body b.json")}


def test_both_keys_named_plainly(numeric_meta) -> None:
    found = body_findings(numeric_meta, {"instances": [[1.0, 2.0, 3.0, 4.0]], "inputs": [[1.0, 2.0, 3.0, 4.0]]})
    body = found["request body"]
    assert body.status == "fail"
    assert "both 'instances' and 'inputs'" in body.reason
    assert "only one of 'inputs' or 'instances'" in body.reason  # TF Serving's own words, too


def test_ragged_rows_named_plainly(numeric_meta) -> None:
    found = body_findings(numeric_meta, {"instances": [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0]]})
    body = found["request body"]
    assert body.status == "fail" and "rows have different lengths" in body.reason
    assert "row 1 has shape [3]" in body.reason and "pad" in body.fix


def test_integers_to_a_float_input_warn(numeric_meta) -> None:
    found = body_findings(numeric_meta, {"instances": [[1, 2, 3, 1435774380]]})
    assert found["request body"].status == "pass"
    warn = found["integers to a float input"]
    assert warn.status == "warn" and "rounds them silently" in warn.reason
    assert "exceed 2^24" in warn.reason and "1435774380" in warn.reason


def test_b64_object_to_a_float_input_fails(numeric_meta) -> None:
    found = body_findings(numeric_meta, {"instances": [[{"b64": "AAAA"}] * 4]})
    assert found["request body"].status == "fail"
    assert "only DT_STRING inputs accept" in found["request body"].reason


def test_base64_image_without_wrapper_fails(tfs_url: str) -> None:
    from tfsbench.payloads.generators import encode_image

    _, meta = doctor.check_metadata(doctor.Target(tfs_url, "image"))
    jpeg = encode_image(np.zeros((16, 16, 3), dtype=np.uint8), "jpeg", 80)
    bare = {"instances": [base64.b64encode(jpeg).decode()]}
    found = body_findings(meta, bare)
    body = found["request body"]
    assert body.status == "fail" and "a JPEG image" in body.reason and '{"b64": ...}' in body.reason
    wrapped = body_findings(meta, {"instances": [{"b64": base64.b64encode(jpeg).decode()}]})
    assert wrapped["request body"].status == "pass"


def test_wrong_shape_reports_tf_serving_message(numeric_meta) -> None:
    found = body_findings(numeric_meta, {"instances": [[1.0, 2.0]]})
    assert found["request body"].status == "fail"
    assert "TF Serving would answer 400" in found["request body"].reason


def test_non_json_body_is_bad_input() -> None:
    with pytest.raises(InputError, match="not JSON"):
        doctor.parse_body(b"hello", "--body x")


# ---- the command line (one real subprocess for the wiring, the rest through main() in-process) ---


@pytest.mark.slow
def test_cli_cors_off_exits_1_with_fix(tfs_url: str, tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"instances": [[0.5, 1.5, 2.5, 3.5]]}))
    r = run_doctor("--url", tfs_url, "--model", "numeric", "--body", str(body), "--origin", "http://localhost:3000")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAIL  CORS preflight" in r.stdout
    assert "fix: start TF Serving with --rest_api_enable_cors_support" in r.stdout
    assert "PASS  request body" in r.stdout and "PASS  predict" in r.stdout


def test_cli_all_pass_exits_0(cors_url: str) -> None:
    r = cli("doctor", "--url", cors_url, "--model", "text")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1] == "doctor: all 7 checks passed"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--url", "http://127.0.0.1:9", "--model", "m"], "cannot reach http://127.0.0.1:9"),
        (["--url", "ftp://x", "--model", "m"], "needs an http:// or https:// scheme"),
        (["--url", "http://127.0.0.1:9", "--model", "m", "--origin", "app.example"], "is not a web origin"),
        (["--url", "http://127.0.0.1:9", "--model", "m", "--body", "/nonexistent/b.json"], "no such file"),
        (["--url", "http://127.0.0.1:9", "--model", "m", "--calls", "0"], "between 1 and 10000"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(args: list[str], needle: str) -> None:
    r = cli("doctor", *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_cli_non_json_body_exit_2_before_sending(tfs_url: str, tmp_path: Path) -> None:
    body = tmp_path / "body.txt"
    body.write_text("features=1,2,3,4")
    r = cli("doctor", "--url", tfs_url, "--model", "numeric", "--body", str(body))
    assert r.returncode == 2
    assert "not JSON" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert r.stdout == ""


# ---- a proxy with hand-made CORS headers: doctor must judge it the way a browser does ----------

CORS_CASES = {
    # name: (preflight status, preflight headers, POST headers, a browser accepts it)
    "good": (204, {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "Content-Type"},
             {"Access-Control-Allow-Origin": "*"}, True),
    "echo-origin": (200, {"Access-Control-Allow-Origin": "{origin}", "Access-Control-Allow-Headers": "content-type, x-a"},
                    {"Access-Control-Allow-Origin": "{origin}"}, True),
    "no-allow-headers": (200, {"Access-Control-Allow-Origin": "*"}, {"Access-Control-Allow-Origin": "*"}, False),
    "other-origin": (200, {"Access-Control-Allow-Origin": "https://other.example", "Access-Control-Allow-Headers": "*"},
                     {"Access-Control-Allow-Origin": "https://other.example"}, False),
    "post-without-acao": (204, {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "content-type"},
                          {}, False),
    "preflight-403": (403, {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "content-type"},
                      {"Access-Control-Allow-Origin": "*"}, False),
}


@contextmanager
def fake_cors_server(case: str) -> Iterator[str]:
    """A tiny predict endpoint whose CORS headers are exactly those of CORS_CASES[case]."""
    status, pre_headers, post_headers, _ = CORS_CASES[case]

    class Handler(BaseHTTPRequestHandler):
        def _headers(self, headers: dict[str, str]) -> None:
            for k, v in headers.items():
                self.send_header(k, v.replace("{origin}", self.headers.get("Origin", "")))

        def do_OPTIONS(self) -> None:  # noqa: N802
            self.send_response(status)
            self._headers(pre_headers)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = b'{"predictions": [[0.1, 0.2, 0.7]]}'
            self.send_response(200)
            self._headers(post_headers)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def doctor_cors_verdict(url: str, origin: str) -> bool:
    target = doctor.Target(url, "m")
    preflight = doctor.check_cors_preflight(target, origin)
    _, answer = doctor.check_predict(target, b'{"instances": [[1.0, 2.0, 3.0, 4.0]]}', origin)
    response = doctor.check_cors_response(answer, origin, preflight.status == "pass")
    return preflight.status == "pass" and response.status == "pass"


@pytest.mark.parametrize("case", sorted(CORS_CASES))
def test_doctor_cors_verdict_on_hand_made_headers(case: str) -> None:
    with fake_cors_server(case) as url:
        assert doctor_cors_verdict(url, "http://127.0.0.1:1234") is CORS_CASES[case][3]


def test_missing_metrics_page_is_a_warning_with_the_monitoring_hint() -> None:
    with fake_cors_server("good") as url:
        finding = doctor.check_server_metrics(doctor.Target(url, "m"))
    assert finding.status == "warn" and "--monitoring_config_file" in finding.fix
