"""The manifest of a sweep or search: which runs of a plan are finished, partial or failed.

Manifest (`out_dir/manifest.json`, rewritten atomically after each run):
    {"type": "tfsbench.manifest", "schema_version": 1, "kind": "sweep",
     "runs": ["numeric-b8-row-c4.json", ...],   # finished, complete runs, in plan order
     "planned": ["numeric-b1-row-c1", ...],     # every run id of the plan
     "partial": ["numeric-b8-row-c16.json"],    # interrupted runs (redone on resume)
     "failed": {run_id: "RuntimeError: ..."},    # runs whose engine crashed (redone on resume)
     "complete": false, "interrupted": true, "fingerprints": {run_id: sha256 of its config, 16 hex},
     "slo": null, "search": null, "thresholds": [...], "updated_at": "..."}
A sweep with `--repeat N` (N > 1) plans `ID-r1` ... `ID-rN` for each grid point and adds
    "repeat": N, "repeats": {grid point id: ["ID-r1.json", ...]}   # the finished repeats of each point

Sweeps and searches share this manifest shape (`kind` "sweep" or "search").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tfsbench.bench.results import MANIFEST_TYPE, ResultError, read_json

MANIFEST_SCHEMA_VERSION = 1

def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest if there is a readable tfsbench manifest at `path`, else None."""
    if not path.exists():
        return None
    try:
        doc = read_json(path)
    except ResultError:
        return None
    if not isinstance(doc, dict) or doc.get("type") != MANIFEST_TYPE:
        return None
    return doc


def manifest_doc(kind: str, *, runs: Sequence[str], planned: Sequence[str], complete: bool,
                 interrupted: bool = False, partial: Sequence[str] = (), slo: str | None = None,
                 search: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A manifest document; `extra` holds the kind's own keys (fingerprints, failed, thresholds...)."""
    doc: dict[str, Any] = {
        "type": MANIFEST_TYPE,
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "kind": kind,
        "runs": list(runs),
        "planned": list(planned),
        "partial": list(partial),
        "complete": complete,
        "interrupted": interrupted,
        "slo": slo,
        "search": dict(search) if search is not None else None,
        "updated_at": _now(),
    }
    doc.update(extra)
    return doc
