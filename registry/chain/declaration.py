"""A declaration as EIP-712 typed data: build, sign, verify offline, and serialise as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address
from eth_utils.exceptions import ValidationError

from registry.errors import InvalidDeclaration
from registry.iscc.codec import code_from_bytes, code_to_bytes, multihash_to_digest

DOMAIN_NAME = "IsccRegistry"
DOMAIN_VERSION = "1"
ZERO_HASH = bytes(32)

EIP712_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]

DECLARATION_TYPES = {
    "Declaration": [
        {"name": "isccCode", "type": "bytes"},
        {"name": "datahash", "type": "bytes32"},
        {"name": "metahash", "type": "bytes32"},
        {"name": "gateway", "type": "string"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}


@dataclass(frozen=True)
class Domain:
    """The EIP-712 domain: binds a signature to one chain and one registry contract."""

    chain_id: int
    verifying_contract: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.verifying_contract),
        }


@dataclass(frozen=True)
class Declaration:
    """What a declarer signs: the content's identity, where to find more, and replay guards."""

    iscc_code: bytes
    datahash: bytes
    metahash: bytes
    gateway: str
    nonce: int
    deadline: int

    def __post_init__(self) -> None:
        if len(self.datahash) != 32 or len(self.metahash) != 32:
            raise InvalidDeclaration("datahash and metahash must be 32 bytes each")
        if not 0 <= self.nonce < 2**256 or not 0 <= self.deadline < 2**256:
            raise InvalidDeclaration("nonce and deadline must be unsigned 256-bit integers")

    @classmethod
    def create(
        cls,
        iscc: str,
        datahash: str,
        metahash: str | None = None,
        gateway: str = "",
        *,
        nonce: int,
        deadline: int,
    ) -> Declaration:
        """From the strings `gen` prints: "ISCC:..." and multihash hex ("1e20...")."""
        return cls(
            iscc_code=code_to_bytes(iscc),
            datahash=multihash_to_digest(datahash),
            metahash=multihash_to_digest(metahash) if metahash else ZERO_HASH,
            gateway=gateway,
            nonce=nonce,
            deadline=deadline,
        )

    @property
    def iscc(self) -> str:
        return code_from_bytes(self.iscc_code)

    def message(self) -> dict[str, Any]:
        return {
            "isccCode": self.iscc_code,
            "datahash": self.datahash,
            "metahash": self.metahash,
            "gateway": self.gateway,
            "nonce": self.nonce,
            "deadline": self.deadline,
        }

    def as_tuple(self) -> tuple:
        """The struct as the contract's ABI takes it."""
        return tuple(self.message().values())

    def typed_data(self, domain: Domain) -> dict[str, Any]:
        """The whole EIP-712 message as JSON, the form a wallet's `eth_signTypedData_v4` takes:
        bytes as 0x hex and integers as decimal strings (a uint256 nonce exceeds what a
        JavaScript number holds). Built from the same types and message as `signable`, so what
        a wallet signs is what `verify` checks."""
        message = {
            key: "0x" + value.hex()
            if isinstance(value, bytes)
            else str(value)
            if isinstance(value, int)
            else value
            for key, value in self.message().items()
        }
        return {
            "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, **DECLARATION_TYPES},
            "primaryType": next(iter(DECLARATION_TYPES)),
            "domain": domain.as_dict(),
            "message": message,
        }

    def signable(self, domain: Domain):
        return encode_typed_data(
            domain_data=domain.as_dict(),
            message_types=DECLARATION_TYPES,
            message_data=self.message(),
        )


@dataclass(frozen=True)
class SignedDeclaration:
    """A declaration with its declarer's signature: verifiable offline, submittable by anyone."""

    declaration: Declaration
    declarer: str
    signature: bytes
    domain: Domain

    def recover(self) -> str:
        """The EOA that signed, or raise InvalidDeclaration if the signature is malformed."""
        try:
            return Account.recover_message(
                self.declaration.signable(self.domain), signature=self.signature
            )
        except (ValueError, TypeError, ValidationError) as exc:
            raise InvalidDeclaration(f"malformed signature: {exc}") from None

    def verify(self) -> None:
        """Raise InvalidDeclaration unless the declarer's key signed exactly this declaration.

        Offline check for EOAs; smart-wallet (ERC-1271) signatures can only be checked on chain.
        """
        signer = self.recover()
        if signer != to_checksum_address(self.declarer):
            raise InvalidDeclaration(
                f"signature is by {signer}, not by the declarer {self.declarer}"
            )

    def to_json(self) -> dict[str, Any]:
        d = self.declaration
        return {
            "declaration": {
                "iscc_code": d.iscc,
                "datahash": "0x" + d.datahash.hex(),
                "metahash": "0x" + d.metahash.hex(),
                "gateway": d.gateway,
                "nonce": str(d.nonce),
                "deadline": d.deadline,
            },
            "declarer": to_checksum_address(self.declarer),
            "signature": "0x" + self.signature.hex(),
            "domain": self.domain.as_dict(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> SignedDeclaration:
        try:
            obj = json.loads(data) if isinstance(data, str) else data
            d, dom = obj["declaration"], obj["domain"]
            if (dom["name"], dom["version"]) != (DOMAIN_NAME, DOMAIN_VERSION):
                raise InvalidDeclaration(f"not an {DOMAIN_NAME} v{DOMAIN_VERSION} declaration")
            if not is_address(obj["declarer"]):
                raise InvalidDeclaration(f"declarer is not an address: {obj['declarer']!r}")
            declaration = Declaration.create(
                d["iscc_code"],
                d["datahash"],
                d["metahash"],
                d["gateway"],
                nonce=int(d["nonce"]),
                deadline=int(d["deadline"]),
            )
            return cls(
                declaration=declaration,
                declarer=to_checksum_address(obj["declarer"]),
                signature=bytes.fromhex(obj["signature"].removeprefix("0x")),
                domain=Domain(int(dom["chainId"]), to_checksum_address(dom["verifyingContract"])),
            )
        except InvalidDeclaration:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidDeclaration(f"malformed signed declaration: {exc!r}") from None


def sign(declaration: Declaration, domain: Domain, account: LocalAccount) -> SignedDeclaration:
    signed = account.sign_message(declaration.signable(domain))
    return SignedDeclaration(
        declaration=declaration,
        declarer=account.address,
        signature=bytes(signed.signature),
        domain=domain,
    )
