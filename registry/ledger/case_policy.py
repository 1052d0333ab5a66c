"""Which licence conflicts open a case of their own: the bound on case floods.

A case is what reaches people: a notice on the event feed, a webhook post to every subscriber,
a deadline for the work's owner. Making one is cheap for anyone: a usage report is a free
signed note from any key, and a grant over someone else's work costs its grantor one
transaction. Fresh keys cost nothing, so per-key limits do not bound how many cases strangers
can open against one owner.

So a conflict is always recorded, judged and resolved like any other, and listed with its
evidence, but it opens a case only when

- every party that caused it (the grantors of the grants it is about, the reporter of an
  unlicensed use) is accountable: named in `case_trusted_parties` (a platform with a reporting
  agreement, a known licensor) or the owner of the work it is about; or
- the work has fewer than `cases_per_work` open cases of that kind caused by parties that are
  not (acknowledged and disputed cases count as open).

A stranger's grant also clashes with the owner's later exclusive grants: that conflict, too,
was caused by the stranger and counts against the bound.

A conflict beyond that bound keeps no case: its evidence says so under `case_held`, and a
later free slot does not give it one (the owner can read it in the work's conflict list).
An attacker with any number of keys thus holds at most `cases_per_work` cases per kind over a
work at once, each for its response deadline; accountable parties are never crowded out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, select

from registry.config import Settings
from registry.defaults import CASE_RESPONSE_DAYS, CASES_PER_WORK
from registry.ledger.cases import CLOSED
from registry.ledger.licence_findings import Finding
from registry.ledger.licence_works import works_of
from registry.store.bulk import among, chunks
from registry.store.licences import GrantRecord, grants_by_ids
from registry.store.schema import cases, licence_conflicts, usage_reports

__all__ = ["DEFAULT_POLICY", "CaseGate", "CasePolicy"]


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


class CaseGate:
    """Decides, for the new findings of one detection run on one registry, which open a case.

    Reads the owners of their works, and the open cases per (work, kind) that unaccountable
    parties caused, once for all of them (a catch-up judges thousands), then counts the cases
    it lets through."""

    def __init__(
        self,
        conn: Connection,
        chain_id: int,
        contract: str,
        policy: CasePolicy,
        known: dict[str, GrantRecord],
        findings: Iterable[Finding],
    ) -> None:
        self.conn = conn
        self.chain_id = chain_id
        self.contract = contract
        self.policy = policy
        self.known = known
        found = list(findings)
        self._owners = {
            iscc_id: work.owner
            for iscc_id, work in works_of(conn, {f.iscc_id for f in found}).items()
        }
        self._grantors([g for f in found for g in (f.grant_id, f.other_grant_id)])
        strangers = {f.iscc_id for f in found if not self._accountable(f.iscc_id, self._causes(f))}
        self._open: dict[tuple[str, str], int] = self._count_open(strangers)

    def held(self, finding: Finding) -> str | None:
        """Why `finding` opens no case, or None when it opens one (then it is counted)."""
        if self._accountable(finding.iscc_id, self._causes(finding)):
            return None
        slot = (finding.iscc_id, finding.kind)
        count = self._open.get(slot, 0)
        if count >= self.policy.cases_per_work:
            return (
                f"{finding.iscc_id} has {count} open {finding.kind} cases caused by parties "
                "outside case_trusted_parties; this conflict is recorded without a case"
            )
        self._open[slot] = count + 1
        return None

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

    def _accountable(self, iscc_id: str, parties: Iterable[str]) -> bool:
        """Whether every party that caused a conflict over `iscc_id` is trusted or owns it."""
        owner = self._owners.get(iscc_id)
        return all(p in self.policy.trusted or p == owner for p in parties)

    def _count_open(self, iscc_ids: Iterable[str]) -> dict[tuple[str, str], int]:
        """Open cases per (work, kind) over these works that unaccountable parties caused."""
        lc = licence_conflicts
        query = (
            select(lc.c.iscc_id, lc.c.kind, lc.c.grant_id, lc.c.other_grant_id)
            .add_columns(usage_reports.c.reporter)
            .select_from(lc)
            .join(cases, cases.c.conflict_id == lc.c.id)
            .outerjoin(usage_reports, usage_reports.c.id == lc.c.usage_id)
            .where(
                lc.c.chain_id == self.chain_id,
                lc.c.contract == self.contract,
                cases.c.state.not_in(sorted(CLOSED)),
            )
        )
        rows = [
            row
            for chunk in chunks(sorted(set(iscc_ids)))
            for row in self.conn.execute(query.where(among(self.conn, lc.c.iscc_id, chunk)))
        ]
        self._grantors([g for row in rows for g in (row.grant_id, row.other_grant_id)])
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for row in rows:
            causes = self._grantors([row.grant_id, row.other_grant_id])
            if not self._accountable(row.iscc_id, [*causes, *filter(None, [row.reporter])]):
                counts[row.iscc_id, row.kind] += 1
        return dict(counts)
