"""Duration text ('250ms', '1.5s', '200us', '2m') -> seconds, for every server option parser.

The grammar is the project's one (tfsbench.payloads.units, the bottom layer), so
`serve --service-time 2sec` and `run --duration 2sec` accept the same spellings."""

from __future__ import annotations

from tfsbench.payloads import units


def parse_duration_s(text: str, *, what: str = "duration") -> float:
    """A bare number is seconds. The result is finite and >= 0; `what` names the option in errors."""
    return units.parse_duration_s(text, what)
