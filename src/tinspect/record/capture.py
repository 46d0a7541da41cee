"""Activations of every recorded layer on the fixed samples, with one model call.

An *extractor* is a functional model from the model's inputs to the outputs of the recorded
layers and of the model itself. To let training go on while a checkpoint is computed, the
extractor is cloned once into a *shadow* with its own variables: at a checkpoint the main
thread only copies the weights (``get_weights``) and the writer thread loads them into the
shadow and runs it. If cloning fails (e.g. a custom layer without a usable ``get_config``),
the activations are computed on the main thread instead, which is correct, only slower.

On TensorFlow a run can be one ``tf.function``: the shadow's forward pass plus the float16
casts and the per-class means (``Capture._post_process``, the same ``keras.ops`` code the
eager run executes). Measured on the demo conv model with 512 samples, with the extremes:
~9 ms CPU per checkpoint traced instead of ~19 ms eager, and the eager forward pass holds
the GIL for most of its time (a probe thread waiting on it was 7.7 ms late per run, 2 ms
traced). Setting it up (tracing, then grappler on the first call) costs ~60 ms. The
callback therefore traces it in the writer thread, with the initialization checkpoint,
which waits for the end of epoch 0 (beside ``fit``'s own tracing it cost ~3× as much),
for fits of at least ``WRITER_COMPILE_MIN_CHECKPOINTS`` checkpoints; without a
shadow the run is on the main thread, where tracing delays training one for one, so only
for fits of at least ``COMPILE_MIN_CHECKPOINTS``. Other backends, or a model that fails
to trace, run eagerly. On torch the eager run skips Keras' channels-first copies of
convolution and pooling inputs (``keras_torch_layout``: 22-27 → 8 ms of CPU per demo
checkpoint, the same values), and falls back to Keras' own path if that ever fails.
"""

from __future__ import annotations

import json
import math
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from tinspect.record.architecture import graph_nodes
from tinspect.record.keras_imports import no_tensorflow_import
from tinspect.record.keras_torch_layout import permuted_views


@dataclass
class Plan:
    """Which layers are captured, at which extractor output, and which are skipped and why."""

    captured: list[str]  # layer names, in graph order
    prediction_index: list[int]  # extractor output index of each model output
    skipped: dict[str, str]
    #: layer → its only inbound layer, when both are captured and have as many values per
    #: sample (Flatten, Reshape, Dropout at inference): candidates for storing once.
    same_size_inbound: dict[str, str] = field(default_factory=dict)
    #: layer → values per sample of its output (None when a dimension is unknown).
    values_per_sample: dict[str, int | None] = field(default_factory=dict)

    def stored_values_per_sample(self) -> int | None:
        """Activation values one sample adds to a checkpoint at most, or None when a
        captured layer's output shape is not fully known before the run (e.g. a variable
        sequence length).

        Every captured layer counts, also one that will be stored as a link to its inbound
        layer's values (``same_size_inbound`` are only candidates: a Dense layer as wide as
        its input is one too), so the bytes actually stored are at most this.
        """
        total = 0
        for name in self.captured:
            values = self.values_per_sample.get(name)
            if values is None:
                return None
            total += values
        return total


#: Fits planning at least this many checkpoints compile the recorder on the main thread
#: (no shadow; see the module doc): at 6 the tracing and the savings measured even.
COMPILE_MIN_CHECKPOINTS = 8
#: The same in the writer thread, where the tracing is off the critical path.
WRITER_COMPILE_MIN_CHECKPOINTS = 3
#: Backends whose recorder can be compiled into one function (see ``Capture._compiled``);
#: on torch it runs eagerly (``torch.compile`` was not tried).
COMPILED = ("tensorflow", "jax")

#: Per unit of a layer's last axis: (min, max) over samples and other axes, float64.
UnitExtremes = tuple[np.ndarray, np.ndarray]


@dataclass
class Activations:
    """One run of the extractor on the samples, as numpy arrays."""

    stored: list[np.ndarray]  # per captured layer, cast to the activations dtype
    class_means: list[np.ndarray | None]  # per captured layer, float32 (n_classes × …)
    predictions: list[np.ndarray]  # per model output, float32
    seconds: float  # of one model call on all samples
    #: Per captured layer, when asked for; None for a layer with non-finite values.
    extremes: list[UnitExtremes | None] | None = None

    def extremes_by_layer(self, plan: Plan) -> dict[str, UnitExtremes]:
        if self.extremes is None:
            return {}
        return {n: e for n, e in zip(plan.captured, self.extremes, strict=True) if e is not None}

    def aliases(self, plan: Plan) -> dict[str, str]:
        """Layer → the earlier layer whose stored bytes (activations and class means) it repeats.

        Chains resolve to the first layer (pool → flatten → dropout: both alias ``pool``).
        Bytes, not values, are compared, so -0.0 and NaN payloads are never conflated.
        """
        index = {name: i for i, name in enumerate(plan.captured)}
        out: dict[str, str] = {}
        for layer, source in plan.same_size_inbound.items():
            i, j = index[layer], index[source]
            if _same_bytes(self.stored[i], self.stored[j]) and _same_bytes(
                self.class_means[i], self.class_means[j]
            ):
                out[layer] = out.get(source, source)
        return out


def _same_bytes(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if a.dtype != b.dtype or a.size != b.size or a.shape[:1] != b.shape[:1]:
        return False
    return bool(
        np.array_equal(
            np.ascontiguousarray(a).reshape(-1).view(np.uint8),
            np.ascontiguousarray(b).reshape(-1).view(np.uint8),
        )
    )


def _values_per_sample(shape: tuple[int | None, ...]) -> int | None:
    dims = shape[1:]
    return math.prod(dims) if all(d is not None for d in dims) else None  # type: ignore[misc]


class Capture:
    """Builds the extractor (and its shadow) for a model and runs it on the samples.

    Args:
        model: the model being trained.
        wanted: names of the layers to record, or None for all.
        class_matrix: (n_classes × n_samples) weights whose product with the flattened
            activations gives the per-class means (``class_weights``), or None.
        dtype: the stored activations' dtype (``"float16"`` or ``"float32"``).
    """

    def __init__(
        self,
        model: Any,
        wanted: list[str] | None,
        class_matrix: np.ndarray | None = None,
        dtype: str = "float16",
    ) -> None:
        self.model = model
        self._class_tensor = (
            None if class_matrix is None else keras.ops.convert_to_tensor(class_matrix)
        )
        #: Compiled recorders by (id of the model run, with extremes); see ``_compiled``.
        self._functions: dict[tuple[int, bool], Any] = {}
        #: Why compiling failed, if it did: then every run is eager.
        self._compile_error: str | None = None
        #: Why the torch run without layout copies failed, if it did: then Keras' own path.
        self._views_error: str | None = None
        self.dtype = dtype
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
        inbound_of: dict[str, list[str]] = {}
        for layer, inbound, _shapes in nodes:
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
            inbound_of[name] = inbound
        prediction_index = []
        for tensor in model.outputs:
            if id(tensor) not in seen:
                seen[id(tensor)] = len(outputs)
                outputs.append(tensor)
            prediction_index.append(seen[id(tensor)])
        same_size: dict[str, str] = {}
        sizes = {n: _values_per_sample(tuple(outputs[i].shape)) for i, n in enumerate(captured)}
        for name in captured:
            inbound, size = inbound_of[name], sizes[name]
            if len(inbound) == 1 and size is not None and sizes.get(inbound[0]) == size:
                same_size[name] = inbound[0]
        self.plan = Plan(captured, prediction_index, skipped, same_size, sizes)
        try:
            self.extractor = keras.Model(model.inputs, outputs, name=f"{model.name}_tinspect")
        except Exception as error:  # noqa: BLE001 - any Keras failure means: no capture
            self.reason = f"the activation extractor could not be built ({error})"
            self.plan = Plan([], [], {})
            return
        try:
            with warnings.catch_warnings(), without_distribution():
                warnings.simplefilter("ignore")
                self.shadow = keras.models.clone_model(self.extractor)
        except Exception:  # noqa: BLE001 - fall back to computing on the main thread
            self.shadow = None

    def set_class_matrix(self, class_matrix: np.ndarray | None) -> None:
        """Per-class means from now on with this (n_classes × n_samples) matrix (the callback
        sets it again when it records fewer samples than it was given)."""
        self._class_tensor = (
            None if class_matrix is None else keras.ops.convert_to_tensor(class_matrix)
        )
        self._functions.clear()  # a compiled recorder holds the old matrix as a constant

    def _node_outputs(self, layer: Any) -> list[Any]:
        """Output tensors of the first call of ``layer`` inside this model's graph."""
        graph = getattr(self.model, "_functional", None) or self.model
        for depth_nodes in graph._nodes_by_depth.values():
            for node in depth_nodes:
                if node.operation is layer:
                    return list(node.output_tensors)
        return []

    def run(
        self,
        inputs: list[np.ndarray],
        weights: dict[str, list[np.ndarray]] | None,
        extremes: bool = False,
        compiled: bool = False,
    ) -> Activations:
        """The activations, class means and predictions on ``inputs``, timed.

        With ``weights`` the shadow is loaded with them and used (safe in another thread,
        since training never touches the shadow's variables); without, the live extractor.
        With ``extremes``, also each layer's per-unit extremes (for the checks). With
        ``compiled`` (and TensorFlow), as one traced graph (see the module doc).
        """
        if weights is not None and self.shadow is not None:
            base = self.shadow
            for layer in base.layers:
                if layer.name in weights:
                    layer.set_weights(weights[layer.name])
        else:
            base = self.extractor
        assert base is not None
        if compiled and self._compile_error is None and keras.backend.backend() in COMPILED:
            try:
                return self._run_compiled(base, list(inputs), extremes)
            except Exception as error:  # noqa: BLE001 - the eager path computes the same
                self._compile_error = f"{type(error).__name__}: {error}"
        return self._run_eager(base, list(inputs), extremes)

    # --- the run: forward pass, then one post-processing in backend ops ----------------------
    def _post_process(self, outputs: Any, n: int, extremes: bool) -> dict[str, list[Any]]:
        """``post_process`` with this capture's plan, dtype and class matrix."""
        return post_process(
            outputs,
            n,
            extremes,
            self._class_tensor,
            len(self.plan.captured),
            self.plan.prediction_index,
            self.dtype,
        )

    def _activations(self, out: dict[str, list[Any]], seconds: float) -> Activations:
        """``_post_process``'s tensors as numpy arrays, split into what a checkpoint holds."""
        arrays = {key: [_to_numpy(t) for t in tensors] for key, tensors in out.items()}
        stored = arrays["stored"]
        means: list[np.ndarray | None] = [None] * len(stored)
        if arrays["means"]:
            pairs = zip(arrays["means"], stored, strict=True)
            means = [m.reshape((-1, *a.shape[1:])) for m, a in pairs]
        found: list[UnitExtremes | None] | None = None
        if arrays["values"]:
            found = [
                unit_extremes(v, a.shape, self.dtype)
                for v, a in zip(arrays["values"], stored, strict=True)
            ]
        return Activations(stored, means, arrays["predictions"], seconds, found)

    def _compiled(self, base: Any, n: int, extremes: bool) -> Callable[[list[Any]], Any]:
        """The recorder as one compiled function of the inputs: a ``tf.function`` on
        TensorFlow; on JAX a ``jax.jit`` shared by every model of the same architecture in
        this process (``_jax_recorder``), to which the variables' current values are passed
        at each call, so neither new weights nor a new model of that architecture compile
        it again."""
        key = (id(base), extremes)
        function = self._functions.get(key)
        if function is not None:
            return function
        if keras.backend.backend() == "jax":
            import jax  # the recorder's backend; never imported by the viewer

            jitted = self._jax_recorder(base, n, extremes)
            matrix = self._class_tensor

            def function(inputs: list[Any]) -> Any:
                out = jitted(
                    [v.value for v in base.trainable_variables],
                    [v.value for v in base.non_trainable_variables],
                    inputs,
                    matrix,
                )
                return jax.block_until_ready(out)  # JAX dispatches asynchronously

        else:
            import tensorflow as tf  # the recorder's backend; never imported by the viewer

            def record(inputs: list[Any]) -> dict[str, list[Any]]:
                return self._post_process(base(inputs, training=False), n, extremes)

            function = tf.function(record, autograph=False)
        self._functions[key] = function
        return function

    def _jax_recorder(self, base: Any, n: int, extremes: bool) -> Callable[..., Any]:
        """A ``jax.jit`` of ``base``'s ``stateless_call`` and the post-processing, as a
        function of (trainable values, non-trainable values, inputs, class matrix).

        Compiling it took ~0.45 s of CPU on the demo conv model, in a fit of ~3.3 s (of
        which ~2.3 s is Keras compiling its own train and test steps): as much as the
        recorder's whole budget. Every ``fit`` of a fresh model (a sweep, the bench's
        rounds) would pay it again, since ``jax.jit`` caches by function object. So the
        function is shared by every capture whose extractor has the same architecture
        (``jax_architecture_key``); the model it was traced with only supplies the
        computation, the values are always the caller's. A model with a layer from outside
        Keras is never shared: its ``get_config`` may not describe everything its call
        depends on.
        """
        import jax  # the recorder's backend; never imported by the viewer

        captured = len(self.plan.captured)
        prediction_index = list(self.plan.prediction_index)
        dtype = self.dtype
        key = jax_architecture_key(base)
        if key is not None:
            matrix = self._class_tensor
            key = (
                key,
                n,
                extremes,
                dtype,
                captured,
                tuple(prediction_index),
                None if matrix is None else (tuple(matrix.shape), str(matrix.dtype)),
            )
            with _JAX_RECORDERS_LOCK:  # several callbacks' writer threads may ask
                shared = _JAX_RECORDERS.get(key)
                if shared is not None:
                    _JAX_RECORDERS.move_to_end(key)
                    return shared

        def stateless(trainable: Any, non_trainable: Any, inputs: list[Any], matrix: Any) -> Any:
            outputs, _ = base.stateless_call(trainable, non_trainable, inputs, training=False)
            return post_process(outputs, n, extremes, matrix, captured, prediction_index, dtype)

        jitted = jax.jit(stateless)
        if key is not None:
            with _JAX_RECORDERS_LOCK:
                _JAX_RECORDERS[key] = jitted
                while len(_JAX_RECORDERS) > JAX_RECORDERS_KEPT:
                    _JAX_RECORDERS.popitem(last=False)
        return jitted

    def _run_compiled(self, base: Any, inputs: list[np.ndarray], extremes: bool) -> Activations:
        n = int(inputs[0].shape[0])
        first = (id(base), extremes) not in self._functions
        function = self._compiled(base, n, extremes)
        if first:
            function(inputs)  # traces and compiles: not part of the timed inference
        start = time.perf_counter()
        out = function(inputs)  # returns when the computation has run
        return self._activations(out, time.perf_counter() - start)

    def _run_eager(self, base: Any, inputs: list[np.ndarray], extremes: bool) -> Activations:
        """The run as Keras calls, without autograd; on torch without Keras' layout copies
        (``keras_torch_layout``) unless that failed once for this capture, then as Keras does."""
        if keras.backend.backend() == "torch" and self._views_error is None:
            try:
                with permuted_views():
                    return self._forward(base, inputs, extremes)
            except Exception as error:  # noqa: BLE001 - Keras' own code path computes the same
                self._views_error = f"{type(error).__name__}: {error}"
        return self._forward(base, inputs, extremes)

    def _forward(self, base: Any, inputs: list[np.ndarray], extremes: bool) -> Activations:
        with _no_autograd():
            start = time.perf_counter()
            outputs = base(inputs, training=False)  # the extractor's inputs are a list
            if not isinstance(outputs, (list, tuple)):
                outputs = [outputs]
            # Converting one output waits for every pending op, so the time is the whole call.
            _to_numpy(outputs[-1])
            seconds = time.perf_counter() - start
            return self._activations(
                self._post_process(outputs, int(inputs[0].shape[0]), extremes), seconds
            )


@contextmanager
def _no_autograd() -> Iterator[None]:
    """On torch, ``torch.no_grad`` for this thread; elsewhere nothing.

    A Keras call on the torch backend records the autograd graph of every op unless told
    not to (the trainable variables require gradients); the recorder never differentiates.
    Measured on the 28×28 bench model (175 samples, one checkpoint, thread CPU): the
    forward pass with the post-processing 54-80 ms with the graph, 23 ms without, and the
    whole checkpoint 110-128 ms against 67 ms. On that backend training holds the GIL for
    most of its time, so the writer's CPU time is training's delay. ``no_grad`` is
    thread-local: the training thread's gradients are untouched.
    """
    if keras.backend.backend() != "torch":
        yield
        return
    import torch  # the recorder's backend; never imported by the viewer

    with torch.no_grad():
        yield


def post_process(
    outputs: Any,
    n: int,
    extremes: bool,
    matrix: Any | None,
    captured: int,
    prediction_index: list[int],
    dtype: str,
) -> dict[str, list[Any]]:
    """The extractor's ``outputs`` → stored (cast) arrays, class means, predictions and,
    for the extremes, the float32 values by sample, as backend tensors.

    ``captured`` outputs come first; ``prediction_index`` locates the model's outputs;
    ``matrix`` is the (n_classes × n) class matrix, or None for no class means.

    Written with ``keras.ops`` so that one function serves both runs: traced into the
    recorder's graph, or eagerly. Few ops per layer, because a traced graph's setup
    (tracing, then grappler's optimization on the first call) grows with its op count.
    The extremes are left to numpy (``Capture._activations``): reducing (samples ×
    features) over samples measured ~5× cheaper there than in TensorFlow, and the float32
    values reach numpy without a copy. A module function, not a method, so that a shared
    JAX recorder (``Capture._jax_recorder``) holds no capture, hence no trained model.
    """
    ops = keras.ops
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    out: dict[str, list[Any]] = {"stored": [], "means": [], "values": []}
    for tensor in outputs[:captured]:
        out["stored"].append(ops.cast(tensor, dtype))
        flat = ops.reshape(ops.cast(tensor, "float32"), (n, -1))
        if matrix is not None:
            out["means"].append(ops.matmul(matrix, flat))
        if extremes:
            out["values"].append(flat)
    out["predictions"] = [ops.cast(outputs[k], "float32") for k in prediction_index]
    return out


#: Shared JAX recorders by architecture (``Capture._jax_recorder``), least recently used
#: first; each holds the shadow model it was traced with.
_JAX_RECORDERS: OrderedDict[tuple[Any, ...], Callable[..., Any]] = OrderedDict()
_JAX_RECORDERS_LOCK = threading.Lock()
#: How many architectures keep their compiled recorder (a sweep usually has one).
JAX_RECORDERS_KEPT = 8


def jax_architecture_key(model: Any) -> tuple[Any, ...] | None:
    """What a JAX recorder traced with ``model`` depends on: its configuration (layers,
    their arguments and connections, dtype policies) and its variables' paths, shapes and
    dtypes; None when a layer's class is not Keras' own (a custom layer's configuration
    may leave out what its call depends on) or the configuration cannot be serialized."""
    layers = [model]
    for layer in layers:  # grows while iterating: nested models' layers too
        if not type(layer).__module__.startswith("keras."):
            return None
        layers.extend(getattr(layer, "layers", None) or [])
    try:
        with no_tensorflow_import():  # called in the writer thread, during training
            config = json.dumps(model.get_config(), sort_keys=True, default=repr)
    except Exception:  # noqa: BLE001 - unserializable: no sharing, compile per model
        return None
    variables = tuple(
        (v.path, tuple(v.shape), str(v.dtype))
        for v in [*model.trainable_variables, *model.non_trainable_variables]
    )
    return (type(model).__name__, config, variables)


def _to_numpy(tensor: Any) -> np.ndarray:
    """A numpy view of a backend tensor on the CPU, without a copy where the backend allows:
    ``np.asarray`` shares a TensorFlow eager tensor's or a CPU JAX array's buffer, and a CPU
    torch tensor's ``numpy()`` shares its storage (``keras.ops.convert_to_numpy`` copies,
    ~2.5 ms per checkpoint of the bench model on TensorFlow)."""
    backend = keras.backend.backend()
    if backend == "torch":
        return np.asarray(tensor.detach().cpu().numpy())
    if backend in ("tensorflow", "jax"):
        return np.asarray(tensor)
    return np.asarray(keras.ops.convert_to_numpy(tensor))


@contextmanager
def without_distribution() -> Iterator[None]:
    """Build variables outside a ``keras.distribution`` set on this thread.

    The shadow must live on this process alone: under a distribution (JAX's
    ``DataParallel``) its variables would be laid out over every process's devices, so each
    forward pass of the recorder would be a collective computation that every process has
    to join (in a multi-process run that aborts with gloo's collective mismatch, since only
    process 0 records). Keras keeps the distribution per thread; training's is unaffected.
    """
    try:
        from keras.distribution import distribution, set_distribution
    except ImportError:  # a Keras without the distribution API
        yield
        return
    current = distribution()
    if current is None:
        yield
        return
    set_distribution(None)
    try:
        yield
    finally:
        set_distribution(current)


def class_weights(class_ids: np.ndarray | None, n_classes: int) -> np.ndarray | None:
    """A (n_classes × n_samples) matrix whose product with activations gives class means."""
    if class_ids is None or n_classes <= 0:
        return None
    onehot = np.zeros((n_classes, class_ids.shape[0]), dtype=np.float32)
    valid = (class_ids >= 0) & (class_ids < n_classes)
    onehot[class_ids[valid], np.nonzero(valid)[0]] = 1.0
    counts = onehot.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return onehot / counts  # NaN rows for classes absent from the samples


def unit_extremes(values: np.ndarray, shape: tuple[int, ...], dtype: str) -> UnitExtremes | None:
    """Per unit (last axis of ``shape``), (min, max) of the values as stored in ``dtype``,
    or None when that is not exact (see ``_finite_extremes``).

    ``values`` are the float32 values by sample (samples × features). They are reduced over
    samples first, the cheap direction (~4× faster than over the units' rows), then over
    each unit's features. Casting is monotonic, so the float32 extremes cast to ``dtype``
    equal ``tinspect.store.reduce.unit_extremes`` of the stored array, at a fraction of its
    cost: numpy reduces float32 with SIMD, float16 in software.
    """
    units = shape[-1] if len(shape) > 1 else 1
    if values.size == 0 or units == 0:
        return None
    lo = values.min(axis=0).reshape(-1, units).min(axis=0)  # NaN propagates: then None
    hi = values.max(axis=0).reshape(-1, units).max(axis=0)
    with np.errstate(over="ignore"):  # beyond float16's range: inf, then None
        return _finite_extremes(lo.astype(dtype), hi.astype(dtype))


def _finite_extremes(lo: np.ndarray, hi: np.ndarray) -> UnitExtremes | None:
    """(lo, hi) as float64 when every one is finite, else None: a NaN or ±inf input, no
    rows, or a float32 value that overflows float16 all mean the checks read the file."""
    if not lo.size or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        return None
    return lo.astype(np.float64), hi.astype(np.float64)
