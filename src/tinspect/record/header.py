"""Model headers: the small dict that gives a model an id, a name and its parents.

Headers are what turn separate training runs into a tree of model variants: a child names
its parent's id. They are plain JSON-ready dicts so a training script can print, store or
edit them; ``make_header`` validates at creation so a bad header fails in the user's script,
not later in the viewer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

HeaderLike = Mapping[str, Any] | str


def _parent_id(parent: object) -> str:
    if isinstance(parent, str):
        if not parent.strip():
            raise ValueError("a parent id must be a non-empty string. Received: parent=''")
        return parent
    if isinstance(parent, Mapping):
        pid = parent.get("id")
        if isinstance(pid, str) and pid:
            return pid
        raise ValueError(
            f"a parent header must have a non-empty string 'id'. Received: parent={dict(parent)!r}"
        )
    raise TypeError(
        "parents must be headers (dicts from make_header) or id strings. "
        f"Received: parent={parent!r} of type {type(parent).__name__}"
    )


def _check_json(name: str, value: object) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"hyperparameter {name!r} must be JSON-serializable (numbers, strings, lists, "
            f"dicts). Received: {name}={value!r} ({error})"
        ) from None


def make_header(
    name: str,
    label: str | None = None,
    parents: Iterable[HeaderLike] = (),
    id: str | None = None,  # noqa: A002 - the public API names it ``id``
    **hyperparameters: Any,
) -> dict[str, Any]:
    """A new model header: ``{"id", "name", "label", "parents", "created", "hyperparameters"}``.

    ``parents`` are headers or ids (several for merged variants). ``id`` defaults to a fresh
    UUID; pass one only to re-create a known header. Every extra keyword is recorded as a
    free-form hyperparameter and must be JSON-serializable.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty string. Received: name={name!r}")
    if label is not None and not isinstance(label, str):
        raise TypeError(f"label must be a string or None. Received: label={label!r}")
    if isinstance(parents, (str, Mapping)):
        parents = [parents]
    parent_ids: list[str] = []
    for parent in parents:
        pid = _parent_id(parent)
        if pid not in parent_ids:
            parent_ids.append(pid)
    if id is None:
        import uuid  # here, not at import: ~10 ms of every tinspect start-up

        model_id = uuid.uuid4().hex
    elif isinstance(id, str) and id.strip() and "/" not in id:
        model_id = id.strip()
    else:
        raise ValueError(f"id must be a non-empty string without '/'. Received: id={id!r}")
    if model_id in parent_ids:
        raise ValueError(f"a model cannot be its own parent. Received: id={model_id!r}")
    for key, value in hyperparameters.items():
        _check_json(key, value)
    return {
        "id": model_id,
        "name": name.strip(),
        "label": (label if label is not None else name).strip() or name.strip(),
        "parents": parent_ids,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "hyperparameters": dict(hyperparameters),
    }


def branch(
    parent: HeaderLike,
    name: str,
    label: str | None = None,
    id: str | None = None,  # noqa: A002
    **hyperparameters: Any,
) -> dict[str, Any]:
    """A child header of ``parent`` (a header or an id).

    A child inherits the parent's hyperparameters when the parent is given as a header;
    keywords given here override them, so the header records the full configuration of the
    variant and the change from its parent can be read off by comparing the two.
    """
    inherited: dict[str, Any] = {}
    if isinstance(parent, Mapping):
        inherited = dict(parent.get("hyperparameters") or {})
    inherited.update(hyperparameters)
    return make_header(name, label=label, parents=[parent], id=id, **inherited)
