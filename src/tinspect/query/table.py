"""Tables: what every query returns, and the one CSV/JSON writer of the project.

A table is named columns of equal length plus metadata (the query, the unit paths, epochs,
classes). The CLI's ``export`` and the viewer's export key both call ``write_table``, so a
widget's CSV is byte-for-byte what ``tinspect export`` prints for the same query.
CSV is tidy long format: one observation per row, a header row, ``,`` separators, numbers
in Python's shortest round-trip form, NaN as an empty field.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TextIO

if TYPE_CHECKING:
    import numpy as np
else:
    from tinspect.lazy import numpy as np


Format = Literal["csv", "json"]


@dataclass
class Table:
    columns: list[str]
    data: list[Sequence[Any]]  # one sequence per column
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.columns) != len(self.data):
            raise ValueError(f"{len(self.columns)} columns but {len(self.data)} data columns")
        lengths = {len(c) for c in self.data}
        if len(lengths) > 1:
            raise ValueError(f"columns of unequal length: {sorted(lengths)}")

    def __len__(self) -> int:
        return len(self.data[0]) if self.data else 0

    def column(self, name: str) -> Sequence[Any]:
        return self.data[self.columns.index(name)]

    def rows(self) -> Iterator[tuple[Any, ...]]:
        return zip(*self.data, strict=True) if self.data else iter(())

    @staticmethod
    def from_rows(
        columns: list[str], rows: Sequence[Sequence[Any]], meta: dict[str, Any] | None = None
    ) -> Table:
        data: list[Sequence[Any]] = (
            [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in columns]
        )
        return Table(columns, data, meta or {})


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds; anything else as it is. Without
    importing numpy: a value cannot be a numpy scalar unless numpy is loaded (``ls``
    writes JSON headers and never loads it)."""
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.generic):
        return value.item()
    return value


def _cell(value: Any) -> str:
    """One CSV field: shortest round-trip floats, NaN/inf as empty/``inf``, ints as ints."""
    if value is None:
        return ""
    value = _plain(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    return str(value)


def _json_value(value: Any) -> Any:
    value = _plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # strict JSON
    return value


#: One value as a CSV field and as a strict JSON value (for writers of their own rows).
csv_cell = _cell
json_value = _json_value


def write_table(table: Table, out: TextIO, fmt: Format = "csv", header: bool = True) -> None:
    """Write ``table`` as CSV (tidy, one header row unless ``header=False``) or JSON."""
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        if header:
            writer.writerow(table.columns)
        for row in table.rows():
            writer.writerow([_cell(v) for v in row])
        return
    if fmt == "json":
        payload = {
            "meta": table.meta,
            "columns": table.columns,
            "rows": [[_json_value(v) for v in row] for row in table.rows()],
        }
        json.dump(payload, out, allow_nan=False, default=_json_default)
        out.write("\n")
        return
    raise ValueError(f"format must be csv or json. Received: format={fmt!r}")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return _json_value(value)
    if isinstance(value, np.ndarray):
        return [_json_value(v) for v in value.tolist()]
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def table_text(table: Table, fmt: Format = "csv", header: bool = True) -> str:
    buffer = io.StringIO()
    write_table(table, buffer, fmt, header)
    return buffer.getvalue()
