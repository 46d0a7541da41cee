"""The one-line bars: breadcrumbs on top, the status line and the keys below.

The breadcrumbs name where the user is (logdir › experiment › model › layer › unit) with
clickable parts, and, right-aligned so it stays visible at 80 columns however long the path,
the level badge and the class selection. The logdir is shown by its last component: the
full path of a long checkout would push everything else off screen.
"""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Footer, Static

from tinspect.store import Severity, Store
from tinspect.tui.messages import KeysDrawn
from tinspect.tui.palette import ModelColours
from tinspect.tui.selection import Selection


def root_name(path: Path) -> str:
    """A logdir as the user recognises it: its last component (``.`` resolved)."""
    return path.name or path.resolve().name or str(path)


class Crumbs(Horizontal):
    """Where the user is; clicking a part jumps to that level."""

    def compose(self) -> ComposeResult:
        yield Static(id="crumbs-path")
        yield Static(id="crumbs-level")

    def show(
        self,
        store: Store,
        colours: ModelColours,
        level: int,
        selection: Selection,
        model_id: str | None,
        classes: tuple[int, ...] | None,
        samples: str | None = None,
    ) -> None:
        roots = " + ".join(root_name(r) for r in store.roots)
        parts = [f"[@click=screen.crumb(3)]{escape(roots)}[/]"]
        uoa = selection.uoa
        shown = uoa.model if uoa else (model_id if level < 3 else None)
        if shown is not None and shown in store.models:
            experiment = store.tree.experiment_of(shown).name
            parts.append(f"[@click=screen.crumb(3)]{escape(experiment)}[/]")
            name = store.display_name(store.models[shown])
            parts.append(f"[@click=screen.crumb(2)][{colours(shown)}]{escape(name)}[/][/]")
            if uoa and uoa.layer and level <= 2:
                parts.append(f"[@click=screen.crumb(1)]{escape(uoa.layer)}[/]")
                if uoa.variable:
                    parts.append(escape(uoa.variable))
                elif uoa.neuron is not None:
                    parts.append(f"#{uoa.neuron}")
        elif selection.experiment:
            parts.append(escape(selection.experiment))
        chosen = "all classes" if classes is None else "classes " + ",".join(map(str, classes))
        self.query_one("#crumbs-path", Static).update(f"[b]tinspect[/b]  {' › '.join(parts)}")
        picked = f"  [b]◇ {escape(samples)}[/b]" if samples else ""
        self.query_one("#crumbs-level", Static).update(
            f"[reverse] L{level} [/reverse] [dim]{chosen}[/dim]{picked}"
        )


class StatusLine(Static):
    """Model count, problems (P lists them), findings (F), and the latest message."""

    def show(self, store: Store, message: str = "", errors: int = 0, findings: int = 0) -> None:
        problems = list(store.problems)
        serious = [p for p in problems if p.severity is not Severity.INFO]
        text = f"{len(store.models)} models"
        if store.pending:  # the loader is still reading the logdir
            total = len(store.models) + store.pending
            text = f"[b]reading models {len(store.models)} of {total}…[/b]"
        elif getattr(store, "unverified", False):  # shown from the header index
            text += " [dim](checking the logdir…)[/dim]"
        count = len(serious) + errors
        if count:
            text += f"  [red]{count} problems[/red] (P: list)"
        elif problems:
            text += f"  [dim]{len(problems)} notes (P: list)[/dim]"
        if findings:
            text += f"  [yellow]{findings} findings[/yellow] (F)"
        if message:  # the latest message first: it answers what the user just did
            text += f"  │ {escape(message)}"
        elif serious:
            text += f"  [dim]{escape(str(serious[-1]))}[/dim]"
        self.update(text)


class KeysFooter(Footer):
    """Textual's footer, which tells its screen once its keys are on screen.

    The footer draws its keys a few frames after the rest (when the screen's bindings are
    first published). The main screen starts its loader and guides only then: started
    earlier, their threads took the GIL from those frames and the keys of a 10,000-model
    logdir appeared 0.4 s after its tree.
    """

    _told = False

    async def recompose(self) -> None:
        await super().recompose()
        if not self._told and self.children:
            self._told = True
            self.call_after_refresh(self.post_message, KeysDrawn())
