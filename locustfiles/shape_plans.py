"""The load shapes' arithmetic, apart from Locust: user count and spawn rate as a function of time.

`locustfiles/shapes.py` wraps these in Locust `LoadTestShape`s; keeping the plans here lets them be
tested (and reasoned about) without gevent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

Tick = tuple[int, float] | None


@dataclass(frozen=True, slots=True)
class StepPlan:
    """`steps` steps of `step_s` seconds, adding `users_per_step` users each step, then stop."""

    users_per_step: int
    step_s: float
    steps: int

    def tick(self, t_s: float) -> Tick:
        if t_s >= self.step_s * self.steps:
            return None
        step = int(t_s // self.step_s) + 1
        return self.users_per_step * step, float(self.users_per_step)


@dataclass(frozen=True, slots=True)
class SpikePlan:
    """`base_users` for `calm_s`, `spike_users` for `spike_s` (started at once), `base_users` for
    `calm_s` again, then stop: does the target recover after a burst?"""

    base_users: int
    spike_users: int
    calm_s: float
    spike_s: float

    def tick(self, t_s: float) -> Tick:
        if t_s < self.calm_s:
            return self.base_users, float(self.base_users)
        if t_s < self.calm_s + self.spike_s:
            return self.spike_users, float(max(self.spike_users, 1))
        if t_s < 2 * self.calm_s + self.spike_s:
            return self.base_users, float(max(self.spike_users, 1))
        return None


@dataclass(slots=True)
class KneePlan:
    """Step up `users_per_step` users every `step_s` until a step's p99 exceeds `p99_bound_ms`
    (the SLO knee) or `max_steps` steps are done. Mutable: it remembers the steps it measured."""

    users_per_step: int
    step_s: float
    max_steps: int
    p99_bound_ms: float
    history: list[tuple[int, float]] = field(default_factory=list)  # (users, p99_ms) per step
    knee_users: int | None = None  # users of the first step over the bound
    stopped: bool = False

    def tick(self, t_s: float, p99_ms: float | None) -> Tick:
        """`p99_ms`: p99 of the step that ended last (None: no successful request in it)."""
        if self.stopped:
            return None
        step = int(t_s // self.step_s)  # 0-based index of the step we are in
        while len(self.history) < min(step, self.max_steps):
            finished = len(self.history) + 1
            users = self.users_per_step * finished
            # a step without a single success cannot have met the SLO
            measured = float(p99_ms) if p99_ms is not None else math.inf
            self.history.append((users, measured))
            if measured > self.p99_bound_ms:
                self.knee_users = users
                self.stopped = True
                return None
        if step >= self.max_steps:
            self.stopped = True
            return None
        return self.users_per_step * (step + 1), float(self.users_per_step)

    def verdict(self) -> str:
        """One line for the log: where the knee is, or that none was found."""
        under = [u for u, p in self.history if p <= self.p99_bound_ms]
        if self.knee_users is not None:
            last = f"; last step within the bound: {under[-1]} users" if under else ""
            p99 = self.history[-1][1]
            measured = f"p99 {p99:g} ms" if math.isfinite(p99) else "no successful request"
            return f"SLO knee: p99 exceeded {self.p99_bound_ms:g} ms at {self.knee_users} users ({measured}){last}"
        return f"SLO knee not reached: p99 stayed within {self.p99_bound_ms:g} ms up to {len(self.history)} steps"
