"""Sample selections: one grammar for the CLI (``--samples``), queries and the viewer.

A selection names some of the *recorded* samples (the rows of ``data_samples/*`` and of
every layer's ``activations``), by their index. The grammar::

    all                          every recorded sample
    class:3,8                    true class is 3 or 8
    predicted:3[@MODEL]          predicted class (argmax of y_prediction) is 3 (or one of 3,5)
    correct[@MODEL]              predicted class == true class
    misclassified[@MODEL]        predicted class != true class
    confusion:TRUE,PRED[@MODEL]  true class TRUE predicted as PRED (a confusion-matrix cell)
    disagree:A,B                 models A and B predict different classes
    ids:0,5,9                    these sample indices

Without ``@MODEL`` the model of the unit being read is meant. Prediction-based selections
are evaluated at the checkpoint being read (a model named with ``@`` that has no checkpoint
of that epoch: its latest earlier one), so ``misclassified`` over several epochs follows
what the model got wrong at each. A selection that involves another model requires that
both recorded the same samples: ``sample_digest`` compares a digest of ``x``.

``parse`` is pure (no store): a malformed selection is a ``QueryError`` (a usage error);
``resolve`` needs the store and raises ``UoAError`` (unknown model) or ``DataError`` (no
such data: no labels, no class scores, another set of samples).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tinspect import format as fmt
from tinspect.query.spec import QueryError
from tinspect.store import DataError

if TYPE_CHECKING:
    import numpy as np

    from tinspect.store import ModelLogs, Store
else:
    from tinspect.lazy import numpy as np

#: Every kind of selection, in the order the viewer offers them, with a one-line help.
KINDS: dict[str, str] = {
    "all": "every recorded sample",
    "class": "true class in a list: class:3,8",
    "predicted": "predicted class in a list: predicted:3[@MODEL]",
    "correct": "predicted class equals the true class: correct[@MODEL]",
    "misclassified": "predicted class differs from the true class: misclassified[@MODEL]",
    "confusion": "one confusion-matrix cell: confusion:TRUE,PRED[@MODEL]",
    "disagree": "two models predict different classes: disagree:A,B",
    "ids": "sample indices: ids:0,5,9",
}
#: Kinds that read predictions (and so accept ``@MODEL``).
PREDICTION_KINDS = frozenset({"predicted", "correct", "misclassified", "confusion"})
_NO_ARGUMENT = frozenset({"all", "correct", "misclassified"})
_INTEGERS = frozenset({"class", "predicted", "confusion", "ids"})
GRAMMAR = "all, class:3,8, predicted:3[@MODEL], correct[@MODEL], misclassified[@MODEL], confusion:TRUE,PRED[@MODEL], disagree:A,B, ids:0,5,9"  # noqa: E501

_TERM = re.compile(r"^(?P<kind>[a-z]+)(?::(?P<args>[^@]*))?(?:@(?P<model>.+))?$")


@dataclass(frozen=True)
class SampleSelection:
    """A parsed selection: its kind, integer arguments, model names, and the model ``@``."""

    kind: str
    numbers: tuple[int, ...] = ()
    models: tuple[str, ...] = ()  # disagree: the two models
    model: str | None = None  # @MODEL

    def __str__(self) -> str:
        """The canonical text: ``parse(str(s)) == s``."""
        text = self.kind
        if self.numbers:
            text += ":" + ",".join(map(str, self.numbers))
        if self.models:
            text += ":" + ",".join(self.models)
        if self.model is not None:
            text += "@" + self.model
        return text

    @property
    def is_all(self) -> bool:
        return self.kind == "all"

    def other_models(self) -> tuple[str, ...]:
        """Model references this selection reads besides the unit's own model."""
        if self.kind == "disagree":
            return self.models
        return (self.model,) if self.model is not None else ()


def _bad(text: str, why: str) -> QueryError:
    return QueryError(f"bad sample selection {text!r}: {why}; use one of: {GRAMMAR}")


def parse(text: str) -> SampleSelection:
    """The selection ``text`` names; ``QueryError`` (one line, with the grammar) otherwise."""
    if not isinstance(text, str):
        raise QueryError(f"samples must be a string. Received: samples={text!r}")
    stripped = text.strip()
    match = _TERM.match(stripped.lower()) if stripped else None
    if match is None:
        raise _bad(text, "not KIND[:ARGUMENTS][@MODEL]")
    kind = match["kind"]
    if kind not in KINDS:
        raise _bad(text, f"unknown kind {kind!r}")
    # Model names keep their case: take them from the original text.
    at = stripped.find("@")
    model = stripped[at + 1 :].strip() if at >= 0 else None
    head = stripped[:at] if at >= 0 else stripped
    colon = head.find(":")
    args_text = head[colon + 1 :] if colon >= 0 else None
    if model is not None and (kind not in PREDICTION_KINDS or not model):
        raise _bad(text, "@MODEL applies to predicted, correct, misclassified and confusion")
    if kind in _NO_ARGUMENT:
        if args_text is not None:
            raise _bad(text, f"{kind} takes no arguments")
        return SampleSelection(kind, model=model)
    if args_text is None or not args_text.strip():
        raise _bad(text, f"{kind} needs arguments")
    parts = [p.strip() for p in args_text.split(",")]
    if any(not p for p in parts):
        raise _bad(text, "an empty item in the list")
    if kind == "disagree":
        if len(parts) != 2:
            raise _bad(text, "disagree takes two models")
        return SampleSelection(kind, models=(parts[0], parts[1]))
    assert kind in _INTEGERS
    try:
        numbers = tuple(int(p) for p in parts)
    except ValueError:
        raise _bad(text, f"{kind} takes integers") from None
    if any(n < 0 for n in numbers):
        raise _bad(text, "negative numbers")
    if kind == "confusion" and len(numbers) != 2:
        raise _bad(text, "a confusion cell is two classes, TRUE,PRED")
    if kind != "confusion":
        numbers = tuple(sorted(set(numbers)))
    return SampleSelection(kind, numbers, model=model)


# --- resolving against the logs --------------------------------------------------------------
def _read(store: Store, model_id: str, epoch: int, name: str) -> np.ndarray | None:
    path = f"{fmt.SAMPLES_GROUP}/{name}"
    data = store.arrays.checkpoint(model_id, epoch)
    if not data.has(path):
        return None
    return data.read(path)


def class_ids(store: Store, model: ModelLogs, epoch: int) -> np.ndarray:
    """True class per sample; DataError when the model recorded no class labels."""
    ids = _read(store, model.id, epoch, fmt.SAMPLES_Y_CLASS)
    if ids is None:
        raise DataError(f"{model.name} recorded no class labels (needed by this selection)")
    return ids.astype(np.int64)


def predicted_classes(store: Store, model: ModelLogs, epoch: int) -> np.ndarray:
    """Argmax of the first output per sample; DataError when it is not class scores."""
    scores = _read(store, model.id, epoch, fmt.SAMPLES_Y_PREDICTION)
    kind = model.dataset.get("output_kind")
    if (
        scores is None
        or scores.ndim != 2
        or scores.shape[1] < 2
        or kind not in (None, "classification")
    ):
        shape = None if scores is None else list(scores.shape)
        raise DataError(
            f"{model.name}: predictions are not class scores (shape {shape}, "
            f"output kind {kind or 'unknown'}), so no predicted class"
        )
    return np.argmax(scores, axis=1).astype(np.int64)


def epoch_for(model: ModelLogs, epoch: int) -> int:
    """``epoch`` if ``model`` has that checkpoint, else its latest earlier one."""
    if epoch in model.checkpoint_names:
        return epoch
    earlier = [e for e in model.epochs if e <= epoch]
    if not earlier:
        raise DataError(
            f"{model.name} has no checkpoint at or before epoch {epoch} "
            f"(has {model.epochs or 'none'})"
        )
    return earlier[-1]


def sample_digest(store: Store, model: ModelLogs) -> str:
    """A digest of the recorded inputs ``x`` (dtype, sample count, bytes), read once, cached.

    The shape of one sample is left out on purpose: a convolutional child that reads the
    same digits as ``(8, 8, 1)`` images instead of 64-vectors recorded the same samples.
    The samples are the same at every checkpoint, so the first checkpoint answers; the
    result is cached under that file's identity.
    """
    if not model.epochs:
        raise DataError(f"{model.name} has no checkpoint, so no recorded samples")
    epoch = model.epochs[0]
    name = f"{fmt.SAMPLES_GROUP}/{fmt.SAMPLES_X}"

    data = store.arrays.checkpoint(model.id, epoch)

    def compute() -> dict[str, np.ndarray]:
        digest = hashlib.sha256()
        first = True
        for _rows, block in data.blocks(name):
            if first:  # dtype and sample count, as the header of the digest
                digest.update(f"{block.dtype.str}|{data.shape(name)[:1]}|".encode())
                first = False
            digest.update(np.ascontiguousarray(block).tobytes())
        return {"digest": np.frombuffer(digest.digest(), dtype=np.uint8)}

    value = data.cached(data.ref(name), "sample_digest_v2", compute)
    return bytes(value["digest"]).hex()


def check_same_samples(store: Store, model: ModelLogs, others: list[ModelLogs]) -> None:
    """DataError unless every model in ``others`` recorded the samples ``model`` did."""
    mine = None
    for other in others:
        if other.id == model.id:
            continue
        if mine is None:
            mine = sample_digest(store, model)
        if sample_digest(store, other) != mine:
            raise DataError(
                f"{model.name} and {other.name} recorded different samples; a selection "
                "across models needs the same samples (the same samples= in both callbacks)"
            )


def resolve(
    store: Store,
    selection: SampleSelection,
    model: ModelLogs,
    epoch: int,
    check: Callable[[], None] | None = None,
) -> np.ndarray:
    """Sorted sample indices of ``selection`` for ``model``'s checkpoint ``epoch``.

    Raises ``UoAError`` for a model that does not exist and ``DataError`` for data that
    does not (no labels, no class scores, other samples, ids or classes out of range).
    """
    n = int(model.dataset.get("n_samples") or 0)
    if n == 0:
        shape = store.arrays.checkpoint(model.id, epoch).shape(
            f"{fmt.SAMPLES_GROUP}/{fmt.SAMPLES_X}"
        )
        n = int(shape[0]) if shape else 0
    kind = selection.kind
    if kind == "all":
        return np.arange(n, dtype=np.int64)
    if kind == "ids":
        ids = np.asarray(selection.numbers, dtype=np.int64)
        if ids.size and ids.max() >= n:
            raise DataError(
                f"sample {int(ids.max())} does not exist: {model.name} recorded {n} samples "
                f"(0..{n - 1})"
            )
        return ids
    if kind == "class":
        _check_classes(model, selection.numbers)
        truth = class_ids(store, model, epoch)
        return np.flatnonzero(np.isin(truth, selection.numbers)).astype(np.int64)
    if kind == "disagree":
        a, b = (store.model(ref) for ref in selection.models)
        check_same_samples(store, model, [a, b])
        check_same_samples(store, a, [b])
        pa = predicted_classes(store, a, epoch_for(a, epoch))
        pb = predicted_classes(store, b, epoch_for(b, epoch))
        return np.flatnonzero(pa != pb).astype(np.int64)
    source = store.model(selection.model) if selection.model is not None else model
    check_same_samples(store, model, [source])
    source_epoch = epoch_for(source, epoch)
    predicted = predicted_classes(store, source, source_epoch)
    if kind == "predicted":
        _check_classes(source, selection.numbers, predicted)
        return np.flatnonzero(np.isin(predicted, selection.numbers)).astype(np.int64)
    truth = class_ids(store, source, source_epoch)
    if kind == "correct":
        return np.flatnonzero(predicted == truth).astype(np.int64)
    if kind == "misclassified":
        return np.flatnonzero(predicted != truth).astype(np.int64)
    assert kind == "confusion"
    true_class, predicted_class = selection.numbers
    _check_classes(source, selection.numbers, predicted)
    return np.flatnonzero((truth == true_class) & (predicted == predicted_class)).astype(np.int64)


def _check_classes(
    model: ModelLogs, classes: tuple[int, ...], predicted: np.ndarray | None = None
) -> None:
    n = model.n_classes
    if predicted is not None and predicted.size:
        n = max(n, int(predicted.max()) + 1)
    bad = [c for c in classes if n and c >= n]
    if bad:
        raise DataError(f"{model.name} has {n} classes (0..{n - 1}); no class {bad[0]}")


def rows_key(rows: np.ndarray | None) -> str:
    """A short, exact cache key for a set of sample rows (None: every sample)."""
    if rows is None:
        return "all"
    digest = hashlib.sha1(np.ascontiguousarray(rows, np.int64).tobytes()).hexdigest()
    return f"{len(rows)}:{digest[:16]}"
