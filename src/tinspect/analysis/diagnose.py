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
from typing import TYPE_CHECKING, Any

from tinspect import format as fmt
from tinspect.store import DataError, Layer, ModelLogs, Store, UoA, UoAError

if TYPE_CHECKING:
    import numpy as np
else:
    from tinspect.lazy import numpy as np

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
    #: A ReLU layer is reported when at least this fraction of its units is dead: never
    #: active on the recorded samples at the latest checked checkpoint and the one before,
    #: with incoming weights that did not move in between (no gradient). Healthy nets have
    #: some: the demo's clean conv net keeps 12/64 (19 %) of its Dense layer dead from epoch
    #: 1 on and still reaches 97 % validation accuracy.
    dead_fraction: float = 0.25
    #: A unit's weights "did not move" when no kernel or bias value of it changed by more
    #: than this fraction of its largest weight (Adam's momentum moves a just-dead unit a
    #: little for a few dozen steps; a learning unit moves by 1-10 % per epoch).
    dead_weight_change: float = 1e-3
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
    #: UMLAUT's "too good": after ``val_skip_epochs``, validation accuracy above this and
    #: above training accuracy...
    too_good_accuracy: float = 0.95
    #: ...by more than this (Keras' training accuracy is a running mean over the epoch, so a
    #: model still improving shows validation a little above it: the demo's clean conv net
    #: has 97.8 % against 97.6 % at epoch 7)...
    too_good_margin: float = 0.01
    #: ...in at least this many epochs (one epoch is noise on a few hundred samples).
    too_good_epochs: int = 2
    #: Validation loss rising this many epochs in a row while training loss falls (more
    #: than EarlyStopping's usual patience of 3, so its suggested fix silences it; the demo's
    #: clean conv net has a 4-epoch bump, epochs 9-12, before a new minimum at epoch 15)...
    overfit_epochs: int = 5
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

    def context_items(self) -> list[tuple[str, str]]:
        """The measured context as ``(label, value)`` texts, in the order the check gave them.

        What the report and the viewer show beside a finding, so a reader sees the numbers
        behind it (``min 0``, ``zero fraction 62 %``, ``units 3, 7, 12 (3 of 32)``) without
        ``--json``. Fractions read as percentages, unit lists are shortened with their count.
        """
        return [(_label(key), _describe(key, value)) for key, value in self.context.items()]

    def context_text(self) -> str:
        """``context_items`` as one line: ``min 0 · zero fraction 62 %``."""
        return " · ".join(f"{label} {value}" for label, value in self.context_items())

    def line(self) -> str:
        """One line for logs and the terminal."""
        details = self.context_text()
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


#: Context keys whose label is not just the key with spaces.
CONTEXT_LABELS = {
    "fraction": "inactive",
    "median_gap": "median gap",
    "val_loss_min": "lowest val_loss",
    "since_epoch": "since epoch",
    "n_units": "layer units",
}


def _label(key: str) -> str:
    return CONTEXT_LABELS.get(key, key.replace("_", " "))


def _describe(key: str, value: Any) -> str:
    """A context value as a reader wants it: percentages, short unit lists, 3 digits."""
    if isinstance(value, float) and (key == "fraction" or key.endswith("_fraction")):
        return f"{100 * value:.3g} %"
    if isinstance(value, float) and key == "ratio":
        return f"×{value:.3g}"
    if key == "units" and isinstance(value, (list, tuple)):
        shown = ", ".join(map(str, list(value)[:8]))
        return shown + (f" … ({len(value)} in all)" if len(value) > 8 else "")
    return _short(value)


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
        fix: str | None = None,
        **context: Any,
    ) -> Finding:
        """A finding of ``check``; ``fix`` is the check's snippet filled in for this program
        (its layer names and arguments), the check's generic one when not given."""
        return Finding(
            check.id, check.severity, title or check.title, self.name, self.model.id, uoa,
            check.explanation, fix or check.fix, context, tuple(sorted(set(epochs))),
        )  # fmt: skip

    @property
    def functional(self) -> bool:
        """Whether fixes are written as functional-API calls (``h = layers.X(...)(x)``)."""
        return self.model.architecture.get("class_name") != "Sequential"

    def layer_code(self, layer: Layer, **changes: Any) -> str:
        """The line that builds ``layer`` as written in this program, with ``changes``."""
        return layer_statement(layer, functional=self.functional, **changes)

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

    def weights(self, layer: str, variable: str, epoch: int) -> np.ndarray | None:
        """One variable of a layer at a checkpoint (a kernel or a bias: small), or None."""
        key = f"weights/{layer}/{variable}/{epoch}"
        if key not in self._cache:
            name = fmt.layer_path(layer, fmt.WEIGHTS_GROUP, fmt.h5_key(variable))
            data = self.store.arrays.checkpoint(self.model.id, epoch)
            try:
                self._cache[key] = data.read(name) if data.has(name) else None
            except (DataError, UoAError, KeyError, OSError, ValueError):
                self._cache[key] = None
        value = self._cache[key]
        return value if isinstance(value, np.ndarray) else None

    def moving_units(self, layer: Layer, a: int, b: int) -> np.ndarray | None:
        """Per output unit (last axis), whether its kernel or bias changed between epochs
        ``a`` and ``b`` by more than ``dead_weight_change`` of its largest weight: a unit that
        learns gets gradient, so it is active on some training sample. None without weights.
        """
        change: np.ndarray | None = None
        scale: np.ndarray | None = None
        for variable in ("kernel", "bias"):
            if variable not in layer.variable_names:
                continue
            before = self.weights(layer.name, variable, a)
            after = self.weights(layer.name, variable, b)
            if before is None or after is None or before.shape != after.shape or before.ndim < 1:
                continue
            units = before.shape[-1]
            if change is not None and len(change) != units:
                continue
            step = np.abs(after - before).reshape(-1, units).max(axis=0)
            size = np.abs(before).reshape(-1, units).max(axis=0)
            change = step if change is None else np.maximum(change, step)
            scale = size if scale is None else np.maximum(scale, size)
        if change is None or scale is None:
            return None
        # One scale per unit over kernel and bias: a zero-initialized bias has none of its own.
        return np.asarray(change > self.thresholds.dead_weight_change * np.maximum(scale, 1e-12))

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


# --- fixes written in the program's own terms ---------------------------------------------------
#: Constructor arguments one writes positionally, in order.
POSITIONAL: dict[str, tuple[str, ...]] = {
    "Dense": ("units",),
    "EinsumDense": ("equation", "output_shape"),
    "DepthwiseConv1D": ("kernel_size",),
    "DepthwiseConv2D": ("kernel_size",),
    "Dropout": ("rate",),
    "SpatialDropout1D": ("rate",),
    "SpatialDropout2D": ("rate",),
    "SpatialDropout3D": ("rate",),
    "Activation": ("activation",),
    **{
        f"{kind}{dims}D{transpose}": ("filters", "kernel_size")
        for kind in ("Conv", "SeparableConv")
        for dims in (1, 2, 3)
        for transpose in ("", "Transpose")
    },
}
#: Keyword arguments shown in a fix when they differ from Keras' default, in this order.
KEYWORD_DEFAULTS: dict[str, Any] = {
    "activation": "linear",
    "strides": 1,
    "padding": "valid",
    "data_format": "channels_last",
    "dilation_rate": 1,
    "groups": 1,
    "depth_multiplier": 1,
    "use_bias": True,
    "kernel_initializer": "GlorotUniform",
    "bias_initializer": "Zeros",
    "kernel_regularizer": None,
    "bias_regularizer": None,
    "activity_regularizer": None,
}
#: Namespaces of the Keras objects that appear serialized in a layer config.
OBJECT_MODULES = {
    "kernel_initializer": "keras.initializers",
    "bias_initializer": "keras.initializers",
    "kernel_regularizer": "keras.regularizers",
    "bias_regularizer": "keras.regularizers",
    "activity_regularizer": "keras.regularizers",
}


def _same(value: Any) -> Any:
    """``(3, 3)`` and ``3`` are the same argument to Keras; compare and print the short one."""
    if isinstance(value, (list, tuple)) and value and all(v == value[0] for v in value):
        return value[0]
    return value


def _is_default(key: str, value: Any) -> bool:
    default = KEYWORD_DEFAULTS[key]
    if isinstance(value, dict):
        return value.get("class_name") == default
    if key == "activation":
        return value in (None, "linear")
    if key == "data_format":
        return value in (None, default)
    return _same(value) == default


def python_literal(value: Any, key: str = "") -> str:
    """A config value as it is written in a Keras program (initializers as constructors)."""
    if isinstance(value, dict) and "class_name" in value:
        module = OBJECT_MODULES.get(key, "keras")
        config = value.get("config") or {}
        args = ", ".join(
            f"{k}={python_literal(v)}" for k, v in config.items() if v is not None and k != "seed"
        )
        return f"{module}.{value['class_name']}({args})"
    value = _same(value)
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return (
            "("
            + ", ".join(python_literal(v) for v in value)
            + ("," if len(value) == 1 else "")
            + ")"
        )
    if isinstance(value, float):
        return f"{value:g}" if "e" in f"{value:g}" or "." in f"{value:g}" else f"{value:g}.0"
    return repr(value)


def layer_call(layer: Layer, **changes: Any) -> str:
    """``layers.Dense(32, activation="relu", name="hidden_2")``: the layer as its program
    built it (positional arguments, keyword arguments that differ from Keras' defaults, its
    name), with ``changes`` applied (a change to ``None`` removes the argument).

    Fixes are written from this, so a fix names the user's own layer and its real arguments
    instead of a generic ``Dense(64, ...)``.
    """
    config = {**layer.config, **changes}
    positional = POSITIONAL.get(layer.class_name, ())
    args = [python_literal(config[k], k) for k in positional if config.get(k) is not None]
    for key in KEYWORD_DEFAULTS:
        value = config.get(key)
        if key in positional or value is None or (key not in changes and _is_default(key, value)):
            continue
        args.append(f"{key}={python_literal(value, key)}")
    for key, value in changes.items():
        if key not in KEYWORD_DEFAULTS and key not in positional and value is not None:
            args.append(f"{key}={python_literal(value, key)}")
    args.append(f"name={python_literal(layer.name)}")
    return f"layers.{layer.class_name}({', '.join(args)})"


def layer_statement(layer: Layer, *, functional: bool = True, **changes: Any) -> str:
    """``layer_call`` as a statement of the program: ``z_mean = layers.Dense(...)(h)`` in a
    functional model whose names are Python identifiers, the bare call in a Sequential."""
    call = layer_call(layer, **changes)
    names = [layer.name, *layer.inbound]
    if not functional or not layer.inbound or not all(n.isidentifier() for n in names):
        return call
    inputs = layer.inbound[0] if len(layer.inbound) == 1 else f"[{', '.join(layer.inbound)}]"
    return f"{layer.name} = {call}({inputs})"


LOSS_CLASSES = {
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "binary_crossentropy": "BinaryCrossentropy",
    "binary_focal_crossentropy": "BinaryFocalCrossentropy",
    "categorical_focal_crossentropy": "CategoricalFocalCrossentropy",
}


def loss_class(name: str) -> str:
    """The Keras loss class of a recorded loss name (``sparse_categorical_crossentropy`` or
    the class name itself)."""
    lowered = name.lower()
    for key, cls in LOSS_CLASSES.items():
        if lowered in (key, cls.lower()):
            return cls
    return name


def nonlinearity(layer: Layer) -> str | None:
    """The layer's non-linearity: its ``activation`` or, for activation layers, their op."""
    if layer.activation and layer.activation != "linear":
        return layer.activation
    if layer.class_name in ACTIVATION_LAYERS:
        op = layer.operations[0].get("op") if layer.operations else None
        return str(op) if op and op != "linear" else None
    return None


# The checks walk the layer graph through ``ModelLogs.successors``, not networkx: they also
# run in the recorder's writer thread during training.


def _successors(model: ModelLogs, name: str) -> list[str]:
    return list(model.successors.get(name, []))


def _outputs(model: ModelLogs) -> list[str]:
    outputs = model.architecture.get("outputs") or []
    if outputs:
        return [o for o in outputs if isinstance(o, str)]
    return [name for name, fed in model.successors.items() if not fed]


# --- static checks -----------------------------------------------------------------------------
#: Layers that keep a signal linear: between two affine layers they do not add the
#: non-linearity the second needs (BatchNormalization and average pooling are affine maps too).
LINEAR_THROUGH = TRANSPARENT | {
    "BatchNormalization",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
}


def check_missing_activation(ctx: Context) -> list[Finding]:
    model, out = ctx.model, []
    outputs = set(_outputs(model))
    for layer in model.layers:
        if layer.class_name not in AFFINE or nonlinearity(layer) or layer.name in outputs:
            continue
        nxt, through = _successors(model, layer.name), []
        while len(nxt) == 1 and model.layer(nxt[0]).class_name in LINEAR_THROUGH:
            through.append(nxt[0])
            nxt = _successors(model, nxt[0])
        if len(nxt) == 1 and model.layer(nxt[0]).class_name in AFFINE:
            via = f" (through {', '.join(through)})" if through else ""
            context: dict[str, Any] = {"next_layer": nxt[0]}
            if through:
                context["through"] = through
            out.append(
                ctx.finding(
                    MISSING_ACTIVATION,
                    ctx.path(layer.name),
                    f"{layer.name} → {nxt[0]} are stacked linear layers{via}",
                    fix=ctx.layer_code(layer, activation="relu")
                    + f"\n# a non-linearity between {layer.name} and {nxt[0]}",
                    **context,
                )
            )
    return out


def _loss_entries(ctx: Context) -> list[tuple[str, dict[str, Any]]]:
    """(output layer, loss entry) pairs of the recorded loss: one loss, a list or a dict."""
    loss = ctx.model.training.get("loss")
    outputs = _outputs(ctx.model)
    if isinstance(loss, dict) and "name" not in loss:
        pairs = [(o, loss.get(o)) for o in outputs] if set(loss) <= set(outputs) else []
        pairs = pairs or list(zip(outputs, loss.values(), strict=False))
    else:
        entries = loss if isinstance(loss, list) else [loss]
        pairs = list(zip(outputs, entries, strict=False))
    return [(o, e) for o, e in pairs if isinstance(e, dict) and o in ctx.model.successors]


def _loss_name(entry: dict[str, Any]) -> str:
    return str(entry.get("name", "")).lower()


def _is_cross_entropy(entry: dict[str, Any]) -> bool:
    name = _loss_name(entry)
    return any(ce in name for ce in CROSS_ENTROPY) or "crossentropy" in name.replace("_", "")


def _loss_code(entry: dict[str, Any], **changes: Any) -> str:
    """``loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)`` for ``entry``."""
    args = ", ".join(f"{k}={python_literal(v)}" for k, v in changes.items())
    return f"loss=keras.losses.{loss_class(str(entry.get('name', '')))}({args})"


def check_missing_softmax(ctx: Context) -> list[Finding]:
    out = []
    for output, entry in _loss_entries(ctx):
        if not _is_cross_entropy(entry) or entry.get("from_logits"):
            continue
        layer = ctx.model.layer(output)
        if nonlinearity(layer) is None:
            squash = "sigmoid" if "binary" in _loss_name(entry) else "softmax"
            out.append(
                ctx.finding(
                    MISSING_SOFTMAX,
                    ctx.path(output),
                    f"{_loss_name(entry)} on the linear outputs of {output}",
                    fix=f"{_loss_code(entry, from_logits=True)}\n"
                    f"# or: {ctx.layer_code(layer, activation=squash)}",
                    loss=_loss_name(entry),
                )
            )
    return out


def check_double_softmax(ctx: Context) -> list[Finding]:
    out = []
    for output, entry in _loss_entries(ctx):
        if not _is_cross_entropy(entry) or not entry.get("from_logits"):
            continue
        # The output's own activation, or an activation layer that ends the model.
        layer = ctx.model.layer(output)
        act = nonlinearity(layer)
        if act not in ("softmax", "sigmoid", "log_softmax"):
            continue
        producer = layer
        if layer.class_name in ACTIVATION_LAYERS and len(layer.inbound) == 1:
            producer = ctx.model.layer(layer.inbound[0])
        fix_layer = (
            f"# and remove {layer.name}: its {producer.name} gives the logits"
            if producer is not layer
            else ctx.layer_code(layer, activation=None) + "  # logits"
        )
        out.append(
            ctx.finding(
                DOUBLE_SOFTMAX,
                ctx.path(output),
                f"{act} output {output} fed to {_loss_name(entry)} with from_logits=True",
                fix=f"{_loss_code(entry, from_logits=False)}\n# or keep from_logits=True and: "
                + fix_layer,
                activation=act,
                loss=_loss_name(entry),
            )
        )
    return out


#: Losses meant for class labels or probabilities (substrings of the recorded loss name).
CLASSIFICATION_LOSSES = ("crossentropy", "hinge", "kl_divergence", "kld", "poisson_nll")


def check_classification_loss(ctx: Context) -> list[Finding]:
    if ctx.model.dataset.get("output_kind") != "regression":
        return []
    out = []
    for output, entry in _loss_entries(ctx):
        name = _loss_name(entry).replace("_", "")
        if not any(c.replace("_", "") in name for c in CLASSIFICATION_LOSSES):
            continue
        out.append(
            ctx.finding(
                CLASSIFICATION_LOSS,
                ctx.path(output),
                f"{_loss_name(entry)} on the regression output {output}",
                fix='loss="mse"  # or "mae", keras.losses.Huber() for targets with outliers\n'
                f"# with a linear output: {ctx.layer_code(ctx.model.layer(output), activation=None)}",
                loss=_loss_name(entry),
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
                        fix=f"{ctx.layer_code(layer)}\n# and remove the {second} layer {nxt}",
                        first=first,
                        second=second,
                    )
                )
    return out


def _optimizer_code(optimizer: dict[str, Any], learning_rate: float, **extra: Any) -> str:
    """``optimizer=keras.optimizers.Adam(learning_rate=0.001)`` with the program's class and
    its non-default momentum (what a user would keep)."""
    cls = str(optimizer.get("class_name") or "Adam")
    config = optimizer.get("config") or {}
    args = [f"learning_rate={learning_rate:g}"]
    if isinstance(config.get("momentum"), (int, float)) and config["momentum"]:
        args.append(f"momentum={config['momentum']:g}")
    args += [f"{k}={python_literal(v)}" for k, v in extra.items()]
    return f"optimizer=keras.optimizers.{cls}({', '.join(args)})"


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
    sgd = optimizer.get("class_name") == "SGD"
    high = th.lr_max_sgd if sgd else th.lr_max
    bad = {e: r for e, r in rates.items() if not (th.lr_min <= r <= high)}
    if bad:
        negative = any(r <= 0 for r in bad.values())
        check = replace(LEARNING_RATE, severity="error") if negative else LEARNING_RATE
        values = sorted(set(bad.values()))
        usual = 0.01 if sgd else 1e-3
        out.append(
            ctx.finding(
                check,
                ctx.path(),
                f"learning rate {_short(values[0])} outside {th.lr_min:g}…{high:g}",
                epochs=[e for e in bad if e],
                fix=_optimizer_code(optimizer, usual)
                + f"  # was {_short(values[0])}; the usual range is {th.lr_min:g}…{high:g}",
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
            keep = round(1 - float(rate), 2)
            suggestion = keep if keep < ctx.thresholds.dropout_max else 0.2
            out.append(
                ctx.finding(
                    HIGH_DROPOUT,
                    ctx.path(layer.name),
                    f"dropout rate {rate:g} in {layer.name}",
                    fix=ctx.layer_code(layer, rate=suggestion)
                    + f"  # rate is the fraction dropped; was {rate:g}",
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
        convs = [layer for layer in ctx.model.layers if "Conv" in layer.class_name]
        formats = {layer.config.get("data_format") for layer in convs}
        if "channels_first" not in formats:
            after = (shape[1], shape[2], shape[0])
            alternative = (
                f"\n# or keep the images and: {ctx.layer_code(convs[0], data_format='channels_first')}"
                if convs
                else ""
            )
            return [
                ctx.finding(
                    IMAGE_SHAPE_ORDER,
                    ctx.path(),
                    f"images shaped {tuple(shape)} look channels-first (NCHW)",
                    fix=f"x = np.transpose(x, (0, 2, 3, 1))  # {tuple(shape)} → {after}, NHWC"
                    + alternative,
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
        x = ctx.samples(fmt.SAMPLES_X)
        if bad[0] == "uint8":
            scale = "255.0"
        elif x is not None and x.size and x.dtype.kind in "iu" and int(np.abs(x).max()) > 1:
            scale = f"{int(np.abs(x).max())}.0  # the largest recorded |x|"
        else:
            scale = ""
        fix = f'x = x.astype("float32") / {scale}' if scale else 'x = x.astype("float32")'
        return [
            ctx.finding(
                INPUT_NOT_FLOAT, ctx.path(), f"inputs of dtype {bad[0]}", fix=fix, dtype=bad[0]
            )
        ]
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
        if layer.class_name in ACTIVATION_LAYERS:
            fix = f"# remove the {act} layer {layer.name}: a linear output reaches any target"
        else:
            fix = f"{ctx.layer_code(layer, activation=None)}  # linear: targets span [{lo:.3g}, {hi:.3g}]"
        return [
            ctx.finding(
                OUTPUT_ACTIVATION,
                ctx.path(layer.name),
                f"{act} output cannot reach targets in [{lo:.3g}, {hi:.3g}]",
                fix=fix + "\n# or rescale the targets into the activation's range",
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
        bad_samples = (
            int((~finite).reshape(len(values), -1).any(axis=1).sum()) if values.ndim else 1
        )
        out.append(
            ctx.finding(
                INPUT_NAN,
                ctx.path(),
                f"{int((~finite).sum())} NaN/inf input values",
                epochs=epochs,
                fix="x = np.nan_to_num(x)  # or drop / impute the broken samples:\n"
                "# keep = np.isfinite(x).reshape(len(x), -1).all(axis=1); x, y = x[keep], y[keep]",
                count=int((~finite).sum()),
                samples=bad_samples,
            )
        )
    if finite.any():
        lo, hi = float(values[finite].min()), float(values[finite].max())
        if max(abs(lo), abs(hi)) > ctx.thresholds.input_abs_max:
            if lo >= 0:
                fix = f"x = x / {hi:.4g}  # the recorded inputs range over [{lo:.3g}, {hi:.3g}]"
            else:
                fix = "x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-7)"
            out.append(
                ctx.finding(
                    INPUT_NOT_NORMALIZED,
                    ctx.path(),
                    f"inputs range over [{lo:.3g}, {hi:.3g}]",
                    epochs=epochs,
                    fix=fix + "\n# or: layers.Normalization() adapted on the training data",
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
    optimizer = ctx.model.training.get("optimizer") or {}
    rate = optimizer.get("learning_rate")
    fix = (
        _optimizer_code(optimizer, float(rate) / 10, clipnorm=1.0) + f"  # was {rate:.3g}"
        if isinstance(rate, (int, float)) and rate > 0
        else None
    )
    if fix:
        fix += "\n# and check inputs and targets: np.isfinite(x).all(), np.isfinite(y).all()"
    return [
        ctx.finding(
            NAN_LOSS,
            ctx.path(),
            f"{key} is NaN or infinite",
            epochs=epochs,
            fix=fix,
            metric=key,
            first_epoch=min(epochs),
        )
        for key, epochs in bad.items()
    ]


def _series(model: ModelLogs, key: str) -> dict[int, float]:
    return {
        int(r[fmt.METRIC_EPOCH]): float(r[key])
        for r in model.metrics
        if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])
    }


ACCURACY_KEYS = (
    ("accuracy", "val_accuracy"),
    ("acc", "val_acc"),
    ("sparse_categorical_accuracy", "val_sparse_categorical_accuracy"),
    ("categorical_accuracy", "val_categorical_accuracy"),
    ("binary_accuracy", "val_binary_accuracy"),
)


def _dropout_allowance(model: ModelLogs) -> float:
    """Dropout lowers training accuracy only: half its largest rate is allowed for."""
    rates = [
        float(layer.config.get("rate", 0))
        for layer in model.layers
        if "Dropout" in layer.class_name and isinstance(layer.config.get("rate"), (int, float))
    ]
    return 0.5 * max(rates, default=0.0)


def check_val_accuracy(ctx: Context) -> list[Finding]:
    th = ctx.thresholds
    for train_key, val_key in ACCURACY_KEYS:
        train, val = _series(ctx.model, train_key), _series(ctx.model, val_key)
        common = sorted(set(train) & set(val))[th.val_skip_epochs :]
        if len(common) < th.val_min_epochs:
            continue
        margin = th.val_better_margin + _dropout_allowance(ctx.model)
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
                    margin=margin,
                )
            ]
    return []


def check_too_good(ctx: Context) -> list[Finding]:
    """UMLAUT's "too good": after epoch 3, validation accuracy above 95 % *and* above
    training accuracy (by ``too_good_margin``, plus the dropout allowance)."""
    th = ctx.thresholds
    for train_key, val_key in ACCURACY_KEYS:
        train, val = _series(ctx.model, train_key), _series(ctx.model, val_key)
        common = [e for e in sorted(set(train) & set(val)) if e > th.val_skip_epochs]
        allowance = th.too_good_margin + _dropout_allowance(ctx.model)
        hits = [
            e for e in common if val[e] > th.too_good_accuracy and val[e] > train[e] + allowance
        ]
        if len(hits) >= th.too_good_epochs:
            best = max(hits, key=lambda e: val[e])
            return [
                ctx.finding(
                    TOO_GOOD,
                    ctx.path(),
                    f"{val_key} {val[best]:.3f} above {th.too_good_accuracy:.0%} and above "
                    f"{train_key} {train[best]:.3f} in {len(hits)} epochs after epoch "
                    f"{th.val_skip_epochs}",
                    epochs=hits,
                    val_accuracy=val[best],
                    accuracy=train[best],
                )
            ]
    return []


def check_overfitting(ctx: Context) -> list[Finding]:
    """The longest run of epochs where val_loss rises while loss falls, unless val_loss came
    back below where the run started by the last epoch (a transient bump: no finding, and
    EarlyStopping would have stopped a run that went on to improve)."""
    train, val = _series(ctx.model, "loss"), _series(ctx.model, "val_loss")
    epochs = sorted(set(train) & set(val))
    run_start: int | None = None
    best: list[int] = []
    best_start: int | None = None
    th = ctx.thresholds
    for prev, cur in itertools.pairwise(epochs):
        if val[cur] > val[prev] and train[cur] < train[prev]:
            run_start = prev if run_start is None else run_start
            span = [e for e in epochs if run_start < e <= cur]
            rise = (val[cur] - val[run_start]) / max(abs(val[run_start]), 1e-12)
            if len(span) > len(best) and rise >= th.overfit_min_rise:
                best, best_start = span, run_start
        else:
            run_start = None
    if len(best) < th.overfit_epochs or best_start is None:
        return []
    later = [val[e] for e in epochs if e > best[-1]]
    if later and min(later) <= val[best_start]:
        return []  # recovered: val_loss came back below where the rise began
    start = val[best_start]
    return [
        ctx.finding(
            OVERFITTING,
            ctx.path(),
            f"val_loss rose for {len(best)} epochs while loss fell",
            epochs=best,
            fix='callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, '
            "restore_best_weights=True)]"
            + f"  # would keep epoch {best_start} (val_loss {start:.3g})",
            val_loss_min=min(val.values()),
            val_loss_rise=(max(val[e] for e in best) - start) / max(abs(start), 1e-12),
        )
    ]


def _dead_fix(ctx: Context, layer: Layer) -> str:
    """leaky_relu on the layer as written, and a negative constant bias put back to zeros."""
    bias = layer.config.get("bias_initializer")
    changes: dict[str, Any] = {"activation": "leaky_relu"}
    note = "  # or a lower learning rate, He initialization"
    if isinstance(bias, dict) and bias.get("class_name") == "Constant":
        value = (bias.get("config") or {}).get("value")
        if isinstance(value, (int, float)) and value < 0:
            changes["bias_initializer"] = "zeros"
            note = f"  # a Constant({value:g}) bias starts every unit below zero"
    return ctx.layer_code(layer, **changes) + note


def check_dead_units(ctx: Context) -> list[Finding]:
    """Units inactive (max ≤ 0 on every recorded sample) at the latest checked checkpoint and
    at the checkpoint before, reported with the epoch since which they are all inactive.

    Initialization alone is no evidence: units quiet on the samples at epoch 0 often come
    alive in the first epoch, so a check of epoch 0 alone says nothing, and units alive at the
    latest checkpoint are not dead whatever they were before.
    """
    out: list[Finding] = []
    epoch = ctx.epochs[-1] if ctx.epochs else None
    if (
        epoch is None
        or int(ctx.model.dataset.get("n_samples") or 0) < ctx.thresholds.dead_min_samples
    ):
        return out
    earlier = [e for e in ctx.model.epochs if e < epoch]
    if not earlier:
        return out  # the initialization (or a single checkpoint): nothing trained yet
    recorded = set(ctx.model.recording.get("layers") or [])
    for layer in ctx.model.layers:
        if layer.name not in recorded or nonlinearity(layer) not in ("relu", "relu6"):
            continue
        stats = ctx.unit_stats(layer.name, epoch)
        if stats is None or not len(stats["max"]):
            continue
        n_units = len(stats["max"])
        previous = ctx.unit_stats(layer.name, earlier[-1])
        if previous is None or len(previous["max"]) != n_units:
            continue
        dead_mask = (stats["max"] <= 0) & (previous["max"] <= 0)
        moving = ctx.moving_units(layer, earlier[-1], epoch) if dead_mask.any() else None
        if moving is not None and len(moving) == n_units:
            dead_mask &= ~moving  # quiet on the samples, but learning from others: alive
        dead = np.flatnonzero(dead_mask)
        if len(dead) < max(1, ctx.thresholds.dead_fraction * n_units):
            continue
        since = earlier[-1]
        for before_epoch in reversed(earlier[:-1]):  # since when are all of them inactive?
            before = ctx.unit_stats(layer.name, before_epoch)
            if before is None or len(before["max"]) != n_units or (before["max"][dead] > 0).any():
                break
            since = before_epoch
        out.append(
            ctx.finding(
                DEAD_UNITS,
                ctx.path(layer.name),
                f"{len(dead)}/{n_units} units of {layer.name} inactive since epoch {since}",
                epochs=[e for e in ctx.model.epochs if since <= e <= epoch],
                fix=_dead_fix(ctx, layer),
                units=dead.tolist(),
                fraction=len(dead) / n_units,
                n_units=n_units,
                since_epoch=since,
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
            if layer.class_name in ACTIVATION_LAYERS:
                fix = f"layers.BatchNormalization()  # before {layer.name}, or normalize the inputs"
            else:
                fix = (
                    f"{ctx.layer_code(layer, activation=None)}\n"
                    f"layers.BatchNormalization()\nlayers.Activation({python_literal(act)})"
                    "  # normalize before the activation, or normalize the inputs"
                )
            out.append(
                ctx.finding(
                    SATURATED_UNITS,
                    ctx.path(layer.name),
                    f"{int(saturated.sum())}/{len(saturated)} {act} units of {layer.name} pinned at a bound",
                    epochs=[epoch],
                    fix=fix,
                    units=np.flatnonzero(saturated).tolist(),
                    saturated_fraction=float(saturated.sum()) / len(saturated),
                    n_units=len(saturated),
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
            shapes = {model.layer(i).output_shape for i in layer.inbound if i in model.successors}
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
        layer = ctx.model.layer(name)
        act = nonlinearity(layer)
        if act not in NON_NEGATIVE:
            continue
        context: dict[str, Any] = {"activation": act}
        if epoch is not None:
            summary = ctx.summary(fmt.summary_row_name(name, fmt.ACTIVATIONS), epoch)
            if summary is not None and summary["finite"] > 0:
                context.update(
                    min=float(summary["min"]), zero_fraction=float(summary["zero_fraction"])
                )
        if layer.class_name in ACTIVATION_LAYERS:
            fix = f"# remove the {act} layer {name}: the parameters need negative values"
        else:
            fix = f"{ctx.layer_code(layer, activation=None)}  # no activation"
        out.append(
            ctx.finding(
                ONE_SIDED_LATENT,
                ctx.path(name),
                f"{name} parameterizes a distribution but its {act} makes it ≥ 0",
                epochs=[epoch] if epoch is not None else [],
                fix=fix,
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
                stds.append((layer.name, float(s["std"])))
    init = "he_normal"
    if len(stds) >= 2:
        (lo_name, lo), (hi_name, hi) = min(stds, key=lambda t: t[1]), max(stds, key=lambda t: t[1])
        if hi / lo > th.scale_ratio:
            layer = ctx.model.layer(hi_name)
            out.append(
                ctx.finding(
                    SCALE,
                    ctx.path(hi_name),
                    f"activation std ranges from {lo:.3g} ({lo_name}) to {hi:.3g} ({hi_name})",
                    epochs=[last],
                    fix=f"{ctx.layer_code(layer, kernel_initializer=init)}"
                    "  # and the same for the layers before; or layers.BatchNormalization()",
                    ratio=hi / lo,
                    std_min=lo,
                    std_max=hi,
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
                optimizer = ctx.model.training.get("optimizer") or {}
                rate = optimizer.get("learning_rate")
                fix = (
                    _optimizer_code(optimizer, float(rate) / 10, clipnorm=1.0)
                    if isinstance(rate, (int, float)) and rate > 0
                    else None
                )
                out.append(
                    replace(
                        ctx.finding(
                            SCALE,
                            ctx.path(layer.name, "kernel"),
                            f"{layer.name} kernel has NaN/inf weights",
                            epochs=[last],
                            fix=fix,
                            non_finite=int(b["count"] - b["finite"]),
                        ),
                        severity="critical",
                    )
                )
            elif (
                b["std"] / a["std"] > th.weight_growth or b["std"] / a["std"] < 1 / th.weight_growth
            ):
                grew = b["std"] > a["std"]
                fix = (
                    f"{ctx.layer_code(layer, kernel_regularizer={'class_name': 'L2', 'config': {'l2': 1e-4}})}"
                    "  # or a lower learning rate, gradient clipping (clipnorm=1.0)"
                    if grew
                    else f"{ctx.layer_code(layer, kernel_initializer=init)}  # or a higher learning rate"
                )
                out.append(
                    ctx.finding(
                        SCALE,
                        ctx.path(layer.name, "kernel"),
                        f"{layer.name} kernel std changed ×{b['std'] / a['std']:.3g} since initialization",
                        epochs=[last],
                        fix=fix,
                        ratio=float(b["std"] / a["std"]),
                        std_first=float(a["std"]),
                        std_last=float(b["std"]),
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
    "Two affine layers without a non-linearity between them (BatchNormalization, average pooling, dropout or reshaping in between are linear too) compose to one linear map: the extra layer adds parameters but no expressive power.",
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
DOUBLE_SOFTMAX = _check(
    "double-softmax",
    "error",
    "static",
    "softmax output trained as logits",
    "A cross-entropy with from_logits=True applies its own softmax (or sigmoid); on an output that already has one the loss sees squashed probabilities as logits, so it saturates and learning slows.",
    "loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False)  # or a linear output",
    check_double_softmax,
)
CLASSIFICATION_LOSS = _check(
    "classification-loss-on-regression",
    "error",
    "static",
    "classification loss on a regression output",
    "Cross-entropy and hinge losses expect class labels or probabilities; on real-valued targets they are not a distance between prediction and target, so the model learns something else.",
    'loss="mse"',
    check_classification_loss,
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
TOO_GOOD = _check(
    "too-good-val-accuracy",
    "warning",
    "dynamic",
    "validation accuracy too good",
    "Validation accuracy above 95 % after a few epochs, and above training accuracy, is rarely earned: validation samples that are also training samples, labels leaking into the inputs, or a task easier than intended.",
    "# split before any preprocessing that looks at all the data; check for duplicate samples",
    check_too_good,
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
    "A ReLU unit whose pre-activation is negative for every sample outputs 0 and gets no gradient, so it stops learning; units still inactive at the latest checkpoint and the one before are reported with the epoch since which they are.",
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
    DOUBLE_SOFTMAX, CLASSIFICATION_LOSS, TOO_GOOD,
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
