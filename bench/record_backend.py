"""What recording with ``InspectCheckpoint`` costs a training run on one Keras backend.

``python -m bench.record`` (``make bench``) runs this module once per backend, each in its
own process (``KERAS_BACKEND`` is fixed when Keras is imported); run it alone with
``KERAS_BACKEND=jax python -m bench.record_backend``.

Two models: the demo conv net on digits (8×8 images, 0.2-0.3 s epochs on 2 cores: the worst
case for a per-epoch recorder) and a heavier 28×28 conv net on generated images (~22 MB of
float16 activations per checkpoint of 512 samples; at the defaults ``max_activation_bytes``
keeps 175 of them, ~8 MB, and the size table says how many each variant recorded).

Why only ratios: on this kind of machine (2 cores, shared) one ``fit`` varies by ±30 % from
run to run, and seconds measured here would mean nothing elsewhere. So every figure is a
ratio against a reference measured in the same process and the same round: each round
trains one fresh, identically seeded model per variant (plain ``fit``, a no-op callback,
``InspectCheckpoint`` at its defaults, with ``every=1``, ...) in an order that rotates from
round to round, so slow phases of the machine hit every variant alike. The ratio is
computed within each round and the median over rounds is reported (with min and max); the
first round only warms up caches and is discarded. The no-op callback's ratio to plain
``fit`` is the noise floor: an overhead below it is not measurable here.

Sizes are exact: the last checkpoint file of each compression setting is compared with
4 bytes per stored value (samples, activations, per-class means, weights), i.e. with what
the same arrays would take as raw float32.

``--profile N`` adds N timed fits that split the recorder's cost into main-thread hooks and
the writer thread's work; it wraps private functions of ``tinspect.record`` at run time (and
skips any it no longer finds), so it is a diagnostic, not part of the figures.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time

_BENCH_START = time.perf_counter()  # the total duration includes importing Keras
# Before Keras is imported: quiet TensorFlow's C++ logging, and keep Keras' config file
# (written at import) out of the user's home directory.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_HOME"] = _KERAS_HOME = tempfile.mkdtemp(prefix="tinspect-bench-keras-")
atexit.register(shutil.rmtree, _KERAS_HOME, ignore_errors=True)

import argparse  # noqa: E402
import functools  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import warnings  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable, Iterator, Mapping, Sequence  # noqa: E402
from contextlib import ExitStack, contextmanager  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402
from unittest import mock  # noqa: E402

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import tinspect  # noqa: E402
from tinspect import format as fmt  # noqa: E402
from tinspect.demo import data as demo_data  # noqa: E402
from tinspect.demo import models  # noqa: E402
from tinspect.keras import InspectCheckpoint  # noqa: E402

SEED = 0
EPOCHS = 5
N_SAMPLES = 512
ROUNDS = 9
#: Pairs of first fits in fresh processes (``fresh_pairs``).
FRESH_PAIRS = 2
RESULTS = Path(__file__).resolve().parent / "results" / "record_backend.json"
_ROOT = Path(__file__).resolve().parents[1]
BACKEND = keras.backend.backend()

PLAIN = "plain"
NOOP = "noop"
INSPECT = "inspect"  # InspectCheckpoint at its defaults
INSPECT_EVERY1 = "inspect_every1"  # every epoch, the defaults otherwise
INSPECT_AUTO = "inspect_auto"  # every="auto", the defaults otherwise
INSPECT_ALL = "inspect_all"  # every sample given: max_activation_bytes=None
TENSORBOARD = "tensorboard"
INSPECT_GZIP = "inspect_gzip"
INSPECT_LZF = "inspect_lzf"
#: InspectCheckpoint's keyword arguments per variant (beyond logdir, header, samples).
INSPECT_KWARGS: dict[str, dict[str, Any]] = {
    INSPECT: {},
    INSPECT_EVERY1: {"every": 1},
    INSPECT_AUTO: {"every": "auto"},
    INSPECT_ALL: {"max_activation_bytes": None},
    INSPECT_GZIP: {"every": 1, "compression": "gzip"},
    INSPECT_LZF: {"every": 1, "compression": "lzf"},
}

#: (label, numerator, denominator, target or None): the time ratios reported, where both
#: variants ran.
TIME_RATIOS: tuple[tuple[str, str, str, float | None], ...] = (
    ("noop / plain (noise floor)", NOOP, PLAIN, None),
    ("inspect defaults / plain", INSPECT, PLAIN, 1.10),
    ("inspect every=1 / plain", INSPECT_EVERY1, PLAIN, None),
    ("inspect every=auto / plain", INSPECT_AUTO, PLAIN, None),
    ("inspect all 512 samples / plain", INSPECT_ALL, PLAIN, None),
    ("inspect every=1 / tensorboard", INSPECT_EVERY1, TENSORBOARD, None),
    ("tensorboard / plain", TENSORBOARD, PLAIN, None),
    ("inspect gzip / inspect every=1", INSPECT_GZIP, INSPECT_EVERY1, None),
    ("inspect lzf / inspect every=1", INSPECT_LZF, INSPECT_EVERY1, None),
)
#: Target of checkpoint bytes ÷ raw float32 bytes per variant that writes files.
#: lzf is the fast codec, chosen for speed not size: reported without a target (the ≤ 0.35
#: target is for compression on for size, i.e. gzip).
SIZE_TARGETS: dict[str, float | None] = {
    INSPECT: 0.55,
    INSPECT_EVERY1: 0.55,
    INSPECT_AUTO: 0.55,
    INSPECT_ALL: 0.55,
    INSPECT_GZIP: 0.35,
    INSPECT_LZF: None,
}


@dataclass(frozen=True)
class Data:
    """The training arrays and the fixed samples recorded at every checkpoint."""

    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    samples: tuple[np.ndarray, np.ndarray]
    samples_source: str


def digits_data() -> Data:
    """Digits as 8×8 images; 512 recorded samples taken from the (already shuffled) training set.

    The validation set has only 500 rows; the first 512 training rows are real, distinct
    samples, whereas concatenating would record duplicates.
    """
    digits = demo_data.load_digits(seed=SEED)
    x = demo_data.Digits.images(digits.x_train)
    x_val = demo_data.Digits.images(digits.x_val)
    samples = (x[:N_SAMPLES], digits.y_train[:N_SAMPLES])
    source = (
        f"first {N_SAMPLES} rows of the training set ({len(x)} rows; "
        f"the validation set has only {len(x_val)})"
    )
    return Data(x, digits.y_train, x_val, digits.y_val, samples, source)


def generated_images(n_train: int = 2048, n_val: int = 512, size: int = 28) -> Data:
    """28×28 images of 10 classes: a smooth random template per class, shifted by up to
    2 pixels, plus noise. Learnable (a conv net reaches high accuracy in a few epochs), and
    no download."""
    rng = np.random.default_rng(SEED)
    noise = rng.normal(size=(10, size, size))
    spectrum = np.fft.fft2(noise)
    freq = np.fft.fftfreq(size)
    low = np.exp(-(freq[:, None] ** 2 + freq[None, :] ** 2) / (2 * 0.08**2))
    templates = np.real(np.fft.ifft2(spectrum * low))
    templates = (templates - templates.min()) / (templates.max() - templates.min())
    n = n_train + n_val
    labels = rng.integers(0, 10, size=n)
    shifts = rng.integers(-2, 3, size=(n, 2))
    x = np.empty((n, size, size, 1), dtype=np.float32)
    for i in range(n):
        x[i, :, :, 0] = np.roll(templates[labels[i]], tuple(shifts[i]), axis=(0, 1))
    x += rng.normal(scale=0.25, size=x.shape).astype(np.float32)
    x_train, x_val = x[:n_train], x[n_train:]
    y_train, y_val = labels[:n_train], labels[n_train:]
    samples = (x_train[:N_SAMPLES], y_train[:N_SAMPLES])
    return Data(x_train, y_train, x_val, y_val, samples, f"first {N_SAMPLES} training rows")


def heavy_conv() -> keras.Model:
    """A 28×28 conv net: ~21.6 k activation values per sample over its layers, so ~22 MB of
    float16 activations per checkpoint of 512 samples."""
    from keras import layers

    inputs = keras.Input((28, 28, 1), name="image")
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv_1")(inputs)
    h = layers.MaxPooling2D(2, name="pool_1")(h)
    h = layers.Conv2D(24, 3, padding="same", activation="relu", name="conv_2")(h)
    h = layers.MaxPooling2D(2, name="pool_2")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dense(64, activation="relu", name="hidden")(h)
    outputs = layers.Dense(10, activation="softmax", name="output")(h)
    return keras.Model(inputs, outputs, name="heavy_conv")


@dataclass(frozen=True)
class BenchModel:
    """One bench model: how to build it, its data, and how it is trained."""

    name: str
    description: str
    build: Callable[[], keras.Model]
    data: Callable[[], Data]
    batch_size: int
    variants: tuple[str, ...]


def _variants(heavy: bool) -> tuple[str, ...]:
    """TensorBoard and the compression settings on TensorFlow's demo conv model only: they
    answer questions (the peer's cost, bytes per codec) that do not depend on the backend,
    and every variant more lengthens each round."""
    if BACKEND == "tensorflow" and not heavy:
        return (
            PLAIN,
            NOOP,
            INSPECT,
            INSPECT_EVERY1,
            INSPECT_AUTO,
            TENSORBOARD,
            INSPECT_GZIP,
            INSPECT_LZF,
        )
    if heavy:  # the one bench model whose activations max_activation_bytes caps
        return (PLAIN, NOOP, INSPECT, INSPECT_EVERY1, INSPECT_ALL)
    return (PLAIN, NOOP, INSPECT, INSPECT_EVERY1, INSPECT_AUTO)


MODELS: dict[str, BenchModel] = {
    "conv": BenchModel(
        "conv",
        "the demo conv model on digits (8×8)",
        lambda: models.conv(),
        digits_data,
        32,
        _variants(heavy=False),
    ),
    "heavy": BenchModel(
        "heavy",
        "a 28×28 conv net on generated images",
        heavy_conv,
        generated_images,
        64,
        _variants(heavy=True),
    ),
}


class NoOp(keras.callbacks.Callback):
    """The cheapest callback that still runs a Python hook every epoch: the noise floor."""

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Does nothing on purpose."""


@dataclass(frozen=True)
class CheckpointSize:
    """Bytes of one checkpoint file against the same values stored as raw float32."""

    epoch: int
    file_bytes: int
    raw_float32_bytes: int
    n_checkpoints: int
    all_checkpoints_bytes: int
    epochs: list[int] = field(default_factory=list)
    n_samples: int = 0  # recorded (max_activation_bytes may keep fewer than given)

    @property
    def ratio(self) -> float:
        return self.file_bytes / self.raw_float32_bytes


@dataclass
class FitResult:
    """One timed ``fit`` of one variant."""

    variant: str
    seconds: float
    cpu_seconds: float = 0.0  # of this process (every thread) during fit
    size: CheckpointSize | None = None
    errors: list[str] = field(default_factory=list)


def raw_float32_bytes(path: Path) -> int:
    """4 × the number of values in samples, activations, class means and weights of a file.

    Counted per layer, not per stored dataset: a layer whose activations repeat another
    layer's (stored once, see ``format.ATTR_ACTIVATIONS_OF``) still counts its own values,
    so storing them once shows up as the saving it is instead of shrinking the reference.
    """
    values = 0
    with h5py.File(path, "r") as f:
        for dataset in f[fmt.SAMPLES_GROUP].values():
            values += int(dataset.size)
        sources = f[fmt.LAYERS_GROUP]
        for group in sources.values():
            for name in (fmt.ACTIVATIONS, fmt.MEAN_CLASS_ACTIVATIONS):
                if name in group:  # a dataset, or a hard link to another layer's
                    values += int(group[name].size)
                elif fmt.ATTR_ACTIVATIONS_SHAPE in group.attrs:
                    source = sources[fmt.h5_key(str(group.attrs[fmt.ATTR_ACTIVATIONS_OF]))]
                    values += int(source[name].size) if name in source else 0
            if fmt.WEIGHTS_GROUP in group:
                values += sum(int(d.size) for d in group[fmt.WEIGHTS_GROUP].values())
    return 4 * values


def checkpoint_size(run_dir: Path) -> CheckpointSize:
    """Size figures of the last-epoch checkpoint written under ``run_dir``."""
    files: dict[int, Path] = {}
    for path in run_dir.glob(f"*/{fmt.CHECKPOINTS_DIR}/*"):
        epoch = fmt.parse_checkpoint_name(path.name)
        if epoch is not None:
            files[epoch] = path
    if not files:
        raise RuntimeError(f"no checkpoint was written under {run_dir}")
    last = max(files)
    return CheckpointSize(
        epoch=last,
        file_bytes=files[last].stat().st_size,
        raw_float32_bytes=raw_float32_bytes(files[last]),
        n_checkpoints=len(files),
        all_checkpoints_bytes=sum(p.stat().st_size for p in files.values()),
        epochs=sorted(files),
        n_samples=_recorded_samples(files[last]),
    )


def _recorded_samples(path: Path) -> int:
    with h5py.File(path, "r") as f:
        return int(f.attrs[fmt.ATTR_N_SAMPLES])


def make_callbacks(
    variant: str, run_dir: Path, data: Data, bench: BenchModel
) -> list[keras.callbacks.Callback]:
    """The callbacks of one variant; each InspectCheckpoint gets a fresh logdir and header."""
    if variant == PLAIN:
        return []
    if variant == NOOP:
        return [NoOp()]
    if variant == TENSORBOARD:
        return [keras.callbacks.TensorBoard(log_dir=str(run_dir), histogram_freq=1)]
    header = tinspect.make_header(
        name=bench.name, label=f"bench {variant}", batch_size=bench.batch_size
    )
    return [
        InspectCheckpoint(
            run_dir,
            header,
            data.samples,
            class_names=[str(i) for i in range(10)],
            input_kind="image",
            output_kind="classification",
            **INSPECT_KWARGS[variant],
        )
    ]


def timed_fit(variant: str, data: Data, workdir: Path, epochs: int, bench: BenchModel) -> FitResult:
    """Train a fresh, identically seeded model with ``variant``'s callbacks; time ``fit``.

    Building and compiling the model happen before the clock starts (they are the same for
    every variant); everything ``fit`` does, including the recorder's final wait for its
    writer thread in ``on_train_end``, is inside the measured time.
    """
    run_dir = Path(tempfile.mkdtemp(prefix=f"{variant}-", dir=workdir))
    try:
        callbacks = make_callbacks(variant, run_dir, data, bench)
        keras.backend.clear_session()
        gc.collect()  # garbage of the previous fit must not be collected on this one's clock
        keras.utils.set_random_seed(SEED)
        model = models.compile_classifier(bench.build())
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        model.fit(
            data.x,
            data.y,
            validation_data=(data.x_val, data.y_val),
            epochs=epochs,
            batch_size=bench.batch_size,
            verbose=0,
            callbacks=callbacks,
        )
        seconds = time.perf_counter() - start
        result = FitResult(variant, seconds, _cpu_seconds() - cpu_start)
        if variant in INSPECT_KWARGS:
            result.size = checkpoint_size(run_dir)
            callback = callbacks[0]
            assert isinstance(callback, InspectCheckpoint)
            result.errors = [f"{label}: {error!r}" for label, error in callback.errors]
        return result
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def first_fit(variant: str, bench: BenchModel, epochs: int) -> None:
    """``--first-fit``: this process's first ``fit`` (``timed_fit``), as one JSON line.

    A user's script usually runs one fit per process, so what that fit pays once (imports,
    tracing, compiling) is part of what the recorder costs them; the paired rounds, whose
    warm-up round is discarded, cannot see it.
    """
    data = bench.data()
    with tempfile.TemporaryDirectory(prefix="tinspect-bench-first-") as tmp:
        result = timed_fit(variant, data, Path(tmp), epochs, bench)
    print(json.dumps({"variant": variant, "seconds": result.seconds}))


def fresh_pairs(bench: BenchModel, pairs: int, epochs: int) -> dict[str, Any] | None:
    """``pairs`` of (plain, defaults) first fits, each in a fresh interpreter, alternating
    which goes first; their ratios, paired within each pair (None when ``pairs`` is 0)."""
    if pairs < 1:
        return None
    ratios: list[float] = []
    seconds: dict[str, list[float]] = {PLAIN: [], INSPECT: []}
    for index in range(pairs):
        order = (PLAIN, INSPECT) if index % 2 == 0 else (INSPECT, PLAIN)
        got: dict[str, float] = {}
        for variant in order:
            command = [sys.executable, "-m", "bench.record_backend", "--model", bench.name]
            command += ["--epochs", str(epochs), "--first-fit", variant]
            done = subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=_ROOT)
            if done.returncode != 0:
                raise RuntimeError(f"first fit of {variant} failed: {done.stderr[-2000:]}")
            got[variant] = float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])
            seconds[variant].append(got[variant])
        ratios.append(got[INSPECT] / got[PLAIN])
        print(
            f"{BACKEND} {bench.name} first fit in a fresh process {index + 1}/{pairs}: "
            + ", ".join(f"{v} {got[v]:.2f}s" for v in order),
            flush=True,
        )
    return {"pairs": pairs, "ratio": asdict(spread(ratios)), "seconds": seconds}


def _cpu_seconds() -> float:
    """User + system CPU time of this process so far, all threads (the recorder's writer
    thread included)."""
    times = os.times()
    return times.user + times.system


def rotated(variants: Sequence[str], round_index: int) -> list[str]:
    """The variants in round ``round_index``'s order: each round starts one variant later."""
    k = round_index % len(variants)
    return [*variants[k:], *variants[:k]]


@dataclass(frozen=True)
class Spread:
    """Median, min and max of one paired ratio over the measured rounds."""

    median: float
    min: float
    max: float
    values: list[float]


def spread(values: Sequence[float]) -> Spread:
    return Spread(statistics.median(values), min(values), max(values), list(values))


def paired_ratios(
    rounds: Sequence[Mapping[str, FitResult]], cpu: bool = False
) -> dict[str, Spread]:
    """Each time ratio computed within every round (never across rounds), then summarized;
    only ratios of variants that ran. ``cpu``: of the process's CPU time instead of wall
    time (see ``bench_model``)."""
    ran = set(rounds[0]) if rounds else set()

    def ratio(r: Mapping[str, FitResult], num: str, den: str) -> float:
        if cpu:
            return r[num].cpu_seconds / r[den].cpu_seconds
        return r[num].seconds / r[den].seconds

    return {
        label: spread([ratio(r, num, den) for r in rounds])
        for label, num, den, _target in TIME_RATIOS
        if num in ran and den in ran
    }


# --- optional profile: where the recorder's time goes ----------------------------------------


def _thread_usage() -> tuple[float, float, int] | None:
    """(user seconds, kernel seconds, minor page faults) of the calling thread so far;
    None where the OS does not count per thread (only Linux does)."""
    try:
        import resource

        usage = resource.getrusage(resource.RUSAGE_THREAD)
    except (ImportError, AttributeError, OSError):
        return None
    return usage.ru_utime, usage.ru_stime, usage.ru_minflt


class Timers:
    """Accumulated seconds and call counts per (thread, label), safe across two threads;
    with each, the calling thread's CPU time split into user and kernel time, and its
    minor page faults.

    The split answers a question wall time cannot: how much of the recorder's CPU is the
    kernel's (new page-cache pages for the file, first touches of fresh memory), which
    depends on the machine's memory management (a VM whose host reclaims the guest's free
    memory makes every fresh page a host fault) more than on the recorder's code. Linux
    counts user and kernel time per thread in scheduler ticks, so only sums over many calls
    (a profile's fits) are meaningful.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.user: dict[str, float] = defaultdict(float)
        self.kernel: dict[str, float] = defaultdict(float)
        self.faults: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def wrap(self, label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` timed under ``main:label`` or ``writer:label`` by the calling thread."""

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start, before = time.perf_counter(), _thread_usage()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed, after = time.perf_counter() - start, _thread_usage()
                thread = (
                    "main" if threading.current_thread() is threading.main_thread() else "writer"
                )
                key = f"{thread}:{label}"
                with self._lock:
                    self.seconds[key] += elapsed
                    self.calls[key] += 1
                    if before is not None and after is not None:
                        self.user[key] += after[0] - before[0]
                        self.kernel[key] += after[1] - before[1]
                        self.faults[key] += after[2] - before[2]

        return timed


def _profile_targets() -> list[tuple[Any, str, str]]:
    """(owner, attribute, label) of each function timed by ``--profile``; missing ones skipped.

    Chosen to split the cost: the Keras hooks (all main-thread time the recorder adds per
    fit), the main thread's copy of the weights and queueing (``_checkpoint``, ``submit``,
    which blocks when the writer is two checkpoints behind), the final wait (``close``), and
    inside the writer thread the shadow model call, the float16 cast with class means, the
    per-array summaries, the HDF5 write and the fsync.
    """
    from tinspect.record import callback as callback_module
    from tinspect.record import capture as capture_module
    from tinspect.record import writer as writer_module

    candidates = [
        (InspectCheckpoint, "on_train_begin", "on_train_begin"),
        (InspectCheckpoint, "on_epoch_begin", "on_epoch_begin"),
        (InspectCheckpoint, "on_epoch_end", "on_epoch_end"),
        (InspectCheckpoint, "on_train_end", "on_train_end"),
        (InspectCheckpoint, "_checkpoint", "_checkpoint (weights copy + submit)"),
        (InspectCheckpoint, "_write_model_json", "_write_model_json"),
        (InspectCheckpoint, "_build_and_write", "_build_and_write (whole job)"),
        (getattr(callback_module, "Capture", None), "__init__", "Capture() (extractor + clone)"),
        (getattr(capture_module, "Capture", None), "run", "Capture.run (set_weights + call)"),
        (getattr(capture_module, "Capture", None), "_activations", "Capture._activations (numpy)"),
        (callback_module, "write_checkpoint", "write_checkpoint (summaries + HDF5 + fsync)"),
        (writer_module, "summarize", "summarize (per-array summaries)"),
        (getattr(callback_module, "BackgroundWriter", None), "submit", "BackgroundWriter.submit"),
        (getattr(callback_module, "BackgroundWriter", None), "close", "BackgroundWriter.close"),
        (os, "fsync", "os.fsync"),
    ]
    return [(o, a, label) for o, a, label in candidates if o is not None and hasattr(o, a)]


@contextmanager
def profiled(timers: Timers) -> Iterator[list[str]]:
    """Wrap the profile targets for the duration of the block; yields the labels wrapped."""
    targets = _profile_targets()
    with ExitStack() as stack:
        for owner, attribute, label in targets:
            stack.enter_context(
                mock.patch.object(owner, attribute, timers.wrap(label, getattr(owner, attribute)))
            )
        yield [label for _o, _a, label in targets]


def profile(data: Data, workdir: Path, epochs: int, fits: int, bench: BenchModel) -> dict[str, Any]:
    """Alternate plain and timed-InspectCheckpoint fits; report seconds per fit by label.

    The unexplained rest, (inspect − plain) − main-thread hook time, estimates what the
    writer thread costs training by competing for the two cores and the GIL.
    """
    plain: list[float] = []
    inspect: list[float] = []
    per_fit: list[dict[str, float]] = []
    usage: list[Timers] = []
    for i in range(fits):
        for variant in rotated((PLAIN, INSPECT), i):
            if variant == PLAIN:
                plain.append(timed_fit(PLAIN, data, workdir, epochs, bench).seconds)
                continue
            timers = Timers()
            with profiled(timers):
                inspect.append(timed_fit(INSPECT, data, workdir, epochs, bench).seconds)
            per_fit.append(dict(timers.seconds))
            usage.append(timers)
    labels = sorted({k for d in per_fit for k in d})
    breakdown = {k: statistics.median(d.get(k, 0.0) for d in per_fit) for k in labels}
    # Means, not medians: tick-counted user and kernel time is only right on average.
    n = max(1, len(usage))
    cpu = {
        k: {
            "user_seconds": sum(t.user.get(k, 0.0) for t in usage) / n,
            "kernel_seconds": sum(t.kernel.get(k, 0.0) for t in usage) / n,
            "minor_faults": sum(t.faults.get(k, 0) for t in usage) / n,
        }
        for k in labels
    }
    hooks = sum(
        breakdown.get(f"main:{h}", 0.0)
        for h in ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_end")
    )
    plain_s, inspect_s = statistics.median(plain), statistics.median(inspect)
    return {
        "fits": fits,
        "plain_seconds_median": plain_s,
        "inspect_seconds_median": inspect_s,
        "extra_seconds": inspect_s - plain_s,
        "main_thread_hook_seconds": hooks,
        "unexplained_seconds": (inspect_s - plain_s) - hooks,
        "seconds_per_fit_by_label": breakdown,
        "thread_cpu_per_fit_by_label": cpu,
    }


# --- report ------------------------------------------------------------------------------------


def _verdict(value: float, target: float | None) -> str:
    if target is None:
        return ""
    return "ok" if value <= target else "MISSED"


def report(results: Mapping[str, Any]) -> str:
    """The plain-text table of one model's figures on this backend."""
    cfg = results["config"]
    variants = cfg["variants"]
    lines = [
        f"{results['backend']}: InspectCheckpoint on {cfg['description']}",
        f"  fit: {cfg['epochs']} epochs, batch {cfg['batch_size']}, {cfg['n_train']} training "
        f"rows, validation on {cfg['n_val']} rows, verbose=0",
        f"  samples given: {cfg['samples_source']}; all layers, float16 activations "
        "(recorded: see the size table)",
        f"  {results['rounds']} measured rounds (+{results['warmup_rounds']} warm-up discarded), "
        f"{len(variants)} fits per round in rotating order; fresh model (seed {SEED}) per fit",
        "",
        "Time: median of paired ratios (ratio within each round)",
        f"  {'ratio':<32}{'median':>8}{'min':>8}{'max':>8}{'target':>9}  verdict{'CPU time':>10}",
    ]
    for label, _num, _den, target in TIME_RATIOS:
        if label not in results["time_ratios"]:
            continue
        s = results["time_ratios"][label]
        c = results["cpu_ratios"][label]
        t = f"≤ {target:.2f}" if target is not None else ""
        lines.append(
            f"  {label:<32}{s['median']:>8.3f}{s['min']:>8.3f}{s['max']:>8.3f}{t:>9}  "
            f"{_verdict(s['median'], target):<7}{c['median']:>10.3f}"
        )
    first = results.get("first_fit")
    if first:
        r = first["ratio"]
        lines.append(
            f"  {'first fit in a fresh process':<32}{r['median']:>8.3f}{r['min']:>8.3f}"
            f"{r['max']:>8.3f}{'':>9}  ({first['pairs']} pairs of processes, imports included)"
        )
    secs = results["seconds_median"]
    lines.append(
        "  (for scale only, median seconds per fit: "
        + ", ".join(f"{v} {secs[v]:.2f}" for v in variants)
        + ")"
    )
    lines += [
        "",
        "Size: last checkpoint file ÷ raw float32 bytes of samples, activations, class means,",
        "weights (median over measured rounds); checkpoints written per fit",
        f"  {'variant':<16}{'file MB':>9}{'raw MB':>9}{'ratio':>8}{'target':>9}  verdict   "
        "samples  checkpoints (epochs)",
    ]
    for variant, target in SIZE_TARGETS.items():
        if variant not in results["sizes"]:
            continue
        s = results["sizes"][variant]
        lines.append(
            f"  {variant:<16}{s['file_bytes'] / 1e6:>9.2f}{s['raw_float32_bytes'] / 1e6:>9.2f}"
            f"{s['ratio']:>8.3f}{f'≤ {target:.2f}' if target is not None else '':>9}  "
            f"{_verdict(s['ratio'], target):<9} {s.get('n_samples', 0):>7}  "
            f"{s['n_checkpoints']} {s['epochs']}"
        )
    if results.get("errors"):
        lines += ["", "Checkpoint errors:", *(f"  {e}" for e in results["errors"])]
    prof = results.get("profile")
    if prof:
        lines += [
            "",
            f"Profile: medians over {prof['fits']} timed InspectCheckpoint fits (private "
            "functions wrapped; seconds per fit)",
            f"  plain fit {prof['plain_seconds_median']:.3f} s, inspect fit "
            f"{prof['inspect_seconds_median']:.3f} s, extra {prof['extra_seconds']:.3f} s",
            f"  main-thread hooks {prof['main_thread_hook_seconds']:.3f} s; unexplained rest "
            f"(contention with the writer thread) {prof['unexplained_seconds']:.3f} s",
        ]
        cpu = prof.get("thread_cpu_per_fit_by_label") or {}
        lines.append(
            f"  {'':<60}{'wall':>8}{'user':>8}{'kernel':>8}{'faults':>8}  (thread CPU: mean)"
        )
        for label, seconds in prof["seconds_per_fit_by_label"].items():
            c = cpu.get(label)
            split = (
                f"{c['user_seconds']:>8.3f}{c['kernel_seconds']:>8.3f}{c['minor_faults']:>8.0f}"
                if c
                else ""
            )
            lines.append(f"  {label:<60}{seconds:>8.3f}{split}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.record_backend",
        description="Time and size overhead of InspectCheckpoint on this Keras backend.",
    )
    parser.add_argument(
        "--model", choices=[*MODELS, "all"], default="all", help="bench model (default all)"
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="measured rounds")
    parser.add_argument("--warmup", type=int, default=1, help="discarded warm-up rounds")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs per fit")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=[PLAIN, NOOP, *INSPECT_KWARGS, TENSORBOARD],
        help="only these variants (plain is always run)",
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="add N timed fits (diagnostic)"
    )
    parser.add_argument(
        "--fresh",
        type=int,
        default=FRESH_PAIRS,
        metavar="N",
        help="N pairs of first fits (plain, defaults), each in a fresh process",
    )
    parser.add_argument("--first-fit", choices=[PLAIN, INSPECT], help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0 or args.epochs < 1 or min(args.profile, args.fresh) < 0:
        parser.error("--rounds and --epochs must be >= 1, --warmup, --profile, --fresh >= 0")
    return args


def bench_model(
    bench: BenchModel, args: argparse.Namespace, workdir: Path, variants: Sequence[str]
) -> dict[str, Any]:
    """Alternating, rotating rounds of ``variants`` on one model; its figures as a dict."""
    data = bench.data()
    rounds: list[dict[str, FitResult]] = []
    errors: list[str] = []
    total = args.warmup + args.rounds
    for index in range(total):
        warm = index < args.warmup
        results: dict[str, FitResult] = {}
        for variant in rotated(variants, index):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = timed_fit(variant, data, workdir, args.epochs, bench)
            results[variant] = result
            errors += [f"round {index} {variant}: {e}" for e in result.errors]
            errors += [
                f"round {index} {variant}: warning {w.message}"
                for w in caught
                # The byte cap's notice is the defaults at work (reported as "samples").
                if "tinspect" in str(w.message) and "max_activation_bytes" not in str(w.message)
            ]
        kind = "warm-up" if warm else f"round {index - args.warmup + 1}/{args.rounds}"
        print(
            f"{BACKEND} {bench.name} {kind}: "
            + ", ".join(
                f"{v} {results[v].seconds:.2f}s ({results[v].cpu_seconds:.2f} CPU)"
                for v in variants
            ),
            flush=True,
        )
        if not warm:
            rounds.append(results)
    prof = profile(data, workdir, args.epochs, args.profile, bench) if args.profile else None
    sizes: dict[str, dict[str, Any]] = {}
    for variant in SIZE_TARGETS:
        measured = [size for r in rounds if variant in r and (size := r[variant].size)]
        if measured:
            middle = sorted(measured, key=lambda s: s.ratio)[len(measured) // 2]
            sizes[variant] = {**asdict(middle), "ratio": middle.ratio}
    return {
        "backend": BACKEND,
        "model": bench.name,
        "config": {
            "description": bench.description,
            "epochs": args.epochs,
            "batch_size": bench.batch_size,
            "n_train": len(data.x),
            "n_val": len(data.x_val),
            "n_samples": N_SAMPLES,
            "samples_source": data.samples_source,
            "variants": list(variants),
            "inspect_kwargs": {v: INSPECT_KWARGS[v] for v in variants if v in INSPECT_KWARGS},
            "seed": SEED,
        },
        "rounds": args.rounds,
        "warmup_rounds": args.warmup,
        "time_ratios": {k: asdict(v) for k, v in paired_ratios(rounds).items()},
        # The process's CPU time, paired the same way: on a machine shared with other jobs
        # the wall time of a fit also measures the neighbours; CPU time measures the work
        # (an upper bound of the recorder's cost on idle cores, where it overlaps).
        "cpu_ratios": {k: asdict(v) for k, v in paired_ratios(rounds, cpu=True).items()},
        "time_targets": {label: t for label, _n, _d, t in TIME_RATIOS if t is not None},
        "seconds_median": {v: statistics.median(r[v].seconds for r in rounds) for v in variants},
        "seconds_per_round": [{v: r[v].seconds for v in variants} for r in rounds],
        "sizes": sizes,
        "size_targets": SIZE_TARGETS,
        "errors": errors,
        "profile": prof,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.first_fit:
        bench = MODELS["conv" if args.model == "all" else args.model]
        first_fit(args.first_fit, bench, args.epochs)
        return 0
    names = list(MODELS) if args.model == "all" else [args.model]
    out: dict[str, Any] = {"backend": BACKEND, "models": {}}
    with tempfile.TemporaryDirectory(prefix="tinspect-bench-") as tmp:
        for name in names:
            bench = MODELS[name]
            variants = bench.variants
            if args.variants:
                variants = tuple(v for v in variants if v == PLAIN or v in args.variants)
            out["models"][name] = bench_model(bench, args, Path(tmp), variants)
            out["models"][name]["first_fit"] = fresh_pairs(bench, args.fresh, args.epochs)
    out["environment"] = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": BACKEND,
        "tinspect": tinspect.__version__,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }
    out["total_seconds"] = time.perf_counter() - _BENCH_START
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2) + "\n")
    for name in names:
        print()
        print(report(out["models"][name]))
    print(f"\n{BACKEND}: {out['total_seconds']:.0f} s; results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
