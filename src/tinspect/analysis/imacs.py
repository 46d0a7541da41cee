"""IMACS: what two image models attend to differently, from their recorded attributions.

After Schoop's thesis (ch. 4): take both models' attribution maps on the same images, cut
the images into segments, cluster the segments by appearance into *concepts*, and show per
concept how much each model relies on it. A cluster whose segments one model credits and
the other ignores is a candidate shortcut or spurious feature. Numpy and scipy only: the
maps were computed by the recorder (``record/attributions.py``), so nothing here runs a
model.

The steps, and the choices made where IMACS leaves them open:

* **Segments**: a G×G grid per image (``grid_edges``; cells differ by at most one pixel when
  G does not divide the side); row 0 is the top. A segment's attribution for a model is the
  sum of its pixels' attributions (all channels).
* **Which map**: with a class of interest C, a sample's map is the one toward C where the
  recorder has one (the true-class map for samples of C, the predicted-class map for
  samples predicted as C), else the predicted-class map (the evidence for what it chose
  instead); without C, the predicted-class map.
* **Sampling** (``--sampling balanced``, the default): as IMACS does it, the same number of
  samples from each outcome group of each model for C (true/false positives and
  negatives; per true class without C): ``per_group`` = the smallest non-empty group, but
  at least ``MIN_PER_GROUP``, drawn with a seeded generator. ``all`` keeps every sample
  the selection (``--samples``) leaves.
* **Appearance embedding**: IMACS embeds segments with an ImageNet model, which cannot be
  downloaded here. Instead each image is resized (bilinear) so that every cell becomes
  ``PATCH``×``PATCH`` pixels, a segment's feature vector is its patch's pixels (all
  channels), and the vectors are reduced by PCA (numpy SVD) to the components explaining
  ``PCA_VARIANCE`` of the variance (at most ``PCA_MAX``). This sees brightness, edges and
  their orientation — enough for the planted patch of the demo, not for object parts.
* **Concepts**: k-means on the embedding (scipy's ``kmeans2``, k-means++ start, seeded);
  empty clusters are dropped.
* **Per cluster**: size; mean attribution per model; **imbalance** = the difference of
  the two means after dividing each model's segment attributions by that model's mean
  absolute segment attribution over all sampled segments (two models with different
  attribution scales compare); histograms of both models' normalized attributions on one
  shared x-range; composition (true classes and per-model outcomes of the samples its
  segments come from); **coherence** = 1 − (mean distance to the cluster's centre ÷ mean
  distance of all segments to the overall centre): 1 for identical segments, about 0 for a
  cluster as spread as everything. Clusters are numbered by |imbalance|, largest first.
  Per cluster also both models' **confusion matrices** over the samples its segments come
  from (each sample once), so one sees which mistakes a concept goes with.
* **Filters** (``--filter``, ``f`` in the viewer): a question about the *pair*, which the
  sample grammar (``--samples``, one model's view) cannot ask. ``fp`` keeps the false
  positives of the class of interest (predicted C, true class not C) of model a or b
  (``fp@a``, ``fp@b``: of one); ``predicted:C`` the samples a or b predicts as C
  (``@a``/``@b`` likewise); ``disagree`` the *confident* disagreements: both models' top
  class score at least ``CONFIDENT`` and their predicted classes differ (``disagree:P``
  sets the threshold; plain disagreement is ``--samples disagree:A,B``). A filter narrows
  the candidates before the sampling (and so before clustering): the concepts are those of
  the filtered images. It intersects with ``--samples``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tinspect import format as fmt
from tinspect.query import Table
from tinspect.store import (
    AttributionMaps,
    DataError,
    ModelLogs,
    Store,
    attribution_epochs,
    read_attributions,
    recorded_inputs,
)

if TYPE_CHECKING:
    import numpy as np
else:
    from tinspect.lazy import numpy as np

DEFAULT_GRID = 4
DEFAULT_K = 8
DEFAULT_SEED = 0
MIN_PER_GROUP = 16
PATCH = 4
PCA_VARIANCE = 0.95
PCA_MAX = 16
HISTOGRAM_BINS = 16
SAMPLINGS = ("balanced", "all")
OUTCOMES = ("tp", "fp", "fn", "tn")
#: A prediction is confident when its top class score is at least this (``disagree``).
CONFIDENT = 0.9
#: Every filter kind with a one-line help: the CLI's help and the viewer's picker read it.
FILTERS: dict[str, str] = {
    "fp": "false positives of the class of interest by a or b (fp@a, fp@b: by one)",
    "predicted": "predicted as class C by a or b: predicted:C (predicted:C@a, @b: by one)",
    "disagree": f"confident disagreements: both top scores >= {CONFIDENT}, predictions differ "
    "(disagree:P: threshold P)",
}
FILTER_GRAMMAR = "fp[@a|@b], predicted:C[@a|@b], disagree[:P]"
_FILTER = re.compile(r"^(?P<kind>[a-z]+)(?::(?P<arg>[^@]+))?(?:@(?P<side>[ab]))?$")


class CompareError(DataError):
    """The comparison cannot be made with these models or options (one line)."""


@dataclass(frozen=True)
class Side:
    """One model at one epoch, with its maps."""

    model: ModelLogs
    epoch: int
    maps: AttributionMaps

    @property
    def label(self) -> str:
        return f"{self.model.name}@{self.epoch}"


@dataclass(frozen=True)
class SampleFilter:
    """A parsed filter (see the module doc): its kind, class, threshold and side."""

    kind: str
    cls: int | None = None  # predicted:C
    threshold: float | None = None  # disagree:P
    side: str | None = None  # "a", "b", or None: either model

    def __str__(self) -> str:
        """The canonical text: ``parse_filter(str(f)) == f``."""
        text = self.kind
        if self.cls is not None:
            text += f":{self.cls}"
        if self.threshold is not None:
            text += f":{self.threshold:g}"
        return text + (f"@{self.side}" if self.side else "")

    def describe(self, cls: int | None) -> str:
        """A few words for a title: ``false positives of 3 by a``."""
        by = f"by {self.side}" if self.side else "by a or b"
        if self.kind == "fp":
            return f"false positives of {cls if cls is not None else 'C'} {by}"
        if self.kind == "predicted":
            return f"predicted {self.cls} {by}"
        return f"confident disagreements (>= {self.threshold or CONFIDENT:g})"


def parse_filter(text: str) -> SampleFilter:
    """The filter ``text`` names; ValueError (one line, with the grammar) otherwise."""
    match = _FILTER.match(text.strip().lower())

    def bad(why: str) -> ValueError:
        return ValueError(f"bad filter {text!r}: {why}; use one of: {FILTER_GRAMMAR}")

    if match is None:
        raise bad("not KIND[:ARGUMENT][@a|@b]")
    kind, arg, side = match["kind"], match["arg"], match["side"]
    if kind not in FILTERS:
        raise bad(f"unknown kind {kind!r}")
    if kind == "fp":
        if arg is not None:
            raise bad("fp takes no argument (the class is the class of interest)")
        return SampleFilter("fp", side=side)
    if kind == "predicted":
        if arg is None or not arg.strip().isdigit():
            raise bad("predicted needs a class number, predicted:C")
        return SampleFilter("predicted", cls=int(arg), side=side)
    if side is not None:
        raise bad("disagree is about both models; it takes no @a or @b")
    threshold = None
    if arg is not None:
        try:
            threshold = float(arg)
        except ValueError:
            raise bad("disagree:P takes a score threshold P") from None
        if not 0.0 <= threshold <= 1.0:
            raise bad("the threshold is a class score between 0 and 1")
    return SampleFilter("disagree", threshold=threshold)


def top_scores(scores: np.ndarray) -> np.ndarray:
    """Per sample the top class score as a probability: rows that are not already
    probabilities (negative, or not summing to 1: logits) go through a softmax first."""
    values = scores.astype(np.float64)
    sums = values.sum(axis=1)
    if values.min(initial=0.0) < 0 or not np.allclose(sums, 1.0, atol=1e-2):
        values = np.exp(values - values.max(axis=1, keepdims=True))
        values /= values.sum(axis=1, keepdims=True)
    return np.asarray(values.max(axis=1))


def filter_mask(
    sample_filter: SampleFilter,
    predicted: tuple[np.ndarray, np.ndarray],
    truth: np.ndarray | None,
    cls: int | None,
    n_classes: int,
    scores: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> np.ndarray:
    """Which samples pass ``sample_filter`` (a boolean mask); CompareError when the data
    it needs is missing (no class of interest, no labels, no class scores)."""
    sides = {"a": (0,), "b": (1,), None: (0, 1)}[sample_filter.side]
    n = predicted[0].shape[0]
    keep = np.zeros(n, dtype=bool)
    if sample_filter.kind == "fp":
        if cls is None:
            raise CompareError(
                "the fp filter needs a class of interest (--class C; c in the viewer)"
            )
        if truth is None:
            raise CompareError("the fp filter needs class labels; these samples have none")
        for i in sides:
            keep |= (predicted[i] == cls) & (truth != cls)
        return keep
    if sample_filter.kind == "predicted":
        assert sample_filter.cls is not None
        if n_classes and sample_filter.cls >= n_classes:
            raise CompareError(
                f"the models have {n_classes} classes (0..{n_classes - 1}); "
                f"no class {sample_filter.cls}"
            )
        for i in sides:
            keep |= predicted[i] == sample_filter.cls
        return keep
    score_a, score_b = scores
    if score_a is None or score_b is None:
        raise CompareError("the disagree filter needs both models' class scores")
    threshold = CONFIDENT if sample_filter.threshold is None else sample_filter.threshold
    confident = (top_scores(score_a) >= threshold) & (top_scores(score_b) >= threshold)
    return confident & (predicted[0] != predicted[1])


def prediction_scores(store: Store, side: Side) -> np.ndarray | None:
    """The class scores the model gave the recorded samples at its attributions' epoch
    (that checkpoint, or its latest earlier one); None when it recorded none."""
    earlier = [e for e in side.model.epochs if e <= side.epoch] or side.model.epochs
    if not earlier:
        return None
    data = store.arrays.checkpoint(side.model.id, earlier[-1])
    name = f"{fmt.SAMPLES_GROUP}/{fmt.SAMPLES_Y_PREDICTION}"
    if not data.has(name):
        return None
    scores = data.read(name)
    return scores if scores.ndim == 2 and scores.shape[1] >= 2 else None


def parse_model_ref(text: str) -> tuple[str, int | None]:
    """``MODEL`` or ``MODEL@EPOCH`` → (model reference, epoch or None)."""
    head, at, tail = text.rpartition("@")
    if at and head and tail.isdigit():
        return head, int(tail)
    return text, None


def pick_epoch(model: ModelLogs, wanted: int | str | None) -> int:
    """The epoch of ``model``'s attributions: ``wanted`` (an int), or its latest one."""
    have = attribution_epochs(model)
    if not have:
        read_attributions_error(model)
    if wanted is None or wanted == "last":
        return have[-1]
    if wanted == "first":
        return have[0]
    assert isinstance(wanted, int)
    if wanted not in have:
        raise CompareError(
            f"{model.name} has no attributions at epoch {wanted}; epochs with attributions: "
            f"{', '.join(map(str, have))}"
        )
    return wanted


def read_attributions_error(model: ModelLogs) -> None:
    from tinspect.store import RECORDER_OPTION

    raise CompareError(f"{model.name} has no attributions; record them with {RECORDER_OPTION}")


def load_side(store: Store, ref: str, default_epoch: int | str | None) -> Side:
    """``MODEL[@EPOCH]`` resolved to its maps (UoAError for an unknown model)."""
    name, epoch = parse_model_ref(ref)
    model = store.model(name)
    chosen = pick_epoch(model, epoch if epoch is not None else default_epoch)
    return Side(model, chosen, read_attributions(store, model, chosen))


# --- segments ---------------------------------------------------------------------------------
def image_axes(x: np.ndarray, layout: str) -> tuple[int, int, int | None]:
    """(height axis, width axis, channel axis or None) of a batch of images; CompareError
    for inputs that are not images."""
    if x.ndim == 3:
        return 1, 2, None
    if x.ndim == 4:
        return (2, 3, 1) if layout == "channels_first" else (1, 2, 3)
    raise CompareError(
        "segments need image inputs (n, H, W[, C]); the recorded samples have shape "
        f"{tuple(x.shape[1:])} per sample"
    )


def as_nhwc(x: np.ndarray, layout: str) -> np.ndarray:
    """A batch of images as (n, H, W, C) float32."""
    h, w, c = image_axes(x, layout)
    if c is None:
        return x.astype(np.float32)[..., None]
    return np.moveaxis(x, (h, w, c), (1, 2, 3)).astype(np.float32)


def grid_edges(size: int, grid: int) -> np.ndarray:
    """``grid + 1`` cell boundaries on an axis of ``size`` pixels."""
    return np.round(np.linspace(0, size, grid + 1)).astype(np.int64)


def segment_sums(maps: np.ndarray, grid: int) -> np.ndarray:
    """(n, grid, grid): each cell's sum of attributions, ``maps`` as (n, H, W, C)."""
    n, height, width = maps.shape[:3]
    rows, cols = grid_edges(height, grid), grid_edges(width, grid)
    per_pixel = maps.reshape(n, height, width, -1).astype(np.float64).sum(axis=3)
    by_rows = np.add.reduceat(per_pixel, rows[:-1], axis=1)
    return np.add.reduceat(by_rows, cols[:-1], axis=2)


def segment_patches(images: np.ndarray, grid: int, patch: int = PATCH) -> np.ndarray:
    """(n, grid, grid, patch·patch·C): every cell's pixels resized to ``patch``×``patch``.

    Each cell is resized on its own (bilinear, over every image at once), so a segment's
    features never mix in its neighbours' pixels.
    """
    from scipy.ndimage import zoom

    n, height, width, channels = images.shape
    rows, cols = grid_edges(height, grid), grid_edges(width, grid)
    out = np.zeros((n, grid, grid, patch, patch, channels), dtype=np.float32)
    for i in range(grid):
        for j in range(grid):
            cell = images[:, rows[i] : rows[i + 1], cols[j] : cols[j + 1]]
            h, w = cell.shape[1:3]
            factors = (1.0, patch / h, patch / w, 1.0)
            resized = zoom(cell, factors, order=1, mode="nearest", grid_mode=True)
            out[:, i, j] = resized[:, :patch, :patch]
    return out.reshape(n, grid, grid, patch * patch * channels)


def embed(features: np.ndarray) -> np.ndarray:
    """PCA of the (segments × features) matrix: the components explaining ``PCA_VARIANCE``
    (at most ``PCA_MAX``), as scores (segments × components)."""
    centred = features - features.mean(axis=0)
    _u, s, vt = np.linalg.svd(centred, full_matrices=False)
    variance = s**2
    total = variance.sum()
    if total <= 0:
        return np.zeros((features.shape[0], 1))
    keep = int(np.searchsorted(np.cumsum(variance) / total, PCA_VARIANCE) + 1)
    keep = max(1, min(keep, PCA_MAX, len(s)))
    return centred @ vt[:keep].T


def cluster(embedding: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means labels 0..k'-1 (k' ≤ k: empty clusters dropped), seeded."""
    from scipy.cluster.vq import kmeans2

    k = max(1, min(k, embedding.shape[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "one of the clusters is empty": handled below
        _centres, labels = kmeans2(
            embedding.astype(np.float64), k, minit="++", seed=np.random.default_rng(seed)
        )
    _unique, dense = np.unique(labels, return_inverse=True)
    return dense.astype(np.int64)


# --- sampling ---------------------------------------------------------------------------------
def outcomes(predicted: np.ndarray, truth: np.ndarray, cls: int) -> np.ndarray:
    """Per sample its outcome for class ``cls``: ``tp``, ``fp``, ``fn`` or ``tn``."""
    positive, actual = predicted == cls, truth == cls
    return np.select(
        [positive & actual, positive & ~actual, ~positive & actual], ["tp", "fp", "fn"], "tn"
    )


def balanced(groups: list[np.ndarray], seed: int) -> np.ndarray:
    """The union of an equal draw from each group of sample indices (see the module doc)."""
    sizes = [len(g) for g in groups if len(g)]
    if not sizes:
        return np.zeros(0, dtype=np.int64)
    per_group = max(min(sizes), MIN_PER_GROUP)
    rng = np.random.default_rng(seed)
    picked = [g if len(g) <= per_group else rng.choice(g, per_group, replace=False) for g in groups]
    return np.unique(np.concatenate(picked)).astype(np.int64)


# --- the comparison ---------------------------------------------------------------------------
@dataclass
class Cluster:
    """One concept: its segments and what the two models make of them."""

    cluster: int
    imbalance: float
    mean_a: float
    mean_b: float
    normalized_a: float
    normalized_b: float
    size: int
    coherence: float
    histogram_a: list[int]
    histogram_b: list[int]
    composition: dict[str, Any]
    #: (sample, row, col, attribution a, attribution b), strongest difference first.
    segments: list[tuple[int, int, int, float, float]] = field(default_factory=list)
    #: Per model ("a", "b") the true × predicted counts (n_classes²) of the samples the
    #: segments come from, each sample once; empty without class labels.
    confusion: dict[str, list[list[int]]] = field(default_factory=dict)


@dataclass
class Comparison:
    names: tuple[str, str]
    epochs: tuple[int, int]
    cls: int | None
    grid: int
    k: int
    sampling: str
    samples: np.ndarray
    scale_a: float
    scale_b: float
    histogram_edges: list[float]
    clusters: list[Cluster]
    n_classes: int = 0
    #: The filter's canonical text (``SampleFilter``), None without one.
    filter: str | None = None

    @property
    def labels(self) -> tuple[str, str]:
        """``model@epoch`` of a and b."""
        return (f"{self.names[0]}@{self.epochs[0]}", f"{self.names[1]}@{self.epochs[1]}")

    def to_json(self) -> dict[str, Any]:
        """The issue's schema, plus the settings and the histograms."""
        return {
            "models": list(self.names),
            "epochs": list(self.epochs),
            "class": self.cls,
            "grid": self.grid,
            "k": self.k,
            "sampling": self.sampling,
            "filter": self.filter,
            "n_samples": len(self.samples),
            "scale": {"a": self.scale_a, "b": self.scale_b},
            "histogram_edges": self.histogram_edges,
            "clusters": [
                {
                    "cluster": c.cluster,
                    "imbalance": c.imbalance,
                    "mean_attribution": {"a": c.mean_a, "b": c.mean_b},
                    "normalized_mean": {"a": c.normalized_a, "b": c.normalized_b},
                    "size": c.size,
                    "coherence": c.coherence,
                    "histogram": {"a": c.histogram_a, "b": c.histogram_b},
                    "composition": c.composition,
                    "confusion": c.confusion,
                    "segments": [
                        {"sample": s, "row": r, "col": col, "attribution": {"a": va, "b": vb}}
                        for s, r, col, va, vb in c.segments
                    ],
                }
                for c in self.clusters
            ],
        }

    CSV_COLUMNS = (
        "cluster",
        "imbalance",
        "sample",
        "row",
        "col",
        "class",
        "attribution_a",
        "attribution_b",
    )

    def csv_rows(self, truth: np.ndarray | None) -> list[tuple[Any, ...]]:
        """One row per segment with its cluster (``CSV_COLUMNS``)."""
        rows = []
        for c in self.clusters:
            for sample, row, col, va, vb in c.segments:
                label = None if truth is None else int(truth[sample])
                rows.append((c.cluster, c.imbalance, sample, row, col, label, va, vb))
        return rows

    CONFUSION_COLUMNS = ("cluster", "model", "true", "predicted", "count")

    def confusion_rows(self) -> list[tuple[Any, ...]]:
        """Every cell of every cluster's two confusion matrices (``CONFUSION_COLUMNS``;
        model is ``a`` or ``b``), zeros included: the matrices as a table."""
        rows = []
        for c in self.clusters:
            for key in ("a", "b"):
                for true, counts in enumerate(c.confusion.get(key, [])):
                    for predicted, count in enumerate(counts):
                        rows.append((c.cluster, key, true, predicted, count))
        return rows


def compare(
    store: Store,
    a: Side,
    b: Side,
    *,
    cls: int | None = None,
    grid: int = DEFAULT_GRID,
    k: int = DEFAULT_K,
    selection: np.ndarray | None = None,
    sampling: str = "balanced",
    seed: int = DEFAULT_SEED,
    sample_filter: SampleFilter | None = None,
) -> Comparison:
    """Cluster both models' segments into concepts and rank them by imbalance
    (``compare_maps`` on the models' recorded samples and maps)."""
    x = recorded_inputs(store, a.model, a.epoch)
    if b.model.id != a.model.id:
        other = recorded_inputs(store, b.model, b.epoch)
        if other.shape[0] != x.shape[0] or not np.array_equal(
            other.reshape(other.shape[0], -1), x.reshape(x.shape[0], -1)
        ):
            raise CompareError(
                f"{a.model.name} and {b.model.name} recorded different samples; compare needs "
                "the same samples (the same samples= in both callbacks)"
            )
    for side in (a, b):
        if side.maps.predicted.shape[0] != x.shape[0]:
            raise CompareError(
                f"{side.label} has attributions of {side.maps.predicted.shape[0]} samples, "
                f"the recorded samples are {x.shape[0]}"
            )
    scores: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    if sample_filter is not None and sample_filter.kind == "disagree":
        scores = (prediction_scores(store, a), prediction_scores(store, b))
    return compare_maps(
        x,
        a.maps,
        b.maps,
        names=(a.model.name, b.model.name),
        epochs=(a.epoch, b.epoch),
        n_classes=max(a.model.n_classes, b.model.n_classes),
        cls=cls,
        grid=grid,
        k=k,
        selection=selection,
        sampling=sampling,
        seed=seed,
        sample_filter=sample_filter,
        scores=scores,
    )


def compare_maps(
    x: np.ndarray,
    maps_a: AttributionMaps,
    maps_b: AttributionMaps,
    *,
    names: tuple[str, str] = ("a", "b"),
    epochs: tuple[int, int] = (0, 0),
    n_classes: int = 0,
    cls: int | None = None,
    grid: int = DEFAULT_GRID,
    k: int = DEFAULT_K,
    selection: np.ndarray | None = None,
    sampling: str = "balanced",
    seed: int = DEFAULT_SEED,
    sample_filter: SampleFilter | None = None,
    scores: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> Comparison:
    """The comparison itself, on arrays: samples ``x`` and both models' maps (``scores``:
    their class scores, needed by the ``disagree`` filter only)."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}. Received: {sampling!r}")
    if grid < 1 or k < 1:
        raise ValueError(f"grid and k must be >= 1. Received: grid={grid}, k={k}")
    n = x.shape[0]
    layout = maps_a.layout
    images = as_nhwc(x, layout)
    height, width = images.shape[1:3]
    if grid > min(height, width):
        raise CompareError(f"a {grid}×{grid} grid does not fit {height}×{width} images")
    truth = maps_a.true_class if maps_a.true_class is not None else maps_b.true_class
    n_classes = max(
        n_classes,
        int(maps_a.predicted_class.max(initial=-1)) + 1,
        int(maps_b.predicted_class.max(initial=-1)) + 1,
        int(truth.max(initial=-1)) + 1 if truth is not None else 0,
    )
    if cls is not None and (cls < 0 or cls >= n_classes):
        raise CompareError(
            f"{names[0]} has {n_classes} classes (0..{n_classes - 1}); no class {cls}"
        )
    candidates = np.arange(n) if selection is None else np.asarray(selection, dtype=np.int64)
    if sample_filter is not None:
        predicted = (maps_a.predicted_class, maps_b.predicted_class)
        keep = filter_mask(sample_filter, predicted, truth, cls, n_classes, scores)
        candidates = candidates[keep[candidates]]
        if candidates.size == 0:
            raise CompareError(
                f"no samples pass the filter {sample_filter} ({sample_filter.describe(cls)})"
            )
    if sampling == "all":
        chosen = candidates
    else:
        groups: list[np.ndarray] = []
        if cls is not None and truth is not None:
            for maps in (maps_a, maps_b):
                result = outcomes(maps.predicted_class[candidates], truth[candidates], cls)
                groups += [candidates[result == o] for o in OUTCOMES]
        elif truth is not None:
            groups = [candidates[truth[candidates] == c] for c in np.unique(truth[candidates])]
        else:
            groups = [candidates]
        chosen = balanced(groups, seed)
    if chosen.size == 0:
        raise CompareError("no samples to compare (the selection is empty)")

    pixels_a = as_nhwc(maps_a.toward(cls)[chosen], layout)
    pixels_b = as_nhwc(maps_b.toward(cls)[chosen], layout)
    seg_a = segment_sums(pixels_a, grid).reshape(-1)
    seg_b = segment_sums(pixels_b, grid).reshape(-1)
    features = segment_patches(images[chosen], grid).reshape(len(chosen) * grid * grid, -1)
    embedding = embed(features)
    labels = cluster(embedding, k, seed)

    scale_a = float(np.mean(np.abs(seg_a))) or 1.0
    scale_b = float(np.mean(np.abs(seg_b))) or 1.0
    norm_a, norm_b = seg_a / scale_a, seg_b / scale_b
    both = np.concatenate([norm_a, norm_b])
    lo, hi = float(both.min()), float(both.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, HISTOGRAM_BINS + 1)
    overall = float(np.mean(np.linalg.norm(embedding - embedding.mean(axis=0), axis=1))) or 1.0

    sample_of = np.repeat(chosen, grid * grid)
    cell = np.tile(np.arange(grid * grid), len(chosen))
    outcome_a = outcome_b = None
    if cls is not None and truth is not None:
        outcome_a = outcomes(maps_a.predicted_class, truth, cls)
        outcome_b = outcomes(maps_b.predicted_class, truth, cls)
    clusters = []
    for label in range(int(labels.max()) + 1):
        members = np.flatnonzero(labels == label)
        points = embedding[members]
        spread = float(np.mean(np.linalg.norm(points - points.mean(axis=0), axis=1)))
        imbalance = float(norm_a[members].mean() - norm_b[members].mean())
        direction = 1.0 if imbalance >= 0 else -1.0
        order = members[np.argsort(-(norm_a[members] - norm_b[members]) * direction, kind="stable")]
        samples_here = np.unique(sample_of[members])
        composition: dict[str, Any] = {"samples": int(samples_here.size)}
        if truth is not None:
            classes, counts = np.unique(truth[samples_here], return_counts=True)
            composition["classes"] = {
                str(int(c)): int(m) for c, m in zip(classes, counts, strict=True)
            }
            composition["correct"] = {
                "a": int((maps_a.predicted_class[samples_here] == truth[samples_here]).sum()),
                "b": int((maps_b.predicted_class[samples_here] == truth[samples_here]).sum()),
            }
        confusion: dict[str, list[list[int]]] = {}
        if truth is not None:
            for key, maps in (("a", maps_a), ("b", maps_b)):
                matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
                np.add.at(matrix, (truth[samples_here], maps.predicted_class[samples_here]), 1)
                confusion[key] = matrix.tolist()
        if outcome_a is not None and outcome_b is not None:
            composition["outcomes"] = {
                key: {o: int((found[samples_here] == o).sum()) for o in OUTCOMES}
                for key, found in (("a", outcome_a), ("b", outcome_b))
            }
        clusters.append(
            Cluster(
                cluster=label,
                imbalance=imbalance,
                mean_a=float(seg_a[members].mean()),
                mean_b=float(seg_b[members].mean()),
                normalized_a=float(norm_a[members].mean()),
                normalized_b=float(norm_b[members].mean()),
                size=int(members.size),
                coherence=1.0 - spread / overall,
                histogram_a=np.histogram(norm_a[members], edges)[0].astype(int).tolist(),
                histogram_b=np.histogram(norm_b[members], edges)[0].astype(int).tolist(),
                composition=composition,
                segments=[
                    (
                        int(sample_of[i]),
                        int(cell[i] // grid),
                        int(cell[i] % grid),
                        float(seg_a[i]),
                        float(seg_b[i]),
                    )
                    for i in order
                ],
                confusion=confusion,
            )
        )
    clusters.sort(key=lambda c: (-abs(c.imbalance), c.cluster))
    for rank, item in enumerate(clusters):
        item.cluster = rank
    return Comparison(
        names, epochs, cls, grid, k, sampling, chosen, scale_a, scale_b, edges.tolist(), clusters,
        n_classes=n_classes, filter=None if sample_filter is None else str(sample_filter),
    )  # fmt: skip


def comparison_table(
    result: Comparison, truth: np.ndarray | None, confusion: bool = False
) -> Table:
    """The table ``tinspect compare --csv`` prints and the viewer's ``x`` exports: a row
    per segment with its cluster, or (``confusion``) every cell of the clusters' matrices."""
    meta = {"a": result.labels[0], "b": result.labels[1], "class": result.cls}
    if result.filter is not None:
        meta["filter"] = result.filter
    if confusion:
        return Table.from_rows(list(result.CONFUSION_COLUMNS), result.confusion_rows(), meta)
    return Table.from_rows(list(result.CSV_COLUMNS), result.csv_rows(truth), meta)
