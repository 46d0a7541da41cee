"""The store's array service: damaged data becomes one Problem, snapshots, typed lookups."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from tinspect import cli
from tinspect import format as fmt
from tinspect.query import Query, run
from tinspect.store import (
    CheckpointUnreadable,
    DataError,
    Store,
    UnitNotFound,
    UoA,
    UoAError,
)
from tinspect.store.cache import Cache

DIGITS = Path(__file__).resolve().parent.parent / "fixtures" / "digits"
LAYER = "layers/hidden_1/activations"


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    target = tmp_path / "logs"
    shutil.copytree(DIGITS, target)
    return target


def checkpoint(logs: Path, model: str, epoch: int) -> Path:
    return next(logs.glob(f"{model}-*")) / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(epoch)


def misplace_storage(path: Path, dataset: str) -> None:
    """Point ``dataset``'s storage past the end of the file, as a flipped address bit does:
    the file opens, its headers parse, and the read fails ("address of object past end")."""
    with h5py.File(path, "r") as f:
        offset = f[dataset].id.get_offset()
    data = bytearray(path.read_bytes())
    packed = struct.pack("<Q", offset)
    assert data.count(packed) == 1  # the address in the dataset's layout message
    at = data.index(packed)
    data[at : at + 8] = struct.pack("<Q", offset + (1 << 40))
    path.write_bytes(data)


def test_a_dataset_that_cannot_be_read_is_one_problem_and_the_rest_is_read(logs: Path) -> None:
    damaged = checkpoint(logs, "dense_baseline", 3)
    misplace_storage(damaged, LAYER)
    store = Store(logs, cache=Cache(None))
    query = Query(("dense_baseline/hidden_1",), step="histogram", epochs="all", bins=4)
    table = run(store, query)
    assert set(table.column("epoch")) == {0, 1, 2}
    (line,) = table.meta["problems"]
    assert line == (
        "checkpoint epoch-0003.h5 of model dense_baseline: dataset "
        "layers/hidden_1/activations cannot be read (file damaged or truncated)"
    )
    (found,) = [p for p in store.problems if p.path == str(damaged)]
    assert "layers/hidden_1/activations cannot be read" in found.what
    # Marked for the session: the other datasets of that checkpoint are skipped too, and
    # asking again neither reads it nor adds a Problem.
    model = store.model("dense_baseline").id
    assert store.arrays.damaged(model, 3) == line
    with pytest.raises(CheckpointUnreadable, match=r"epoch-0003\.h5 of model dense_baseline"):
        store.arrays.checkpoint(model, 3).read("data_samples/x")
    only_last = Query(("dense_baseline/hidden_1",), step="summary", epochs="last")
    with pytest.raises(DataError, match=r"epoch-0003\.h5 of model dense_baseline"):
        run(store, only_last)
    assert len([p for p in store.problems if p.path == str(damaged)]) == 1


def test_the_cli_prints_what_it_could_read_and_exits_1_only_when_nothing(logs: Path) -> None:
    damaged = checkpoint(logs, "dense_baseline", 3)
    misplace_storage(damaged, LAYER)
    export = ["export", str(logs), "dense_baseline/hidden_1", "--stat", "histogram"]
    result = CliRunner().invoke(cli.app, [*export, "--epoch", "last"])
    assert result.exit_code == cli.ExitCode.DATA and result.exception is not None
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert result.stdout == "" and f"warning: {damaged}: dataset {LAYER}" in result.stderr
    result = CliRunner().invoke(cli.app, [*export, "--epoch", "all"])
    assert result.exit_code == 0 and result.stdout.startswith("uoa,epoch,bin_left")
    assert {line.split(",")[1] for line in result.stdout.splitlines()[1:]} == {"0", "1", "2"}
    assert result.stderr.count(str(damaged)) == 1
    for args in (["check", str(logs)], ["rank", str(logs), "--measure", "alpha"]):
        result = CliRunner().invoke(cli.app, args)
        assert result.exit_code in (0, 1) and "Traceback" not in result.output, args


def test_a_swapped_checkpoint_is_refused_by_its_own_attributes(logs: Path) -> None:
    mine, theirs = checkpoint(logs, "conv", 2), checkpoint(logs, "dense_skip", 2)
    mine.write_bytes(theirs.read_bytes())
    one, other = checkpoint(logs, "conv", 0), checkpoint(logs, "conv", 1)
    first, second = one.read_bytes(), other.read_bytes()
    one.write_bytes(second)
    other.write_bytes(first)
    store = Store(logs, cache=Cache(None))
    conv = store.model("conv").id
    with pytest.raises(CheckpointUnreadable, match="belongs to another model"):
        store.arrays.checkpoint(conv, 2).attrs()
    with pytest.raises(CheckpointUnreadable, match="holds epoch 1, not 0"):
        store.arrays.checkpoint(conv, 0).attrs()
    table = run(store, Query(("conv/conv_1",), epochs="all"))
    assert list(table.column("epoch")) == [3] and len(table.meta["problems"]) == 3


def test_a_file_closed_by_the_manager_is_no_damage(logs: Path) -> None:
    store = Store(logs, cache=Cache(None), max_open_files=1)
    model = store.model("conv").id
    zero, one = store.arrays.checkpoint(model, 0), store.arrays.checkpoint(model, 1)
    x0 = zero.read("data_samples/x")
    one.read("data_samples/x")  # closes epoch 0's file
    assert np.array_equal(zero.read("data_samples/x"), x0)
    assert store.arrays.damaged(model, 0) is None and not list(store.problems)


def test_refresh_swaps_snapshots_and_reports_removed_checkpoints(logs: Path) -> None:
    store = Store(logs, cache=Cache(None))
    before, models, tree = store.model("conv"), store.models, store.tree
    checkpoint(logs, "conv", 3).unlink()
    shutil.rmtree(next(logs.glob("vae_90_10-*")))
    changes = store.refresh()
    assert changes.removed_checkpoints == {before.id: [3]}
    assert len(changes.removed_models) == 1 and bool(changes)
    assert before.epochs == [0, 1, 2, 3] and store.model("conv").epochs == [0, 1, 2]
    assert store.models is not models and len(models) == 6 and len(store.models) == 5
    assert store.tree is not tree
    # Unchanged models keep their objects: a reader can compare identities.
    assert store.model("dense_skip") is models[store.model("dense_skip").id]
    assert not store.refresh()


def test_refresh_reports_checkpoints_rewritten_in_place_once_read(logs: Path) -> None:
    store = Store(logs, cache=Cache(None))
    conv = store.model("conv").id
    x = store.arrays.checkpoint(conv, 3).read("data_samples/x")
    path = checkpoint(logs, "conv", 3)
    data = path.read_bytes()
    checkpoint(logs, "conv", 2).write_bytes(b"never read this session")
    path.write_bytes(data[: len(data) // 3])  # truncated in place: same name, same epochs
    changes = store.refresh()
    # Only the checkpoint that was read counts (no stat of every file at every refresh).
    assert changes.changed_checkpoints == {conv: [3]} and conv in changes.touched_models
    assert not changes.new_checkpoints and not changes.removed_checkpoints
    with pytest.raises(CheckpointUnreadable):
        store.arrays.checkpoint(conv, 3).read("data_samples/x")
    assert not store.refresh()  # reported once
    path.write_bytes(data)  # replaced by a whole file again: damage forgotten, data back
    assert store.refresh().changed_checkpoints == {conv: [3]}
    assert np.array_equal(store.arrays.checkpoint(conv, 3).read("data_samples/x"), x)


def test_lookups_raise_uoa_errors_never_a_bare_key_error(logs: Path) -> None:
    store = Store(logs, cache=Cache(None))
    gone = store.model("conv").id
    shutil.rmtree(next(logs.glob("conv-*")))
    store.refresh()
    for lookup in (
        lambda: store.path(UoA(gone)),
        lambda: store.model_by_id(gone),
        lambda: store.tree.experiment_of(gone),
        lambda: store.arrays.checkpoint(gone, 1).attrs(),
        lambda: store.model("dense_skip").layer("nope"),
    ):
        with pytest.raises(UoAError) as caught:
            lookup()
        assert isinstance(caught.value, UnitNotFound) and "'" not in str(caught.value)[:1]


def test_array_facts_share_one_cache_entry_across_readers(logs: Path) -> None:
    """The runner's summary of a whole array and interestingness' computed summary are one
    cache entry: the key is built by the service, not by each caller."""
    from tinspect.analysis.interest import _Reader

    cache = Cache(None)
    store = Store(logs, cache=cache)
    model = store.model("conv")
    data = store.arrays.checkpoint(model.id, 2)
    ref = data.ref(fmt.layer_path("conv_1", fmt.ACTIVATIONS))
    first = data.summary(ref)  # no summary_row: computed
    misses = cache.misses
    again = _Reader(store)._computed(model.id, 2, ref.dataset)
    assert again is not None and np.array_equal(again.stats, first.stats)
    assert cache.misses == misses and cache.hits >= 1
