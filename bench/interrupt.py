"""Ctrl-C and SIGTERM for long jobs (run, sweep, search, soak): the first signal asks the job to
stop and keep what it measured; the second leaves at once.

One place, so every command means the same by "press Ctrl-C again to exit at once".
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class StopEvent(threading.Event):
    """A stop flag that also says why (`reason`, e.g. 'interrupted by SIGTERM'), which the runner
    writes into the partial result."""

    reason: str | None = None


def _raise_keyboard_interrupt(_name: str) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    raise KeyboardInterrupt


@contextmanager
def stop_on_signals(stop: threading.Event, on_first: Callable[[str], None] | None = None,
                    on_second: Callable[[str], None] | None = None) -> Iterator[threading.Event]:
    """First SIGINT/SIGTERM sets `stop` (the current run ends, its partial result is kept) and calls
    `on_first(signal name)`; a second one calls `on_second(name)`, by default raising
    KeyboardInterrupt (the CLI turns it into exit status 130). The old handlers come back on exit.
    Outside the main thread this does nothing (signals are only delivered to the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    second = on_second or _raise_keyboard_interrupt
    received: list[str] = []

    def handler(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        received.append(name)
        if len(received) > 1:
            second(name)
            return
        if isinstance(stop, StopEvent):
            stop.reason = f"interrupted by {name}"
        stop.set()
        if on_first is not None:
            on_first(name)

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, handler)
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)
