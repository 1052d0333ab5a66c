"""Licence test helpers: granted and terminated events for store tests, and grants and
terminations sent to a LicenceRegistry on the devnet."""

from __future__ import annotations

import itertools
from typing import Any

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from registry.chain.artifact import LICENCES_NAME, artifact
from registry.chain.contract import Registry
from registry.chain.iscc_id import IsccId
from registry.chain.licence_events import GrantedEvent, TerminatedEvent

DAY = 86_400
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
_nonces = itertools.count(1)


def grant_id_of(grantor: str, nonce: int) -> str:
    """keccak256(abi.encode(grantor, nonce)), as the contract makes it."""
    return "0x" + keccak(abi_encode(["address", "uint256"], [grantor, nonce])).hex()


def granted(
    iscc_id: str,
    grantor: str,
    block: int,
    *,
    log_index: int = 5,
    licensee: str | None = None,
    parent: str | None = None,
    territories: tuple[str, ...] = ("DE",),
    worldwide: bool = False,
    uses: int = 1,
    start: int = T0,
    end: int = 0,
    exclusive: bool = False,
    sublicensable: bool = False,
    nonce: int | None = None,
    block_time: int | None = None,
) -> GrantedEvent:
    """A LicenceGranted event as the indexer decodes it, at `block` (its hash: the number)."""
    nonce = next(_nonces) if nonce is None else nonce
    return GrantedEvent(
        block_number=block,
        block_hash=block.to_bytes(32, "big"),
        tx_hash=(block * 1000 + log_index).to_bytes(32, "big"),
        log_index=log_index,
        block_time=T0 + block if block_time is None else block_time,
        grant_id=grant_id_of(grantor, nonce),
        iscc_id=IsccId.parse(iscc_id),
        grantor=grantor,
        licensee=licensee,
        parent=parent,
        territories=tuple(sorted(territories)),
        worldwide=worldwide,
        uses=uses,
        conditions=0,
        start=start,
        end=end,
        exclusive=exclusive,
        sublicensable=sublicensable,
        terms_url="https://terms.example/licence",
        terms_hash=None,
        nonce=nonce,
    )


def terminated(grant: GrantedEvent, by: str, block: int, log_index: int = 6) -> TerminatedEvent:
    return TerminatedEvent(
        block_number=block,
        block_hash=block.to_bytes(32, "big"),
        tx_hash=(block * 1000 + log_index).to_bytes(32, "big"),
        log_index=log_index,
        block_time=T0 + block,
        grant_id=grant.grant_id,
        by=by,
    )


def licences_contract(registry: Registry) -> Any:
    """The deployment's LicenceRegistry as a web3 contract."""
    return registry.w3.eth.contract(
        address=registry.deployment.licences, abi=artifact(LICENCES_NAME)["abi"]
    )


def grant_on_chain(
    registry: Registry,
    grantor: LocalAccount,
    iscc_id: str,
    *,
    licensee: str | None = None,
    parent: str | None = None,
    territories: tuple[str, ...] = ("DE",),
    worldwide: bool = False,
    uses: int = 1,
    start: int = T0,
    end: int = 0,
    exclusive: bool = False,
    sublicensable: bool = False,
) -> str:
    """`grant` sent by the grantor itself (it pays the gas); returns the grant id."""
    nonce = next(_nonces)
    request = (
        IsccId.parse(iscc_id).body,
        grantor.address,
        licensee or "0x" + "00" * 20,
        bytes.fromhex(parent[2:]) if parent else bytes(32),
        "".join(sorted(territories)).encode("ascii"),
        worldwide,
        uses,
        0,
        start,
        end,
        exclusive,
        sublicensable,
        "https://terms.example/licence",
        bytes(32),
        nonce,
        0,
    )
    registry.transact(licences_contract(registry).functions.grant(request), grantor)
    return grant_id_of(grantor.address, nonce)


def terminate_on_chain(registry: Registry, by: LocalAccount, grant_id: str) -> None:
    call = licences_contract(registry).functions.terminate(bytes.fromhex(grant_id[2:]))
    registry.transact(call, by)
