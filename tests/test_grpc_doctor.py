"""`tfsbench doctor --grpc-url`: the gRPC port's findings (reachable, model status, predict round trip)."""

from __future__ import annotations

import socket

import pytest
from tfsbench.doctor.grpc_checks import grpc_findings
from tfsbench.server.testing import ServerThread

from tfsbench.cli import main


@pytest.fixture(scope="module")
def server():
    s = ServerThread(grpc_port=0, enable_cors=True)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def _statuses(findings):
    return [(f.name, f.status) for f in findings]


def test_healthy_port_passes_all_three(server):
    found = grpc_findings(f"grpc://127.0.0.1:{server.grpc_port}", "image", label="stable")
    assert _statuses(found) == [("grpc port", "pass"), ("grpc model status", "pass"), ("grpc predict", "pass")]
    assert "version(s) 1" in found[1].reason


def test_unknown_model_fails_with_tf_serving_text(server):
    found = grpc_findings(f"grpc://127.0.0.1:{server.grpc_port}", "nope")
    assert _statuses(found) == [("grpc port", "pass"), ("grpc model status", "fail"), ("grpc predict", "skip")]
    assert "NOT_FOUND: Could not find any versions of model nope" in found[1].reason
    assert "--model" in found[1].fix


def test_closed_port_says_what_to_fix():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    found = grpc_findings(f"grpc://127.0.0.1:{port}", "numeric", timeout_s=0.5)
    assert _statuses(found)[0] == ("grpc port", "fail")
    assert "8500" in found[0].fix


def test_doctor_command_adds_grpc_findings(server, capsys):
    status = main(["doctor", "--url", server.base_url, "--model", "numeric", "--grpc-url",
                   f"grpc://127.0.0.1:{server.grpc_port}"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "PASS  grpc predict" in out


def test_doctor_grpc_url_must_be_grpc(server, capsys):
    status = main(["doctor", "--url", server.base_url, "--model", "numeric", "--grpc-url", server.base_url])
    err = capsys.readouterr().err
    assert status == 2 and "--grpc-url must be grpc://HOST:PORT" in err and len(err.strip().splitlines()) == 1
