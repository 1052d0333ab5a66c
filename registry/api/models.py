"""Response bodies, so the OpenAPI schema describes exactly what the service answers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Declaration(BaseModel):
    """One declaration as indexed from the chain."""

    iscc_id: str = Field(examples=["ISCC:MAIGBISBQHSAAAAA"])
    iscc_code: str | None = Field(description="None when the on-chain bytes do not decode")
    iscc_code_raw: str = Field(description="The declared ISCC-CODE bytes, 0x-hex")
    datahash: str = Field(description="blake3 multihash of the content, hex (1e20...)")
    metahash: str | None = Field(description="blake3 multihash of the metadata, or None")
    declarer: str = Field(description="Who declared it first")
    owner: str = Field(description="Who holds it now (changes with transfers)")
    revoked: bool = Field(description="True once its owner revoked it")
    gateway: str
    valid: bool = Field(description="False if the indexer found the declaration malformed")
    invalid_reason: str | None
    chain_id: int
    contract: str
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int


class Resolution(BaseModel):
    """What a query was taken for and the declarations behind it, in chain order."""

    kind: Literal["iscc-id", "iscc-code", "datahash", "declarer"]
    query: str = Field(description="The query in normalized form")
    records: list[Declaration]


class HistoryEvent(BaseModel):
    event: str = Field(examples=["Declared", "Updated", "Transferred", "Revoked"])
    block_number: int
    tx_hash: str
    log_index: int
    data: dict[str, Any] = Field(description="The event's fields as indexed")


class IsccIdResolution(Resolution):
    """An ISCC-ID's declaration with its full history and, if stored, its metadata."""

    history: list[HistoryEvent]
    metadata: dict[str, Any] | None = Field(
        description="The document the current metahash commits to, if someone stored it"
    )


class IndexerState(BaseModel):
    chain_id: int
    contract: str
    indexed_block: int | None = Field(description="Last block applied to the store")
    head_block: int | None = Field(description="Chain head as last seen; None if unreachable")
    lag_blocks: int | None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    declarations: int
    indexer: IndexerState | None = Field(description="None when no deployment is configured")
    problems: list[str]
