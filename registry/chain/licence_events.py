"""The LicenceRegistry's events (LicenceGranted, LicenceTerminated) as Python values.

The indexer decodes logs into these (registry.index.events) and the store writes rows from
them; values are the raw on-chain ones (uses and conditions as bitmasks, times in unix
seconds), their meaning is registry.ledger.terms'. Apart from registry.chain.licences so that
the indexer's log reader process imports neither web3 nor eth-account.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from eth_utils import to_checksum_address

from registry.chain.iscc_id import IsccId

__all__ = [
    "GRANTED",
    "LICENCE_EVENT_FIELDS",
    "TERMINATED",
    "GrantedEvent",
    "LicenceEvent",
    "TerminatedEvent",
    "territory_codes",
]

GRANTED = "LicenceGranted"
TERMINATED = "LicenceTerminated"
# The fields the indexer reads, by name (the Grant struct's fields arrive inside `grant`).
LICENCE_EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    GRANTED: ("grantId", "isccId", "grantor", "grant", "grantedAt"),
    TERMINATED: ("grantId", "by", "terminatedAt"),
}
_ZERO_HASH = bytes(32)


def territory_codes(raw: bytes) -> tuple[str, ...]:
    """The two-letter codes of a grant's `territories` bytes, in their order. The contract
    accepts only A-Z pairs; anything else (a foreign contract's log) decodes with replacement
    characters rather than failing."""
    text = raw.decode("ascii", "replace")
    return tuple(text[i : i + 2] for i in range(0, len(text) - 1, 2))


@dataclass(slots=True)
class _LogPosition:
    """Where a log sits on chain, and the block's time (unix seconds, from the event)."""

    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int
    block_time: int

    @property
    def key(self) -> tuple[bytes, int]:
        """Position of the log within its chain: unique, and the same on every replay."""
        return self.tx_hash, self.log_index


@dataclass(slots=True)
class GrantedEvent(_LogPosition):
    """A `LicenceGranted` log: one grant as its grantor signed it.

    `grant_id` and `parent` are 0x hex (parent None for a grant of its own); `licensee` is None
    for a public licence; `territories` are the codes licensed, or with `worldwide` the codes
    excluded; `end` 0 means no end; `terms_hash` (0x hex sha256) is None if none was given.
    """

    name: ClassVar[str] = GRANTED

    grant_id: str
    iscc_id: IsccId
    grantor: str
    licensee: str | None
    parent: str | None
    territories: tuple[str, ...]
    worldwide: bool
    uses: int
    conditions: int
    start: int
    end: int
    exclusive: bool
    sublicensable: bool
    terms_url: str
    terms_hash: str | None
    nonce: int

    @property
    def public(self) -> bool:
        return self.licensee is None

    def args(self) -> dict[str, Any]:
        """The event in JSON form, as a history payload keeps it."""
        return {
            "grantId": self.grant_id,
            "isccId": str(self.iscc_id),
            "grantor": self.grantor,
            "licensee": self.licensee,
            "parent": self.parent,
            "territories": list(self.territories),
            "worldwide": self.worldwide,
            "uses": self.uses,
            "conditions": self.conditions,
            "start": self.start,
            "end": self.end,
            "exclusive": self.exclusive,
            "sublicensable": self.sublicensable,
            "termsUrl": self.terms_url,
            "termsHash": self.terms_hash,
            "nonce": str(self.nonce),
            "grantedAt": self.block_time,
        }

    def payload(self) -> str:
        return json.dumps(self.args(), separators=(",", ":"))

    @classmethod
    def from_args(
        cls, position: tuple[int, bytes, bytes, int], args: dict[str, Any], realm: int
    ) -> GrantedEvent:
        """From a decoded log: `position` (block number, block hash, tx hash, log index) and
        the event's arguments by name, `grant` a tuple in the struct's field order."""
        (
            _iscc_id, _grantor, licensee, parent, territories, worldwide, uses, conditions,
            start, end, exclusive, sublicensable, terms_url, terms_hash, nonce, _deadline,
        ) = args["grant"]  # fmt: skip
        terms = bytes(terms_hash)
        parent_bytes = bytes(parent)
        return cls(
            *position,
            block_time=int(args["grantedAt"]),
            grant_id="0x" + bytes(args["grantId"]).hex(),
            iscc_id=IsccId(int(args["isccId"]), realm),
            grantor=to_checksum_address(args["grantor"]),
            licensee=None if int(licensee, 16) == 0 else to_checksum_address(licensee),
            parent=None if parent_bytes == _ZERO_HASH else "0x" + parent_bytes.hex(),
            territories=territory_codes(bytes(territories)),
            worldwide=bool(worldwide),
            uses=int(uses),
            conditions=int(conditions),
            start=int(start),
            end=int(end),
            exclusive=bool(exclusive),
            sublicensable=bool(sublicensable),
            terms_url=terms_url,
            terms_hash=None if terms == _ZERO_HASH else "0x" + terms.hex(),
            nonce=int(nonce),
        )


@dataclass(slots=True)
class TerminatedEvent(_LogPosition):
    """A `LicenceTerminated` log: the grant's grantor or licensee (`by`) ended it."""

    name: ClassVar[str] = TERMINATED

    grant_id: str
    by: str

    def args(self) -> dict[str, Any]:
        return {"grantId": self.grant_id, "by": self.by, "terminatedAt": self.block_time}

    def payload(self) -> str:
        return json.dumps(self.args(), separators=(",", ":"))

    @classmethod
    def from_args(
        cls, position: tuple[int, bytes, bytes, int], args: dict[str, Any]
    ) -> TerminatedEvent:
        return cls(
            *position,
            block_time=int(args["terminatedAt"]),
            grant_id="0x" + bytes(args["grantId"]).hex(),
            by=to_checksum_address(args["by"]),
        )


LicenceEvent = GrantedEvent | TerminatedEvent
