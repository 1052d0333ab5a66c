"""The pages for people: upload a file, search, a declaration, a declarer. Rendered on the
server from the same functions the JSON endpoints use, so the page and the API never disagree."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from registry.api import search as search_api
from registry.api.errors import NotFound
from registry.api.resolve import ISCC_ID_CONFLICTS, gateway_url, web_url
from registry.api.state import state_of
from registry.api.web.explain import explain_code
from registry.chain.iscc_id import IsccId
from registry.errors import InputError, InvalidCode, RegistryError, UnsupportedMedia
from registry.ledger.conflicts import list_conflicts
from registry.search import resolve as search
from registry.search.similarity import DEFAULT_THRESHOLD, query_units
from registry.search.similarity import similar as similar_declarations

__all__ = ["router"]

SIMILAR_LIMIT = 20

# Everything a page shows comes from this origin; declarer-written strings (gateway, metadata)
# are escaped by Jinja, and this policy is the second wall should an escape ever be missed.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _declared_at(iscc_id: str) -> datetime | None:
    """The minting time an ISCC-ID carries (the block's time is not indexed)."""
    try:
        return IsccId.parse(iscc_id).datetime
    except InvalidCode:
        return None


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        explain=explain_code, declared_at=_declared_at, gateway_url=gateway_url, web_url=web_url
    )
    return env


templates = Jinja2Templates(env=_environment())
router = APIRouter(include_in_schema=False)


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("query", "")
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(_HEADERS)
    return response


def _status(exc: RegistryError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, InputError | InvalidCode | UnsupportedMedia):
        return 400
    return 503


def _problem(request: Request, exc: RegistryError, query: str = "") -> HTMLResponse:
    status = _status(exc)
    return _page(
        request, "problem.html", status, message=str(exc), query=query, not_found=status == 404
    )


def conflict_views(request: Request, records: Iterable[dict[str, Any]]) -> None:
    """Give each declaration dict its conflicts as the pages show them: the other declaration,
    who holds priority, the evidence, resolved or open, and licence disagreements."""
    store = state_of(request).store
    for record in records:
        iscc_id = record["iscc_id"]
        views = []
        for c in list_conflicts(store, iscc_id=iscc_id, limit=ISCC_ID_CONFLICTS):
            first = c["earlier"]["iscc_id"] == iscc_id
            views.append(
                {
                    "other": c["later"] if first else c["earlier"],
                    "holds_priority": first,
                    "evidence": c["evidence"],
                    "resolved": c["resolved"],
                    "disagreements": c["disagreements"],
                }
            )
        record["conflicts"] = views


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    state = state_of(request)
    return _page(
        request,
        "index.html",
        max_upload_bytes=state.settings.max_upload_mb * 1024 * 1024,
        max_upload_mb=state.settings.max_upload_mb,
        declarations=state.store.count(),
    )


@router.post("/upload", response_class=HTMLResponse)
async def upload(
    request: Request, filename: Annotated[str, Query(min_length=1, max_length=255)]
) -> HTMLResponse:
    """The match endpoint itself (same streaming, limits and JSON errors), answered as the
    HTML the upload page inserts."""
    result = await search_api.match(request, filename)
    matched = [m["declaration"] for m in result["similar"]["matches"]]
    # Store reads: off the event loop, as match runs its work.
    await anyio.to_thread.run_sync(conflict_views, request, [*result["exact"], *matched])
    return _page(request, "results.html", result=result)


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, q: Annotated[str, Query(max_length=512)] = "") -> Response:
    if not q.strip():
        return RedirectResponse("/", status_code=303)
    state = state_of(request)
    try:
        resolution = search.resolve(state.store, q)
    except RegistryError as exc:
        return _problem(request, exc, q)
    if resolution.kind == "iscc-id":
        return RedirectResponse(f"/declaration/{resolution.query}", status_code=303)
    if resolution.kind == "declarer":
        return RedirectResponse(f"/declarer/{resolution.query}", status_code=303)
    similar = None
    if resolution.kind == "iscc-code":
        try:
            units = query_units(resolution.query)
        except InvalidCode:
            units = []
        if units:
            similar = similar_declarations(
                state.store,
                state.similarity(),
                resolution.query,
                units,
                DEFAULT_THRESHOLD,
                SIMILAR_LIMIT,
            )
    answer = resolution.to_dict()
    conflict_views(request, answer["records"])
    if similar is not None:
        conflict_views(request, [m["declaration"] for m in similar["matches"]])
    return _page(request, "search.html", query=q, resolution=answer, similar=similar)


def _resolve_as(request: Request, text: str, kind: search.Kind) -> search.Resolution:
    """Resolve `text`, which the URL says is of `kind`; raises InvalidCode if it is not."""
    if search.classify(text)[0] != kind:
        raise InvalidCode(f"{text!r} is not {_KIND_NAMES[kind]}")
    return search.resolve(state_of(request).store, text)


_KIND_NAMES = {"iscc-id": "an ISCC-ID", "declarer": "an address (0x + 40 hex digits)"}


@router.get("/declaration/{iscc_id}", response_class=HTMLResponse)
def declaration_page(request: Request, iscc_id: str) -> HTMLResponse:
    try:
        resolution = _resolve_as(request, iscc_id, "iscc-id")
        if not resolution.records:
            raise NotFound(f"no declaration indexed for ISCC-ID {resolution.query}")
    except RegistryError as exc:
        return _problem(request, exc, iscc_id)
    answer = resolution.to_dict()
    store = state_of(request).store
    current = answer["records"][-1]
    current["events"] = [
        {"event": e["event"], "block": e["block_number"], "tx": e["tx_hash"], **e["data"]}
        for e in store.history(resolution.query)
    ]
    record = resolution.records[-1]
    document = store.get_metadata(record.metahash) if record.metahash else None
    current["metadata"] = json.loads(document) if document else None
    conflict_views(request, answer["records"])
    return _page(request, "declaration.html", resolution=answer)


@router.get("/declarer/{address}", response_class=HTMLResponse)
def declarer_page(request: Request, address: str) -> HTMLResponse:
    try:
        resolution = _resolve_as(request, address, "declarer")
    except RegistryError as exc:
        return _problem(request, exc, address)
    answer = resolution.to_dict()
    conflict_views(request, answer["records"])
    return _page(
        request, "declarer.html", status=200 if resolution.records else 404, resolution=answer
    )
