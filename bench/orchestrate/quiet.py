"""Before the next probe, wait until the target has worked off what a failed probe left behind.

A probe above capacity ends with requests still queued in the target (their clients gave up at the
timeout; the server serves them anyway) and its connections still open there. The next probe's first
seconds then measure that backlog instead of its own rate. In a demo on a 2-core VM a probe at 2,540
req/s after an overloaded one at 3,380 began with p50 11 ms falling to 0.8 ms and was judged unstable
(p99 thirds 578% apart); another's new connections waited on the target's full accept queue (p99
1,008 ms: a retransmitted SYN). So after a probe that did not pass, single requests go to the target
one at a time until QUIET_IN_A_ROW in a row answer about as fast as the preflight's request did on
the idle target, for at most MAX_WAIT_S.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tfsbench.payloads.errors import InputError

QUIET_IN_A_ROW = 3
MAX_WAIT_S = 30.0


@dataclass(frozen=True, slots=True)
class Quiet:
    """How waiting went: `quiet` False when MAX_WAIT_S passed, the target went away, or stop was set."""

    quiet: bool
    waited_s: float
    requests: int


def quiet_bound_ms(baseline_ms: float) -> float:
    """A single request's latency that counts as quiet: within 3x, or 5 ms, of the idle target's."""
    return max(3.0 * baseline_ms, baseline_ms + 5.0)


def wait_until_quiet(send: Callable[[], float], baseline_ms: float, stop: threading.Event | None = None,
                     max_wait_s: float = MAX_WAIT_S, clock: Callable[[], float] = time.monotonic) -> Quiet:
    """Call `send()` (one request; its latency in ms) until QUIET_IN_A_ROW in a row are within
    `quiet_bound_ms(baseline_ms)`. A request that times out counts as not quiet; a target that
    cannot be reached ends the wait (the next probe will say so)."""
    bound = quiet_bound_ms(baseline_ms)
    t0 = clock()
    in_a_row = requests = 0
    while in_a_row < QUIET_IN_A_ROW:
        if (stop is not None and stop.is_set()) or clock() - t0 >= max_wait_s:
            return Quiet(False, clock() - t0, requests)
        requests += 1
        try:
            latency_ms = send()
        except TimeoutError:
            latency_ms = float("inf")
        except InputError:
            return Quiet(False, clock() - t0, requests)
        in_a_row = in_a_row + 1 if latency_ms <= bound else 0
    return Quiet(True, clock() - t0, requests)
