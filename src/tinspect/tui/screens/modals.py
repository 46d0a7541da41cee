"""Modal screens that return typed results: toolbox, classes, samples, the compare tools'
second model and filter, export path, search, help, problems. Each ends with
``dismiss(value)``; the caller passes a callback to ``push_screen``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, SelectionList, Static
from textual.widgets.option_list import Option
from textual.widgets.selection_list import Selection as ListSelection
from textual.worker import get_current_worker

from tinspect.tui.tools import Tool

if TYPE_CHECKING:
    from tinspect.tui.imacs import Choice


class Toolbox(ModalScreen[Tool]):
    """The tools applicable to the selected unit; a letter or Enter applies one.

    ``unavailable`` lists tools that do not apply here with the reason (the compare tools
    on a model without attributions), shown disabled, so that a missing tool is explained.
    """

    BINDINGS = [Binding("escape", "dismiss_none", "close", id="toolbox.close")]

    def __init__(
        self, tools: list[Tool], unit: str, unavailable: list[tuple[Tool, str]] | None = None
    ) -> None:
        super().__init__()
        self.tools = tools
        self.unit = unit
        self.unavailable = unavailable or []

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
            for tool, why in self.unavailable:
                text = Text(f" {tool.key}  {tool.name}", style="dim strike")
                text.append(f"\n     {why}", style="dim")
                options.append(Option(text, id=f"unavailable-{tool.id}", disabled=True))
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


#: The option id of "no filter" (an empty id would be no id).
NO_FILTER = "none"


def _choice_option(choice: Choice) -> Option:
    """A picker line: the reference in bold, what it is, and why not when disabled."""
    name = choice.ref or NO_FILTER
    if choice.disabled is None:
        return Option(Text.assemble((name, "bold"), "  ", (choice.label, "dim")), id=name)
    text = Text.assemble((name, "dim strike"), "  ", (choice.label, "dim"))
    text.append(f"\n   {choice.disabled}", style="dim italic")
    return Option(text, id=name, disabled=True)


class PickModel(ModalScreen[str]):
    """The second model of a comparison: the experiment's other models, the model's own
    initialization, models of other experiments; those that cannot be used are disabled
    with the reason. Returns a ``MODEL[@EPOCH]`` reference, None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "cancel", id="pick-model.cancel")]

    def __init__(self, model: str, tool: str, choices: list[Choice]) -> None:
        super().__init__()
        self.model = model
        self.tool = tool
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Static(
                f"compare a = [b]{escape(self.model)}[/b] with b = …  "
                f"[dim]({escape(self.tool)})[/dim]",
                classes="modal-title",
            )
            yield OptionList(*[_choice_option(c) for c in self.choices], id="pick-model-list")
            yield Static("↑↓ Enter: compare   Esc: cancel", classes="modal-help")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        usable = [i for i, c in enumerate(self.choices) if c.disabled is None]
        if usable:
            options.highlighted = usable[0]

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(str(event.option.id))

    def action_cancel(self) -> None:
        self.dismiss(None)


class FilterPicker(ModalScreen[str]):
    """The compare tools' filter: type one (``imacs.FILTER_GRAMMAR``) or pick one, each
    with the number of samples it keeps. Returns its text, ``""`` for none, None when
    cancelled; the caller checks the text."""

    BINDINGS = [Binding("escape", "cancel", "cancel", id="filter.cancel")]

    def __init__(self, current: str | None, choices: list[Choice]) -> None:
        super().__init__()
        self.current = current
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Static(
                "[b]filter[/b] the compared samples (before sampling and clustering)",
                classes="modal-title",
            )
            yield Input(
                self.current or "",
                placeholder="e.g. fp, fp@a, predicted:3, disagree, disagree:0.8",
                id="filter-input",
            )
            yield OptionList(*[_choice_option(c) for c in self.choices], id="filter-list")
            yield Static(
                "type, or ↓ and Enter to pick   empty: no filter   Esc: cancel",
                classes="modal-help",
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        chosen = str(event.option.id or NO_FILTER)
        self.dismiss("" if chosen == NO_FILTER else chosen)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PairPicker(ModalScreen[tuple[str, str]]):
    """Two of a group's models to diff: every pair, the one earlier in the logs as a.

    ``models`` come in the logs' order (parents before children), so ``b against a`` reads
    as a generation step. Returns (a, b) model ids, None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "cancel", id="pair.cancel")]

    def __init__(self, models: list[str], names: dict[str, str]) -> None:
        super().__init__()
        self.pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1 :]]
        self.names = names

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Static(
                "[b]diff of two models[/b] of the group: b against a", classes="modal-title"
            )
            yield OptionList(
                *[
                    Option(
                        Text.assemble(
                            (self.names[b], "bold"), "  against  ", (self.names[a], "bold")
                        ),
                        id=f"{a}:{b}",
                    )
                    for a, b in self.pairs
                ],
                id="pair-list",
            )
            yield Static("↑↓ Enter: diff   Esc: cancel", classes="modal-help")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        a, b = str(event.option.id).split(":")
        self.dismiss((a, b))

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


class BadgeKinds(ModalScreen[frozenset[str] | None]):
    """The localization panel: which layer kinds and structures get badges at every level."""

    BINDINGS = [
        Binding("escape", "apply", "apply", id="badges.apply"),
        Binding("a", "all", "all", id="badges.all"),
        Binding("n", "none", "none", id="badges.none"),
    ]

    def __init__(self, kinds: list[str], shown: frozenset[str] | None) -> None:
        super().__init__()
        self.kinds = kinds
        self.shown = shown

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Static(
                "[b]localization[/b]: badges for these kinds and structures", classes="modal-title"
            )
            yield SelectionList[str](
                *[
                    ListSelection(kind, kind, self.shown is None or kind in self.shown)
                    for kind in self.kinds
                ],
                id="badge-list",
            )
            yield Static(
                "space: toggle   a: all   n: none   Esc/Enter: apply", classes="modal-help"
            )

    def _value(self) -> frozenset[str] | None:
        chosen = frozenset(self.query_one(SelectionList).selected)
        return None if len(chosen) == len(self.kinds) else chosen

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


#: Seconds a search waits for the next keystroke before it starts.
SEARCH_DEBOUNCE_SECONDS = 0.12


class Search(ModalScreen["SearchResult"]):
    """Find layers by kind, structure or name (``model:`` for models); returns the unit
    chosen and every hit, which the main screen then highlights in the levels."""

    BINDINGS = [
        Binding("escape", "cancel", "cancel", id="search.cancel"),
        Binding("down", "results", "to the results", show=False, id="search.results"),
    ]

    def __init__(
        self,
        finder: Callable[[str], list[Any]],
        query: str = "",
        filters: bool = False,
        quick: Callable[[str], list[Any]] | None = None,
        large: bool = False,
    ) -> None:
        """``large``: the finder takes long (thousands of models); Enter and ↓ then never
        wait for it on the UI thread."""
        super().__init__()
        self.finder = finder  # query -> hits with .path and .what
        self.quick = quick  # query -> hits shown at once, before ``finder``'s (headers only)
        self.large = large
        self.query_text = query
        self.filters = filters  # at L3: the first option may filter the models
        self.hits: list[Any] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            if self.filters:
                title = (
                    "[b]filter[/b] models by name, label, badge, [b]key=value[/b] "
                    "(learning_rate=1e-3, val_accuracy>0.9), or [b]search[/b] layers"
                )
            else:
                title = "[b]search[/b] layers by kind, structure or name; [b]model:[/b] for models"
            yield Static(title, classes="modal-title")
            yield Input(
                self.query_text,
                placeholder="e.g. conv relu, skip, z_mean, model:vae"
                + (", batch_size>16" if self.filters else ""),
                id="search-input",
            )
            yield OptionList(id="search-results")
            yield Static(
                "type to search   ↓ then Enter: go (hits stay marked)   empty + Enter: clear marks",
                classes="modal-help",
            )

    def on_mount(self) -> None:
        self._shown_for: str | None = None  # the query whose hits are all shown
        self._partial_for: str | None = None  # the query whose quick hits are shown
        self._submit_when: str | None = None  # Enter pressed: apply when its search is done
        self._search(self.query_text)

    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def _search(self, text: str) -> None:
        """Find off the UI thread: with thousands of models a query reads many headers,
        and typing must not wait for it. A newer keystroke cancels the older search; a
        short pause first lets a burst of keystrokes start one search, not one each."""
        import time

        if text and text != self.query_text:
            time.sleep(SEARCH_DEBOUNCE_SECONDS)
        if get_current_worker().is_cancelled:
            return
        try:
            if self.quick is not None:
                first = self.quick(text)
                if get_current_worker().is_cancelled:
                    return
                self.app.call_from_thread(self._fill, text, first, True)
            hits = self._find(text)
        except Exception as error:  # a search never takes the viewer down  # noqa: BLE001
            hits = []
            self.app.call_from_thread(self.notify, f"search failed: {error}", severity="error")
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._fill, text, hits)

    def _find(self, text: str) -> list[Any]:
        """Every hit: the quick ones first, then the finder's (each unit once)."""
        hits = list(self.quick(text)) if self.quick is not None else []
        hits += [h for h in self.finder(text) if h not in hits]
        return hits

    def _fill(self, text: str, hits: list[Any], partial: bool = False) -> None:
        if not self.is_attached or self.app.screen is not self:
            return  # dismissed while a search was running: nothing to show it in
        if text != self.query_one("#search-input", Input).value:
            return  # a result for a query the user has typed past
        if self._shown_for == text:
            return  # complete already (Enter or ↓ asked for it): keep the highlight
        if partial and self._submit_when == text:
            return  # Enter found no quick hit: "searching…" stays until the layers are in
        self.hits, self._shown_for = hits, None if partial else text
        self._partial_for = text if partial else None
        results = self.query_one("#search-results", OptionList)
        highlighted = results.highlighted if results.has_focus else None
        results.set_options(
            [
                Option(
                    Text.assemble(("⧩ ", "bold yellow"), (h.what, "bold yellow"))
                    if getattr(h, "keeps", None) is not None
                    else Text.assemble((h.path, "bold"), "  ", (h.what, "dim")),
                    id=str(i),
                )
                for i, h in enumerate(self.hits[:200])
            ]
        )
        if highlighted is not None and highlighted < results.option_count:
            results.highlighted = highlighted  # the quick hits come first: the same one
        if not partial and self._submit_when == text:
            self.dismiss(self._result(0 if self.hits else None))

    def on_input_changed(self, event: Input.Changed) -> None:
        self._search(event.value)

    def _complete(self, text: str) -> None:
        """Every hit of ``text`` now, on the UI thread (a small logdir: a few ms)."""
        self.workers.cancel_group(self, "search")
        self._fill(text, self._find(text))

    def dismiss(self, result: Any = None) -> Any:
        self.workers.cancel_group(self, "search")  # a search still running shows nothing
        return super().dismiss(result)

    def _result(self, index: int | None) -> SearchResult:
        text = self.query_one("#search-input", Input).value
        hit = self.hits[index] if index is not None and index < len(self.hits) else None
        keeps = getattr(hit, "keeps", None)
        if keeps is not None:  # the L3 filter: no unit to go to, no marks
            marks = tuple(h for h in self.hits if getattr(h, "keeps", None) is None)
            return SearchResult(text, None, marks, keeps)
        units = tuple(h for h in self.hits if getattr(h, "keeps", None) is None)
        return SearchResult(text, hit.path if hit is not None else None, units)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Go to the highlighted hit. Before the search is done: a jump or a filter (the
        quick, headers-only hits) applies at once; a layer search applies when its worker
        finishes (at thousands of models it reads every model.json: seconds, which the UI
        thread must not spend)."""
        text = event.value
        results = self.query_one("#search-results", OptionList)
        if self._shown_for != text and (not self.large or not text.strip()):
            self._complete(text)  # quick enough on the spot (or nothing to find)
        if self._shown_for == text:
            self.dismiss(self._result(results.highlighted or 0 if results.option_count else None))
            return
        if self._partial_for != text and self.quick is not None:
            self._fill(text, self.quick(text), partial=True)
        if self._partial_for == text and self.hits:
            self.dismiss(self._result(results.highlighted or 0))
            return
        self._submit_when = text
        results.set_options([Option(Text("searching…", style="dim"), disabled=True)])
        if not any(w.group == "search" and w.is_running for w in self.workers):
            self._search(text)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self._result(int(event.option.id or 0)))

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_results(self) -> None:
        """↓ in the query: into the results shown, on the first one (OptionList moves on
        from it); the rest of a running search is added below without moving it."""
        text = self.query_one("#search-input", Input).value
        if self._shown_for != text and not self.large:
            self._complete(text)
        elif self._shown_for != text and self._partial_for != text and self.quick is not None:
            self._fill(text, self.quick(text), partial=True)
        results = self.query_one("#search-results", OptionList)
        if results.option_count and not results.has_focus:
            results.focus()
            results.highlighted = 0


@dataclass(frozen=True)
class SearchResult:
    """What the search was, the unit chosen (None: none), and every hit."""

    query: str
    path: str | None
    hits: tuple[Any, ...]
    #: Models to keep in L3 when the filter option was chosen (None: not a filter).
    keeps: frozenset[str] | None = None


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
