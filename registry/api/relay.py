"""Relay endpoints: creators without gas post signed declarations and owner actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from registry.api.errors import ERROR_RESPONSES, NotFound
from registry.api.ratelimit import RateLimiter
from registry.api.relayer import Job, RelayQueue, action_key, declaration_key
from registry.api.state import state_of
from registry.chain.actions import SignedAction
from registry.chain.declaration import SignedDeclaration

router = APIRouter(prefix="/v1/relay", tags=["relay"], responses=ERROR_RESPONSES)

MAX_WAIT_S = 120.0


class DomainIn(BaseModel):
    name: str = Field(examples=["IsccRegistry"])
    version: str = Field(examples=["2"])
    chainId: int
    verifyingContract: str


class DeclarationIn(BaseModel):
    iscc_code: str = Field(max_length=200)
    datahash: str = Field(max_length=80)
    metahash: str = Field(max_length=80)
    gateway: str = Field(max_length=1024)
    nonce: str = Field(max_length=80, description="Decimal uint256")
    deadline: int = Field(ge=0, lt=2**64)


class SignedDeclarationIn(BaseModel):
    """What `iscc-registry sign` writes."""

    declaration: DeclarationIn
    declarer: str = Field(max_length=42, description="Signed as the struct's first field")
    kind: Literal["Declaration", "SealedDeclaration"] = Field(
        "Declaration", description="This relay takes plain declarations only"
    )
    signature: str = Field(max_length=2048, description="0x-hex; ERC-1271 signatures may be long")
    domain: DomainIn


class ActionIn(BaseModel):
    kind: Literal["revoke", "update", "transfer"]
    iscc_id: str = Field(max_length=64, description="ISCC:MAI... or the integer body")
    metahash: str | None = Field(None, max_length=80, description="update only")
    gateway: str = Field("", max_length=1024, description="update only")
    to: str | None = Field(None, max_length=42, description="transfer only")
    actions: str = Field(
        max_length=80, description="The declaration's action count the owner signed for"
    )
    deadline: int = Field(ge=0, lt=2**64)


class SignedActionIn(BaseModel):
    action: ActionIn
    owner: str = Field(max_length=42)
    signature: str = Field(max_length=2048)
    domain: DomainIn


class JobOut(BaseModel):
    job: str = Field(description="Id of this relay job; GET /v1/relay/jobs/{job} for its state")
    kind: str
    state: Literal["pending", "done", "failed"]
    submitter: str
    result: dict[str, Any] | None = Field(
        description="The chain's answer once mined: ISCC-ID, transaction hash, block, gas"
    )
    error: str | None


class RelayLimits:
    def __init__(self, per_declarer: float, per_client: float) -> None:
        self.declarer = RateLimiter(per_declarer)
        self.client = RateLimiter(per_client)


Wait = Annotated[
    float, Query(ge=0, le=MAX_WAIT_S, description="Seconds to wait for the transaction")
]

_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": JobOut, "description": "Mined (or failed on chain)"},
    202: {"model": JobOut, "description": "Queued; not mined within `wait`"},
    409: {
        "description": "The declaration's nonce is already used, or the action was signed for "
        "an earlier state of the declaration"
    },
    429: {"description": "Rate limit for this declarer or client exceeded"},
    503: {"description": "This service has no relayer key or no chain"},
}


def _relay(request: Request) -> RelayQueue:
    return state_of(request).relay()


def _limit(request: Request, submitter: str) -> JSONResponse | None:
    limits: RelayLimits = request.app.state.relay_limits
    client = request.client.host if request.client else "unknown"
    for bucket, key, who in (
        (limits.client, client, "client"),
        (limits.declarer, submitter.lower(), "declarer"),
    ):
        wait = bucket.allow(key)
        if wait:
            return JSONResponse(
                status_code=429,
                headers={"Retry-After": str(int(wait) + 1)},
                content={
                    "error": "rate-limited",
                    "message": f"too many relay requests for this {who}; retry in {wait:.0f} s",
                },
            )
    return None


def _answer(job: Job, wait: float) -> JSONResponse:
    job.done.wait(wait)
    if job.state == "pending":
        return JSONResponse(status_code=202, content=job.to_dict())
    return JSONResponse(status_code=200, content=job.to_dict())


def _submit(
    request: Request,
    relay: RelayQueue,
    key: str,
    submitter: str,
    submit: Callable[[], tuple[Job, bool]],
    wait: float,
) -> JSONResponse:
    # A retry of a known submission is answered from its job and costs no rate budget.
    if (known := relay.job(key)) is not None:
        return _answer(known, wait)
    if (limited := _limit(request, submitter)) is not None:
        return limited
    job, _new = submit()
    return _answer(job, wait)


@router.post("/declarations", response_model=JobOut, responses=_ANSWERS)
def relay_declaration(request: Request, body: SignedDeclarationIn, wait: Wait = 30.0) -> Any:
    """Verify a signed declaration, send it in the next batch, answer once mined.

    Posting the same signed declaration again returns the same job: safe to retry.
    """
    relay = _relay(request)
    signed = SignedDeclaration.from_json(body.model_dump())
    return _submit(
        request,
        relay,
        declaration_key(signed),
        signed.declarer,
        lambda: relay.submit_declaration(signed),
        wait,
    )


@router.post("/actions", response_model=JobOut, responses=_ANSWERS)
def relay_action(request: Request, body: SignedActionIn, wait: Wait = 30.0) -> Any:
    """Verify an owner's signed revoke, update or transfer and send it; safe to retry."""
    relay = _relay(request)
    signed = SignedAction.from_json(body.model_dump())
    return _submit(
        request, relay, action_key(signed), signed.owner, lambda: relay.submit_action(signed), wait
    )


@router.get("/jobs/{job}", response_model=JobOut)
def relay_job(request: Request, job: str, wait: Wait = 0.0) -> Any:
    """The state of a relay job (kept in memory since the service started)."""
    found = _relay(request).job(job)
    if found is None:
        raise NotFound(f"no relay job {job} (jobs are kept until the service restarts)")
    return _answer(found, wait)
