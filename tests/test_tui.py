"""The viewer driven by keys with Textual's Pilot: levels, tools, classes, groups, export."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tinspect import cli
from tinspect import format as fmt
from tinspect.store import Store, UoA
from tinspect.tui.app import TinspectApp
from tinspect.tui.screens.modals import AskPath, ClassSelector, Search, TextModal, Toolbox
from tinspect.tui.selection import Selection
from tinspect.tui.tools import TOOLS, applicable
from tinspect.tui.widgets.card import WidgetCard
from tinspect.tui.widgets.levels import ExperimentTree, LayerDetail, LayerGraph, layer_lanes

from .conftest import FIXTURES, ROOT


@pytest.fixture(autouse=True)
def setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINSPECT_CACHE_DIR", "off")
    monkeypatch.chdir(ROOT)


def make_app(path: str | Path = "fixtures/digits") -> TinspectApp:
    return TinspectApp(Store(path), refresh_seconds=0)


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_walk_the_levels_by_keys_and_back() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.level == 3 and isinstance(app.focused, ExperimentTree)
        assert app.selection.kind == "model"  # the cursor starts on the first model
        assert app.store.models[app.selection.uoa.model].name == "dense_baseline"
        await pilot.press("enter")
        assert app.level == 2 and isinstance(app.focused, LayerGraph)
        await pilot.press("j", "enter")  # hjkl work too: hidden_1
        await settle(pilot)
        assert app.level == 1 and app.layer == "hidden_1"
        units = app.query_one("#units")
        assert units.option_count > 2  # kernel, bias and neurons
        await pilot.press("down", "down", "down")
        assert app.selection.kind == "neuron"
        crumbs = str(app.query_one("#crumbs").render())
        assert "dense_baseline" in crumbs and "hidden_1" in crumbs and "L1" in crumbs
        await pilot.press("backspace")
        assert app.level == 2 and app.selection.uoa.layer == "hidden_1"
        await pilot.press("escape")
        assert app.level == 3
        assert app.store.models[app.selection.uoa.model].name == "dense_baseline"


async def test_breadcrumb_actions_jump_levels() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        conv = app.store.model("conv").id
        app.jump_to(Selection(uoa=UoA(conv, "conv_2", None, 3)))
        await settle(pilot)
        assert app.level == 1 and app.selection.uoa == UoA(conv, "conv_2", None, 3)
        app.action_crumb(2)
        await pilot.pause()
        assert app.level == 2
        app.action_crumb(3)
        await pilot.pause()
        assert app.level == 3


async def test_every_tool_produces_its_widget() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        store = app.store
        skip, vae = store.model("dense_skip").id, store.model("vae_25_75").id
        selections = [
            Selection(experiment="dense_baseline"),
            Selection(uoa=UoA(skip)),
            Selection(uoa=UoA(skip, "hidden_1")),
            Selection(uoa=UoA(skip, "hidden_1", "kernel")),
            Selection(uoa=UoA(skip, "hidden_1", None, 3)),
            Selection(uoa=UoA(vae)),
        ]
        applied = set()
        for selection in selections:
            for tool in applicable(selection, store):
                card = app.apply_tool(tool, selection)
                await settle(pilot)
                assert card is not None
                if tool.view not in ("note", "branch"):
                    # A failed query leaves no table (the card shows the error instead).
                    assert card.table is not None, (tool.id, selection)
                    assert len(card.table) > 0, (tool.id, selection)
                applied.add(tool.id)
        assert applied == {tool.id for tool in TOOLS}
        # the VAE's samples are reconstructions: predictions of the same size as inputs
        sample_card = app.apply_tool(
            next(t for t in TOOLS if t.id == "samples"), Selection(uoa=UoA(vae))
        )
        await settle(pilot)
        assert sample_card is not None and len(sample_card.state.extra["predictions"]) > 0


async def test_toolbox_lists_only_applicable_tools_and_applies_by_letter() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("enter", "down")  # dense_baseline/hidden_1 at L2
        await pilot.press("t")
        assert isinstance(app.screen, Toolbox)
        ids = [t.id for t in app.screen.tools]
        assert "histogram" in ids and "metrics" not in ids and "topk" not in ids
        await pilot.press("h")
        await settle(pilot)
        (card,) = app.query(WidgetCard)
        assert card.tool.id == "histogram" and card.table is not None
        assert card.query_one(".card-header").display


async def test_histogram_steps_epochs_on_a_shared_range() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        model = app.store.model("conv").id
        card = app.apply_tool(
            next(t for t in TOOLS if t.id == "histogram"), Selection(uoa=UoA(model, "conv_1"))
        )
        await settle(pilot)
        assert card.state.pages == 4 and card.state.page == 3 and "epoch 3" in card.state.title
        card.focus()
        await pilot.press("left_square_bracket")
        assert card.state.page == 2 and "epoch 2" in card.state.title
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert card.state.page == 0


async def test_class_selection_reloads_class_dependent_widgets() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        skip = app.store.model("dense_skip").id
        hist = app.apply_tool(
            next(t for t in TOOLS if t.id == "histogram"), Selection(uoa=UoA(skip, "hidden_1"))
        )
        topk = app.apply_tool(
            next(t for t in TOOLS if t.id == "topk"), Selection(uoa=UoA(skip, "hidden_1", "kernel"))
        )
        await settle(pilot)
        total_before = sum(hist.table.column("count"))
        await pilot.press("c")
        assert isinstance(app.screen, ClassSelector)
        await pilot.press("space", "down", "space", "enter")  # classes 0 and 1
        await settle(pilot)
        assert app.class_selection == (0, 1)
        assert hist.current_query.classes == (0, 1) and topk.current_query.classes is None
        assert 0 < sum(hist.table.column("count")) < total_before
        assert "◆" in str(hist.query_one(".card-header").render())
        assert "classes 0,1" in str(app.query_one("#crumbs").render())


async def test_group_merge_and_group_screen() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        hist = next(t for t in TOOLS if t.id == "histogram")
        a = app.apply_tool(hist, Selection(uoa=UoA(app.store.model("vae_25_75").id, "z_mean")))
        b = app.apply_tool(
            hist, Selection(uoa=UoA(app.store.model("vae_25_75_fixed").id, "z_mean"))
        )
        await settle(pilot)
        for card in (a, b):
            card.focus()
            await pilot.press("g")
        assert a.grouped and b.grouped
        await pilot.press("G")
        assert type(app.screen).__name__ == "GroupScreen"
        await pilot.press("left_square_bracket")
        await pilot.press("escape")
        await pilot.press("M")
        await settle(pilot)
        merged = list(app.query(WidgetCard))[-1]
        assert merged.current_query.uoas == ("vae_25_75/z_mean", "vae_25_75_fixed/z_mean")
        assert set(merged.table.column("uoa")) == {"vae_25_75/z_mean", "vae_25_75_fixed/z_mean"}
        assert not a.grouped and not b.grouped


async def test_export_writes_the_same_csv_as_the_cli(tmp_path: Path) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        skip = app.store.model("dense_skip").id
        card = app.apply_tool(
            next(t for t in TOOLS if t.id == "histogram"), Selection(uoa=UoA(skip, "hidden_2"))
        )
        await settle(pilot)
        card.focus()
        await pilot.press("x")
        assert isinstance(app.screen, AskPath)
        target = tmp_path / "hist.csv"
        field = app.screen.query_one("Input")
        field.value = str(target)
        await pilot.press("enter")
        await pilot.pause()
    written = target.read_text()
    result = CliRunner().invoke(
        cli.app,
        [
            "export",
            "fixtures/digits",
            "dense_skip/hidden_2",
            "--stat",
            "histogram",
            "--bins",
            "30",
            "--epoch",
            "all",
        ],
    )
    assert result.exit_code == 0
    assert written == result.stdout
    assert next(iter(csv.reader(io.StringIO(written)))) == [
        "uoa",
        "epoch",
        "bin_left",
        "bin_right",
        "count",
    ]


async def test_search_jumps_to_a_layer() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("slash")
        assert isinstance(app.screen, Search)
        await pilot.press(
            *[{"_": "underscore", " ": "space"}.get(c, c) for c in "z_mean dense relu"]
        )
        await pilot.press("enter")
        await settle(pilot)
        assert app.level == 2 and app.selection.uoa.layer == "z_mean"
        assert app.store.models[app.selection.uoa.model].name == "vae_25_75"


async def test_help_lists_every_binding() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, TextModal)
        text = str(app.screen.body)
        for binding in app.BINDINGS + WidgetCard.BINDINGS:
            assert binding.description in text
        await pilot.press("escape")
        assert not isinstance(app.screen, TextModal)


async def test_logs_with_problems_open_and_show_them(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(FIXTURES / "digits", logs)
    (next(logs.glob("dense_skip-*")) / fmt.MODEL_JSON).write_text("{")
    conv = next(logs.glob("conv-*"))
    (conv / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(3)).write_bytes(b"garbage")
    app = make_app(logs)
    async with app.run_test(size=(100, 30)) as pilot:
        status = str(app.query_one("#status").render())
        assert "5 models" in status and "1 problems" in status
        card = app.apply_tool(
            next(t for t in TOOLS if t.id == "histogram"),
            Selection(uoa=UoA(app.store.model("conv").id, "conv_1")),
        )
        await settle(pilot)
        # The last checkpoint is corrupt: the card shows the other epochs, and says which
        # checkpoint it skipped (meta problems, one line each).
        assert card.table is not None and card.table.meta["epochs"] == [0, 1, 2, 3]
        assert set(card.table.column("epoch")) == {0, 1, 2}
        (line,) = card.table.meta["problems"]
        assert "epoch-0003.h5 of model conv" in line and "file damaged or truncated" in line
        app.update_status()
        await pilot.press("P")
        assert "model.json is not valid JSON" in str(app.screen.body)


async def test_live_refresh_shows_new_models(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copytree(next((FIXTURES / "digits").glob("dense_baseline-*")), logs / "a")
    app = make_app(logs)
    async with app.run_test(size=(100, 30)) as pilot:
        assert len(app.store.models) == 1
        shutil.copytree(next((FIXTURES / "digits").glob("conv-*")), logs / "b")
        app.live_refresh()
        await settle(pilot)
        assert len(app.store.models) == 2
        assert "conv" in app.badges[(app.store.model("conv").id, None)]  # guides recomputed
        tree = app.query_one(ExperimentTree)
        labels = [str(node.label) for node in tree.root.children]
        assert len(labels) == 2  # conv's parent is missing: its own experiment


def test_layer_lanes_draw_the_skip_connection() -> None:
    model = Store(FIXTURES / "digits").model("dense_skip")
    rows = {r.name: r.lanes for r in layer_lanes(model)}
    assert rows["pixels"] == "●"
    assert rows["hidden_1"] == "●─┐"  # hidden_1 feeds hidden_2 and, around it, skip_add
    assert rows["hidden_2"] == "● │"
    assert rows["skip_add"] == "●─┘"
    assert rows["output"] == "●"


def test_layer_detail_is_a_widget() -> None:
    assert LayerDetail().id == "layer"


async def test_findings_badges_and_jump() -> None:
    from tinspect.tui.screens.guide import FindingsScreen

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        ids = {(f.id, f.uoa) for f in app.findings}
        assert ("one-sided-latent", "vae_25_75/z_mean") in ids
        assert not any(f.uoa.startswith("vae_25_75_fixed") for f in app.findings)
        vae = app.store.model("vae_25_75").id
        assert "⚠" in app.badges[(vae, "z_mean")] and "⚠" in app.badges[(vae, None)]
        assert "skip" in app.badges[(app.store.model("dense_skip").id, None)]
        await pilot.press("F")
        assert isinstance(app.screen, FindingsScreen)
        await pilot.press("enter")
        await settle(pilot)
        assert app.level == 2 and app.selection.uoa.model == vae
        assert app.selection.uoa.layer in ("z_mean", "z_log_var")


async def test_interestingness_colours_levels_and_ranks() -> None:
    from tinspect.tui.screens.guide import RankScreen

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("i")
        await settle(pilot)
        assert app.interest_measure == "skew"
        vae, fixed = app.store.model("vae_25_75").id, app.store.model("vae_25_75_fixed").id
        assert app.interest_of("models", vae) >= app.interest_of("models", fixed)
        assert app.interest_of("layers", (vae, "z_mean")) is not None
        await pilot.press("I")
        assert isinstance(app.screen, RankScreen)
        top = app.screen.scores[0]
        await pilot.press("enter")
        await settle(pilot)
        assert app.selection.uoa is not None and app.store.path(app.selection.uoa).startswith(
            top.path.split("/")[0]
        )
        app.action_interest()  # next measure
        await settle(pilot)
        assert app.interest_measure == "variance"


async def test_tools_on_a_layer_stored_once(tmp_path: Path) -> None:
    """Format 1.1: Flatten's activations are pool's, stored once; every tool still works."""
    from .test_store import store_flatten_once

    logs = tmp_path / "logs"
    shutil.copytree(FIXTURES / "digits", logs)
    (conv_dir,) = logs.glob("conv-*")
    for path in (conv_dir / fmt.CHECKPOINTS_DIR).glob("*.h5"):
        store_flatten_once(path)
    app = make_app(logs)
    async with app.run_test(size=(120, 40)) as pilot:
        conv = app.store.model("conv").id
        for selection in (
            Selection(uoa=UoA(conv, "flatten")),
            Selection(uoa=UoA(conv, "flatten", None, 5)),
        ):
            tools = applicable(selection, app.store)
            assert tools
            for tool in tools:
                card = app.apply_tool(tool, selection)
                await settle(pilot)
                assert card is not None
                if tool.view not in ("note", "branch"):
                    assert card.table is not None and len(card.table) > 0, tool.id
        # Flatten has no variables, so no top-k weights are offered for it; conv_2 has.
        offered = {
            t.id for t in applicable(Selection(uoa=UoA(conv, "flatten", None, 5)), app.store)
        }
        assert "topk" not in offered
        assert "topk" in {
            t.id for t in applicable(Selection(uoa=UoA(conv, "conv_2", None, 5)), app.store)
        }
        app.jump_to(Selection(uoa=UoA(conv, "flatten", None, 5)))
        await settle(pilot)
        assert app.level == 1 and app.layer == "flatten"
        assert not list(app.store.problems)
