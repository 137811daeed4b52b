"""Replay a traffic trace's shape in Locust: users and per-user pacing follow the trace's rate per window.

    locust -f locustfiles/trace_shape.py --headless -H http://127.0.0.1:8501 --model numeric \
        --trace-file trace.jsonl --trace-speed 60 --trace-window 60 --trace-user-rps 2 TraceUser

`TraceUser` is the TF Serving user of locustfiles/tfserving.py (same payload options: --kind,
--batch-size, ...) with a pacing the shape sets each window; `TraceShape` sets the user count
(locustfiles/trace_plan.py has the arithmetic). Locust users are closed loop, so this follows the
trace's rate per window, not each request's time: for request-exact, coordinated-omission-free
replay use `tfsbench replay`. Name `TraceUser` on the command line (as above), or tfserving.py's
--kind picks its own unpaced class.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from locust import LoadTestShape, events
from tfsbench.locustfiles import tfserving as _tfs  # registers the TF Serving users' options and hooks
from tfsbench.locustfiles.trace_plan import TraceShapePlan, plan_from_trace

logger = logging.getLogger("tfsbench.locust")
# id(environment) -> (plan, test start on this process's monotonic clock): every process (master,
# workers) loads the plan at test start, so users on any worker pace themselves without messages
_PLANS: dict[int, tuple[TraceShapePlan, float]] = {}


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any, **_: Any) -> None:
    parser.add_argument("--trace-file", default="", help="tfsbench trace whose rate per window the shape follows",
                        include_in_web_ui=True)
    parser.add_argument("--trace-speed", type=float, default=1.0, help="time compression (60: an hour in a minute)",
                        include_in_web_ui=True)
    parser.add_argument("--trace-window", type=float, default=60.0, help="window of trace time, seconds",
                        include_in_web_ui=True)
    parser.add_argument("--trace-user-rps", type=float, default=1.0, help="requests per second per user at most",
                        include_in_web_ui=True)
    parser.add_argument("--trace-max-users", type=int, default=1000, help="users at most", include_in_web_ui=True)


def _plan(opts: Any) -> TraceShapePlan:
    from tfsbench.payloads.errors import InputError
    from tfsbench.payloads.trace import read_trace

    path = getattr(opts, "trace_file", "")
    if not path:
        raise InputError("--trace-file is required with the trace shape")
    for name in ("trace_speed", "trace_window", "trace_user_rps"):
        value = getattr(opts, name)
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise InputError(f"--{name.replace('_', '-')} must be a number > 0, got {value!r}")
    if opts.trace_max_users < 1:
        raise InputError("--trace-max-users must be >= 1")
    return plan_from_trace(read_trace(path), opts.trace_window, opts.trace_speed, opts.trace_user_rps,
                           opts.trace_max_users)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    from tfsbench.payloads.errors import InputError

    opts = getattr(environment, "parsed_options", None)
    if opts is None or not getattr(opts, "trace_file", ""):
        return
    try:
        _PLANS[id(environment)] = (_plan(opts), time.monotonic())
    except InputError as exc:
        logger.error("trace shape: %s", exc)


class TraceUser(_tfs._PredictUser):
    """The TF Serving user, paced: one request per `pacing` seconds, the pacing following the shape."""

    abstract = False

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        state = _tfs._state(environment)
        self.kind = state.cfg.kind if state.cfg is not None else "auto"
        self._last_run = time.monotonic()
        self._last_wait = 0.0

    def wait_time(self) -> float:
        """Like Locust's constant_pacing, with the pacing the shape set for the current window."""
        now = time.monotonic()
        entry = _PLANS.get(id(self.environment))
        step = entry[0].tick(now - entry[1]) if entry is not None else None
        pacing = step.pacing_s if step is not None else math.inf
        if not math.isfinite(pacing):
            self._last_run, self._last_wait = now, 1.0
            return 1.0  # a silent window: look again in a second
        run_time = now - self._last_run - self._last_wait
        self._last_wait = max(0.0, pacing - run_time)
        self._last_run = now
        return self._last_wait


class TraceShape(LoadTestShape):
    """Users = ceil(window rate x speed / --trace-user-rps); ends with the trace."""

    def __init__(self) -> None:
        super().__init__()
        self.plan: TraceShapePlan | None = None
        self._announced = -1

    def tick(self) -> tuple[int, float] | None:
        env = self.runner.environment if self.runner is not None else None
        if self.plan is None:
            from tfsbench.payloads.errors import InputError

            try:
                self.plan = _plan(getattr(env, "parsed_options", None))
            except InputError as exc:
                logger.error("trace shape: %s", exc)
                return None
        step = self.plan.tick(self.get_run_time())
        if step is None:
            return None
        w = int(self.get_run_time() * self.plan.speed // self.plan.window_s)
        if w != self._announced:
            self._announced = w
            logger.info("trace window %d: %d users, pacing %.3f s", w, step.users, step.pacing_s)
        return step.users, step.spawn_rate
