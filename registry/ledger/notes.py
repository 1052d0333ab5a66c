"""Signed notes: usage reports and case responses as EIP-712 messages the service verifies.

They are not on-chain events. A usage report or a case response is a party's statement about
something found off chain (a use a platform made, a licence conflict the indexer detected); no
rule of the contract could check it, parties send many of them, and each would cost gas. So a
party signs one with its key and the service verifies and stores it: the signature proves who
said what as well as a transaction would, for free.

The EIP-712 domain is "IsccRegistryNotes" version "1" on the chain and LicenceRegistry contract
the service follows, so a note signed for one deployment is refused by another. Replay: a usage
report carries the reporter's nonce (the store keeps (reporter, nonce) unique); a case response
is keyed by its case and its EIP-712 digest (`SignedNote.digest`), never by the signature bytes,
which a third party can alter without the key (ECDSA's s and n - s both verify; `recover`
refuses the high-s form as OpenZeppelin's ECDSA does, and the digest does not change at all).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_keys.exceptions import BadSignature
from eth_utils import is_address, keccak, to_checksum_address
from eth_utils.exceptions import ValidationError

from registry.errors import InvalidNote, InvalidTerms, RegistryError
from registry.iscc.codec import code_from_bytes, code_to_bytes, multihash_to_digest
from registry.ledger.rules import Usage
from registry.ledger.terms import ALL_USES, COUNTRIES, Use, parse_time, parse_uses, use_names

__all__ = [
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "MAX_NOTE_BYTES",
    "Action",
    "CaseResponse",
    "Note",
    "NotesDomain",
    "SignedNote",
    "UsageReport",
    "sign",
    "typed_data",
]

DOMAIN_NAME = "IsccRegistryNotes"
DOMAIN_VERSION = "1"
MAX_NOTE_BYTES = 4096
"""Longest free-text note of a case response (UTF-8 bytes)."""
MAX_CODE_BYTES = 64
"""Longest ISCC-CODE in a usage report (a full code is at most 40 bytes today)."""
UINT64 = 2**64
UINT256 = 2**256
# secp256k1's order: a signature's s above half of it is the malleated twin of a valid one.
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

EIP712_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


@dataclass(frozen=True)
class NotesDomain:
    """The EIP-712 domain of notes: one chain and one LicenceRegistry contract."""

    chain_id: int
    verifying_contract: str

    def __post_init__(self) -> None:
        if not is_address(self.verifying_contract):
            raise InvalidNote(f"not a contract address: {self.verifying_contract!r}")
        object.__setattr__(self, "verifying_contract", to_checksum_address(self.verifying_contract))

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }


class Action(IntEnum):
    """What a party says about a case. Zero is no action, so an unset field never counts."""

    ACKNOWLEDGE = 1
    DISPUTE = 2
    RESOLVE = 3
    WITHDRAW = 4


def _address(name: str, value: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise InvalidNote(f"{name} is not an address: {value!r}")
    return to_checksum_address(value)


def _uint(name: str, value: int, bound: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < bound:
        raise InvalidNote(f"{name} must be an integer in 0..{bound - 1}, not {value!r}")
    return value


@dataclass(frozen=True)
class UsageReport:
    """A platform's statement that it used a file: which (ISCC-CODE and datahash), where,
    which use, when."""

    TYPE: ClassVar[str] = "UsageReport"
    FIELDS: ClassVar[list[dict[str, str]]] = [
        {"name": "reporter", "type": "address"},
        {"name": "isccCode", "type": "bytes"},
        {"name": "datahash", "type": "bytes32"},
        {"name": "territory", "type": "bytes2"},
        {"name": "use", "type": "uint32"},
        {"name": "usedAt", "type": "uint64"},
        {"name": "nonce", "type": "uint256"},
    ]

    reporter: str
    iscc_code: bytes
    datahash: bytes
    territory: str
    use: Use
    used_at: int
    nonce: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "reporter", _address("reporter", self.reporter))
        if not self.iscc_code or len(self.iscc_code) > MAX_CODE_BYTES:
            raise InvalidNote(f"the ISCC-CODE must be 1..{MAX_CODE_BYTES} bytes")
        if len(self.datahash) != 32:
            raise InvalidNote("the datahash must be 32 bytes")
        if not isinstance(self.territory, str) or self.territory.upper() not in COUNTRIES:
            raise InvalidNote(f"unknown territory {self.territory!r}: use an ISO 3166-1 code")
        object.__setattr__(self, "territory", self.territory.upper())
        use = _uint("use", int(self.use), 2**32)
        if not use or use & ~int(ALL_USES):
            raise InvalidNote(f"use {use:#x} is not in the vocabulary")
        object.__setattr__(self, "use", Use(use))
        _uint("usedAt", self.used_at, UINT64)
        _uint("nonce", self.nonce, UINT256)

    @classmethod
    def create(
        cls,
        reporter: str,
        iscc: str,
        datahash: str,
        territory: str,
        use: str | Use,
        used_at: str | int,
        nonce: int,
    ) -> UsageReport:
        """From what users type: "ISCC:...", a datahash as multihash ("1e20...") or 0x hex,
        "DE", "svod", a date or unix seconds."""
        try:
            code = code_to_bytes(iscc)
            digest = (
                bytes.fromhex(datahash[2:])
                if datahash.startswith("0x")
                else multihash_to_digest(datahash)
            )
            uses = parse_uses(use) if isinstance(use, str) else use
            moment = parse_time(used_at)
        except InvalidTerms as exc:
            raise InvalidNote(str(exc)) from None
        except (RegistryError, ValueError) as exc:
            raise InvalidNote(f"malformed usage report: {exc}") from None
        return cls(reporter, code, digest, territory, uses, moment, nonce)

    @property
    def signer(self) -> str:
        return self.reporter

    @property
    def iscc(self) -> str:
        return code_from_bytes(self.iscc_code)

    def message(self) -> dict[str, Any]:
        return {
            "reporter": self.reporter,
            "isccCode": self.iscc_code,
            "datahash": self.datahash,
            "territory": self.territory.encode("ascii"),
            "use": int(self.use),
            "usedAt": self.used_at,
            "nonce": self.nonce,
        }

    def usage(self, iscc_id: str | None = None) -> Usage:
        """The use for the rules (registry.ledger.rules.covers), matched to work `iscc_id`."""
        return Usage(self.territory, self.use, self.used_at, user=self.reporter, iscc_id=iscc_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "reporter": self.reporter,
            "iscc_code": self.iscc,
            "datahash": "0x" + self.datahash.hex(),
            "territory": self.territory,
            "uses": use_names(self.use),
            "used_at": self.used_at,
            "nonce": str(self.nonce),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UsageReport:
        return cls.create(
            data["reporter"],
            data["iscc_code"],
            data["datahash"],
            data["territory"],
            ",".join(data["uses"]),
            int(data["used_at"]),
            int(data["nonce"]),
        )


@dataclass(frozen=True)
class CaseResponse:
    """A party's answer to a licence case: acknowledge, dispute, resolve or withdraw, with a
    note."""

    TYPE: ClassVar[str] = "CaseResponse"
    FIELDS: ClassVar[list[dict[str, str]]] = [
        {"name": "party", "type": "address"},
        {"name": "caseId", "type": "bytes32"},
        {"name": "action", "type": "uint8"},
        {"name": "note", "type": "string"},
        {"name": "signedAt", "type": "uint64"},
    ]

    party: str
    case_id: bytes
    action: Action
    note: str
    signed_at: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "party", _address("party", self.party))
        if not isinstance(self.case_id, bytes) or len(self.case_id) != 32:
            raise InvalidNote("the case id must be 32 bytes")
        try:
            object.__setattr__(self, "action", Action(self.action))
        except ValueError:
            allowed = ", ".join(a.name.lower() for a in Action)
            raise InvalidNote(f"unknown action {self.action!r}; allowed: {allowed}") from None
        if len(self.note.encode()) > MAX_NOTE_BYTES:
            raise InvalidNote(f"the note is longer than {MAX_NOTE_BYTES} bytes")
        _uint("signedAt", self.signed_at, UINT64)

    @classmethod
    def create(
        cls, party: str, case_id: str, action: str | Action, note: str, signed_at: int
    ) -> CaseResponse:
        """From what users type: the case id as 0x hex, the action by name."""
        text = case_id.lower().removeprefix("0x")
        if len(text) != 64:
            raise InvalidNote(f"a case id is 32 bytes as 0x hex, not {case_id!r}")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise InvalidNote(f"a case id is 32 bytes as 0x hex, not {case_id!r}") from None
        if isinstance(action, str):
            name = action.strip().upper()
            if name not in Action.__members__:
                allowed = ", ".join(a.name.lower() for a in Action)
                raise InvalidNote(f"unknown action {action!r}; allowed: {allowed}")
            action = Action[name]
        return cls(party, raw, action, note, signed_at)

    @property
    def signer(self) -> str:
        return self.party

    def message(self) -> dict[str, Any]:
        return {
            "party": self.party,
            "caseId": self.case_id,
            "action": int(self.action),
            "note": self.note,
            "signedAt": self.signed_at,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "party": self.party,
            "case_id": "0x" + self.case_id.hex(),
            "action": self.action.name.lower(),
            "note": self.note,
            "signed_at": self.signed_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaseResponse:
        return cls.create(
            data["party"], data["case_id"], data["action"], data["note"], int(data["signed_at"])
        )


Note = UsageReport | CaseResponse
KINDS: dict[str, type[UsageReport] | type[CaseResponse]] = {
    UsageReport.TYPE: UsageReport,
    CaseResponse.TYPE: CaseResponse,
}


def _signable(note: Note, domain: NotesDomain) -> SignableMessage:
    return encode_typed_data(
        domain_data=domain.as_dict(),
        message_types={note.TYPE: note.FIELDS},
        message_data=note.message(),
    )


def typed_data(note: Note, domain: NotesDomain) -> dict[str, Any]:
    """The note as `eth_signTypedData_v4` takes it: bytes as 0x hex, integers as decimal
    strings (a uint256 nonce exceeds a JavaScript number). Same types and message as what
    `SignedNote.recover` checks."""
    message = {
        key: "0x" + value.hex()
        if isinstance(value, bytes)
        else str(value)
        if isinstance(value, int)
        else value
        for key, value in note.message().items()
    }
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, note.TYPE: note.FIELDS},
        "primaryType": note.TYPE,
        "domain": domain.as_dict(),
        "message": message,
    }


WalletCheck = Callable[[str, bytes, bytes], "bool | None"]
"""(account, digest, signature) -> None when the account is a key, else whether the wallet
accepts the signature (registry.chain.wallets.wallet_accepts on the service's node)."""


@dataclass(frozen=True)
class SignedNote:
    """A note with its signer's signature, for the domain it was signed in."""

    note: Note
    signature: bytes
    domain: NotesDomain

    @property
    def signer(self) -> str:
        return self.note.signer

    @property
    def kind(self) -> str:
        return self.note.TYPE

    def digest(self) -> bytes:
        """The EIP-712 digest signed: the replay key of a case response (with its case)."""
        s = _signable(self.note, self.domain)
        return keccak(b"\x19" + s.version + s.header + s.body)

    def recover(self) -> str:
        """The address whose key made the signature; raises InvalidNote if it is malformed."""
        if len(self.signature) != 65:
            raise InvalidNote(f"a signature is 65 bytes, not {len(self.signature)}")
        if int.from_bytes(self.signature[32:64], "big") > _SECP256K1_N // 2:
            raise InvalidNote("malleable signature (high s) refused")
        try:
            return Account.recover_message(
                _signable(self.note, self.domain), signature=self.signature
            )
        # eth-keys raises its own BadSignature (no ValueError) for a signature that matches no
        # key at all, e.g. all zeros.
        except (ValueError, TypeError, ValidationError, BadSignature) as exc:
            raise InvalidNote(f"malformed signature: {exc}") from None

    def verify(self, expected: NotesDomain, wallet: WalletCheck | None = None) -> None:
        """Raise InvalidNote unless this note was signed for `expected` (this service's chain
        and LicenceRegistry) by the party it names.

        A key's (EOA's) signature is checked offline. When it does not recover to the party,
        `wallet` (the service's node) asks the party whether it is a smart wallet that
        accepts the signature over the note's EIP-712 digest (ERC-1271); without `wallet`
        only keys can sign.
        """
        if self.domain != expected:
            raise InvalidNote(
                f"the note is signed for chain {self.domain.chain_id} contract "
                f"{self.domain.verifying_contract}; this registry is chain {expected.chain_id} "
                f"contract {expected.verifying_contract}"
            )
        try:
            signer = self.recover()
            if signer == self.signer:
                return
            problem = InvalidNote(f"the signature is by {signer}, not by {self.signer}")
        except InvalidNote as exc:  # a wallet's signature need not be 65 bytes
            problem = exc
        # ChainUnavailable passes: whether the party is a wallet is unknown, not the client's
        # fault (a 503 to retry).
        accepts = None if wallet is None else wallet(self.signer, self.digest(), self.signature)
        if accepts is None:
            raise problem
        if not accepts:
            raise InvalidNote(f"the wallet {self.signer} does not accept the signature (ERC-1271)")

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "note": self.note.to_json(),
            "signature": "0x" + self.signature.hex(),
            "domain": self.domain.as_dict(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> SignedNote:
        """Raises InvalidNote for anything malformed (the API answers it with a 4xx)."""
        try:
            obj = json.loads(data) if isinstance(data, str) else data
            kind = KINDS.get(obj["type"])
            if kind is None:
                raise InvalidNote(f"unknown note type {obj['type']!r}; allowed: {', '.join(KINDS)}")
            dom = obj["domain"]
            if (dom["name"], dom["version"]) != (DOMAIN_NAME, DOMAIN_VERSION):
                raise InvalidNote(f"not an {DOMAIN_NAME} v{DOMAIN_VERSION} note")
            signature = obj["signature"]
            if not isinstance(signature, str) or not signature.startswith("0x"):
                raise InvalidNote("the signature must be 0x hex")
            return cls(
                note=kind.from_json(obj["note"]),
                signature=bytes.fromhex(signature[2:]),
                domain=NotesDomain(int(dom["chainId"]), dom["verifyingContract"]),
            )
        except InvalidNote:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidNote(f"malformed signed note: {exc!r}") from None


def sign(note: Note, domain: NotesDomain, account: LocalAccount) -> SignedNote:
    """Sign `note` with `account`'s key (the signer named in the note is kept as it is)."""
    signed = account.sign_message(_signable(note, domain))
    return SignedNote(note=note, signature=bytes(signed.signature), domain=domain)
