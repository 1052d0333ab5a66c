"""One function per thing a user does with the registry: sign a declaration of a file, declare
a file, submit a signed declaration, and act as a declaration's owner (revoke, update,
transfer).

The CLI, the demo and the service's client call these, so the choice between paying oneself,
a payer key on chain and a registry service is made in one place: whoever pays is a
`Submitter` (`PaidBy` here, `registry.api.client.ServiceSubmitter` for a service).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from registry.chain.actions import (
    ActionReceipt,
    SignedAction,
    act_direct,
    act_relayed,
    make_action,
    sign_for,
)
from registry.chain.contract import Registry
from registry.chain.declaration import SignedDeclaration
from registry.chain.gateway import check_gateway
from registry.chain.iscc_id import IsccId
from registry.chain.licences import (
    GrantReceipt,
    SignedGrant,
    SignedTermination,
    TerminationReceipt,
    submit_grant,
    submit_termination,
)
from registry.chain.submit import DeclarationReceipt, declare_direct, prepare, submit_signed
from registry.errors import InputError, InvalidDeclaration
from registry.metadata import CanonicalMetadata, canonicalize

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from registry.iscc.generate import IsccResult

__all__ = [
    "DeclaredFile",
    "LicenceSubmitter",
    "PaidBy",
    "Publish",
    "Submitter",
    "act_as_owner",
    "declare_file",
    "declare_file_sealed",
    "sign_file",
    "submit_declaration",
]

# Stores a canonical metadata document where the indexer will find it (the local store, or a
# registry service).
Publish = Callable[[CanonicalMetadata], object]


class Submitter(Protocol):
    """Puts a signed declaration or owner action on chain and pays for it."""

    def declare(self, signed: SignedDeclaration) -> DeclarationReceipt: ...

    def act(self, signed: SignedAction, record: int | None = None) -> ActionReceipt: ...


class LicenceSubmitter(Protocol):
    """Puts a signed licence grant or termination on the licence ledger and pays for it."""

    def grant(self, signed: SignedGrant) -> GrantReceipt: ...

    def terminate(self, signed: SignedTermination) -> TerminationReceipt: ...


@dataclass(frozen=True)
class PaidBy:
    """Submits from a payer's account on chain (a relayer key; on the devnet a built-in one)."""

    registry: Registry
    payer: LocalAccount

    def declare(self, signed: SignedDeclaration) -> DeclarationReceipt:
        return submit_signed(self.registry, signed, self.payer)

    def act(self, signed: SignedAction, record: int | None = None) -> ActionReceipt:
        return act_relayed(self.registry, signed, self.payer, record)

    def grant(self, signed: SignedGrant) -> GrantReceipt:
        return submit_grant(self.registry, signed, self.payer)

    def terminate(self, signed: SignedTermination) -> TerminationReceipt:
        return submit_termination(self.registry, signed, self.payer)


@dataclass(frozen=True)
class DeclaredFile:
    """A file's ISCC and the receipt of its declaration (with the signature, unless direct)."""

    path: Path
    result: IsccResult
    receipt: DeclarationReceipt
    signed: SignedDeclaration | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.receipt.to_dict() | {"iscc": self.result.iscc, "file": str(self.path)}


def _content(
    path: Path,
    gateway: str,
    publish: Publish | None,
    result: IsccResult | None,
    fields: dict[str, Any] | None = None,
) -> tuple[IsccResult, str | None]:
    """What a declaration of the file states: its ISCC (generated unless `result` has it) and
    the metahash to declare, after checking the gateway (before any work is done).

    The metahash is of the document with the file's granular features, published first so the
    declaration's segments are indexed whichever arrives first; files without features (or
    declarations nobody publishes for) keep the Meta-Code's metahash. Metadata `fields`
    (license, rights, ...) join the document, which then always exists: the licence
    conflicts read them from it.
    """
    check_gateway(gateway)
    if fields and publish is None:
        raise InputError("metadata fields need a metadata store or service to publish them to")
    if result is None:
        from registry.iscc import generate

        result = generate(path)
    document = result.declaration_document() if publish is not None else None
    if fields:
        base: dict[str, Any] = {"name": result.name}
        if result.description:
            base["description"] = result.description
        document = (document or base) | fields
    if document is None:
        return result, result.metahash
    canonical = canonicalize(document)
    publish(canonical)
    return result, canonical.metahash


def sign_file(
    registry: Registry,
    account: LocalAccount,
    path: Path,
    gateway: str = "",
    publish: Publish | None = None,
    result: IsccResult | None = None,
    fields: dict[str, Any] | None = None,
) -> tuple[IsccResult, SignedDeclaration]:
    """Generate a file's ISCC (unless `result` has it already) and sign its declaration for this
    registry, to submit now or later (by anyone); metadata `fields` join its document."""
    result, metahash = _content(path, gateway, publish, result, fields)
    return result, prepare(registry, account, result.iscc, result.datahash, metahash, gateway)


def declare_file(
    registry: Registry,
    account: LocalAccount,
    path: Path,
    *,
    gateway: str = "",
    submitter: Submitter | None = None,
    publish: Publish | None = None,
    result: IsccResult | None = None,
    fields: dict[str, Any] | None = None,
) -> DeclaredFile:
    """Declare a file (its ISCC generated unless `result` has it): signed by `account` and
    submitted by `submitter`, or, without one, sent from `account` itself, which pays the gas.
    Metadata `fields` (license, rights, ...) join the document its metahash commits to."""
    if submitter is None:
        result, metahash = _content(path, gateway, publish, result, fields)
        receipt = declare_direct(registry, account, result.iscc, result.datahash, metahash, gateway)
        return DeclaredFile(path, result, receipt)
    result, signed = sign_file(registry, account, path, gateway, publish, result, fields)
    return DeclaredFile(path, result, submitter.declare(signed), signed)


def declare_file_sealed(
    registry: Registry,
    account: LocalAccount,
    path: Path,
    payer: PaidBy,
    *,
    gateway: str = "",
    publish: Publish | None = None,
    result: IsccResult | None = None,
    fields: dict[str, Any] | None = None,
) -> DeclaredFile:
    """Declare a file sealed: sign it as a SealedDeclaration, commit its salted leaf, and reveal
    it once the commitment is mined; `payer` pays both transactions. Its priority is the
    commitment's time (docs/protocol.md, Sealed declarations)."""
    from registry.chain.relayer import relay_sealed_batch

    result, metahash = _content(path, gateway, publish, result, fields)
    signed = prepare(
        registry, account, result.iscc, result.datahash, metahash, gateway, sealed=True
    )
    (outcome,) = relay_sealed_batch(registry, [signed], payer.payer)
    if outcome.receipt is None:
        raise InvalidDeclaration(f"the registry rejects it: {outcome.error}")
    return DeclaredFile(path, result, outcome.receipt, signed)


def submit_declaration(signed: SignedDeclaration, submitter: Submitter) -> DeclarationReceipt:
    """Submit a declaration signed earlier (by `sign`), after checking its signature."""
    signed.verify()
    return submitter.declare(signed)


def act_as_owner(
    registry: Registry,
    owner: LocalAccount,
    kind: str,
    iscc_id: IsccId,
    *,
    submitter: Submitter | None = None,
    record: int | None = None,
    **fields: Any,
) -> ActionReceipt:
    """Revoke, update or transfer (`kind`) a declaration `owner` holds: signed and submitted by
    `submitter`, or sent by the owner, who pays the gas."""
    if iscc_id.realm != registry.deployment.realm:
        raise InputError(
            f"{iscc_id} is of realm {iscc_id.realm}, this registry mints realm "
            f"{registry.deployment.realm}"
        )
    if kind == "update":
        fields = _update_fields(registry, iscc_id, fields.get("metahash"), fields.get("gateway"))
    check_gateway(fields.get("gateway", ""))
    action = make_action(kind, iscc_id, **fields)
    try:
        if submitter is None:
            return act_direct(registry, owner, action, record)
        return submitter.act(sign_for(registry, owner, action), record)
    except InvalidDeclaration as exc:
        if "NotOwner" not in str(exc):
            raise
        reason = _why_not_owner(registry, iscc_id, owner.address)
        raise InvalidDeclaration(reason or str(exc)) from None


def _update_fields(
    registry: Registry, iscc_id: IsccId, metahash: bytes | None, gateway: str | None
) -> dict[str, Any]:
    """An update's metahash and gateway: the contract replaces both, so what is not given
    (None) stays as the declaration's latest Declared or Updated event has it; b"" clears the
    metahash and "" the gateway."""
    if metahash is None and gateway is None:
        raise InputError("nothing to update: give a new metahash, a new gateway, or both")
    if metahash is None or gateway is None:
        current_metahash, current_gateway = _current_document(registry, iscc_id)
        metahash = current_metahash if metahash is None else metahash
        gateway = current_gateway if gateway is None else gateway
    return {"metahash": metahash or None, "gateway": gateway}


def _current_document(registry: Registry, iscc_id: IsccId) -> tuple[bytes, str]:
    """The metahash and gateway a declaration has now on chain, from its events."""
    since = {"isccId": iscc_id.body}
    start = registry.deployment.block
    events = registry.contract.events
    latest = events.Updated().get_logs(argument_filters=since, from_block=start)
    if not latest:
        latest = events.Declared().get_logs(argument_filters=since, from_block=start)
    if not latest:
        raise InputError(f"no declaration {iscc_id} on this registry")
    args = latest[-1]["args"]
    return bytes(args["metahash"]), args["gateway"]


def _why_not_owner(registry: Registry, iscc_id: IsccId, account: str) -> str | None:
    """Why the contract says `account` does not own a declaration, from its events: revoked,
    or transferred to someone else; None if its events do not tell."""
    since = {"isccId": iscc_id.body}
    start = registry.deployment.block
    events = registry.contract.events
    revoked = events.Revoked().get_logs(argument_filters=since, from_block=start)
    if revoked:
        return f"{iscc_id} is already revoked (block {revoked[-1]['blockNumber']})"
    moves = events.Transferred().get_logs(argument_filters=since, from_block=start)
    if moves and moves[-1]["args"]["to"] != account:
        return f"{iscc_id} belongs to {moves[-1]['args']['to']} now, not to {account}"
    return None
