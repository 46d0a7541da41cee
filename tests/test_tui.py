"""The viewer driven by keys with Textual's Pilot: levels, tools, classes, groups, export."""

from __future__ import annotations

import csv
import io
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tinspect import cli
from tinspect import format as fmt
from tinspect.store import Store, UoA
from tinspect.tui.app import TinspectApp
from tinspect.tui.screens.main import MainScreen
from tinspect.tui.screens.modals import AskPath, ClassSelector, Search, TextModal, Toolbox
from tinspect.tui.selection import PairSelection, Selection
from tinspect.tui.tools import TOOLS, applicable
from tinspect.tui.widgets.card import WidgetCard
from tinspect.tui.widgets.experiments import ExperimentTree
from tinspect.tui.widgets.graph import LayerGraph, layer_lanes

from .conftest import FIXTURES, ROOT


@pytest.fixture(autouse=True)
def setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINSPECT_CACHE_DIR", "off")
    monkeypatch.chdir(ROOT)


def make_app(path: str | Path = "fixtures/digits") -> TinspectApp:
    return TinspectApp(Store(path), refresh_seconds=0)


async def started(pilot) -> None:
    """Until the main screen's background work has started (the footer's keys drawn, at
    the latest 1 s after mount): waiting for workers before that waits for none."""
    for _ in range(300):
        if pilot.app.main.background_started:
            return
        await pilot.pause(0.01)


async def loaded(pilot) -> None:
    """Until every card in the panel has its data (or its error) on screen, at the latest
    after 20 s. Waiting for workers alone races a card mounted by the last key: its worker
    starts on mount, which may come after ``wait_for_complete`` returned (CI once caught
    the merged card of the group view that way)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        cards = list(pilot.app.main.panel.cards)
        if all(
            c.is_mounted and not any(w.display for w in c.query(".card-loading")) for c in cards
        ):
            return
        await pilot.pause(0.01)


async def settle(pilot) -> None:
    await pilot.pause()
    await started(pilot)
    await loaded(pilot)


def main_of(app: TinspectApp) -> MainScreen:
    return app.main


def crumbs(app: TinspectApp) -> str:
    main = app.main
    return f"{main.query_one('#crumbs-path').render()} {main.query_one('#crumbs-level').render()}"


def tool(tool_id: str):
    return next(t for t in TOOLS if t.id == tool_id)


def chars(text: str) -> list[str]:
    """Keys that type ``text`` (Pilot names a few characters by their key names)."""
    names = {"_": "underscore", " ": "space", "/": "slash", ".": "full_stop", "-": "minus"}
    return [names.get(c, c) for c in text]


async def test_walk_the_levels_by_keys_and_back() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        main = app.main
        assert main.place.level == 3 and isinstance(app.focused, ExperimentTree)
        assert main.selection.kind == "model"  # the cursor starts on the first model
        assert app.store.models[main.selection.uoa.model].name == "dense_baseline"
        await pilot.press("enter")
        assert main.place.level == 2 and isinstance(app.focused, LayerGraph)
        await pilot.press("j", "enter")  # hjkl work too: hidden_1
        await settle(pilot)
        assert main.place.level == 1 and main.place.layer == "hidden_1"
        units = main.query_one("#units")
        assert units.option_count > 2  # kernel, bias and neurons
        await pilot.press("down", "down", "down")
        assert main.selection.kind == "neuron"
        text = crumbs(app)
        assert "dense_baseline" in text and "hidden_1" in text and "L1" in text
        assert f"#{main.selection.uoa.neuron}" in text
        await pilot.press("backspace")
        assert main.place.level == 2 and main.selection.uoa.layer == "hidden_1"
        await pilot.press("escape")
        assert main.place.level == 3
        assert app.store.models[main.selection.uoa.model].name == "dense_baseline"


async def test_breadcrumbs_are_clickable_and_jump_levels() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        main = app.main
        await pilot.press("slash", *chars("conv_2"), "enter")  # search: to conv/conv_2 at L2
        await settle(pilot)
        await pilot.press("enter")  # into the layer
        await settle(pilot)
        assert main.place.level == 1 and main.place.layer == "conv_2"
        path = str(main.query_one("#crumbs-path").render())

        async def click(word: str) -> None:
            await pilot.click("#crumbs-path", offset=(1 + path.index(word) + 1, 0))
            await settle(pilot)

        await click("conv ")  # the model's crumb: L2
        assert main.place.level == 2 and main.selection.uoa.layer == "conv_2"
        await click("digits")  # the logdir's crumb: L3
        assert main.place.level == 3


async def test_every_tool_produces_its_widget() -> None:
    """Each tool of the registry on each kind of unit it applies to (the toolbox calls
    ``apply_tool``; pressing through 14 tools × 6 units by keys would test the keys 84 times)."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        main, store = app.main, app.store
        skip, vae = store.model("dense_skip").id, store.model("vae_25_75").id
        conv = store.model("conv").id
        selections = [
            Selection(uoa=UoA(conv, "conv_2", "kernel")),
            Selection(experiment="dense_baseline"),
            Selection(uoa=UoA(skip)),
            Selection(uoa=UoA(skip, "hidden_1")),
            Selection(uoa=UoA(skip, "hidden_1", "kernel")),
            Selection(uoa=UoA(skip, "hidden_1", None, 3)),
            Selection(uoa=UoA(vae)),
            PairSelection(uoa=UoA(vae), other="vae_90_10"),  # the group view's d
        ]
        applied = set()
        for selection in selections:
            for each in applicable(selection, store):
                card = main.apply_tool(each, selection)
                await settle(pilot)
                assert card.unit_title == selection.label(store)
                if each.view not in ("note", "branch"):
                    assert card.table is not None, (each.id, selection)
                    assert len(card.table) > 0, (each.id, selection)
                    assert not card.query(".card-error"), (each.id, selection)
                applied.add(each.id)
        assert applied == {t.id for t in TOOLS if not t.needs_attributions}  # test_imacs_tui
        # the VAE's samples are reconstructions: predictions of the same size as inputs
        sample_card = main.apply_tool(tool("samples"), Selection(uoa=UoA(vae)))
        await settle(pilot)
        assert len(sample_card.state.extra["predictions"]) > 0
        assert main.errors == []


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
        (card,) = app.main.panel.cards
        assert card.tool.id == "histogram" and card.table is not None
        assert "dense_baseline/hidden_1" in str(card.query_one(".card-header").render())


async def test_histogram_steps_epochs_on_a_shared_range() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("slash", *chars("conv_1"), "enter", "t", "h")
        await settle(pilot)
        (card,) = app.main.panel.cards
        assert card.selection.uoa.layer == "conv_1"
        assert card.state.pages == 4 and card.state.page == 3 and "epoch 3" in card.state.title
        card.focus()
        await pilot.press("left_square_bracket")
        assert card.state.page == 2 and "epoch 2" in card.state.title
        assert "epoch 2" in str(card.query_one(".card-header").render())
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert card.state.page == 0


async def test_class_selection_reloads_class_dependent_widgets() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        main = app.main
        skip = app.store.model("dense_skip").id
        hist = main.apply_tool(tool("histogram"), Selection(uoa=UoA(skip, "hidden_1")))
        topk = main.apply_tool(tool("topk"), Selection(uoa=UoA(skip, "hidden_1", "kernel")))
        await settle(pilot)
        total_before = sum(hist.table.column("count"))
        await pilot.press("c")
        assert isinstance(app.screen, ClassSelector)
        await pilot.press("space", "down", "space", "enter")  # classes 0 and 1
        await settle(pilot)
        assert main.class_selection == (0, 1)
        assert hist.current_query.classes == (0, 1) and topk.current_query.classes is None
        assert 0 < sum(hist.table.column("count")) < total_before
        assert "◆" in str(hist.query_one(".card-header").render())
        assert "classes 0,1" in crumbs(app)
        # L1 follows the class selection too (its statistics are class-dependent)
        await pilot.press("slash", *chars("dense_skip/hidden_2"), "enter", "enter")
        await settle(pilot)
        assert main.layer_detail.class_selection == (0, 1)


async def test_group_merge_and_group_screen() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main
        hist = tool("histogram")
        a = main.apply_tool(hist, Selection(uoa=UoA(app.store.model("vae_25_75").id, "z_mean")))
        b = main.apply_tool(
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
        merged = main.panel.cards[-1]
        assert merged.current_query.uoas == ("vae_25_75/z_mean", "vae_25_75_fixed/z_mean")
        assert set(merged.table.column("uoa")) == {"vae_25_75/z_mean", "vae_25_75_fixed/z_mean"}
        assert not a.grouped and not b.grouped


async def test_export_writes_the_same_csv_as_the_cli(tmp_path: Path) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("slash", *chars("dense_skip/hidden_2"), "enter", "t", "h")
        await settle(pilot)
        (card,) = app.main.panel.cards
        card.focus()
        await pilot.press("x")
        assert isinstance(app.screen, AskPath)
        target = tmp_path / "hist.csv"
        field = app.screen.query_one("Input")
        field.value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        assert f"wrote 120 rows to {target}" in str(app.main.query_one("#status").render())
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
        await pilot.press(*chars("z_mean dense relu"))
        await pilot.press("enter")
        await settle(pilot)
        main = app.main
        assert main.place.level == 2 and main.selection.uoa.layer == "z_mean"
        assert app.store.models[main.selection.uoa.model].name == "vae_25_75"


async def test_help_lists_every_binding_with_the_keys_a_user_types() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, TextModal)
        text = str(app.screen.body)
        for binding in app.BINDINGS + MainScreen.BINDINGS + WidgetCard.BINDINGS:
            assert (binding.tooltip or binding.description) in text and binding.id in text
        lines = {line.split()[-1]: line for line in text.splitlines() if line.strip()}
        assert lines["search"].split()[0] == "/"
        assert lines["help"].split()[0] == "?"
        assert lines["card.previous"].split()[0] == "["
        assert "question_mark" not in text and "slash" not in text
        await pilot.press("escape")
        assert not isinstance(app.screen, TextModal)


async def test_keymap_file_remaps_bindings_by_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keymap = tmp_path / "keymap.toml"
    keymap.write_text('tools = "T"\n"nav.up" = "u"\n')
    monkeypatch.setenv("TINSPECT_KEYMAP", str(keymap))
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("enter")  # L2
        assert app.main.place.level == 2
        await pilot.press("t")
        assert not isinstance(app.screen, Toolbox)  # t is no longer the toolbox
        await pilot.press("T")
        await pilot.pause()
        assert isinstance(app.screen, Toolbox)
        await pilot.press("escape", "u")
        assert app.main.place.level == 3
        await pilot.press("question_mark")
        line = next(x for x in str(app.screen.body).splitlines() if x.endswith(" tools"))
        assert line.split()[0] == "T"


async def test_a_broken_keymap_is_one_line_and_the_viewer_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keymap = tmp_path / "keymap.toml"
    keymap.write_text("tools = [\n")
    monkeypatch.setenv("TINSPECT_KEYMAP", str(keymap))
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert "1 problems" in str(app.main.query_one("#status").render())
        await pilot.press("t")
        assert isinstance(app.screen, Toolbox)
        await pilot.press("escape", "P")
        assert f"keymap {keymap} ignored" in str(app.screen.body)


async def test_logs_with_problems_open_and_show_them(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(FIXTURES / "digits", logs)
    (next(logs.glob("dense_skip-*")) / fmt.MODEL_JSON).write_text("{")
    conv = next(logs.glob("conv-*"))
    (conv / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(3)).write_bytes(b"garbage")
    app = make_app(logs)
    async with app.run_test(size=(100, 30)) as pilot:
        main = app.main
        status = str(main.query_one("#status").render())
        assert "5 models" in status and "1 problems" in status
        card = main.apply_tool(
            tool("histogram"), Selection(uoa=UoA(app.store.model("conv").id, "conv_1"))
        )
        await settle(pilot)
        # The last checkpoint is corrupt: the card shows the other epochs, and says which
        # checkpoint it skipped (meta problems, one line each).
        assert card.table is not None and card.table.meta["epochs"] == [0, 1, 2, 3]
        assert set(card.table.column("epoch")) == {0, 1, 2}
        (line,) = card.table.meta["problems"]
        assert "epoch-0003.h5 of model conv" in line and "file damaged or truncated" in line
        body = " ".join(str(w.render()) for w in card.query(".card-body Static"))
        assert "epoch-0003.h5" in body  # the card names the damaged checkpoint
        await pilot.press("P")
        assert "model.json is not valid JSON" in str(app.screen.body)


async def test_live_refresh_shows_new_models(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copytree(next((FIXTURES / "digits").glob("dense_baseline-*")), logs / "a")
    app = make_app(logs)
    async with app.run_test(size=(100, 30)) as pilot:
        main = app.main
        assert len(app.store.models) == 1
        shutil.copytree(next((FIXTURES / "digits").glob("conv-*")), logs / "b")
        main.refresh_store()
        await settle(pilot)
        assert len(app.store.models) == 2
        assert "conv" in main.guides.badges[(app.store.model("conv").id, None)]
        labels = [str(node.label) for node in main.tree.root.children]
        assert len(labels) == 2  # conv's parent is missing: its own experiment
        assert "1 new models" in str(main.query_one("#status").render())


async def test_a_model_deleted_while_open_returns_to_l3_and_its_cards_say_so(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(FIXTURES / "digits", logs)
    app = make_app(logs)
    async with app.run_test(size=(100, 30)) as pilot:
        main = app.main
        await pilot.press("slash", *chars("dense_skip/hidden_1"), "enter", "t", "h")
        await settle(pilot)
        (card,) = main.panel.cards
        assert card.table is not None
        await pilot.press("enter")  # L1 of dense_skip/hidden_1
        await settle(pilot)
        assert main.place.level == 1
        shutil.rmtree(next(logs.glob("dense_skip-*")))
        main.refresh_store()
        await settle(pilot)
        assert main.place.level == 3 and "dense_skip" not in crumbs(app)
        assert "removed from the logs: dense_skip" in str(main.query_one("#status").render())
        assert card.table is None
        assert "model removed" in str(card.query_one(".card-body Static").render())
        card.focus()
        await pilot.press("r")  # reloading a card of a removed model: no KeyError
        await settle(pilot)
        assert "model removed" in str(card.query_one(".card-body Static").render())
        await pilot.press("J")  # and jumping to it only says so
        await settle(pilot)
        assert main.place.level == 3
        assert main.errors == [] and app.is_running


async def test_a_checkpoint_truncated_while_shown_is_named_on_its_card(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(FIXTURES / "digits", logs)
    app = make_app(logs)
    async with app.run_test(size=(100, 30)) as pilot:
        main = app.main
        await pilot.press("slash", *chars("conv/conv_1"), "enter", "t", "s")  # statistics
        await settle(pilot)
        (card,) = main.panel.cards
        assert len(card.table) == 4
        last = next(logs.glob("conv-*")) / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(3)
        data = last.read_bytes()
        last.write_bytes(data[: len(data) // 3])
        main.refresh_store()  # the card reloads by itself: no key pressed
        await settle(pilot)
        assert "1 checkpoint changed on disk" in str(main.query_one("#status").render())
        shown = " ".join(str(w.render()) for w in card.query(".card-body Static"))
        assert "epoch-0003.h5" in shown
        await pilot.press("P")
        assert "epoch-0003.h5" in str(app.screen.body)
        await pilot.press("escape")
        last.write_bytes(data)  # the writer replaces it: the card shows all epochs again
        main.refresh_store()
        await settle(pilot)
        assert card.table is not None and len(card.table) == 4
        assert main.errors == [] and app.is_running


async def test_a_model_json_broken_while_open_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(FIXTURES / "digits", logs)
    app = make_app(logs)
    async with app.run_test(size=(100, 30)) as pilot:
        main = app.main
        await pilot.press("slash", *chars("vae_90_10"), "enter")
        await settle(pilot)
        header = next(logs.glob("vae_90_10-*")) / fmt.MODEL_JSON
        header.write_text('{"format_version": "1.')
        main.refresh_store()
        await settle(pilot)
        await pilot.press("P")
        assert "model.json" in str(app.screen.body)
        await pilot.press("escape")
        await pilot.press("t")  # the viewer still answers keys
        await settle(pilot)
        assert main.errors == [] and app.is_running


async def test_an_unexpected_worker_error_is_a_status_line_not_a_dead_viewer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tinspect.analysis.interest as interest

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(interest, "score_units", broken)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("i")
        await settle(pilot)
        assert app.is_running
        assert any("RuntimeError: boom" in e for e in app.main.errors)
        assert "boom" in str(app.main.query_one("#status").render())
        await pilot.press("P")
        assert "RuntimeError: boom" in str(app.screen.body)


async def test_long_logdir_paths_keep_the_level_badge_on_screen(tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-directory-name-" * 4) / "nested" / "experiments-logs"
    shutil.copytree(FIXTURES / "digits", deep)
    app = make_app(deep)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter", "down", "enter")
        await settle(pilot)
        assert app.main.place.level == 1
        level = app.main.query_one("#crumbs-level")
        assert "L1" in str(level.render())
        assert level.region.right <= 80 and level.region.width >= 4
        assert "experiments-logs" in str(app.main.query_one("#crumbs-path").render())
        assert "a-rather-long" not in str(app.main.query_one("#crumbs-path").render())


async def test_note_card_saves_what_was_typed_beside_the_logs(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(FIXTURES / "digits", logs)
    app = make_app(logs)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("slash", *chars("vae_25_75/z_mean"), "enter", "t", "o")
        await settle(pilot)
        (card,) = app.main.panel.cards
        card.query_one("TextArea").focus()
        await pilot.press(*chars("relu here"), "ctrl+s")
        await pilot.pause()
    notes = (tmp_path / "logs.tinspect-notes.md").read_text()
    assert "## vae_25_75/z_mean\n\nrelu here\n" in notes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs", "logs.tinspect-notes.md"]


async def test_branch_card_writes_a_header_call_that_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(FIXTURES / "digits")
    monkeypatch.chdir(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("slash", *chars("dense_skip"), "enter", "escape")  # L3 on dense_skip
        await settle(pilot)
        assert app.main.place.level == 3
        await pilot.press("t", "B")
        await settle(pilot)
        (card,) = app.main.panel.cards
        card.focus()
        await pilot.press("w")
        await pilot.pause()
    (written,) = tmp_path.glob("branch_*.py")
    namespace: dict[str, object] = {}
    exec(compile(written.read_text(), str(written), "exec"), namespace)  # the file the card wrote
    header = namespace["header"]
    parent = Store(FIXTURES / "digits").model("dense_skip")
    assert header["parents"] == [parent.id] and header["name"] == "dense_skip_child"


def test_layer_lanes_draw_the_skip_connection() -> None:
    model = Store(FIXTURES / "digits").model("dense_skip")
    rows = {r.name: r.lanes for r in layer_lanes(model)}
    assert rows["pixels"] == "●"
    assert rows["hidden_1"] == "●─┐"  # hidden_1 feeds hidden_2 and, around it, skip_add
    assert rows["hidden_2"] == "● │"
    assert rows["skip_add"] == "●─┘"
    assert rows["output"] == "●"


async def test_findings_badges_and_jump() -> None:
    from tinspect.tui.screens.guide import FindingsScreen

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        ids = {(f.id, f.uoa) for f in app.main.guides.findings}
        assert ("one-sided-latent", "vae_25_75/z_mean") in ids
        assert not any(f.uoa.startswith("vae_25_75_fixed") for f in app.main.guides.findings)
        vae = app.store.model("vae_25_75").id
        assert (
            "⚠" in app.main.guides.badges[(vae, "z_mean")]
            and "⚠" in app.main.guides.badges[(vae, None)]
        )
        assert "skip" in app.main.guides.badges[(app.store.model("dense_skip").id, None)]
        await pilot.press("F")
        assert isinstance(app.screen, FindingsScreen)
        assert not app.screen.query("#findings-scope")  # every model was checked
        await pilot.press("enter")
        await settle(pilot)
        assert app.main.place.level == 2 and app.main.selection.uoa.model == vae
        assert app.main.selection.uoa.layer in ("z_mean", "z_log_var")


async def test_interestingness_colours_levels_and_ranks() -> None:
    from tinspect.tui.screens.guide import RankScreen

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("i")
        await settle(pilot)
        assert app.main.guides.measure == "skew"
        vae, fixed = app.store.model("vae_25_75").id, app.store.model("vae_25_75_fixed").id
        assert app.main.guides.interest_of("models", vae) >= app.main.guides.interest_of(
            "models", fixed
        )
        assert app.main.guides.interest_of("layers", (vae, "z_mean")) is not None
        await pilot.press("I")
        assert isinstance(app.screen, RankScreen)
        top = app.screen.scores[0]
        await pilot.press("enter")
        await settle(pilot)
        selected = app.main.selection.uoa
        assert selected is not None and app.store.path(selected).startswith(top.path.split("/")[0])
        await pilot.press("escape", "i")  # next measure
        await settle(pilot)
        assert app.main.guides.measure == "variance"


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
            for each in tools:
                card = app.main.apply_tool(each, selection)
                await settle(pilot)
                if each.view not in ("note", "branch"):
                    assert card.table is not None and len(card.table) > 0, each.id
        # Flatten has no variables, so no top-k weights are offered for it; conv_2 has.
        offered = {
            t.id for t in applicable(Selection(uoa=UoA(conv, "flatten", None, 5)), app.store)
        }
        assert "topk" not in offered
        assert "topk" in {
            t.id for t in applicable(Selection(uoa=UoA(conv, "conv_2", None, 5)), app.store)
        }
        await pilot.press("slash", *chars("conv/flatten"), "enter", "enter")
        await settle(pilot)
        assert app.main.place.level == 1 and app.main.place.layer == "flatten"
        assert not list(app.store.problems)
