"""What reading a logdir costs: ``tinspect ls``, one layer's histogram, and a huge layer.

Run it with ``python -m bench.read`` from the repository root (about 1.5 minutes; it needs
about 2.5 GB of temporary disk at a time, all removed at the end, and about 3 GB of free
memory; ``--skip-memory`` leaves out the 2 GiB part).

Why only ratios: on this kind of machine (2 cores, shared) timings vary by tens of percent
from run to run, and seconds measured here would mean nothing elsewhere. So every figure is
a ratio against a reference measured in the same run, on the same data, in alternating
order, and the target is printed next to it:

1. ``ls`` must not depend on checkpoint sizes: it reads headers (``model.json``,
   ``metrics.jsonl``) and directory listings only. Two logdirs of 200 models x 11
   checkpoints are generated that differ only in checkpoint size (about 10x), and ``ls`` is
   timed on both, in process (``Store`` + ``ls_rows``) and as the real command. The command's
   time is also divided by the start-up time of ``python -c "import textual.app"``, the
   floor of the coming viewer, and the HDF5 files ``ls`` opens are counted (must be 0).
2. A histogram of one layer over all 11 checkpoints against the floor: plain h5py reading
   each dataset whole plus ``np.histogram``. The disk cache is off and each repeat gets a
   fresh ``Store``, so the computation is measured, not a cache; the warm (cached) repeat is
   reported too. Ratios are paired within a round and the median over rounds is reported.
3. Peak memory on a layer far larger than a block: one 2 GiB float32 dataset is reduced by
   ``tinspect.store.reduce`` in a separate process and its peak RSS compared with the
   dataset's size; the naive whole read is measured the same way for comparison, with the
   address space of both children capped at 6 GiB. The peak is ``VmHWM``, not
   ``ru_maxrss``: Linux carries the parent's high-water mark into ``ru_maxrss`` across
   fork + exec, so a child of this (250 MiB) process would report at least 250 MiB.

Synthetic logs are written with the recorder's own ``write_checkpoint`` (no Keras) and
``model.json`` files copied from ``fixtures/digits``; one set of 11 checkpoints is written
per size and copied into every model directory (``ls`` never opens them; their attributes
name the template model). Everything is generated in a temporary directory, in the page
cache, so the figures measure tinspect's work, not the disk.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import math
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import tinspect
from tinspect import format as fmt
from tinspect.cli import ls_rows
from tinspect.query.run import run
from tinspect.query.spec import Query
from tinspect.record.files import write_json_atomic
from tinspect.record.writer import CheckpointRecord, LayerRecord, write_checkpoint
from tinspect.store import h5, reduce
from tinspect.store.cache import Cache
from tinspect.store.logdir import Store
from tinspect.summary import IN_MEMORY_VALUES

SEED = 0
ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "read.json"
FIXTURES = ROOT / "fixtures" / "digits"
#: model.json templates: the dense model for the ls logdirs, the conv model for the histogram.
DENSE_TEMPLATE = FIXTURES / "dense_baseline-a58570cf" / fmt.MODEL_JSON
CONV_TEMPLATE = FIXTURES / "conv-d218bdf1" / fmt.MODEL_JSON

# --- 1. ls ----------------------------------------------------------------------------------
N_MODELS = 200
N_EXPERIMENTS = 8  # model trees; the other models of a tree descend from its root
EPOCHS = 10  # checkpoints 0..10: 11 per model
#: Recorded samples of the two checkpoint variants (file sizes about 10x apart).
SMALL_SAMPLES = 16
BIG_SAMPLES = 1750
LS_ROUNDS = 15
CLI_ROUNDS = 5
DENSE_LAYERS = (("hidden_1", 64, 64), ("hidden_2", 64, 32), ("output", 32, 10))
N_CLASSES = 10

# --- 2. histogram ---------------------------------------------------------------------------
HIST_LAYER = "conv_2"
HIST_SHAPE = (1024, 8, 8, 64)  # float16: 8 MiB per checkpoint, 88 MiB over 11 checkpoints
HIST_BINS = 30
HIST_ROUNDS = 7

# --- 3. memory ------------------------------------------------------------------------------
HUGE_SHAPE = (8192, 65536)  # float32: 2 GiB, 512 M values
HUGE_DTYPE = np.float32
HUGE_DATASET = f"{fmt.LAYERS_GROUP}/huge/{fmt.ACTIVATIONS}"
HUGE_WRITE_ROWS = 256  # rows per write while generating: 64 MiB
#: Address-space cap of the measuring children: neither may take the machine down.
CHILD_MEMORY_CAP = 6 << 30
#: Disk and memory the huge part needs before it starts (it is skipped otherwise).
HUGE_DISK_NEEDED = 5 << 30
NAIVE_MEMORY_NEEDED = 5 << 30


# --- figures and their targets ------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """What a figure should be: ``lo <= value <= hi``; both None for a figure only reported."""

    text: str
    lo: float | None = None
    hi: float | None = None

    def verdict(self, value: float | None) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "n/a"
        if self.lo is None and self.hi is None:
            return ""
        ok = (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)
        return "ok" if ok else "MISSED"


ABOUT_ONE = Target("≈ 1 (0.8–1.25)", 0.8, 1.25)
NONE_OPENED = Target("= 0", 0, 0)
REPORT_ONLY = Target("(report)")


@dataclass
class Figure:
    """One line of the final table."""

    section: str
    label: str
    value: float | None
    target: Target
    detail: str = ""
    verdict: str = field(init=False)

    def __post_init__(self) -> None:
        self.verdict = self.target.verdict(self.value)


@dataclass(frozen=True)
class Spread:
    median: float
    min: float
    max: float


def spread(values: Sequence[float]) -> Spread:
    return Spread(statistics.median(values), min(values), max(values))


def rotated(items: Sequence[Any], index: int) -> list[Any]:
    """``items`` starting at ``index``: alternates which variant runs first each round."""
    k = index % len(items)
    return [*items[k:], *items[:k]]


def max_rss_bytes() -> int:
    """``ru_maxrss`` in bytes (Linux reports KiB).

    Not clean in a child: Linux keeps the parent's high-water mark across fork + exec, so
    a child of a 250 MiB parent starts at 250 MiB. Kept in the JSON for reference only.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_bytes() -> tuple[int, int]:
    """(current, peak) resident set of this process's own address space.

    ``VmRSS`` and ``VmHWM`` from /proc/self/status belong to the address space made at exec,
    so unlike ``ru_maxrss`` they do not include the parent. Falls back to ``ru_maxrss``
    for both where /proc is missing.
    """
    found: dict[str, int] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if len(found) < 2:
        return max_rss_bytes(), max_rss_bytes()
    return found["VmRSS"], found["VmHWM"]


def mem_available() -> int:
    """MemAvailable from /proc/meminfo, or 0 when unknown (then memory-hungry parts skip)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


@contextlib.contextmanager
def counting_h5_opens() -> Iterator[list[str]]:
    """Record every ``h5py.File`` opened inside the block (whoever opens it)."""
    opened: list[str] = []
    original = h5py.File.__init__

    def counting(self: h5py.File, *args: Any, **kwargs: Any) -> None:
        opened.append(str(args[0] if args else kwargs.get("name")))
        original(self, *args, **kwargs)

    h5py.File.__init__ = counting
    try:
        yield opened
    finally:
        h5py.File.__init__ = original


# --- synthetic logs ---------------------------------------------------------------------------
def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)


def class_means(activations: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """mean_class_activations as the recorder writes them (NaN rows for absent classes)."""
    out = np.full((N_CLASSES, *activations.shape[1:]), np.nan, dtype=np.float32)
    for c in range(N_CLASSES):
        picked = activations[classes == c]
        if len(picked):
            out[c] = picked.astype(np.float32).mean(axis=0)
    return out


def epoch_metrics(epoch: int, rng: np.random.Generator) -> dict[str, float]:
    """Plausible Keras logs of a classifier after ``epoch`` epochs."""
    loss = 2.3 * math.exp(-0.35 * epoch) + 0.05 * float(rng.random())
    accuracy = min(0.99, 1.0 - loss / 2.5)
    return {
        "accuracy": accuracy,
        "loss": loss,
        "val_accuracy": accuracy - 0.02,
        "val_loss": loss + 0.05,
    }


def root_attrs(model_id: str, name: str, epoch: int, n: int, weights: int) -> dict[str, Any]:
    rng = np.random.default_rng(epoch)
    return {
        fmt.ATTR_FORMAT_VERSION: fmt.FORMAT_VERSION,
        fmt.ATTR_MODEL_ID: model_id,
        fmt.ATTR_MODEL_NAME: name,
        fmt.ATTR_EPOCH: epoch,
        fmt.ATTR_STEP: 41 * epoch,
        fmt.ATTR_TIME: 1.795e9 + epoch,
        fmt.ATTR_METRICS: json.dumps(epoch_metrics(epoch, rng) if epoch else {}),
        fmt.ATTR_N_SAMPLES: n,
        fmt.ATTR_N_CLASSES: N_CLASSES,
        fmt.ATTR_RUNTIME_PER_SAMPLE: 5e-5,
        fmt.ATTR_WEIGHTS_BYTES: weights,
        fmt.ATTR_ACTIVATIONS_DTYPE: "float16",
    }


def dense_checkpoint(model_id: str, epoch: int, n: int) -> CheckpointRecord:
    """A checkpoint of the dense fixture's architecture (64 → 64 → 32 → 10) on ``n`` samples."""
    rng = np.random.default_rng([SEED, epoch, n])
    x = rng.random((n, 64), dtype=np.float32)
    y = rng.integers(0, N_CLASSES, n).astype(np.int64)
    layers = []
    weights_bytes = 0
    values = x
    for name, fan_in, units in DENSE_LAYERS:
        kernel = rng.standard_normal((fan_in, units), dtype=np.float32) / np.sqrt(fan_in)
        kernel *= np.float32(1.0 + 0.05 * epoch)
        bias = (0.01 * epoch * rng.standard_normal(units)).astype(np.float32)
        values = values @ kernel + bias
        if name != "output":
            values = np.maximum(values, 0)
        activations = values.astype(np.float16)
        weights_bytes += kernel.nbytes + bias.nbytes
        layers.append(
            LayerRecord(
                name,
                "Dense",
                activations=activations,
                mean_class_activations=class_means(values, y),
                weights={"kernel": kernel, "bias": bias},
            )
        )
    samples: dict[str, np.ndarray] = {
        fmt.SAMPLES_X: x,
        fmt.SAMPLES_Y_LABEL: y,
        fmt.SAMPLES_Y_CLASS: y,
        fmt.SAMPLES_Y_PREDICTION: softmax(values),
    }
    attrs = root_attrs(model_id, "template", epoch, n, weights_bytes)
    return CheckpointRecord(attrs, samples, layers)


def dense_template(epoch: int, n_samples: int) -> CheckpointRecord:
    """The checkpoint copied into every model of an ls logdir (its id names no model)."""
    return dense_checkpoint("template", epoch, n_samples)


def conv_checkpoint(model_id: str, epoch: int) -> CheckpointRecord:
    """A checkpoint holding the wide ``conv_2`` layer (float16 ``HIST_SHAPE``) that drifts."""
    rng = np.random.default_rng([SEED, 1, epoch])
    n = HIST_SHAPE[0]
    y = rng.integers(0, N_CLASSES, n).astype(np.int64)
    pre = rng.standard_normal(HIST_SHAPE, dtype=np.float32)
    pre *= np.float32(1.0 + 0.1 * epoch)
    pre += np.float32(0.1 * epoch - 0.2)
    activations = np.maximum(pre, 0).astype(np.float16)
    del pre
    kernel = rng.standard_normal((3, 3, 8, HIST_SHAPE[-1]), dtype=np.float32) * np.float32(0.1)
    bias = np.zeros(HIST_SHAPE[-1], dtype=np.float32)
    layer = LayerRecord(
        HIST_LAYER,
        "Conv2D",
        activations=activations,
        mean_class_activations=class_means(activations, y),
        weights={"kernel": kernel, "bias": bias},
    )
    samples: dict[str, np.ndarray] = {
        fmt.SAMPLES_X: rng.random((n, 8, 8, 1), dtype=np.float32),
        fmt.SAMPLES_Y_LABEL: y,
        fmt.SAMPLES_Y_CLASS: y,
        fmt.SAMPLES_Y_PREDICTION: softmax(rng.standard_normal((n, N_CLASSES))),
    }
    attrs = root_attrs(model_id, "wide_conv", epoch, n, kernel.nbytes + bias.nbytes)
    return CheckpointRecord(attrs, samples, [layer])


def model_json(template: dict[str, Any], header: dict[str, Any], n_samples: int) -> dict[str, Any]:
    """The fixture's model.json with another header, finished after ``EPOCHS`` epochs."""
    data = json.loads(json.dumps(template))
    data["header"] = header
    data["dataset"]["n_samples"] = n_samples
    data["recording"]["n_samples"] = n_samples
    data["training"]["epochs"] = EPOCHS
    data["status"]["epochs_completed"] = EPOCHS
    return data


def headers(rng: random.Random) -> list[dict[str, Any]]:
    """``N_MODELS`` headers in ``N_EXPERIMENTS`` trees; some children merge two parents."""
    out = []
    per_tree = N_MODELS // N_EXPERIMENTS
    for tree in range(N_EXPERIMENTS):
        ids: list[str] = []
        for i in range(per_tree):
            model_id = f"{rng.getrandbits(128):032x}"
            parents = [] if i == 0 else [rng.choice(ids)]
            if i > 3 and rng.random() < 0.1:
                other = rng.choice(ids)
                if other not in parents:
                    parents.append(other)
            learning_rate = rng.choice((1e-2, 3e-3, 1e-3, 3e-4))
            out.append(
                {
                    "id": model_id,
                    "name": f"exp{tree}-run{i:02d}",
                    "label": f"experiment {tree}, run {i} (lr {learning_rate:g})",
                    "parents": parents,
                    "created": "2026-11-22T15:46:56+00:00",
                    "hyperparameters": {"batch_size": 32, "learning_rate": learning_rate},
                }
            )
            ids.append(model_id)
    return out


def metrics_lines(seed: int) -> str:
    """``EPOCHS`` lines of metrics.jsonl as the recorder appends them."""
    rng = np.random.default_rng(seed)
    lines = []
    for epoch in range(1, EPOCHS + 1):
        row: dict[str, Any] = epoch_metrics(epoch, rng)
        row.update(
            {
                fmt.METRIC_EPOCH: epoch,
                fmt.METRIC_TIME: 1.795e9 + epoch,
                fmt.METRIC_WALL_TIME: 0.2 + 0.01 * float(rng.random()),
                fmt.METRIC_LEARNING_RATE: 0.0010000000474974513,
                fmt.METRIC_STEP: 41 * epoch,
            }
        )
        lines.append(json.dumps(row, separators=(",", ":")))
    return "\n".join(lines) + "\n"


def write_templates(directory: Path, make: Callable[[int], CheckpointRecord]) -> list[Path]:
    """One checkpoint per epoch, written by the recorder's writer."""
    directory.mkdir(parents=True)
    paths = []
    for epoch in range(EPOCHS + 1):
        path = directory / fmt.checkpoint_name(epoch)
        write_checkpoint(path, make(epoch), compression=None)
        paths.append(path)
    return paths


def generate_ls_logdir(logdir: Path, checkpoints: Sequence[Path], n_samples: int) -> None:
    """``N_MODELS`` model directories, each with a copy of the 11 template checkpoints."""
    template = json.loads(DENSE_TEMPLATE.read_text())
    for index, header in enumerate(headers(random.Random(SEED))):
        directory = logdir / fmt.model_dir_name(header["name"], header["id"])
        (directory / fmt.CHECKPOINTS_DIR).mkdir(parents=True)
        write_json_atomic(directory / fmt.MODEL_JSON, model_json(template, header, n_samples))
        (directory / fmt.METRICS_JSONL).write_text(metrics_lines(index))
        for source in checkpoints:
            shutil.copyfile(source, directory / fmt.CHECKPOINTS_DIR / source.name)


def widen_conv(template: dict[str, Any]) -> dict[str, Any]:
    """The conv fixture's architecture with ``conv_2`` widened to ``HIST_SHAPE[-1]`` channels."""
    data = json.loads(json.dumps(template))
    channels = HIST_SHAPE[-1]
    shapes = {
        HIST_LAYER: [None, 8, 8, channels],
        "pool": [None, 4, 4, channels],
        "flatten": [None, 16 * channels],
    }
    total = 0
    for layer in data["architecture"]["layers"]:
        if layer["name"] in shapes:
            layer["output_shape"] = shapes[layer["name"]]
            layer["output_shapes"] = [shapes[layer["name"]]]
        kernel_shapes = {HIST_LAYER: [3, 3, 8, channels], "hidden": [16 * channels, 64]}
        if layer["name"] in kernel_shapes:
            kernel = kernel_shapes[layer["name"]]
            for variable in layer["variables"]:
                if variable["name"] == "kernel":
                    variable["shape"] = kernel
                elif variable["name"] == "bias":
                    variable["shape"] = [kernel[-1]]
            layer["params"]["trainable"] = math.prod(kernel) + kernel[-1]
            if layer["name"] == HIST_LAYER:
                layer["config"]["filters"] = channels
        total += layer["params"]["trainable"] + layer["params"]["non_trainable"]
    data["architecture"]["params"] = {"trainable": total, "non_trainable": 0, "total": total}
    data["recording"]["layers"] = [HIST_LAYER]
    return data


def generate_hist_logdir(logdir: Path) -> str:
    """One model whose 11 checkpoints hold the wide layer; returns the model's name."""
    model_id = f"{random.Random(SEED + 1).getrandbits(128):032x}"
    name = "wide_conv"
    header: dict[str, Any] = {
        "id": model_id,
        "name": name,
        "label": "Digits conv, 64 channels",
        "parents": [],
        "created": "2026-11-22T15:46:56+00:00",
        "hyperparameters": {"batch_size": 32, "learning_rate": 1e-3},
    }
    template = widen_conv(json.loads(CONV_TEMPLATE.read_text()))
    directory = logdir / fmt.model_dir_name(name, model_id)
    write_templates(directory / fmt.CHECKPOINTS_DIR, lambda epoch: conv_checkpoint(model_id, epoch))
    write_json_atomic(directory / fmt.MODEL_JSON, model_json(template, header, HIST_SHAPE[0]))
    (directory / fmt.METRICS_JSONL).write_text(metrics_lines(SEED))
    return name


def generate_huge(path: Path) -> None:
    """One checkpoint-like file with a single ``HUGE_SHAPE`` dataset, written in slices."""
    rng = np.random.default_rng(SEED)
    rows, cols = HUGE_SHAPE
    with h5py.File(path, "w") as f:
        f.attrs[fmt.ATTR_FORMAT_VERSION] = fmt.FORMAT_VERSION
        dataset = f.create_dataset(HUGE_DATASET, shape=HUGE_SHAPE, dtype=HUGE_DTYPE)
        for start in range(0, rows, HUGE_WRITE_ROWS):
            stop = min(rows, start + HUGE_WRITE_ROWS)
            block = rng.standard_normal((stop - start, cols), dtype=HUGE_DTYPE)
            np.maximum(block, 0, out=block)
            dataset[start:stop] = block


# --- 1. ls ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LsRun:
    """One in-process ``ls``: ``Store(logdir)`` then ``ls_rows``."""

    seconds: float
    store_seconds: float  # of which opening the store (headers, metrics, listings)
    models: int
    still_open: int  # HDF5 files the store holds open afterwards
    problems: int


def ls_in_process(logdir: Path) -> LsRun:
    """Time one ``ls``, after a full garbage collection.

    Without the collection, a generation-2 collection lands in every third run or so and
    adds about 30 % to it, whichever logdir it is: the collector's rhythm, not the data.
    """
    gc.collect()
    start = time.perf_counter()
    store = Store(logdir)
    opened = time.perf_counter()
    _columns, rows = ls_rows(store)
    end = time.perf_counter()
    run_ = LsRun(
        end - start, opened - start, len(rows), len(store.files._open), len(store.problems)
    )
    store.close()
    return run_


def tinspect_command() -> list[str]:
    """The installed ``tinspect`` script next to this interpreter, else ``-m tinspect.cli``."""
    script = Path(sys.executable).parent / "tinspect"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tinspect.cli"]


def child_env() -> dict[str, str]:
    """The environment of every child: no disk cache written into the user's home."""
    return {**os.environ, "TINSPECT_CACHE_DIR": "off"}


def timed_command(command: Sequence[str]) -> float:
    """Wall seconds of ``command`` with stdout to /dev/null (as ``> /dev/null``)."""
    start = time.perf_counter()
    done = subprocess.run(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=child_env(),
        cwd=ROOT,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.decode()[-500:]}")
    return seconds


COUNT_OPENS = """
import sys
import h5py

opened = []
original = h5py.File.__init__


def counting(self, *args, **kwargs):
    opened.append(args[0] if args else kwargs.get("name"))
    original(self, *args, **kwargs)


h5py.File.__init__ = counting
from tinspect.cli import main

try:
    main(["ls", sys.argv[1], "--csv"])
except SystemExit as exit_:
    if exit_.code not in (None, 0):
        raise
sys.stderr.write(f"H5_OPENS={len(opened)}\\n")
"""


def cli_h5_opens(logdir: Path) -> int:
    """HDF5 files the real ``ls`` command opens (h5py.File patched in the child)."""
    done = subprocess.run(
        [sys.executable, "-c", COUNT_OPENS, str(logdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=child_env(),
        cwd=ROOT,
        check=True,
        text=True,
    )
    marker = [line for line in done.stderr.splitlines() if line.startswith("H5_OPENS=")]
    return int(marker[-1].split("=")[1])


def bench_ls(workdir: Path) -> tuple[dict[str, Any], list[Figure]]:
    """Part 1: ``ls`` on two logdirs that differ only in checkpoint size."""
    started = time.perf_counter()
    logdirs: dict[str, Path] = {}
    checkpoint_bytes: dict[str, int] = {}
    for variant, n in (("small", SMALL_SAMPLES), ("big", BIG_SAMPLES)):
        templates = write_templates(
            workdir / f"templates-{variant}", functools.partial(dense_template, n_samples=n)
        )
        checkpoint_bytes[variant] = sum(p.stat().st_size for p in templates)
        logdirs[variant] = workdir / f"logs-{variant}"
        generate_ls_logdir(logdirs[variant], templates, n)
    generated = time.perf_counter() - started
    print(
        f"[ls] generated 2 logdirs of {N_MODELS} models x {EPOCHS + 1} checkpoints "
        f"({checkpoint_bytes['small'] / (EPOCHS + 1) / 1024:.0f} KiB and "
        f"{checkpoint_bytes['big'] / (EPOCHS + 1) / 1024:.0f} KiB per checkpoint) "
        f"in {generated:.1f} s",
        flush=True,
    )
    variants = ["small", "big"]

    # In process: warm-up (imports, page cache), then alternating rounds.
    for variant in variants:
        ls_in_process(logdirs[variant])
    with counting_h5_opens() as opened:
        checked = ls_in_process(logdirs["big"])
    inproc: dict[str, list[float]] = {v: [] for v in variants}
    store_part: dict[str, list[float]] = {v: [] for v in variants}
    for index in range(LS_ROUNDS):
        for variant in rotated(variants, index):
            one = ls_in_process(logdirs[variant])
            assert one.models == N_MODELS, f"ls listed {one.models} models, not {N_MODELS}"
            inproc[variant].append(one.seconds)
            store_part[variant].append(one.store_seconds)
    inproc_ratios = [b / s for b, s in zip(inproc["big"], inproc["small"], strict=True)]
    print(
        f"[ls] in process: small {statistics.median(inproc['small']) * 1e3:.0f} ms, "
        f"big {statistics.median(inproc['big']) * 1e3:.0f} ms (medians)",
        flush=True,
    )

    # The real command, against the start-up of a Textual app.
    command = tinspect_command()
    commands = {
        "textual": [sys.executable, "-c", "import textual.app"],
        "small": [*command, "ls", str(logdirs["small"]), "--csv"],
        "big": [*command, "ls", str(logdirs["big"]), "--csv"],
    }
    for cmd in commands.values():  # warm-up: .pyc files and shared libraries in memory
        timed_command(cmd)
    cli: dict[str, list[float]] = {k: [] for k in commands}
    for index in range(CLI_ROUNDS):
        for key in rotated(list(commands), index):
            cli[key].append(timed_command(commands[key]))
    cli_ratio = [b / s for b, s in zip(cli["big"], cli["small"], strict=True)]
    textual_ratio = [s / t for s, t in zip(cli["small"], cli["textual"], strict=True)]
    cli_opens = cli_h5_opens(logdirs["big"])
    print(
        "[ls] command: "
        + ", ".join(f"{k} {statistics.median(v):.2f} s" for k, v in cli.items())
        + " (medians)",
        flush=True,
    )

    size_ratio = checkpoint_bytes["big"] / checkpoint_bytes["small"]
    details = {
        "models": N_MODELS,
        "checkpoints_per_model": EPOCHS + 1,
        "checkpoint_bytes_mean": {k: v / (EPOCHS + 1) for k, v in checkpoint_bytes.items()},
        "checkpoint_size_ratio": size_ratio,
        "logdir_checkpoint_bytes": {k: v * N_MODELS for k, v in checkpoint_bytes.items()},
        "generate_seconds": generated,
        "in_process_seconds": inproc,
        "in_process_store_seconds": store_part,
        "in_process_ratio_big_small": asdict(spread(inproc_ratios)),
        "command": command,
        "command_seconds": cli,
        "command_ratio_big_small": asdict(spread(cli_ratio)),
        "command_ratio_to_textual_import": asdict(spread(textual_ratio)),
        "h5_files_opened_in_process": len(opened),
        "h5_files_open_after_ls_rows": checked.still_open,
        "h5_files_opened_by_command": cli_opens,
        "models_listed": checked.models,
        "problems": checked.problems,
    }
    section = "1. ls (200 models x 11 ckpts)"
    figures = [
        Figure(
            section,
            "checkpoint bytes big / small",
            size_ratio,
            Target("≈ 10 (setup)"),
            f"{checkpoint_bytes['small'] / (EPOCHS + 1) / 1024:.0f} vs "
            f"{checkpoint_bytes['big'] / (EPOCHS + 1) / 1024:.0f} KiB per file",
        ),
        Figure(
            section,
            "in-process ls: big / small",
            statistics.median(inproc_ratios),
            ABOUT_ONE,
            f"median of {LS_ROUNDS} pairs; "
            f"{statistics.median(inproc['small']) / N_MODELS * 1e3:.2f} ms per model, "
            f"{statistics.median(store_part['small']) / statistics.median(inproc['small']):.0%} "
            "of it in Store()",
        ),
        Figure(
            section,
            "tinspect ls --csv: big / small",
            statistics.median(cli_ratio),
            ABOUT_ONE,
            f"median of {CLI_ROUNDS} pairs",
        ),
        Figure(
            section,
            "tinspect ls --csv ÷ `import textual.app`",
            statistics.median(textual_ratio),
            REPORT_ONLY,
            f"{statistics.median(cli['small']):.2f} s vs {statistics.median(cli['textual']):.2f} s",
        ),
        Figure(section, "HDF5 files opened (in process)", len(opened), NONE_OPENED),
        Figure(section, "HDF5 files open after ls_rows", checked.still_open, NONE_OPENED),
        Figure(section, "HDF5 files opened (command)", cli_opens, NONE_OPENED),
    ]
    return details, figures


# --- 2. histogram ---------------------------------------------------------------------------
def floor_histograms(paths: Sequence[Path], name: str, float32: bool) -> tuple[float, int]:
    """(seconds, values counted) of plain h5py + ``np.histogram`` over every checkpoint."""
    start = time.perf_counter()
    counted = 0
    for path in paths:
        with h5py.File(path, "r") as f:
            values = f[name][()]
        if float32:
            values = values.astype(np.float32)
        counts, _edges = np.histogram(values, bins=HIST_BINS)
        counted += int(counts.sum())
    return time.perf_counter() - start, counted


def tinspect_histogram(store: Store, query: Query) -> tuple[float, int]:
    """(seconds, values counted) of one run of ``query``."""
    start = time.perf_counter()
    table = run(store, query)
    seconds = time.perf_counter() - start
    return seconds, int(sum(table.column("count")))


def bench_histogram(workdir: Path) -> tuple[dict[str, Any], list[Figure]]:
    """Part 2: a layer's histogram over all checkpoints, against plain h5py + numpy."""
    started = time.perf_counter()
    logdir = workdir / "logs-hist"
    name = generate_hist_logdir(logdir)
    paths = sorted((next(logdir.iterdir()) / fmt.CHECKPOINTS_DIR).glob("epoch-*.h5"))
    dataset = fmt.layer_path(HIST_LAYER, fmt.ACTIVATIONS)
    query = Query((f"{name}/{HIST_LAYER}",), step="histogram", bins=HIST_BINS, epochs="all")
    generated = time.perf_counter() - started
    print(
        f"[histogram] generated {len(paths)} checkpoints with {HIST_LAYER} float16 "
        f"{HIST_SHAPE} in {generated:.1f} s",
        flush=True,
    )
    expected = len(paths) * math.prod(HIST_SHAPE)

    def cold() -> float:
        store = Store(logdir, cache=Cache(None))
        seconds, counted = tinspect_histogram(store, query)
        assert counted == expected, f"tinspect counted {counted} values, expected {expected}"
        warm_seconds, _ = tinspect_histogram(store, query)  # same store: memory cache
        warm.append(warm_seconds)
        store.close()
        return seconds

    def floor() -> float:
        seconds, counted = floor_histograms(paths, dataset, float32=False)
        assert counted == expected
        return seconds

    def floor32() -> float:
        seconds, counted = floor_histograms(paths, dataset, float32=True)
        assert counted == expected
        return seconds

    runs: dict[str, Callable[[], float]] = {"tinspect": cold, "floor": floor, "floor32": floor32}
    seconds: dict[str, list[float]] = {k: [] for k in runs}
    warm: list[float] = []
    for index in range(HIST_ROUNDS + 1):  # round 0 warms up and is discarded
        for key in rotated(list(runs), index):
            value = runs[key]()
            if index:
                seconds[key].append(value)
        if not index:
            warm.clear()
    cold_ratio = [t / f for t, f in zip(seconds["tinspect"], seconds["floor"], strict=True)]
    cold32_ratio = [t / f for t, f in zip(seconds["tinspect"], seconds["floor32"], strict=True)]
    warm_ratio = [w / f for w, f in zip(warm, seconds["floor"], strict=True)]
    print(
        "[histogram] "
        + ", ".join(f"{k} {statistics.median(v) * 1e3:.0f} ms" for k, v in seconds.items())
        + f", warm {statistics.median(warm) * 1e3:.1f} ms (medians)",
        flush=True,
    )
    details = {
        "layer": HIST_LAYER,
        "shape": list(HIST_SHAPE),
        "dtype": "float16",
        "checkpoints": len(paths),
        "bins": HIST_BINS,
        "bytes_read_per_run": expected * 2,
        "generate_seconds": generated,
        "seconds": seconds,
        "warm_seconds": warm,
        "ratio_tinspect_to_floor": asdict(spread(cold_ratio)),
        "ratio_tinspect_to_float32_floor": asdict(spread(cold32_ratio)),
        "ratio_warm_to_floor": asdict(spread(warm_ratio)),
    }
    section = f"2. histogram {HIST_LAYER} x {len(paths)} ckpts"
    figures = [
        Figure(
            section,
            "tinspect (cold) ÷ h5py + np.histogram",
            statistics.median(cold_ratio),
            Target("≤ 1.5", None, 1.5),
            f"median of {HIST_ROUNDS} pairs; floor "
            f"{statistics.median(seconds['floor']) * 1e3:.0f} ms",
        ),
        Figure(
            section,
            "tinspect (cold) ÷ same floor on float32",
            statistics.median(cold32_ratio),
            REPORT_ONLY,
            "stricter floor: values cast to float32 before np.histogram",
        ),
        Figure(
            section,
            "tinspect (warm, cached) ÷ floor",
            statistics.median(warm_ratio),
            Target("≪ 1 (≤ 0.1)", None, 0.1),
            "same Store, second run",
        ),
    ]
    return details, figures


# --- 3. memory ------------------------------------------------------------------------------
def cap_address_space() -> None:
    """Make an allocation fail (MemoryError) rather than let a child exceed the cap."""
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_CAP, CHILD_MEMORY_CAP))


def child_stream(path: Path) -> dict[str, Any]:
    """In the child: tinspect's streaming summary and histogram; peak RSS after each."""
    cap_address_space()
    with h5py.File(path, "r", locking=False) as f:
        dataset = f[HUGE_DATASET]
        baseline, _peak = rss_bytes()
        size = reduce.n_values(dataset, None, None)
        start = time.perf_counter()
        summary = reduce.summary(reduce.blocks(dataset), size)
        summary_seconds = time.perf_counter() - start
        _rss, after_summary = rss_bytes()
        start = time.perf_counter()
        counts, _edges = reduce.hist(
            reduce.blocks(dataset), summary["min"], summary["max"], HIST_BINS
        )
        hist_seconds = time.perf_counter() - start
        return {
            "values": size,
            "streamed": size > IN_MEMORY_VALUES,
            "exact_quantiles": summary.exact_quantiles,
            "baseline_rss": baseline,
            "peak_rss_after_summary": after_summary,
            "peak_rss": rss_bytes()[1],
            "ru_maxrss": max_rss_bytes(),
            "summary_seconds": summary_seconds,
            "hist_seconds": hist_seconds,
            "counted": int(counts.sum()),
            "mean": summary["mean"],
            "block_rows": h5.block_rows(dataset.shape, dataset.dtype.itemsize),
        }


def child_naive(path: Path) -> dict[str, Any]:
    """In the child: the whole dataset read at once, then ``np.histogram``."""
    cap_address_space()
    with h5py.File(path, "r", locking=False) as f:
        dataset = f[HUGE_DATASET]
        baseline, _peak = rss_bytes()
        start = time.perf_counter()
        values = dataset[()]
        counts, _edges = np.histogram(values, bins=HIST_BINS)
        seconds = time.perf_counter() - start
    return {
        "baseline_rss": baseline,
        "peak_rss": rss_bytes()[1],
        "ru_maxrss": max_rss_bytes(),
        "seconds": seconds,
        "counted": int(counts.sum()),
    }


CHILDREN: dict[str, Callable[[Path], dict[str, Any]]] = {
    "stream": child_stream,
    "naive": child_naive,
}


def run_child(mode: str, path: Path) -> dict[str, Any]:
    """Run ``mode`` in a fresh interpreter (its address space is its own); parse its JSON."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench.read", "--child", mode, str(path)],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=ROOT,
        check=False,
        timeout=600,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-600:]}", "wall": wall}
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall": wall}


def bench_memory(workdir: Path) -> tuple[dict[str, Any], list[Figure]]:
    """Part 3: peak RSS of streaming reductions over a 2 GiB dataset, vs. the naive read."""
    section = "3. memory, one 2 GiB layer"
    nbytes = math.prod(HUGE_SHAPE) * np.dtype(HUGE_DTYPE).itemsize
    free = shutil.disk_usage(workdir).free
    if free < HUGE_DISK_NEEDED:
        reason = f"skipped: {free / 2**30:.1f} GiB free on {workdir}"
        return {"skipped": reason}, [Figure(section, "peak RSS", None, REPORT_ONLY, reason)]
    path = workdir / "huge.h5"
    started = time.perf_counter()
    try:
        generate_huge(path)
        generated = time.perf_counter() - started
        print(f"[memory] wrote {nbytes / 2**30:.1f} GiB in {generated:.1f} s", flush=True)
        stream = run_child("stream", path)
        print(f"[memory] streaming child done in {stream['wall']:.1f} s", flush=True)
        available = mem_available()
        if available >= NAIVE_MEMORY_NEEDED:
            naive = run_child("naive", path)
            print(f"[memory] naive child done in {naive['wall']:.1f} s", flush=True)
        else:
            naive = {"error": f"skipped: only {available / 2**30:.1f} GiB available"}
    finally:
        path.unlink(missing_ok=True)
    details = {
        "shape": list(HUGE_SHAPE),
        "dtype": np.dtype(HUGE_DTYPE).name,
        "dataset_bytes": nbytes,
        "block_bytes": h5.BLOCK_BYTES,
        "in_memory_values_limit": IN_MEMORY_VALUES,
        "child_address_space_cap": CHILD_MEMORY_CAP,
        "generate_seconds": generated,
        "stream": stream,
        "naive": naive,
    }
    if "error" in stream:
        return details, [Figure(section, "streaming child", None, REPORT_ONLY, stream["error"])]
    work = stream["peak_rss"] - stream["baseline_rss"]
    stream_seconds = stream["summary_seconds"] + stream["hist_seconds"]
    figures = [
        Figure(
            section,
            "values > IN_MEMORY_VALUES (streamed)",
            float(stream["streamed"] and not stream["exact_quantiles"]),
            Target("= 1 (yes)", 1, 1),
            f"{stream['values'] / 2**20:.0f} M values vs {IN_MEMORY_VALUES / 2**20:.0f} M",
        ),
        Figure(
            section,
            "stream: peak RSS ÷ dataset bytes",
            stream["peak_rss"] / nbytes,
            Target("≪ 1 (≤ 0.25)", None, 0.25),
            f"peak {stream['peak_rss'] / 2**20:.0f} MiB, interpreter "
            f"{stream['baseline_rss'] / 2**20:.0f} MiB",
        ),
        Figure(
            section,
            "stream: (peak − interpreter) ÷ BLOCK_BYTES",
            work / h5.BLOCK_BYTES,
            REPORT_ONLY,
            f"{work / 2**20:.0f} MiB working set; block {h5.BLOCK_BYTES >> 20} MiB "
            f"= {stream['block_rows']} rows; ru_maxrss {stream['ru_maxrss'] / 2**20:.0f} MiB",
        ),
        Figure(
            section,
            "stream: summary + histogram seconds",
            stream_seconds,
            REPORT_ONLY,
            f"summary {stream['summary_seconds']:.1f} s, hist {stream['hist_seconds']:.1f} s; "
            f"{3 * nbytes / stream_seconds / 2**20:.0f} MiB/s over 3 passes (2 summary, 1 hist)"
            if stream_seconds
            else "",
        ),
    ]
    if "error" in naive:
        figures.append(
            Figure(section, "naive read + np.histogram", None, REPORT_ONLY, naive["error"])
        )
    else:
        figures += [
            Figure(
                section,
                "naive: peak RSS ÷ dataset bytes",
                naive["peak_rss"] / nbytes,
                REPORT_ONLY,
                f"peak {naive['peak_rss'] / 2**20:.0f} MiB; {naive['seconds']:.1f} s",
            ),
            Figure(
                section,
                "stream hist seconds ÷ naive seconds",
                stream["hist_seconds"] / naive["seconds"],
                REPORT_ONLY,
                "same 30-bin histogram; the summary pass is extra",
            ),
        ]
    return details, figures


# --- report ---------------------------------------------------------------------------------
def _value(value: float | None) -> str:
    if value is None:
        return "—"
    if float(value).is_integer() and abs(value) < 1e6:
        return f"{int(value)}"
    return f"{value:.3f}"


def report(
    figures: Sequence[Figure],
    total: float,
    title: str = "tinspect read bench: ratios measured in this run (targets next to each figure)",
    target_width: int = 18,
    value: Callable[[float | None], str] = _value,
) -> str:
    """The plain-text table printed at the end of a bench run (bench.view uses it too)."""
    width = max(len(f.label) for f in figures) + 2
    lines = [
        title,
        "",
        f"  {'figure':<{width}}{'value':>9}  {'target':<{target_width}}{'verdict':<8} detail",
    ]
    section = None
    for f in figures:
        if f.section != section:
            section = f.section
            lines += ["", section]
        lines.append(
            f"  {f.label:<{width}}{value(f.value):>9}  {f.target.text:<{target_width}}"
            f"{f.verdict:<8} "
            f"{f.detail}"
        )
    lines += ["", f"Total bench duration: {total:.0f} s"]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.read",
        description="Read-side costs of tinspect (ls, histogram, memory), as ratios.",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--skip-memory", action="store_true", help="skip the 2 GiB part")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("path", nargs="?", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child](args.path)))
        return 0
    results: dict[str, Any] = {}
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="tinspect-bench-read-") as tmp:
        workdir = Path(tmp)
        for key, part in (("ls", bench_ls), ("histogram", bench_histogram)):
            part_dir = workdir / key
            part_dir.mkdir()
            details, found = part(part_dir)
            shutil.rmtree(part_dir)  # keep at most one part's data on disk
            results[key] = details
            figures += found
        if not args.skip_memory:
            details, found = bench_memory(workdir)
            results["memory"] = details
            figures += found
    total = time.perf_counter() - started
    out = {
        "figures": [
            {**asdict(f), "target": f.target.text, "lo": f.target.lo, "hi": f.target.hi}
            for f in figures
        ],
        **results,
        "environment": {
            "python": platform.python_version(),
            "h5py": h5py.__version__,
            "hdf5": h5py.version.hdf5_version,
            "numpy": np.__version__,
            "tinspect": tinspect.__version__,
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
        },
        "total_seconds": total,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2) + "\n")
    print()
    print(report(figures, total))
    print(f"Results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
