"""Cache of computed results, in memory and on disk, outside the logdir.

A key is the identity of every file a result was computed from (path, size, modification
time) plus the query that computed it, so a changed file is never served stale and a
reopened logdir is instant. Values are dicts of numpy arrays stored as ``.npz`` and loaded
with ``allow_pickle=False``: nothing in the cache is ever evaluated.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from tinspect.store.h5 import FileIdentity

if TYPE_CHECKING:
    import numpy as np
else:
    from tinspect.lazy import numpy as np

Value: TypeAlias = "dict[str, np.ndarray]"  # a string: numpy is imported on first use

#: Bump when the meaning of cached values changes.
CACHE_VERSION = 1
ENV_CACHE_DIR = "TINSPECT_CACHE_DIR"


def default_cache_dir() -> Path | None:
    """``$TINSPECT_CACHE_DIR`` (``off`` disables the disk cache), else the user cache dir."""
    configured = os.environ.get(ENV_CACHE_DIR)
    if configured is not None:
        return None if configured.lower() in ("", "off", "none", "0") else Path(configured)
    try:
        from platformdirs import user_cache_dir
    except ImportError:  # pragma: no cover - platformdirs is a dependency
        return None
    return Path(user_cache_dir("tinspect", appauthor=False))


class Cache:
    """Results keyed by source files and a query string; memory LRU over an optional disk."""

    def __init__(
        self, directory: Path | None = None, memory_items: int = 512, forbidden: Sequence[Path] = ()
    ) -> None:
        self.directory = directory
        if directory is not None:
            resolved = directory.resolve()
            if any(resolved.is_relative_to(root.resolve()) for root in forbidden):
                self.directory = None  # the viewer never writes inside a logdir
        self.memory_items = memory_items
        self._memory: OrderedDict[str, Value] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(sources: Iterable[FileIdentity], query: str) -> str:
        payload = json.dumps(
            [CACHE_VERSION, [[s.path, s.size, s.mtime_ns] for s in sources], query],
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def get_or_compute(
        self, sources: Iterable[FileIdentity], query: str, compute: Callable[[], Value]
    ) -> Value:
        key = self.key(sources, query)
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                self.hits += 1
                return self._memory[key]
        value = self._load(key)
        if value is None:
            with self._lock:
                self.misses += 1
            value = compute()
            self._save(key, value)
        else:
            with self._lock:
                self.hits += 1
        self._remember(key, value)
        return value

    def put(self, sources: Iterable[FileIdentity], query: str, value: Value) -> None:
        """Remember ``value`` as the result of ``query`` on ``sources`` (memory only): for
        results computed elsewhere, e.g. by the recorder while the arrays were in memory."""
        self._remember(self.key(sources, query), value)

    def _remember(self, key: str, value: Value) -> None:
        """Keep ``value`` in memory as the newest entry, dropping the oldest beyond the limit."""
        with self._lock:
            self._memory[key] = value
            self._memory.move_to_end(key)
            while len(self._memory) > self.memory_items:
                self._memory.popitem(last=False)

    def _path(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / key[:2] / f"{key}.npz"

    def _load(self, key: str) -> Value | None:
        path = self._path(key)
        if path is None or not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError, KeyError):  # a damaged cache file is just a miss
            return None

    def _save(self, key: str, value: Value) -> None:
        path = self._path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")
            with open(tmp, "wb") as f:
                savez: Any = np.savez  # numpy's stub types **kwds as its own keywords
                savez(f, **value)
            os.replace(tmp, path)
        except OSError:
            self.directory = None  # a read-only or full cache disk: keep working in memory
