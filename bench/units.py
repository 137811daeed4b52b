"""The unit grammar (durations, rates) under its bench name: it lives in `tfsbench.payloads.units`,
the bottom layer, so that server/ and payloads' trace tools parse the same spellings."""

from tfsbench.payloads.units import (  # noqa: F401 - re-exported
    DURATION_EXAMPLES,
    DURATION_UNITS_S,
    NUMBER,
    format_duration,
    parse_duration_s,
    parse_rate_rps,
)
