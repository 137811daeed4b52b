"""The gRPC engine: closed and open loop against the embedded target's gRPC port, error classes,
metadata headers, results with protocol "grpc", and every bad-input path of `run --protocol grpc`."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np
import pytest
from helpers import free_port
from tfsbench.bench.measure.engine import Target
from tfsbench.bench.measure.engine_grpc import GrpcEngine, check_response, error_class, grpc_metadata
from tfsbench.bench.measure.preflight import preflight_and_pool
from tfsbench.bench.measure.runner import run_benchmark
from tfsbench.bench.results import RunConfig, load_result, save_result
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.grpc_codec import encode_predict_request, predict_response
from tfsbench.server.testing import ServerThread

from tfsbench.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def grpc_url() -> Iterator[str]:
    server = ServerThread(grpc_port=0)
    server.start()
    try:
        yield f"grpc://127.0.0.1:{server.grpc_port}"
    finally:
        server.stop()


def _config(url: str, **overrides: object) -> RunConfig:
    values: dict = dict(url=url, model="numeric", kind="numeric", batch_size=4, format="row", mode="closed",
                        engine="grpc", protocol="grpc", concurrency=4, requests_limit=200, timeout_s=10.0)
    values.update(overrides)
    return RunConfig(**values)


@pytest.mark.slow
def test_closed_loop_run_is_all_ok_and_round_trips_with_protocol(grpc_url, tmp_path):
    config = _config(grpc_url)
    info, pool = preflight_and_pool(config)
    assert info["protocol"] == "grpc" and info["probe_response_bytes"] > 0
    assert info["metadata"]["model_spec"]["name"] == "numeric"
    result = run_benchmark(config, pool=pool, environment={"target": info})
    assert result.summary.requests == 200 and result.summary.ok == 200 and result.summary.errors == {}
    save_result(result, tmp_path / "r.json")
    again = load_result(tmp_path / "r.json")
    assert again.config.protocol == "grpc" and again.config.label_text() == "numeric b=4 grpc c=4"
    assert again.config.config_key()[-1] == "grpc"


@pytest.mark.slow
@pytest.mark.serial
def test_open_loop_keeps_the_offered_rate(grpc_url):
    config = _config(grpc_url, mode="open", concurrency=None, rate_rps=200.0, arrival="constant",
                     requests_limit=None, duration_s=1.0, warmup_s=0.2)
    result = run_benchmark(config)
    assert result.summary.errors == {}
    assert 180 <= result.summary.ok <= 220  # 200/s for 1 s, on the schedule
    assert result.summary.schedule_lag_ms is not None


@pytest.mark.slow
def test_text_and_image_with_labels_and_val_form(grpc_url):
    for kind, model in (("text", "text"), ("image", "image")):
        config = _config(grpc_url, model=model, kind=kind, label="stable", requests_limit=20, batch_size=2)
        result = run_benchmark(config)
        assert result.summary.ok == 20, result.summary.error_samples
    config = _config(grpc_url, requests_limit=20, extra={"numeric_form": "val"})
    assert run_benchmark(config).summary.ok == 20


def test_server_errors_become_grpc_classes():
    server = ServerThread(grpc_port=0, faults="status=503:0.5,status=400:0.5,seed=1")
    server.start()
    try:
        result = run_benchmark(_config(f"grpc://127.0.0.1:{server.grpc_port}", requests_limit=100))
    finally:
        server.stop()
    assert result.summary.ok == 0
    assert set(result.summary.errors) == {"grpc_unavailable", "grpc_invalid_argument"}
    assert sum(result.summary.errors.values()) == 100


def test_deadline_is_a_timeout():
    server = ServerThread(grpc_port=0, service_time="300ms")
    server.start()
    try:
        result = run_benchmark(_config(f"grpc://127.0.0.1:{server.grpc_port}", requests_limit=4, timeout_s=0.05))
    finally:
        server.stop()
    assert result.summary.errors == {"timeout": 4}


@pytest.mark.slow
def test_nothing_listening_is_refused():
    result = run_benchmark(_config(f"grpc://127.0.0.1:{free_port()}", requests_limit=3, concurrency=1,
                                   timeout_s=5.0))
    assert result.summary.errors == {"refused": 3}


def test_error_class_table():
    code = grpc.StatusCode
    assert error_class(code.DEADLINE_EXCEEDED, "Deadline Exceeded") == "timeout"
    assert error_class(code.UNAVAILABLE, "failed to connect to all addresses") == "refused"
    assert error_class(code.UNAVAILABLE, "Socket closed") == "reset"
    assert error_class(code.UNAVAILABLE, "Injected fault: 503") == "grpc_unavailable"
    assert error_class(code.INVALID_ARGUMENT, "bad") == "grpc_invalid_argument"
    assert error_class(code.RESOURCE_EXHAUSTED, "Received message larger than max (9 vs. 4)") == "response_too_large"
    assert error_class(code.RESOURCE_EXHAUSTED, "queue full") == "grpc_resource_exhausted"
    assert error_class(code.NOT_FOUND, "Servable not found") == "grpc_not_found"


def test_response_validation_checks_the_batch():
    body = predict_response({"probabilities": np.zeros((3, 3), np.float32)}, "numeric", 1,
                            "serving_default").SerializeToString()
    assert check_response(body, 3, "full").error is None
    assert check_response(body, 4, "full").error == "batch_mismatch"
    assert check_response(b"\xff\xff", 3, "full").error == "invalid_response"
    assert check_response(b"\xff\xff", 3, "status").error is None


def test_headers_travel_as_metadata():
    """A bare grpcio server records what the engine sends: metadata keys lower-cased, body as built."""
    seen: list[tuple[tuple[str, str], ...]] = []
    answer = predict_response({"y": np.zeros((1, 1), np.float32)}, "m", 1, "serving_default").SerializeToString()

    def predict(body: bytes, context: grpc.ServicerContext) -> bytes:
        seen.append(tuple((k, v) for k, v in context.invocation_metadata() if not k.startswith("user-agent")))
        return answer

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "tensorflow.serving.PredictionService", {"Predict": grpc.unary_unary_rpc_method_handler(predict)})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        body = encode_predict_request({"x": np.zeros((1, 1), np.float32)}, "m")
        target = Target(url=f"grpc://127.0.0.1:{port}", bodies=(body,), timeout_s=5.0, batch_size=1,
                        headers={"Authorization": "Bearer t0k", "Content-Type": "application/json"})

        async def once() -> object:
            engine = GrpcEngine(target)
            await engine.start()
            try:
                return await engine.send(0)
            finally:
                await engine.close()

        outcome = asyncio.run(once())
    finally:
        server.stop(None)
    assert outcome.error is None
    assert ("authorization", "Bearer t0k") in seen[0]
    assert not any(k == "content-type" and v == "application/json" for k, v in seen[0])
    with pytest.raises(InputError, match="reserved"):
        grpc_metadata({"grpc-timeout": "1S"})


# ---- bad input: one line, exit 2 -------------------------------------------------------------------


@pytest.mark.parametrize(("args", "fragment"), [
    (["--url", "http://127.0.0.1:8501"], "must be grpc://HOST:PORT or grpcs://HOST:PORT"),
    (["--url", "grpc://127.0.0.1"], "needs a port"),
    (["--url", "grpc://127.0.0.1:8500/v1"], "only grpc://HOST:PORT"),
    (["--url", "grpc://127.0.0.1:99999"], "invalid port"),
    (["--url", "grpc://127.0.0.1:8500", "--engine", "aiohttp"], "--engine aiohttp speaks HTTP/JSON"),
    (["--url", "grpc://127.0.0.1:8500", "--gzip"], "--gzip is HTTP's Content-Encoding"),
])
def test_bad_grpc_arguments(args, fragment, capsys, tmp_path):
    out = tmp_path / "r.json"
    status = main(["run", "--protocol", "grpc", "--model", "numeric", "--concurrency", "1", "--requests", "1",
                   "--out", str(out), *args])
    err = capsys.readouterr().err
    assert status == 2
    assert fragment in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_numeric_form_needs_grpc(capsys, tmp_path):
    status = main(["run", "--url", "http://127.0.0.1:8501", "--model", "numeric", "--concurrency", "1",
                   "--requests", "1", "--numeric-form", "val", "--out", str(tmp_path / "r.json")])
    assert status == 2 and "--numeric-form is for --protocol grpc" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "fragment"), [
    (["--model", "nope"], "GetModelStatus: NOT_FOUND: Could not find any versions of model nope"),
    (["--model", "numeric", "--version", "7"], "NOT_FOUND: Could not find version 7 of model numeric"),
    (["--model", "numeric", "--kind", "text"], "the model rejected a text b=1 gRPC request: Predict: INVALID_ARGUMENT"),
])
def test_preflight_failures_are_one_line(grpc_url, extra, fragment, capsys, tmp_path):
    out = tmp_path / "r.json"
    status = main(["run", "--protocol", "grpc", "--url", grpc_url, "--concurrency", "1", "--requests", "1",
                   "--quiet", "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert status == 2, err
    assert fragment in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_unreachable_port_is_one_line(capsys, tmp_path):
    status = main(["run", "--protocol", "grpc", "--url", f"grpc://127.0.0.1:{free_port()}", "--model", "numeric",
                   "--concurrency", "1", "--requests", "1", "--timeout", "5s", "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert status == 2 and "cannot reach grpc://127.0.0.1:" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_serve_and_run_wired_in_subprocesses(tmp_path):
    """`tfsbench serve --grpc-port 0` announces its port; `tfsbench run --protocol grpc` uses it."""
    serve = subprocess.Popen([sys.executable, "-m", "tfsbench", "serve", "--port", "0", "--grpc-port", "0"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        address = None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(serve.stdout.readline, "")), daemon=True)
        reader.start()
        for _ in range(300):
            found = [ln for ln in lines if "gRPC listening on " in ln]
            if found:
                address = found[0].split("gRPC listening on ")[1].strip()
                break
            reader.join(0.1)
        assert address, lines
        out = tmp_path / "r.json"
        proc = subprocess.run([sys.executable, "-m", "tfsbench", "run", "--protocol", "grpc", "--url",
                               f"grpc://{address}", "--model", "text", "--kind", "text", "--label", "stable",
                               "--concurrency", "2", "--requests", "50", "--warmup", "0", "--quiet", "--out", str(out)],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert f"target: gRPC Predict at grpc://{address}" in proc.stderr
        result = load_result(out)
        assert result.config.protocol == "grpc" and result.summary.ok == 50
    finally:
        serve.terminate()
        serve.wait(10)


@pytest.mark.slow
def test_sweep_and_search_speak_grpc(grpc_url, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "--protocol", "grpc", "--url", grpc_url, "--model", "{kind}", "--kinds", "numeric,text",
                 "--batch-sizes", "2", "--concurrency", "2", "--requests", "20", "--warmup", "0", "--no-progress",
                 "--out", str(out)]) == 0
    results = [load_result(p) for p in sorted(out.glob("*-c2.json"))]
    assert [(r.config.kind, r.config.protocol, r.config.engine, r.summary.ok) for r in results] == [
        ("numeric", "grpc", "grpc", 20), ("text", "grpc", "grpc", 20)]
    capsys.readouterr()
    assert main(["sweep", "--protocol", "grpc", "--url", "http://127.0.0.1:8501", "--model", "m", "--kinds", "numeric",
                 "--batch-sizes", "1", "--out", str(tmp_path / "x")]) == 2
    assert "must be grpc://HOST:PORT" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["search", "--url", "grpc://h", "--model", "m", "--slo", "p99<10ms", "--out", str(tmp_path / "s")])
    assert info.value.code == 2 and "needs a port" in capsys.readouterr().err


@pytest.mark.slow
def test_selfbench_grpc_writes_its_ratios(tmp_path, capsys):
    out = tmp_path / "sb.json"
    assert main(["selfbench", "--protocol", "grpc", "--duration", "300ms", "--connections", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "grpc/bare:" in text and "open loop at half the ceiling" in text
    import json

    doc = json.loads(out.read_text())
    assert doc["engine_rounds"][0]["errors"] == {} and doc["bare_rounds"][0]["requests"] > 0
    assert doc["open_loop"]["errors"] == {}


@pytest.mark.serial
def test_server_view_reads_the_grpc_entrypoint():
    server = ServerThread(grpc_port=0)
    server.start()
    try:
        metrics = server.base_url + "/monitoring/prometheus/metrics"
        result = run_benchmark(_config(f"grpc://127.0.0.1:{server.grpc_port}", requests_limit=50,
                                       extra={"server_metrics": metrics}))
        plain = run_benchmark(_config(f"grpc://127.0.0.1:{server.grpc_port}", requests_limit=5))
    finally:
        server.stop()
    assert result.server is not None and result.server["found"], result.server
    # the first scrape races the first responses: the server counts the window, the client the run
    assert 40 <= sum(result.server["request_count_by_status"].values()) <= 50
    assert result.server["latency_ms"]["p50"] > 0
    assert plain.server is None  # a grpc:// address has no metrics page: not scraped


@pytest.mark.skipif(__import__("shutil").which("openssl") is None, reason="needs the openssl command")
@pytest.mark.slow
def test_grpcs_verifies_the_certificate_and_sends_metadata(tmp_path, monkeypatch):
    """grpcs:// uses TLS: an untrusted certificate is refused before anything is sent; trusted (via
    SSL_CERT_FILE, as for the HTTP engines) it works, with --header as metadata."""
    from tfsbench.payloads.grpc_pool import GrpcTarget, build_grpc_pool
    from tfsbench.payloads.spec import PayloadSpec

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    answer = predict_response({"probabilities": np.zeros((2, 3), np.float32)}, "numeric", 1,
                              "serving_default").SerializeToString()
    auth: list[str] = []

    def predict(body: bytes, context: grpc.ServicerContext) -> bytes:
        auth.extend(v for k, v in context.invocation_metadata() if k == "authorization")
        return answer

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "tensorflow.serving.PredictionService", {"Predict": grpc.unary_unary_rpc_method_handler(predict)})])
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())]))
    server.start()
    try:
        url = f"grpcs://127.0.0.1:{port}"
        pool = build_grpc_pool(PayloadSpec("numeric", 2), GrpcTarget("numeric"), 4)
        untrusted = run_benchmark(_config(url, batch_size=2, requests_limit=3, concurrency=1, timeout_s=5.0), pool=pool)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        trusted = run_benchmark(_config(url, batch_size=2, requests_limit=20), pool=pool,
                                headers={"Authorization": "Bearer s3cret"})
    finally:
        server.stop(None)
    assert untrusted.summary.errors == {"refused": 3}, untrusted.summary.error_samples
    assert trusted.summary.ok == 20 and trusted.summary.errors == {}
    assert auth == ["Bearer s3cret"] * 20


class _CountingProxy:
    """A TCP relay on 127.0.0.1 that counts the bytes the client sends (what is on the wire)."""

    def __init__(self, port: int) -> None:
        self.sent = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._target = port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._target))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, count: bool) -> None:
        try:
            while data := src.recv(65536):
                if count:
                    with self._lock:
                        self.sent += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._listener.close()


@pytest.mark.slow
def test_grpc_compression_gzip_shrinks_what_is_sent():
    server = ServerThread(grpc_port=0)
    server.start()
    sent = {}
    try:
        for compression in (None, "gzip"):
            proxy = _CountingProxy(server.grpc_port)
            extra = {"grpc_compression": compression} if compression else {}
            result = run_benchmark(_config(f"grpc://127.0.0.1:{proxy.port}", model="text", kind="text", batch_size=64,
                                           requests_limit=30, concurrency=1, extra=extra))
            proxy.close()
            assert result.summary.ok == 30, result.summary.error_samples
            sent[compression] = proxy.sent
    finally:
        server.stop()
    assert sent["gzip"] < sent[None] * 0.6, sent  # 64 texts of common words compress about 3x


def test_grpc_compression_flag_needs_grpc(capsys, tmp_path):
    status = main(["run", "--url", "http://127.0.0.1:8501", "--model", "numeric", "--concurrency", "1",
                   "--requests", "1", "--grpc-compression", "gzip", "--out", str(tmp_path / "r.json")])
    assert status == 2 and "--grpc-compression is for --protocol grpc" in capsys.readouterr().err
