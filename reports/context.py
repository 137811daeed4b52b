"""What a report is made of, shared by the renderers (HTML, Markdown) and by extra sections.

Extra sections (e.g. `reports/server_view.py`, the client-vs-server latency view) are modules
listed in `EXTRA_SECTION_MODULES`; each defines `build_section(ctx: ReportContext) -> Section | None`
and, optionally, `build_figures(ctx) -> list[FigureOut]`. Missing modules are skipped, so a
section can be added by writing its module and naming it here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tfsbench.bench.results import RunResult

if TYPE_CHECKING:
    from tfsbench.bench.stats.slo import Slo
    from tfsbench.reports.compare import ComparisonTable
    from tfsbench.reports.dataset import Source
    from tfsbench.reports.plan import Plan

EXTRA_SECTION_MODULES: tuple[str, ...] = ("tfsbench.reports.repeats_view", "tfsbench.reports.server_view",
                                          "tfsbench.reports.protocols", "tfsbench.reports.replay_view")


@dataclass(frozen=True, slots=True)
class FigureOut:
    """A rendered figure: file name in the output directory, title, a how-to-read caption, PNG bytes."""

    name: str
    title: str
    caption: str
    png: bytes


@dataclass(frozen=True, slots=True)
class Section:
    """An extra report section. `html` is a fragment whose every data string is already escaped;
    `markdown` (optional) goes into summary.md."""

    id: str
    title: str
    html: str
    markdown: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(slots=True)
class ReportContext:
    title: str
    sources: list[Source]
    runs: list[RunResult]
    slo: Slo | None = None
    plan: Plan | None = None
    comparisons: list[ComparisonTable] = field(default_factory=list)
    figures: list[FigureOut] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    generated_at: str = ""
    timings_s: dict[str, float] = field(default_factory=dict)
