"""Bad input across every command: one line on stderr, exit 2, no traceback, nothing written.

One row per (kind of bad input x command) from issue 8's list: malformed durations, rates and
sizes, unknown payload kinds, batch sizes that are not positive integers, config files with unknown
keys ("did you mean"), unreadable data files, URLs without a scheme or pointing at nothing, results
files that are corrupt or of another schema version. The per-command test files go deeper (and
hold the rows left out here: `run --duration 3x`, `sweep --kinds numerc`, unreachable `run`/`sweep`,
`serve` on a busy port...); this table is the cross-check that no command was forgotten.

Every case gets its own directory holding the input files (and is run from it); afterwards the
directory must hold exactly what it held before. The `tfsbench` rows run in this process through
`main()` (`helpers.cli`: same exit status and streams as a shell sees, milliseconds instead of 1.7 s
of imports each); `WIRING` runs one row per command as a real `python -m tfsbench` subprocess, and the
Locust rows run the real `locust` entry point, a few at a time, while the in-process rows run.

Every error is the only line on stderr: load commands validate their arguments, then check the
target and build their payloads (preflight), and only then announce what they are about to do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import ROOT, TFSBENCH, cli, free_port

pytestmark = pytest.mark.xdist_group("test_badinput_cli")  # module fixtures built once, on one xdist worker

FIXTURE_RUN = ROOT / "tests" / "fixtures" / "results" / "run-v1.json"


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]  # {d}: the case's directory, {closed}: a URL nobody listens on, {url}: a live target
    needle: str  # must appear in the error line


def _case(id: str, args: str, needle: str) -> Case:
    return Case(id, tuple(args.split("|")), needle)


SWEEP = "sweep|--url|{closed}|--model|numeric|--kinds|numeric|--batch-sizes|1|--concurrency|1|--out|{d}/sweep"
RUN = "run|--url|{closed}|--model|numeric|--concurrency|1|--out|{d}/r.json"
LIVE_RUN = "run|--url|{url}|--model|numeric|--concurrency|1|--duration|1s|--warmup|0|--out|{d}/r.json"
LIVE_SWEEP = ("sweep|--url|{url}|--model|{kind}|--kinds|numeric|--batch-sizes|1|--concurrency|1|--duration|1s|"
              "--warmup|0|--out|{d}/sweep")
SEARCH = "search|--slo|p99<=50ms|--url|{closed}|--model|numeric|--out|{d}/search"
VALID = "{d}/valid.json"

CASES = [
    # an abbreviated option is not taken for a longer one (`--mode` was `--model` to argparse)
    _case("abbrev-run-mode", RUN + "|--mode|open", "unrecognized arguments: --mode open"),
    # malformed durations
    _case("duration-sweep-warmup", SWEEP + "|--warmup|-1s", "--warmup"),
    _case("duration-search-timeout", SEARCH + "|--timeout|0", "--timeout"),
    _case("duration-selfbench", "selfbench|--duration|1x", "--duration"),
    _case("duration-serve-service-time", "serve|--port|0|--service-time|exp:1y", "--service-time"),
    _case("duration-serve-stall", "serve|--port|0|--faults|stall=2s/1s", "DURATION < PERIOD"),
    _case("duration-config", "sweep|--config|{d}/duration.toml", "duration"),
    # malformed rates
    _case("rate-run-word", RUN.replace("--concurrency|1", "--rate|fast"), "--rate"),
    _case("rate-sweep", SWEEP.replace("--concurrency|1", "--rates|10,-1"), "--rates"),
    _case("rate-search-bracket", SEARCH + "|--lo|100|--hi|10", "--lo"),
    _case("rate-plan-target", "plan|" + VALID + "|--slo|p99<=50ms|--target-qps|-5|--out|{d}/plan", "--target-qps"),
    # malformed sizes
    _case("size-image", "payload|--kind|image|--image-size|10x", "--image-size"),
    _case("size-image-huge", "payload|--kind|image|--image-size|99999x2", "--image-size"),
    _case("size-serve-body", "serve|--port|0|--max-body-bytes|1ZB", "--max-body-bytes"),
    _case("size-pool", "payload|--pool-size|999999999|--sizes", "pool size"),
    # unknown payload kinds
    _case("kind-run", RUN + "|--kind|pictures", "invalid choice"),
    _case("kind-payload-sizes", "payload|--sizes|--kinds|text,vide", "vide"),
    _case("kind-locust-export", "locust-export|--csv-prefix|{d}/none|--out|{d}/l.json|--kind|xyz", "xyz"),
    # batch sizes that are not positive integers
    _case("batch-payload-zero", "payload|--batch-size|0", "--batch-size"),
    _case("batch-run-negative", RUN + "|--batch-size|-2", "--batch-size"),
    _case("batch-run-huge", RUN + "|--batch-size|99999999999", "batch size"),
    _case("batch-times-shape-too-big", "payload|--batch-size|1000000|--numeric-shape|1000", "limit"),
    _case("batch-times-image-too-big", SWEEP.replace("--kinds|numeric", "--kinds|image") +
          "|--batch-sizes|100000|--image-size|1024x1024", "limit"),
    _case("batch-sweep-float", SWEEP.replace("--batch-sizes|1", "--batch-sizes|1,2.5"), "--batch-sizes"),
    _case("batch-search-float", SEARCH + "|--batch-size|1.5", "--batch-size"),
    _case("batch-locust-export", "locust-export|--csv-prefix|{d}/none|--out|{d}/l.json|--batch-size|0",
          "--batch-size"),
    _case("batch-config", "sweep|--config|{d}/batch.toml", "batch_sizes"),
    # config files with unknown keys
    _case("config-sweep-key", "sweep|--config|{d}/typo.toml", "did you mean 'concurrency'"),
    _case("config-payload-key", "sweep|--config|{d}/payload-typo.toml", "did you mean 'image_size'"),
    _case("config-check-table", "check|--config|{d}/chekc.toml|--dry-run", "did you mean 'check'"),
    _case("config-not-toml", "sweep|--config|{d}/binary.bin", "not UTF-8"),
    _case("config-invalid-toml", "sweep|--config|{d}/broken.toml", "invalid TOML"),
    _case("config-missing", "sweep|--config|{d}/missing.toml", "no such"),
    # unreadable data files
    _case("data-text-missing", "payload|--kind|text|--text-file|{d}/missing.txt", "--text-file"),
    _case("data-text-binary", "payload|--kind|text|--text-file|{d}/binary.bin", "UTF-8"),
    _case("data-numeric-binary", "payload|--numeric-file|{d}/binary.bin", "--numeric-file"),
    _case("data-numeric-csv", "payload|--numeric-file|{d}/bad.csv", "non-numeric"),
    _case("data-image-dir", "payload|--kind|image|--image-dir|{d}/emptydir", "--image-dir"),
    _case("data-metadata", "payload|--kind|auto|--metadata|{d}/corrupt.json", "--metadata"),
    _case("data-doctor-body", "doctor|--url|{closed}|--model|m|--body|{d}/missing.json", "--body"),
    _case("data-serve-batching", "serve|--port|0|--batching-parameters-file|{d}/binary.bin", "UTF-8"),
    _case("data-run-csv-live", LIVE_RUN + "|--numeric-file|{d}/bad.csv", "non-numeric"),
    _case("data-run-textdir-live", LIVE_RUN + "|--kind|text|--text-file|{d}/emptydir", "--text-file"),
    _case("data-sweep-images-live", LIVE_SWEEP.replace("--kinds|numeric", "--kinds|image") +
          "|--image-dir|{d}/badimgs", "--image-dir"),
    # URLs without a scheme, or pointing at nothing
    _case("url-run-bad-port", RUN.replace("{closed}", "http://127.0.0.1:99999"), "port"),
    _case("url-sweep-no-host", SWEEP.replace("{closed}", "http://"), "no host"),
    _case("url-search-ftp", SEARCH.replace("{closed}", "ftp://127.0.0.1/"), "http://"),
    _case("url-doctor-no-scheme", "doctor|--url|localhost:8501|--model|m", "http://"),
    _case("url-payload-no-scheme", "payload|--kind|auto|--url|127.0.0.1:9|--model|m", "http://"),
    _case("url-search-nothing", SEARCH, "refused"),
    _case("url-doctor-nothing", "doctor|--url|{closed}|--model|m", "refused"),
    _case("url-payload-nothing", "payload|--kind|auto|--url|{closed}|--model|m", "refused"),
    # results files that are corrupt or of another schema version
    _case("results-report-corrupt", "report|{d}/corrupt.json|--out|{d}/report", "corrupt JSON"),
    _case("results-report-newer", "report|{d}/schema99.json|--out|{d}/report", "schema_version 99"),
    _case("results-report-sweep-dir", "report|{d}/sweepdir|--out|{d}/report", "b.json"),
    _case("results-compare-foreign", "compare|" + VALID + "|{d}/other.json", "not a tfsbench result"),
    _case("results-compare-field", "compare|{d}/unknown-field.json|" + VALID, "bogus"),
    _case("results-plan-binary", "plan|{d}/binary.bin|--slo|p99<=50ms|--target-qps|5|--out|{d}/plan", "cannot read"),
    _case("results-plan-no-summary", "plan|{d}/no-summary.json|--slo|p99<=50ms|--target-qps|5|--out|{d}/plan",
          "summary"),
    _case("results-check-wrong-type", "check|{d}/wrong-type.json|-t|p99<5s", "summary.requests"),
    _case("results-check-version-text", "check|{d}/version-text.json|-t|p99<5s", "schema_version"),
    _case("results-check-baseline", "check|" + VALID + "|--baseline|{d}/schema99.json", "schema_version 99"),
    _case("results-check-manifest-as-run", "check|{d}/manifest-type.json|-t|p99<5s", "not a tfsbench result"),
    _case("results-locust-json", "locust-export|--json|{d}/corrupt.json|--out|{d}/l.json", "not JSON"),
    # the target itself
    _case("serve-bad-host", "serve|--host|bogus.invalid|--port|0", "bogus.invalid"),
    _case("serve-faults-kind", "serve|--port|0|--faults|explode=1", "unknown fault kind"),
    _case("serve-faults-sum", "serve|--port|0|--faults|status=503:0.7,reset=0.5", "> 1"),
    # traces and their replay
    _case("trace-synth-peak", "trace|synth|--peak|fast|--out|{d}/t.jsonl", "--peak"),
    _case("trace-show-binary", "trace|show|{d}/binary.bin", "binary.bin"),
    _case("replay-speed-zero", "replay|--url|{closed}|--speed|0|{d}/missing.jsonl", "--speed"),
    _case("replay-trace-missing", "replay|--url|{closed}|--out|{d}/replay|{d}/missing.jsonl", "no such file"),
    # the Locust users (headless): checked before any user starts
    _case("locust-host-no-scheme", "locust|-H|localhost:8501|--model|m", "--host"),
    _case("locust-batch-zero", "locust|-H|{closed}|--model|m|--batch-size|0", "--batch-size"),
    _case("locust-timeout-negative", "locust|-H|{closed}|--model|m|--request-timeout|-1", "--request-timeout"),
    _case("locust-host-nothing", "locust|-H|{closed}|--model|m", "refused"),
]
LOCUST = ("-m", "locust", "-f", str(ROOT / "locustfiles" / "tfserving.py"), "--headless", "-t", "2s")


def _inputs(d: Path) -> None:
    valid = json.loads(FIXTURE_RUN.read_text())
    shutil.copy(FIXTURE_RUN, d / "valid.json")
    (d / "corrupt.json").write_text('{"type": "tfsbench.run", "schema_version": 2, "summ')
    (d / "schema99.json").write_text(json.dumps({**valid, "schema_version": 99}))
    (d / "version-text.json").write_text(json.dumps({**valid, "schema_version": "2"}))
    (d / "other.json").write_text('{"hello": "world"}')
    (d / "manifest-type.json").write_text(json.dumps({**valid, "type": "tfsbench.manifest"}))
    (d / "unknown-field.json").write_text(json.dumps({**valid, "config": {**valid["config"], "bogus": 1}}))
    (d / "wrong-type.json").write_text(json.dumps({**valid, "summary": {**valid["summary"], "requests": "many"}}))
    (d / "no-summary.json").write_text(json.dumps({k: v for k, v in valid.items() if k != "summary"}))
    (d / "binary.bin").write_bytes(bytes(range(128, 256)) * 8)
    (d / "bad.csv").write_text("a,b,c,d\n1,2,3,4\nx,y,z,w\n")
    (d / "emptydir").mkdir()
    (d / "badimgs").mkdir()
    (d / "badimgs" / "a.jpg").write_bytes(b"not an image")
    (d / "sweepdir").mkdir()
    shutil.copy(FIXTURE_RUN, d / "sweepdir" / "a.json")
    (d / "sweepdir" / "b.json").write_text("{broken")
    (d / "sweepdir" / "manifest.json").write_text(json.dumps(
        {"type": "tfsbench.manifest", "schema_version": 1, "runs": ["a.json", "b.json"]}))
    base = ('[sweep]\nurl = "http://127.0.0.1:9"\nmodel = "numeric"\nkinds = ["numeric"]\nbatch_sizes = [1]\n'
            f'concurrency = [1]\nout = "{d / "cfg-out"}"\n')
    (d / "typo.toml").write_text(base.replace("concurrency", "concurency"))
    (d / "batch.toml").write_text(base.replace("batch_sizes = [1]", "batch_sizes = [0]"))
    (d / "duration.toml").write_text(base + 'duration = "ten seconds"\n')
    (d / "payload-typo.toml").write_text(base + '[payload]\nimage_sise = "8x8"\n')
    (d / "chekc.toml").write_text('[chekc]\nthresholds = ["p99<50ms"]\n')
    (d / "broken.toml").write_text("[sweep\nkinds = [")


def _snapshot(d: Path) -> dict[str, tuple[int, float]]:
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime)
            for p in d.rglob("*")}


@dataclass(frozen=True)
class Ran:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    changed: tuple[str, ...]
    directory: str  # the case's directory, which error lines may name


def _prepare(case: Case, d: Path, subs: dict[str, str]) -> tuple[tuple[str, ...], dict[str, tuple[int, float]]]:
    d.mkdir()
    _inputs(d)
    return tuple(a.replace("{d}", str(d)).format_map(_Keep(subs)) for a in case.args), _snapshot(d)


def _ran(d: Path, argv: tuple[str, ...], before: dict, code: int, stdout: str, stderr: str) -> Ran:
    after = _snapshot(d)
    changed = tuple(sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)))
    return Ran(argv, code, stdout, stderr, changed, str(d))


def _run_subprocess(case: Case, d: Path, subs: dict[str, str]) -> Ran:
    """A real process: `locust -f ...` for the Locust rows, `python -m tfsbench` for the wiring rows."""
    argv, before = _prepare(case, d, subs)
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200")
    cmd = [sys.executable, *LOCUST, *argv[1:]] if argv[0] == "locust" else [*TFSBENCH, *argv]
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=env)
    return _ran(d, argv, before, proc.returncode, proc.stdout, proc.stderr)


def _run_in_process(case: Case, d: Path, subs: dict[str, str]) -> Ran:
    """`tfsbench ARGV` through main() in this process, from the case's directory (as the subprocess was)."""
    argv, before = _prepare(case, d, subs)
    old_cwd = os.getcwd()
    os.chdir(d)
    try:
        code, stdout, stderr = cli(*argv, env={"COLUMNS": "200"})
    finally:
        os.chdir(old_cwd)
    return _ran(d, argv, before, code, stdout, stderr)


class _Keep(dict):
    """format_map that leaves unknown {names} (like the sweep's '{kind}' model template) alone."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


# One row per command through the real entry point (`python -m tfsbench`): exit status, stream and
# "nothing written" as a shell sees them, and the same error line as the row's in-process run. This is
# the suite's wiring check for bad input; the per-command files check the rest in-process.
WIRING = [Case("wiring-" + c.id, c.args, c.needle)
          for c in {c.args[0]: c for c in reversed(CASES) if c.args[0] != "locust"}.values()]

IN_PROCESS = [c for c in CASES if c.args[0] != "locust"]
REAL = [c for c in CASES if c.args[0] == "locust"] + WIRING  # real processes: slow, so marked


@pytest.fixture(scope="module")
def subs(tfs_url: str) -> dict[str, str]:
    return {"closed": f"http://127.0.0.1:{free_port()}", "url": tfs_url}


@pytest.fixture(scope="module")
def in_process(subs: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ran]:
    """The tfsbench rows through main(), in the main thread (signal handlers can only be set there)."""
    root = tmp_path_factory.mktemp("badinput")
    return {c.id: _run_in_process(c, root / c.id, subs) for c in IN_PROCESS}


@pytest.fixture(scope="module")
def real(subs: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ran]:
    """The Locust rows and one wiring row per command, as real processes, two at a time."""
    root = tmp_path_factory.mktemp("badinput-real")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {c.id: pool.submit(_run_subprocess, c, root / c.id, subs) for c in REAL}
        return {cid: f.result() for cid, f in futures.items()}


def _assert_one_line_exit_2(case: Case, ran: Ran) -> str:
    """The property for one row; returns the error line."""
    where = f"{' '.join(ran.argv)}\nexit {ran.returncode}\nstderr:\n{ran.stderr}"
    assert ran.returncode == 2, where
    assert "Traceback" not in ran.stderr + ran.stdout, where
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    command = ran.argv[0]
    if command == "locust":  # Locust logs "[time] ... Starting Locust" first; our error is one line
        lines = [line for line in lines if not line.startswith("[")]
    assert lines, where
    error = lines[-1]
    verb = f"tfsbench {command} {ran.argv[1]}: error: " if command == "trace" else "tfsbench: error: "
    assert error.startswith((f"tfsbench {command}: error: ", verb, "tfsbench: error: ", "locust: error: ")), where
    assert case.needle in error, where
    assert len(lines) == 1, where  # load commands check the target before announcing the load
    assert not ran.changed, f"wrote {ran.changed}: " + where
    return error


@pytest.mark.parametrize("case", IN_PROCESS, ids=[c.id for c in IN_PROCESS])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case: Case, in_process: dict[str, Ran]) -> None:
    _assert_one_line_exit_2(case, in_process[case.id])


@pytest.mark.slow
@pytest.mark.parametrize("case", REAL, ids=[c.id for c in REAL])
def test_real_process_bad_input_is_one_line_exit_2(case: Case, real: dict[str, Ran],
                                                   in_process: dict[str, Ran]) -> None:
    ran = real[case.id]
    error = _assert_one_line_exit_2(case, ran)
    if case.id.startswith("wiring-"):  # the real process says what main() said in-process
        twin_id = case.id.removeprefix("wiring-")
        twin = in_process[twin_id]
        where = f"{' '.join(ran.argv)}\nreal: {ran.stderr}\nin-process: {twin.stderr}"
        same = (ran.returncode, error.replace(ran.directory, "{d}"))
        assert same == (twin.returncode, twin.stderr.strip().replace(twin.directory, "{d}")), where


def test_every_command_is_covered() -> None:
    """A new subcommand must get rows here (or be listed as taking no input worth breaking)."""
    from tfsbench.cli import COMMANDS

    covered = {c.args[0] for c in CASES}
    no_inputs = {"demo"}  # only --out (a directory) and two switches: covered by the property test
    assert {c.replace("_", "-") for c in COMMANDS} - no_inputs | {"locust"} <= covered


def test_every_command_has_a_wiring_row() -> None:
    assert {c.args[0] for c in WIRING} == {c.args[0] for c in CASES} - {"locust"}
