"""A work's licences as people read them: who, where, what use, when, exclusive or not, and
where each one stands (active, not yet started, ended, terminated; in conflict). The API, the
CLI table and the work's page all show this one list, so they never disagree."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select

from registry.chain.iscc_id import IsccId
from registry.ledger.terms import USE_INFO, Conditions, Territories, Use, condition_names
from registry.store.bulk import chunks
from registry.store.licences import GrantRecord
from registry.store.schema import cases, licence_conflicts
from registry.store.store import Store

__all__ = [
    "STATUSES",
    "grant_status",
    "licence_view",
    "moment_text",
    "term_text",
    "work_licences",
]

STATUSES = ("active", "pending", "ended", "terminated")
"""active: in its term now; pending: its term has not begun; ended: its term is over;
terminated: its grantor or licensee ended it on chain."""


def grant_status(grant: GrantRecord, now: int) -> str:
    if grant.terminated:
        return "terminated"
    if now < grant.starts_at:
        return "pending"
    if grant.ends_at is not None and now >= grant.ends_at:
        return "ended"
    return "active"


def moment_text(seconds: int) -> str:
    """A licence term's moment for reading: a date when it is midnight UTC (terms mostly
    are), else date and time to the minute."""
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    if moment.hour == moment.minute == moment.second == 0:
        return moment.date().isoformat()
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def term_text(start: int, end: int | None) -> str:
    """ "2025-01-01 to 2026-01-01", or "from 2025-01-01" for a term without end."""
    if end is None:
        return f"from {moment_text(start)}"
    return f"{moment_text(start)} to {moment_text(end)}"


def _uses(uses: int) -> list[str]:
    return [USE_INFO[u] for u in Use if u in Use(uses)]


def licence_view(
    grant: GrantRecord, now: int, conflicts: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """One grant for reading: the raw record's fields plus the words for each column."""
    territories = Territories.from_raw(grant.territories, grant.worldwide)
    view = grant.to_dict()
    view.update(
        {
            "who": grant.licensee or "public",
            "where": str(territories),
            "what": _uses(grant.uses),
            "use_names": [u.name.lower() for u in Use if u in Use(grant.uses) and u.name],
            "when": term_text(grant.starts_at, grant.ends_at),
            "condition_names": condition_names(Conditions(grant.conditions)),
            "status": grant_status(grant, now),
            "sublicence": grant.parent is not None,
            "conflicts": conflicts or [],
        }
    )
    return view


def _open_conflicts(store: Store, grants: list[GrantRecord]) -> dict[str, list[dict[str, Any]]]:
    """Open licence conflicts naming each grant (either side) on the grant's own registry (a
    grant id repeats across chains), with their case."""
    registry_of = {g.grant_id: (g.chain_id, g.contract) for g in grants}
    grant_ids = sorted(registry_of)
    found: dict[str, list[dict[str, Any]]] = {g: [] for g in grant_ids}
    if not grant_ids:
        return found
    # In chunks: a work's grants may outnumber what one statement may bind (65,535 on
    # PostgreSQL).
    queries = [
        select(
            licence_conflicts.c.id,
            licence_conflicts.c.chain_id,
            licence_conflicts.c.contract,
            licence_conflicts.c.kind,
            licence_conflicts.c.grant_id,
            licence_conflicts.c.other_grant_id,
            cases.c.id.label("case_id"),
            cases.c.state.label("case_state"),
        )
        .outerjoin(cases, cases.c.conflict_id == licence_conflicts.c.id)
        .where(
            licence_conflicts.c.resolved_at.is_(None),
            or_(
                licence_conflicts.c.grant_id.in_(chunk),
                licence_conflicts.c.other_grant_id.in_(chunk),
            ),
        )
        .order_by(licence_conflicts.c.id)
        for chunk in chunks(grant_ids)
    ]
    seen: set[int] = set()
    with store._read() as conn:
        rows = [row for query in queries for row in conn.execute(query)]
    for row in sorted(rows, key=lambda r: r.id):
        if row.id in seen:  # both grants of a conflict, found in two chunks
            continue
        seen.add(row.id)
        entry = {
            "conflict": int(row.id),
            "kind": row.kind,
            "case": row.case_id,
            "case_state": row.case_state,
        }
        for grant_id in {row.grant_id, row.other_grant_id}:
            if grant_id in found and registry_of[grant_id] == (row.chain_id, row.contract):
                found[grant_id].append(entry)
    return found


def work_licences(
    store: Store,
    iscc_id: str,
    now: int | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The grants over a work (sublicences included), in chain order, as `licence_view`s with
    their open conflicts: all of them, or `limit` from `offset` on. Raises InvalidCode for
    something that is not an ISCC-ID."""
    canonical = str(IsccId.parse(iscc_id))
    moment = int(time.time()) if now is None else now
    grants = store.grants_of(canonical, limit, offset)
    conflicts = _open_conflicts(store, grants)
    return [licence_view(g, moment, conflicts[g.grant_id]) for g in grants]
