"""A widget card: one tool applied to one unit, loading off the UI thread, exportable.

The header names the unit path in its model's colour, marks class-dependent data and says
what the view shows (the epoch, the metric); the body is the tool's view. Data is computed
in a thread worker that the card cancels when it reloads (class selection changed) or goes
away, and posted back as a message. ``x`` exports exactly the table the card shows, through
the same writer as ``tinspect export``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from textual import work
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import LoadingIndicator, Static
from textual.worker import get_current_worker

from tinspect.query import Query, QueryCancelled, Table, run
from tinspect.store import DataError, UoAError
from tinspect.tui.selection import Selection
from tinspect.tui.tools import Tool
from tinspect.tui.widgets.views import ViewState, render

if TYPE_CHECKING:
    from tinspect.tui.app import TinspectApp

_ids = itertools.count(1)


@dataclass
class CardLoaded(Message):
    card: WidgetCard
    table: Table | None
    error: str | None
    extra: dict[str, Any]


class WidgetCard(Vertical, can_focus=True):
    """One widget in the widget panel."""

    BINDINGS = [
        Binding("x", "export", "export CSV", id="card.export"),
        Binding("left_square_bracket", "page(-1)", "◂ epoch", id="card.previous"),
        Binding("right_square_bracket", "page(1)", "epoch ▸", id="card.next"),
        Binding("s", "sort", "sort", show=False, id="card.sort"),
        Binding("g", "toggle_group", "group", id="card.group"),
        Binding("J", "jump", "jump to unit", id="card.jump"),
        Binding("delete,D", "remove", "remove", id="card.remove"),
        Binding("r", "reload", "reload", show=False, id="card.reload"),
    ]

    def __init__(self, tool: Tool, selection: Selection, colour: str, title: str) -> None:
        self.number = next(_ids)
        super().__init__(id=f"card-{self.number}", classes="card")
        self.tool = tool
        self.selection = selection
        self.colour = colour
        self.unit_title = title
        # Histograms open on the last epoch; paged views (metrics, samples) on their first page.
        self.state = ViewState(page=-1 if tool.view == "histogram" else 0)
        self.table: Table | None = None
        self.current_query: Query | None = None
        self.grouped = False

    @property
    def tinspect(self) -> TinspectApp:
        return self.app  # type: ignore[return-value]

    def compose(self):
        yield Static(self._header_text(), classes="card-header")
        yield LoadingIndicator(classes="card-loading")
        yield Vertical(classes="card-body")

    def on_mount(self) -> None:
        self.load()

    def _header_text(self) -> str:
        mark = (
            " [b]◆[/b]"
            if self.tool.class_dependent and self.tinspect.class_selection is not None
            else ""
        )
        group = " [reverse] G [/reverse]" if self.grouped else ""
        detail = f"  [dim]{self.state.title}[/dim]" if self.state.title else ""
        return (
            f"[{self.colour}]●[/] [b]{self.tool.name}[/b]{mark}{group}  "
            f"[{self.colour}]{self.unit_title}[/]{detail}"
        )

    def update_header(self) -> None:
        self.query_one(".card-header", Static).update(self._header_text())

    # --- loading ---------------------------------------------------------------------------
    def load(self) -> None:
        app = self.tinspect
        try:
            self.current_query = self.tool.query(app.store, self.selection, app.class_selection)
        except (UoAError, DataError, ValueError) as error:
            self._show_error(str(error))
            return
        self.query_one(".card-loading").display = True
        self.compute(self.current_query)

    @work(thread=True, exclusive=True, group="card")
    def compute(self, query: Query | None) -> None:
        worker = get_current_worker()
        app = self.tinspect
        try:
            table = run(app.store, query, cancelled=lambda: worker.is_cancelled) if query else None
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
        app = self.tinspect
        model = app.store.models[self.selection.models(app.store)[0]]
        predictions = run(app.store, self.current_query.replace(data="predictions", limit=None))
        by_sample: dict[int, list[float]] = {}
        for sample, value in zip(
            predictions.column("sample"), predictions.column("value"), strict=True
        ):
            by_sample.setdefault(sample, []).append(value)
        return {
            "predictions": {k: np.asarray(v) for k, v in by_sample.items()},
            "class_names": model.class_names,
        }

    def on_card_loaded(self, message: CardLoaded) -> None:
        if message.card is not self:
            return
        message.stop()
        self.query_one(".card-loading").display = False
        if message.error is not None:
            self._show_error(message.error)
            return
        self.table = message.table
        self.state.extra.update(message.extra)
        self.redraw()

    def _show_error(self, text: str) -> None:
        self.query_one(".card-loading").display = False
        body = self.query_one(".card-body", Vertical)
        body.remove_children()
        body.mount(Static(f"[red]{text}[/red]", classes="view"))

    def redraw(self) -> None:
        body = self.query_one(".card-body", Vertical)
        body.remove_children()
        if self.table is not None:
            self.state.colours = self.tinspect.unit_colours(self.table)
            if self.tool.view in ("note", "branch"):
                return
            body.mount(render(self.tool.view, self.table, self.state))
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
        self.tinspect.jump_to(self.selection)

    def action_remove(self) -> None:
        self.workers.cancel_group(self, "card")
        self.remove()

    def action_export(self) -> None:
        self.tinspect.export_card(self)
