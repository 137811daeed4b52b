"""`tfsbench serve` as a subprocess: starts, answers, stops on SIGTERM; bad flags give one line and exit 2
(checked in-process through `main()`: validation happens before anything listens, and a row that
slipped through would serve forever and hit the timeout mark instead of passing)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import pytest
from helpers import CliOutcome, cli, run_tfsbench
from tfsbench.server.testing import http_request, serve_subprocess


def serve_cli(*args: str) -> CliOutcome:
    """`tfsbench serve ARGS` in this process (bad flags only: a good set would serve)."""
    return cli("serve", *args)


def test_serve_subprocess_answers_with_options():
    with serve_subprocess("--enable-cors", "--faults", "status=503:1.0", "--service-time", "1ms") as url:
        assert url.startswith("http://127.0.0.1:")
        status, headers, body = http_request(url, "GET", "/v1/models/text/labels/stable")
        assert status == 200 and headers["access-control-allow-origin"] == "*"
        assert json.loads(body)["model_version_status"][0]["version"] == "1"
        status, _, body = http_request(url, "POST", "/v1/models/numeric:predict", b'{"instances": [[1,2,3,4]]}')
        assert status == 503 and "Injected fault" in json.loads(body)["error"]


def test_serve_with_two_workers_shares_the_port():
    with serve_subprocess("--workers", "2", "--no-uvloop") as url:
        for _ in range(20):
            status, _, _ = http_request(url, "POST", "/v1/models/numeric:predict", b'{"instances": [[1,2,3,4]]}')
            assert status == 200


def test_sigterm_stops_cleanly():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfsbench", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("tfsbench serve: listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        assert http_request(url, "GET", "/v1/models/image")[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.timeout(60)
def test_port_in_use_is_one_line_exit_2():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        port = blocker.getsockname()[1]
        result = serve_cli("--port", str(port))
    finally:
        blocker.close()
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot listen on 127.0.0.1" in lines[0], result.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--port", "99999"], "outside 0-65535"),
        (["--port", "http"], "not a port number"),
        (["--faults", "status=abc:0.1"], "is not an integer"),
        (["--faults", "explode=1"], "unknown fault kind"),
        (["--service-time", "soon"], "is not a duration"),
        (["--batching", "max_batch_size=0"], "positive integer"),
        (["--batching", "queue=3"], "is not KEY=INT"),
        (["--max-body-bytes", "lots"], "is not a size"),
        (["--max-json-depth", "0"], "must be >= 1"),
        (["--workers", "0"], "between 1 and 64"),
        (["--rest-api-num-threads", "0"], "must be >= 1"),
        (["--rest-api-timeout-ms", "soon"], "expected a positive integer"),
        (["--batching", "max_batch_size=4", "--batching-parameters-file", "x.txt"], "give one, not both"),
        (["--batching-parameters-file", "/nonexistent/batching.txt"], "cannot read"),
        (["--model-name", "m"], "go together"),
        (["--model-name", "m", "--model-base-path", "/nonexistent/models"], "is not a directory"),
        (["--model-name", "bad name!", "--model-base-path", "/tmp"], "is not a model name"),
        (["--bogus"], "unrecognized arguments"),
        (["--host", "nonexistent.invalid", "--port", "0"], "cannot listen on nonexistent.invalid:0"),
        (["--host", "8.8.8.8", "--port", "0"], "cannot listen on 8.8.8.8:0"),
    ],
)
@pytest.mark.timeout(60)
def test_bad_flags_one_line_exit_2(args, fragment):
    result = serve_cli(*args)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.timeout(60)
def test_model_base_path_without_versions(tmp_path):
    (tmp_path / "notaversion").mkdir()
    result = serve_cli("--model-name", "m", "--model-base-path", str(tmp_path))
    assert result.returncode == 2
    assert "has no <version>/saved_model.pb" in result.stderr.strip()


def test_help_is_fast_and_lists_options():
    start = time.perf_counter()
    result = run_tfsbench("serve", "--help", timeout=60)
    assert result.returncode == 0
    for flag in ("--enable-cors", "--faults", "--batching", "--service-time", "--model-base-path", "--workers"):
        assert flag in result.stdout
    assert time.perf_counter() - start < 30


def test_serving_demo_models_never_imports_tensorflow():
    code = (
        "import sys\n"
        "from tfsbench.server.testing import serve_in_thread, http_request\n"
        "with serve_in_thread() as url:\n"
        "    assert http_request(url, 'POST', '/v1/models/text:predict', b'{\"instances\": [[\"a\"]]}')[0] == 200\n"
        "print('tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.slow
def test_restart_on_the_same_port():
    from urllib.parse import urlsplit

    with serve_subprocess() as url:
        port = urlsplit(url).port
        assert http_request(url, "GET", "/v1/models/numeric")[0] == 200
    with pytest.raises(ConnectionError):
        http_request(url, "GET", "/v1/models/numeric", timeout_s=5)
    with serve_subprocess("--port", str(port)) as again:
        assert again == url
        assert http_request(again, "GET", "/v1/models/numeric")[0] == 200


def test_thread_server_restart_on_the_same_port():
    from urllib.parse import urlsplit

    from tfsbench.server.testing import serve_in_thread

    with serve_in_thread() as url:
        port = urlsplit(url).port
    with serve_in_thread(port=port, enable_cors=True) as again:
        assert again == url
        assert http_request(again, "GET", "/v1/models/text")[1]["access-control-allow-origin"] == "*"
