"""No pickle, eval or exec anywhere in the packages: results are JSON checked against the schema.

An AST scan (not a grep) of every module of the six packages, so comments, docstrings and names
like `re.compile` do not count, and a new module cannot slip past.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tfsbench", "bench", "payloads", "server", "reports", "locustfiles")
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve", "jsonpickle"}
UNSAFE_BUILTINS = {"eval", "exec", "compile", "execfile", "input"}


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _findings(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[str] = []

    def where(node: ast.AST) -> str:
        return f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}"

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"{where(node)} imports {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.append(f"{where(node)} imports from {node.module}")
        elif isinstance(node, ast.Call):
            func = node.func
            kwargs = {k.arg: k.value for k in node.keywords if k.arg}
            if isinstance(func, ast.Name) and func.id in UNSAFE_BUILTINS:
                found.append(f"{where(node)} calls {func.id}()")
            elif isinstance(func, ast.Name) and func.id == "__import__" and not all(
                    isinstance(a, ast.Constant) for a in node.args):
                found.append(f"{where(node)} imports a computed module name")
            elif isinstance(func, ast.Attribute):
                owner = func.value.id if isinstance(func.value, ast.Name) else ""
                if owner in ("os",) and func.attr in ("system", "popen", "execv", "execvp", "execl"):
                    found.append(f"{where(node)} calls os.{func.attr}()")
                if func.attr in ("load", "loads") and owner == "yaml":
                    found.append(f"{where(node)} calls yaml.{func.attr}() (use safe_load)")
                if func.attr in ("load", "fromfile") and owner in ("np", "numpy"):
                    allow = kwargs.get("allow_pickle")
                    if func.attr == "load" and not (isinstance(allow, ast.Constant) and allow.value is False):
                        found.append(f"{where(node)} calls np.load() without allow_pickle=False")
            shell = kwargs.get("shell")
            if isinstance(shell, ast.Constant) and shell.value is True:
                found.append(f"{where(node)} runs a subprocess with shell=True")
    return found


def test_the_scan_sees_every_package() -> None:
    modules = _modules()
    assert {p.relative_to(ROOT).parts[0] for p in modules} == set(PACKAGES)
    assert len(modules) > 60


@pytest.mark.parametrize("package", PACKAGES)
def test_no_pickle_eval_exec_or_shell(package: str) -> None:
    found = [f for p in _modules() if p.relative_to(ROOT).parts[0] == package for f in _findings(p)]
    assert found == []


def test_the_scan_catches_what_it_looks_for(tmp_path: Path) -> None:
    """The scanner itself, on a module that does everything it forbids."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle\nfrom marshal import loads\nimport numpy as np\nimport subprocess, os, yaml\n"
        "eval('1')\nexec('x = 1')\ncompile('1', 'f', 'eval')\nnp.load('x.npy')\nos.system('ls')\n"
        "subprocess.run('ls', shell=True)\nyaml.load('a: 1')\n__import__(name)\n"
        "import re\nre.compile('ok')\nnp.load('y.npy', allow_pickle=False)\n"
    )
    findings = _findings(bad, tmp_path)
    assert [f.split()[0] for f in findings] == [f"bad.py:{n}" for n in (1, 2, 5, 6, 7, 8, 9, 10, 11, 12)], findings


def test_results_are_json_and_loading_checks_the_schema(tmp_path: Path) -> None:
    """Result files are plain JSON; a file with the right shape but wrong types fails on load."""
    import json

    from tfsbench.bench.results import ResultError, load_result

    fixture = ROOT / "tests" / "fixtures" / "results" / "run-v1.json"
    doc = json.loads(fixture.read_text())
    assert load_result(fixture).summary.requests == doc["summary"]["requests"]
    for mutate, field in (
        (lambda d: d["summary"].__setitem__("requests", "many"), "summary.requests"),
        (lambda d: d["summary"].__setitem__("errors", {"http_503": "4"}), "summary.errors"),
        (lambda d: d["config"].__setitem__("batch_size", True), "config.batch_size"),
        (lambda d: d["summary"]["latency_ms"].__setitem__("p99", "fast"), "latency_ms.p99"),
        (lambda d: d.__setitem__("histogram", {"__class__": "os.system"}), "result.histogram"),
        (lambda d: d.__setitem__("timeseries", [{"t_s": 0, "requests": "x", "errors": 0, "p50_ms": None,
                                                 "p99_ms": None}]), "timeseries[0].requests"),
    ):
        broken = json.loads(fixture.read_text())
        mutate(broken)
        path = tmp_path / "broken.json"
        path.write_text(json.dumps(broken))
        with pytest.raises(ResultError) as info:
            load_result(path)
        message = str(info.value)
        assert field in message and "\n" not in message, message
