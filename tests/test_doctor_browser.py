"""`tfsbench doctor --browser`: a real fetch() from a loopback page in headless Chromium, CORS on and off."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from tfsbench.doctor import browser as doctor_browser

pytestmark = pytest.mark.browser

BODY = json.dumps({"instances": [[0.5, 1.5, 2.5, 3.5]]}).encode()


@pytest.fixture(autouse=True)
def _needs_chromium() -> None:
    assert Path(doctor_browser.CHROMIUM).exists(), "Debian's /usr/bin/chromium is required for browser tests"


def test_page_is_served_on_its_own_origin_with_the_body_embedded() -> None:
    tricky = json.dumps({"instances": ["</script><b>x</b>"]}).encode()
    with doctor_browser.serve_page(doctor_browser.page_html(tricky)) as origin:
        html = urllib.request.urlopen(origin + "/", timeout=10).read().decode()
    assert origin.startswith("http://127.0.0.1:")
    assert "</script><b>" not in html  # escaped inside the script
    assert "runCalls" in html


def test_cli_browser_flag_off_and_on(tfs_url: str, tfs_server: Callable[..., str]) -> None:
    off = subprocess.run(
        [sys.executable, "-m", "tfsbench", "doctor", "--url", tfs_url, "--model", "numeric", "--browser", "--calls", "2"],
        capture_output=True, text=True, timeout=180,
    )
    assert off.returncode == 1, off.stdout + off.stderr
    assert "FAIL  browser fetch" in off.stdout and "blocked by CORS policy" in off.stdout
    assert "fix: start TF Serving with --rest_api_enable_cors_support or put a proxy in front" in off.stdout
    on_url = tfs_server(enable_cors=True)
    on = subprocess.run(
        [sys.executable, "-m", "tfsbench", "doctor", "--url", on_url, "--model", "text", "--browser", "--calls", "3"],
        capture_output=True, text=True, timeout=180,
    )
    assert on.returncode == 0, on.stdout + on.stderr
    assert "PASS  browser fetch" in on.stdout and "3 of 3 calls succeeded" in on.stdout
    assert "browser-measured latency" in on.stdout


@pytest.mark.parametrize("case", ["echo-origin", "no-allow-headers", "post-without-acao"])
def test_chromium_agrees_with_doctors_cors_verdict(case: str) -> None:
    """The HTTP-level CORS check must say what a real browser says, on hand-made header sets."""
    from tests.test_doctor_checklist import CORS_CASES, doctor_cors_verdict, fake_cors_server

    with fake_cors_server(case) as url:
        seen = doctor_browser.browser_check(url + "/v1/models/m:predict", BODY, calls=1, timeout_s=30)
        by_doctor = doctor_cors_verdict(url, seen["page_origin"])
    assert seen["ok"] is CORS_CASES[case][3], seen
    assert by_doctor is CORS_CASES[case][3]
    if not seen["ok"]:
        assert "CORS policy" in seen["error"]
