"""What a report directory holds: the files of the last report written there, and nothing left over
from an earlier one.

`report --out DIR` may be run again into the same directory with fewer runs (fewer figures). Each
report lists what it wrote in `report-files.json`; the next one removes the files of that list it
does not write itself, and nothing else, so files the user keeps in DIR are never touched. Names in
the list are plain file names (no folders, no '..'): a tampered list cannot delete outside DIR.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from tfsbench.bench.results import write_json_atomic

FILES_LIST = "report-files.json"
FILES_TYPE = "tfsbench.report-files"


def _plain_name(name: object) -> bool:
    return (isinstance(name, str) and name not in ("", ".", "..", FILES_LIST) and "/" not in name
            and "\\" not in name and "\0" not in name)


def previous_files(out_dir: Path) -> list[str]:
    """The files the previous report in `out_dir` wrote (empty if there is none or the list is unreadable)."""
    try:
        doc = json.loads((out_dir / FILES_LIST).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(doc, dict) or doc.get("type") != FILES_TYPE or not isinstance(doc.get("files"), list):
        return []
    return [name for name in doc["files"] if _plain_name(name)]


def replace_listing(out_dir: Path, written: Iterable[Path]) -> list[str]:
    """After a report has been written: remove the previous report's files that this one did not
    write, then record this one's. Returns the names removed."""
    names = sorted({Path(p).name for p in written})
    removed = []
    for name in previous_files(out_dir):
        if name in names:
            continue
        path = out_dir / name
        if path.is_symlink() or path.is_file():
            try:
                os.unlink(path)
                removed.append(name)
            except FileNotFoundError:
                pass
    write_json_atomic(out_dir / FILES_LIST, {"type": FILES_TYPE, "files": names})
    return removed
