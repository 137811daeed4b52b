"""What every benchmark script ends with: its JSON document on stdout, and in `--out` when given."""

from __future__ import annotations

import json
from typing import Any

from tfsbench.bench.results import write_json_atomic


def emit(doc: dict[str, Any], out: str | None) -> int:
    """Print `doc` as indented JSON and write it atomically to `out` (if any); returns exit status 0."""
    print(json.dumps(doc, indent=1))
    if out:
        write_json_atomic(out, doc)
    return 0
