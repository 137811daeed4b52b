"""`doctor --browser` keeps Chromium's sandbox unless it cannot work (root, container), and says so."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from tfsbench.doctor import browser as doctor_browser
from tfsbench.doctor.checklist import browser_finding


def test_a_normal_user_outside_containers_keeps_the_sandbox() -> None:
    sandbox, why = doctor_browser.sandbox_policy(euid=1000, container=False)
    assert sandbox is True and why == "on"
    assert "--no-sandbox" not in doctor_browser.chromium_args(sandbox)


@pytest.mark.parametrize("euid, container, reason", [(0, False, "running as root"), (0, True, "running as root"),
                                                     (1000, True, "inside a container")])
def test_root_or_a_container_drops_it_and_says_why(euid: int, container: bool, reason: str) -> None:
    sandbox, why = doctor_browser.sandbox_policy(euid=euid, container=container)
    assert sandbox is False and why.startswith("off (--no-sandbox): ") and reason in why
    assert doctor_browser.chromium_args(sandbox)[0] == "--no-sandbox"


def test_container_detection_reads_the_usual_markers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("container", raising=False)
    monkeypatch.setattr(doctor_browser, "_CONTAINER_MARKERS", (str(tmp_path / "absent"),))
    assert doctor_browser.in_container() is False
    monkeypatch.setenv("container", "podman")
    assert doctor_browser.in_container() is True


def test_the_report_line_names_the_sandbox_state() -> None:
    seen = {"ok": True, "completed": 1, "calls": 1, "page_origin": "http://127.0.0.1:1", "predict_url": "u",
            "latency_ms": {"first": 1.0, "median": 1.0, "p90": 1.0, "max": 1.0},
            "sandbox": "off (--no-sandbox): running as root, where Chromium refuses to start sandboxed"}
    assert "Chromium sandbox: off (--no-sandbox): running as root" in "\n".join(browser_finding(seen).details)


@pytest.mark.browser
def test_real_chromium_reports_its_sandbox_state(tfs_server: Callable[..., str]) -> None:
    assert Path(doctor_browser.CHROMIUM).exists(), "Debian's /usr/bin/chromium is required for browser tests"
    url = tfs_server(enable_cors=True)
    body = json.dumps({"instances": [[0.5, 1.5, 2.5, 3.5]]}).encode()
    seen = doctor_browser.browser_check(url + "/v1/models/numeric:predict", body, calls=1, timeout_s=30)
    assert seen["ok"], seen
    expected = doctor_browser.sandbox_policy()[1]
    if os.geteuid() == 0 or doctor_browser.in_container():
        assert seen["sandbox"] == expected and seen["sandbox"].startswith("off (--no-sandbox): ")
    else:
        assert seen["sandbox"] == "on" or seen["sandbox"].startswith("off (--no-sandbox): the sandbox failed")
