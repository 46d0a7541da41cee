"""Problems found in logs: one line each, never a traceback.

Logs are written by other processes, possibly still running, possibly killed, possibly by
another version. Whatever is wrong with one file must not stop a reader from using the rest,
so the store turns every such fault into a ``Problem`` and carries on. The CLI prints them
on stderr; the viewer lists them in its status area.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Severity(StrEnum):
    #: Expected while training runs (a checkpoint being written, a torn last line).
    INFO = "info"
    #: Part of the logs is unusable and skipped (a corrupt checkpoint, a broken line).
    WARNING = "warning"
    #: A whole model is unusable (unreadable model.json, missing id, other format major).
    ERROR = "error"


@dataclass(frozen=True)
class Problem:
    """What is wrong (``what``), where (``path``), and what to do about it (``hint``)."""

    path: str
    what: str
    hint: str = ""
    severity: Severity = Severity.WARNING

    def __str__(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.severity.value}: {self.path}: {self.what}{hint}"


def problem(
    path: Path | str, what: str, hint: str = "", severity: Severity = Severity.WARNING
) -> Problem:
    return Problem(str(path), what, hint, severity)


class ProblemLog:
    """Problems in the order found, each reported once (the same file is re-read on refresh)."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], Problem] = {}

    def add(self, item: Problem) -> Problem:
        self._items.setdefault((item.path, item.what), item)
        return item

    def discard_path(self, path: Path | str) -> None:
        """Forget the problems of a file that changed (it may be fine now)."""
        key = str(path)
        for k in [k for k in self._items if k[0] == key]:
            del self._items[k]

    def __iter__(self) -> Iterator[Problem]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)
