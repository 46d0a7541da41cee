"""A query as plain data: what to read, from which units, epochs and classes, and one step.

Queries come from the CLI, from the viewer's tool registry and from JSON files; they are
validated here with messages that name the offending field, and never evaluated as code.

* ``uoas``: unit paths (``model/layer``, ``model/layer/kernel``, ``model/layer/#3``);
  several for a comparison across models (histograms then share one bin range).
* ``data``: metrics, weights, activations, mean_class_activations, samples, predictions,
  runtime (per checkpoint: inference time per sample, weight bytes, optimizer step).
* ``epochs``: ``last``, ``first``, ``all``, an epoch ``N`` or a range ``A:B`` (inclusive).
* ``classes``: the class selection (sample rows whose class is listed), or None for all.
* ``samples``: a sample selection in the grammar of ``tinspect.query.samples`` (``class:3``,
  ``misclassified@MODEL``, ``ids:0,5``...), or None for all; it combines with ``classes``
  (both must hold) and applies to the per-sample data (activations, samples, predictions).
* ``step``: the processing: raw, summary, histogram, quantiles, unit_stats, class_means,
  density, topk, confusion, projection — each with its parameters (``basis_epoch``: the
  checkpoint whose activations fit the projection's basis, ``last``, ``first`` or ``N``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

DATA_KINDS = (
    "metrics",
    "weights",
    "activations",
    "mean_class_activations",
    "samples",
    "predictions",
    "runtime",
)
STEPS = (
    "raw",
    "summary",
    "histogram",
    "quantiles",
    "unit_stats",
    "class_means",
    "density",
    "topk",
    "confusion",
    "projection",
)
#: Which steps apply to which data.
STEPS_FOR: dict[str, tuple[str, ...]] = {
    "metrics": ("raw",),
    "weights": ("raw", "summary", "histogram", "quantiles", "unit_stats", "density", "topk"),
    "activations": (
        "raw",
        "summary",
        "histogram",
        "quantiles",
        "unit_stats",
        "class_means",
        "density",
        "projection",
    ),
    "mean_class_activations": ("raw",),
    "samples": ("raw", "summary", "histogram", "projection"),
    "predictions": ("raw", "confusion", "summary", "histogram"),
    "runtime": ("raw",),
}
#: Data with one row per recorded sample: what a sample selection applies to.
SAMPLE_DATA = ("activations", "samples", "predictions")
DEFAULT_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


class QueryError(ValueError):
    """A query that cannot be run as given; the message names the field."""


@dataclass(frozen=True)
class Query:
    uoas: tuple[str, ...]
    data: str = "activations"
    epochs: str = "last"
    classes: tuple[int, ...] | None = None
    samples: str | None = None
    step: str = "summary"
    bins: int = 30
    range: tuple[float, float] | None = None
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    k: int = 10
    limit: int | None = None
    basis_epoch: str = "last"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["uoas"] = list(self.uoas)
        out["classes"] = list(self.classes) if self.classes is not None else None
        out["range"] = list(self.range) if self.range is not None else None
        out["quantiles"] = list(self.quantiles)
        return out

    def key(self) -> str:
        """A canonical string for caches."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def replace(self, **changes: Any) -> Query:
        data = {**self.to_dict(), **changes}
        return from_dict(data)


def parse_epochs(text: str) -> tuple[str, int | None, int | None]:
    """``("last"|"first"|"all", None, None)`` or ``("range", a, b)`` (a single epoch: a == b)."""
    value = str(text).strip().lower()
    if value in ("last", "first", "all"):
        return value, None, None
    if ":" in value:
        lo, _, hi = value.partition(":")
        try:
            a = int(lo) if lo else 0
            b = int(hi) if hi else 10**9
        except ValueError:
            raise QueryError(
                f"epochs must be last, first, all, N or A:B. Received: epochs={text!r}"
            ) from None
        if a < 0 or b < a:
            raise QueryError(f"epochs range must have 0 <= A <= B. Received: epochs={text!r}")
        return "range", a, b
    try:
        epoch = int(value)
    except ValueError:
        raise QueryError(
            f"epochs must be last, first, all, N or A:B. Received: epochs={text!r}"
        ) from None
    if epoch < 0:
        raise QueryError(f"epochs must be >= 0. Received: epochs={text!r}")
    return "range", epoch, epoch


def select_epochs(spec: str, available: Sequence[int]) -> list[int]:
    kind, a, b = parse_epochs(spec)
    ordered = sorted(available)
    if not ordered:
        return []
    if kind == "last":
        return [ordered[-1]]
    if kind == "first":
        return [ordered[0]]
    if kind == "all":
        return ordered
    assert a is not None and b is not None
    return [e for e in ordered if a <= e <= b]


def validate(query: Query) -> None:
    if not query.uoas or not all(isinstance(u, str) and u.strip() for u in query.uoas):
        raise QueryError(
            f"uoas must be one or more unit paths. Received: uoas={list(query.uoas)!r}"
        )
    if query.data not in DATA_KINDS:
        raise QueryError(
            f"data must be one of {', '.join(DATA_KINDS)}. Received: data={query.data!r}"
        )
    if query.step not in STEPS:
        raise QueryError(f"step must be one of {', '.join(STEPS)}. Received: step={query.step!r}")
    if query.step not in STEPS_FOR[query.data]:
        allowed = ", ".join(STEPS_FOR[query.data])
        raise QueryError(f"step {query.step!r} does not apply to {query.data}; it takes: {allowed}")
    parse_epochs(query.epochs)
    kind, a, b = parse_epochs(query.basis_epoch)
    if kind == "all" or a != b:
        raise QueryError(
            f"basis_epoch must be one epoch: last, first or N. Received: "
            f"basis_epoch={query.basis_epoch!r}"
        )
    if query.samples is not None:
        from tinspect.query.samples import parse

        parse(query.samples)  # QueryError with the grammar when malformed
        if query.data not in SAMPLE_DATA:
            raise QueryError(
                f"a sample selection applies to {', '.join(SAMPLE_DATA)}, not {query.data}"
            )
    if query.classes is not None and (
        not query.classes
        or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in query.classes)
    ):
        raise QueryError(f"classes must be class ids >= 0. Received: classes={query.classes!r}")
    if (
        isinstance(query.bins, bool)
        or not isinstance(query.bins, int)
        or not 1 <= query.bins <= 10_000
    ):
        raise QueryError(f"bins must be an integer in 1..10000. Received: bins={query.bins!r}")
    if query.range is not None:
        pair = tuple(query.range) if isinstance(query.range, (list, tuple)) else ()
        numbers = len(pair) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair
        )
        if not (numbers and pair[0] < pair[1]):
            raise QueryError(f"range must be two numbers lo < hi. Received: range={query.range!r}")
    if not query.quantiles or not all(
        isinstance(q, (int, float)) and 0 <= q <= 1 for q in query.quantiles
    ):
        raise QueryError(
            f"quantiles must be numbers in [0, 1]. Received: quantiles={query.quantiles!r}"
        )
    if isinstance(query.k, bool) or not isinstance(query.k, int) or query.k < 1:
        raise QueryError(f"k must be an integer >= 1. Received: k={query.k!r}")
    if query.limit is not None and (not isinstance(query.limit, int) or query.limit < 1):
        raise QueryError(f"limit must be an integer >= 1. Received: limit={query.limit!r}")


_FIELDS = {
    "uoas",
    "data",
    "epochs",
    "classes",
    "samples",
    "step",
    "bins",
    "range",
    "quantiles",
    "k",
    "limit",
    "basis_epoch",
    "extra",
}


def from_dict(data: Mapping[str, Any]) -> Query:
    """A query from JSON-like data; unknown fields and wrong types are QueryErrors."""
    if not isinstance(data, Mapping):
        raise QueryError(f"a query must be a JSON object. Received: {type(data).__name__}")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise QueryError(f"unknown query fields {unknown}; known: {sorted(_FIELDS)}")
    values = dict(data)
    uoas = values.get("uoas")
    if isinstance(uoas, str):
        uoas = [uoas]
    if not isinstance(uoas, (list, tuple)):
        raise QueryError(f"uoas must be a list of unit paths. Received: uoas={uoas!r}")
    values["uoas"] = tuple(uoas)
    for name in ("classes", "range", "quantiles"):
        if values.get(name) is not None:
            if not isinstance(values[name], (list, tuple)):
                raise QueryError(f"{name} must be a list. Received: {name}={values[name]!r}")
            values[name] = tuple(values[name])
    for name in ("epochs", "basis_epoch"):
        if name in values:
            values[name] = str(values[name])
    if "extra" in values and not isinstance(values["extra"], dict):
        raise QueryError(f"extra must be an object. Received: extra={values['extra']!r}")
    try:
        return Query(**values)
    except TypeError as error:
        raise QueryError(str(error)) from None


def from_json(text: str) -> Query:
    try:
        data = json.loads(text)
    except ValueError as error:
        raise QueryError(f"a query must be JSON ({error})") from None
    return from_dict(data)
