"""Every PNG the tool draws (training curves, lr_find, confusion matrices, run comparisons) goes through these calls.

A Figure on its own Agg canvas, never pyplot: no global figure state, so plotting is safe in any thread or
process and needs no `plt.close`. matplotlib is optional: without it there is simply no picture.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from resnetcli.io import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100


def new_figure(width: float, height: float) -> Figure | None:
    """A `width` x `height` inch figure ready to draw on; None when matplotlib is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: Path) -> None:
    """Lay the figure out and write it as a PNG under a temporary name renamed into place."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)


def literal(text: str) -> str:
    """`text` (a class or run name, a path) drawn as typed: matplotlib reads text between two '$' as math,
    and fails on math it cannot parse ('$5_to_$10')."""
    return text.replace("$", r"\$")
