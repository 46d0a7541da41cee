"""Interestingness: which units deserve a look first, by one measure at one checkpoint.

A logdir of many models has hundreds of arrays; a person can look at a handful. Each
*measure* gives one number per unit at the lowest level where data occurs (a layer's
activations, or one variable of a layer) at a checkpoint, and a *score* in [0, 1] says how
unusual that number is **among units of the same type** (all activations together, and each
``<LayerClass>/<variable>`` such as ``Dense/kernel`` apart): a kernel's variance is only
comparable with other kernels, not with biases or activations. Scores are percentile ranks
of a deviation from what is typical, so they say "more unusual than most of its peers",
not "wrong": every measure here is a heuristic, meant to order the browsing, not to decide.

Cheap by design: apart from ``alpha`` (which reads kernels, a few KiB each) everything
comes from the checkpoints' stored summary tables (statistics and a 64-bin histogram per
array), so ranking a whole logdir reads four small datasets per checkpoint.

Scores are relative to the units scored together (the models passed to ``score_units``):
adding a model can move every other unit's score. ``aggregate`` lifts unit scores to
layers, models and experiments (the maximum, so one striking unit makes its model striking).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tinspect import format as fmt
from tinspect.store import CheckpointData, DataError, Layer, ModelLogs, Store, SummaryTable, UoA
from tinspect.summary import Summary

if TYPE_CHECKING:
    import numpy as np
else:
    from tinspect.lazy import numpy as np

MEASURES: Final[tuple[str, ...]] = (
    "skew",
    "variance",
    "min",
    "max",
    "kurtosis",
    "zeros",
    "saturation",
    "normal_divergence",
    "init_divergence",
    "parent_divergence",
    "alpha",
)

ACTIVATIONS: Final = "activations"
WEIGHTS: Final = "weights"

#: Output bounds of the bounded activation functions (saturation is defined for these only).
BOUNDS: Final[dict[str, tuple[float, float]]] = {
    "sigmoid": (0.0, 1.0),
    "hard_sigmoid": (0.0, 1.0),
    "softmax": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "hard_tanh": (-1.0, 1.0),
    "softsign": (-1.0, 1.0),
}
#: A value is saturated within this fraction of the bounds' width from a bound.
SATURATION_MARGIN: Final = 0.01

#: Layer classes whose ``kernel`` is a linear map, so its spectrum means something (alpha).
KERNEL_CLASSES: Final = frozenset(
    {
        "Dense",
        "EinsumDense",
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "Conv1DTranspose",
        "Conv2DTranspose",
        "Conv3DTranspose",
    }
)
#: Fewer eigenvalues than this give no credible power-law fit (alpha is NaN then).
ALPHA_MIN_EIGENVALUES: Final = 10
#: The fitted tail keeps at least this many eigenvalues.
ALPHA_MIN_TAIL: Final = 5
#: WeightWatcher's "well-trained" range of alpha; deviation is 0 inside it.
ALPHA_HEALTHY: Final = (2.0, 6.0)
ALPHA_TYPICAL: Final = 4.0


@dataclass(frozen=True)
class Score:
    """One unit's value of one measure at one checkpoint, and how unusual it is.

    ``score`` is a percentile rank within ``type_key`` (0: the most typical of its peers or
    not deviating at all, 1: the most unusual); NaN when ``raw`` is NaN.
    """

    uoa: UoA  # layer UoA for activations (variable=None), variable UoA for weights
    path: str  # store.path(uoa); the array is told by ``kind``
    kind: str  # "activations" or "weights"
    type_key: str  # normalization group: "activations" or "<LayerClass>/<variable>"
    measure: str
    epoch: int
    raw: float
    score: float


@dataclass(frozen=True)
class _Unit:
    """One array of one model at one checkpoint, before scoring."""

    model: ModelLogs
    layer: Layer
    variable: str | None  # None: the layer's activations
    epoch: int

    @property
    def kind(self) -> str:
        return ACTIVATIONS if self.variable is None else WEIGHTS

    @property
    def row(self) -> str:
        """Its row name in the checkpoint summary table."""
        array = fmt.ACTIVATIONS if self.variable is None else f"{fmt.WEIGHTS_GROUP}/{self.variable}"
        return fmt.summary_row_name(self.layer.name, array)

    @property
    def dataset(self) -> str:
        """Its HDF5 path inside a checkpoint."""
        if self.variable is None:
            return fmt.layer_path(self.layer.name, fmt.ACTIVATIONS)
        return fmt.layer_path(self.layer.name, fmt.WEIGHTS_GROUP, fmt.h5_key(self.variable))

    @property
    def type_key(self) -> str:
        return ACTIVATIONS if self.variable is None else f"{self.layer.class_name}/{self.variable}"


class _Reader:
    """Summary rows of checkpoints, each checkpoint's table read once per scoring call.

    A checkpoint without a stored summary (or lacking a row) gets the row computed from the
    array by the store's array service, which caches it under the key the query runner's
    summaries use, so the viewer and this module share the work. A checkpoint that cannot be
    read is left out (the store records one Problem for it).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._tables: dict[tuple[str, int], SummaryTable | None] = {}
        self._handles: dict[tuple[str, int], CheckpointData] = {}

    def handle(self, model_id: str, epoch: int) -> CheckpointData:
        key = (model_id, epoch)
        if key not in self._handles:
            self._handles[key] = self.store.arrays.checkpoint(model_id, epoch)
        return self._handles[key]

    def table(self, model_id: str, epoch: int) -> SummaryTable | None:
        key = (model_id, epoch)
        if key not in self._tables:
            try:
                self._tables[key] = self.handle(model_id, epoch).summary_table()
            except DataError:
                self._tables[key] = None  # the store has recorded a Problem for the file
        return self._tables[key]

    def summary(self, unit: _Unit, epoch: int | None = None) -> Summary | None:
        """The unit's summary at ``epoch`` (default: its own), or None when absent."""
        epoch = unit.epoch if epoch is None else epoch
        model_id = unit.model.id
        table = self.table(model_id, epoch)
        if table is None:
            return None
        row = table.row(unit.row)
        if row is not None or table.names:
            return row  # a written table lacking the row: the array was not written
        return self._computed(model_id, epoch, unit.dataset)

    def summary_of(self, model: ModelLogs, epoch: int, unit: _Unit) -> Summary | None:
        """The summary of the same layer/variable in another ``model`` (a parent)."""
        other = _Unit(model, unit.layer, unit.variable, epoch)
        return self.summary(other)

    def _computed(self, model_id: str, epoch: int, dataset: str) -> Summary | None:
        data = self.handle(model_id, epoch)
        try:
            if not data.has(dataset):
                return None
            return data.summary(data.ref(dataset))
        except DataError:
            self._tables[(model_id, epoch)] = None  # unreadable: skip its other units too
            return None


# --- distributions -------------------------------------------------------------------------


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence (base 2, so in [0, 1]) of two histograms on the same bins.

    Symmetric and finite even where one histogram has empty bins (unlike KL), which is why
    it is the distance between histograms here. NaN when either histogram is empty.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"histograms need the same bins. Received: {p.shape} and {q.shape}")
    sp, sq = p.sum(), q.sum()
    if not (sp > 0 and sq > 0 and np.isfinite(sp) and np.isfinite(sq)):
        return float("nan")
    p, q = p / sp, q / sq
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    return float(min(max(0.5 * kl(p) + 0.5 * kl(q), 0.0), 1.0))


def _constant(s: Summary) -> bool:
    return bool(s["min"] == s["max"])


def _rebin(s: Summary, grid: np.ndarray) -> np.ndarray:
    """The summary's histogram counts on ``grid`` (edges), via its interpolated cumulative.

    Linear interpolation of the cumulative count assumes values spread evenly inside each
    stored bin. A constant array's stored histogram is a unit-wide artefact, so it becomes
    a point mass in the grid bin holding the value.
    """
    counts = np.asarray(s.hist_counts, dtype=np.float64)
    if _constant(s):
        out = np.zeros(len(grid) - 1)
        i = int(np.clip(np.searchsorted(grid, s["min"], side="right") - 1, 0, len(out) - 1))
        out[i] = counts.sum()
        return out
    edges = np.asarray(s.hist_edges, dtype=np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(counts)])
    return np.diff(np.interp(grid, edges, cumulative, left=0.0, right=cumulative[-1]))


def histogram_divergence(a: Summary, b: Summary) -> float:
    """JS divergence of two stored histograms with different ranges, on a common grid.

    Both are re-binned onto ``SUMMARY_BINS`` equal bins over the union of their ranges.
    The comparison is of distributions only, so arrays of different shapes (a parent's
    narrower layer) can be compared. NaN when either has no finite values.
    """
    if not (a["finite"] > 0 and b["finite"] > 0):
        return float("nan")
    lo, hi = min(a["min"], b["min"]), max(a["max"], b["max"])
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return float("nan")
    if hi <= lo:
        return 0.0  # both constant, at the same value
    grid = np.linspace(lo, hi, fmt.SUMMARY_BINS + 1)
    return js_divergence(_rebin(a, grid), _rebin(b, grid))


def normal_divergence(s: Summary) -> float:
    """JS divergence between the stored histogram and a normal of the same mean and std.

    The normal's mass is taken over the same bins and renormalized to the histogram's range,
    so the measure compares shapes (dead-ReLU spikes at zero, skew, several modes). NaN for
    constant arrays, where a normal has no width.
    """
    mean, std = s["mean"], s["std"]
    if not (s["finite"] > 0 and np.isfinite(mean) and np.isfinite(std) and std > 0):
        return float("nan")
    if _constant(s):
        return float("nan")
    edges = np.asarray(s.hist_edges, dtype=np.float64)
    from scipy import stats as sps  # lazily: ~1.5 s, and diff/ls need none of it

    normal = np.diff(sps.norm.cdf(edges, loc=mean, scale=std))
    return js_divergence(np.asarray(s.hist_counts, dtype=np.float64), normal)


def _cdf_points(s: Summary) -> tuple[np.ndarray, np.ndarray]:
    """Known points (x, fraction of values <= x) of a summary's distribution.

    The histogram gives the cumulative fraction at its 65 edges; the stored quantiles add
    points inside the bins (q01 ... q99), which matters where values pile up in one bin,
    such as against a sigmoid's bound. Merged in order of x and made monotone.
    """
    counts = np.asarray(s.hist_counts, dtype=np.float64)
    edges = np.asarray(s.hist_edges, dtype=np.float64)
    total = counts.sum()
    xs = [edges]
    fs = [np.concatenate([[0.0], np.cumsum(counts)]) / total]
    quantiles = np.array([s[c] for c in fmt.SUMMARY_QUANTILE_COLUMNS])
    ok = np.isfinite(quantiles)
    xs.append(quantiles[ok])
    fs.append(np.asarray(fmt.SUMMARY_QUANTILES, dtype=np.float64)[ok])
    x, f = np.concatenate(xs), np.concatenate(fs)
    order = np.lexsort((f, x))
    x, f = x[order], np.maximum.accumulate(f[order])
    return x, f


def saturation(s: Summary, bounds: tuple[float, float]) -> float:
    """Fraction of values within ``SATURATION_MARGIN`` of the bounds' width from a bound.

    Estimated without reading the array: the cumulative distribution is interpolated
    linearly between the histogram's edges and the stored quantiles (``_cdf_points``), so
    it is approximate inside a bin but tight where a quantile falls near the margin. For
    softmax outputs a high value is also what a confident classifier gives: read it with
    the layer's role in mind.
    """
    if not s["finite"] > 0:
        return float("nan")
    lo, hi = bounds
    margin = SATURATION_MARGIN * (hi - lo)
    if _constant(s):
        v = s["min"]
        return 1.0 if (v <= lo + margin or v >= hi - margin) else 0.0
    if not np.asarray(s.hist_counts).sum() > 0:
        return float("nan")
    x, f = _cdf_points(s)
    below = float(np.interp(lo + margin, x, f, left=0.0, right=1.0))
    # Fraction >= hi - margin: 1 - F just below that point.
    above = 1.0 - float(np.interp(hi - margin, x, f, left=0.0, right=1.0))
    return float(min(max(below + above, 0.0), 1.0))


def activation_bounds(layer: Layer) -> tuple[float, float] | None:
    """Output bounds of the layer's final activation, or None when it is unbounded.

    Read from the last step of the recorded ``operations`` (Activation and Softmax layers,
    recurrent cells) and else from ``Layer.activation``.
    """
    if layer.operations:
        last = str(layer.operations[-1].get("op", ""))
        if last in BOUNDS:
            return BOUNDS[last]
    if layer.activation in BOUNDS:
        return BOUNDS[layer.activation]
    return None


# --- the power-law exponent of a kernel's spectrum ----------------------------------------------


def kernel_matrix(kernel: np.ndarray) -> np.ndarray:
    """A kernel as a 2-D linear map: every axis but the last (output units) flattened.

    Dense (in, out) stays; Conv2D (kh, kw, in, out) becomes (kh*kw*in, out).
    """
    array = np.asarray(kernel, dtype=np.float64)
    if array.ndim < 2:
        raise ValueError(f"a kernel has at least 2 axes. Received: shape={array.shape}")
    return array.reshape(-1, array.shape[-1])


def eigenvalues(matrix: np.ndarray) -> np.ndarray:
    """Eigenvalues of the correlation matrix X = WᵀW / N (N the larger side), ascending.

    These are the squared singular values of W over N. They are computed as the spectrum of
    the smaller Gram matrix (``eigvalsh``), which is several times faster than LAPACK's SVD
    for tall kernels and exact enough for a tail fit (round-off near zero is dropped by
    ``powerlaw_alpha``).
    """
    w = np.asarray(matrix, dtype=np.float64)
    n = max(w.shape)
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    return np.clip(np.linalg.eigvalsh(gram) / n, 0.0, None)


def powerlaw_alpha(
    values: np.ndarray,
    min_values: int = ALPHA_MIN_EIGENVALUES,
    min_tail: int = ALPHA_MIN_TAIL,
) -> float:
    """Power-law exponent of the upper tail of ``values`` (Clauset, Shalizi & Newman 2009).

    For each candidate λ_min among the upper half of the sorted values (keeping at least
    ``min_tail`` values in the tail) the MLE alpha = 1 + n / Σ ln(λ/λ_min) is fitted and the
    one with the smallest Kolmogorov–Smirnov distance to the fitted power law is kept. This
    is WeightWatcher's heuristic for weight matrices: alpha in about 2–6 for well-trained
    layers, larger for random-like ones (Marchenko–Pastur bulk, no tail), below 2 for
    over-fitted or badly conditioned ones. NaN with fewer than ``min_values`` positive
    values, where no fit is credible.
    """
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())
    v = v[np.isfinite(v)]
    if v.size:
        v = v[v > v[-1] * 1e-10]  # numerically zero eigenvalues (rank-deficient kernels)
    n = v.size
    if n < max(min_values, min_tail):
        return float("nan")
    best_alpha, best_d = float("nan"), math.inf
    for i in range(n // 2, n - min_tail + 1):
        tail = v[i:]
        x_min = tail[0]
        logs = np.log(tail / x_min)
        total = float(logs.sum())
        if total <= 0:
            continue
        m = tail.size
        alpha = 1.0 + m / total
        model = 1.0 - (tail / x_min) ** (1.0 - alpha)
        above = np.arange(1, m + 1) / m
        below = np.arange(0, m) / m
        d = float(max(np.max(np.abs(above - model)), np.max(np.abs(below - model))))
        if d < best_d:
            best_alpha, best_d = alpha, d
    return best_alpha


# --- measures ------------------------------------------------------------------------------------

_STAT: Final[dict[str, Callable[[Summary], float]]] = {
    "skew": lambda s: s["skew"],
    "variance": lambda s: s["std"] ** 2,
    "min": lambda s: s["min"],
    "max": lambda s: s["max"],
    "kurtosis": lambda s: s["kurtosis"],
    "zeros": lambda s: s["zero_fraction"],
    "normal_divergence": normal_divergence,
}


def _nearest_epoch(epochs: list[int], epoch: int) -> int | None:
    """The epoch in ``epochs`` closest to ``epoch`` (ties go to the earlier one)."""
    return min(epochs, key=lambda e: (abs(e - epoch), e)) if epochs else None


def _parents(store: Store, model: ModelLogs) -> list[ModelLogs]:
    return [store.models[p] for p in model.parents if p in store.models]


def _alpha(reader: _Reader, unit: _Unit) -> float:
    if unit.variable != "kernel" or unit.layer.class_name not in KERNEL_CLASSES:
        return float("nan")
    shape = next(
        (v.get("shape") for v in unit.layer.variables if v.get("name") == unit.variable), None
    )
    if isinstance(shape, list) and len(shape) >= 2 and all(isinstance(d, int) for d in shape):
        rows = math.prod(shape[:-1])
        if min(rows, shape[-1]) < ALPHA_MIN_EIGENVALUES:
            return float("nan")  # too few eigenvalues: no need to read the kernel
    data = reader.handle(unit.model.id, unit.epoch)

    def compute() -> dict[str, np.ndarray]:
        kernel = data.read(unit.dataset)
        if kernel.ndim < 2 or kernel.dtype.kind != "f" or not np.all(np.isfinite(kernel)):
            return {"alpha": np.array(np.nan)}
        return {"alpha": np.array(powerlaw_alpha(eigenvalues(kernel_matrix(kernel))))}

    try:
        value = data.cached(data.ref(unit.dataset), "interest_alpha", compute)
    except (DataError, np.linalg.LinAlgError):
        return float("nan")
    return float(value["alpha"])


def _raw(store: Store, reader: _Reader, unit: _Unit, measure: str) -> float:
    """The measure's value for one unit (NaN when undefined or its data is missing)."""
    if measure == "alpha":
        return _alpha(reader, unit)
    s = reader.summary(unit)
    if s is None or not s["finite"] > 0:
        return float("nan")
    if measure in _STAT:
        return float(_STAT[measure](s))
    if measure == "saturation":
        bounds = activation_bounds(unit.layer) if unit.variable is None else None
        return saturation(s, bounds) if bounds is not None else float("nan")
    if measure == "init_divergence":
        if 0 not in unit.model.checkpoint_names:
            return float("nan")
        first = reader.summary(unit, 0)
        return histogram_divergence(s, first) if first is not None else float("nan")
    if measure == "parent_divergence":
        for parent in _parents(store, unit.model):
            if not any(layer.name == unit.layer.name for layer in parent.layers):
                continue
            epoch = _nearest_epoch(parent.epochs, unit.epoch)
            other = reader.summary_of(parent, epoch, unit) if epoch is not None else None
            if other is not None:
                return histogram_divergence(s, other)
        return float("nan")
    raise AssertionError(measure)  # pragma: no cover - checked by _check_measure


def deviation(measure: str, raw: np.ndarray) -> np.ndarray:
    """How far each raw value is from typical, for a group of one type (NaN stays NaN).

    Heuristic notions of "typical": 0 for skew and kurtosis (a normal distribution); 0 for
    fractions and divergences (higher is stranger); the group's median for variance, min
    and max; WeightWatcher's healthy range 2–6 for alpha (deviation |alpha - 4| outside it,
    0 inside).
    """
    raw = np.asarray(raw, dtype=np.float64)
    if measure in ("skew", "kurtosis"):
        return np.abs(raw)
    if measure in (
        "zeros",
        "saturation",
        "normal_divergence",
        "init_divergence",
        "parent_divergence",
    ):
        return raw.copy()
    if measure in ("variance", "min", "max"):
        finite = raw[np.isfinite(raw)]
        median = float(np.median(finite)) if finite.size else 0.0
        return np.abs(raw - median)
    if measure == "alpha":
        lo, hi = ALPHA_HEALTHY
        inside = (raw >= lo) & (raw <= hi)
        return np.where(inside, 0.0, np.abs(raw - ALPHA_TYPICAL))
    raise AssertionError(measure)  # pragma: no cover


def percentile_scores(dev: np.ndarray) -> np.ndarray:
    """Percentile ranks in [0, 1] of deviations within one group (NaN stays NaN).

    The textbook percentile rank (values below + half the values equal) / n: the most
    deviating of n units scores 1 - 1/(2n). Small groups therefore stay near 0.5 (two
    Conv2D kernels score 0.25 and 0.75, not 0 and 1), since being the odd one out of two
    says little. A deviation of exactly 0 (nothing unusual: no zeros, alpha in the healthy
    range) scores 0 whatever its rank.
    """
    dev = np.asarray(dev, dtype=np.float64)
    out = np.full(dev.shape, np.nan)
    ok = np.isfinite(dev)
    n = int(ok.sum())
    if n == 0:
        return out
    from scipy import stats as sps

    ranks = sps.rankdata(dev[ok], method="average")
    out[ok] = np.where(dev[ok] > 0, (ranks - 0.5) / n, 0.0)
    return out


def _check_measure(measure: str) -> None:
    if measure not in MEASURES:
        raise ValueError(
            f"unknown measure {measure!r}; measures: {', '.join(MEASURES)}. "
            f"Received: measure={measure!r}"
        )


def _parse_epoch(epoch: str | int) -> str | int:
    """``"last"``, ``"first"`` or a checkpoint epoch N >= 0; ValueError otherwise."""
    text = str(epoch).strip().lower()
    if text in ("last", "first"):
        return text
    try:
        wanted = int(text)
    except ValueError:
        wanted = -1
    if wanted < 0:
        raise ValueError(
            f"epoch must be 'last', 'first' or a checkpoint epoch N >= 0. Received: epoch={epoch!r}"
        )
    return wanted


def _epoch_of(model: ModelLogs, epoch: str | int) -> int | None:
    """The model's checkpoint for a parsed ``epoch``, None when it has none."""
    epochs = model.epochs
    if not epochs:
        return None
    if epoch == "last":
        return epochs[-1]
    if epoch == "first":
        return epochs[0]
    return epoch if isinstance(epoch, int) and epoch in model.checkpoint_names else None


def _units(model: ModelLogs, epoch: int) -> list[_Unit]:
    """Every array of the model at a checkpoint: recorded activations, then each variable."""
    recorded = model.recording.get("layers")
    out: list[_Unit] = []
    for layer in model.layers:
        if layer.class_name == "InputLayer":
            continue
        if not isinstance(recorded, list) or layer.name in recorded:
            out.append(_Unit(model, layer, None, epoch))
        out += [_Unit(model, layer, var, epoch) for var in layer.variable_names]
    return out


def score_units(
    store: Store,
    measure: str,
    epoch: str | int = "last",
    model_ids: list[str] | None = None,
) -> list[Score]:
    """One Score per array (activations, variables) of each model at its checkpoint.

    ``epoch`` is "last" (each model's newest checkpoint), "first" or an epoch N (models
    without that checkpoint are left out). Arrays absent from a checkpoint (not recorded,
    skipped) are left out; arrays where the measure is undefined (saturation of a ReLU,
    alpha of a bias) get NaN. Scores are percentile ranks within each ``type_key`` over the
    units returned, so they depend on which models are scored together. A model whose
    checkpoint cannot be read is left out (the store reports the Problem).
    """
    _check_measure(measure)
    wanted = _parse_epoch(epoch)
    ids = list(store.models) if model_ids is None else list(model_ids)
    unknown = [i for i in ids if i not in store.models]
    if unknown:
        raise ValueError(f"unknown model ids: {', '.join(unknown)}")
    reader = _Reader(store)
    units: list[_Unit] = []
    for model in (store.models[i] for i in ids):
        chosen = _epoch_of(model, wanted)
        table = reader.table(model.id, chosen) if chosen is not None else None
        if chosen is None or table is None:
            continue
        for unit in _units(model, chosen):
            # Only arrays the checkpoint holds: its summary rows, or (no stored summary)
            # its datasets.
            try:
                present = (
                    unit.row in table.names
                    if table.names
                    else reader.handle(model.id, chosen).has(unit.dataset)
                )
            except DataError:
                break  # the checkpoint cannot be read: the model is left out

            if present:
                units.append(unit)
    raws = np.array([_raw(store, reader, u, measure) for u in units], dtype=np.float64)
    # A checkpoint found damaged while scoring is left out whole, not scored as NaN.
    readable = [store.arrays.damaged(u.model.id, u.epoch) is None for u in units]
    if not all(readable):
        units = [u for u, ok in zip(units, readable, strict=True) if ok]
        raws = raws[np.asarray(readable, dtype=bool)]
    scores = np.full(len(units), np.nan)
    groups: dict[str, list[int]] = {}
    for i, unit in enumerate(units):
        groups.setdefault(unit.type_key, []).append(i)
    for members in groups.values():
        index = np.array(members)
        scores[index] = percentile_scores(deviation(measure, raws[index]))
    out = []
    for unit, raw, score in zip(units, raws, scores, strict=True):
        uoa = UoA(unit.model.id, unit.layer.name, unit.variable)
        out.append(
            Score(
                uoa=uoa,
                path=store.path(uoa),
                kind=unit.kind,
                type_key=unit.type_key,
                measure=measure,
                epoch=unit.epoch,
                raw=float(raw),
                score=float(score),
            )
        )
    return out


def _nanmax(current: float | None, value: float) -> float:
    if current is None or math.isnan(current):
        return value
    if math.isnan(value):
        return current
    return max(current, value)


def aggregate(scores: list[Score], store: Store) -> dict[str, dict]:
    """Unit scores lifted to layers, models and experiments: each the max of its children.

    The maximum (NaN ignored; NaN only when every child is NaN) because one striking array
    is reason enough to open its layer, and its model. Keys: ``"layers"`` by
    ``(model_id, layer)``, ``"models"`` by model id, ``"experiments"`` by experiment name
    (models outside the store's tree are left out of experiments).
    """
    layers: dict[tuple[str, str], float] = {}
    for s in scores:
        if s.uoa.layer is None:
            continue
        key = (s.uoa.model, s.uoa.layer)
        layers[key] = _nanmax(layers.get(key), s.score)
    models: dict[str, float] = {}
    for (model_id, _layer), value in layers.items():
        models[model_id] = _nanmax(models.get(model_id), value)
    experiments: dict[str, float] = {}
    tree = store.tree
    for model_id, value in models.items():
        try:
            name = tree.experiment_of(model_id).name
        except KeyError:
            continue
        experiments[name] = _nanmax(experiments.get(name), value)
    return {"layers": layers, "models": models, "experiments": experiments}


def rank(
    store: Store, measure: str, epoch: str | int = "last", top: int | None = None
) -> list[Score]:
    """Every unit of every model by ``measure``, most interesting first (NaN scores last).

    Sorted by score (descending); equal scores (the top units of different groups often
    tie) by their deviation from typical (descending; for fractions and divergences that is
    the raw value itself), then by path. ``top`` keeps the first ``top``. Scores are
    heuristics; see the module docstring.
    """
    scores = score_units(store, measure, epoch)
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(scores):
        groups.setdefault(s.type_key, []).append(i)
    dev = np.full(len(scores), np.nan)
    for members in groups.values():
        dev[members] = deviation(measure, np.array([scores[i].raw for i in members]))

    def key(i: int) -> tuple[bool, float, float, str, str]:
        s, d = scores[i], float(dev[i])
        missing = math.isnan(s.score)
        return (
            missing,
            0.0 if missing else -s.score,
            math.inf if math.isnan(d) else -d,
            s.path,
            s.kind,
        )

    ordered = [scores[i] for i in sorted(range(len(scores)), key=key)]
    return ordered if top is None else ordered[: max(0, top)]


__all__ = [
    "MEASURES",
    "Score",
    "aggregate",
    "deviation",
    "eigenvalues",
    "histogram_divergence",
    "js_divergence",
    "kernel_matrix",
    "normal_divergence",
    "percentile_scores",
    "powerlaw_alpha",
    "rank",
    "saturation",
    "score_units",
]
