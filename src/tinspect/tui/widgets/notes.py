"""Cards that are not charts: a markdown note on a unit and the header of a branch.

Notes are saved in ``tinspect-notes.md`` next to the logdir (a sibling file, never inside a
log file or checkpoint), one section per unit path, so they can be read and versioned
without tinspect. The branch card shows the ``tinspect.branch(...)`` call for a child of the
selected model and writes it to a Python file in the current directory on ``w``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from textual.binding import Binding
from textual.widgets import Static, TextArea

from tinspect.tui.widgets.card import WidgetCard

SECTION = re.compile(r"^## (?P<path>.+)$", re.MULTILINE)


def notes_path(logdir: Path) -> Path:
    logdir = logdir.resolve()
    return logdir.parent / f"{logdir.name}.tinspect-notes.md"


def read_notes(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    notes: dict[str, str] = {}
    matches = list(SECTION.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        notes[match.group("path").strip()] = text[match.end() : end].strip("\n")
    return notes


def write_notes(path: Path, notes: dict[str, str]) -> None:
    body = "# tinspect notes\n\n" + "".join(
        f"## {k}\n\n{v.strip()}\n\n" for k, v in notes.items() if v.strip()
    )
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(path)


class NoteCard(WidgetCard):
    """A markdown note on the card's unit; ctrl+s saves it beside the logdir."""

    BINDINGS = [
        Binding("ctrl+s", "save", "save note", id="note.save"),
        Binding("J", "jump", "jump to unit", id="note.jump"),
        Binding("delete,D", "remove", "remove", id="note.remove"),
    ]

    def compose(self):
        yield Static(self._header_text(), classes="card-header")
        yield TextArea(self._initial(), language="markdown", classes="note")
        yield Static("[dim]ctrl+s saves to " + str(self._path()) + "[/dim]", classes="card-foot")

    def _path(self) -> Path:
        return notes_path(self.store.roots[0])

    def _initial(self) -> str:
        return read_notes(self._path()).get(self.unit_title, "")

    def load(self) -> None:  # nothing to compute
        return

    def action_save(self) -> None:
        path = self._path()
        notes = read_notes(path)
        notes[self.unit_title] = self.query_one(TextArea).text
        try:
            write_notes(path, notes)
        except OSError as error:
            self.post_status(f"could not save the note: {error.strerror}")
            return
        self.post_status(f"note saved to {path}")


def branch_code(header: dict[str, Any], name: str) -> str:
    hp = dict(header.get("hyperparameters") or {})
    args = "".join(f",\n    {k}={json.dumps(v)}" for k, v in hp.items() if k.isidentifier())
    return (
        "import tinspect\n\n"
        f"# a child of {header['name']} ({header['id']})\n"
        f"header = tinspect.branch(\n    {json.dumps(header['id'])},\n"
        f"    name={json.dumps(name)},\n"
        f"    label={json.dumps(header.get('label', header['name']) + ' (variant)')}{args},\n)\n"
    )


class BranchCard(WidgetCard):
    """The ``tinspect.branch(...)`` call for a child of the model; w writes it to a file."""

    BINDINGS = [
        Binding("w", "write", "write .py", id="branch.write"),
        Binding("delete,D", "remove", "remove", id="branch.remove"),
    ]

    def _code(self) -> str:
        model = self.store.models[self.selection.models(self.store)[0]]
        header = model.info.get("header", {})
        return branch_code(header, f"{model.name}_child")

    def compose(self):
        yield Static(self._header_text(), classes="card-header")
        yield Static(self._code(), classes="code")
        yield Static(
            "[dim]w writes this to a .py file in the current directory[/dim]", classes="card-foot"
        )

    def load(self) -> None:
        return

    def action_write(self) -> None:
        model = self.store.models[self.selection.models(self.store)[0]]
        path = Path.cwd() / f"branch_{re.sub(r'[^A-Za-z0-9_]+', '_', model.name)}.py"
        try:
            path.write_text(self._code(), encoding="utf-8")
        except OSError as error:
            self.post_status(f"could not write {path}: {error.strerror}")
            return
        self.post_status(f"wrote {path}")
