"""Conflicts: two declarers claiming the same or overlapping content.

The indexer queues every valid declaration it stores (table `conflict_queue`, same transaction).
`ConflictDetector.run` then takes queued declarations a batch at a time, asks each evidence
source which other declarations share content with them, and stores one row per pair and kind
of evidence while it removes the batch from the queue, in one transaction: a crash repeats a
batch at most, and the unique (earlier, later, kind) key makes a repeat a no-op.

What is stored is only the evidence. Everything that can change later is derived when conflicts
are listed: a conflict is resolved while either declaration is revoked (a reorg that undoes the
revocation reopens it), and licence or rights-holder disagreement is read from the metadata
documents the declarations' current metahashes name (documents may arrive at any time, and an
update may point a declaration at another one).
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from eth_utils import is_address, to_checksum_address
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    FromClause,
    Select,
    Text,
    any_,
    bindparam,
    cast,
    delete,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from registry.chain.events import priority_us
from registry.chain.iscc_id import IsccId
from registry.errors import InputError, InvalidCode
from registry.metadata import Metadata
from registry.search.evidence import (
    CHANCE_SCORE,
    MODALITY,
    Part,
    combine,
    content_weight,
    segment_weight,
)
from registry.search.similarity import DEFAULT_THRESHOLD, SEARCHABLE, SimilarityIndex
from registry.search.snippets import SnippetIndex, overlaps
from registry.store.bulk import among, chunks
from registry.store.int64 import from_signed64
from registry.store.queue import requeue
from registry.store.schema import (
    conflict_queue,
    conflicts,
    declarations,
    segment_sources,
    units,
)
from registry.store.store import Store

__all__ = [
    "CONTENT",
    "CONTENT_THRESHOLDS",
    "DATAHASH",
    "LICENCE_FIELDS",
    "MAX_PER_KIND",
    "SEGMENT",
    "Batch",
    "ConflictDetector",
    "ContentEvidence",
    "Evidence",
    "EvidenceSource",
    "SegmentEvidence",
    "Status",
    "check_status",
    "datahash_evidence",
    "list_conflicts",
    "requeue",
]

DATAHASH = "datahash"
"""The very same bytes: strength 1.0."""
CONTENT = "content"
"""A near-duplicate Content-Code unit: strength 1 - distance / 64 over its first 64 bits."""
SEGMENT = "segment"
"""Granular overlap (an excerpt, or a work containing one): the snippet search's score, with
where the later work sits in the earlier one."""

CONTENT_THRESHOLDS: dict[str, int] = {
    t: DEFAULT_THRESHOLD for t in sorted(SEARCHABLE) if t.startswith("CONTENT-")
}
"""Most differing bits (of the first 64) per content unit type that still count as the same
content: similarity search's threshold, so a conflict names exactly the declarations a search
for the later one would show as similar."""

MAX_PER_KIND = 50
"""A declaration is put in conflict with at most this many other declarers per kind of
evidence, the earliest claims first: a file declared by thousands would otherwise make millions
of pairs, and the earliest claims are the ones that hold priority."""

LICENCE_FIELDS = ("license", "rights")
"""Metadata fields whose disagreement a conflict reports: the licence and the rights holder."""

BATCH = 5000

Status = Literal["open", "resolved", "all"]


@dataclass(frozen=True)
class Batch:
    """The queued declarations one detection transaction claimed, in row id order.

    Sources ask the database set-based questions about a batch instead of sending its ids:
    `narrow` joins a query to the queue rows inside the claimed id range, which the queue's
    primary key serves however sparse the queue is. The range is only a superset of the batch
    (on PostgreSQL a peer detector holds other queue rows inside it, and the indexer may queue
    more meanwhile), so sources keep the declarations in `ids`.
    """

    ids: frozenset[int]
    """Row ids of the claimed declarations."""
    lo: int
    hi: int
    dialect: str

    def narrow(
        self, query: Select[Any], table: FromClause, column: ColumnElement[int]
    ) -> Select[Any]:
        """`query`, selecting from `table`, limited to rows whose declaration id (`column`) is
        queued inside the batch's range."""
        queued = conflict_queue.c.declaration_id
        query = query.select_from(conflict_queue).where(queued.between(self.lo, self.hi))
        if self.dialect == "postgresql":
            # The planner does not carry the range over the join by itself; knowing it for
            # `column` too, it merge-joins two index ranges instead of hashing a whole table.
            return query.join(table, column == queued).where(column.between(self.lo, self.hi))
        # SQLite does carry it over, and may then walk `table` through the whole range even when
        # few declarations inside are queued (old ones re-checked): an expression in the join
        # keeps the queue as the outer loop, probing `table` by its index per queued row.
        return query.join(table, column == queued + 0)


@dataclass(frozen=True)
class Evidence:
    """`target_id` and `other_id` (declaration row ids) share content; `kind` says how,
    `strength` (0..1) how surely, `detail` the figures behind it (kept with the conflict)."""

    target_id: int
    other_id: int
    kind: str
    strength: float
    detail: Mapping[str, Any] = field(default_factory=dict)


EvidenceSource = Callable[[Connection, Batch], Iterable[Evidence]]
"""Finds, for a batch of declarations, the other declarations sharing content with them, read
inside the detection transaction. It may return pairs of the same declarer, other chains or
invalid declarations: the detector filters those out for every source alike."""


class _Lane:
    """One declarer's candidate declarations for some content, in priority order, with how far
    each is from that content (bits; 0 for the same bytes).

    Sources hand the detector, per target and declarer, only the candidates its pairing can
    choose, instead of every pair: one declarer declaring a file 2,000 times made 4 million
    pairs and stalled detection for 90 s. Those are the closest earlier one (the earliest on a
    tie: the pairing's choice), the closest earlier one not revoked (the declarer's own claim
    that suppresses a re-declaration), the earliest earlier one (priority), and the earliest
    later one (a later declarer's copy, paired by its own choice)."""

    def __init__(self, members: list[tuple[tuple[int, int, int], int, int, bool]]) -> None:
        # members: (priority order, distance, declaration row id, revoked)
        members.sort()
        self.ids = [m[2] for m in members]
        self.orders = [m[0] for m in members]
        self.closest: list[int] = []
        self.standing: list[int | None] = []
        best: int | None = None
        kept: int | None = None
        for k, (_order, distance, _id, revoked) in enumerate(members):
            if best is None or distance < members[best][1]:
                best = k
            if not revoked and (kept is None or distance < members[kept][1]):
                kept = k
            self.closest.append(best)
            self.standing.append(kept)

    def pick(self, order: tuple[int, int, int]) -> set[int]:
        """Row ids of the candidates worth pairing with a declaration of this priority order."""
        chosen = set()
        before = bisect_left(self.orders, order)
        if before:
            chosen.update((self.ids[0], self.ids[self.closest[before - 1]]))
            if (kept := self.standing[before - 1]) is not None:
                chosen.add(self.ids[kept])
        after = bisect_right(self.orders, order)
        if after < len(self.ids):
            chosen.add(self.ids[after])
        return chosen


def _lanes(
    candidates: Iterable[tuple[int, int]], positions: Mapping[int, _Position]
) -> list[_Lane]:
    """Candidates (row id, distance) split into one lane per declarer."""
    members: dict[str, list[tuple[tuple[int, int, int], int, int, bool]]] = defaultdict(list)
    for row_id, distance in candidates:
        where = positions.get(row_id)
        if where is not None:
            members[where.declarer].append((where.order, distance, row_id, where.revoked))
    return [_Lane(m) for m in members.values()]


def datahash_evidence(conn: Connection, batch: Batch) -> list[Evidence]:
    """Declarations of the very same bytes (the candidates `_Lane` keeps per declarer)."""
    mine = declarations.alias("mine")
    queued = batch.narrow(select(mine.c.id, mine.c.datahash), mine, mine.c.id)
    targets = [(i, bytes(h)) for i, h in conn.execute(queued).all() if i in batch.ids]
    sharing: dict[bytes, list[int]] = defaultdict(list)
    for chunk in chunks(sorted({h for _i, h in targets})):
        query = select(declarations.c.id, declarations.c.datahash).where(
            among(conn, declarations.c.datahash, chunk)
        )
        for row_id, digest in conn.execute(query).all():
            sharing[bytes(digest)].append(row_id)
    if all(len(ids) < 2 for ids in sharing.values()):
        return []
    positions = _positions(conn, sorted({i for ids in sharing.values() for i in ids}))
    lanes = {digest: _lanes(((i, 0) for i in ids), positions) for digest, ids in sharing.items()}
    found = []
    for target_id, digest in targets:
        order = positions[target_id].order
        for lane in lanes[digest]:
            others = lane.pick(order) - {target_id}
            found.extend(Evidence(target_id, o, DATAHASH, 1.0) for o in others)
    return found


class ContentEvidence:
    """Declarations whose Content-Code unit is within the threshold of the target's.

    Candidates come from an in-memory similarity index; each is checked against the unit the
    store holds now, so an index that still has rows a reorg removed cannot invent a conflict.
    """

    def __init__(
        self, index: SimilarityIndex, thresholds: Mapping[str, int] = CONTENT_THRESHOLDS
    ) -> None:
        self.index = index
        self.thresholds = dict(thresholds)

    def __call__(self, conn: Connection, batch: Batch) -> list[Evidence]:
        queued = batch.narrow(_units_of_types(self.thresholds), units, units.c.declaration_id)
        # Targets with the same unit value (copies) share one search and one set of lanes.
        holders: dict[tuple[str, int], list[int]] = defaultdict(list)
        for i, t, v in conn.execute(queued).all():
            if i in batch.ids:
                holders[t, v].append(i)
        proposed: dict[tuple[str, int], list[int]] = {}
        for unit_type, threshold in self.thresholds.items():
            values = sorted(v for t, v in holders if t == unit_type)
            if not values:
                continue
            position, other, _distance = self.index.search_many(unit_type, values, threshold)
            for p, o in zip(position.tolist(), other.tolist(), strict=True):
                proposed.setdefault((unit_type, values[p]), []).append(o)
        if not proposed:
            return []
        others = sorted({o for found in proposed.values() for o in found})
        stored = _unit_values(conn, others, self.thresholds)
        mine = {i for ids in holders.values() for i in ids}
        positions = _positions(conn, sorted(set(others) | mine))
        found = []
        for (unit_type, value), candidates in proposed.items():
            threshold = self.thresholds[unit_type]
            distances = {}
            for other_id in candidates:
                current = stored.get((other_id, unit_type))
                if current is None:  # rolled back since the index loaded it
                    continue
                distance = (from_signed64(value) ^ from_signed64(current)).bit_count()
                if distance <= threshold:
                    distances[other_id] = distance
            lanes = _lanes(distances.items(), positions)
            for target_id in holders[unit_type, value]:
                if target_id not in positions:
                    continue
                for lane in lanes:
                    for other_id in lane.pick(positions[target_id].order) - {target_id}:
                        distance = distances[other_id]
                        strength = round(1 - distance / 64, 4)
                        detail = {"unit_type": unit_type, "distance": distance, "bits": 64}
                        found.append(Evidence(target_id, other_id, CONTENT, strength, detail))
        return found


class SegmentEvidence:
    """Declarations whose granular features (segments) overlap the target's: an excerpt of a
    declared work, or a work that contains a declared excerpt.

    Only targets with segments are searched; the segment index is loaded at the first such
    target, so indexing declarations without documents never pays for it. The snippet search
    checks each alignment against the segments the store holds now.
    """

    def __init__(self, store: Store, index: SnippetIndex | None = None) -> None:
        self.store = store
        self.index = index if index is not None else SnippetIndex(store)

    def __call__(self, conn: Connection, batch: Batch) -> list[Evidence]:
        queued = batch.narrow(
            select(segment_sources.c.declaration_id)
            .where(segment_sources.c.segments > 0)
            .order_by(segment_sources.c.declaration_id),
            segment_sources,
            segment_sources.c.declaration_id,
        )
        with_segments = [i for i in conn.execute(queued).scalars().all() if i in batch.ids]
        if not with_segments:
            return []
        self.index.refresh()
        found = []
        for target_id in with_segments:
            for o in overlaps(self.store, target_id, self.index):
                detail = {
                    "segment_kind": o.kind,
                    "offset": o.offset,
                    "length": o.length,
                    "matched": o.matched,
                }
                found.append(Evidence(target_id, o.declaration_id, SEGMENT, o.score, detail))
        return found


def _unit_values(
    conn: Connection, ids: Sequence[int], unit_types: Iterable[str]
) -> dict[tuple[int, str], int]:
    """The first 64 bits (signed, as stored) of the units of these types of these declarations,
    by (declaration row id, unit type)."""
    found: dict[tuple[int, str], int] = {}
    for chunk in chunks(ids):
        query = _units_of_types(unit_types).where(among(conn, units.c.declaration_id, chunk))
        found.update({(i, t): v for i, t, v in conn.execute(query).all()})
    return found


def _units_of_types(unit_types: Iterable[str]) -> Select[tuple[int, str, int]]:
    """(declaration id, unit type, value) of units of these types.

    `units` has no index on the type (values are searched in memory), so the type filter
    rides on the declaration index: data and instance units, most of a batch's, never leave
    the database."""
    return select(units.c.declaration_id, units.c.unit_type, units.c.value).where(
        units.c.unit_type.in_(sorted(unit_types))
    )


@dataclass(frozen=True)
class _Position:
    chain_id: int
    contract: str
    declarer: str
    block_number: int
    log_index: int
    valid: bool
    revoked: bool
    iscc_id_body: int
    committed_at: int | None

    @property
    def order(self) -> tuple[int, int, int]:
        """Priority: a sealed declaration's commitment time, else its ISCC-ID's time (one
        microsecond clock, strictly increasing in chain order); chain position breaks the ties
        of declarations revealed from one commitment."""
        time = priority_us(from_signed64(self.iscc_id_body), self.committed_at)
        return time, self.block_number, self.log_index


def _positions(conn: Connection, ids: Sequence[int]) -> dict[int, _Position]:
    found = {}
    columns = [declarations.c[name] for name in _Position.__dataclass_fields__]
    for chunk in chunks(ids):
        query = select(declarations.c.id, *columns).where(among(conn, declarations.c.id, chunk))
        for row in conn.execute(query):
            values = dict(row._mapping)
            row_id = values.pop("id")
            found[row_id] = _Position(**values)
    return found


class ConflictDetector:
    """Checks queued declarations against everything indexed and stores the conflicts found.

    Sources default to the same datahash, near-duplicate content units and overlapping
    granular segments; any other evidence is one more `EvidenceSource` in `sources`.
    """

    def __init__(
        self,
        store: Store,
        index: SimilarityIndex | None = None,
        sources: Sequence[EvidenceSource] | None = None,
        batch: int = BATCH,
    ) -> None:
        self.store = store
        self.index = index if index is not None else SimilarityIndex(store)
        if sources is None:
            sources = [datahash_evidence, ContentEvidence(self.index), SegmentEvidence(store)]
        self.sources = list(sources)
        self.batch = batch

    def reset(self) -> None:
        """Forget the in-memory index after a rollback: SQLite hands the ids of rolled-back
        rows to the next ones, which an incremental refresh would never load."""
        self.index.clear()

    def run(self) -> int:
        """Check queued declarations until the queue is empty; returns the conflicts stored."""
        added = 0
        # Each claim starts above the last batch: below it lie the rows just removed, which
        # PostgreSQL's index scan would step over again per batch until vacuum (claims grew from
        # 30 to 120 ms over 100,000 rows). Rows queued below meanwhile get one more pass.
        after = 0
        while True:
            with self.store._read() as conn:
                waiting = conn.execute(
                    select(conflict_queue.c.declaration_id)
                    .where(conflict_queue.c.declaration_id > after)
                    .order_by(conflict_queue.c.declaration_id)
                    .limit(1)
                ).first()
            # Nothing to check: a one-shot `index` run need not load the index.
            if waiting is not None:
                # Loaded before the transaction: the batch's own units were committed with it.
                self.index.refresh()
                checked, stored, last = self._step(after)
                added += stored
                if checked == self.batch:
                    after = last
                    continue
            if after == 0:
                return added
            after = 0

    def _step(self, after: int) -> tuple[int, int, int]:
        """Check the queued declarations next above row id `after`; returns how many, the
        conflicts stored and the last id checked."""
        with self.store._write() as conn:
            claimed = _claim(conn, after, self.batch)
            if not claimed:
                return 0, 0, after
            batch = Batch(frozenset(claimed), claimed[0], claimed[-1], conn.dialect.name)
            evidence = [e for source in self.sources for e in source(conn, batch)]
            stored = _store_conflicts(conn, evidence)
            _unqueue(conn, batch, claimed)
        return len(claimed), stored, batch.hi


def _claim(conn: Connection, after: int, size: int) -> list[int]:
    """The lowest `size` queued declaration ids above `after` that nobody else holds, in
    order; locked until the transaction ends."""
    query = (
        select(conflict_queue.c.declaration_id)
        .where(conflict_queue.c.declaration_id > after)
        .order_by(conflict_queue.c.declaration_id)
        .limit(size)
        # A second indexer (hot standby) on PostgreSQL takes other rows meanwhile.
        .with_for_update(skip_locked=True)
    )
    return list(conn.execute(query).scalars().all())


def _unqueue(conn: Connection, batch: Batch, claimed: Sequence[int]) -> None:
    """Remove the claimed rows from the queue with one statement."""
    if conn.dialect.name != "postgresql":
        # The store writes inside BEGIN IMMEDIATE and the claim took every queued row from the
        # range's first to its last, so every queue row in the range is this batch's.
        queued = conflict_queue.c.declaration_id
        conn.execute(delete(conflict_queue).where(queued.between(batch.lo, batch.hi)))
        return
    # Peers and the indexer may hold or add rows inside the range: name the claimed ones, as one
    # array in PostgreSQL's text form, which psycopg passes as is; a list of 5,000 ints adapted
    # element by element costs ~4x as much (8 against 2 ms per batch, measured).
    array = "{" + ",".join(map(str, claimed)) + "}"
    listed = cast(bindparam("claimed", array, type_=Text), postgresql.ARRAY(BigInteger))
    conn.execute(delete(conflict_queue).where(conflict_queue.c.declaration_id == any_(listed)))


def _part(kind: str, strength: float, detail: Mapping[str, Any]) -> Part:
    """One piece of evidence as a modality's part of the combined score (search.evidence)."""
    if kind == DATAHASH:
        return Part("datahash", 1.0, 1.0)
    if kind == CONTENT:
        threshold = CONTENT_THRESHOLDS.get(detail.get("unit_type", ""), DEFAULT_THRESHOLD)
        distance = int(detail.get("distance", threshold))
        return Part("content", content_weight(distance, threshold), distance)
    if kind == SEGMENT and detail.get("segment_kind") in CHANCE_SCORE:
        segment_kind = detail["segment_kind"]
        return Part(MODALITY[segment_kind], segment_weight(segment_kind, strength), strength)
    return Part(kind, strength, strength)  # another source's own scale, 0..1


def _same_content(found: Iterable[Evidence]) -> bool:
    """Whether the evidence says the very same content (bytes or Content-Code), not an overlap."""
    return any(e.kind in (DATAHASH, CONTENT) for e in found)


def _stored_scores(conn: Connection, ids: Iterable[int]) -> dict[int, dict[int, float]]:
    """For each of these declarations, the combined score of each conflict stored with it, by
    the other declaration's row id."""
    evidence: dict[tuple[int, int], list[Part]] = defaultdict(list)
    for chunk in chunks(sorted(ids)):
        for column in (conflicts.c.earlier_id, conflicts.c.later_id):
            query = select(conflicts).where(among(conn, column, chunk))
            for row in conn.execute(query):
                part = _part(row.kind, row.strength, json.loads(row.detail))
                evidence[row.earlier_id, row.later_id].append(part)
    found: dict[int, dict[int, float]] = defaultdict(dict)
    for (earlier_id, later_id), parts in evidence.items():
        score = combine(parts)
        found[earlier_id][later_id] = score
        found[later_id][earlier_id] = score
    return found


def _store_conflicts(conn: Connection, evidence: Sequence[Evidence]) -> int:
    """Turn evidence into conflict rows and insert those not stored yet; returns how many were
    new.

    A declaration is paired, per other declarer, with the earlier declaration of theirs its
    evidence is strongest for (every modality combined, `search.evidence.combine`; the earlier
    one on a tie): a copy of a film is paired with the film, not with the speech recording
    whose sound the film reuses, even when the recording was declared first. Later
    declarations that overlap it are paired by their own such choice (made in this batch, or
    read from the conflicts they got when they were checked), so checking the recording again
    does not pair it with the copy either. The earlier of the two holds priority.

    A declarer re-declaring content it declared before (the same bytes, or a Content-Code
    within the threshold: a new rendition) starts no conflict of its own, before or after the
    other declarer's claim: the first declaration carries it, while it is not revoked (a
    revocation queues the declarer's other copies of those bytes again, see
    `store.writes`). An earlier declaration of the
    same declarer that only overlaps (an excerpt, a variant sharing a soundtrack) is no such
    claim and suppresses nothing.
    """
    involved = {e.target_id for e in evidence} | {e.other_id for e in evidence}
    positions = _positions(conn, sorted(involved))
    matches: dict[int, dict[int, list[Evidence]]] = defaultdict(lambda: defaultdict(list))
    for e in evidence:
        mine, theirs = positions.get(e.target_id), positions.get(e.other_id)
        if (
            mine is not None
            and theirs is not None
            and theirs.valid
            and (mine.chain_id, mine.contract) == (theirs.chain_id, theirs.contract)
        ):
            matches[e.target_id][e.other_id].append(e)
    # Per target and other declarer: (score, earlier first, declaration) of the strongest
    # match among that declarer's earlier declarations: the newcomer's choice.
    choices: dict[int, dict[str, tuple[float, tuple[int, int], int]]] = {}
    later: dict[int, list[tuple[float, int]]] = {}
    suppressed: set[int] = set()
    for target_id, by_other in matches.items():
        mine = positions[target_id]
        if any(
            positions[other_id].declarer == mine.declarer
            and positions[other_id].order < mine.order
            and not positions[other_id].revoked
            and _same_content(found)
            for other_id, found in by_other.items()
        ):
            suppressed.add(target_id)
            continue
        strongest: dict[str, tuple[float, tuple[int, int], int]] = {}
        newer: list[tuple[float, int]] = []
        for other_id, found in by_other.items():
            theirs = positions[other_id]
            if theirs.declarer == mine.declarer:
                continue
            score = combine(_part(e.kind, e.strength, e.detail) for e in found)
            if theirs.order > mine.order:
                newer.append((score, other_id))
                continue
            rank = (score, (-theirs.block_number, -theirs.log_index), other_id)
            known = strongest.get(theirs.declarer)
            if known is None or rank[:2] > known[:2]:
                strongest[theirs.declarer] = rank
        choices[target_id] = strongest
        later[target_id] = newer
    outside = {o for newer in later.values() for _s, o in newer if o not in matches}
    stored = _stored_scores(conn, outside)
    partners = {p for i in outside for p in stored.get(i, {})} - set(positions)
    positions.update(_positions(conn, sorted(partners)))
    rows: dict[tuple[int, int, str], dict[str, Any]] = {}
    for target_id, strongest in choices.items():
        mine = positions[target_id]
        chosen = [rank[2] for rank in strongest.values()]
        for score, other_id in later[target_id]:
            # A later declaration is paired by its own choice among this declarer's works:
            # made in this batch, or seen in the conflicts it got when it was checked.
            if other_id in suppressed:
                continue
            if other_id in choices:
                pick = choices[other_id].get(mine.declarer)
                if pick is not None and pick[2] != target_id:
                    continue
            elif any(
                value > score
                for partner, value in stored.get(other_id, {}).items()
                if partner != target_id
                and partner in positions
                and positions[partner].declarer == mine.declarer
                and positions[partner].order < positions[other_id].order
            ):
                continue
            chosen.append(other_id)
        chosen.sort(key=lambda i: positions[i].order)
        per_kind: dict[str, int] = defaultdict(int)
        for other_id in chosen:
            if positions[other_id].order < mine.order:
                pair = (other_id, target_id)
            else:
                pair = (target_id, other_id)
            for e in matches[target_id][other_id]:
                key = (*pair, e.kind)
                if key not in rows:
                    if per_kind[e.kind] == MAX_PER_KIND:
                        continue
                    per_kind[e.kind] += 1
                elif rows[key]["strength"] >= e.strength:
                    continue
                detail = dict(e.detail)
                if pair[0] == target_id and isinstance(detail.get("offset"), int):
                    # Found from the earlier side: where the earlier work starts in the later
                    # one. Stored, as always, as where the later one sits in the earlier.
                    detail["offset"] = -detail["offset"]
                rows[key] = {
                    "earlier_id": pair[0],
                    "later_id": pair[1],
                    "kind": e.kind,
                    "strength": e.strength,
                    "detail": json.dumps(detail, sort_keys=True),
                }
    if not rows:
        return 0
    known = set()
    earlier = sorted({k[0] for k in rows})
    for chunk in chunks(earlier):
        query = select(conflicts.c.earlier_id, conflicts.c.later_id, conflicts.c.kind).where(
            among(conn, conflicts.c.earlier_id, chunk)
        )
        known.update(tuple(r) for r in conn.execute(query))
    new = [row for key, row in rows.items() if key not in known]
    if new:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        # Another detector may have stored the same pair meanwhile: the first one stays.
        statement = dialect.insert(conflicts).on_conflict_do_nothing(
            index_elements=["earlier_id", "later_id", "kind"]
        )
        conn.execute(statement, new)
    return len(new)


# --- listing ----------------------------------------------------------------------------------


def _document_fields(store: Store, metahash: bytes | None) -> dict[str, str]:
    """The licence fields of the metadata document a metahash names, if stored and readable."""
    if metahash is None:
        return {}
    document = store.get_metadata(metahash)
    if document is None:
        return {}
    try:
        fields = Metadata.model_validate_json(document)
    except ValueError:  # stored before validation existed, or by hand: nothing to compare
        return {}
    values = {name: getattr(fields, name) for name in LICENCE_FIELDS}
    return {name: value.strip() for name, value in values.items() if value and value.strip()}


def _disagreements(earlier: dict[str, str], later: dict[str, str]) -> list[dict[str, str]]:
    return [
        {"field": name, "earlier": earlier[name], "later": later[name]}
        for name in LICENCE_FIELDS
        if name in earlier and name in later and earlier[name] != later[name]
    ]


def check_status(status: str) -> Status:
    """A conflict status filter as given; raises InputError for anything else."""
    if status not in ("open", "resolved", "all"):
        raise InputError(f"status must be open, resolved or all, not {status!r}")
    return status  # type: ignore[return-value]


def list_conflicts(
    store: Store,
    *,
    iscc_id: str | None = None,
    declarer: str | None = None,
    status: Status = "all",
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Conflicts (one per pair of declarations, with every kind of evidence found) involving an
    ISCC-ID, a declarer, or all of them; ordered by the later declaration's chain position."""
    check_status(status)
    if limit < 1 or offset < 0:
        raise InputError("limit must be at least 1 and offset at least 0")
    early = declarations.alias("early")
    late = declarations.alias("late")
    pairs = (
        select(
            conflicts.c.earlier_id,
            conflicts.c.later_id,
            late.c.block_number,
            late.c.log_index,
            early.c.block_number.label("early_block"),
            early.c.log_index.label("early_log"),
        )
        .distinct()
        .join(early, early.c.id == conflicts.c.earlier_id)
        .join(late, late.c.id == conflicts.c.later_id)
    )
    if iscc_id is not None:
        pairs = pairs.where(_involving(declarations.c.iscc_id == str(IsccId.parse(iscc_id))))
    if declarer is not None:
        if not is_address(declarer):
            raise InvalidCode(f"not an Ethereum address: {declarer!r}")
        pairs = pairs.where(_involving(declarations.c.declarer == to_checksum_address(declarer)))
    if status == "open":
        pairs = pairs.where(~early.c.revoked, ~late.c.revoked)
    elif status == "resolved":
        pairs = pairs.where(or_(early.c.revoked, late.c.revoked))
    pairs = (
        pairs.order_by(
            late.c.block_number,
            late.c.log_index,
            early.c.block_number,
            early.c.log_index,
            conflicts.c.earlier_id,
            conflicts.c.later_id,
        )
        .limit(limit)
        .offset(offset)
    )
    with store._read() as conn:
        chosen = [(row.earlier_id, row.later_id) for row in conn.execute(pairs)]
        wanted = set(chosen)
        evidence: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
        for chunk in chunks(sorted({e for e, _ in chosen})):
            query = (
                select(conflicts)
                .where(among(conn, conflicts.c.earlier_id, chunk))
                .order_by(conflicts.c.kind)
            )
            for row in conn.execute(query):
                if (row.earlier_id, row.later_id) not in wanted:
                    continue
                item = {"kind": row.kind, "strength": row.strength, **json.loads(row.detail)}
                evidence[row.earlier_id, row.later_id].append(item)
    records = store.by_ids(sorted({i for pair in chosen for i in pair}))
    licences: dict[bytes | None, dict[str, str]] = {}
    answer = []
    for pair in chosen:
        earlier, later = records.get(pair[0]), records.get(pair[1])
        if earlier is None or later is None:  # rolled back while this was read
            continue
        for record in (earlier, later):
            if record.metahash not in licences:
                licences[record.metahash] = _document_fields(store, record.metahash)
        found = evidence[pair]
        answer.append(
            {
                "earlier": earlier.to_dict(),
                "later": later.to_dict(),
                "evidence": found,
                "strength": max(item["strength"] for item in found),
                "score": combine(_part(item["kind"], item["strength"], item) for item in found),
                "resolved": earlier.revoked or later.revoked,
                "disagreements": _disagreements(
                    licences[earlier.metahash], licences[later.metahash]
                ),
            }
        )
    return answer


def _involving(condition: Any) -> Any:
    ids = select(declarations.c.id).where(condition)
    return or_(conflicts.c.earlier_id.in_(ids), conflicts.c.later_id.in_(ids))
