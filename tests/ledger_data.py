"""Licence ledger rows for interface tests (API, CLI, pages, notifications): grants written
through the store's own event path, and a licence conflict with its case opened by the cases
module, so the interfaces read exactly what the indexer would have written."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_utils import keccak, to_checksum_address
from index_helpers import FULL_ABI, content, make_log
from sqlalchemy import insert

from registry.chain.events import DeclaredEvent
from registry.chain.iscc_id import IsccId
from registry.chain.licence_events import GrantedEvent, TerminatedEvent
from registry.index.events import EventDecoder
from registry.ledger import cases
from registry.ledger.terms import Use
from registry.store.licences import apply_licence_events
from registry.store.schema import licence_conflicts
from registry.store.store import Store

CHAIN = 31337
CONTRACT = "0x" + "12" * 20
# Real keys, so tests can sign notes as each party.
KEYS = {name: Account.from_key(keccak(text=name)) for name in ("grantor", "rival", "licensee")}
KEYS["stranger"] = Account.from_key(keccak(text="stranger"))
GRANTOR = KEYS["grantor"].address
RIVAL = KEYS["rival"].address
LICENSEE = KEYS["licensee"].address
STRANGER = KEYS["stranger"].address
LICENCES = to_checksum_address("0x" + "1c" * 20)
"""The LicenceRegistry address of the tests' notes domain."""
WORK = str(IsccId((1_700_000_000_000_000 << 12) | 7, 0))
OTHER_WORK = str(IsccId((1_700_000_100_000_000 << 12) | 7, 0))
JAN_2025 = 1_735_689_600
JAN_2030 = 1_893_456_000


def grant_id(grantor: str, nonce: int) -> str:
    return "0x" + keccak(bytes.fromhex(grantor[2:]).rjust(32, b"\0") + nonce.to_bytes(32)).hex()


def granted(
    grantor: str,
    nonce: int,
    *,
    work: str = WORK,
    licensee: str | None = None,
    territories: tuple[str, ...] = ("AT", "DE"),
    worldwide: bool = False,
    uses: int = int(Use.SVOD),
    start: int = JAN_2025,
    end: int = JAN_2030,
    exclusive: bool = False,
    sublicensable: bool = False,
    block: int = 10,
) -> GrantedEvent:
    return GrantedEvent(
        block,
        hashlib.sha256(f"block {block}".encode()).digest(),
        hashlib.sha256(f"tx {grantor} {nonce}".encode()).digest(),
        nonce % 100,
        JAN_2025 - 86_400,
        grant_id=grant_id(grantor, nonce),
        iscc_id=IsccId.parse(work),
        grantor=grantor,
        licensee=licensee,
        parent=None,
        territories=territories,
        worldwide=worldwide,
        uses=uses,
        conditions=1,
        start=start,
        end=end,
        exclusive=exclusive,
        sublicensable=sublicensable,
        terms_url="https://example.org/terms",
        terms_hash="0x" + "ee" * 32,
        nonce=nonce,
    )


def terminated(grant: GrantedEvent, by: str, block: int = 20) -> TerminatedEvent:
    return TerminatedEvent(
        block,
        hashlib.sha256(f"block {block}".encode()).digest(),
        hashlib.sha256(f"end {grant.grant_id}".encode()).digest(),
        0,
        JAN_2025 + 86_400,
        grant_id=grant.grant_id,
        by=by,
    )


def store_events(store: Store, *events: Any) -> None:
    with store._write() as conn:
        apply_licence_events(conn, CHAIN, CONTRACT, list(events))


@dataclass(frozen=True)
class Ledger:
    exclusive: GrantedEvent
    rival: GrantedEvent
    case_id: str
    conflict_id: int


def exclusive_clash(store: Store, now: int | None = None) -> Ledger:
    """An exclusive SVOD licence in DE and AT for 2025 to 2029 to LICENSEE by GRANTOR, a public
    worldwide SVOD and AVOD licence by RIVAL, and the exclusive_overlap conflict between them
    with its case (parties: both grantors and the licensee), opened `now` (default: now)."""
    now = int(time.time()) if now is None else now
    exclusive = granted(GRANTOR, 1, licensee=LICENSEE, exclusive=True, sublicensable=True)
    rival = granted(
        RIVAL, 2, territories=(), worldwide=True, uses=int(Use.SVOD | Use.AVOD), end=0, block=11
    )
    store_events(store, exclusive, rival)
    overlap = {
        "territories": {"worldwide": False, "codes": ["AT", "DE"]},
        "uses": ["svod"],
        "period": {"start": JAN_2025, "end": JAN_2030},
        "text": "SVOD in AT, DE, 2025-01-01 to 2030-01-01",
    }
    with store._write() as conn:
        conflict_id = conn.execute(
            insert(licence_conflicts)
            .values(
                chain_id=CHAIN,
                contract=CONTRACT,
                kind="exclusive_overlap",
                key=f"exclusive_overlap|{exclusive.grant_id}|{rival.grant_id}",
                grant_id=exclusive.grant_id,
                other_grant_id=rival.grant_id,
                iscc_id=WORK,
                other_iscc_id=WORK,
                overlap=json.dumps(overlap),
                evidence=json.dumps({"exclusive": exclusive.grant_id}),
                ends_at=JAN_2030,
                found_block=11,
                found_at=now,
            )
            .returning(licence_conflicts.c.id)
        ).scalar_one()
        case_id = cases.open_case(
            conn,
            chain_id=CHAIN,
            contract=CONTRACT,
            conflict_id=conflict_id,
            kind="exclusive_overlap",
            parties=[(GRANTOR, "grantor"), (RIVAL, "grantor"), (LICENSEE, "licensee")],
            now=now,
        )
    return Ledger(exclusive, rival, case_id, int(conflict_id))


def declare_work(store: Store, data: bytes, declarer: str, block: int = 1) -> tuple[str, dict]:
    """A declaration of `data` by `declarer` applied to the store as the indexer applies it;
    returns its ISCC-ID and the content (ISCC-CODE, datahash)."""
    item = content(data)
    log = make_log(
        item["raw"],
        item["digest"],
        iscc_id_body=(1_700_000_000_000_000 + block * 1000) << 12,
        declarer=declarer,
        block_number=block,
        log_index=0,
    )
    event = EventDecoder(0, FULL_ABI).decode(log)
    assert isinstance(event, DeclaredEvent)
    parent = store.checkpoint_block(CHAIN, CONTRACT)
    store.apply(CHAIN, CONTRACT, [event], parent, block, event.block_hash)
    return str(event.iscc_id), item
