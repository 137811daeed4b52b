"""Files tfsbench writes: one atomic writer (umask respected without touching it, the folder fsynced),
`run --out` never overwrites without --force, and a second report into the same folder leaves none
of the first one's files behind (and nothing of the user's is removed).

"Written atomically" is checked by behaviour: a file replaced by rename is a new inode, so a hard
link to the old file keeps the old content; a file rewritten in place changes under the link too.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from tfsbench.bench import results
from tfsbench.bench.results import write_bytes_atomic
from tfsbench.reports.output_dir import FILES_LIST

from tfsbench import cli

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "results"


def _main(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            status = cli.main(argv)
        except SystemExit as exc:
            status = int(exc.code or 0)
    return status, err.getvalue()


def _linked(path: Path, content: bytes) -> Path:
    """`path` with `content`, plus a hard link to it that shows whether `path` was replaced by rename."""
    path.write_bytes(content)
    link = path.with_name(path.name + ".link")
    os.link(path, link)
    return link


def test_atomic_writer_never_touches_the_umask_and_syncs_the_folder(tmp_path, monkeypatch):
    def no_umask(_mask: int) -> int:
        raise AssertionError("os.umask called: it races with other threads creating files")

    synced_dirs: list[bool] = []
    real_fsync = os.fsync

    def spy_fsync(fd: int) -> None:
        synced_dirs.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    old = os.umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", no_umask)
        monkeypatch.setattr(os, "fsync", spy_fsync)
        write_bytes_atomic(tmp_path / "a" / "out.json", b"{}")
    finally:
        monkeypatch.undo()
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a" / "out.json").stat().st_mode) == 0o640
    assert synced_dirs == [False, True]  # the file's data, then the folder with the new name
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["out.json"]  # no temporary left


def test_atomic_writer_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    target.write_bytes(b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_payload_out_and_check_junit_are_written_by_rename(tmp_path):
    out = tmp_path / "body.json"
    link = _linked(out, b"old body")
    assert _main(["payload", "--kind", "numeric", "--out", str(out)])[0] == 0
    assert link.read_bytes() == b"old body" and out.read_bytes().startswith(b"{")

    junit = tmp_path / "junit.xml"
    link = _linked(junit, b"<old/>")
    status, err = _main(["check", str(FIXTURES / "run-v1.json"), "-t", "p99<100000ms", "--junit", str(junit)])
    assert status == 0, err
    assert link.read_bytes() == b"<old/>" and b"<testsuite" in junit.read_bytes()


def test_soak_csv_is_written_by_rename(tmp_path):
    from benchmarks.bench_soak import Sample, write_csv

    path = tmp_path / "soak.csv"
    link = _linked(path, b"old")
    write_csv(path, [Sample(t_s=1.0, client_rss_mb=10.0, target_rss_mb=20.0, requests=5, errors=0,
                            phase="load", rps=5.0)])
    assert link.read_bytes() == b"old"
    assert path.read_text().splitlines()[0].startswith("t_s,client_rss_mb")


def test_run_out_refuses_an_existing_file_unless_force(tmp_path):
    out = tmp_path / "r.json"
    out.write_text("precious")
    argv = ["run", "--url", "http://127.0.0.1:9", "--model", "numeric", "--concurrency", "1", "--out", str(out)]
    status, err = _main(argv)
    assert status == 2 and "exists; give --force" in err and len(err.strip().splitlines()) == 1
    assert out.read_text() == "precious"
    status, err = _main([*argv, "--force"])  # gets past the check, then finds nothing listening
    assert status == 2 and "exists" not in err
    assert out.read_text() == "precious"  # nothing measured, nothing written


@pytest.mark.slow
def test_second_report_into_the_same_folder_removes_only_the_first_reports_files(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    shutil.copy(FIXTURES / "run-v1.json", a)
    shutil.copy(FIXTURES / "v1_check_numeric_b8.json", b)
    out = tmp_path / "report"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert _main(["report", str(a), str(b), "--out", str(out)])[0] == 0
    first = {p.name for p in out.iterdir()}
    assert _main(["report", str(a), "--out", str(out)])[0] == 0
    second = {p.name for p in out.iterdir()}
    listed = set(json.loads((out / FILES_LIST).read_text())["files"])
    assert second == listed | {FILES_LIST, "notes.txt"}, (first - second, second - listed)
    assert first - second, "the two-input report should have had files the one-input report has not"
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_a_tampered_file_list_cannot_delete_outside_the_folder(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (out / FILES_LIST).write_text(json.dumps({"type": "tfsbench.report-files",
                                              "files": ["../victim.txt", str(victim), "/etc/passwd", 5]}))
    assert _main(["report", str(FIXTURES / "run-v1.json"), "--out", str(out)])[0] == 0
    assert victim.read_text() == "keep"


def test_results_module_has_no_umask_helper_left():
    assert not hasattr(results, "_umask")
