"""The read side, unchanged, on logs the torch recorder wrote: the CLI and the viewer.

One logdir with the three models of the issue (an MLP, a CNN with a residual add, a model
with a custom module and functional activations), recorded once for the module.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

import tinspect  # noqa: E402
from tinspect import cli  # noqa: E402
from tinspect import format as fmt  # noqa: E402
from tinspect.store import Store, UoA  # noqa: E402
from tinspect.torch import Recorder  # noqa: E402
from tinspect.tui.app import TinspectApp  # noqa: E402
from tinspect.tui.selection import PairSelection, Selection  # noqa: E402
from tinspect.tui.tools import TOOLS, applicable  # noqa: E402
from tinspect.tui.widgets.graph import LayerGraph  # noqa: E402

from . import torch_models as tm  # noqa: E402
from .test_tui import settle  # noqa: E402

N = 128


@pytest.fixture(autouse=True)
def no_disk_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINSPECT_CACHE_DIR", "off")


@pytest.fixture(scope="module")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("torchlogs")
    x, y = tm.digits()
    parent = tinspect.make_header(name="mlp", batch_size=64)
    runs = [
        (parent, tm.mlp(), x, "tabular"),
        (tinspect.branch(parent, name="cnn"), tm.SmallCNN(), x.reshape(-1, 1, 8, 8), "image"),
        (tinspect.branch(parent, name="custom"), tm.CustomNet(), x, "tabular"),
    ]
    for header, model, inputs, kind in runs:
        torch.manual_seed(0)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        with Recorder(
            root, header, model, (inputs[:N], y[:N]), optimizer=optimizer, input_kind=kind
        ) as rec:
            rec.checkpoint(0)
            for epoch in range(1, 4):
                loss = tm.train_epoch(model, optimizer, inputs[N:900], y[N:900])
                rec.checkpoint(epoch, metrics={"loss": loss, "accuracy": 0.5 + epoch / 10})
    return root


def invoke(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.app, args, env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_ls_shows_the_tree_of_torch_runs(logdir: Path) -> None:
    code, out, err = invoke(["ls", str(logdir), "--csv"])
    assert code == 0 and err == "", err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["name"] for r in rows] == ["mlp", "cnn", "custom"]
    assert {r["name"]: r["epochs"] for r in rows} == {"mlp": "3", "cnn": "3", "custom": "3"}


def test_show_draws_the_graph_with_the_skip(logdir: Path) -> None:
    code, out, err = invoke(["show", str(logdir), "cnn"])
    assert code == 0 and err == "", err
    assert "block.conv2" in out and "skip from act" in out
    code, out, err = invoke(["show", str(logdir), "cnn/stem"])
    assert code == 0 and "weight" in out and "bias" in out, (out, err)


def test_export_activations_weights_metrics_and_channels(logdir: Path) -> None:
    code, out, err = invoke(["export", str(logdir), "cnn/block.conv1", "--stat", "unit_stats"])
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sorted({int(r["unit"]) for r in rows}) == list(range(8))  # channels, not width
    code, out, err = invoke(
        ["export", str(logdir), "custom/scale/gain", "--data", "weights", "--stat", "raw"]
    )
    assert code == 0 and len(list(csv.DictReader(io.StringIO(out)))) == 32, err
    code, out, err = invoke(["export", str(logdir), "mlp", "--data", "metrics"])
    assert code == 0 and "accuracy" in out, err
    code, out, err = invoke(
        [
            "export",
            str(logdir),
            "cnn/stem",
            "--stat",
            "histogram",
            "--epoch",
            "all",
            "--format",
            "json",
        ]
    )
    assert code == 0, err
    table = json.loads(out)
    epoch = table["columns"].index("epoch")
    assert {row[epoch] for row in table["rows"]} == {0, 1, 2, 3}
    code, out, err = invoke(
        ["export", str(logdir), "cnn", "--data", "predictions", "--stat", "confusion"]
    )
    assert code == 0, err
    # A neuron's weights: torch's (out, in) weight is read with its unit axis last, so the
    # top-k of unit 2 are row 2 of fc.weight, indexed (input, unit) as for a Keras kernel.
    code, out, err = invoke(
        ["export", str(logdir), "cnn/fc/#2", "--data", "weights", "--stat", "topk", "-k", "3"]
    )
    assert code == 0, err
    rows = [r for r in csv.DictReader(io.StringIO(out)) if r["uoa"] == "cnn/fc/weight"]
    with Store(logdir) as store:
        model = store.model("cnn")
        with h5py.File(model.checkpoints[3], "r") as f:
            row = f["layers/fc/weights/weight"][2]
    best = np.argsort(-np.abs(row))[:3]
    assert [r["index"] for r in rows] == [f"{i}:2" for i in best]
    assert [float(r["value"]) for r in rows] == pytest.approx(row[best].tolist())


def test_check_and_rank_run_on_torch_logs(logdir: Path) -> None:
    code, out, err = invoke(["check", str(logdir), "--json"])
    assert code == 0, err
    findings = json.loads(out)
    assert isinstance(findings, list)
    # Channels-first images fed to a channels-first model are not flagged as NCHW by mistake.
    assert not [f for f in findings if f["id"] == "image-shape-order"]
    code, out, err = invoke(["rank", str(logdir), "--measure", "skew", "--csv", "--top", "500"])
    assert code == 0, err
    units = {row["uoa"] for row in csv.DictReader(io.StringIO(out))}
    assert "cnn/stem" in units and "custom/scale/gain" in units


def test_the_store_reads_torch_logs_without_problems(logdir: Path) -> None:
    with Store(logdir) as store:
        for model in store.models.values():
            assert (model.directory / fmt.METRICS_JSONL).exists()
            assert model.epochs == [0, 1, 2, 3]
            for epoch in model.epochs:
                store.summary_table(model.id, epoch)
        assert list(store.problems) == []


def make_app(logdir: Path) -> TinspectApp:
    return TinspectApp(Store(logdir), refresh_seconds=0)


async def test_viewer_walks_into_a_torch_conv_layer_by_keys(logdir: Path) -> None:
    app = make_app(logdir)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        main = app.main
        assert main.place.level == 3
        for _ in range(5):
            if app.store.models[main.selection.uoa.model].name == "cnn":
                break
            await pilot.press("down")
        assert app.store.models[main.selection.uoa.model].name == "cnn"
        await pilot.press("enter")
        await settle(pilot)
        assert main.place.level == 2 and isinstance(app.focused, LayerGraph)
        await pilot.press("down")  # x → stem
        await pilot.press("enter")
        await settle(pilot)
        assert main.place.level == 1 and main.place.layer == "stem"
        units = main.query_one("#units")
        assert units.option_count == 2 + 8  # weight, bias and the 8 channels
        await pilot.press("down", "down", "down")
        assert main.selection.kind == "neuron" and 0 <= main.selection.uoa.neuron < 8
        await pilot.press("escape")
        assert main.place.level == 2


async def test_every_applicable_tool_works_on_torch_units(logdir: Path) -> None:
    app = make_app(logdir)
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main
        store = app.store
        cnn, custom = store.model("cnn").id, store.model("custom").id
        selections = [
            Selection(experiment="mlp"),
            Selection(uoa=UoA(cnn)),
            Selection(uoa=UoA(cnn, "stem")),
            Selection(uoa=UoA(cnn, "stem", "weight")),
            Selection(uoa=UoA(cnn, "block.conv2", None, 3)),
            Selection(uoa=UoA(custom, "scale")),
            PairSelection(uoa=UoA(custom), other="cnn"),  # the group view's diff of two models
        ]
        applied = set()
        for selection in selections:
            for each in applicable(selection, store):
                card = main.apply_tool(each, selection)
                await settle(pilot)
                assert card is not None
                if each.view not in ("note", "branch"):
                    assert card.table is not None, (each.id, selection, card.state)
                    assert len(card.table) > 0, (each.id, selection)
                applied.add(each.id)
        assert applied == {t.id for t in TOOLS if not t.needs_attributions}, applied


def test_heatmap_of_channels_equals_class_means(logdir: Path) -> None:
    with Store(logdir) as store:
        model = store.model("cnn")
        from tinspect.query import Query, run

        table = run(
            store,
            Query(("cnn/act",), data="activations", step="class_means", epochs="last"),
        )
        rows = list(table.rows())
        units = {r[table.columns.index("unit")] for r in rows}
        assert units == set(range(8))
        means = np.asarray(
            store.dataset(model.id, 3, fmt.layer_path("act", fmt.MEAN_CLASS_ACTIVATIONS))[()]
        )
        assert means.shape == (10, 8, 8, 8)  # channels last in the store's view
