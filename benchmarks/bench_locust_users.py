"""Benchmark: do our Locust users cost more client CPU than a bare FastHttpUser?

    python -m benchmarks.bench_locust_users [--users 8] [--duration 20] [--kind numeric] --out FILE.json

Two Locust processes run at the same time, one per user class, same user count and duration,
against the same target: by
default nginx answering every request with a canned one-row predict response (fast enough that the
Locust process, not the target, is the bottleneck), or with `--target embedded` the embedded
TF Serving-compatible server (then the server is usually the bottleneck and the ratio only shows
that both users get their fair share). Users: our `NumericUser` (pool of bodies,
response JSON parsed and batch length validated, payload metrics recorded) and `BareUser`, a
FastHttpUser posting one constant body with `self.client.post` and checking nothing. Each Locust
process saturates its CPU share, so the ratio of their request rates is the price of our user's
extra work per request. (Two classes in ONE process would hide it: gevent's loop gives every user
the same turns, so both rates come out equal whatever each costs.)
Target: ours >= 90% of the bare user's rate. Prints a table and writes the JSON document to --out.
"""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks import harness

ROOT = Path(__file__).resolve().parent.parent

BARE_LOCUSTFILE = '''
from locust import FastHttpUser, task

BODY = {body!r}
PATH = {path!r}
HEADERS = {{"Content-Type": "application/json"}}


class BareUser(FastHttpUser):
    """A FastHttpUser posting one constant body; no validation, no metrics."""

    @task
    def post(self):
        self.client.post(PATH, data=BODY, headers=HEADERS, name="bare constant body")
'''


NGINX = "/usr/sbin/nginx"
NGINX_CONF = """
worker_processes 1;
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 64m;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type application/json;
            return 200 '{{"predictions": [[0.1, 0.2, 0.7]]}}';
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx_target() -> Iterator[str]:
    """nginx on a free 127.0.0.1 port answering a canned predict response; killed by PID on exit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=tmp, port=port))
        proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", tmp, "-g", "daemon off;"], process_group=0)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("nginx did not start") from None
                    time.sleep(0.05)
            yield f"http://127.0.0.1:{port}"
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    ap = harness.parser("bench_locust_users", __doc__)
    ap.add_argument("--users", type=harness.positive_int, default=8, help="users in each Locust process (default 8)")
    ap.add_argument("--duration", type=harness.positive_int, default=20, help="seconds (default 20)")
    ap.add_argument("--kind", default="numeric", choices=("numeric", "text", "image"))
    ap.add_argument("--batch-size", type=harness.positive_int, default=1)
    ap.add_argument("--target", choices=("nginx", "embedded"), default="nginx" if Path(NGINX).exists() else "embedded")
    args = ap.parse_args(argv)

    from tfsbench.locustfiles.config import user_config
    from tfsbench.locustfiles.runtime import build_bodies
    from tfsbench.server.testing import serve_in_thread

    model = args.kind
    user_class = {"numeric": "NumericUser", "text": "TextUser", "image": "ImageUser"}[args.kind]
    target = nginx_target if args.target == "nginx" else serve_in_thread
    with target() as url, tempfile.TemporaryDirectory() as tmp:
        cfg = user_config({"model": model, "kind": args.kind, "batch_size": args.batch_size})
        pool = build_bodies(url, cfg, args.kind)
        bare = Path(tmp) / "bare_user.py"
        bare.write_text(BARE_LOCUSTFILE.format(body=pool.bodies[0], path=pool.path))
        common = ["--headless", "-H", url, "-u", str(args.users), "-r", str(args.users),
                  "-t", f"{args.duration}s", "--only-summary"]
        cmds = {
            "ours": [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "tfserving.py"), *common,
                     "--model", model, "--kind", args.kind, "--batch-size", str(args.batch_size),
                     "--csv", str(Path(tmp) / "ours"), user_class],
            "bare": [sys.executable, "-m", "locust", "-f", str(bare), *common, "--csv", str(Path(tmp) / "bare")],
        }
        started = time.monotonic()
        procs = {k: subprocess.Popen(c, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, process_group=0) for k, c in cmds.items()}
        output = ""
        try:
            for proc in procs.values():
                output += proc.communicate(timeout=args.duration + 60)[0]
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        wall_s = time.monotonic() - started
        rows = {}
        for k in cmds:
            rows.update({r["Name"]: r for r in csv.DictReader(open(Path(tmp) / f"{k}_stats.csv"))})
    ours_name = pool.name
    if ours_name not in rows or "bare constant body" not in rows:
        print(output)
        print(f"benchmark failed: missing rows (want {ours_name!r}, have {sorted(rows)})", file=sys.stderr)
        return 1
    ours, bare_row = rows[ours_name], rows["bare constant body"]
    ours_rps, bare_rps = float(ours["Requests/s"]), float(bare_row["Requests/s"])
    ratio = ours_rps / bare_rps if bare_rps else 0.0
    doc = {
        "target": args.target,
        "users_each": args.users,
        "duration_s": args.duration,
        "wall_s": round(wall_s, 1),
        "ours": {"name": ours_name, "requests": int(ours["Request Count"]), "failures": int(ours["Failure Count"]),
                 "rps": round(ours_rps, 1), "p50_ms": ours["50%"], "p99_ms": ours["99%"]},
        "bare": {"requests": int(bare_row["Request Count"]), "failures": int(bare_row["Failure Count"]),
                 "rps": round(bare_rps, 1), "p50_ms": bare_row["50%"], "p99_ms": bare_row["99%"]},
        "ratio": round(ratio, 3),
    }
    print(f"{'user':<28}{'requests':>10}{'fails':>7}{'req/s':>10}{'p50 ms':>8}{'p99 ms':>8}")
    for label, r in ((f"{user_class} ({ours_name})", doc["ours"]), ("BareUser (constant body)", doc["bare"])):
        print(f"{label:<28}{r['requests']:>10}{r['failures']:>7}{r['rps']:>10.1f}{r['p50_ms']:>8}{r['p99_ms']:>8}")
    print(f"ratio ours/bare = {ratio:.3f} (target >= 0.90)")
    return harness.emit("bench_locust_users", args, doc, {"ours_over_bare": harness.target(doc["ratio"], ">=", 0.9)},
                        argv)


if __name__ == "__main__":
    raise SystemExit(main())
