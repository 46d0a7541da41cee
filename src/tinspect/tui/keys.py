"""Keys: the user's keymap file, and the help text that shows keys as they are typed.

Every binding has an id (``tools``, ``card.export``, ``nav.up``...). A TOML file maps ids to
keys, e.g. ``tools = "T"`` or ``"nav.up" = "backspace,u"``, and is applied with Textual's
``App.set_keymap``; it lives at ``$TINSPECT_KEYMAP`` or in the user config directory
(``~/.config/tinspect/keymap.toml`` on Linux). A broken file is a one-line problem, never a
reason not to start.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

from rich.text import Text
from textual.app import App
from textual.binding import Binding, BindingType


def keymap_path() -> Path:
    explicit = os.environ.get("TINSPECT_KEYMAP")
    if explicit:
        return Path(explicit).expanduser()
    from platformdirs import user_config_path

    return user_config_path("tinspect") / "keymap.toml"


def load_keymap(path: Path) -> tuple[dict[str, str], str | None]:
    """(binding id → keys, problem or None). A missing file is no problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        return {}, f"keymap {path} ignored: {error}"
    keymap = {str(k): v for k, v in data.items() if isinstance(v, str) and v.strip()}
    bad = sorted(str(k) for k, v in data.items() if not (isinstance(v, str) and v.strip()))
    problem = f"keymap {path}: ignored non-string entries {', '.join(bad)}" if bad else None
    return keymap, problem


def _bindings(items: Iterable[BindingType]) -> list[Binding]:
    return [b if isinstance(b, Binding) else Binding(*b) for b in items]


def key_text(app: App[object], binding: Binding, keymap: dict[str, str]) -> str:
    """The keys of ``binding`` as a user types them (``?``, ``/``, ``[``), keymap applied."""
    keys = keymap.get(binding.id, binding.key) if binding.id else binding.key
    return ", ".join(
        app.get_key_display(Binding(key.strip(), binding.action)) for key in keys.split(",")
    )


def help_text(
    app: App[object],
    keymap: dict[str, str],
    sections: Sequence[tuple[str, Iterable[BindingType]]],
) -> Text:
    """Every binding, grouped by where it applies, with its keys as typed."""
    text = Text()
    text.append("Enter descends a level (model → layers → layer); Backspace/Escape goes up;\n")
    text.append("a click on a breadcrumb jumps there; Tab moves between the panels;\n")
    text.append("ctrl+p opens the command palette with every action.\n")
    text.append(f"Remap keys by binding id (right column) in {keymap_path()}\n\n", style="dim")
    for title, items in sections:
        text.append(f"{title}\n", style="bold underline")
        for binding in _bindings(items):
            text.append(f"  {key_text(app, binding, keymap):<10}", style="bold")
            text.append(f" {binding.tooltip or binding.description or binding.action:<34}")
            text.append(f" {binding.id}\n" if binding.id else "\n", style="dim")
        text.append("\n")
    text.append("◆ marks widgets whose data follow the class selection (c).\n", style="dim")
    text.append("◇ marks widgets whose data follow the sample selection (S).\n", style="dim")
    return text
