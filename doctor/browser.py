"""`tfsbench doctor --browser`: the same fetch() a web app makes, in a real headless Chromium.

A tiny page is served on a loopback port, a different origin from the model server, so the browser
applies its full CORS machinery (preflight, then the response check). The page POSTs the body with
`Content-Type: application/json` to the model's :predict URL N times in a row and times each call
with `performance.now()`; Chromium's own CORS message (from the console) is reported on failure.

Uses Debian's /usr/bin/chromium through Playwright; never downloads a browser. Chromium runs with
its sandbox, except where the sandbox cannot work: as root (Chromium refuses to sandbox root) or in
a container (no user namespaces), or when it fails to start; the report says which and why.
"""

from __future__ import annotations

import json
import statistics
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tfsbench.payloads.errors import InputError

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>tfsbench doctor</title></head>
<body><p>tfsbench doctor: browser fetch() check</p>
<script>
const BODY = __BODY__;
async function runCalls(url, n, timeoutMs) {
  const latency = [];
  for (let i = 0; i < n; i++) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    const t0 = performance.now();
    try {
      const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                  body: BODY, signal: ctl.signal});
      const text = await r.text();
      const ms = performance.now() - t0;
      clearTimeout(timer);
      if (!r.ok) {
        return {ok: false, error: "HTTP " + r.status + ": " + text.slice(0, 300), latency, bytes: text.length};
      }
      latency.push(ms);
      if (i === n - 1) return {ok: true, latency, bytes: text.length};
    } catch (e) {
      clearTimeout(timer);
      return {ok: false, error: String(e), latency};
    }
  }
  return {ok: true, latency, bytes: 0};
}
</script></body></html>
"""


_CONTAINER_MARKERS = ("/.dockerenv", "/run/.containerenv")


def in_container() -> bool:
    """Docker, Podman or systemd-nspawn (which sets $container)."""
    import os

    return bool(os.environ.get("container")) or any(os.path.exists(p) for p in _CONTAINER_MARKERS)


def sandbox_policy(euid: int | None = None, container: bool | None = None) -> tuple[bool, str]:
    """(use Chromium's sandbox?, why) for this process: off only where the sandbox can't work."""
    import os

    euid = os.geteuid() if euid is None else euid
    container = in_container() if container is None else container
    if euid == 0:
        return False, "off (--no-sandbox): running as root, where Chromium refuses to start sandboxed"
    if container:
        return False, "off (--no-sandbox): inside a container, where Chromium's sandbox has no user namespaces"
    return True, "on"


def chromium_args(sandbox: bool) -> list[str]:
    return list(CHROMIUM_ARGS) if sandbox else ["--no-sandbox", *CHROMIUM_ARGS]


def page_html(body: bytes) -> bytes:
    """The page, with the request body embedded as a JS string (safe inside <script>)."""
    literal = json.dumps(body.decode("utf-8")).replace("<", "\\u003c").replace("\u2028", "\\u2028")
    return _PAGE.replace("__BODY__", literal.replace("\u2029", "\\u2029")).encode("utf-8")


@contextmanager
def serve_page(html: bytes, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `html` at / on a loopback port; yield the page's origin (http://127.0.0.1:PORT)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path not in ("/", "/index.html"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence access logs
            return

    server = ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="tfsbench-doctor-page", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def browser_check(
    predict_url: str,
    body: bytes,
    calls: int = 10,
    timeout_s: float = 30.0,
    executable: str = CHROMIUM,
) -> dict[str, Any]:
    """Run the fetch() calls in headless Chromium; return what the page saw (see module doc)."""
    import os

    if not os.path.exists(executable):
        raise InputError(f"--browser needs Chromium at {executable} (apt install chromium)")
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise InputError("--browser needs the playwright package (pip install playwright)") from None

    console: list[str] = []
    sandbox, sandbox_text = sandbox_policy()
    with serve_page(page_html(body)) as origin:
        out: dict[str, Any] = {"page_origin": origin, "predict_url": predict_url, "calls": calls}
        try:
            with sync_playwright() as p:
                try:
                    browser = p.chromium.launch(executable_path=executable, args=chromium_args(sandbox),
                                                headless=True)
                except PlaywrightError as exc:
                    if not sandbox:
                        raise
                    first = str(exc).splitlines()[0][:120]
                    sandbox_text = f"off (--no-sandbox): the sandbox failed to start ({first})"
                    browser = p.chromium.launch(executable_path=executable, args=chromium_args(False),
                                                headless=True)
                out["sandbox"] = sandbox_text
                try:
                    page = browser.new_page()
                    page.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None)
                    page.goto(origin + "/", timeout=timeout_s * 1000)
                    seen = page.evaluate(
                        "([url, n, t]) => runCalls(url, n, t)", [predict_url, calls, int(timeout_s * 1000)]
                    )
                    if not seen.get("ok") and not any("CORS" in m for m in console):
                        try:  # Chromium logs the CORS reason a moment after fetch() rejects
                            page.wait_for_event("console", timeout=2000)
                        except PlaywrightError:
                            pass
                finally:
                    browser.close()
        except PlaywrightError as exc:
            raise InputError(f"--browser: Chromium failed ({str(exc).splitlines()[0]})") from None
    latency = [float(x) for x in seen.get("latency", [])]
    out["ok"] = bool(seen.get("ok"))
    out["completed"] = len(latency)
    out["response_bytes"] = int(seen.get("bytes") or 0)
    out["console"] = console
    cors = [m for m in console if "CORS" in m]
    out["cors_error"] = cors[0] if cors else None
    out["error"] = None if out["ok"] else (out["cors_error"] or seen.get("error") or "fetch() failed")
    if latency:
        ordered = sorted(latency)
        out["latency_ms"] = {
            "first": latency[0],
            "median": statistics.median(latency),
            "p90": ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))],
            "max": ordered[-1],
            "mean": statistics.fmean(latency),
        }
    return out
