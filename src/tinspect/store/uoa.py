"""Units of analysis (UoA) and the one path syntax that names them everywhere.

``model``, ``model/layer``, ``model/layer/variable`` and ``model/layer/#neuron`` (``#``
and the index of a unit on the layer's last axis: a neuron, or a channel of a convolution).
The model part is a name, a label, a unique prefix of the id, or the model's directory name;
the same path appears in breadcrumbs, CLI targets, widget headers and CSV output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["model", "layer", "variable", "neuron"]


class UoAError(ValueError):
    """A path that names nothing, or more than one thing; the message lists candidates."""


class UnitNotFound(UoAError, KeyError):
    """A model, layer or experiment the store does not hold (any more: a model directory can
    be deleted while the viewer shows it). A ``UoAError`` with a one-line message; also a
    ``KeyError``, so a lookup written as ``except KeyError`` keeps working."""

    __str__ = Exception.__str__  # KeyError's would quote the message


@dataclass(frozen=True)
class UoA:
    """A resolved unit: the model's id plus, optionally, layer, variable or neuron."""

    model: str
    layer: str | None = None
    variable: str | None = None
    neuron: int | None = None

    @property
    def kind(self) -> Kind:
        if self.neuron is not None:
            return "neuron"
        if self.variable is not None:
            return "variable"
        if self.layer is not None:
            return "layer"
        return "model"

    def parent(self) -> UoA | None:
        """The unit one level up (neuron/variable → layer → model → None)."""
        if self.neuron is not None or self.variable is not None:
            return UoA(self.model, self.layer)
        if self.layer is not None:
            return UoA(self.model)
        return None


@dataclass(frozen=True)
class ParsedPath:
    """A path split into its parts, before the model reference is resolved."""

    model: str
    layer: str | None = None
    variable: str | None = None
    neuron: int | None = None


def parse_path(path: str) -> ParsedPath:
    """Split ``model/layer/variable`` or ``model/layer/#3``; raises UoAError when malformed."""
    text = path.strip().strip("/")
    if not text:
        raise UoAError("an empty unit path; expected model[/layer[/variable|/#neuron]]")
    parts = text.split("/")
    if len(parts) > 3 or any(not p for p in parts):
        raise UoAError(f"{path!r} is not a unit path; expected model[/layer[/variable|/#neuron]]")
    model = parts[0]
    layer = parts[1] if len(parts) > 1 else None
    variable, neuron = None, None
    if len(parts) == 3:
        last = parts[2]
        if last.startswith("#"):
            digits = last[1:]
            if not digits.isdigit():
                raise UoAError(f"{path!r}: a neuron is '#' and a number, e.g. #12")
            neuron = int(digits)
        else:
            variable = last
    return ParsedPath(model, layer, variable, neuron)


def format_path(model: str, uoa: UoA) -> str:
    """The path of ``uoa`` given the display name of its model."""
    parts = [model]
    if uoa.layer is not None:
        parts.append(uoa.layer)
        if uoa.variable is not None:
            parts.append(uoa.variable)
        elif uoa.neuron is not None:
            parts.append(f"#{uoa.neuron}")
    return "/".join(parts)
