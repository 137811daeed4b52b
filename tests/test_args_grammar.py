"""One argument grammar: every accepted and refused spelling of each value type, through every
command option that takes it (in-process: the real parser from tfsbench.cli, no subprocesses).

A refused value must be exit status 2 with one line on stderr that names the option. The source scan
at the end keeps the grammar in one module: argparse types and exit codes live in bench/args.py.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
from tfsbench.bench import args as grammar

from tfsbench import cli

ROOT = Path(__file__).resolve().parents[1]
URL = "http://127.0.0.1:9"

# Arguments each command needs before the option under test can be parsed.
BASE: dict[str, list[str]] = {
    "run": ["run", "--url", URL, "--model", "m", "--concurrency", "1", "--out", "o.json"],
    "run-open": ["run", "--url", URL, "--model", "m", "--out", "o.json"],
    "sweep": ["sweep"],
    "search": ["search", "--slo", "p99<=50ms", "--url", URL, "--model", "m", "--out", "d"],
    "search-no-url": ["search", "--slo", "p99<=50ms", "--model", "m", "--out", "d"],
    "selfbench": ["selfbench"],
    "doctor": ["doctor", "--url", URL, "--model", "m"],
    "doctor-no-url": ["doctor", "--model", "m"],
    "serve": ["serve"],
    "compare": ["compare", "a.json", "b.json"],
    "plan": ["plan", "r.json", "--slo", "p99<=50ms"],
    "report": ["report", "r.json"],
    "locust-export": ["locust-export", "--csv-prefix", "run", "--out", "o.json"],
    "payload": ["payload"],
    "trace-synth": ["trace", "synth", "--out", "t.jsonl"],
    "trace-show": ["trace", "show", "t.jsonl"],
    "replay": ["replay", "t.jsonl", "--url", URL],
    "replay-no-url": ["replay", "t.jsonl"],
}

DURATION_OK = {"30s": 30.0, "500ms": 0.5, "2m": 120.0, "2min": 120.0, "1h": 3600.0, "1e1": 10.0, "2sec": 2.0,
               "250us": 0.00025, "1.5": 1.5, "10": 10.0, " 3 s ": 3.0, "2S": 2.0}
DURATION_BAD = ["0", "0s", "-1s", "fast", "nan", "inf", "1e999", "", "3x", "1h30", "5%"]
WARMUP_OK = {**DURATION_OK, "0": 0.0, "0s": 0.0}
WARMUP_BAD = ["-1s", "fast", "nan", "inf", "", "3x"]
RATE_OK = {"200": 200.0, "200/s": 200.0, "1.5k": 1500.0, "2e3": 2000.0, "10 rps": 10.0, "600/min": 10.0}
RATE_BAD = ["0", "-5", "fast", "nan", "inf", "", "3/week"]
POSITIVE_INT_OK = {"1": 1, "8": 8, "64": 64}
POSITIVE_INT_BAD = ["0", "-1", "1.5", "x", "", "1e3"]
NON_NEGATIVE_INT_OK = {"0": 0, "5": 5}
NON_NEGATIVE_INT_BAD = ["-1", "x", "1.5", ""]
FRACTION_OK = {"0": 0.0, "0.3": 0.3, "30%": 0.3, "5%": 0.05}
FRACTION_BAD = ["1", "100%", "-0.1", "x", "nan", "inf", ""]
POSITIVE_FRACTION_OK = {"0.05": 0.05, "5%": 0.05, "0.5": 0.5}
POSITIVE_FRACTION_BAD = ["0", "0%", "1", "100%", "x", "nan"]
POSITIVE_FLOAT_OK = {"10": 10.0, "2.5": 2.5, "1e3": 1000.0}
POSITIVE_FLOAT_BAD = ["0", "-1", "inf", "nan", "x", ""]
NON_NEGATIVE_FLOAT_OK = {"0": 0.0, "0.35": 0.35}
NON_NEGATIVE_FLOAT_BAD = ["-1", "nan", "inf", "x"]
URL_OK = {"http://127.0.0.1:8501": "http://127.0.0.1:8501", "https://h.example/": "https://h.example",
          "http://h:1/prefix/": "http://h:1/prefix", " http://h:2 ": "http://h:2"}
URL_BAD = ["127.0.0.1:8501", "ftp://x", "http://", "http://h:99999", "http://h/?q=1", "http://h/#top",
           "http://user:hunter2@h:1", "user:hunter2@h:1"]
PORT_OK = {"0": 0, "8501": 8501, "65535": 65535}
PORT_BAD = ["65536", "-1", "http", ""]

# (value type, accepted {text: value}, refused [text], [(base, option, dest)])
TABLE = [
    ("duration", DURATION_OK, DURATION_BAD, [
        ("run", "--duration", "duration"), ("run", "--timeout", "timeout"),
        ("sweep", "--duration", "duration"), ("sweep", "--timeout", "timeout"),
        ("search", "--duration", "duration"), ("search", "--timeout", "timeout"),
        ("selfbench", "--duration", "duration"), ("trace-show", "--window", "window"),
        ("replay", "--timeout", "timeout"), ("replay", "--window", "window"), ("replay", "--scale-shift", "scale_shift"),
    ]),
    ("duration <= 600 s", {k: v for k, v in DURATION_OK.items() if v <= 600}, [*DURATION_BAD, "1h", "601"], [
        ("doctor", "--timeout", "timeout"),
    ]),
    ("warmup", WARMUP_OK, WARMUP_BAD, [
        ("run", "--warmup", "warmup"), ("sweep", "--warmup", "warmup"), ("search", "--warmup", "warmup"),
    ]),
    ("rate", RATE_OK, RATE_BAD, [("run-open", "--rate", "rate"), ("trace-synth", "--peak", "peak")]),
    ("positive integer", POSITIVE_INT_OK, POSITIVE_INT_BAD, [
        ("run-open", "--concurrency", "concurrency"), ("run", "--requests", "requests"),
        ("run", "--processes", "processes"), ("run", "--max-inflight", "max_inflight"),
        ("run", "--batch-size", "batch_size"), ("run", "--pool-size", "pool_size"),
        ("sweep", "--processes", "processes"), ("sweep", "--requests", "requests"),
        ("sweep", "--max-inflight", "max_inflight"), ("search", "--max-probes", "max_probes"),
        ("search", "--estimate-concurrency", "estimate_concurrency"), ("selfbench", "--connections", "connections"),
        ("selfbench", "--rounds", "rounds"), ("locust-export", "--batch-size", "batch_size"),
        ("locust-export", "--users", "users"), ("payload", "--pool-size", "pool_size"),
        ("serve", "--max-json-depth", "max_json_depth"), ("serve", "--rest-api-num-threads", "rest_api_num_threads"),
        ("serve", "--rest-api-timeout-ms", "rest_api_timeout_ms"), ("replay", "--batch-size", "batch_size"),
        ("replay", "--max-inflight", "max_inflight"), ("replay", "--pool-size", "pool_size"),
    ]),
    ("non-negative integer", NON_NEGATIVE_INT_OK, NON_NEGATIVE_INT_BAD, [
        ("run", "--seed", "seed"), ("sweep", "--version", "version"), ("sweep", "--seed", "seed"),
        ("payload", "--seed", "seed"), ("replay", "--seed", "seed"),
    ]),
    ("fraction [0, 1)", FRACTION_OK, FRACTION_BAD, [
        ("compare", "--noise", "noise"), ("plan", "--headroom", "headroom"), ("report", "--headroom", "headroom"),
    ]),
    ("fraction (0, 1)", POSITIVE_FRACTION_OK, POSITIVE_FRACTION_BAD, [("search", "--tolerance", "tolerance")]),
    ("positive number", POSITIVE_FLOAT_OK, POSITIVE_FLOAT_BAD, [
        ("search", "--lo", "lo"), ("search", "--hi", "hi"), ("plan", "--target-qps", "target_qps"),
        ("plan", "--target-ips", "target_ips"), ("replay", "--speed", "speed"), ("replay", "--scale", "scale"),
    ]),
    ("non-negative number", NON_NEGATIVE_FLOAT_OK, NON_NEGATIVE_FLOAT_BAD, [
        ("plan", "--cost-per-replica-hour", "cost_per_replica_hour"),
    ]),
    ("URL", URL_OK, URL_BAD, [
        ("doctor-no-url", "--url", "url"), ("sweep", "--url", "url"), ("search-no-url", "--url", "url"),
        ("replay-no-url", "--url", "url"),
    ]),
    ("port", PORT_OK, PORT_BAD, [("serve", "--port", "port")]),
    ("integer 1..64", {"1": 1, "64": 64}, ["0", "65", "x"], [("serve", "--workers", "workers")]),
    ("integer 1..10000", {"1": 1, "10000": 10000}, ["0", "10001", "x"], [("doctor", "--calls", "calls")]),
    ("integer 50..100000", {"50": 50, "100000": 100000}, ["49", "100001", "1e3"], [("compare", "--resamples", "resamples")]),
]

ACCEPTED = [pytest.param(base, option, dest, text, value, id=f"{base} {option} {text!r}")
            for _, ok, _, uses in TABLE for base, option, dest in uses for text, value in ok.items()]
REFUSED = [pytest.param(base, option, text, id=f"{base} {option} {text!r}")
           for _, _, bad, uses in TABLE for base, option, _ in uses for text in bad]


@pytest.fixture(scope="module")
def parser():
    return cli.build_parser()


@pytest.mark.parametrize("base, option, dest, text, value", ACCEPTED)
def test_accepted_spellings_mean_the_same_everywhere(parser, base, option, dest, text, value) -> None:
    parsed = getattr(parser.parse_args([*BASE[base], f"{option}={text}"]), dest)
    if isinstance(value, float):
        assert parsed == pytest.approx(value, rel=1e-12) and math.isfinite(parsed)
    else:
        assert parsed == value


@pytest.mark.parametrize("base, option, text", REFUSED)
def test_refused_spellings_exit_2_with_one_line_naming_the_option(parser, capsys, base, option, text) -> None:
    with pytest.raises(SystemExit) as info:
        parser.parse_args([*BASE[base], f"{option}={text}"])
    assert info.value.code == grammar.EXIT_USAGE == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and option in err, err


@pytest.mark.parametrize("text", ["http://user:hunter2@h:1", "user:hunter2@h:1", "ftp://u:hunter2@x"])
def test_refused_urls_never_show_a_password(parser, capsys, text) -> None:
    with pytest.raises(SystemExit):
        parser.parse_args([*BASE["doctor-no-url"], f"--url={text}"])
    err = capsys.readouterr().err
    assert "hunter2" not in err and "***" in err
    from tfsbench.bench.measure.engine import check_url
    from tfsbench.payloads.errors import InputError

    with pytest.raises(InputError) as info:  # run's check (before any load) is the same function
        check_url(text)
    assert "hunter2" not in str(info.value)


def test_comma_lists_share_one_grammar(parser, capsys) -> None:
    """--kinds, --formats, --batch-sizes, --concurrency, --rates (sweep), --kinds/--batch-sizes
    (payload) and --tools (selfbench): comma-separated, no empty items, each item its type's grammar."""
    args = parser.parse_args(["sweep", "--kinds", "numeric,text", "--batch-sizes", "1,8", "--rates", "5,1e1"])
    assert args.kinds == ["numeric", "text"] and args.batch_sizes == [1, 8] and args.rates == [5.0, 10.0]
    assert parser.parse_args(["payload", "--batch-sizes", "1,8"]).batch_sizes == (1, 8)
    assert parser.parse_args(["selfbench", "--tools", "fast,wrk"]).tools == ["fast", "wrk"]
    for argv in (["sweep", "--kinds", "numerc"], ["sweep", "--batch-sizes", "1,,8"], ["sweep", "--rates", "5,0"],
                 ["payload", "--batch-sizes", "1,,8"], ["payload", "--kinds", "video"],
                 ["selfbench", "--tools", "fast,curl"], ["sweep", "--concurrency", ","]):
        with pytest.raises(SystemExit) as info:
            parser.parse_args(argv)
        assert info.value.code == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_durations_in_config_files_and_flags_agree() -> None:
    """A sweep config file's durations use the flags' grammar (the two once disagreed on '2sec', '1e1')."""
    from tfsbench.bench.orchestrate.config_file import parse_duration_s

    for text, _value in DURATION_OK.items():
        assert parse_duration_s(text, "duration") == pytest.approx(grammar.duration(text))
    assert parse_duration_s(5, "duration") == 5.0
    from tfsbench.payloads.errors import InputError

    for text in DURATION_BAD:
        with pytest.raises(InputError):
            parse_duration_s(text, "duration")


def test_server_durations_use_the_same_grammar() -> None:
    from tfsbench.server.options import parse_service_time

    assert parse_service_time("2sec") is not None and parse_service_time("1e1ms") is not None


def test_exit_codes() -> None:
    assert (grammar.EXIT_OK, grammar.EXIT_FAILED, grammar.EXIT_USAGE, grammar.EXIT_INTERRUPTED) == (0, 1, 2, 130)
    assert (cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_USAGE, cli.EXIT_INTERRUPTED) == (0, 1, 2, 130)


SCANNED = ("tfsbench", "bench", "doctor", "server", "locustfiles", "reports", "payloads", "benchmarks")


def _sources():
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


@pytest.mark.slow
def test_exit_codes_and_argparse_errors_live_in_bench_args_only() -> None:
    """No second EXIT_* constant and no ArgumentTypeError raised outside bench/args.py (other
    modules turn their InputError parsers into types with bench.args.from_input_error)."""
    offenders = []
    for path, tree in _sources():
        rel = path.relative_to(ROOT).as_posix()
        if rel == "bench/args.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name) and t.id.startswith("EXIT_"):
                        offenders.append(f"{rel}:{node.lineno} defines {t.id}")
            if isinstance(node, ast.Attribute) and node.attr == "ArgumentTypeError":
                offenders.append(f"{rel}:{node.lineno} uses argparse.ArgumentTypeError")
            if isinstance(node, ast.Attribute) and node.attr in ("_SubParsersAction", "_actions",
                                                                 "_option_string_actions"):
                offenders.append(f"{rel}:{node.lineno} reaches into argparse's private {node.attr}")
    assert not offenders, "\n".join(offenders)


def test_locust_options_use_the_same_grammar() -> None:
    """Locust's options (typed by Locust, its config file or the web UI form) read durations and the
    --host URL with the same grammar as the commands."""
    from tfsbench.locustfiles import config as locust_config
    from tfsbench.payloads.errors import InputError

    for text, value in DURATION_OK.items():
        assert locust_config.user_config({"model": "m", "request_timeout": text}).timeout_s == pytest.approx(value)
    for text in DURATION_BAD:
        with pytest.raises(InputError, match="--request-timeout"):
            locust_config.user_config({"model": "m", "request_timeout": text})
    for text, value in URL_OK.items():
        assert locust_config.check_host(text) == value
    for text in URL_BAD:
        with pytest.raises(InputError, match="--host") as info:
            locust_config.check_host(text)
        assert "hunter2" not in str(info.value)
