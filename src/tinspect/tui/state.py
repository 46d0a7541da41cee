"""The viewer state that is passed down: guides, and where the user is.

``Guides`` holds what colours and marks the levels (structure and finding badges, the
interestingness of every unit); it is immutable and replaced as a whole when a worker
delivers new results, so a level widget that holds one always draws a consistent picture,
and a reactive attribute holding it redraws its widget when it is replaced.
``Place`` is where the navigation stands: level, model, layer. The main screen owns both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tinspect.store import UoA

if TYPE_CHECKING:
    from tinspect.analysis.diagnose import Finding

#: Finding severity level → badge markup (warning, error, critical).
FINDING_MARKS = {0: "[yellow]⚠[/]", 1: "[red]⚠[/]", 2: "[bold red]⚠[/]"}


@dataclass(frozen=True)
class Guides:
    """Badges, findings and interestingness, as of the last worker result."""

    badges: dict[tuple[str, str | None], str] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    measure: str | None = None
    interest: dict[str, dict[Any, float]] = field(default_factory=dict)
    scores: tuple[Any, ...] = ()
    #: model id → one line of what changed against its first parent (``analysis.diff``).
    deltas: dict[str, str] = field(default_factory=dict)

    def badges_for(self, uoa: UoA | None) -> str:
        if uoa is None:
            return ""
        return self.badges.get((uoa.model, uoa.layer), "")

    def interest_of(self, kind: str, key: Any) -> float | None:
        """The 0-1 score of a unit (``kind``: experiments, models, layers), None when off."""
        value = self.interest.get(kind, {}).get(key)
        return None if value is None or not math.isfinite(value) else float(value)

    def flagged_units(self, path: str) -> dict[int, list[str]]:
        """Units of the layer at ``path`` that findings name (dead, saturated): L1 badges."""
        flagged: dict[int, list[str]] = {}
        for finding in self.findings:
            if finding.uoa == path:
                for unit in finding.context.get("units", []) or []:
                    flagged.setdefault(int(unit), []).append(finding.id)
        return flagged

    def with_findings(
        self,
        structure: dict[tuple[str, str | None], str],
        findings: list[Finding],
        resolve: Any,
    ) -> Guides:
        """New guides with structure badges and the worst finding mark per model and layer.

        ``resolve`` turns a finding's unit path into a ``UoA`` (it raises for paths that no
        longer resolve, e.g. a model removed since the checks ran; those are skipped).
        """
        worst: dict[tuple[str, str | None], int] = {}
        for finding in findings:
            try:
                uoa = resolve(finding.uoa)
            except ValueError:
                continue
            for key in ((uoa.model, uoa.layer), (uoa.model, None)):
                worst[key] = max(worst.get(key, -1), finding.level)
        badges = dict(structure)
        for key, level in worst.items():
            badges[key] = (badges.get(key, "") + " " + FINDING_MARKS[level]).strip()
        return replace(self, badges=badges, findings=tuple(findings))

    def with_interest(
        self, measure: str | None, scores: list[Any], levels: dict[str, dict[Any, float]]
    ) -> Guides:
        return replace(self, measure=measure, interest=levels, scores=tuple(scores))


@dataclass(frozen=True)
class Place:
    """Where the navigation stands: the level shown and the model and layer open in it."""

    level: int = 3
    model_id: str | None = None
    layer: str | None = None
