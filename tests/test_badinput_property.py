"""Property: whatever the argument list or sweep config file, `tfsbench` either gets through
validation or exits 2 with one line on stderr - never a traceback, never a file that looks like a
result.

The CLI runs in-process (`tfsbench.cli.main(argv)`) with every way out of the process blocked:
- reaching the point where load would start (run_benchmark, run_selfbench, serve_forever,
  serve_subprocess, building a report, launching Chromium or any subprocess) raises
  `LoadWouldStart`, which counts as "validation passed";
- every TCP connect is refused and only loopback names resolve, so a handler that checks its
  target (preflight, metadata, doctor) sees "nothing listening" without touching the network.

Errors found before contacting anything must be exactly one line. Errors found by contacting the
target (an unreachable URL) may follow the command's announcement of what it is about to do, so
the error must be the last line and the only one that says "error".
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import socket
import string
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfsbench import cli

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_RUN = ROOT / "tests" / "fixtures" / "results" / "run-v1.json"
CLOSED_URL = "http://127.0.0.1:9"  # discard port; connects are refused by the patches anyway

SETTINGS = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure reproduces
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


class LoadWouldStart(BaseException):  # noqa: N818 - not an error: the point of no return was reached
    """Raised where a command would start sending load (validation is over)."""


# ---- the sandbox: no network, no subprocesses, no load ---------------------------------------------


@dataclass
class Sandbox:
    root: Path
    contacted: list[str]


_REAL_GETADDRINFO = socket.getaddrinfo


def _fixture_files(root: Path) -> None:
    """Input files of every flavour the option values below point at."""
    valid = json.loads(FIXTURE_RUN.read_text())
    shutil.copy(FIXTURE_RUN, root / "valid.json")
    (root / "corrupt.json").write_text('{"type": "tfsbench.run", "schema_version": 2, "summ')
    (root / "schema99.json").write_text(json.dumps({**valid, "schema_version": 99}))
    (root / "other.json").write_text('{"hello": "world"}')
    (root / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (root / "empty.txt").write_text("")
    (root / "text.txt").write_text("one line of text\nanother line\n")
    (root / "data.csv").write_text("a,b,c,d\n1,2,3,4\n5,6,7,8\n")
    (root / "bad.toml").write_text("[sweep\nkinds = [")
    (root / "sweep.toml").write_text(
        f'[sweep]\nurl = "{CLOSED_URL}"\nmodel = "numeric"\nkinds = ["numeric"]\nbatch_sizes = [1]\n'
        f'concurrency = [1]\nduration = "1s"\nout = "{root / "sweep-out"}"\n[check]\nthresholds = ["p99<50ms"]\n')
    (root / "dir").mkdir()
    (root / "dir" / "not-a-result.txt").write_text("x")


@contextlib.contextmanager
def sandbox() -> Iterator[Sandbox]:
    contacted: list[str] = []

    def stop(*_a: object, **_k: object) -> None:
        raise LoadWouldStart()

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        contacted.append(f"resolve {host}")
        if host in ("127.0.0.1", "localhost", "::1", b"127.0.0.1", b"localhost"):
            return _REAL_GETADDRINFO(host, *args, **kwargs)  # type: ignore[arg-type]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (sandbox)")

    def connect(self: socket.socket, address: object) -> None:
        contacted.append(f"connect {address}")
        raise ConnectionRefusedError(111, "Connection refused (sandbox)")

    def connect_ex(self: socket.socket, address: object) -> int:
        contacted.append(f"connect {address}")
        return 111

    import tfsbench.bench.measure.runner
    import tfsbench.bench.orchestrate.selfbench
    import tfsbench.doctor.browser
    import tfsbench.reports.build
    import tfsbench.server.runner
    import tfsbench.server.testing

    old_cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="tfsbench-prop-") as tmp, pytest.MonkeyPatch.context() as mp:
        root = Path(tmp)
        _fixture_files(root)
        for module, name in ((tfsbench.bench.measure.runner, "run_benchmark"), (tfsbench.bench.orchestrate.selfbench, "run_selfbench"),
                             (tfsbench.server.runner, "serve_forever"), (tfsbench.server.testing, "serve_subprocess"),
                             (tfsbench.server.testing, "ServerThread"), (tfsbench.reports.build, "build_report"),
                             (tfsbench.doctor.browser, "browser_check"), (subprocess, "Popen")):
            mp.setattr(module, name, stop)
        mp.setattr(socket, "getaddrinfo", getaddrinfo)
        mp.setattr(socket.socket, "connect", connect)
        mp.setattr(socket.socket, "connect_ex", connect_ex)
        os.chdir(root)  # default output directories (results/...) land in the sandbox
        try:
            yield Sandbox(root, contacted)
        finally:
            os.chdir(old_cwd)


def _files(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*") if p.is_file()}


@dataclass(frozen=True)
class Outcome:
    status: int | str  # exit status, or "load" when the point of no return was reached
    stdout: str
    stderr: str
    contacted: tuple[str, ...]
    new_files: tuple[str, ...]


def run_cli(argv: list[str], box: Sandbox) -> Outcome:
    before = _files(box.root)
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace")
    status: int | str
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(argv)
        except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
            status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        except LoadWouldStart:
            status = "load"
    texts = []
    for stream in (out, err):
        stream.flush()
        texts.append(stream.buffer.getvalue().decode("utf-8", "replace"))  # type: ignore[attr-defined]
    after = _files(box.root)
    new = tuple(sorted(k for k, m in after.items() if before.get(k) != m))
    return Outcome(status, texts[0], texts[1], tuple(box.contacted), new)


def assert_clean(argv: list[str], o: Outcome) -> None:
    """The property itself."""
    where = f"argv={argv!r}\nstatus={o.status!r}\nstderr={o.stderr!r}\ncontacted={o.contacted!r}"
    assert "Traceback" not in o.stderr + o.stdout, where
    assert o.status in ("load", 0, 1, 2), where
    if o.status != 2:
        return
    lines = [line for line in o.stderr.splitlines() if line.strip()]
    assert lines, "exit 2 without a message: " + where
    last = lines[-1]
    assert "error" in last and len(last) < 2000, where
    assert len(lines) == 1, where  # validation and preflight both come before any announcement
    assert not o.new_files, f"exit 2 but wrote {o.new_files}: " + where


# ---- argument lists built from the real option names ---------------------------------------------------


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parsers = cli.command_parsers()
    assert parsers, "no subcommands"
    return parsers


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """A command's verbs (`trace synth|import|show`): the positional whose choices are parsers."""
    for action in parser._actions:
        if not action.option_strings and isinstance(action.choices, dict):
            return {k: v for k, v in action.choices.items() if isinstance(v, argparse.ArgumentParser)}
    return {}


# A command with verbs is drawn per verb ("trace synth"): its own parser has no options to mutate.
SUBPARSERS = {f"{name} {verb}" if verb else name: p
              for name, top in _subparsers().items()
              for verb, p in (_verbs(top).items() or [("", top)])}
COMMANDS = sorted(SUBPARSERS)

FILE_VALUES = ("{tmp}/valid.json", "{tmp}/corrupt.json", "{tmp}/schema99.json", "{tmp}/other.json",
               "{tmp}/missing.json", "{tmp}/binary.bin", "{tmp}/empty.txt", "{tmp}/text.txt", "{tmp}/data.csv",
               "{tmp}/bad.toml", "{tmp}/sweep.toml", "{tmp}/dir", "{tmp}/nodir/x/y")
OUT_VALUES = ("{tmp}/out.json", "{tmp}/outdir", "{tmp}/dir", "{tmp}/valid.json", "{tmp}/binary.bin/x",
              "{tmp}/nodir/deeper/out.json")
PLAIN_VALUES = (
    "0", "1", "2", "3", "-1", "1.5", "0.5", "nan", "inf", "-inf", "1e3", "1e-9", "abc", "", " ", "10ms",
    "1s", "0s", "250ms", "2m", "-5s", "3x", "1h30", "5%", "150%", "1,2", "1,,2", ",", "numeric", "text",
    "image", "auto", "numerc", "row", "columnar", "colummar", "fast", "aiohttp", "constant", "poisson",
    "2x2", "0x5", "8x8", "3-2", "4-8", "p99<=50ms", "p99<50", "error_rate<1%", "p101<=5ms", "stable==true",
    "[kind=numeric] p99<5ms", "status=503:5%", "reset=2", "delay=exp:5ms:0.1", "stall=1s/1s", "nonsense=1",
    "max_batch_size=8", "max_batch_size=0", "Authorization: Bearer x", "NoColon", "x=1,2", "x=-1",
    CLOSED_URL, "https://127.0.0.1:9", "http://localhost:9/", "localhost:8501", "ftp://127.0.0.1/",
    "http://", "http://127.0.0.1:99999", "http://[::1]:9", "http://127.0.0.1:9/?q=1", "http://bad host/",
    "http://no-such-host.invalid:8501", "https://app.example", "null", "*", "é", "日本", "-", "--",
    "float32", "int64", "uniform", "normal", "jpeg", "png", "photo", "noise", "wrk,fast", "wrk,gatling",
)
GARBAGE = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                  max_size=12)


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.dest != "help"]


def _positional_count(parser: argparse.ArgumentParser) -> int:
    return sum(1 for a in parser._actions if not a.option_strings)


def _value_for(action: argparse.Action) -> st.SearchStrategy[str]:
    name = action.option_strings[-1]
    options: list[st.SearchStrategy[str]] = [st.sampled_from(PLAIN_VALUES), GARBAGE]
    if action.choices:
        options.append(st.sampled_from([str(c) for c in action.choices]))
    if any(w in name for w in ("file", "config", "metadata", "body", "dir", "sidecar", "json", "csv-prefix",
                               "baseline", "summary", "junit", "model-base-path")):
        options.append(st.sampled_from(FILE_VALUES))
    if name in ("--out", "--junit", "--summary"):
        options.append(st.sampled_from(OUT_VALUES))
    return st.one_of(*options)


# A valid argument list per command, so that mutations appended to it (argparse: the last value
# wins) exercise the validation after parsing as well as the parser itself.
BASELINES: dict[str, list[str]] = {
    "run": ["--url", CLOSED_URL, "--model", "numeric", "--concurrency", "1", "--duration", "1s",
            "--warmup", "0", "--out", "{tmp}/run.json"],
    "sweep": ["--url", CLOSED_URL, "--model", "numeric", "--kinds", "numeric", "--batch-sizes", "1",
              "--concurrency", "1", "--duration", "1s", "--warmup", "0", "--out", "{tmp}/sweep"],
    "search": ["--slo", "p99<=50ms", "--url", CLOSED_URL, "--model", "numeric", "--duration", "1s",
               "--out", "{tmp}/search"],
    "payload": ["--kind", "numeric", "--pool-size", "2", "--out", "{tmp}/body.json"],
    "serve": ["--port", "0"],
    "selfbench": ["--duration", "1s", "--tools", "fast", "--connections", "2"],
    "report": ["{tmp}/valid.json", "--out", "{tmp}/report"],
    "compare": ["{tmp}/valid.json", "{tmp}/valid.json", "--resamples", "50"],
    "plan": ["{tmp}/valid.json", "--slo", "p99<=50ms", "--target-qps", "100", "--out", "{tmp}/plan",
             "--no-report"],
    "check": ["{tmp}/valid.json", "-t", "p99<50ms"],
    "doctor": ["--url", CLOSED_URL, "--model", "numeric", "--timeout", "1"],
    "demo": ["--out", "{tmp}/demo", "--quick", "--no-progress"],
    "locust_export": ["--csv-prefix", "{tmp}/nothing", "--out", "{tmp}/locust.json"],
    "locust-export": ["--csv-prefix", "{tmp}/nothing", "--out", "{tmp}/locust.json"],
}
# Values that would make a command that passes validation do real work for long (pool sizes and
# image sizes are capped by validation, but a 8192x8192 image pool is slow to build).
SLOW = {"--pool-size", "--image-size", "--batch-size", "--batch-sizes", "--resamples", "--rounds",
        "--calls", "--connections"}


@st.composite
def argv_for(draw: st.DrawFn, command: str) -> list[str]:
    parser = SUBPARSERS[command]
    argv = command.split()
    if draw(st.booleans()):
        argv += BASELINES.get(command, [])
    actions = _options(parser)
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.integers(0, 9)) == 0:
            argv.append("--" + draw(st.sampled_from(("bogus", "duratoin", "url=", "h", "", "-"))))
            continue
        action = draw(st.sampled_from(actions))
        flag = draw(st.sampled_from(action.option_strings))
        if action.nargs == 0:
            argv.append(flag)
            continue
        value = draw(_value_for(action))
        if flag in SLOW and value.strip().isdigit() and int(value) > 8:
            value = "3"
        if draw(st.integers(0, 4)) == 0:
            argv.append(f"{flag}={value}")
        else:
            argv += [flag, value]
    for _ in range(draw(st.integers(0, 2 if _positional_count(parser) else 1))):
        argv.append(draw(st.sampled_from(FILE_VALUES) | st.sampled_from(PLAIN_VALUES)))
    return argv


def _fill(argv: list[str], root: Path) -> list[str]:
    return [a.replace("{tmp}", str(root)) for a in argv]


@pytest.mark.parametrize("command", COMMANDS)
@SETTINGS
@given(data=st.data())
@pytest.mark.slow
def test_random_arguments_validate_or_exit_2_with_one_line(command: str, data: st.DataObject) -> None:
    argv = data.draw(argv_for(command), label="argv")
    with sandbox() as box:
        full = _fill(argv, box.root)
        assert_clean(full, run_cli(full, box))


@SETTINGS
@given(argv=st.lists(st.one_of(st.sampled_from(sorted({c.split()[0] for c in COMMANDS} | set(COMMANDS))),
                               st.sampled_from(PLAIN_VALUES), GARBAGE,
                               st.sampled_from(["--help", "-h", "--version", "--out", "--url"])), max_size=6))
@pytest.mark.slow
def test_arbitrary_argument_lists(argv: list[str]) -> None:
    if any(a in ("-h", "--help") for a in argv):
        argv = [a for a in argv if a not in ("-h", "--help")]  # help is success; keep the run short
    with sandbox() as box:
        assert_clean(argv, run_cli(argv, box))


# ---- sweep config files ----------------------------------------------------------------------------------

SWEEP_KEYS = ("url", "model", "version", "label", "signature", "kinds", "batch_sizes", "formats", "concurrency",
              "rates", "arrival", "duration", "warmup", "requests", "engine", "processes", "timeout", "seed",
              "max_inflight", "pool_size", "out", "headers")
PAYLOAD_KEYS = ("text_words", "text_file", "image_size", "image_format", "image_quality", "image_style",
                "numeric_shape", "numeric_dtype", "numeric_dist", "numeric_file", "allow_nan", "gzip",
                "input_name", "shape", "kind", "batch_size")
TYPOS = ("batch_size", "kind", "concurency", "urls", "durations", "rate", "text_word", "imagesize", "thresholds",
         "")

TOML_SCALARS = st.one_of(
    st.integers(-3, 70), st.floats(-1e3, 1e3, allow_nan=False), st.booleans(),
    st.sampled_from(PLAIN_VALUES), st.sampled_from(FILE_VALUES),
    st.text(alphabet=string.ascii_letters + string.digits + " .,:%-_/", max_size=10),
)
TOML_VALUES = st.one_of(TOML_SCALARS, st.lists(TOML_SCALARS, max_size=3))
VALID_SWEEP = {"url": CLOSED_URL, "model": "numeric", "kinds": ["numeric"], "batch_sizes": [1],
               "concurrency": [1], "duration": "1s", "warmup": 0, "out": "{tmp}/cfg-out"}


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


@st.composite
def sweep_files(draw: st.DrawFn) -> tuple[str, list[str]]:
    tables: dict[str, dict[str, object]] = {"sweep": dict(VALID_SWEEP) if draw(st.booleans()) else {}}
    for _ in range(draw(st.integers(0, 5))):
        table = draw(st.sampled_from(("sweep", "sweep", "payload", "check", "chekc")))
        keys = {"sweep": SWEEP_KEYS, "payload": PAYLOAD_KEYS, "check": ("thresholds",)}.get(table, ("x",))
        key = draw(st.sampled_from(keys) | st.sampled_from(TYPOS))
        if not key:
            continue
        if key == "headers":
            value: object = {"X-Test": draw(TOML_SCALARS)}
        else:
            value = draw(TOML_VALUES)
        tables.setdefault(table, {})[key] = value
    lines: list[str] = []
    if draw(st.integers(0, 9)) == 0:
        lines.append(draw(st.sampled_from(("garbage = ", "[sweep", "= 1", "a = 'unterminated", "x = [1,"))))
    for name, table in tables.items():
        lines.append(f"[{name}]")
        for key, value in table.items():
            if isinstance(value, dict):
                inner = ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items())
                lines.append(f"{key} = {{ {inner} }}")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
    extra = draw(st.lists(st.sampled_from(["--duration", "1s", "--out", "{tmp}/flag-out", "--kinds", "text",
                                           "--concurrency", "2", "--rates", "5", "--batch-size", "2",
                                           "--no-progress"]), max_size=3))
    return "\n".join(lines) + "\n", extra


@SETTINGS
@given(case=sweep_files())
@pytest.mark.slow
def test_random_sweep_config_files(case: tuple[str, list[str]]) -> None:
    text, extra = case
    with sandbox() as box:
        cfg = box.root / "generated.toml"
        cfg.write_text(text.replace("{tmp}", str(box.root)))
        argv = _fill(["sweep", "--config", str(cfg), *extra], box.root)
        outcome = run_cli(argv, box)
        assert_clean(argv + [f"<config>\n{text}"], outcome)
        if outcome.status == 2 and "unknown key" in outcome.stderr:
            assert str(cfg) in outcome.stderr  # the message names the file


def test_the_sandbox_blocks_load_and_network() -> None:
    """The property is only as good as its sandbox: a valid run reaches the point of no return,
    and a handler that checks its target sees a refused connection."""
    with sandbox() as box:
        argv = _fill(["sweep", *BASELINES["sweep"]], box.root)
        o = run_cli(argv, box)
    assert o.status == 2 and o.contacted and "refused" in o.stderr.lower(), o
    with sandbox() as box:
        o = run_cli(["serve", "--port", "0"], box)
    assert o.status == "load", o
    with sandbox() as box:
        o = run_cli(_fill(["run", *BASELINES["run"], "--duration", "3x"], box.root), box)
    assert o.status == 2 and not o.contacted and len(o.stderr.strip().splitlines()) == 1, o
