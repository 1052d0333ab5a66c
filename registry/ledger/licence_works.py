"""What the store says about works, for licence detection: the current declaration of an
ISCC-ID with its history (who owned it at a chain position), and the works related to it (the
same bytes, or a content conflict: a copy, an excerpt, a work containing it)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from registry.chain.events import DECLARED, REVOKED, TRANSFERRED
from registry.ledger.conflicts import CONTENT_THRESHOLDS
from registry.search.similarity import SimilarityIndex
from registry.search.snippets import SnippetIndex, overlaps
from registry.store.bulk import among, chunks
from registry.store.schema import conflicts, declarations, events, segment_sources, units
from registry.store.store import Store

__all__ = [
    "SAME_CONTENT",
    "Relation",
    "Work",
    "WorkMatcher",
    "merge_relations",
    "related_works",
    "works_of",
]

SAME_CONTENT = ("datahash", "content")
"""Content conflict kinds that say the very same content (not an overlap)."""


@dataclass
class Work:
    """The current declaration of an ISCC-ID and its history (for ownership at a position)."""

    iscc_id: str
    row_id: int
    declarer: str
    owner: str
    revoked: bool
    valid: bool
    history: list[tuple[int, int, str, dict[str, Any]]] = field(default_factory=list)

    def owner_at(self, position: tuple[int, int]) -> tuple[str | None, str]:
        """(owner, how) at a chain position: None if not declared yet or revoked by then."""
        owner: str | None = None
        how = "not declared before the grant"
        for block, index, name, args in self.history:
            if (block, index) >= position:
                break
            if name == DECLARED:
                owner, how = args["declarer"], "declared"
            elif name == TRANSFERRED:
                owner, how = args["to"], "transferred"
            elif name == REVOKED:
                owner, how = None, "revoked before the grant"
        return owner, how


def works_of(
    conn: Connection, iscc_ids: Iterable[str], chain_id: int, contract: str
) -> dict[str, Work]:
    """The works of one registry by ISCC-ID, with their event history. An ISCC-ID is minted
    once per registry, not per store: two deployments with one hub id can mint the same one."""
    found: dict[str, Work] = {}
    wanted = sorted(set(iscc_ids))
    for chunk in chunks(wanted):
        query = (
            select(
                declarations.c.id,
                declarations.c.iscc_id,
                declarations.c.declarer,
                declarations.c.owner,
                declarations.c.revoked,
                declarations.c.valid,
            )
            .where(
                declarations.c.chain_id == chain_id,
                declarations.c.contract == contract,
                among(conn, declarations.c.iscc_id, chunk),
            )
            .order_by(declarations.c.block_number, declarations.c.log_index)
        )
        for row in conn.execute(query):
            # The first valid declaration of an ISCC-ID is the work (the contract mints each
            # ISCC-ID once; another registry's is another chain's).
            if row.iscc_id not in found or (row.valid and not found[row.iscc_id].valid):
                found[row.iscc_id] = Work(
                    row.iscc_id, row.id, row.declarer, row.owner, row.revoked, row.valid
                )
        history = (
            select(events.c.iscc_id, events.c.block_number, events.c.log_index, events.c.name)
            .add_columns(events.c.payload)
            .where(
                events.c.chain_id == chain_id,
                events.c.contract == contract,
                among(conn, events.c.iscc_id, chunk),
            )
            .order_by(events.c.block_number, events.c.log_index)
        )
        for row in conn.execute(history):
            work = found.get(row.iscc_id)
            if work is not None:
                args = json.loads(row.payload)
                work.history.append((row.block_number, row.log_index, row.name, args))
    return found


@dataclass(frozen=True)
class Relation:
    """Two works whose content overlaps, with the content conflict (or datahash) behind it."""

    other: str
    kind: str
    strength: float
    earlier: bool
    """Whether `other` is the earlier declaration of the pair."""
    detail: dict[str, Any]
    """The evidence's figures; a segment's `offset` is where the later declaration's work
    sits in the earlier one's, whichever side found it."""
    source: str = "conflict"
    """"conflict": a content conflict (two declarers) or the same bytes; "search": found by
    WorkMatcher (the same declarer's copy or excerpt, which no content conflict records)."""


def related_works(conn: Connection, works: dict[str, Work]) -> dict[str, list[Relation]]:
    """Per work, the works related to it: content conflicts either way and declarations of the
    very same bytes (by any declarer), read by the conflicts' and datahash indexes."""
    by_row = {w.row_id: w.iscc_id for w in works.values()}
    found: dict[str, list[Relation]] = defaultdict(list)
    rows: list[tuple[int, int, str, float, str]] = []
    ids = sorted(by_row)
    for chunk in chunks(ids):
        for mine, theirs in (
            (conflicts.c.later_id, conflicts.c.earlier_id),
            (conflicts.c.earlier_id, conflicts.c.later_id),
        ):
            query = select(
                mine, theirs, conflicts.c.kind, conflicts.c.strength, conflicts.c.detail
            ).where(among(conn, mine, chunk))
            rows += [(r[0], r[1], r[2], r[3], r[4]) for r in conn.execute(query)]
    other_ids = sorted({r[1] for r in rows})
    names: dict[int, tuple[str, int, int]] = {}
    for chunk in chunks(other_ids):
        query = select(
            declarations.c.id,
            declarations.c.iscc_id,
            declarations.c.block_number,
            declarations.c.log_index,
        ).where(among(conn, declarations.c.id, chunk))
        names.update({r.id: (r.iscc_id, r.block_number, r.log_index) for r in conn.execute(query)})
    positions: dict[int, tuple[int, int]] = {}
    for chunk in chunks(ids):
        query = select(
            declarations.c.id, declarations.c.block_number, declarations.c.log_index
        ).where(among(conn, declarations.c.id, chunk))
        positions.update({r.id: (r.block_number, r.log_index) for r in conn.execute(query)})
    for mine, theirs, kind, strength, detail in rows:
        if theirs not in names or mine not in by_row:
            continue
        other, block, index = names[theirs]
        earlier = (block, index) < positions.get(mine, (block, index))
        found[by_row[mine]].append(Relation(other, kind, strength, earlier, json.loads(detail)))
    # The same bytes declared by the same declarer make no content conflict, but are one work.
    mine_alias, other_alias = declarations.alias("mine"), declarations.alias("other")
    for chunk in chunks(ids):
        query = (
            select(mine_alias.c.id, other_alias.c.iscc_id)
            .join(
                other_alias,
                (other_alias.c.datahash == mine_alias.c.datahash)
                & (other_alias.c.id != mine_alias.c.id),
            )
            .where(among(conn, mine_alias.c.id, chunk))
        )
        for mine, other in conn.execute(query):
            known = {r.other for r in found[by_row[mine]]}
            if other not in known:
                found[by_row[mine]].append(Relation(other, "datahash", 1.0, False, {}))
    return found


class WorkMatcher:
    """Relations no content conflict records: a work and a copy or excerpt of it declared by
    the same declarer (content conflicts are between declarers). Asked of the similarity and
    snippet indexes the content conflict detector keeps, as it asks them about a new
    declaration: Content-Code units within the conflict threshold, overlapping segments.
    Only works with Content units or segments cost anything."""

    def __init__(self, store: Store, similarity: SimilarityIndex, snippets: SnippetIndex) -> None:
        self.store = store
        self.similarity = similarity
        self.snippets = snippets

    def __call__(self, conn: Connection, works: dict[str, Work]) -> dict[str, list[Relation]]:
        by_row = {w.row_id: w for w in works.values()}
        found: dict[int, dict[int, tuple[str, float, dict[str, Any]]]] = defaultdict(dict)
        ids = sorted(by_row)
        own: dict[tuple[int, str], int] = {}
        for chunk in chunks(ids):
            query = select(units.c.declaration_id, units.c.unit_type, units.c.value).where(
                among(conn, units.c.declaration_id, chunk),
                units.c.unit_type.in_(sorted(CONTENT_THRESHOLDS)),
            )
            own.update({(i, t): v for i, t, v in conn.execute(query)})
        if own:
            self.similarity.refresh()
        for unit_type, threshold in CONTENT_THRESHOLDS.items():
            mine = [(i, v) for (i, t), v in own.items() if t == unit_type]
            if not mine:
                continue
            position, other, distance = self.similarity.search_many(
                unit_type, [v for _i, v in mine], threshold
            )
            for p, o, d in zip(position.tolist(), other.tolist(), distance.tolist(), strict=True):
                if o != mine[p][0]:
                    detail = {"unit_type": unit_type, "distance": d, "bits": 64}
                    found[mine[p][0]][o] = ("content", round(1 - d / 64, 4), detail)
        with_segments: list[int] = []
        for chunk in chunks(ids):
            query = select(segment_sources.c.declaration_id).where(
                among(conn, segment_sources.c.declaration_id, chunk),
                segment_sources.c.segments > 0,
            )
            with_segments += list(conn.execute(query).scalars())
        if with_segments:
            self.snippets.refresh()
        for row_id in sorted(with_segments):
            for o in overlaps(self.store, row_id, self.snippets):
                detail = {
                    "segment_kind": o.kind,
                    "offset": o.offset,
                    "length": o.length,
                    "matched": o.matched,
                }
                found[row_id].setdefault(o.declaration_id, ("segment", o.score, detail))
        others = sorted({o for per in found.values() for o in per})
        named: dict[int, tuple[str, int, int, bool]] = {}
        for chunk in chunks(others):
            query = select(
                declarations.c.id,
                declarations.c.iscc_id,
                declarations.c.block_number,
                declarations.c.log_index,
                declarations.c.valid,
            ).where(among(conn, declarations.c.id, chunk))
            named.update(
                {
                    r.id: (r.iscc_id, r.block_number, r.log_index, r.valid)
                    for r in conn.execute(query)
                }
            )
        positions = _positions(conn, ids)
        relations: dict[str, list[Relation]] = defaultdict(list)
        for row_id, per in found.items():
            work = by_row[row_id]
            for other_id, (kind, strength, detail) in sorted(per.items()):
                if other_id not in named or not named[other_id][3]:
                    continue  # rolled back since the index loaded it, or invalid
                other, block, index, _valid = named[other_id]
                earlier = (block, index) < positions.get(row_id, (block, index))
                if not earlier and isinstance(detail.get("offset"), int):
                    # Found from the earlier side; told, as content conflicts tell it, as
                    # where the later declaration sits in the earlier one.
                    detail = {**detail, "offset": -detail["offset"]}
                relations[work.iscc_id].append(
                    Relation(other, kind, strength, earlier, detail, source="search")
                )
        return relations


def _positions(conn: Connection, ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    positions: dict[int, tuple[int, int]] = {}
    for chunk in chunks(ids):
        query = select(
            declarations.c.id, declarations.c.block_number, declarations.c.log_index
        ).where(among(conn, declarations.c.id, chunk))
        positions.update({r.id: (r.block_number, r.log_index) for r in conn.execute(query)})
    return positions


def merge_relations(
    *found: dict[str, list[Relation]],
) -> dict[str, list[Relation]]:
    """Relations from several sources, one per (work, other work): the first source's."""
    merged: dict[str, list[Relation]] = defaultdict(list)
    for relations in found:
        for work, listed in relations.items():
            known = {r.other for r in merged[work]}
            for r in listed:
                if r.other not in known and r.other != work:
                    merged[work].append(r)
                    known.add(r.other)
    return merged
