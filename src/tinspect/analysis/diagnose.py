"""Silent-bug diagnostics: checks that explain what is wrong with a model and how to fix it.

A model with a silent bug trains, its loss goes down, and it is still wrong: a ReLU on a
VAE's mean, logits fed to a cross-entropy that expects probabilities, raw 0–255 pixels.
Each check here is a heuristic over what tinspect recorded: the architecture and training
configuration in model.json (static checks) and the metrics, samples and activation
statistics of the checkpoints (dynamic checks). They say they are heuristics; thresholds
live in one place (``Thresholds``) and are documented in docs/diagnostics.md.

The same checks run post hoc (``tinspect check``), in the viewer, and inside the callback
after each checkpoint (written to findings.jsonl and printed as one line).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from tinspect import format as fmt
from tinspect.store import DataError, Layer, ModelLogs, Store, UoA, UoAError

SEVERITIES = ("warning", "error", "critical")


@dataclass(frozen=True)
class Thresholds:
    """Every number the checks compare with. Heuristics: adjust them to your data."""

    #: Inputs are "normalized" when every |x| is at most this (typical [-1, 1]; z-scores ±5).
    input_abs_max: float = 5.0
    #: Learning rates outside this range are unusual for the optimizers Keras ships.
    lr_min: float = 1e-7
    lr_max: float = 1e-2
    #: Plain SGD (with or without momentum) is commonly run at 0.01–0.1, up to about 1.
    lr_max_sgd: float = 1.0
    #: Dropout rates at or above this drop more than they keep.
    dropout_max: float = 0.5
    #: A ReLU layer is reported when at least this fraction of its units is never active on
    #: the recorded samples at the last two checkpoints (dead, not just quiet once).
    dead_fraction: float = 0.2
    #: ...on at least this many samples (on fewer, "never active" is weak evidence).
    dead_min_samples: int = 100
    #: A sigmoid/tanh unit is saturated when all its values are within this of a bound...
    saturation_margin: float = 0.01
    #: ...and the layer is reported when at least this fraction of its units is.
    saturated_fraction: float = 0.1
    #: Validation accuracy above training accuracy by this much...
    val_better_margin: float = 0.05
    #: ...in at least this fraction of epochs is suspicious. The first epochs are skipped:
    #: Keras' training accuracy is a running mean over an improving epoch, so validation
    #: measured at its end is legitimately higher early on.
    val_better_epochs: float = 0.5
    val_skip_epochs: int = 3
    #: ...and at least this many epochs are compared.
    val_min_epochs: int = 4
    #: Validation loss rising this many epochs in a row while training loss falls (one more
    #: than EarlyStopping's usual patience of 3, so its suggested fix silences it)...
    overfit_epochs: int = 4
    #: ...by at least this fraction of its value at the start of the rise.
    overfit_min_rise: float = 0.05
    #: Activation std differing by this factor between hidden layers.
    scale_ratio: float = 100.0
    #: A kernel's std growing or shrinking by this factor from initialization.
    weight_growth: float = 10.0


@dataclass(frozen=True)
class Finding:
    id: str
    severity: str
    title: str
    model: str  # display name
    model_id: str
    uoa: str  # unit path the finding points at
    explanation: str
    fix: str
    context: dict[str, Any] = field(default_factory=dict)
    epochs: tuple[int, ...] = ()

    @property
    def level(self) -> int:
        return SEVERITIES.index(self.severity)

    def line(self) -> str:
        """One line for logs and the terminal."""
        details = ", ".join(f"{k}={_short(v)}" for k, v in self.context.items())
        when = f" (epochs {_epochs(self.epochs)})" if self.epochs else ""
        return f"{self.severity}: {self.id} {self.uoa}: {self.title}{when}" + (
            f" [{details}]" if details else ""
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["epochs"] = list(self.epochs)
        return data


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return (
            "["
            + ", ".join(_short(v) for v in list(value)[:6])
            + ("…" if len(value) > 6 else "")
            + "]"
        )
    return str(value)


def _epochs(epochs: Iterable[int]) -> str:
    values = sorted(epochs)
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}–{values[-1]}"
    return ",".join(map(str, values))


@dataclass(frozen=True)
class Check:
    id: str
    severity: str
    kind: str  # "static" (architecture, configuration) or "dynamic" (metrics, data)
    title: str
    explanation: str
    fix: str
    run: Callable[[Context], list[Finding]]


def seed_unit_extremes(
    store: Store, model_id: str, epoch: int, layer: str, lo: np.ndarray, hi: np.ndarray
) -> None:
    """Give the checks a layer's per-unit (min, max) at ``epoch``, computed elsewhere.

    The recorder computes them while the activations are still in memory (a cheap float32
    reduction), so its in-training checks need not read every layer back from the file.
    Keyed by the checkpoint's identity like any cached result: a changed file misses.
    """
    data = store.arrays.checkpoint(model_id, epoch)
    data.remember(
        data.ref(fmt.layer_path(layer, fmt.ACTIVATIONS)), "unit_extremes", {"min": lo, "max": hi}
    )


@dataclass
class Context:
    """What a check may look at: one model of a store, the thresholds, the epochs to check."""

    store: Store
    model: ModelLogs
    thresholds: Thresholds
    epochs: list[int]
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.store.display_name(self.model)

    def path(self, layer: str | None = None, variable: str | None = None) -> str:
        return self.store.path(UoA(self.model.id, layer, variable))

    def finding(
        self,
        check: Check,
        uoa: str,
        title: str | None = None,
        epochs: Iterable[int] = (),
        **context: Any,
    ) -> Finding:
        return Finding(
            check.id, check.severity, title or check.title, self.name, self.model.id, uoa,
            check.explanation, check.fix, context, tuple(sorted(set(epochs))),
        )  # fmt: skip

    def samples(self, name: str) -> np.ndarray | None:
        """A data_samples array of the last readable checked epoch (small: the samples)."""
        key = f"samples/{name}"
        if key not in self._cache:
            value = None
            dataset = f"{fmt.SAMPLES_GROUP}/{name}"
            for epoch in reversed(self.epochs):  # the same samples at every checkpoint
                data = self.store.arrays.checkpoint(self.model.id, epoch)
                try:
                    if data.has(dataset):
                        value = data.read(dataset)
                        break
                    if self.store.arrays.damaged(self.model.id, epoch) is None:
                        break  # readable and without it: absent
                except DataError:
                    continue  # damaged: the store said so once; try an earlier checkpoint
            self._cache[key] = value
        return self._cache[key]

    def unit_stats(self, layer: str, epoch: int) -> dict[str, np.ndarray] | None:
        """Per-unit min and max of a layer's recorded activations (cached per identity)."""
        key = f"units/{layer}/{epoch}"
        if key not in self._cache:
            data = self.store.arrays.checkpoint(self.model.id, epoch)
            try:
                self._cache[key] = data.unit_extremes(
                    data.ref(fmt.layer_path(layer, fmt.ACTIVATIONS))
                )
            except (DataError, UoAError, ValueError):
                self._cache[key] = None
        return self._cache[key]

    def summary(self, name: str, epoch: int) -> Any:
        try:
            return self.store.arrays.checkpoint(self.model.id, epoch).summary_table().row(name)
        except DataError:
            return None


AFFINE = {
    "Dense",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "DepthwiseConv2D",
    "SeparableConv1D",
    "SeparableConv2D",
    "EinsumDense",
}
TRANSPARENT = {
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "GaussianNoise",
    "Flatten",
    "Reshape",
    "Permute",
}
ACTIVATION_LAYERS = {"Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax"}
MERGES = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"}
CROSS_ENTROPY = (
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "binary_crossentropy",
    "categoricalcrossentropy",
    "sparsecategoricalcrossentropy",
    "binarycrossentropy",
)
BOUNDED = {
    "sigmoid": (0.0, 1.0),
    "hard_sigmoid": (0.0, 1.0),
    "softmax": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
}
NON_NEGATIVE = {
    "relu",
    "relu6",
    "softplus",
    "sigmoid",
    "hard_sigmoid",
    "softmax",
    "exponential",
    "exp",
}
LATENT_NAMES = ("mean", "mu", "log_var", "logvar", "sigma", "std", "variance", "scale")


def nonlinearity(layer: Layer) -> str | None:
    """The layer's non-linearity: its ``activation`` or, for activation layers, their op."""
    if layer.activation and layer.activation != "linear":
        return layer.activation
    if layer.class_name in ACTIVATION_LAYERS:
        op = layer.operations[0].get("op") if layer.operations else None
        return str(op) if op and op != "linear" else None
    return None


def _successors(model: ModelLogs, name: str) -> list[str]:
    return list(model.graph.successors(name)) if name in model.graph else []


def _outputs(model: ModelLogs) -> list[str]:
    outputs = model.architecture.get("outputs") or []
    if outputs:
        return [o for o in outputs if isinstance(o, str)]
    return [n for n in model.graph if model.graph.out_degree(n) == 0]


# --- static checks -----------------------------------------------------------------------------
def check_missing_activation(ctx: Context) -> list[Finding]:
    model, out = ctx.model, []
    outputs = set(_outputs(model))
    for layer in model.layers:
        if layer.class_name not in AFFINE or nonlinearity(layer) or layer.name in outputs:
            continue
        nxt = _successors(model, layer.name)
        while len(nxt) == 1 and model.layer(nxt[0]).class_name in TRANSPARENT:
            nxt = _successors(model, nxt[0])
        if len(nxt) == 1 and model.layer(nxt[0]).class_name in AFFINE:
            out.append(
                ctx.finding(
                    MISSING_ACTIVATION,
                    ctx.path(layer.name),
                    f"{layer.name} → {nxt[0]} are stacked linear layers",
                    next_layer=nxt[0],
                )
            )
    return out


def check_missing_softmax(ctx: Context) -> list[Finding]:
    loss = ctx.model.training.get("loss")
    entries = (
        loss
        if isinstance(loss, list)
        else list(loss.values())
        if isinstance(loss, dict) and "name" not in loss
        else [loss]
    )
    out = []
    for output, entry in zip(_outputs(ctx.model), entries, strict=False):
        if not isinstance(entry, dict):
            continue
        name = str(entry.get("name", "")).lower()
        if not any(ce in name for ce in CROSS_ENTROPY) or entry.get("from_logits"):
            continue
        if nonlinearity(ctx.model.layer(output)) is None:
            out.append(
                ctx.finding(
                    MISSING_SOFTMAX,
                    ctx.path(output),
                    f"{name} on the linear outputs of {output}",
                    loss=name,
                )
            )
    return out


def check_stacked_activations(ctx: Context) -> list[Finding]:
    out = []
    for layer in ctx.model.layers:
        first = nonlinearity(layer)
        if not first:
            continue
        for nxt in _successors(ctx.model, layer.name):
            second = nonlinearity(ctx.model.layer(nxt))
            if second and ctx.model.layer(nxt).class_name in ACTIVATION_LAYERS:
                out.append(
                    ctx.finding(
                        STACKED_ACTIVATIONS,
                        ctx.path(nxt),
                        f"{first} of {layer.name} followed by {second} in {nxt}",
                        first=first,
                        second=second,
                    )
                )
    return out


def check_learning_rate(ctx: Context) -> list[Finding]:
    th, out = ctx.thresholds, []
    rates: dict[int, float] = {}
    optimizer = ctx.model.training.get("optimizer") or {}
    if isinstance(optimizer.get("learning_rate"), (int, float)):
        rates[0] = float(optimizer["learning_rate"])
    for row in ctx.model.metrics:
        value = row.get(fmt.METRIC_LEARNING_RATE)
        if isinstance(value, (int, float)):
            rates[int(row[fmt.METRIC_EPOCH])] = float(value)
    high = th.lr_max_sgd if optimizer.get("class_name") == "SGD" else th.lr_max
    bad = {e: r for e, r in rates.items() if not (th.lr_min <= r <= high)}
    if bad:
        negative = any(r <= 0 for r in bad.values())
        check = replace(LEARNING_RATE, severity="error") if negative else LEARNING_RATE
        values = sorted(set(bad.values()))
        out.append(
            ctx.finding(
                check,
                ctx.path(),
                f"learning rate {_short(values[0])} outside {th.lr_min:g}…{high:g}",
                epochs=[e for e in bad if e],
                learning_rate=values[0],
            )
        )
    return out


def check_high_dropout(ctx: Context) -> list[Finding]:
    out = []
    for layer in ctx.model.layers:
        rate = layer.config.get("rate")
        if (
            "Dropout" in layer.class_name
            and isinstance(rate, (int, float))
            and rate >= ctx.thresholds.dropout_max
        ):
            out.append(
                ctx.finding(
                    HIGH_DROPOUT,
                    ctx.path(layer.name),
                    f"dropout rate {rate:g} in {layer.name}",
                    rate=float(rate),
                )
            )
    return out


def check_image_shape_order(ctx: Context) -> list[Finding]:
    dataset = ctx.model.dataset
    shape = dataset.get("sample_shape")
    if dataset.get("input_kind") != "image" or not isinstance(shape, list) or len(shape) != 3:
        return []
    first, last = shape[0], shape[-1]
    if first in (1, 3, 4) and last not in (1, 3, 4):
        formats = {
            layer.config.get("data_format")
            for layer in ctx.model.layers
            if "Conv" in layer.class_name
        }
        if "channels_first" not in formats:
            return [
                ctx.finding(
                    IMAGE_SHAPE_ORDER,
                    ctx.path(),
                    f"images shaped {tuple(shape)} look channels-first (NCHW)",
                    sample_shape=shape,
                )
            ]
    return []


def check_input_not_float(ctx: Context) -> list[Finding]:
    dtypes = ctx.model.dataset.get("input_dtypes") or []
    bad = [
        d for d in dtypes if isinstance(d, str) and (d.startswith(("int", "uint")) or d == "bool")
    ]
    if bad:
        return [ctx.finding(INPUT_NOT_FLOAT, ctx.path(), f"inputs of dtype {bad[0]}", dtype=bad[0])]
    return []


def check_output_activation(ctx: Context) -> list[Finding]:
    kind = ctx.model.dataset.get("output_kind")
    outputs = _outputs(ctx.model)
    if kind not in ("regression", "reconstruction") or not outputs:
        return []
    layer = ctx.model.layer(outputs[0])
    act = nonlinearity(layer)
    target = (
        ctx.samples(fmt.SAMPLES_X) if kind == "reconstruction" else ctx.samples(fmt.SAMPLES_Y_LABEL)
    )
    if target is None or target.dtype.kind not in "fiu" or not act:
        return []
    finite = target[np.isfinite(target)] if target.dtype.kind == "f" else target
    if finite.size == 0:
        return []
    lo, hi = float(finite.min()), float(finite.max())
    bounds = BOUNDED.get(act) or ((0.0, math.inf) if act in NON_NEGATIVE else None)
    if bounds and (lo < bounds[0] - 1e-6 or hi > bounds[1] + 1e-6):
        return [
            ctx.finding(
                OUTPUT_ACTIVATION,
                ctx.path(layer.name),
                f"{act} output cannot reach targets in [{lo:.3g}, {hi:.3g}]",
                activation=act,
                target_min=lo,
                target_max=hi,
            )
        ]
    return []


# --- dynamic checks ----------------------------------------------------------------------------
def check_input_values(ctx: Context) -> list[Finding]:
    x = ctx.samples(fmt.SAMPLES_X)
    if x is None or x.dtype.kind not in "fiu":
        return []
    out = []
    values = x.astype(np.float64)
    finite = np.isfinite(values)
    epochs = ctx.epochs[-1:]
    if not finite.all():
        out.append(
            ctx.finding(
                INPUT_NAN,
                ctx.path(),
                f"{int((~finite).sum())} NaN/inf input values",
                epochs=epochs,
                count=int((~finite).sum()),
            )
        )
    if finite.any():
        lo, hi = float(values[finite].min()), float(values[finite].max())
        if max(abs(lo), abs(hi)) > ctx.thresholds.input_abs_max:
            out.append(
                ctx.finding(
                    INPUT_NOT_NORMALIZED,
                    ctx.path(),
                    f"inputs range over [{lo:.3g}, {hi:.3g}]",
                    epochs=epochs,
                    min=lo,
                    max=hi,
                    mean=float(values[finite].mean()),
                )
            )
    return out


def check_nan_loss(ctx: Context) -> list[Finding]:
    bad: dict[str, list[int]] = {}
    for row in ctx.model.metrics:
        for key, value in row.items():
            if "loss" in key and (
                value is None or (isinstance(value, float) and not math.isfinite(value))
            ):
                bad.setdefault(key, []).append(int(row[fmt.METRIC_EPOCH]))
    return [
        ctx.finding(NAN_LOSS, ctx.path(), f"{key} is NaN or infinite", epochs=epochs, metric=key)
        for key, epochs in bad.items()
    ]


def _series(model: ModelLogs, key: str) -> dict[int, float]:
    return {
        int(r[fmt.METRIC_EPOCH]): float(r[key])
        for r in model.metrics
        if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])
    }


def check_val_accuracy(ctx: Context) -> list[Finding]:
    th = ctx.thresholds
    for train_key, val_key in (
        ("accuracy", "val_accuracy"),
        ("acc", "val_acc"),
        ("sparse_categorical_accuracy", "val_sparse_categorical_accuracy"),
    ):
        train, val = _series(ctx.model, train_key), _series(ctx.model, val_key)
        common = sorted(set(train) & set(val))[th.val_skip_epochs :]
        if len(common) < th.val_min_epochs:
            continue
        # Dropout lowers training accuracy only: allow for half its largest rate.
        rates = [
            float(layer.config.get("rate", 0))
            for layer in ctx.model.layers
            if "Dropout" in layer.class_name and isinstance(layer.config.get("rate"), (int, float))
        ]
        margin = th.val_better_margin + 0.5 * max(rates, default=0.0)
        better = [e for e in common if val[e] > train[e] + margin]
        if len(better) >= th.val_better_epochs * len(common):
            gap = float(np.median([val[e] - train[e] for e in better]))
            return [
                ctx.finding(
                    SUSPICIOUS_VAL_ACCURACY,
                    ctx.path(),
                    f"{val_key} above {train_key} by {gap:.2f} in {len(better)}/{len(common)} epochs",
                    epochs=better,
                    median_gap=gap,
                )
            ]
    return []


def check_overfitting(ctx: Context) -> list[Finding]:
    train, val = _series(ctx.model, "loss"), _series(ctx.model, "val_loss")
    epochs = sorted(set(train) & set(val))
    run_start: int | None = None
    best: list[Any] = []
    th = ctx.thresholds
    for prev, cur in itertools.pairwise(epochs):
        if val[cur] > val[prev] and train[cur] < train[prev]:
            run_start = prev if run_start is None else run_start
            span = [e for e in epochs if run_start < e <= cur]
            rise = (val[cur] - val[run_start]) / max(abs(val[run_start]), 1e-12)
            if len(span) > len(best) and rise >= th.overfit_min_rise:
                best = span
        else:
            run_start = None
    if len(best) >= th.overfit_epochs:
        return [
            ctx.finding(
                OVERFITTING,
                ctx.path(),
                f"val_loss rose for {len(best)} epochs while loss fell",
                epochs=best,
                val_loss_min=min(val.values()),
            )
        ]
    return []


def check_dead_units(ctx: Context) -> list[Finding]:
    out: list[Finding] = []
    epoch = ctx.epochs[-1] if ctx.epochs else None
    if int(ctx.model.dataset.get("n_samples") or 0) < ctx.thresholds.dead_min_samples:
        return out
    recorded = set(ctx.model.recording.get("layers") or [])
    for layer in ctx.model.layers:
        if (
            epoch is None
            or layer.name not in recorded
            or nonlinearity(layer) not in ("relu", "relu6")
        ):
            continue
        stats = ctx.unit_stats(layer.name, epoch)
        if stats is None or not len(stats["max"]):
            continue
        dead_mask = stats["max"] <= 0
        seen = [epoch]
        earlier = [e for e in ctx.model.epochs if e < epoch]
        if earlier:  # dead at the previous checkpoint too: a dead unit does not come back
            before = ctx.unit_stats(layer.name, earlier[-1])
            if before is not None and len(before["max"]) == len(dead_mask):
                dead_mask &= before["max"] <= 0
                seen.append(earlier[-1])
        dead = np.flatnonzero(dead_mask)
        if len(dead) >= max(1, ctx.thresholds.dead_fraction * len(stats["max"])):
            out.append(
                ctx.finding(
                    DEAD_UNITS,
                    ctx.path(layer.name),
                    f"{len(dead)}/{len(stats['max'])} units of {layer.name} never active",
                    epochs=seen,
                    units=dead.tolist(),
                    fraction=len(dead) / len(stats["max"]),
                )
            )
    return out


def check_saturated_units(ctx: Context) -> list[Finding]:
    out, epoch = [], ctx.epochs[-1] if ctx.epochs else None
    recorded = set(ctx.model.recording.get("layers") or [])
    margin = ctx.thresholds.saturation_margin
    outputs = set(_outputs(ctx.model))  # a confident output sits at its bound by design
    for layer in ctx.model.layers:
        if layer.name in outputs:
            continue
        act = nonlinearity(layer)
        if (
            epoch is None
            or layer.name not in recorded
            or act not in ("sigmoid", "tanh", "hard_sigmoid")
        ):
            continue
        stats = ctx.unit_stats(layer.name, epoch)
        if stats is None or not len(stats["max"]):
            continue
        lo, hi = BOUNDED[act]
        span = hi - lo
        saturated = (stats["min"] >= hi - margin * span) | (stats["max"] <= lo + margin * span)
        if saturated.sum() >= max(1, ctx.thresholds.saturated_fraction * len(saturated)):
            out.append(
                ctx.finding(
                    SATURATED_UNITS,
                    ctx.path(layer.name),
                    f"{int(saturated.sum())}/{len(saturated)} {act} units of {layer.name} pinned at a bound",
                    epochs=[epoch],
                    units=np.flatnonzero(saturated).tolist(),
                )
            )
    return out


def _latent_layers(model: ModelLogs) -> list[str]:
    """Layers that parameterize a distribution: inputs of a non-merge layer taking ≥ 2 inputs
    of the same shape (a sampling layer), or named like a mean / log-variance."""
    found: list[str] = []
    for layer in model.layers:
        if (
            len(layer.inbound) >= 2
            and layer.class_name not in MERGES
            and layer.class_name not in AFFINE
        ):
            shapes = {model.layer(i).output_shape for i in layer.inbound if i in model.graph}
            if len(shapes) == 1:
                found += [i for i in layer.inbound if i not in found]
    for layer in model.layers:
        lowered = layer.name.lower()
        if (
            layer.class_name in AFFINE
            and any(n in lowered for n in LATENT_NAMES)
            and layer.name not in found
        ):
            found.append(layer.name)
    return found


def check_one_sided_latent(ctx: Context) -> list[Finding]:
    out, epoch = [], ctx.epochs[-1] if ctx.epochs else None
    for name in _latent_layers(ctx.model):
        act = nonlinearity(ctx.model.layer(name))
        if act not in NON_NEGATIVE:
            continue
        context: dict[str, Any] = {"activation": act}
        if epoch is not None:
            summary = ctx.summary(fmt.summary_row_name(name, fmt.ACTIVATIONS), epoch)
            if summary is not None and summary["finite"] > 0:
                context.update(min=summary["min"], zero_fraction=summary["zero_fraction"])
        out.append(
            ctx.finding(
                ONE_SIDED_LATENT,
                ctx.path(name),
                f"{name} parameterizes a distribution but its {act} makes it ≥ 0",
                epochs=[epoch] if epoch is not None else [],
                **context,
            )
        )
    return out


def check_scale(ctx: Context) -> list[Finding]:
    out: list[Finding] = []
    th = ctx.thresholds
    if not ctx.epochs:
        return out
    last, first = ctx.epochs[-1], ctx.model.epochs[0] if ctx.model.epochs else None
    stds = []
    outputs = set(_outputs(ctx.model))
    for layer in ctx.model.layers:
        if layer.class_name in AFFINE and layer.name not in outputs:
            s = ctx.summary(fmt.summary_row_name(layer.name, fmt.ACTIVATIONS), last)
            if s is not None and s["finite"] > 0 and s["std"] > 0:
                stds.append((layer.name, s["std"]))
    if len(stds) >= 2:
        (lo_name, lo), (hi_name, hi) = min(stds, key=lambda t: t[1]), max(stds, key=lambda t: t[1])
        if hi / lo > th.scale_ratio:
            out.append(
                ctx.finding(
                    SCALE,
                    ctx.path(hi_name),
                    f"activation std ranges from {lo:.3g} ({lo_name}) to {hi:.3g} ({hi_name})",
                    epochs=[last],
                    ratio=hi / lo,
                )
            )
    if first is not None and first != last:
        for layer in ctx.model.layers:
            if "kernel" not in layer.variable_names:
                continue
            row = fmt.summary_row_name(layer.name, f"{fmt.WEIGHTS_GROUP}/kernel")
            a, b = ctx.summary(row, first), ctx.summary(row, last)
            if a is None or b is None or not (a["std"] > 0):
                continue
            if b["finite"] < b["count"]:
                out.append(
                    replace(
                        ctx.finding(
                            SCALE,
                            ctx.path(layer.name, "kernel"),
                            f"{layer.name} kernel has NaN/inf weights",
                            epochs=[last],
                        ),
                        severity="critical",
                    )
                )
            elif (
                b["std"] / a["std"] > th.weight_growth or b["std"] / a["std"] < 1 / th.weight_growth
            ):
                out.append(
                    ctx.finding(
                        SCALE,
                        ctx.path(layer.name, "kernel"),
                        f"{layer.name} kernel std changed ×{b['std'] / a['std']:.3g} since initialization",
                        epochs=[last],
                        ratio=b["std"] / a["std"],
                    )
                )
    return out


def _check(
    check_id: str,
    severity: str,
    kind: str,
    title: str,
    explanation: str,
    fix: str,
    run: Callable[[Context], list[Finding]],
) -> Check:
    return Check(check_id, severity, kind, title, explanation, fix, run)


MISSING_ACTIVATION = _check(
    "missing-activation",
    "warning",
    "static",
    "stacked linear layers",
    "Two affine layers without a non-linearity between them compose to one linear map: the extra layer adds parameters but no expressive power.",
    'layers.Dense(64, activation="relu")  # give the first layer a non-linearity',
    check_missing_activation,
)
MISSING_SOFTMAX = _check(
    "missing-softmax",
    "error",
    "static",
    "cross-entropy on unnormalized outputs",
    "A cross-entropy loss with from_logits=False expects probabilities; linear outputs are logits, so the loss clips them and gradients are wrong.",
    'loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)  # or activation="softmax" on the output',
    check_missing_softmax,
)
STACKED_ACTIVATIONS = _check(
    "stacked-activations",
    "warning",
    "static",
    "an activation applied twice",
    "Applying a non-linearity to the output of another (e.g. relu after relu, softmax after softmax) is at best a no-op and at worst squashes the signal.",
    'layers.Dense(64, activation="relu")  # and remove the extra Activation layer',
    check_stacked_activations,
)
LEARNING_RATE = _check(
    "learning-rate-range",
    "warning",
    "static",
    "learning rate out of the usual range",
    "Adam/SGD/RMSprop train well with learning rates between about 1e-7 and 1e-2; larger rates diverge or oscillate, smaller ones barely move, negative ones ascend.",
    "optimizer=keras.optimizers.Adam(learning_rate=1e-3)",
    check_learning_rate,
)
HIGH_DROPOUT = _check(
    "high-dropout",
    "warning",
    "static",
    "high dropout rate",
    "Keras' rate is the fraction DROPPED: 0.5 or more removes half of the signal or more at every step, which slows or stalls learning (a keep probability mistaken for a rate?).",
    "layers.Dropout(0.2)",
    check_high_dropout,
)
IMAGE_SHAPE_ORDER = _check(
    "image-shape-order",
    "warning",
    "static",
    "channels-first images for a channels-last model",
    "Keras convolutions default to channels_last (N, H, W, C); images stored as (N, C, H, W) are convolved over the wrong axes.",
    "x = np.transpose(x, (0, 2, 3, 1))  # NCHW → NHWC",
    check_image_shape_order,
)
INPUT_NOT_FLOAT = _check(
    "input-not-float",
    "warning",
    "static",
    "integer inputs",
    "Integer inputs (e.g. uint8 pixels) are cast by the first layer but usually also unscaled; they are a sign that preprocessing was skipped.",
    'x = x.astype("float32") / 255.0',
    check_input_not_float,
)
OUTPUT_ACTIVATION = _check(
    "output-activation-mismatch",
    "error",
    "static",
    "output activation cannot reach the targets",
    "A bounded output activation (sigmoid, softmax, tanh, relu) can never produce targets outside its range, so the loss has a floor it cannot go below.",
    "layers.Dense(n_outputs)  # linear output for unbounded targets, or rescale the targets",
    check_output_activation,
)
INPUT_NAN = _check(
    "input-nan",
    "critical",
    "dynamic",
    "NaN or infinite inputs",
    "A single NaN input turns every activation and the loss into NaN.",
    "x = np.nan_to_num(x)  # or drop / impute the broken samples",
    check_input_values,
)
INPUT_NOT_NORMALIZED = _check(
    "input-not-normalized",
    "warning",
    "dynamic",
    "inputs not normalized",
    "Networks train best with inputs of similar, small scale (typically [-1, 1] or z-scores); large raw values saturate units and need tiny learning rates.",
    "x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-7)  # or layers.Normalization()",
    lambda ctx: [],
)
NAN_LOSS = _check(
    "nan-loss",
    "critical",
    "dynamic",
    "NaN loss",
    "Once the loss is NaN the weights are NaN too; typical causes are a too high learning rate, log(0) in a custom loss or NaN inputs.",
    "optimizer=keras.optimizers.Adam(learning_rate=1e-4, clipnorm=1.0)",
    check_nan_loss,
)
SUSPICIOUS_VAL_ACCURACY = _check(
    "suspicious-val-accuracy",
    "warning",
    "dynamic",
    "validation better than training",
    "Validation accuracy consistently above training accuracy hints at a leak (validation samples in the training set, or labels in the inputs), or at heavy regularization active only in training.",
    "# split before any preprocessing that looks at all the data; check for duplicate samples",
    check_val_accuracy,
)
OVERFITTING = _check(
    "overfitting",
    "warning",
    "dynamic",
    "overfitting",
    "Training loss still falling while validation loss rises means the model memorizes the training set.",
    "callbacks=[keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)]",
    check_overfitting,
)
DEAD_UNITS = _check(
    "dead-units",
    "warning",
    "dynamic",
    "dead ReLU units",
    "A ReLU unit whose pre-activation is negative for every sample outputs 0 and gets no gradient: it never recovers.",
    'layers.Dense(64, activation="leaky_relu")  # or a lower learning rate, He initialization',
    check_dead_units,
)
SATURATED_UNITS = _check(
    "saturated-units",
    "warning",
    "dynamic",
    "saturated sigmoid/tanh units",
    "Units pinned at the bounds of sigmoid or tanh have near-zero gradients and stop learning.",
    "layers.BatchNormalization()  # before the activation, or normalize the inputs",
    check_saturated_units,
)
ONE_SIDED_LATENT = _check(
    "one-sided-latent",
    "error",
    "dynamic",
    "one-sided distribution parameters",
    "A layer that parameterizes a distribution (a VAE's mean or log-variance) must be able to take negative values; a ReLU (or another non-negative activation) on it makes the mean ≥ 0 and the variance ≥ 1, silently.",
    'z_mean = layers.Dense(latent_dim, name="z_mean")(h)  # no activation',
    check_one_sided_latent,
)
SCALE = _check(
    "exploding-or-vanishing",
    "warning",
    "dynamic",
    "exploding or vanishing scale",
    "Activations or weights whose scale grows or collapses across layers or epochs make gradients explode or vanish.",
    "layers.BatchNormalization()  # or better initialization, gradient clipping, a lower learning rate",
    check_scale,
)

CHECKS: tuple[Check, ...] = (
    INPUT_NOT_NORMALIZED, INPUT_NAN, NAN_LOSS, INPUT_NOT_FLOAT, IMAGE_SHAPE_ORDER, SUSPICIOUS_VAL_ACCURACY,
    MISSING_ACTIVATION, MISSING_SOFTMAX, STACKED_ACTIVATIONS, LEARNING_RATE, OVERFITTING, HIGH_DROPOUT,
    DEAD_UNITS, SATURATED_UNITS, ONE_SIDED_LATENT, OUTPUT_ACTIVATION, SCALE,
)  # fmt: skip
BY_ID = {check.id: check for check in CHECKS}
# input-nan and input-not-normalized share one pass over the samples (run by input-nan).


def diagnose_model(
    store: Store,
    model_id: str,
    thresholds: Thresholds | None = None,
    kinds: tuple[str, ...] = ("static", "dynamic"),
    epochs: list[int] | None = None,
) -> list[Finding]:
    """Every finding for one model; checks that cannot read their data are skipped.

    Checkpoints that cannot be read are left out of every check (the store records one
    Problem per damaged checkpoint, so it is said once, not once per check); the checks run
    on the other checkpoints.
    """
    model = store.model_by_id(model_id)
    wanted = epochs if epochs is not None else model.epochs
    ctx = Context(store, model, thresholds or Thresholds(), _readable(store, model, wanted))
    findings: list[Finding] = []
    for check in CHECKS:
        if check.kind not in kinds:
            continue
        try:
            findings += check.run(ctx)
        except (DataError, UoAError, KeyError, ValueError):
            continue  # a check without its data says nothing; problems are the store's job
    return sorted(findings, key=lambda f: (-f.level, f.uoa, f.id))


def _readable(store: Store, model: ModelLogs, epochs: list[int]) -> list[int]:
    """``epochs`` whose checkpoint opens (a damaged one is marked and reported by the store);
    checkpoints found damaged later, while a check reads them, read as absent data."""
    out = []
    for epoch in epochs:
        try:
            store.arrays.checkpoint(model.id, epoch).attrs()
        except DataError:
            continue
        out.append(epoch)
    return out


def diagnose(store: Store, thresholds: Thresholds | None = None) -> list[Finding]:
    """Findings of every model, model by model in tree order."""
    out: list[Finding] = []
    for model in store.ordered_models():
        out += diagnose_model(store, model.id, thresholds)
    return out
