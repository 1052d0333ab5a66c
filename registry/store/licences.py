"""The licence ledger in the store: grants mirrored from the LicenceRegistry's events (written in
the transaction of the range that carried them, undone by a rollback above them), the queue of
what licence detection must look at again, and the reads the ledger, the API and the CLI use.

Grants are written beside declarations, not as declaration history: a grant is its own record
with its own id (keccak(grantor, nonce), stable across reorgs), and the one termination the
contract allows per grant is a column of it. Whatever changes a grant's standing queues it
(table `licence_queue`) in the same transaction: its own event, a termination, a rollback that
removes or revives it, and a change of the work it licenses (transfer, revocation, a rollback
of either).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import is_address, to_checksum_address
from sqlalchemy import (
    BigInteger,
    Connection,
    cast,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from registry.chain.events import REVOKED, TRANSFERRED, ChangeEvent
from registry.chain.iscc_id import IsccId
from registry.chain.licence_events import GrantedEvent, LicenceEvent
from registry.errors import InputError, InvalidCode
from registry.store.bulk import among, chunks
from registry.store.connection import Connections
from registry.store.int64 import to_signed64
from registry.store.schema import (
    conflicts,
    declarations,
    grants,
    licence_conflicts,
    licence_queue,
    meta,
    usage_reports,
)

__all__ = [
    "CONTENT_CONFLICTS_SEEN_KEY",
    "GRANT",
    "GRANT_COLUMNS",
    "USAGE",
    "WORK",
    "GrantRecord",
    "LicenceReads",
    "UsageRecord",
    "apply_licence_events",
    "grant_record_of",
    "grant_row",
    "grants_by_ids",
    "grants_over",
    "lower_content_watermark",
    "queue_licences",
    "queue_open_licence_conflicts",
    "queue_work_changes",
    "rollback_licences",
    "select_grants",
    "usage_record_of",
]

log = logging.getLogger(__name__)

GRANT = "grant"
"""A queued grant (ref: its grant id): detect its conflicts again."""
WORK = "work"
"""A queued work (ref: its ISCC-ID): its owner, revocation or content conflicts changed, so the
grants over it are looked at again."""
USAGE = "usage"
"""A queued usage report (ref: its row id): is its use licensed?"""

CONTENT_CONFLICTS_SEEN_KEY = "licence_content_conflicts_seen"
"""Key in `meta`: the highest content conflict row id licence detection has related works by.
A rollback lowers it to the highest row left, as SQLite gives the ids of deleted rows again."""


@dataclass(frozen=True)
class GrantRecord:
    """One grant as the index knows it: the raw terms its grantor signed, where on chain, and
    whether (and by whom) it was terminated."""

    chain_id: int
    contract: str
    grant_id: str
    iscc_id: str
    grantor: str
    licensee: str | None
    parent: str | None
    territories: tuple[str, ...]
    worldwide: bool
    uses: int
    conditions: int
    starts_at: int
    ends_at: int | None
    exclusive: bool
    sublicensable: bool
    terms_url: str
    terms_hash: bytes | None
    nonce: str
    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int
    block_time: int
    terminated_by: str | None = None
    terminated_block: int | None = None
    terminated_tx: bytes | None = None
    terminated_log_index: int | None = None
    terminated_time: int | None = None

    @property
    def public(self) -> bool:
        return self.licensee is None

    @property
    def terminated(self) -> bool:
        return self.terminated_block is not None

    @property
    def order(self) -> tuple[int, int]:
        """Chain position: which of two grants came first."""
        return self.block_number, self.log_index

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: hashes as 0x hex, the raw bitmasks as integers."""
        return {
            "grant_id": self.grant_id,
            "iscc_id": self.iscc_id,
            "grantor": self.grantor,
            "licensee": self.licensee,
            "public": self.public,
            "parent": self.parent,
            "territories": list(self.territories),
            "worldwide": self.worldwide,
            "uses": self.uses,
            "conditions": self.conditions,
            "start": self.starts_at,
            "end": self.ends_at,
            "exclusive": self.exclusive,
            "sublicensable": self.sublicensable,
            "terms_url": self.terms_url,
            "terms_hash": None if self.terms_hash is None else "0x" + self.terms_hash.hex(),
            "nonce": self.nonce,
            "chain_id": self.chain_id,
            "contract": self.contract,
            "block_number": self.block_number,
            "block_hash": "0x" + self.block_hash.hex(),
            "tx_hash": "0x" + self.tx_hash.hex(),
            "log_index": self.log_index,
            "block_time": self.block_time,
            "terminated": None
            if not self.terminated
            else {
                "by": self.terminated_by,
                "block_number": self.terminated_block,
                "tx_hash": None if self.terminated_tx is None else "0x" + self.terminated_tx.hex(),
                "log_index": self.terminated_log_index,
                "time": self.terminated_time,
            },
        }


@dataclass(frozen=True)
class UsageRecord:
    """A verified usage report: who reports using what (ISCC-CODE, datahash), where, how and
    when, its signature, and the declared work it was matched to (None: none found)."""

    id: int
    chain_id: int
    contract: str
    reporter: str
    iscc_code: str | None
    iscc_code_raw: bytes
    datahash: bytes
    territory: str
    use: int
    used_at: int
    nonce: str
    signature: bytes
    digest: bytes
    received_at: int
    iscc_id: str | None
    match: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "reporter": self.reporter,
            "iscc_code": self.iscc_code,
            "datahash": "0x" + self.datahash.hex(),
            "territory": self.territory,
            "use": self.use,
            "used_at": self.used_at,
            "nonce": self.nonce,
            "signature": "0x" + self.signature.hex(),
            "digest": "0x" + self.digest.hex(),
            "received_at": self.received_at,
            "iscc_id": self.iscc_id,
            "match": None if self.match is None else json.loads(self.match),
            "chain_id": self.chain_id,
            "contract": self.contract,
        }


# Selected in GrantRecord's field order, so a row is a record with one field decoded: building
# records through row mappings cost ~40 % of judging a backlog (grants of related works).
GRANT_COLUMNS = [grants.c[name] for name in GrantRecord.__dataclass_fields__]
_TERRITORIES = GRANT_COLUMNS.index(grants.c.territories)


def select_grants() -> Any:
    """select() of `grants` in GrantRecord's column order (turn rows into records with
    grant_record_of)."""
    return select(*GRANT_COLUMNS)


def _grant_record(row: Any) -> GrantRecord:
    values = list(row)
    codes = values[_TERRITORIES]
    values[_TERRITORIES] = tuple(codes.split(",")) if codes else ()
    return GrantRecord(*values)


def _usage_record(row: Any) -> UsageRecord:
    values = dict(row._mapping)
    for name in ("iscc_code_raw", "datahash", "signature", "digest"):
        values[name] = bytes(values[name])
    return UsageRecord(**values)


# --- writes (inside the indexer's batch transaction) -------------------------------------------


def grant_row(chain_id: int, contract: str, e: GrantedEvent) -> dict[str, Any]:
    """The `grants` row of a LicenceGranted event."""
    return {
        "chain_id": chain_id,
        "contract": contract,
        "grant_id": e.grant_id,
        "iscc_id": str(e.iscc_id),
        "iscc_id_body": to_signed64(e.iscc_id.body),
        "grantor": e.grantor,
        "licensee": e.licensee,
        "parent": e.parent,
        "territories": ",".join(sorted(e.territories)),
        "worldwide": e.worldwide,
        "uses": e.uses,
        "conditions": e.conditions,
        "starts_at": e.start,
        "ends_at": e.end or None,
        "exclusive": e.exclusive,
        "sublicensable": e.sublicensable,
        "terms_url": e.terms_url,
        "terms_hash": None if e.terms_hash is None else bytes.fromhex(e.terms_hash[2:]),
        "nonce": str(e.nonce),
        "block_number": e.block_number,
        "block_hash": e.block_hash,
        "tx_hash": e.tx_hash,
        "log_index": e.log_index,
        "block_time": e.block_time,
    }


def apply_licence_events(
    conn: Connection, chain_id: int, contract: str, events: Sequence[LicenceEvent]
) -> None:
    """Write a range's licence events in chain order (a grant and its termination may share a
    range) and queue every grant they touch."""
    touched: list[str] = []
    pending: list[dict[str, Any]] = []
    for e in events:
        touched.append(e.grant_id)
        if isinstance(e, GrantedEvent):
            pending.append(grant_row(chain_id, contract, e))
            continue
        # A run of grants goes in as one executemany (a catch-up holds thousands); a
        # termination waits for the grants before it, which it may end.
        if pending:
            conn.execute(grants.insert(), pending)
            pending = []
        done = conn.execute(
            update(grants)
            .where(
                grants.c.grant_id == e.grant_id,
                grants.c.chain_id == chain_id,
                grants.c.contract == contract,
                grants.c.terminated_block.is_(None),
            )
            .values(
                terminated_by=e.by,
                terminated_block=e.block_number,
                terminated_tx=e.tx_hash,
                terminated_log_index=e.log_index,
                terminated_time=e.block_time,
            )
        )
        if not done.rowcount:
            # As with declarations: the store may have started after the grant.
            log.warning("termination of grant %s, which this store does not hold", e.grant_id)
    if pending:
        conn.execute(grants.insert(), pending)
    queue_licences(conn, chain_id, contract, GRANT, touched)


def queue_work_changes(
    conn: Connection, chain_id: int, contract: str, changes: Iterable[ChangeEvent]
) -> None:
    """Queue the works whose transfer or revocation may change their grants' standing."""
    works = [e.iscc_id for e in changes if e.name in (TRANSFERRED, REVOKED)]
    queue_licences(conn, chain_id, contract, WORK, works)


def queue_licences(
    conn: Connection, chain_id: int, contract: str, subject: str, refs: Iterable[str]
) -> None:
    """Queue subjects for licence detection inside the caller's transaction; a subject queued
    already stays queued once."""
    wanted = sorted(set(refs))
    if not wanted:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(licence_queue).on_conflict_do_nothing(
        index_elements=["chain_id", "contract", "subject", "ref"]
    )
    for chunk in chunks(wanted):
        conn.execute(
            statement,
            [
                {"chain_id": chain_id, "contract": contract, "subject": subject, "ref": ref}
                for ref in chunk
            ],
        )


def queue_open_licence_conflicts(conn: Connection, chain_id: int, contract: str) -> None:
    """Queue the grants and usage reports of every open licence conflict of a registry (its
    chain is gone: `forget`)."""
    scope = (
        licence_conflicts.c.chain_id == chain_id,
        licence_conflicts.c.contract == contract,
        licence_conflicts.c.resolved_at.is_(None),
    )
    rows = conn.execute(
        select(
            licence_conflicts.c.grant_id,
            licence_conflicts.c.other_grant_id,
            licence_conflicts.c.usage_id,
        ).where(*scope)
    ).all()
    queue_licences(conn, chain_id, contract, GRANT, {g for r in rows for g in r[:2] if g})
    queue_licences(conn, chain_id, contract, USAGE, {str(r[2]) for r in rows if r[2]})


def rollback_licences(conn: Connection, chain_id: int, contract: str, above: int) -> int:
    """Undo the licence events above block `above` and queue what that changes; run inside
    the rollback's transaction before the declarations above are deleted.

    Grants granted above are deleted and terminations above cleared (the grant lives again).
    Their licence conflicts are not touched here: detection looks at the queued grants after
    the replay, so a grant the new branch carries again keeps its conflict and case, and one
    it lacks has its conflicts resolved with the reason "reorg". Returns the number of
    licence events undone.
    """
    scope = (grants.c.chain_id == chain_id, grants.c.contract == contract)
    removed = conn.execute(
        select(grants.c.grant_id).where(*scope, grants.c.block_number > above)
    ).scalars()
    revived = conn.execute(
        select(grants.c.grant_id).where(*scope, grants.c.terminated_block > above)
    ).scalars()
    removed, revived = list(removed), list(revived)
    queue_licences(conn, chain_id, contract, GRANT, [*removed, *revived])
    conn.execute(
        update(grants)
        .where(*scope, grants.c.terminated_block > above)
        .values(
            terminated_by=None,
            terminated_block=None,
            terminated_tx=None,
            terminated_log_index=None,
            terminated_time=None,
        )
    )
    conn.execute(delete(grants).where(*scope, grants.c.block_number > above))
    # Works whose declaration goes, and the works they had content conflicts with: the grants
    # over them (or related to them) are judged again.
    doomed = select(declarations.c.id).where(
        declarations.c.chain_id == chain_id,
        declarations.c.contract == contract,
        declarations.c.block_number > above,
    )
    partners = select(declarations.c.iscc_id).where(
        or_(
            declarations.c.id.in_(
                select(conflicts.c.earlier_id).where(conflicts.c.later_id.in_(doomed))
            ),
            declarations.c.id.in_(
                select(conflicts.c.later_id).where(conflicts.c.earlier_id.in_(doomed))
            ),
            declarations.c.id.in_(doomed),
        )
    )
    queue_licences(conn, chain_id, contract, WORK, conn.execute(partners).scalars())
    return len(removed) + len(revived)


def lower_content_watermark(conn: Connection) -> None:
    """After content conflicts were deleted: the watermark of the ones licence detection saw
    comes down to the highest id left, so ids handed out again are seen."""
    top = conn.execute(select(func.coalesce(func.max(conflicts.c.id), 0))).scalar_one()
    conn.execute(
        update(meta)
        .where(meta.c.key == CONTENT_CONFLICTS_SEEN_KEY)
        .where(cast(meta.c.value, BigInteger) > top)
        .values(value=str(top))
    )


# --- reads -------------------------------------------------------------------------------------


def _address(value: str) -> str:
    if not is_address(value):
        raise InvalidCode(f"not an Ethereum address: {value!r}")
    return to_checksum_address(value)


def _grant_id(value: str) -> str:
    text = value.lower()
    if len(text) != 66 or not text.startswith("0x"):
        raise InputError(f"not a grant id (0x and 64 hex digits): {value!r}")
    try:
        bytes.fromhex(text[2:])
    except ValueError:
        raise InputError(f"not a grant id (0x and 64 hex digits): {value!r}") from None
    return text


class LicenceReads(Connections):
    """Reads of grants and usage reports."""

    def grant(
        self, grant_id: str, chain_id: int | None = None, contract: str | None = None
    ) -> GrantRecord | None:
        """One grant by its id (0x hex), of the registry (chain_id, contract) when given (a
        grant id repeats across chains; see grants_by_ids), or None."""
        query = select_grants().where(grants.c.grant_id == _grant_id(grant_id))
        if chain_id is not None and contract is not None:
            query = query.where(grants.c.chain_id == chain_id, grants.c.contract == contract)
        with self._read() as conn:
            found = conn.execute(query.order_by(grants.c.id).limit(1)).first()
        return None if found is None else _grant_record(found)

    def grants_of(
        self, iscc_id: str, limit: int | None = None, offset: int = 0
    ) -> list[GrantRecord]:
        """Every grant over an ISCC-ID (sublicences included), in chain order; with `limit`,
        that many from `offset` on (anyone may grant over any work, so a work may have
        millions)."""
        canonical = str(IsccId.parse(iscc_id))
        return self._grants(grants.c.iscc_id == canonical, limit, offset)

    def grants_by(self, address: str) -> list[GrantRecord]:
        """Every grant an address gave or holds (as licensee), in chain order."""
        party = _address(address)
        return self._grants(or_(grants.c.grantor == party, grants.c.licensee == party))

    def sublicences_of(self, grant_id: str) -> list[GrantRecord]:
        """The grants naming this one as their parent, in chain order."""
        return self._grants(grants.c.parent == _grant_id(grant_id))

    def _grants(self, where: Any, limit: int | None = None, offset: int = 0) -> list[GrantRecord]:
        query = select_grants().where(where).order_by(grants.c.block_number, grants.c.log_index)
        if limit is not None:
            query = query.limit(limit).offset(offset)
        with self._read() as conn:
            return [_grant_record(row) for row in conn.execute(query)]

    def usage_report(self, report_id: int) -> UsageRecord | None:
        with self._read() as conn:
            row = conn.execute(select(usage_reports).where(usage_reports.c.id == report_id))
            found = row.first()
        return None if found is None else _usage_record(found)

    def usage_reports_of(
        self, *, iscc_id: str | None = None, reporter: str | None = None, limit: int = 100
    ) -> list[UsageRecord]:
        """Usage reports matched to an ISCC-ID, or made by a reporter, newest first."""
        query = select(usage_reports).order_by(usage_reports.c.id.desc()).limit(limit)
        if iscc_id is not None:
            query = query.where(usage_reports.c.iscc_id == str(IsccId.parse(iscc_id)))
        if reporter is not None:
            query = query.where(usage_reports.c.reporter == _address(reporter))
        with self._read() as conn:
            return [_usage_record(row) for row in conn.execute(query)]


def grants_by_ids(
    conn: Connection, grant_ids: Sequence[str], chain_id: int, contract: str
) -> dict[str, GrantRecord]:
    """Grants of one registry by grant id, inside a transaction; missing ones are absent. A
    grant id is keccak(grantor, nonce): the same key and nonce give the same id on every
    chain, so a lookup without the registry could answer with another chain's grant."""
    found: dict[str, GrantRecord] = {}
    scope = (grants.c.chain_id == chain_id, grants.c.contract == contract)
    for chunk in chunks(sorted(set(grant_ids))):
        query = select_grants().where(*scope, among(conn, grants.c.grant_id, chunk))
        for row in conn.execute(query):
            record = _grant_record(row)
            found[record.grant_id] = record
    return found


def grants_over(conn: Connection, iscc_ids: Sequence[str]) -> list[GrantRecord]:
    """The grants over these works (index by ISCC-ID), inside a transaction."""
    found: list[GrantRecord] = []
    for chunk in chunks(sorted(set(iscc_ids))):
        query = select_grants().where(among(conn, grants.c.iscc_id, chunk))
        found.extend(_grant_record(row) for row in conn.execute(query))
    return found


def grant_record_of(row: Any) -> GrantRecord:
    """A GrantRecord from a `grants` row (select_grants())."""
    return _grant_record(row)


def usage_record_of(row: Any) -> UsageRecord:
    """A UsageRecord from a `usage_reports` row."""
    return _usage_record(row)
