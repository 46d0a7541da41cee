"""The compare tool's data (IMACS on a pair of models), for the two IMACS views.

A pair comes from the selection: an experiment of exactly two models with attributions
(a = the child, b = its parent); one model with a second one picked for it in the
``PickModel`` modal (a ``PairSelection``; ``second_model_choices`` lists the candidates);
or, without a pick (the palette's direct path, tests), one model (a) against its first
parent with attributions, else against its own initialization checkpoint (the thesis'
sanity check). The class of interest is the first class of the global class selection, if
any; the global sample selection (``S``) is read on model a, as ``--samples``; the
card's filter (``f``) is ``imacs.parse_filter`` text. The table is the one
``tinspect compare --csv`` prints (a row per segment with its cluster; ``--confusion`` for
the confusion view), so the card's ``x`` exports it; the views get the comparison and the
images in ``extra``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tinspect.analysis import imacs
from tinspect.query import Table
from tinspect.store import (
    RECORDER_OPTION,
    DataError,
    ModelLogs,
    Store,
    attribution_epochs,
    recorded_inputs,
)
from tinspect.tui.selection import PairSelection, Selection

if TYPE_CHECKING:
    import numpy as np
else:
    from tinspect.lazy import numpy as np


def no_attributions(model: ModelLogs) -> str:
    """The one-line reason a model cannot be compared (the CLI's words)."""
    return f"{model.name} has no attributions; record them with {RECORDER_OPTION}"


@dataclass(frozen=True)
class Choice:
    """A candidate second model: its reference, a description, and why not (or None)."""

    ref: str
    label: str
    disabled: str | None = None


def second_model_choices(store: Store, model: ModelLogs) -> list[Choice]:
    """Candidates to compare ``model`` with: the other models of its experiment (parents
    first), its own first checkpoint with attributions (the sanity check), then models of
    other experiments that have attributions. Models without attributions, or that
    recorded another number of samples, are listed with the reason they cannot be used."""
    n = model.dataset.get("n_samples")
    experiment = store.tree.experiment_of(model.id)

    def choice(other: ModelLogs, where: str) -> Choice:
        name = store.display_name(other)
        epochs = attribution_epochs(other)
        label = f"{where}, attributions at {len(epochs)} epochs" if epochs else where
        if not epochs:
            return Choice(name, where, no_attributions(other))
        m = other.dataset.get("n_samples")
        if n and m and m != n:
            return Choice(name, label, f"recorded {m} samples, {model.name} {n}")
        return Choice(name, label)

    others = [m for m in experiment.models if m != model.id and m in store.models]

    def relation(other: ModelLogs) -> str:
        if other.id in model.parents:
            return "its parent"
        return "its child" if model.id in other.parents else "same experiment"

    ids = sorted(others, key=lambda m: (m not in model.parents, others.index(m)))
    out = [choice(store.models[m], relation(store.models[m])) for m in ids]
    own = attribution_epochs(model)
    name = store.display_name(model)
    if len(own) >= 2:
        what = "its initialization" if own[0] == 0 else "its first attributions"
        out.append(Choice(f"{name}@{own[0]}", f"itself at epoch {own[0]} ({what})"))
    else:
        out.append(
            Choice(f"{name}@0", "itself at its initialization", "attributions at one epoch only")
        )
    for other in store.ordered_models():
        if other.id not in experiment.models and attribution_epochs(other):
            out.append(choice(other, "another experiment"))
    return out


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
    if isinstance(selection, PairSelection) and selection.uoa is not None:
        model = store.models.get(selection.uoa.model)
        if model is None:
            raise DataError("model removed from the logs")
        if not attribution_epochs(model):
            raise DataError(no_attributions(model))
        return store.display_name(model), selection.other
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
        if models:
            raise DataError(no_attributions(models[0]))
        raise DataError("nothing selected to compare")
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
    store: Store,
    selection: Selection,
    classes: tuple[int, ...] | None,
    options: Mapping[str, Any] | None = None,
) -> tuple[Table, dict[str, Any]]:
    """The table ``tinspect compare --csv`` prints for the same pair, class, sample
    selection and filter (``options``: ``samples`` and ``filter`` text, ``confusion`` for
    the confusion view's table) and, for the views, the comparison, the images, labels,
    predictions and class scores. The sample selection is read on model a, as the CLI's
    ``--samples``."""
    options = options or {}
    ref_a, ref_b = pair_refs(store, selection)
    side_a = imacs.load_side(store, ref_a, "last")
    side_b = imacs.load_side(store, ref_b, "last")
    cls = classes[0] if classes else None
    text = options.get("filter")
    try:
        chosen = imacs.parse_filter(text) if text else None
    except ValueError as error:
        raise DataError(str(error)) from None
    rows = None
    if options.get("samples"):
        from tinspect.query import QueryError
        from tinspect.query import samples as selections

        try:
            parsed = selections.parse(str(options["samples"]))
        except QueryError as error:
            raise DataError(str(error)) from None
        rows = selections.resolve(store, parsed, side_a.model, side_a.epoch)
    result = imacs.compare(store, side_a, side_b, cls=cls, selection=rows, sample_filter=chosen)
    truth = side_a.maps.true_class
    table = imacs.comparison_table(result, truth, confusion=bool(options.get("confusion")))
    images = imacs.as_nhwc(recorded_inputs(store, side_a.model, side_a.epoch), side_a.maps.layout)
    extra = {
        "comparison": result,
        "images": images,
        "truth": truth,
        "predicted": (side_a.maps.predicted_class, side_b.maps.predicted_class),
        "scores": (imacs.prediction_scores(store, side_a), imacs.prediction_scores(store, side_b)),
    }
    return table, extra


def filter_choices(extra: Mapping[str, Any], cls: int | None) -> list[Choice]:
    """The filters the picker offers for a loaded comparison, each with the number of
    recorded samples it keeps (before the sampling), or why it cannot apply."""
    predicted = extra.get("predicted")
    comparison = extra.get("comparison")
    if predicted is None or comparison is None:
        return []
    truth, scores = extra.get("truth"), extra.get("scores", (None, None))
    n = int(predicted[0].shape[0])
    out = [Choice("", f"every recorded sample ({n})")]

    def add(text: str) -> None:
        chosen = imacs.parse_filter(text)
        try:
            kept = imacs.filter_mask(chosen, predicted, truth, cls, comparison.n_classes, scores)
        except imacs.CompareError as error:
            out.append(Choice(text, chosen.describe(cls), str(error)))
            return
        count = int(kept.sum())
        out.append(
            Choice(text, f"{chosen.describe(cls)} ({count})", None if count else "no sample")
        )

    for text in ("fp", "fp@a", "fp@b", "disagree"):
        add(text)
    for c in range(comparison.n_classes):
        add(f"predicted:{c}")
    return out


def thumbnail(images: np.ndarray, sample: int, row: int, col: int, grid: int) -> np.ndarray:
    """The pixels of one segment as a 2-D array in [0, 1] (channels averaged)."""
    height, width = images.shape[1:3]
    rows, cols = imacs.grid_edges(height, grid), imacs.grid_edges(width, grid)
    cell = images[sample, rows[row] : rows[row + 1], cols[col] : cols[col + 1]].mean(axis=-1)
    lo, hi = float(images.min()), float(images.max())
    return (cell - lo) / (hi - lo) if hi > lo else np.zeros_like(cell)
