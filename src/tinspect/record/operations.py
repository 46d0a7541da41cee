"""Inner operations of a layer: what a layer computes, as a short list of named steps.

A Dense layer is ``matmul(kernel) → add(bias) → relu``; a model developer reading a layer
graph needs this to see, e.g., that a VAE's ``z_mean`` ends in a ReLU. The table is data:
one entry per Keras layer class, read from the layer's config (no Keras import needed here).
Each step is ``{"op": name, **parameters}``; ``format.operations_text`` renders them in one line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Step = dict[str, Any]
Config = Mapping[str, Any]


def activation_name(config: Config) -> str | None:
    act = config.get("activation")
    if isinstance(act, Mapping):  # serialized custom activation
        act = act.get("config", {}).get("name") or act.get("class_name")
    if act in (None, "linear"):
        return None
    return str(act)


def _affine(product: str) -> Callable[[Config], list[Step]]:
    def steps(config: Config) -> list[Step]:
        out: list[Step] = [{"op": product, "variable": "kernel"}]
        if config.get("use_bias", True):
            out.append({"op": "add", "variable": "bias"})
        act = activation_name(config)
        if act:
            out.append({"op": act})
        return out

    return steps


def _separable(config: Config) -> list[Step]:
    out: list[Step] = [
        {"op": "depthwise_conv", "variable": "depthwise_kernel"},
        {"op": "pointwise_conv", "variable": "pointwise_kernel"},
    ]
    if config.get("use_bias", True):
        out.append({"op": "add", "variable": "bias"})
    act = activation_name(config)
    if act:
        out.append({"op": act})
    return out


def _normalization(stats: str) -> Callable[[Config], list[Step]]:
    def steps(config: Config) -> list[Step]:
        out: list[Step] = [{"op": "normalize", "over": stats}]
        if config.get("scale", True):
            out.append({"op": "multiply", "variable": "gamma"})
        if config.get("center", True):
            out.append({"op": "add", "variable": "beta"})
        return out

    return steps


def _pool(kind: str) -> Callable[[Config], list[Step]]:
    def steps(config: Config) -> list[Step]:
        step: Step = {"op": kind}
        if "pool_size" in config:
            step["size"] = config["pool_size"]
        return [step]

    return steps


def _one(op: str, *keys: str) -> Callable[[Config], list[Step]]:
    def steps(config: Config) -> list[Step]:
        step: Step = {"op": op}
        for key in keys:
            if key in config:
                step[key] = config[key]
        return [step]

    return steps


def _activation_layer(config: Config) -> list[Step]:
    return [{"op": activation_name(config) or "linear"}]


def _recurrent(cell: str) -> Callable[[Config], list[Step]]:
    def steps(config: Config) -> list[Step]:
        out: list[Step] = [
            {"op": f"{cell}_cell", "variable": "kernel"},
            {"op": "recurrent", "variable": "recurrent_kernel"},
        ]
        act = activation_name(config)
        if act:
            out.append({"op": act})
        return out

    return steps


#: Layer class name → function of the layer config giving its steps.
OPERATIONS: dict[str, Callable[[Config], list[Step]]] = {
    "InputLayer": _one("input"),
    "Dense": _affine("matmul"),
    "EinsumDense": _one("einsum", "equation"),
    "Conv1D": _affine("conv1d"),
    "Conv2D": _affine("conv2d"),
    "Conv3D": _affine("conv3d"),
    "Conv1DTranspose": _affine("conv1d_transpose"),
    "Conv2DTranspose": _affine("conv2d_transpose"),
    "Conv3DTranspose": _affine("conv3d_transpose"),
    "DepthwiseConv2D": _affine("depthwise_conv2d"),
    "SeparableConv2D": _separable,
    "SeparableConv1D": _separable,
    "BatchNormalization": _normalization("batch"),
    "LayerNormalization": _normalization("features"),
    "GroupNormalization": _normalization("groups"),
    "Normalization": _one("standardize"),
    "Dropout": _one("dropout", "rate"),
    "SpatialDropout1D": _one("dropout", "rate"),
    "SpatialDropout2D": _one("dropout", "rate"),
    "GaussianNoise": _one("gaussian_noise", "stddev"),
    "GaussianDropout": _one("gaussian_dropout", "rate"),
    "AlphaDropout": _one("alpha_dropout", "rate"),
    "Activation": _activation_layer,
    "ReLU": _one("relu", "max_value", "negative_slope"),
    "LeakyReLU": _one("leaky_relu", "negative_slope"),
    "PReLU": _one("prelu"),
    "ELU": _one("elu", "alpha"),
    "Softmax": _one("softmax", "axis"),
    "Flatten": _one("reshape"),
    "Reshape": _one("reshape", "target_shape"),
    "Permute": _one("transpose", "dims"),
    "RepeatVector": _one("repeat", "n"),
    "Add": _one("add"),
    "Subtract": _one("subtract"),
    "Multiply": _one("multiply"),
    "Average": _one("average"),
    "Maximum": _one("maximum"),
    "Minimum": _one("minimum"),
    "Concatenate": _one("concatenate", "axis"),
    "Dot": _one("dot", "axes"),
    "MaxPooling1D": _pool("max_pool"),
    "MaxPooling2D": _pool("max_pool"),
    "MaxPooling3D": _pool("max_pool"),
    "AveragePooling1D": _pool("avg_pool"),
    "AveragePooling2D": _pool("avg_pool"),
    "AveragePooling3D": _pool("avg_pool"),
    "GlobalAveragePooling1D": _one("global_avg_pool"),
    "GlobalAveragePooling2D": _one("global_avg_pool"),
    "GlobalMaxPooling1D": _one("global_max_pool"),
    "GlobalMaxPooling2D": _one("global_max_pool"),
    "UpSampling1D": _one("upsample", "size"),
    "UpSampling2D": _one("upsample", "size"),
    "ZeroPadding2D": _one("pad", "padding"),
    "Cropping2D": _one("crop", "cropping"),
    "Embedding": _one("gather", "output_dim"),
    "SimpleRNN": _recurrent("rnn"),
    "LSTM": _recurrent("lstm"),
    "GRU": _recurrent("gru"),
    "MultiHeadAttention": _one("attention", "num_heads", "key_dim"),
    "Rescaling": _one("rescale", "scale", "offset"),
}


def inner_operations(class_name: str, config: Config) -> list[Step]:
    """The steps of a layer of ``class_name``; unknown classes are one step named after them."""
    rule = OPERATIONS.get(class_name)
    if rule is None:
        return [{"op": class_name}]
    try:
        return rule(config)
    except (TypeError, AttributeError):  # a config that does not look like Keras' own
        return [{"op": class_name}]
