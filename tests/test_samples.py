"""Sample selections: the grammar (property-tested) and every sample-based step under a
selection, each checked against h5py + numpy on the committed fixtures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from tinspect.cli import app
from tinspect.query import Query, QueryError, run
from tinspect.query.samples import KINDS, SampleSelection, parse, resolve, sample_digest
from tinspect.store import DataError, Store, UoAError

from .conftest import FIXTURES

DIGITS = FIXTURES / "digits"


@pytest.fixture(autouse=True)
def no_disk_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINSPECT_CACHE_DIR", "off")


@pytest.fixture(scope="module")
def store() -> Store:
    import os

    os.environ["TINSPECT_CACHE_DIR"] = "off"
    return Store(DIGITS)


def h5(store: Store, name: str, epoch: int, dataset: str) -> np.ndarray:
    with h5py.File(store.model(name).checkpoints[epoch], "r", locking=False) as f:
        return f[dataset][()]


def truth(store: Store, name: str, epoch: int) -> np.ndarray:
    return h5(store, name, epoch, "data_samples/y_class").astype(np.int64)


def predicted(store: Store, name: str, epoch: int) -> np.ndarray:
    return np.argmax(h5(store, name, epoch, "data_samples/y_prediction"), axis=1)


# --- the grammar --------------------------------------------------------------------------------
classes = st.lists(st.integers(0, 50), min_size=1, max_size=5)
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
model_names = st.builds(
    str.__add__, st.sampled_from(_LETTERS), st.text(_LETTERS + "0123456789_.-", max_size=12)
)
maybe_model = st.none() | model_names


@st.composite
def selections(draw: st.DrawFn) -> SampleSelection:
    kind = draw(st.sampled_from(sorted(KINDS)))
    if kind == "all":
        return SampleSelection("all")
    if kind in ("correct", "misclassified"):
        return SampleSelection(kind, model=draw(maybe_model))
    if kind == "disagree":
        return SampleSelection(kind, models=(draw(model_names), draw(model_names)))
    if kind == "confusion":
        pair = (draw(st.integers(0, 50)), draw(st.integers(0, 50)))
        return SampleSelection(kind, pair, model=draw(maybe_model))
    numbers = tuple(sorted(set(draw(classes))))
    model = draw(maybe_model) if kind == "predicted" else None
    return SampleSelection(kind, numbers, model=model)


@given(selections())
def test_every_selection_round_trips_through_its_text(selection: SampleSelection) -> None:
    assert parse(str(selection)) == selection
    spaced = str(selection).replace(",", " , ").replace(":", ":  ")
    assert parse(f"  {spaced} ") == selection


@given(st.text(max_size=40))
def test_any_text_parses_or_is_a_one_line_query_error(text: str) -> None:
    try:
        selection = parse(text)
    except QueryError as error:
        assert "\n" not in str(error) and "use one of" in str(error)
    else:
        assert selection.kind in KINDS


@pytest.mark.parametrize(
    "text",
    ["", "bogus", "class", "class:", "class:a", "class:1,,2", "confusion:3", "confusion:1,2,3",
     "ids:-1", "all:3", "correct:2", "disagree:a", "disagree:a,b,c", "ids:1@m", "disagree:a,b@c",
     "misclassified@"],
)  # fmt: skip
def test_malformed_selections_are_refused(text: str) -> None:
    with pytest.raises(QueryError, match="bad sample selection"):
        parse(text)


def test_parse_normalizes_lists_and_keeps_model_case() -> None:
    assert parse("IDS:9,0,5,0") == SampleSelection("ids", (0, 5, 9))
    assert parse("confusion:8,3@Dense_Skip") == SampleSelection(
        "confusion", (8, 3), (), "Dense_Skip"
    )
    assert parse("disagree:conv,dense_skip").other_models() == ("conv", "dense_skip")


# --- resolving, against numpy on the stored arrays ------------------------------------------------
def test_every_kind_resolves_to_the_numpy_rows(store: Store) -> None:
    model = store.model("dense_skip")
    y, p = truth(store, "dense_skip", 3), predicted(store, "dense_skip", 3)
    pc = predicted(store, "conv", 3)
    expected = {
        "all": np.arange(len(y)),
        "class:3,8": np.flatnonzero(np.isin(y, [3, 8])),
        "predicted:1,7": np.flatnonzero(np.isin(p, [1, 7])),
        "correct": np.flatnonzero(p == y),
        "misclassified": np.flatnonzero(p != y),
        "misclassified@conv": np.flatnonzero(pc != truth(store, "conv", 3)),
        "confusion:8,1": np.flatnonzero((y == 8) & (p == 1)),
        "disagree:dense_skip,conv": np.flatnonzero(p != pc),
        "ids:0,5,9": np.array([0, 5, 9]),
    }
    for text, rows in expected.items():
        got = resolve(store, parse(text), model, 3)
        assert got.tolist() == rows.tolist(), text
    assert 0 < len(expected["misclassified"]) < len(y)  # the fixture has both kinds
    # An earlier epoch of the same model is read at that epoch.
    p1 = predicted(store, "dense_skip", 1)
    got = resolve(store, parse("correct"), model, 1)
    assert got.tolist() == np.flatnonzero(p1 == truth(store, "dense_skip", 1)).tolist()


def test_unknown_models_and_missing_data_are_errors(store: Store) -> None:
    model = store.model("dense_skip")
    with pytest.raises(UoAError, match="no model named 'nope'"):
        resolve(store, parse("correct@nope"), model, 3)
    with pytest.raises(DataError, match="48 samples"):
        resolve(store, parse("ids:48"), model, 3)
    with pytest.raises(DataError, match="10 classes"):
        resolve(store, parse("confusion:3,12"), model, 3)
    with pytest.raises(DataError, match="not class scores"):
        resolve(store, parse("misclassified@vae_25_75"), model, 3)


def other_samples(tmp_path: Path) -> Path:
    """The fixtures plus a copy of dense_skip (new id and name) that recorded other samples."""
    logdir = tmp_path / "logs"
    shutil.copytree(DIGITS, logdir)
    copy = logdir / "shuffled-00000000"
    shutil.copytree(DIGITS / "dense_skip-c38f7cbb", copy)
    info = json.loads((copy / "model.json").read_text())
    info["header"].update(id="00000000" * 4, name="shuffled", parents=[])
    (copy / "model.json").write_text(json.dumps(info))
    for path in sorted((copy / "checkpoints").glob("*.h5")):
        with h5py.File(path, "r+") as f:
            f["data_samples/x"][...] = f["data_samples/x"][()][::-1]
            f.attrs["model_id"] = "00000000" * 4  # its own checkpoints, not dense_skip's
    return logdir


def test_a_selection_across_models_needs_the_same_samples(tmp_path: Path) -> None:
    store = Store(other_samples(tmp_path))
    dense, conv, shuffled = (store.model(n) for n in ("dense_skip", "conv", "shuffled"))
    assert sample_digest(store, dense) == sample_digest(store, conv)  # (48, 64) vs (48, 8, 8, 1)
    assert sample_digest(store, dense) != sample_digest(store, shuffled)
    for text in ("misclassified@shuffled", "disagree:dense_skip,shuffled"):
        with pytest.raises(DataError, match="recorded different samples"):
            resolve(store, parse(text), dense, 3)
    # The model's own predictions need no check.
    assert len(resolve(store, parse("correct"), shuffled, 3)) > 0
    result = CliRunner().invoke(
        app,
        ["export", str(tmp_path / "logs"), "dense_skip/hidden_1", "--samples", "correct@shuffled"],
    )
    assert result.exit_code == 1 and "recorded different samples" in result.output


# --- every sample-based step honours the selection --------------------------------------------------
SELECTION = "misclassified"


@pytest.fixture(scope="module")
def picked(store: Store) -> np.ndarray:
    rows = np.flatnonzero(predicted(store, "dense_skip", 3) != truth(store, "dense_skip", 3))
    assert 2 < len(rows) < 48
    return rows


def acts(store: Store, rows: np.ndarray, layer: str = "hidden_1") -> np.ndarray:
    return h5(store, "dense_skip", 3, f"layers/{layer}/activations")[rows].astype(np.float64)


def test_summary_histogram_quantiles_under_a_selection(store: Store, picked: np.ndarray) -> None:
    values = acts(store, picked)
    (row,) = run(store, Query(("dense_skip/hidden_1",), samples=SELECTION)).rows()
    assert row[2] == values.size and row[4] == pytest.approx(values.mean(), rel=1e-9)
    hist = run(store, Query(("dense_skip/hidden_1",), samples=SELECTION, step="histogram", bins=7))
    lo, hi = hist.meta["range"]
    assert (lo, hi) == (values.min(), values.max())
    assert list(hist.column("count")) == np.histogram(values, 7, (lo, hi))[0].tolist()
    q = run(
        store,
        Query(("dense_skip/hidden_1",), samples=SELECTION, step="quantiles", quantiles=(0.3, 0.9)),
    )
    assert list(q.column("value")) == pytest.approx(np.quantile(values, [0.3, 0.9]).tolist())
    assert hist.meta["samples"] == SELECTION


def test_unit_stats_density_and_class_means_under_a_selection(
    store: Store, picked: np.ndarray
) -> None:
    values = acts(store, picked, "hidden_2")
    u = run(store, Query(("dense_skip/hidden_2",), samples=SELECTION, step="unit_stats"))
    assert list(u.column("mean")) == pytest.approx(values.mean(axis=0).tolist(), abs=1e-12)
    d = run(store, Query(("dense_skip/hidden_2/#4",), samples=SELECTION, step="density", bins=3))
    assert sum(d.column("count")) == len(picked)
    means = run(store, Query(("dense_skip/hidden_2",), samples=SELECTION, step="class_means"))
    y = truth(store, "dense_skip", 3)[picked]
    for c in np.unique(y):
        got = [
            m
            for cls, m in zip(means.column("class"), means.column("mean"), strict=True)
            if cls == c
        ]
        assert got == pytest.approx(values[y == c].mean(axis=0).tolist(), rel=1e-6)
    absent = [m for cls, m in zip(means.column("class"), means.column("mean"), strict=True)
              if cls not in set(y.tolist())]  # fmt: skip
    assert all(np.isnan(absent))


def test_confusion_of_a_cell_selection_is_that_cell(store: Store) -> None:
    y, p = truth(store, "dense_skip", 3), predicted(store, "dense_skip", 3)
    t, q = next((int(a), int(b)) for a, b in zip(y, p, strict=True) if a != b)
    table = run(
        store,
        Query(("dense_skip",), data="predictions", step="confusion", samples=f"confusion:{t},{q}"),
    )
    nonzero = [(r[2], r[3], r[4]) for r in table.rows() if r[4]]
    assert nonzero == [(t, q, int(((y == t) & (p == q)).sum()))]


def test_raw_rows_keep_the_sample_column(store: Store, picked: np.ndarray) -> None:
    raw = run(store, Query(("dense_skip/hidden_1/#3",), step="raw", samples=SELECTION))
    assert list(raw.column("sample")) == picked.tolist()
    assert list(raw.column("value")) == pytest.approx(acts(store, picked)[:, 3].tolist())
    preds = run(store, Query(("dense_skip",), data="predictions", step="raw", samples="ids:4,7"))
    assert sorted(set(preds.column("sample"))) == [4, 7]
    stored = h5(store, "dense_skip", 3, "data_samples/y_prediction")[[4, 7]]
    assert list(preds.column("value")) == pytest.approx(stored.reshape(-1).tolist())
    xs = run(store, Query(("conv",), data="samples", step="raw", samples="class:5"))
    assert set(xs.column("class")) == {5}
    assert sorted(set(xs.column("sample"))) == np.flatnonzero(truth(store, "conv", 3) == 5).tolist()


def test_probabilities_and_the_class_selection_combine(store: Store) -> None:
    y = truth(store, "dense_skip", 3)
    rows = np.intersect1d(np.flatnonzero(np.isin(y, [3, 8])), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    q = Query(
        ("dense_skip",), data="predictions", step="histogram", bins=5,
        classes=(3, 8), samples="ids:0,1,2,3,4,5,6,7,8,9,10",
    )  # fmt: skip
    table = run(store, q)
    assert sum(table.column("count")) == len(rows) * 10


def test_selections_over_epochs_follow_each_checkpoint(store: Store) -> None:
    table = run(store, Query(("dense_skip/output",), samples="correct", epochs="all"))
    for epoch, count in zip(table.column("epoch"), table.column("count"), strict=True):
        right = predicted(store, "dense_skip", epoch) == truth(store, "dense_skip", epoch)
        assert count == right.sum() * 10


def test_query_refuses_a_selection_on_data_without_samples() -> None:
    with pytest.raises(QueryError, match="sample selection applies to"):
        Query(("dense_skip/hidden_1/kernel",), data="weights", samples="ids:1")
    with pytest.raises(QueryError, match="bad sample selection"):
        Query(("dense_skip/hidden_1",), samples="confusion:3")


@pytest.mark.parametrize(
    ("samples", "code", "message"),
    [
        ("confusion:3", 2, "a confusion cell is two classes"),
        ("nonsense:1", 2, "unknown kind"),
        ("misclassified@nope", 1, "no model named 'nope'"),
        ("confusion:4,4@conv", 1, "selects no sample of dense_skip"),
        ("ids:4000", 1, "does not exist"),
    ],
)
def test_cli_selection_errors_are_one_line_with_exit_codes(
    samples: str, code: int, message: str
) -> None:
    if samples == "confusion:4,4@conv":  # a cell that is empty in the fixture
        store = Store(DIGITS)
        y, p = truth(store, "conv", 3), predicted(store, "conv", 3)
        empty = next(
            (t, q) for t in range(10) for q in range(10) if not ((y == t) & (p == q)).any()
        )
        samples = f"confusion:{empty[0]},{empty[1]}@conv"
    result = CliRunner().invoke(
        app, ["export", str(DIGITS), "dense_skip/hidden_1", "--samples", samples]
    )
    assert result.exit_code == code
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_cli_export_with_samples_equals_the_query(store: Store, picked: np.ndarray) -> None:
    result = CliRunner().invoke(
        app,
        ["export", str(DIGITS), "dense_skip/hidden_1/#0", "--stat", "raw", "--samples", SELECTION],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "uoa,epoch,sample,class,index,value"
    assert [int(line.split(",")[2]) for line in lines[1:]] == picked.tolist()


def test_the_cli_help_spells_the_grammar() -> None:
    from tinspect import cli
    from tinspect.query.samples import GRAMMAR

    help_text = cli.SAMPLES_HELP
    assert help_text == f"Sample selection: {GRAMMAR}."
