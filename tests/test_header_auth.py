"""`--header` for doctor and the Locust users: a model behind an endpoint that needs a token can be
checked and load-tested, and the token is never written anywhere.

The embedded target (CORS on, as a browser app's endpoint would be) sits behind a small real HTTP
proxy (stdlib, loopback, port 0) that answers 401 without `Authorization: Bearer t0ken` and forwards
everything else.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import kill_group
from tfsbench.doctor import checklist as doctor

from tfsbench import cli

TOKEN = "Bearer t0ken"


@contextmanager
def auth_proxy(upstream: str) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.command != "OPTIONS" and self.headers.get("Authorization") != TOKEN:
                self.send_response(401)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"no")
                return
            req = urllib.request.Request(upstream + self.path, data=body or None, method=self.command,
                                         headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    status, headers, data = resp.status, resp.headers, resp.read()
            except urllib.error.HTTPError as exc:
                status, headers, data = exc.code, exc.headers, exc.read()
            self.send_response(status)
            for k, v in headers.items():
                if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_OPTIONS = _forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def cors_url(tfs_server: Callable[..., str]) -> str:
    return tfs_server(enable_cors=True)


def test_header_reaches_status_metadata_and_predict(cors_url: str) -> None:
    with auth_proxy(cors_url) as url:
        without = {f.name: f for f in doctor.diagnose(doctor.Target(url, "numeric"), "https://app.example").findings}
        target = doctor.Target(url, "numeric", headers={"Authorization": TOKEN})
        found = {f.name: f for f in doctor.diagnose(target, "https://app.example").findings}
    assert found["metadata"].status == "pass", found["metadata"]
    assert found["predict"].status == "pass", found["predict"]
    # TF Serving's CORS allows only Content-Type: a browser could not send the token, and doctor says so
    assert found["CORS preflight"].status == "fail", found["CORS preflight"]
    assert "does not allow authorization" in found["CORS preflight"].reason
    assert without["metadata"].status != "pass" and without["predict"].status != "pass"
    assert [f.status for f in without.values()].count("pass") < [f.status for f in found.values()].count("pass")


def test_cli_header_flag_and_bad_header(cors_url: str) -> None:
    with auth_proxy(cors_url) as url:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status_with = cli.main(["doctor", "--url", url, "--model", "numeric", "--header", f"Authorization: {TOKEN}"])
        assert re.search(r"^PASS\s+predict\s", out.getvalue(), re.M), out.getvalue()
        assert "t0ken" not in out.getvalue() + err.getvalue()
        out2 = io.StringIO()
        with contextlib.redirect_stdout(out2), contextlib.redirect_stderr(io.StringIO()):
            status_without = cli.main(["doctor", "--url", url, "--model", "numeric"])
        assert (status_with, status_without) == (1, 1), out.getvalue()  # 1: the CORS preflight (see above)
        assert "401" in out2.getvalue()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["doctor", "--url", cors_url, "--model", "numeric", "--header", "no colon here"]) == 2
    assert "--header must look like 'Name: value'" in err.getvalue()


# ---- Locust users ---------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def _locust(args: list[str], tmp_path: Path, name: str) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    log = tmp_path / f"{name}.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "tfserving.py"),
                                 *args], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=fh,
                                stderr=subprocess.STDOUT, process_group=0)
        try:
            code = proc.wait(timeout=90)
        finally:
            kill_group(proc, wait_s=10)
    return code, log.read_text()


@pytest.mark.slow
def test_locust_users_send_the_header_and_never_record_it(cors_url: str, tmp_path: Path) -> None:
    with auth_proxy(cors_url) as url:
        base = ["--headless", "-H", url, "--model", "numeric", "--kind", "numeric", "-u", "2", "-r", "10",
                "-t", "2s", "--only-summary", "--web-host", "127.0.0.1"]
        code, log = _locust(base, tmp_path, "without")
        assert code == 2 and "HTTP 401" in log, log[-2000:]
        out = tmp_path / "result.json"
        code, log = _locust(base + ["--header", f"Authorization: {TOKEN}", "--tfs-result", str(out),
                                    "--csv", str(tmp_path / "run")], tmp_path, "with")
    assert code == 0, log[-2000:]
    summary = json.loads(out.read_text())["summary"]
    assert summary["ok"] > 0 and summary["errors"] == {}, summary
    written = "".join(p.read_text(errors="replace") for p in tmp_path.iterdir() if p.is_file())
    assert "t0ken" not in written, "the token was written to a file or the log"


def test_locust_options_parse_headers_and_refuse_credentials_in_the_host() -> None:
    from tfsbench.locustfiles import config as options
    from tfsbench.locustfiles.webui import refused_fields
    from tfsbench.payloads.errors import InputError

    cfg = options.user_config({"model": "numeric", "header": ["Authorization: Bearer x", "X-Team: a"]})
    assert cfg.headers == (("Authorization", "Bearer x"), ("X-Team", "a"))
    with pytest.raises(InputError, match="--header must look like"):
        options.user_config({"model": "numeric", "header": ["nocolon"]})
    with pytest.raises(InputError, match="--host must not contain a user name or password") as info:
        options.check_host("http://user:pw123@127.0.0.1:8501")
    assert "pw123" not in str(info.value)
    assert refused_fields({"header": [], "model": ""}, ["header", "model"]) == ["header"]  # not from the web UI
