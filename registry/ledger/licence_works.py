"""What the store says about works, for licence detection: the current declaration of an
ISCC-ID with its history (who owned it at a chain position), and the works related to it (the
same bytes, or a content conflict: a copy, an excerpt, a work containing it)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from registry.chain.events import DECLARED, REVOKED, TRANSFERRED
from registry.store.bulk import among, chunks
from registry.store.schema import conflicts, declarations, events

__all__ = ["SAME_CONTENT", "Relation", "Work", "related_works", "works_of"]

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


def works_of(conn: Connection, iscc_ids: Iterable[str]) -> dict[str, Work]:
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
            .where(among(conn, declarations.c.iscc_id, chunk))
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
            .where(among(conn, events.c.iscc_id, chunk))
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
