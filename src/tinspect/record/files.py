"""Atomic file writes and JSON conversion for the recorder.

A reader (the viewer, possibly on another machine over a shared file system) may look at a
logdir at any moment, and training may be killed at any moment. So every file appears
whole or not at all: JSON files and checkpoints are written under a temporary name that
readers skip and then renamed with ``os.replace`` (atomic on POSIX and Windows); JSONL lines
are appended with a single ``write`` of one complete line.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tinspect import format as fmt


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: tuples → lists, numpy scalars/arrays → Python values.

    Anything else that JSON cannot hold (a function, a custom object) becomes its class name
    in angle brackets rather than failing: a config that names a custom initializer must not
    stop training. Non-finite floats stay floats (Python's json writes NaN/Infinity).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        try:
            return jsonable(tolist())
        except (TypeError, ValueError):
            pass
    item = getattr(value, "numpy", None)  # eager tensors and variables
    if callable(item):
        try:
            return jsonable(item())
        except (TypeError, ValueError, RuntimeError):
            pass
    return f"<{type(value).__name__}>"


def to_float(value: Any) -> float | None:
    """A metric value as a float (NaN kept), or None when it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        converted = jsonable(value)
        if isinstance(converted, (int, float)) and not isinstance(converted, bool):
            return float(converted)
        return None


def write_atomic(path: Path, write: Callable[[Path], None], fsync: bool = True) -> None:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it to ``path``.

    The temporary name starts with a dot and contains ``.tmp`` (see ``format.is_temporary``),
    so readers never open it. On any error the temporary file is removed and the error
    re-raised; the previous content of ``path``, if any, is untouched.
    """
    tmp = path.with_name(fmt.temporary_name(path.name, f"{os.getpid()}-{secrets.token_hex(3)}"))
    try:
        write(tmp)
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
        if fsync:
            _fsync_directory(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_directory(directory: Path) -> None:
    """Persist a rename (power loss, not kill -9, is what this protects against)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json_text(data) + "\n")


def write_text_atomic(path: Path, text: str, fsync: bool = True) -> None:
    """Write ``text`` to ``path`` atomically (``fsync``: also durable across power loss)."""
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), fsync=fsync)


def json_text(data: Any) -> str:
    """``data`` as JSON indented by 2 (Python's pure-Python encoder: slow for big values)."""
    return json.dumps(jsonable(data), indent=2, sort_keys=False)


def json_object_text(members: Mapping[str, str]) -> str:
    """An indented JSON object from members already encoded with ``json_text``.

    Lets a writer keep the encoding of a large member that does not change (a model's
    architecture) and re-encode only the small ones; the text equals ``json_text`` of the
    whole object.
    """
    if not members:
        return "{}"
    lines = [
        f"  {json.dumps(key)}: {value.replace(chr(10), chr(10) + '  ')}"
        for key, value in members.items()
    ]
    return "{\n" + ",\n".join(lines) + "\n}"


def json_line(data: Mapping[str, Any]) -> str:
    """One compact JSON line ending in a newline (NaN written as ``NaN``, as Python reads)."""
    return json.dumps(jsonable(data), separators=(",", ":")) + "\n"


def append_line(path: Path, line: str) -> None:
    """Append one complete line with a single ``write`` call and flush it to the OS.

    Opened with O_APPEND, so concurrent appenders never interleave inside a line, and a
    killed writer leaves at most a torn last line, which readers ignore.
    """
    data = line.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        while written < len(data):  # a short write on a full disk or a signal
            written += os.write(fd, data[written:])
    finally:
        os.close(fd)
