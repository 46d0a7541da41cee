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

``conv relu`` therefore finds ReLU convolutions, not a Dense layer of a model named conv;
``z_mean dense relu`` finds layers named like z_mean that are ReLU Dense layers. Everything
is answered from ``model.json`` headers; no checkpoint is opened.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _is_kind(store: Store, word: str) -> bool:
    probe = search(store, word)
    return bool(probe) or any(find_kinds(m, word) for m in store.models.values())


def _model_text(model: ModelLogs) -> str:
    hp = " ".join(f"{k}={v}" for k, v in (model.hyperparameters or {}).items())
    return f"{model.name} {model.label} {model.id} {hp}".lower()


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
    hits: list[Hit] = []
    if len(words) == 1:  # an exact unit path (``conv/conv_2``, a model's name) goes first
        try:
            uoa = store.resolve(text)
        except ValueError:
            pass
        else:
            hits.append(Hit(store.path(uoa), uoa.model, uoa.layer, "the unit of this path", True))
    kinds = [w for w in words if _is_kind(store, w)]
    names = [w for w in words if w not in kinds]
    if kinds:
        for _path, match in search(store, " ".join(kinds)):
            for layer in match.layers if len(match.layers) > 1 and names else match.layers[:1]:
                if all(n in layer.lower() for n in names):
                    what = match.what if len(match.layers) == 1 else f"{match.badge}: {match.what}"
                    hits.append(
                        Hit(store.path(UoA(match.model_id, layer)), match.model_id, layer, what)
                    )
                    break
    else:
        for model in store.ordered_models():
            for info in model.layers:
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
