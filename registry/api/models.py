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


# --- the licence ledger ----------------------------------------------------------------------


class LicenceConflictRef(BaseModel):
    conflict: int = Field(description="The licence conflict's number")
    kind: str = Field(examples=["exclusive_overlap", "sublicence_exceeds"])
    case: str | None = Field(description="Its case id (GET /v1/cases/{id})")
    case_state: str | None


class Licence(BaseModel):
    """One grant over a work, raw as the chain states it and in words."""

    model_config = ConfigDict(extra="allow")

    grant_id: str = Field(description="keccak256(grantor, nonce), 0x hex")
    iscc_id: str
    grantor: str
    licensee: str | None = Field(description="None: a public licence, open to everyone")
    who: str = Field(description="The licensee's address, or `public`")
    where: str = Field(examples=["DE, AT", "World except US, CA"])
    what: list[str] = Field(description="The uses allowed, as labels", examples=[["SVOD"]])
    use_names: list[str] = Field(description="The uses' vocabulary names (docs/ledger.md)")
    when: str = Field(examples=["2025-01-01 to 2026-01-01", "from 2025-01-01"])
    territories: list[str] = Field(description="ISO 3166-1 codes (with `worldwide`: excluded)")
    worldwide: bool
    uses: int = Field(description="The raw bitmask")
    conditions: int
    condition_names: list[str]
    start: int = Field(description="Unix seconds, inclusive")
    end: int | None = Field(description="Unix seconds, exclusive; None: no end")
    exclusive: bool
    sublicensable: bool
    sublicence: bool = Field(description="True when granted under a parent grant")
    parent: str | None
    terms_url: str
    terms_hash: str | None
    status: Literal["active", "pending", "ended", "terminated"]
    terminated: dict[str, Any] | None = Field(description="Who ended it on chain, and where")
    conflicts: list[LicenceConflictRef] = Field(description="Its open licence conflicts")
    block_number: int
    tx_hash: str


class LicenceList(BaseModel):
    iscc_id: str
    licences: list[Licence] = Field(description="In chain order")
    truncated: bool = Field(False, description="More licences follow (see `offset`)")


class LicenceConflictList(BaseModel):
    iscc_id: str
    conflicts: list[dict[str, Any]] = Field(
        description="Oldest first: kind, grants or usage report, works, exact overlap, "
        "evidence, found and resolved, and `case` ({id, state}, or null: held by the flood bound)"
    )
    truncated: bool = Field(False, description="More conflicts follow (see `offset`)")


class CaseParty(BaseModel):
    address: str
    role: str = Field(examples=["grantor", "licensee", "owner", "reporter"])


class CaseEvent(BaseModel):
    seq: int
    at: int = Field(description="Unix seconds")
    actor: str = Field(description="A party's address, or `registry` for its own steps")
    action: str = Field(examples=["open", "acknowledge", "dispute", "resolve", "withdraw"])
    state: str = Field(description="The case's state after this step")
    note: str
    signed_at: int | None
    signature: str | None = Field(description="A party's EIP-712 signature, 0x hex")
    digest: str | None


class Case(BaseModel):
    """The parties' side of one licence conflict."""

    id: str = Field(description="bytes32 as 0x hex; what a signed CaseResponse names")
    kind: str
    state: Literal["open", "acknowledged", "disputed", "resolved", "withdrawn", "expired"]
    opened_at: int
    deadline: int = Field(description="An open case nobody answered by then expires")
    updated_at: int
    closed_reason: str | None
    parties: list[CaseParty]
    conflict: dict[str, Any] | None = Field(
        description="The licence conflict: grants or usage report, works, exact overlap, "
        "evidence, whether it still holds"
    )
    events: list[CaseEvent] | None = Field(None, description="Every step, oldest first")


class CaseList(BaseModel):
    cases: list[Case] = Field(description="Newest first")


class UsageAnswer(BaseModel):
    """A stored usage report, the work it was matched to, and whether a valid grant covers it."""

    report: dict[str, Any] = Field(description="The report as stored, with its signature")
    work: str | None = Field(description="The declared work's ISCC-ID; None: no work matched")
    match: dict[str, Any] | None = Field(description="How: by datahash, or by content distance")
    licensed: bool | None = Field(
        description="True: a valid grant covers the use; False: none does (an unlicensed_use "
        "conflict follows, and its case unless the flood bound holds it); None: no declared "
        "work, nothing to license"
    )
    works: list[str] = Field(description="The matched work and the works it copies or contains")
    covering_grants: list[str]
    grants_considered: list[str]
    invalid_grants: list[str] = Field(
        [], description="Grants over these works whose grantor had no right to grant"
    )
    misses: list[dict[str, Any]] = Field(
        [], description="When not licensed: each valid grant and why it does not cover the use"
    )
