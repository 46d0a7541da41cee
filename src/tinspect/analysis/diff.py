"""What changed between two models: a generation diff, as rows ``kind, unit, field, a, b``.

The question behind it is the one a model developer brings to a tree of variants: *what is
different in this child, and where does it show?* Rows, in this order:

* ``layer-added`` / ``layer-removed``: a layer only in B / only in A (field ``class``);
* ``layer``: a layer of both whose recorded facts differ. Layers are matched by name, then
  the rest by position (index in the layer list) when the class agrees (a renamed layer);
  fields are ``name``, ``class``, ``activation``, ``inbound``, ``output_shape``, ``params``
  and every key of the Keras config (``units``, ``filters``, ``kernel_size``, ``strides``,
  ``rate``, ``use_bias``, initializers, ...), except the name, dtype policy and trainable;
* ``hyperparameter``: keys of the headers' ``hyperparameters``;
* ``training``: optimizer, learning rate and other optimizer settings, loss, from_logits,
  batch size, epochs, metrics;
* ``metric``: every metric both logged, at the last epoch both logged (``field`` is
  ``name@epoch``);
* ``distribution``: per matched layer with activations in both, the Jensen–Shannon
  divergence of the two activation histograms at the last checkpoint both have (in
  ``b``; ``field`` is ``js_divergence@epoch``), largest first.

Structural rows come from ``model.json`` only; metric rows from ``metrics.jsonl``;
distribution rows from each checkpoint's stored summary table (two small reads), so a diff
costs milliseconds and a viewer can diff every model against its parent. An identical
twin has no structural rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from tinspect import format as fmt
from tinspect.store import DataError, Layer, ModelLogs, Store, UoAError
from tinspect.summary import Summary

KINDS: Final = (
    "layer-added",
    "layer-removed",
    "layer",
    "hyperparameter",
    "training",
    "metric",
    "distribution",
)
COLUMNS: Final = ("kind", "unit", "field", "a", "b")
STRUCTURAL: Final = frozenset(
    {"layer-added", "layer-removed", "layer", "hyperparameter", "training"}
)
#: Config keys that are not facts of the layer's computation (the name is compared apart).
IGNORED_CONFIG: Final = frozenset({"name", "trainable", "dtype", "activation"})


@dataclass(frozen=True)
class DiffRow:
    """One difference: ``a`` is the value in model A, ``b`` in model B (None: absent)."""

    kind: str
    unit: str
    field: str
    a: Any
    b: Any

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.kind, self.unit, self.field, self.a, self.b)


@dataclass(frozen=True)
class Diff:
    """The two models and the rows of B against A."""

    a: ModelLogs
    b: ModelLogs
    rows: tuple[DiffRow, ...]
    metric_epoch: int | None = None
    distribution_epoch: int | None = None

    @property
    def structural(self) -> list[DiffRow]:
        return [r for r in self.rows if r.kind in STRUCTURAL]


def pair(store: Store, first: str, second: str | None = None) -> tuple[ModelLogs, ModelLogs]:
    """(A, B): the two models named, or the model's first parent and the model.

    Raises ``UoAError`` (one line) for an unknown model, or one without a parent in the logs.
    """
    if second is not None:
        return store.model(first), store.model(second)
    child = store.model(first)
    if not child.parents:
        raise UoAError(f"{child.name} has no parent; name the model to compare it with")
    parent = child.parents[0]
    if parent not in store.models:
        raise UoAError(f"{child.name}'s parent {parent[:8]} is not in the logs")
    return store.models[parent], child


def diff(store: Store, a: ModelLogs, b: ModelLogs, distributions: bool = True) -> Diff:
    """Every row of B against A (``distributions=False``: skip the checkpoint reads)."""
    matched, _removed, _added = match_layers(a.layers, b.layers)
    rows = layer_rows(a.layers, b.layers)
    rows += _mapping_rows("hyperparameter", a.hyperparameters, b.hyperparameters)
    rows += _mapping_rows("training", training_facts(a), training_facts(b))
    metric_rows, metric_epoch = metric_diff(a, b)
    rows += metric_rows
    distribution_epoch = None
    if distributions:
        distribution_rows, distribution_epoch = distribution_diff(store, a, b, matched)
        rows += distribution_rows
    return Diff(a, b, tuple(rows), metric_epoch, distribution_epoch)


# --- layers -----------------------------------------------------------------------------------
def match_layers(
    a: list[Layer], b: list[Layer]
) -> tuple[list[tuple[Layer, Layer]], list[Layer], list[Layer]]:
    """(matched pairs in B's order, layers only in A, layers only in B)."""
    by_name = {layer.name: layer for layer in a}
    partner: dict[str, Layer] = {}  # B name -> A layer
    for layer in b:
        if layer.name in by_name:
            partner[layer.name] = by_name[layer.name]
    used = {layer.name for layer in partner.values()}
    names_b = {layer.name for layer in b}
    for i, layer in enumerate(b):
        if layer.name in partner or i >= len(a):
            continue
        other = a[i]
        free = other.name not in used and other.name not in names_b
        if free and other.class_name == layer.class_name:
            partner[layer.name] = other
            used.add(other.name)
    matched = [(partner[layer.name], layer) for layer in b if layer.name in partner]
    removed = [layer for layer in a if layer.name not in used]
    added = [layer for layer in b if layer.name not in partner]
    return matched, removed, added


def _render(value: Any) -> Any:
    """A config value as one comparable, printable value: initializers by class (and their
    non-default settings), lists and objects as compact JSON, numbers and strings as is."""
    if isinstance(value, dict) and "class_name" in value:
        config = value.get("config")
        settings = (
            {k: v for k, v in config.items() if v is not None} if isinstance(config, dict) else {}
        )
        name = str(value["class_name"])
        return f"{name}({json.dumps(settings, sort_keys=True)[1:-1]})" if settings else name
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return value


def _activation(layer: Layer) -> str:
    return layer.activation or "linear"


def layer_facts(layer: Layer, rename: dict[str, str] | None = None) -> dict[str, Any]:
    """What a layer row compares, each rendered; ``rename`` maps A's layer names to B's so a
    renamed inbound layer does not count as a change of connectivity."""
    rename = rename or {}
    facts: dict[str, Any] = {
        "class": layer.class_name,
        "activation": _activation(layer),
        "inbound": ", ".join(rename.get(n, n) for n in layer.inbound),
        "output_shape": _render(list(layer.output_shape)) if layer.output_shape else None,
        "params": layer.params,
    }
    for key, value in layer.config.items():
        if key not in IGNORED_CONFIG:
            facts[key] = _render(value)
    return facts


def layer_rows(a: list[Layer], b: list[Layer]) -> list[DiffRow]:
    """Rows for the layers, in B's layer order; removed layers last, in A's order."""
    matched, removed, _added = match_layers(a, b)
    partner = {lb.name: la for la, lb in matched}
    rename = {la.name: lb.name for la, lb in matched}
    rows: list[DiffRow] = []
    for layer_b in b:
        layer_a = partner.get(layer_b.name)
        if layer_a is None:
            rows.append(DiffRow("layer-added", layer_b.name, "class", None, layer_b.class_name))
            continue
        if layer_a.name != layer_b.name:
            rows.append(DiffRow("layer", layer_b.name, "name", layer_a.name, layer_b.name))
        fa, fb = layer_facts(layer_a, rename), layer_facts(layer_b)
        for key in list(fa) + [k for k in fb if k not in fa]:
            va, vb = fa.get(key), fb.get(key)
            if va != vb:
                rows.append(DiffRow("layer", layer_b.name, key, va, vb))
    for layer in removed:
        rows.append(DiffRow("layer-removed", layer.name, "class", layer.class_name, None))
    return rows


# --- hyperparameters and training ---------------------------------------------------------------
def _mapping_rows(kind: str, a: dict[str, Any], b: dict[str, Any]) -> list[DiffRow]:
    rows = []
    for key in list(a) + [k for k in b if k not in a]:
        va, vb = _render(a.get(key)), _render(b.get(key))
        if va != vb:
            rows.append(DiffRow(kind, "", key, va, vb))
    return rows


def _loss_facts(loss: Any) -> dict[str, Any]:
    if isinstance(loss, dict) and "name" in loss:
        return {"loss": loss.get("name"), "from_logits": loss.get("from_logits")}
    if loss is None:
        return {"loss": None}
    return {"loss": _render(loss)}  # several outputs: a list or an object of entries


def training_facts(model: ModelLogs) -> dict[str, Any]:
    """The training set-up as flat facts: optimizer, learning rate, loss, schedule, metrics."""
    training = model.training
    optimizer = training.get("optimizer") if isinstance(training.get("optimizer"), dict) else {}
    assert isinstance(optimizer, dict)
    facts: dict[str, Any] = {
        "optimizer": optimizer.get("class_name"),
        "learning_rate": optimizer.get("learning_rate"),
    }
    config = optimizer.get("config")
    if isinstance(config, dict):
        for key, value in config.items():
            if key not in ("name", "learning_rate"):
                facts[f"optimizer.{key}"] = value
    facts.update(_loss_facts(training.get("loss")))
    facts["batch_size"] = training.get("batch_size", model.hyperparameters.get("batch_size"))
    facts["epochs"] = training.get("epochs")
    metrics = training.get("metrics")
    facts["metrics"] = ", ".join(sorted(metrics)) if isinstance(metrics, list) else None
    return facts


# --- metrics and distributions ------------------------------------------------------------------
def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def metric_diff(a: ModelLogs, b: ModelLogs) -> tuple[list[DiffRow], int | None]:
    """Every metric both logged, at the last epoch both logged."""
    rows_a = {int(r[fmt.METRIC_EPOCH]): r for r in a.metrics}
    rows_b = {int(r[fmt.METRIC_EPOCH]): r for r in b.metrics}
    common = sorted(set(rows_a) & set(rows_b))
    if not common:
        return [], None
    epoch = common[-1]
    ra, rb = rows_a[epoch], rows_b[epoch]
    names = [k for k in a.metric_names() if k in rb]
    rows = [DiffRow("metric", "", f"{k}@{epoch}", _number(ra[k]), _number(rb[k])) for k in names]
    return rows, epoch


def _summary(store: Store, model: ModelLogs, epoch: int, layer: str) -> Summary | None:
    """The layer's activation summary: the stored row, else computed (and cached)."""
    data = store.arrays.checkpoint(model.id, epoch)
    try:
        table = data.summary_table()
        row = table.row(fmt.summary_row_name(layer, fmt.ACTIVATIONS))
        if row is not None or table.names:
            return row
        name = fmt.layer_path(layer, fmt.ACTIVATIONS)
        if not data.has(name):
            return None
        return data.summary(data.ref(name))
    except DataError:
        return None  # an unreadable checkpoint: the store has said so once


def distribution_diff(
    store: Store, a: ModelLogs, b: ModelLogs, matched: Iterable[tuple[Layer, Layer]]
) -> tuple[list[DiffRow], int | None]:
    """Per matched layer, the JS divergence of the activation histograms at the last
    checkpoint both models have; largest first (NaN, when a side has no finite values, last)."""
    from tinspect.analysis.interest import histogram_divergence

    common = sorted(set(a.epochs) & set(b.epochs))
    if not common:
        return [], None
    epoch = common[-1]
    scored = []
    for layer_a, layer_b in matched:
        if layer_b.class_name == "InputLayer":
            continue
        sa = _summary(store, a, epoch, layer_a.name)
        sb = _summary(store, b, epoch, layer_b.name)
        if sa is None or sb is None:
            continue
        scored.append((layer_b.name, histogram_divergence(sa, sb)))
    scored.sort(key=lambda item: (math.isnan(item[1]), -item[1] if not math.isnan(item[1]) else 0))
    rows = [
        DiffRow("distribution", name, f"js_divergence@{epoch}", None, value)
        for name, value in scored
    ]
    return rows, epoch


def parent_deltas(store: Store, models: Iterable[ModelLogs] | None = None) -> dict[str, str]:
    """Every model with a parent in the logs (or those of ``models``) → ``summary_line`` of
    its structural diff against its first parent (headers only; ~1 ms per model): the
    viewer's L3 line."""
    out: dict[str, str] = {}
    for model in list(store.models.values()) if models is None else models:
        parents = [p for p in model.parents if p in store.models]
        if not parents:
            continue
        parent = store.models[parents[0]]
        rows = layer_rows(parent.layers, model.layers)
        rows += _mapping_rows("hyperparameter", parent.hyperparameters, model.hyperparameters)
        rows += _mapping_rows("training", training_facts(parent), training_facts(model))
        out[model.id] = summary_line(rows)
    return out


# --- one line for the viewer and the terminal -----------------------------------------------------
def _short(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


#: Layer fields that follow from another change (units 8 → 16 changes shape and params).
CONSEQUENCES: Final = frozenset({"output_shape", "params", "inbound"})


def summary_line(rows: Iterable[DiffRow]) -> str:
    """The structural changes in one line, e.g. ``z_mean, z_log_var: relu → linear;
    +dense_3; learning_rate 0.001 → 0.0005`` (empty for an identical twin).

    Layers with the same change are named together; a layer's shape, parameter count and
    inbound list are left out when another of its fields changed, since they follow from it.
    """
    rows = list(rows)
    causes = {r.unit for r in rows if r.kind == "layer" and r.field not in CONSEQUENCES}
    groups: dict[tuple[str, str, str], list[str]] = {}
    parts: list[tuple[str, Any]] = []
    for row in rows:
        if row.kind == "layer-added":
            parts.append(("text", f"+{row.unit}"))
        elif row.kind == "layer-removed":
            parts.append(("text", f"−{row.unit}"))
        elif row.kind == "layer":
            if row.field in CONSEQUENCES and row.unit in causes:
                continue
            key = (row.field, _short(row.a), _short(row.b))
            if key not in groups:
                groups[key] = []
                parts.append(("group", key))
            if row.unit not in groups[key]:
                groups[key].append(row.unit)
        elif row.kind in ("hyperparameter", "training"):
            parts.append(("text", f"{row.field} {_short(row.a)} → {_short(row.b)}"))
    rendered = []
    for what, value in parts:
        if what == "text":
            rendered.append(value)
            continue
        field, va, vb = value
        change = f"{va} → {vb}" if field == "activation" else f"{field} {va} → {vb}"
        rendered.append(f"{', '.join(groups[value])}: {change}")
    return "; ".join(dict.fromkeys(rendered))
