"""Snippet matching: which declared works an excerpt comes from, and where inside them it sits.

Every segment of the query (a video frame, an audio item pair, a text chunk) looks up declared
segments of its kind within a few bits (multi-index Hamming search, `HammingIndex`, probing
each band's own value only: `_Rule.band_radius`) and
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

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from registry.errors import SoundTooShort
from registry.iscc.granular import KINDS, FeatureSet
from registry.iscc.timebased import shifted_audio_features
from registry.search.evidence import (
    MODALITY,
    Part,
    combine,
    content_weight,
    discounted,
    segment_weight,
)
from registry.search.following import FollowingIndex
from registry.search.hamming import HammingIndex
from registry.store.store import Store

if TYPE_CHECKING:
    from registry.iscc.generate import IsccResult

__all__ = [
    "Overlap",
    "Ranked",
    "SnippetIndex",
    "absent_modalities",
    "excerpt_features",
    "file_features",
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
    band_radius: int | None = 0
    """Bits each 16-bit band of a lookup's codes may differ in (`HammingIndex.within_many`);
    None makes the lookup exact (lookup_radius // 4). With 0 only each band's own value is
    probed, 4 runs of codes per query code instead of 68: every code within 3 bits is found,
    and one 4-7 bits away when one of its four bands kept all its bits (for bits that differ
    at random: 90 % of codes at 4 bits, 74 % at 5, 58 % at 6, 44 % at 7). A query that flips
    one bit in every band (4 bits) is missed, where the exact lookup needed 8: a deliberately
    altered upload evades an excerpt match more cheaply (whole-file similarity by Content-Code
    stays exact; declarers choose their own features anyway). A true alignment has many
    segments and so keeps enough votes (scripts/bench_snippets.py: the same top-1 and places in
    every category); what changes is which of an excerpt's grids gets the most votes, hence
    `_GRIDS_CHECKED`. The lookups were most of a search's time: crowded sound segments bring
    over 3,000 candidates per code with 68 probes (issue 21)."""


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
    # excerpt cuts in two at its ends rarely match, so a lower score suffices. Its lookups stay
    # exact: an excerpt has few chunks, and two matches make a match.
    "text": _Rule(
        radius=8,
        lookup_radius=7,
        bin=1,
        tolerance=0,
        min_matched=2,
        min_score=0.4,
        band_radius=None,
    ),
    # Sound segments come every 186 ms; of an excerpt's query grids one lies within 12 ms of
    # the work's.
    "sound": _Rule(
        radius=10, lookup_radius=7, bin=186, tolerance=100, min_matched=3, min_score=0.6
    ),
}
_CANDIDATES = 20  # alignments checked against the store per kind
LOOKUP_BUDGET = 1 << 21
"""Most candidate codes one lookup gathers per band table; beyond it the most crowded band
values are left out (`HammingIndex.within_many`). Real sound codes gather 349 each at 1.6
million declared sound segments (scripts/bench_snippets.py's store), so a 2-minute upload's
5,160 sound codes gather about 1.8 million, none left out. Identical codes cost nothing to
declare or to upload (a still picture, a steady tone): 20,000 declared copies of one code, met
by that upload, made 10^8 candidates and tens of GB (attacker review); within the budget, 170
MB at the peak and 0.5 s."""
_GRIDS_CHECKED = 4
"""Query sets of one kind (an excerpt's grids) checked per declaration, the most voted first:
with lookups that miss some of the near codes (`_Rule.band_radius`) the grid that fits the work
best is not always among the two most voted. Checking four, against two with exact lookups,
raised the top score of 27 of the benchmark's 342 answers and lowered 2 (slow zoom films, still
placed within 1 s); with two, 4 top scores fell, one from 0.70 to 0.32 (docs/benchmarks.md)."""
_OTHER_PLACE_SHARE = 0.5  # votes, of the best offset's, for another character offset to be tried
_OTHER_PLACES = 40  # other offsets kept per declaration
_KINDS_KEPT = 100_000  # declarations whose segment kinds an index keeps before it starts over
_LISTED_PLACES = 100
"""Most candidate places an answer lists; `interval` and `period` describe them all."""
SAME_SCORE = 0.02
"""Combined scores of two declarations this close rank the earlier declaration first."""
EQUAL_SCORE = 0.05
"""Places scoring within this of the best are as good: the excerpt could sit at any of them."""
DISTINCT_PLACE_MS = 1000
"""Equally good places further apart than this make an offset ambiguous (the acceptance
measure counts an offset within 1 s as right)."""
_CHANCE = 32  # bits two unrelated 64-bit simprints differ in, on average
_BIN_ZERO = 1 << 31  # offset bins are counted from here in the low half of a vote's key
_LOW_HALF = (1 << 32) - 1


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
    period: int | None = None
    """When the places repeat at a regular step (a looped bar, a repeated shot): that step."""

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
        # Segment kinds per declaration as the store had them (`kinds_of`), until the
        # declaration gets new segment rows (a changed document): read once, not per match.
        self._kinds: dict[int, frozenset[str]] = {}

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
        if self._kinds:
            for owner in np.unique(rows[:, 1]).tolist():
                self._kinds.pop(owner, None)

    def kinds_of(self, declaration_ids: Sequence[int]) -> dict[int, frozenset[str]]:
        """The segment kinds of these declarations, read from the store the first time."""
        known = {d: self._kinds.get(d) for d in declaration_ids}
        missing = [d for d, kinds in known.items() if kinds is None]
        read: dict[int, frozenset[str]] = {}
        if missing:
            if len(self._kinds) >= _KINDS_KEPT:
                self._kinds.clear()
            before = self._after
            stored = self.store.segment_kinds(missing)
            read = {d: frozenset(stored.get(d, ())) for d in missing}
            # A refresh meanwhile may have dropped what was just read: then it stays unkept.
            if self._after == before:
                self._kinds.update(read)
        return {d: read[d] if kinds is None else kinds for d, kinds in known.items()}

    def votes(self, query: FeatureSet, exclude: int | None = None) -> list[tuple[int, int, int]]:
        """Best supported (votes, declaration id, offset) alignments of a query, most votes
        first; each query segment votes once per declaration and offset bin."""
        return [(count, owner, offset) for count, owner, offset, _ in self.places(query, exclude)]

    def places(
        self, query: FeatureSet, exclude: int | None = None
    ) -> list[tuple[int, int, int, tuple[int, ...]]]:
        """As `votes`, with each declaration's other supported offsets (most votes first):
        where self-similar segments (a slow zoom, a repeated bar) put an excerpt too. In time
        any other offset counts, however few its votes, because it only tells `find_snippets`
        to scan the whole work (`_scan`): a repeated bar the excerpt fits best may get fewer
        votes than another repetition. Text offsets need `_OTHER_PLACE_SHARE` of the best one's
        votes and are scored one by one."""
        return self.places_of([query], exclude)[0]

    def places_of(
        self, queries: Sequence[FeatureSet], exclude: int | None = None
    ) -> list[list[tuple[int, int, int, tuple[int, ...]]]]:
        """`places` of several feature sets of one kind (an excerpt's sound on its query
        grids), looked up in one pass of the Hamming index: per call it costs a fixed set of
        numpy steps, so eight small lookups cost nearly eight times one larger one."""
        if not queries:
            return []
        kind = queries[0].kind
        index = self._indexes.get(kind)
        if index is None:
            return [[] for _ in queries]
        values = [np.asarray(q.simprints, dtype=np.uint64) for q in queries]
        rule = RULES[kind]
        asked, keys, _distances = index.within_many(
            np.concatenate(values), rule.lookup_radius, rule.band_radius, LOOKUP_BUDGET
        )
        return self._tally(queries, asked, keys, exclude)

    def _tally(
        self,
        queries: Sequence[FeatureSet],
        asked: np.ndarray,
        keys: np.ndarray,
        exclude: int | None,
    ) -> list[list[tuple[int, int, int, tuple[int, ...]]]]:
        """The votes of the segments of several query sets of one kind (`asked`: positions in
        the sets laid end to end, `keys`: index keys within the lookup radius of them) per set,
        declaration and offset bin, as `places_of` returns them. Counted for all sets at once:
        per set it would cost a fixed run of numpy steps, for each of an excerpt's grids."""
        kind = queries[0].kind
        rule = RULES[kind]
        owners, starts = self._owners[kind], self._starts[kind]
        query_starts = np.concatenate([np.asarray(q.offsets, dtype=np.int64) for q in queries])
        set_of = np.repeat(np.arange(len(queries)), [len(q) for q in queries])
        voted_for = owners[keys]
        bins = np.rint((starts[keys] - query_starts[asked]) / rule.bin).astype(np.int64)
        if exclude is not None:
            kept = voted_for != exclude
            asked, voted_for, bins = asked[kept], voted_for[kept], bins[kept]
        scored: list[list[tuple[int, int, int]]] = [[] for _ in queries]
        if len(asked):
            # (set, declaration) numbered densely, and with the offset bin one integer: the
            # bin in the low half, offset so that a neighbouring bin is the integer beside
            # it. Each query segment's vote counts once.
            width = int(voted_for.max()) + 1
            pairs, dense = np.unique(set_of[asked] * width + voted_for, return_inverse=True)
            slot, voter = _unique_pairs((dense << 32) | (bins + _BIN_ZERO), asked)
            # Jitter spreads one alignment over neighbouring bins: a bin counts its
            # neighbours' voters too, each once. A crowded sound lookup brings thousands of
            # votes, nearly all alone in their bins, so bins whose three bins hold fewer votes
            # than a match needs are dropped in numpy before the voters of the rest are counted.
            lo = np.searchsorted(slot, slot - 1, "left")
            hi = np.searchsorted(slot, slot + 1, "right")
            worth = np.ones(len(slot), dtype=bool)
            worth[1:] = slot[1:] != slot[:-1]
            worth &= hi - lo >= rule.min_matched
            voters = voter.tolist()
            for key, start, end in zip(
                slot[worth].tolist(), lo[worth].tolist(), hi[worth].tolist(), strict=True
            ):
                count = len(set(voters[start:end]))
                if count >= rule.min_matched:
                    n, owner = divmod(int(pairs[key >> 32]), width)
                    offset = ((key & _LOW_HALF) - _BIN_ZERO) * rule.bin
                    scored[n].append((count, owner, offset))
        return [_best_places(kind, votes) for votes in scored]


def _best_places(
    kind: str, scored: list[tuple[int, int, int]]
) -> list[tuple[int, int, int, tuple[int, ...]]]:
    """Per declaration its best (votes, declaration id, offset, other offsets) of one query
    set's (votes, declaration id, offset) bins, most votes first; other offsets as `places`
    says, at most `_CANDIDATES` declarations."""
    rule = RULES[kind]
    scored.sort(key=lambda s: (-s[0], s[1], s[2]))
    timed = KINDS[kind] == "ms"
    share = 0.0 if timed else _OTHER_PLACE_SHARE
    # In time another place means another place to stand: more than DISTINCT_PLACE_MS
    # away (votes spilling into the bins next to the best one are jitter).
    apart = DISTINCT_PLACE_MS if timed else rule.bin
    best: dict[int, tuple[int, int, list[int]]] = {}
    for count, owner, offset in scored:
        if owner not in best:  # one alignment per declaration: its best one
            if len(best) == _CANDIDATES:
                continue
            best[owner] = (count, offset, [])
            continue
        top, first, others = best[owner]
        if (
            count >= top * share
            and len(others) < _OTHER_PLACES
            and all(abs(offset - o) > apart for o in (first, *others))
        ):
            others.append(offset)
    return [(count, owner, offset, tuple(o)) for owner, (count, offset, o) in best.items()]


def _unique_pairs(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each (first, second) pair once, ordered by first then second."""
    order = np.lexsort((second, first))
    first, second = first[order], second[order]
    new = np.ones(len(first), dtype=bool)
    new[1:] = (first[1:] != first[:-1]) | (second[1:] != second[:-1])
    return first[new], second[new]


def _align(
    segments: tuple[np.ndarray, np.ndarray, np.ndarray],
    offsets: np.ndarray,
    declared: np.ndarray,
    tolerance: int,
    radius: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Query segments (starts, sizes, values) each placed at its offset in a declaration's
    segments (start, size, value rows sorted by start): the positions that matched within the
    radius and their shifts (declared start - query start), the positions over the declared
    work and their nearest distances (capped at chance) to a declared segment within
    `tolerance` of their place. Several query sets, each at its own offset, align at once."""
    q_start, q_size, q_value = segments
    ref_start, ref_size = declared[:, 0], declared[:, 1]
    ref_value = declared[:, 2].view(np.uint64)
    ref_end = ref_start + ref_size
    aligned = q_start + offsets
    # A query segment counts towards the overlap if its middle falls within the declared work.
    middle = aligned + q_size // 2
    inside = (middle >= ref_start[0]) & (middle < ref_end[-1])
    # Declared segments that may cover each aligned position (starts are sorted), for every
    # query segment over the work at once: each one's span of candidates is laid out in a row.
    lo = np.searchsorted(ref_start, aligned - tolerance - ref_size.max(), "left")
    hi = np.searchsorted(ref_start, aligned + tolerance, "right")
    over = np.flatnonzero(inside)
    counts = np.maximum(hi[over] - lo[over], 0)
    which = np.repeat(over, counts)
    candidate = lo[which] + np.arange(len(which)) - np.repeat(np.cumsum(counts) - counts, counts)
    near = ref_end[candidate] + tolerance >= aligned[which]
    which, candidate = which[near], candidate[near]
    distances = np.bitwise_count(ref_value[candidate] ^ q_value[which]).astype(np.int64)
    # Per query segment its closest candidate, the earliest of equally close ones.
    order = np.lexsort((candidate, distances, which))
    which, candidate, distances = which[order], candidate[order], distances[order]
    first = np.ones(len(which), dtype=bool)
    first[1:] = which[1:] != which[:-1]
    which, candidate, distances = which[first], candidate[first], distances[first]
    closest = np.full(len(q_start), _CHANCE, dtype=np.int64)
    closest[which] = np.minimum(distances, _CHANCE)
    hit = distances <= radius
    matched = which[hit]
    shifts = ref_start[candidate[hit]] - q_start[matched]
    return matched, shifts, over, closest[over]


def _placed(
    declared: np.ndarray, tries: Sequence[tuple[FeatureSet, int]]
) -> list[tuple[int, float, list[int]] | None]:
    """Each (query set, offset) try refined and scored: (offset, score, matched positions), or
    None when too few segments match. All tries are aligned together, twice: checking an
    excerpt's grids of a kind costs up to four tries per declaration (the most voted ones),
    and each alignment is a fixed run of numpy steps however few its segments."""
    rule = RULES[tries[0][0].kind]
    sizes = np.array([len(query) for query, _offset in tries])
    ends = np.cumsum(sizes)
    group = np.repeat(np.arange(len(tries)), sizes)
    segments = (
        np.concatenate([np.asarray(q.offsets, dtype=np.int64) for q, _o in tries]),
        np.concatenate([np.asarray(q.sizes, dtype=np.int64) for q, _o in tries]),
        np.concatenate([np.asarray(q.simprints, dtype=np.uint64) for q, _o in tries]),
    )
    offsets = np.array([offset for _query, offset in tries], dtype=np.int64)
    matched, shifts, _over, _nearest = _align(
        segments, offsets[group], declared, rule.tolerance, rule.radius
    )
    cuts = np.searchsorted(matched, ends - sizes), np.searchsorted(matched, ends)
    refined: dict[int, int] = {}
    for n, (lo, hi) in enumerate(zip(*cuts, strict=True)):
        # The median shift of the matching segments places the query more finely than the
        # vote bins; scored there, each query segment meets only the declared segment at its
        # place, so a chance alignment gains nothing from picking the best of several
        # neighbours. (Of a few dozen shifts np.median's own overhead would be most of it.)
        if hi - lo >= rule.min_matched:
            refined[n] = int(statistics.median(shifts[lo:hi].tolist()))
    placed: list[tuple[int, float, list[int]] | None] = [None] * len(tries)
    if not refined:
        return placed
    for n, offset in refined.items():
        offsets[n] = offset
    kept = np.zeros(len(tries), dtype=bool)
    kept[list(refined)] = True
    chosen = np.flatnonzero(kept[group])
    starts, lengths, values = segments
    matched, _shifts, over, nearest = _align(
        (starts[chosen], lengths[chosen], values[chosen]),
        offsets[group[chosen]],
        declared,
        rule.bin // 2 + 1,
        rule.radius,
    )
    matched, over = chosen[matched], chosen[over]
    for n, offset in refined.items():
        start, end = int(ends[n] - sizes[n]), int(ends[n])
        mine = matched[(matched >= start) & (matched < end)] - start
        scored = nearest[(over >= start) & (over < end)].tolist()
        if len(mine) < rule.min_matched or not scored:
            continue
        # Every overlapping segment counts, by how close its declared counterpart is: a true
        # alignment keeps most bits even where a segment misses the radius, while a chance
        # one scores low outside the few segments that agree by chance.
        score = float(np.mean([1 - d / _CHANCE for d in scored]))
        placed[n] = (offset, score, mine.tolist())
    return placed


def _checks(
    declared: np.ndarray, owner: int, units: Sequence[tuple[FeatureSet, Sequence[int]]]
) -> list[Overlap | None]:
    """Per (query set, offsets) unit: the query aligned near each of the offsets (the voted
    one and the others voted for) in a declaration's stored segments of its kind and scored at
    the best of them, or None. All units are aligned together (`_placed`)."""
    if not len(declared) or not units:
        return [None] * len(units)
    placed = iter(_placed(declared, [(query, o) for query, offsets in units for o in offsets]))
    checked: list[Overlap | None] = []
    for query, offsets in units:
        found = [p for p in (next(placed) for _o in offsets) if p is not None]
        if not found:
            checked.append(None)
            continue
        offset, score, matched = max(found, key=lambda p: (p[1], -p[0]))
        if score < RULES[query.kind].min_score:
            checked.append(None)
            continue
        first, last = matched[0], matched[-1]
        length = int(query.offsets[last] + query.sizes[last] - query.offsets[first])
        checked.append(Overlap(owner, query.kind, round(score, 4), offset, length, len(matched)))
    return checked


def _check(declared: np.ndarray, query: FeatureSet, owner: int, offset: int) -> Overlap | None:
    """One query set checked at one offset (`_checks`)."""
    return _checks(declared, owner, [(query, (offset,))])[0]


def _scan(query: FeatureSet, declared: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The query scored at every offset (a multiple of the kind's bin) over the whole declared
    work at once: (offsets, scores) where at least `min_matched` segments match.

    The score is `_place`'s (each query segment's nearest declared segment within half a bin
    of its place), except that a query segment falling outside the work counts as chance: a
    place where the excerpt hangs over the work's end is a worse fit, not an equal one. All
    pairs of query and declared segments are compared in one step; a pair votes its distance
    into every offset at which the declared segment lies within the tolerance of the query
    segment's place (a long still frame covers several)."""
    rule = RULES[query.kind]
    tolerance = rule.bin // 2 + 1
    ref_start = declared[:, 0]
    ref_end = ref_start + declared[:, 1]
    ref_value = declared[:, 2].view(np.uint64)
    q_start = np.asarray(query.offsets, dtype=np.int64)
    q_value = np.asarray(query.simprints, dtype=np.uint64)
    distance = np.bitwise_count(q_value[:, None] ^ ref_value[None, :]).astype(np.int16)
    # Pairs at or beyond chance add nothing: a segment without a counterpart counts as chance.
    qi, rj = np.nonzero(distance < _CHANCE)
    empty = np.empty(0, dtype=np.int64)
    if not len(qi):
        return empty, np.empty(0)
    first = -((tolerance - ref_start[rj] + q_start[qi]) // rule.bin)  # ceil division
    last = (ref_end[rj] - q_start[qi] + tolerance) // rule.bin
    counts = np.maximum(last - first + 1, 0)
    pair = np.repeat(np.arange(len(qi)), counts)
    step = np.arange(len(pair)) - np.repeat(np.cumsum(counts) - counts, counts)
    bins = first[pair] + step
    base = int(bins.min())
    nearest = np.full((int(bins.max()) - base + 1, len(q_value)), _CHANCE, dtype=np.int16)
    np.minimum.at(nearest, (bins - base, qi[pair]), distance[qi[pair], rj[pair]])
    matched = (nearest <= rule.radius).sum(axis=1)
    scores = (1 - nearest / _CHANCE).mean(axis=1)
    keep = matched >= rule.min_matched
    offsets = (np.arange(len(nearest), dtype=np.int64) + base) * rule.bin
    return offsets[keep], scores[keep]


def _period(places: Sequence[int], bin_width: int) -> int | None:
    """The step the places repeat at, else None. Each gap is counted in steps of the smallest
    one, the step is fitted over the whole span (so the rounding of single places averages
    out), and every gap must then lie within one and a half bins of its whole number of steps
    (a place is a bin centre, or the refined offset, each off by up to half a bin or so)."""
    if len(places) < 3:
        return None
    gaps = np.diff(np.asarray(places, dtype=np.int64))
    smallest = int(gaps.min())
    if smallest <= 0:
        return None
    steps = np.rint(gaps / smallest)
    period = float(gaps.sum() / steps.sum())
    if np.any(np.abs(gaps - steps * period) > bin_width * 3 // 2):
        return None
    return round(period)


def _settle_places(overlap: Overlap, grids: Sequence[FeatureSet], declared: np.ndarray) -> Overlap:
    """Every place of a declared work an excerpt fits as well as its best, from a scan of the
    whole work on every query grid of the kind (per offset the best grid: where a repeated
    bar falls between two of the work's segments differs from bar to bar).

    Places scoring within EQUAL_SCORE of the best are candidates; neighbouring offsets (less
    than half of DISTINCT_PLACE_MS apart) are one place, at its best offset. When they lie
    further apart than DISTINCT_PLACE_MS the overlap carries them (`places`, and `period` when
    they repeat regularly); a candidate better than the voted offset becomes the offset."""
    rule = RULES[overlap.kind]
    by_offset: dict[int, float] = {}
    for grid in grids:
        for offset, score in zip(*_scan(grid, declared), strict=True):
            key = int(offset)
            by_offset[key] = max(float(score), by_offset.get(key, 0.0))
    if not by_offset:
        return overlap
    best = max(by_offset.values())
    candidates = sorted(o for o, score in by_offset.items() if score >= best - EQUAL_SCORE)
    clusters: list[list[int]] = []
    for offset in candidates:
        if clusters and offset - clusters[-1][-1] < DISTINCT_PLACE_MS // 2:
            clusters[-1].append(offset)
        else:
            clusters.append([offset])
    places = [max(c, key=lambda o: (by_offset[o], -o)) for c in clusters]
    top = max(places, key=lambda o: (by_offset[o], -o))
    if abs(top - overlap.offset) >= DISTINCT_PLACE_MS // 2:
        # Another repetition fits better than the most voted one: placed there if its check,
        # on the grid that fits it, agrees.
        checked = _checks(declared, overlap.declaration_id, [(grid, (top,)) for grid in grids])
        better = max((o for o in checked if o is not None), key=lambda o: o.score, default=None)
        if better is not None and better.score > overlap.score:
            overlap = better
    # The offset stands for the place it lies in.
    places = [
        overlap.offset if abs(p - overlap.offset) < DISTINCT_PLACE_MS // 2 else p for p in places
    ]
    places = sorted(set(places) | {overlap.offset})
    if places[-1] - places[0] <= DISTINCT_PLACE_MS:
        return overlap
    return replace(overlap, places=tuple(places), period=_period(places, rule.bin))


def file_features(path: Path) -> tuple[IsccResult | None, list[FeatureSet]]:
    """A file's ISCC and what it is looked up by (`excerpt_features`). Sound too short for
    Chromaprint (an audio excerpt under about 3 s) has no Audio-Code, so no ISCC: it is looked
    up by its finer sound segments alone (None, the sound grids). Other errors propagate."""
    from registry.iscc import generate  # decoders load only when a file is looked up

    try:
        result = generate(path)
    except SoundTooShort:
        found = shifted_audio_features(path)
        if not found:
            raise
        return None, found
    return result, excerpt_features(path, result.features)


def excerpt_features(path: Path, features: Sequence[FeatureSet]) -> list[FeatureSet]:
    """What a file is looked up by: its features, plus, if it has sound, its audio segments on
    shifted Chromaprint grids and its sound segments on every query grid (see
    `shifted_audio_features`)."""
    found = list(features)
    if any(f.kind in ("audio", "sound") for f in found):
        # The shifted grids hold the sound segments of every query grid, this one's too.
        found = [f for f in found if f.kind != "sound"] + shifted_audio_features(path)
    return found


def _propose(
    index: SnippetIndex, features: Sequence[tuple[int, FeatureSet]], exclude: int | None
) -> dict[tuple[int, str], list[tuple[int, int, FeatureSet, int, tuple[int, ...]]]]:
    """Per (declaration, kind) the alignments the numbered feature sets vote for, one index
    pass per kind."""
    proposed: dict[tuple[int, str], list[tuple[int, int, FeatureSet, int, tuple[int, ...]]]] = {}
    for kind in sorted({f.kind for _n, f in features}):
        sets = [(n, f) for n, f in features if f.kind == kind]
        for (n, query), found in zip(
            sets, index.places_of([f for _n, f in sets], exclude), strict=True
        ):
            for votes, owner, offset, others in found:
                proposed.setdefault((owner, kind), []).append((votes, -n, query, offset, others))
    return proposed


def _checked(
    store: Store,
    proposed: Mapping[tuple[int, str], list[tuple[int, int, FeatureSet, int, tuple[int, ...]]]],
    features: Sequence[FeatureSet],
) -> dict[tuple[int, str], Overlap]:
    """The proposed alignments checked against the store: per (declaration, kind) the best."""
    best: dict[tuple[int, str], Overlap] = {}
    for key, grids in proposed.items():
        grids = sorted(grids, key=lambda g: (-g[0], -g[1]))
        timed = KINDS[key[1]] == "ms"
        declared = store.segments_of(*key)  # read once per declaration and kind
        units: list[tuple[FeatureSet, tuple[int, ...]]] = []
        for _votes, _minus_n, query, offset, others in grids[:_GRIDS_CHECKED]:
            units.append((query, (offset,) if timed else (offset, *others)))
        for overlap in _checks(declared, key[0], units):
            known = best.get(key)
            if overlap is not None and (known is None or overlap.score > known.score):
                best[key] = overlap
        # Votes for other offsets of a timed work: self-similar segments. Only a scan of the
        # whole work tells every place the excerpt fits as well (rare: unrelated works get no
        # such votes, so the scan costs nothing for them).
        if key in best and timed and any(g[4] for g in grids):
            same_kind = [f for f in features if f.kind == key[1] and len(f)]
            best[key] = _settle_places(best[key], same_kind, declared)
    return best


def _sound_of(store: Store, owner: int, grids: Sequence[FeatureSet]) -> Overlap | None:
    """The excerpt's sound segments checked against one declaration's, without the index: the
    whole work scanned on every grid, checked at the best offset, its equal places kept."""
    declared = store.segments_of(owner, "sound")
    if not len(declared):
        return None
    by_offset: dict[int, tuple[float, int]] = {}
    for n, grid in enumerate(grids):
        for offset, score in zip(*_scan(grid, declared), strict=True):
            if float(score) > by_offset.get(int(offset), (-1.0, 0))[0]:
                by_offset[int(offset)] = (float(score), n)
    if not by_offset:
        return None
    top = max(by_offset, key=lambda o: (by_offset[o][0], -o))
    overlap = _check(declared, grids[by_offset[top][1]], owner, top)
    return None if overlap is None else _settle_places(overlap, grids, declared)


def find_snippets(
    store: Store, index: SnippetIndex, features: Sequence[FeatureSet], exclude: int | None = None
) -> list[Overlap]:
    """Declarations the query features occur in, one Overlap per declaration and kind, best
    score first (then more segments matched). `features` may hold several sets of a kind (an
    excerpt's audio on shifted grids): per declaration only the `_GRIDS_CHECKED` sets with the
    most votes are checked against the store, and the best scoring one counts.

    The finer sound segments are looked up in the index only when neither the picture nor
    Chromaprint found anything: an audio excerpt too short for Chromaprint (under 3-4 s), or
    one of a sound nobody declared. Real sound segments crowd a few band values of the index,
    so these lookups cost several times the others (docs/benchmarks.md, issue 21). Where a
    picture or Chromaprint found a work whose place is ambiguous, the sound is checked against
    that work alone (`_sound_of`), so the soundtrack can still place it."""
    index.refresh()
    numbered = [(n, f) for n, f in enumerate(features) if f.kind in RULES and len(f)]
    sound = [f for _n, f in numbered if f.kind == "sound"]
    best = _checked(
        store, _propose(index, [p for p in numbered if p[1].kind != "sound"], exclude), features
    )
    if sound and not best:
        best.update(
            _checked(
                store,
                _propose(index, [p for p in numbered if p[1].kind == "sound"], exclude),
                features,
            )
        )
    elif sound:
        for owner in sorted({o.declaration_id for o in best.values() if o.places}):
            found = _sound_of(store, owner, sound)
            if found is not None:
                best[(owner, "sound")] = found
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
    """`search.evidence.combine` over the parts, `discounted` for the absent modalities."""
    parts: tuple[Part, ...]
    overlaps: tuple[Overlap, ...]
    """Per kind, where the query sits (best score first)."""
    absent: tuple[str, ...] = ()
    """Modalities the declared work has and the query lacks."""


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
                    settled[other_kind] = replace(
                        other, places=overlap.places, period=overlap.period
                    )
                continue
            if other.places:
                common = [
                    p
                    for p in overlap.places
                    if any(abs(p - q) <= DISTINCT_PLACE_MS // 2 for q in other.places)
                ]
                if common and common[-1] - common[0] <= DISTINCT_PLACE_MS:
                    settled[kind] = replace(
                        overlap, offset=common[0], places=(), period=None, located_by=other_kind
                    )
                elif common and len(common) < len(overlap.places):
                    settled[kind] = replace(
                        overlap, places=tuple(common), period=_period(common, RULES[kind].bin)
                    )
                continue
            nearest = min(overlap.places, key=lambda p: abs(p - other.offset))
            if abs(nearest - other.offset) <= DISTINCT_PLACE_MS:
                offset = nearest
            elif overlap.places[0] <= other.offset <= overlap.places[-1]:
                offset = other.offset
            else:
                continue
            settled[kind] = replace(
                overlap, offset=offset, places=(), period=None, located_by=other_kind
            )
            break
    return [settled.get(o.kind, o) for o in hits]


def absent_modalities(
    index: SnippetIndex, features: Sequence[FeatureSet], found: Sequence[Overlap]
) -> dict[int, tuple[str, ...]]:
    """Per declaration found, the modalities it has segments of and the query has none of."""
    asked = {MODALITY[f.kind] for f in features if f.kind in MODALITY and len(f)}
    kinds = index.kinds_of(sorted({o.declaration_id for o in found}))
    return {
        owner: tuple(sorted({MODALITY[k] for k in declared if k in MODALITY} - asked))
        for owner, declared in kinds.items()
    }


def rank(
    found: Sequence[Overlap],
    content: Mapping[int, tuple[int, int]] | None = None,
    absent: Mapping[int, tuple[str, ...]] | None = None,
) -> list[Ranked]:
    """Declarations by the combined evidence of every kind they overlap in, plus the
    Content-Code distance where they are also similar as a whole (`content`: declaration id
    to (distance, threshold)), discounted per modality the declared work has and the query
    lacks (`absent`, from `absent_modalities`); best first, then more segments matched, then
    earlier id; scores within SAME_SCORE of the best remaining one count as equal and the
    earliest goes first."""
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
        lacking = (absent or {}).get(owner, ())
        score = discounted(combine(parts), len(lacking))
        ranked.append(Ranked(owner, score, tuple(parts), tuple(hits), lacking))
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
    evidence, `rank`) its record, score, the parts of the score, the modalities it has and the
    query lacks and, per kind, where the excerpt sits in the declared work (an interval and the
    candidate places when ambiguous)."""
    found = find_snippets(store, index, features)
    ranked = rank(found, content, absent_modalities(index, features, found))
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
                "absent": list(entry.absent),
                "kinds": [
                    {
                        "kind": o.kind,
                        "unit": KINDS[o.kind],
                        "score": o.score,
                        "offset": o.offset,
                        "length": o.length,
                        "matched": o.matched,
                        "interval": list(o.interval) if o.interval else None,
                        "places": list(o.places[:_LISTED_PLACES]),
                        "place_count": len(o.places),
                        "period": o.period,
                        "located_by": o.located_by,
                    }
                    for o in entry.overlaps
                ],
            }
        )
        if len(answer) == limit:
            break
    return answer
