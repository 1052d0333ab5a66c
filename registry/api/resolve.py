"""Resolve endpoints: an identifier in, its declarations out."""

from __future__ import annotations

import contextlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from registry.api.admission import StoreReads
from registry.api.errors import ERROR_RESPONSES, NotFound
from registry.api.formats import ADDRESS, DIGEST, ISCC, IsccIdPath, documented
from registry.api.models import IsccIdResolution, Resolution
from registry.api.state import client_of, state_of, store_of
from registry.errors import InvalidCode
from registry.ledger.conflicts import list_conflicts
from registry.search import resolve as search

router = APIRouter(tags=["resolve"], responses=ERROR_RESPONSES)

# The ISCC-ID answer shows this many conflicts; /v1/conflicts pages through all of them.
ISCC_ID_CONFLICTS = 100

# A declarer may hold any number of declarations; one answer holds at most this many.
RESOLVE_LIMIT = 1000

QueryText = Annotated[
    str,
    Query(
        description=search.ACCEPTED_FORMS,
        max_length=512,
        json_schema_extra=documented(f"{ISCC}|{DIGEST}|{ADDRESS}"),
    ),
]


def _resolve(request: Request, query: str, limit: int | None = None) -> search.Resolution:
    resolution = search.resolve(store_of(request), query, limit)
    if not resolution.records:
        raise NotFound(f"no declaration indexed for {resolution.kind} {resolution.query}")
    return resolution


@router.get("/v1/resolve", response_model=Resolution, summary="Resolve any identifier")
async def resolve(
    request: Request,
    q: QueryText,
    limit: Annotated[
        int, Query(ge=1, le=RESOLVE_LIMIT, description="At most this many declarations")
    ] = 100,
) -> Response:
    """Declarations behind an ISCC-ID, ISCC-CODE, datahash or declarer address, in chain order:
    the first `limit` (`truncated` says whether there were more)."""

    # Serialised here rather than through the response model: the model documents the same
    # shape, and validating every record again cost a third of the route's time.
    def answer() -> str:
        return json.dumps(_resolve(request, q, limit).to_dict(), separators=(",", ":"))

    body = await reads_of(request).run(client_of(request), answer)
    return Response(body, media_type="application/json")


@router.get(
    "/iscc-id/{iscc_id}",
    response_model=IsccIdResolution,
    summary="Resolve an ISCC-ID (browsers are redirected to its gateway)",
    responses={307: {"description": "Redirect to the declaration's gateway (HTML clients)"}},
)
async def iscc_id(
    request: Request,
    iscc_id: IsccIdPath,
) -> Response | dict[str, object]:
    """JSON for programs; a browser (Accept: text/html) goes to the gateway the declarer named."""
    state = state_of(request)
    # One cached answer per ISCC-ID however it is spelled: keyed by the path as given, every
    # spelling (iscc:maig..., MAIG..., a space before it) was a cold read and an answer
    # cached again, as large as its metadata document (attacker review: 10 MB each).
    # The canonical spelling, the usual one, is its own key: looked up before classifying,
    # which cost a sixth of a cached answer.
    key = f"iscc-id:{iscc_id}"
    answer = state.peek(key)
    if answer is None:
        with contextlib.suppress(InvalidCode):  # answered with the same error, never cached
            key = "iscc-id:" + search.classify(iscc_id)[1]
        answer = state.peek(key)
    # A cached answer is served on the event loop, without admission; reads of the store are
    # admitted (StoreReads: on the loop within a budget, else in a thread).
    if answer is None:
        answer = await reads_of(request).run(
            client_of(request),
            lambda: state.cached(
                key, lambda: _iscc_id_answer(request, iscc_id), size=lambda a: len(a["body"])
            ),
        )
    target = answer["gateway_url"]
    if _wants_html(request) and target:
        return RedirectResponse(target, status_code=307)
    # Serialised once when cached; the response model above documents the same shape.
    return Response(answer["body"], media_type="application/json")


def _iscc_id_answer(request: Request, iscc_id: str) -> dict[str, Any]:
    kind, normalized = search.classify(iscc_id)
    if kind != "iscc-id":
        raise NotFound(f"{iscc_id!r} is not an ISCC-ID; use /v1/resolve?q= for other identifiers")
    store = store_of(request)
    view = store.iscc_id_view(normalized)
    if not view.records:
        raise NotFound(f"no declaration indexed for {kind} {normalized}")
    current = view.records[-1]
    resolution = search.Resolution(kind=kind, query=normalized, records=view.records)
    body = resolution.to_dict() | {
        "history": view.history,
        # Most declarations are in no conflict: listing them is the expensive part, so the
        # view's cheap flag decides whether to list at all.
        "conflicts": (
            list_conflicts(store, iscc_id=normalized, limit=ISCC_ID_CONFLICTS)
            if view.in_conflict
            else []
        ),
    }
    head = json.dumps(body, separators=(",", ":")).encode()
    # The document as stored, canonical JSON (put_metadata), last: parsed and serialised
    # again, a 10 MB one held the GIL for 200 ms, on the event loop or from a worker thread
    # alike (attacker review).
    document = view.document or b"null"
    return {
        "gateway_url": gateway_url(current.gateway, normalized),
        "body": b"".join((head[:-1], b',"metadata":', document, b"}")),
    }


def reads_of(request: Request) -> StoreReads:
    return request.app.state.store_reads


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept


def web_url(value: str) -> str | None:
    """`value` if it is an http(s) address, else None. Gateways and metadata are whatever the
    declarer wrote: a javascript: or data: URL must never become a redirect or a link."""
    return value if value.lower().startswith(("https://", "http://")) else None


def gateway_url(gateway: str, iscc_id: str) -> str | None:
    """A gateway may be a URI template naming the ISCC-ID (as ISCC gateways are written) or a
    plain URL; only http(s) targets are followed."""
    return web_url(gateway.replace("{iscc-id}", iscc_id).replace("{iscc_id}", iscc_id))
