"""``InspectCheckpoint``: the Keras 3 callback that writes tinspect logs while a model trains.

Per model it writes ``model.json`` (header, architecture, training configuration, dataset
facts), one line per epoch to ``metrics.jsonl``, and a checkpoint file before training, every
``every`` epochs and after the last epoch. See ``docs/format.md`` for the layout.

Cost is kept off the training loop: no batch hooks (overriding one turns off Keras'
asynchronous batch dispatch); at a checkpoint the main thread only copies the weights, and a
background thread computes the activations with a shadow copy of the model and writes the
file. Unlike Keras' own ModelCheckpoint, files are written under a temporary name and renamed
when complete, so a reader (or a kill -9) never sees half a checkpoint.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np

import tinspect
from tinspect import format as fmt
from tinspect.record import architecture as arch
from tinspect.record.attributions import AttributionOptions, Attributor
from tinspect.record.capture import (
    COMPILE_MIN_CHECKPOINTS,
    WRITER_COMPILE_MIN_CHECKPOINTS,
    Activations,
    Capture,
    UnitExtremes,
    class_weights,
)
from tinspect.record.checks import TrainingChecks
from tinspect.record.distributed import process_count, process_index
from tinspect.record.files import (
    append_line,
    json_line,
    json_object_text,
    json_text,
    to_float,
    write_text_atomic,
)
from tinspect.record.keras_imports import without_tensorflow_import
from tinspect.record.samples import (
    ACTIVATION_DTYPES,
    MAX_ACTIVATION_BYTES,
    cap_notice,
    check_max_activation_bytes,
    class_ids_from_labels,
    samples_within,
    split_samples,
)
from tinspect.record.samples import (
    MIN_CAPPED_SAMPLES as MIN_CAPPED_SAMPLES,  # re-exported: the callback's docs name it
)
from tinspect.record.samples import check_choice as _check_choice
from tinspect.record.writer import (
    BackgroundWriter,
    CheckpointRecord,
    Compression,
    LayerRecord,
    normalize_compression,
    write_checkpoint,
)

#: The share of an epoch's time the in-training checks may take (they run less often if not).
CHECK_BUDGET = 0.02
#: The initialization checkpoint is computed when the first epoch ends, or after this many
#: seconds if that takes longer. Its weights are copied before training starts, but the
#: first seconds of ``fit`` trace and compile the training step in Python on the main thread,
#: and a writer thread computing meanwhile competes for the GIL: on the bench model that
#: slowed the whole fit by ~6 %. Once the epoch runs (in TensorFlow's C++ code), it does not.
INIT_WAIT_SECONDS = 10.0
#: ``every="auto"``: the recorder's own measured work (the writer's CPU time per checkpoint
#: and the main thread's part) may take at most this share of the fit's time so far ...
AUTO_BUDGET = 0.05
#: ... beyond at least this many checkpoints per fit, spread evenly over its epochs, the
#: initialization and the last epoch included (fewer when the fit has fewer epochs): the
#: initialization, the middle and the end. On a short fit of sub-second epochs the minimum
#: is what is written, and each checkpoint of the torch demo costs ~80 ms of CPU that
#: training waits for: 4 measured 1.16x the plain fit, 3 measured 1.13x (30 paired rounds).
AUTO_MIN_CHECKPOINTS = 3
#: Training keeps the cores busy when its process used at least ``cores - SATURATED_MARGIN``
#: cores over its first epoch; the checkpoints' jobs then run on the training thread.
SATURATED_MARGIN = 0.5
#: The backends whose busy training starves the writer thread, so that inline jobs cost it
#: less: torch, whose OpenMP workers spin between ops (5-epoch demo, 16 paired rounds: 1.121
#: inline, 1.140 in the writer). Not JAX: its first epoch is XLA's compile, which reads as
#: saturated, yet its thread pool leaves the writer room (demo 1.108 inline, 1.057 in the
#: writer; 28x28 1.067 against 1.038). TensorFlow's training never reads as saturated.
#: torch has neither a strategy's scope nor ``keras.distribution`` (a distributed torch run
#: is several processes, never inline) and runs its recorder eagerly: a backend added here
#: must keep those out of inline jobs as the writer thread does, and may want the training
#: thread's tracing threshold (``COMPILE_MIN_CHECKPOINTS``).
INLINE_BACKENDS = frozenset({"torch"})


def cores_saturated(cpu_seconds: float, wall_seconds: float, cores: int) -> bool:
    """Whether training that used ``cpu_seconds`` of process CPU in ``wall_seconds`` keeps
    all ``cores`` busy, so that no core is free for the recorder's writer thread.

    Then a job in the writer thread costs training 2-3× its own CPU (measured on torch's
    CPU training, whose OpenMP worker spins between ops: the starved writer's job drags
    over a dozen epochs, each slower and dearer in CPU than the plain fit's), and the same
    job run on the training thread at the epoch's end costs what it takes. A plain torch
    CPU fit measured 1.99 cores on 2; TensorFlow's ~1.2; a GPU run leaves cores idle.

    >>> cores_saturated(2.0, 1.0, 2), cores_saturated(1.2, 1.0, 2), cores_saturated(0.9, 1.0, 1)
    (True, False, True)
    """
    if wall_seconds <= 0 or cores < 1:
        return False
    return cpu_seconds / wall_seconds >= cores - SATURATED_MARGIN


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def auto_due(
    done: int,
    epochs: int,
    costs: Sequence[float],
    pending: int,
    main_seconds: float,
    elapsed: float,
    budget: float = AUTO_BUDGET,
    minimum: int = AUTO_MIN_CHECKPOINTS,
) -> bool:
    """``every="auto"``: whether the ``done``-th epoch of a fit of ``epochs`` (not its last)
    gets a checkpoint.

    First the evenly spread minimum (with the initialization and the last epoch, which are
    always written, ``minimum`` checkpoints per fit); then the budget: yes when the
    recorder's measured work so far (``costs``, one per finished checkpoint, the first of
    which includes tracing; ``pending`` checkpoints queued but not finished, estimated as
    the dearest steady one; ``main_seconds`` on the training thread) plus one more
    checkpoint stays within ``budget`` of the fit's ``elapsed`` seconds. Without a measured
    cost, the minimum only.

    >>> [d for d in range(1, 5) if auto_due(d, 5, [], 0, 0.0, 10.0)]  # 5 epochs: 0, 3, 5
    [3]
    """
    intervals = minimum - 1
    if epochs > 0 and (done * intervals) // epochs > ((done - 1) * intervals) // epochs:
        return True
    if not costs:
        return False
    estimate = costs[-1] if len(costs) == 1 else max(costs[1:])  # the 1st traced
    spent = sum(costs) + main_seconds + pending * estimate
    return spent + estimate <= budget * elapsed


def _warn(message: str) -> None:
    warnings.warn(f"tinspect: {message}", UserWarning, stacklevel=3)


def _split_samples(samples: Any) -> tuple[list[np.ndarray], np.ndarray | None]:
    """``x``, ``(x,)``, ``(x, y)`` or ``([x1, x2], y)`` → (list of inputs, labels or None)."""
    inputs, labels, _keys = split_samples(samples)
    return inputs, labels


class InspectCheckpoint(keras.callbacks.Callback):
    """Record a model's weights, activations, predictions and metrics for tinspect.

    Args:
        logdir: directory of the experiment; the model gets its own sub-directory
            ``<name>-<id8>`` in it.
        header: the model's header from ``tinspect.make_header`` or ``tinspect.branch``.
        samples: the fixed samples whose activations are recorded at every checkpoint:
            ``x``, ``(x,)`` or ``(x, y)``; ``x`` may be a list or dict for several inputs.
            ``y`` gives the classes for per-class means (integer labels or one-hot rows).
        every: ``"auto"`` (the default), write a checkpoint every this many epochs, or
            ``"epoch"`` (1). The initialization (epoch 0) and the last epoch are always
            written. ``"auto"`` writes every epoch while the recorder's measured cost stays
            under ``AUTO_BUDGET`` (5 %) of the fit's time, and otherwise thins checkpoints
            out, keeping at least ``AUTO_MIN_CHECKPOINTS`` (3) per fit evenly spread: long
            epochs get all, fits of many sub-second epochs every few.
        layers: names of the layers to record; None records all.
        max_samples: keep at most this many of ``samples`` (the first ones).
        max_activation_bytes: keep fewer of them when one checkpoint's activations
            (every recorded layer, in ``activations_dtype``) would exceed this many bytes,
            but at least ``MIN_CAPPED_SAMPLES`` (64); None keeps ``max_samples``. The
            default, 8 MB, records the demo conv net's 512 samples and 175 of a 28×28
            conv net's (one warning says so); it bounds the recorder's cost per checkpoint,
            which grows with these bytes.
        activations_dtype: ``"float16"`` (half the bytes) or ``"float32"``.
        compression: None (fastest; measured cheapest on 2 cores), ``"lzf"``, ``"gzip"``
            or a gzip level 0-9.
        class_names: names of the classes, in class-id order.
        input_kind: ``"image"``, ``"tabular"`` or ``"sequence"``: a hint for checks.
        output_kind: ``"classification"``, ``"regression"`` or ``"reconstruction"``.
        checks: run the silent-bug checks while training (with the initialization, the
            last checkpoint and, in between, as often as costs under 2 % of an epoch); new
            findings are appended to ``findings.jsonl`` and printed as one line.
        attributions: ``"integrated_gradients"`` records, for every recorded sample,
            Integrated Gradients maps toward its predicted and its true class in
            ``attributions/epoch-NNNN.h5`` (computed off the training thread; the last
            checkpoint's after ``fit`` has returned). None (default) records none.
        attribution_steps: quadrature steps of the path integral.
        attribution_epochs: ``"last"`` (the last checkpoint of each fit), ``"all"`` or an
            int N (epochs that are multiples of N, and the last).
        attribution_baseline: ``"zeros"`` (a black image) or ``"blur"`` (the sample
            blurred; hides bright-patch shortcuts, see ``record/attributions.py``).
    """

    def __init__(
        self,
        logdir: str | Path,
        header: Mapping[str, Any],
        samples: Any,
        *,
        every: int | str = "auto",
        layers: Sequence[str] | None = None,
        max_samples: int = 512,
        max_activation_bytes: int | None = MAX_ACTIVATION_BYTES,
        activations_dtype: str = "float16",
        compression: Compression = None,
        class_names: Sequence[str] | None = None,
        input_kind: str | None = None,
        output_kind: str | None = None,
        checks: bool = True,
        attributions: str | None = None,
        attribution_steps: int = 32,
        attribution_epochs: str | int = "last",
        attribution_baseline: str = "zeros",
    ) -> None:
        super().__init__()
        if not isinstance(logdir, (str, Path)) or not str(logdir):
            raise TypeError(f"logdir must be a path. Received: logdir={logdir!r}")
        self.logdir = Path(logdir)
        #: False in every process but process 0 of a multi-process run: such a callback
        #: records nothing and never touches the logdir (``record.distributed``). Decided
        #: again when training begins, in case the run was set up after this constructor.
        self.active = process_index(keras.backend.backend()) == 0
        if self.active and self.logdir.exists() and not self.logdir.is_dir():
            raise ValueError(
                f"logdir must be a directory, but it is a file. Received: logdir={str(logdir)!r}"
            )
        if not isinstance(header, Mapping):
            raise TypeError(
                "header must be a dict from tinspect.make_header(). "
                f"Received: header of type {type(header).__name__}"
            )
        for key in ("id", "name"):
            if not isinstance(header.get(key), str) or not header.get(key):
                raise ValueError(
                    f"header must have a non-empty string {key!r} (use tinspect.make_header). "
                    f"Received: header={dict(header)!r}"
                )
        self.header = dict(header)
        if every == "epoch":
            every = 1
        if every != "auto" and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise ValueError(
                f"every must be an integer >= 1, 'epoch' or 'auto'. Received: every={every!r}"
            )
        self.every: int | str = every
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
            raise ValueError(
                f"max_samples must be an integer >= 1. Received: max_samples={max_samples!r}"
            )
        self.max_activation_bytes = check_max_activation_bytes(max_activation_bytes)
        if layers is not None:
            if isinstance(layers, str) or not all(isinstance(n, str) for n in layers):
                raise TypeError(
                    f"layers must be a list of layer names or None. Received: layers={layers!r}"
                )
            layers = list(layers)
        self.layers = layers
        _check_choice("activations_dtype", activations_dtype, ACTIVATION_DTYPES)
        if activations_dtype is None:
            raise ValueError("activations_dtype must be 'float16' or 'float32'. Received: None")
        self.activations_dtype = activations_dtype
        normalize_compression(compression)  # validates
        self.compression = compression
        _check_choice("input_kind", input_kind, fmt.INPUT_KINDS)
        _check_choice("output_kind", output_kind, fmt.OUTPUT_KINDS)
        self.input_kind, self.output_kind = input_kind, output_kind
        if not isinstance(checks, bool):
            raise TypeError(f"checks must be True or False. Received: checks={checks!r}")
        self.checks = checks
        self._reported: set[tuple[str, str]] = set()
        self._checks_every = 1
        self._checks_skipped = 0
        self._last_check_seconds = 0.0
        self._final_checked: int | None = None
        self._epoch_seconds = 0.0
        self._epoch_ran = threading.Event()
        if class_names is not None:
            if isinstance(class_names, str) or not all(isinstance(c, str) for c in class_names):
                raise TypeError(
                    f"class_names must be a list of strings. Received: class_names={class_names!r}"
                )
            class_names = list(class_names)
        self.class_names = class_names

        inputs, labels = _split_samples(samples)
        #: Input names when samples x was a dict: matched to the model's inputs by name.
        x_part = samples[0] if isinstance(samples, tuple) else samples
        self._input_keys = [str(k) for k in x_part] if isinstance(x_part, Mapping) else None
        self.inputs = [a[:max_samples] for a in inputs]
        self.labels = labels[:max_samples] if labels is not None else None
        self.n_samples = self.inputs[0].shape[0]
        self.class_ids = None if output_kind == "regression" else class_ids_from_labels(self.labels)
        if self.class_ids is not None:
            needed = int(self.class_ids.max()) + 1
            if class_names is not None and len(class_names) < needed:
                raise ValueError(
                    f"class_names has {len(class_names)} names but the labels go up to class "
                    f"{needed - 1}. Received: class_names={class_names!r}"
                )
        self.n_classes = (
            len(class_names)
            if class_names
            else (int(self.class_ids.max()) + 1 if self.class_ids is not None else 0)
        )

        self.model_dir = self.logdir / fmt.model_dir_name(self.header["name"], self.header["id"])
        # --- attributions hook (record/attributions.py) ---
        options = AttributionOptions.parse(
            attributions, attribution_steps, attribution_epochs, attribution_baseline
        )
        self._attributions = (
            None
            if options is None
            else Attributor(
                options,
                self.model_dir,
                self.header["id"],
                self.inputs,
                self.class_ids,
                output_kind,
            )
        )
        # --- end of the attributions hook ---
        self._checks = TrainingChecks(self.model_dir, self.header["id"])
        existing = self.model_dir / fmt.CHECKPOINTS_DIR
        if (
            self.active
            and existing.is_dir()
            and any(fmt.parse_checkpoint_name(p.name) is not None for p in existing.iterdir())
        ):
            raise ValueError(
                f"{self.model_dir} already holds checkpoints of model id {self.header['id']}; "
                "give each training run its own header (tinspect.make_header or tinspect.branch)"
            )
        #: Errors of checkpoints that could not be written, as (label, exception).
        self.errors: list[tuple[str, BaseException]] = []
        self._capture: Capture | None = None
        self._writer: BackgroundWriter | None = None
        self._written: set[int] = set()
        self._completed = 0  # epochs completed over all fit calls
        self._offset = 0
        self._first_epoch_of_fit: int | None = None
        self._epoch_start = 0.0
        self._epoch_cpu_start = 0.0
        #: This fit's checkpoint jobs run on the training thread (``cores_saturated``),
        #: decided at the end of the fit's first epoch.
        self._inline = False
        self._started = False
        self._metric_keys: list[str] = []
        self._architecture: dict[str, Any] | None = None
        self._architecture_text: tuple[dict[str, Any], str] | None = None
        self._previous_extremes: dict[int, dict[str, UnitExtremes]] = {}
        self._several = False  # one of several processes training together
        # every="auto": this fit's start, planned epochs, the writer's CPU seconds per
        # checkpoint, checkpoints submitted, and main-thread seconds spent on them.
        self._fit_start = 0.0
        self._fit_epochs = 0
        self._fit_costs: list[float] = []
        self._submitted_in_fit = 0
        self._main_seconds = 0.0
        self._compile = False  # the recorder traced on the main thread (no shadow)
        self._compile_in_writer = False  # and in the writer thread (with the shadow)

    # --- Keras hooks ---------------------------------------------------------------------
    @without_tensorflow_import
    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self.active = process_index(keras.backend.backend()) == 0
        if not self.active:
            return
        self._ensure_built()
        self._check_inputs()
        if not self._started:
            (self.model_dir / fmt.CHECKPOINTS_DIR).mkdir(parents=True, exist_ok=True)
            self._capture = Capture(self.model, self.layers, None, self.activations_dtype)
            self._cap_samples(self._capture)
            self._capture.set_class_matrix(class_weights(self.class_ids, self._n_classes()))
            if self.layers is not None:
                names = {layer.name for layer in self.model.layers}
                unknown = [n for n in self.layers if n not in names]
                if unknown:
                    raise ValueError(
                        f"layers names unknown layers {unknown}; the model has {sorted(names)}. "
                        f"Received: layers={self.layers!r}"
                    )
            self._several = process_count(keras.backend.backend()) > 1
            if self._several and self._capture.shadow is None and not self._capture.reason:
                # The live model is distributed over every process: running it here alone
                # would be a collective the other processes never join.
                self._capture.extractor = None
                self._capture.reason = (
                    "in a multi-process run activations are computed only with a copy of the "
                    "model on process 0, and this model could not be cloned"
                )
            if self._capture.reason:
                _warn(
                    f"activations not recorded for {self.header['name']!r}: {self._capture.reason}"
                )
            elif self._capture.plan.skipped:
                detail = "; ".join(f"{k}: {v}" for k, v in self._capture.plan.skipped.items())
                _warn(f"activations of some layers are not recorded ({detail})")
            self._started = True
        self._first_epoch_of_fit = None
        if self._attributions is not None:  # attributions hook
            self._attributions.at_train_begin(self.model)
        if self._writer is not None:  # a previous fit raised before on_train_end
            self._writer.close()  # its queued checkpoints are still written
            self._report_errors()
        self._architecture = None  # described anew: trainable flags may change between fits
        self._write_model_json(state="training")
        self._writer = BackgroundWriter()
        self._epoch_ran = threading.Event()
        epochs = int((self.params or {}).get("epochs") or 0)
        planned = epochs // self.every + 1 if isinstance(self.every, int) else epochs + 1
        if self.every == "auto":
            planned = min(planned, AUTO_MIN_CHECKPOINTS)  # at least; more if the budget allows
        self._fit_start = time.perf_counter()
        self._fit_epochs = epochs
        self._fit_costs = []
        self._submitted_in_fit = 0
        self._main_seconds = 0.0
        self._inline = False
        self._compile = planned >= COMPILE_MIN_CHECKPOINTS
        self._compile_in_writer = planned >= WRITER_COMPILE_MIN_CHECKPOINTS
        if 0 not in self._written:
            self._checkpoint(0, {}, wait=self._epoch_ran)

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if not self.active:
            return
        if self._first_epoch_of_fit is None:
            self._first_epoch_of_fit = epoch
            # fit(initial_epoch=k) numbers epochs absolutely; a plain second fit restarts at 0.
            self._offset = 0 if epoch > 0 else self._completed
        self._epoch_start = time.perf_counter()
        self._epoch_cpu_start = time.process_time()

    @without_tensorflow_import
    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if not self.active:
            return
        self._epoch_ran.set()  # the initialization checkpoint may be computed now
        completed = self._offset + epoch + 1
        self._completed = completed
        metrics = {k: to_float(v) for k, v in (logs or {}).items()}
        for key in metrics:
            if key not in self._metric_keys:
                self._metric_keys.append(key)
        self._epoch_seconds = time.perf_counter() - self._epoch_start
        line = {
            **metrics,  # the recorder's own keys below win over same-named Keras logs
            fmt.METRIC_EPOCH: completed,
            fmt.METRIC_TIME: time.time(),
            fmt.METRIC_WALL_TIME: self._epoch_seconds,
            fmt.METRIC_LEARNING_RATE: arch.learning_rate(getattr(self.model, "optimizer", None)),
            fmt.METRIC_STEP: self._step(),
        }
        append_line(self.model_dir / fmt.METRICS_JSONL, json_line(line))
        last = (self.params or {}).get("epochs")
        if epoch == self._first_epoch_of_fit:
            self._choose_inline(time.process_time() - self._epoch_cpu_start)
        final = last is not None and epoch + 1 == last
        if final or self._due(completed):
            start = time.perf_counter()
            inline = self._checkpoint(completed, metrics, final=final)
            self._main_seconds += time.perf_counter() - start - inline  # the job: in costs
        self._report_errors()

    @without_tensorflow_import
    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if not self.active:
            return
        self._epoch_ran.set()
        try:
            if self._completed and self._completed not in self._written:
                metrics = {k: to_float(v) for k, v in (logs or {}).items()}
                self._checkpoint(self._completed, metrics, final=True)
        finally:
            if self._writer is not None:
                self._writer.close()
            if self.checks and self._completed and self._final_checked != self._completed:
                # Training stopped early on an epoch written as an ordinary checkpoint.
                self._run_checks(self._completed)
            self._checks.close()
            self._report_errors()
            self._writer = None  # closed: a next fit starts its own
            self._write_model_json(state="finished")
            if self._attributions is not None:  # attributions hook: computed from now on
                self._attributions.at_train_end(self._completed)

    def wait_for_attributions(self, timeout: float | None = None) -> bool:
        """Block until every attribution file queued so far is written (False on timeout).

        ``fit`` does not wait for the last checkpoint's attributions; a script that exits
        right after it still gets them (they are finished at interpreter exit)."""
        return self._attributions is None or self._attributions.wait(timeout)

    # --- internals -----------------------------------------------------------------------
    def _due(self, completed: int) -> bool:
        """Whether the epoch that just ended (not the fit's last) gets a checkpoint."""
        if isinstance(self.every, int):
            return completed % self.every == 0
        first = self._offset + (self._first_epoch_of_fit or 0)
        costs = list(self._fit_costs)  # appended by the writer thread, one per checkpoint
        return auto_due(
            done=completed - first,
            epochs=self._fit_epochs - (self._first_epoch_of_fit or 0),
            costs=costs,
            pending=self._submitted_in_fit - len(costs),
            main_seconds=self._main_seconds,
            elapsed=time.perf_counter() - self._fit_start,
            budget=AUTO_BUDGET,  # read now, not when auto_due was defined
            minimum=AUTO_MIN_CHECKPOINTS,
        )

    def _cap_samples(self, capture: Capture) -> None:
        """Record fewer samples when their activations exceed ``max_activation_bytes`` per
        checkpoint (decided once, before the first checkpoint; one warning says so)."""
        values = capture.plan.stored_values_per_sample()
        per_sample = None if values is None else values * np.dtype(self.activations_dtype).itemsize
        keep = samples_within(self.n_samples, per_sample, self.max_activation_bytes)
        if keep >= self.n_samples:
            return
        assert per_sample is not None and self.max_activation_bytes is not None
        _warn(
            cap_notice(
                keep, self.n_samples, self.header["name"], per_sample, self.max_activation_bytes
            )
        )
        self.inputs = [a[:keep] for a in self.inputs]
        self.labels = self.labels[:keep] if self.labels is not None else None
        self.class_ids = self.class_ids[:keep] if self.class_ids is not None else None
        self.n_samples = keep
        if self._attributions is not None:  # attributions hook: the same samples
            self._attributions.keep_first(keep)

    def _n_classes(self) -> int:
        n = self.n_classes
        if self.class_ids is not None and self.output_kind in (None, "classification"):
            outputs = getattr(self.model, "outputs", None) or []
            if len(outputs) == 1 and len(outputs[0].shape) == 2 and (outputs[0].shape[-1] or 0) > 1:
                n = max(n, int(outputs[0].shape[-1]))
        return n

    def _ensure_built(self) -> None:
        """Build a model that fit has not built yet (a Sequential without an Input)."""
        if self.model.built and (
            getattr(self.model, "_functional", None) is not None
            or not isinstance(self.model, keras.Sequential)
        ):
            return
        try:
            if isinstance(self.model, keras.Sequential) and len(self.inputs) == 1:
                self.model.build((None, *self.inputs[0].shape[1:]))
            else:
                self.model(self._feed(1), training=False)
        except Exception as error:  # noqa: BLE001
            _warn(f"could not build the model on the samples ({error})")

    def _feed(self, n: int | None = None) -> Any:
        arrays = [a[:n] if n else a for a in self.inputs]
        return arrays[0] if len(arrays) == 1 else arrays

    def _check_inputs(self) -> None:
        try:
            expected = [tuple(t.shape) for t in self.model.inputs]
            names = [arch.history_name(t) for t in self.model.inputs]
        except (AttributeError, ValueError):
            return  # a subclassed model: shapes are checked by calling it
        if self._input_keys is not None and sorted(self._input_keys) == sorted(map(str, names)):
            by_key = dict(zip(self._input_keys, self.inputs, strict=True))
            self.inputs = [by_key[str(n)] for n in names]
            self._input_keys = [str(n) for n in names]
        if len(expected) != len(self.inputs):
            raise ValueError(
                f"the model has {len(expected)} inputs but samples give {len(self.inputs)}. "
                f"Received: samples x with {len(self.inputs)} arrays"
            )
        for shape, array in zip(expected, self.inputs, strict=True):
            want = shape[1:]
            got = array.shape[1:]
            if len(want) != len(got) or any(
                w is not None and w != g for w, g in zip(want, got, strict=True)
            ):
                raise ValueError(
                    f"samples do not fit the model input: the model expects (n, "
                    f"{', '.join('?' if w is None else str(w) for w in want)}). "
                    f"Received: samples x of shape {array.shape}"
                )

    def _step(self) -> int:
        """Optimizer iterations so far, -1 when the model has no optimizer to ask."""
        optimizer = getattr(self.model, "optimizer", None)
        try:
            return int(optimizer.iterations) if optimizer is not None else -1
        except (TypeError, ValueError, AttributeError):
            return -1

    def _dataset_facts(self) -> dict[str, Any]:
        n_classes = self._n_classes()
        names = list(self.class_names or [])
        names += [str(i) for i in range(len(names), n_classes)]  # outputs beyond the names
        return {
            "n_samples": self.n_samples,
            "sample_shape": list(self.inputs[0].shape[1:]) if len(self.inputs) == 1 else None,
            "input_shapes": [list(a.shape[1:]) for a in self.inputs],
            "input_names": self._input_keys,
            "input_dtypes": [str(a.dtype) for a in self.inputs],
            "label_shape": list(self.labels.shape[1:]) if self.labels is not None else None,
            "n_classes": n_classes,
            "class_names": names or None,
            "input_kind": self.input_kind,
            "output_kind": self.output_kind,
        }

    def _write_model_json(self, state: str) -> None:
        write_text_atomic(self.model_dir / fmt.MODEL_JSON, self._model_json_text(state))

    def _model_json_text(self, state: str, epochs_completed: int | None = None) -> str:
        """model.json's text; the architecture (most of it) is encoded once per fit."""
        data = self._model_json(state, epochs_completed)
        architecture = data["architecture"]
        if self._architecture_text is None or self._architecture_text[0] is not architecture:
            self._architecture_text = (architecture, json_text(architecture))
        members = {
            key: self._architecture_text[1] if key == "architecture" else json_text(value)
            for key, value in data.items()
        }
        return json_object_text(members) + "\n"

    def _model_json(self, state: str, epochs_completed: int | None = None) -> dict[str, Any]:
        """The content of model.json now (the architecture is described once per fit)."""
        capture = self._capture
        training = arch.describe_training(self.model, self.params)
        training["batch_size"] = self.header.get("hyperparameters", {}).get("batch_size")
        if self._metric_keys:
            training["metrics"] = list(self._metric_keys)
        if self._architecture is None:
            self._architecture = arch.describe_architecture(self.model)
        return {
            "format_version": fmt.FORMAT_VERSION,
            "header": self.header,
            "architecture": self._architecture,
            "training": training,
            "dataset": self._dataset_facts(),
            "recording": {
                "every": self.every,
                "n_samples": self.n_samples,
                "max_activation_bytes": self.max_activation_bytes,
                "activations_dtype": self.activations_dtype,
                "compression": self.compression,
                "layers": capture.plan.captured if capture else [],
                "skipped": (
                    {"*": capture.reason}
                    if capture and capture.reason
                    else (capture.plan.skipped if capture else {})
                ),
                "capture": "none"
                if not capture or capture.extractor is None
                else ("shadow" if capture.shadow is not None else "main-thread"),
                "tinspect_version": tinspect.__version__,
                "keras_version": keras.__version__,
                "backend": keras.backend.backend(),
                "attributions": None  # attributions hook
                if self._attributions is None
                else self._attributions.describe(),
            },
            "status": {
                "state": state,
                "epochs_completed": self._completed
                if epochs_completed is None
                else epochs_completed,
                "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        }

    def _choose_inline(self, cpu_seconds: float) -> None:
        """After the fit's first epoch: run this fit's checkpoint jobs on the training
        thread if training keeps every core busy (``cores_saturated``) on a backend where
        that starves the writer (``INLINE_BACKENDS``), and only in a one-process run.

        The initialization's job, queued in the writer, is finished now, while training
        waits, instead of being starved over the next epochs.
        """
        if (
            self._writer is None
            or self._several
            or keras.backend.backend() not in INLINE_BACKENDS
            or not cores_saturated(cpu_seconds, self._epoch_seconds, _cores())
        ):
            return
        self._inline = True
        self._writer.drain()

    def _checkpoint(
        self,
        epoch: int,
        metrics: Mapping[str, Any],
        final: bool = False,
        wait: threading.Event | None = None,
    ) -> float:
        """Copy what the checkpoint needs on this thread; compute and write it in the writer
        (after ``wait`` is set, or ``INIT_WAIT_SECONDS``, when given), or here in inline
        mode. Returns the seconds the job took here (0 when the writer runs it)."""
        assert self._capture is not None and self._writer is not None
        capture = self._capture
        model_layers = [
            layer for layer in self.model.layers if type(layer).__name__ != "InputLayer"
        ]
        weights = {layer.name: layer.get_weights() for layer in model_layers if layer.weights}
        if self._attributions is not None:  # attributions hook: the same copy of the weights
            self._attributions.at_checkpoint(epoch, weights, final)
        attrs = {
            fmt.ATTR_FORMAT_VERSION: fmt.FORMAT_VERSION,
            fmt.ATTR_MODEL_ID: self.header["id"],
            fmt.ATTR_MODEL_NAME: self.header["name"],
            fmt.ATTR_EPOCH: epoch,
            fmt.ATTR_STEP: self._step(),
            fmt.ATTR_TIME: time.time(),
            fmt.ATTR_METRICS: dict(metrics),
            fmt.ATTR_N_SAMPLES: self.n_samples,
            fmt.ATTR_N_CLASSES: self._n_classes(),
            fmt.ATTR_ACTIVATIONS_DTYPE: self.activations_dtype,
            fmt.ATTR_WEIGHTS_BYTES: int(
                sum(a.nbytes for arrays in weights.values() for a in arrays)
            ),
        }
        outputs = None
        if capture.extractor is not None and capture.shadow is None:
            outputs = capture.run(  # live weights: must run now
                self.inputs, None, extremes=self.checks, compiled=self._compile
            )
        elif capture.extractor is None and self._several:
            outputs = Activations([], [], [], 0.0)  # no model call: see on_train_begin
        elif capture.extractor is None:
            start = time.perf_counter()
            prediction = self.model(self._feed(), training=False)
            predictions = prediction if isinstance(prediction, (list, tuple)) else [prediction]
            outputs = Activations(
                [],
                [],
                [keras.ops.convert_to_numpy(keras.ops.cast(p, "float32")) for p in predictions],
                time.perf_counter() - start,
            )
        info = self._model_json_text("training", epochs_completed=epoch)
        inline = self._inline and wait is None
        job = functools.partial(
            self._build_and_write,
            epoch,
            attrs,
            weights,
            model_layers,
            outputs,
            info,
            final,
            wait,
            inline,
        )
        self._written.add(epoch)
        self._submitted_in_fit += 1
        if not inline:
            self._writer.submit(f"epoch {epoch}", job, waited=final)
            return 0.0
        start = time.perf_counter()
        self._writer.run_here(f"epoch {epoch}", job)
        return time.perf_counter() - start

    def _build_and_write(
        self,
        epoch: int,
        attrs: dict[str, Any],
        weights: dict[str, list[np.ndarray]],
        model_layers: list[Any],
        outputs: Activations | None,
        info: str,
        final: bool = False,
        wait: threading.Event | None = None,
        inline: bool = False,
    ) -> None:
        """Runs in the writer thread (or, ``inline``, on the training thread): activations,
        class means, summaries, HDF5 file."""
        if wait is not None:
            wait.wait(INIT_WAIT_SECONDS)
        costs = self._fit_costs  # this fit's, even if the next fit has begun when it ends
        # The job's cost to training. Inline, its wall time: training waits for all of it.
        # In the writer, this thread's CPU time (numpy, h5py, the checks) plus the forward
        # pass's wall time, since the backend runs most of that in its own thread pool,
        # where this thread's clock does not see it (an overestimate when the pass shares
        # the cores with training: the budget errs on the cheap side).
        start, wall = time.thread_time(), time.perf_counter()
        forward = 0.0
        try:
            forward = self._compute_and_write(
                epoch, attrs, weights, model_layers, outputs, info, final
            )
        finally:
            if inline:
                costs.append(time.perf_counter() - wall)
            else:
                costs.append(time.thread_time() - start + forward)

    def _compute_and_write(
        self,
        epoch: int,
        attrs: dict[str, Any],
        weights: dict[str, list[np.ndarray]],
        model_layers: list[Any],
        outputs: Activations | None,
        info: str,
        final: bool,
    ) -> float:
        """Computes and writes the checkpoint; returns the seconds of a forward pass run
        here (0 when the main thread ran it)."""
        forward = 0.0
        capture = self._capture
        assert capture is not None
        checks = self._checks_due(epoch, final)
        if outputs is None:
            # Extremes at every checkpoint: a check compares with the previous checkpoint's
            # (dead units stay dead), and reading those back costs ~3× computing them now.
            # Traced here, with the first checkpoint the writer computes: that is the
            # initialization, which waits for epoch 0 to end, since tracing beside fit's own
            # tracing cost ~3× as much.
            outputs = capture.run(
                self.inputs, weights, extremes=self.checks, compiled=self._compile_in_writer
            )
            forward = outputs.seconds
        attrs[fmt.ATTR_RUNTIME_PER_SAMPLE] = outputs.seconds / self.n_samples
        plan = capture.plan
        index = {name: i for i, name in enumerate(plan.captured)}
        aliases = outputs.aliases(plan)
        wanted = set(self.layers) if self.layers is not None else None
        records = []
        for layer in model_layers:
            if wanted is not None and layer.name not in wanted:
                continue
            record = LayerRecord(layer.name, type(layer).__name__)
            if layer.name in aliases:
                record.same_as = aliases[layer.name]
                record.shape = outputs.stored[index[layer.name]].shape
            elif layer.name in index:
                record.activations = outputs.stored[index[layer.name]]
                record.mean_class_activations = outputs.class_means[index[layer.name]]
            else:
                record.skipped = plan.skipped.get(layer.name) or capture.reason or "not captured"
            names = arch.variable_names(layer)
            record.weights = dict(zip(names, weights.get(layer.name, []), strict=False))
            records.append(record)
        samples: dict[str, np.ndarray] = {fmt.SAMPLES_X: self.inputs[0]}
        for i, extra in enumerate(self.inputs[1:], start=1):
            samples[f"{fmt.SAMPLES_X}_{i}"] = extra
        if self.labels is not None:
            samples[fmt.SAMPLES_Y_LABEL] = self.labels
        if self.class_ids is not None:
            samples[fmt.SAMPLES_Y_CLASS] = self.class_ids
        for i, prediction in enumerate(outputs.predictions):
            key = fmt.SAMPLES_Y_PREDICTION if i == 0 else f"{fmt.SAMPLES_Y_PREDICTION}_{i}"
            samples[key] = prediction
        path = self.model_dir / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(epoch)
        write_checkpoint(path, CheckpointRecord(attrs, samples, records), self.compression)
        # model.json follows each checkpoint, so a reader sees how far training got. Its
        # rename is atomic; unlike checkpoints, this status update needs no fsync. After the
        # last one, on_train_end writes the final state at once.
        if not final:
            write_text_atomic(self.model_dir / fmt.MODEL_JSON, info, fsync=False)
        extremes = {epoch: outputs.extremes_by_layer(plan)}
        if checks:
            self._run_checks(epoch, {**self._previous_extremes, **extremes})
        self._previous_extremes = extremes
        return forward

    def _checks_due(self, epoch: int, final: bool) -> bool:
        """Whether the silent-bug checks run after this checkpoint (writer thread).

        They run with the initialization and the last checkpoint, and in between at most as
        often as keeps their cost under ``CHECK_BUDGET`` of an epoch's time: on tiny, fast
        epochs that means every few checkpoints, on real ones every checkpoint.
        """
        if not self.checks:
            return False
        if self._last_check_seconds and self._epoch_seconds > 0:
            budget = CHECK_BUDGET * self._epoch_seconds
            self._checks_every = max(1, math.ceil(self._last_check_seconds / budget))
        if final:
            self._final_checked = epoch
        if epoch == 0 or final or self._checks_skipped + 1 >= self._checks_every:
            self._checks_skipped = 0
            return True
        self._checks_skipped += 1
        return False

    def _run_checks(
        self, epoch: int, extremes: Mapping[int, Mapping[str, UnitExtremes]] | None = None
    ) -> None:
        """Silent-bug checks on what was just written; new findings go to findings.jsonl
        and one line each on stdout. A failing check never stops training.

        ``extremes`` are per-unit extremes of layers by epoch, computed while their
        activations were in memory: the checks use them instead of reading them back.
        """
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
            record = {"epoch": epoch, "time": time.time(), **finding.to_dict()}
            append_line(self.model_dir / fmt.FINDINGS_JSONL, json_line(record))
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
