"""Colours: one per model (the same on every screen and chart) and a blue → red scale.

The model palette is qualitative and readable on dark and light backgrounds; colours are
assigned in the order models are first seen and never change during a session, so a model
keeps its colour when new models appear while training runs. Terminals without true colour
get the nearest 256-colour entry from Rich/Textual automatically.
"""

from __future__ import annotations

import itertools
import math

# Okabe–Ito (colour-blind safe) followed by Tableau 10 for more models.
MODEL_COLOURS = (
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#4E79A7",
    "#F28E2B",
    "#59A14F",
    "#EDC948",
    "#B07AA1",
    "#FF9DA7",
    "#9C755F",
)

#: Blue (low) → grey → red (high), for activations and interestingness.
_SCALE = ((0.0, (49, 99, 206)), (0.5, (180, 180, 180)), (1.0, (214, 39, 40)))


class ModelColours:
    """Sticky assignment of palette colours to model ids."""

    def __init__(self) -> None:
        self._colours: dict[str, str] = {}

    def __call__(self, model_id: str) -> str:
        if model_id not in self._colours:
            self._colours[model_id] = MODEL_COLOURS[len(self._colours) % len(MODEL_COLOURS)]
        return self._colours[model_id]


def scale(value: float) -> str:
    """A hex colour for ``value`` in [0, 1] on the blue → red scale (NaN: dim grey)."""
    if value is None or not math.isfinite(value):
        return "#555555"
    v = min(1.0, max(0.0, float(value)))
    for (x0, c0), (x1, c1) in itertools.pairwise(_SCALE):
        if v <= x1:
            t = (v - x0) / (x1 - x0)
            r, g, b = (round(a + (b_ - a) * t) for a, b_ in zip(c0, c1, strict=True))
            return f"#{r:02x}{g:02x}{b:02x}"
    return "#d62728"


def normalize(values: list[float]) -> list[float]:
    """Values mapped to [0, 1] by min/max of the finite ones (NaN stays NaN)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return [float("nan")] * len(values)
    lo, hi = min(finite), max(finite)
    span = hi - lo
    return [
        float("nan")
        if v is None or not math.isfinite(v)
        else (0.5 if span == 0 else (v - lo) / span)
        for v in values
    ]
