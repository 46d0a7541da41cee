"""The store on the fixtures and on every kind of broken log: problems, not exceptions."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinspect import format as fmt
from tinspect.store import DataError, Severity, Store, UoA, UoAError
from tinspect.store.cache import Cache
from tinspect.store.uoa import parse_path

from .conftest import FIXTURES

DIGITS = FIXTURES / "digits"


@pytest.fixture(autouse=True)
def no_disk_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINSPECT_CACHE_DIR", "off")


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """A writable copy of the fixture logs."""
    target = tmp_path / "logs"
    shutil.copytree(DIGITS, target)
    return target


def model_dir(root: Path, name: str) -> Path:
    (found,) = [p for p in root.iterdir() if p.name.startswith(name + "-")]
    return found


def messages(store: Store) -> list[str]:
    return [str(p) for p in store.problems]


def test_fixtures_open_cleanly_as_two_experiments() -> None:
    store = Store(DIGITS)
    assert messages(store) == []
    assert [e.name for e in store.tree.experiments] == ["dense_baseline", "vae_90_10"]
    names = [m.name for m in store.ordered_models()]
    assert names == [
        "dense_baseline",
        "dense_skip",
        "conv",
        "vae_90_10",
        "vae_25_75",
        "vae_25_75_fixed",
    ]
    tree = store.tree
    skip = store.model("dense_skip")
    assert tree.depth(skip.id) == 1 and tree.depth(store.model("conv").id) == 2
    base = store.model("dense_baseline")
    assert (
        tree.graph.edges[base.id, skip.id]["param_delta"] == skip.total_params - base.total_params
    )
    assert skip.epochs == [0, 1, 2, 3] and len(skip.metrics) == 3


def test_architecture_graph_has_the_skip_connection() -> None:
    skip = Store(DIGITS).model("dense_skip")
    graph = skip.graph
    assert set(graph.predecessors("skip_add")) == {"hidden_1", "hidden_2"}
    assert skip.layer("hidden_1").units == 64
    assert skip.layer("hidden_1").operations[-1] == {"op": "relu"}


def test_successors_are_the_graphs_edges_without_networkx() -> None:
    """The checks' networkx-free view of the layer graph gives the graph's edges, in its
    order, for every fixture model (skip connections, two outputs, a VAE)."""
    for store in (Store(DIGITS), Store(FIXTURES / "shortcut")):
        for model in store.models.values():
            graph = model.graph
            assert model.successors == {n: list(graph.successors(n)) for n in graph}
    assert Store(DIGITS).model("dense_skip").successors["hidden_1"] == ["hidden_2", "skip_add"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("dense_skip", UoA("ID")),
        ("dense_skip/hidden_1", UoA("ID", "hidden_1")),
        ("dense_skip/hidden_1/kernel", UoA("ID", "hidden_1", "kernel")),
        ("dense_skip/hidden_1/#7", UoA("ID", "hidden_1", None, 7)),
        ("Digits dense + skip connection/output", UoA("ID", "output")),
        ("c38f7cbb/output", UoA("ID", "output")),
        ("c38f/output", UoA("ID", "output")),
    ],
)
def test_unit_paths_resolve_by_name_label_or_id(path: str, expected: UoA) -> None:
    store = Store(DIGITS)
    model_id = store.model("dense_skip").id
    resolved = store.resolve(path)
    assert resolved == UoA(model_id, expected.layer, expected.variable, expected.neuron)
    if "/" in path and not path.startswith(("c38", "Digits")):
        assert store.path(resolved) == path


@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("nope", "no model named 'nope'; models: conv, dense_baseline"),
        ("dense_skip/nope", "has no layer 'nope'; layers: pixels, hidden_1"),
        ("dense_skip/hidden_1/gamma", "no variable 'gamma'; variables: kernel, bias"),
        ("dense_skip/hidden_1/#64", "has 64 units; #64 is out of range"),
        ("dense_skip/hidden_1/#x", "a neuron is '#' and a number"),
        ("a/b/c/d", "is not a unit path"),
        ("", "an empty unit path"),
    ],
)
def test_bad_unit_paths_say_what_exists(path: str, match: str) -> None:
    with pytest.raises(UoAError, match=match):
        Store(DIGITS).resolve(path)


def test_ambiguous_names_list_the_candidates(logs: Path) -> None:
    clone = logs / "again" / model_dir(logs, "conv").name.replace("conv", "conv-b")
    shutil.copytree(model_dir(logs, "conv"), clone)
    info = json.loads((clone / fmt.MODEL_JSON).read_text())
    info["header"]["id"] = "feedfacefeedface"
    (clone / fmt.MODEL_JSON).write_text(json.dumps(info))
    store = Store(logs)
    with pytest.raises(UoAError, match=r"'conv' names 2 models: .*use the directory name or id"):
        store.resolve("conv")
    assert store.resolve("feedface").model == "feedfacefeedface"
    assert store.display_name(store.models["feedfacefeedface"]) == clone.name


def test_summary_table_and_datasets_are_read_lazily() -> None:
    store = Store(DIGITS)
    model = store.model("vae_25_75")
    assert store.files._open == {}  # nothing opened by discovery
    table = store.summary_table(model.id, 4)
    row = table.row("z_mean/activations")
    assert row is not None and row["min"] >= 0
    activations = store.dataset(model.id, 4, "layers/z_mean/activations")
    assert activations.shape == (48, 4)
    with pytest.raises(DataError, match="has no checkpoint of epoch 9; epochs: 0, 1, 2, 3, 4"):
        store.summary_table(model.id, 9)
    with pytest.raises(DataError, match="has no 'layers/nope'"):
        store.dataset(model.id, 4, "layers/nope")


# --- broken logs: each a Problem, the rest keeps working ------------------------------------
def test_corrupt_and_truncated_checkpoints(logs: Path) -> None:
    conv = model_dir(logs, "conv") / fmt.CHECKPOINTS_DIR
    (conv / fmt.checkpoint_name(3)).write_bytes(b"not an hdf5 file at all")
    full = (conv / fmt.checkpoint_name(2)).read_bytes()
    (conv / fmt.checkpoint_name(2)).write_bytes(full[: len(full) // 2])
    store = Store(logs)
    model = store.model("conv")
    for epoch in (2, 3):
        with pytest.raises(DataError, match="file damaged or truncated"):
            store.summary_table(model.id, epoch)
    assert store.summary_table(model.id, 1).row("conv_1/activations") is not None
    found = messages(store)
    assert len(found) == 2 and all("file damaged or truncated" in m for m in found)
    assert all(m.startswith("warning: ") for m in found)


@pytest.mark.parametrize(
    ("content", "what"),
    [
        ("{broken", "model.json is not valid JSON"),
        ("[1, 2]", "does not hold a JSON object"),
        ('{"format_version": "1.0"}', "model.json has no header"),
        ('{"format_version": "1.0", "header": {"name": "x"}}', "header has no id"),
        ('{"format_version": "1.0", "header": {"id": "abc"}}', "header has no name"),
        ('{"header": {"id": "a", "name": "x"}}', "has no format_version"),
        (
            '{"format_version": "2.0", "header": {"id": "a", "name": "x"}}',
            "format version 2.0 is not readable",
        ),
        (b"\xff\xfe\x00", "cannot be read"),
    ],
)
def test_unusable_model_json_skips_only_that_model(
    logs: Path, content: str | bytes, what: str
) -> None:
    path = model_dir(logs, "dense_skip") / fmt.MODEL_JSON
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    store = Store(logs)
    assert len(store.models) == 5
    (problem,) = store.problems
    assert what in problem.what and problem.severity is Severity.ERROR
    # conv's parent is now missing: shown as such, not an error
    conv = store.model("conv")
    assert store.tree.graph.nodes[conv.parents[0]]["missing"] is True
    assert "conv" in [store.models[i].name for i in store.tree.experiment_of(conv.id).models]


def test_malformed_parts_of_model_json_are_dropped_with_warnings(logs: Path) -> None:
    path = model_dir(logs, "dense_skip") / fmt.MODEL_JSON
    info = json.loads(path.read_text())
    info["header"]["parents"] = [3, info["header"]["parents"][0]]
    info["architecture"]["layers"].append({"no": "name"})
    path.write_text(json.dumps(info))
    store = Store(logs)
    model = store.model("dense_skip")
    assert len(model.parents) == 1 and len(model.layers) == 7
    assert sorted(p.what for p in store.problems) == [
        "some architecture layers are malformed; skipped",
        "some header parents are not id strings; ignored",
    ]


def test_parent_cycle_is_broken_and_reported(logs: Path) -> None:
    base_path = model_dir(logs, "dense_baseline") / fmt.MODEL_JSON
    info = json.loads(base_path.read_text())
    conv_id = json.loads((model_dir(logs, "conv") / fmt.MODEL_JSON).read_text())["header"]["id"]
    info["header"]["parents"] = [conv_id]
    base_path.write_text(json.dumps(info))
    store = Store(logs)
    (problem,) = store.problems
    assert "parent cycle" in problem.what and "is ignored" in problem.what
    assert len(store.tree.experiments) == 2
    assert store.tree.graph.is_acyclic()


def test_duplicate_ids_keep_one_model(logs: Path) -> None:
    shutil.copytree(model_dir(logs, "conv"), logs / "zz-copy-of-conv")
    store = Store(logs)
    assert len(store.models) == 6
    (problem,) = store.problems
    assert "duplicate model id" in problem.what and "zz-copy-of-conv" in problem.path


def test_checkpoint_of_another_format_version(logs: Path) -> None:
    path = model_dir(logs, "conv") / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(1)
    with h5py.File(path, "r+") as f:
        f.attrs[fmt.ATTR_FORMAT_VERSION] = "7.1"
    store = Store(logs)
    with pytest.raises(DataError, match=r"format version '7\.1' is not readable"):
        store.summary_table(store.model("conv").id, 1)
    assert "format version" in messages(store)[0]


def test_temporary_checkpoint_is_ignored_with_an_info(logs: Path) -> None:
    directory = model_dir(logs, "conv") / fmt.CHECKPOINTS_DIR
    (directory / fmt.temporary_name(fmt.checkpoint_name(4), "123-abc")).write_bytes(
        b"\x89HDF partial"
    )
    store = Store(logs)
    assert store.model("conv").epochs == [0, 1, 2, 3]
    (problem,) = store.problems
    assert problem.severity is Severity.INFO and "being written" in problem.what


def test_metrics_torn_last_line_and_broken_lines(logs: Path) -> None:
    path = model_dir(logs, "conv") / fmt.METRICS_JSONL
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n{oops\n" + '{"loss": 1}\n' + lines[1] + "\n" + lines[2][:20])
    store = Store(logs)
    model = store.model("conv")
    assert [m["epoch"] for m in model.metrics] == [1, 2]
    assert sorted(p.what for p in store.problems) == [
        "line 2 is not JSON; skipped",
        "line 3 has no integer epoch; skipped",
    ]
    # the writer finishes the torn line: a refresh picks it up, nothing is read twice
    with open(path, "a") as f:
        f.write(lines[2][20:] + "\n")
    changes = store.refresh()
    assert changes.new_metric_rows == {model.id: 1}
    assert [m["epoch"] for m in store.model("conv").metrics] == [1, 2, 3]
    assert [m["epoch"] for m in model.metrics] == [1, 2]  # a snapshot: what a reader holds stays


def test_external_links_and_virtual_datasets_are_not_followed(logs: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.h5"
    with h5py.File(outside, "w") as f:
        f["secret"] = np.arange(5.0)
    path = model_dir(logs, "conv") / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(1)
    with h5py.File(path, "r+") as f:
        del f["layers/conv_1/activations"]
        f["layers/conv_1/activations"] = h5py.ExternalLink(str(outside), "secret")
        layout = h5py.VirtualLayout(shape=(5,), dtype="f8")
        layout[:] = h5py.VirtualSource(str(outside), "secret", shape=(5,))
        del f["layers/conv_2/activations"]
        f["layers"]["conv_2"].create_virtual_dataset("activations", layout)
        f["layers/pool/alias"] = h5py.SoftLink("/layers/pool/activations")
    store = Store(logs)
    conv = store.model("conv").id
    with pytest.raises(DataError, match="ExternalLink, which is not followed"):
        store.dataset(conv, 1, "layers/conv_1/activations")
    with pytest.raises(DataError, match="virtual dataset, which is not followed"):
        store.dataset(conv, 1, "layers/conv_2/activations")
    with pytest.raises(DataError, match="SoftLink"):
        store.dataset(conv, 1, "layers/pool/alias")
    assert store.dataset(conv, 1, "layers/pool/activations").shape[0] == 48


def test_symlinks_out_of_the_logdir_are_not_read(logs: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(model_dir(logs, "conv"), elsewhere / "conv-x")
    os.symlink(elsewhere / "conv-x", logs / "linked-dir")  # not descended into
    store = Store(logs)
    assert len(store.models) == 6 and messages(store) == []
    escaped = logs / "escape"
    escaped.mkdir()
    os.symlink(model_dir(logs, "dense_skip") / fmt.MODEL_JSON, escaped / fmt.MODEL_JSON)
    os.symlink(elsewhere / "conv-x" / fmt.MODEL_JSON, logs / "escape2.json")
    inner = logs / "escape3"
    inner.mkdir()
    os.symlink(elsewhere / "conv-x" / fmt.MODEL_JSON, inner / fmt.MODEL_JSON)
    store = Store(logs)
    assert any("leads outside the logdir" in m for m in messages(store))


def test_a_checkpoint_swapped_for_a_link_out_of_the_logdir_is_refused(
    logs: Path, tmp_path: Path
) -> None:
    """The store remembers which checkpoint paths stay inside (resolving costs); a file
    replaced by a symlink to an outside copy with the same size and mtime is caught anyway."""
    store = Store(logs)
    conv = store.model("conv").id
    assert store.attrs(conv, 1)[fmt.ATTR_EPOCH] == 1
    path = store.checkpoint_path(conv, 1)
    outside = tmp_path / "outside.h5"
    shutil.copy2(path, outside)  # same bytes, same mtime: the same FileIdentity
    store.files.close(path)
    path.unlink()
    os.symlink(outside, path)
    with pytest.raises(DataError, match="leads outside the logdir"):
        store.attrs(conv, 1)
    assert store.attrs(conv, 0)[fmt.ATTR_EPOCH] == 0  # the others stay readable


def test_the_store_never_writes_to_the_logdir(logs: Path) -> None:
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in logs.rglob("*")}
    os.environ["TINSPECT_CACHE_DIR"] = str(logs / "cache-inside")
    try:
        store = Store(logs)
        from tinspect.query import Query, run

        run(store, Query(("conv/conv_1",), step="histogram", epochs="all", classes=(1, 2)))
    finally:
        os.environ["TINSPECT_CACHE_DIR"] = "off"
    after = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in logs.rglob("*")}
    assert after == before  # the cache refused a directory inside the logdir


def test_refresh_sees_new_models_checkpoints_and_removals(logs: Path, tmp_path: Path) -> None:
    hidden = tmp_path / "later"
    shutil.move(model_dir(logs, "conv"), hidden)
    ckpt = model_dir(logs, "dense_skip") / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(3)
    stash = tmp_path / "ckpt.h5"
    shutil.move(ckpt, stash)
    store = Store(logs)
    assert len(store.models) == 5 and store.model("dense_skip").epochs == [0, 1, 2]
    assert not store.refresh()
    shutil.move(hidden, logs / hidden.name)
    shutil.move(stash, ckpt)
    changes = store.refresh()
    conv_id = store.model("conv").id
    assert changes.new_models == [conv_id]
    assert changes.new_checkpoints[store.model("dense_skip").id] == [3]
    shutil.rmtree(model_dir(logs, "vae_25_75_fixed"))
    changes = store.refresh()
    assert len(changes.removed_models) == 1 and len(store.models) == 5


def test_a_missing_logdir_is_a_problem(tmp_path: Path) -> None:
    store = Store(tmp_path / "nope")
    assert store.models == {} and "is not a directory" in messages(store)[0]


def test_disk_cache_survives_reopen_and_a_changed_file_is_recomputed(
    logs: Path, tmp_path: Path
) -> None:
    from tinspect.query import Query, run

    cache_dir = tmp_path / "cache"
    query = Query(("conv/conv_1",), step="histogram", bins=8, classes=(0, 1))
    first = run(Store(logs, cache=Cache(cache_dir)), query)
    store = Store(logs, cache=Cache(cache_dir))
    again = run(store, query)
    assert again.data == first.data and store.cache.hits >= 1 and store.cache.misses == 0
    assert list(cache_dir.rglob("*.npz"))
    path = model_dir(logs, "conv") / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(3)
    with h5py.File(path, "r+") as f:
        f["layers/conv_1/activations"][...] = 0.0
    store = Store(logs, cache=Cache(cache_dir))
    changed = run(store, query)
    assert store.cache.misses >= 1
    counts = list(changed.column("count"))
    assert sum(1 for c in counts if c) == 1 and changed.data != first.data  # all zeros now


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=40))
def test_parse_path_never_raises_anything_but_uoa_errors(text: str) -> None:
    try:
        parsed = parse_path(text)
    except UoAError:
        return
    assert parsed.model and "/" not in parsed.model


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_in_metrics_never_raise(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    root = tmp_path_factory.mktemp("m")
    target = root / "m-1"
    (target / fmt.CHECKPOINTS_DIR).mkdir(parents=True)
    (target / fmt.MODEL_JSON).write_text(
        json.dumps({"format_version": "1.0", "header": {"id": "abcd1234", "name": "m"}})
    )
    (target / fmt.METRICS_JSONL).write_bytes(data)
    store = Store(root)
    assert len(store.models) == 1
    assert all(isinstance(m["epoch"], int) for m in store.model("m").metrics)


@settings(max_examples=40, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
        max_leaves=20,
    )
)
def test_any_json_as_model_json_never_raises(
    tmp_path_factory: pytest.TempPathFactory, value: object
) -> None:
    root = tmp_path_factory.mktemp("j")
    (root / "m").mkdir()
    payload = value if not isinstance(value, dict) else {"format_version": "1.0", **value}
    (root / "m" / fmt.MODEL_JSON).write_text(json.dumps(payload))
    store = Store(root)
    assert len(store.models) + sum(1 for p in store.problems if p.severity is Severity.ERROR) == 1


# --- format 1.1: activations stored once ------------------------------------------------------
def store_flatten_once(path: Path, shape: list[int] | None = None, of: str = "pool") -> None:
    """Rewrite a conv fixture checkpoint as a 1.1 recorder writes it: Flatten's activations
    and class means are pool's, so its group keeps only ``activations_of`` and the shape."""
    with h5py.File(path, "r+") as f:
        flat = f["layers/flatten"]
        if fmt.ACTIVATIONS in flat:  # the committed fixtures are 1.0 files: convert
            real_shape = list(flat["activations"].shape)
            del flat["activations"], flat["mean_class_activations"]
        else:  # fixtures regenerated by a 1.1 recorder already store Flatten once
            real_shape = json.loads(flat.attrs[fmt.ATTR_ACTIVATIONS_SHAPE])
        flat.attrs[fmt.ATTR_ACTIVATIONS_OF] = of
        flat.attrs[fmt.ATTR_ACTIVATIONS_SHAPE] = json.dumps(shape or real_shape)
        f.attrs[fmt.ATTR_FORMAT_VERSION] = "1.1"


def test_activations_stored_once_read_exactly_as_stored_twice(logs: Path) -> None:
    from tinspect.query import Query, run

    conv = model_dir(logs, "conv")
    before = Store(DIGITS)
    model = before.model("conv")
    queries = [
        Query(("conv/flatten",), step=step, epochs="all")
        for step in ("summary", "histogram", "quantiles", "unit_stats", "class_means", "raw")
    ] + [
        Query(("conv/flatten/#37",), step="histogram", epochs="all"),
        Query(("conv/flatten",), data="mean_class_activations", step="raw"),
        Query(("conv/flatten", "conv/pool"), step="histogram"),
    ]
    expected = [list(run(before, q).rows()) for q in queries]
    for path in (conv / fmt.CHECKPOINTS_DIR).glob("*.h5"):
        store_flatten_once(path)
    after = Store(logs)
    assert after.has(model.id, 3, "layers/flatten/activations")
    view = after.dataset(model.id, 3, "layers/flatten/activations")
    assert view.shape == (48, 256) and view.dtype == np.float16
    original = before.dataset(model.id, 3, "layers/flatten/activations")
    for selection in [(), np.s_[5:9], np.array([1, 4, 40]), 7, np.s_[:, 100], (Ellipsis, 3)]:
        np.testing.assert_array_equal(view[selection], original[selection])
    for query, rows in zip(queries, expected, strict=True):
        assert list(run(after, query).rows()) == rows, query
    assert not list(after.problems)


@pytest.mark.parametrize(
    ("shape", "of", "match"),
    [
        ([48, 255], "pool", "does not fit"),
        ([40, 256], "pool", "does not fit"),
        ([48, 256], "nope", "which is missing"),
        ([48, 256], "flatten", "loops"),
    ],
)
def test_a_broken_stored_once_layer_is_one_line(
    logs: Path, shape: list[int], of: str, match: str
) -> None:
    path = model_dir(logs, "conv") / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(3)
    store_flatten_once(path, shape, of)
    store = Store(logs)
    model = store.model("conv")
    with pytest.raises(DataError, match=match):
        store.dataset(model.id, 3, "layers/flatten/activations")
    # The rest of the checkpoint, and the other checkpoints, still read.
    assert store.dataset(model.id, 3, "layers/pool/activations").shape == (48, 4, 4, 16)
    assert store.dataset(model.id, 2, "layers/flatten/activations").shape == (48, 256)


def test_summary_tables_are_cached_until_the_file_changes(logs: Path) -> None:
    store = Store(logs)
    model = store.model("conv")
    first = store.summary_table(model.id, 3)
    assert store.summary_table(model.id, 3) is first  # read once
    path = store.checkpoint_path(model.id, 3)
    store.files.close(path)
    with h5py.File(path, "r+") as f:
        f["summary/stats"][0, 2] = 123.0  # the first row's mean
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    changed = store.summary_table(model.id, 3)
    assert changed is not first and changed.stats[0, 2] == 123.0
