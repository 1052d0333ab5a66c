"""Licence grants and terminations as EIP-712 typed data: build, sign, verify offline, and put
on the licence ledger (contracts/LicenceRegistry.sol), directly, signed and relayed, or in
batches.

The values here are the contract's raw ones (territories as ASCII bytes, uses and conditions as
bitmasks, times in unix seconds); registry.ledger.terms gives them meaning. The grantor is a
field of what is signed, and the domain binds a signature to one chain and one ledger
contract, so a signature grants exactly one thing in exactly one place. The events the ledger
emits are in registry.chain.licence_events (re-exported here).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, keccak, to_checksum_address
from eth_utils.exceptions import ValidationError
from web3.logs import DISCARD

from registry.chain.artifact import LICENCES_NAME
from registry.chain.contract import Registry, decode_revert, rejections
from registry.chain.iscc_id import IsccId
from registry.chain.licence_events import (
    GRANTED,
    TERMINATED,
    GrantedEvent,
    LicenceEvent,
    TerminatedEvent,
)
from registry.errors import InvalidGrant

__all__ = [
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "GRANTED",
    "MAX_TERMS_URL_LENGTH",
    "MAX_TERRITORIES",
    "TERMINATED",
    "GrantReceipt",
    "GrantRequest",
    "GrantResult",
    "GrantedEvent",
    "LicenceDomain",
    "LicenceEvent",
    "SignedGrant",
    "SignedTermination",
    "TerminatedEvent",
    "Termination",
    "TerminationReceipt",
    "grant_direct",
    "grant_id_of",
    "grant_outcomes",
    "licence_domain",
    "prepare_grant",
    "prepare_termination",
    "random_nonce",
    "relay_grants",
    "sign_grant",
    "sign_termination",
    "submit_grant",
    "submit_termination",
    "terminate_direct",
]

DOMAIN_NAME = "LicenceRegistry"
DOMAIN_VERSION = "1"
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_HASH = bytes(32)
# The contract's limits (LicenceRegistry.MAX_TERMS_URL_LENGTH, MAX_TERRITORIES): checked here
# too, so a malformed grant is refused before anyone signs or pays for it.
MAX_TERMS_URL_LENGTH = 2048
MAX_TERRITORIES = 250
_CONDITION_BITS = 0x07
# The contract's fixed stipend for a smart wallet's isValidSignature (WALLET_CHECK_GAS).
WALLET_CHECK_GAS = 100_000
DEFAULT_VALIDITY_S = 3600
# Osaka (EIP-7825) caps one transaction at 2**24 gas; batches stay well below.
TX_GAS_CAP = 2**24
DEFAULT_BATCH_GAS = int(TX_GAS_CAP * 0.9)
_UINT64 = 2**64
_UINT256 = 2**256

EIP712_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
GRANT_FIELDS = (
    ("isccId", "uint64"),
    ("grantor", "address"),
    ("licensee", "address"),
    ("parent", "bytes32"),
    ("territories", "bytes"),
    ("worldwide", "bool"),
    ("uses", "uint32"),
    ("conditions", "uint8"),
    ("start", "uint64"),
    ("end", "uint64"),
    ("exclusive", "bool"),
    ("sublicensable", "bool"),
    ("termsUrl", "string"),
    ("termsHash", "bytes32"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)
TERMINATION_FIELDS = (("grantId", "bytes32"), ("by", "address"), ("deadline", "uint256"))
GRANT_TYPES = {"Grant": [{"name": n, "type": t} for n, t in GRANT_FIELDS]}
TERMINATION_TYPES = {"Termination": [{"name": n, "type": t} for n, t in TERMINATION_FIELDS]}


@dataclass(frozen=True)
class LicenceDomain:
    """The EIP-712 domain of a licence ledger: one chain, one LicenceRegistry contract."""

    chain_id: int
    verifying_contract: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.verifying_contract),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LicenceDomain:
        if (data["name"], data["version"]) != (DOMAIN_NAME, DOMAIN_VERSION):
            raise InvalidGrant(f"not signed for a {DOMAIN_NAME} v{DOMAIN_VERSION} ledger")
        return cls(int(data["chainId"]), to_checksum_address(data["verifyingContract"]))


def grant_id_of(grantor: str, nonce: int) -> str:
    """A grant's id, keccak256(abi.encode(grantor, nonce)), as 0x hex: known before the grant
    is mined (a sublicence can name its parent at once) and the same on any fork."""
    return "0x" + keccak(abi_encode(["address", "uint256"], [grantor, nonce])).hex()


def random_nonce() -> int:
    """A fresh grant nonce. The ledger's nonces are unordered and a grant spends no bitmap
    word, so a random one costs no more than a counted one and needs no chain lookup (and two
    processes signing for one grantor never pick the same)."""
    return secrets.randbits(128)


def _uint(name: str, value: int, limit: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < limit:
        raise InvalidGrant(f"{name} must be an integer in 0..{limit - 1}, not {value!r}")


@dataclass(frozen=True)
class GrantRequest:
    """What a grantor signs: the contract's `Grant` struct, field for field, raw."""

    iscc_id: int
    grantor: str
    licensee: str
    parent: bytes
    territories: bytes
    worldwide: bool
    uses: int
    conditions: int
    start: int
    end: int
    exclusive: bool
    sublicensable: bool
    terms_url: str
    terms_hash: bytes
    nonce: int
    deadline: int

    def __post_init__(self) -> None:
        for name in ("grantor", "licensee"):
            if not is_address(getattr(self, name)):
                raise InvalidGrant(f"{name} is not an address: {getattr(self, name)!r}")
            object.__setattr__(self, name, to_checksum_address(getattr(self, name)))
        if len(self.parent) != 32 or len(self.terms_hash) != 32:
            raise InvalidGrant("parent and terms hash must be 32 bytes each")
        _uint("isccId", self.iscc_id, _UINT64)
        _uint("uses", self.uses, 2**32)
        _uint("conditions", self.conditions, 2**8)
        _uint("start", self.start, _UINT64)
        _uint("end", self.end, _UINT64)
        _uint("nonce", self.nonce, _UINT256)
        _uint("deadline", self.deadline, _UINT256)
        if not isinstance(self.terms_url, str):
            raise InvalidGrant("the terms URL must be text")
        problem = self.problem()
        if problem is not None:
            raise InvalidGrant(problem)

    def problem(self) -> str | None:
        """Why the contract would refuse this grant's form (the custom error it would name,
        and in words), or None; the parent's existence and the nonce are the chain's to tell."""
        if self.iscc_id == 0:
            return "InvalidIsccId: the ISCC-ID is zero"
        if self.uses == 0:
            return "NoUses: a grant must allow at least one use"
        if self.conditions & ~_CONDITION_BITS:
            return f"InvalidConditions: unknown condition bits 0x{self.conditions:x}"
        codes = self.territories
        if len(codes) % 2 or len(codes) > 2 * MAX_TERRITORIES:
            return (
                f"InvalidTerritories: {len(codes)} bytes is not 2 bytes per code for at most "
                f"{MAX_TERRITORIES} codes"
            )
        pairs = [codes[i : i + 2] for i in range(0, len(codes), 2)]
        for i, pair in enumerate(pairs):
            if not all(0x41 <= b <= 0x5A for b in pair) or (i and pair <= pairs[i - 1]):
                return (
                    f"InvalidTerritories: code {i} ({pair!r}) is not an upper-case A-Z pair "
                    "after the one before it (codes are sorted and unique)"
                )
        if not self.worldwide and not codes:
            return "NoTerritory: name at least one territory, or the world"
        if self.end and self.end <= self.start:
            return f"InvalidPeriod: the end {self.end} is not after the start {self.start}"
        if len(self.terms_url.encode()) > MAX_TERMS_URL_LENGTH:
            return f"TermsUrlTooLong: the terms URL is over {MAX_TERMS_URL_LENGTH} bytes"
        return None

    @classmethod
    def from_struct(
        cls, fields: dict[str, Any], *, iscc_id: int, grantor: str, nonce: int, deadline: int
    ) -> GrantRequest:
        """From the struct's terms by their Solidity names (what
        registry.ledger.terms.GrantTerms.to_raw gives) and the fields a grant adds."""
        try:
            return cls(
                iscc_id=iscc_id,
                grantor=grantor,
                licensee=fields["licensee"],
                parent=bytes(fields["parent"]),
                territories=bytes(fields["territories"]),
                worldwide=bool(fields["worldwide"]),
                uses=int(fields["uses"]),
                conditions=int(fields["conditions"]),
                start=int(fields["start"]),
                end=int(fields["end"]),
                exclusive=bool(fields["exclusive"]),
                sublicensable=bool(fields["sublicensable"]),
                terms_url=fields["termsUrl"],
                terms_hash=bytes(fields["termsHash"]),
                nonce=nonce,
                deadline=deadline,
            )
        except KeyError as exc:
            raise InvalidGrant(f"a grant needs the field {exc.args[0]}") from None

    @property
    def grant_id(self) -> str:
        return grant_id_of(self.grantor, self.nonce)

    def message(self) -> dict[str, Any]:
        return {
            "isccId": self.iscc_id,
            "grantor": self.grantor,
            "licensee": self.licensee,
            "parent": self.parent,
            "territories": self.territories,
            "worldwide": self.worldwide,
            "uses": self.uses,
            "conditions": self.conditions,
            "start": self.start,
            "end": self.end,
            "exclusive": self.exclusive,
            "sublicensable": self.sublicensable,
            "termsUrl": self.terms_url,
            "termsHash": self.terms_hash,
            "nonce": self.nonce,
            "deadline": self.deadline,
        }

    def as_tuple(self) -> tuple:
        """The struct as the contract's ABI takes it."""
        return tuple(self.message().values())

    def signable(self, domain: LicenceDomain):
        return encode_typed_data(
            domain_data=domain.as_dict(), message_types=GRANT_TYPES, message_data=self.message()
        )

    def digest(self, domain: LicenceDomain) -> bytes:
        """The EIP-712 digest the contract computes (hashGrant)."""
        s = self.signable(domain)
        return keccak(b"\x19" + s.version + s.header + s.body)

    def to_json(self) -> dict[str, Any]:
        """JSON form: bytes as 0x hex, territories as text ("ATDE"), big integers as strings."""
        return {
            "iscc_id": str(self.iscc_id),
            "grantor": self.grantor,
            "licensee": self.licensee,
            "parent": "0x" + self.parent.hex(),
            "territories": self.territories.decode("ascii", "replace"),
            "worldwide": self.worldwide,
            "uses": self.uses,
            "conditions": self.conditions,
            "start": self.start,
            "end": self.end,
            "exclusive": self.exclusive,
            "sublicensable": self.sublicensable,
            "terms_url": self.terms_url,
            "terms_hash": "0x" + self.terms_hash.hex(),
            "nonce": str(self.nonce),
            "deadline": self.deadline,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GrantRequest:
        """Inverse of to_json; raises InvalidGrant on anything malformed."""
        try:
            territories = data["territories"]
            if not isinstance(territories, str) or not territories.isascii():
                raise InvalidGrant("territories must be ASCII text such as 'ATDE'")
            return cls(
                iscc_id=_id_body(data["iscc_id"]),
                grantor=data["grantor"],
                licensee=data.get("licensee") or ZERO_ADDRESS,
                parent=_hex32("parent", data.get("parent")),
                territories=territories.encode("ascii"),
                worldwide=_boolean("worldwide", data["worldwide"]),
                uses=_integer("uses", data["uses"]),
                conditions=_integer("conditions", data.get("conditions", 0)),
                start=_integer("start", data["start"]),
                end=_integer("end", data.get("end", 0)),
                exclusive=_boolean("exclusive", data.get("exclusive", False)),
                sublicensable=_boolean("sublicensable", data.get("sublicensable", False)),
                terms_url=_text("terms_url", data.get("terms_url", "")),
                terms_hash=_hex32("terms_hash", data.get("terms_hash")),
                nonce=_integer("nonce", data["nonce"]),
                deadline=_integer("deadline", data["deadline"]),
            )
        except InvalidGrant:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidGrant(f"malformed grant: {exc!r}") from None


def _id_body(value: Any) -> int:
    """An ISCC-ID as "ISCC:MAI..." or as its integer body (a number or decimal text)."""
    text = str(value)
    if text.upper().startswith(("ISCC:", "MAI")):
        return IsccId.parse(text).body
    return _integer("iscc_id", value)


def _integer(name: str, value: Any) -> int:
    # bool is an int in Python and "1e3" a float: neither is what a signer meant.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidGrant(f"{name} must be an integer, not {value!r}")
    if isinstance(value, str) and not value.isdigit():
        raise InvalidGrant(f"{name} must be a non-negative decimal integer, not {value!r}")
    return int(value)


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidGrant(f"{name} must be true or false, not {value!r}")
    return value


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidGrant(f"{name} must be text, not {value!r}")
    return value


def _hex32(name: str, value: Any) -> bytes:
    if value is None:
        return ZERO_HASH
    if not isinstance(value, str):
        raise InvalidGrant(f"{name} must be 32 bytes as 0x hex, not {value!r}")
    raw = bytes.fromhex(value.removeprefix("0x"))
    if len(raw) != 32:
        raise InvalidGrant(f"{name} must be 32 bytes, not {len(raw)}")
    return raw


@dataclass(frozen=True)
class Termination:
    """What a grantor or licensee signs to end a grant: which, who, until when."""

    grant_id: bytes
    by: str
    deadline: int

    def __post_init__(self) -> None:
        if len(self.grant_id) != 32:
            raise InvalidGrant("a grant id is 32 bytes")
        if not is_address(self.by):
            raise InvalidGrant(f"not an address: {self.by!r}")
        object.__setattr__(self, "by", to_checksum_address(self.by))
        _uint("deadline", self.deadline, _UINT256)

    def message(self) -> dict[str, Any]:
        return {"grantId": self.grant_id, "by": self.by, "deadline": self.deadline}

    def as_tuple(self) -> tuple:
        return (self.grant_id, self.by, self.deadline)

    def signable(self, domain: LicenceDomain):
        return encode_typed_data(
            domain_data=domain.as_dict(),
            message_types=TERMINATION_TYPES,
            message_data=self.message(),
        )

    def digest(self, domain: LicenceDomain) -> bytes:
        s = self.signable(domain)
        return keccak(b"\x19" + s.version + s.header + s.body)


def _recover(signable: Any, signature: bytes) -> str:
    try:
        return Account.recover_message(signable, signature=signature)
    except (ValueError, TypeError, ValidationError) as exc:
        raise InvalidGrant(f"malformed signature: {exc}") from None


@dataclass(frozen=True)
class SignedGrant:
    """A grant with its grantor's signature: verifiable offline, submittable by anyone."""

    request: GrantRequest
    signature: bytes
    domain: LicenceDomain

    @property
    def grantor(self) -> str:
        return self.request.grantor

    def recover(self) -> str:
        """The EOA that signed; InvalidGrant if the signature is malformed."""
        return _recover(self.request.signable(self.domain), self.signature)

    def verify(self) -> None:
        """Raise InvalidGrant unless the grantor's key signed exactly this grant (EOAs; a smart
        wallet's signature can only be checked on chain)."""
        signer = self.recover()
        if signer != self.grantor:
            raise InvalidGrant(f"signature is by {signer}, not by the grantor {self.grantor}")

    def to_json(self) -> dict[str, Any]:
        return {
            "grant": self.request.to_json(),
            "signature": "0x" + self.signature.hex(),
            "domain": self.domain.as_dict(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> SignedGrant:
        try:
            obj = json.loads(data) if isinstance(data, str) else data
            return cls(
                request=GrantRequest.from_json(obj["grant"]),
                signature=bytes.fromhex(_text("signature", obj["signature"]).removeprefix("0x")),
                domain=LicenceDomain.from_dict(obj["domain"]),
            )
        except InvalidGrant:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidGrant(f"malformed signed grant: {exc!r}") from None


@dataclass(frozen=True)
class SignedTermination:
    """A termination with the signature of its party (`by`): anyone may submit it."""

    termination: Termination
    signature: bytes
    domain: LicenceDomain

    def recover(self) -> str:
        return _recover(self.termination.signable(self.domain), self.signature)

    def verify(self) -> None:
        signer = self.recover()
        if signer != self.termination.by:
            raise InvalidGrant(f"signature is by {signer}, not by {self.termination.by}")

    def to_json(self) -> dict[str, Any]:
        t = self.termination
        return {
            "termination": {
                "grant_id": "0x" + t.grant_id.hex(),
                "by": t.by,
                "deadline": t.deadline,
            },
            "signature": "0x" + self.signature.hex(),
            "domain": self.domain.as_dict(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> SignedTermination:
        try:
            obj = json.loads(data) if isinstance(data, str) else data
            t = obj["termination"]
            return cls(
                termination=Termination(
                    grant_id=_hex32("grant_id", t["grant_id"]),
                    by=_text("by", t["by"]),
                    deadline=_integer("deadline", t["deadline"]),
                ),
                signature=bytes.fromhex(_text("signature", obj["signature"]).removeprefix("0x")),
                domain=LicenceDomain.from_dict(obj["domain"]),
            )
        except InvalidGrant:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidGrant(f"malformed signed termination: {exc!r}") from None


def sign_grant(request: GrantRequest, domain: LicenceDomain, account: LocalAccount) -> SignedGrant:
    """Sign with `account`'s key; the grantor named in `request` stays as it is (a smart
    wallet's owner signs for the wallet)."""
    signed = account.sign_message(request.signable(domain))
    return SignedGrant(request, bytes(signed.signature), domain)


def sign_termination(
    termination: Termination, domain: LicenceDomain, account: LocalAccount
) -> SignedTermination:
    signed = account.sign_message(termination.signable(domain))
    return SignedTermination(termination, bytes(signed.signature), domain)


# --- on chain -----------------------------------------------------------------------------------


def licence_domain(registry: Registry) -> LicenceDomain:
    return LicenceDomain(registry.deployment.chain_id, registry.licences.address)


def _deadline(registry: Registry, validity_s: int) -> int:
    """From the chain's clock, not ours: devnets and real chains drift from local time."""
    latest = registry.w3.eth.get_block("latest")["timestamp"]
    return max(int(latest), int(time.time())) + validity_s


def prepare_grant(
    registry: Registry,
    grantor: LocalAccount,
    iscc_id: IsccId | int,
    terms: dict[str, Any],
    *,
    nonce: int | None = None,
    validity_s: int = DEFAULT_VALIDITY_S,
    grantor_address: str | None = None,
) -> SignedGrant:
    """Build and sign a grant of `iscc_id` on these `terms` (the struct's terms by their
    Solidity names, as GrantTerms.to_raw gives them) for this ledger, with a fresh random nonce
    unless one is given; `grantor_address` names a smart wallet the key signs for."""
    body = iscc_id.body if isinstance(iscc_id, IsccId) else iscc_id
    request = GrantRequest.from_struct(
        terms,
        iscc_id=body,
        grantor=grantor_address or grantor.address,
        nonce=random_nonce() if nonce is None else nonce,
        deadline=_deadline(registry, validity_s),
    )
    return sign_grant(request, licence_domain(registry), grantor)


def prepare_termination(
    registry: Registry,
    account: LocalAccount,
    grant_id: str | bytes,
    *,
    validity_s: int = DEFAULT_VALIDITY_S,
    by: str | None = None,
) -> SignedTermination:
    raw = grant_id if isinstance(grant_id, bytes) else _hex32("grant id", grant_id)
    termination = Termination(raw, by or account.address, _deadline(registry, validity_s))
    return sign_termination(termination, licence_domain(registry), account)


@dataclass(frozen=True)
class GrantReceipt:
    """A grant the ledger recorded: its id and where."""

    grant_id: str
    iscc_id: IsccId
    grantor: str
    licensee: str | None
    tx_hash: str
    block_number: int
    gas_used: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "grant_id": self.grant_id,
            "iscc_id": str(self.iscc_id),
            "grantor": self.grantor,
            "licensee": self.licensee,
            "tx_hash": self.tx_hash,
            "block_number": self.block_number,
            "gas_used": self.gas_used,
        }


@dataclass(frozen=True)
class TerminationReceipt:
    grant_id: str
    by: str
    tx_hash: str
    block_number: int
    gas_used: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "grant_id": self.grant_id,
            "terminated_by": self.by,
            "tx_hash": self.tx_hash,
            "block_number": self.block_number,
            "gas_used": self.gas_used,
        }


def _check_domain(registry: Registry, domain: LicenceDomain, what: str) -> None:
    """Refuse, without spending gas, what was signed for another chain or ledger."""
    mine = licence_domain(registry)
    if domain != mine:
        raise InvalidGrant(
            f"the {what} was signed for chain {domain.chain_id} ledger "
            f"{domain.verifying_contract}, not for this one (chain {mine.chain_id} ledger "
            f"{mine.verifying_contract})"
        )


def _has_code(registry: Registry, address: str) -> bool:
    return bool(registry.w3.eth.get_code(to_checksum_address(address)))


def _transact(registry: Registry, call: Any, payer: LocalAccount, **kwargs: Any) -> dict:
    return registry.transact(call, payer, contract=LICENCES_NAME, **kwargs)


def grant_direct(registry: Registry, grantor: LocalAccount, request: GrantRequest) -> GrantReceipt:
    """The grantor sends the grant from its own account and pays; no signature (the deadline
    is ignored)."""
    if request.grantor != grantor.address:
        raise InvalidGrant(
            f"the grant names {request.grantor} as grantor; only that account can send it"
        )
    call = registry.licences.functions.grant(request.as_tuple())
    return _grant_receipt(registry, _transact(registry, call, grantor))


def submit_grant(registry: Registry, signed: SignedGrant, payer: LocalAccount) -> GrantReceipt:
    """Relay a signed grant: `payer` pays the gas, the named grantor grants.

    An EOA's signature is checked here first (a bad one costs nothing); a smart wallet's can
    only be checked on chain, and its transaction's gas limit leaves room for the wallet's
    whole stipend, so a wallet that turns expensive after the estimate fails alone."""
    _check_domain(registry, signed.domain, "grant")
    wallet = _has_code(registry, signed.grantor)
    if not wallet:
        signed.verify()
    call = registry.licences.functions.grantFor(signed.request.as_tuple(), signed.signature)
    limit = None
    if wallet:
        estimate = registry.estimate_gas(call, payer.address, contract=LICENCES_NAME)
        limit = estimate + WALLET_CHECK_GAS
    return _grant_receipt(registry, _transact(registry, call, payer, gas_limit=limit))


def terminate_direct(
    registry: Registry, account: LocalAccount, grant_id: str | bytes
) -> TerminationReceipt:
    """The grantor or licensee ends a grant from its own account and pays."""
    raw = grant_id if isinstance(grant_id, bytes) else _hex32("grant id", grant_id)
    call = registry.licences.functions.terminate(raw)
    return _termination_receipt(registry, _transact(registry, call, account))


def submit_termination(
    registry: Registry, signed: SignedTermination, payer: LocalAccount, tag: str | None = None
) -> TerminationReceipt:
    """Relay a signed termination; `payer` pays the gas. `tag` goes into the sender's journal
    with the transaction (see relay_grants)."""
    _check_domain(registry, signed.domain, "termination")
    wallet = _has_code(registry, signed.termination.by)
    if not wallet:
        signed.verify()
    call = registry.licences.functions.terminateFor(signed.termination.as_tuple(), signed.signature)
    limit = None
    if wallet:
        estimate = registry.estimate_gas(call, payer.address, contract=LICENCES_NAME)
        limit = estimate + WALLET_CHECK_GAS
    return _termination_receipt(registry, _transact(registry, call, payer, gas_limit=limit))


def _tx(receipt: dict) -> str:
    return "0x" + bytes(receipt["transactionHash"]).hex()


def _receipt_of_grant(registry: Registry, args: Any, receipt: dict) -> GrantReceipt:
    licensee = args["grant"]["licensee"]
    return GrantReceipt(
        grant_id="0x" + bytes(args["grantId"]).hex(),
        iscc_id=IsccId(int(args["isccId"]), registry.deployment.realm),
        grantor=args["grantor"],
        licensee=None if int(licensee, 16) == 0 else to_checksum_address(licensee),
        tx_hash=_tx(receipt),
        block_number=receipt["blockNumber"],
        gas_used=receipt["gasUsed"],
    )


def _grant_receipt(registry: Registry, receipt: dict) -> GrantReceipt:
    events = registry.licences.events.LicenceGranted().process_receipt(receipt, errors=DISCARD)
    if len(events) != 1:
        raise InvalidGrant(f"expected one LicenceGranted event, the receipt has {len(events)}")
    return _receipt_of_grant(registry, events[0]["args"], receipt)


def _termination_receipt(registry: Registry, receipt: dict) -> TerminationReceipt:
    events = registry.licences.events.LicenceTerminated().process_receipt(receipt, errors=DISCARD)
    if len(events) != 1:
        raise InvalidGrant(f"expected one LicenceTerminated event, the receipt has {len(events)}")
    args = events[0]["args"]
    return TerminationReceipt(
        grant_id="0x" + bytes(args["grantId"]).hex(),
        by=args["by"],
        tx_hash=_tx(receipt),
        block_number=receipt["blockNumber"],
        gas_used=receipt["gasUsed"],
    )


# --- batches ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantResult:
    """One batch entry's outcome: its receipt if granted, else the reason it was not."""

    signed: SignedGrant
    receipt: GrantReceipt | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.receipt is not None:
            return self.receipt.to_dict()
        return {
            "grant_id": self.signed.request.grant_id,
            "grantor": self.signed.grantor,
            "error": self.error,
        }


def _batch_call(registry: Registry, batch: Sequence[SignedGrant]) -> Any:
    return registry.licences.functions.grantBatch(
        [(s.request.as_tuple(), s.signature) for s in batch]
    )


def _reason(registry: Registry, signed: SignedGrant, payer: str) -> str:
    """Why an entry the batch simulation skipped fails, from a grantFor call of it alone."""
    call = registry.licences.functions.grantFor(signed.request.as_tuple(), signed.signature)
    try:
        with rejections("simulating an entry", registry.deployment.realm, contract=LICENCES_NAME):
            call.call({"from": to_checksum_address(payer)})
    except InvalidGrant as exc:
        return str(exc).split("rejects it: ")[-1]
    # Alone it passes: an earlier entry of the batch spent the same grantor's same nonce.
    r = signed.request
    return f"NonceAlreadyUsed(grantor={r.grantor}, nonce={r.nonce})"


def _gas_limit(registry: Registry, batch: Sequence[SignedGrant], payer: str) -> int:
    """The batch's estimate plus a full wallet stipend per smart-wallet entry: a wallet may
    answer cheaply while gas is estimated and burn its stipend in the real transaction."""
    estimate = registry.estimate_gas(_batch_call(registry, batch), payer, contract=LICENCES_NAME)
    wallets = {a: _has_code(registry, a) for a in {s.grantor for s in batch}}
    return estimate + WALLET_CHECK_GAS * sum(1 for s in batch if wallets[s.grantor])


def _chunks(
    registry: Registry, batch: Sequence[SignedGrant], payer: str, budget: int
) -> list[list[SignedGrant]]:
    """Consecutive chunks whose gas limit stays within `budget`, halved until they fit
    (entries differ in size and in wallet checks, so no constant count would do)."""
    if not batch:
        return []
    try:
        gas = _gas_limit(registry, batch, payer)
    except InvalidGrant:
        gas = budget + 1
    if gas <= budget:
        return [list(batch)]
    if len(batch) == 1:
        raise InvalidGrant(f"one grant needs {gas} gas, more than the budget {budget}")
    half = len(batch) // 2
    return _chunks(registry, batch[:half], payer, budget) + _chunks(
        registry, batch[half:], payer, budget
    )


def relay_grants(
    registry: Registry,
    batch: Sequence[SignedGrant],
    payer: LocalAccount,
    gas_budget: int = DEFAULT_BATCH_GAS,
    tags: Sequence[str] | None = None,
) -> list[GrantResult]:
    """Record all of `batch` with grantBatch in as few transactions as fit; one result per
    entry, in order. Entries signed for another ledger, EOA entries whose signature is not the
    grantor's, and entries the simulation rejects are reported without spending gas on them;
    the contract skips (GrantFailed) whatever still fails when mined, and the rest count.
    `tags` (one per entry) go into the sender's journal with each transaction, so a relayer
    restarted mid-flight knows whose grants it carried (`grant_outcomes`)."""
    domain = licence_domain(registry)
    results: dict[int, GrantResult] = {}
    pending: list[int] = []
    wallets = {a: _has_code(registry, a) for a in {s.grantor for s in batch}}
    for i, signed in enumerate(batch):
        if signed.domain != domain:
            results[i] = GrantResult(signed, error="signed for another chain or ledger")
            continue
        if not wallets[signed.grantor]:
            try:
                signed.verify()
            except InvalidGrant as exc:
                results[i] = GrantResult(signed, error=f"InvalidSignature: {exc}")
                continue
        pending.append(i)
    if pending:
        with rejections("simulating the batch", registry.deployment.realm, contract=LICENCES_NAME):
            ids = _batch_call(registry, [batch[i] for i in pending]).call({"from": payer.address})
        for i, grant_id in zip(list(pending), ids, strict=True):
            if bytes(grant_id) == ZERO_HASH:
                results[i] = GrantResult(batch[i], error=_reason(registry, batch[i], payer.address))
                pending.remove(i)
    position = 0
    for chunk in _chunks(registry, [batch[i] for i in pending], payer.address, gas_budget):
        indices = pending[position : position + len(chunk)]
        position += len(chunk)
        journal = {
            "kind": "grant",
            "entries": [
                {"tag": tags[i] if tags is not None else None, "grantor": batch[i].grantor}
                for i in indices
            ],
        }
        try:
            limit = min(_gas_limit(registry, chunk, payer.address), TX_GAS_CAP)
            call = _batch_call(registry, chunk)
            receipt = _transact(registry, call, payer, gas_limit=limit, payload=journal)
        except InvalidGrant as exc:
            for i in indices:
                results[i] = GrantResult(batch[i], error=str(exc))
            continue
        for i, outcome in zip(indices, grant_outcomes(registry, len(chunk), receipt), strict=True):
            if isinstance(outcome, str):
                results[i] = GrantResult(batch[i], error=outcome)
            else:
                results[i] = GrantResult(batch[i], receipt=outcome)
    return [results[i] for i in range(len(batch))]


def grant_outcomes(registry: Registry, entries: int, receipt: dict) -> list[GrantReceipt | str]:
    """Per entry of a mined grantBatch: its receipt, or the contract's reason for skipping it."""
    events = registry.licences.events
    failed = {
        e["args"]["index"]: decode_revert(
            e["args"]["reason"], registry.deployment.realm, LICENCES_NAME
        )
        for e in events.GrantFailed().process_receipt(receipt, errors=DISCARD)
    }
    granted = iter(events.LicenceGranted().process_receipt(receipt, errors=DISCARD))
    outcomes: list[GrantReceipt | str] = []
    for i in range(entries):
        if i in failed:
            outcomes.append(failed[i])
        else:
            # LicenceGranted events come in entry order, one per entry that did not fail.
            outcomes.append(_receipt_of_grant(registry, next(granted)["args"], receipt))
    return outcomes
