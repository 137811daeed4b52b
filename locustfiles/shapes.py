"""Load shapes for the TF Serving users: step load, spike, and step-up to the SLO knee.

    locust -f locustfiles/tfserving.py,locustfiles/shapes.py --headless -H URL --model numeric \
        --shape knee --shape-users 4 --shape-step-s 15 --shape-steps 10 --shape-p99-ms 50

`--shape step|spike|knee` picks the shape (headless and web UI alike); with `--class-picker` the
web UI also offers the three classes by name. Parameters are the `--shape-*` custom arguments,
read when the shape starts. The knee shape measures each step's p99 from the users' exact latency
histograms and prints where the knee is.
"""

from __future__ import annotations

import logging
from typing import Any

from locust import LoadTestShape, events
from tfsbench.locustfiles import config as options
from tfsbench.locustfiles.shape_plans import KneePlan, SpikePlan, StepPlan

logger = logging.getLogger("tfsbench.locust")


def _shape_config(shape: LoadTestShape) -> options.ShapeConfig:
    env = shape.runner.environment if shape.runner is not None else None
    return options.shape_config(getattr(env, "parsed_options", None) or {})


class StepLoadShape(LoadTestShape):
    """`--shape-steps` steps of `--shape-step-s` seconds, `--shape-users` more users each step."""

    def tick(self) -> tuple[int, float] | None:
        c = _shape_config(self)
        return StepPlan(c.users, c.step_s, c.steps).tick(self.get_run_time())


class SpikeShape(LoadTestShape):
    """`--shape-users` users, a burst to `--shape-spike-users` for `--shape-spike-s`, and back."""

    def tick(self) -> tuple[int, float] | None:
        c = _shape_config(self)
        return SpikePlan(c.users, c.spike_users, c.step_s, c.spike_s).tick(self.get_run_time())


class SloKneeShape(LoadTestShape):
    """Step up until a step's p99 exceeds `--shape-p99-ms` (the SLO knee), then stop.

    A step's p99 comes from the tfsbench users' exact latency histograms (successes only), taken
    between the step's start and its end; in distributed mode workers report every 3 s, so use
    steps of 10 s or more."""

    def __init__(self) -> None:
        super().__init__()
        self.plan: KneePlan | None = None
        self._mark: object | None = None
        self._mark_step = 0

    def reset_time(self) -> None:
        super().reset_time()
        self.plan = None

    def _step_p99(self, step: int) -> float | None:
        state = getattr(self.runner.environment, "tfsbench_state", None) if self.runner else None
        if state is None or step <= self._mark_step:
            return None
        p99 = state.metrics.percentile_since(self._mark, 99.0)
        self._mark, self._mark_step = state.metrics.histogram(), step
        return p99

    def tick(self) -> tuple[int, float] | None:
        if self.plan is None:
            c = _shape_config(self)
            self.plan = KneePlan(c.users, c.step_s, c.steps, c.p99_ms)
            self._mark, self._mark_step = None, 0
        t = self.get_run_time()
        p99 = self._step_p99(int(t // self.plan.step_s))
        was_stopped = self.plan.stopped
        result = self.plan.tick(t, p99)
        if result is None and not was_stopped:
            logger.info(self.plan.verdict())
            print(self.plan.verdict(), flush=True)
        return result


SHAPE_BY_NAME: dict[str, type[LoadTestShape]] = {
    "step": StepLoadShape,
    "spike": SpikeShape,
    "knee": SloKneeShape,
}


@events.init.add_listener
def _pick_shape(environment: Any, **_: Any) -> None:
    """Without the class picker Locust would take the first shape class: honour `--shape`."""
    opts = environment.parsed_options
    if opts is None or getattr(opts, "class_picker", False) or environment.available_shape_classes is None:
        return
    try:
        name = options.shape_config(opts).shape
    except Exception:  # bad values are reported by the users' own checks
        return
    chosen = environment.available_shape_classes.get(SHAPE_BY_NAME[name].__name__)
    if chosen is not None:
        chosen.runner = environment.runner
        environment.shape_class = chosen
