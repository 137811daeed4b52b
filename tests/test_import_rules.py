"""The arrows between packages, asserted from the code's imports (module- and function-level).

docs/architecture.md draws the same table: imports point down the flow, never back up. tests/ and
benchmarks/ may import anything.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tfsbench", "bench", "payloads", "server", "locustfiles", "reports", "doctor")

# package -> the packages of ours it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "tfsbench": {"bench", "payloads", "server", "locustfiles", "reports", "doctor"},  # the CLI wires everything
    "reports": {"bench", "payloads"},  # results, statistics core, payload sizes
    "locustfiles": {"payloads", "bench"},  # body pools; the result schema and histograms
    "doctor": {"bench", "payloads"},  # the request/URL helpers and the payload codec
    "server": {"payloads"},  # the TF Serving JSON codec and the unit grammar
    "bench": {"payloads"},
    "payloads": set(),
}
# third-party packages only some of ours may import: name -> files (or packages) allowed
RESTRICTED: dict[str, tuple[str, ...]] = {
    "matplotlib": ("reports/",),  # figures are reports' business; nothing else draws
    "locust": ("locustfiles/",),  # importing locust monkey-patches with gevent
    "gevent": ("locustfiles/",),
    "tensorflow": ("server/savedmodel.py",),  # the optional SavedModel backend (extra 'tf')
}
# Modules that drive load. Reports read results; they never send traffic (the demo pipeline, which
# sweeps and searches, lives in tfsbench/pipeline.py for that reason).
LOAD_DRIVERS = ("tfsbench.bench.measure.runner", "tfsbench.bench.measure.engine", "tfsbench.bench.measure.preflight",
                "tfsbench.bench.orchestrate.sweep", "tfsbench.bench.orchestrate.selfbench",
                "tfsbench.bench.orchestrate.replay", "tfsbench.bench.orchestrate.prepare", "tfsbench.pipeline")
CLI_MODULES = ("tfsbench.cli", "tfsbench.commands", "tfsbench.pipeline", "tfsbench.__main__")


def _imports(path: Path, rel: Path | None = None) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, at any depth. `rel` is the file's
    path in the repository (default: from ROOT), which resolves relative imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    folders = (rel or path.relative_to(ROOT)).parts[:-1]
    package = ".".join(folders if folders[0] == "tfsbench" else ("tfsbench", *folders))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's own package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # `from tfsbench import reports` imports a package too
                yield node.lineno, f"{module}.{alias.name}"


def _target(module: str) -> str | None:
    """Which of our packages a module name belongs to (None: not ours)."""
    parts = module.split(".")
    if parts[0] != "tfsbench":
        return None
    if len(parts) > 1 and parts[1] in PACKAGES:
        return parts[1]
    return "tfsbench"


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_down(package: str) -> None:
    bad = []
    for path in _files(package):
        rel = path.relative_to(ROOT).as_posix()
        for line, module in _imports(path):
            first = module.split(".")[0]
            if first in PACKAGES[1:] or first == "benchmarks":
                bad.append(f"{rel}:{line} imports {module!r}: only `tfsbench` is installed (tfsbench.{module})")
            target = _target(module)
            if target is None or target == package:
                continue
            if target not in ALLOWED[package]:
                bad.append(f"{rel}:{line} imports {module} ({package} -> {target} is not an allowed arrow)")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", PACKAGES[1:])
def test_only_the_cli_imports_the_cli(package: str) -> None:
    bad = [f"{path.relative_to(ROOT).as_posix()}:{line} imports {module}"
           for path in _files(package) for line, module in _imports(path)
           if module.startswith(CLI_MODULES) or module == "tfsbench"]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("library", sorted(RESTRICTED))
@pytest.mark.slow
def test_heavy_or_patching_libraries_stay_in_their_package(library: str) -> None:
    allowed = RESTRICTED[library]
    bad = []
    for package in PACKAGES:
        for path in _files(package):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(allowed):
                continue
            bad += [f"{rel}:{line} imports {module}" for line, module in _imports(path)
                    if module.split(".")[0] == library]
    assert not bad, "\n".join(bad)


def test_the_rules_see_function_level_and_relative_imports(tmp_path: Path) -> None:
    """The scanner itself: a lazy import inside a function counts, and so does a relative one."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from tfsbench.reports import check\n    from ...reports import figures\n")
    modules = [m for _, m in _imports(probe, Path("bench/orchestrate/probe.py"))]
    assert "tfsbench.reports" in modules and "tfsbench.reports.figures" in modules
    assert {_target(m) for m in modules} == {"reports"}


def test_reports_do_not_switch_the_matplotlib_backend() -> None:
    """Importing reports must not call matplotlib.use (an import-time side effect on the host program)."""
    bad = []
    for path in _files("reports"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only: a function may render with Agg explicitly
            for sub in ast.walk(node):
                if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "use" \
                        and isinstance(sub.func.value, ast.Name) and sub.func.value.id == "matplotlib" \
                        and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    bad.append(f"{path.relative_to(ROOT)}:{sub.lineno}")
    assert not bad, bad


def test_reports_do_not_drive_load() -> None:
    """reports -> bench is for the result schema and the statistics core, not the engines (the
    prefix also catches engine_fast, engine_aiohttp, engine_grpc, preflight_grpc)."""
    bad = [f"{path.relative_to(ROOT).as_posix()}:{line} imports {module}"
           for path in _files("reports") for line, module in _imports(path) if module.startswith(LOAD_DRIVERS)]
    assert not bad, "\n".join(bad)
