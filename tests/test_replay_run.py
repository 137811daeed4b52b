"""`tfsbench replay` (bench/orchestrate/replay.py, bench/measure/trace_schedule.py) against the embedded
target: timing, per-window counts, mixes, scaling, results schema, errors, the figure and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import cli
from tfsbench.bench.measure.trace_schedule import NOT_SENT, OK
from tfsbench.bench.orchestrate.replay import (
    ReplayOptions,
    resolve_targets,
    run_replay,
    scale_trace,
    windows_of,
)
from tfsbench.bench.results import RunResult, load_result
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.trace import TraceKey, make_trace, write_trace
from tfsbench.payloads.trace_synth import Bursts, SynthSpec, synthesize


def _trace(seconds: float = 20.0, rate: float = 20.0, seed: int = 3, **kw):
    spec = SynthSpec(profile="flat", peak_rps=rate, duration_s=seconds, seed=seed, **kw)
    return synthesize(spec)


@pytest.mark.slow
@pytest.mark.serial
def test_replay_sends_every_request_at_its_time_with_window_counts_equal(tfs_url):
    trace = _trace(60.0, 15.0, bursts=Bursts(1, 4.0, 10.0), models=(("numeric", 3.0), ("text", 1.0)),
                   batch_sizes=((1, 1.0), (4, 1.0)))
    run = run_replay(trace, ReplayOptions(url=tfs_url, speed=20.0, window_s=10.0))
    r = run.result
    assert np.all(run.record.status == OK)
    assert r.summary.requests == r.summary.ok == len(trace)
    assert [w.scheduled for w in r.windows] == trace.window_counts(10.0).tolist()
    assert [w.sent for w in r.windows] == [w.scheduled for w in r.windows]
    assert len(r.windows) == 6 and all(w.p99_ms is not None for w in r.windows)
    # the burst's window carries about 4x the others' traffic, in trace time
    rates = sorted(w.offered_rps for w in r.windows)
    assert rates[-1] > 2.0 * rates[0]
    # no request left before its time; the replay lasted until the last send (trace time / speed) and not much longer
    assert np.nanmin(run.record.lag_s) >= 0.0
    assert trace.t_s[-1] / 20.0 <= run.wall_s < 60.0 / 20.0 + 1.0
    # each distinct model x batch got its own target; the batch sizes were really sent (full validation)
    names = sorted(t["name"] for t in r.config.extra["replay"]["targets"])
    assert names == ["numeric numeric b=1", "numeric numeric b=4", "text text b=1", "text text b=4"]
    assert r.config.arrival == "trace"


@pytest.mark.slow
def test_result_round_trips_and_old_files_have_no_windows(tfs_url, tmp_path):
    trace = _trace(4.0, 10.0)
    run = run_replay(trace, ReplayOptions(url=tfs_url, speed=4.0, window_s=1.0))
    path = tmp_path / "run.json"
    from tfsbench.bench.results import save_result

    save_result(run.result, path)
    back = load_result(path)
    assert back.windows == run.result.windows
    doc = json.loads(path.read_text())
    doc["schema_version"] = 3
    del doc["windows"]
    assert RunResult.from_dict(doc).windows == ()
    doc["windows"] = [{"t_s": "soon"}]
    doc["schema_version"] = 4
    with pytest.raises(InputError, match="windows"):
        RunResult.from_dict(doc)


@pytest.mark.slow
def test_errors_are_counted_per_window(tfs_server):
    url = tfs_server(faults="status=503:0.5,seed=2")
    trace = _trace(10.0, 20.0)
    r = run_replay(trace, ReplayOptions(url=url, speed=10.0, window_s=5.0)).result
    assert sum(w.errors for w in r.windows) == r.summary.error_count > 0
    assert all(0 < w.errors < w.scheduled for w in r.windows)
    assert set(r.summary.errors) == {"http_503"}


def test_scale_thins_and_superposes_keeping_the_shape():
    trace = _trace(600.0, 10.0, bursts=Bursts(2, 5.0, 30.0), seed=5)
    base = trace.window_counts(30.0)
    half = scale_trace(trace, 0.5, seed=1).window_counts(30.0)
    triple = scale_trace(trace, 3.0, seed=1, shift_s=1.0)
    assert len(triple) == 3 * len(trace)
    # shifts below 1 s move a few requests across window edges (more at a burst's edge)
    assert np.all(np.abs(triple.window_counts(30.0) - 3 * base) <= 0.05 * 3 * base + 10)
    assert abs(half.sum() / base.sum() - 0.5) < 0.03
    assert np.corrcoef(half, base)[0, 1] > 0.95  # the bursts survive thinning
    # copies are shifted, not stacked on the same instants
    assert np.unique(triple.t_s).size == triple.t_s.size
    with pytest.raises(InputError):
        scale_trace(trace, 0.0)


def test_targets_need_a_model_and_a_kind():
    anonymous = make_trace([0.0, 1.0], [TraceKey(), TraceKey()])
    with pytest.raises(InputError, match="give --model"):
        resolve_targets(anonymous, ReplayOptions(url="http://127.0.0.1:1"))
    resnet = make_trace([0.0], [TraceKey("resnet")])
    with pytest.raises(InputError, match="give --kind"):
        resolve_targets(resnet, ReplayOptions(url="http://127.0.0.1:1"))
    targets, index = resolve_targets(resnet, ReplayOptions(url="http://127.0.0.1:1", model_map={"resnet": "image"}))
    assert targets[0].model == "image" and targets[0].kind == "image" and index.tolist() == [0]


def test_windows_of_counts_refused_and_unsent():
    from tfsbench.bench.measure.trace_schedule import ERROR, REFUSED, TraceRecord

    trace = make_trace([0.1, 0.2, 1.5, 2.5], duration_s=3.0)
    record = TraceRecord(lag_s=np.array([0.0, 0.002, np.nan, np.nan]), latency_s=np.array([0.01, np.nan, np.nan, np.nan]),
                         status=np.array([OK, ERROR, REFUSED, NOT_SENT], dtype=np.int8), errors_by_request={1: "x"})
    w = windows_of(trace, record, 1.0)
    assert [(x.scheduled, x.sent, x.ok, x.errors, x.refused, x.late) for x in w] == [
        (2, 2, 1, 1, 0, 1), (1, 0, 0, 0, 1, 0), (1, 0, 0, 0, 0, 0)]
    assert w[0].p50_ms == pytest.approx(10.0)


@pytest.mark.slow
def test_replay_command_writes_run_and_figure(tfs_url, tmp_path):
    trace_path = tmp_path / "t.jsonl"
    write_trace(_trace(6.0, 10.0), trace_path)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "tfsbench", "replay", str(trace_path), "--url", tfs_url,
                           "--speed", "6", "--window", "2s", "--slo", "p99<=0.001ms", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "3 of 3 windows broke p99<=0.001ms" in done.stdout
    assert len(load_result(out / "run.json").windows) == 3
    assert (out / "replay.png").read_bytes()[:4] == b"\x89PNG"
    bad = cli("replay", str(trace_path), "--url", tfs_url, "--model-map", "numeric=nope",
              "--out", str(tmp_path / "never"))  # bad input in-process (helpers.cli)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert "nope" in bad.stderr and not (tmp_path / "never").exists()


def test_committed_replay_result_loads_with_its_windows():
    from pathlib import Path

    run = load_result(Path(__file__).parent / "fixtures" / "results" / "replay-v5.json")
    assert run.config.arrival == "trace" and len(run.windows) == 3
    assert sum(w.scheduled for w in run.windows) == run.summary.requests
    assert run.config.extra["replay"]["speed"] == 10


@pytest.mark.slow
def test_report_shows_the_replay_with_slo_breaking_windows(tmp_path):
    from pathlib import Path

    from tfsbench.bench.stats.slo import parse_slo
    from tfsbench.reports.build import build_report
    from tfsbench.reports.dataset import load_sources

    fixture = Path(__file__).parent / "fixtures" / "results" / "replay-v5.json"
    files = build_report(load_sources([str(fixture)]), tmp_path / "r", slo=parse_slo("p99<=0.001ms"))
    html = files.html.read_text()
    assert '<section id="replay"><h2>Trace replay</h2>' in html
    assert "<td>0 s, 10 s, 20 s</td>" in html  # every window broke a 1 us SLO
    assert (tmp_path / "r" / "replay_1.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_aiohttp_engine_replays_too(tfs_url):
    """The engine without `submit` (a task per request) keeps the same schedule and windows."""
    trace = _trace(6.0, 10.0, models=(("numeric", 1.0), ("text", 1.0)))
    run = run_replay(trace, ReplayOptions(url=tfs_url, speed=6.0, window_s=2.0, engine="aiohttp"))
    assert np.all(run.record.status == OK)
    assert [w.sent for w in run.result.windows] == trace.window_counts(2.0).tolist()
    assert np.nanmin(run.record.lag_s) >= 0.0


@pytest.mark.slow
def test_stopping_keeps_a_partial_result(tfs_url):
    import threading

    trace = _trace(30.0, 10.0)
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    try:
        run = run_replay(trace, ReplayOptions(url=tfs_url, speed=1.0, window_s=10.0), stop=stop)
    finally:
        timer.cancel()
    r = run.result
    assert r.partial and r.partial_reason == "interrupted"
    sent = int(np.count_nonzero(run.record.status == OK))
    assert 0 < sent < len(trace) and np.count_nonzero(run.record.status == NOT_SENT) == len(trace) - sent
    assert sum(w.sent for w in r.windows) == sent and run.wall_s < 10.0


@pytest.mark.parametrize("args, needle", [
    (["replay", "{missing}", "--url", "http://127.0.0.1:9"], "no such file"),
    (["replay", "{junk}", "--url", "http://127.0.0.1:9"], "not a tfsbench trace"),
    (["replay", "{trace}", "--url", "http://127.0.0.1:9", "--speed", "0"], "--speed"),
    (["replay", "{trace}", "--url", "http://127.0.0.1:9", "--window", "soon"], "--window"),
    (["replay", "{trace}", "--url", "ftp://x"], "--url"),
    (["replay", "{trace}", "--url", "http://127.0.0.1:9", "--model-map", "x"], "--model-map"),
])
def test_bad_replay_input_is_one_line_and_exit_2(tmp_path, capsys, args, needle):
    from tfsbench import cli

    trace = tmp_path / "t.jsonl"
    write_trace(_trace(2.0, 5.0), trace)
    (tmp_path / "junk.jsonl").write_text("hello\n")
    paths = {"missing": tmp_path / "absent.jsonl", "junk": tmp_path / "junk.jsonl", "trace": trace}
    argv = [a.format(**paths) for a in args] + ["--out", str(tmp_path / "out")]
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "out").exists()
