"""Exact Hamming-radius search over 64-bit codes by multi-index hashing (Norouzi et al.).

A 64-bit code is cut into four 16-bit bands. Two codes within distance t agree to within t // 4
bits on at least one band (pigeonhole), so the candidates for a query are the codes whose band
equals one of the band values within that radius of the query's; each candidate is then checked
on all 64 bits. Recall is exactly that of a full scan, at a fraction of its cost when t is small
relative to 64. Each unit type (meta, content kinds, data) gets its own index. The snippet
search trades some recall for speed and bounded cost (`within_many`: band_radius, budget).

Codes arrive in small batches (the indexer's new declarations) on top of millions. Re-sorting
millions per batch is too slow, and scanning the batches unsorted made every lookup compare
each query code with all of them (a 120-code snippet lookup beside 32,000 new codes: 57 ms).
So the codes added since the last merge get band tables of their own, rebuilt per batch (a
radix sort of at most MERGE_TAIL_AT codes), and are merged into the main tables when they
reach that many.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from functools import cache
from itertools import combinations

import numpy as np

__all__ = ["HammingIndex", "Hit"]

BANDS = 4
BAND_BITS = 16
_MASK = np.uint64((1 << BAND_BITS) - 1)
# Below this many codes a full scan is as fast as probing bands, and needs no sorted copies.
SCAN_BELOW = 4096
# Codes added since the last merge (with band tables of their own) are merged into the main
# tables at this many.
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
            values = ((codes >> np.uint64(band * BAND_BITS)) & _MASK).astype(np.uint16)
            # A stable sort of 16-bit keys is a radix sort in numpy: linear, several times
            # faster than sorting them as 64-bit values (the tail's tables are rebuilt per batch).
            order = np.argsort(values, kind="stable")
            self.order.append(order)
            self.sorted_codes.append(codes[order])
            counts = np.bincount(values, minlength=1 << BAND_BITS)
            self.starts.append(np.concatenate(([0], np.cumsum(counts))))

    def candidates(
        self, queries: np.ndarray, band_radius: int, radius: int, budget: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(query position, code position) pairs whose band is within `band_radius` bits of the
        query's on some band and whose code is within `radius` bits of the query: every band
        probe of every query in one pass of table lookups. Each band's candidates are compared
        and dropped before the next band's are gathered: most are far (99 % for crowded sound
        segments), and carrying them all to one comparison cost more than the comparison.

        With a `budget`, the most crowded runs are left out until the candidates fit in it."""
        flips = _flips(band_radius)
        owners = np.repeat(np.arange(len(queries)), len(flips))
        probed = np.repeat(queries, len(flips))
        runs = []
        for band in range(BANDS):
            values = (queries >> np.uint64(band * BAND_BITS)) & _MASK
            probe = (values[:, None] ^ flips[None, :]).ravel()
            lo = self.starts[band][probe]
            runs.append((lo, self.starts[band][probe + np.uint64(1)] - lo))
        if budget is not None:
            _limit(runs, budget)
        found_queries, found = [], []
        for band, (lo, sizes) in enumerate(runs):
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


def _limit(runs: list[tuple[np.ndarray, np.ndarray]], budget: int) -> None:
    """Empty the longest runs (size set to 0, in place) until their sizes sum to `budget` or
    less. Memory and time of a lookup grow with its candidates, and identical codes are free to
    declare and to upload (a still picture, a steady tone): 20,000 declared copies of one code
    met by a 2-minute upload's 5,000 sound codes made 10^8 candidates (attacker review). A band
    value that crowded tells little about where a segment comes from."""
    every = np.concatenate([sizes for _lo, sizes in runs])
    excess = int(every.sum()) - budget
    if excess <= 0:
        return
    longest = np.argsort(every, kind="stable")[::-1]
    dropped = longest[: int(np.searchsorted(np.cumsum(every[longest]), excess)) + 1]
    every[dropped] = 0
    start = 0
    for _lo, sizes in runs:
        sizes[:] = every[start : start + len(sizes)]
        start += len(sizes)


@dataclass(frozen=True)
class _Snapshot:
    """What a reader searches: the main band tables, and the codes added since (`tail`) with
    band tables of their own once the index is past SCAN_BELOW (below it the tail is all
    there is, scanned in full)."""

    bands: _Bands | None
    tail_keys: np.ndarray
    tail_codes: np.ndarray
    tail_bands: _Bands | None


_EMPTY = _Snapshot(None, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint64), None)


class HammingIndex:
    """Codes with integer keys; `search` returns every key within a radius, nearest first.

    Safe for one writer and many readers: readers work on one immutable snapshot, replaced
    whole by each `add`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot = _EMPTY

    def __len__(self) -> int:
        snapshot = self._snapshot
        base = 0 if snapshot.bands is None else len(snapshot.bands.keys)
        return base + len(snapshot.tail_keys)

    def add(self, keys: np.ndarray, codes: np.ndarray) -> None:
        keys = np.asarray(keys, dtype=np.int64)
        codes = np.asarray(codes, dtype=np.uint64)
        if keys.shape != codes.shape:
            raise ValueError("keys and codes must have the same length")
        with self._lock:
            bands = self._snapshot.bands
            tail_keys = np.concatenate((self._snapshot.tail_keys, keys))
            tail_codes = np.concatenate((self._snapshot.tail_codes, codes))
            if bands is None and len(tail_keys) < SCAN_BELOW:
                self._snapshot = _Snapshot(None, tail_keys, tail_codes, None)
            elif bands is None or len(tail_keys) >= MERGE_TAIL_AT:
                if bands is not None:
                    tail_keys = np.concatenate((bands.keys, tail_keys))
                    tail_codes = np.concatenate((bands.codes, tail_codes))
                self._snapshot = replace(_EMPTY, bands=_Bands(tail_keys, tail_codes))
            else:
                tail_bands = _Bands(tail_keys, tail_codes)
                self._snapshot = _Snapshot(bands, tail_keys, tail_codes, tail_bands)

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
        self,
        codes: np.ndarray,
        radius: int,
        band_radius: int | None = None,
        budget: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For many query codes at once: (query position, key, distance) of every code within
        `radius` bits of a query, each pair once, ordered by query position then key. One pass
        of numpy calls for all queries: a snippet lookup asks for hundreds of codes.

        Exact unless told otherwise: `band_radius` below radius // 4 probes fewer band values
        (with 0, a code is found when one of its bands equals the query's), and `budget` caps
        the candidates of each band table, leaving the most crowded band values out. An index
        under SCAN_BELOW codes has no band tables and is always searched exactly."""
        if not 0 <= radius <= 64:
            raise ValueError("radius must be between 0 and 64")
        queries = np.asarray(codes, dtype=np.uint64)
        snapshot = self._snapshot
        probe = radius // BANDS if band_radius is None else band_radius
        scanned = [(snapshot.tail_keys, snapshot.tail_codes)]
        probed = [t for t in (snapshot.bands, snapshot.tail_bands) if t is not None]
        if probe > 3:
            # Probing C(16, r) values per band stops paying before a full scan does.
            if snapshot.bands is not None:
                scanned.append((snapshot.bands.keys, snapshot.bands.codes))
            probed = []
        elif snapshot.tail_bands is not None:
            scanned = []
        # What is scanned is compared with every query: keep that product to ~1M pairs.
        step = max(1, _PAIRS_AT_ONCE // max(1, sum(len(k) for k, _codes in scanned)))
        if len(queries) > step:
            parts = [
                self.within_many(queries[start : start + step], radius, band_radius, budget)
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
        owners = [np.repeat(everyone, len(k)) for k, _codes in scanned]
        keys = [np.tile(k, len(queries)) for k, _codes in scanned]
        found = [np.tile(codes, len(queries)) for _keys, codes in scanned]
        for table in probed:
            asked, picked = table.candidates(queries, probe, radius, budget)
            owners.append(asked)
            keys.append(table.keys[picked])
            found.append(table.codes[picked])
        all_owners, all_keys = np.concatenate(owners), np.concatenate(keys)
        distances = np.bitwise_count(np.concatenate(found) ^ queries[all_owners])
        near = distances <= radius
        all_owners, all_keys, distances = all_owners[near], all_keys[near], distances[near]
        order = np.lexsort((all_keys, all_owners))
        all_owners, all_keys, distances = all_owners[order], all_keys[order], distances[order]
        first = np.ones(len(all_keys), dtype=bool)
        first[1:] = (all_owners[1:] != all_owners[:-1]) | (all_keys[1:] != all_keys[:-1])
        return all_owners[first], all_keys[first], distances[first].astype(np.int64)
