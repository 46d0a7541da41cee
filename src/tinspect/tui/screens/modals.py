"""Modal screens that return typed results: toolbox, classes, export path, search, help,
problems. Each ends with ``dismiss(value)``; the caller passes a callback to ``push_screen``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, SelectionList, Static
from textual.widgets.option_list import Option
from textual.widgets.selection_list import Selection as ListSelection

from tinspect.tui.tools import Tool


class Toolbox(ModalScreen[Tool]):
    """The tools applicable to the selected unit; a letter or Enter applies one."""

    BINDINGS = [Binding("escape", "dismiss_none", "close", id="toolbox.close")]

    def __init__(self, tools: list[Tool], unit: str) -> None:
        super().__init__()
        self.tools = tools
        self.unit = unit

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Static(f"[b]tools[/b] for {self.unit}", classes="modal-title")
            options = []
            for tool in self.tools:
                text = Text()
                text.append(f" {tool.key} ", style="reverse bold")
                text.append(f" {tool.name}", style="bold")
                text.append(f"\n     {tool.description}", style="dim")
                options.append(Option(text, id=tool.id))
            yield OptionList(*options, id="tool-list")
            yield Static("letter or Enter: apply   Esc: close", classes="modal-help")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(next(t for t in self.tools if t.id == event.option.id))

    def on_key(self, event: Any) -> None:
        for tool in self.tools:
            if event.character == tool.key:
                event.stop()
                self.dismiss(tool)
                return

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class ClassSelector(ModalScreen[tuple[int, ...] | None]):
    """Toggle classes; none selected (or all) means no class selection."""

    BINDINGS = [
        Binding("escape", "apply", "apply", id="classes.apply"),
        Binding("a", "all", "all", id="classes.all"),
        Binding("n", "none", "none", id="classes.none"),
    ]

    def __init__(self, names: list[str], selected: tuple[int, ...] | None) -> None:
        super().__init__()
        self.names = names
        self.selected = selected

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Static(
                "[b]class selection[/b] (applies to L1 and every ◆ widget)", classes="modal-title"
            )
            chosen = set(self.selected) if self.selected is not None else set()
            yield SelectionList[int](
                *[
                    ListSelection(f"{i}: {name}", i, i in chosen)
                    for i, name in enumerate(self.names)
                ],
                id="class-list",
            )
            yield Static(
                "space: toggle   a: all   n: clear   Esc/Enter: apply", classes="modal-help"
            )

    def _value(self) -> tuple[int, ...] | None:
        chosen = tuple(sorted(self.query_one(SelectionList).selected))
        return None if not chosen or len(chosen) == len(self.names) else chosen

    def action_apply(self) -> None:
        self.dismiss(self._value())

    def action_all(self) -> None:
        self.query_one(SelectionList).select_all()

    def action_none(self) -> None:
        self.query_one(SelectionList).deselect_all()

    def on_key(self, event: Any) -> None:
        if event.key == "enter":
            event.stop()
            self.dismiss(self._value())


class SampleSelector(ModalScreen[str]):
    """Type a sample selection or pick one of the grammar's kinds made for these models.

    Returns the selection text, ``""`` for every sample (no selection), None when cancelled.
    The text is checked by the caller (``query.samples.parse``), which says what is wrong.
    """

    BINDINGS = [Binding("escape", "cancel", "cancel", id="samples.cancel")]

    def __init__(self, current: str | None, suggestions: list[tuple[str, str]]) -> None:
        super().__init__()
        self.current = current
        self.suggestions = suggestions  # (selection text, what it means)

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Static(
                "[b]sample selection[/b] (applies to every ◇ widget: per-sample data)",
                classes="modal-title",
            )
            yield Input(
                self.current or "", placeholder="e.g. misclassified, class:3", id="samples-input"
            )
            yield OptionList(
                *[
                    Option(Text.assemble((text, "bold"), "  ", (meaning, "dim")), id=text)
                    for text, meaning in self.suggestions
                ],
                id="samples-kinds",
            )
            yield Static(
                "type, or ↓ and Enter to pick   empty: all samples   Esc: cancel",
                classes="modal-help",
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(str(event.option.id))

    def action_cancel(self) -> None:
        self.dismiss(None)


class AskText(ModalScreen[str]):
    """One line of text (a group's name); None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "cancel", id="text.cancel")]

    def __init__(self, title: str, default: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Static(f"[b]{self.title_text}[/b]", classes="modal-title")
            yield Input(self.default, id="text-input")
            yield Static("Enter: ok   Esc: cancel", classes="modal-help")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class AskPath(ModalScreen[Path]):
    """Ask where to write a file, with a sensible default."""

    BINDINGS = [Binding("escape", "cancel", "cancel", id="path.cancel")]

    def __init__(self, title: str, default: Path) -> None:
        super().__init__()
        self.title_text = title
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Static(f"[b]{self.title_text}[/b]", classes="modal-title")
            yield Input(str(self.default), id="path-input")
            yield Static("Enter: write   Esc: cancel", classes="modal-help")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        self.dismiss(Path(value).expanduser() if value else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class Search(ModalScreen[str]):
    """Find models and layers by name, class, activation or badge; returns a unit path."""

    BINDINGS = [Binding("escape", "cancel", "cancel", id="search.cancel")]

    def __init__(self, entries: list[tuple[str, str]]) -> None:
        super().__init__()
        self.entries = entries  # (unit path, searchable description)

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Static(
                "[b]search[/b] models, layers, layer types, activations, structures",
                classes="modal-title",
            )
            yield Input(placeholder="e.g. conv, relu, skip, z_mean", id="search-input")
            yield OptionList(id="search-results")
            yield Static("type to filter   ↓ then Enter: go   Esc: close", classes="modal-help")

    def on_mount(self) -> None:
        self._fill("")

    def _fill(self, text: str) -> None:
        words = text.lower().split()
        results = self.query_one("#search-results", OptionList)
        matches = [(p, d) for p, d in self.entries if all(w in f"{p} {d}".lower() for w in words)]
        results.set_options(
            [Option(Text.assemble((p, "bold"), "  ", (d, "dim")), id=p) for p, d in matches[:200]]
        )

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        results = self.query_one("#search-results", OptionList)
        if results.option_count:
            self.dismiss(results.get_option_at_index(results.highlighted or 0).id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextModal(ModalScreen[None]):
    """A scrollable text (help, problems)."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "close", id="text.close")]

    def __init__(self, title: str, body: Any) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        from textual.containers import VerticalScroll

        with Vertical(classes="modal wide"):
            yield Static(f"[b]{self.title_text}[/b]", classes="modal-title")
            with VerticalScroll():
                yield Static(self.body)
            yield Static("Esc: close", classes="modal-help")

    def action_close(self) -> None:
        self.dismiss(None)
