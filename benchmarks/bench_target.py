"""Benchmark of the embedded target itself (not a test): requests/s for numeric batch 1 and image batch 8.

    python -m benchmarks.bench_target [--duration 10] [--workers 1] [--serve-args "--no-uvloop"]

Why: the self-benchmarks measure the suite's own engines against this target, so the target must
not be the bottleneck; this prints how much it can take on this machine. It starts
`tfsbench serve --port 0` as a subprocess, drives it with `wrk` (closed loop, keep-alive) when
/usr/bin/wrk exists, else with a small aiohttp closed-loop client, and prints one line per case.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

NUMERIC_BODY = b'{"instances": [[0.1, 0.2, 0.3, 0.4]]}'


def image_body(batch_size: int) -> bytes:
    """The suite's own image payload (128x128 'photo' JPEGs as b64), as `tfsbench payload` writes it."""
    result = subprocess.run(
        [sys.executable, "-m", "tfsbench", "payload", "--kind", "image", "--batch-size", str(batch_size)],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return result.stdout


def run_wrk(url: str, body: bytes, connections: int, duration_s: float) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
        script.write("wrk.body = [==[" + body.decode() + "]==]\n")
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{int(duration_s)}s", "-s", script.name, url],
            capture_output=True,
            text=True,
            check=True,
            timeout=duration_s + 60,
        ).stdout
    finally:
        os.unlink(script.name)
    match = re.search(r"Requests/sec:\s*([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    if non2xx:
        raise RuntimeError(f"wrk saw {non2xx.group(1)} error responses")
    return float(match.group(1)) if match else 0.0


async def _closed_loop(url: str, body: bytes, connections: int, duration_s: float) -> float:
    import aiohttp

    done = 0
    deadline = time.perf_counter() + duration_s
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"HTTP {resp.status}")
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return done / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    from tfsbench.server.testing import serve_process

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per case (default 10)")
    parser.add_argument("--workers", type=int, default=1, help="tfsbench serve --workers (default 1)")
    parser.add_argument("--serve-args", default="", help="extra arguments for tfsbench serve")
    parser.add_argument("--client", choices=("auto", "wrk", "aiohttp"), default="auto")
    args = parser.parse_args(argv)
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk") is not None)
    cases = [("numeric", 1, NUMERIC_BODY, 16), ("image", 8, image_body(8), 8)]
    serve_args = ["--workers", str(args.workers), *shlex.split(args.serve_args)]
    print(f"# {platform.node()} cpus={os.cpu_count()} python={platform.python_version()} "
          f"client={'wrk' if use_wrk else 'aiohttp'} serve_args={' '.join(serve_args)} "
          f"load={os.getloadavg()[0]:.1f}")
    with serve_process(*serve_args) as server:
        for model, batch, body, connections in cases:
            url = f"{server.base_url}/v1/models/{model}:predict"
            cpu_before_s = server.cpu_s()
            if use_wrk:
                rate = run_wrk(url, body, connections, args.duration)
            else:
                rate = asyncio.run(_closed_loop(url, body, connections, args.duration))
            requests = rate * args.duration
            cpu_us = (server.cpu_s() - cpu_before_s) / requests * 1e6 if requests else 0.0
            # CPU per request is what the target costs, whatever else the machine runs (main process only)
            print(f"{model:8s} batch={batch:<3d} body={len(body):>6d} B connections={connections:<3d} "
                  f"{rate:9.0f} req/s {rate * batch:9.0f} instances/s  server CPU {cpu_us:7.0f} us/request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
