"""One function per thing a user does with the licence ledger: grant a licence over a
declaration, and terminate a grant. The CLI and the service's client call these, so the terms'
meaning (registry.ledger.terms) becomes the contract's raw struct in one place, and who pays
(the grantor itself, a payer key, a registry service) is chosen in one place too.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from registry.chain.iscc_id import IsccId
from registry.chain.licences import (
    GrantReceipt,
    GrantRequest,
    SignedGrant,
    TerminationReceipt,
    grant_direct,
    prepare_grant,
    prepare_termination,
    random_nonce,
    terminate_direct,
)
from registry.errors import InputError
from registry.ledger.terms import GrantTerms

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from registry.chain.contract import Registry
    from registry.chain.flows import LicenceSubmitter

__all__ = ["Granted", "default_start", "grant_licence", "terminate_licence", "terms_hash"]


def terms_hash(document: bytes) -> bytes:
    """The termsHash of a licence terms document: sha256 of its bytes, as the contract says."""
    return hashlib.sha256(document).digest()


@dataclass(frozen=True)
class Granted:
    """A grant the ledger recorded, with its terms as the grantor meant them."""

    terms: GrantTerms
    receipt: GrantReceipt
    signed: SignedGrant | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.receipt.to_dict() | {"terms": self.terms.to_json()}


def grant_licence(
    registry: Registry,
    grantor: LocalAccount,
    iscc_id: IsccId,
    terms: GrantTerms,
    *,
    submitter: LicenceSubmitter | None = None,
) -> Granted:
    """Grant `terms` over the declaration `iscc_id`: signed by `grantor` and submitted by
    `submitter`, or, without one, sent by `grantor` itself, which pays the gas.

    The ledger records the claim whoever owns the declaration (the indexer judges it), but a
    grant over an ISCC-ID this registry cannot have minted is refused here, before gas is spent.
    """
    if iscc_id.realm != registry.deployment.realm:
        raise InputError(
            f"{iscc_id} is of realm {iscc_id.realm}, this registry mints realm "
            f"{registry.deployment.realm}"
        )
    raw = terms.to_raw()
    if submitter is None:
        request = GrantRequest.from_struct(
            raw, iscc_id=iscc_id.body, grantor=grantor.address, nonce=random_nonce(), deadline=0
        )
        receipt = grant_direct(registry, grantor, request)
        return Granted(_with_ids(terms, receipt), receipt)
    signed = prepare_grant(registry, grantor, iscc_id, raw)
    receipt = submitter.grant(signed)
    return Granted(_with_ids(terms, receipt), receipt, signed)


def _with_ids(terms: GrantTerms, receipt: GrantReceipt) -> GrantTerms:
    return replace(
        terms, grant_id=receipt.grant_id, grantor=receipt.grantor, iscc_id=str(receipt.iscc_id)
    )


def terminate_licence(
    registry: Registry,
    account: LocalAccount,
    grant_id: str,
    *,
    submitter: LicenceSubmitter | None = None,
) -> TerminationReceipt:
    """End a grant as its grantor or licensee: signed and submitted by `submitter`, or sent by
    `account` itself."""
    if submitter is None:
        return terminate_direct(registry, account, grant_id)
    return submitter.terminate(prepare_termination(registry, account, grant_id))


def default_start() -> int:
    """When a grant starts if the user names no date: now."""
    return int(time.time())
