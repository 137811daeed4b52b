"""Every benchmark script runs once with a tiny size and writes a valid document; the performance page
is what benchmarks/perf_table.py makes of the committed data.

The scripts are programs with a contract (benchmarks/harness.py): `python -m benchmarks.bench_NAME
... --out FILE.json`, one JSON document of type tfsbench.benchmark naming the machine, exit 1 exactly
when a target was missed, exit 2 with one line for bad arguments. Each runs as a subprocess here
because that is how it is used; the figures of a tiny run mean nothing, only the contract is checked.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tfsbench.bench.orchestrate.selfbench import ToolRate, parse_wrk

from benchmarks import harness, perf_table
from benchmarks.bench_target import BenchmarkFailed, counted

ROOT = Path(__file__).resolve().parent.parent
slow = pytest.mark.slow

# name, tiny arguments, the key every results document of that script has
SCRIPTS = [
    pytest.param("bench_gates", ["--samples", "2000", "--replicates", "100"], "speedup", id="gates"),
    pytest.param("bench_aiohttp_session", ["--requests", "300", "--rounds", "1"], "cpu_us_per_request",
                 id="aiohttp_session", marks=[slow]),
    pytest.param("bench_payloads", ["--quick"], "encode", id="payloads", marks=[slow]),
    pytest.param("bench_engine_cpu", ["--requests", "1000", "--rounds", "1"], "aiohttp_over_fast_cpu",
                 id="engine_cpu", marks=[slow]),
    pytest.param("bench_engine_memory", ["--requests", "3000"], "extrapolated_growth_mb_at_10M", id="engine_memory",
                 marks=[slow]),
    pytest.param("bench_engine_openloop", ["--seconds", "1"], "lag_ms", id="engine_openloop",
                 marks=[slow]),
    pytest.param("bench_target", ["--duration", "1", "--client", "fast"], "cases", id="target", marks=[slow]),
    pytest.param("bench_locust_users", ["--users", "1", "--duration", "3", "--target", "embedded"], "ratio",
                 id="locust_users", marks=[slow]),
    pytest.param("bench_report", ["--runs", "12", "--repeat", "1", "--quick"], "cases", id="report", marks=[slow]),
    pytest.param("bench_replay", ["--peak", "1", "--speed", "1800"], "lag_ms", id="replay", marks=[slow]),
    pytest.param("bench_stability", ["--runs", "1", "--duration", "1s", "--simulations", "5"], "real_runs",
                 id="stability", marks=[slow]),
    # 5,000 rows (20,000 values) decode in a worker process, long enough for the two status GETs the script
    # needs; 1,000 rows decoded inline could answer before the second GET (one CI run: nothing written)
    pytest.param("bench_target_freeze", ["--instances", "5000", "--heavy", "1"], "status_p99_ms", id="target_freeze",
                 marks=[slow]),
    pytest.param("bench_soak", ["--duration", "2s", "--warmup", "0.5s", "--rate", "50", "--interval", "0.5s",
                                "--settle", "0.5s"], "client_growth_mb", id="soak", marks=[slow]),
    pytest.param("bench_grpc", ["--seconds", "0.5", "--rounds", "1", "--concurrency", "2"], "engine_over_bare",
                 id="grpc", marks=[slow]),
    pytest.param("bench_protocols", ["--kinds", "numeric", "--batch-sizes", "2", "--requests", "20"], "rows",
                 id="protocols", marks=[slow]),
]


def run_script(name: str, *args: str, timeout_s: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout_s)


@pytest.mark.parametrize(("name", "args", "key"), SCRIPTS)
@pytest.mark.slow
def test_script_writes_its_document(name: str, args: list[str], key: str, tmp_path: Path) -> None:
    out = tmp_path / "sub" / f"{name}.json"
    if name == "bench_soak":
        args = [*args, "--dir", str(tmp_path / "soak")]
    proc = run_script(name, *args, "--out", str(out))
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert out.exists(), f"no document written (exit {proc.returncode}): {proc.stdout[-1500:]} {proc.stderr[-1500:]}"
    doc = json.loads(out.read_text())
    assert doc["type"] == harness.BENCHMARK_TYPE and doc["schema_version"] == harness.SCHEMA_VERSION
    assert doc["benchmark"] == name and doc["command"].startswith(f"python -m benchmarks.{name} ")
    assert doc["machine"]["cpus"] >= 1 and doc["machine"]["python"] and doc["machine"]["date"]
    assert key in doc["results"]
    missed = [k for k, t in doc["targets"].items() if not t["met"]]
    assert proc.returncode == (1 if missed else 0), (missed, proc.stderr[-500:])
    assert "Traceback" not in proc.stderr
    assert list(out.parent.iterdir()) == [out]  # written atomically: no temporary file left behind


def test_every_script_is_smoke_tested_once() -> None:
    scripts = {p.stem for p in (ROOT / "benchmarks").glob("bench_*.py")}
    tested = [param.values[0] for param in SCRIPTS]
    assert scripts <= set(tested), f"add a tiny run of {sorted(scripts - set(tested))} to SCRIPTS"
    assert len(tested) == len(set(tested)), "one row per script"


def test_bad_arguments_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    proc = run_script("bench_gates", "--samples", "0", "--out", str(tmp_path / "g.json"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("python -m benchmarks.bench_gates: error: argument --samples")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [[], ["--out", "."]], ids=["no-out", "out-is-a-directory"])
def test_out_is_a_required_file(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    parser = harness.parser("bench_x", "A benchmark.\n\nMore.")
    with pytest.raises(SystemExit) as info:
        parser.parse_args(argv)
    assert info.value.code == 2
    assert "--out" in capsys.readouterr().err


def test_emit_exit_status_follows_the_targets(tmp_path: Path) -> None:
    args = harness.parser("bench_x", "A benchmark.").parse_args(["--out", str(tmp_path / "x.json")])
    assert harness.emit("bench_x", args, {"v": 1.0}, {"v": harness.target(1.0, "<", 2.0)}, argv=[]) == 0
    assert harness.emit("bench_x", args, {"v": 3.0}, {"v": harness.target(3.0, "<", 2.0)}, argv=[]) == 1
    doc = json.loads((tmp_path / "x.json").read_text())
    assert doc["targets"]["v"] == {"value": 3.0, "op": "<", "limit": 2.0, "met": False}
    assert harness.target(None, ">=", 1.0)["met"] is False


def test_bench_target_refuses_wrk_output_it_cannot_read() -> None:
    unreadable = parse_wrk("Running 1s test @ http://127.0.0.1:1/\n  garbled", 1.0)
    with pytest.raises(BenchmarkFailed, match="could not parse wrk output"):
        counted(unreadable, "numeric")
    with pytest.raises(BenchmarkFailed, match="3 error responses"):
        counted(ToolRate("wrk", 100.0, requests=100, errors=3, duration_s=1.0), "numeric")
    output = ("Running 1s test @ http://127.0.0.1:1/v1/models/numeric:predict\n"
              "  1 threads and 4 connections\n  2345 requests in 1.00s, 300.00KB read\n"
              "Requests/sec:   2345.00\nTransfer/sec:    300.00KB\n")
    assert counted(parse_wrk(output, 1.0), "numeric") == (2345.0, 2345)  # counted by wrk, not rate x duration


# ---- docs/performance.md ----------------------------------------------------------------------


def test_committed_page_is_generated_from_committed_data() -> None:
    assert list(perf_table.DATA_DIR.glob("*.json")), "benchmarks/data/ holds the committed documents"
    assert perf_table.PAGE.read_text(encoding="utf-8") == perf_table.render(perf_table.DATA_DIR), (
        "docs/performance.md differs from benchmarks/data/: run python -m benchmarks.perf_table")


def test_every_committed_document_is_on_the_page_with_its_machine() -> None:
    page = perf_table.render(perf_table.DATA_DIR)
    for path in perf_table.DATA_DIR.glob("*.json"):  # documents without a Section get a generic table
        assert f"--out benchmarks/data/{path.name}" in page
    assert page.count("Machine: ") == len(list(perf_table.DATA_DIR.glob("*.json")))


def test_check_mode_finds_drift(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(perf_table.DATA_DIR, data)
    page = tmp_path / "performance.md"
    assert perf_table.main(["--data", str(data), "--out", str(page)]) == 0
    assert perf_table.main(["--data", str(data), "--out", str(page), "--check"]) == 0
    page.write_text(page.read_text().replace("Machine: ", "Machine:  ", 1))
    assert perf_table.main(["--data", str(data), "--out", str(page), "--check"]) == 1


@pytest.mark.parametrize("content", ["{not json", '{"type": "tfsbench.run", "schema_version": 1}',
                                     '{"type": "tfsbench.benchmark", "schema_version": 9, "results": {}}'],
                         ids=["not-json", "other-type", "newer-schema"])
def test_bad_data_is_one_line_and_writes_nothing(content: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "bench_x.json").write_text(content)
    page = tmp_path / "performance.md"
    assert perf_table.main(["--data", str(data), "--out", str(page)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("perf_table: error: ") and err.count("\n") == 1 and "bench_x.json" in err
    assert not page.exists()
