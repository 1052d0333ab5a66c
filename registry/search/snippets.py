"""Snippet matching: which declared works an excerpt comes from, and where inside them it sits.

Every segment of the query (a video frame, an audio item pair, a text chunk) looks up declared
segments of its kind within a few bits (exact multi-index Hamming search, `HammingIndex`) and
votes for (declaration, offset = declared start - query start); an excerpt re-encoded or resized
still lands most of its votes on one offset, while chance neighbours scatter over many. The best
supported alignments are then checked against the store: the declaration's segments are read,
the offset is refined to the median shift of the segments that match, and there every query
segment over the declared work is compared with the declared segment at its place. The score is
their mean similarity (1 - distance / 32, floored at 0): near 1 for a re-encoded excerpt, below
0.6 for chance alignments of unrelated works.

The in-memory index only proposes candidates and is refreshed from the store by segment row id;
the store stays the truth (rolled-back declarations are dropped when their records are fetched,
and the check reads their segments from the store), so every API process can rebuild it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from registry.iscc.granular import KINDS, FeatureSet
from registry.iscc.timebased import shifted_audio_features
from registry.search.following import FollowingIndex
from registry.search.hamming import HammingIndex
from registry.store.store import Store

__all__ = [
    "Overlap",
    "SnippetIndex",
    "excerpt_features",
    "find_snippets",
    "overlaps",
    "snippet_matches",
]


@dataclass(frozen=True)
class _Rule:
    radius: int
    """Most differing bits (of 64) for two segments to count as the same."""
    lookup_radius: int
    """Radius of the index lookups that propose alignments: within 7 bits the multi-index
    search probes 17 values per 16-bit band instead of 137 (within 10), and a true alignment
    still gets most of its votes; the check then counts matches within `radius`."""
    bin: int
    """Width of an offset vote bin, in the kind's unit."""
    tolerance: int
    """How far (unit) a declared segment may sit from a query segment's aligned position."""
    min_matched: int
    """Fewest matching segments for a match: a few can agree by chance."""
    min_score: float
    """Lowest score of a match. Measured (scripts/bench_snippets.py): true alignments score
    0.73-0.99 (video, 2 s excerpts) and 0.88-0.99 (audio, 5 s, with the shifted grids), chance
    alignments of unrelated works up to 0.58 (audio) and 0.56 (video)."""


RULES = {
    # Frames come every 200 ms; an excerpt's frames fall up to 100 ms between the work's.
    "video": _Rule(
        radius=10, lookup_radius=7, bin=200, tolerance=250, min_matched=3, min_score=0.65
    ),
    # Chromaprint items come every 124 ms, in the same places in every decoding of a sound.
    "audio": _Rule(
        radius=10, lookup_radius=7, bin=124, tolerance=130, min_matched=3, min_score=0.7
    ),
    # Content-defined chunk boundaries fall on the same characters in an excerpt, and a chunk
    # (a MinHash of ~250 characters) rarely comes near another text's by chance; the chunks an
    # excerpt cuts in two at its ends rarely match, so a lower score suffices.
    "text": _Rule(radius=8, lookup_radius=7, bin=1, tolerance=0, min_matched=2, min_score=0.4),
}
_CANDIDATES = 20  # alignments checked against the store per kind
_CHANCE = 32  # bits two unrelated 64-bit simprints differ in, on average


@dataclass(frozen=True)
class Overlap:
    """Where a query (an excerpt, or another declaration's work) sits in a declaration."""

    declaration_id: int
    kind: str
    score: float
    """Mean similarity (1 - distance / 32, floored at 0) of the query's segments over the
    overlap to the nearest declared segment at their aligned place, 0..1."""
    offset: int
    """Start of the query inside the declared work (ms or characters); negative when the
    query starts before the declared work (the declared work lies inside the query)."""
    length: int
    """Length of the overlap (ms or characters)."""
    matched: int
    """Number of query segments that matched."""


class SnippetIndex(FollowingIndex):
    """Per-kind Hamming indexes over the store's segments, refreshed by segment row id."""

    def __init__(self, store: Store) -> None:
        super().__init__(store, KINDS)
        # Per kind, what the index keys (positions) stand for: declaration id and start. They
        # grow before the index does, so a reader that looks them up after searching finds
        # every key the search returned.
        self._owners: dict[str, np.ndarray] = {}
        self._starts: dict[str, np.ndarray] = {}

    def _last_id(self) -> int:
        return self.store.last_segment_id()

    def _rows(self, after_id: int, up_to_id: int) -> np.ndarray:
        return self.store.segment_values(self.names, after_id, up_to_id)

    def _add(self, name: str, index: HammingIndex, rows: np.ndarray) -> None:
        base = len(index)
        empty = np.empty(0, dtype=np.int64)
        self._owners[name] = np.concatenate((self._owners.get(name, empty), rows[:, 1]))
        self._starts[name] = np.concatenate((self._starts.get(name, empty), rows[:, 2]))
        keys = np.arange(base, base + len(rows), dtype=np.int64)
        index.add(keys, rows[:, 4].view(np.uint64))

    def votes(self, query: FeatureSet, exclude: int | None = None) -> list[tuple[int, int, int]]:
        """Best supported (votes, declaration id, offset) alignments of a query, most votes
        first; each query segment votes once per declaration and offset bin."""
        rule = RULES[query.kind]
        index = self._indexes.get(query.kind)
        if index is None or not len(query):
            return []
        tally: dict[tuple[int, int], set[int]] = defaultdict(set)
        asked, keys, _distances = index.within_many(
            np.asarray(query.simprints, dtype=np.uint64), rule.lookup_radius
        )
        owners, starts = self._owners[query.kind], self._starts[query.kind]
        query_starts = np.asarray(query.offsets, dtype=np.int64)
        bins = np.rint((starts[keys] - query_starts[asked]) / rule.bin).astype(np.int64)
        for position, owner, slot in set(
            zip(asked.tolist(), owners[keys].tolist(), bins.tolist(), strict=True)
        ):
            if owner != exclude:
                tally[(owner, slot)].add(position)
        # Jitter spreads one alignment over neighbouring bins: count a bin with its neighbours.
        scored = []
        for (owner, slot), voters in tally.items():
            near = (
                voters | tally.get((owner, slot - 1), set()) | tally.get((owner, slot + 1), set())
            )
            scored.append((len(near), owner, slot * rule.bin))
        scored.sort(key=lambda s: (-s[0], s[1], s[2]))
        best: list[tuple[int, int, int]] = []
        seen: set[int] = set()
        for count, owner, offset in scored:
            if count < rule.min_matched:
                break
            if owner in seen:  # one alignment per declaration: its best one
                continue
            seen.add(owner)
            best.append((count, owner, offset))
            if len(best) == _CANDIDATES:
                break
        return best


def _align(
    query: FeatureSet, declared: np.ndarray, offset: int, tolerance: int
) -> tuple[list[int], list[int], list[int]]:
    """Query segments placed at `offset` in a declaration's segments (start, size, value rows
    sorted by start): which matched within the radius, their shifts (declared start - query
    start), and for every query segment over the declared work its nearest distance (capped at
    chance) to a declared segment within `tolerance` of its place."""
    rule = RULES[query.kind]
    ref_start, ref_size = declared[:, 0], declared[:, 1]
    ref_value = declared[:, 2].view(np.uint64)
    ref_end = ref_start + ref_size
    q_start = np.asarray(query.offsets, dtype=np.int64)
    q_value = np.asarray(query.simprints, dtype=np.uint64)
    aligned = q_start + offset
    # A query segment counts towards the overlap if its middle falls within the declared work.
    middle = aligned + np.asarray(query.sizes, dtype=np.int64) // 2
    inside = (middle >= ref_start[0]) & (middle < ref_end[-1])
    matched: list[int] = []
    shifts: list[int] = []
    nearest: list[int] = []
    # Declared segments that may cover each aligned position (starts are sorted).
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
        if distances[closest] <= rule.radius:
            matched.append(int(position))
            shifts.append(int(ref_start[span][near[closest]]) - int(q_start[position]))
    return matched, shifts, nearest


def _check(store: Store, query: FeatureSet, owner: int, offset: int) -> Overlap | None:
    """Align the query near `offset` in a declaration's stored segments and score it."""
    rule = RULES[query.kind]
    declared = store.segments_of(owner, query.kind)
    if not len(declared):
        return None
    matched, shifts, _nearest = _align(query, declared, offset, rule.tolerance)
    if len(matched) < rule.min_matched:
        return None
    # The median shift of the matching segments places the query more finely than the vote
    # bins; scored there, each query segment meets only the declared segment at its place, so
    # a chance alignment gains nothing from picking the best of several neighbours.
    offset = int(np.median(shifts))
    matched, _shifts, nearest = _align(query, declared, offset, rule.bin // 2 + 1)
    if len(matched) < rule.min_matched or not nearest:
        return None
    # Every overlapping segment counts, by how close its declared counterpart is: a true
    # alignment keeps most bits even where a segment misses the radius, while a chance one
    # scores low outside the few segments that agree by chance.
    score = float(np.mean([1 - d / _CHANCE for d in nearest]))
    if score < rule.min_score:
        return None
    first, last = matched[0], matched[-1]
    length = int(query.offsets[last] + query.sizes[last] - query.offsets[first])
    return Overlap(owner, query.kind, round(score, 4), offset, length, len(matched))


def excerpt_features(path: Path, features: Sequence[FeatureSet]) -> list[FeatureSet]:
    """What a file is looked up by: its features, plus, if it has sound, its audio segments on
    shifted Chromaprint grids (see `shifted_audio_features`)."""
    found = list(features)
    if any(f.kind == "audio" for f in found):
        found += shifted_audio_features(path)
    return found


def find_snippets(
    store: Store, index: SnippetIndex, features: Sequence[FeatureSet], exclude: int | None = None
) -> list[Overlap]:
    """Declarations the query features occur in, one Overlap per declaration and kind, best
    score first (then more segments matched). `features` may hold several sets of a kind."""
    index.refresh()
    best: dict[tuple[int, str], Overlap] = {}
    for query in features:
        if query.kind not in RULES:
            continue
        for _votes, owner, offset in index.votes(query, exclude):
            overlap = _check(store, query, owner, offset)
            # Several feature sets of one kind (an excerpt's shifted audio grids): the best.
            known = best.get((owner, query.kind))
            if overlap is not None and (known is None or overlap.score > known.score):
                best[(owner, query.kind)] = overlap
    return sorted(best.values(), key=lambda o: (-o.score, -o.matched, o.declaration_id, o.kind))


def overlaps(store: Store, declaration_id: int, index: SnippetIndex | None = None) -> list[Overlap]:
    """Other declarations whose segments overlap those of one declaration (by store row id):
    per other declaration and kind, the score, where this declaration's work starts inside the
    other one (`offset`, may be negative) and the overlap's length. Built for conflict
    detection; pass a kept SnippetIndex to avoid loading the store's segments per call."""
    index = index or SnippetIndex(store)
    queries = []
    for kind in sorted(KINDS):
        rows = store.segments_of(declaration_id, kind)
        if len(rows):
            queries.append(
                FeatureSet(
                    kind,
                    tuple(rows[:, 2].view(np.uint64).tolist()),
                    tuple(rows[:, 0].tolist()),
                    tuple(rows[:, 1].tolist()),
                )
            )
    return find_snippets(store, index, queries, exclude=declaration_id)


def snippet_matches(
    store: Store,
    index: SnippetIndex,
    features: Sequence[FeatureSet],
    limit: int = 20,
    include_revoked: bool = False,
) -> list[dict[str, Any]]:
    """The snippet part of a match answer: per declaration (best first) its record, best score
    and, per kind, where the excerpt sits in the declared work."""
    found = find_snippets(store, index, features)
    by_declaration: dict[int, list[Overlap]] = {}
    for overlap in found:
        by_declaration.setdefault(overlap.declaration_id, []).append(overlap)
    records = store.by_ids(list(by_declaration))
    answer = []
    for owner, hits in by_declaration.items():
        record = records.get(owner)
        if record is None or (record.revoked and not include_revoked):
            continue
        answer.append(
            {
                "declaration": record.to_dict(),
                "score": hits[0].score,
                "kinds": [
                    {
                        "kind": o.kind,
                        "unit": KINDS[o.kind],
                        "score": o.score,
                        "offset": o.offset,
                        "length": o.length,
                        "matched": o.matched,
                    }
                    for o in hits
                ],
            }
        )
        if len(answer) == limit:
            break
    return answer
