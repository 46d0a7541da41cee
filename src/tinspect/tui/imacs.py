"""The compare tool's data (IMACS on a pair of models), for the two IMACS views.

A pair comes from the selection: an experiment of exactly two models with attributions
(a = the child, b = its parent), or one model (a) against its first parent with
attributions, else against its own initialization checkpoint (the thesis' sanity check).
The class of interest is the first class of the global class selection, if any. The table
is the one ``tinspect compare --csv`` prints (a row per segment with its cluster), so the
card's ``x`` exports it; the views get the comparison and the images in ``extra``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinspect.analysis import imacs
from tinspect.query import Table
from tinspect.store import DataError, ModelLogs, Store, attribution_epochs, recorded_inputs
from tinspect.tui.selection import Selection


def _parent_with_attributions(store: Store, model: ModelLogs) -> ModelLogs | None:
    for parent in model.parents:
        other = store.models.get(parent)
        if other is not None and attribution_epochs(other):
            return other
    return None


def pair_refs(store: Store, selection: Selection) -> tuple[str, str]:
    """``(A, B)`` as ``MODEL[@EPOCH]`` references for ``imacs.load_side``; DataError when
    the selection gives no pair with attributions."""
    ids = selection.models(store)
    models = [store.models[m] for m in ids if m in store.models]
    with_maps = [m for m in models if attribution_epochs(m)]
    if selection.kind == "experiment":
        if len(with_maps) != 2:
            raise DataError(
                f"the compare tool needs two models with attributions; this experiment has "
                f"{len(with_maps)} (select one model to compare it with its parent)"
            )
        first, second = with_maps
        a, b = (first, second) if second.id in first.parents else (second, first)
        return store.display_name(a), store.display_name(b)
    if not models or not with_maps:
        from tinspect.store import RECORDER_OPTION

        name = models[0].name if models else "the selection"
        raise DataError(f"{name} has no attributions; record them with {RECORDER_OPTION}")
    model = models[0]
    parent = _parent_with_attributions(store, model)
    if parent is not None:
        return store.display_name(model), store.display_name(parent)
    epochs = attribution_epochs(model)
    if len(epochs) < 2:
        raise DataError(
            f"{model.name} has no parent with attributions and attributions at one epoch only; "
            "nothing to compare it with"
        )
    name = store.display_name(model)
    return name, f"{name}@{epochs[0]}"


def compute(
    store: Store, selection: Selection, classes: tuple[int, ...] | None
) -> tuple[Table, dict[str, Any]]:
    """The per-segment table and, for the views, the comparison and the sample images."""
    ref_a, ref_b = pair_refs(store, selection)
    side_a = imacs.load_side(store, ref_a, "last")
    side_b = imacs.load_side(store, ref_b, "last")
    cls = classes[0] if classes else None
    result = imacs.compare(store, side_a, side_b, cls=cls)
    truth = side_a.maps.true_class
    meta = {"a": result.labels[0], "b": result.labels[1], "class": cls}
    table = Table.from_rows(list(result.CSV_COLUMNS), result.csv_rows(truth), meta)
    images = imacs.as_nhwc(recorded_inputs(store, side_a.model, side_a.epoch), side_a.maps.layout)
    extra = {
        "comparison": result,
        "images": images,
        "truth": truth,
        "predicted": (side_a.maps.predicted_class, side_b.maps.predicted_class),
    }
    return table, extra


def thumbnail(images: np.ndarray, sample: int, row: int, col: int, grid: int) -> np.ndarray:
    """The pixels of one segment as a 2-D array in [0, 1] (channels averaged)."""
    height, width = images.shape[1:3]
    rows, cols = imacs.grid_edges(height, grid), imacs.grid_edges(width, grid)
    cell = images[sample, rows[row] : rows[row + 1], cols[col] : cols[col + 1]].mean(axis=-1)
    lo, hi = float(images.min()), float(images.max())
    return (cell - lo) / (hi - lo) if hi > lo else np.zeros_like(cell)
