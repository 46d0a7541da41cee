"""The main screen: the inspection panel's three levels beside the persistent widget panel.

It owns the navigation (``Place``: level, model, layer; the selected unit), the class
selection and the ``Guides`` (badges, findings, interestingness), and passes them down:
``guides`` and ``class_selection`` are reactive and data-bound to the level widgets, the
widget panel hands them to the cards. Widgets post intents up (``tui.messages``); the
handlers here route them with ``@on(Message, selector)``. Store changes arrive from the
refresh worker as ``StoreChanged``; everything that reads a checkpoint runs in a worker.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import ContentSwitcher, OptionList
from textual.worker import get_current_worker

from tinspect.query import write_table
from tinspect.store import Changes, DataError, Store, UoA, UoAError
from tinspect.tui.errors import ReportsWorkerErrors
from tinspect.tui.messages import (
    ExportRequested,
    FindingsRequested,
    GuidesComputed,
    InterestComputed,
    JumpRequested,
    KeysDrawn,
    ModelGuides,
    ModelsShown,
    OpenRequested,
    SamplesChosen,
    SelectionChanged,
    StatusMessage,
    StoreChanged,
)
from tinspect.tui.palette import ModelColours
from tinspect.tui.selection import Selection
from tinspect.tui.state import Guides, Place
from tinspect.tui.tools import Tool, applicable
from tinspect.tui.widgets.bars import Crumbs, KeysFooter, StatusLine
from tinspect.tui.widgets.card import WidgetCard
from tinspect.tui.widgets.experiments import ExperimentTree
from tinspect.tui.widgets.graph import ModelView
from tinspect.tui.widgets.layer import LayerDetail
from tinspect.tui.widgets.panel import WidgetPanel

LEVEL_IDS = {3: "experiments", 2: "model-view", 1: "layer"}
#: Seconds of parsing per slice of the start-up loader (one store change, one tree rebuild).
LOAD_SLICE_SECONDS = 0.3
#: Seconds of checks between two updates of the findings the viewer shows.
GUIDES_BATCH_SECONDS = 0.5
#: Up to this many models, Enter in a search finds every hit on the spot (a few ms); beyond,
#: the search's worker finishes it (a layer search reads every model.json: seconds).
SEARCH_ON_THE_SPOT_MODELS = 200
#: At the latest, seconds after mount to start the loader and guides (normally they start
#: when the footer's keys are drawn, ``KeysDrawn``).
BACKGROUND_START_SECONDS = 1.0


class MainScreen(ReportsWorkerErrors, Screen[None]):
    """Levels L3 → L2 → L1 on the left, widget cards on the right."""

    BINDINGS = [
        Binding("backspace,escape", "up", "up", id="nav.up", tooltip="up one level (L1 → L2 → L3)"),
        Binding(
            "t", "toolbox", "tools", id="tools", tooltip="toolbox: a tool for the selected unit"
        ),
        Binding(
            "c", "classes", "classes", id="classes", tooltip="class selection (L1 and ◆ widgets)"
        ),
        Binding(
            "S",
            "samples",
            "samples",
            id="samples",
            tooltip="sample selection (◇ widgets): misclassified, class:3, confusion:3,8 ...",
        ),
        Binding(
            "x", "export", "export", id="export", tooltip="export the focused widget (CSV/JSON)"
        ),
        Binding(
            "slash", "search", "search", id="search", tooltip="search layers, kinds and structures"
        ),
        Binding("w", "toggle_widgets", "widgets", id="widgets", tooltip="widen the widget panel"),
        Binding(
            "G", "group", "group", show=False, id="group", tooltip="the current group side by side"
        ),
        Binding(
            "N",
            "new_group",
            "new group",
            show=False,
            id="group.new",
            tooltip="name a new group; g on widgets then adds them to it",
        ),
        Binding(
            "M",
            "merge",
            "merge",
            show=False,
            id="merge",
            tooltip="merge the group's charts whose axes agree",
        ),
        Binding(
            "P",
            "problems",
            "problems",
            show=False,
            id="problems",
            tooltip="problems in the logs and the viewer",
        ),
        Binding(
            "L",
            "localization",
            "badges",
            show=False,
            id="localization",
            tooltip="localization: which kinds get badges",
        ),
        Binding(
            "F", "findings", "findings", id="findings", tooltip="findings of the silent-bug checks"
        ),
        Binding("i", "interest", "interest", id="interest", tooltip="next interestingness measure"),
        Binding(
            "I",
            "ranking",
            "ranking",
            show=False,
            id="ranking",
            tooltip="most abnormal units for the measure",
        ),
        Binding("j", "cursor('down')", "down", show=False, id="nav.down", tooltip="cursor down"),
        Binding("k", "cursor('up')", "up", show=False, id="nav.cursor-up", tooltip="cursor up"),
        Binding("l", "descend", "descend", show=False, id="nav.descend", tooltip="descend a level"),
        Binding("h", "up", "up", show=False, id="nav.up-h", tooltip="up one level"),
    ]

    guides: reactive[Guides] = reactive(Guides, init=False, always_update=True)
    class_selection: reactive[tuple[int, ...] | None] = reactive(None, init=False)
    #: The sample selection (``query.samples`` grammar), None for every sample.
    sample_selection: reactive[str | None] = reactive(None, init=False)

    def __init__(
        self, store: Store, refresh_seconds: float = 2.0, notices: tuple[str, ...] = ()
    ) -> None:
        super().__init__(id="main-screen")
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.colours = ModelColours()
        for model in store.ordered_models():
            self.colours(model.id)
        self.place = Place()
        self.selection = Selection()
        self.message = ""
        self._started = False  # background work (start_background) running
        #: Guides computed so far, by model id (the guides worker fills in shown models).
        self._guided: dict[str, ModelGuides] = {}
        #: Unexpected failures of workers (the App routes them here), listed by P.
        self.errors: list[str] = list(notices)
        #: Display names as last seen, to name a model after it is removed.
        self.names = {m.id: store.display_name(m) for m in store.models.values()}

    # --- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Crumbs(id="crumbs")
        with Horizontal(id="main"):
            with ContentSwitcher(initial="experiments", id="inspection"):
                yield ExperimentTree(self.store, self.colours).data_bind(MainScreen.guides)
                yield ModelView(self.store, self.colours).data_bind(MainScreen.guides)
                yield LayerDetail(self.store, self.colours).data_bind(
                    MainScreen.guides, MainScreen.class_selection
                )
            yield WidgetPanel(id="widgets")
        yield StatusLine(id="status")
        yield KeysFooter()

    @property
    def tree(self) -> ExperimentTree:
        return self.query_one(ExperimentTree)

    @property
    def model_view(self) -> ModelView:
        return self.query_one(ModelView)

    @property
    def layer_detail(self) -> LayerDetail:
        return self.query_one(LayerDetail)

    @property
    def panel(self) -> WidgetPanel:
        return self.query_one(WidgetPanel)

    def on_mount(self) -> None:
        first = self.store.ordered_models()[:1]
        self.selection = Selection(uoa=UoA(first[0].id)) if first else Selection()
        self.tree.rebuild(select=self.selection)
        self.tree.focus()
        self.update_crumbs()
        self.status()
        # The background work starts once the first screen is complete (its footer's keys
        # drawn: ``KeysDrawn``), at the latest after this long.
        self.set_timer(BACKGROUND_START_SECONDS, self.start_background)

    @property
    def background_started(self) -> bool:
        """Whether the loader and guides have started (tests wait for it, then for them)."""
        return self._started

    @on(KeysDrawn)
    def start_background(self) -> None:
        """Start what waits for the first screen: reading the models it did not wait for,
        the periodic refresh, the guides (their threads would take the GIL from its last
        frames)."""
        if self._started:
            return
        self._started = True
        if self.store.pending or self.store.unverified:
            self.load_rest()
        if self.refresh_seconds > 0:
            self.set_interval(self.refresh_seconds, self.refresh_store)
        self.load_guides()

    # --- state passed down ----------------------------------------------------------------------
    def watch_guides(self, guides: Guides) -> None:
        self.panel.set_findings(guides.findings)

    def watch_class_selection(self, classes: tuple[int, ...] | None) -> None:
        self.panel.set_classes(classes)
        self.update_crumbs()

    def watch_sample_selection(self, samples: str | None) -> None:
        self.panel.set_samples(samples)
        self.update_crumbs()
        self.status(f"samples: {samples}" if samples else "samples: all")

    def update_crumbs(self) -> None:
        self.query_one(Crumbs).show(
            self.store,
            self.colours,
            self.place.level,
            self.selection,
            self.place.model_id,
            self.class_selection,
            self.sample_selection,
        )

    def status(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        self.query_one(StatusLine).show(
            self.store, self.message, len(self.errors), len(self.guides.findings)
        )

    def worker_failed(self, what: str, error: BaseException | None, line: str = "") -> None:
        """An unexpected error in a worker: one status line, listed by P; the viewer lives."""
        if not line:
            line = f"{what} failed: {type(error).__name__}: {error}" if error else f"{what} failed"
        self.errors.append(line)
        self.status(line)

    @on(StatusMessage)
    def _status_message(self, message: StatusMessage) -> None:
        message.stop()
        self.status(message.text)

    # --- guides: findings, structure badges, interestingness -----------------------------------
    @work(thread=True, exclusive=True, group="guides", exit_on_error=False)
    def load_guides(self) -> None:
        """Structure badges and parent deltas (headers only), then the checks, for the
        models the L3 tree shows that have none yet, off the UI thread; cancelled between
        models (quitting does not wait for it). A logdir of thousands of models thus pays
        for the experiments one opens, not for every model.json and checkpoint."""
        from tinspect.analysis.diagnose import diagnose_model
        from tinspect.analysis.diff import parent_deltas
        from tinspect.analysis.localize import badges

        worker = get_current_worker()
        shown = set(self.app.call_from_thread(self.tree.shown_models))
        done = set(self.app.call_from_thread(lambda: list(self._guided)))
        todo = [m for m in self.store.ordered_models() if m.id in shown and m.id not in done]
        if not todo:
            return
        facts: dict[str, ModelGuides] = {}
        for model in todo:
            if worker.is_cancelled:
                return
            try:
                structure = badges(self.store, [model])
                delta = parent_deltas(self.store, [model]).get(model.id)
            except (DataError, UoAError, KeyError):
                continue  # removed since the snapshot
            facts[model.id] = ModelGuides(structure, delta)
        self.post_message(GuidesComputed(dict(facts)))  # badges first: they cost no checkpoint
        batch: dict[str, ModelGuides] = {}
        started = time.perf_counter()
        for model_id, known in facts.items():
            if worker.is_cancelled:
                return
            try:
                found = tuple(diagnose_model(self.store, model_id))
            except (DataError, UoAError, KeyError):
                found = ()  # removed or unreadable since the snapshot; its problem is listed
            batch[model_id] = replace(known, findings=found)
            if time.perf_counter() - started > GUIDES_BATCH_SECONDS:
                self.post_message(GuidesComputed(batch))
                batch, started = {}, time.perf_counter()
        if batch and not worker.is_cancelled:
            self.post_message(GuidesComputed(batch))

    @on(GuidesComputed)
    def _guides_computed(self, message: GuidesComputed) -> None:
        alive = self.store.models
        for model_id, facts in message.models.items():
            if model_id not in alive:
                continue
            old = self._guided.get(model_id)
            if facts.findings is None and old is not None and old.findings is not None:
                facts = replace(facts, findings=old.findings)  # keep marks until re-checked
            self._guided[model_id] = facts
        self._apply_guides()

    def _apply_guides(self) -> None:
        """The guides of every model computed so far, as the state passed down."""
        structure: dict[tuple[str, str | None], str] = {}
        deltas: dict[str, str] = {}
        findings: list[Any] = []
        for model in self.store.ordered_models():
            facts = self._guided.get(model.id)
            if facts is None:
                continue
            structure.update(facts.structure)
            if facts.delta is not None:
                deltas[model.id] = facts.delta
            findings += facts.findings or ()
        guides = replace(self.guides, deltas=deltas)
        self.guides = guides.with_findings(structure, findings, self.store.resolve)
        self.status()

    @on(ModelsShown)
    def _models_shown(self, message: ModelsShown) -> None:
        message.stop()
        self.load_guides()

    def action_interest(self) -> None:
        """Cycle the interestingness measure that colours every level (off → skew → ...)."""
        from tinspect.analysis.interest import MEASURES

        order = [None, *MEASURES]
        measure = order[(order.index(self.guides.measure) + 1) % len(order)]
        if measure is None:
            self.guides = self.guides.with_interest(None, [], {})
            self.status("interestingness off")
            return
        self.guides = self.guides.with_interest(measure, [], {})
        self.status(f"interestingness: {measure} (computing…)")
        self.load_interest(measure)

    @work(thread=True, exclusive=True, group="interest", exit_on_error=False)
    def load_interest(self, measure: str) -> None:
        from tinspect.analysis.interest import aggregate, score_units

        scores = score_units(self.store, measure)
        levels = aggregate(scores, self.store)
        if not get_current_worker().is_cancelled:
            self.post_message(InterestComputed(measure, scores, levels))

    @on(InterestComputed)
    def _interest_computed(self, message: InterestComputed) -> None:
        if message.measure != self.guides.measure:
            return  # the user moved on to another measure meanwhile
        self.guides = self.guides.with_interest(message.measure, message.scores, message.levels)
        self.status(
            f"interestingness: {message.measure}  blue low → red high  (i: next, I: ranking)"
        )

    def action_ranking(self) -> None:
        from tinspect.tui.screens.guide import RankScreen

        if self.guides.measure is None:
            self.status("i chooses an interestingness measure first")
            return
        scores = sorted(
            (s for s in self.guides.scores if s.score == s.score), key=lambda s: -s.score
        )[:100]
        self.app.push_screen(RankScreen(self.guides.measure, scores), self._jump_path)

    def action_findings(self) -> None:
        from tinspect.tui.screens.guide import FindingsScreen

        epochs = {m.id: m.epochs for m in self.store.models.values()}
        checked, total = len(self._guided), len(self.store.models)
        read = f"{total} read so far" if self.store.pending else f"{total}"
        scope = (
            f"in the {checked} models shown so far, of {read} (open experiments for more; "
            "tinspect check reads all)"
            if checked < total or self.store.pending
            else ""
        )
        findings = list(self.guides.findings)
        self.app.push_screen(FindingsScreen(findings, epochs, scope), self._jump_path)

    def _jump_path(self, path: str | None) -> None:
        if not path:
            return
        try:
            self.jump_to(Selection(uoa=self.store.resolve(path)))
        except (UoAError, KeyError) as error:
            self.status(str(error))

    # --- navigation ----------------------------------------------------------------------------
    def show_level(self, level: int) -> None:
        self.place = Place(level, self.place.model_id, self.place.layer)
        self.query_one(ContentSwitcher).current = LEVEL_IDS[level]
        if level == 3:
            self.tree.focus()
        elif level == 2:
            self.model_view.graph.focus()
        else:
            self.query_one("#units", OptionList).focus()
        self.update_crumbs()

    def show_experiments(self, select: Selection) -> None:
        self.show_level(3)
        self.tree.rebuild(select=select)
        self.select(select)

    def open_model(self, model_id: str, layer: str | None = None) -> None:
        model = self.store.models[model_id]
        layer = layer or (model.layers[0].name if model.layers else None)
        self.place = Place(self.place.level, model_id, layer)
        self.model_view.show_model(model_id, select=layer)
        self.show_level(2)
        self.select(Selection(uoa=UoA(model_id, layer)))

    def open_layer(self, model_id: str, layer: str, select: UoA | None = None) -> None:
        if self.place.model_id != model_id or self.place.level == 3:
            self.open_model(model_id, layer)
        self.place = Place(self.place.level, model_id, layer)
        self.layer_detail.show_layer(model_id, layer, select)
        self.show_level(1)
        self.select(Selection(uoa=select or UoA(model_id, layer)))

    def select(self, selection: Selection) -> None:
        self.selection = selection
        self.update_crumbs()
        self.panel.link(selection)

    def jump_to(self, selection: Selection) -> None:
        """Show ``selection`` at its level (from a widget, search or the command palette)."""
        uoa = selection.uoa
        if uoa is not None and uoa.model not in self.store.models:
            self.status(f"{self.names.get(uoa.model, uoa.model)} is no longer in the logs")
            return
        if uoa is None or uoa.layer is None:
            self.show_experiments(selection)
        elif uoa.variable is None and uoa.neuron is None:
            self.open_model(uoa.model, uoa.layer)
        else:
            self.open_layer(uoa.model, uoa.layer, uoa)

    def action_up(self) -> None:
        place = self.place
        if place.level == 1 and place.model_id is not None:
            self.open_model(place.model_id, place.layer)
        elif place.level == 2 and place.model_id is not None:
            self.show_experiments(Selection(uoa=UoA(place.model_id)))

    def action_descend(self) -> None:
        self._open(self.selection)

    def _open(self, selection: Selection) -> None:
        uoa = selection.uoa
        if uoa is None:
            return
        if self.place.level == 3:
            self.open_model(uoa.model)
        elif self.place.level == 2 and uoa.layer:
            self.open_layer(uoa.model, uoa.layer)

    def action_cursor(self, direction: str) -> None:
        action = getattr(self.focused, f"action_cursor_{direction}", None)
        if action is not None:
            action()

    def action_crumb(self, level: int) -> None:
        place = self.place
        if level == 3 and place.level != 3:
            uoa = self.selection.uoa
            self.show_experiments(self.selection if uoa is None else Selection(uoa=UoA(uoa.model)))
        elif level == 2 and place.model_id is not None:
            self.open_model(place.model_id, place.layer)
        elif level == 1 and place.model_id is not None and place.layer is not None:
            self.open_layer(place.model_id, place.layer)

    # --- intents from the level widgets and cards -----------------------------------------
    # Highlight events also arrive from a level while it is rebuilt out of sight: only the
    # visible level's widget may select.
    @on(SelectionChanged, "#experiments")
    def _tree_moved(self, message: SelectionChanged) -> None:
        if self.place.level == 3:
            self.select(message.selection)

    @on(SelectionChanged, "#layers")
    def _graph_moved(self, message: SelectionChanged) -> None:
        uoa = message.selection.uoa
        if self.place.level == 2 and uoa is not None:
            self.place = Place(2, uoa.model, uoa.layer)
            self.select(message.selection)

    @on(SelectionChanged, "#layer")
    def _unit_moved(self, message: SelectionChanged) -> None:
        if self.place.level == 1:
            self.select(message.selection)

    @on(OpenRequested)
    def _open_requested(self, message: OpenRequested) -> None:
        self._open(message.selection)

    @on(JumpRequested)
    def _jump_requested(self, message: JumpRequested) -> None:
        self.jump_to(message.selection)

    @on(FindingsRequested)
    def _findings_requested(self, message: FindingsRequested) -> None:
        from tinspect.tui.screens.guide import FindingsScreen

        epochs = {m.id: m.epochs for m in self.store.models.values()}
        self.app.push_screen(FindingsScreen(message.findings, epochs), self._jump_path)

    @on(ExportRequested)
    def _export_requested(self, message: ExportRequested) -> None:
        self.export_card(message.card)

    # --- store changes --------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load_rest(self) -> None:
        """Read the models the first screen did not wait for, a slice at a time; each slice
        is a store change (the tree grows, the status line counts), navigation works on."""
        worker = get_current_worker()
        while (self.store.pending or self.store.unverified) and not worker.is_cancelled:
            changes = self.store.refresh(budget=LOAD_SLICE_SECONDS)
            if changes or not changes.pending:
                self.post_message(StoreChanged(changes, loading=True))

    @work(thread=True, exclusive=True, group="refresh", exit_on_error=False)
    def refresh_store(self) -> None:
        """Walk the logdirs off the UI thread; the store swaps in a new snapshot."""
        if self.store.pending or self.store.unverified:
            return  # the loader is still reading; it reports what it finds
        changes = self.store.refresh()
        if changes:
            self.post_message(StoreChanged(changes))

    @on(StoreChanged)
    def _store_changed(self, message: StoreChanged) -> None:
        changes, store = message.changes, self.store
        alive = set(store.models)
        for model_id in changes.new_models:
            self.colours(model_id)
        removed = [m for m in changes.removed_models if m not in alive]
        lines = []
        if removed and not message.loading:  # (at start-up: the index was older than that)
            lines.append(
                "removed from the logs: " + ", ".join(self.names.get(m, m) for m in removed)
            )
        self.names.update({m.id: store.display_name(m) for m in store.models.values()})
        place = self.place
        if place.model_id is not None and place.model_id not in alive:
            self.layer_detail.clear()
            self.place = Place(3, None, None)
            first = store.ordered_models()[:1]
            self.show_experiments(Selection(uoa=UoA(first[0].id)) if first else Selection())
        elif self.selection.uoa is not None and self.selection.uoa.model not in alive:
            first = store.ordered_models()[:1]
            self.show_experiments(Selection(uoa=UoA(first[0].id)) if first else Selection())
        elif place.level == 3:
            self.tree.rebuild()
        elif place.model_id in self._touched(changes):
            self._reopen(place)
        self.panel.store_changed(changes, alive)
        stale = changes.touched_models | set(changes.removed_models)
        if stale & set(self._guided):
            for model_id in stale:
                self._guided.pop(model_id, None)  # re-checked by the next guides run
            self._apply_guides()
        if store.pending:
            pass  # still loading: guides once the whole logdir is read
        elif (
            message.loading
            or changes.new_models
            or changes.changed_models
            or changes.new_checkpoints
            or changes.changed_checkpoints
            or removed
        ):
            self.load_guides()  # badges and findings of the new data (exclusive worker)
        new_checkpoints = sum(len(v) for v in changes.new_checkpoints.values())
        if message.loading:
            if not store.pending:
                lines.append(f"all {len(store.models)} models read")
        elif changes.new_models or new_checkpoints:
            lines.append(f"{len(changes.new_models)} new models, {new_checkpoints} new checkpoints")
        rewritten = sum(len(v) for v in changes.changed_checkpoints.values())
        if rewritten:
            lines.append(f"{rewritten} checkpoint{'s' if rewritten > 1 else ''} changed on disk")
        self.status("; ".join(lines) if lines else None)

    @staticmethod
    def _touched(changes: Changes) -> set[str]:
        """Models whose graph or layer view must be redrawn (metric rows alone do not)."""
        return (
            set(changes.changed_models)
            | set(changes.new_checkpoints)
            | set(changes.removed_checkpoints)
            | set(changes.changed_checkpoints)
        )

    def _reopen(self, place: Place) -> None:
        """Redraw the open model (L2) or layer (L1) from the new snapshot; a layer that no
        longer exists returns to its model's graph."""
        assert place.model_id is not None
        model = self.store.models[place.model_id]
        names = {layer.name for layer in model.layers}
        if place.level == 1 and place.layer in names:
            self.layer_detail.show_layer(place.model_id, place.layer, self.selection.uoa)
        else:
            layer = place.layer if place.layer in names else None
            self.open_model(place.model_id, layer)

    # --- tools and widgets -----------------------------------------------------------------------
    def action_toolbox(self) -> None:
        tools = applicable(self.selection, self.store)
        if not tools:
            self.status("select a unit first")
            return
        from tinspect.tui.screens.modals import Toolbox  # modals load on first use

        label = self.selection.label(self.store)
        self.app.push_screen(
            Toolbox(tools, label, self._unavailable_tools(tools)), self.choose_tool
        )

    def _unavailable_tools(self, tools: list[Tool]) -> list[tuple[Tool, str]]:
        """The compare tools on a model or experiment without attributions, with the one
        line that says which recorder option would make them apply."""
        from tinspect.tui.tools import TOOLS

        kind = self.selection.kind
        missing = [t for t in TOOLS if t.needs_attributions and t not in tools]
        if not missing or kind not in ("model", "experiment"):
            return []
        from tinspect.store import RECORDER_OPTION
        from tinspect.tui.imacs import no_attributions

        models = [self.store.models[m] for m in self.selection.models(self.store)]
        if not models:
            return []
        why = (
            no_attributions(models[0])
            if kind == "model"
            else f"no model of this experiment has attributions; record them with {RECORDER_OPTION}"
        )
        return [(t, why) for t in missing if kind in t.kinds]

    def choose_tool(self, tool: Tool | None) -> None:
        """Apply a tool chosen in the toolbox or the palette; a compare tool on one model
        first asks for the second model (``PickModel``)."""
        if tool is None:
            return
        selection = self.selection
        if not (tool.pair and selection.kind == "model" and selection.uoa is not None):
            self.apply_tool(tool)
            return
        from tinspect.tui.imacs import second_model_choices
        from tinspect.tui.screens.modals import PickModel
        from tinspect.tui.selection import PairSelection

        uoa = selection.uoa
        model = self.store.models[uoa.model]
        choices = second_model_choices(self.store, model)

        def picked(ref: str | None) -> None:
            if ref:
                self.apply_tool(tool, PairSelection(uoa=uoa, other=ref))

        name = self.store.display_name(model)
        self.app.push_screen(PickModel(name, tool.name, choices), picked)

    def apply_tool(
        self, tool: Tool | None, selection: Selection | None = None
    ) -> WidgetCard | None:
        if tool is None:
            return None
        selection = selection or self.selection
        card_class: type[WidgetCard] = WidgetCard
        if tool.view in ("note", "branch"):
            from tinspect.tui.widgets.notes import BranchCard, NoteCard

            card_class = NoteCard if tool.view == "note" else BranchCard
        card = card_class(
            tool, selection, self.store, self.colours, self.class_selection, self.sample_selection
        )
        return self.panel.add(card, self.guides.findings)

    # --- the sample selection -------------------------------------------------------------------
    def action_samples(self) -> None:
        from tinspect.tui.screens.modals import SampleSelector

        self.app.push_screen(
            SampleSelector(self.sample_selection, self._sample_suggestions()), self.set_samples
        )

    def _sample_suggestions(self) -> list[tuple[str, str]]:
        """The grammar's kinds, made concrete for the selected model and its experiment."""
        from tinspect.query.samples import KINDS
        from tinspect.tui.tools import is_classifier

        store = self.store
        ids = self.selection.models(store) or [m.id for m in store.ordered_models()[:1]]
        model = store.models.get(ids[0]) if ids else None
        out = [("all", KINDS["all"])]
        if model is not None:
            name = store.display_name(model)
            experiment = store.tree.experiment_of(model.id)
            others = [
                store.display_name(store.models[m])
                for m in experiment.models
                if m in store.models and is_classifier(store, m)
            ]
            if is_classifier(store, model.id):
                out += [
                    ("misclassified", f"misclassified by the model in view ({name})"),
                    ("correct", "predicted right by the model in view"),
                    ("predicted:0", KINDS["predicted"]),
                    ("confusion:0,1", KINDS["confusion"]),
                ]
            else:
                others = []  # prediction kinds need class scores
            out.append(("class:0", KINDS["class"]))
            out += [(f"misclassified@{o}", f"misclassified by {o}") for o in others if o != name]
            out += [(f"disagree:{name},{o}", KINDS["disagree"]) for o in others if o != name]
        out.append(("ids:0,1,2", KINDS["ids"]))
        return out

    def set_samples(self, text: str | None) -> None:
        """Set the sample selection from its text (``""``: every sample); a malformed one is
        one status line and changes nothing."""
        if text is None:
            return
        from tinspect.query import QueryError
        from tinspect.query.samples import parse

        if not text or text.strip().lower() == "all":
            self.sample_selection = None
            return
        try:
            self.sample_selection = str(parse(text))
        except QueryError as error:
            self.status(str(error))

    @on(SamplesChosen)
    def _samples_chosen(self, message: SamplesChosen) -> None:
        message.stop()
        self.set_samples(message.samples)

    def action_classes(self) -> None:
        names = self._class_names()
        if not names:
            self.status("these models have no classes")
            return
        from tinspect.tui.screens.modals import ClassSelector

        self.app.push_screen(ClassSelector(names, self.class_selection), self.set_classes)

    def _class_names(self) -> list[str]:
        models = self.store.models
        for model_id in self.selection.models(self.store) or list(models):
            if model_id in models and models[model_id].class_names:
                return models[model_id].class_names
        return []

    def set_classes(self, classes: tuple[int, ...] | None) -> None:
        self.class_selection = classes

    def action_export(self) -> None:
        focused = self.focused
        card = focused if isinstance(focused, WidgetCard) else None
        cards = self.panel.cards
        card = card or (cards[-1] if cards else None)
        if card is None:
            self.status("no widget to export: t applies a tool")
            return
        self.export_card(card)

    def export_card(self, card: WidgetCard) -> None:
        if card.table is None:
            self.status("the widget has no data yet")
            return
        default = Path.cwd() / f"tinspect-{card.tool.id}-{_file_slug(card.unit_title)}.csv"
        table = card.table

        def write(path: Path | None) -> None:
            if path is None:
                return
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "w", encoding="utf-8", newline="") as f:
                    write_table(table, f, "json" if path.suffix == ".json" else "csv")
            except OSError as error:
                self.status(f"could not write {path}: {error.strerror}")
                return
            self.status(f"wrote {len(table)} rows to {path}")
            self.notify(f"wrote {len(table)} rows to {path}", title="export")

        from tinspect.tui.screens.modals import AskPath

        self.app.push_screen(AskPath("export widget data (.csv or .json)", default), write)

    def action_toggle_widgets(self) -> None:
        self.query_one("#main").toggle_class("widgets-wide")

    def action_group(self, common: bool = False) -> None:
        from tinspect.tui.screens.group import GroupScreen

        panel = self.panel
        name = panel.current_group
        grouped = [card for card in panel.cards if card.group == name]
        if not grouped:
            others = panel.groups()
            if not others:
                self.status("g on widgets puts them in a group; G shows it; N names a new one")
                return
            name = others[0]
            grouped = [card for card in panel.cards if card.group == name]
        self.app.push_screen(
            GroupScreen(grouped, name, panel.groups(), common=common), self._group_closed
        )

    def _group_closed(self, request: Any) -> None:
        """What the group view asked for as it closed (``GroupRequest``): another group, a
        merge (then the group again), or the diff of two of its models."""
        if request is None:
            return
        if request.merge:
            self.action_merge()
        if request.diff is not None:
            self.diff_pair(*request.diff)
            return
        if request.show is not None:
            self.panel.set_group(request.show)
            self.action_group(common=request.common)

    def diff_pair(self, a: str, b: str) -> WidgetCard | None:
        """A diff card of model ``b`` against ``a``, focused: ↑↓ rows, Enter jumps."""
        from tinspect.tui.selection import PairSelection
        from tinspect.tui.tools import BY_ID

        if a not in self.store.models or b not in self.store.models:
            self.status("one of the two models is no longer in the logs")
            return None
        other = self.store.display_name(self.store.models[a])  # a reference find_models takes
        card = self.apply_tool(BY_ID["diff_pair"], PairSelection(uoa=UoA(b), other=other))
        if card is not None:
            self.call_after_refresh(card.focus)
            names = [self.store.display_name(self.store.models[m]) for m in (b, a)]
            self.status(
                f"diff of {names[0]} against {names[1]}: ↑↓ rows, Enter: the layer in "
                f"{names[0]}, A: in {names[1]}"
            )
        return card

    def action_diff_group(self) -> None:
        """The diff of two models of the current group (the group view's d)."""
        from tinspect.tui.screens.group import group_models

        name = self.panel.current_group
        grouped = [card for card in self.panel.cards if card.group == name]
        models = group_models(self.store, grouped)
        if len(models) < 2:
            self.status(f"group {name} shows fewer than two models: g on widgets of two models")
            return
        if len(models) == 2:
            self.diff_pair(*models)
            return
        from tinspect.tui.screens.modals import PairPicker

        names = {m: self.store.display_name(self.store.models[m]) for m in models}

        def picked(pair: tuple[str, str] | None) -> None:
            if pair is not None:
                self.diff_pair(*pair)

        self.app.push_screen(PairPicker(models, names), picked)

    def action_new_group(self) -> None:
        from tinspect.tui.screens.modals import AskText

        taken = set(self.panel.groups())
        default = next(str(i) for i in range(1, 100) if str(i) not in taken)

        def named(name: str | None) -> None:
            if name:
                self.panel.set_group(name)
                self.status(f"group {name}: g on a widget adds it, G shows the group")

        self.app.push_screen(AskText("name of the new group", default), named)

    def action_merge(self) -> None:
        """Merge the current group's charts whose axes agree (``tui.merge``): each set
        becomes one new card in the group, on one shared range; the merged cards leave the
        group (they stay in the panel)."""
        from tinspect.tui.merge import plan

        name = self.panel.current_group
        grouped = [card for card in self.panel.cards if card.group == name]
        merges, left = plan(grouped)
        if not merges:
            why = "; ".join(left) if len(grouped) > 1 else "it needs two charts"
            self.status(f"nothing to merge in group {name}: {why}")
            return
        for merge in merges:
            card = self.apply_tool(merge.tool, merge.selection)
            if card is None:
                continue
            for old in merge.cards:
                old.join_group(None)
            card.join_group(name)
        merged = sum(len(m.cards) for m in merges)
        self.status(f"merged {merged} widgets into {len(merges)} in group {name}")

    def action_search(self) -> None:
        from tinspect.analysis.find import exact_hits, filter_hit, filter_models, find_units
        from tinspect.tui.screens.modals import Search

        at_l3 = self.place.level == 3

        def quick(query: str) -> list[Any]:
            """At L3: the exact unit path (a jump), then the model filter (headers only)."""
            hits = exact_hits(self.store, query)
            kept = filter_models(self.store, query, self._badge_text)
            return [*hits, filter_hit(self.store, query, kept)] if kept else hits

        query = self.tree.filter_text if at_l3 and self.tree.shown is not None else None
        self.app.push_screen(
            Search(
                lambda text: find_units(self.store, text),
                query if query is not None else self.guides.search,
                filters=at_l3,
                quick=quick if at_l3 else None,
                large=len(self.store.models) > SEARCH_ON_THE_SPOT_MODELS,
            ),
            self._searched,
        )

    def _badge_text(self, model_id: str) -> str:
        """A model's badges as plain words (structure kinds, findings) for the L3 filter."""
        text = self.guides.badges.get((model_id, None), "")
        kinds = {
            word
            for f in self.guides.findings
            if f.model_id == model_id
            for word in (f.id, f.severity)
        }
        return " ".join([re.sub(r"\[[^\]]*\]", "", text), *sorted(kinds)])

    def _searched(self, result: Any) -> None:
        """Mark every hit in the levels (L3 counts per model, L2 marks layers), go to the one
        chosen."""
        if result is None:
            return
        if result.keeps is not None:
            current = self.selection.uoa
            if current is None or current.model not in result.keeps:
                first = next(m.id for m in self.store.ordered_models() if m.id in result.keeps)
                self.select(Selection(uoa=UoA(first)))  # the cursor goes to the first match
                self.tree.selected = self.selection
            self.tree.set_filter(result.keeps, result.query)
            self.status(
                f"filter {result.query!r}: {len(result.keeps)} of {len(self.store.models)} "
                "models (/ then an empty Enter shows all)"
            )
            return
        cleared = not result.query and self.tree.shown is not None
        if cleared:
            self.tree.set_filter(None)
        self.guides = self.guides.with_search(result.query, result.hits)
        marked = [h for h in result.hits if not h.exact]
        models = {h.model_id for h in marked}
        if marked:
            self.status(
                f"search {result.query!r}: {len(marked)} hits in {len(models)} models"
                " (◀ marks them; / and an empty search clear)"
            )
        elif cleared:
            self.status("filter cleared: all models; search marks cleared")
        elif not result.hits:
            self.status("search marks cleared" if not result.query else "no hits")
        if result.path:
            self._jump_path(result.path)

    def action_localization(self) -> None:
        from tinspect.analysis.localize import NOTABLE_KINDS, STRUCTURES
        from tinspect.tui.screens.modals import BadgeKinds

        kinds = [*NOTABLE_KINDS, *STRUCTURES]
        self.app.push_screen(BadgeKinds(kinds, self.guides.badge_kinds), self._set_badge_kinds)

    def _set_badge_kinds(self, kinds: frozenset[str] | None) -> None:
        self.guides = replace(self.guides, badge_kinds=kinds)
        self.status(
            "badges: " + ("all kinds" if kinds is None else ", ".join(sorted(kinds)) or "none")
        )

    def action_problems(self) -> None:
        from tinspect.tui.screens.modals import TextModal

        lines = [str(p) for p in self.store.problems]
        lines += [f"viewer: {e}" for e in self.errors]
        self.app.push_screen(TextModal("problems in the logs", "\n".join(lines) or "none"))


def _file_slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:60] or "widget"
