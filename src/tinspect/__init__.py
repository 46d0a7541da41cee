"""tinspect: record Keras experiments and explore them in a terminal.

The top-level package stays light (no Keras, no Textual): training scripts import
``tinspect`` for headers and ``tinspect.keras`` for the callback; the viewer imports neither.
"""

from tinspect.record.header import branch, make_header

__version__ = "0.1.0"

__all__ = ["__version__", "branch", "make_header"]
