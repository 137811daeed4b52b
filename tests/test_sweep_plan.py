"""Sweep grid, config files, manifest and resume logic (with a stand-in runner; the real engine is
exercised in test_sweep_cli.py)."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tfsbench.bench.orchestrate.sweep import (
    SWEEP_KEYS,
    SweepPlan,
    fingerprint,
    load_sweep_config,
    parse_sweep_doc,
    run_id,
    run_sweep,
)
from tfsbench.bench.results import LatencySummary, RunConfig, RunResult, Summary, load_result, load_results
from tfsbench.payloads.errors import InputError
from tfsbench.reports.check import parse_threshold

BASE = RunConfig(url="http://127.0.0.1:1", model="{kind}", kind="numeric", batch_size=1, format="row",
                 mode="closed", engine="fast", concurrency=1, duration_s=1.0, warmup_s=0.0)


def fake_result(config: RunConfig, *, partial: bool = False, rps: float = 100.0) -> RunResult:
    lat = LatencySummary(mean=1.0, p50=1.0, p90=1.5, p95=2.0, p99=3.0, p999=4.0, max=5.0)
    summary = Summary(requests=100, ok=100, errors={}, throughput_rps=rps, throughput_ips=rps * config.batch_size,
                      latency_ms=lat, request_bytes=10.0, response_bytes=20.0, raw_bytes=4.0, stable=True,
                      stability_reason="stable", measured_s=1.0)
    return RunResult(config=config, environment={}, summary=summary, partial=partial,
                     partial_reason="interrupted" if partial else None)


class FakeRunner:
    """Records calls; sets `stop` (as a Ctrl-C would) when asked to, returning a partial result."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        self.calls: list[RunConfig] = []
        self.interrupt_at = interrupt_at

    def __call__(self, config, *, headers=None, progress=None, stop=None, pool=None, environment=None):
        self.calls.append(config)
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at + 1:
            stop.set()
            return fake_result(config, partial=True)
        return fake_result(config)


def no_preflight(config, headers=None):
    return {"preflight": config.model}


def test_grid_order_and_ids() -> None:
    plan = SweepPlan(base=BASE, kinds=("numeric", "text"), batch_sizes=(1, 8), formats=("row", "columnar"),
                     concurrencies=(1, 4))
    configs = plan.configs()
    assert len(configs) == 16
    ids = [run_id(c) for c in configs]
    assert ids[:4] == ["numeric-b1-row-c1", "numeric-b1-row-c4", "numeric-b1-columnar-c1", "numeric-b1-columnar-c4"]
    assert ids[-1] == "text-b8-columnar-c4"
    assert len(set(ids)) == 16
    assert {c.model for c in configs} == {"numeric", "text"}  # {kind} template
    assert plan.configs() == configs  # deterministic


def test_open_loop_grid_uses_rates() -> None:
    plan = SweepPlan(base=BASE, kinds=("numeric",), batch_sizes=(8,), formats=("row",), rates=(50, 100.5))
    configs = plan.configs()
    assert [run_id(c) for c in configs] == ["numeric-b8-row-r50", "numeric-b8-row-r100.5"]
    assert all(c.mode == "open" and c.concurrency is None and c.arrival == "constant" for c in configs)


@pytest.mark.parametrize("kwargs, message", [
    ({"concurrencies": (1,), "rates": (5.0,)}, "not both"),
    ({"batch_sizes": (0,)}, "batch size"),
    ({"formats": ("rows",)}, "did you mean 'row'"),
    ({"concurrencies": (-1,)}, "concurrency"),
])
def test_plan_rejects_bad_values(kwargs, message) -> None:
    args = dict(base=BASE, kinds=("numeric",), batch_sizes=(1,), formats=("row",))
    args.update(kwargs)
    with pytest.raises(InputError, match=message):
        SweepPlan(**args)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


GOOD = """
[sweep]
url = "http://127.0.0.1:8501"
model = "{kind}"
kinds = ["numeric", "text"]
batch_sizes = [1, 8]
formats = ["row"]
concurrency = [1, 4]
duration = "1.5s"
warmup = "500ms"
engine = "aiohttp"
headers = { Authorization = "Bearer x" }

[payload]
seed = 3

[check]
thresholds = ["p99<50ms", "error_rate<1%"]
"""


def test_config_file_round_trip(tmp_path: Path) -> None:
    sf = load_sweep_config(write(tmp_path, GOOD))
    assert sf.plan.kinds == ("numeric", "text")
    assert sf.plan.concurrencies == (1, 4)
    assert sf.plan.base.duration_s == 1.5 and sf.plan.base.warmup_s == 0.5
    assert sf.plan.base.engine == "aiohttp"
    assert sf.thresholds == ("p99<50ms", "error_rate<1%")
    assert sf.payload == {"seed": 3}
    assert sf.headers == {"Authorization": "Bearer x"}
    assert len(sf.plan.configs()) == 8


@pytest.mark.parametrize("mutation, message", [
    (("batch_sizes = [1, 8]", "batch_size = [1, 8]"), "unknown key 'batch_size' (did you mean 'batch_sizes'?)"),
    (("[check]", "[chek]"), "unknown key 'chek' (did you mean 'check'?)"),
    (("thresholds", "threshold"), "did you mean 'thresholds'"),
    (('duration = "1.5s"', 'duration = "fast"'), "not a duration"),
    (('engine = "aiohttp"', 'engine = "aiohtp"'), "did you mean 'aiohttp'"),
    (('kinds = ["numeric", "text"]', 'kinds = ["numerc"]'), "did you mean 'numeric'"),
    (("batch_sizes = [1, 8]", "batch_sizes = [1, 0]"), "batch_sizes must be an integer >= 1"),
    (("batch_sizes = [1, 8]", 'batch_sizes = ["8"]'), "batch_sizes must be an integer"),
    (('url = "http://127.0.0.1:8501"', 'url = "127.0.0.1:8501"'), "needs an http:// or https:// scheme"),
    (("concurrency = [1, 4]", "concurrency = [1, 4]\nrates = [5]"), "not both"),
    (('"p99<50ms"', '"p99<fast"'), "[check] thresholds"),
    (("[sweep]", "[sweep]\n["), "invalid TOML"),
])
def test_config_file_errors_are_one_line(tmp_path: Path, mutation, message) -> None:
    old, new = mutation
    assert old in GOOD
    with pytest.raises(InputError) as info:
        load_sweep_config(write(tmp_path, GOOD.replace(old, new, 1)), check_threshold=parse_threshold)
    text = str(info.value)
    assert message in text
    assert "\n" not in text and str(tmp_path / "sweep.toml") in text


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such config file"):
        load_sweep_config(tmp_path / "nope.toml")


def small_plan(**kw) -> SweepPlan:
    args = dict(base=BASE, kinds=("numeric",), batch_sizes=(1, 8), formats=("row",), concurrencies=(1, 2))
    args.update(kw)
    return SweepPlan(**args)


def test_sweep_writes_each_run_and_manifest(tmp_path: Path) -> None:
    runner = FakeRunner()
    manifests: list[dict] = []
    plan = small_plan()

    def spying_runner(config, **kw):
        if (tmp_path / "manifest.json").exists():
            manifests.append(json.loads((tmp_path / "manifest.json").read_text()))
        return runner(config, **kw)

    out = run_sweep(plan, tmp_path, progress=False, runner=spying_runner, preflight_fn=no_preflight,
                    log=lambda m: None)
    assert not out.interrupted and out.skipped == 0
    assert [c.concurrency for c in runner.calls] == [1, 2, 1, 2]
    # the manifest is rewritten after every run: before run k it lists exactly k finished runs
    assert [len(m["runs"]) for m in manifests] == [0, 1, 2, 3]
    final = json.loads(out.manifest_path.read_text())
    assert final["type"] == "tfsbench.manifest" and final["kind"] == "sweep" and final["complete"] is True
    assert final["runs"] == [f"{i}.json" for i in plan.run_ids()]
    assert [r.config for r in load_results([str(tmp_path)])] == plan.configs()


def test_preflight_runs_once_per_payload_configuration_before_load(tmp_path: Path) -> None:
    events: list[str] = []

    def preflight(config, headers=None):
        events.append(f"preflight {config.kind} b{config.batch_size}")

    def runner(config, **kw):
        events.append("run")
        return fake_result(config)

    run_sweep(small_plan(), tmp_path, progress=False, runner=runner, preflight_fn=preflight, log=lambda m: None)
    assert events == ["preflight numeric b1", "preflight numeric b8", "run", "run", "run", "run"]


def test_preflight_failure_sends_no_load(tmp_path: Path) -> None:
    runner = FakeRunner()

    def preflight(config, headers=None):
        raise InputError("model 'numeric' not found")

    with pytest.raises(InputError, match="not found"):
        run_sweep(small_plan(), tmp_path, progress=False, runner=runner, preflight_fn=preflight)
    assert runner.calls == []


def test_interrupt_keeps_finished_runs_and_resume_skips_them(tmp_path: Path) -> None:
    plan = small_plan()
    ids = plan.run_ids()
    stop = threading.Event()
    first = FakeRunner(interrupt_at=2)
    out = run_sweep(plan, tmp_path, progress=False, runner=first, preflight_fn=no_preflight, stop=stop,
                    log=lambda m: None)
    assert out.interrupted and out.finished_ids == tuple(ids[:2])
    manifest = json.loads(out.manifest_path.read_text())
    assert manifest["complete"] is False and manifest["interrupted"] is True
    assert manifest["runs"] == [f"{i}.json" for i in ids[:2]]
    assert manifest["partial"] == [f"{ids[2]}.json"]
    assert load_result(tmp_path / f"{ids[2]}.json").partial is True
    mtimes = {i: (tmp_path / f"{i}.json").stat().st_mtime_ns for i in ids[:2]}

    second = FakeRunner()
    logs: list[str] = []
    out2 = run_sweep(plan, tmp_path, progress=False, runner=second, preflight_fn=no_preflight, log=logs.append)
    assert [run_id(c) for c in second.calls] == ids[2:]  # finished runs not redone; partial one redone
    assert out2.skipped == 2 and not out2.interrupted
    assert [line for line in logs if line.startswith("skipped")] == [
        f"skipped {i}: already finished ({tmp_path / (i + '.json')})" for i in ids[:2]]
    assert {i: (tmp_path / f"{i}.json").stat().st_mtime_ns for i in ids[:2]} == mtimes
    assert json.loads(out2.manifest_path.read_text())["complete"] is True
    assert len(load_results([str(tmp_path)])) == 4


def test_resume_redoes_changed_or_corrupt_runs(tmp_path: Path) -> None:
    plan = small_plan()
    run_sweep(plan, tmp_path, progress=False, runner=FakeRunner(), preflight_fn=no_preflight, log=lambda m: None)
    ids = plan.run_ids()
    (tmp_path / f"{ids[0]}.json").write_text("{not json")
    longer = small_plan(base=dataclasses.replace(BASE, duration_s=2.0))
    runner = FakeRunner()
    logs: list[str] = []
    run_sweep(longer, tmp_path, progress=False, runner=runner, preflight_fn=no_preflight, log=logs.append)
    assert len(runner.calls) == 4  # duration changed: every run is a different configuration
    assert any("not a valid result" in line for line in logs)

    # with the manifest lost (killed between result and manifest), identity fields still match
    (tmp_path / "manifest.json").unlink()
    again = FakeRunner()
    run_sweep(longer, tmp_path, progress=False, runner=again, preflight_fn=no_preflight, log=lambda m: None)
    assert again.calls == []


def test_no_resume_redoes_everything(tmp_path: Path) -> None:
    plan = small_plan()
    run_sweep(plan, tmp_path, progress=False, runner=FakeRunner(), preflight_fn=no_preflight, log=lambda m: None)
    runner = FakeRunner()
    out = run_sweep(plan, tmp_path, resume=False, progress=False, runner=runner, preflight_fn=no_preflight,
                    log=lambda m: None)
    assert len(runner.calls) == 4 and out.skipped == 0


def test_fingerprint_changes_with_payload_options() -> None:
    b = dataclasses.replace(BASE, extra={"payload": {"text_words": [4, 8]}})
    assert fingerprint(BASE) != fingerprint(b)
    assert fingerprint(BASE) == fingerprint(dataclasses.replace(BASE))


TOML_VALUES = st.one_of(
    st.integers(-5, 100), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.text(max_size=12), st.lists(st.one_of(st.integers(-2, 64), st.text(max_size=8)), max_size=4),
)
SWEEP_KEY_NAMES = st.one_of(st.sampled_from(list(SWEEP_KEYS)), st.text(min_size=1, max_size=12))


@settings(max_examples=150, deadline=None)
@given(table=st.dictionaries(SWEEP_KEY_NAMES, TOML_VALUES, max_size=8),
       top=st.dictionaries(st.sampled_from(["payload", "check", "sweeps", "x"]),
                           st.dictionaries(st.text(min_size=1, max_size=8), TOML_VALUES, max_size=2), max_size=2))
def test_random_config_documents_load_or_fail_in_one_line(table, top) -> None:
    doc = {"sweep": {"url": "http://127.0.0.1:8501", "model": "m", "kinds": ["numeric"], "batch_sizes": [1], **table},
           **top}
    try:
        sf = parse_sweep_doc(doc, "random.toml", check_threshold=parse_threshold)
    except InputError as exc:
        message = str(exc)
        assert message and "\n" not in message
    else:
        assert sf.plan.configs()  # a document that loads yields a runnable grid


def test_a_crashing_run_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    plan = small_plan()
    ids = plan.run_ids()
    calls: list[str] = []

    def runner(config, **kw):
        calls.append(run_id(config))
        if run_id(config) == ids[1]:
            raise RuntimeError("engine failed:\nTraceback ...\nValueError: boom")
        return fake_result(config)

    logs: list[str] = []
    out = run_sweep(plan, tmp_path, progress=False, runner=runner, preflight_fn=no_preflight, log=logs.append)
    assert calls == ids and out.finished_ids == (ids[0], ids[2], ids[3])
    assert set(out.failed) == {ids[1]} and "boom" in out.failed[ids[1]]
    doc = json.loads(out.manifest_path.read_text())
    assert doc["complete"] is False and set(doc["failed"]) == {ids[1]}
    assert any(line.startswith(f"run {ids[1]} failed") for line in logs)
    again = FakeRunner()
    run_sweep(plan, tmp_path, progress=False, runner=again, preflight_fn=no_preflight, log=lambda m: None)
    assert [run_id(c) for c in again.calls] == [ids[1]]
    assert json.loads(out.manifest_path.read_text())["complete"] is True


def test_readme_config_example_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "docs" / "sweep.md").read_text()
    section = readme.split("<!-- section:sweep -->")[1].split("<!-- /section:sweep -->")[0]
    example = section.split("```toml\n")[1].split("```")[0]
    sf = load_sweep_config(write(tmp_path, example))
    assert len(sf.plan.configs()) == 2 * 3 * 2 * 3
    assert sf.payload == {"text_words": "16-64", "image_size": "224x224"}
    assert sf.thresholds == ("p99<50ms", "error_rate<1%")
