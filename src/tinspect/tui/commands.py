"""The command palette (ctrl+p): every action, built from the current state.

Tools for the selected unit, jumps to every model, class toggles, export, problems, help:
so that nothing is reachable only by a key one has to remember.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tinspect.store import UoA
from tinspect.tui.selection import Selection
from tinspect.tui.tools import applicable

if TYPE_CHECKING:
    from tinspect.tui.app import TinspectApp


class TinspectCommands(Provider):
    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app: TinspectApp = self.app  # type: ignore[assignment]
        main = app.main
        store = main.store
        out: list[tuple[str, Callable[[], object], str]] = []
        unit = main.selection.label(store)
        for tool in applicable(main.selection, store):
            out.append(
                (f"tool: {tool.name} on {unit}", partial(main.choose_tool, tool), tool.description)
            )
        for model in store.ordered_models():
            name = store.display_name(model)
            out.append(
                (
                    f"go to model {name}",
                    partial(main.jump_to, Selection(uoa=UoA(model.id))),
                    model.label,
                )
            )
            out.append((f"open layers of {name}", partial(main.open_model, model.id), "level L2"))
        for experiment in store.tree.experiments:
            out.append(
                (
                    f"go to experiment {experiment.name}",
                    partial(main.jump_to, Selection(experiment=experiment.name)),
                    "level L3",
                )
            )
        out += [
            (
                "choose classes",
                main.action_classes,
                "the class selection for L1 and class-dependent widgets",
            ),
            ("clear the class selection", partial(main.set_classes, None), "all classes"),
            (
                "choose samples",
                main.action_samples,
                "the sample selection: misclassified, class:3, confusion:3,8, disagree:A,B ...",
            ),
            ("clear the sample selection", partial(main.set_samples, ""), "every sample"),
            ("export the focused widget as CSV", main.action_export, "same CSV as tinspect export"),
            ("search units", main.action_search, "models, layers, types, activations"),
            ("show problems in the logs", main.action_problems, "what could not be read"),
            (
                "group view of grouped widgets",
                main.action_group,
                "g marks widgets, G shows them side by side",
            ),
            (
                "merge grouped widgets",
                main.action_merge,
                "charts of the group whose axes agree: one chart, shared range (M)",
            ),
            (
                "diff two models of the group",
                main.action_diff_group,
                "layers, settings, metrics, distributions; Enter jumps to a layer (G, d)",
            ),
            ("toggle wide widget panel", main.action_toggle_widgets, "w"),
            ("go up one level", main.action_up, "Backspace"),
            ("show findings of the checks", main.action_findings, "F"),
            ("next interestingness measure", main.action_interest, "i"),
            ("help: keys", app.action_help, "?"),
        ]
        return out

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands()[:12]:
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> AsyncIterator[Hit]:  # type: ignore[override]
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
