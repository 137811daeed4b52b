"""The trace shape's arithmetic, apart from Locust: users and per-user pacing that follow a trace's
rate per window (locustfiles/trace_shape.py wraps it in a LoadTestShape).

At wall time t the trace time is t x speed; in that window the trace sends rate_w requests per second
of trace time, so rate_w x speed per wall second. With each user sending at most `user_rps`:
  users  = ceil(rate_w x speed / user_rps)   (at least 1 while the trace lasts, at most max_users)
  pacing = users / (rate_w x speed)          seconds between one user's requests,
so users / pacing is the window's rate exactly (Locust users are closed loop: a user whose request
takes longer than its pacing falls behind, which the run's throughput shows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class TraceTick:
    users: int
    spawn_rate: float
    pacing_s: float  # per user; inf when the window is silent


@dataclass(frozen=True, slots=True, eq=False)
class TraceShapePlan:
    rates_rps: np.ndarray  # per window, requests per second of trace time
    window_s: float  # trace time
    speed: float = 1.0
    user_rps: float = 1.0
    max_users: int = 1000

    @property
    def duration_s(self) -> float:
        """Wall seconds the shape lasts."""
        return self.rates_rps.size * self.window_s / self.speed

    def tick(self, t_s: float) -> TraceTick | None:
        """The users and pacing at wall time `t_s` since the start; None once the trace is over."""
        w = int(t_s * self.speed // self.window_s)
        if t_s < 0 or w >= self.rates_rps.size:
            return None
        wall_rps = float(self.rates_rps[w]) * self.speed
        if wall_rps <= 0:
            return TraceTick(users=1, spawn_rate=float(self.max_users), pacing_s=math.inf)
        users = min(self.max_users, max(1, math.ceil(wall_rps / self.user_rps - 1e-9)))
        return TraceTick(users=users, spawn_rate=float(max(users, 1)) * 10.0, pacing_s=users / wall_rps)


def plan_from_trace(trace, window_s: float, speed: float = 1.0, user_rps: float = 1.0,
                    max_users: int = 1000) -> TraceShapePlan:
    """A plan from a payloads.trace.Trace: its mean rate in each window of `window_s` (trace time)."""
    counts = trace.window_counts(window_s).astype(np.float64)
    lengths = np.full(counts.size, window_s)
    lengths[-1] = max(trace.duration_s - window_s * (counts.size - 1), 1e-9)
    return TraceShapePlan(rates_rps=counts / lengths, window_s=window_s, speed=speed, user_rps=user_rps,
                          max_users=max_users)
