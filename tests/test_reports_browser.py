"""report.html as a person sees it: Debian's Chromium through Playwright, offline, no console errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from reports_fixtures import (
    ROOT,
    synth,  # noqa: F401
)
from tfsbench.bench.stats.slo import parse_slo
from tfsbench.reports.build import build_report
from tfsbench.reports.dataset import load_sources
from tfsbench.reports.plan import make_plan

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


@pytest.mark.browser
def test_report_renders_in_chromium(synth, tmp_path) -> None:  # noqa: F811
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    sources = load_sources([str(synth["sweep"]), str(synth["after"]), str(synth["xss"]), str(synth["bad"])])
    slo = parse_slo("p99<=20ms")
    plan = make_plan(sources[:1], slo, target_ips=5000, cost_per_replica_hour=0.4)
    files = build_report(sources, tmp_path / "rep", slo=slo, plan=plan)
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda r: requests.append(r.url))
            page.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
            page.goto(files.html.as_uri())
            page.wait_for_load_state("load")
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            assert widths and all(w > 0 for w in widths), widths
            assert len(widths) == len(files.figures)
            rows = page.eval_on_selector_all("table", "ts => ts.map(t => t.tBodies[0] ? t.tBodies[0].rows.length : 0)")
            assert rows and all(n > 0 for n in rows), rows
            assert page.locator("section.warnings").is_visible()
            assert page.locator("#plan .callout").is_visible()
            # the hostile model name is text on the page, never an element
            assert page.locator("img[src='x']").count() == 0
            assert "<img src=x onerror=alert(1)>" in page.inner_text("body")
            out = ROOT / "test-artifacts"
            out.mkdir(exist_ok=True)
            page.screenshot(path=str(out / "report.png"), full_page=False)
            page.screenshot(path=str(out / "report-full.png"), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    assert all(u.startswith(("file:", "data:")) for u in requests), [u for u in requests if not u.startswith("data:")]
