"""Exact Hamming-radius search over 64-bit codes by multi-index hashing (Norouzi et al.).

A 64-bit code is cut into four 16-bit bands. Two codes within distance t agree to within t // 4
bits on at least one band (pigeonhole), so the candidates for a query are the codes whose band
equals one of the band values within that radius of the query's; each candidate is then checked
on all 64 bits. Recall is exactly that of a full scan, at a fraction of its cost when t is small
relative to 64. Each unit type (meta, content kinds, data) gets its own index.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from itertools import combinations

import numpy as np

__all__ = ["HammingIndex", "Hit"]

BANDS = 4
BAND_BITS = 16
_MASK = np.uint64((1 << BAND_BITS) - 1)
# Every band value and one past the last.
_BAND_VALUES = np.arange((1 << BAND_BITS) + 1, dtype=np.uint64)
# Below this many codes a full scan is as fast as probing bands, and needs no sorted copies.
SCAN_BELOW = 4096
# New codes go to an unsorted tail scanned in full; it is merged into the bands when it grows.
MERGE_TAIL_AT = 65_536
_PAIRS_AT_ONCE = 1 << 20


@dataclass(frozen=True)
class Hit:
    key: int
    distance: int


@cache
def _flips(radius: int) -> np.ndarray:
    """Every 16-bit mask with at most `radius` bits set."""
    masks = [0]
    for r in range(1, radius + 1):
        for bits in combinations(range(BAND_BITS), r):
            masks.append(sum(1 << b for b in bits))
    return np.array(masks, dtype=np.uint64)


class _Bands:
    """Immutable sorted band tables over one snapshot of codes."""

    def __init__(self, keys: np.ndarray, codes: np.ndarray) -> None:
        self.keys = keys
        self.codes = codes
        self.order = []
        # Each band's codes in its sorted order (32 bytes per code over the four bands): the
        # codes of a probe's run are then read contiguously. A crowded lookup gathers hundreds
        # of thousands of candidates, most of them far, and the scattered reads through `order`
        # were most of its time; now only the near ones are mapped back.
        self.sorted_codes = []
        # starts[band][v] is where band value v begins in that band's sorted order, for every
        # 16-bit v (and one past the end): a probe's run of codes is two lookups, not two
        # binary searches, at 512 kB per band whatever the size.
        self.starts = []
        for band in range(BANDS):
            values = (codes >> np.uint64(band * BAND_BITS)) & _MASK
            order = np.argsort(values, kind="stable")
            self.order.append(order)
            self.sorted_codes.append(codes[order])
            self.starts.append(np.searchsorted(values[order], _BAND_VALUES))

    def candidates(
        self, queries: np.ndarray, band_radius: int, radius: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(query position, code position) pairs whose band is within `band_radius` bits of the
        query's on some band and whose code is within `radius` bits of the query: every band
        probe of every query in one pass of table lookups. Each band's candidates are compared
        and dropped before the next band's are gathered: most are far (99 % for crowded sound
        segments), and carrying them all to one comparison cost more than the comparison."""
        flips = _flips(band_radius)
        owners = np.repeat(np.arange(len(queries)), len(flips))
        probed = np.repeat(queries, len(flips))
        found_queries, found = [], []
        for band in range(BANDS):
            values = (queries >> np.uint64(band * BAND_BITS)) & _MASK
            probe = (values[:, None] ^ flips[None, :]).ravel()
            lo = self.starts[band][probe]
            sizes = self.starts[band][probe + np.uint64(1)] - lo
            hit = np.flatnonzero(sizes)
            if not len(hit):
                continue
            lo, sizes = lo[hit], sizes[hit]
            ends = np.cumsum(sizes)
            # Expand every [lo, hi) run into positions without a Python loop, each beside the
            # code it is compared with; which query asked is worked out for the near ones only.
            positions = np.repeat(lo - ends + sizes, sizes) + np.arange(ends[-1])
            distances = np.bitwise_count(
                self.sorted_codes[band][positions] ^ np.repeat(probed[hit], sizes)
            )
            close = np.flatnonzero(distances <= radius)
            found.append(self.order[band][positions[close]])
            found_queries.append(owners[hit[np.searchsorted(ends, close, "right")]])
        if not found:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        # Duplicates (a code near the query on several bands) are dropped by the caller, on far
        # fewer rows than here.
        return np.concatenate(found_queries), np.concatenate(found)


class HammingIndex:
    """Codes with integer keys; `search` returns every key within a radius, nearest first.

    Safe for one writer and many readers: readers work on immutable snapshots.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bands: _Bands | None = None
        self._tail_keys = np.empty(0, dtype=np.int64)
        self._tail_codes = np.empty(0, dtype=np.uint64)

    def __len__(self) -> int:
        base = 0 if self._bands is None else len(self._bands.keys)
        return base + len(self._tail_keys)

    def add(self, keys: np.ndarray, codes: np.ndarray) -> None:
        keys = np.asarray(keys, dtype=np.int64)
        codes = np.asarray(codes, dtype=np.uint64)
        if keys.shape != codes.shape:
            raise ValueError("keys and codes must have the same length")
        with self._lock:
            tail_keys = np.concatenate((self._tail_keys, keys))
            tail_codes = np.concatenate((self._tail_codes, codes))
            if len(tail_keys) >= MERGE_TAIL_AT or (
                self._bands is None and len(tail_keys) >= SCAN_BELOW
            ):
                if self._bands is not None:
                    tail_keys = np.concatenate((self._bands.keys, tail_keys))
                    tail_codes = np.concatenate((self._bands.codes, tail_codes))
                self._bands = _Bands(tail_keys, tail_codes)
                tail_keys = np.empty(0, dtype=np.int64)
                tail_codes = np.empty(0, dtype=np.uint64)
            self._tail_keys, self._tail_codes = tail_keys, tail_codes

    def search(self, code: int, radius: int, limit: int | None = None) -> list[Hit]:
        """Keys of all codes within `radius` bits of `code`, nearest first (ties by key)."""
        all_keys, distances = self.within(code, radius)
        order = np.lexsort((all_keys, distances))
        if limit is not None:
            order = order[:limit]
        return [Hit(int(all_keys[i]), int(distances[i])) for i in order]

    def within(self, code: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """Keys (each once, ascending) of all codes within `radius` bits of `code`, and their
        distances, as arrays."""
        _queries, keys, distances = self.within_many(np.array([code], dtype=np.uint64), radius)
        return keys, distances

    def within_many(
        self, codes: np.ndarray, radius: int, band_radius: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For many query codes at once: (query position, key, distance) of every code within
        `radius` bits of a query, each pair once, ordered by query position then key. One pass
        of numpy calls for all queries: a snippet lookup asks for hundreds of codes."""
        if not 0 <= radius <= 64:
            raise ValueError("radius must be between 0 and 64")
        queries = np.asarray(codes, dtype=np.uint64)
        bands, tail_keys, tail_codes = self._bands, self._tail_keys, self._tail_codes
        # The unsorted tail is compared with every query: keep that product to ~1M pairs.
        step = max(1, _PAIRS_AT_ONCE // max(1, len(tail_keys)))
        if len(queries) > step:
            parts = [
                self.within_many(queries[start : start + step], radius, band_radius)
                for start in range(0, len(queries), step)
            ]
            return (
                np.concatenate(
                    [
                        p[0] + start
                        for p, start in zip(parts, range(0, len(queries), step), strict=True)
                    ]
                ),
                np.concatenate([p[1] for p in parts]),
                np.concatenate([p[2] for p in parts]),
            )
        everyone = np.arange(len(queries))
        owners = [np.repeat(everyone, len(tail_keys))]
        keys = [np.tile(tail_keys, len(queries))]
        found = [np.tile(tail_codes, len(queries))]
        if bands is not None:
            if radius // BANDS > 3:
                # Probing C(16, r) values per band stops paying before a full scan does.
                owners.append(np.repeat(everyone, len(bands.keys)))
                keys.append(np.tile(bands.keys, len(queries)))
                found.append(np.tile(bands.codes, len(queries)))
            else:
                probe = radius // BANDS if band_radius is None else band_radius
                asked, picked = bands.candidates(queries, probe, radius)
                owners.append(asked)
                keys.append(bands.keys[picked])
                found.append(bands.codes[picked])
        all_owners, all_keys = np.concatenate(owners), np.concatenate(keys)
        distances = np.bitwise_count(np.concatenate(found) ^ queries[all_owners])
        near = distances <= radius
        all_owners, all_keys, distances = all_owners[near], all_keys[near], distances[near]
        order = np.lexsort((all_keys, all_owners))
        all_owners, all_keys, distances = all_owners[order], all_keys[order], distances[order]
        first = np.ones(len(all_keys), dtype=bool)
        first[1:] = (all_owners[1:] != all_owners[:-1]) | (all_keys[1:] != all_keys[:-1])
        return all_owners[first], all_keys[first], distances[first].astype(np.int64)
