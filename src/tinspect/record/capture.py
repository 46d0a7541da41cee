"""Activations of every recorded layer on the fixed samples, with one model call.

An *extractor* is a functional model from the model's inputs to the outputs of the recorded
layers and of the model itself; one call gives every activation and the predictions.
To let training go on while a checkpoint is computed, the extractor is cloned once into a
*shadow* with its own variables: at a checkpoint the main thread only copies the weights
(``get_weights``) and the writer thread loads them into the shadow and runs it. If cloning
fails (e.g. a custom layer without a usable ``get_config``), the activations are computed on
the main thread instead, which is correct, only slower.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from tinspect.record.architecture import graph_nodes


@dataclass
class Plan:
    """Which layers are captured, at which extractor output, and which are skipped and why."""

    captured: list[str]  # layer names, in graph order
    prediction_index: list[int]  # extractor output index of each model output
    skipped: dict[str, str]


class Capture:
    """Builds the extractor (and its shadow) for a model and runs it on the samples."""

    def __init__(self, model: Any, wanted: list[str] | None) -> None:
        self.model = model
        self.extractor: Any | None = None
        self.shadow: Any | None = None
        self.plan = Plan([], [], {})
        self.reason: str | None = None
        nodes = graph_nodes(model)
        if not nodes:
            self.reason = (
                "the model has no symbolic graph (a subclassed model), so layer outputs "
                "cannot be captured; weights, predictions and metrics are still recorded"
            )
            return
        outputs: list[Any] = []
        seen: dict[int, int] = {}
        captured: list[str] = []
        skipped: dict[str, str] = {}
        for layer, _inbound, _shapes in nodes:
            name = layer.name
            if type(layer).__name__ == "InputLayer" or name in captured or name in skipped:
                continue
            if wanted is not None and name not in wanted:
                continue
            tensors = self._node_outputs(layer)
            if not tensors:
                skipped[name] = "its output could not be found in the model graph"
                continue
            if len(tensors) > 1:
                skipped[name] = (
                    f"it has {len(tensors)} outputs; only single-output layers are captured"
                )
                continue
            seen[id(tensors[0])] = len(outputs)
            outputs.append(tensors[0])
            captured.append(name)
        prediction_index = []
        for tensor in model.outputs:
            if id(tensor) not in seen:
                seen[id(tensor)] = len(outputs)
                outputs.append(tensor)
            prediction_index.append(seen[id(tensor)])
        self.plan = Plan(captured, prediction_index, skipped)
        try:
            self.extractor = keras.Model(model.inputs, outputs, name=f"{model.name}_tinspect")
        except Exception as error:  # noqa: BLE001 - any Keras failure means: no capture
            self.reason = f"the activation extractor could not be built ({error})"
            self.plan = Plan([], [], {})
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.shadow = keras.models.clone_model(self.extractor)
        except Exception:  # noqa: BLE001 - fall back to computing on the main thread
            self.shadow = None

    def _node_outputs(self, layer: Any) -> list[Any]:
        """Output tensors of the first call of ``layer`` inside this model's graph."""
        graph = getattr(self.model, "_functional", None) or self.model
        for depth_nodes in graph._nodes_by_depth.values():
            for node in depth_nodes:
                if node.operation is layer:
                    return list(node.output_tensors)
        return []

    @property
    def layer_weight_owners(self) -> list[Any]:
        """Layers of the extractor that hold variables (their weights are copied)."""
        if self.extractor is None:
            return []
        return [layer for layer in self.extractor.layers if layer.weights]

    def snapshot(self) -> dict[str, list[np.ndarray]]:
        """A copy of the weights of every layer the extractor runs (main thread, cheap)."""
        return {layer.name: layer.get_weights() for layer in self.layer_weight_owners}

    def run(
        self, inputs: list[np.ndarray], weights: dict[str, list[np.ndarray]] | None
    ) -> tuple[list[Any], float]:
        """Outputs of the extractor on ``inputs`` and the seconds the call took.

        With ``weights`` the shadow is loaded with them and used (safe in another thread,
        since training never touches the shadow's variables); without, the live extractor.
        """
        if weights is not None and self.shadow is not None:
            model = self.shadow
            for layer in model.layers:
                if layer.name in weights:
                    layer.set_weights(weights[layer.name])
        else:
            model = self.extractor
        assert model is not None
        start = time.perf_counter()
        outputs = model(list(inputs), training=False)  # the extractor's inputs are a list
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        # Converting one output waits for every pending op, so the time is the whole call.
        keras.ops.convert_to_numpy(outputs[-1])
        return list(outputs), time.perf_counter() - start


def class_weights(class_ids: np.ndarray | None, n_classes: int) -> Any | None:
    """A (n_classes × n_samples) matrix whose product with activations gives class means."""
    if class_ids is None or n_classes <= 0:
        return None
    onehot = np.zeros((n_classes, class_ids.shape[0]), dtype=np.float32)
    valid = (class_ids >= 0) & (class_ids < n_classes)
    onehot[class_ids[valid], np.nonzero(valid)[0]] = 1.0
    counts = onehot.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = onehot / counts  # NaN rows for classes absent from the samples
    return keras.ops.convert_to_tensor(weights)


def layer_arrays(
    output: Any, class_matrix: Any | None, dtype: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """(activations cast to ``dtype``, per-class means in float32) as numpy arrays.

    Both are computed with backend ops: casting float32 → float16 there measured ~9× faster
    than numpy's ``astype`` here, and the class means are one matrix product.
    """
    ops = keras.ops
    mean_class = None
    if class_matrix is not None and len(output.shape) >= 1:
        flat = ops.reshape(ops.cast(output, "float32"), (output.shape[0], -1))
        means = ops.matmul(class_matrix, flat)
        mean_class = ops.convert_to_numpy(means).reshape((-1, *tuple(output.shape[1:])))
    stored = ops.convert_to_numpy(ops.cast(output, dtype))
    return stored, mean_class
