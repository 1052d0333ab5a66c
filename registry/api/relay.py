"""Relay endpoints: creators without gas post signed declarations and owner actions."""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from registry.api.chain_threads import in_chain_thread
from registry.api.errors import (
    ERROR_RESPONSES,
    NotFound,
    RateLimited,
    RelayForbidden,
    RelayUnauthorized,
)
from registry.api.formats import ISCC, Address, Digest, HexBytes, Uint256
from registry.api.ratelimit import RateLimiter
from registry.api.relayer import (
    Job,
    RelayQueue,
    action_key,
    declaration_key,
    grant_key,
    termination_key,
)
from registry.api.state import DEVNET_CHAIN_ID, client_of, state_of
from registry.chain.actions import SignedAction
from registry.chain.declaration import SignedDeclaration
from registry.chain.licences import (
    MAX_TERMS_URL_LENGTH,
    MAX_TERRITORIES,
    SignedGrant,
    SignedTermination,
)
from registry.config import Settings

router = APIRouter(prefix="/v1/relay", tags=["relay"], responses=ERROR_RESPONSES)

MAX_WAIT_S = 120.0


class DomainIn(BaseModel):
    name: str = Field(max_length=64, examples=["IsccRegistry"])
    version: str = Field(max_length=16, examples=["2"])
    chainId: int = Field(ge=0, lt=2**256)
    verifyingContract: Address


class DeclarationIn(BaseModel):
    iscc_code: str = Field(max_length=200, pattern=ISCC)
    datahash: Digest
    metahash: Digest
    gateway: str = Field(max_length=1024)
    nonce: Uint256
    deadline: int = Field(ge=0, lt=2**64)


class SignedDeclarationIn(BaseModel):
    """What `iscc-registry sign` writes."""

    declaration: DeclarationIn
    declarer: Address = Field(description="Signed as the struct's first field")
    kind: Literal["Declaration", "SealedDeclaration"] = Field(
        "Declaration", description="This relay takes plain declarations only"
    )
    signature: HexBytes = Field(description="0x-hex; ERC-1271 signatures may be long")
    domain: DomainIn


class ActionIn(BaseModel):
    kind: Literal["revoke", "update", "transfer"]
    iscc_id: str = Field(
        max_length=64,
        pattern=r"^((ISCC:)?MAI[A-Z2-7]{13,}|[0-9]{1,40})$",
        description="ISCC:MAI... or the integer body",
    )
    metahash: Digest | None = Field(None, description="update only")
    gateway: str = Field("", max_length=1024, description="update only")
    to: Address | None = Field(None, description="transfer only")
    actions: Uint256 = Field(description="The declaration's action count the owner signed for")
    deadline: int = Field(ge=0, lt=2**64)


class SignedActionIn(BaseModel):
    action: ActionIn
    owner: Address
    signature: HexBytes
    domain: DomainIn


class LicenceDomainIn(BaseModel):
    name: Literal["LicenceRegistry"]
    version: Literal["1"]
    chainId: int = Field(ge=0, lt=2**256)
    verifyingContract: Address


Bytes32 = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$", examples=["0x" + "00" * 32])]


class GrantIn(BaseModel):
    """A licence grant as `registry.chain.licences.GrantRequest.to_json` writes it: the
    contract's Grant struct, raw."""

    iscc_id: str = Field(
        max_length=64,
        pattern=r"^((ISCC:)?MAI[A-Z2-7]{13,}|[0-9]{1,20})$",
        description="ISCC-ID of the declaration licensed: ISCC:MAI... or the integer body",
    )
    grantor: Address
    licensee: Address | None = Field(None, description="null or the zero address: public")
    parent: Bytes32 | None = Field(None, description="Grant id of the parent grant, if any")
    territories: str = Field(
        max_length=2 * MAX_TERRITORIES,
        pattern=r"^([A-Z]{2})*$",
        description="ISO 3166-1 alpha-2 codes concatenated, sorted: 'ATDE'",
        examples=["ATDE"],
    )
    worldwide: bool = Field(description="The world except `territories`")
    uses: int = Field(ge=1, lt=2**32, description="Bitmask of registry.ledger.terms.Use")
    conditions: int = Field(0, ge=0, le=7, description="Bitmask of Conditions")
    start: int = Field(ge=0, lt=2**64, description="Unix seconds, inclusive")
    end: int = Field(0, ge=0, lt=2**64, description="Unix seconds, exclusive; 0: no end")
    exclusive: bool = False
    sublicensable: bool = False
    terms_url: str = Field("", max_length=MAX_TERMS_URL_LENGTH)
    terms_hash: Bytes32 | None = Field(None, description="sha256 of the terms document")
    nonce: Uint256
    deadline: int = Field(ge=0, lt=2**64)


class SignedGrantIn(BaseModel):
    """What `registry.chain.licences.SignedGrant.to_json` writes."""

    grant: GrantIn
    signature: HexBytes = Field(description="0x-hex; ERC-1271 signatures may be long")
    domain: LicenceDomainIn


class TerminationIn(BaseModel):
    grant_id: Bytes32
    by: Address = Field(description="The grantor or the licensee, who signs")
    deadline: int = Field(ge=0, lt=2**64)


class SignedTerminationIn(BaseModel):
    termination: TerminationIn
    signature: HexBytes
    domain: LicenceDomainIn


class JobOut(BaseModel):
    job: str = Field(description="Id of this relay job; GET /v1/relay/jobs/{job} for its state")
    kind: str
    state: Literal["pending", "done", "failed"]
    submitter: str
    result: dict[str, Any] | None = Field(
        description="The chain's answer once mined: ISCC-ID, transaction hash, block, gas"
    )
    error: str | None


# What a request is charged up front, before the chain tells its real cost (a relayed
# declaration is ~56k gas alone and less in a batch: docs/benchmarks.md); settled when mined.
ESTIMATED_GAS = {
    "declare": 70_000,
    "revoke": 50_000,
    "update": 60_000,
    "transfer": 50_000,
    "grant": 100_000,
    "terminate": 40_000,
}


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class RelayPolicy:
    """Who may have the relayer pay, and how much: access (open, tokens, closed), attempts per
    client, requests per declarer, and gas budgets over everyone, per declarer and per token.

    Everything a third party could spend on someone else's behalf is charged only after the
    signature verified: a forged `declarer` costs its sender an attempt, never Bob's budget.
    """

    def __init__(self, settings: Settings, chain_id: int | None) -> None:
        access = settings.relay_access
        if access == "auto":
            access = "open" if chain_id == DEVNET_CHAIN_ID else "tokens"
        self.access = access
        self._tokens = [_digest(t) for t in settings.relay_tokens if t]
        self.client = RateLimiter(settings.relay_per_client_per_min)
        self.declarer = RateLimiter(settings.relay_per_declarer_per_min)
        # Gas buckets hold one hour's budget and refill over the hour.
        self.gas = RateLimiter(settings.relay_gas_per_hour / 60, settings.relay_gas_per_hour)
        self.gas_declarer = RateLimiter(
            settings.relay_gas_per_declarer_per_hour / 60,
            settings.relay_gas_per_declarer_per_hour,
        )
        self.gas_token = RateLimiter(
            settings.relay_gas_per_token_per_hour / 60, settings.relay_gas_per_token_per_hour
        )
        self.waits_per_client = settings.relay_waits_per_client
        self._waiting: Counter[str] = Counter()

    def authorize(self, request: Request) -> str | None:
        """Refuse a request this relay does not pay for at all; returns the sponsor (the
        token's digest, hex) when tokens are required."""
        if self.access == "closed":
            raise RelayForbidden("this service does not relay")
        if self.access == "tokens":
            return self._sponsor(request.headers.get("authorization", ""))
        return None

    def attempt(self, request: Request) -> None:
        """Count a new submission against its client's address, before its signature is
        checked: the check costs node calls, and only the client itself spends this limit."""
        self._charge_one(
            self.client, client_of(request), 1, "too many relay requests for this client"
        )

    def _sponsor(self, authorization: str) -> str:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise RelayUnauthorized(
                "this relay pays only for holders of a relay token (Authorization: Bearer ...)"
            )
        digest = _digest(token.strip())
        # Compared in constant time, so response timing tells nothing about the tokens.
        if not any([hmac.compare_digest(digest, known) for known in self._tokens]):
            raise RelayUnauthorized("unknown relay token")
        return digest.hex()

    def charge(self, job: Job, sponsor: str | None) -> None:
        """Charge a verified job to its signer, its sponsor and the relayer's total; all or
        nothing. The gas charged is an estimate, settled by `job.settle` once mined."""
        signer = job.submitter.lower()
        estimate = ESTIMATED_GAS.get(job.kind, max(ESTIMATED_GAS.values()))
        charges: list[tuple[RateLimiter, str, float, str]] = [
            (self.declarer, signer, 1, "too many relay requests for this declarer"),
            (self.gas_declarer, signer, estimate, "this declarer's gas budget is spent"),
        ]
        if sponsor is not None:
            charges.append(
                (self.gas_token, sponsor, estimate, "this relay token's gas budget is spent")
            )
        charges.append((self.gas, "", estimate, "the relayer's gas budget is spent"))
        charged: list[tuple[RateLimiter, str, float]] = []
        try:
            for bucket, key, cost, what in charges:
                self._charge_one(bucket, key, cost, what)
                charged.append((bucket, key, cost))
        except RateLimited:
            for bucket, key, cost in charged:
                bucket.adjust(key, -cost)
            raise
        gas_buckets = [(b, k) for b, k, _c in charged if b is not self.declarer]

        def settle(gas: int) -> None:
            for bucket, key in gas_buckets:
                bucket.adjust(key, gas - estimate)

        job.settle = settle

    @staticmethod
    def _charge_one(bucket: RateLimiter, key: str, cost: float, refusal: str) -> None:
        if wait := bucket.allow(key, cost):
            raise RateLimited(f"{refusal}; retry in {wait:.0f} s", wait)

    @contextmanager
    def waiting(self, client: str) -> Iterator[bool]:
        """Whether this client may wait for a job now (True for at most `waits_per_client`
        requests at once). Used on the event loop only, so the counter needs no lock."""
        if self._waiting[client] >= self.waits_per_client:
            yield False
            return
        self._waiting[client] += 1
        try:
            yield True
        finally:
            self._waiting[client] -= 1
            if not self._waiting[client]:
                del self._waiting[client]


Wait = Annotated[
    float, Query(ge=0, le=MAX_WAIT_S, description="Seconds to wait for the transaction")
]

_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": JobOut, "description": "Mined (or failed on chain)"},
    202: {"model": JobOut, "description": "Queued; not mined within `wait`"},
    401: {"description": "This relay needs a relay token (Authorization: Bearer ...)"},
    403: {"description": "This service does not relay"},
    409: {
        "description": "The declaration's nonce is already used, or the action was signed for "
        "an earlier state of the declaration"
    },
    429: {"description": "Rate limit or gas budget of this client, declarer or token spent"},
    503: {"description": "This service has no relayer key or no chain"},
}


def _policy(request: Request) -> RelayPolicy:
    return request.app.state.relay_policy


async def _relay(request: Request) -> RelayQueue:
    # Connecting to the node and starting the worker block; the loop must not.
    return await in_chain_thread(request, state_of(request).relay)


async def _answer(request: Request, job: Job, wait: float) -> JSONResponse:
    if wait > 0 and job.state == "pending":
        with _policy(request).waiting(client_of(request)) as allowed:
            if allowed:
                await job.wait(wait)
    return JSONResponse(status_code=202 if job.state == "pending" else 200, content=job.to_dict())


async def _submit(
    request: Request, relay: RelayQueue, key: str, check: Callable[[RelayQueue], Job], wait: float
) -> JSONResponse:
    policy = _policy(request)
    sponsor = policy.authorize(request)
    # A retry of a known submission is answered from its job and costs no budget.
    if (known := relay.job(key)) is not None:
        return await _answer(request, known, wait)
    policy.attempt(request)
    job = await in_chain_thread(request, lambda: check(relay))
    if job.state == "pending" and relay.job(job.key) is None:
        policy.charge(job, sponsor)
        job, _new = relay.enqueue(job)
    return await _answer(request, job, wait)


@router.post("/declarations", response_model=JobOut, responses=_ANSWERS)
async def relay_declaration(request: Request, body: SignedDeclarationIn, wait: Wait = 30.0) -> Any:
    """Verify a signed declaration, send it in the next batch, answer once mined.

    Posting the same signed declaration again returns the same job: safe to retry.
    """
    relay = await _relay(request)
    signed = SignedDeclaration.from_json(body.model_dump())
    return await _submit(
        request, relay, declaration_key(signed), lambda r: r.check_declaration(signed), wait
    )


@router.post("/actions", response_model=JobOut, responses=_ANSWERS)
async def relay_action(request: Request, body: SignedActionIn, wait: Wait = 30.0) -> Any:
    """Verify an owner's signed revoke, update or transfer and send it; safe to retry."""
    relay = await _relay(request)
    signed = SignedAction.from_json(body.model_dump())
    return await _submit(request, relay, action_key(signed), lambda r: r.check_action(signed), wait)


_LICENCE_ANSWERS: dict[int | str, dict[str, Any]] = _ANSWERS | {
    409: {"description": "The grantor's nonce is already used, or the grant is terminated already"},
    429: {"description": "Rate limit or gas budget of this client, signer or token spent"},
}


@router.post("/grants", response_model=JobOut, responses=_LICENCE_ANSWERS)
async def relay_grant(request: Request, body: SignedGrantIn, wait: Wait = 30.0) -> Any:
    """Verify a grantor's signed licence grant and record it on the licence ledger in the next
    batch (one bad entry never sinks the others); answer once mined. The signature (a smart
    wallet's too, asked with a bounded call) is checked before the grantor's budget is
    charged. Posting the same signed grant again returns the same job: safe to retry."""
    relay = await _relay(request)
    signed = SignedGrant.from_json(body.model_dump())
    return await _submit(request, relay, grant_key(signed), lambda r: r.check_grant(signed), wait)


@router.post("/terminations", response_model=JobOut, responses=_LICENCE_ANSWERS)
async def relay_termination(request: Request, body: SignedTerminationIn, wait: Wait = 30.0) -> Any:
    """Verify a signed termination by a grant's grantor or licensee and send it; safe to
    retry (a grant is terminated once)."""
    relay = await _relay(request)
    signed = SignedTermination.from_json(body.model_dump())
    return await _submit(
        request, relay, termination_key(signed), lambda r: r.check_termination(signed), wait
    )


@router.get("/jobs/{job}", response_model=JobOut)
async def relay_job(
    request: Request, job: Annotated[str, Path(max_length=80)], wait: Wait = 0.0
) -> Any:
    """The state of a relay job (kept in memory since the service started). Waiting holds no
    server thread; a client waits on a few jobs at once at most, further waits answer at once."""
    found = (await _relay(request)).job(job)
    if found is None:
        raise NotFound(f"no relay job {job} (jobs are kept until the service restarts)")
    return await _answer(request, found, wait)
