"""Licence conflicts: grants that clash with each other, with the ownership or priority of the
work they license, or with their parent grant, and uses no valid grant covers.

The ledger records claims and the indexer judges them (the contract checks signatures only).
Whatever may change a grant's standing is queued in the transaction that changed it
(registry.store.licences: a grant, its termination, a transfer or revocation of its work, a
rollback of any of these; a usage report when it is stored); content conflicts found since the
last run queue the works on both sides. `LicenceDetector.run`, after the content conflict
detector in the indexer's after-sync, takes queued subjects a batch at a time and judges each
against the store as it is now, in one transaction with removing them from the queue:

- a rule that holds and has no open conflict: a conflict row (kind, grants or usage report,
  ISCC-IDs, the exact overlap and the evidence) and its case (registry.ledger.cases) open;
- an open conflict whose rule no longer holds: resolved, with the reason (terminated, revoked,
  transferred, licensed, expired), and its case resolved; if the grant it rested on is gone
  (a reorg removed it and the new branch does not carry it) the reason is "reorg" and the case
  is withdrawn. A reorg that replays the same grant (its id is keccak(grantor, nonce), the
  same on every branch) finds the conflict still holding: the open row and its case stay.

Cost: a grant is judged against the grants of its own work and of the works related to it
(same datahash, or a content conflict: a copy, an excerpt, a work containing it), read through
the indexes by ISCC-ID, never against all grants.

Rules (kinds, stable names used by the API, CLI and pages):

- `exclusive_overlap`: an exclusive grant and any other live grant over the same or a related
  work share territories x uses x period (registry.ledger.terms.overlap; touching periods do
  not overlap). A sublicence of a grant, and grants to the same licensee, do not clash with it.
- `grantor_not_owner`: a grant of its own (no parent) by someone who did not own the work at
  the grant's chain position (not declared, revoked, or another owner); a later transfer to
  the grantor ratifies it.
- `grantor_not_priority`: the work's content (the same bytes or Content-Code, or an excerpt of
  it) was declared earlier by another declarer, per the content conflicts.
- `work_contains_earlier`: the work contains another declarer's earlier work (a segment
  conflict where the earlier work lies inside the granted one).
- `sublicence_exceeds`: a sublicence whose parent is not sublicensable, whose grantor is not
  the parent's licensee, or whose territories, uses or term reach outside the parent's (a term
  outliving a terminated parent included).
- `unlicensed_use`: a usage report matched to a declared work (by datahash or by ISCC-CODE
  similarity, a copy or excerpt of a declared work through its content conflicts) that no
  valid grant covers in territory x use x date. A grant with an open grantor_not_owner or
  grantor_not_priority conflict licenses nothing.

Overlaps whose period ended before the detection runs are no conflicts any more: they expire.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import (
    BigInteger,
    Connection,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from registry.chain.deployment import Deployment
from registry.chain.iscc_id import IsccId
from registry.errors import InputError, InvalidNote, StoreError
from registry.iscc.codec import code_from_bytes
from registry.ledger.case_policy import (
    DEFAULT_POLICY,
    CaseGate,
    CasePolicy,
    promote_held,
)
from registry.ledger.cases import (
    RESOLVE,
    WITHDRAW,
    close_for_conflict,
    conflict_dict,
    expire_cases,
    open_case,
)
from registry.ledger.licence_findings import (
    CONTAINS_EARLIER,
    EXCLUSIVE_OVERLAP,
    KINDS,
    NOT_OWNER,
    NOT_PRIORITY,
    SUBLICENCE_EXCEEDS,
    UNLICENSED_USE,
    Finding,
    exclusive_overlaps,
    ownership,
    priority,
    sublicence,
    terms_of,
    unlicensed_uses,
)
from registry.ledger.licence_works import (
    Relation,
    WorkMatcher,
    merge_relations,
    related_works,
    works_of,
)
from registry.ledger.notes import NotesDomain, SignedNote, UsageReport, WalletCheck
from registry.ledger.terms import Territories
from registry.search.similarity import DEFAULT_THRESHOLD, SimilarityIndex, query_units
from registry.store.bulk import among, chunks
from registry.store.licences import (
    CONTENT_CONFLICTS_SEEN_KEY,
    GRANT,
    USAGE,
    WORK,
    GrantRecord,
    UsageRecord,
    grant_record_of,
    grants_by_ids,
    grants_over,
    queue_licences,
    select_grants,
    usage_record_of,
)
from registry.store.schema import (
    cases,
    checkpoints,
    conflicts,
    declarations,
    grants,
    licence_conflicts,
    licence_queue,
    meta,
    usage_reports,
)
from registry.store.store import Store

__all__ = [
    "CONTAINS_EARLIER",
    "EXCLUSIVE_OVERLAP",
    "KINDS",
    "NOT_OWNER",
    "NOT_PRIORITY",
    "SUBLICENCE_EXCEEDS",
    "UNLICENSED_USE",
    "Finding",
    "LicenceDetector",
    "UsageReplayed",
    "list_licence_conflicts",
    "report_usage",
    "store_usage_report",
    "terms_of",
]

log = logging.getLogger(__name__)

BATCH = 1000
# Built once: a catch-up stores thousands of conflicts.
_INSERT_CONFLICT = insert(licence_conflicts).returning(licence_conflicts.c.id)


class UsageReplayed(InputError):
    """A usage report with a (reporter, nonce) pair stored before."""


# --- the detector ------------------------------------------------------------------------------


class LicenceDetector:
    """Judges queued grants, works and usage reports; stores conflicts, opens and closes cases.

    Runs after the content ConflictDetector (its conflicts relate works). `clock` gives unix
    seconds (tests set it); `policy` sets a new case's deadline and which conflicts open one.
    """

    def __init__(
        self,
        store: Store,
        *,
        policy: CasePolicy = DEFAULT_POLICY,
        clock: Callable[[], float] = time.time,
        batch: int = BATCH,
        matcher: WorkMatcher | None = None,
    ) -> None:
        """`matcher` relates a work to the same declarer's copies and excerpts (without it,
        only content conflicts and the same bytes relate works)."""
        self.store = store
        self.matcher = matcher
        self.policy = policy
        self.clock = clock
        self.batch = batch

    def reset(self) -> None:
        """Nothing is kept in memory between runs: the queue and the store are the state."""

    def run(self) -> int:
        """Judge everything queued, expire what is due; returns conflicts opened plus resolved."""
        now = int(self.clock())
        changed = 0
        with self.store._write() as conn:
            expire_cases(conn, now)
            _queue_content_conflicts(conn)
            changed += self._expire_conflicts(conn, now)
        while True:
            with self.store._write() as conn:
                claimed = conn.execute(
                    select(
                        licence_queue.c.id,
                        licence_queue.c.chain_id,
                        licence_queue.c.contract,
                        licence_queue.c.subject,
                        licence_queue.c.ref,
                    )
                    .order_by(licence_queue.c.id)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                ).all()
                if not claimed:
                    # After judging: the conflicts this run resolved free their slots.
                    return changed + self._promote(conn, now)
                by_registry: dict[tuple[int, str], list[tuple[str, str]]] = defaultdict(list)
                for row in claimed:
                    by_registry[row.chain_id, row.contract].append((row.subject, row.ref))
                for (chain_id, contract), subjects in by_registry.items():
                    changed += self._judge(conn, chain_id, contract, subjects, now)
                for chunk in chunks([row.id for row in claimed]):
                    conn.execute(
                        delete(licence_queue).where(among(conn, licence_queue.c.id, chunk))
                    )

    def _promote(self, conn: Connection, now: int) -> int:
        """Cases for held conflicts whose harmed work has a free slot now (case_policy)."""
        registries = conn.execute(select(checkpoints.c.chain_id, checkpoints.c.contract)).all()
        return sum(
            promote_held(conn, chain_id, contract, self.policy, now)
            for chain_id, contract in registries
        )

    def _expire_conflicts(self, conn: Connection, now: int) -> int:
        due = conn.execute(
            select(licence_conflicts.c.id, licence_conflicts.c.ends_at).where(
                licence_conflicts.c.resolved_at.is_(None),
                licence_conflicts.c.ends_at <= now,
            )
        ).all()
        for row in due:
            _resolve(conn, row.id, f"expired: the overlap ended at {row.ends_at}", now)
        return len(due)

    def _judge(
        self,
        conn: Connection,
        chain_id: int,
        contract: str,
        subjects: Sequence[tuple[str, str]],
        now: int,
    ) -> int:
        grant_ids = {ref for kind, ref in subjects if kind == GRANT}
        usage_ids = {int(ref) for kind, ref in subjects if kind == USAGE}
        work_ids = {ref for kind, ref in subjects if kind == WORK}
        scope = (grants.c.chain_id == chain_id, grants.c.contract == contract)
        known = grants_by_ids(conn, sorted(grant_ids), chain_id, contract)
        # A work changed: the grants over it and over the works related to it.
        if work_ids:
            changed_works = works_of(conn, work_ids, chain_id, contract)
            related = related_works(conn, changed_works)
            touched = set(work_ids) | {r.other for rs in related.values() for r in rs}
            for g in grants_over(conn, sorted(touched)):
                if (g.chain_id, g.contract) == (chain_id, contract):
                    known[g.grant_id] = g
                    grant_ids.add(g.grant_id)
            usage_ids |= _usage_of(conn, chain_id, contract, touched)
        # A grant changed: its sublicences are judged against it again.
        for chunk in chunks(sorted(grant_ids)):
            children = conn.execute(
                select_grants().where(*scope, among(conn, grants.c.parent, chunk))
            ).all()
            for row in children:
                g = grant_record_of(row)
                known[g.grant_id] = g
                grant_ids.add(g.grant_id)
        # In chain order, so conflicts (and their cases) are stored in the order grants came.
        live = sorted((known[g] for g in grant_ids if g in known), key=lambda g: g.order)
        works = works_of(conn, {g.iscc_id for g in live}, chain_id, contract)
        relations = related_works(conn, works)
        if self.matcher is not None:
            relations = merge_relations(relations, self.matcher(conn, works))
        neighbours = set(works) | {r.other for rs in relations.values() for r in rs}
        others = works_of(conn, neighbours - set(works), chain_id, contract)
        others.update(works)
        over: dict[str, list[GrantRecord]] = defaultdict(list)
        for g in grants_over(conn, sorted(neighbours)):
            if (g.chain_id, g.contract) == (chain_id, contract):
                over[g.iscc_id].append(g)
                known.setdefault(g.grant_id, g)
        # Open unlicensed uses of these works may be licensed by a grant judged now.
        usage_ids |= _usage_of(conn, chain_id, contract, neighbours, only_open=True)
        parents = grants_by_ids(
            conn, sorted({g.parent for g in live if g.parent}), chain_id, contract
        )
        known.update(parents)
        findings: dict[str, Finding] = {}
        # The open rows of every queued grant are judged, a grant a rollback removed included.
        responsible = [("grant", grant_id) for grant_id in sorted(grant_ids)]
        rights: dict[str, bool] = {}
        for grant in live:
            work = works.get(grant.iscc_id)
            if grant.terminated or (work is not None and work.revoked):
                continue
            rel = relations.get(grant.iscc_id, [])
            candidates: list[tuple[GrantRecord, Relation | None]] = [
                (g, None) for g in over.get(grant.iscc_id, [])
            ]
            for r in rel:
                if others.get(r.other) is not None and others[r.other].revoked:
                    continue
                candidates += [(g, r) for g in over.get(r.other, [])]
            found = [
                *exclusive_overlaps(conn, grant, candidates, known, now, others, rights),
                ownership(grant, work),
                *priority(grant, work, rel, others),
                sublicence(grant, parents.get(grant.parent or "")),
            ]
            for f in found:
                if f is not None and (f.ends_at is None or f.ends_at > now):
                    findings[f.key] = f
        # Usage reports, after the grants' own conflicts (which may invalidate a grant).
        usages = _usages(conn, usage_ids)
        responsible += [("usage", str(u.id)) for u in usages]
        for f in unlicensed_uses(conn, usages, findings, (chain_id, contract)):
            findings[f.key] = f
        return _reconcile(conn, chain_id, contract, responsible, findings, now, self.policy, known)


def _usage_of(
    conn: Connection,
    chain_id: int,
    contract: str,
    iscc_ids: Iterable[str],
    only_open: bool = False,
) -> set[int]:
    """This registry's usage reports of these works (another registry in the store judges its
    own)."""
    found: set[int] = set()
    scope = (usage_reports.c.chain_id == chain_id, usage_reports.c.contract == contract)
    for chunk in chunks(sorted(set(iscc_ids))):
        query = select(usage_reports.c.id).where(
            *scope, among(conn, usage_reports.c.iscc_id, chunk)
        )
        if only_open:
            query = query.where(
                usage_reports.c.id.in_(
                    select(licence_conflicts.c.usage_id).where(
                        licence_conflicts.c.resolved_at.is_(None),
                        licence_conflicts.c.kind == UNLICENSED_USE,
                    )
                )
            )
        found.update(conn.execute(query).scalars())
    return found


def _usages(conn: Connection, ids: Iterable[int]) -> list[UsageRecord]:
    found = []
    for chunk in chunks(sorted(set(ids))):
        query = select(usage_reports).where(among(conn, usage_reports.c.id, chunk))
        found.extend(usage_record_of(row) for row in conn.execute(query))
    return found


def _reconcile(
    conn: Connection,
    chain_id: int,
    contract: str,
    responsible: Sequence[tuple[str, str]],
    findings: dict[str, Finding],
    now: int,
    policy: CasePolicy,
    known: dict[str, GrantRecord],
) -> int:
    """Open conflicts for new findings, resolve the open ones (of the judged subjects) that no
    finding backs any more; returns how many rows were opened or resolved."""
    scope = (licence_conflicts.c.chain_id == chain_id, licence_conflicts.c.contract == contract)
    open_rows: dict[str, Any] = {}
    grant_ids = sorted({ref for column, ref in responsible if column == "grant"})
    usage_ids = sorted({int(ref) for column, ref in responsible if column == "usage"})
    base = select(licence_conflicts).where(*scope, licence_conflicts.c.resolved_at.is_(None))
    for chunk in chunks(grant_ids):
        for row in conn.execute(
            base.where(
                or_(
                    among(conn, licence_conflicts.c.grant_id, chunk),
                    among(conn, licence_conflicts.c.other_grant_id, chunk)
                    & (licence_conflicts.c.kind == EXCLUSIVE_OVERLAP),
                )
            )
        ):
            open_rows[row.key] = row
    for chunk in chunks(usage_ids):
        for row in conn.execute(base.where(among(conn, licence_conflicts.c.usage_id, chunk))):
            open_rows[row.key] = row
    changed = 0
    for key, row in open_rows.items():
        if key in findings:
            continue
        reason = _why_gone(conn, row, known, now)
        _resolve(conn, row.id, reason, now)
        changed += 1
    found_block = conn.execute(
        select(checkpoints.c.block_number).where(
            checkpoints.c.chain_id == chain_id, checkpoints.c.contract == contract
        )
    ).scalar()
    new = [f for key, f in findings.items() if key not in open_rows]
    gate = CaseGate(conn, chain_id, contract, policy, known, new, now)
    for key, f in findings.items():
        if key in open_rows:
            continue
        held = gate.held(f)
        evidence = f.evidence if held is None else gate.held_evidence(held, f)
        conflict_id = conn.execute(
            _INSERT_CONFLICT,
            {
                "chain_id": chain_id,
                "contract": contract,
                "kind": f.kind,
                "key": f.key,
                "grant_id": f.grant_id,
                "other_grant_id": f.other_grant_id,
                "usage_id": f.usage_id,
                "iscc_id": f.iscc_id,
                "other_iscc_id": f.other_iscc_id,
                "overlap": json.dumps(f.overlap, sort_keys=True),
                "evidence": json.dumps(evidence, sort_keys=True),
                "ends_at": f.ends_at,
                "found_block": found_block or 0,
                "found_at": now,
            },
        ).scalar_one()
        if held is None:
            open_case(
                conn,
                chain_id=chain_id,
                contract=contract,
                conflict_id=conflict_id,
                kind=f.kind,
                parties=f.parties,
                now=now,
                response_days=policy.response_days,
            )
        changed += 1
    return changed


def _resolve(conn: Connection, conflict_id: int, reason: str, now: int) -> None:
    conn.execute(
        update(licence_conflicts)
        .where(licence_conflicts.c.id == conflict_id)
        .values(resolved_at=now, resolved_reason=reason)
    )
    action = WITHDRAW if reason.startswith("reorg") else RESOLVE
    close_for_conflict(conn, conflict_id, action, reason, now)


def _why_gone(conn: Connection, row: Any, known: dict[str, GrantRecord], now: int) -> str:
    """Why an open conflict no longer holds, in words that start with the cause."""
    for grant_id in (row.grant_id, row.other_grant_id):
        if grant_id is None:
            continue
        grant = known.get(grant_id) or grants_by_ids(
            conn, [grant_id], row.chain_id, row.contract
        ).get(grant_id)
        if grant is None:
            if row.kind == SUBLICENCE_EXCEEDS and grant_id == row.other_grant_id:
                continue
            return f"reorg: grant {grant_id} is no longer on the chain"
        if grant.terminated:
            return (
                f"terminated: grant {grant_id} was terminated by {grant.terminated_by} "
                f"in block {grant.terminated_block}"
            )
    named = [i for i in (row.iscc_id, row.other_iscc_id) if i]
    works = works_of(conn, named, row.chain_id, row.contract)
    for iscc_id in named:
        # A grant over an undeclared work was a conflict of its own (grantor_not_owner).
        if iscc_id not in works and not (row.kind == NOT_OWNER and iscc_id == row.iscc_id):
            return f"reorg: {iscc_id} is no longer on the chain"
    for iscc_id, work in sorted(works.items()):
        if work.revoked:
            return f"revoked: {iscc_id} was revoked by its owner"
    if row.ends_at is not None and row.ends_at <= now:
        return f"expired: the overlap ended at {row.ends_at}"
    if row.kind in (NOT_OWNER, NOT_PRIORITY, CONTAINS_EARLIER):
        grant = known.get(row.grant_id)
        work = works.get(row.iscc_id if row.kind == NOT_OWNER else row.other_iscc_id or "")
        if grant is not None and work is not None and work.owner == grant.grantor:
            return f"transferred: {work.iscc_id} is now owned by the grantor {grant.grantor}"
    if row.kind == UNLICENSED_USE:
        return "licensed: a valid grant now covers the reported use"
    if row.kind == SUBLICENCE_EXCEEDS:
        return "within its parent: the sublicence no longer reaches outside it"
    return "no longer detected"


def _queue_content_conflicts(conn: Connection) -> None:
    """Queue the works on both sides of content conflicts stored since the last run: they
    relate works (exclusivity over copies) and decide priority."""
    seen = conn.execute(
        select(cast(meta.c.value, BigInteger)).where(meta.c.key == CONTENT_CONFLICTS_SEEN_KEY)
    ).scalar()
    top = conn.execute(select(func.coalesce(func.max(conflicts.c.id), 0))).scalar_one()
    if seen is not None and top <= seen:
        if top < seen:
            conn.execute(
                update(meta).where(meta.c.key == CONTENT_CONFLICTS_SEEN_KEY).values(value=str(top))
            )
        return
    start = seen or 0
    # Only works some grant or usage report names matter; the rest cost nothing later either,
    # since a grant arriving afterwards reads its relations itself.
    early, late = declarations.alias("early"), declarations.alias("late")
    rows = conn.execute(
        select(early.c.chain_id, early.c.contract, early.c.iscc_id, late.c.iscc_id)
        .select_from(conflicts)
        .join(early, early.c.id == conflicts.c.earlier_id)
        .join(late, late.c.id == conflicts.c.later_id)
        .where(conflicts.c.id > start, conflicts.c.id <= top)
    ).all()
    by_registry: dict[tuple[int, str], set[str]] = defaultdict(set)
    for chain_id, contract, a, b in rows:
        by_registry[chain_id, contract].update((a, b))
    for (chain_id, contract), works in by_registry.items():
        licensed: set[str] = set()
        for chunk in chunks(sorted(works)):
            licensed.update(
                conn.execute(
                    select(grants.c.iscc_id).where(among(conn, grants.c.iscc_id, chunk))
                ).scalars()
            )
            licensed.update(
                conn.execute(
                    select(usage_reports.c.iscc_id).where(
                        among(conn, usage_reports.c.iscc_id, chunk)
                    )
                ).scalars()
            )
        # A work related to a licensed one: its own grants are judged via the licensed side.
        wanted = {a for _c, _k, a, b in rows if a in licensed or b in licensed} | {
            b for _c, _k, a, b in rows if a in licensed or b in licensed
        }
        queue_licences(conn, chain_id, contract, WORK, sorted(wanted & works))
    value = str(top)
    if seen is None:
        conn.execute(insert(meta).values(key=CONTENT_CONFLICTS_SEEN_KEY, value=value))
    else:
        conn.execute(
            update(meta).where(meta.c.key == CONTENT_CONFLICTS_SEEN_KEY).values(value=value)
        )


# --- usage reports -----------------------------------------------------------------------------


def _match(
    conn: Connection,
    chain_id: int,
    contract: str,
    datahash: bytes,
    iscc_code: str | None,
    similarity: SimilarityIndex | None,
) -> tuple[str | None, dict[str, Any] | None]:
    """The declared work a usage report is about: a valid, unrevoked declaration of the same
    bytes (the earliest), else the nearest by Content-Code within the similarity threshold."""
    scope = (declarations.c.chain_id == chain_id, declarations.c.contract == contract)
    exact = conn.execute(
        select(declarations.c.iscc_id)
        .where(*scope, declarations.c.datahash == datahash, declarations.c.valid)
        .where(~declarations.c.revoked)
        .order_by(declarations.c.block_number, declarations.c.log_index)
        .limit(1)
    ).scalar()
    if exact is not None:
        return exact, {"by": "datahash"}
    if similarity is None or iscc_code is None:
        return None, None
    try:
        units = [u for u in query_units(iscc_code) if u.unit_type.startswith("CONTENT-")]
    except InputError:
        return None, None
    if not units:
        return None, None
    for match in similarity.search(units, DEFAULT_THRESHOLD, limit=20):
        row = conn.execute(
            select(declarations.c.iscc_id).where(
                *scope,
                declarations.c.id == match.declaration_id,
                declarations.c.valid,
                ~declarations.c.revoked,
            )
        ).scalar()
        if row is not None:
            return row, {"by": "content", "distances": match.distances}
    return None, None


def store_usage_report(
    store: Store,
    *,
    chain_id: int,
    contract: str,
    reporter: str,
    iscc_code_raw: bytes,
    datahash: bytes,
    territory: str,
    use: int,
    used_at: int,
    nonce: int,
    signature: bytes,
    digest: bytes,
    similarity: SimilarityIndex | None = None,
    now: int | None = None,
) -> UsageRecord:
    """Store a verified usage report (its signature checked by the caller against the notes
    domain), matched to the declared work it is about, and queue it for detection; raises
    UsageReplayed for a (reporter, nonce) stored before. `contract` is the IsccRegistry address
    the store indexes (the key grants are stored under)."""
    try:
        iscc_code: str | None = code_from_bytes(iscc_code_raw)
    except InputError:
        iscc_code = None
    territory = territory.upper()
    Territories.of(territory)  # an unknown code is InvalidTerms, a 4xx
    contract = to_checksum_address(contract)
    received = int(time.time()) if now is None else now
    reporter = to_checksum_address(reporter)
    replayed = UsageReplayed(f"usage report nonce {nonce} of {reporter} was used before")
    try:
        with store._write() as conn:
            used = conn.execute(
                select(usage_reports.c.id).where(
                    usage_reports.c.reporter == reporter,
                    usage_reports.c.nonce == str(nonce),
                    usage_reports.c.chain_id == chain_id,
                    usage_reports.c.contract == contract,
                )
            ).first()
            if used is not None:
                raise replayed
            iscc_id, match = _match(conn, chain_id, contract, datahash, iscc_code, similarity)
            report_id = conn.execute(
                insert(usage_reports)
                .values(
                    chain_id=chain_id,
                    contract=contract,
                    reporter=reporter,
                    iscc_code=iscc_code,
                    iscc_code_raw=iscc_code_raw,
                    datahash=datahash,
                    territory=territory,
                    use=use,
                    used_at=used_at,
                    nonce=str(nonce),
                    signature=signature,
                    digest=digest,
                    received_at=received,
                    iscc_id=iscc_id,
                    match=None if match is None else json.dumps(match, sort_keys=True),
                )
                .returning(usage_reports.c.id)
            ).scalar_one()
            queue_licences(conn, chain_id, contract, USAGE, [str(report_id)])
    except StoreError as exc:
        # Another writer stored the same nonce between the check and the insert.
        if isinstance(exc.__cause__, IntegrityError):
            raise replayed from None
        raise
    record = store.usage_report(report_id)
    assert record is not None
    return record


def report_usage(
    store: Store,
    deployment: Deployment,
    signed: SignedNote,
    similarity: SimilarityIndex | None = None,
    now: int | None = None,
    wallet: WalletCheck | None = None,
) -> UsageRecord:
    """Verify a signed UsageReport for this deployment's notes domain (its LicenceRegistry),
    store it matched to the declared work it is about and queue it for detection (the next
    after-sync judges it). Raises InvalidNote, UsageReplayed or InvalidTerms."""
    note = signed.note
    if not isinstance(note, UsageReport):
        raise InvalidNote(f"a usage report is a UsageReport note, not {note.TYPE}")
    if not deployment.licences:
        raise InvalidNote("this deployment has no licence ledger: usage reports need one")
    signed.verify(NotesDomain(deployment.chain_id, deployment.licences), wallet)
    return store_usage_report(
        store,
        chain_id=deployment.chain_id,
        contract=deployment.address,
        reporter=note.reporter,
        iscc_code_raw=note.iscc_code,
        datahash=note.datahash,
        territory=note.territory,
        use=int(note.use),
        used_at=note.used_at,
        nonce=note.nonce,
        signature=signed.signature,
        digest=signed.digest(),
        similarity=similarity,
        now=now,
    )


# --- listing -----------------------------------------------------------------------------------


def list_licence_conflicts(
    store: Store,
    *,
    iscc_id: str | None = None,
    grant_id: str | None = None,
    kind: str | None = None,
    status: str = "open",
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Licence conflicts of a work (either side), a grant (either side), a kind, open,
    resolved or all; oldest first, each with its case id and state."""
    if status not in ("open", "resolved", "all"):
        raise InputError(f"status must be open, resolved or all, not {status!r}")
    if kind is not None and kind not in KINDS:
        raise InputError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if limit < 1 or offset < 0:
        raise InputError("limit must be at least 1 and offset at least 0")
    query = (
        select(licence_conflicts, cases.c.id.label("case_id"), cases.c.state.label("case_state"))
        .outerjoin(cases, cases.c.conflict_id == licence_conflicts.c.id)
        .order_by(licence_conflicts.c.id)
        .limit(limit)
        .offset(offset)
    )
    if iscc_id is not None:
        canonical = str(IsccId.parse(iscc_id))
        query = query.where(
            or_(
                licence_conflicts.c.iscc_id == canonical,
                licence_conflicts.c.other_iscc_id == canonical,
            )
        )
    if grant_id is not None:
        text = grant_id.lower()
        query = query.where(
            or_(licence_conflicts.c.grant_id == text, licence_conflicts.c.other_grant_id == text)
        )
    if kind is not None:
        query = query.where(licence_conflicts.c.kind == kind)
    if status == "open":
        query = query.where(licence_conflicts.c.resolved_at.is_(None))
    elif status == "resolved":
        query = query.where(licence_conflicts.c.resolved_at.is_not(None))
    with store._read() as conn:
        return [
            {
                **conflict_dict(row),
                # None: held by the flood bound until a slot frees (registry.ledger.case_policy).
                "case": None
                if row.case_id is None
                else {"id": row.case_id, "state": row.case_state},
            }
            for row in conn.execute(query)
        ]
