"""Arrays as pictures in half blocks: channel activation maps, convolution kernels.

Each text cell shows two pixels (``▀`` with a foreground and a background colour), so an
8×8 map takes 8 columns × 4 rows. Maps that are compared share one colour scale (blue low →
grey → red high, the viewer's scale) whose ends are printed beside them, so a bright channel
is bright relative to its neighbours, not to itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table as RichTable
from rich.text import Text

from tinspect.tui.palette import scale

if TYPE_CHECKING:
    import numpy as np
else:
    from tinspect.lazy import numpy as np


def scaled_image(pixels: np.ndarray, lo: float, hi: float) -> Text:
    """A 2-D array drawn in half blocks on the shared scale ``lo``..``hi``."""
    span = hi - lo if hi > lo else 1.0
    norm = (np.asarray(pixels, dtype=np.float64) - lo) / span
    if norm.shape[0] % 2:
        norm = np.vstack([norm, np.full((1, norm.shape[1]), np.nan)])
    text = Text()
    for r in range(0, norm.shape[0], 2):
        for c in range(norm.shape[1]):
            top, bottom = norm[r, c], norm[r + 1, c]
            bottom_style = f" on {scale(bottom)}" if np.isfinite(bottom) else ""
            text.append("▀", style=f"{scale(top)}{bottom_style}")
        if r + 2 < norm.shape[0]:
            text.append("\n")
    return text


def scale_legend(lo: float, hi: float) -> Text:
    from tinspect.tui.widgets.bands import number

    text = Text(f"{number(lo)} ", style="dim")
    for k in range(10):
        text.append("█", style=scale(k / 9))
    text.append(f" {number(hi)}", style="dim")
    return text


def image_grid(
    images: Sequence[np.ndarray], captions: Sequence[str], width: int, lo: float, hi: float
) -> RenderableType:
    """Images with captions in rows that fit ``width`` cells, on one colour scale."""
    if not images:
        return Text("no maps", style="dim")
    cell = max(max(img.shape[1] for img in images), max(len(c) for c in captions))
    per_row = max(1, width // (cell + 1))  # + 1: the grid's padding between columns
    grid = RichTable.grid(padding=(0, 1))
    for _ in range(per_row):
        grid.add_column(no_wrap=True)
    cells: list[Any] = [
        Group(scaled_image(img, lo, hi), Text(caption, style="dim"))
        for img, caption in zip(images, captions, strict=True)
    ]
    for i in range(0, len(cells), per_row):
        grid.add_row(*cells[i : i + per_row])
    return Group(grid, scale_legend(lo, hi))


def channel_axis(config: dict[str, Any], ndim: int) -> int:
    """The channel axis of a per-sample activation of ``ndim`` dims (Keras channels-last by
    default; ``data_format="channels_first"`` as torch convolutions record it)."""
    return 0 if config.get("data_format") == "channels_first" else ndim - 1


def channel_maps(mean: np.ndarray, config: dict[str, Any]) -> list[np.ndarray]:
    """Per-channel 2-D maps of one (h, w, c) or (c, h, w) mean activation."""
    axis = channel_axis(config, mean.ndim)
    maps = np.moveaxis(mean, axis, 0)
    return [m if m.ndim == 2 else m.reshape(m.shape[0], -1) for m in maps]


def from_rows(indices: Sequence[str], values: Sequence[float]) -> np.ndarray:
    """The array behind a raw table: its ``index`` column (``i:j:k``) and ``value`` column."""
    coords = np.array([[int(c) for c in index.split(":")] for index in indices], dtype=np.int64)
    shape = tuple(coords.max(axis=0) + 1)
    out = np.full(shape, np.nan)
    out[tuple(coords.T)] = np.asarray(values, dtype=np.float64)
    return out
