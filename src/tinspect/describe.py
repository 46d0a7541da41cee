"""Readable descriptions of units for ``tinspect show``: a better ``model.summary()``.

A model shows its header, training configuration and the layer graph in topological order,
with each layer's type, output shape, parameters, inner operations and the skip connections
that reach it; a layer shows its variables and the stored summaries of its activations and
weights over epochs. Everything comes from model.json and the checkpoints' summary tables.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from tinspect import format as fmt
from tinspect.store import DataError, ModelLogs, Store, UoA
from tinspect.store.model import finite


def _shape(shape: tuple[int | None, ...] | None) -> str:
    if not shape:
        return "?"
    return "(" + ", ".join("n" if d is None else str(d) for d in shape) + ")"


def _count(n: int) -> str:
    return f"{n:,}"


def layer_order(model: ModelLogs) -> list[str]:
    """Layers in topological order, ties broken by the order recorded in model.json."""
    import networkx as nx

    position = {layer.name: i for i, layer in enumerate(model.layers)}
    try:
        return list(
            nx.lexicographical_topological_sort(model.graph, key=lambda n: f"{position[n]:09d}")
        )
    except nx.NetworkXUnfeasible:
        return [layer.name for layer in model.layers]


def skip_sources(model: ModelLogs, order: list[str]) -> dict[str, list[str]]:
    """For each layer, the inbound layers that are not the one just before it in ``order``."""
    out: dict[str, list[str]] = {}
    for i, name in enumerate(order):
        previous = order[i - 1] if i else None
        skips = [src for src in model.graph.predecessors(name) if src != previous]
        if skips:
            out[name] = skips
    return out


def _plain_table(title: str) -> Table:
    """Borderless, like ``tinspect ls``: more room for names within 80 columns."""
    return Table(
        title=title,
        title_justify="left",
        box=None,
        padding=(0, 0, 0, 2),
        pad_edge=False,
        header_style="bold underline",
    )


def describe_model(store: Store, model: ModelLogs) -> list[Any]:
    head = Text()
    head.append(f"{store.display_name(model)}", style="bold")
    head.append(f"  {model.label}  id {model.short_id}  {_count(model.total_params)} parameters")
    parents = [
        store.display_name(store.models[p]) if p in store.models else f"{p[:8]} (missing)"
        for p in model.parents
    ]
    if parents:
        head.append(f"\nparents: {', '.join(parents)}")
    training = model.training
    optimizer = training.get("optimizer") or {}
    loss = training.get("loss")
    loss_text = (
        loss.get("name")
        if isinstance(loss, dict) and "name" in loss
        else ("custom" if loss is None else str(loss))
    )
    if isinstance(loss, dict) and loss.get("from_logits"):
        loss_text += " (from_logits)"
    head.append(
        f"\noptimizer: {optimizer.get('class_name', '?')} lr={optimizer.get('learning_rate')}"
        f"  loss: {loss_text}  batch: {training.get('batch_size')}"
        f"  epochs: {model.status.get('epochs_completed', '?')}"
        f"  checkpoints: {model.n_checkpoints}"
    )
    if model.hyperparameters:
        head.append(
            "\nhyperparameters: " + ", ".join(f"{k}={v}" for k, v in model.hyperparameters.items())
        )
    last = model.last_metrics()
    shown = [k for k in model.metric_names() if finite(last.get(k)) is not None]
    if shown:
        head.append("\nlast: " + "  ".join(f"{k}={last[k]:.4g}" for k in shown))

    order = layer_order(model)
    skips = skip_sources(model, order)
    table = _plain_table("layers")
    for column, justify in [
        ("layer", "left"),
        ("type", "left"),
        ("output", "left"),
        ("params", "right"),
        ("operations", "left"),
        ("inputs", "left"),
    ]:
        table.add_column(column, justify=justify, no_wrap=column != "inputs")  # type: ignore[arg-type]
    for name in order:
        layer = model.layer(name)
        inputs = ", ".join(layer.inbound)
        if name in skips and len(layer.inbound) > 0:
            inputs += " (skip from " + ", ".join(skips[name]) + ")"
        table.add_row(
            name,
            layer.class_name + (" (nested model)" if layer.submodel else ""),
            _shape(layer.output_shape),
            _count(layer.params),
            fmt.operations_text(list(layer.operations)),
            inputs,
        )
    return [head, table]


def describe_layer(store: Store, model: ModelLogs, uoa: UoA) -> list[Any]:
    assert uoa.layer is not None
    layer = model.layer(uoa.layer)
    head = Text()
    head.append(store.path(uoa), style="bold")
    head.append(
        f"  {layer.class_name}  output {_shape(layer.output_shape)}"
        f"  {_count(layer.params)} parameters"
    )
    if layer.activation:
        head.append(f"  activation {layer.activation}")
    head.append(f"\n{fmt.operations_text(list(layer.operations))}")
    head.append(f"\ninputs: {', '.join(layer.inbound) or '-'}")
    head.append(f"   outputs: {', '.join(model.graph.successors(layer.name)) or '-'}")
    variables = _plain_table("variables")
    for column in ("variable", "shape", "dtype", "trainable"):
        variables.add_column(column)
    for v in layer.variables:
        variables.add_row(
            str(v.get("name")),
            str(tuple(v.get("shape", ()))),
            str(v.get("dtype")),
            str(v.get("trainable")),
        )
    out: list[Any] = [head]
    if layer.variables:
        out.append(variables)
    rows = [fmt.summary_row_name(layer.name, fmt.ACTIVATIONS)] + [
        fmt.summary_row_name(layer.name, f"{fmt.WEIGHTS_GROUP}/{name}")
        for name in layer.variable_names
    ]
    if uoa.variable is not None:
        rows = [fmt.summary_row_name(layer.name, f"{fmt.WEIGHTS_GROUP}/{uoa.variable}")]
    stats = _plain_table("summaries by epoch (stored)")
    for column in ("array", "epoch", "mean", "std", "min", "max", "skew", "zeros"):
        stats.add_column(column, justify="left" if column == "array" else "right")
    for epoch in model.epochs:
        try:
            table = store.arrays.checkpoint(model.id, epoch).summary_table()
        except DataError:
            continue
        for row in rows:
            s = table.row(row)
            if s is None:
                continue
            stats.add_row(
                row.split("/", 1)[1],
                str(epoch),
                *(f"{s[c]:.4g}" for c in ("mean", "std", "min", "max", "skew")),
                f"{s['zero_fraction']:.0%}",
            )
    out.append(stats)
    return out


def describe(store: Store, uoa: UoA) -> list[Any]:
    """Rich renderables describing ``uoa`` (model, layer, variable; a neuron shows its layer)."""
    model = store.models[uoa.model]
    if uoa.layer is None:
        return describe_model(store, model)
    return describe_layer(store, model, uoa)
