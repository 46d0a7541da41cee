"""A group of widgets side by side, full screen: compare the same tool across units."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from tinspect.tui.widgets.card import WidgetCard
from tinspect.tui.widgets.views import ViewState, render


class GroupScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,G", "close", "close", id="group.close"),
        Binding("left_square_bracket", "page(-1)", "◂ all", id="group.previous"),
        Binding("right_square_bracket", "page(1)", "all ▸", id="group.next"),
    ]

    def __init__(self, cards: list[WidgetCard]) -> None:
        super().__init__()
        self.cards = cards
        self.states = [
            ViewState(page=c.state.page, colours=c.state.colours, extra=c.state.extra)
            for c in cards
        ]

    def compose(self) -> ComposeResult:
        yield Static(
            f"[b]group[/b] of {len(self.cards)} widgets   [ ] step all together   Esc: back",
            id="group-title",
        )
        with Horizontal(id="group"):
            for _ in self.cards:
                yield Vertical(classes="group-cell")
        yield Footer()

    def on_mount(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        for cell, card, state in zip(
            self.query(".group-cell"), self.cards, self.states, strict=True
        ):
            cell.remove_children()
            view = None
            if card.table is not None and card.tool.view not in ("note", "branch"):
                view = render(card.tool.view, card.table, state)  # sets state.title
            title = f"[{card.colour}]●[/] [b]{card.tool.name}[/b] {card.unit_title}"
            cell.mount(Static(f"{title}  [dim]{state.title}[/dim]"))
            if view is not None:
                cell.mount(view)

    def action_page(self, step: int) -> None:
        for state in self.states:
            if state.pages > 1:
                state.page = (state.page + step) % state.pages
        self.redraw()

    def action_close(self) -> None:
        self.dismiss(None)
