"""The README and the guides in docs/: short README, no dead links, examples the CLI accepts.

Snippets that are run for real live next to their tests (docs/payload.md in test_payloads_cli.py,
docs/sweep.md in test_sweep_plan.py): a test reads the text between `<!-- section:NAME -->` and
`<!-- /section:NAME -->` of the page, so the example and its check move together.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path

import pytest
from tfsbench.bench import results

from tfsbench.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def test_readme_is_short() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 300


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    missing = [t for t in _links(page) if not (page.parent / t).exists()]
    assert not missing, f"{page.name} links to missing files: {missing}"


def test_every_guide_is_linked_from_the_readme() -> None:
    linked = {Path(t).name for t in _links(README)}
    assert [p.name for p in PAGES if p.name not in linked] == []


def _readme_examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    table = text.split("## One example per command")[1].split("\n## ")[0]
    return re.findall(r"^\| `[a-z-]+` \| `(tfsbench [^`]+)` \|", table, flags=re.M)


def test_each_command_has_one_example() -> None:
    shown = {shlex.split(example)[1] for example in _readme_examples()}
    assert shown == {name.replace("_", "-") for name in COMMANDS}


@pytest.mark.parametrize("example", _readme_examples())
def test_readme_example_parses(example: str) -> None:
    """Every example's options exist and their values pass the parser (nothing is run)."""
    args = build_parser().parse_args(shlex.split(example)[1:])
    assert callable(args.func)


@pytest.mark.parametrize("record", [results.RunResult, results.RunConfig, results.Summary, results.LatencySummary,
                                    results.TimePoint, results.TraceWindow], ids=lambda c: c.__name__)
def test_results_page_names_every_field(record: type) -> None:
    """docs/results.md follows the schema: a field added to a record must be described there."""
    page = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    missing = [f.name for f in dataclasses.fields(record) if f"`{f.name}`" not in page]
    assert not missing, f"docs/results.md does not describe {record.__name__} fields {missing}"
