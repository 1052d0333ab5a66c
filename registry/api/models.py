"""Response bodies, so the OpenAPI schema describes exactly what the service answers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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
    record: str | None = Field(
        None,
        description="The owner's record handle for revoke, update, transfer (decimal: the "
        "signed declaration's nonce, 0 for a direct one); None if indexed from a v1 registry",
    )
    kind: Literal["plain", "sealed"] = Field(
        "plain", description="sealed: committed first, revealed later (see committed_at)"
    )
    committed_at: int | None = Field(
        None,
        description="A sealed declaration's commitment time in microseconds since 1970: its "
        "priority (a plain declaration's priority is its ISCC-ID's time)",
    )


class Resolution(BaseModel):
    """What a query was taken for and the declarations behind it, in chain order."""

    kind: Literal["iscc-id", "iscc-code", "datahash", "declarer"]
    query: str = Field(description="The query in normalized form")
    records: list[Declaration]
    truncated: bool = Field(
        False, description="More declarations match than were answered (see `limit`)"
    )


class HistoryEvent(BaseModel):
    event: str = Field(examples=["Declared", "Updated", "Transferred", "Revoked"])
    block_number: int
    tx_hash: str
    log_index: int
    data: dict[str, Any] = Field(description="The event's fields as indexed")


class EvidenceItem(BaseModel):
    """How the two declarations share content; kinds may carry more figures than listed here."""

    model_config = ConfigDict(extra="allow")

    kind: str = Field(examples=["datahash", "content"])
    strength: float = Field(description="1.0 for the same bytes; 1 - distance / bits otherwise")
    unit_type: str | None = Field(None, description="The unit compared (content evidence)")
    distance: int | None = Field(None, description="Differing bits (content evidence)")
    bits: int | None = Field(None, description="Bits compared (content evidence)")


class Disagreement(BaseModel):
    """A licence or rights-holder field both metadata documents carry, with different values."""

    field: str = Field(examples=["license", "rights"])
    earlier: str
    later: str


class Conflict(BaseModel):
    """Two declarers claim the same or overlapping content; the earlier one holds priority."""

    earlier: Declaration = Field(description="Declared first on chain: holds priority")
    later: Declaration
    evidence: list[EvidenceItem]
    strength: float = Field(description="The strongest evidence, 0..1")
    score: float = Field(
        description="Every modality's evidence combined (docs/matching.md), 0..1: two "
        "modalities at comparable strength score above one"
    )
    resolved: bool = Field(description="True while either declaration is revoked")
    disagreements: list[Disagreement] = Field(
        description="Licence and rights-holder fields that differ between the two metadata "
        "documents (only fields both documents carry are compared)"
    )


class ConflictList(BaseModel):
    conflicts: list[Conflict] = Field(description="Ordered by the later declaration's position")


class IsccIdResolution(Resolution):
    """An ISCC-ID's declaration with its full history, its conflicts and, if stored, its
    metadata."""

    history: list[HistoryEvent]
    metadata: dict[str, Any] | None = Field(
        description="The document the current metahash commits to, if someone stored it"
    )
    conflicts: list[Conflict] = Field(
        description="Its conflicts with other declarers (the first 100; all via /v1/conflicts)"
    )


class IndexerState(BaseModel):
    chain_id: int
    contract: str
    indexed_block: int | None = Field(description="Last block applied to the store")
    head_block: int | None = Field(description="Chain head as last seen; None if unreachable")
    lag_blocks: int | None
    lookups_deferred: bool = Field(
        description="True while a large catch-up runs without the lookup indexes: resolving by "
        "ISCC-CODE, datahash or declarer scans the store (same answers, slower) and conflict "
        "detection waits for the end"
    )


class RelayerState(BaseModel):
    address: str = Field(description="The account that pays for relayed requests")
    balance_wei: int | None = Field(description="Its balance; None if the node cannot say")
    pending_jobs: int
    replacements: int = Field(description="Stuck transactions replaced with higher fees")


class NetworkOut(BaseModel):
    chain_id: int
    name: str
    confirmations: int
    block_time: float
    tx_url: str | None = Field(description="Explorer link template with {hash}")
    address_url: str | None = Field(description="Explorer link template with {address}")
    block_url: str | None = Field(description="Explorer link template with {block}")
    known: bool = Field(description="False: the chain is in no table, the values are guesses")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    declarations: int
    indexer: IndexerState | None = Field(description="None when no deployment is configured")
    network: NetworkOut | None = Field(None, description="The deployment's chain")
    relayer: RelayerState | None = Field(None, description="None when this service does not relay")
    problems: list[str]
