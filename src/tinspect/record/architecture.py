"""The architecture graph and training configuration of a Keras model, as JSON-ready dicts.

Keras keeps the layer graph of functional and Sequential models as nodes
(``_nodes_by_depth``); we read it once, at the start of training, and write it to
``model.json`` so the viewer never needs Keras to draw a layer graph. Subclassed models
have no such graph: their layers are listed in tracking order and marked ``graph: false``.

Nothing here imports Keras: it only reads attributes of the objects it is given, so the
module can be tested and reused with any Keras 3 backend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tinspect.record.files import jsonable
from tinspect.record.operations import activation_name, inner_operations


def _size(shape: Any) -> int:
    return int(math.prod(int(d) for d in shape))


def _graph_of(model: Any) -> Any | None:
    """The object holding the node graph: the model itself, or a Sequential's functional."""
    if getattr(model, "_nodes_by_depth", None):
        return model
    functional = getattr(model, "_functional", None)
    if functional is not None and getattr(functional, "_nodes_by_depth", None):
        return functional
    return None


def history_name(tensor: Any) -> str | None:
    history = getattr(tensor, "_keras_history", None)
    operation = getattr(history, "operation", None)
    return getattr(operation, "name", None)


def graph_nodes(model: Any) -> list[tuple[Any, list[str], list[tuple[int | None, ...]]]]:
    """(layer, inbound layer names, output shapes) for each node, inputs first.

    Empty for models without a symbolic graph (subclassed models). The batch axis is
    always None: a Sequential that ``fit`` built on JAX or torch has its graph traced with
    the first batch's concrete size, which is no property of the model.
    """
    graph = _graph_of(model)
    if graph is None:
        return []
    out = []
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            inbound = [name for t in node.input_tensors if (name := history_name(t))]
            shapes = [(None, *tuple(t.shape)[1:]) if t.shape else () for t in node.output_tensors]
            out.append((node.operation, inbound, shapes))
    return out


def _variables(layer: Any) -> list[dict[str, Any]]:
    prefix = f"{getattr(layer, 'path', layer.name)}/"
    trainable = {id(v) for v in layer.trainable_weights}
    out = []
    used: set[str] = set()
    for v in layer.weights:
        path = str(getattr(v, "path", v.name))
        # A nested model's variables carry their own layers' paths (``d1/kernel``), not the
        # nested model's name: keep those paths whole so every name is unique and stable.
        name = path[len(prefix) :] if path.startswith(prefix) else path
        if name in used:
            name = f"{name}_{len(used)}"
        name = name.replace("/", ".")  # one path component: UoA paths use ``/``
        used.add(name)
        out.append(
            {
                "name": name,
                "shape": [int(d) for d in v.shape],
                "dtype": str(getattr(v, "dtype", "float32")),
                "trainable": id(v) in trainable,
            }
        )
    return out


def variable_names(layer: Any) -> list[str]:
    """Names of a layer's variables relative to the layer (``kernel``, ``query.kernel``)."""
    return [v["name"] for v in _variables(layer)]


def describe_layer(layer: Any, inbound: list[str], output_shapes: list[Any]) -> dict[str, Any]:
    """One layer entry of ``model.json``."""
    try:
        config = dict(layer.get_config())
    except Exception:  # noqa: BLE001 - custom layers without get_config must not stop training
        config = {}
    class_name = type(layer).__name__
    trainable = sum(_size(v.shape) for v in layer.trainable_weights)
    non_trainable = sum(_size(v.shape) for v in layer.non_trainable_weights)
    entry: dict[str, Any] = {
        "name": layer.name,
        "class_name": class_name,
        "module": type(layer).__module__,
        "activation": activation_name(config),
        "inbound": list(dict.fromkeys(inbound)),
        "output_shape": list(output_shapes[0]) if len(output_shapes) == 1 else None,
        "output_shapes": [list(s) for s in output_shapes],
        "params": {"trainable": trainable, "non_trainable": non_trainable},
        "variables": _variables(layer),
        "operations": inner_operations(class_name, config),
        "trainable": bool(getattr(layer, "trainable", True)),
        "config": jsonable(config),
    }
    if hasattr(layer, "layers") and class_name != "InputLayer" and _is_model(layer):
        entry["submodel"] = describe_architecture(layer)
    return entry


def _is_model(layer: Any) -> bool:
    return any(cls.__name__ == "Model" for cls in type(layer).__mro__)


def describe_architecture(model: Any) -> dict[str, Any]:
    """Layers (with inbound edges, shapes, parameters, operations), inputs, outputs, totals."""
    nodes = graph_nodes(model)
    layers: dict[str, dict[str, Any]] = {}
    if nodes:
        for layer, inbound, shapes in nodes:
            if layer.name in layers:  # a shared layer called more than once
                entry = layers[layer.name]
                entry["inbound"] = list(dict.fromkeys(entry["inbound"] + inbound))
                entry["output_shapes"] += [list(s) for s in shapes]
                entry["output_shape"] = None
                entry["shared"] = True
            else:
                layers[layer.name] = describe_layer(layer, inbound, shapes)
        inputs = [n for t in model.inputs if (n := history_name(t))]
        outputs = [n for t in model.outputs if (n := history_name(t))]
    else:
        for layer in model.layers:
            layers[layer.name] = describe_layer(layer, [], [])
        inputs, outputs = [], []
    trainable = sum(_size(v.shape) for v in model.trainable_weights)
    non_trainable = sum(_size(v.shape) for v in model.non_trainable_weights)
    return {
        "class_name": type(model).__name__,
        "name": model.name,
        "graph": bool(nodes),
        "inputs": inputs,
        "outputs": outputs,
        "layers": list(layers.values()),
        "params": {
            "trainable": trainable,
            "non_trainable": non_trainable,
            "total": trainable + non_trainable,
        },
    }


def _loss_entry(loss: Any) -> Any:
    if loss is None:
        return None
    if isinstance(loss, str):
        return {"name": loss, "from_logits": False}
    if isinstance(loss, Mapping):
        return {str(k): _loss_entry(v) for k, v in loss.items()}
    if isinstance(loss, (list, tuple)):
        return [_loss_entry(v) for v in loss]
    get_config = getattr(loss, "get_config", None)
    if callable(get_config):
        try:
            config = dict(get_config())
            return {
                "name": config.get("name", type(loss).__name__),
                "class_name": type(loss).__name__,
                "from_logits": bool(config.get("from_logits", False)),
                "config": jsonable(config),
            }
        except Exception:  # noqa: BLE001
            pass
    return {"name": getattr(loss, "__name__", type(loss).__name__), "from_logits": False}


def learning_rate(optimizer: Any) -> float | None:
    """The optimizer's current learning rate (schedules evaluated at the current step)."""
    if optimizer is None:
        return None
    try:
        return float(optimizer.learning_rate)
    except (TypeError, ValueError, AttributeError):
        return None


def describe_training(model: Any, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Optimizer (class, config, learning rate), loss (name, from_logits), metrics, schedule."""
    optimizer = getattr(model, "optimizer", None)
    opt: dict[str, Any] | None = None
    if optimizer is not None:
        try:
            config = jsonable(optimizer.get_config())
        except Exception:  # noqa: BLE001
            config = {}
        opt = {
            "class_name": type(optimizer).__name__,
            "learning_rate": learning_rate(optimizer),
            "config": config,
        }
    metrics: list[str] = []
    for metric in getattr(model, "metrics", []) or []:
        name = getattr(metric, "name", None)
        if name and name not in metrics:
            metrics.append(name)
    params = dict(params or {})
    return {
        "optimizer": opt,
        "loss": _loss_entry(getattr(model, "loss", None)),
        "metrics": metrics,
        "epochs": params.get("epochs"),
        "steps_per_epoch": params.get("steps"),
        "custom_train_step": _overrides(model, "train_step"),
    }


def _overrides(model: Any, method: str) -> bool:
    """True when the model's class defines ``method`` itself (e.g. a VAE's train_step)."""
    for cls in type(model).__mro__:
        if cls.__module__.startswith("keras"):
            return False
        if method in vars(cls):
            return True
    return False
