"""Owner actions on a declaration (revoke, update, transfer): sent by the owner, or signed, relayed.

The contract records who owns a signed declaration in the declarer's nonce lane (the "record"
handle is the nonce it was declared with, emitted in `Declared`); a direct or transferred
declaration is owned through a slot keyed by its ISCC-ID, where the handle is ignored. A signed
action names the declaration's action count (`actionsOf`) when it was signed: any accepted action
changes the count, so older signatures die with the state they were made for. See
docs/protocol.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address
from eth_utils.exceptions import ValidationError
from web3.logs import DISCARD

from registry.chain.contract import Registry, rejections
from registry.chain.declaration import DOMAIN_NAME, DOMAIN_VERSION, ZERO_HASH, Domain
from registry.chain.iscc_id import IsccId
from registry.chain.submit import default_deadline, domain_of
from registry.errors import InvalidDeclaration

_NO_RECORD = 0


@dataclass(frozen=True)
class Revocation:
    """The owner's consent to revoke a declaration."""

    iscc_id: int
    actions: int
    deadline: int

    PRIMARY = "Revocation"
    FIELDS = (("isccId", "uint64"), ("actions", "uint256"), ("deadline", "uint256"))

    def message(self) -> dict[str, Any]:
        return {"isccId": self.iscc_id, "actions": self.actions, "deadline": self.deadline}


@dataclass(frozen=True)
class Update:
    """The owner's consent to replace a declaration's metahash and gateway."""

    iscc_id: int
    metahash: bytes
    gateway: str
    actions: int
    deadline: int

    PRIMARY = "Update"
    FIELDS = (
        ("isccId", "uint64"),
        ("metahash", "bytes32"),
        ("gateway", "string"),
        ("actions", "uint256"),
        ("deadline", "uint256"),
    )

    def __post_init__(self) -> None:
        if len(self.metahash) != 32:
            raise InvalidDeclaration("metahash must be 32 bytes")

    def message(self) -> dict[str, Any]:
        return {
            "isccId": self.iscc_id,
            "metahash": self.metahash,
            "gateway": self.gateway,
            "actions": self.actions,
            "deadline": self.deadline,
        }


@dataclass(frozen=True)
class Transfer:
    """The owner's consent to hand a declaration to `to`."""

    iscc_id: int
    to: str
    actions: int
    deadline: int

    PRIMARY = "Transfer"
    FIELDS = (
        ("isccId", "uint64"),
        ("to", "address"),
        ("actions", "uint256"),
        ("deadline", "uint256"),
    )

    def __post_init__(self) -> None:
        if not is_address(self.to):
            raise InvalidDeclaration(f"not an address: {self.to!r}")

    def message(self) -> dict[str, Any]:
        return {
            "isccId": self.iscc_id,
            "to": to_checksum_address(self.to),
            "actions": self.actions,
            "deadline": self.deadline,
        }


Action = Revocation | Update | Transfer


def signable(action: Action, domain: Domain):
    types = {action.PRIMARY: [{"name": n, "type": t} for n, t in action.FIELDS]}
    return encode_typed_data(
        domain_data=domain.as_dict(), message_types=types, message_data=action.message()
    )


@dataclass(frozen=True)
class SignedAction:
    """An owner action with the owner's EIP-712 signature: anyone may submit it."""

    action: Action
    owner: str
    signature: bytes
    domain: Domain

    @property
    def kind(self) -> str:
        return _KINDS[type(self.action)]

    def recover(self) -> str:
        """The EOA that signed; raises InvalidDeclaration if the signature is malformed."""
        try:
            return Account.recover_message(
                signable(self.action, self.domain), signature=self.signature
            )
        except (ValueError, TypeError, ValidationError) as exc:
            raise InvalidDeclaration(f"malformed signature: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        a = self.action
        body: dict[str, Any] = {"kind": self.kind, "iscc_id": str(a.iscc_id)}
        if isinstance(a, Update):
            body |= {"metahash": "0x" + a.metahash.hex(), "gateway": a.gateway}
        if isinstance(a, Transfer):
            body["to"] = to_checksum_address(a.to)
        body |= {"actions": str(a.actions), "deadline": a.deadline}
        return {
            "action": body,
            "owner": to_checksum_address(self.owner),
            "signature": "0x" + self.signature.hex(),
            "domain": self.domain.as_dict(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SignedAction:
        """Inverse of to_json; raises InvalidDeclaration on anything malformed."""
        try:
            a, dom = data["action"], data["domain"]
            if (dom["name"], dom["version"]) != (DOMAIN_NAME, DOMAIN_VERSION):
                raise InvalidDeclaration(f"not an {DOMAIN_NAME} v{DOMAIN_VERSION} action")
            if not is_address(data["owner"]):
                raise InvalidDeclaration(f"owner is not an address: {data['owner']!r}")
            metahash = a.get("metahash")
            action = make_action(
                a["kind"],
                _parse_id(a["iscc_id"]),
                actions=int(a["actions"]),
                deadline=int(a["deadline"]),
                metahash=bytes.fromhex(metahash.removeprefix("0x")) if metahash else None,
                gateway=a.get("gateway", ""),
                to=a.get("to"),
            )
            return cls(
                action=action,
                owner=to_checksum_address(data["owner"]),
                signature=bytes.fromhex(data["signature"].removeprefix("0x")),
                domain=Domain(int(dom["chainId"]), to_checksum_address(dom["verifyingContract"])),
            )
        except InvalidDeclaration:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidDeclaration(f"malformed signed action: {exc!r}") from None


def sign_action(action: Action, domain: Domain, account: LocalAccount) -> SignedAction:
    signed = account.sign_message(signable(action, domain))
    return SignedAction(action, account.address, bytes(signed.signature), domain)


@dataclass(frozen=True)
class ActionReceipt:
    """What the chain answered to an owner action."""

    action: str
    iscc_id: IsccId
    owner: str
    tx_hash: str
    block_number: int
    gas_used: int
    to: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "iscc_id": str(self.iscc_id),
            "owner": self.owner,
            **({"to": self.to} if self.to else {}),
            "tx_hash": self.tx_hash,
            "block_number": self.block_number,
            "gas_used": self.gas_used,
        }


def find_record(registry: Registry, owner: str, iscc_id: IsccId | int) -> int:
    """The record handle `owner` passes to act on `iscc_id`, from the declaration's `Declared`
    event: its nonce if `owner` declared it with a signature, else 0 (direct or transferred
    declarations are held by ID, where the contract ignores the handle)."""
    body = _body(iscc_id)
    topic = "0x" + body.to_bytes(32, "big").hex()
    event = registry.contract.events.Declared()
    with rejections("reading the Declared event", registry.deployment.realm):
        logs = registry.w3.eth.get_logs(
            {
                "address": registry.contract.address,
                "fromBlock": registry.deployment.block,
                "toBlock": "latest",
                "topics": [event.topic, topic],
            }
        )
    if not logs:
        raise InvalidDeclaration(f"no declaration {IsccId(body, registry.deployment.realm)} here")
    args = event.process_log(logs[0])["args"]
    if args["declarer"] != to_checksum_address(owner):
        return _NO_RECORD
    return int(args["record"])


def _parse_id(value: str | int) -> int:
    """An ISCC-ID given as "ISCC:MAI..." or as its integer body."""
    text = str(value)
    return IsccId.parse(text).body if text.upper().startswith(("ISCC:", "MAI")) else int(text)


def _body(iscc_id: IsccId | int) -> int:
    return iscc_id.body if isinstance(iscc_id, IsccId) else iscc_id


def _direct_call(registry: Registry, action: Action, record: int):
    f = registry.contract.functions
    if isinstance(action, Revocation):
        return f.revoke(action.iscc_id, record)
    if isinstance(action, Update):
        return f.update(action.iscc_id, record, action.metahash, action.gateway)
    return f.transfer(action.iscc_id, record, to_checksum_address(action.to))


def _relayed_call(registry: Registry, signed: SignedAction, record: int):
    f = registry.contract.functions
    message = tuple(signed.action.message().values())
    args = (message, record, signed.owner, signed.signature)
    if isinstance(signed.action, Revocation):
        return f.revokeFor(*args)
    if isinstance(signed.action, Update):
        return f.updateFor(*args)
    return f.transferFor(*args)


def make_action(
    kind: str,
    iscc_id: IsccId | int,
    *,
    actions: int = 0,
    deadline: int = 0,
    metahash: bytes | None = None,
    gateway: str = "",
    to: str | None = None,
) -> Action:
    """Build the action named `kind` ("revoke", "update" or "transfer")."""
    body = _body(iscc_id)
    if kind == "revoke":
        return Revocation(body, actions, deadline)
    if kind == "update":
        return Update(body, metahash or ZERO_HASH, gateway, actions, deadline)
    if kind == "transfer":
        if to is None:
            raise InvalidDeclaration("a transfer needs the new owner's address")
        return Transfer(body, to, actions, deadline)
    raise InvalidDeclaration(f"unknown action {kind!r}")


def act_direct(
    registry: Registry, owner: LocalAccount, action: Action, record: int | None = None
) -> ActionReceipt:
    """The owner sends the action from its own account (and pays the gas); no signature."""
    if record is None:
        record = find_record(registry, owner.address, action.iscc_id)
    receipt = registry.transact(_direct_call(registry, action, record), owner)
    return _receipt(registry, action, receipt)


def sign_for(registry: Registry, owner: LocalAccount, action: Action) -> SignedAction:
    """Sign `action` for this registry, bound to the declaration's current action count, with a
    fresh deadline."""
    fresh = dataclasses.replace(
        action,
        actions=actions_of(registry, action.iscc_id),
        deadline=default_deadline(registry),
    )
    return sign_action(fresh, domain_of(registry), owner)


def actions_of(registry: Registry, iscc_id: IsccId | int) -> int:
    """The declaration's current action count, which a signed owner action must name."""
    return int(registry.contract.functions.actionsOf(_body(iscc_id)).call())


def act_relayed(
    registry: Registry,
    signed: SignedAction,
    payer: LocalAccount,
    record: int | None = None,
    tag: str | None = None,
) -> ActionReceipt:
    """Submit an owner's signed action; `payer` pays the gas. `tag` goes into the sender's
    journal with the transaction (see relay_batch)."""
    if signed.domain != domain_of(registry):
        raise InvalidDeclaration(
            f"the action was signed for chain {signed.domain.chain_id} contract "
            f"{signed.domain.verifying_contract}, not for this registry"
        )
    if record is None:
        record = find_record(registry, signed.owner, signed.action.iscc_id)
    payload = {"kind": signed.kind, "entries": [{"tag": tag, "owner": signed.owner}]}
    receipt = registry.transact(_relayed_call(registry, signed, record), payer, payload=payload)
    return _receipt(registry, signed.action, receipt)


_EVENTS = {Revocation: "Revoked", Update: "Updated", Transfer: "Transferred"}
_KINDS = {Revocation: "revoke", Update: "update", Transfer: "transfer"}


def _receipt(registry: Registry, action: Action, receipt: dict) -> ActionReceipt:
    name = _EVENTS[type(action)]
    events = getattr(registry.contract.events, name)().process_receipt(receipt, errors=DISCARD)
    if len(events) != 1:
        raise InvalidDeclaration(f"expected one {name} event, the receipt has {len(events)}")
    args = events[0]["args"]
    return ActionReceipt(
        action=name.lower(),
        iscc_id=IsccId(body=args["isccId"], realm=registry.deployment.realm),
        owner=args.get("owner") or args["from"],
        tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
        block_number=receipt["blockNumber"],
        gas_used=receipt["gasUsed"],
        to=args.get("to"),
    )
