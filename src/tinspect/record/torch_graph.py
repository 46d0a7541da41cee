"""The architecture graph of a PyTorch model, as the JSON-ready dicts of model.json.

A torch model has no layer graph of its own: ``forward`` is Python. Two sources give one:

* ``torch.fx`` symbolic tracing, where it works (no data-dependent control flow): every
  call of a recorded module is a graph node, so the inbound layers of each module are
  the modules whose outputs reach it through functions only. A residual ``x + block(x)``
  then gives the module after the add two inbound layers, one of them a skip. Functions
  applied to one module's output (``F.relu``, ``torch.flatten``, ``x.view``) become
  operations of that module, marked ``"functional": true``: they are not part of the
  module's stored activations, which are what its forward hook sees.
* the execution order of the forward hooks, always: the order of the layers and their
  output shapes. Where tracing fails, that order is the whole description
  (``graph: false``, no edges).

A *layer* is a module without children (``nn.Linear``, ``nn.ReLU``, a custom leaf) or a
module that owns parameters or buffers itself; containers (``nn.Sequential``, blocks) are
not layers, their leaves are. Nothing here imports torch at module level: it reads the
objects it is given, and the recorder imports torch.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tinspect.record.files import jsonable

#: torch classes whose outputs put channels (the units) on axis 1: (N, C, ...).
CHANNELS_FIRST = (
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "LazyConv1d",
    "LazyConv2d",
    "LazyConv3d",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "SyncBatchNorm",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
    "GroupNorm",
    "LocalResponseNorm",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "LPPool1d",
    "LPPool2d",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "Upsample",
    "UpsamplingNearest2d",
    "UpsamplingBilinear2d",
    "PixelShuffle",
    "PixelUnshuffle",
    "ZeroPad1d",
    "ZeroPad2d",
    "ZeroPad3d",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "ConstantPad1d",
    "ConstantPad2d",
)
#: torch classes whose units are the last axis whatever the rank (features of tokens).
LAST_AXIS = (
    "Linear",
    "LazyLinear",
    "Bilinear",
    "Embedding",
    "EmbeddingBag",
    "LayerNorm",
    "RMSNorm",
    "RNN",
    "LSTM",
    "GRU",
    "MultiheadAttention",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "Flatten",
    "Unflatten",
)

#: Activation modules and functions → the operation (and activation) name, as Keras names it.
ACTIVATIONS = {
    "relu": "relu",
    "relu_": "relu",
    "relu6": "relu6",
    "leaky_relu": "leaky_relu",
    "leakyrelu": "leaky_relu",
    "elu": "elu",
    "selu": "selu",
    "celu": "celu",
    "gelu": "gelu",
    "silu": "silu",
    "mish": "mish",
    "sigmoid": "sigmoid",
    "hardsigmoid": "hard_sigmoid",
    "tanh": "tanh",
    "hardtanh": "hard_tanh",
    "softplus": "softplus",
    "softsign": "softsign",
    "softmax": "softmax",
    "log_softmax": "log_softmax",
    "logsoftmax": "log_softmax",
    "prelu": "prelu",
}
#: Other functions applied to one tensor → an operation name.
FUNCTIONS = {
    "flatten": "reshape",
    "view": "reshape",
    "reshape": "reshape",
    "squeeze": "reshape",
    "unsqueeze": "reshape",
    "permute": "transpose",
    "transpose": "transpose",
    "contiguous": None,  # layout only: not an operation
    "dropout": "dropout",
    "max_pool1d": "max_pool",
    "max_pool2d": "max_pool",
    "max_pool3d": "max_pool",
    "avg_pool1d": "avg_pool",
    "avg_pool2d": "avg_pool",
    "avg_pool3d": "avg_pool",
    "adaptive_avg_pool1d": "global_avg_pool",
    "adaptive_avg_pool2d": "global_avg_pool",
    "adaptive_max_pool2d": "global_max_pool",
    "mean": "mean",
    "sum": "sum",
    "normalize": "normalize",
    "pad": "pad",
    "interpolate": "upsample",
    "add": "add",
    "sub": "subtract",
    "mul": "multiply",
    "truediv": "divide",
    "div": "divide",
    "neg": "negate",
    "abs": "abs",
    "exp": "exp",
    "log": "log",
    "pow": "power",
    "clamp": "clip",
    "matmul": "matmul",
    "cat": "concatenate",
    "stack": "stack",
}


def torch_kind(module: Any) -> str:
    """The torch class a module is, for what it computes: its nearest public ``torch.nn``
    class (``NonDynamicallyQuantizableLinear`` → ``Linear``), else its own class name."""
    import torch.nn  # the recorder's framework, already imported by the caller

    for cls in type(module).__mro__:
        if cls is torch.nn.Module:
            break
        if getattr(torch.nn, cls.__name__, None) is cls:  # a public torch.nn class
            return cls.__name__
    return type(module).__name__


def _op_name(target: Any) -> str:
    """The plain name of an fx ``call_function`` or ``call_method`` target."""
    if isinstance(target, str):
        return target
    if target is operator.add or target is operator.iadd:
        return "add"
    if target is operator.mul or target is operator.imul:
        return "mul"
    if target is operator.sub:
        return "sub"
    if target is operator.truediv:
        return "truediv"
    if target is operator.getitem:
        return "getitem"
    return str(getattr(target, "__name__", target)).lower()


def function_operation(target: Any) -> str | None:
    """The operation an fx function node performs, or None for bookkeeping (``getitem``)."""
    name = _op_name(target)
    if name in ACTIVATIONS:
        return ACTIVATIONS[name]
    if name in FUNCTIONS:
        return FUNCTIONS[name]
    if name in ("getitem", "getattr", "size", "dim", "to", "type", "float", "detach"):
        return None
    return name


def _tuple(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def module_operations(module: Any) -> list[dict[str, Any]]:
    """What a module computes, as model.json operation steps (docs/format.md)."""
    cls = torch_kind(module)
    has_bias = getattr(module, "bias", None) is not None
    steps: list[dict[str, Any]] = []
    if cls in ("Linear", "LazyLinear", "Bilinear"):
        steps.append({"op": "matmul", "variable": "weight"})
    elif cls.startswith(("Conv", "LazyConv")):
        dims = cls[-2:].lower()  # "1d", "2d", "3d"
        kind = "conv" + dims[0] + "d" + ("_transpose" if "Transpose" in cls else "")
        steps.append({"op": kind, "variable": "weight", "size": _tuple(module.kernel_size)})
    elif "Norm" in cls:
        over = {
            "BatchNorm": "batch",
            "SyncBatchNorm": "batch",
            "LayerNorm": "features",
            "RMSNorm": "features",
            "GroupNorm": "groups",
            "InstanceNorm": "instance",
        }
        key = next((k for k in over if cls.startswith(k)), None)
        steps.append({"op": "normalize", "over": over[key] if key else cls})
        if getattr(module, "weight", None) is not None:
            steps.append({"op": "multiply", "variable": "weight"})
    elif cls in ("LSTM", "GRU", "RNN"):
        steps.append({"op": f"{cls.lower()}_cell", "variable": "weight_ih_l0"})
        steps.append({"op": "recurrent", "variable": "weight_hh_l0"})
        return steps
    elif cls.lower() in ACTIVATIONS:
        step: dict[str, Any] = {"op": ACTIVATIONS[cls.lower()]}
        for key in ("negative_slope", "alpha", "dim"):
            if isinstance(getattr(module, key, None), (int, float)):
                step[key] = getattr(module, key)
        return [step]
    elif cls.startswith("Dropout") or cls == "AlphaDropout":
        return [{"op": "dropout", "rate": float(module.p)}]
    elif "Pool" in cls:
        kind = "max_pool" if "Max" in cls else "avg_pool"
        if cls.startswith("Adaptive"):
            size = getattr(module, "output_size", None)
            if size in (1, (1,), (1, 1), (1, 1, 1)):
                return [{"op": "global_" + kind}]
            return [{"op": "adaptive_" + kind, "output_size": _tuple(size)}]
        return [{"op": kind, "size": _tuple(getattr(module, "kernel_size", None))}]
    elif cls in ("Flatten", "Unflatten"):
        return [{"op": "reshape"}]
    elif cls in ("Embedding", "EmbeddingBag"):
        return [{"op": "gather", "variable": "weight", "output_dim": module.embedding_dim}]
    elif cls == "MultiheadAttention":
        return [{"op": "attention", "num_heads": module.num_heads}]
    elif cls == "Identity":
        return [{"op": "identity"}]
    elif cls.startswith(("Upsample", "Upsampling")):
        return [{"op": "upsample"}]
    else:
        return [{"op": cls}]
    if has_bias:
        steps.append({"op": "add", "variable": "bias"})
    return steps


def module_activation(module: Any) -> str | None:
    """``activation`` of a layer entry: an activation module's own name, else null.

    A function applied after a module (``F.relu(self.fc(x))``) is listed in its operations,
    not here: in Keras, ``activation`` is part of the layer's stored output, and a torch
    module's stored output (its hook's) comes before the function.
    """
    name = torch_kind(module).lower()
    return ACTIVATIONS.get(name)


_SIMPLE = (bool, int, float, str)


def module_config(module: Any) -> dict[str, Any]:
    """The module's plain attributes (``in_features``, ``kernel_size``, ``p``...): what
    ``extra_repr`` prints, as JSON, for torch's modules and custom ones alike."""
    config: dict[str, Any] = {}
    for key, value in vars(module).items():
        if key.startswith("_") or key == "training":
            continue
        if isinstance(value, _SIMPLE) or (
            isinstance(value, (tuple, list)) and all(isinstance(v, _SIMPLE) for v in value)
        ):
            config[key] = jsonable(value)
    if torch_kind(module) in CHANNELS_FIRST:
        config.setdefault("data_format", "channels_first")
    return config


def is_layer(module: Any) -> bool:
    """A module recorded as a layer: a leaf, or one that owns state itself."""
    if not any(True for _ in module.children()):
        return True
    return bool(module._parameters) or bool(
        {k for k, v in module._buffers.items() if v is not None}
        - set(module._non_persistent_buffers_set)
    )


def layer_modules(model: Any) -> dict[str, Any]:
    """Qualified name → module for every layer of ``model``, in registration order.

    Names are those of ``named_modules`` (``0``, ``block.conv1``), so a layer's variables
    are its ``state_dict`` keys without the prefix. The model itself is a layer only when
    it is a leaf or owns state.
    """
    out: dict[str, Any] = {}
    for name, module in model.named_modules():
        if is_layer(module):
            out[name or type(model).__name__] = module
    return out


#: Functions of several tensors that become nodes of their own (as Keras' merge layers):
#: operation → the Keras class name the read side knows them by.
MERGES = {
    "add": "Add",
    "subtract": "Subtract",
    "multiply": "Multiply",
    "concatenate": "Concatenate",
    "stack": "Concatenate",
    "maximum": "Maximum",
    "minimum": "Minimum",
}


@dataclass
class Traced:
    """What ``torch.fx`` saw of a model's forward: edges, functions, inputs and outputs."""

    inbound: dict[str, list[str]] = field(default_factory=dict)
    functional: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)  # layer → calls in the graph
    #: Layers whose parameters the traced forward reads directly (``self.fc.forward(x)``,
    #: ``F.linear(x, self.fc.weight)``): their hooks never see those uses.
    bypassed: list[str] = field(default_factory=list)
    #: Layers and merges in the order of their first call in the graph.
    order: list[str] = field(default_factory=list)
    #: Merge nodes (``x + block(x)``, ``torch.cat``): name → (class name, fx target).
    merges: dict[str, tuple[str, str]] = field(default_factory=dict)


def trace(model: Any, layers: dict[str, Any]) -> Traced:
    """Trace ``model`` with ``torch.fx``, every layer a leaf; raises when tracing fails."""
    import torch.fx  # the recorder's framework; never imported by the read side

    by_id = {id(m): name for name, m in layers.items()}
    root_name = type(model).__name__

    class LayerTracer(torch.fx.Tracer):
        def is_leaf_module(self, module: Any, qualified_name: str) -> bool:
            """Layers are leaves: childless ones, and torch's own modules with children
            (``nn.MultiheadAttention``), which fx would otherwise trace through."""
            if id(module) not in by_id:
                return False
            childless = not any(True for _ in module.children())
            return childless or bool(super().is_leaf_module(module, qualified_name))

    graph = LayerTracer().trace(model)
    traced = Traced()
    sources: dict[Any, list[str]] = {}  # fx node → layers whose outputs reach it
    owner: dict[Any, str | None] = {}  # fx node → the one layer it is a function of
    param_owner: dict[str, str] = {}
    for name, module in layers.items():
        prefix = "" if name == root_name and module is model else f"{name}."
        for pname, _ in module.named_parameters(recurse=False):
            param_owner[f"{prefix}{pname}"] = name

    def node_inputs(node: Any) -> list[Any]:
        found: list[Any] = []

        def visit(value: Any) -> None:
            if isinstance(value, torch.fx.Node):
                found.append(value)
            elif isinstance(value, (list, tuple)):
                for v in value:
                    visit(v)
            elif isinstance(value, dict):
                for v in value.values():
                    visit(v)

        visit(node.args)
        visit(node.kwargs)
        return found

    def merged(nodes: Iterable[Any]) -> list[str]:
        out: list[str] = []
        for n in nodes:
            for name in sources.get(n, []):
                if name not in out:
                    out.append(name)
        return out

    for node in graph.nodes:
        inputs = node_inputs(node)
        if node.op == "placeholder":
            traced.inputs.append(str(node.target))
            sources[node] = [str(node.target)]
            owner[node] = None
        elif node.op == "get_attr":
            sources[node], owner[node] = [], None
            layer = param_owner.get(str(node.target))
            childless = layer is not None and not any(True for _ in layers[layer].children())
            if childless and layer is not None and layer not in traced.bypassed:
                traced.bypassed.append(layer)
        elif node.op == "call_module":
            name = by_id.get(id(model.get_submodule(node.target)), str(node.target))
            inbound = traced.inbound.setdefault(name, [])
            for source in merged(inputs):
                if source not in inbound:
                    inbound.append(source)
            traced.calls[name] = traced.calls.get(name, 0) + 1
            if name not in traced.order:
                traced.order.append(name)
            sources[node], owner[node] = [name], name
        elif node.op in ("call_function", "call_method"):
            flowing = [n for n in inputs if sources.get(n)]
            sources[node] = merged(flowing)
            op = function_operation(node.target)
            if len(flowing) >= 2 and op in MERGES:
                name = str(node.name)
                while name in layers or name in traced.merges:
                    name += "_"
                traced.merges[name] = (MERGES[op], _op_name(node.target))
                traced.inbound[name] = sources[node]
                traced.calls[name] = 1
                traced.order.append(name)
                traced.functional[name] = [{"op": op, "functional": True}]
                sources[node], owner[node] = [name], name
                continue
            following = owner.get(flowing[0]) if len(flowing) == 1 else None
            if following is not None:
                name = following
                owner[node] = name
                if op is not None and traced.calls.get(name, 0) <= 1:
                    step: dict[str, Any] = {"op": op, "functional": True}
                    if op in ("add", "multiply", "subtract", "divide") and len(inputs) == 1:
                        constant = next((a for a in node.args if isinstance(a, (int, float))), None)
                        if constant is not None:
                            step["value"] = constant
                    traced.functional.setdefault(name, []).append(step)
            else:
                owner[node] = None
        elif node.op == "output":
            traced.outputs = merged(inputs)
    return traced


def _params(module: Any) -> tuple[int, int]:
    trainable = non_trainable = 0
    for p in module.parameters(recurse=False):
        if p.requires_grad:
            trainable += p.numel()
        else:
            non_trainable += p.numel()
    for name, b in module.named_buffers(recurse=False):
        if b is not None and name not in module._non_persistent_buffers_set:
            non_trainable += b.numel()
    return trainable, non_trainable


def weight_unit_axis(module: Any, name: str, ndim: int) -> int | None:
    """The axis of a weight's output units when it is not the last one.

    Keras kernels are (inputs..., units); torch's linear and convolution weights are
    (units, inputs, ...), transposed convolutions' (inputs, units, ...). Named in
    model.json, the store presents them with that axis last, Keras' layout.
    """
    cls = torch_kind(module)
    if name != "weight" or ndim < 2:
        return None
    if cls.startswith(("ConvTranspose", "LazyConvTranspose")):
        return 1
    if cls.startswith(("Linear", "LazyLinear", "Conv", "LazyConv", "Bilinear")):
        return 0
    return None


def variables(module: Any, state: dict[str, Any]) -> list[dict[str, Any]]:
    """The variable entries of a layer from its own ``state_dict`` items (name → tensor)."""
    trainable = {n for n, p in module.named_parameters(recurse=False) if p.requires_grad}
    out = []
    for name, tensor in state.items():
        entry: dict[str, Any] = {
            "name": name,
            "shape": list(tensor.shape),
            "dtype": str(tensor.dtype).removeprefix("torch."),
            "trainable": name in trainable,
        }
        axis = weight_unit_axis(module, name, tensor.ndim)
        if axis is not None:
            entry["unit_axis"] = axis
        out.append(entry)
    return out


def channel_axis(
    module: Any, shape: tuple[int, ...] | None, previous: tuple[int | None, int] | None
) -> int | None:
    """Axis of the units of a layer's output when it is not the last one (else None).

    ``previous`` is (channel axis, rank) of the layer this one follows. Convolutions, their
    norms and pools are channels-first (N, C, ...); linear, embedding and recurrent layers
    have their units last; elementwise layers (ReLU, Dropout, custom) follow their input.
    """
    if shape is None or len(shape) < 3:
        return None
    cls = torch_kind(module)
    if cls in CHANNELS_FIRST:
        return 1
    if cls in LAST_AXIS:
        return None
    if previous is not None and previous[1] == len(shape):
        return previous[0]
    return None


def _merge_entry(
    name: str,
    traced: Traced,
    inbound: list[str],
    shapes: dict[str, tuple[int, ...] | None],
) -> dict[str, Any]:
    """A function of several tensors (``x + y``, ``torch.cat``) as a layer without state.

    Its output shape is known when every input has the same shape and it is elementwise;
    the hooks do not see its output, so it has no stored activations.
    """
    class_name, target = traced.merges[name]
    inputs = {shapes.get(i) for i in inbound}
    shape = next(iter(inputs)) if len(inputs) == 1 and class_name != "Concatenate" else None
    shapes[name] = shape
    return {
        "name": name,
        "class_name": class_name,
        "module": "torch.fx",
        "activation": None,
        "inbound": inbound,
        "output_shape": [None, *shape[1:]] if shape is not None else None,
        "output_shapes": [[None, *shape[1:]]] if shape is not None else [],
        "params": {"trainable": 0, "non_trainable": 0},
        "variables": [],
        "operations": list(traced.functional.get(name, [])),
        "trainable": True,
        "config": {"function": target},
    }


def describe(
    model: Any,
    layers: dict[str, Any],
    order: list[str],
    shapes: dict[str, tuple[int, ...] | None],
    states: dict[str, dict[str, Any]],
    traced: Traced | None,
    trace_error: str | None,
    recorded: Callable[[str], bool],
) -> dict[str, Any]:
    """The ``architecture`` object of model.json.

    ``order``: layers in execution order (the hooks' first calls; layers that never ran
    follow in registration order). ``shapes``: each layer's output shape with the sample
    axis. ``states``: each layer's own state_dict items. ``recorded``: whether a layer's
    activations are stored (for the channel axis of layers that never ran: none).
    """
    entries: list[dict[str, Any]] = []
    axes: dict[str, tuple[int | None, int]] = {}
    for name in traced.inputs if traced is not None else []:
        entries.append(
            {
                "name": name,
                "class_name": "InputLayer",
                "module": "torch.fx",
                "activation": None,
                "inbound": [],
                "output_shape": None,
                "output_shapes": [],
                "params": {"trainable": 0, "non_trainable": 0},
                "variables": [],
                "operations": [{"op": "input"}],
                "trainable": False,
                "config": {},
            }
        )
    previous: str | None = None
    if traced is not None:
        order = [*traced.order, *(n for n in order if n not in traced.order)]
    for name in order:
        inbound = list(traced.inbound.get(name, [])) if traced is not None else []
        if traced is not None and name in traced.merges:
            merge = _merge_entry(name, traced, inbound, shapes)
            source = next((axes[i] for i in inbound if i in axes), None)
            if source is not None and merge["output_shape"] is not None:
                axes[name] = source
                if source[0] is not None:
                    merge["channel_axis"] = source[0]
            entries.append(merge)
            continue
        if name not in layers:
            continue
        module = layers[name]
        shape = shapes.get(name)
        trainable, non_trainable = _params(module)
        follows = next((n for n in inbound if n in axes), previous if traced is None else None)
        axis = channel_axis(module, shape, axes.get(follows) if follows else None)
        if shape is not None:
            axes[name] = (axis, len(shape))
        operations = module_operations(module)
        if traced is not None:
            operations += traced.functional.get(name, [])
        entry: dict[str, Any] = {
            "name": name,
            "class_name": type(module).__name__,
            "module": type(module).__module__,
            "activation": module_activation(module),
            "inbound": inbound,
            "output_shape": [None, *shape[1:]] if shape is not None else None,
            "output_shapes": [[None, *shape[1:]]] if shape is not None else [],
            "params": {"trainable": trainable, "non_trainable": non_trainable},
            "variables": variables(module, states.get(name, {})),
            "operations": operations,
            "trainable": any(p.requires_grad for p in module.parameters(recurse=False))
            or not any(True for _ in module.parameters(recurse=False)),
            "config": module_config(module),
        }
        if axis is not None:
            entry["channel_axis"] = axis
        if traced is not None and traced.calls.get(name, 0) > 1:
            entry["shared"] = True
        entries.append(entry)
        if recorded(name):
            previous = name
    totals = [0, 0]
    for entry in entries:
        totals[0] += entry["params"]["trainable"]
        totals[1] += entry["params"]["non_trainable"]
    out: dict[str, Any] = {
        "class_name": type(model).__name__,
        "name": type(model).__name__,
        "graph": traced is not None,
        "inputs": list(traced.inputs) if traced is not None else [],
        "outputs": list(traced.outputs) if traced is not None else [],
        "layers": entries,
        "params": {"trainable": totals[0], "non_trainable": totals[1], "total": sum(totals)},
        "framework": "torch",
        "layout": "channels_first",
    }
    if trace_error is not None:
        out["trace_error"] = trace_error
    return out
