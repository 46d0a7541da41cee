"""Snapshots of each level, the main widgets and the modals, driven by keys, at 100×30 and
80×24 on the fixtures.

Update after an intended change with ``pytest tests/test_snapshots.py --snapshot-update``
and look at the SVGs under ``tests/__snapshots__/`` before committing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tinspect.store import Store
from tinspect.tui.app import TinspectApp

from .conftest import ROOT
from .test_tui import loaded, started

SIZES = [(100, 30), (80, 24)]
KEY_NAMES = {"_": "underscore", " ": "space", "/": "slash", "-": "minus"}


@pytest.fixture(autouse=True)
def setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINSPECT_CACHE_DIR", "off")
    monkeypatch.setenv("TINSPECT_KEYMAP", "keymap.toml")  # relative: no checkout path on screen
    monkeypatch.chdir(ROOT)


def app() -> TinspectApp:
    return TinspectApp(Store("fixtures/digits"), refresh_seconds=0)


def search(path: str) -> list[str]:
    """``/`` then the unit path, then Enter: the search jumps to the unit."""
    return ["slash", *[KEY_NAMES.get(c, c) for c in path], "enter"]


def keys(*groups: list[str] | str, top: bool = True) -> Callable[..., Awaitable[None]]:
    """Press each group of keys, letting workers finish and cards load after each group."""

    async def run_before(pilot) -> None:
        await pilot.pause()
        await started(pilot)
        await loaded(pilot)
        for group in groups:
            await pilot.press(*([group] if isinstance(group, str) else group))
            await pilot.pause()
            await loaded(pilot)
            await pilot.pause()
        await pilot.pause(0.2)
        if top:  # scrolling to a new card depends on when charts got their height
            pilot.app.main.query_one("#widgets").scroll_home(animate=False)
        await pilot.pause()

    return run_before


def snapshot(snap_compare, size: tuple[int, int], *groups: list[str] | str) -> bool:
    return snap_compare(app(), terminal_size=size, run_before=keys(*groups))


sizes = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")


@sizes
def test_l3_experiments(snap_compare, size: tuple[int, int]) -> None:
    assert snapshot(snap_compare, size)


@sizes
def test_l2_layer_graph_with_skip(snap_compare, size: tuple[int, int]) -> None:
    assert snapshot(snap_compare, size, search("dense_skip/skip_add"))


@sizes
def test_l1_conv_layer(snap_compare, size: tuple[int, int]) -> None:
    assert snapshot(snap_compare, size, search("conv/conv_2"), "enter", ["down"] * 4)


@sizes
def test_histogram_and_metrics_widgets(snap_compare, size: tuple[int, int]) -> None:
    assert snapshot(
        snap_compare,
        size,
        search("dense_skip"),
        ["t", "m"],
        search("vae_25_75/z_mean"),
        ["t", "h"],
        "w",
    )


@sizes
def test_heatmap_confusion_and_samples(snap_compare, size: tuple[int, int]) -> None:
    assert snapshot(
        snap_compare,
        size,
        search("conv"),
        "escape",  # search lands on conv's L3 node
        ["t", "v"],
        ["t", "c"],
        search("vae_25_75/z_mean"),
        ["t", "n"],
        "w",
    )


@sizes
def test_toolbox_on_a_layer(snap_compare, size: tuple[int, int]) -> None:
    assert snapshot(snap_compare, size, ["enter", "down"], "t")


@sizes
def test_findings_screen(snap_compare, size: tuple[int, int]) -> None:
    assert snapshot(snap_compare, size, "F")


@sizes
def test_class_selector(snap_compare, size: tuple[int, int]) -> None:
    assert snapshot(snap_compare, size, "c", ["space", "down", "down", "space"])


@sizes
def test_help_screen(snap_compare, size: tuple[int, int]) -> None:
    assert snapshot(snap_compare, size, "question_mark")


@sizes
def test_command_palette(snap_compare, size: tuple[int, int]) -> None:
    async def run_before(pilot) -> None:
        from textual.command import CommandInput, CommandList

        await keys(["enter", "down"], "ctrl+p", ["h", "i", "s", "t"], top=False)(pilot)
        pilot.app.screen.query_one(CommandInput).cursor_blink = False  # a frozen cursor
        # The palette searches in tasks of its own: wait until its list has settled.
        last = -1
        for _ in range(50):
            await pilot.pause(0.1)
            count = pilot.app.screen.query_one(CommandList).option_count
            if count == last and count > 0:
                break
            last = count
        await pilot.pause(0.3)

    assert snap_compare(app(), terminal_size=size, run_before=run_before)


@sizes
def test_distribution_bands(snap_compare, size: tuple[int, int]) -> None:
    assert snapshot(snap_compare, size, search("vae_25_75/z_mean"), ["t", "d"], "w")


@sizes
def test_kernel_images(snap_compare, size: tuple[int, int]) -> None:
    assert snapshot(snap_compare, size, search("conv/conv_2"), ["enter", "down"], ["t", "i"], "w")


@sizes
def test_search_marks_hits_in_the_layer_graph(snap_compare, size: tuple[int, int]) -> None:
    assert snapshot(snap_compare, size, search("conv relu"))


@sizes
def test_localization_panel(snap_compare, size: tuple[int, int]) -> None:
    assert snapshot(snap_compare, size, "L", ["n", "space"])


async def _group_two_histograms(pilot) -> None:
    """Histograms of z_mean in the ReLU VAE and its fixed child, both put in group 1 (Tab
    to each card, g), by keys."""
    await keys(
        search("vae_25_75/z_mean"),
        ["t", "h"],
        search("vae_25_75_fixed/z_mean"),
        ["t", "h"],
        top=False,
    )(pilot)
    for card in list(pilot.app.main.panel.cards):
        for _ in range(30):
            if pilot.app.focused is card:
                break
            await pilot.press("tab")
        await pilot.press("g")
    await pilot.pause()


@sizes
def test_group_view_merged_on_a_common_scale(snap_compare, size: tuple[int, int]) -> None:
    async def run_before(pilot) -> None:
        await _group_two_histograms(pilot)
        await keys("G", "s", "M")(pilot)  # keys() waits for the merged card's data
        await pilot.pause(0.3)

    assert snap_compare(app(), terminal_size=size, run_before=run_before)


@sizes
def test_diff_of_a_pair_from_the_group(snap_compare, size: tuple[int, int]) -> None:
    async def run_before(pilot) -> None:
        await _group_two_histograms(pilot)
        await keys("G", "d", "w", top=False)(pilot)
        pilot.app.main.query_one("#widgets").scroll_home(animate=False)
        await pilot.pause(0.3)

    assert snap_compare(app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize(
    ("size", "wide"), [((100, 30), []), ((80, 24), ["w"])], ids=["100x30", "80x24-wide"]
)
def test_imacs_cluster_confusion_side_by_side(
    snap_compare, size: tuple[int, int], wide: list[str]
) -> None:
    """Class 3 on the planted-shortcut pair, picked from the shortcut model's node: the top
    cluster's two confusion matrices side by side (at 80 columns with the wide panel)."""
    shortcut = TinspectApp(Store("fixtures/shortcut"), refresh_seconds=0)
    run_before = keys(
        "down", "c", ["down", "down", "down", "space", "enter"], "t", "C", "enter", *wide
    )
    assert snap_compare(shortcut, terminal_size=size, run_before=run_before)
