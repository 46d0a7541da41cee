"""The compare tool (IMACS) in the viewer: both views on the planted-shortcut pair, and its
CSV equal to ``tinspect compare --csv``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tinspect import cli
from tinspect.store import Store, UoA
from tinspect.tui.app import TinspectApp
from tinspect.tui.screens.modals import AskPath, Toolbox
from tinspect.tui.selection import Selection
from tinspect.tui.tools import BY_ID, applicable

from .conftest import ROOT


@pytest.fixture(autouse=True)
def setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINSPECT_CACHE_DIR", "off")
    monkeypatch.chdir(ROOT)


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


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
        assert "cluster 1/" in card.state.title
        card.focus()
        await pilot.press("right_square_bracket")
        assert "cluster 2/" in card.state.title
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
