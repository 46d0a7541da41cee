"""Thousands of models: the L3 tree stays lazy, the rest streams in, ``/`` filters models.

The logdirs here are clones of the committed fixtures under fresh ids (checkpoints hard
linked), a few hundred models: enough for every lazy path to be taken, seconds to build.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import uuid
from pathlib import Path

import pytest
from textual.widgets import OptionList

from tinspect import format as fmt
from tinspect.store import Store
from tinspect.store.cache import Cache
from tinspect.tui.app import TinspectApp
from tinspect.tui.widgets.experiments import EXPANDED_LINES

from .conftest import FIXTURES
from .test_tui import chars, crumbs, settle


def clone_logdir(target: Path, copies: int) -> Path:
    """``copies`` clones of fixtures/digits (6 models, 2 experiments each) under new ids and
    names ``NAME_cK``; parents re-mapped within each clone."""
    sources = sorted(p for p in (FIXTURES / "digits").iterdir() if (p / fmt.MODEL_JSON).is_file())
    headers = {p: json.loads((p / fmt.MODEL_JSON).read_text()) for p in sources}
    for copy in range(copies):
        ids = {
            h["header"]["id"]: uuid.UUID(int=copy * 100 + i + 1).hex
            for i, h in enumerate(headers.values())
        }
        for source, data in headers.items():
            clone = json.loads(json.dumps(data))
            header = clone["header"]
            header["id"] = ids[header["id"]]
            header["parents"] = [ids.get(p, p) for p in header.get("parents", [])]
            header["name"] = f"{header['name']}_c{copy:02d}"
            directory = target / fmt.model_dir_name(header["name"], header["id"])
            (directory / fmt.CHECKPOINTS_DIR).mkdir(parents=True)
            (directory / fmt.MODEL_JSON).write_text(json.dumps(clone))
            shutil.copyfile(source / fmt.METRICS_JSONL, directory / fmt.METRICS_JSONL)
            for checkpoint in (source / fmt.CHECKPOINTS_DIR).iterdir():
                os.link(checkpoint, directory / fmt.CHECKPOINTS_DIR / checkpoint.name)
    past = time.time_ns() - 60 * 10**9  # written a minute ago: identities the index trusts
    for path in [target, *target.rglob("*")]:
        os.utime(path, ns=(past, past), follow_symlinks=False)
    return target


@pytest.fixture(autouse=True)
def no_disk_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINSPECT_CACHE_DIR", "off")


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clone_logdir(tmp_path_factory.mktemp("many") / "logs", 40)  # 240 models, 80 trees


def experiment_nodes(app: TinspectApp) -> list:
    return list(app.main.tree.root.children)


async def test_experiments_beyond_two_screenfuls_start_collapsed_and_fill_when_opened(
    many: Path,
) -> None:
    app = TinspectApp(Store(many, cache=Cache(None)), refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        nodes = experiment_nodes(app)
        assert len(nodes) == 80
        filled = [n for n in nodes if n.children]
        # About two screenfuls of lines, not 240 model nodes.
        assert filled and len(filled) < len(nodes) // 4
        assert sum(1 + len(list(_all(n))) for n in filled) <= EXPANDED_LINES + 4
        closed = nodes[len(filled)]
        assert not closed.is_expanded and not closed.children and closed.allow_expand
        tree = app.main.tree
        tree.focus()
        tree.move_cursor(closed)
        await pilot.press("space")  # open it: its models are added now
        await settle(pilot)
        assert closed.is_expanded and closed.children
        names = [str(n.label) for n in _all(closed)]
        assert any(" vae_90_10_c" in name or " dense_baseline_c" in name for name in names)
        await pilot.press("down", "enter")  # and they work like the others
        await settle(pilot)
        assert app.main.place.level == 2 and app.main.errors == []


def _all(node):
    for child in node.children:
        yield child
        yield from _all(child)


async def test_the_first_screen_does_not_wait_for_every_model(many: Path) -> None:
    store = Store(many, cache=Cache(None), budget=0.0)  # only a first screenful now
    assert 0 < len(store.models) < 240 and store.pending == 240 - len(store.models)
    app = TinspectApp(store, refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("down", "down")  # the viewer answers while the loader reads
        await settle(pilot)
        assert store.pending == 0 and len(store.models) == 240
        assert len(experiment_nodes(app)) == 80
        status = str(app.main.query_one("#status").render())
        assert "240 models" in status and "all 240 models read" in status
        assert app.main.errors == []


async def test_slash_at_l3_filters_models_by_hyperparameter_and_clears() -> None:
    app = TinspectApp(Store(FIXTURES / "digits", cache=Cache(None)), refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *chars("kl_weight>0.5"), "enter")
        await settle(pilot)
        main = app.main
        labels = [str(n.label) for n in _all(main.tree.root)]
        models = [label.split()[1] for label in labels if label.startswith(("●", "○"))]
        assert sorted(models) == ["vae_25_75", "vae_25_75_fixed", "vae_90_10"]
        context = [label.split()[1] for label in labels if label.startswith("○")]
        assert context == ["vae_90_10"]  # the parent that places them, not a match
        assert "2 of 6 models" in str(main.query_one("#status").render())
        assert main.place.level == 3
        chosen = app.store.models[main.selection.uoa.model].name
        assert chosen == "vae_25_75" and chosen in crumbs(app)  # the cursor on the first match
        await pilot.press("slash", "ctrl+a", "ctrl+k", "enter")
        await settle(pilot)
        labels = [str(n.label) for n in _all(main.tree.root)]
        assert sum(label.startswith("●") for label in labels) == 6
        assert "filter cleared" in str(main.query_one("#status").render())


async def test_slash_at_l3_still_jumps_to_an_exact_unit_path() -> None:
    app = TinspectApp(Store(FIXTURES / "digits", cache=Cache(None)), refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *chars("vae_25_75"), "enter")
        await settle(pilot)
        main = app.main  # the exact model comes before the filter option: a jump
        assert main.tree.shown is None
        assert app.store.models[main.selection.uoa.model].name == "vae_25_75"
        await pilot.press("slash", *chars("vae_25_75"), "down", "down", "enter")  # the filter
        await settle(pilot)
        assert main.tree.shown == {
            m.id for m in app.store.models.values() if m.name.startswith("vae_25_75")
        }


def test_ls_streams_rows_as_models_are_read_each_after_its_parents(
    many: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tinspect import cli

    monkeypatch.setattr(cli, "STREAM_SLICE_SECONDS", 0.0)  # 40 models a slice: 6 slices
    batches: list[int] = []
    real_rows = cli.ls_rows
    monkeypatch.setattr(
        cli, "ls_rows", lambda *a, **k: (r := real_rows(*a, **k), batches.append(len(r[1])))[0]
    )
    cli._stream_ls(many, "jsonl", header=True)
    streamed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(batches) >= 3 and sum(batches) == 240  # rows left in several batches
    monkeypatch.setattr(cli, "ls_rows", real_rows)
    whole = io.StringIO()
    cli._write_jsonl(*real_rows(Store(many, cache=Cache(None))), whole)
    expected = [json.loads(line) for line in whole.getvalue().splitlines()]
    assert {r["id"]: r for r in streamed} == {r["id"]: r for r in expected}  # every field
    position = {r["name"]: i for i, r in enumerate(streamed)}
    for row in streamed:  # a row comes after the rows of its parents
        assert all(position[p] < position[row["name"]] for p in row["parents"].split())


def test_ls_csv_through_a_pipe_is_the_csv_written_to_a_file(many: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    command = [sys.executable, "-m", "tinspect.cli", "ls", str(many), "--csv"]
    env = {**os.environ, "TINSPECT_CACHE_DIR": str(tmp_path / "cache")}
    piped = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    target = tmp_path / "ls.csv"
    with open(target, "w") as f:
        subprocess.run(command, stdout=f, env=env, check=True)
    assert piped == target.read_text() and len(piped.splitlines()) == 241


@pytest.mark.parametrize("damage", ["none", "head", "whole"])
def test_a_viewer_start_reads_the_index_head_then_the_rest_then_checks(
    many: Path, tmp_path: Path, damage: str
) -> None:
    from tinspect.store import index as header_index

    cache = tmp_path / "cache"
    whole = Store(many, cache=Cache(cache))  # a first open writes the index and its head
    path = header_index.index_path(cache, many)
    head = header_index.head_path(path)
    assert len(header_index.read_raw(head)) == header_index.HEAD_ENTRIES  # of 240
    if damage == "head":
        head.write_bytes(head.read_bytes()[:-10])
    elif damage == "whole":  # another index than the head was written with
        data = header_index.read_raw(path)
        data.pop(next(iter(data)))
        header_index.write_raw(path, many, data)
    store = Store(many, cache=Cache(cache), budget=0.0)
    if damage == "head":  # no head: the whole index, still without a walk
        assert store.pending == 240 - len(store.models)
    else:
        assert len(store.models) == header_index.HEAD_ENTRIES and store.pending == 40
    assert store.unverified or store.pending
    assert all(not m.loaded for m in store.models.values())
    while store.pending or store.unverified:
        store.refresh(budget=0.0)
    assert sorted(m.id for m in store.models.values()) == sorted(whole.models)
    assert listing_of(store) == listing_of(whole)


def listing_of(store: Store) -> list[list]:
    from tinspect.cli import ls_rows

    return ls_rows(store)[1]


async def test_the_loader_starts_when_the_first_screen_is_complete(
    many: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The footer's keys drawn (``KeysDrawn``) start the loader, not the fallback timer."""
    from tinspect.tui.screens import main
    from tinspect.tui.widgets.bars import KeysFooter

    monkeypatch.setattr(main, "BACKGROUND_START_SECONDS", 600.0)
    store = Store(many, cache=Cache(None), budget=0.0)
    assert store.pending
    app = TinspectApp(store, refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(200):  # at most ~10 s; the fallback would take 600
            await pilot.pause(0.05)
            if not store.pending:
                break
        await settle(pilot)
        assert app.main.query_one(KeysFooter).children  # the keys are drawn
        assert store.pending == 0 and len(store.models) == 240


def test_a_walk_keeps_only_the_headline_of_the_models_it_parsed(many: Path) -> None:
    """10,000 parsed model.json files held 600 MB: a walk releases them once read, and
    what L3 and ls show, or a screen asks for later, is what the files say."""
    from tinspect.store.model import ModelLogs
    from tinspect.store.problems import ProblemLog

    store = Store(many, cache=Cache(None))
    assert len(store.models) == 240
    assert all(not m.loaded and m._metrics is None for m in store.models.values())
    for model in list(store.models.values())[:12]:
        fresh = ModelLogs(model.directory, many)
        fresh.refresh(ProblemLog())
        assert model.total_params == fresh.total_params > 0
        assert model.layer_classes == fresh.layer_classes
        assert model.last_metrics() == fresh.last_metrics() and model.n_metric_rows > 0
        assert [layer.name for layer in model.layers] == [layer.name for layer in fresh.layers]
        assert model.metrics == fresh.metrics and model.info == fresh.info
        assert model.loaded  # read back on first use, kept from then on
    store.refresh()  # an unchanged logdir: nothing re-read, nothing reported
    assert not store.refresh()


async def test_findings_say_which_models_were_checked(many: Path) -> None:
    """The viewer checks the models it has shown; F says so while that is not all."""
    from tinspect.tui.screens.guide import FindingsScreen

    app = TinspectApp(Store(many, cache=Cache(None)), refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        shown = len(app.main.tree.shown_models())
        assert 0 < shown < 240
        await pilot.press("F")
        assert isinstance(app.screen, FindingsScreen)
        scope = str(app.screen.query_one("#findings-scope").render())
        assert f"the {shown} models shown so far, of 240 " in scope and "tinspect check" in scope


def test_a_layer_search_reads_every_model_but_keeps_none(many: Path) -> None:
    from tinspect.analysis.find import find_units

    store = Store(many, cache=Cache(None))
    hits = find_units(store, "dense")  # a kind: every model's layers
    named = find_units(store, "z_mean")  # a name
    assert len({h.model_id for h in hits}) > 100 and named
    assert not any(m.loaded for m in store.models.values())


async def test_enter_in_a_layer_search_applies_when_the_search_is_done(
    many: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Enter before a layer search is done does not run it on the UI thread: the modal
    says so and goes to the first hit when the worker finishes."""
    import threading

    from tinspect.analysis import find

    gate, real = threading.Event(), find.find_units

    def slow_find_units(store: Store, query: str) -> list:
        gate.wait(30)  # a search over thousands of models, still running
        return real(store, query)

    monkeypatch.setattr(find, "find_units", slow_find_units)
    app = TinspectApp(Store(many, cache=Cache(None)), refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("enter")  # L2 of the first model: a search there is of layers only
        await settle(pilot)
        assert app.main.place.level == 2
        await pilot.press("slash", *chars("z_mean"), "enter")
        await pilot.pause()
        results = app.screen.query_one("#search-results", OptionList)  # still open, answering
        assert "searching" in str(results.get_option_at_index(0).prompt)
        gate.set()
        await settle(pilot)
        assert app.screen is app.main
        assert app.main.selection.uoa is not None and app.main.selection.uoa.layer == "z_mean"
        # Loaded: the models the screen showed (guides, the two opened), not all 240.
        loaded = {m.id for m in app.store.models.values() if m.loaded}
        assert len(loaded - set(app.main._guided)) <= 2 and len(loaded) < 120
