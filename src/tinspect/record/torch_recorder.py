"""``Recorder``: tinspect logs from a plain PyTorch training loop.

The same files as the Keras callback (docs/format.md): ``model.json``, ``metrics.jsonl``,
``findings.jsonl`` and ``checkpoints/epoch-NNNN.h5``, written by the same code
(``record.writer``, ``record.files``) with the same atomic renames. A torch loop has no
callbacks, so the user calls ``checkpoint(epoch, metrics=...)`` between epochs.

At a checkpoint, on the caller's thread (training is paused there anyway), the model runs
once on the fixed samples in eval mode under ``torch.no_grad`` with a forward hook on every
layer; each hook casts its layer's output to the stored dtype and reduces it (class
means, per-unit extremes) at once, in torch, so in-place operations that follow
(``ReLU(inplace=True)``) cannot change what was recorded. The modes are restored
afterwards. The state_dict is copied; the summaries, the HDF5 file, model.json and the
checks run in the shared background writer, so the next epoch starts while the file is
written.

This module imports torch; ``tinspect`` and the read side never import it.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

import tinspect
from tinspect import format as fmt
from tinspect.record import torch_graph as tg
from tinspect.record.checks import TrainingChecks
from tinspect.record.files import (
    append_line,
    json_line,
    json_object_text,
    json_text,
    to_float,
    write_text_atomic,
)
from tinspect.record.samples import (
    MAX_ACTIVATION_BYTES,
    Options,
    cap_notice,
    class_ids_from_labels,
    class_weights,
    finite_extremes,
    samples_within,
    split_samples,
)
from tinspect.record.writer import (
    BackgroundWriter,
    CheckpointRecord,
    Compression,
    LayerRecord,
    write_checkpoint,
)

#: The share of an epoch's time the in-training checks may take (they run less often if not).
CHECK_BUDGET = 0.02

UnitExtremes = tuple[np.ndarray, np.ndarray]


def _warn(message: str) -> None:
    warnings.warn(f"tinspect: {message}", UserWarning, stacklevel=3)


def _rank() -> int:
    """This process's rank under ``torch.distributed`` (0 when not distributed)."""
    dist = getattr(torch, "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    return 0


def unwrap(model: torch.nn.Module) -> tuple[torch.nn.Module, list[str]]:
    """The module to record and why it differs from ``model``.

    ``DistributedDataParallel`` and ``DataParallel`` wrap the real model as ``.module``:
    their forward synchronizes buffers with the other processes, so a forward on rank 0
    alone would wait for ever; the wrapped module computes the same without collectives.
    A ``torch.compile``d model wraps it as ``._orig_mod``: hooks do not fire inside a
    compiled graph, and the original module (the same parameters) runs eagerly.
    """
    notes: list[str] = []
    for _ in range(4):  # DDP(compile(model)), compile(DDP(model)), ...
        if isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and type(model).__name__ == "OptimizedModule":
            notes.append(
                "the model is torch.compile'd and forward hooks do not fire inside a compiled "
                "graph, so tinspect runs the original module (model._orig_mod, the same "
                "parameters) eagerly on the samples"
            )
            model = model._orig_mod  # type: ignore[assignment]
        else:
            break
    return model, notes


def _compiled_children(module: torch.nn.Module) -> list[tuple[torch.nn.Module, str, Any]]:
    """(parent, attribute, compiled module) for every ``torch.compile``d submodule."""
    found = []
    for parent in module.modules():
        for attribute, child in parent.named_children():
            if type(child).__name__ == "OptimizedModule" and hasattr(child, "_orig_mod"):
                found.append((parent, attribute, child))
    return found


@contextlib.contextmanager
def _uncompiled(module: torch.nn.Module) -> Iterator[None]:
    """Compiled submodules replaced by their original modules while recording: hooks fire
    in eager code, and torch.fx cannot trace a compiled one."""
    swapped = _compiled_children(module)
    for parent, attribute, child in swapped:
        setattr(parent, attribute, child._orig_mod)
    try:
        yield
    finally:
        for parent, attribute, child in swapped:
            setattr(parent, attribute, child)


def _tensors(value: Any) -> list[torch.Tensor]:
    """The tensors of a model output: a tensor, a tuple/list, a dict, or a named tuple."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """A copy of ``tensor`` as numpy (bfloat16, which numpy lacks, as float32)."""
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.to("cpu", copy=True).numpy()


class Recorder:
    """Record a PyTorch model's weights, activations, predictions and metrics for tinspect.

    Args:
        logdir: directory of the experiment; the model gets its own sub-directory
            ``<name>-<id8>`` in it.
        header: the model's header from ``tinspect.make_header`` or ``tinspect.branch``.
        model: the ``torch.nn.Module`` being trained (also wrapped in
            ``DistributedDataParallel`` or ``torch.compile``).
        samples: the fixed samples recorded at every checkpoint: ``x``, ``(x,)`` or
            ``(x, y)``, numpy arrays or tensors; ``x`` may be a list (positional inputs)
            or a dict (keyword inputs). ``y`` gives the classes for per-class means.
        every: write a checkpoint every this many epochs (``"epoch"`` means 1). Epoch 0
            and the last epoch seen (at ``close``) are always written.
        layers: names of the layers to record activations of (``named_modules`` names,
            e.g. ``"0"`` or ``"block.conv1"``); None records all. Weights of every layer
            are always stored.
        max_samples: keep at most this many of ``samples`` (the first ones).
        max_activation_bytes: keep fewer of them when one checkpoint's activations
            (every recorded layer, in ``activations_dtype``) would exceed this many bytes,
            but at least ``MIN_CAPPED_SAMPLES`` (64); None keeps ``max_samples``. The same
            default (8 MB) and decision (``samples.samples_within``) as the Keras
            callback's, taken once, at the first checkpoint, when the layers' output shapes
            are known; one warning says so.
        activations_dtype: ``"float16"`` (half the bytes) or ``"float32"``.
        compression: None (fastest), ``"lzf"``, ``"gzip"`` or a gzip level 0-9.
        class_names: names of the classes, in class-id order.
        input_kind: ``"image"``, ``"tabular"`` or ``"sequence"``: a hint for checks.
        output_kind: ``"classification"``, ``"regression"`` or ``"reconstruction"``.
        checks: run the silent-bug checks after checkpoints (the first, the last and, in
            between, as often as costs under 2 % of an epoch); new findings go to
            ``findings.jsonl`` and are printed as one line.
        optimizer: the ``torch.optim`` optimizer, if given: its class and learning rate
            go to model.json and metrics.jsonl, its step count to ``step``.

    Under ``torch.distributed`` only rank 0 writes; on other ranks every method returns
    at once.
    """

    def __init__(
        self,
        logdir: str | Path,
        header: Mapping[str, Any],
        model: torch.nn.Module,
        samples: Any,
        *,
        every: int | str = 1,
        layers: Sequence[str] | None = None,
        max_samples: int = 512,
        max_activation_bytes: int | None = MAX_ACTIVATION_BYTES,
        activations_dtype: str = "float16",
        compression: Compression = None,
        class_names: Sequence[str] | None = None,
        input_kind: str | None = None,
        output_kind: str | None = None,
        checks: bool = True,
        optimizer: Any = None,
    ) -> None:
        self.options = o = Options(
            logdir,
            header,
            every=every,
            layers=layers,
            max_samples=max_samples,
            max_activation_bytes=max_activation_bytes,
            activations_dtype=activations_dtype,
            compression=compression,
            class_names=class_names,
            input_kind=input_kind,
            output_kind=output_kind,
            checks=checks,
        )
        if not isinstance(model, torch.nn.Module):
            raise TypeError(
                f"model must be a torch.nn.Module. Received: model of type {type(model).__name__}"
            )
        keras = sys.modules.get("keras")  # never imported here: a Keras model means it is
        if keras is not None and isinstance(model, getattr(keras, "Model", ())):
            # On Keras' torch backend a Keras model is an nn.Module too; its recorder is the
            # callback, which knows its layers, its fit and its backend.
            raise TypeError(
                "model is a Keras model: record it with tinspect.keras.InspectCheckpoint "
                f"in fit's callbacks. Received: model of type {type(model).__name__}"
            )
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                "optimizer must be a torch.optim.Optimizer or None. "
                f"Received: optimizer of type {type(optimizer).__name__}"
            )
        self.header, self.model_dir, self.every = o.header, o.model_dir, o.every
        self.model, self.optimizer = model, optimizer
        self.module, self._notes = unwrap(model)
        compiled = [name for name, m in self.module.named_modules() if hasattr(m, "_orig_mod")]
        if compiled:
            self._notes.append(
                f"submodules {', '.join(compiled)} are torch.compile'd; tinspect records them "
                "through their original modules (the same parameters), run eagerly"
            )
        inputs, labels, keys = split_samples(samples)
        self._input_keys = keys
        self.inputs = [a[: o.max_samples] for a in inputs]
        self.labels = labels[: o.max_samples] if labels is not None else None
        self.n_samples = int(self.inputs[0].shape[0])
        self.class_ids = (
            None if o.output_kind == "regression" else class_ids_from_labels(self.labels)
        )
        if self.class_ids is not None and o.class_names is not None:
            needed = int(self.class_ids.max()) + 1
            if len(o.class_names) < needed:
                raise ValueError(
                    f"class_names has {len(o.class_names)} names but the labels go up to class "
                    f"{needed - 1}. Received: class_names={o.class_names!r}"
                )
        self.layer_modules = tg.layer_modules(self.module)
        if o.layers is not None:
            unknown = [n for n in o.layers if n not in self.layer_modules]
            if unknown:
                raise ValueError(
                    f"layers names unknown layers {unknown}; the model has "
                    f"{sorted(self.layer_modules)}. Received: layers={o.layers!r}"
                )
        #: Errors of checkpoints that could not be written, as (label, exception).
        self.errors: list[tuple[str, BaseException]] = []
        self.rank = _rank()
        self.active = self.rank == 0
        self._n_classes: int | None = None
        self._class_matrix: torch.Tensor | None = None
        self._writer: BackgroundWriter | None = None
        self._architecture: dict[str, Any] | None = None
        self._architecture_text: str | None = None
        self._axes: dict[str, int | None] = {}
        self._plan: dict[str, str | None] = {}  # recorded layer → None, or why it is not
        self._same_size: dict[str, str] = {}
        self._traced: tg.Traced | None = None
        self._written: set[int] = set()
        self._last_epoch: int | None = None
        self._last_metrics: dict[str, float | None] = {}
        self._metric_keys: list[str] = []
        self._last_time = time.perf_counter()
        self._epoch_seconds = 0.0
        self._previous_extremes: dict[int, dict[str, UnitExtremes]] = {}
        self._reported: set[tuple[str, str]] = set()
        self._checks = TrainingChecks(self.model_dir, self.header["id"])
        self._checks_every, self._checks_skipped, self._last_check_seconds = 1, 0, 0.0
        self._closed = False
        self._last_checked: int | None = None  # the newest epoch the checks ran on
        if self.active:
            o.refuse_existing()

    # --- the public loop API -----------------------------------------------------------------
    def checkpoint(
        self, epoch: int, metrics: Mapping[str, Any] | None = None, *, step: int | None = None
    ) -> None:
        """Record the state after ``epoch`` completed epochs (0: before training).

        ``metrics`` (floats or one-element tensors, e.g. ``loss``, ``val_loss``) go to
        ``metrics.jsonl`` for every epoch ≥ 1 and to the checkpoint's attributes; a file
        is written when ``epoch`` is 0 or a multiple of ``every``. ``step``: optimizer
        steps so far (default: read from the optimizer, -1 when unknown).
        """
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0. Received: epoch={epoch!r}")
        if self._last_epoch is not None and epoch <= self._last_epoch:
            raise ValueError(
                f"epochs must increase; the last checkpoint was epoch {self._last_epoch}. "
                f"Received: epoch={epoch}"
            )
        if metrics is not None and not isinstance(metrics, Mapping):
            raise TypeError(
                f"metrics must be a dict of numbers or None. Received: metrics={metrics!r}"
            )
        if self._closed:
            raise RuntimeError("this Recorder is closed; make a new one for a new run")
        if not self.active:
            return
        now = time.perf_counter()
        values = {str(k): to_float(_plain(v)) for k, v in (metrics or {}).items()}
        steps = self._step() if step is None else int(step)
        if epoch >= 1:
            for key in values:
                if key not in self._metric_keys:
                    self._metric_keys.append(key)
            self._epoch_seconds = now - self._last_time
            line = {
                **values,
                fmt.METRIC_EPOCH: epoch,
                fmt.METRIC_TIME: time.time(),
                fmt.METRIC_WALL_TIME: self._epoch_seconds,
                fmt.METRIC_LEARNING_RATE: self._learning_rate(),
                fmt.METRIC_STEP: steps,
            }
            self._ensure_dirs()
            append_line(self.model_dir / fmt.METRICS_JSONL, json_line(line))
        self._last_epoch, self._last_metrics = epoch, values
        if epoch == 0 or epoch % self.every == 0:
            self._record(epoch, values, steps, final=False)
        self._report_errors()
        self._last_time = time.perf_counter()

    def close(self) -> None:
        """Write the last epoch if it was not written, wait for the writer, mark finished."""
        if self._closed:
            return
        self._closed = True
        if not self.active:
            return
        try:
            last = self._last_epoch
            if last is not None and last not in self._written:
                self._record(last, self._last_metrics, self._step(), final=True)
        finally:
            if self._writer is not None:
                self._writer.close()
            last = max(self._written) if self._written else None
            if self.options.checks and last is not None and self._last_checked != last:
                # The checks skipped the last checkpoint (their budget): the final state is
                # what a user reads first, so it is checked in any case.
                self._run_checks(last, {})
            self._checks.close()
            self._report_errors()
            self._writer = None
            if self._architecture is not None:
                write_text_atomic(self.model_dir / fmt.MODEL_JSON, self._model_json("finished"))

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- one checkpoint ----------------------------------------------------------------------
    def _ensure_dirs(self) -> None:
        (self.model_dir / fmt.CHECKPOINTS_DIR).mkdir(parents=True, exist_ok=True)

    def _record(
        self, epoch: int, metrics: dict[str, float | None], steps: int, final: bool
    ) -> None:
        """Copy the state_dict and run the hooked forward pass here; write in the writer.

        The samples not fitting the model is the user's to fix: the first checkpoint
        raises it as one line. Any other failure (a later forward pass, our own code) is
        a warning and an entry in ``errors``; training goes on.
        """
        first = self._architecture is None
        try:
            self._record_now(epoch, metrics, steps, final, first)
        except _SamplesDoNotFit as error:
            if first:
                raise ValueError(str(error)) from None
            self._failed(epoch, error)
        except Exception as error:  # noqa: BLE001 - recording must not stop training
            self._failed(epoch, error)

    def _failed(self, epoch: int, error: BaseException) -> None:
        self.errors.append((f"epoch {epoch}", error))
        _warn(
            f"checkpoint epoch {epoch} of {self.header['name']!r} was not written: "
            f"{type(error).__name__}: {error}"
        )

    def _record_now(
        self, epoch: int, metrics: dict[str, float | None], steps: int, final: bool, first: bool
    ) -> None:
        weights = self._state()
        outputs = self._forward(first)
        if first:
            self._ensure_dirs()
            for note in self._notes:
                _warn(note)
            self._warn_unseen(outputs)
            write_text_atomic(self.model_dir / fmt.MODEL_JSON, self._model_json("training"))
            self._writer = BackgroundWriter()
        assert self._writer is not None
        attrs = {
            fmt.ATTR_FORMAT_VERSION: fmt.FORMAT_VERSION,
            fmt.ATTR_MODEL_ID: self.header["id"],
            fmt.ATTR_MODEL_NAME: self.header["name"],
            fmt.ATTR_EPOCH: epoch,
            fmt.ATTR_STEP: steps,
            fmt.ATTR_TIME: time.time(),
            fmt.ATTR_METRICS: dict(metrics),
            fmt.ATTR_N_SAMPLES: self.n_samples,
            fmt.ATTR_N_CLASSES: self._n_classes or 0,
            fmt.ATTR_ACTIVATIONS_DTYPE: self.options.activations_dtype,
            fmt.ATTR_WEIGHTS_BYTES: int(
                sum(a.nbytes for arrays in weights.values() for a in arrays.values())
            ),
            fmt.ATTR_RUNTIME_PER_SAMPLE: outputs["seconds"] / self.n_samples,
        }
        info = self._model_json("training", epochs_completed=epoch)
        self._written.add(epoch)

        def job() -> None:
            self._write(epoch, attrs, weights, outputs, info, final)

        self._writer.submit(f"epoch {epoch}", job)

    def _state(self) -> dict[str, dict[str, np.ndarray]]:
        """Each layer's own state_dict entries, copied (training goes on changing them)."""
        out: dict[str, dict[str, np.ndarray]] = {}
        for name, module in self.layer_modules.items():
            own = {
                key: value
                for key, value in module.state_dict(keep_vars=False).items()
                if "." not in key
            }
            if own:
                out[name] = {key: _numpy(value) for key, value in own.items()}
        return out

    def _feed(self) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """The samples as tensors on the model's device, floats in the model's dtype."""
        reference = next((p for p in self.module.parameters() if p.dtype.is_floating_point), None)
        device = reference.device if reference is not None else torch.device("cpu")
        tensors = []
        for array in self.inputs:
            tensor = torch.from_numpy(np.ascontiguousarray(array))
            if tensor.dtype.is_floating_point and reference is not None:
                tensor = tensor.to(reference.dtype)
            tensors.append(tensor.to(device))
        if self._input_keys is not None:
            return [], dict(zip(self._input_keys, tensors, strict=True))
        return tensors, {}

    def _forward(self, first: bool) -> dict[str, Any]:
        """One hooked forward pass on the samples: stored arrays, class means, extremes,
        predictions and the seconds of the pass without the hooks' own work."""
        o = self.options
        dtype = torch.float16 if o.activations_dtype == "float16" else torch.float32
        wanted = set(o.layers) if o.layers is not None else None
        order: list[str] = []
        shapes: dict[str, tuple[int, ...] | None] = {}
        stored: dict[str, np.ndarray] = {}
        means: dict[str, np.ndarray | None] = {}
        extremes: dict[str, UnitExtremes] = {}
        skipped: dict[str, str] = {}
        hook_seconds = [0.0]

        def hook_for(name: str) -> Any:
            def hook(module: Any, args: Any, output: Any) -> None:
                if name in shapes:
                    return  # a shared layer: its first call is recorded
                start = time.perf_counter()
                order.append(name)
                if isinstance(output, (tuple, list)) and output:
                    output = output[0]  # MultiheadAttention's output, LSTM's sequence
                if not isinstance(output, torch.Tensor):
                    shapes[name] = None
                    skipped[name] = (
                        f"its output is a {type(output).__name__}, not a tensor or a tuple "
                        "starting with one"
                    )
                    return
                shapes[name] = tuple(int(d) for d in output.shape)
                n = self.n_samples  # fewer on the second pass when capped (_cap_samples)
                if output.ndim == 0 or output.shape[0] != n:
                    skipped[name] = f"its output {list(output.shape)} has no axis of {n} samples"
                elif (wanted is None or name in wanted) and not first:
                    self._reduce(name, output, dtype, stored, means, extremes)
                hook_seconds[0] += time.perf_counter() - start

            return hook

        stack = contextlib.ExitStack()
        modes = [(m, m.training) for m in self.module.modules()]
        handles = [m.register_forward_hook(hook_for(k)) for k, m in self.layer_modules.items()]
        args, kwargs = self._feed()
        try:
            stack.enter_context(_uncompiled(self.module))
            self.module.eval()
            with torch.no_grad():
                start = time.perf_counter()
                try:
                    prediction = self.module(*args, **kwargs)
                except Exception as error:  # noqa: BLE001 - the user's model, the user's samples
                    shapes_given = ", ".join(str(tuple(a.shape)) for a in self.inputs)
                    raise _SamplesDoNotFit(
                        f"the model cannot run on the samples ({type(error).__name__}: "
                        f"{str(error).splitlines()[0] if str(error) else ''}). "
                        f"Received: samples x of shape {shapes_given}"
                    ) from None
                predictions = [_numpy(t.float()) for t in _tensors(prediction)]
                seconds = time.perf_counter() - start - hook_seconds[0]
                if first:
                    # The architecture (channel axes) decides how units reduce: describe it
                    # from this pass, then reduce its outputs in a second one.
                    self._describe(order, shapes, skipped)
                    capped = self._cap_samples(shapes)
                    order.clear()
                    shapes.clear()
                    first = False
                    if capped:  # the second pass, timed, gives this checkpoint's predictions
                        args, kwargs = self._feed()
                        start, hooks = time.perf_counter(), hook_seconds[0]
                        prediction = self.module(*args, **kwargs)
                        predictions = [_numpy(t.float()) for t in _tensors(prediction)]
                        seconds = time.perf_counter() - start - (hook_seconds[0] - hooks)
                    else:
                        self.module(*args, **kwargs)
        finally:
            for handle in handles:
                handle.remove()
            stack.close()
            for module, mode in modes:
                module.training = mode
        return {
            "stored": stored,
            "means": means,
            "extremes": extremes,
            "predictions": predictions,
            "seconds": seconds,
            "order": order,
        }

    def _reduce(
        self,
        name: str,
        output: torch.Tensor,
        dtype: torch.dtype,
        stored: dict[str, np.ndarray],
        means: dict[str, np.ndarray | None],
        extremes: dict[str, UnitExtremes],
    ) -> None:
        """One layer's output → stored dtype, class means and per-unit extremes (in torch)."""
        if self._plan.get(name, "absent") is not None:
            return
        values = output.detach().float()
        n = values.shape[0]
        stored[name] = _numpy(output.detach().to(dtype))
        flat = values.reshape(n, -1)
        if self._class_matrix is not None:
            matrix = self._class_matrix.to(flat.device)
            means[name] = _numpy(matrix @ flat).reshape((-1, *values.shape[1:]))
        else:
            means[name] = None
        if self.options.checks:
            axis = self._axes.get(name)
            by_unit = values.movedim(axis, -1) if axis is not None else values
            units = by_unit.shape[-1] if by_unit.ndim > 1 else 1
            rows = by_unit.reshape(-1, units)
            if rows.shape[0]:
                lo, hi = torch.aminmax(rows, dim=0)
                with np.errstate(over="ignore"):
                    lo_np = _numpy(lo).astype(self.options.activations_dtype)
                    hi_np = _numpy(hi).astype(self.options.activations_dtype)
                found = finite_extremes(lo_np, hi_np)
                if found is not None:
                    extremes[name] = found

    def _describe(
        self,
        order: list[str],
        shapes: dict[str, tuple[int, ...] | None],
        skipped: dict[str, str],
    ) -> None:
        """The architecture, the plan of recorded layers and the class matrix, once."""
        o = self.options
        traced: tg.Traced | None = None
        error: str | None = None
        try:
            traced = tg.trace(self.module, self.layer_modules)
        except Exception as failure:  # noqa: BLE001 - any tracing failure: no edges
            error = f"{type(failure).__name__}: {str(failure).splitlines()[0][:200]}"
        never = [n for n in self.layer_modules if n not in shapes]
        states = {
            name: {k: v for k, v in module.state_dict(keep_vars=True).items() if "." not in k}
            for name, module in self.layer_modules.items()
        }
        for name in never:
            skipped[name] = (
                "its forward hook did not fire: it was called through .forward() directly, "
                "inside a compiled graph, or not at all"
            )
        if traced is not None:
            for name in traced.bypassed:
                skipped.setdefault(
                    name,
                    "its parameters are used outside its own call (.forward() called directly "
                    "or its weight passed to a function), which its forward hook does not see",
                )
        wanted = set(o.layers) if o.layers is not None else None
        self._plan = {
            name: skipped.get(name) for name in [*order, *never] if wanted is None or name in wanted
        }
        self._architecture = tg.describe(
            self.module,
            self.layer_modules,
            [*order, *never],
            shapes,
            states,
            traced,
            error,
            lambda name: self._plan.get(name, "absent") is None,
        )
        self._traced = traced
        entries = {e["name"]: e for e in self._architecture["layers"]}
        self._axes = {name: entries[name].get("channel_axis") for name in self._plan}
        # Layers whose output has as many values per sample as their only inbound layer's
        # (Flatten, Dropout and Identity in eval mode): candidates for storing once.
        for name, reason in self._plan.items():
            inbound = [i for i in entries[name]["inbound"] if self._plan.get(i, "x") is None]
            if reason is None and len(entries[name]["inbound"]) == 1 and inbound:
                a, b = shapes.get(name), shapes.get(inbound[0])
                if a and b and math.prod(a[1:]) == math.prod(b[1:]):
                    self._same_size[name] = inbound[0]
        n_classes = len(o.class_names) if o.class_names else 0
        if self.class_ids is not None:
            n_classes = max(n_classes, int(self.class_ids.max()) + 1)
            outputs = self._architecture.get("outputs") or []
            if o.output_kind in (None, "classification") and len(outputs) == 1:
                shape = shapes.get(outputs[0])
                if shape is not None and len(shape) == 2 and shape[1] > 1:
                    n_classes = max(n_classes, shape[1])
        self._n_classes = n_classes
        matrix = class_weights(self.class_ids, n_classes)
        self._class_matrix = None if matrix is None else torch.from_numpy(matrix)

    def _cap_samples(self, shapes: Mapping[str, tuple[int, ...] | None]) -> bool:
        """Keep the first samples whose activations fit ``max_activation_bytes`` (decided
        once, from the first pass's output shapes; one warning). True if fewer are kept.

        Every recorded layer counts, also one that will be stored as a link to its inbound
        layer's values, as in the Keras callback: the bytes stored are at most the cap.
        """
        o = self.options
        values = 0
        for name, reason in self._plan.items():
            shape = shapes.get(name)
            if reason is None and shape:
                values += math.prod(shape[1:])
        per_sample = values * np.dtype(o.activations_dtype).itemsize
        keep = samples_within(self.n_samples, per_sample, o.max_activation_bytes)
        if keep >= self.n_samples:
            return False
        assert o.max_activation_bytes is not None
        _warn(
            cap_notice(
                keep, self.n_samples, self.header["name"], per_sample, o.max_activation_bytes
            )
        )
        self.inputs = [a[:keep] for a in self.inputs]
        self.labels = self.labels[:keep] if self.labels is not None else None
        self.class_ids = self.class_ids[:keep] if self.class_ids is not None else None
        self.n_samples = keep
        matrix = class_weights(self.class_ids, self._n_classes or 0)
        self._class_matrix = None if matrix is None else torch.from_numpy(matrix)
        return True

    def _warn_unseen(self, outputs: dict[str, Any]) -> None:
        """One warning for the layers whose activations the hooks could not see."""
        unseen = {
            name: reason
            for name, reason in self._plan.items()
            if reason is not None and ("forward hook" in reason)
        }
        if unseen:
            names = ", ".join(sorted(unseen)[:8]) + (" ..." if len(unseen) > 8 else "")
            _warn(
                f"activations of {len(unseen)} layer(s) of {self.header['name']!r} are not "
                f"recorded ({names}): they ran without their forward hooks (a .forward() "
                "call, a compiled graph) or not at all; their weights are recorded"
            )
        other = {n: r for n, r in self._plan.items() if r is not None and n not in unseen}
        if other:
            detail = "; ".join(f"{k}: {v}" for k, v in list(other.items())[:5])
            _warn(f"activations of some layers are not recorded ({detail})")

    def _write(
        self,
        epoch: int,
        attrs: dict[str, Any],
        weights: dict[str, dict[str, np.ndarray]],
        outputs: dict[str, Any],
        info: str,
        final: bool,
    ) -> None:
        """Runs in the writer thread: records, the HDF5 file, model.json, the checks."""
        stored, means = outputs["stored"], outputs["means"]
        aliases: dict[str, str] = {}
        for name, source in self._same_size.items():
            if (
                name in stored
                and source in stored
                and _same_bytes(stored[name], stored[source])
                and _same_bytes(means.get(name), means.get(source))
            ):
                aliases[name] = aliases.get(source, source)
        records = []
        assert self._architecture is not None
        for entry in self._architecture["layers"]:
            name = entry["name"]
            if name not in self.layer_modules:  # an input, or a merge of tensors (x + y)
                continue
            record = LayerRecord(name, entry["class_name"])
            if name in aliases:
                record.same_as, record.shape = aliases[name], stored[name].shape
            elif name in stored:
                record.activations = stored[name]
                record.mean_class_activations = means.get(name)
            elif name in self._plan:
                record.skipped = self._plan[name] or "not captured"
            else:
                record.skipped = "not in the layers argument"
            record.weights = weights.get(name, {})
            if record.weights or name in self._plan:  # recorded, or holding state
                records.append(record)
        samples: dict[str, np.ndarray] = {fmt.SAMPLES_X: self.inputs[0]}
        for i, extra in enumerate(self.inputs[1:], start=1):
            samples[f"{fmt.SAMPLES_X}_{i}"] = extra
        if self.labels is not None:
            samples[fmt.SAMPLES_Y_LABEL] = self.labels
        if self.class_ids is not None:
            samples[fmt.SAMPLES_Y_CLASS] = self.class_ids
        for i, prediction in enumerate(outputs["predictions"]):
            key = fmt.SAMPLES_Y_PREDICTION if i == 0 else f"{fmt.SAMPLES_Y_PREDICTION}_{i}"
            samples[key] = prediction
        path = self.model_dir / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(epoch)
        write_checkpoint(path, CheckpointRecord(attrs, samples, records), self.options.compression)
        if not final:
            write_text_atomic(self.model_dir / fmt.MODEL_JSON, info, fsync=False)
        extremes = {epoch: outputs["extremes"]}
        if self._checks_due(epoch, final):
            self._run_checks(epoch, {**self._previous_extremes, **extremes})
            self._last_checked = epoch
        self._previous_extremes = extremes

    # --- the in-training checks (the Keras callback's policy) ------------------------------
    def _checks_due(self, epoch: int, final: bool) -> bool:
        if not self.options.checks:
            return False
        if self._last_check_seconds and self._epoch_seconds > 0:
            budget = CHECK_BUDGET * self._epoch_seconds
            self._checks_every = max(1, math.ceil(self._last_check_seconds / budget))
        if epoch == 0 or final or self._checks_skipped + 1 >= self._checks_every:
            self._checks_skipped = 0
            return True
        self._checks_skipped += 1
        return False

    def _run_checks(self, epoch: int, extremes: Mapping[int, Mapping[str, UnitExtremes]]) -> None:
        """Silent-bug checks on what was just written (through ``record.checks``, the one
        seam to the read side); a failing check never stops training."""
        start = time.perf_counter()
        try:
            findings = self._checks.run(epoch, extremes)
        except Exception as error:  # noqa: BLE001 - diagnostics must not harm training
            _warn(f"checks after epoch {epoch} failed: {type(error).__name__}: {error}")
            return
        self._last_check_seconds = time.perf_counter() - start
        for finding in findings:
            key = (finding.id, finding.uoa)
            if key in self._reported:
                continue
            self._reported.add(key)
            line = {"epoch": epoch, "time": time.time(), **finding.to_dict()}
            append_line(self.model_dir / fmt.FINDINGS_JSONL, json_line(line))
            print(f"tinspect: {finding.line()}", flush=True)

    def _report_errors(self) -> None:
        if self._writer is None:
            return
        for label, error in self._writer.take_errors():
            self.errors.append((label, error))
            _warn(
                f"checkpoint {label} of {self.header['name']!r} was not written: "
                f"{type(error).__name__}: {error}"
            )

    # --- model.json ----------------------------------------------------------------------------
    def _step(self) -> int:
        """Optimizer steps so far (Adam-like optimizers count them), -1 when unknown."""
        if self.optimizer is None:
            return -1
        for state in self.optimizer.state.values():
            step = state.get("step") if isinstance(state, Mapping) else None
            if step is not None:
                try:
                    return int(step)
                except (TypeError, ValueError, RuntimeError):
                    return -1
        return -1

    def _learning_rate(self) -> float | None:
        if self.optimizer is None or not self.optimizer.param_groups:
            return None
        return to_float(self.optimizer.param_groups[0].get("lr"))

    def _skipped(self) -> dict[str, str]:
        """Layers without activations and why; merges of tensors are functions, unhooked."""
        out = {n: r for n, r in self._plan.items() if r is not None}
        traced = self._traced
        for name, (_, target) in (traced.merges if traced is not None else {}).items():
            out[name] = f"a function ({target}) of several tensors, not a module: no hook sees it"
        return out

    def _dataset_facts(self) -> dict[str, Any]:
        o = self.options
        n_classes = self._n_classes or 0
        names = list(o.class_names or [])
        names += [str(i) for i in range(len(names), n_classes)]
        return {
            "n_samples": self.n_samples,
            "sample_shape": list(self.inputs[0].shape[1:]) if len(self.inputs) == 1 else None,
            "input_shapes": [list(a.shape[1:]) for a in self.inputs],
            "input_names": self._input_keys,
            "input_dtypes": [str(a.dtype) for a in self.inputs],
            "label_shape": list(self.labels.shape[1:]) if self.labels is not None else None,
            "n_classes": n_classes,
            "class_names": names or None,
            "input_kind": o.input_kind,
            "output_kind": o.output_kind,
        }

    def _training(self) -> dict[str, Any]:
        optimizer = None
        if self.optimizer is not None:
            group = self.optimizer.param_groups[0] if self.optimizer.param_groups else {}
            optimizer = {
                "class_name": type(self.optimizer).__name__,
                "learning_rate": self._learning_rate(),
                "config": {k: v for k, v in group.items() if k != "params"},
            }
        return {
            "optimizer": optimizer,
            "loss": None,
            "metrics": list(self._metric_keys),
            "epochs": None,
            "steps_per_epoch": None,
            "custom_train_step": True,
            "batch_size": self.header.get("hyperparameters", {}).get("batch_size"),
        }

    def _model_json(self, state: str, epochs_completed: int | None = None) -> str:
        """model.json's text; the architecture (most of it) is encoded once."""
        o = self.options
        assert self._architecture is not None
        if self._architecture_text is None:
            self._architecture_text = json_text(self._architecture)
        data = {
            "format_version": fmt.FORMAT_VERSION,
            "header": self.header,
            "architecture": None,
            "training": self._training(),
            "dataset": self._dataset_facts(),
            "recording": {
                "every": self.every,
                "n_samples": self.n_samples,
                "max_activation_bytes": o.max_activation_bytes,
                "activations_dtype": o.activations_dtype,
                "compression": o.compression,
                "layers": [n for n, reason in self._plan.items() if reason is None],
                "skipped": self._skipped(),
                "capture": "main-thread",
                "tinspect_version": tinspect.__version__,
                "framework": "torch",
                "torch_version": str(torch.__version__),
                "keras_version": None,
                "backend": "torch",
            },
            "status": {
                "state": state,
                "epochs_completed": self._last_epoch or 0
                if epochs_completed is None
                else epochs_completed,
                "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        }
        members = {
            key: self._architecture_text if key == "architecture" else json_text(value)
            for key, value in data.items()
        }
        return json_object_text(members) + "\n"


class _SamplesDoNotFit(Exception):
    """The model raised on the samples: a user's mistake, reported as one line."""


def _plain(value: Any) -> Any:
    """A metric off the autograd graph (``float`` of a tensor that requires grad warns)."""
    detach = getattr(value, "detach", None)
    return detach() if callable(detach) else value


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
