"""`tfsbench demo --quick`: the whole pipeline against the embedded target, then the target is gone."""

from __future__ import annotations

import json
import re
import socket
from urllib.parse import urlparse

import pytest
from helpers import cli
from reports_fixtures import run_cli


@pytest.mark.slow
def test_quick_demo_runs_the_pipeline_and_stops_the_target(tmp_path) -> None:
    out = tmp_path / "demo"
    proc = run_cli("demo", "--quick", "--no-progress", "--out", out, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for step in ("[1/4]", "[2/4]", "[3/4]", "[4/4]"):
        assert step in proc.stderr, "progress is shown"
    manifest = json.loads((out / "sweep" / "manifest.json").read_text())
    assert len(manifest["runs"]) == 3 * 2 * 2  # three kinds x two batch sizes x two concurrencies
    search = json.loads((out / "search" / "manifest.json").read_text())
    assert search["kind"] == "search" and search["search"]["probes"]
    report = out / "report"
    page = (report / "report.html").read_text(encoding="utf-8")
    assert 'id="plan"' in page and page.count("<figure") >= 5
    assert {"numeric", "text", "image"} <= set(re.findall(r"<td>(numeric|text|image) b=", page))
    plan = json.loads((report / "plan.json").read_text())
    assert plan["slo"] == "p99<=50ms" and len(plan["configs"]) >= 6
    assert f"report:  {report / 'report.html'}" in proc.stdout
    # one small REST-vs-gRPC comparison, shown in its own report section
    assert sorted(p.name for p in (out / "protocols").glob("*.json")) == [
        "numeric-b8-c4-grpc.json", "numeric-b8-c4-rest.json"]
    assert "REST vs gRPC" in page and "<td>grpc</td>" in page
    # the target was stopped: nothing listens on its port any more
    url = re.search(r"target: (http://127\.0\.0\.1:\d+)", proc.stderr).group(1)
    port = urlparse(url).port
    with socket.socket() as s:
        s.settimeout(2)
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_demo_refuses_an_out_that_is_a_file(tmp_path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    proc = cli("demo", "--out", f)
    assert proc.returncode == 2 and "--out" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1



def test_an_unstable_pair_run_is_measured_once_more(tmp_path) -> None:
    """The REST/gRPC pair re-measures a run that ended unstable, keeping the attempt in unstable/ (the
    report reads only the directory's own files) and saying so in the kept run's note."""
    import dataclasses

    from tfsbench.bench.results import load_result, save_result

    from reports.synthetic import make_run
    from tfsbench.pipeline import measure_twice_if_unstable

    stable = make_run("numeric", 8, concurrency=4)
    unstable = dataclasses.replace(stable, summary=dataclasses.replace(
        stable.summary, stable=False, stability_reason="unstable: throughput differs by 15.5%"))
    for first, calls_expected in ((unstable, 2), (stable, 1)):
        answers, calls, lines = [first, stable], [], []

        def runner(config, answers=answers, calls=calls):  # noqa: ANN001, ANN202
            calls.append(config)
            return answers[len(calls) - 1]

        path = tmp_path / f"run-{calls_expected}.json"
        result = measure_twice_if_unstable(runner, stable.config, path, lines.append)
        save_result(result, path)
        assert len(calls) == calls_expected and result.summary.stable
        again = calls_expected == 2
        assert ("measured again after 1 unstable attempt" in result.summary.measure_note) is again
        assert (tmp_path / "unstable" / path.name).exists() is again
        if again:
            assert not load_result(tmp_path / "unstable" / path.name).summary.stable
            assert "measuring it again" in lines[0]
