"""Licence ledger endpoints: a work's licences, usage reports, cases and the parties' responses.

Signed notes (usage reports, case responses) are checked like relayed declarations: a client's
attempts are counted before the signature is verified (verifying costs CPU), the signer's own
limit only after it verified, so nobody can spend another party's allowance.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from registry.api.errors import ERROR_RESPONSES, RateLimited
from registry.api.formats import ADDRESS, ISCC_ID, documented
from registry.api.models import Case, CaseList, LicenceList
from registry.api.ratelimit import RateLimiter
from registry.api.state import client_of, store_of
from registry.chain.iscc_id import IsccId
from registry.ledger import cases
from registry.ledger.licence_views import work_licences

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


@router.get(
    "/works/{iscc_id}/licences",
    response_model=LicenceList,
    summary="The licences granted over a work",
)
def licences(
    request: Request,
    iscc_id: Annotated[
        str,
        Path(
            max_length=128,
            examples=["ISCC:MAIGBISBQHSAAAAA"],
            json_schema_extra=documented(ISCC_ID),
        ),
    ],
) -> dict[str, Any]:
    """Every grant over the declaration (sublicences included) in chain order: who holds it
    (or `public`), where, for what use, when, exclusive or not, its status, and its open
    licence conflicts with their cases. An ISCC-ID nobody licensed has an empty list."""
    canonical = str(IsccId.parse(iscc_id))
    return {"iscc_id": canonical, "licences": work_licences(store_of(request), canonical)}


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
