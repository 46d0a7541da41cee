"""Guide screens: the findings of the silent-bug checks and the interestingness ranking.

Both list units; Enter jumps to the selected one (the caller receives its unit path).
Findings show, per finding, the epochs at which it was observed on a timeline of the
model's checkpoints, so a bug that appears at epoch 7 reads differently from one present
since initialization.
"""

from __future__ import annotations

import math
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.padding import Padding
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tinspect.tui.palette import scale

SEVERITY_STYLE = {"warning": "yellow", "error": "red", "critical": "bold red reverse"}


def context_text(context: dict[str, Any]) -> str:
    """The measured values behind a finding, e.g. ``min=0  zero_fraction=0.92``."""

    def short(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}"
        if isinstance(value, (list, tuple)):
            items = ", ".join(short(v) for v in list(value)[:8])
            return f"[{items}{', …' if len(value) > 8 else ''}] ({len(value)})"
        return str(value)

    return "  ".join(f"{k}={short(v)}" for k, v in context.items())


def error_timeline(findings: list[Any], epochs_of: dict[str, list[int]]) -> Text:
    """UMLAUT's error timeline: one column per epoch, the unique findings observed at it
    stacked, static (pre-training) findings set apart at the left."""
    text = Text()
    static = sorted({f.id for f in findings if not f.epochs})
    recorded = {e for f in findings for e in epochs_of.get(f.model_id, [])}
    epochs = sorted(recorded | {e for f in findings for e in f.epochs})[-30:]
    ids = sorted({f.id for f in findings if f.epochs})
    if static:
        text.append("static (before training): ", style="bold")
        text.append(", ".join(static) + "\n")
    if not ids:
        return text
    seen = {(f.id, e) for f in findings for e in f.epochs}
    width = max(len(i) for i in ids) + 2
    text.append(f"{'epoch':<{width}}", style="bold")
    for epoch in epochs:
        text.append(f"{epoch:>3}", style="bold")
    text.append("\n")
    for check_id in ids:
        style = SEVERITY_STYLE.get(
            max((f.severity for f in findings if f.id == check_id), key=_severity_rank), ""
        )
        text.append(f"{check_id:<{width}}", style=style)
        for epoch in epochs:
            text.append(
                "  ●" if (check_id, epoch) in seen else "  ·",
                style="red" if (check_id, epoch) in seen else "dim",
            )
        text.append("\n")
    return text


def _severity_rank(severity: str) -> int:
    order = list(SEVERITY_STYLE)
    return order.index(severity) if severity in order else -1


def timeline(epochs: list[int], hits: tuple[int, ...]) -> Text:
    """One glyph per checkpoint: ● where the finding was observed, · elsewhere."""
    text = Text()
    marks = set(hits)
    for epoch in epochs[-24:]:
        text.append("●" if epoch in marks else "·", style="red" if epoch in marks else "dim")
    return text


class FindingsScreen(ModalScreen[str]):
    """Every finding, most severe first; Enter jumps to the unit it points at."""

    BINDINGS = [Binding("escape,F", "close", "close", id="findings.close")]

    def __init__(
        self, findings: list[Any], epochs_of: dict[str, list[int]], scope: str = ""
    ) -> None:
        """``scope`` says which models were checked when not all were (thousands of models:
        the viewer checks those it has shown)."""
        super().__init__()
        self.findings = findings
        self.epochs_of = epochs_of
        self.scope = scope

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal wide"):
            yield Static(
                f"[b]findings[/b]: {len(self.findings)} (heuristics; Enter jumps to the unit)",
                classes="modal-title",
            )
            if self.scope:
                yield Static(f"[dim]{escape(self.scope)}[/dim]", id="findings-scope")
            yield Static(error_timeline(self.findings, self.epochs_of), id="findings-timeline")
            options = []
            for i, finding in enumerate(self.findings):
                text = Text()
                text.append(f" {finding.severity} ", style=SEVERITY_STYLE.get(finding.severity, ""))
                text.append(f" {finding.id} ", style="bold")
                text.append(finding.uoa)
                text.append("  ")
                text.append_text(timeline(self.epochs_of.get(finding.model_id, []), finding.epochs))
                body = Text(finding.title)
                if finding.context:
                    body.append(f"\nmeasured: {context_text(finding.context)}", style="cyan")
                body.append(f"\n{finding.explanation}", style="dim")
                body.append(f"\nfix: {finding.fix}", style="green")
                # The body as its own block, indented: wrapped lines keep the hanging indent.
                options.append(Option(Group(text, Padding(body, (0, 0, 0, 3))), id=str(i)))
            yield OptionList(*options, id="findings-list")
            yield Static("Enter: go to the unit   Esc: close", classes="modal-help")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.findings[int(event.option.id or 0)].uoa)

    def action_close(self) -> None:
        self.dismiss(None)


class RankScreen(ModalScreen[str]):
    """The most abnormal units for one interestingness measure."""

    BINDINGS = [Binding("escape,I", "close", "close", id="rank.close")]

    def __init__(self, measure: str, scores: list[Any]) -> None:
        super().__init__()
        self.measure = measure
        self.scores = scores

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal wide"):
            yield Static(
                f"[b]most abnormal units[/b] by {self.measure} (i: next measure in the main view)",
                classes="modal-title",
            )
            options = []
            for i, score in enumerate(self.scores):
                text = Text()
                text.append("██ ", style=scale(score.score))
                text.append(f"{score.score:4.2f} ", style="bold")
                raw = (
                    f"{score.raw:.3g}"
                    if isinstance(score.raw, float) and math.isfinite(score.raw)
                    else "-"
                )
                text.append(f"{score.path} {score.kind}  {self.measure}={raw}  [{score.type_key}]")
                options.append(Option(text, id=str(i)))
            yield OptionList(*options, id="rank-list")
            yield Static("Enter: go to the unit   Esc: close", classes="modal-help")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.scores[int(event.option.id or 0)].path)

    def action_close(self) -> None:
        self.dismiss(None)
