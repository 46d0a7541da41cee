"""The compare tools (IMACS) in the viewer: the views on the planted-shortcut pair, the
second model picked on a model node, the filters, and every CSV equal to ``tinspect
compare``'s."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Input, OptionList
from typer.testing import CliRunner

from tinspect import cli
from tinspect.store import RECORDER_OPTION, Store, UoA
from tinspect.tui.app import TinspectApp
from tinspect.tui.screens.modals import AskPath, FilterPicker, PickModel, Toolbox
from tinspect.tui.selection import PairSelection, Selection
from tinspect.tui.tools import BY_ID, applicable

from .conftest import ROOT
from .test_tui import settle


@pytest.fixture(autouse=True)
def setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINSPECT_CACHE_DIR", "off")
    monkeypatch.chdir(ROOT)


def test_the_tools_apply_only_where_attributions_are() -> None:
    store = Store(ROOT / "fixtures" / "digits")
    conv = store.model("conv").id
    ids = {t.id for t in applicable(Selection(uoa=UoA(conv)), store)}
    assert "imacs_histograms" not in ids and "imacs_concepts" not in ids
    shortcut = Store(ROOT / "fixtures" / "shortcut")
    ids = {t.id for t in applicable(Selection(uoa=UoA(shortcut.model("shortcut").id)), shortcut)}
    assert {"imacs_histograms", "imacs_concepts"} <= ids


async def test_compare_tool_on_the_experiment_exports_the_cli_csv(tmp_path: Path) -> None:
    app = TinspectApp(Store("fixtures/shortcut"), refresh_seconds=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("up")  # from the first model to its experiment
        await pilot.press("t")
        assert isinstance(app.screen, Toolbox)
        assert "imacs_histograms" in [t.id for t in app.screen.tools]
        await pilot.press("a")
        await settle(pilot)
        (card,) = app.main.panel.cards
        assert card.tool.id == "imacs_histograms" and card.table is not None
        assert not card.query(".card-error")
        comparison = card.state.extra["comparison"]
        assert card.selection.kind == "experiment", card.selection
        assert comparison.names == ("shortcut", "clean")
        assert "cluster 0 (1/" in card.state.title
        card.focus()
        await pilot.press("right_square_bracket")
        assert "cluster 1 (2/" in card.state.title
        await pilot.press("x")
        assert isinstance(app.screen, AskPath)
        target = tmp_path / "imacs.csv"
        app.screen.query_one("Input").value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        concepts = app.main.apply_tool(BY_ID["imacs_concepts"], card.selection)
        await settle(pilot)
        assert concepts.table is not None and not concepts.query(".card-error")
        assert "concepts 1–2 of" in concepts.state.title
        assert app.main.errors == []
    result = CliRunner().invoke(
        cli.app, ["compare", "fixtures/shortcut", "shortcut", "clean", "--csv"]
    )
    assert result.exit_code == 0
    assert target.read_text() == result.stdout


async def test_compare_tool_on_a_model_without_a_parent_uses_its_initialization() -> None:
    app = TinspectApp(Store("fixtures/shortcut"), refresh_seconds=0)
    async with app.run_test(size=(120, 40)) as pilot:
        store = app.store
        card = app.main.apply_tool(
            BY_ID["imacs_concepts"], Selection(uoa=UoA(store.model("clean").id))
        )
        await settle(pilot)
        assert card.table is not None and not card.query(".card-error")
        assert card.state.extra["comparison"].labels == ("clean@8", "clean@0")


# --- the second model, the confusion view, filters -----------------------------------------------
def with_a_model_without_attributions(tmp_path: Path) -> Path:
    """The shortcut fixture plus ``plain``, a child of ``clean`` that recorded no maps."""
    logdir = tmp_path / "logs"
    shutil.copytree(ROOT / "fixtures" / "shortcut", logdir)
    clean = next(logdir.glob("clean-*"))
    plain = logdir / "plain-0123abcd"
    shutil.copytree(clean, plain)
    shutil.rmtree(plain / "attributions")
    document = json.loads((plain / "model.json").read_text())
    clean_id = document["header"]["id"]
    document["header"].update(id="0123abcd" + "0" * 24, name="plain", parents=[clean_id])
    (plain / "model.json").write_text(json.dumps(document))
    return logdir


def shown(card) -> str:
    """The card's view as text, rendered at the card's width (what the terminal shows)."""
    body = card.query_one(".card-body")
    console = Console(width=body.size.width, record=True, file=io.StringIO())
    for view in body.query(".view"):
        console.print(view.content)
    return console.export_text()


async def focus_card(pilot, card) -> None:
    """Tab until the card has the focus, as a user would."""
    for _ in range(8):
        if pilot.app.focused is card:
            return
        await pilot.press("tab")
    assert pilot.app.focused is card


async def export(pilot, path: Path) -> None:
    await pilot.press("x")
    assert isinstance(pilot.app.screen, AskPath)
    pilot.app.screen.query_one("Input").value = str(path)
    await pilot.press("enter")
    await pilot.pause()


async def test_the_second_model_is_picked_on_a_model_node(tmp_path: Path) -> None:
    logdir = with_a_model_without_attributions(tmp_path)
    app = TinspectApp(Store(logdir), refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("down", "down")  # clean, plain, shortcut: on shortcut
        assert app.main.selection.uoa.model == app.store.model("shortcut").id
        await pilot.press("t", "C")
        picker = app.screen
        assert isinstance(picker, PickModel)
        options = picker.query_one(OptionList)
        lines = {
            str(options.get_option_at_index(i).id): options.get_option_at_index(i)
            for i in range(options.option_count)
        }
        assert list(lines) == ["clean", "plain", "shortcut@0"]
        assert lines["plain"].disabled and not lines["clean"].disabled
        assert RECORDER_OPTION in str(lines["plain"].prompt)
        assert options.highlighted == 0  # the parent, the first usable choice
        await pilot.press("down")  # the disabled line is skipped
        assert options.highlighted == 2
        await pilot.press("up", "enter")
        await settle(pilot)
        (card,) = app.main.panel.cards
        assert isinstance(card.selection, PairSelection) and card.selection.other == "clean"
        assert card.tool.id == "imacs_confusion" and not card.query(".card-error")
        assert card.state.extra["comparison"].names == ("shortcut", "clean")
        assert "shortcut vs clean" in card.unit_title
        assert "cluster 0 (1/8)" in card.state.title
        text = shown(card)
        # Side by side: one line holds both titles; the classes where they differ only.
        assert any("a shortcut@8" in line and "b clean@8" in line for line in text.splitlines())
        assert "(where a≠b), s: all" in text
        await focus_card(pilot, card)
        await pilot.press("s")  # every class
        text = shown(card)
        assert "all 10 classes" in " ".join(text.split())
        assert "0  1  2  3  4  5  6  7  8  9" in text  # stacked now: too wide side by side
        target = tmp_path / "confusion.csv"
        await export(pilot, target)
        assert app.main.errors == []
    result = CliRunner().invoke(
        cli.app, ["compare", str(logdir), "shortcut", "clean", "--confusion", "--csv"]
    )
    assert result.exit_code == 0, result.stderr
    assert target.read_text() == result.stdout
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 8 * 2 * 10 * 10  # every cell of both matrices of every cluster


async def test_the_confusion_view_stacks_when_narrow_and_w_puts_it_side_by_side() -> None:
    app = TinspectApp(Store("fixtures/shortcut"), refresh_seconds=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("down", "t", "C", "enter")  # shortcut against its parent
        await settle(pilot)
        (card,) = app.main.panel.cards
        text = shown(card)
        assert not any("a shortcut@8" in line and "b clean@8" in line for line in text.splitlines())
        assert "w widens the panel" in " ".join(text.split())
        await pilot.press("w")
        await settle(pilot)
        await pilot.pause(0.1)
        text = shown(card)
        assert any("a shortcut@8" in line and "b clean@8" in line for line in text.splitlines())


async def test_a_model_without_attributions_is_told_the_recorder_option(tmp_path: Path) -> None:
    app = TinspectApp(Store("fixtures/digits"), refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("down")  # a model of the first experiment
        assert app.main.selection.kind == "model"
        await pilot.press("t")
        toolbox = app.screen
        assert isinstance(toolbox, Toolbox)
        options = toolbox.query_one(OptionList)
        missing = [
            options.get_option_at_index(i)
            for i in range(options.option_count)
            if str(options.get_option_at_index(i).id).startswith("unavailable-")
        ]
        assert [o.id for o in missing] == [
            "unavailable-imacs_histograms",
            "unavailable-imacs_concepts",
            "unavailable-imacs_confusion",
        ]
        assert all(o.disabled and RECORDER_OPTION in str(o.prompt) for o in missing)
        await pilot.press("a")  # the key of a tool that does not apply does nothing
        assert app.screen is toolbox


async def test_the_filter_picker_narrows_the_comparison_and_says_so(tmp_path: Path) -> None:
    app = TinspectApp(Store("fixtures/shortcut"), refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("c", "down", "down", "down", "space", "enter")  # class 3
        assert app.main.class_selection == (3,)
        await pilot.press("up", "t", "a")  # the experiment: shortcut against clean
        await settle(pilot)
        (card,) = app.main.panel.cards
        before = card.state.extra["comparison"]
        await focus_card(pilot, card)
        await pilot.press("f")
        picker = app.screen
        assert isinstance(picker, FilterPicker)
        options = picker.query_one(OptionList)
        prompts = {
            str(options.get_option_at_index(i).id): str(options.get_option_at_index(i).prompt)
            for i in range(options.option_count)
        }
        assert "false positives of 3 by a or b (13)" in prompts["fp"]
        assert "every recorded sample (160)" in prompts["none"]
        await pilot.press("f", "p", "enter")
        await settle(pilot)
        comparison = card.state.extra["comparison"]
        assert comparison.filter == "fp" and len(comparison.samples) < len(before.samples)
        truth = card.state.extra["truth"]
        pa, pb = card.state.extra["predicted"]
        kept = comparison.samples
        assert (((pa[kept] == 3) | (pb[kept] == 3)) & (truth[kept] != 3)).all()
        header = str(card.query_one(".card-header").content)
        assert "▽ filter fp" in header
        target = tmp_path / "fp.csv"
        await export(pilot, target)
        # A filter that is not one: a status line, the filter stays.
        await pilot.press("f")
        app.screen.query_one(Input).value = "bogus"
        await pilot.press("enter")
        await settle(pilot)
        assert card.sample_filter == "fp"
        assert "bad filter 'bogus'" in str(app.main.query_one("#status").content)
        # Empty: no filter again.
        await pilot.press("f")
        app.screen.query_one(Input).value = ""
        await pilot.press("enter")
        await settle(pilot)
        assert card.sample_filter is None and card.state.extra["comparison"].filter is None
    result = CliRunner().invoke(
        cli.app,
        [
            "compare",
            "fixtures/shortcut",
            "shortcut",
            "clean",
            "--class",
            "3",
            "--filter",
            "fp",
            "--csv",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert target.read_text() == result.stdout


async def test_the_sample_selection_applies_as_compare_samples(tmp_path: Path) -> None:
    app = TinspectApp(Store("fixtures/shortcut"), refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("up", "t", "A")  # the experiment's concepts
        await settle(pilot)
        (card,) = app.main.panel.cards
        await pilot.press("S")
        app.screen.query_one(Input).value = "class:3"
        await pilot.press("enter")
        await settle(pilot)
        comparison = card.state.extra["comparison"]
        truth = card.state.extra["truth"]
        assert set(truth[comparison.samples].tolist()) == {3}
        assert "◇ class:3" in str(card.query_one(".card-header").content)
        await focus_card(pilot, card)
        target = tmp_path / "class3.csv"
        await export(pilot, target)
    result = CliRunner().invoke(
        cli.app,
        ["compare", "fixtures/shortcut", "shortcut", "clean", "--samples", "class:3", "--csv"],
    )
    assert result.exit_code == 0, result.stderr
    assert target.read_text() == result.stdout
