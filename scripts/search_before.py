"""The snippet search as it was before issue 21, frozen: the reference `bench_snippets.py` times
next to today's search, on the same store, index, excerpts and load, so the latency ratio is
measured in one run.

A copy of `registry/search/snippets.py` at commit 8a9c35c (the parent of the issue's first
change), trimmed to the search: per query feature set the best offset of each declaration by
votes, each checked against the store on its own (the declaration's segments read per check),
the best of several feature sets of a kind kept. It knows only video, audio and text segments
(the finer sound segments came with the issue), ranks by the single best score and reports one
offset. It reads today's index (`SnippetIndex`: the same Hamming indexes, owners and starts);
the Hamming search itself did not change (`registry/search/hamming.py` is identical).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from registry.iscc.granular import FeatureSet
from registry.search.snippets import SnippetIndex
from registry.store.store import Store

__all__ = ["find_before"]

# (radius, lookup radius, bin, tolerance, min matched, min score), as they were
_RULES = {
    "video": (10, 7, 200, 250, 3, 0.65),
    "audio": (10, 7, 124, 130, 3, 0.7),
    "text": (8, 7, 1, 0, 2, 0.4),
}
_CANDIDATES = 20
_CHANCE = 32


def _votes(index: SnippetIndex, query: FeatureSet) -> list[tuple[int, int, int]]:
    _radius, lookup_radius, width, *_ = _RULES[query.kind]
    hamming = index._indexes.get(query.kind)
    if hamming is None or not len(query):
        return []
    tally: dict[tuple[int, int], set[int]] = defaultdict(set)
    asked, keys, _distances = hamming.within_many(
        np.asarray(query.simprints, dtype=np.uint64), lookup_radius
    )
    owners, starts = index._owners[query.kind], index._starts[query.kind]
    query_starts = np.asarray(query.offsets, dtype=np.int64)
    bins = np.rint((starts[keys] - query_starts[asked]) / width).astype(np.int64)
    for position, owner, slot in set(
        zip(asked.tolist(), owners[keys].tolist(), bins.tolist(), strict=True)
    ):
        tally[(owner, slot)].add(position)
    scored = []
    for (owner, slot), voters in tally.items():
        near = voters | tally.get((owner, slot - 1), set()) | tally.get((owner, slot + 1), set())
        scored.append((len(near), owner, slot * width))
    scored.sort(key=lambda s: (-s[0], s[1], s[2]))
    best: list[tuple[int, int, int]] = []
    seen: set[int] = set()
    for count, owner, offset in scored:
        if count < _RULES[query.kind][4]:
            break
        if owner in seen:
            continue
        seen.add(owner)
        best.append((count, owner, offset))
        if len(best) == _CANDIDATES:
            break
    return best


def _align(
    query: FeatureSet, declared: np.ndarray, offset: int, tolerance: int
) -> tuple[list[int], list[int], list[int]]:
    radius = _RULES[query.kind][0]
    ref_start, ref_size = declared[:, 0], declared[:, 1]
    ref_value = declared[:, 2].view(np.uint64)
    ref_end = ref_start + ref_size
    q_start = np.asarray(query.offsets, dtype=np.int64)
    q_value = np.asarray(query.simprints, dtype=np.uint64)
    aligned = q_start + offset
    middle = aligned + np.asarray(query.sizes, dtype=np.int64) // 2
    inside = (middle >= ref_start[0]) & (middle < ref_end[-1])
    matched: list[int] = []
    shifts: list[int] = []
    nearest: list[int] = []
    lo = np.searchsorted(ref_start, aligned - tolerance - ref_size.max(), "left")
    hi = np.searchsorted(ref_start, aligned + tolerance, "right")
    for position in np.flatnonzero(inside):
        span = slice(lo[position], hi[position])
        near = np.flatnonzero(ref_end[span] + tolerance >= aligned[position])
        if not len(near):
            nearest.append(_CHANCE)
            continue
        distances = np.bitwise_count(ref_value[span][near] ^ q_value[position])
        closest = int(np.argmin(distances))
        nearest.append(min(_CHANCE, int(distances[closest])))
        if distances[closest] <= radius:
            matched.append(int(position))
            shifts.append(int(ref_start[span][near[closest]]) - int(q_start[position]))
    return matched, shifts, nearest


def _check(store: Store, query: FeatureSet, owner: int, offset: int) -> tuple | None:
    _radius, _lookup, width, tolerance, min_matched, min_score = _RULES[query.kind]
    declared = store.segments_of(owner, query.kind)
    if not len(declared):
        return None
    matched, shifts, _nearest = _align(query, declared, offset, tolerance)
    if len(matched) < min_matched:
        return None
    offset = int(np.median(shifts))
    matched, _shifts, nearest = _align(query, declared, offset, width // 2 + 1)
    if len(matched) < min_matched or not nearest:
        return None
    score = float(np.mean([1 - d / _CHANCE for d in nearest]))
    if score < min_score:
        return None
    return owner, query.kind, round(score, 4), offset, len(matched)


def find_before(
    store: Store, index: SnippetIndex, features: Sequence[FeatureSet]
) -> list[tuple[int, str, float, int, int]]:
    """(declaration, kind, score, offset, matched) per declaration and kind, best first."""
    index.refresh()
    best: dict[tuple[int, str], tuple] = {}
    for query in features:
        if query.kind not in _RULES:
            continue
        for _votes_count, owner, offset in _votes(index, query):
            found = _check(store, query, owner, offset)
            known = best.get((owner, query.kind))
            if found is not None and (known is None or found[2] > known[2]):
                best[(owner, query.kind)] = found
    return sorted(best.values(), key=lambda o: (-o[2], -o[4], o[0], o[1]))
