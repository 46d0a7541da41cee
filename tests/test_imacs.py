"""IMACS on the read side: segments, concepts and imbalance on synthetic maps with a known
answer, the sanity checks of the thesis on a recorded pair, and ``tinspect compare``."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tinspect.analysis import imacs
from tinspect.cli import app
from tinspect.store import AttributionMaps, Store

from .conftest import FIXTURES

SHORTCUT = FIXTURES / "shortcut"
runner = CliRunner()


def maps_of(predicted: np.ndarray, classes: np.ndarray, truth: np.ndarray) -> AttributionMaps:
    return AttributionMaps(
        "m", 1, predicted, predicted, classes, truth, "integrated_gradients", 8, "zeros",
        "channels_last",
    )  # fmt: skip


def test_segment_sums_are_cell_sums_on_uneven_grids(rng: np.random.Generator) -> None:
    maps = rng.normal(size=(3, 7, 5, 2))
    sums = imacs.segment_sums(maps, 3)
    rows, cols = imacs.grid_edges(7, 3), imacs.grid_edges(5, 3)
    assert rows.tolist() == [0, 2, 5, 7] and cols.tolist() == [0, 2, 3, 5]
    for i in range(3):
        for j in range(3):
            cell = maps[:, rows[i] : rows[i + 1], cols[j] : cols[j + 1]].sum(axis=(1, 2, 3))
            np.testing.assert_allclose(sums[:, i, j], cell)
    np.testing.assert_allclose(sums.sum(axis=(1, 2)), maps.sum(axis=(1, 2, 3)))


def test_segment_patches_keep_cells_apart() -> None:
    images = np.zeros((1, 8, 8, 1), np.float32)
    images[0, :2, :2] = 1.0  # exactly cell (0, 0) of a 4x4 grid
    patches = imacs.segment_patches(images, 4)
    assert patches.shape == (1, 4, 4, imacs.PATCH * imacs.PATCH)
    np.testing.assert_allclose(patches[0, 0, 0], 1.0)
    assert np.abs(patches[0, 0, 1]).max() == 0 and np.abs(patches[0, 1, 0]).max() == 0


def synthetic(rng: np.random.Generator, n: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images with three kinds of 4x4 cells (dark, bright, vertical stripes); model a credits
    the bright cells, model b the stripes; both credit nothing else."""
    x = rng.uniform(0, 0.05, size=(n, 16, 16, 1)).astype(np.float32)
    kinds = rng.integers(0, 3, size=(n, 4, 4))
    stripes = np.zeros((4, 4), np.float32)
    stripes[:, ::2] = 0.8
    map_a = np.zeros_like(x)
    map_b = np.zeros_like(x)
    for i in range(n):
        for r in range(4):
            for c in range(4):
                cell = np.s_[i, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4, 0]
                if kinds[i, r, c] == 1:
                    x[cell] = 0.9
                    map_a[cell] = 0.1
                elif kinds[i, r, c] == 2:
                    x[cell] = stripes
                    map_b[cell] = 0.1
    return x, map_a, map_b


def test_concepts_and_imbalance_have_the_known_answer(rng: np.random.Generator) -> None:
    x, map_a, map_b = synthetic(rng)
    classes = np.zeros(len(x), np.int64)
    result = imacs.compare_maps(
        x, maps_of(map_a, classes, classes), maps_of(map_b, classes, classes), k=3, sampling="all"
    )
    assert len(result.clusters) == 3
    by_rank = result.clusters
    # The bright cells (only a credits them) and the stripes (only b) are the two clusters
    # with the largest |imbalance|, with opposite signs; the dark cells are balanced.
    signs = sorted(np.sign(c.imbalance) for c in by_rank[:2])
    assert signs == [-1.0, 1.0]
    assert abs(by_rank[2].imbalance) < 1e-6
    assert abs(by_rank[0].imbalance) > 1.0
    bright = next(c for c in by_rank if c.imbalance > 0)
    for sample, row, col, va, vb in bright.segments:
        assert x[sample, 4 * row, 4 * col, 0] == pytest.approx(0.9)
        assert va == pytest.approx(1.6, abs=1e-5) and vb == pytest.approx(0, abs=1e-6)
    total = sum(c.size for c in by_rank)
    assert total == len(x) * 16
    assert all(sum(c.histogram_a) == c.size == sum(c.histogram_b) for c in by_rank)
    assert all(0.9 < c.coherence <= 1.0 for c in by_rank)


def test_a_model_against_itself_has_no_imbalance(rng: np.random.Generator) -> None:
    x, map_a, _ = synthetic(rng)
    classes = rng.integers(0, 2, size=len(x))
    maps = maps_of(map_a, classes, classes)
    result = imacs.compare_maps(x, maps, maps, cls=1, k=4)
    assert all(c.imbalance == 0 for c in result.clusters)


def test_balanced_sampling_draws_equal_groups() -> None:
    groups = [np.arange(0, 100), np.arange(100, 103), np.arange(200, 240), np.zeros(0, np.int64)]
    picked = imacs.balanced(groups, seed=0)
    assert len(picked) == imacs.MIN_PER_GROUP + 3 + imacs.MIN_PER_GROUP
    np.testing.assert_array_equal(picked, imacs.balanced(groups, seed=0))  # seeded


def test_outcomes() -> None:
    predicted = np.array([3, 3, 1, 1])
    truth = np.array([3, 1, 3, 1])
    assert imacs.outcomes(predicted, truth, 3).tolist() == ["tp", "fp", "fn", "tn"]


# --- on the recorded pair (fixtures/shortcut) ---------------------------------------------------
def test_sanity_checks_on_a_recorded_model() -> None:
    store = Store(SHORTCUT)
    trained = imacs.load_side(store, "shortcut", "last")
    initial = imacs.load_side(store, "shortcut@0", None)
    assert (trained.epoch, initial.epoch) == (8, 0)
    itself = imacs.compare(store, trained, trained, cls=3)
    assert max(abs(c.imbalance) for c in itself.clusters) == 0
    against_init = imacs.compare(store, trained, initial, cls=3)
    assert max(abs(c.imbalance) for c in against_init.clusters) > 0.5


def test_the_planted_patch_is_the_top_cluster() -> None:
    store = Store(SHORTCUT)
    result = imacs.compare(
        store,
        imacs.load_side(store, "shortcut", None),
        imacs.load_side(store, "clean", None),
        cls=3,
    )
    top = result.clusters[0]
    cells = [(row, col) for _s, row, col, _a, _b in top.segments]
    assert top.imbalance > 0  # the shortcut model relies on it, the clean one does not
    assert cells.count((0, 0)) / len(cells) > 0.3
    assert cells.count((0, 0)) == max(cells.count(c) for c in set(cells))


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_compare_json_schema() -> None:
    code, out, _err = invoke(
        "compare", str(SHORTCUT), "shortcut", "clean", "--class", "3", "--json"
    )
    assert code == 0
    data = json.loads(out)
    assert data["models"] == ["shortcut", "clean"] and data["class"] == 3
    clusters = data["clusters"]
    assert [c["cluster"] for c in clusters] == list(range(len(clusters)))
    imbalances = [abs(c["imbalance"]) for c in clusters]
    assert imbalances == sorted(imbalances, reverse=True)
    for c in clusters:
        assert set(c) >= {"cluster", "imbalance", "mean_attribution", "size", "composition"}
        assert set(c["mean_attribution"]) == {"a", "b"}
        assert len(c["segments"]) == c["size"]
        segment = c["segments"][0]
        assert set(segment) == {"sample", "row", "col", "attribution"}
        assert 0 <= segment["row"] < 4 and 0 <= segment["col"] < 4
        assert len(c["histogram"]["a"]) == len(data["histogram_edges"]) - 1


def test_compare_csv_one_row_per_segment() -> None:
    code, out, _err = invoke(
        "compare", str(SHORTCUT), "shortcut", "clean", "--grid", "2", "--k", "3", "--csv",
        "--samples", "class:3", "--sampling", "all",
    )  # fmt: skip
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == list(imacs.Comparison.CSV_COLUMNS)
    assert {r["class"] for r in rows} == {"3"}
    store = Store(SHORTCUT)
    n_class_3 = int((imacs.load_side(store, "clean", None).maps.true_class == 3).sum())
    assert len(rows) == n_class_3 * 4
    assert {r["cluster"] for r in rows} <= {"0", "1", "2"}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["conv", "dense_skip"], 1, "conv has no attributions; record them with InspectCheckpoint"),
        (["nope", "conv"], 1, "nope"),
    ],
)
def test_compare_errors_on_the_digits_fixtures(args: list[str], code: int, message: str) -> None:
    status, _out, err = invoke("compare", str(FIXTURES / "digits"), *args)
    assert status == code
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["shortcut", "clean", "--class", "12"], 1, "has 10 classes (0..9); no class 12"),
        (["shortcut", "clean", "--epoch", "5"], 1, "no attributions at epoch 5"),
        (["shortcut", "clean", "--grid", "9"], 1, "a 9×9 grid does not fit 8×8 images"),
        (["shortcut", "clean", "--sampling", "some"], 2, "--sampling must be one of"),
        (["shortcut", "clean", "--samples", "class:"], 2, "bad sample selection"),
        (["shortcut", "clean", "--csv", "--json"], 2, "exclude each other"),
        (["shortcut", "unknown"], 1, "unknown"),
        (["shortcut", "clean", "--filter", "fp"], 1, "the fp filter needs a class of interest"),
        (["shortcut", "clean", "--filter", "fn"], 2, "bad filter 'fn': unknown kind"),
        (["shortcut", "clean", "--filter", "predicted:x"], 2, "predicted needs a class number"),
        (["shortcut", "clean", "--filter", "disagree@a"], 2, "takes no @a or @b"),
        (["shortcut", "clean", "--filter", "disagree:2"], 2, "between 0 and 1"),
        (["shortcut", "clean", "--filter", "predicted:12"], 1, "no class 12"),
        (["shortcut", "clean", "--confusion"], 2, "use it with --csv"),
    ],
)
def test_compare_bad_input(args: list[str], code: int, message: str) -> None:
    status, _out, err = invoke("compare", str(SHORTCUT), *args)
    assert status == code, err
    assert message in err and "Traceback" not in err


def test_compare_refuses_non_image_models(tmp_path: Path) -> None:
    """A tabular model's maps: recorded fine, but there are no segments to cut."""
    import h5py

    from tinspect import format as fmt

    logdir = tmp_path / "logs"
    shutil.copytree(SHORTCUT, logdir)
    for model_dir in logdir.iterdir():
        for path in [*model_dir.glob("checkpoints/*.h5"), *model_dir.glob("attributions/*.h5")]:
            with h5py.File(path, "r+") as f:
                for name in ("data_samples/x", fmt.ATTRIBUTION_PREDICTED, fmt.ATTRIBUTION_TRUE):
                    if name in f:
                        flat = f[name][()].reshape(len(f[name]), -1)
                        del f[name]
                        f[name] = flat
    status, _out, err = invoke("compare", str(logdir), "shortcut", "clean")
    assert status == 1
    assert "segments need image inputs (n, H, W[, C])" in err and "(64,)" in err


# --- filters and confusion matrices -------------------------------------------------------------
@pytest.mark.parametrize(
    "text", ["fp", "fp@a", "fp@b", "predicted:3", "predicted:0@b", "disagree", "disagree:0.75"]
)
def test_filters_read_back_as_written(text: str) -> None:
    assert str(imacs.parse_filter(text)) == text
    assert imacs.parse_filter(text.upper()) == imacs.parse_filter(text)


def test_filter_masks_on_known_predictions() -> None:
    truth = np.array([3, 3, 1, 1, 2, 2])
    a = np.array([3, 1, 3, 1, 3, 2])
    b = np.array([3, 3, 1, 3, 2, 0])
    both = (a, b)
    mask = imacs.filter_mask
    fp = imacs.parse_filter
    assert mask(fp("fp"), both, truth, 3, 4).tolist() == [0, 0, 1, 1, 1, 0]
    assert mask(fp("fp@a"), both, truth, 3, 4).tolist() == [0, 0, 1, 0, 1, 0]
    assert mask(fp("fp@b"), both, truth, 3, 4).tolist() == [0, 0, 0, 1, 0, 0]
    assert mask(fp("predicted:1"), both, truth, None, 4).tolist() == [0, 1, 1, 1, 0, 0]
    assert mask(fp("predicted:1@b"), both, truth, None, 4).tolist() == [0, 0, 1, 0, 0, 0]
    # Confident: both top scores >= 0.9 (logits are turned into probabilities first).
    sure = np.eye(4)[[3, 1, 3, 1, 3, 2]] * 0.96 + 0.01
    unsure = np.full((6, 4), 0.25)
    scores_b = np.log(np.where(np.arange(6)[:, None] < 3, np.eye(4)[b] * 0.96 + 0.01, unsure))
    assert mask(fp("disagree"), both, truth, None, 4, (sure, scores_b)).tolist() == [
        0, 1, 1, 0, 0, 0,
    ]  # fmt: skip
    assert mask(fp("disagree:0.2"), both, truth, None, 4, (sure, scores_b)).tolist() == [
        0, 1, 1, 1, 1, 1,
    ]  # fmt: skip
    with pytest.raises(imacs.CompareError, match="class scores"):
        mask(fp("disagree"), both, truth, None, 4)


def test_compare_with_a_filter_keeps_only_those_samples() -> None:
    store = Store(SHORTCUT)
    a, b = imacs.load_side(store, "shortcut", None), imacs.load_side(store, "clean", None)
    truth = a.maps.true_class
    for text, keep in [
        ("fp", lambda pa, pb: ((pa == 3) | (pb == 3)) & (truth != 3)),
        ("predicted:3@b", lambda pa, pb: pb == 3),
    ]:
        result = imacs.compare(store, a, b, cls=3, sample_filter=imacs.parse_filter(text))
        assert result.filter == text
        wanted = np.flatnonzero(keep(a.maps.predicted_class, b.maps.predicted_class))
        assert set(result.samples.tolist()) <= set(wanted.tolist())
        segments = {s for c in result.clusters for s, *_rest in c.segments}
        assert segments == set(result.samples.tolist())
    # The planted patch is still the top cluster among the false positives of 3: the patch
    # makes the shortcut model say 3 where the image is another digit.
    result = imacs.compare(store, a, b, cls=3, sample_filter=imacs.parse_filter("fp"))
    cells = [(row, col) for _s, row, col, _a, _b in result.clusters[0].segments]
    assert result.clusters[0].imbalance > 0 and cells.count((0, 0)) == max(map(cells.count, cells))


def test_cluster_confusion_counts_each_sample_once() -> None:
    code, out, _err = invoke(
        "compare", str(SHORTCUT), "shortcut", "clean", "--class", "3", "--json"
    )
    assert code == 0
    data = json.loads(out)
    store = Store(SHORTCUT)
    maps = {
        key: imacs.load_side(store, name, None).maps
        for key, name in (("a", "shortcut"), ("b", "clean"))
    }
    truth = maps["a"].true_class
    for c in data["clusters"]:
        samples = sorted({s["sample"] for s in c["segments"]})
        for key in ("a", "b"):
            matrix = np.array(c["confusion"][key])
            assert matrix.shape == (10, 10)
            assert matrix.sum() == len(samples) == c["composition"]["samples"]
            expected = np.zeros((10, 10), int)
            np.add.at(expected, (truth[samples], maps[key].predicted_class[samples]), 1)
            np.testing.assert_array_equal(matrix, expected)
    code, out, _err = invoke(
        "compare", str(SHORTCUT), "shortcut", "clean", "--class", "3", "--confusion", "--csv"
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == list(imacs.Comparison.CONFUSION_COLUMNS)
    top = [r for r in rows if r["cluster"] == "0" and r["model"] == "a"]
    assert [int(r["count"]) for r in top] == np.array(
        data["clusters"][0]["confusion"]["a"]
    ).ravel().tolist()


def test_the_cli_filter_help_names_every_filter() -> None:
    from tinspect.cli import FILTER_HELP

    for kind in imacs.FILTERS:
        assert kind in FILTER_HELP
    assert str(imacs.CONFIDENT) in FILTER_HELP
