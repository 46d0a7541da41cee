"""The header index: a logdir reopens from ``stat`` calls, and is never trusted blindly."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinspect import format as fmt
from tinspect.cli import ls_rows
from tinspect.store import Store
from tinspect.store import index as header_index
from tinspect.store.cache import Cache

from .conftest import FIXTURES


def age(root: Path, seconds: float = 60.0) -> None:
    """Make every file look written ``seconds`` ago (the index trusts no fresh identity)."""
    past = time.time_ns() - int(seconds * 1e9)
    for path in [root, *root.rglob("*")]:
        os.utime(path, ns=(past, past), follow_symlinks=False)


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    shutil.copytree(FIXTURES / "digits", root)
    age(root)
    return root


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def open_store(logs: Path, cache: Path) -> Store:
    return Store(logs, cache=Cache(cache, forbidden=[logs]))


def index_file(logs: Path, cache: Path) -> Path:
    return header_index.index_path(cache, logs)


def model_dir(logs: Path, name: str) -> Path:
    return next(logs.glob(f"{name}-*"))


def listing(store: Store) -> list[list]:
    return ls_rows(store)[1]


def test_reopening_parses_nothing_and_lists_the_same(logs: Path, cache: Path) -> None:
    first = open_store(logs, cache)
    expected = listing(first)
    assert index_file(logs, cache).is_file()
    second = open_store(logs, cache)
    assert all(not m.loaded for m in second.models.values())  # built from the index
    assert listing(second) == expected
    assert [m.name for m in second.ordered_models()] == [m.name for m in first.ordered_models()]
    # What L3 does not need is read on first use, and is the same as a fresh parse.
    for model in second.models.values():
        fresh = first.models[model.id]
        assert model.layers == fresh.layers and model.metrics == fresh.metrics
        assert model.epochs == fresh.epochs and model.checkpoints == fresh.checkpoints
        assert model.info == fresh.info


def test_a_changed_added_or_removed_model_invalidates_its_entry(logs: Path, cache: Path) -> None:
    open_store(logs, cache)
    conv = model_dir(logs, "conv")
    data = json.loads((conv / fmt.MODEL_JSON).read_text())
    data["header"]["label"] = "relabelled by hand"
    (conv / fmt.MODEL_JSON).write_text(json.dumps(data))
    with open(conv / fmt.METRICS_JSONL, "a") as f:
        f.write(json.dumps({"epoch": 99, "loss": 0.125}) + "\n")
    shutil.copyfile(
        conv / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(3),
        conv / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(7),
    )
    twin = logs / "twin"
    shutil.copytree(model_dir(logs, "vae_90_10"), twin)
    twin_data = json.loads((twin / fmt.MODEL_JSON).read_text())
    twin_data["header"].update(id="0" * 32, name="twin")
    (twin / fmt.MODEL_JSON).write_text(json.dumps(twin_data))
    shutil.rmtree(model_dir(logs, "dense_skip"))
    store = open_store(logs, cache)
    assert store.model("conv").label == "relabelled by hand"
    assert store.model("conv").last_metrics()["loss"] == 0.125
    assert store.model("conv").epochs[-1] == 7
    assert store.model("twin").id == "0" * 32
    assert not store.find_models("dense_skip")
    assert listing(store) == listing(Store(logs, cache=Cache(None)))  # as without an index


def test_a_rewrite_within_the_same_timestamp_tick_is_not_missed(logs: Path, cache: Path) -> None:
    conv = model_dir(logs, "conv") / fmt.MODEL_JSON
    data = json.loads(conv.read_text())
    conv.write_text(json.dumps(data))  # just written: its identity is too fresh to keep
    open_store(logs, cache)
    st_before = conv.stat()
    data["header"]["label"] = data["header"]["label"][:-1] + "X"  # same size
    conv.write_text(json.dumps(data))
    os.utime(conv, ns=(st_before.st_atime_ns, st_before.st_mtime_ns))  # same mtime too
    assert conv.stat().st_size == st_before.st_size
    assert open_store(logs, cache).model("conv").label.endswith("X")


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xff not json",
        b"[]",
        b'{"tinspect_index": 999}\n{}',
        b'{"tinspect_index": %d, "root": "/somewhere/else"}\n' % header_index.INDEX_VERSION,
        b"",
        b"TRUNCATE",
        b"FLIP",
    ],
    ids=["garbage", "a-list", "another-version", "another-logdir", "empty", "truncated", "flip"],
)
def test_a_corrupt_or_foreign_index_is_ignored_and_rebuilt(
    logs: Path, cache: Path, content: bytes
) -> None:
    expected = listing(open_store(logs, cache))
    path = index_file(logs, cache)
    whole = path.read_bytes()
    if content == b"TRUNCATE":
        content = whole[: len(whole) // 2]
    elif content == b"FLIP":  # a digit of a parameter count: still valid JSON
        at = whole.index(b'"total_params":') + len(b'"total_params":')
        content = whole[:at] + bytes([(whole[at] - 48 + 1) % 10 + 48]) + whole[at + 1 :]
    path.write_bytes(content)
    store = open_store(logs, cache)
    assert listing(store) == expected and not list(store.problems)
    assert header_index.load(path, logs)  # rewritten, valid again


@pytest.mark.parametrize(
    "line",
    [b"no tab at all", b'5\t{"json": [1, 2]}', b'"a"\tnot json', b"\t{}", b'"x"\t[1, 2]'],
    ids=["no-tab", "key-not-a-string", "entry-not-json", "empty-key", "entry-not-an-object"],
)
def test_a_signed_index_with_a_malformed_line_is_not_trusted(
    logs: Path, cache: Path, line: bytes
) -> None:
    """Each line is ``"dir"<TAB>{entry}``: a line that is not, even correctly signed, makes
    the index (a bad line structure) or that entry (bad content) unusable, never a crash."""
    expected = listing(open_store(logs, cache))
    path = index_file(logs, cache)
    meta, _newline, body = path.read_bytes().partition(b"\n")
    body = body + line + b"\n"
    header = json.loads(meta)
    header["sha256"] = hashlib.sha256(body).hexdigest()
    path.write_bytes(json.dumps(header).encode() + b"\n" + body)
    store = open_store(logs, cache)
    assert listing(store) == expected and not list(store.problems)


def test_an_index_entry_that_lies_is_not_believed(logs: Path, cache: Path) -> None:
    """An entry whose identities do not match the files is ignored: the file is parsed."""
    open_store(logs, cache)
    path = index_file(logs, cache)
    data = header_index.read_raw(path)
    for entry in data.values():
        entry["header"]["name"] = "forged"
        entry["json"][0] += 1  # another size than the file's
    data["../outside"] = next(iter(data.values()))
    header_index.write_raw(path, logs, data)  # signed: only the identities can catch it
    store = open_store(logs, cache)
    assert "forged" not in {m.name for m in store.models.values()}
    assert len(store.models) == 6


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from(
        [
            "json",
            "metrics",
            "metrics_offset",
            "checkpoints_mtime",
            "checkpoints",
            "epochs",
            "header",
            "headline",
        ]
    ),
    value=json_values,
)
def test_any_malformed_entry_field_is_dropped_or_harmless(
    logs: Path, cache: Path, field: str, value: object
) -> None:
    """A signed entry (one tinspect wrote) with any value in a field: never an exception;
    a value of the wrong shape drops the entry, and that model is parsed as without one."""
    expected = listing(Store(logs, cache=Cache(None)))
    open_store(logs, cache)
    path = index_file(logs, cache)
    data = header_index.read_raw(path)
    for entry in data.values():
        entry[field] = value
    header_index.write_raw(path, logs, data)
    loaded = header_index.load(path, logs)
    kept = [k for k in loaded if loaded.get(k) is not None]
    store = open_store(logs, cache)
    assert len(store.models) == 6
    if not kept:
        assert listing(store) == expected


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def test_the_index_is_never_written_inside_a_logdir(logs: Path) -> None:
    before = snapshot(logs)
    inside = logs / ".cache"
    Store(logs, cache=Cache(inside, forbidden=[logs]))
    Store(logs, cache=Cache(inside, forbidden=[logs]))
    assert not inside.exists() and snapshot(logs) == before


def test_an_unwritable_cache_keeps_the_store_working(logs: Path, tmp_path: Path) -> None:
    """(Tests run as root, so a read-only directory is simulated by a file in the way.)"""
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache directory should be")
    before = snapshot(logs)
    store = Store(logs, cache=Cache(blocked / "cache"))
    assert len(store.models) == 6 and snapshot(logs) == before
    assert listing(store) == listing(Store(logs, cache=Cache(None)))


def test_a_refresh_keeps_the_index_current(logs: Path, cache: Path) -> None:
    store = open_store(logs, cache)
    shutil.rmtree(model_dir(logs, "conv"))
    store.refresh()
    entries = header_index.load(index_file(logs, cache), logs)
    assert len(entries) == 5 and not any(k.startswith("conv-") for k in entries)
