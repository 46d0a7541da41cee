"""Damaged checkpoints never escape as a traceback: a seeded fuzz over copies of the fixtures.

Disks and interrupted copies damage files in a few typical ways; each variant here applies one
of them to one checkpoint of a copy of the committed fixtures, then runs every CLI command on
it (in-process, through typer's runner: hundreds of variants in about a minute) and, for a
seeded subset, the viewer through Pilot. Asserted for every command of every variant:

* no traceback, and an exit code of 0, 1 or 2 (``cli.ExitCode``);
* where the damage is detectable (truncated, emptied, a directory, a swapped file), every
  command that reads that checkpoint prints a problem line naming the damaged file;
* the logs are byte-identical afterwards (readers never write).

Flipped bytes are applied inside a dataset's storage (found with h5py's ``id.get_offset()``)
and elsewhere in the file (headers, B-trees, heaps). The fixtures store arrays uncompressed and
without checksums, so a flip inside raw storage changes values that no reader can tell from
real ones; for those variants the test asserts robustness only (no traceback, sane exit code,
untouched logs), and counts how many were detected.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import pytest
from typer.testing import CliRunner

from tinspect import cli
from tinspect import format as fmt
from tinspect.store import Store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "digits"
SEED = 17
VARIANTS = int(os.environ.get("FUZZ_VARIANTS", 210))  # 30 of each kind
#: Every this-many-th variant also opens the viewer (Pilot; it costs ~10 commands): 7 runs,
#: one of each kind (30 and 7 are coprime).
VIEWER_EVERY = 30
KINDS = ("truncate", "flip_data", "flip_header", "empty", "directory", "swap_epochs", "swap_models")
#: Kinds every reader must notice and report (HDF5 checks a file's end, the store the
#: checkpoint's own model id and epoch); flipped bytes may go unnoticed (see the docstring).
DETECTED = {"truncate", "empty", "directory", "swap_epochs", "swap_models"}
STATS = (
    ("activations", "histogram", ()),
    ("activations", "raw", ("--limit", "20")),
    ("activations", "quantiles", ("--quantiles", "0.1,0.9")),
    ("activations", "unit_stats", ()),
    ("activations", "class_means", ()),
    ("activations", "density", ("--bins", "8")),
    ("weights", "topk", ("-k", "3")),
    ("weights", "summary", ()),
    ("mean_class_activations", "raw", ()),
    ("samples", "histogram", ("--classes", "1,2")),
    ("predictions", "confusion", ()),
    ("runtime", "raw", ()),
)
MEASURES = ("skew", "alpha", "init_divergence", "zeros")


@dataclass(frozen=True)
class Variant:
    index: int
    kind: str
    model: str  # model directory name
    epoch: int


def _models() -> dict[str, dict]:
    out = {}
    for directory in sorted(FIXTURES.iterdir()):
        info = json.loads((directory / fmt.MODEL_JSON).read_text())
        epochs = sorted(
            e
            for e in (
                fmt.parse_checkpoint_name(p.name) for p in (directory / "checkpoints").iterdir()
            )
            if e is not None
        )
        layers = [
            layer["name"]
            for layer in info["architecture"]["layers"]
            if layer.get("class_name") != "InputLayer"
        ]
        weighted = [
            layer["name"] for layer in info["architecture"]["layers"] if layer.get("variables")
        ]
        out[directory.name] = {
            "classifier": info["dataset"].get("output_kind") in (None, "classification"),
            "name": info["header"]["name"],
            "epochs": epochs,
            "layers": layers,
            "weighted": weighted,
        }
    return out


MODELS = _models()


def variants() -> list[Variant]:
    rng = random.Random(SEED)
    out = []
    for i in range(VARIANTS):
        model = rng.choice(sorted(MODELS))
        out.append(Variant(i, KINDS[i % len(KINDS)], model, rng.choice(MODELS[model]["epochs"])))
    return out


@functools.cache
def _dataset_extents(path: Path) -> list[tuple[str, int, int]]:
    """(name, offset, bytes) of every contiguous dataset's storage in the file."""
    found: list[tuple[str, int, int]] = []

    def visit(name: str, node: object) -> None:
        if isinstance(node, h5py.Dataset):
            offset = node.id.get_offset()
            size = node.id.get_storage_size()
            if offset is not None and size:
                found.append((name, offset, size))

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return found


def damage(variant: Variant, logdir: Path, rng: random.Random) -> list[Path]:
    """Apply the variant's damage to the checkpoint; returns the files it changed."""
    checkpoints = logdir / variant.model / fmt.CHECKPOINTS_DIR
    target = checkpoints / fmt.checkpoint_name(variant.epoch)
    data = bytearray(target.read_bytes())
    if variant.kind == "truncate":
        target.write_bytes(data[: rng.randrange(1, len(data))])
    elif variant.kind == "empty":
        target.write_bytes(b"")
    elif variant.kind == "directory":
        target.unlink()
        target.mkdir()
        (target / "stray").write_text("a directory where a checkpoint should be")
    elif variant.kind in ("flip_data", "flip_header"):
        # The layout of the pristine copy (the target itself stays unopened by h5py here).
        extents = _dataset_extents(FIXTURES / variant.model / fmt.CHECKPOINTS_DIR / target.name)
        inside = [i for _name, start, size in extents for i in range(start, start + size)]
        if variant.kind == "flip_data":
            _name, start, size = rng.choice(extents)
            offsets = [start + rng.randrange(size) for _ in range(rng.randint(1, 8))]
        else:
            taken = set(inside)
            offsets = []
            while len(offsets) < rng.randint(1, 16):
                offset = rng.randrange(len(data))
                if offset not in taken:
                    offsets.append(offset)
        for offset in offsets:
            data[offset] ^= 1 << rng.randrange(8)
        target.write_bytes(data)
    elif variant.kind == "swap_epochs":
        others = [e for e in MODELS[variant.model]["epochs"] if e != variant.epoch]
        other = checkpoints / fmt.checkpoint_name(rng.choice(others))
        mine, theirs = target.read_bytes(), other.read_bytes()
        target.write_bytes(theirs)
        other.write_bytes(mine)
        return [target, other]
    elif variant.kind == "swap_models":
        model = rng.choice([m for m in sorted(MODELS) if m != variant.model])
        source = FIXTURES / model / fmt.CHECKPOINTS_DIR
        target.write_bytes(rng.choice(sorted(source.glob("*.h5"))).read_bytes())
    else:  # pragma: no cover
        raise AssertionError(variant.kind)
    return [target]


def restore(logdir: Path, variant: Variant) -> None:
    pristine = FIXTURES / variant.model / fmt.CHECKPOINTS_DIR
    for path in sorted((logdir / variant.model / fmt.CHECKPOINTS_DIR).iterdir()):
        if path.is_dir():
            shutil.rmtree(path)
        path.write_bytes((pristine / path.name).read_bytes())


def digest(logdir: Path) -> dict[str, str]:
    """Every file's bytes (and every directory) under the logdir, by relative path."""
    out = {}
    for path in sorted(logdir.rglob("*")):
        key = str(path.relative_to(logdir))
        out[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def commands(variant: Variant, logdir: Path) -> Iterator[tuple[list[str], bool]]:
    """(arguments, whether it reads the damaged checkpoint): every command, its options
    rotating with the variant so that the whole set is covered many times."""
    info = MODELS[variant.model]
    name, i = info["name"], variant.index
    layer = info["layers"][i % len(info["layers"])]
    weighted = info["weighted"][i % len(info["weighted"])]
    root = str(logdir)
    if i % 4 == 0:  # these two read no checkpoint: every fourth variant is enough
        yield ["ls", root, *(("--csv",) if i % 8 else ())], False
        yield ["show", root, name], False
    yield ["show", root, f"{name}/{layer}"], True  # stored summaries of every epoch
    yield ["export", root, f"{name}/{layer}", "--epoch", "all"], True  # summary
    for data, stat, extra in (STATS[i % len(STATS)], STATS[(i * 5 + 3) % len(STATS)]):
        unit = name if data in ("samples", "predictions", "runtime") else f"{name}/{layer}"
        if data == "weights":
            unit = f"{name}/{weighted}"
        if stat == "confusion" and not info["classifier"]:
            stat = "histogram"  # an auto-encoder's predictions are no class scores
        args = ["export", root, unit, "--data", data, "--stat", stat, "--epoch", "all", *extra]
        yield args, "--limit" not in extra  # raw rows up to a limit stop reading early
    yield ["check", root, *(("--json",) if i % 2 else ())], True
    measure = MEASURES[i % len(MEASURES)]
    table = ("--csv",) if i % 2 == 0 else ()
    yield ["rank", root, "--measure", measure, "--epoch", str(variant.epoch), *table], True


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One logdir per model (a command on one model's logs reads only what it must)."""
    root = tmp_path_factory.mktemp("damaged")
    for model in MODELS:
        shutil.copytree(FIXTURES / model, root / model / model)
    return root


def test_damaged_checkpoints_never_escape(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TINSPECT_CACHE_DIR", str(tmp_path / "cache"))  # as users run it
    monkeypatch.setenv("COLUMNS", "120")
    runner = CliRunner()
    rng = random.Random(SEED)
    detected: Counter[str] = Counter()
    ran: Counter[str] = Counter()
    viewer_variants = []
    for variant in variants():
        logdir = workspace / variant.model
        changed = damage(variant, logdir, rng)
        before = digest(logdir)
        noticed = False
        for args, reads in commands(variant, logdir):
            result = runner.invoke(cli.app, args)
            where = f"variant {variant} {' '.join(args[:1] + args[2:])}"
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                raise AssertionError(f"{where}: raised {result.exception!r}") from result.exception
            assert result.exit_code in (0, 1, 2), f"{where}: exit code {result.exit_code}"
            assert "Traceback" not in result.output, f"{where}:\n{result.output}"
            named = str(changed[0]) in result.stderr
            noticed = noticed or named
            if variant.kind in DETECTED and reads:
                assert named, f"{where}: no problem names {changed[0]}:\n{result.stderr}"
            if variant.kind in DETECTED and named:
                line = next(x for x in result.stderr.splitlines() if str(changed[0]) in x)
                assert line.startswith(("warning: ", "error: ")), line
        ran[variant.kind] += 1
        detected[variant.kind] += noticed
        if variant.index % VIEWER_EVERY == 0:
            viewer_variants.append(variant)
            _run_viewer(logdir, variant, changed[0])
        assert digest(logdir) == before, f"variant {variant}: a reader changed the logs"
        restore(logdir, variant)
    assert sum(ran.values()) == VARIANTS and set(ran) == set(KINDS)
    if VIEWER_EVERY * len(KINDS) <= VARIANTS:  # (fewer with FUZZ_VARIANTS, to debug)
        assert {v.kind for v in viewer_variants} == set(KINDS)
    for kind in DETECTED:
        assert detected[kind] == ran[kind]
    print(f"damaged variants by kind: {dict(ran)}; noticed: {dict(detected)}")


def _run_viewer(logdir: Path, variant: Variant, damaged: Path) -> None:
    """The viewer on the damaged logs, driven by keys: descend to the model, open a
    histogram of a layer (it reads every epoch), the toolbox and the ranking; it must keep
    running, and for a detectable damage the store must have said which file."""
    import asyncio

    from tinspect.tui.app import TinspectApp

    async def drive() -> Store:
        store = Store(logdir)
        app = TinspectApp(store, refresh_seconds=0)
        async with app.run_test(size=(100, 30)) as pilot:
            for keys in (("enter",), ("down",), ("t", "h"), ("enter",), ("i",), ("escape",)):
                await pilot.press(*keys)
                await pilot.pause()
                await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.is_running, f"variant {variant}: the viewer stopped"
        # HDF5 shares one open file per path within a process: a handle left open would
        # serve the next variant's commands this variant's file.
        store.close()
        return store

    old = os.environ.get("TINSPECT_CACHE_DIR")
    store = asyncio.run(drive())
    assert os.environ.get("TINSPECT_CACHE_DIR") == old
    if variant.kind in DETECTED:
        assert any(p.path == str(damaged) for p in store.problems), (variant, list(store.problems))
