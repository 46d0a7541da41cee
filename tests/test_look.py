"""Charts, image views, findings and search as a user sees them: the pictures' contents."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from tinspect.analysis.find import find_units
from tinspect.query import Query, run
from tinspect.store import Store, UoA
from tinspect.tui.app import TinspectApp
from tinspect.tui.widgets.bands import BandChart, integer_ticks, number
from tinspect.tui.widgets.images import channel_maps, from_rows
from tinspect.tui.widgets.views import ViewState, view_images, view_kernels

from .conftest import FIXTURES, ROOT
from .test_tui import chars, settle


@pytest.fixture(autouse=True)
def setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINSPECT_CACHE_DIR", "off")
    monkeypatch.setenv("TINSPECT_KEYMAP", "keymap.toml")
    monkeypatch.chdir(ROOT)


def text_of(renderable, width: int = 60) -> str:
    console = Console(width=width, color_system=None, record=True)
    console.print(renderable)
    return console.export_text()


def test_epoch_ticks_are_integers_with_both_ends() -> None:
    assert integer_ticks(1, 20, 40) == [1, 5, 10, 15, 20]
    assert integer_ticks(0, 4, 40) == [0, 1, 2, 3, 4]
    ticks = integer_ticks(1, 300, 30)
    assert ticks[0] == 1 and ticks[-1] == 300 and all(isinstance(t, int) for t in ticks)
    assert len(ticks) <= 7


def test_numbers_have_one_format() -> None:
    assert [number(v) for v in (0.0, 1663.0, 0.72413, 2.5e-5, 123456.0, -3.0)] == [
        "0", "1663", "0.724", "2.50e-5", "1.23e5", "-3",
    ]  # fmt: skip


def test_band_chart_nests_the_bands_around_the_median() -> None:
    # Symmetric bands around 0 that widen over 5 epochs: every band must show, inner inside
    # outer, the median on the middle row, and the epochs labelled as integers.
    epochs = [0, 1, 2, 3, 4]
    widths = np.array([1.0, 2, 3, 4, 5])
    values = {q: list(widths * z) for q, z in ((0.01, -3), (0.05, -2), (0.25, -1), (0.5, 0),
                                                 (0.75, 1), (0.95, 2), (0.99, 3))}  # fmt: skip
    lines = text_of(BandChart(epochs, values, height=13)).splitlines()
    plot = [line.split("┤", 1)[-1].split("│", 1)[-1] for line in lines[:13]]
    assert all(c == "━" for c in plot[6].strip())  # the median row, all along
    last = [row[-2] for row in plot]  # the last epoch's column, top to bottom
    assert last[6] == "━" and last[5] == "▓" and last[0] in "░ "
    shades = "".join(last)
    assert shades.index("░") < shades.index("▒") < shades.index("▓")  # outer → inner
    assert lines[14].split() == ["0", "1", "2", "3", "4"]  # integer epochs
    assert "░ 1–99" in lines[15] and "▓ 25–75 %" in lines[15] and "━ median" in lines[15]


def test_kernel_images_page_through_epochs_then_output_channels() -> None:
    store = Store(FIXTURES / "digits")
    table = run(store, Query(("conv/conv_2/kernel",), data="weights", step="raw", epochs="all"))
    state = ViewState(page=-1)
    text = text_of(view_kernels(table, state), width=100)
    assert state.title.startswith("epoch 3, out 0–7 of 16")
    assert state.pages == 4 * 2  # 4 epochs × 2 groups of 8 output channels
    assert "3×3 taps" in text and text.count("▀") == 3 * 2 * 8 * 8  # 3 cols × 2 rows × 64
    state.page += 1
    view_kernels(table, state)
    assert state.title.startswith("epoch 0, out 8–15")


def test_channel_maps_follow_the_channel_axis_of_either_layout() -> None:
    hwc = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)
    last = channel_maps(hwc, {"data_format": "channels_last"})
    first = channel_maps(np.moveaxis(hwc, -1, 0), {"data_format": "channels_first"})
    assert len(last) == len(first) == 4
    for a, b in zip(last, first, strict=True):
        np.testing.assert_array_equal(a, b)
    rebuilt = from_rows(["0:1", "1:0", "0:0", "1:1"], [1.0, 2.0, 0.0, 3.0])
    np.testing.assert_array_equal(rebuilt, [[0.0, 1.0], [2.0, 3.0]])


def test_reconstructions_show_input_output_and_difference() -> None:
    store = Store(FIXTURES / "digits")
    query = Query(("vae_25_75",), data="samples", step="raw", epochs="last", limit=64 * 6)
    samples = run(store, query)
    predictions = run(store, query.replace(data="predictions", limit=None))
    by_sample: dict[int, list[float]] = {}
    for s, v in zip(predictions.column("sample"), predictions.column("value"), strict=True):
        by_sample.setdefault(s, []).append(v)
    state = ViewState(page=0, extra={"predictions": {k: np.array(v) for k, v in by_sample.items()}})
    text = text_of(view_images(samples, state), width=100)
    assert text.count("input") == text.count("output") == text.count("|Δ|") >= 2


def test_search_finds_kinds_and_structures_not_model_names() -> None:
    store = Store(FIXTURES / "digits")
    skip = find_units(store, "skip")
    assert [h.path for h in skip] == ["dense_skip/hidden_1"]  # the skip's source layer only
    convs = find_units(store, "conv relu")
    assert {h.path for h in convs} == {"conv/conv_1", "conv/conv_2"}  # no Dense of model conv
    named = find_units(store, "z_mean dense relu")
    assert [h.path for h in named] == ["vae_25_75/z_mean"]
    assert [h.path for h in find_units(store, "model:skip")] == ["dense_skip"]
    assert find_units(store, "conv/conv_2")[0].path == "conv/conv_2"
    assert find_units(store, "") == []


def all_nodes(node):
    for child in node.children:
        yield child
        yield from all_nodes(child)


def metrics_card(app: TinspectApp):
    return next(c for c in app.main.panel.cards if c.tool.id == "metrics")


async def test_findings_mark_their_epochs_on_the_metrics_chart_and_enter_lists_them() -> None:
    from tinspect.tui.screens.guide import FindingsScreen

    app = TinspectApp(Store("fixtures/digits"), refresh_seconds=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *chars("vae_25_75"), "enter")
        await settle(pilot)
        await pilot.press("escape", "t", "m")
        await settle(pilot)
        card = metrics_card(app)
        assert "red: one-sided-latent at epochs 4" in card.state.title
        card.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, FindingsScreen)
        assert {f.uoa for f in app.screen.findings} == {"vae_25_75/z_mean", "vae_25_75/z_log_var"}


async def test_findings_screen_shows_measured_values_and_the_epoch_timeline() -> None:
    app = TinspectApp(Store("fixtures/digits"), refresh_seconds=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("F")
        await pilot.pause()
        timeline = str(app.screen.query_one("#findings-timeline").render())
        assert "one-sided-latent" in timeline and "●" in timeline
        options = app.screen.query_one("#findings-list")
        first = text_of(options.get_option_at_index(0).prompt, width=120)
        assert "measured: activation=relu  min=0  zero_fraction=" in first


async def test_l1_of_a_convolution_shows_channel_maps_and_kernel_taps() -> None:
    app = TinspectApp(Store("fixtures/digits"), refresh_seconds=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("slash", *chars("conv/conv_2"), "enter", "enter")
        await settle(pilot)
        maps = text_of(app.main.query_one("#maps").content, width=80)
        assert "mean activation map per channel" in maps
        assert "#0" in maps and "#15" in maps
        weights = str(app.main.query_one("#weights").render())
        assert "tap (" in weights and "(kernel row,col)" in weights
        await pilot.press("c", "space", "down", "space", "enter")  # classes 0 and 1
        await settle(pilot)
        maps = text_of(app.main.query_one("#maps").content, width=80)
        assert "average of classes 0,1" in maps and "class 1" in maps


async def test_search_marks_hits_in_the_levels_and_an_empty_search_clears() -> None:
    app = TinspectApp(Store("fixtures/digits"), refresh_seconds=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *chars("conv relu"), "enter")
        await settle(pilot)
        main = app.main
        assert main.place.level == 2 and main.selection.uoa.layer == "conv_1"
        graph = main.model_view.graph
        marked = [graph.get_option_at_index(i) for i in range(graph.option_count)]
        marked = [o.id for o in marked if "◀" in str(o.prompt)]
        assert marked == ["conv_1", "conv_2"]
        await pilot.press("escape")
        await settle(pilot)
        labels = [str(n.label) for n in all_nodes(main.tree.root)]
        assert [label.split()[1] for label in labels if "◀" in label] == ["conv"]
        assert any("◀2" in label for label in labels)
        await pilot.press("slash", "ctrl+a", "ctrl+k", "enter")  # clear the query
        await settle(pilot)
        assert main.guides.hits == frozenset()


async def test_localization_panel_chooses_the_badges() -> None:
    app = TinspectApp(Store("fixtures/digits"), refresh_seconds=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        skip = app.store.model("dense_skip").id
        assert "skip" in app.main.guides.badges_for(UoA(skip))
        await pilot.press("L", "n", "space", "enter")  # none, then the first kind: conv
        await settle(pilot)
        assert app.main.guides.badge_kinds == frozenset({"conv"})
        assert "skip" not in app.main.guides.badges_for(UoA(skip))
        conv = app.store.model("conv").id
        assert "conv" in app.main.guides.badges_for(UoA(conv))
        await pilot.press("slash", *chars("dense_skip/hidden_1"), "enter")  # its L2 row
        await settle(pilot)
        graph = app.main.model_view.graph
        row = str(graph.get_option_at_index(graph.highlighted).prompt)
        assert "hidden_1" in row and "skip" not in row.split("hidden_1", 1)[1]
