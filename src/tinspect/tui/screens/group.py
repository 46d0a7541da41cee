"""A named group of widgets side by side, full screen: compare the same tool across units.

``[``/``]`` step every widget together; ``s`` puts every chart of one kind on a common
scale (the same x and y range, from all the group's tables), so that heights and positions
compare across models; ``n`` shows the next group. The screen returns the name of the
group to show next, or None.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from tinspect.tui.widgets.card import WidgetCard
from tinspect.tui.widgets.views import ViewState, common_scale, render


class GroupScreen(Screen[str]):
    BINDINGS = [
        Binding("escape,G", "close", "close", id="group.close"),
        Binding("left_square_bracket", "page(-1)", "◂ all", id="group.previous"),
        Binding("right_square_bracket", "page(1)", "all ▸", id="group.next"),
        Binding("s", "scale", "common scale", id="group.scale"),
        Binding("n", "next_group", "next group", id="group.next-group"),
    ]

    def __init__(
        self, cards: list[WidgetCard], name: str = "1", groups: list[str] | None = None
    ) -> None:
        super().__init__()
        self.cards = cards
        self.group_name = name
        self.groups = groups or [name]
        self.common = False
        self.states = [
            ViewState(page=c.state.page, colours=c.state.colours, extra=dict(c.state.extra))
            for c in cards
        ]

    def compose(self) -> ComposeResult:
        yield Static(id="group-title")
        with Horizontal(id="group"):
            for _ in self.cards:
                yield Vertical(classes="group-cell")
        yield Footer()

    def on_mount(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        scale = "on" if self.common else "off"
        self.query_one("#group-title", Static).update(
            f"[b]group {self.group_name}[/b]: {len(self.cards)} widgets   [ ] step all together   "
            f"s: common scale ({scale})   n: next group ({len(self.groups)})   Esc: back"
        )
        scales = (
            common_scale([(c.tool.view, c.table) for c in self.cards if c.table is not None])
            if self.common
            else {}
        )
        for cell, card, state in zip(
            self.query(".group-cell"), self.cards, self.states, strict=True
        ):
            cell.remove_children()
            state.extra.pop("common", None)
            if card.tool.view in scales:
                state.extra["common"] = scales[card.tool.view]
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

    def action_scale(self) -> None:
        self.common = not self.common
        self.redraw()

    def action_next_group(self) -> None:
        if len(self.groups) > 1:
            self.dismiss(self.groups[(self.groups.index(self.group_name) + 1) % len(self.groups)])

    def action_close(self) -> None:
        self.dismiss(None)
