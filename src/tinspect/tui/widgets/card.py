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
from typing import Any

import numpy as np
from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import LoadingIndicator, Static
from textual.worker import get_current_worker

from tinspect.query import Query, QueryCancelled, Table, run
from tinspect.store import DataError, Store, UoAError
from tinspect.tui.errors import ReportsWorkerErrors
from tinspect.tui.messages import CardLoaded, ExportRequested, JumpRequested, StatusMessage
from tinspect.tui.palette import ModelColours
from tinspect.tui.selection import Selection
from tinspect.tui.tools import Tool
from tinspect.tui.widgets.views import ViewState, render

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
        Binding("g", "toggle_group", "group", id="card.group", tooltip="mark for the group (G, M)"),
        Binding("J", "jump", "jump to unit", id="card.jump", tooltip="go to this widget's unit"),
        Binding("delete,D", "remove", "remove", id="card.remove", tooltip="remove this widget"),
        Binding("r", "reload", "reload", show=False, id="card.reload", tooltip="reload its data"),
    ]

    #: The global class selection; a class-dependent card reloads when it changes.
    class_selection: reactive[tuple[int, ...] | None] = reactive(None, init=False)

    def __init__(
        self,
        tool: Tool,
        selection: Selection,
        store: Store,
        colours: ModelColours,
        classes: tuple[int, ...] | None = None,
    ) -> None:
        self.number = next(_ids)
        super().__init__(id=f"card-{self.number}", classes="card")
        self.tool = tool
        self.selection = selection
        self.store = store
        self.model_colours = colours
        self.set_reactive(WidgetCard.class_selection, classes)
        #: The models the card was made on (an experiment's models may change later).
        self.model_ids = selection.models(store)
        self.colour = colours(self.model_ids[0]) if self.model_ids else "white"
        self.unit_title = selection.label(store)
        # Histograms open on the last epoch; paged views (metrics, samples) on their first page.
        self.state = ViewState(page=-1 if tool.view == "histogram" else 0)
        self.table: Table | None = None
        self.current_query: Query | None = None
        self.grouped = False
        #: Why the card shows no data ("model removed"), or None.
        self.gone: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._header_text(), classes="card-header")
        yield LoadingIndicator(classes="card-loading")
        yield Vertical(classes="card-body")

    def on_mount(self) -> None:
        self.load()

    def _header_text(self) -> str:
        mark = " [b]◆[/b]" if self.tool.class_dependent and self.class_selection is not None else ""
        group = " [reverse] G [/reverse]" if self.grouped else ""
        detail = f"  [dim]{escape(self.state.title)}[/dim]" if self.state.title else ""
        return (
            f"[{self.colour}]●[/] [b]{self.tool.name}[/b]{mark}{group}  "
            f"[{self.colour}]{escape(self.unit_title)}[/]{detail}"
        )

    def update_header(self) -> None:
        self.query_one(".card-header", Static).update(self._header_text())

    def watch_class_selection(self) -> None:
        if self.tool.class_dependent:
            self.load()

    # --- loading ---------------------------------------------------------------------------
    def load(self) -> None:
        if self.gone is not None:
            self._show_error(self.gone)
            return
        try:
            self.current_query = self.tool.query(self.store, self.selection, self.class_selection)
        except (UoAError, DataError, ValueError, KeyError) as error:
            self._show_error(str(error))
            return
        self.query_one(".card-loading").display = True
        self.compute(self.current_query)

    @work(thread=True, exclusive=True, group="card", exit_on_error=False)
    def compute(self, query: Query | None) -> None:
        worker = get_current_worker()
        try:
            table = run(self.store, query, cancelled=lambda: worker.is_cancelled) if query else None
            extra = self._extra(table) if table is not None else {}
        except QueryCancelled:
            return
        except (UoAError, DataError, ValueError) as error:
            self.post_message(CardLoaded(self, None, str(error), {}))
            return
        if not worker.is_cancelled:
            self.post_message(CardLoaded(self, table, None, extra))

    def _extra(self, table: Table) -> dict[str, Any]:
        """Data a view needs besides its table (predictions beside samples)."""
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

    def _show_error(self, text: str) -> None:
        self.query_one(".card-loading").display = False
        self.table = None
        body = self.query_one(".card-body", Vertical)
        body.remove_children()
        body.mount(Static(f"[red]{escape(text)}[/red]", classes="view card-error"))

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

    def post_status(self, text: str) -> None:
        self.post_message(StatusMessage(text))

    def unit_removed(self, why: str) -> None:
        """The unit (its model, or every checkpoint of it) is gone: say so, drop the data."""
        self.gone = why
        self.workers.cancel_group(self, "card")
        self.state.title = ""
        self._show_error(why)
        self.update_header()

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

    def action_toggle_group(self) -> None:
        self.grouped = not self.grouped
        self.set_class(self.grouped, "grouped")
        self.update_header()

    def action_jump(self) -> None:
        if self.gone is None:
            self.post_message(JumpRequested(self.selection))

    def action_remove(self) -> None:
        self.workers.cancel_group(self, "card")
        self.remove()

    def action_export(self) -> None:
        self.post_message(ExportRequested(self))
