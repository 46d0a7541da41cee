"""Two confusion matrices side by side (the compare tools' cluster confusion view).

A Rich renderable that lays itself out for the width it is given: both matrices side by
side with a space between cells when they fit, else side by side with cells packed (each
non-zero cell on its own background, so neighbouring numbers stay apart), else packed with
the right matrix reading its row labels from the left one, else one above the other with a
hint that ``w`` widens the panel. Cells where the two models differ are
bold and underlined in both matrices; the class of interest's row and column label are in
reverse video. Zero is a dim ``·``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from tinspect.tui.palette import scale

if TYPE_CHECKING:
    import numpy as np
else:
    from tinspect.lazy import numpy as np

#: Columns between the two matrices.
GAP = 2


def cell_style(value: int, diagonal: bool, top: int) -> str:
    """The confusion tool's colours: on the blue → red scale, the diagonal toward red and
    the rest toward blue, further for larger counts."""
    strength = 0.5 * value / max(1, top)
    return f"black on {scale(0.5 + strength if diagonal else 0.5 - strength)}"


class ConfusionPair:
    """Matrices ``a`` and ``b`` (n × n counts) restricted to ``classes`` (rows and columns)."""

    def __init__(
        self,
        a: np.ndarray,
        b: np.ndarray,
        classes: list[int],
        titles: tuple[Text, Text],
        highlight: int | None = None,
    ) -> None:
        self.a, self.b = np.asarray(a), np.asarray(b)
        self.classes = classes
        self.titles = titles
        self.highlight = highlight

    def _lines(
        self, mine: np.ndarray, other: np.ndarray, title: Text, sep: int, labels: bool = True
    ) -> list[Text]:
        classes = self.classes
        shown = np.ix_(classes, classes)
        sub, against = mine[shown], other[shown]
        top = int(max(sub.max(initial=0), against.max(initial=0)))
        width = max(len(str(top)), max(len(str(c)) for c in classes))
        label = max(len(str(c)) for c in classes)
        lines = [title.copy()]
        head = Text(" " * (label + 1) if labels else "")
        for c in classes:
            style = "reverse bold" if c == self.highlight else "bold"
            head.append(str(c).rjust(width), style=style)
            head.append(" " * sep)
        lines.append(head)
        for i, t in enumerate(classes):
            line = Text()
            if labels:
                style = "reverse bold" if t == self.highlight else "bold"
                line.append(str(t).rjust(label), style=style)
                line.append(" ")
            for j, _p in enumerate(classes):
                value = int(sub[i, j])
                differs = value != int(against[i, j])
                if value:
                    style = cell_style(value, i == j, top)
                    text = str(value).rjust(width)
                else:
                    style, text = "dim", "·".rjust(width)
                if differs:
                    style += " bold underline"
                line.append(text, style=style)
                line.append(" " * sep)
            lines.append(line)
        return lines

    def layouts(self) -> Iterator[tuple[str, list[Text], list[Text]]]:
        """(layout, lines of a, lines of b), from the roomiest to the most packed."""
        for sep, name, labels in ((1, "spaced", True), (0, "packed", True), (0, "shared", False)):
            yield (
                name,
                self._lines(self.a, self.b, self.titles[0], sep),
                self._lines(self.b, self.a, self.titles[1], sep, labels),
            )

    def layout_for(self, width: int) -> tuple[str, list[Text], list[Text]]:
        """The first layout whose two matrices fit ``width`` side by side, else stacked."""
        for name, left, right in self.layouts():
            if max(t.cell_len for t in left) + GAP + max(t.cell_len for t in right) <= width:
                return name, left, right
        _name, left, right = next(iter(self.layouts()))
        return "stacked", left, right

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        name, left, right = self.layout_for(options.max_width)
        if name == "stacked":
            yield from left
            yield Text("")
            yield from right
            yield Text("too narrow for side by side: w widens the panel", style="dim")
            return
        pad = max(t.cell_len for t in left) + GAP
        for i in range(max(len(left), len(right))):
            line = left[i].copy() if i < len(left) else Text()
            line.pad_right(pad - line.cell_len)
            if i < len(right):
                line.append_text(right[i])
            yield line
