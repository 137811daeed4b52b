"""The wheel installs exactly one top-level import name, `tfsbench`, with every folder mapped under it.

A user whose own repository has a `server/` or `reports/` folder must never import ours by accident
(or we theirs), so `bench`, `server`, `reports`, `payloads`, `locustfiles` and `doctor` are
installed as `tfsbench.bench` and so on; `benchmarks/` and `tests/` are not installed at all.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.xdist_group("test_packaging")  # module fixtures built once, on one xdist worker

ROOT = Path(__file__).resolve().parent.parent
MAPPED = ("bench", "doctor", "locustfiles", "payloads", "reports", "server")


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    # From a copy of the tree: setuptools writes build/ and *.egg-info next to the sources, and two
    # builds of one tree at once (one CI run's two workers) produced an empty wheel and a failed one.
    src = build / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".venv", ".git", "results", "build", "*.egg-info", ".*cache", ".hypothesis", "test-artifacts", "__pycache__"))
    # --no-build-isolation: setuptools and wheel come from the test environment (no network).
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        check=True, cwd=build, capture_output=True, text=True,
    )
    (wheel,) = out.glob("tfsbench-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


@pytest.mark.slow
def test_only_top_level_package_is_tfsbench(wheel_names):
    tops = {name.split("/", 1)[0] for name in wheel_names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"tfsbench"}


@pytest.mark.slow
def test_every_source_package_is_in_the_wheel(wheel_names):
    """A subfolder added with an __init__.py but forgotten in pyproject's package list fails here."""
    wheel = set(wheel_names)
    for folder in MAPPED:
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.relative_to(ROOT)
            assert f"tfsbench/{rel.as_posix()}" in wheel, f"{rel} is missing from the wheel"
    for init in (ROOT / "tfsbench").rglob("__init__.py"):
        assert init.relative_to(ROOT).as_posix() in wheel
    assert not any(n.startswith(("tfsbench/benchmarks/", "tfsbench/tests/", "benchmarks/")) for n in wheel)


def test_package_data_ships(wheel_names):
    wheel = set(wheel_names)
    assert "tfsbench/locustfiles/locust.conf.example" in wheel
    for template in (ROOT / "reports" / "templates").glob("*"):
        assert f"tfsbench/reports/templates/{template.name}" in wheel
