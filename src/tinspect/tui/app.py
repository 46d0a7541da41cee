"""The tinspect viewer's App: global keys, the command palette, the keymap, worker errors.

Everything else lives in the main screen (``screens/main.py``): the levels of abstraction
(L3 experiments → L2 a model's layer graph → L1 a layer) beside the widget panel, the
navigation, the class selection and the guides. The App stays thin so that a change to one
level means reading that level's module, not this one.
"""

from __future__ import annotations

from textual import on
from textual.app import App
from textual.binding import Binding

from tinspect.store import Store
from tinspect.tui.commands import TinspectCommands
from tinspect.tui.keys import help_text, keymap_path, load_keymap
from tinspect.tui.messages import WorkerFailed
from tinspect.tui.screens.main import MainScreen
from tinspect.tui.widgets.card import WidgetCard
from tinspect.tui.widgets.layer import LayerDetail


class TinspectApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "tinspect"
    COMMANDS = App.COMMANDS | {TinspectCommands}
    BINDINGS = [
        Binding("question_mark", "help", "help", id="help", tooltip="every key (this screen)"),
        Binding("q", "quit", "quit", id="quit", tooltip="quit"),
    ]

    def __init__(
        self,
        store: Store,
        refresh_seconds: float = 2.0,
        keymap: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.refresh_seconds = refresh_seconds
        problem = None
        if keymap is None:
            keymap, problem = load_keymap(keymap_path())
        self.keymap = keymap
        self.keymap_problem = problem

    def get_default_screen(self) -> MainScreen:
        notices = (self.keymap_problem,) if self.keymap_problem else ()
        return MainScreen(self.store, self.refresh_seconds, notices)

    @property
    def main(self) -> MainScreen:
        """The main screen (the default screen, under any modal)."""
        screen = self.screen_stack[0]
        assert isinstance(screen, MainScreen)
        return screen

    def on_mount(self) -> None:
        if self.keymap:
            self.set_keymap(self.keymap)

    async def action_quit(self) -> None:
        self.workers.cancel_all()  # guide and card workers stop at their next check
        self.exit()

    def action_help(self) -> None:
        from tinspect.tui.screens.group import GroupScreen
        from tinspect.tui.screens.modals import TextModal

        if isinstance(self.screen, TextModal):
            return
        sections = [
            ("everywhere", self.BINDINGS),
            ("inspection panel (L3, L2, L1)", MainScreen.BINDINGS),
            ("on L1, a layer", LayerDetail.BINDINGS),
            ("on a focused widget", WidgetCard.BINDINGS),
            ("in the group view (G)", GroupScreen.BINDINGS),
        ]
        self.push_screen(TextModal("keys", help_text(self, self.keymap, sections)))

    @on(WorkerFailed)
    def _worker_failed(self, message: WorkerFailed) -> None:
        """The one route for unexpected worker errors (see ``tui.errors``): a status line
        and the problems list (``P``), never a traceback, never a dead viewer."""
        self.main.worker_failed(message.what, message.error)
