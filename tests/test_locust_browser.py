"""The Locust web UI in Debian's Chromium: custom parameters, a refused bad value, a swarm, the
statistics table, the Payload tab's numbers, stop. Locust runs in a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import free_port, kill_group

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.browser


def _wait_http(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)  # polling a server that is starting, not standing in for synchronisation


def _number(text: str) -> float:
    return float(text.replace(",", "").strip())


@pytest.fixture
def locust_ui(tfs_url, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium with apt-get")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    log = open(tmp_path / "locust-ui.log", "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "tfserving.py"), "--web-host",
         "127.0.0.1", "--web-port", str(port), "-H", tfs_url, "--model", "numeric", "-t", "60s"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, process_group=0,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/", 30)
        yield f"http://127.0.0.1:{port}", tmp_path / "locust-ui.log", tfs_url
    finally:
        kill_group(proc, wait_s=10)
        log.close()


def test_web_ui_custom_parameters_swarm_and_payload_tab(locust_ui):
    from playwright.sync_api import expect, sync_playwright

    base, log_path, tfs_url = locust_ui
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.goto(base + "/")
            page.fill("input[name=userCount]", "3")
            page.fill("input[name=spawnRate]", "10")
            page.get_by_role("button", name="Custom parameters").click()
            page.select_option("select[name=kind]", "numeric")
            page.select_option("select[name=format]", "columnar")

            # a bad value is refused with one line under the form, and nothing starts
            page.fill("input[name=batchSize]", "0")
            page.get_by_role("button", name="Start").click()
            expect(page.get_by_text("--batch-size: must be >= 1, got 0")).to_be_visible(timeout=10_000)
            page.fill("input[name=host]", f"http://127.0.0.1:{free_port()}")
            page.fill("input[name=batchSize]", "4")
            page.get_by_role("button", name="Start").click()
            expect(page.get_by_text(re.compile(r"--host: cannot reach http://127\.0\.0\.1:\d+"))).to_be_visible(
                timeout=10_000
            )
            page.fill("input[name=host]", tfs_url)
            page.fill("input[name=model]", "no_such_model")
            page.fill("input[name=batchSize]", "4")
            page.get_by_role("button", name="Start").click()
            expect(page.get_by_text(re.compile(r"--model: .* does not serve model 'no_such_model'"))).to_be_visible(
                timeout=10_000
            )
            with urllib.request.urlopen(base + "/stats/requests", timeout=5) as resp:
                assert b'"state": "ready"' in resp.read().replace(b'"state":"ready"', b'"state": "ready"')

            page.fill("input[name=model]", "numeric")
            page.get_by_role("button", name="Start").click()

            row = page.locator("tr", has_text="numeric b=4 columnar")
            expect(row.first).to_be_visible(timeout=20_000)

            def stats_cells() -> list[str]:
                return [c.strip() for c in row.first.locator("td").all_inner_texts()]

            deadline = time.monotonic() + 20
            cells = stats_cells()
            while _number(cells[2]) < 20 and time.monotonic() < deadline:
                page.wait_for_timeout(500)
                cells = stats_cells()
            assert cells[0] == "POST" and cells[1] == "numeric b=4 columnar"
            assert _number(cells[2]) >= 20, cells  # requests
            assert _number(cells[3]) == 0, cells  # failures

            page.get_by_role("tab", name="Payload").click()
            prow = page.locator("tr", has_text="numeric b=4 columnar").first
            expect(prow).to_be_visible(timeout=10_000)
            values = [c.strip() for c in prow.locator("td").all_inner_texts()]
            deadline = time.monotonic() + 20
            while (_number(values[2]) == 0 or _number(values[8]) == 0) and time.monotonic() < deadline:
                page.wait_for_timeout(500)  # polling the tab until the rates are in
                values = [c.strip() for c in prow.locator("td").all_inner_texts()]
            name, batch, requests, fails, req_bytes, raw_bytes, ratio, _resp_bytes, rps, ips = values[:10]
            assert name == "numeric b=4 columnar" and _number(batch) == 4
            assert _number(requests) > 0 and _number(fails) == 0
            assert _number(raw_bytes) == 4 * 4 * 4  # 4 instances x 4 float32 features
            assert _number(req_bytes) > _number(raw_bytes)
            assert _number(ratio) == pytest.approx(_number(req_bytes) / _number(raw_bytes), rel=0.01)
            assert _number(ips) == pytest.approx(4 * _number(rps), rel=0.05)
            header_rps = page.get_by_text("RPS", exact=True).locator("xpath=following-sibling::*[1]")
            deadline = time.monotonic() + 20  # Locust's header RPS is a 10 s moving window: wait for it
            while header_rps.inner_text().strip() in ("", "0") and time.monotonic() < deadline:
                page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / "locust-ui.png"), full_page=True, animations="disabled")

            page.get_by_role("button", name="Stop").click()
            expect(page.get_by_text("STOPPED").first).to_be_visible(timeout=40_000)
        finally:
            browser.close()
    assert "Traceback" not in log_path.read_text()
