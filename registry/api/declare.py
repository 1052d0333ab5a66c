"""Declaring from a browser wallet: the service prepares the EIP-712 typed data of a file's
declaration for the wallet to sign (`eth_signTypedData_v4`); the signature then goes to the
relay like any other signed declaration."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from eth_utils import is_address, to_checksum_address
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from registry.api.chain_threads import in_chain_thread
from registry.api.errors import ERROR_RESPONSES
from registry.api.state import state_of
from registry.chain.declaration import Declaration, SignedDeclaration
from registry.chain.submit import default_deadline, domain_of, next_nonce
from registry.errors import InvalidDeclaration

router = APIRouter(prefix="/v1/declarations", tags=["relay"], responses=ERROR_RESPONSES)


class PrepareIn(BaseModel):
    iscc_code: str = Field(max_length=200, description="The file's ISCC-CODE, as `gen` prints it")
    datahash: str = Field(max_length=80, description="blake3 multihash of the file (1e20...)")
    metahash: str | None = Field(None, max_length=80, description="Metadata multihash, if any")
    gateway: str = Field("", max_length=1024, description="URL or URI template, may be empty")
    declarer: str = Field(max_length=42, description="The wallet's address that will sign")


class Prepared(BaseModel):
    typed_data: dict[str, Any] = Field(
        description="The EIP-712 message for eth_signTypedData_v4 (types, primaryType, domain, "
        "message)"
    )
    relay: dict[str, Any] = Field(
        description="The body for POST /v1/relay/declarations once `signature` (0x-hex) is added"
    )


@router.post("/prepare", response_model=Prepared, summary="Typed data for a wallet to sign")
async def prepare(request: Request, body: PrepareIn) -> dict[str, Any]:
    """The declaration of this file for this registry with the declarer's lowest free nonce
    and a deadline an hour after the chain's clock. Nothing is stored: a declaration prepared
    and never signed costs nothing."""
    if not is_address(body.declarer):
        raise InvalidDeclaration(f"declarer is not an address: {body.declarer!r}")
    declarer = to_checksum_address(body.declarer)
    state = state_of(request)
    # Checked here, before it takes a place among the requests that wait on the node: a
    # malformed body held one for two node reads before its 400 (outside attacker review).
    unsigned = Declaration.create(
        declarer, body.iscc_code, body.datahash, body.metahash, body.gateway, nonce=0, deadline=0
    )

    def build() -> dict[str, Any]:
        # Connecting may wait on the node: never on the event loop (attacker review: one
        # prepare against a node that did not answer stopped every request for minutes).
        registry = state.registry()
        declaration = replace(
            unsigned, nonce=next_nonce(registry, declarer), deadline=default_deadline(registry)
        )
        domain = domain_of(registry)
        relay = SignedDeclaration(declaration, b"", domain).to_json()
        del relay["signature"]
        return {"typed_data": declaration.typed_data(domain), "relay": relay}

    # The connection and two chain reads (nonce bitmap, latest block): off the event loop, in
    # the threads of requests that wait on the node.
    return await in_chain_thread(request, build)
