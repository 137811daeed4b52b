"""REST vs gRPC table and figure from real runs of both protocols against one embedded target."""

from __future__ import annotations

import pytest
from tfsbench.bench.measure.runner import run_benchmark
from tfsbench.bench.results import RunConfig, save_result
from tfsbench.reports.protocols import (
    protocol_figure,
    protocol_rows,
    protocol_table_markdown,
    size_table_markdown,
)
from tfsbench.server.testing import ServerThread

pytestmark = pytest.mark.xdist_group("test_grpc_reports")  # module fixtures built once, on one xdist worker


@pytest.fixture(scope="module")
def both_protocols():
    server = ServerThread(grpc_port=0)
    server.start()
    try:
        results = []
        for kind in ("numeric", "image"):
            for protocol, url, engine in (("rest", server.base_url, "fast"),
                                          ("grpc", f"grpc://127.0.0.1:{server.grpc_port}", "grpc")):
                config = RunConfig(url=url, model=kind, kind=kind, batch_size=4, format="row", mode="closed",
                                   engine=engine, protocol=protocol, concurrency=2, requests_limit=60,
                                   extra={"payload": {"image_size": [32, 32]}} if kind == "image" else {})
                results.append(run_benchmark(config))
        yield results
    finally:
        server.stop()


@pytest.mark.slow
def test_rows_pair_protocols_and_show_the_byte_difference(both_protocols, tmp_path):
    rows = protocol_rows(both_protocols)
    assert [(r.kind, r.protocol) for r in rows] == [("image", "rest"), ("image", "grpc"),
                                                     ("numeric", "rest"), ("numeric", "grpc")]
    assert all(r.errors == 0 and r.throughput_rps > 0 for r in rows)
    image_rest, image_grpc, numeric_rest, numeric_grpc = rows
    assert image_grpc.request_bytes_per_instance < image_rest.request_bytes_per_instance * 0.8  # no base64
    assert numeric_grpc.request_bytes_per_instance < numeric_rest.request_bytes_per_instance
    table = protocol_table_markdown(rows)
    assert table.count("| grpc |") == 2 and "x) |" in table
    fig = protocol_figure(rows)
    fig.savefig(tmp_path / "protocols.png")
    assert (tmp_path / "protocols.png").stat().st_size > 10_000


@pytest.mark.slow
def test_unpaired_runs_are_left_out(both_protocols):
    only_rest = [r for r in both_protocols if r.config.protocol == "rest"]
    assert protocol_rows(only_rest) == []


def test_size_table_markdown():
    text = size_table_markdown([{"kind": "image", "batch_size": 8, "raw_bytes": 3000.0, "protobuf_bytes": 3050.0,
                                 "json_bytes": 4100.0, "json_gzip_bytes": 3100.0}])
    assert "| image | 8 | 3,000 | 3,050 | 4,100 | 3,100 | 1.34x |" in text


@pytest.mark.slow
def test_compare_pairs_rest_with_grpc(both_protocols, tmp_path, capsys):
    from tfsbench.bench.results import save_result

    from tfsbench.cli import main

    rest = [r for r in both_protocols if r.config.protocol == "rest" and r.config.kind == "numeric"][0]
    grpc = [r for r in both_protocols if r.config.protocol == "grpc" and r.config.kind == "numeric"][0]
    save_result(rest, tmp_path / "rest.json")
    save_result(grpc, tmp_path / "grpc.json")
    assert main(["compare", str(tmp_path / "rest.json"), str(tmp_path / "grpc.json")]) == 0
    out = capsys.readouterr().out
    assert "protocols paired by configuration: grpc vs baseline rest" in out
    assert "request bytes" in out and "1 matched configuration" in out


def test_plan_says_which_protocol_needs_fewer_replicas(tmp_path):
    """Plan logic on synthetic stable runs (as the other plan tests): gRPC twice as fast as REST."""
    import dataclasses

    from tfsbench.bench.stats.slo import parse_slo
    from tfsbench.reports.dataset import load_sources
    from tfsbench.reports.plan import make_plan
    from tfsbench.reports.synthetic import make_run

    runs = tmp_path / "runs"
    runs.mkdir()
    for concurrency in (1, 4, 16):
        rest = make_run("numeric", 8, concurrency=concurrency)
        fast = make_run("numeric", 8, concurrency=concurrency, speed=2.0)
        grpc = dataclasses.replace(fast, config=dataclasses.replace(fast.config, protocol="grpc", engine="grpc"))
        save_result(rest, runs / f"rest-c{concurrency}.json")
        save_result(grpc, runs / f"grpc-c{concurrency}.json")
    plan = make_plan(load_sources([str(runs)]), parse_slo("p99<500ms"), target_qps=5000)
    assert sorted(c.format for c in plan.configs) == ["grpc", "row"]
    by_format = {c.format: c for c in plan.configs}
    assert by_format["grpc"].replicas < by_format["row"].replicas
    assert plan.best is by_format["grpc"]
    assert (f"gRPC needs {by_format['grpc'].replicas} replicas where REST (numeric b=8 row) needs "
            f"{by_format['row'].replicas}.") in plan.recommendation


@pytest.mark.slow
def test_report_has_a_rest_vs_grpc_section(both_protocols, tmp_path, capsys):
    from tfsbench.bench.results import save_result

    from tfsbench.cli import main

    runs = tmp_path / "runs"
    runs.mkdir()
    for i, r in enumerate(both_protocols):
        save_result(r, runs / f"{i}.json")
    assert main(["report", str(runs), "--out", str(tmp_path / "rep")]) == 0
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "REST vs gRPC" in html and "<td>grpc</td>" in html
    assert (tmp_path / "rep" / "protocols.png").stat().st_size > 10_000
    assert "| numeric | 4 | c=2 | grpc |" in (tmp_path / "rep" / "summary.md").read_text()
