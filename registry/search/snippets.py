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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from registry.iscc.granular import KINDS, FeatureSet
from registry.iscc.timebased import shifted_audio_features
from registry.search.evidence import MODALITY, Part, combine, content_weight, segment_weight
from registry.search.following import FollowingIndex
from registry.search.hamming import HammingIndex
from registry.store.store import Store

__all__ = [
    "Overlap",
    "Ranked",
    "SnippetIndex",
    "excerpt_features",
    "find_snippets",
    "locate",
    "overlaps",
    "rank",
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
    # Sound segments come every 186 ms; of an excerpt's query grids one lies within 12 ms of
    # the work's.
    "sound": _Rule(
        radius=10, lookup_radius=7, bin=186, tolerance=100, min_matched=3, min_score=0.6
    ),
}
_CANDIDATES = 20  # alignments checked against the store per kind
_GRIDS_CHECKED = 2  # query sets of one kind checked per declaration, the most voted first
_OTHER_PLACE_SHARE = 0.5  # votes, of the best offset's, for another offset to be checked too
_OTHER_PLACES = 40  # other offsets checked per declaration (a minute of a 2 s loop: 30)
SAME_SCORE = 0.02
"""Combined scores of two declarations this close rank the earlier declaration first."""
EQUAL_SCORE = 0.05
"""Places scoring within this of the best are as good: the excerpt could sit at any of them."""
DISTINCT_PLACE_MS = 1000
"""Equally good places further apart than this make an offset ambiguous (the acceptance
measure counts an offset within 1 s as right)."""
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
    places: tuple[int, ...] = ()
    """When the offset is ambiguous (self-similar segments): every place that scores as well
    as the best, in order; `offset` is then the best scoring one. Empty when it is not."""
    located_by: str | None = None
    """The other kind whose unambiguous offset picked this one among `places`."""

    @property
    def interval(self) -> tuple[int, int] | None:
        """First and last place an ambiguous excerpt may start at, or None."""
        return (self.places[0], self.places[-1]) if self.places else None


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
        return [(count, owner, offset) for count, owner, offset, _ in self.places(query, exclude)]

    def places(
        self, query: FeatureSet, exclude: int | None = None
    ) -> list[tuple[int, int, int, tuple[int, ...]]]:
        """As `votes`, with each declaration's other well supported offsets (at least
        `_OTHER_PLACE_SHARE` of the best one's votes, most votes first): where self-similar
        segments (a slow zoom, a repeated bar) put an excerpt nearly as well."""
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
        best: dict[int, tuple[int, int, list[int]]] = {}
        for count, owner, offset in scored:
            if count < rule.min_matched:
                break
            if owner not in best:  # one alignment per declaration: its best one
                if len(best) == _CANDIDATES:
                    continue
                best[owner] = (count, offset, [])
                continue
            top, first, others = best[owner]
            if (
                count >= top * _OTHER_PLACE_SHARE
                and len(others) < _OTHER_PLACES
                and all(abs(offset - o) > rule.bin for o in (first, *others))
            ):
                others.append(offset)
        return [(count, owner, offset, tuple(o)) for owner, (count, offset, o) in best.items()]


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


def _place(
    query: FeatureSet, declared: np.ndarray, offset: int
) -> tuple[int, float, list[int]] | None:
    """Refine an offset and score the query there: (offset, score, matched positions), or None
    when too few segments match."""
    rule = RULES[query.kind]
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
    return offset, score, matched


def _check(
    declared: np.ndarray, query: FeatureSet, owner: int, offset: int, others: Sequence[int] = ()
) -> Overlap | None:
    """Align the query near `offset` (and the other offsets voted for) in a declaration's
    stored segments of its kind and score it; equally good places far apart make the offset
    ambiguous."""
    rule = RULES[query.kind]
    if not len(declared):
        return None
    found = [p for p in (_place(query, declared, o) for o in (offset, *others)) if p is not None]
    if not found:
        return None
    offset, score, matched = max(found, key=lambda p: (p[1], -p[0]))
    if score < rule.min_score:
        return None
    places: tuple[int, ...] = ()
    if KINDS[query.kind] == "ms":
        equal = sorted({p[0] for p in found if p[1] >= score - EQUAL_SCORE})
        if equal[-1] - equal[0] > DISTINCT_PLACE_MS:
            places = tuple(equal)
    first, last = matched[0], matched[-1]
    length = int(query.offsets[last] + query.sizes[last] - query.offsets[first])
    return Overlap(owner, query.kind, round(score, 4), offset, length, len(matched), places)


def excerpt_features(path: Path, features: Sequence[FeatureSet]) -> list[FeatureSet]:
    """What a file is looked up by: its features, plus, if it has sound, its audio segments on
    shifted Chromaprint grids and its sound segments on every query grid (see
    `shifted_audio_features`)."""
    found = list(features)
    if any(f.kind in ("audio", "sound") for f in found):
        # The shifted grids hold the sound segments of every query grid, this one's too.
        found = [f for f in found if f.kind != "sound"] + shifted_audio_features(path)
    return found


def find_snippets(
    store: Store, index: SnippetIndex, features: Sequence[FeatureSet], exclude: int | None = None
) -> list[Overlap]:
    """Declarations the query features occur in, one Overlap per declaration and kind, best
    score first (then more segments matched). `features` may hold several sets of a kind (an
    excerpt's audio on shifted grids): per declaration only the `_GRIDS_CHECKED` sets with the
    most votes are checked against the store, and the best scoring one counts."""
    index.refresh()
    proposed: dict[tuple[int, str], list[tuple[int, int, FeatureSet, int, tuple[int, ...]]]] = {}
    for n, query in enumerate(features):
        if query.kind not in RULES:
            continue
        for votes, owner, offset, others in index.places(query, exclude):
            proposed.setdefault((owner, query.kind), []).append((votes, -n, query, offset, others))
    declared: dict[tuple[int, str], np.ndarray] = {}
    best: dict[tuple[int, str], Overlap] = {}
    for key, grids in proposed.items():
        grids.sort(key=lambda g: (-g[0], -g[1]))
        for _votes, _n, query, offset, others in grids[:_GRIDS_CHECKED]:
            if key not in declared:
                declared[key] = store.segments_of(*key)
            overlap = _check(declared[key], query, key[0], offset, others)
            known = best.get(key)
            if overlap is not None and (known is None or overlap.score > known.score):
                best[key] = overlap
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


@dataclass(frozen=True)
class Ranked:
    """A declaration the query overlaps, with every modality's evidence combined."""

    declaration_id: int
    score: float
    """`search.evidence.combine` over the parts."""
    parts: tuple[Part, ...]
    overlaps: tuple[Overlap, ...]
    """Per kind, where the query sits (best score first)."""


def locate(hits: Sequence[Overlap]) -> list[Overlap]:
    """One declaration's overlaps with ambiguous offsets settled where another kind can: the
    place of a self-similar picture is the one the soundtrack confirms (and the other way
    round); two ambiguous kinds keep the places they share. What stays ambiguous keeps its
    places, so a caller reports an interval instead of one confident wrong offset."""
    timed = {o.kind: o for o in hits if KINDS[o.kind] == "ms"}
    settled = {}
    for kind, overlap in timed.items():
        if not overlap.places:
            continue
        for other_kind, other in sorted(timed.items()):
            if other_kind == kind:
                continue
            if MODALITY[other_kind] == MODALITY[kind]:
                # The same sound heard by two features is no second witness: where one finds
                # it self-similar, the other's single place is one of several too.
                if not other.places and any(
                    abs(p - other.offset) <= DISTINCT_PLACE_MS for p in overlap.places
                ):
                    settled[other_kind] = replace(other, places=overlap.places)
                continue
            if other.places:
                common = [
                    p
                    for p in overlap.places
                    if any(abs(p - q) <= DISTINCT_PLACE_MS // 2 for q in other.places)
                ]
                if common and common[-1] - common[0] <= DISTINCT_PLACE_MS:
                    settled[kind] = replace(
                        overlap, offset=common[0], places=(), located_by=other_kind
                    )
                elif common and len(common) < len(overlap.places):
                    settled[kind] = replace(overlap, places=tuple(common))
                continue
            nearest = min(overlap.places, key=lambda p: abs(p - other.offset))
            if abs(nearest - other.offset) <= DISTINCT_PLACE_MS:
                offset = nearest
            elif overlap.places[0] <= other.offset <= overlap.places[-1]:
                offset = other.offset
            else:
                continue
            settled[kind] = replace(overlap, offset=offset, places=(), located_by=other_kind)
            break
    return [settled.get(o.kind, o) for o in hits]


def rank(
    found: Sequence[Overlap], content: Mapping[int, tuple[int, int]] | None = None
) -> list[Ranked]:
    """Declarations by the combined evidence of every kind they overlap in, plus the
    Content-Code distance where they are also similar as a whole (`content`: declaration id
    to (distance, threshold)); best first, then more segments matched, then earlier id; scores
    within SAME_SCORE of the best remaining one count as equal and the earliest goes first."""
    by_declaration: dict[int, list[Overlap]] = {}
    for overlap in found:
        by_declaration.setdefault(overlap.declaration_id, []).append(overlap)
    ranked = []
    for owner, hits in by_declaration.items():
        hits = locate(hits)
        parts = [Part(MODALITY[o.kind], segment_weight(o.kind, o.score), o.score) for o in hits]
        if content and owner in content:
            distance, threshold = content[owner]
            parts.append(Part("content", content_weight(distance, threshold), distance))
        ranked.append(Ranked(owner, combine(parts), tuple(parts), tuple(hits)))
    ranked.sort(key=lambda r: (-r.score, -sum(o.matched for o in r.overlaps), r.declaration_id))
    # Scores this close are the same evidence (one sound re-encoded twice: a recording and the
    # film that reuses it, for an excerpt of the sound alone): the earlier declaration first.
    ordered: list[Ranked] = []
    while ranked:
        group = [r for r in ranked if r.score >= ranked[0].score - SAME_SCORE]
        earliest = min(group, key=lambda r: r.declaration_id)
        ordered.append(earliest)
        ranked.remove(earliest)
    return ordered


def snippet_matches(
    store: Store,
    index: SnippetIndex,
    features: Sequence[FeatureSet],
    limit: int = 20,
    include_revoked: bool = False,
    content: Mapping[int, tuple[int, int]] | None = None,
) -> list[dict[str, Any]]:
    """The snippet part of a match answer: per declaration (best first by the combined
    evidence, `rank`) its record, score, the parts of the score and, per kind, where the
    excerpt sits in the declared work (an interval and the candidate places when ambiguous)."""
    ranked = rank(find_snippets(store, index, features), content)
    records = store.by_ids([r.declaration_id for r in ranked])
    answer = []
    for entry in ranked:
        record = records.get(entry.declaration_id)
        if record is None or (record.revoked and not include_revoked):
            continue
        answer.append(
            {
                "declaration": record.to_dict(),
                "score": entry.score,
                "evidence": [
                    {"part": p.modality, "weight": round(p.weight, 4), "figure": p.figure}
                    for p in entry.parts
                ],
                "kinds": [
                    {
                        "kind": o.kind,
                        "unit": KINDS[o.kind],
                        "score": o.score,
                        "offset": o.offset,
                        "length": o.length,
                        "matched": o.matched,
                        "interval": list(o.interval) if o.interval else None,
                        "places": list(o.places),
                        "located_by": o.located_by,
                    }
                    for o in entry.overlaps
                ],
            }
        )
        if len(answer) == limit:
            break
    return answer
