"""In-memory indexes that follow a store table: loaded by row id, topped up before each query."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable

import numpy as np

from registry.search.hamming import HammingIndex
from registry.store.store import Store

__all__ = ["FollowingIndex"]


class FollowingIndex(ABC):
    """One HammingIndex per name (unit type, feature kind) over rows of a store table.

    Subclasses say which rows: `_last_id`, `_rows` (an int64 array whose first column is the
    position of the row's name in `names`) and `_add` (what a row adds). The store stays the
    only truth: any process can build the same index from a shared PostgreSQL.
    """

    def __init__(self, store: Store, names: Iterable[str]) -> None:
        self.store = store
        self.names = sorted(names)
        self._indexes: dict[str, HammingIndex] = {}
        self._after = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(len(ix) for ix in self._indexes.values())

    def refresh(self) -> int:
        """Load rows added since the last refresh; returns how many."""
        with self._lock:
            top = self._last_id()
            if top <= self._after:
                return 0
            rows = self._rows(self._after, top)
            for position, name in enumerate(self.names):
                picked = rows[rows[:, 0] == position]
                if len(picked):
                    self._add(name, self._indexes.setdefault(name, HammingIndex()), picked)
            self._after = top
            return len(rows)

    @abstractmethod
    def _last_id(self) -> int:
        """The newest row id of the followed table."""

    @abstractmethod
    def _rows(self, after_id: int, up_to_id: int) -> np.ndarray:
        """The followed rows with ids in (after_id, up_to_id]."""

    @abstractmethod
    def _add(self, name: str, index: HammingIndex, rows: np.ndarray) -> None:
        """Put rows of one name into its index."""
