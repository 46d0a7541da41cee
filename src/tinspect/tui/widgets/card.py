"""A widget card: one tool applied to one unit, loading off the UI thread, exportable.

The header names the unit path in its model's colour, marks class-dependent data and says
what the view shows (the epoch, the metric); the body is the tool's view. Data is computed
in a thread worker that the card cancels when it reloads (class selection changed) or goes
away, and posted back as ``CardLoaded``. The card is given what it reads (the store, the
model colours) and the class selection (``class_selection``, set by the main screen); what it wants
done elsewhere (jump to its unit, export, a status line) it posts as a message.
``x`` exports exactly the table the card shows, through the same writer as
``tinspect export``.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import LoadingIndicator, Static
from textual.worker import get_current_worker

from tinspect.query import Query, QueryCancelled, Table, run
from tinspect.store import DataError, Store, UoA, UoAError
from tinspect.tui.errors import ReportsWorkerErrors
from tinspect.tui.messages import (
    CardLoaded,
    ExportRequested,
    FindingsRequested,
    JumpRequested,
    SamplesChosen,
    StatusMessage,
)
from tinspect.tui.palette import ModelColours
from tinspect.tui.selection import Selection
from tinspect.tui.tools import Tool
from tinspect.tui.widgets.views import ViewState, render

if TYPE_CHECKING:
    import numpy as np
else:
    from tinspect.lazy import numpy as np

_ids = itertools.count(1)


class WidgetCard(ReportsWorkerErrors, Vertical, can_focus=True):
    """One widget in the widget panel."""

    BINDINGS = [
        Binding("x", "export", "export CSV", id="card.export", tooltip="export this widget's data"),
        Binding(
            "left_square_bracket",
            "page(-1)",
            "◂ epoch",
            id="card.previous",
            tooltip="previous epoch (or page)",
        ),
        Binding(
            "right_square_bracket",
            "page(1)",
            "epoch ▸",
            id="card.next",
            tooltip="next epoch (or page)",
        ),
        Binding("s", "sort", "sort", show=False, id="card.sort", tooltip="sort by the next column"),
        Binding(
            "g",
            "toggle_group",
            "group",
            id="card.group",
            tooltip="in/out of the current group (G, M)",
        ),
        Binding("J", "jump", "jump to unit", id="card.jump", tooltip="go to this widget's unit"),
        Binding("delete,D", "remove", "remove", id="card.remove", tooltip="remove this widget"),
        Binding(
            "enter",
            "findings",
            "findings",
            show=False,
            id="card.findings",
            tooltip="the findings marked on this chart",
        ),
        Binding("r", "reload", "reload", show=False, id="card.reload", tooltip="reload its data"),
        Binding(
            "f",
            "filter",
            "filter",
            id="card.filter",
            tooltip="compare tools: only false positives, one predicted class, confident "
            "disagreements",
        ),
        Binding(
            "C",
            "colour_by",
            "colour by",
            id="card.colour",
            tooltip="projection: colour by class or right/wrong",
        ),
    ]

    #: The global class selection; a class-dependent card reloads when it changes.
    class_selection: reactive[tuple[int, ...] | None] = reactive(None, init=False)
    #: The global sample selection (grammar text); cards on per-sample data reload.
    sample_selection: reactive[str | None] = reactive(None, init=False)
    #: Counts the card's loads (data or error); the group view watches it to redraw.
    revision: reactive[int] = reactive(0, init=False)

    def __init__(
        self,
        tool: Tool,
        selection: Selection,
        store: Store,
        colours: ModelColours,
        classes: tuple[int, ...] | None = None,
        samples: str | None = None,
    ) -> None:
        self.number = next(_ids)
        super().__init__(id=f"card-{self.number}", classes="card")
        self.tool = tool
        self.selection = selection
        self.store = store
        self.model_colours = colours
        self.set_reactive(WidgetCard.class_selection, classes)
        self.set_reactive(WidgetCard.sample_selection, samples)
        #: The models the card was made on (an experiment's models may change later).
        self.model_ids = selection.models(store)
        self.colour = colours(self.model_ids[0]) if self.model_ids else "white"
        self.unit_title = selection.label(store)
        # Histograms, kernels and projections open on the last epoch; other paged views
        # (metrics, samples) on their first page.
        self.state = ViewState(page=-1 if tool.view in ("histogram", "kernels", "scatter") else 0)
        self.table: Table | None = None
        self.current_query: Query | None = None
        #: The named group the card belongs to (None: none), and the group ``g`` puts it in
        #: (the main screen's current group, passed down by the panel).
        self.group: str | None = None
        self.current_group = "1"
        #: Why the card shows no data ("model removed"), or None.
        self.gone: str | None = None
        #: Findings on the card's models that were observed at some epoch (marked on charts).
        self.findings: tuple[Any, ...] = ()
        #: The compare tools' filter (``imacs.parse_filter`` text), None for every sample.
        self.sample_filter: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._header_text(), classes="card-header")
        yield LoadingIndicator(classes="card-loading")
        yield Vertical(classes="card-body")

    def on_mount(self) -> None:
        self.load()

    def follows_samples(self) -> bool:
        """The card's data depend on the sample selection (per-sample data)."""
        return self.tool.follows_samples(self.current_query)

    def _header_text(self) -> str:
        mark = " [b]◆[/b]" if self.tool.class_dependent and self.class_selection is not None else ""
        if self.sample_selection is not None and self.follows_samples():
            mark += f" [b]◇ {escape(self.sample_selection)}[/b]"
        if self.sample_filter is not None:
            mark += f" [b]▽ filter {escape(self.sample_filter)}[/b]"
        group = f" [reverse] {escape(self.group)} [/reverse]" if self.group is not None else ""
        detail = f"  [dim]{escape(self.state.title)}[/dim]" if self.state.title else ""
        return (
            f"[{self.colour}]●[/] [b]{self.tool.name}[/b]{mark}{group}  "
            f"[{self.colour}]{escape(self.unit_title)}[/]{detail}"
        )

    def update_header(self) -> None:
        """Redraw the header (before the card is composed, compose draws it)."""
        for header in self.query(".card-header").results(Static):
            header.update(self._header_text())

    def watch_class_selection(self) -> None:
        if self.tool.class_dependent:
            self.load()

    def watch_sample_selection(self) -> None:
        if self.follows_samples():
            self.load()

    # --- loading ---------------------------------------------------------------------------
    def load(self) -> None:
        if self.gone is not None:
            self._show_error(self.gone)
            return
        try:
            self.current_query = self.tool.query(
                self.store, self.selection, self.class_selection, self.sample_selection
            )
        except (UoAError, DataError, ValueError, KeyError) as error:
            self._show_error(str(error))
            return
        self.query_one(".card-loading").display = True
        self.compute(self.current_query)

    @work(thread=True, exclusive=True, group="card", exit_on_error=False)
    def compute(self, query: Query | None) -> None:
        worker = get_current_worker()
        try:
            if self.tool.analyse is not None:  # an analysis with its own view data (IMACS)
                options = {"filter": self.sample_filter, "samples": self.sample_selection}
                table, extra = self.tool.analyse(
                    self.store, self.selection, self.class_selection, options
                )
            else:
                if self.tool.compute is not None:
                    table = self.tool.compute(self.store, self.selection)
                elif query is not None:
                    table = run(self.store, query, cancelled=lambda: worker.is_cancelled)
                else:
                    table = None
                extra = self._extra(table) if table is not None else {}
        except QueryCancelled:
            return
        except (UoAError, DataError, ValueError) as error:
            self.post_message(CardLoaded(self, None, str(error), {}))
            return
        if not worker.is_cancelled:
            self.post_message(CardLoaded(self, table, None, extra))

    def _extra(self, table: Table) -> dict[str, Any]:
        """Data a view needs besides its table (predictions beside samples, the selected
        samples of a projection)."""
        if self.tool.highlights and self.current_query is not None:
            if self.sample_selection is None:
                return {"selected": None}
            try:
                picked = run(self.store, self.current_query.replace(samples=self.sample_selection))
            except (UoAError, DataError, ValueError) as error:
                self.post_status(f"samples {self.sample_selection}: {error}")
                return {"selected": {}}  # every point drawn, none highlighted
            selected: dict[int, set[int]] = {}
            for epoch, sample in zip(picked.column("epoch"), picked.column("sample"), strict=True):
                selected.setdefault(epoch, set()).add(sample)
            return {"selected": selected}
        if self.tool.view != "images" or self.current_query is None:
            return {}
        model = self.store.models[self.selection.models(self.store)[0]]
        predictions = run(self.store, self.current_query.replace(data="predictions", limit=None))
        by_sample: dict[int, list[float]] = {}
        for sample, value in zip(
            predictions.column("sample"), predictions.column("value"), strict=True
        ):
            by_sample.setdefault(sample, []).append(value)
        return {
            "predictions": {k: np.asarray(v) for k, v in by_sample.items()},
            "class_names": model.class_names,
        }

    @on(CardLoaded)
    def _loaded(self, message: CardLoaded) -> None:
        if message.card is not self:
            return
        message.stop()
        self.query_one(".card-loading").display = False
        if self.gone is not None:
            return  # the unit went away while the worker ran
        if message.error is not None:
            self._show_error(message.error)
            return
        self.table = message.table
        self.state.extra.update(message.extra)
        self.redraw()
        self.revision += 1

    def _show_error(self, text: str) -> None:
        self.query_one(".card-loading").display = False
        self.table = None
        body = self.query_one(".card-body", Vertical)
        body.remove_children()
        body.mount(Static(f"[red]{escape(text)}[/red]", classes="view card-error"))
        self.revision += 1

    def unit_colours(self) -> dict[str, str]:
        """Colour of each model by display name (unit paths start with it)."""
        store = self.store
        return {store.display_name(m): self.model_colours(m.id) for m in store.models.values()}

    def redraw(self) -> None:
        body = self.query_one(".card-body", Vertical)
        body.remove_children()
        if self.table is not None:
            self.state.colours = self.unit_colours()
            body.mount(render(self.tool.view, self.table, self.state))
            problems = self.table.meta.get("problems") or []
            if problems:
                body.mount(
                    Static(
                        "\n".join(f"[yellow]⚠ {escape(str(p))}[/]" for p in problems),
                        classes="view card-problems",
                    )
                )
        self.update_header()

    def set_findings(self, findings: tuple[Any, ...]) -> None:
        """Findings from the guides: the metrics chart marks their epochs."""
        mine = tuple(f for f in findings if f.model_id in self.model_ids and f.epochs)
        if mine == self.findings:
            return
        self.findings = mine
        self.state.extra["marked"] = (
            {e for f in mine for e in f.epochs},
            {f.id for f in mine},
        )
        if self.tool.view == "line" and self.table is not None:
            self.redraw()

    def action_findings(self) -> None:
        """Enter on a metrics chart: the findings whose epochs it marks."""
        if self.findings:
            self.post_message(FindingsRequested(list(self.findings)))
        else:
            self.post_status("no findings marked on this widget")

    def post_status(self, text: str) -> None:
        self.post_message(StatusMessage(text))

    def unit_removed(self, why: str) -> None:
        """The unit (its model, or every checkpoint of it) is gone: say so, drop the data."""
        self.gone = why
        self.workers.cancel_group(self, "card")
        self.state.title = ""
        self._show_error(why)
        self.update_header()

    # --- a cell cursor on the confusion matrix, a row cursor on the diff ---------------------
    def on_key(self, event: Any) -> None:
        """On a confusion matrix: arrows move a cell cursor, Enter selects the cell's samples.
        On a diff: up/down move a row cursor, Enter jumps to its layer (A: in model A)."""
        if self.table is None:
            return
        if self.tool.view == "diff":
            self._diff_key(event)
            return
        if self.tool.view == "scatter":
            self._scatter_key(event)
            return
        if self.tool.view != "confusion":
            return
        moves = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
        n = int(self.state.extra.get("classes", 0))
        if event.key in moves and n:
            t, p = self.state.extra.get("cell", (0, 0))
            dt, dp = moves[event.key]
            self.state.extra["cell"] = ((t + dt) % n, (p + dp) % n)
            event.stop()
            self.redraw()
        elif event.key == "enter" and n:
            event.stop()
            t, p = self.state.extra.get("cell", (0, 0))
            model = self.store.display_name(self.store.models[self.model_ids[0]])
            self.post_message(SamplesChosen(f"confusion:{t},{p}@{model}"))

    def _scatter_key(self, event: Any) -> None:
        """Arrows move a rectangle over the projection (+/- resize it), Enter selects the
        samples inside it at the epoch shown; a digit selects that class."""
        from tinspect.tui.widgets.views import samples_in_box

        assert self.table is not None
        steps = {"up": (0, 0.05), "down": (0, -0.05), "left": (-0.05, 0), "right": (0.05, 0)}
        box = self.state.extra.get("box")
        if event.key in steps or event.character in ("+", "-"):
            event.stop()
            cx, cy, w, h = box or (0.5, 0.5, 0.3, 0.3)
            if event.key in steps:
                dx, dy = steps[event.key]
                cx, cy = min(1.0, max(0.0, cx + dx)), min(1.0, max(0.0, cy + dy))
            elif box is not None:
                factor = 1.25 if event.character == "+" else 0.8
                w, h = min(1.0, w * factor), min(1.0, h * factor)
            self.state.extra["box"] = (cx, cy, w, h)
            self.redraw()
        elif event.key == "enter" and box is not None:
            event.stop()
            picked = samples_in_box(self.table, self.state)
            if not picked:
                self.post_status("no sample in the box")
                return
            self.post_message(SamplesChosen("ids:" + ",".join(map(str, picked))))
        elif event.character is not None and event.character.isdigit():
            event.stop()
            self.post_message(SamplesChosen(f"class:{event.character}"))

    def _diff_key(self, event: Any) -> None:
        assert self.table is not None
        n = len(self.table)
        row = int(self.state.extra.get("row", 0))
        if event.key in ("up", "down") and n:
            event.stop()
            self.state.extra["row"] = (row + (1 if event.key == "down" else -1)) % n
            self.redraw()
        elif event.key in ("enter", "A") and n:
            event.stop()
            kind, unit, *_rest = list(self.table.rows())[row]
            if not unit or kind in ("metric", "hyperparameter", "training"):
                self.post_status("this row is about the whole model, not a layer")
                return
            side = "a" if event.key == "A" or kind == "layer-removed" else "b"
            model_id = self.table.meta[side]
            model = self.store.models.get(model_id)
            layer = unit
            if side == "a" and kind == "layer" and model is not None:
                names = {x.name for x in model.layers}
                renamed = [r for r in self.table.rows() if r[1] == unit and r[2] == "name"]
                layer = unit if unit in names else (renamed[0][3] if renamed else unit)
            if model is None or layer not in {x.name for x in model.layers}:
                self.post_status(f"{layer} is not a layer of {self.table.meta[side + '_name']}")
                return
            self.post_message(JumpRequested(Selection(uoa=UoA(model_id, layer))))

    # --- actions -----------------------------------------------------------------------------
    def action_page(self, step: int) -> None:
        if self.state.pages > 1:
            self.state.page = (self.state.page + step) % self.state.pages
            self.redraw()

    def action_sort(self) -> None:
        self.state.sort_column = 0 if self.state.sort_column is None else self.state.sort_column + 1
        self.redraw()

    def action_reload(self) -> None:
        self.load()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``f`` (filter) only on the compare tools' cards, ``C`` (colours) only on a
        projection: hidden from the others' footer."""
        if action == "filter":
            return self.tool.pair
        if action == "colour_by":
            return self.tool.view == "scatter"
        return True

    def action_filter(self) -> None:
        """The compare tools' filter picker; other cards say where filters apply."""
        if not self.tool.pair:
            self.post_status("f: filters apply to the compare-attributions widgets")
            return
        from tinspect.tui.imacs import filter_choices
        from tinspect.tui.screens.modals import FilterPicker  # modals load on first use

        classes = self.class_selection
        choices = filter_choices(self.state.extra, classes[0] if classes else None)
        if not choices:
            self.post_status("the comparison has not loaded yet")
            return
        self.app.push_screen(FilterPicker(self.sample_filter, choices), self.set_filter)

    def set_filter(self, text: str | None) -> None:
        """Apply a filter (``""``: none); a malformed one is a status line, nothing else."""
        if text is None:
            return
        from tinspect.analysis.imacs import parse_filter

        if not text.strip():
            value = None
        else:
            try:
                value = str(parse_filter(text))
            except ValueError as error:
                self.post_status(str(error))
                return
        if value != self.sample_filter:
            self.sample_filter = value
            self.update_header()
            self.load()

    @property
    def grouped(self) -> bool:
        return self.group is not None

    def action_toggle_group(self) -> None:
        """Into the current group, or out of the group it is in."""
        self.join_group(None if self.group is not None else self.current_group)

    def join_group(self, name: str | None) -> None:
        """Into the group ``name`` (None: out of any group)."""
        self.group = name
        self.set_class(self.grouped, "grouped")
        self.update_header()

    def action_colour_by(self) -> None:
        """Colour the projection by class, or by right/wrong prediction (classifiers)."""
        if self.table is None:
            return
        if self.state.extra.get("colour") == "correct":
            self.state.extra["colour"] = "class"
        elif not any(c is not None for c in self.table.column("correct")):
            self.post_status("no class predictions on this model: the points keep class colours")
            return
        else:
            self.state.extra["colour"] = "correct"
        self.redraw()

    def action_jump(self) -> None:
        if self.gone is None:
            self.post_message(JumpRequested(self.selection))

    def action_remove(self) -> None:
        self.workers.cancel_group(self, "card")
        self.remove()

    def action_export(self) -> None:
        self.post_message(ExportRequested(self))
