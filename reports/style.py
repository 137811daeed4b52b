"""One look for every figure: sizes readable on a laptop, a colour per payload kind, PNG rendering.

Figures are built with `matplotlib.figure.Figure` directly (never pyplot), so building reports
holds no global state and works in threads; the Agg canvas renders them (attached where a PNG is
made, so importing reports never switches the process's matplotlib backend).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

DPI = 110
WIDTH_IN = 11.0
PANEL_HEIGHT_IN = 4.0

KIND_COLORS = {"numeric": "#1f77b4", "text": "#d95f02", "image": "#2ca02c"}
_EXTRA_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
FORMAT_STYLES = {"row": "-", "columnar": "--"}
SLO_COLOR = "#c0392b"
MUTED = "#7f7f7f"

RC = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.grid": True,
    "axes.grid.which": "major",
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8.5,
    "legend.framealpha": 0.85,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "figure.titlesize": 12,
    "figure.titleweight": "bold",
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
    "text.parse_math": False,  # model names and labels are data, never mathtext
    "svg.fonttype": "none",
}


@contextmanager
def styled() -> Iterator[None]:
    with matplotlib.rc_context(RC):
        yield


def new_figure(ncols: int = 1, nrows: int = 1, *, height_in: float | None = None,
               width_in: float = WIDTH_IN, sharex: bool = False, sharey: bool = False,
               squeeze: bool = False) -> tuple[Figure, list[list[Axes]]]:
    """A figure with a grid of panels, sized for a laptop screen and laid out without overlaps."""
    height = height_in if height_in is not None else PANEL_HEIGHT_IN * nrows
    fig = Figure(figsize=(width_in, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, sharex=sharex, sharey=sharey, squeeze=squeeze)
    return fig, axes


def kind_color(kind: str, index: int = 0) -> str:
    return KIND_COLORS.get(kind, _EXTRA_COLORS[index % len(_EXTRA_COLORS)])


def shade_colors(n: int, cmap_name: str = "viridis") -> list:
    """n distinguishable colours along one colormap (for batch sizes or load levels in a panel)."""
    import matplotlib as mpl

    cmap = mpl.colormaps[cmap_name]
    if n <= 1:
        return [cmap(0.35)]
    return [cmap(0.05 + 0.8 * i / (n - 1)) for i in range(n)]


def spans_decades(values, decades: float = 1.0) -> bool:
    vals = [v for v in values if v is not None and v > 0]
    if len(vals) < 2:
        return False
    import math

    return math.log10(max(vals) / min(vals)) >= decades


def number(v: float, _pos: object = None) -> str:
    """Tick labels people read without thinking: 0.5, 2, 40, 1.2k, 30k."""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e3:
        return f"{v / 1e3:g}k"
    if a >= 1:
        return f"{v:g}"
    return f"{v:.3g}"


def log_axis(ax: Axes, axis: str = "y", base: float = 10.0) -> None:
    """Log scale with plain-number tick labels (1, 10, 100) rather than 10^n."""
    setter = ax.set_yscale if axis == "y" else ax.set_xscale
    setter("log", base=base)
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(FuncFormatter(number))
    if base == 10:
        target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_minor_formatter(NullFormatter())


def batch_axis(ax: Axes, batch_sizes: list[int]) -> None:
    """Batch sizes on a log2 axis, ticked exactly at the measured sizes."""
    ax.set_xscale("log", base=2)
    ticks = sorted(set(batch_sizes))
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    if len(ticks) == 1:
        ax.set_xlim(ticks[0] / 2, ticks[0] * 2)


def empty_note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=MUTED, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def png_bytes(fig: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()
