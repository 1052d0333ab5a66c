"""Findings: the licence rules (registry.ledger.rules) applied to grants as the store holds
them, with the ownership and content history of their works (registry.ledger.licence_works).
Each finding is what one licence conflict row is made of; LicenceDetector
(registry.ledger.licence_conflicts) decides which are new and which have gone."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, select

from registry.ledger.licence_works import SAME_CONTENT, Relation, Work, related_works, works_of
from registry.ledger.rules import (
    EXCLUSIVE_OVERLAP,
    SUBLICENCE_EXCEEDS,
    UNLICENSED_USE,
    Usage,
    covers,
    exclusive_clash,
    sublicence_excess,
    unlicensed,
)
from registry.ledger.terms import GrantTerms, Period, Territories, Use, use_names
from registry.store.bulk import among, chunks
from registry.store.licences import GrantRecord, UsageRecord, grants_by_ids, grants_over
from registry.store.schema import licence_conflicts

__all__ = [
    "CONTAINS_EARLIER",
    "EXCLUSIVE_OVERLAP",
    "INVALIDATING",
    "KINDS",
    "NOT_OWNER",
    "NOT_PRIORITY",
    "SUBLICENCE_EXCEEDS",
    "UNLICENSED_USE",
    "Finding",
    "exclusive_overlaps",
    "ownership",
    "priority",
    "sublicence",
    "terms_of",
    "unauthorised",
    "unlicensed_uses",
    "usage_coverage",
]

NOT_OWNER = "grantor_not_owner"
NOT_PRIORITY = "grantor_not_priority"
CONTAINS_EARLIER = "work_contains_earlier"
KINDS = (
    EXCLUSIVE_OVERLAP,
    NOT_OWNER,
    NOT_PRIORITY,
    CONTAINS_EARLIER,
    SUBLICENCE_EXCEEDS,
    UNLICENSED_USE,
)
"""Every licence conflict kind, as the store, API, CLI and pages name them."""
INVALIDATING = (NOT_OWNER, NOT_PRIORITY)
"""A grant with an open conflict of these kinds licenses nothing (unlicensed_use)."""
# Ancestors followed up a sublicence chain (the contract allows any depth; a chain this long
# is an attack, and a grant deeper down is simply not exempted from its ancestors' exclusivity).
_MAX_DEPTH = 32


@lru_cache(maxsize=1 << 16)
def terms_of(grant: GrantRecord, end: int | None = None) -> GrantTerms:
    """The meaning of a stored grant (registry.ledger.terms); `end` cuts its term short (a
    termination). Cached: validating terms checksums addresses (a keccak each), and one run
    compares each grant with every grant of its related works."""
    ends = grant.ends_at
    if end is not None:
        ends = end if ends is None else min(ends, end)
    return GrantTerms.from_fields(
        territories=grant.territories,
        worldwide=grant.worldwide,
        uses=grant.uses,
        conditions=grant.conditions,
        start=grant.starts_at,
        end=max(ends, grant.starts_at + 1) if ends is not None else 0,
        exclusive=grant.exclusive,
        sublicensable=grant.sublicensable,
        licensee=grant.licensee,
        parent=grant.parent,
        grantor=grant.grantor,
        iscc_id=grant.iscc_id,
        grant_id=grant.grant_id,
        terms_url=grant.terms_url,
        terms_hash=grant.terms_hash,
    )


@dataclass(frozen=True)
class Finding:
    """A rule that holds now: what a conflict row is made of."""

    kind: str
    key: str
    iscc_id: str
    overlap: dict[str, Any]
    evidence: dict[str, Any]
    parties: tuple[tuple[str, str], ...]
    grant_id: str | None = None
    other_grant_id: str | None = None
    usage_id: int | None = None
    other_iscc_id: str | None = None
    ends_at: int | None = None


def _parties(*pairs: tuple[str | None, str]) -> tuple[tuple[str, str], ...]:
    """(address, role) of the parties named; the store's addresses are checksummed already."""
    return tuple((a, role) for a, role in pairs if a)


def _ended(period: Period, now: int) -> bool:
    return period.end is not None and period.end <= now


def _ancestors(grant: GrantRecord, known: dict[str, GrantRecord], conn: Connection) -> set[str]:
    found: set[str] = set()
    current: GrantRecord | None = grant
    for _ in range(_MAX_DEPTH):
        if current is None or current.parent is None or current.parent in found:
            break
        found.add(current.parent)
        if current.parent not in known:
            known.update(grants_by_ids(conn, [current.parent], current.chain_id, current.contract))
        current = known.get(current.parent)
    return found


def _relation_name(relation: Relation) -> str:
    """How two works relate, in the words of rules.exclusive_clash."""
    if relation.kind in SAME_CONTENT:
        return "copy"
    return "excerpt" if relation.kind == "segment" else relation.kind


def _links(
    grant: GrantRecord, known: dict[str, GrantRecord], conn: Connection
) -> Iterator[tuple[GrantRecord, GrantRecord]]:
    """(sublicence, its parent) up a grant's line, within _MAX_DEPTH, until a grant of its own
    or a parent this store never saw (it started late); the last parent is the line's root."""
    current = grant
    for _ in range(_MAX_DEPTH):
        if current.parent is None:
            return
        if current.parent not in known:
            known.update(grants_by_ids(conn, [current.parent], current.chain_id, current.contract))
        parent = known.get(current.parent)
        if parent is None or parent.grant_id == grant.grant_id:
            return
        yield current, parent
        current = parent


def unauthorised(
    grant: GrantRecord,
    known: dict[str, GrantRecord],
    works: dict[str, Work],
    conn: Connection,
    rights: dict[str, bool] | None = None,
) -> bool:
    """Whether the grant's line is not rightful: a link in it is a sublicence its grantor could
    not give (the parent is not sublicensable, or licensed to someone else), or it starts with
    a grant of its own whose grantor did not own the work (`grantor_not_owner`). A stranger's
    exclusive "sublicences" under someone else's grant would otherwise clash pairwise.
    `rights` caches the answers by grant id."""
    if rights is not None and grant.grant_id in rights:
        return rights[grant.grant_id]
    answer, root = False, grant
    for child, parent in _links(grant, known, conn):
        if not parent.sublicensable or parent.licensee not in (None, child.grantor):
            answer = True
            break
        root = parent
    if not answer:
        if root.iscc_id not in works:
            works.update(works_of(conn, {root.iscc_id}, root.chain_id, root.contract))
        answer = ownership(root, works.get(root.iscc_id)) is not None
    if rights is not None:
        rights[grant.grant_id] = answer
    return answer


def exclusive_overlaps(
    conn: Connection,
    grant: GrantRecord,
    candidates: Iterable[tuple[GrantRecord, Relation | None]],
    known: dict[str, GrantRecord],
    now: int,
    works: dict[str, Work] | None = None,
    rights: dict[str, bool] | None = None,
) -> list[Finding]:
    """Exclusive overlaps of `grant` with the candidates. With `works` (the works of the grants
    and their candidates), two grants that both descend from unauthorised grants (see
    `unauthorised`) do not clash: an unauthorised grant still clashes with the rightful ones
    (their licensees should know), but a stranger's N exclusive grants over someone else's
    work are N `grantor_not_owner` conflicts, not N*(N-1)/2 overlaps and cases."""
    found: list[Finding] = []
    stranger = works is not None and unauthorised(grant, known, works, conn, rights)
    my_line = _ancestors(grant, known, conn)
    for other, relation in candidates:
        if other.grant_id == grant.grant_id or other.terminated:
            continue
        if not (grant.exclusive or other.exclusive):
            continue  # no terms to compare, and no ancestors to read
        if stranger and works is not None and unauthorised(other, known, works, conn, rights):
            continue
        lineal = other.grant_id in my_line or grant.grant_id in _ancestors(other, known, conn)
        clash = exclusive_clash(
            terms_of(grant),
            terms_of(other),
            relation=None if relation is None else _relation_name(relation),
            lineal=lineal,
        )
        if clash is None or _ended(clash.overlap.period, now):
            continue
        later, earlier = (grant, other) if other.order < grant.order else (other, grant)
        evidence: dict[str, Any] = {
            **clash.to_json(),
            "relation": "same work"
            if relation is None
            else {
                "kind": relation.kind,
                "strength": relation.strength,
                "source": relation.source,
                **relation.detail,
            },
        }
        found.append(
            Finding(
                kind=EXCLUSIVE_OVERLAP,
                key=f"{EXCLUSIVE_OVERLAP}:{earlier.grant_id}:{later.grant_id}",
                iscc_id=later.iscc_id,
                other_iscc_id=earlier.iscc_id,
                grant_id=later.grant_id,
                other_grant_id=earlier.grant_id,
                overlap=clash.overlap.to_json(),
                evidence=evidence,
                ends_at=clash.overlap.period.end,
                parties=_parties(
                    (earlier.grantor, "grantor"),
                    (later.grantor, "grantor"),
                    (earlier.licensee, "licensee"),
                    (later.licensee, "licensee"),
                ),
            )
        )
    return found


def _whole(terms: GrantTerms) -> dict[str, Any]:
    return {
        "territories": terms.territories.to_json(),
        "uses": use_names(terms.uses),
        "period": terms.period.to_json(),
        "text": f"{terms.describe()}",
    }


def ownership(grant: GrantRecord, work: Work | None) -> Finding | None:
    if grant.parent is not None:
        return None  # a sublicence's right comes from its parent (sublicence_exceeds)
    if work is not None and work.owner == grant.grantor and not work.revoked:
        return None  # owner now: owned then, or ratified by a transfer since
    if work is not None and work.revoked:
        return None  # a revoked work licenses nothing and is claimed by nobody
    owner, how = (None, "not declared") if work is None else work.owner_at(grant.order)
    if owner == grant.grantor:
        return None
    terms = terms_of(grant)
    return Finding(
        kind=NOT_OWNER,
        key=f"{NOT_OWNER}:{grant.grant_id}",
        iscc_id=grant.iscc_id,
        grant_id=grant.grant_id,
        overlap=_whole(terms),
        evidence={
            "grantor": grant.grantor,
            "owner_at_grant": owner,
            "how": how,
            "owner_now": None if work is None else work.owner,
            "grant_block": grant.block_number,
            "grant_log_index": grant.log_index,
        },
        ends_at=terms.period.end,
        parties=_parties(
            (grant.grantor, "grantor"),
            (owner, "owner"),
            (None if work is None else work.owner, "owner"),
            (grant.licensee, "licensee"),
        ),
    )


def priority(
    grant: GrantRecord, work: Work | None, relations: list[Relation], others: dict[str, Work]
) -> list[Finding]:
    if grant.parent is not None or work is None or work.revoked:
        return []
    by_other: dict[str, list[Relation]] = defaultdict(list)
    for r in relations:
        # Priority is the content conflicts' word (two declarers), not a search's.
        if r.earlier and r.source == "conflict" and r.kind in (*SAME_CONTENT, "segment"):
            by_other[r.other].append(r)
    found = []
    terms = terms_of(grant)
    for other_id, evidence in sorted(by_other.items()):
        earlier = others.get(other_id)
        if earlier is None or earlier.revoked or not earlier.valid:
            continue
        if earlier.owner == grant.grantor:
            continue  # the grantor holds the earlier work too
        same = any(r.kind in SAME_CONTENT for r in evidence)
        inside = [r for r in evidence if r.kind == "segment" and r.detail.get("offset", 0) < 0]
        kind = CONTAINS_EARLIER if not same and inside else NOT_PRIORITY
        found.append(
            Finding(
                kind=kind,
                key=f"{kind}:{grant.grant_id}:{other_id}",
                iscc_id=grant.iscc_id,
                other_iscc_id=other_id,
                grant_id=grant.grant_id,
                overlap=_whole(terms),
                evidence={
                    "earlier": other_id,
                    "earlier_declarer": earlier.declarer,
                    "earlier_owner": earlier.owner,
                    "content_conflicts": [
                        {"kind": r.kind, "strength": r.strength, **r.detail} for r in evidence
                    ],
                },
                ends_at=terms.period.end,
                parties=_parties(
                    (grant.grantor, "grantor"),
                    (earlier.owner, "earlier owner"),
                    (grant.licensee, "licensee"),
                ),
            )
        )
    return found


def sublicence(grant: GrantRecord, parent: GrantRecord | None) -> Finding | None:
    if grant.parent is None:
        return None
    child = terms_of(grant)
    if parent is None:
        # The contract refuses an unknown parent; here only through a store that started late.
        overlap_json: dict[str, Any] = _whole(child)
        evidence: dict[str, Any] = {"reasons": ["the parent grant is not in this store"]}
    else:
        excess = sublicence_excess(child, terms_of(parent), parent_ended_at=parent.terminated_time)
        if excess is None:
            return None
        described = excess.to_json()
        # The exact part of the sublicence outside its parent: where, which uses, when.
        overlap_json = {
            name: described[name]
            for name in ("territories", "uses", "before", "after", "conditions")
            if described[name]
        }
        if not overlap_json:
            overlap_json = _whole(child)  # wrong grantor or parent: all of it is in question
        evidence = {**described, "reasons": excess.reasons()}
    return Finding(
        kind=SUBLICENCE_EXCEEDS,
        key=f"{SUBLICENCE_EXCEEDS}:{grant.grant_id}",
        iscc_id=grant.iscc_id,
        grant_id=grant.grant_id,
        other_grant_id=grant.parent,
        other_iscc_id=None if parent is None else parent.iscc_id,
        overlap=overlap_json,
        evidence=evidence,
        ends_at=child.period.end,
        parties=_parties(
            (grant.grantor, "sublicensor"),
            (None if parent is None else parent.grantor, "licensor"),
            (grant.licensee, "licensee"),
        ),
    )


def unlicensed_uses(
    conn: Connection,
    usages: Sequence[UsageRecord],
    findings: dict[str, Finding],
    registry: tuple[int, str],
) -> list[Finding]:
    """The usage reports no valid grant covers, judged together: their works, the works
    related to them and the grants over those are read once for the whole batch. `findings`
    are this run's, on `registry`."""
    matched = [u for u in usages if u.iscc_id is not None]  # no declared work: nobody claims
    works = works_of(conn, {u.iscc_id for u in matched if u.iscc_id}, *registry)
    relations = related_works(conn, works)
    candidates = {
        iscc_id: {iscc_id} | {r.other for r in relations.get(iscc_id, [])} for iscc_id in works
    }
    over: dict[str, list[GrantRecord]] = defaultdict(list)
    for g in grants_over(conn, sorted({i for c in candidates.values() for i in c})):
        over[g.iscc_id].append(g)
    invalid = invalid_grants(conn, [g for gs in over.values() for g in gs], findings, registry)
    found = []
    for usage in matched:
        work = works.get(usage.iscc_id or "")
        if work is None or work.revoked:
            continue
        considered = [
            g
            for iscc_id in sorted(candidates[work.iscc_id])
            for g in over.get(iscc_id, [])
            if (g.chain_id, g.contract) == (usage.chain_id, usage.contract)
        ]
        bad = [g.grant_id for g in considered if (g.chain_id, g.contract, g.grant_id) in invalid]
        valid = [g for g in considered if g.grant_id not in bad]
        use = Usage(usage.territory, Use(usage.use), usage.used_at, usage.reporter, usage.iscc_id)
        ended = {g.grant_id: g.terminated_time for g in valid if g.terminated_time is not None}
        uncovered = unlicensed(use, [terms_of(g) for g in valid], ended=ended)
        if uncovered is None:
            continue
        found.append(
            Finding(
                kind=UNLICENSED_USE,
                key=f"{UNLICENSED_USE}:{usage.id}",
                iscc_id=work.iscc_id,
                usage_id=usage.id,
                overlap={
                    "territories": Territories.of(usage.territory).to_json(),
                    "uses": use_names(use.use),
                    "used_at": usage.used_at,
                    "text": str(use),
                },
                evidence={
                    **uncovered.to_json(),
                    "match": None if usage.match is None else json.loads(usage.match),
                    "works": sorted(candidates[work.iscc_id]),
                    "invalid_grants": sorted(bad),
                },
                parties=_parties((usage.reporter, "user"), (work.owner, "owner")),
            )
        )
    return found


def invalid_grants(
    conn: Connection,
    considered: Sequence[GrantRecord],
    findings: dict[str, Finding],
    registry: tuple[int, str] | None = None,
) -> set[tuple[int, str, str]]:
    """(chain id, contract, grant id) of the `considered` grants with a grantor_not_owner or
    grantor_not_priority conflict: open in the store on that grant's own registry (a grant id
    repeats across chains), or found in this run (`findings`, all of `registry`) and not
    judged yet."""
    judged = {f.grant_id for f in findings.values() if f.kind in INVALIDATING}
    wanted = {(g.chain_id, g.contract, g.grant_id) for g in considered}
    found = {key for key in wanted if registry == key[:2] and key[2] in judged}
    for chunk in chunks(sorted({g.grant_id for g in considered})):
        rows = conn.execute(
            select(
                licence_conflicts.c.chain_id,
                licence_conflicts.c.contract,
                licence_conflicts.c.grant_id,
            ).where(
                among(conn, licence_conflicts.c.grant_id, chunk),
                licence_conflicts.c.kind.in_(INVALIDATING),
                licence_conflicts.c.resolved_at.is_(None),
            )
        )
        found.update(key for key in map(tuple, rows) if key in wanted)
    return found


def usage_coverage(conn: Connection, usage: UsageRecord) -> dict[str, Any]:
    """Whether a valid grant covers a stored usage report now, by the rules detection applies:
    the works considered (the matched one and those related to it), the grants over them,
    which are invalid (an open grantor_not_owner or grantor_not_priority conflict) and which
    cover the use. `licensed` is None for a report matched to no declared work."""
    if usage.iscc_id is None:
        return {
            "licensed": None,
            "works": [],
            "covering_grants": [],
            "grants_considered": [],
            "invalid_grants": [],
        }
    works = works_of(conn, [usage.iscc_id], usage.chain_id, usage.contract)
    candidates = {usage.iscc_id} | {
        r.other for r in related_works(conn, works).get(usage.iscc_id, [])
    }
    considered = [
        g
        for g in grants_over(conn, sorted(candidates))
        if (g.chain_id, g.contract) == (usage.chain_id, usage.contract)
    ]
    invalid = {key[2] for key in invalid_grants(conn, considered, {})}
    use = Usage(usage.territory, Use(usage.use), usage.used_at, usage.reporter, usage.iscc_id)
    covering = [
        g.grant_id
        for g in considered
        if g.grant_id not in invalid and covers(terms_of(g), use, ended_at=g.terminated_time)
    ]
    return {
        "licensed": bool(covering),
        "works": sorted(candidates),
        "covering_grants": covering,
        "grants_considered": [g.grant_id for g in considered],
        "invalid_grants": sorted(invalid & {g.grant_id for g in considered}),
    }
