"""Licence ledger endpoints: a work's licences, usage reports, cases and the parties' responses.

Signed notes (usage reports, case responses) are checked like relayed declarations: a client's
attempts are counted before the signature is verified (verifying costs CPU), the signer's own
limit only after it verified, so nobody can spend another party's allowance.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from registry.api.admission import RETRY_AFTER_S
from registry.api.chain_threads import NodeWaits
from registry.api.errors import ERROR_RESPONSES, Overloaded, RateLimited
from registry.api.formats import (
    ADDRESS,
    ISCC,
    ISCC_ID,
    Address,
    HexBytes,
    IsccIdPath,
    Uint256,
    documented,
)
from registry.api.models import Case, CaseList, LicenceConflictList, LicenceList, UsageAnswer
from registry.api.ratelimit import RateLimiter
from registry.api.state import AppState, client_of, state_of, store_of
from registry.chain.iscc_id import IsccId
from registry.chain.node_http import node_deadline
from registry.chain.wallets import wallet_accepts
from registry.errors import ChainUnavailable
from registry.ledger import cases
from registry.ledger.licence_conflicts import KINDS, list_licence_conflicts
from registry.ledger.licence_views import work_licences
from registry.ledger.notes import MAX_NOTE_BYTES, CaseResponse, UsageReport, WalletCheck
from registry.ledger.usage import notes_domain, parse_note, respond, take_usage_report

__all__ = ["NotePolicy", "router"]

router = APIRouter(prefix="/v1", tags=["licences"], responses=ERROR_RESPONSES)

MAX_LIMIT = 500
CASE_ID = r"^0x[0-9a-fA-F]{64}$"


class NotePolicy:
    """Rate limits of signed notes: attempts per client (before the signature is checked) and
    accepted notes per signer (after)."""

    def __init__(self, per_client_per_min: float, per_signer_per_min: float) -> None:
        self.client = RateLimiter(per_client_per_min)
        self.signer = RateLimiter(per_signer_per_min)

    def attempt(self, request: Request) -> None:
        if wait := self.client.allow(client_of(request)):
            raise RateLimited(
                f"too many signed notes from this client; retry in {wait:.0f} s", wait
            )

    def charge(self, signer: str) -> None:
        if wait := self.signer.allow(signer.lower()):
            raise RateLimited(f"too many signed notes by {signer}; retry in {wait:.0f} s", wait)


def note_policy(request: Request) -> NotePolicy:
    return request.app.state.note_policy


LICENCES_LIMIT = 1000


@router.get(
    "/works/{iscc_id}/licences",
    response_model=LicenceList,
    summary="The licences granted over a work",
)
def licences(
    request: Request,
    iscc_id: IsccIdPath,
    limit: Annotated[int, Query(ge=1, le=LICENCES_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """The grants over the declaration (sublicences included) in chain order, `limit` from
    `offset` on: who holds it (or `public`), where, for what use, when, exclusive or not, its
    status, and its open licence conflicts with their cases. An ISCC-ID nobody licensed has
    an empty list; `truncated` says more follow."""
    canonical = str(IsccId.parse(iscc_id))
    # Anyone may grant over any work: one answer never holds them all.
    found = work_licences(store_of(request), canonical, limit=limit + 1, offset=offset)
    return {
        "iscc_id": canonical,
        "licences": found[:limit],
        "truncated": len(found) > limit,
    }


@router.get(
    "/works/{iscc_id}/licence-conflicts",
    response_model=LicenceConflictList,
    summary="The licence conflicts over a work",
)
def licence_conflicts(
    request: Request,
    iscc_id: IsccIdPath,
    status: Annotated[Literal["open", "resolved", "all"], Query()] = "open",
    kind: Annotated[
        str | None,
        Query(pattern="^(" + "|".join(KINDS) + ")$", description="Only conflicts of this kind"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """Oldest first, on either side of the conflict, each with its exact overlap, evidence
    and case. A conflict the flood bound holds (registry.ledger.case_policy) has `case` null
    until a slot frees, and says why under `evidence.case_held`."""
    canonical = str(IsccId.parse(iscc_id))
    found = list_licence_conflicts(
        store_of(request),
        iscc_id=canonical,
        kind=kind,
        status=status,
        limit=limit + 1,
        offset=offset,
    )
    return {"iscc_id": canonical, "conflicts": found[:limit], "truncated": len(found) > limit}


@router.get("/cases", response_model=CaseList, summary="List cases of licence conflicts")
def list_cases(
    request: Request,
    state: Annotated[
        str | None,
        Query(pattern="^(" + "|".join(cases.STATES) + ")$", description="Only cases in this state"),
    ] = None,
    work: Annotated[
        str | None,
        Query(
            max_length=128,
            description="Only cases about this ISCC-ID (either side of the conflict)",
            json_schema_extra=documented(ISCC_ID),
        ),
    ] = None,
    party: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Only cases this address is a party of",
            json_schema_extra=documented(ADDRESS),
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """Newest first, without their steps (GET /v1/cases/{id} has them). Open cases past
    their deadline are expired before the answer."""
    found = cases.list_cases(
        store_of(request), party=party, iscc_id=work, state=state, limit=limit, offset=offset
    )
    return {"cases": found}


CaseId = Annotated[
    str, Path(max_length=66, pattern=CASE_ID, description="The case id, 0x and 64 hex digits")
]


@router.get("/cases/{case_id}", response_model=Case, summary="A case with its timeline")
def get_case(request: Request, case_id: CaseId) -> dict[str, Any]:
    """The case, its parties, the licence conflict it is about (with the exact overlap and
    the evidence) and every step so far."""
    return cases.get_case(store_of(request), case_id)


class NotesDomainIn(BaseModel):
    name: Literal["IsccRegistryNotes"]
    version: Literal["1"]
    chainId: int = Field(ge=0, lt=2**256)
    verifyingContract: Address = Field(description="The LicenceRegistry's address")


class UsageReportIn(BaseModel):
    reporter: Address
    iscc_code: str = Field(max_length=200, pattern=ISCC, description="The used file's ISCC-CODE")
    datahash: str = Field(
        max_length=70,
        pattern=r"^(0x[0-9a-fA-F]{64}|1e20[0-9a-fA-F]{64})$",
        description="blake3 of the file, 0x hex or multihash",
    )
    territory: str = Field(min_length=2, max_length=2, examples=["DE"])
    uses: list[Annotated[str, Field(max_length=32)]] = Field(
        min_length=1, max_length=32, examples=[["svod"]]
    )
    used_at: int = Field(ge=0, lt=2**64, description="Unix seconds")
    nonce: Uint256


class SignedUsageIn(BaseModel):
    """What `iscc-registry usage report --json` prints: an EIP-712 UsageReport note."""

    type: Literal["UsageReport"]
    note: UsageReportIn
    signature: HexBytes
    domain: NotesDomainIn


class CaseResponseIn(BaseModel):
    party: Address
    case_id: str = Field(pattern=CASE_ID)
    action: Literal["acknowledge", "dispute", "resolve", "withdraw"]
    note: str = Field(max_length=MAX_NOTE_BYTES, description=f"At most {MAX_NOTE_BYTES} bytes")
    signed_at: int = Field(ge=0, lt=2**64)


class SignedCaseResponseIn(BaseModel):
    """An EIP-712 CaseResponse note, signed by a party of the case."""

    type: Literal["CaseResponse"]
    note: CaseResponseIn
    signature: HexBytes
    domain: NotesDomainIn


WALLET_CHECK_S = 10.0
"""How long one smart-wallet signature check may wait on the node in all."""

_NOTE_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed note, or the signature does not verify for this registry"},
    409: {"description": "This note (nonce, or response) was accepted before"},
    429: {"description": "Too many notes from this client, or by this signer"},
    503: {"description": "This service knows no licence ledger, or its chain node is away or busy"},
}


def _wallet(request: Request) -> WalletCheck:
    """A smart-wallet party's signature check on this service's node (ERC-1271); asked only
    when a signature is not by a key, after the client's attempt was counted, and once per
    request (the note is verified again where it is stored). The check runs in this route's
    thread of the shared pool, so it takes one of WALLET_NODE_WAITS slots or is refused: a
    node that hangs would otherwise hold a thread per smart-wallet note for its whole
    deadline."""
    state = state_of(request)
    node_waits: NodeWaits = request.app.state.wallet_node_waits
    answers: dict[tuple[str, bytes, bytes], bool | None] = {}

    def check(account: str, digest: bytes, signature: bytes) -> bool | None:
        key = (account, digest, signature)
        if key not in answers:
            with node_waits.slot() as taken:
                if not taken:
                    raise Overloaded(
                        "too many smart-wallet signatures are being checked on the chain node; "
                        "retry in a second",
                        RETRY_AFTER_S,
                    )
                answers[key] = _ask_wallet(state, account, digest, signature)
        return answers[key]

    return check


def _ask_wallet(state: AppState, account: str, digest: bytes, signature: bytes) -> bool | None:
    try:
        w3 = state.registry().w3  # connecting has bounds of its own, and its failure is shared
        # Notes are signed in the LicenceRegistry's domain: it is the asker.
        caller = None if state.deployment is None else state.deployment.licences
        # One budget for the check (get_code, the wallet's eth_call), so a node answering a
        # byte at a time holds a slot WALLET_CHECK_S, not a deadline per call.
        with node_deadline(WALLET_CHECK_S):
            return wallet_accepts(w3, account, digest, signature, caller)
    except ChainUnavailable:
        raise
    except Exception as exc:  # the node refused or is down: not the client's fault
        raise ChainUnavailable(f"the node did not answer ({type(exc).__name__})") from None


def _domain(request: Request) -> Any:
    deployment = state_of(request).deployment
    return notes_domain(
        None if deployment is None else deployment.chain_id,
        None if deployment is None else deployment.licences,
    )


@router.post(
    "/usage",
    status_code=201,
    response_model=UsageAnswer,
    summary="Report a use of a file (a signed UsageReport)",
    responses={**_NOTE_ANSWERS, 403: {"description": "Not signed by the reporter it names"}},
)
def report_usage(request: Request, body: SignedUsageIn) -> dict[str, Any]:
    """A platform reports that it used a file (its ISCC-CODE and datahash) in a territory for
    a use at a time, signed by its key. The service stores the report, matches it to the
    declared work (same bytes, or a copy or excerpt by content) and answers whether a valid
    grant covers the use; an uncovered use of a declared work opens an `unlicensed_use` case
    when the indexer next runs."""
    policy = note_policy(request)
    policy.attempt(request)
    domain = _domain(request)
    signed = parse_note(body.model_dump(), UsageReport)
    wallet = _wallet(request)
    signed.verify(domain, wallet)
    policy.charge(signed.signer)
    state = state_of(request)
    assert state.deployment is not None
    return take_usage_report(state.store, signed, state.deployment, state.similarity(), wallet)


@router.post(
    "/cases/{case_id}/responses",
    response_model=Case,
    summary="A party answers a case (a signed CaseResponse)",
    responses={
        **_NOTE_ANSWERS,
        403: {"description": "The signer is not a party of this case"},
        404: {"description": "No such case"},
        409: {"description": "Not allowed in the case's state, or accepted before"},
    },
)
def respond_to_case(request: Request, case_id: CaseId, body: SignedCaseResponseIn) -> Any:
    """Acknowledge or dispute an open case, resolve or withdraw one that is not closed, with
    a note. The response must be signed by a party of the case for this case; the answer is
    the case with its new step."""
    policy = note_policy(request)
    policy.attempt(request)
    domain = _domain(request)
    signed = parse_note(body.model_dump(), CaseResponse)
    wallet = _wallet(request)
    signed.verify(domain, wallet)
    policy.charge(signed.signer)
    return respond(store_of(request), case_id, signed, domain, wallet)
