"""Write docs/performance.md from the committed benchmark documents in benchmarks/data/.

    python -m benchmarks.perf_table            # rewrite docs/performance.md
    python -m benchmarks.perf_table --check    # exit 1 if the page is not what the data gives

The page is generated, never typed: each table comes from one JSON document written by a benchmark
script (`python -m benchmarks.bench_NAME ... --out benchmarks/data/bench_NAME.json`, see
benchmarks/harness.py) or by `tfsbench selfbench --out benchmarks/data/selfbench.json`, and says
which machine it came from. tests/test_benchmarks_smoke.py checks that the committed page is what
this script makes of the committed data, so the two never drift. To refresh a figure: rerun its
command (printed above its table) with the same --out, then run this script and commit both.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "benchmarks" / "data"
PAGE = ROOT / "docs" / "performance.md"
BENCHMARK_TYPE = "tfsbench.benchmark"  # benchmarks/harness.py
SELFBENCH_TYPE = "tfsbench.selfbench"  # bench/orchestrate/selfbench.py

Row = list[str]


class DataError(ValueError):
    """A data file that is not a benchmark document this script can read."""


# ---- formatting -------------------------------------------------------------------------------


def num(value: Any, digits: int = 3) -> str:
    """A number for a table: thousands separators, about `digits` significant digits, never 'nan'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        if value == 0:
            return "0"
        magnitude = math.floor(math.log10(abs(value)))
        decimals = max(0, digits - 1 - magnitude)
        return f"{value:,.{decimals}f}"
    if isinstance(value, list | tuple):
        return ", ".join(num(v, digits) for v in value)
    return str(value).replace("|", "\\|")


def table(header: Row, rows: Iterable[Row]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def flatten(doc: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested results as (dotted key, value) pairs; long lists (samples) are left out."""
    out: list[tuple[str, Any]] = []
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out += flatten(value, name + ".")
        elif isinstance(value, list | tuple) and (len(value) > 8 or any(isinstance(v, list | dict) for v in value)):
            continue
        else:
            out.append((name, value))
    return out


def generic(results: Mapping[str, Any]) -> list[str]:
    return table(["figure", "value"], ([f"`{k}`", num(v)] for k, v in flatten(results)))


# ---- one renderer per benchmark ---------------------------------------------------------------


def payloads(r: Mapping[str, Any]) -> list[str]:
    e = r["encode"]
    lines = table(["64 x 784 float32 row request", "time", "wire bytes"], [
        ["encode, `encode_request` (orjson, float32 shortest repr)", f"{num(e['encode_ours_ms'])} ms",
         num(e["wire_ours_bytes"])],
        ["encode, `json.dumps({\"instances\": array.tolist()})`", f"{num(e['encode_naive_ms'])} ms",
         num(e["wire_naive_bytes"])],
        ["decode, `decode_request` (with TF Serving's checks)", f"{num(e['decode_ours_ms'])} ms", ""],
        ["decode, `np.array(json.loads(body)[\"instances\"])`", f"{num(e['decode_naive_ms'])} ms", ""],
    ])
    lines += ["", f"Encoding is **{num(e['encode_speedup'])}x** faster than the naive client code; our body is "
              f"{e['wire_ours_bytes'] / e['wire_naive_bytes']:.0%} of its size (raw tensor {num(e['raw_bytes'])} B).",
              ""]
    lines += table(["64-body pool", "batch size", "build time", "mean wire bytes"],
                   ([p["kind"], num(p["batch_size"]), f"{num(p['pool_build_ms'])} ms", num(p["mean_wire_bytes"])]
                    for p in r["pools"]))
    return lines


def target_server(r: Mapping[str, Any]) -> list[str]:
    lines = [f"Client: {r['client']}; `tfsbench serve {' '.join(r['serve_args'])}`; {num(r['duration_s'])} s per case.",
             ""]
    lines += table(["case", "body", "connections", "requests", "req/s", "instances/s", "server CPU per request"],
                   ([f"`{c['model']}` batch {c['batch_size']}", f"{num(c['body_bytes'])} B", num(c["connections"]),
                     num(c["requests"]), num(c["throughput_rps"]), num(c["throughput_ips"]),
                     f"{num(c['server_cpu_us_per_request'])} us"] for c in r["cases"]))
    return lines


def report(r: Mapping[str, Any]) -> list[str]:
    return table(["case (fresh process each time)", "median", "min", "max"],
                 ([name, f"{num(c['median_s'])} s", f"{num(c['min_s'])} s", f"{num(c['max_s'])} s"]
                  for name, c in r["cases"].items()))


def engine_cpu(r: Mapping[str, Any]) -> list[str]:
    keys = [k for k in r if "/" in k and isinstance(r[k], Mapping)]
    lines = [f"Target: {r['target']}; {r['pinning']}; {r['connections']} connections; medians of {r['rounds']} rounds.",
             ""]
    lines += table(["engine / validation", "CPU per request", "req/s"],
                   ([f"`{k}`", f"{num(r[k]['cpu_us_per_request'])} us", num(r[k]["throughput_rps"])] for k in keys))
    lines += ["", f"The aiohttp engine spends **{num(r['aiohttp_over_fast_cpu'])}x** the fast engine's CPU per request."]
    return lines


def aiohttp_session(r: Mapping[str, Any]) -> list[str]:
    lines = [f"aiohttp {r['aiohttp']}, target: {r['target']}, {r['connections']} connections, "
             f"{num(r['requests_per_round'])} requests a round, {r['rounds']} alternating rounds.", ""]
    lines += table(["`ClientSession` variant", "CPU per request (median)", "rounds"],
                   ([f"`{v}`", f"{num(us)} us", num(r["rounds_cpu_us"].get(v, []))]
                    for v, us in r["cpu_us_per_request"].items()))
    return lines


def locust_users(r: Mapping[str, Any]) -> list[str]:
    lines = [f"Target: {r['target']}; {r['users_each']} users in each of two Locust processes; "
             f"{r['duration_s']} s.", ""]
    lines += table(["user", "requests", "failures", "req/s", "p50 ms", "p99 ms"],
                   ([label, num(u["requests"]), num(u["failures"]), num(u["rps"]), num(u["p50_ms"]),
                     num(u["p99_ms"])]
                    for label, u in ((f"ours ({r['ours']['name']})", r["ours"]), ("bare FastHttpUser", r["bare"]))))
    lines += ["", f"ours / bare = **{num(r['ratio'])}**"]
    return lines


def selfbench(r: Mapping[str, Any]) -> list[str]:
    lines = [f"Target: {r['target_note']}; {r['connections']} connections; {r['rounds']} rounds "
             f"of {r['duration_s']:g} s in rotating order; {r.get('pinning') or 'not pinned'}.", ""]
    lines += table(["client", "req/s (median)", "rounds", "req/CPU-s", "note"],
                   ([t["tool"], num(t["rps"]), num(t.get("rounds_rps") or []), num(t.get("rps_per_cpu")),
                     num(t.get("note") or "")] for t in r["rates"]))
    lines.append("")
    lines += table(["ratio (median of per-round ratios)", "value", "rounds", "target"],
                   ([name, f"**{num(value)}**", num(r.get("ratio_rounds", {}).get(name) or []),
                     f">= {num(r['targets'][name])}" if name in r.get("targets", {}) else "-"]
                    for name, value in r["ratios"].items()))
    return lines


@dataclass(frozen=True, slots=True)
class Section:
    """One benchmark's part of the page: its data file, what it measures, how it is drawn, notes."""

    name: str  # data file stem: benchmarks/data/<name>.json
    title: str
    measures: str
    render: Callable[[Mapping[str, Any]], list[str]]
    notes: str = ""


SECTIONS: tuple[Section, ...] = (
    Section(
        "selfbench", "Load generator against wrk and Locust (`tfsbench selfbench`)",
        "Requests/s of wrk (C, the ceiling), our fast and aiohttp engines and Locust's FastHttpUser against a "
        "target that cannot be the bottleneck (nginx with a static answer), same connections, same run. "
        "Targets: fast/wrk >= 0.8, aiohttp/Locust >= 2. Read the ratios, not the rates: two tools of one round "
        "run seconds apart, so load from other jobs mostly cancels out.",
        selfbench,
        "Historical (the old README, 2026-11-27, same kind of 2-core VM): on an idle machine, 5 rounds of 5 s "
        "gave fast/wrk 0.84 (every round >= 0.81; wrk 127k req/s, fast 111k) and aiohttp/Locust 1.64 (rounds "
        "1.59-2.08); across that day's runs fast/wrk ranged 0.75-0.91 and aiohttp/Locust 1.6-1.96. Pinning "
        "(`--pin`) cut wrk from 55k to 32k req/s on a busy machine, which is why it is off by default. The "
        "2x aiohttp/Locust target was not met on those days: what limits it is aiohttp's own per-request "
        "machinery (about 55 us of CPU per request on Python 3.11), while Locust's rate rises as much as ours "
        "when the machine is quiet."),
    Section(
        "bench_engine_cpu", "CPU per request of each engine",
        "Client CPU time (user + system) per request over closed-loop runs against nginx, for status-only "
        "validation (the load generator's own cost) and full validation (JSON parse and batch check). CPU per "
        "request swings much less than throughput on a shared machine; it decides how much load one core "
        "can offer, and why `--engine fast` is the default.",
        engine_cpu,
        "Historical: 10.0 us (fast) against 68 us (aiohttp) on an idle machine; 9.7 us after the fast "
        "engine started writing requests with `os.write` instead of `transport.write`."),
    Section(
        "bench_engine_openloop", "Open loop: keeping the schedule at half the ceiling",
        "The fast engine's closed-loop ceiling against nginx, then an open-loop run at half that rate: "
        "achieved/offered (target within 1%) and the schedule lag, how late requests left (target p99 < 1 ms).",
        generic,
        "Historical: on an idle machine 6 of 7 runs met p99 < 1 ms at 46-54k req/s (p99 0.34-0.48 ms). The "
        "tail on a busy machine is the OS run queue, not the engine (`--fifo` tells them apart). Two fixes got "
        "it there: the recorder folds latencies into its histograms every 0.1 s instead of once a second, and "
        "completions send due arrivals when the dispatcher is more than 0.2 ms behind."),
    Section(
        "bench_engine_memory", "Memory over many requests",
        "Resident memory of the load generator sampled while one closed-loop run sends N requests; the growth "
        "is extrapolated to 10 million requests (target < 100 MB).",
        generic,
        "Historical: 10 million requests added 0.23 MB (fast engine, 97 s) and 1.45 MB (aiohttp engine)."),
    Section(
        "bench_aiohttp_session", "aiohttp `ClientSession` variants",
        "Bare `ClientSession` request loops (no engine) against nginx, to see what aiohttp itself costs per "
        "request and which session settings help.",
        aiohttp_session,
        "Historical: sending `Accept-Encoding: identity` as a session header instead of listing it in "
        "`skip_auto_headers` saved 5-7%; an eager body writer cost 37% more."),
    Section(
        "bench_target", "The embedded target (`tfsbench serve`)",
        "How much the embedded target takes on this machine, closed loop with keep-alive, and its own CPU time "
        "per request (which depends much less on the neighbours than the rate does). The target must not be "
        "the bottleneck when the suite benchmarks its own engines.",
        target_server,
        "Historical: 1,690-2,170 req/s numeric b=1 (165-200 us of server CPU) and 147-201 req/s image b=8 "
        "(2.1-2.6 ms) under load average 5-9. A status GET costs about 50 us of CPU (aiohttp and loopback); "
        "numeric predict adds about 25 us decoding, 30 us model, 15 us encoding and metrics."),
    Section(
        "bench_payloads", "Payloads: encoding and pools",
        "Encoding a 64 x 784 float32 batch with the suite's codec against the common client code (target: "
        ">= 10x faster), decoding it with TF Serving's checks, and building 64-body pools (paid once, before "
        "the load).",
        payloads,
        "Historical: 26x-49x faster than the naive code, body 52% of its size (the naive path writes float64 "
        "reprs of float32 values)."),
    Section(
        "bench_report", "Reports",
        "`tfsbench report` end to end in a fresh process (imports, loading, figures, HTML/Markdown/CSV) over "
        "synthetic sweeps with real HdrHistograms. Target: under 15 s for a 60-run sweep on 2 cores.",
        report,
        "Historical: 60-run sweep 7.3-10.6 s, with a capacity plan 6.7-10.9 s, two sweeps compared 7.4-13.4 s "
        "at load average 5-6. Rendering PNGs is nearly all of it; the comparison's bootstrap draws each "
        "percentile as an order statistic (0.5 s for 60 pairs; a multinomial resampling took 4.5 s)."),
    Section(
        "bench_gates", "CI gate statistics",
        "A naive multinomial bootstrap of a p99 against the order-statistic shortcut `tfsbench check` uses "
        "(same distribution, one Beta draw per replicate), and a whole check of 24 runs with a baseline.",
        generic),
    Section(
        "bench_locust_users", "Locust users against a bare FastHttpUser",
        "Two Locust processes side by side: our user (pooled bodies, response validated, payload metrics) and a "
        "bare FastHttpUser posting one constant body. Target: ours >= 90% of the bare user's rate.",
        locust_users),
    Section(
        "bench_replay", "Trace replay: timing and counts",
        "A seeded synthetic one-hour trace replayed at 60x against a static target and the embedded one: "
        "schedule lag over all requests, per-window counts equal to the trace's, and the replay's length.",
        generic),
    Section(
        "bench_soak", "Soak: memory over a long open-loop run",
        "A long open-loop run against the embedded target with the RSS of both processes sampled as it goes: "
        "a long run must not grow.",
        generic,
        "Historical: 30 minutes at 500 req/s (900,000 requests, all ok): load generator RSS 49.5 MiB at 70 s "
        "and 50.7 MiB at the end, peak after the load 51.7 MiB once `tfsbench.bench.measure.hist` broke hdrh's "
        "reference cycle (it was 388 MiB before). Figure of that run: [soak-fast-30min.png](img/soak-fast-30min.png)."),
)


# ---- the page ---------------------------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("type") not in (BENCHMARK_TYPE, SELFBENCH_TYPE):
        raise DataError(f"{path}: not a benchmark document (type {BENCHMARK_TYPE!r} or {SELFBENCH_TYPE!r})")
    if doc.get("schema_version") != 1:
        raise DataError(f"{path}: schema_version {doc.get('schema_version')!r}, this script reads 1")
    if doc["type"] == BENCHMARK_TYPE:
        if not isinstance(doc.get("results"), dict):
            raise DataError(f"{path}: no 'results' object")
        targets = doc.get("targets") or {}
        if not isinstance(targets, dict) or not all(
                isinstance(t, dict) and {"value", "op", "limit", "met"} <= set(t) for t in targets.values()):
            raise DataError(f"{path}: 'targets' must map names to {{value, op, limit, met}}")
    return doc


def machine_line(doc: Mapping[str, Any]) -> str:
    m = doc.get("machine") or {}
    if m.get("date"):
        when = m["date"] + (f" {m['time_utc']} UTC" if m.get("time_utc") else "")
    else:  # selfbench documents carry their start time instead
        when = str(doc.get("started_at", ""))[:16].replace("T", " ") + " UTC"
    load = m.get("load_avg")
    parts = [f"{m.get('cpus', '?')} CPUs" + (f" ({m['cpu_model']})" if m.get("cpu_model") else ""),
             f"Python {m.get('python', '?')}", m.get("platform", ""), when,
             f"load average {' / '.join(num(x) for x in load)}" if load else ""]
    return "Machine: " + ", ".join(p for p in parts if p) + "."


def command_of(name: str, doc: Mapping[str, Any]) -> str:
    if doc["type"] == SELFBENCH_TYPE:
        return (f"tfsbench selfbench --duration {doc['duration_s']:g}s --connections {doc['connections']} "
                f"--rounds {doc['rounds']} --out benchmarks/data/{name}.json")
    # scratch paths of the machine it ran on (a soak's --dir) are shown as the results/ they stand for
    command = " ".join(f"results/{Path(w).name}" if w.startswith("/tmp/") else w
                       for w in str(doc.get("command", f"python -m benchmarks.{name}")).split(" "))
    head, sep, _ = command.partition(" --out ")
    rest = command[len(head) + len(sep):].split(" ", 1)
    return f"{head} --out benchmarks/data/{name}.json" + (f" {rest[1]}" if sep and len(rest) > 1 else "")


def targets_lines(doc: Mapping[str, Any]) -> list[str]:
    targets = doc.get("targets") or {} if doc["type"] == BENCHMARK_TYPE else {}  # selfbench: in its ratio table
    if not targets:
        return []
    return ["", *table(["target", "value", "wanted", "met"],
                       ([f"`{k}`", num(t.get("value")), f"{t.get('op')} {num(t.get('limit'))}",
                         "**yes**" if t.get("met") else "**no**"] for k, t in targets.items()))]


def section_lines(section: Section, doc: Mapping[str, Any] | None) -> list[str]:
    lines = [f"## {section.title}", "", section.measures, ""]
    if doc is None:
        command = ("tfsbench selfbench" if section.name == "selfbench" else f"python -m benchmarks.{section.name}")
        lines += [f"Not measured yet: run `{command} --out benchmarks/data/{section.name}.json` and regenerate "
                  "this page.", ""]
    else:
        results = doc if doc["type"] == SELFBENCH_TYPE else doc["results"]
        lines += [f"`{command_of(section.name, doc)}`", "", machine_line(doc), ""]
        lines += section.render(results) + targets_lines(doc) + [""]
    if section.notes:
        lines += ["*" + section.notes.replace("Historical", "Historical*", 1), ""]
    return lines


def render(data_dir: Path = DATA_DIR) -> str:
    """The whole page from the documents in `data_dir` (raises DataError on a bad one)."""
    docs = {p.stem: load(p) for p in sorted(data_dir.glob("*.json"))}
    lines = [
        "# Performance",
        "",
        "<!-- Generated by `python -m benchmarks.perf_table` from benchmarks/data/*.json: do not edit by hand. -->",
        "",
        "The suite's own speed: how much load one core of the load generator offers, whether the open loop keeps "
        "its schedule, what the embedded target and the report cost. Each table comes from one committed JSON "
        "document and names the machine it was measured on. Shared 2-core VMs are noisy: absolute rates swing "
        "up to 2x between runs, so compare ratios within one run, and CPU per request rather than rates. "
        "Notes marked *historical* quote figures from earlier runs on the same kind of machine.",
        "",
        "To refresh a table: run the command above it (sizes as you like), then "
        "`python -m benchmarks.perf_table` and commit the JSON and this page together.",
        "",
    ]
    known = {s.name for s in SECTIONS}
    for section in SECTIONS:
        lines += section_lines(section, docs.get(section.name))
    for name in sorted(set(docs) - known):
        lines += section_lines(Section(name, f"`{name}`", "", generic), docs[name])
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.perf_table", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="directory of benchmark JSON documents")
    parser.add_argument("--out", type=Path, default=PAGE, help="the page to write (default docs/performance.md)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if --out differs")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        parser.error(f"--data: {args.data} is not a directory")
    try:
        text = render(args.data)
    except DataError as exc:
        print(f"perf_table: error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"perf_table: {args.out} is not what {args.data} gives; run python -m benchmarks.perf_table",
                  file=sys.stderr)
            return 1
        return 0
    from tfsbench.bench.results import write_bytes_atomic

    write_bytes_atomic(args.out, text.encode("utf-8"))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
