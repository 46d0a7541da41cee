"""What ``/`` finds: layers by kind and structure, layers by name, models only when asked.

The words of a query are sorted by what they name, so that each is matched against the one
thing it can mean:

* ``model:WORDS`` searches models (name, label, id, hyperparameter values) and nothing else:
  a model called ``dense_skip`` no longer answers a search for skip connections;
* a word naming a structure (``skip``, ``branch``, ``repeat``, ``repeat×3``) or a layer kind
  that some recorded layer has (a class substring such as ``conv``, an activation such as
  ``relu``, a variable such as ``kernel``) goes to ``localize.search``;
* any other word is a layer name filter (``z_mean``, ``hidden``): the layers whose name
  contains it;
* a query that is exactly a unit path (``conv/conv_2``, ``vae_25_75``) also lists that
  unit, first.

At L3, ``/`` also offers a model filter (``filter_models``): every word must hold, where a
word is ``KEY=VALUE`` / ``KEY>VALUE`` (also ``<``, ``>=``, ``<=``, ``!=``, ``:``) on a
hyperparameter or a last metric, or a text found in the model's name, label, directory, id
or badges (``skip``, ``conv``, a finding's kind). It reads headers only (the header index
answers it for thousands of models without parsing a file).

``conv relu`` therefore finds ReLU convolutions, not a Dense layer of a model named conv;
``z_mean dense relu`` finds layers named like z_mean that are ReLU Dense layers. Everything
is answered from ``model.json`` headers; no checkpoint is opened.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tinspect.analysis.localize import find_kinds, search
from tinspect.store import ModelLogs, Store, UoA

MODEL_PREFIX = "model:"


@dataclass(frozen=True)
class Hit:
    """One unit a search found: its path, model, layer (None for a model) and why."""

    path: str
    model_id: str
    layer: str | None
    what: str
    #: Found because the query is exactly its unit path (a jump, not a search to mark).
    exact: bool = False
    #: For the L3 filter option: the models it keeps (a filter, not a unit to go to).
    keeps: frozenset[str] | None = None


def _is_kind(store: Store, word: str, probe: list[Any]) -> bool:
    """Whether ``word`` names a kind (``probe``: ``search(store, word)``'s hits)."""
    return bool(probe) or any(find_kinds(m.transient(), word) for m in store.models.values())


def _model_text(model: ModelLogs) -> str:
    hp = " ".join(f"{k}={v}" for k, v in (model.hyperparameters or {}).items())
    return f"{model.name} {model.label} {model.id} {hp}".lower()


def exact_hits(store: Store, query: str) -> list[Hit]:
    """The unit ``query`` names exactly (``conv/conv_2``, a model's name), if any."""
    text = query.strip()
    if not text or len(text.split()) != 1 or text.lower().startswith(MODEL_PREFIX):
        return []
    try:
        uoa = store.resolve(text)
    except ValueError:
        return []
    return [Hit(store.path(uoa), uoa.model, uoa.layer, "the unit of this path", True)]


def find_units(store: Store, query: str) -> list[Hit]:
    """Units matching ``query`` in display order (see the module's docstring)."""
    text = query.strip()
    if text.lower().startswith(MODEL_PREFIX):
        words = text[len(MODEL_PREFIX) :].lower().split()
        return [
            Hit(store.path(UoA(m.id)), m.id, None, f"model {m.label}")
            for m in store.ordered_models()
            if words and all(w in _model_text(m) for w in words)
        ]
    words = list(dict.fromkeys(text.lower().split()))
    if not words:
        return []
    hits: list[Hit] = exact_hits(store, text)
    # Each word's search once: at thousands of models every pass reads every model.json.
    probes = {w: search(store, w) for w in words}
    kinds = [w for w in words if _is_kind(store, w, probes[w])]
    names = [w for w in words if w not in kinds]
    if kinds:
        found = probes[kinds[0]] if len(kinds) == 1 else search(store, " ".join(kinds))
        for _path, match in found:
            for layer in match.layers if len(match.layers) > 1 and names else match.layers[:1]:
                if all(n in layer.lower() for n in names):
                    what = match.what if len(match.layers) == 1 else f"{match.badge}: {match.what}"
                    hits.append(
                        Hit(store.path(UoA(match.model_id, layer)), match.model_id, layer, what)
                    )
                    break
    else:
        for model in store.ordered_models():
            for info in model.transient().layers:  # read once, not kept
                if all(n in info.name.lower() for n in names):
                    hits.append(
                        Hit(
                            store.path(UoA(model.id, info.name)),
                            model.id,
                            info.name,
                            f"{info.name}: {info.class_name} {info.activation or ''}".strip(),
                        )
                    )
    return list(dict.fromkeys(hits))


#: ``KEY OP VALUE``: a comparison on a hyperparameter or a last metric.
_COMPARISON = re.compile(r"^([A-Za-z_][\w.\-]*)(>=|<=|!=|=|:|>|<)(.+)$")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _compare(actual: Any, op: str, wanted: str) -> bool:
    """``actual OP wanted``: numbers compared as numbers (equal within float32 precision: a
    learning rate logged as 0.0010000000474974513 equals 1e-3), the rest as text."""
    a, b = _number(actual), _number(wanted)
    if a is not None and b is not None and math.isfinite(a):
        if op in ("=", ":"):
            return math.isclose(a, b, rel_tol=1e-6)
        if op == "!=":
            return not math.isclose(a, b, rel_tol=1e-6)
        return {">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[op]
    text = str(actual).lower()
    if op in ("=", ":"):
        return text == wanted.lower()
    return op == "!=" and text != wanted.lower()


def _values(model: ModelLogs, key: str) -> list[Any]:
    """Values of hyperparameters and last metrics named ``key`` (exactly, else containing it)."""
    fields = [*(model.hyperparameters or {}).items(), *model.last_metrics().items()]
    exact = [v for k, v in fields if k.lower() == key]
    return exact or [v for k, v in fields if key in k.lower()]


def filter_models(
    store: Store, query: str, badge_text: Callable[[str], str] | None = None
) -> list[str]:
    """Ids of the models every word of ``query`` holds for, in display order (see the
    module's docstring); [] for an empty query. ``badge_text(model_id)``: its badges."""
    words = query.lower().split()
    if not words:
        return []
    tests = [_word_test(word, badge_text) for word in words]
    return [m.id for m in store.ordered_models() if all(test(m) for test in tests)]


def _word_test(word: str, badge_text: Callable[[str], str] | None) -> Callable[[ModelLogs], bool]:
    """What one word of a filter asks of a model."""
    match = _COMPARISON.match(word)
    if match and not word.startswith("model:"):
        key, op, wanted = match.groups()

        def compares(model: ModelLogs) -> bool:
            return any(_compare(v, op, wanted) for v in _values(model, key))

        return compares

    def mentions(model: ModelLogs) -> bool:
        if word in _plain_text(model):
            return True
        return badge_text is not None and word in badge_text(model.id).lower()

    return mentions


def _plain_text(model: ModelLogs) -> str:
    return f"{model.name} {model.label} {model.dirname} {model.short_id}".lower()


def filter_hit(store: Store, query: str, kept: Iterable[str]) -> Hit:
    """The search result that stands for "filter L3 to these models"."""
    keeps = frozenset(kept)
    total = len(store.models)
    return Hit("", "", None, f"filter L3 to {len(keeps)} of {total} models", keeps=keeps)
