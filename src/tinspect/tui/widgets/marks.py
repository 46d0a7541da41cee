"""How a unit is summarised in a few characters: layer glyphs, architecture strips,
compact numbers, the interestingness block. Shared by the three levels and the search.
"""

from __future__ import annotations

from rich.text import Text

from tinspect.store import ModelLogs
from tinspect.store.model import finite
from tinspect.tui.palette import scale


def interest_block(text: Text, score: float | None) -> None:
    """A block coloured blue (normal) → red (abnormal) when a measure is active."""
    if score is not None:
        text.append(" ▮", style=scale(score))


#: One glyph per layer kind for the architecture strip of L3.
GLYPHS = (
    (("Conv",), "▦"),
    (("Pooling",), "▾"),
    (("Dropout", "Noise"), "░"),
    (("Normalization",), "≈"),
    (("Add", "Concatenate", "Multiply", "Average", "Subtract", "Maximum", "Minimum", "Dot"), "+"),
    (("Flatten", "Reshape", "Permute", "RepeatVector", "Padding", "Cropping", "UpSampling"), "="),
    (("Activation", "ReLU", "Softmax", "ELU"), "~"),
    (("Embedding",), "E"),
    (("LSTM", "GRU", "RNN"), "R"),
    (("Attention",), "A"),
    (("Dense",), "■"),
)


def glyph(class_name: str) -> str:
    for names, mark in GLYPHS:
        if any(name in class_name for name in names):
            return mark
    return "·"


def strip(model: ModelLogs) -> str:
    """One glyph per layer (from the class names the header index keeps: no parse)."""
    return "".join(glyph(name) for name in model.layer_classes if name != "InputLayer")


def compact(n: float) -> str:
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{sign}{n / size:.1f}{unit}"
    return f"{sign}{n:.0f}"


def main_metrics(model: ModelLogs) -> str:
    last = model.last_metrics()
    names = [
        n
        for n in ("val_accuracy", "accuracy", "val_loss", "loss")
        if finite(last.get(n)) is not None
    ]
    short = {"val_accuracy": "val_acc", "accuracy": "acc"}
    return "  ".join(f"{short.get(n, n)}={last[n]:.3g}" for n in names[:2])
