"""Charts drawn with characters: nested quantile bands over epochs, and their axes.

plotext draws lines and points, not filled areas, so TensorBoard's nested distribution bands
are drawn here as a Rich renderable: every cell of the plot area is shaded by the innermost
band that contains its value (``░`` 1–99 %, ``▒`` 5–95 %, ``▓`` 25–75 %) and the median is a
bright ``━``. Shades are characters, not only colours, so the bands read the same on a
16-colour terminal, in a monochrome tmux and in a screenshot; colour only adds the unit's
hue. Epochs are integers and labelled as such; values use one number format.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

if TYPE_CHECKING:
    import numpy as np
else:
    from tinspect.lazy import numpy as np

#: (lower quantile, upper quantile, shade) from the outer band to the inner one.
BANDS = ((0.01, 0.99, "░"), (0.05, 0.95, "▒"), (0.25, 0.75, "▓"))
#: Outer bands fainter, inner ones stronger: a second cue beside the shade characters.
WEIGHT = {"░": "dim", "▒": "", "▓": "bold"}
MEDIAN = "━"


def number(value: float) -> str:
    """One format for every axis and table: 3 significant digits, no ``e+00`` noise."""
    if not math.isfinite(value):
        return "-"
    if value == 0:
        return "0"
    if 1e3 <= abs(value) < 1e5:
        return f"{value:.0f}"  # 1663, not 1.66e+03
    if 1e-3 <= abs(value) < 1e3:
        return f"{value:.3g}"
    return f"{value:.2e}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")


def integer_ticks(lo: int, hi: int, room: int) -> list[int]:
    """Integer epochs to label on an axis ``room`` cells wide: a round step, ends included."""
    span = max(1, hi - lo)
    most = max(2, room // 5)  # a label needs ~4 cells and a gap
    step = 1
    for candidate in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        step = candidate
        if span / candidate <= most:
            break
    ticks = list(range(lo - lo % step + (step if lo % step else 0), hi + 1, step))
    if lo not in ticks:
        ticks.insert(0, lo)
    if hi not in ticks and (hi - ticks[-1]) * room / span >= 4:
        ticks.append(hi)
    return ticks


def epoch_axis(epochs: Sequence[int], width: int, indent: int) -> Text:
    """The x axis under a plot ``width`` cells wide: ``└──`` and integer epoch labels."""
    lo, hi = min(epochs), max(epochs)
    axis = Text(" " * (indent - 1) + "└" + "─" * width + "\n", style="dim")
    labels = [" "] * width
    for tick in integer_ticks(lo, hi, width):
        col = 0 if hi == lo else round((tick - lo) / (hi - lo) * (width - 1))
        label = str(tick)
        start = min(max(0, col - len(label) // 2), width - len(label))
        if all(c == " " for c in labels[max(0, start - 1) : start + len(label) + 1]):
            labels[start : start + len(label)] = list(label)
    axis.append(" " * indent + "".join(labels).rstrip(), style="dim")
    return axis


@dataclass
class BandChart:
    """Quantile bands of one unit over epochs. ``values[q]`` holds one value per epoch."""

    epochs: list[int]
    values: dict[float, list[float]]
    colour: str = "#56B4E9"
    height: int = 10
    #: (low, high) of the value axis, e.g. a group's common scale; None: the data's range.
    value_range: tuple[float, float] | None = None
    #: The epoch axis and the legend under the plot (charts stacked on one axis draw them
    #: only under the last).
    footer: bool = True

    def _interpolated(self, width: int) -> dict[float, np.ndarray]:
        xs = np.asarray(self.epochs, dtype=float)
        grid = np.linspace(xs[0], xs[-1], width) if len(xs) > 1 else np.full(width, xs[0])
        return {q: np.interp(grid, xs, np.asarray(v, dtype=float)) for q, v in self.values.items()}

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        finite = [v for vs in self.values.values() for v in vs if math.isfinite(v)]
        if not self.epochs or not finite:
            yield Text("no data", style="dim")
            return
        lo, hi = self.value_range or (min(finite), max(finite))
        if hi == lo:
            lo, hi = lo - 0.5, hi + 0.5
        labels = [number(hi), number((lo + hi) / 2), number(lo)]
        indent = max(len(x) for x in labels) + 2
        width = max(8, min(options.max_width, 120) - indent - 1)
        series = self._interpolated(width)
        step = (hi - lo) / self.height
        median = series.get(0.5)
        label_rows = {0: labels[0], self.height // 2: labels[1], self.height - 1: labels[2]}
        for row in range(self.height):
            top = hi - row * step
            centre = top - step / 2
            line = Text(f"{label_rows.get(row, ''):>{indent - 1}}", style="dim")
            line.append("┤" if row in label_rows else "│", style="dim")
            for col in range(width):
                if median is not None and top >= median[col] > top - step:
                    line.append(MEDIAN, style=f"bold {self.colour}")
                    continue
                shade = " "
                for q_lo, q_hi, mark in BANDS:  # outer to inner: the innermost band wins
                    inside = q_lo in series and q_hi in series
                    if inside and series[q_lo][col] <= centre <= series[q_hi][col]:
                        shade = mark
                line.append(shade, style=f"{WEIGHT.get(shade, '')} {self.colour}".strip())
            yield line
        if not self.footer:
            return
        yield epoch_axis(self.epochs, width, indent)
        legend = Text(" " * indent, no_wrap=True, overflow="ellipsis")
        for q_lo, q_hi, mark in BANDS:
            legend.append(mark, style=f"{WEIGHT[mark]} {self.colour}".strip())
            unit = " %" if q_lo == BANDS[-1][0] else ""
            legend.append(f" {q_lo * 100:g}–{q_hi * 100:g}{unit}  ")
        legend.append(MEDIAN, style=f"bold {self.colour}")
        legend.append(" median  x: epoch", style="dim")
        yield legend
