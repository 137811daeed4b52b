"""`sweep --repeat N` and the sweep's until-stable flags: files per repeat, the manifest's list of
them, resume per repeat, saturation judged per load level, config-file keys, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tfsbench.bench.orchestrate.sweep import SweepPlan, parse_sweep_doc, run_sweep
from tfsbench.bench.results import LatencySummary, RunConfig, RunResult, Summary, load_result
from tfsbench.payloads.errors import InputError

from tests.helpers import cli

BASE = RunConfig(url="http://127.0.0.1:1", model="{kind}", kind="numeric", batch_size=1, format="row",
                 mode="closed", engine="fast", concurrency=1, duration_s=1.0, warmup_s=0.0)


def fake_result(config: RunConfig, rps: float, p50: float = 1.0) -> RunResult:
    lat = LatencySummary(mean=p50, p50=p50, p90=p50, p95=p50, p99=2 * p50, p999=2 * p50, max=3 * p50)
    summary = Summary(requests=100, ok=100, errors={}, throughput_rps=rps, throughput_ips=rps, latency_ms=lat,
                      request_bytes=10.0, response_bytes=20.0, raw_bytes=4.0, stable=True,
                      stability_reason="stable", measured_s=1.0)
    return RunResult(config=config, environment={}, summary=summary)


class Runner:
    """A stand-in runner: throughput 100, 110, 120, ... per call, so repeats differ."""

    def __init__(self) -> None:
        self.calls: list[RunConfig] = []

    def __call__(self, config, *, headers=None, progress=None, stop=None, pool=None, environment=None):
        self.calls.append(config)
        return fake_result(config, 100.0 + 10 * (len(self.calls) - 1))


def no_preflight(config, headers=None):
    return {}


def sweep(tmp_path: Path, runner: Runner, repeat: int, **kw):
    plan = SweepPlan(base=BASE, kinds=("numeric",), batch_sizes=(1,), formats=("row",), concurrencies=(1, 4))
    return run_sweep(plan, tmp_path, progress=False, runner=runner, preflight_fn=no_preflight, log=lambda m: None,
                     repeat=repeat, **kw)


def test_each_grid_point_is_measured_n_times_into_its_own_files(tmp_path: Path) -> None:
    runner = Runner()
    outcome = sweep(tmp_path, runner, 3)
    assert len(runner.calls) == 6
    files = sorted(p.name for p in tmp_path.glob("numeric-*.json"))
    assert files == [f"numeric-b1-row-c{c}-r{k}.json" for c in (1, 4) for k in (1, 2, 3)]
    assert [load_result(tmp_path / f).summary.throughput_rps for f in
            ("numeric-b1-row-c1-r1.json", "numeric-b1-row-c1-r2.json", "numeric-b1-row-c1-r3.json")] == [100, 110, 120]
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["repeat"] == 3 and m["complete"] is True
    assert m["repeats"] == {"numeric-b1-row-c1": [f"numeric-b1-row-c1-r{k}.json" for k in (1, 2, 3)],
                            "numeric-b1-row-c4": [f"numeric-b1-row-c4-r{k}.json" for k in (1, 2, 3)]}
    assert len(m["runs"]) == 6
    assert outcome.groups["numeric-b1-row-c4-r2"] == "numeric-b1-row-c4"


def test_resume_redoes_only_the_missing_repeat(tmp_path: Path) -> None:
    sweep(tmp_path, Runner(), 2)
    (tmp_path / "numeric-b1-row-c4-r2.json").unlink()
    runner = Runner()
    outcome = sweep(tmp_path, runner, 2)
    assert [c.concurrency for c in runner.calls] == [4]
    assert outcome.skipped == 3


def test_one_repeat_keeps_the_plain_file_names(tmp_path: Path) -> None:
    sweep(tmp_path, Runner(), 1)
    assert sorted(p.name for p in tmp_path.glob("numeric-*.json")) == ["numeric-b1-row-c1.json",
                                                                      "numeric-b1-row-c4.json"]
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["repeat"] == 1 and m["repeats"]["numeric-b1-row-c1"] == ["numeric-b1-row-c1.json"]


def test_saturation_compares_load_levels_not_repeats(tmp_path: Path) -> None:
    """Three repeats of one level with flat throughput and rising p50 must not stop the series."""
    calls: list[RunConfig] = []

    def runner(config, **kw):
        calls.append(config)
        return fake_result(config, 100.0, p50=float(len(calls)) ** 2)  # flat throughput, p50 x9 over 3 calls

    plan = SweepPlan(base=BASE, kinds=("numeric",), batch_sizes=(1,), formats=("row",), concurrencies=(1, 2))
    outcome = run_sweep(plan, tmp_path, progress=False, runner=runner, preflight_fn=no_preflight,
                        log=lambda m: None, repeat=3)
    assert not outcome.saturated
    assert len(calls) == 6


def test_config_file_keys_repeat_and_until_stable() -> None:
    doc = {"sweep": {"url": "http://127.0.0.1:1", "model": "m", "kinds": ["numeric"], "batch_sizes": [1],
                     "repeat": 3, "max_duration": "20s", "max_warmup": "5s"}}
    sf = parse_sweep_doc(doc, "f.toml")
    assert sf.repeat == 3
    base = sf.plan.base
    assert (base.until_stable, base.duration_s, base.warmup_auto, base.warmup_s) == (True, 20.0, True, 5.0)
    plain = parse_sweep_doc({"sweep": {k: v for k, v in doc["sweep"].items()
                                       if k not in ("repeat", "max_duration", "max_warmup")}}, "f.toml")
    assert (plain.repeat, plain.plan.base.until_stable, plain.plan.base.warmup_auto) == (1, False, False)


@pytest.mark.parametrize("extra, message", [
    ({"repeat": 0}, "repeat"),
    ({"max_duration": "20s", "duration": "5s"}, "not both"),
    ({"max_warmup": "5s", "warmup": "1s"}, "not both"),
    ({"max_duration": "0s"}, "max_duration"),
])
def test_config_file_bad_values(extra, message) -> None:
    doc = {"sweep": {"url": "http://127.0.0.1:1", "model": "m", "kinds": ["numeric"], "batch_sizes": [1], **extra}}
    with pytest.raises(InputError, match=message):
        parse_sweep_doc(doc, "f.toml")


@pytest.mark.parametrize("args, message", [
    (["--repeat", "0"], "--repeat"),
    (["--max-duration", "5s", "--duration", "1s"], "not both"),
    (["--max-warmup", "1s", "--warmup", "1s"], "not both"),
])
def test_bad_flags_exit_2_with_one_line(tmp_path: Path, args, message) -> None:
    out = tmp_path / "out"
    res = cli("sweep", "--url", "http://127.0.0.1:1", "--model", "m", "--kinds", "numeric", "--batch-sizes", "1",
              "--out", out, *args)
    assert res.code == 2
    assert message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.slow
def test_sweep_repeat_against_a_real_target(tfs_url: str, tmp_path: Path) -> None:
    out = tmp_path / "sw"
    res = cli("sweep", "--url", tfs_url, "--model", "{kind}", "--kinds", "numeric", "--batch-sizes", "1",
              "--concurrency", "2", "--requests", "60", "--warmup", "0s", "--repeat", "2", "--out", out,
              "--no-progress")
    assert res.code == 0, res.stderr
    assert sorted(p.name for p in out.glob("numeric-*.json")) == ["numeric-b1-row-c2-r1.json",
                                                                 "numeric-b1-row-c2-r2.json"]
    assert "across repeats" in res.stdout and "numeric-b1-row-c2: throughput" in res.stdout and "±" in res.stdout
    assert "2 of 2 stable" in res.stdout or "of 2 stable" in res.stdout


@pytest.mark.slow
def test_sweep_until_stable_flags_reach_the_runs(tfs_url: str, tmp_path: Path) -> None:
    out = tmp_path / "sw"
    res = cli("sweep", "--url", tfs_url, "--model", "{kind}", "--kinds", "numeric", "--batch-sizes", "1",
              "--concurrency", "2", "--max-duration", "3s", "--max-warmup", "1s", "--out", out, "--no-progress")
    assert res.code == 0, res.stderr
    assert "until stable (at most 3 s)" in res.stderr
    cfg = load_result(out / "numeric-b1-row-c2.json").config
    assert (cfg.until_stable, cfg.duration_s, cfg.warmup_auto, cfg.warmup_s) == (True, 3.0, True, 1.0)


def test_flags_replace_the_other_kind_of_bound_from_the_file(tmp_path: Path) -> None:
    from tfsbench.cli import build_parser
    from tfsbench.commands.sweep import build_sweep

    cfg = tmp_path / "s.toml"
    cfg.write_text('[sweep]\nurl = "http://127.0.0.1:1"\nmodel = "m"\nkinds = ["numeric"]\nbatch_sizes = [1]\n'
                   'duration = "5s"\nwarmup = "1s"\nrepeat = 2\nout = "o"\n')
    args = build_parser().parse_args(["sweep", "--config", str(cfg), "--max-duration", "20s", "--max-warmup", "4s"])
    sf = build_sweep(args)
    b = sf.plan.base
    assert (b.until_stable, b.duration_s, b.warmup_auto, b.warmup_s, sf.repeat) == (True, 20.0, True, 4.0, 2)
    args = build_parser().parse_args(["sweep", "--config", str(cfg), "--repeat", "5", "--duration", "3s"])
    sf = build_sweep(args)
    assert (sf.plan.base.until_stable, sf.plan.base.duration_s, sf.repeat) == (False, 3.0, 5)


class UnstableFirst(Runner):
    """Every run's first measurement is unstable, the next one stable."""

    def __call__(self, config, **kw):
        result = super().__call__(config, **kw)
        if sum(c == config for c in self.calls) == 1:
            s = result.summary
            return RunResult(config=config, environment={}, summary=Summary(
                **{**{f: getattr(s, f) for f in s.__dataclass_fields__}, "stable": False,
                   "stability_reason": "unstable: throughput differs by 30% across the 3 windows"}))
        return result


def test_max_remeasure_measures_an_unstable_run_again_and_keeps_the_attempt_aside(tmp_path: Path) -> None:
    runner = UnstableFirst()
    out = sweep(tmp_path, runner, 1, max_remeasure=1)
    assert len(runner.calls) == 4  # two grid points, each measured twice
    assert all(r.summary.stable for r in out.results)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["runs"] == ["numeric-b1-row-c1.json", "numeric-b1-row-c4.json"]
    assert manifest["max_remeasure"] == 1
    assert manifest["unstable_attempts"] == {"numeric-b1-row-c1": ["unstable/numeric-b1-row-c1-1.json"],
                                             "numeric-b1-row-c4": ["unstable/numeric-b1-row-c4-1.json"]}
    kept = load_result(tmp_path / "numeric-b1-row-c1.json")
    assert kept.summary.stable and "measured again after 1 unstable attempt" in kept.summary.measure_note
    assert not load_result(tmp_path / "unstable" / "numeric-b1-row-c1-1.json").summary.stable
    runner = UnstableFirst()
    out = sweep(tmp_path / "plain", runner, 1)  # default 0: the unstable result stands
    assert len(runner.calls) == 2 and not any(r.summary.stable for r in out.results)
    assert not (tmp_path / "plain" / "unstable").exists()


def test_max_remeasure_is_a_sweep_flag(tfs_url: str, tmp_path: Path) -> None:
    code, _, err = cli("sweep", "--url", tfs_url, "--model", "numeric", "--kinds", "numeric", "--batch-sizes", "1",
                       "--concurrency", "1", "--max-remeasure", "-1", "--out", str(tmp_path / "s"))
    assert code == 2 and "--max-remeasure" in err and len(err.strip().splitlines()) == 1
