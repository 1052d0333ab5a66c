"""Cases: the parties' side of a licence conflict, from its detection to its end.

A case opens when licence detection finds a conflict (registry.ledger.licence_conflicts) and
names the parties who may answer. Its states:

    open -> acknowledged | disputed -> resolved | withdrawn | expired

A party answers with a signed CaseResponse note (registry.ledger.notes): acknowledge or dispute
an open case, resolve or withdraw an open, acknowledged or disputed one. An open case nobody
answered by its deadline (opening + `case_response_days`, 14 by default) expires; the indexer's
after-sync and every read check that. When the conflict itself disappears (a termination,
revocation or transfer, the overlap's end, a licence that now covers a use) the case is
resolved by the registry with that reason; when a reorg took away the grant it rested on, it is
withdrawn with the reason "reorg". Every step is a row of `case_events`, append-only, a party's
with its signature and EIP-712 digest; a digest is accepted once per case (no replay).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import is_address, keccak, to_checksum_address
from sqlalchemy import Connection, func, insert, select, update

from registry.chain.iscc_id import IsccId
from registry.defaults import CASE_RESPONSE_DAYS
from registry.errors import InputError, InvalidCode, InvalidNote
from registry.ledger.notes import Action, CaseResponse, NotesDomain, SignedNote, WalletCheck
from registry.store.schema import case_events, case_parties, cases, licence_conflicts
from registry.store.store import Store

__all__ = [
    "ACKNOWLEDGE",
    "ACKNOWLEDGED",
    "ACTIONS",
    "CLOSED",
    "DISPUTE",
    "DISPUTED",
    "EXPIRE",
    "EXPIRED",
    "OPEN",
    "OPENED",
    "REGISTRY",
    "RESOLVE",
    "RESOLVED",
    "STATES",
    "TRANSITIONS",
    "WITHDRAW",
    "WITHDRAWN",
    "CaseError",
    "CaseNotFound",
    "IllegalTransition",
    "NotAParty",
    "ReplayedResponse",
    "SignedBy",
    "acknowledge",
    "case_id_of",
    "close_for_conflict",
    "conflict_dict",
    "dispute",
    "expire_cases",
    "expire_due",
    "get_case",
    "list_cases",
    "open_case",
    "parse_case_id",
    "resolve",
    "respond",
    "withdraw",
]

OPEN = "open"
ACKNOWLEDGED = "acknowledged"
DISPUTED = "disputed"
RESOLVED = "resolved"
WITHDRAWN = "withdrawn"
EXPIRED = "expired"
STATES = (OPEN, ACKNOWLEDGED, DISPUTED, RESOLVED, WITHDRAWN, EXPIRED)
CLOSED = frozenset({RESOLVED, WITHDRAWN, EXPIRED})

OPENED = "open"
ACKNOWLEDGE = "acknowledge"
DISPUTE = "dispute"
RESOLVE = "resolve"
WITHDRAW = "withdraw"
EXPIRE = "expire"
ACTIONS = (ACKNOWLEDGE, DISPUTE, RESOLVE, WITHDRAW)
"""What a party's signed response may do (CaseResponse.action names one of these)."""

ZERO_ADDRESS = "0x" + "00" * 20
"""Never a signer: a public licence's licensee, if a party list ever names it."""

REGISTRY = "registry"
"""The actor of the registry's own steps: opening, expiry, automatic resolution."""

TRANSITIONS: dict[tuple[str, str], str] = {
    (OPEN, ACKNOWLEDGE): ACKNOWLEDGED,
    (OPEN, DISPUTE): DISPUTED,
    (OPEN, EXPIRE): EXPIRED,
    **{(state, RESOLVE): RESOLVED for state in (OPEN, ACKNOWLEDGED, DISPUTED)},
    **{(state, WITHDRAW): WITHDRAWN for state in (OPEN, ACKNOWLEDGED, DISPUTED)},
}
"""(state, action) -> the state after it; every other pair is an illegal transition."""

DAY = 86_400
# Built once: detection opens a case per conflict it finds, thousands in a catch-up.
_INSERT_CASE = insert(cases)
_INSERT_EVENT = insert(case_events)


class CaseError(InputError):
    """A case step that cannot be taken."""


class CaseNotFound(CaseError):
    """No case has this id."""


class IllegalTransition(CaseError):
    """The action is not allowed in the case's current state (e.g. acknowledging a resolved
    case)."""


class NotAParty(CaseError):
    """The signer of a response is not a party of the case."""


class ReplayedResponse(CaseError):
    """This signed response was accepted for this case already."""


@dataclass(frozen=True)
class SignedBy:
    """A party's signed response as verified: the signer, when it signed (unix seconds), the
    signature and the EIP-712 digest (the replay key)."""

    party: str
    signed_at: int
    signature: bytes
    digest: bytes


def case_id_of(chain_id: int, contract: str, conflict_id: int) -> str:
    """The case id (bytes32 as 0x hex) of a conflict row: what a CaseResponse names."""
    seed = f"iscc-registry case|{chain_id}|{to_checksum_address(contract)}|{conflict_id}"
    return "0x" + keccak(text=seed).hex()


def parse_case_id(value: str) -> str:
    """A case id in its canonical form (lower-case 0x hex); InputError for anything else."""
    text = value.lower() if isinstance(value, str) else ""
    if len(text) != 66 or not text.startswith("0x"):
        raise InputError(f"not a case id (0x and 64 hex digits): {value!r}")
    try:
        bytes.fromhex(text[2:])
    except ValueError:
        raise InputError(f"not a case id (0x and 64 hex digits): {value!r}") from None
    return text


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else now


# --- writes inside a caller's transaction (detection) -------------------------------------------


def open_case(
    conn: Connection,
    *,
    chain_id: int,
    contract: str,
    conflict_id: int,
    kind: str,
    parties: Sequence[tuple[str, str]],
    now: int,
    response_days: int = CASE_RESPONSE_DAYS,
) -> str:
    """Open the case of a newly found conflict with its parties ((checksummed address, role)
    pairs, as the store holds addresses; an address named twice keeps its first role);
    returns the case id."""
    case_id = case_id_of(chain_id, contract, conflict_id)
    conn.execute(
        _INSERT_CASE,
        {
            "id": case_id,
            "conflict_id": conflict_id,
            "kind": kind,
            "state": OPEN,
            "opened_at": now,
            "deadline": now + response_days * DAY,
            "updated_at": now,
        },
    )
    roles: dict[str, str] = {}
    for address, role in parties:
        roles.setdefault(address, role)
    conn.execute(
        insert(case_parties),
        [{"case_id": case_id, "party": p, "role": r} for p, r in roles.items()],
    )
    _append(conn, case_id, 0, now, REGISTRY, OPENED, OPEN, f"{kind} found")
    return case_id


def _append(
    conn: Connection,
    case_id: str,
    seq: int,
    at: int,
    actor: str,
    action: str,
    state: str,
    note: str,
    signed: SignedBy | None = None,
) -> None:
    conn.execute(
        _INSERT_EVENT,
        {
            "case_id": case_id,
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "state": state,
            "note": note,
            "signed_at": None if signed is None else signed.signed_at,
            "signature": None if signed is None else signed.signature,
            "digest": None if signed is None else signed.digest,
        },
    )


def _step(
    conn: Connection,
    case_id: str,
    action: str,
    now: int,
    note: str,
    signed: SignedBy | None,
) -> str:
    """Take one step of a case, checked; returns the new state."""
    row = conn.execute(select(cases.c.state).where(cases.c.id == case_id).with_for_update()).first()
    if row is None:
        raise CaseNotFound(f"no case {case_id}")
    actor = REGISTRY
    if signed is not None:
        actor = to_checksum_address(signed.party)
        party = conn.execute(
            select(case_parties.c.role).where(
                case_parties.c.case_id == case_id, case_parties.c.party == actor
            )
        ).first()
        if party is None:
            raise NotAParty(f"{actor} is not a party of case {case_id}")
        replayed = conn.execute(
            select(case_events.c.seq).where(
                case_events.c.case_id == case_id, case_events.c.digest == signed.digest
            )
        ).first()
        if replayed is not None:
            raise ReplayedResponse(
                f"this signed response was already accepted for case {case_id} "
                f"(step {replayed.seq})"
            )
    state = TRANSITIONS.get((row.state, action))
    if state is None:
        raise IllegalTransition(f"case {case_id} is {row.state}: it cannot be {_past(action)}")
    if signed is not None and state in CLOSED and not _all_agree(conn, case_id, action, actor):
        # One side alone cannot close a case: the party a conflict accuses (a grantor who did
        # not own the work, a user without a licence) would otherwise settle it by itself. The
        # step is recorded as its agreement and the case stays as it is until every party has
        # signed the same action (or the registry closes it: the conflict ended, or expiry).
        state = row.state
    seq = conn.execute(
        select(func.coalesce(func.max(case_events.c.seq), -1)).where(
            case_events.c.case_id == case_id
        )
    ).scalar_one()
    _append(conn, case_id, seq + 1, now, actor, action, state, note, signed)
    values: dict[str, Any] = {"state": state, "updated_at": now}
    if state in CLOSED:
        values["closed_reason"] = note or action
    conn.execute(update(cases).where(cases.c.id == case_id).values(**values))
    return state


def _all_agree(conn: Connection, case_id: str, action: str, actor: str) -> bool:
    """Whether, with `actor` taking `action` now, every party of the case has signed it."""
    parties = set(
        conn.execute(
            select(case_parties.c.party).where(case_parties.c.case_id == case_id)
        ).scalars()
    )
    agreed = set(
        conn.execute(
            select(case_events.c.actor).where(
                case_events.c.case_id == case_id, case_events.c.action == action
            )
        ).scalars()
    )
    return parties - {ZERO_ADDRESS} <= agreed | {actor}


def _past(action: str) -> str:
    return {
        ACKNOWLEDGE: "acknowledged",
        DISPUTE: "disputed",
        RESOLVE: "resolved",
        WITHDRAW: "withdrawn",
        EXPIRE: "expired",
    }.get(action, action)


def close_for_conflict(
    conn: Connection, conflict_id: int, action: str, reason: str, now: int
) -> str | None:
    """The registry resolves (or, for a reorg, withdraws) the case of a conflict that
    disappeared, with the reason; a case already closed stays as it is. Returns the case's
    state after, None if the conflict has no case."""
    row = conn.execute(
        select(cases.c.id, cases.c.state).where(cases.c.conflict_id == conflict_id)
    ).first()
    if row is None:
        return None
    if row.state in CLOSED:
        return row.state
    return _step(conn, row.id, action, now, reason, None)


def expire_cases(conn: Connection, now: int) -> int:
    """Expire the open cases past their deadline inside the caller's transaction."""
    due = conn.execute(
        select(cases.c.id).where(cases.c.state == OPEN, cases.c.deadline <= now).with_for_update()
    ).scalars()
    count = 0
    for case_id in list(due):
        _step(conn, case_id, EXPIRE, now, "no party answered by the deadline", None)
        count += 1
    return count


# --- the store-level steps (the API and CLI call these) -----------------------------------------


def expire_due(store: Store, now: int | None = None) -> int:
    """Expire every open case past its deadline; returns how many. A read first: reads of
    cases call this, and when nothing is due (nearly always) they take no write lock, so
    anonymous readers cannot hold up the indexer's writes."""
    when = _now(now)
    with store._read() as conn:
        due = conn.execute(
            select(cases.c.id).where(cases.c.state == OPEN, cases.c.deadline <= when).limit(1)
        ).first()
    if due is None:
        return 0
    with store._write() as conn:
        return expire_cases(conn, when)


def _party_step(
    store: Store, case_id: str, action: str, signed: SignedBy, note: str, now: int | None
) -> str:
    when = _now(now)
    case_id = parse_case_id(case_id)
    with store._write() as conn:
        # A deadline passed before this answer arrived: the case expired first.
        expire_cases(conn, when)
        return _step(conn, case_id, action, when, note, signed)


def acknowledge(
    store: Store, case_id: str, signed: SignedBy, note: str = "", now: int | None = None
) -> str:
    """A party acknowledges an open case (the conflict is real, they will settle it)."""
    return _party_step(store, case_id, ACKNOWLEDGE, signed, note, now)


def dispute(
    store: Store, case_id: str, signed: SignedBy, note: str = "", now: int | None = None
) -> str:
    """A party disputes an open case (the conflict is not what detection says)."""
    return _party_step(store, case_id, DISPUTE, signed, note, now)


def resolve(
    store: Store, case_id: str, signed: SignedBy, note: str = "", now: int | None = None
) -> str:
    """A party declares an open, acknowledged or disputed case settled."""
    return _party_step(store, case_id, RESOLVE, signed, note, now)


def withdraw(
    store: Store, case_id: str, signed: SignedBy, note: str = "", now: int | None = None
) -> str:
    """A party withdraws an open, acknowledged or disputed case (gives up its side)."""
    return _party_step(store, case_id, WITHDRAW, signed, note, now)


_BY_ACTION = {
    Action.ACKNOWLEDGE: ACKNOWLEDGE,
    Action.DISPUTE: DISPUTE,
    Action.RESOLVE: RESOLVE,
    Action.WITHDRAW: WITHDRAW,
}


def respond(
    store: Store,
    signed: SignedNote,
    domain: NotesDomain,
    now: int | None = None,
    wallet: WalletCheck | None = None,
) -> str:
    """Take a party's signed CaseResponse (registry.ledger.notes): its signature is checked for
    this registry's notes domain first, then the signer must be a party of the case, the
    response new for it (its EIP-712 digest), and the action allowed in the case's state.
    Returns the case's new state; raises InvalidNote, CaseNotFound, NotAParty,
    ReplayedResponse or IllegalTransition. `wallet` lets a smart-wallet party sign
    (SignedNote.verify)."""
    note = signed.note
    if not isinstance(note, CaseResponse):
        raise InvalidNote(f"a case takes CaseResponse notes, not {note.TYPE}")
    signed.verify(domain, wallet)
    by = SignedBy(note.party, note.signed_at, signed.signature, signed.digest())
    case_id = "0x" + note.case_id.hex()
    return _party_step(store, case_id, _BY_ACTION[note.action], by, note.note, now)


# --- reads ---------------------------------------------------------------------------------------


def _case_dict(conn: Connection, row: Any, with_events: bool) -> dict[str, Any]:
    parties = conn.execute(
        select(case_parties.c.party, case_parties.c.role)
        .where(case_parties.c.case_id == row.id)
        .order_by(case_parties.c.role, case_parties.c.party)
    ).all()
    conflict = conn.execute(
        select(licence_conflicts).where(licence_conflicts.c.id == row.conflict_id)
    ).first()
    answer: dict[str, Any] = {
        "id": row.id,
        "kind": row.kind,
        "state": row.state,
        "opened_at": row.opened_at,
        "deadline": row.deadline,
        "updated_at": row.updated_at,
        "closed_reason": row.closed_reason,
        "parties": [{"address": p.party, "role": p.role} for p in parties],
        "conflict": None if conflict is None else conflict_dict(conflict),
    }
    if with_events:
        steps = conn.execute(
            select(case_events).where(case_events.c.case_id == row.id).order_by(case_events.c.seq)
        ).all()
        answer["events"] = [
            {
                "seq": s.seq,
                "at": s.at,
                "actor": s.actor,
                "action": s.action,
                "state": s.state,
                "note": s.note,
                "signed_at": s.signed_at,
                "signature": None if s.signature is None else "0x" + bytes(s.signature).hex(),
                "digest": None if s.digest is None else "0x" + bytes(s.digest).hex(),
            }
            for s in steps
        ]
    return answer


def conflict_dict(row: Any) -> dict[str, Any]:
    """A `licence_conflicts` row, JSON-friendly."""
    return {
        "id": row.id,
        "chain_id": row.chain_id,
        "contract": row.contract,
        "kind": row.kind,
        "key": row.key,
        "grant_id": row.grant_id,
        "other_grant_id": row.other_grant_id,
        "usage_id": row.usage_id,
        "iscc_id": row.iscc_id,
        "other_iscc_id": row.other_iscc_id,
        "overlap": json.loads(row.overlap),
        "evidence": json.loads(row.evidence),
        "ends_at": row.ends_at,
        "found_block": row.found_block,
        "found_at": row.found_at,
        "resolved_at": row.resolved_at,
        "resolved_reason": row.resolved_reason,
        "open": row.resolved_at is None,
    }


def get_case(store: Store, case_id: str, now: int | None = None) -> dict[str, Any]:
    """One case with its parties, its conflict and every step; raises CaseNotFound. An open
    case past its deadline is expired first."""
    case_id = parse_case_id(case_id)
    expire_due(store, now)
    with store._read() as conn:
        row = conn.execute(select(cases).where(cases.c.id == case_id)).first()
        if row is None:
            raise CaseNotFound(f"no case {case_id}")
        return _case_dict(conn, row, with_events=True)


def list_cases(
    store: Store,
    *,
    party: str | None = None,
    iscc_id: str | None = None,
    state: str | None = None,
    limit: int = 100,
    offset: int = 0,
    now: int | None = None,
) -> list[dict[str, Any]]:
    """Cases of a party, of a work (either side of its conflict), in a state, or all; newest
    first, without their steps (get_case has them). Expires what is due first."""
    if limit < 1 or offset < 0:
        raise InputError("limit must be at least 1 and offset at least 0")
    if state is not None and state not in STATES:
        raise InputError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    query = select(cases).order_by(cases.c.opened_at.desc(), cases.c.id).limit(limit)
    query = query.offset(offset)
    if party is not None:
        if not is_address(party):
            raise InvalidCode(f"not an Ethereum address: {party!r}")
        query = query.where(
            cases.c.id.in_(
                select(case_parties.c.case_id).where(
                    case_parties.c.party == to_checksum_address(party)
                )
            )
        )
    if iscc_id is not None:
        canonical = str(IsccId.parse(iscc_id))
        query = query.where(
            cases.c.conflict_id.in_(
                select(licence_conflicts.c.id).where(
                    (licence_conflicts.c.iscc_id == canonical)
                    | (licence_conflicts.c.other_iscc_id == canonical)
                )
            )
        )
    if state is not None:
        query = query.where(cases.c.state == state)
    expire_due(store, now)
    with store._read() as conn:
        return [_case_dict(conn, row, with_events=False) for row in conn.execute(query)]
