"""The comparison features in the viewer, driven by keys: the sample selection (S, and Enter
on a confusion cell), cards that follow it, the projection scatter, and L3's Δ lines."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from rich.console import Console
from textual.widgets import Static

from tinspect.store import Store, UoA
from tinspect.tui.app import TinspectApp
from tinspect.tui.screens.modals import SampleSelector, Toolbox
from tinspect.tui.selection import PairSelection, Selection
from tinspect.tui.tools import TOOLS, applicable
from tinspect.tui.widgets.experiments import ExperimentTree

from .conftest import FIXTURES, ROOT
from .test_tui import settle

DIGITS = FIXTURES / "digits"


@pytest.fixture(autouse=True)
def setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINSPECT_CACHE_DIR", "off")
    monkeypatch.chdir(ROOT)


def make_app(path: str | Path = "fixtures/digits") -> TinspectApp:
    return TinspectApp(Store(path), refresh_seconds=0)


def tool(tool_id: str):
    return next(t for t in TOOLS if t.id == tool_id)


def chars(text: str) -> list[str]:
    names = {"_": "underscore", ":": "colon", ",": "comma", "@": "at"}
    return [names.get(c, c) for c in text]


def h5(name: str, epoch: int, dataset: str) -> np.ndarray:
    path = next(DIGITS.glob(f"{name}-*/checkpoints/epoch-{epoch:04d}.h5"))
    with h5py.File(path, "r", locking=False) as f:
        return f[dataset][()]


def crumbs(app: TinspectApp) -> str:
    return str(app.main.query_one("#crumbs-level").render())


async def test_the_sample_selection_key_sets_it_and_cards_follow() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        main, store = app.main, app.store
        skip = store.model("dense_skip").id
        hist = main.apply_tool(tool("histogram"), Selection(uoa=UoA(skip, "hidden_1")))
        topk = main.apply_tool(tool("topk"), Selection(uoa=UoA(skip, "hidden_1", "kernel")))
        await settle(pilot)
        before = sum(hist.table.column("count"))
        await pilot.press("S")
        assert isinstance(app.screen, SampleSelector)
        await pilot.press(*chars("misclassified"), "enter")
        await settle(pilot)
        assert main.sample_selection == "misclassified"
        y = h5("dense_skip", 3, "data_samples/y_class")
        wrong = (np.argmax(h5("dense_skip", 3, "data_samples/y_prediction"), 1) != y).sum()
        epochs = len(store.model("dense_skip").epochs)
        assert hist.current_query.samples == "misclassified"
        assert topk.current_query.samples is None  # weights have no samples
        last = [
            c
            for e, c in zip(hist.table.column("epoch"), hist.table.column("count"), strict=True)
            if e == 3
        ]
        assert sum(last) == wrong * 64 and sum(hist.table.column("count")) < before * epochs
        assert "◇ misclassified" in str(hist.query_one(".card-header").render())
        assert "◇" not in str(topk.query_one(".card-header").render())
        assert "◇ misclassified" in crumbs(app)
        # A malformed selection is one status line and changes nothing.
        await pilot.press("S")
        app.screen.query_one("#samples-input").value = "confusion:3"
        await pilot.press("enter")
        await settle(pilot)
        assert main.sample_selection == "misclassified"
        assert "a confusion cell is two classes" in str(main.query_one("#status").render())
        # Empty clears it.
        await pilot.press("S")
        app.screen.query_one("#samples-input").value = ""
        await pilot.press("enter")
        await settle(pilot)
        assert main.sample_selection is None and sum(hist.table.column("count")) == before


async def test_picking_a_kind_from_the_list() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("S")
        selector = app.screen
        assert isinstance(selector, SampleSelector)
        texts = [text for text, _meaning in selector.suggestions]
        assert "misclassified" in texts and any(t.startswith("disagree:") for t in texts)
        await pilot.press("tab", "down", "enter")  # the second suggestion: misclassified
        await settle(pilot)
        assert app.main.sample_selection == texts[1]


async def test_enter_on_a_confusion_cell_selects_its_samples() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        main, store = app.main, app.store
        conv = store.model("conv").id
        matrix = main.apply_tool(tool("confusion"), Selection(uoa=UoA(conv)))
        samples = main.apply_tool(tool("samples"), Selection(uoa=UoA(conv)))
        await settle(pilot)
        y = h5("conv", 3, "data_samples/y_class")
        p = np.argmax(h5("conv", 3, "data_samples/y_prediction"), 1)
        t, q = next((int(a), int(b)) for a, b in zip(y, p, strict=True) if a != b)
        matrix.focus()
        await pilot.press(*(["down"] * t), *(["right"] * q))
        assert matrix.state.extra["cell"] == (t, q)
        await pilot.press("enter")
        await settle(pilot)
        assert main.sample_selection == f"confusion:{t},{q}@conv"
        expected = np.flatnonzero((y == t) & (p == q)).tolist()
        assert sorted(set(samples.table.column("sample"))) == expected
        assert f"of {len(expected)}" in samples.state.title  # the viewer pages the selection
        cells = [r for r in matrix.table.rows() if r[4]]
        assert [(r[2], r[3], r[4]) for r in cells] == [(t, q, len(expected))]


async def test_projection_scatter_highlights_the_selection_in_one_frame() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        main, store = app.main, app.store
        await pilot.press("slash", *chars("conv/conv_2"), "enter", "t")
        assert isinstance(app.screen, Toolbox)
        await pilot.press("e")
        await settle(pilot)
        (card,) = main.panel.cards
        assert card.tool.id == "projection" and card.table is not None
        assert card.state.pages == len(store.model("conv").epochs)
        assert "epoch 3 (4/4) basis 3" in card.state.title
        assert card.state.extra["selected"] is None
        full = len(card.table)
        main.set_samples("class:4")
        await settle(pilot)
        assert len(card.table) == full  # every point drawn, the selection highlighted
        fours = np.flatnonzero(h5("conv", 3, "data_samples/y_class") == 4).tolist()
        assert sorted(card.state.extra["selected"][3]) == fours
        assert f"{len(fours)} selected" in card.state.title
        card.focus()
        await pilot.press("left_square_bracket")
        assert "epoch 2" in card.state.title
        # A box moved with keys selects the samples inside it at the epoch shown.
        await pilot.press("right", "plus", "plus")
        assert card.state.extra["box"] == pytest.approx((0.55, 0.5, 0.46875, 0.46875))
        rows = [r for r in card.table.rows() if r[1] == 2]
        xs, ys = card.table.column("pc1"), card.table.column("pc2")
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        lo_x, hi_x = x0 + (0.55 - 0.234375) * (x1 - x0), x0 + (0.55 + 0.234375) * (x1 - x0)
        lo_y, hi_y = y0 + (0.5 - 0.234375) * (y1 - y0), y0 + (0.5 + 0.234375) * (y1 - y0)
        inside = sorted(r[2] for r in rows if lo_x <= r[4] <= hi_x and lo_y <= r[5] <= hi_y)
        assert inside and f"box: {len(inside)}" in card.state.title
        await pilot.press("enter")
        await settle(pilot)
        assert main.sample_selection == "ids:" + ",".join(map(str, inside))
        card.focus()
        await pilot.press("7")
        await settle(pilot)
        assert main.sample_selection == "class:7"


async def test_l3_shows_what_each_child_changed_and_merges_under_both_parents(
    tmp_path: Path,
) -> None:
    logdir = tmp_path / "logs"
    shutil.copytree(DIGITS, logdir)
    merge = logdir / "merged-11111111"
    shutil.copytree(DIGITS / "dense_skip-c38f7cbb", merge)
    info = json.loads((merge / "model.json").read_text())
    conv_id = json.loads((DIGITS / "conv-d218bdf1" / "model.json").read_text())["header"]["id"]
    parent_id = info["header"]["parents"][0]
    info["header"].update(id="11111111" * 4, name="merged", parents=[parent_id, conv_id])
    (merge / "model.json").write_text(json.dumps(info))
    app = make_app(logdir)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        tree = app.main.query_one(ExperimentTree)
        labels = {}
        for line in range(tree.last_line + 1):
            node = tree.get_node_at_line(line)
            if node is not None and node.data is not None and node.data.uoa is not None:
                labels.setdefault(node.data.uoa.model, []).append(str(node.label))
        store = app.store
        fixed = labels[store.model("vae_25_75_fixed").id]
        assert "Δ z_mean, z_log_var: relu → linear" in fixed[0]
        merged = labels[store.model("merged").id]
        assert "Δ hidden_2: units 32 → 64; +skip_add" in merged[0]  # against its first parent
        assert len(merged) == 2 and "⇆" in merged[1] and "merge of" in merged[1]
        assert "Δ" not in labels[store.model("dense_baseline").id][0]  # a root has no parent


async def test_the_diff_card_lists_the_rows_and_enter_jumps_to_the_layer() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        main, store = app.main, app.store
        fixed, parent = store.model("vae_25_75_fixed").id, store.model("vae_25_75").id
        root = Selection(uoa=UoA(store.model("vae_90_10").id))
        assert tool("diff") not in applicable(root, store)  # a root has no parent
        card = main.apply_tool(tool("diff"), Selection(uoa=UoA(fixed)))
        await settle(pilot)
        rows = list(card.table.rows())
        assert rows[:2] == [
            ("layer", "z_mean", "activation", "relu", "linear"),
            ("layer", "z_log_var", "activation", "relu", "linear"),
        ]
        assert "a = vae_25_75, b = vae_25_75_fixed" in card.state.title
        card.focus()
        await pilot.press("down", "enter")
        await settle(pilot)
        assert main.place.level == 2 and main.selection.uoa == UoA(fixed, "z_log_var")
        card.focus()
        await pilot.press("up", "A")
        await settle(pilot)
        assert main.selection.uoa == UoA(parent, "z_mean")


async def test_named_groups_and_a_common_scale() -> None:
    from tinspect.tui.screens.group import GroupScreen
    from tinspect.tui.widgets.views import common_scale

    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        main, store = app.main, app.store
        hist = tool("histogram")
        a = main.apply_tool(hist, Selection(uoa=UoA(store.model("vae_25_75").id, "z_mean")))
        b = main.apply_tool(hist, Selection(uoa=UoA(store.model("vae_90_10").id, "z_mean")))
        c = main.apply_tool(hist, Selection(uoa=UoA(store.model("dense_skip").id, "hidden_1")))
        await settle(pilot)
        for card in (a, b):
            card.focus()
            await pilot.press("g")
        await pilot.press("N")
        app.screen.query_one("#text-input").value = "dense"
        await pilot.press("enter")
        c.focus()
        await pilot.press("g")
        assert (a.group, b.group, c.group) == ("1", "1", "dense")
        assert "dense" in str(c.query_one(".card-header").render())
        await pilot.press("G")  # the current group: dense
        screen = app.screen
        assert isinstance(screen, GroupScreen) and screen.cards == [c]
        await pilot.press("n")  # the next group: 1
        await pilot.pause()
        screen = app.screen
        assert (
            isinstance(screen, GroupScreen) and screen.group_name == "1" and screen.cards == [a, b]
        )
        await pilot.press("s")
        scales = [state.extra["common"] for state in screen.states]
        assert scales[0] == scales[1]
        counts = list(a.table.column("count")) + list(b.table.column("count"))
        lefts = list(a.table.column("bin_left")) + list(b.table.column("bin_left"))
        assert scales[0]["y"] == (0.0, float(max(counts)))
        assert scales[0]["x"][0] == float(min(lefts))
        assert common_scale([("histogram", a.table)])["histogram"]["y"][1] == max(
            a.table.column("count")
        )
        await pilot.press("s")
        assert all("common" not in state.extra for state in screen.states)


async def test_use_case_the_fixed_vae_difference_is_found_from_l3_by_keys() -> None:
    """The study variant of the paper's use case 3: what differs between vae_25_75 and
    vae_25_75_fixed, found from L3 without reading both layer graphs."""
    app = make_app()
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        main, store = app.main, app.store
        fixed = store.model("vae_25_75_fixed").id
        tree = main.query_one(ExperimentTree)
        while main.selection.uoa != UoA(fixed):  # down the L3 tree to the fixed VAE
            await pilot.press("down")
        line = str(tree.get_node_at_line(tree.cursor_line).label)
        assert "Δ z_mean, z_log_var: relu → linear" in line
        await pilot.press("t", "g")  # the diff tool on the model
        await settle(pilot)
        (card,) = main.panel.cards
        first = next(iter(card.table.rows()))
        assert first == ("layer", "z_mean", "activation", "relu", "linear")
        distribution = [r[1] for r in card.table.rows() if r[0] == "distribution"][:2]
        assert set(distribution) == {"z_mean", "z_log_var"}  # and it shows in the activations
        card.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert main.place.level == 2 and main.selection.uoa == UoA(fixed, "z_mean")


# --- the paper's use cases 1 and 2, pairs from a group, merging, the projection's colours ------
async def focus(pilot, widget) -> None:
    """Tab until ``widget`` has the focus, as a user would."""
    for _ in range(30):
        if pilot.app.focused is widget:
            return
        await pilot.press("tab")
    raise AssertionError(f"tab never reached {widget}")


def shown(static: Static, width: int = 60) -> str:
    """The text a Static draws (a Rich renderable's cells, without styles)."""
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(static.content)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())


def header(card) -> str:
    return str(card.query_one(".card-header").render())


def activations(name: str, epoch: int, layer: str) -> np.ndarray:
    return h5(name, epoch, f"layers/{layer}/activations").astype(np.float64)


async def test_use_case_1_misclassified_samples_followed_across_widgets_and_models() -> None:
    """The paper's use case 1: from a confusion-matrix cell (Enter) to the samples behind
    it, followed in the sample viewer, the projection and another model's widgets."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        main, store = app.main, app.store
        conv = store.model("conv").id
        while main.selection.uoa != UoA(conv):  # down the L3 tree to the conv model
            await pilot.press("down")
        await pilot.press("t", "c")  # confusion matrix
        await pilot.press("t", "v")  # sample viewer
        await pilot.press("slash", *chars("conv/conv_2"), "enter", "t", "e")  # projection
        await pilot.press("slash", *chars("dense_skip/hidden_1"), "enter", "t", "h")
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("t", "c")  # dense_skip's confusion matrix, on L3
        await settle(pilot)
        made = {
            (c.tool.id, store.display_name(store.models[c.model_ids[0]])): c
            for c in main.panel.cards
        }
        assert len(made) == 5
        matrix, other = made["confusion", "conv"], made["confusion", "dense_skip"]
        samples, projection = made["samples", "conv"], made["projection", "conv"]
        hist = made["histogram", "dense_skip"]
        y = h5("conv", 3, "data_samples/y_class")
        p = np.argmax(h5("conv", 3, "data_samples/y_prediction"), 1)
        wrong = [(int(a), int(b)) for a, b in zip(y, p, strict=True) if a != b]
        t, q = max(set(wrong), key=wrong.count)  # the most frequent confusion
        await focus(pilot, matrix)
        await pilot.press(*(["down"] * t), *(["right"] * q))
        assert f"cell {t}→{q}: {wrong.count((t, q))}" in header(matrix)
        await pilot.press("enter")
        await settle(pilot)
        chosen = f"confusion:{t},{q}@conv"
        assert main.sample_selection == chosen and f"◇ {chosen}" in crumbs(app)
        expected = np.flatnonzero((y == t) & (p == q)).tolist()
        # the sample viewer pages through exactly those samples
        assert sorted(set(samples.table.column("sample"))) == expected
        assert f"of {len(expected)}" in header(samples)
        # the projection keeps every point and highlights them
        assert sorted(projection.state.extra["selected"][3]) == expected
        assert f"{len(expected)} selected" in header(projection)
        # another model's layer: the histogram counts only those samples' activations
        units = activations("dense_skip", 3, "hidden_1").shape[1]
        last = [
            c
            for e, c in zip(hist.table.column("epoch"), hist.table.column("count"), strict=True)
            if e == 3
        ]
        assert sum(last) == len(expected) * units and f"◇ {chosen}" in header(hist)
        # ... and how the other model classifies conv's mistakes, against its own predictions
        skip_p = np.argmax(h5("dense_skip", 3, "data_samples/y_prediction"), 1)[expected]
        cells = {(r[2], r[3]): r[4] for r in other.table.rows() if r[4]}
        kinds, counts = np.unique(skip_p, return_counts=True)
        truth = {(t, int(k)): int(n) for k, n in zip(kinds, counts, strict=True)}
        assert cells == truth
        # colour the projection by right/wrong: conv's errors are the selection, all wrong
        await focus(pilot, projection)
        await pilot.press("C")
        assert projection.state.extra["colour"] == "correct"
        legend = str(projection.query_one(".scatter-legend").render())
        assert "right" in legend and "wrong" in legend and "not selected" in legend
        assert "C: colour by class" in legend
        await pilot.press("C")
        assert projection.state.extra["colour"] == "class"
        assert "C: colour by right/wrong" in str(projection.query_one(".scatter-legend").render())
        # clearing the selection from the palette's command, by keys
        await pilot.press("S")
        app.screen.query_one("#samples-input").value = ""
        await pilot.press("enter")
        await settle(pilot)
        assert projection.state.extra["selected"] is None
        assert "◇" not in header(hist) and len(set(samples.table.column("sample"))) > len(expected)


async def test_use_case_2_two_generations_in_a_group_on_a_common_scale_merged_and_diffed() -> None:
    """The paper's use case 2: a layer's distributions in two generations (and their
    parent), side by side on a common scale, merged into one chart, then the diff of a
    pair from the group, whose rows jump into either model."""
    from tinspect.tui.screens.group import GroupScreen
    from tinspect.tui.screens.modals import PairPicker

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        main, store = app.main, app.store
        names = ("vae_25_75", "vae_25_75_fixed", "vae_90_10")
        for name in names:
            await pilot.press("slash", *chars(f"{name}/z_mean"), "enter", "t", "h")
        await settle(pilot)
        cards = main.panel.cards
        for card in cards:
            await focus(pilot, card)
            await pilot.press("g")
        assert all(card.group == "1" for card in cards)
        await pilot.press("G")
        screen = app.screen
        assert isinstance(screen, GroupScreen) and screen.cards == cards
        await pilot.press("s")  # common scale
        epochs = {n: store.model(n).epochs for n in names}
        values = {n: [activations(n, e, "z_mean") for e in epochs[n]] for n in names}
        lo = min(float(v.min()) for vs in values.values() for v in vs)
        hi = max(float(v.max()) for vs in values.values() for v in vs)
        common = [state.extra["common"] for state in screen.states]
        assert all(c == common[0] for c in common)
        assert common[0]["x"] == pytest.approx((lo, hi), rel=1e-6)
        top = max(max(card.table.column("count")) for card in cards)
        assert common[0]["y"] == (0.0, float(top))
        assert "common scale on" in str(screen.query_one("#group-title").render())
        # M: the three histograms have the same axes and become one chart
        await pilot.press("M")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, GroupScreen) and screen.common
        (merged,) = screen.cards
        assert merged.tool.id == "histogram" and merged.group == "1"
        assert all(card.group is None for card in cards)  # they stay in the panel
        paths = tuple(f"{n}/z_mean" for n in names)
        assert merged.current_query.uoas == paths
        assert merged.table.meta["range"] == pytest.approx([lo, hi], rel=1e-6)
        cell_title = str(screen.query(".group-cell").first().query(Static).first().render())
        assert " + ".join(paths) in cell_title
        # one shared range: each model's counts are numpy's histogram on it
        bins = merged.current_query.bins
        for name, path in zip(names, paths, strict=True):
            last = epochs[name][-1]
            rows = [r for r in merged.table.rows() if r[0] == path and r[1] == last]
            counts = [dict(zip(merged.table.columns, r, strict=True))["count"] for r in rows]
            truth, _edges = np.histogram(values[name][-1], bins=bins, range=(lo, hi))
            assert counts == truth.tolist(), name
        # the ReLU generation has most of its latent values at 0, the fixed one has none
        relu = values["vae_25_75"][-1]
        assert (relu == 0).mean() > 0.5 and (values["vae_25_75_fixed"][-1] == 0).mean() < 0.1
        # d: three models in the group, so a pair is picked: fixed against 25_75
        await pilot.press("d")
        picker = app.screen
        assert isinstance(picker, PairPicker) and len(picker.pairs) == 3
        fixed, parent = store.model("vae_25_75_fixed").id, store.model("vae_25_75").id
        index = picker.pairs.index((parent, fixed))
        await pilot.press(*(["down"] * index), "enter")
        await settle(pilot)
        assert app.screen is main
        (diff,) = [c for c in main.panel.cards if c.tool.id == "diff_pair"]
        assert app.focused is diff
        assert "vae_25_75_fixed vs vae_25_75" in header(diff)
        assert list(diff.table.rows())[:2] == [
            ("layer", "z_mean", "activation", "relu", "linear"),
            ("layer", "z_log_var", "activation", "relu", "linear"),
        ]
        body = shown(diff.query_one(".card-body").query(Static).first())
        assert "layers\n~ z_mean activation: relu → linear\n" in body
        await pilot.press("enter")  # the first row's layer, in b
        await settle(pilot)
        assert main.place.level == 2 and main.selection.uoa == UoA(fixed, "z_mean")
        await focus(pilot, diff)
        await pilot.press("down", "A")  # the second row's layer, in a
        await settle(pilot)
        assert main.selection.uoa == UoA(parent, "z_log_var")


async def test_a_group_of_two_models_diffs_at_once_and_one_model_says_so() -> None:
    from tinspect.tui.screens.group import GroupScreen

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        main, store = app.main, app.store
        skip, conv = store.model("dense_skip").id, store.model("conv").id
        a = main.apply_tool(tool("metrics"), Selection(uoa=UoA(skip)))
        await settle(pilot)
        await focus(pilot, a)
        await pilot.press("g", "G", "d")
        assert isinstance(app.screen, GroupScreen)  # one model: nothing to diff
        await pilot.press("escape")
        b = main.apply_tool(tool("metrics"), Selection(uoa=UoA(conv)))
        await settle(pilot)
        await focus(pilot, b)
        await pilot.press("g", "G", "d")
        await settle(pilot)
        (diff,) = [c for c in main.panel.cards if c.tool.id == "diff_pair"]
        assert diff.table.meta["a"] == skip
        assert diff.table.meta["b"] == conv  # the parent is a, in the logs' order
        kinds = set(diff.table.column("kind"))
        assert {"layer-added", "layer-removed"} <= kinds
        body = shown(diff.query_one(".card-body").query(Static).first())
        assert "+ conv_1  added Conv2D" in body and "− hidden_1  removed Dense" in body
        # the same from the command palette
        await pilot.press("ctrl+p", *chars("diff two models"))
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(pilot)
        pairs = [c for c in main.panel.cards if c.tool.id == "diff_pair"]
        assert len(pairs) == 2 and pairs[1].table.meta["b"] == conv
    # any pair selection (the IMACS cards' too) can be diffed; a lone model cannot
    pair = PairSelection(uoa=UoA(conv), other="dense_skip")
    assert tool("diff_pair") in applicable(pair, store)
    assert tool("diff_pair") not in applicable(Selection(uoa=UoA(conv)), store)


def test_merging_needs_axes_that_agree() -> None:
    """Charts merge when their queries agree in all but their units; weights and
    activations, tables and projections do not."""
    from types import SimpleNamespace

    from tinspect.tui.merge import plan

    store = Store(DIGITS)
    skip, vae = store.model("dense_skip").id, store.model("vae_25_75").id

    def card(tool_id: str, uoa: UoA):
        t, selection = tool(tool_id), Selection(uoa=uoa)
        return SimpleNamespace(
            tool=t, selection=selection, current_query=t.query(store, selection, None)
        )

    layer = card("histogram", UoA(skip, "hidden_1"))
    neuron = card("histogram", UoA(skip, "hidden_2", None, 3))
    kernel = card("histogram", UoA(skip, "hidden_1", "kernel"))
    stats = card("statistics", UoA(skip, "hidden_1"))
    projection = card("projection", UoA(skip, "hidden_1"))
    other_projection = card("projection", UoA(vae, "z_mean"))
    merges, left = plan([layer, kernel, neuron, stats, projection, other_projection])
    (merge,) = merges
    assert merge.cards == (layer, neuron)
    assert merge.tool.query(store, merge.selection, None).uoas == (
        "dense_skip/hidden_1",
        "dense_skip/hidden_2/#3",
    )
    assert len(left) == 4 and any("histogram of weights" in why for why in left)
    metrics = [card("metrics", UoA(m)) for m in (skip, vae)]
    (merge,) = plan(metrics)[0]
    assert len(merge.tool.query(store, merge.selection, None).uoas) == 2
    probabilities = [card("probabilities", UoA(m)) for m in (skip, store.model("conv").id)]
    (merge,) = plan(probabilities)[0]  # every merged model's predictions, not the first's
    assert merge.tool.query(store, merge.selection, None).uoas == ("dense_skip", "conv")


def test_merged_distributions_share_one_value_axis() -> None:
    from rich.console import Group as RichGroup

    from tinspect.query import run
    from tinspect.tui.widgets.bands import BandChart
    from tinspect.tui.widgets.views import ViewState, view_bands

    store = Store(DIGITS)
    query = (
        tool("distribution")
        .query(store, Selection(uoa=UoA(store.model("vae_25_75").id, "z_mean")), None)
        .replace(uoas=("vae_25_75/z_mean", "vae_90_10/z_mean"))
    )
    table = run(store, query)
    drawn = view_bands(table, ViewState())
    assert isinstance(drawn, RichGroup)
    charts = [r for r in drawn.renderables if isinstance(r, BandChart)]
    values = [v for v in table.column("value") if np.isfinite(v)]
    assert len(charts) == 2
    assert all(c.value_range == (min(values), max(values)) for c in charts)
    assert [c.footer for c in charts] == [False, True]  # one epoch axis, under the last
