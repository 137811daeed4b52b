"""Reports escape every string that comes from results, configs or server responses.

One run file carries a different `<img src=x onerror=alert(N)>` in every string it has (model,
label, signature, URL, payload options, environment, warnings, partial reason, error class and
samples, the server's view), its file name carries another, and the report title one more; then
`tfsbench report` renders it with a comparison and a capacity plan. No tag may survive into
report.html or summary.md, and each payload must still be shown, as text.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from tfsbench.bench.results import save_result
from tfsbench.reports.synthetic import make_run

ROOT = Path(__file__).resolve().parent.parent


def xss(n: int) -> str:
    return f"<img src=x onerror=alert({n})>"


FIELDS = ("model", "label", "signature", "url", "extra", "environment", "warning", "partial_reason", "error_class",
          "error_sample", "server", "file_name", "title", "header_name")


def _hostile_run() -> object:
    run = make_run("numeric", 4, concurrency=2, model=xss(FIELDS.index("model")), error_rate=0.02)
    n = FIELDS.index
    config = dataclasses.replace(
        run.config, label=xss(n("label")), signature=xss(n("signature")),
        url=f"http://127.0.0.1:8501/{xss(n('url'))}", extra={"payload": {"input_name": xss(n("extra"))}},
    )
    errors = {xss(n("error_class")): 3, **dict(run.summary.errors)}
    summary = dataclasses.replace(run.summary, errors=errors, requests=run.summary.requests + 3,
                                  error_samples=(xss(n("error_sample")),))
    return dataclasses.replace(
        run, config=config, summary=summary,
        environment={**dict(run.environment), "hostname": xss(n("environment")),
                     "target": {"model_status": {"error": xss(n("environment"))}},
                     "headers": {xss(n("header_name")): "x"}},
        warnings=(f"server said {xss(n('warning'))}",), partial=True, partial_reason=xss(n("partial_reason")),
        server={"scrape_url": xss(n("server")), "found": True, "model_name": xss(n("server"))},
    )


class _TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, [(a.lower(), v or "") for a, v in attrs]))


def _tags(text: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every start tag a browser would see, with its attributes (values unescaped)."""
    parser = _TagCollector()
    parser.feed(text)
    parser.close()
    return parser.tags


@pytest.mark.slow
def test_every_string_is_escaped_in_html_and_markdown(tmp_path: Path) -> None:
    hostile = tmp_path / f"{xss(FIELDS.index('file_name'))}.json"
    save_result(_hostile_run(), hostile)
    plain = tmp_path / "plain.json"
    save_result(make_run("numeric", 4, concurrency=2, error_rate=0.02), plain)
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "tfsbench", "report", str(plain), str(hostile), "--out", str(out),
         "--title", xss(FIELDS.index("title")), "--slo", "p99<=500ms", "--target-qps", "100"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    html = (out / "report.html").read_text(encoding="utf-8")
    markdown = (out / "summary.md").read_text(encoding="utf-8")
    for name, text in (("report.html", html), ("summary.md", markdown)):
        assert "<img src=x" not in text.lower(), name
        # the only images are the report's own figures, inlined
        assert all(src.startswith("data:image/png;base64,") for src in re.findall(r"<img[^>]*src=\"([^\"]*)", text))
        tags = _tags(text)
        assert not [t for t in tags if t[0] in ("script", "iframe", "object", "embed", "svg", "math")], name
        assert not [t for t in tags if any(a.startswith("on") for a, _ in t[1])], name  # no event handlers
        hrefs = [v for _, attrs in tags for a, v in attrs if a in ("href", "src", "action") and v]
        assert all(v.startswith(("#", "data:image/png;base64,")) for v in hrefs), name
    assert "<script" not in html.lower()
    # shown as text: the model name, the file name and the title at least
    for field in ("model", "file_name", "title"):
        assert f"&lt;img src=x onerror=alert({FIELDS.index(field)})&gt;" in html, field
    shown = {i for i in range(len(FIELDS)) if f"onerror=alert({i})" in html}
    assert len(shown) >= 6, sorted(FIELDS[i] for i in shown)
