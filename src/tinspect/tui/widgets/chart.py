"""A plotext chart widget: one ``plt`` per widget, never plotext's global state.

In its own module so that textual-plotext and plotext are imported with the first chart a
user opens, not when the viewer starts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual_plotext import PlotextPlot


class PlotChart(PlotextPlot):
    """A plotext chart drawn by a function of its ``plt``; redrawn on resize by plotext."""

    DEFAULT_CSS = "PlotChart { height: 14; min-height: 8; }"

    def __init__(self, draw: Callable[[Any], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._draw = draw

    def on_mount(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        plt = self.plt
        plt.clear_figure()
        self._draw(plt)
        self.refresh()
