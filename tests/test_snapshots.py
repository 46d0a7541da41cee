"""Snapshots of each level and the main widgets at 100×30 and 80×24 on the fixtures.

Update after an intended change with ``pytest tests/test_snapshots.py --snapshot-update``
and look at the SVGs under ``tests/__snapshots__/`` before committing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tinspect.store import Store, UoA
from tinspect.tui.app import TinspectApp
from tinspect.tui.selection import Selection
from tinspect.tui.tools import BY_ID

from .conftest import ROOT

SIZES = [(100, 30), (80, 24)]


@pytest.fixture(autouse=True)
def setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINSPECT_CACHE_DIR", "off")
    monkeypatch.chdir(ROOT)


def app() -> TinspectApp:
    return TinspectApp(Store("fixtures/digits"), refresh_seconds=0)


def steps(*actions: Callable[[TinspectApp], object]) -> Callable[..., Awaitable[None]]:
    async def run_before(pilot) -> None:
        await pilot.pause()
        for action in actions:
            action(pilot.app)
            await pilot.pause()
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.2)
        # Scrolling to a new card depends on when charts got their height: start at the top.
        pilot.app.query_one("#widgets").scroll_home(animate=False)
        await pilot.pause()

    return run_before


def unit(
    name: str, layer: str | None = None, variable: str | None = None, neuron: int | None = None
):
    return lambda a: Selection(uoa=UoA(a.store.model(name).id, layer, variable, neuron))


def go(
    name: str, layer: str | None = None, neuron: int | None = None
) -> Callable[[TinspectApp], object]:
    return lambda a: a.jump_to(unit(name, layer, None, neuron)(a))


def tool(
    tool_id: str, target: Callable[[TinspectApp], Selection]
) -> Callable[[TinspectApp], object]:
    return lambda a: a.apply_tool(BY_ID[tool_id], target(a))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_l3_experiments(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(app(), terminal_size=size, run_before=steps())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_l2_layer_graph_with_skip(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(app(), terminal_size=size, run_before=steps(go("dense_skip", "skip_add")))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_l1_conv_layer(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(app(), terminal_size=size, run_before=steps(go("conv", "conv_2", 3)))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_histogram_and_metrics_widgets(snap_compare, size: tuple[int, int]) -> None:
    run_before = steps(
        tool("metrics", unit("dense_skip")),
        tool("histogram", unit("vae_25_75", "z_mean")),
        lambda a: a.action_toggle_widgets(),
    )
    assert snap_compare(app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_heatmap_confusion_and_samples(snap_compare, size: tuple[int, int]) -> None:
    run_before = steps(
        tool("samples", unit("conv")),
        tool("confusion", unit("conv")),
        tool("class_means", unit("vae_25_75", "z_mean")),
        lambda a: a.action_toggle_widgets(),
    )
    assert snap_compare(app(), terminal_size=size, run_before=run_before)
