"""Write access-sample.json: ten minutes of a TF Serving front proxy's nginx JSON access log (seeded).

    .venv/bin/python examples/traffic/make_sample_log.py

The traffic is a seeded synthetic trace (a ramp from 30% to 100% of 2.5 req/s with one x3 burst;
80% numeric, 20% text; batch sizes are not in nginx logs), written the way nginx logs it: one line
per request at its *completion* ($msec = send time + $request_time), with a few health checks and
metadata calls, and two broken lines, as real logs have. docs/replay.md imports it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tfsbench.payloads.trace_synth import Bursts, SynthSpec, synthesize

START = 1796119200.0  # 2026-12-01T10:00:00Z


def main() -> None:
    trace = synthesize(SynthSpec(profile="ramp", peak_rps=2.5, trough=0.3, duration_s=600.0,
                                 bursts=Bursts(1, 3.0, 60.0), models=(("numeric", 0.8), ("text", 0.2)), seed=16))
    rng = np.random.default_rng(16)
    lines = []
    for t, k in zip(trace.t_s.tolist(), trace.key_index.tolist(), strict=True):
        model = trace.keys[k].model
        took = float(rng.gamma(2.0, 0.004 if model == "numeric" else 0.009))
        lines.append((START + t + took, {
            "msec": f"{START + t + took:.3f}", "remote_addr": "192.0.2.10", "request_method": "POST",
            "request_uri": f"/v1/models/{model}:predict", "status": "200", "request_time": f"{took:.3f}",
            "request_length": str(int(rng.integers(180, 220)) if model == "numeric" else int(rng.integers(300, 900))),
            "body_bytes_sent": "64", "http_user_agent": "python-requests/2.31"}))
    for t in np.arange(5.0, 600.0, 10.0):
        lines.append((START + t, {"msec": f"{START + t:.3f}", "request_method": "GET", "request_uri": "/healthz",
                                  "status": "200", "request_time": "0.000"}))
    lines.append((START + 30.0, {"msec": f"{START + 30:.3f}", "request_method": "GET",
                                 "request_uri": "/v1/models/numeric/metadata", "status": "200",
                                 "request_time": "0.002"}))
    lines.sort(key=lambda x: x[0])
    text = [json.dumps(doc) for _, doc in lines]
    text.insert(200, '{"msec": "1796119260.120", "request_method": "POST", "request_uri": "/v1/models/numer')
    text.insert(900, "upstream timed out (110: Connection timed out) while reading response header")
    out = Path(__file__).with_name("access-sample.json")
    out.write_text("\n".join(text) + "\n", encoding="utf-8")
    print(f"wrote {out}: {len(text)} lines")


if __name__ == "__main__":
    main()
