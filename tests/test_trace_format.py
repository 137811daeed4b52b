"""Trace format (payloads/trace.py) and synthesizer (payloads/trace_synth.py): round trips, bad lines, seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.trace import TraceKey, make_trace, read_trace, write_trace
from tfsbench.payloads.trace_synth import Bursts, SynthSpec, parse_bursts, parse_mix, parse_rate, synthesize


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_round_trip_keeps_times_keys_and_bytes(tmp_path, suffix):
    keys = [TraceKey("numeric", 2, None, "numeric", 8), TraceKey("text", None, "stable", "text", 1), TraceKey()]
    trace = make_trace([0.5, 0.25, 1.75], keys, [100, -1, 7], duration_s=2.0, start="2026-12-01T00:00:00+00:00")
    path = tmp_path / f"t{suffix}"
    write_trace(trace, path)
    back = read_trace(path)
    assert back.t_s.tolist() == [0.25, 0.5, 1.75]  # sorted on the way in
    assert [back.keys[i] for i in back.key_index] == [keys[1], keys[0], keys[2]]
    assert back.request_bytes.tolist() == [-1, 100, 7]
    assert back.duration_s == 2.0 and back.start == "2026-12-01T00:00:00+00:00"
    assert back.bad.count == 0


def test_bad_lines_are_counted_with_line_numbers(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join([
        json.dumps({"format": "tfsbench.trace", "version": 1}),
        '{"t_s": 0.1, "model": "numeric"}',
        "not json",
        '{"t_s": -1}',
        '{"model": "numeric"}',
        '{"t_s": 0.3, "batch_size": 0}',
        '{"t_s": 0.2, "kind": "numeric", "batch_size": 4}',
    ]) + "\n")
    trace = read_trace(path)
    assert len(trace) == 2
    assert trace.bad.count == 4
    assert [n for n, _ in trace.bad.examples] == [3, 4, 5, 6]
    assert "line 3: not JSON" in trace.bad.describe()


def test_absolute_timestamps_become_offsets(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"format": "tfsbench.trace", "version": 1}\n'
                    '{"ts": "2026-12-01T10:00:01.5Z"}\n{"ts": 1796119200.0}\n')
    trace = read_trace(path)
    assert trace.t_s.tolist() == [0.0, 1.5]
    assert trace.start.startswith("2026-12-01T10:00:00")


@pytest.mark.parametrize("text, needle", [
    ("", "empty file"),
    ('{"format": "other"}\n', "not a tfsbench trace"),
    ('{"format": "tfsbench.trace", "version": 9}\n{"t_s": 1}\n', "version 9 is not supported"),
    ('{"format": "tfsbench.trace", "version": 1}\nnope\n{"t_s": "x"}\n', "no usable request lines: 2 bad lines"),
])
def test_unusable_files_are_one_line_input_errors(tmp_path, text, needle):
    path = tmp_path / "t.jsonl"
    path.write_text(text)
    with pytest.raises(InputError, match=needle) as info:
        read_trace(path)
    assert "\n" not in str(info.value)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_trace(tmp_path / "absent.jsonl")


@pytest.mark.slow
def test_synth_is_seeded_and_follows_the_diurnal_profile():
    spec = SynthSpec(profile="diurnal", peak_rps=20.0, duration_s=86400.0, trough=0.25, seed=7)
    a, b = synthesize(spec), synthesize(spec)
    assert np.array_equal(a.t_s, b.t_s)
    assert not np.array_equal(a.t_s, synthesize(SynthSpec(peak_rps=20.0, seed=8)).t_s)
    hourly = a.window_counts(3600.0) / 3600.0
    assert hourly.size == 24
    assert abs(hourly[14] - 20.0) < 1.0  # the peak at 14:00
    assert abs(hourly[2] - 5.0) < 1.0  # the trough 12 h away: 25% of the peak
    assert np.all(np.diff(a.t_s) >= 0) and a.t_s[-1] < 86400.0


def test_synth_bursts_and_mixes():
    plain = synthesize(SynthSpec(profile="flat", peak_rps=10.0, duration_s=600.0, seed=1))
    bursty = synthesize(SynthSpec(profile="flat", peak_rps=10.0, duration_s=600.0, seed=1,
                                  bursts=Bursts(2, 5.0, 30.0), batch_sizes=((1, 1.0), (8, 1.0)),
                                  models=(("numeric", 3.0), ("text", 1.0))))
    per10 = bursty.window_counts(10.0)
    assert per10.max() > 3 * plain.window_counts(10.0).max()
    counts = bursty.key_counts()
    numeric = sum(c for k, c in counts.items() if k.model == "numeric")
    assert 0.7 < numeric / len(bursty) < 0.8
    assert {k.batch_size for k in counts} == {1, 8}


def test_cli_parsers():
    assert parse_rate("300/s") == 300.0 and parse_rate("18000/min") == 300.0
    assert parse_bursts("4,x2.5,2m") == Bursts(4, 2.5, 120.0)
    assert parse_mix("1=0.7,8=0.3", "--batch-sizes", as_int=True) == ((1, 0.7), (8, 0.3))
    for bad in ("-3/s", "fast", "3/week"):
        with pytest.raises(InputError):
            parse_rate(bad)
    with pytest.raises(InputError):
        parse_mix("0=1", "--batch-sizes", as_int=True)
