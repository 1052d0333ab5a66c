"""Which licence conflicts open a case of their own: the bound on case floods.

A case is what reaches people: a notice on the event feed, a webhook post to every subscriber,
a deadline for the work's owner. Making one is cheap for anyone: a usage report is a free
signed note from any key, a grant over someone else's work (or over a copy of it one declared
oneself) costs a transaction. Fresh keys cost nothing, so per-key limits do not bound how many
cases strangers can open against one owner.

So a conflict is always recorded, judged and resolved like any other, and listed with its
evidence, but it opens a case only when

- every party that caused it (the grantors of the grants it is about, the reporter of an
  unlicensed use) is accountable: named in `case_trusted_parties` (a platform with a reporting
  agreement, a known licensor) or the owner of every work the conflict names; or
- the work it harms (the earlier work for `grantor_not_priority` and `work_contains_earlier`,
  else the work it is filed under) has fewer than `cases_per_work` active cases of that kind
  caused by parties that are not. A case is active while it is not closed and its response
  deadline has not passed (an acknowledged or disputed case stays open, but stops holding a
  slot at its deadline).

A conflict beyond that bound is held: its evidence says why under `case_held` and keeps the
parties its case will have. Every detection run gives held conflicts a case as slots free up,
oldest first (`promote_held`). So an attacker with any number of keys keeps at most
`cases_per_work` cases per kind and harmed work active at once, and a legitimate conflict
behind his waits at most one response deadline; accountable parties are never held.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, exists, insert, select, update

from registry.config import Settings
from registry.defaults import CASE_RESPONSE_DAYS, CASES_PER_WORK
from registry.ledger.cases import CLOSED, open_case
from registry.ledger.licence_findings import CONTAINS_EARLIER, NOT_PRIORITY, Finding
from registry.ledger.licence_works import works_of
from registry.store.bulk import among, chunks
from registry.store.licences import GrantRecord, grants_by_ids
from registry.store.schema import cases, licence_conflicts, meta, usage_reports

__all__ = [
    "DEFAULT_POLICY",
    "CaseGate",
    "CasePolicy",
    "harmed_work",
    "promote_held",
]


@dataclass(frozen=True)
class CasePolicy:
    """How long parties have to answer a case, and who may open how many."""

    response_days: int = CASE_RESPONSE_DAYS
    trusted: frozenset[str] = frozenset()
    """Checksummed addresses whose conflicts always open a case."""
    cases_per_work: int = CASES_PER_WORK

    @classmethod
    def of(cls, settings: Settings) -> CasePolicy:
        """The policy the settings describe."""
        return cls(
            response_days=settings.case_response_days,
            trusted=frozenset(settings.case_trusted_parties),
            cases_per_work=settings.cases_per_work,
        )


DEFAULT_POLICY = CasePolicy()


HELD_BATCH = 500
"""Held conflicts looked at per detection run (a cursor walks through all of them)."""
HELD_CURSOR_KEY = "held"
"""meta, with the registry (`held:<chain id>:<contract>`, within the key column's 64
characters): where the walk through its held conflicts goes on (absent: none is held, and runs
skip the walk)."""


def harmed_work(kind: str, iscc_id: str, other_iscc_id: str | None) -> str:
    """The work whose slots a conflict takes: the earlier work a later one copies or
    contains, else the work the conflict is filed under."""
    if kind in (NOT_PRIORITY, CONTAINS_EARLIER) and other_iscc_id:
        return other_iscc_id
    return iscc_id


class CaseGate:
    """Decides, for new or held findings of one detection run on one registry, which open a
    case.

    Reads the owners of their works, and the active cases per (harmed work, kind) that
    unaccountable parties caused, once for all of them (a catch-up judges thousands), then
    counts the cases it lets through."""

    def __init__(
        self,
        conn: Connection,
        chain_id: int,
        contract: str,
        policy: CasePolicy,
        known: dict[str, GrantRecord],
        findings: Iterable[Finding],
        now: int,
    ) -> None:
        self.conn = conn
        self.chain_id = chain_id
        self.contract = contract
        self.policy = policy
        self.known = known
        self.now = now
        found = list(findings)
        named = {w for f in found for w in (f.iscc_id, f.other_iscc_id) if w}
        self._owners: dict[str, str | None] = {
            iscc_id: work.owner
            for iscc_id, work in works_of(conn, named, chain_id, contract).items()
        }
        self._grantors([g for f in found for g in (f.grant_id, f.other_grant_id)])
        harmed = {
            harmed_work(f.kind, f.iscc_id, f.other_iscc_id)
            for f in found
            if not self._accountable(f.iscc_id, f.other_iscc_id, self._causes(f))
        }
        self._active: dict[tuple[str, str], int] = self._count_active(harmed)
        self._walk_started = False

    def held(self, finding: Finding) -> str | None:
        """Why `finding` opens no case, or None when it opens one (then it is counted)."""
        if self._accountable(finding.iscc_id, finding.other_iscc_id, self._causes(finding)):
            return None
        work = harmed_work(finding.kind, finding.iscc_id, finding.other_iscc_id)
        slot = (work, finding.kind)
        count = self._active.get(slot, 0)
        if count >= self.policy.cases_per_work:
            return (
                f"{work} has {count} active {finding.kind} cases caused by parties outside "
                "case_trusted_parties; this conflict gets its case when one of them ends"
            )
        self._active[slot] = count + 1
        return None

    def held_evidence(self, reason: str, finding: Finding) -> dict[str, Any]:
        """A held conflict's evidence: why it has no case yet, and the parties its case will
        have. Starts the registry's walk through held conflicts (promote_held), once a gate."""
        if not self._walk_started:
            key = f"{HELD_CURSOR_KEY}:{self.chain_id}:{self.contract}"
            if self.conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar() is None:
                self.conn.execute(insert(meta).values(key=key, value="0"))
            self._walk_started = True
        parties = [list(p) for p in finding.parties]
        return {**finding.evidence, "case_held": reason, "held_parties": parties}

    def _causes(self, finding: Finding) -> list[str]:
        """The parties that caused a finding: its grants' grantors, a usage report's reporter."""
        users = [a for a, role in finding.parties if role == "user"]
        return [*self._grantors([finding.grant_id, finding.other_grant_id]), *users]

    def _grantors(self, grant_ids: Iterable[str | None]) -> list[str]:
        wanted = [g for g in grant_ids if g is not None]
        missing = [g for g in wanted if g not in self.known]
        if missing:
            self.known.update(grants_by_ids(self.conn, missing, self.chain_id, self.contract))
        return [self.known[g].grantor for g in wanted if g in self.known]

    def _accountable(self, iscc_id: str, other: str | None, parties: Iterable[str]) -> bool:
        """Whether every party that caused a conflict is trusted or owns every work it names."""
        for work in (iscc_id, other):
            if work and work not in self._owners:
                found = works_of(self.conn, [work], self.chain_id, self.contract).get(work)
                self._owners[work] = None if found is None else found.owner
        owners = {self._owners[w] for w in (iscc_id, other) if w}
        return all(p in self.policy.trusted or owners == {p} for p in parties)

    def _count_active(self, works: Iterable[str]) -> dict[tuple[str, str], int]:
        """Active cases per (harmed work, kind) over these works that unaccountable parties
        caused."""
        lc = licence_conflicts
        query = (
            select(lc.c.id, lc.c.iscc_id, lc.c.other_iscc_id, lc.c.kind)
            .add_columns(lc.c.grant_id, lc.c.other_grant_id, usage_reports.c.reporter)
            .select_from(lc)
            .join(cases, cases.c.conflict_id == lc.c.id)
            .outerjoin(usage_reports, usage_reports.c.id == lc.c.usage_id)
            .where(
                lc.c.chain_id == self.chain_id,
                lc.c.contract == self.contract,
                cases.c.state.not_in(sorted(CLOSED)),
                cases.c.deadline > self.now,
            )
        )
        wanted = set(works)
        rows = {
            row.id: row
            for chunk in chunks(sorted(wanted))
            for column in (lc.c.iscc_id, lc.c.other_iscc_id)
            for row in self.conn.execute(query.where(among(self.conn, column, chunk)))
        }.values()
        self._grantors([g for row in rows for g in (row.grant_id, row.other_grant_id)])
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for row in rows:
            work = harmed_work(row.kind, row.iscc_id, row.other_iscc_id)
            causes = [*self._grantors([row.grant_id, row.other_grant_id])]
            causes += [row.reporter] if row.reporter else []
            if work in wanted and not self._accountable(row.iscc_id, row.other_iscc_id, causes):
                counts[work, row.kind] += 1
        return dict(counts)


def promote_held(
    conn: Connection, chain_id: int, contract: str, policy: CasePolicy, now: int
) -> int:
    """Give held conflicts of this registry a case where their harmed work has a free slot
    now, oldest first; a cursor walks through them HELD_BATCH a run, so held conflicts of
    works whose slots stay full do not keep the others waiting. Returns how many got one."""
    lc = licence_conflicts
    cursor_key = f"{HELD_CURSOR_KEY}:{chain_id}:{contract}"
    cursor = conn.execute(select(meta.c.value).where(meta.c.key == cursor_key)).scalar()
    if cursor is None:
        return 0  # nothing held on this registry since the last full walk found none
    start = int(cursor)
    rows = conn.execute(
        select(lc)
        .where(
            lc.c.chain_id == chain_id,
            lc.c.contract == contract,
            lc.c.resolved_at.is_(None),
            lc.c.id > start,
            ~exists().where(cases.c.conflict_id == lc.c.id),
        )
        .order_by(lc.c.id)
        .limit(HELD_BATCH)
    ).all()
    position = str(rows[-1].id if len(rows) == HELD_BATCH else 0)
    if not rows and start == 0:
        conn.execute(delete(meta).where(meta.c.key == cursor_key))  # a whole walk, none held
    elif cursor != position:
        conn.execute(update(meta).where(meta.c.key == cursor_key).values(value=position))
    findings = [_finding_of(row) for row in rows]
    gate = CaseGate(conn, chain_id, contract, policy, {}, findings, now)
    opened = 0
    for row, finding in zip(rows, findings, strict=True):
        if gate.held(finding) is not None:
            continue
        evidence = {
            k: v for k, v in finding.evidence.items() if k not in ("case_held", "held_parties")
        }
        evidence["case_opened_late"] = now
        conn.execute(
            update(lc)
            .where(lc.c.id == row.id)
            .values(evidence=json.dumps(evidence, sort_keys=True))
        )
        open_case(
            conn,
            chain_id=chain_id,
            contract=contract,
            conflict_id=row.id,
            kind=row.kind,
            parties=finding.parties,
            now=now,
            response_days=policy.response_days,
        )
        opened += 1
    return opened


def _finding_of(row: Any) -> Finding:
    evidence = json.loads(row.evidence)
    return Finding(
        kind=row.kind,
        key=row.key,
        iscc_id=row.iscc_id,
        overlap=json.loads(row.overlap),
        evidence=evidence,
        parties=tuple((a, r) for a, r in evidence.get("held_parties", [])),
        grant_id=row.grant_id,
        other_grant_id=row.other_grant_id,
        usage_id=row.usage_id,
        other_iscc_id=row.other_iscc_id,
        ends_at=row.ends_at,
    )
