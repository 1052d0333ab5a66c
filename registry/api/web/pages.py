"""The pages for people: upload a file, a result, search, a declaration, a declarer, the
conflicts. Rendered on the server from the same functions the JSON endpoints use, so the page
and the API never disagree."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from registry.api import search as search_api
from registry.api.chain_threads import NodeWaits
from registry.api.errors import NotFound
from registry.api.resolve import ISCC_ID_CONFLICTS, gateway_url, web_url
from registry.api.state import AppState, state_of
from registry.api.web import ledger_views, views
from registry.api.web.explain import compare_codes, explain_code, unit_title
from registry.chain.iscc_id import IsccId
from registry.chain.node_http import node_deadline
from registry.errors import InputError, InvalidCode, RegistryError, UnsupportedMedia
from registry.iscc.codec import code_from_bytes, code_to_bytes, multihash_to_digest
from registry.ledger import cases as ledger_cases
from registry.ledger.conflicts import list_conflicts
from registry.ledger.licence_views import licence_view, work_licences
from registry.search import resolve as search
from registry.search.similarity import DEFAULT_THRESHOLD, query_units
from registry.search.similarity import similar as similar_declarations

__all__ = ["error_page", "problem_page", "router", "templates"]

SIMILAR_LIMIT = 20
PAGE_SIZE = 20
# A declarer page finds its conflicted declarations among this many of the declarer's
# conflicts; more are listed on the conflicts page.
DECLARER_CONFLICTS = 500
# A work's page lists this many of its licence cases, newest first.
CASES_SHOWN = 50
# Anyone may grant over any work: the page shows the oldest this many.
LICENCES_SHOWN = 200

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


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        explain=explain_code,
        compare_codes=compare_codes,
        unit_title=unit_title,
        declared_at=views.declared_at,
        ago=views.ago,
        short=views.short,
        size_text=views.size_text,
        chain_name=views.chain_name,
        explorer_link=views.explorer_link,
        content_kind=views.content_kind,
        evidence_lines=views.evidence_lines,
        thumbnail_url=views.thumbnail_url,
        gateway_url=gateway_url,
        web_url=web_url,
        kind_text=ledger_views.kind_text,
        licence_status_text=ledger_views.licence_status_text,
        step_text=ledger_views.step_text,
        from_unix=ledger_views.from_unix,
        case_headline=ledger_views.case_headline,
    )
    env.filters["unit_titles"] = lambda unit_types: ", ".join(unit_title(t) for t in unit_types)
    return env


templates = Jinja2Templates(env=_environment())
router = APIRouter(include_in_schema=False)


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("query", "")
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(_HEADERS)
    return response


_TITLES = {404: "Not found", 413: "Too large", 429: "Too many requests", 503: "Unavailable"}


def problem_page(
    request: Request, status: int, message: str, query: str = "", forms: bool = False
) -> HTMLResponse:
    """The one error page: its title from the status, the message once, and the accepted
    forms of a query only when the query's form was the problem."""
    title = _TITLES.get(status, "Cannot look this up" if status < 500 else "Something went wrong")
    return _page(
        request, "problem.html", status, title=title, message=message, query=query, forms=forms
    )


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """A JSON API error as a browser sees it (registry.api.web.errors)."""
    if status == 404 and message == "Not Found":
        message = f"There is no page at {request.url.path}."
    return problem_page(request, status, message)


def _status(exc: RegistryError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, InputError | InvalidCode | UnsupportedMedia):
        return 400
    return 503


def _problem(request: Request, exc: RegistryError, query: str = "") -> HTMLResponse:
    return problem_page(request, _status(exc), str(exc), query)


def conflict_views(store: Any, records: Iterable[dict[str, Any]]) -> None:
    """Give each declaration dict its conflicts as the pages show them: the other declaration,
    who holds priority, the evidence, resolved or open, and licence disagreements."""
    for record in records:
        iscc_id = record["iscc_id"]
        views_ = []
        for c in list_conflicts(store, iscc_id=iscc_id, limit=ISCC_ID_CONFLICTS):
            first = c["earlier"]["iscc_id"] == iscc_id
            views_.append(
                {
                    "other": c["later"] if first else c["earlier"],
                    "holds_priority": first,
                    "evidence": c["evidence"],
                    "resolved": c["resolved"],
                    "disagreements": c["disagreements"],
                }
            )
        record["conflicts"] = views_


def _attach_metadata(store: Any, records: Iterable[dict[str, Any]]) -> None:
    """Each declaration's metadata document, where one is stored (title, thumbnail, ...)."""
    for record in records:
        document = None
        if record.get("metahash"):
            document = store.get_metadata(multihash_to_digest(record["metahash"]))
        try:
            record["metadata"] = json.loads(document) if document else None
        except ValueError:
            record["metadata"] = None


def _prepare(store: Any, records: Iterable[dict[str, Any]]) -> None:
    """Conflicts and metadata of declarations about to be shown (and of the declarations
    their conflicts name, which the pages title too)."""
    records = list(records)
    conflict_views(store, records)
    others = [c["other"] for r in records for c in r["conflicts"]]
    _attach_metadata(store, [*records, *others])


def _declare_context(request: Request) -> dict[str, Any]:
    """What the declare section needs: the chain the registry is on, and this service's
    address for the command line."""
    deployment = state_of(request).deployment
    return {
        "chain_id": deployment.chain_id if deployment else None,
        "service_url": str(request.base_url).rstrip("/"),
    }


def _share_url(iscc: dict[str, Any]) -> str | None:
    if not iscc.get("iscc") or not iscc.get("datahash"):
        return None
    params = {"iscc": iscc["iscc"], "datahash": iscc["datahash"]}
    if iscc.get("metahash"):
        params["metahash"] = iscc["metahash"]
    if iscc.get("filename"):
        params["name"] = iscc["filename"]
    return "/result?" + urlencode(params)


def _result_context(request: Request, result: dict[str, Any], uploaded: bool) -> dict[str, Any]:
    related = views.related_declarations(result)
    return {
        "result": result,
        "related": related,
        "verdict": views.result_verdict(related),
        "uploaded": uploaded,
        "share_url": _share_url(result["iscc"]),
        "declare": _declare_context(request),
    }


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return _home(request)


def _home(request: Request, **context: Any) -> HTMLResponse:
    state = state_of(request)
    return _page(
        request,
        "index.html",
        max_upload_bytes=state.settings.max_upload_mb * 1024 * 1024,
        max_upload_mb=state.settings.max_upload_mb,
        declarations=state.store.count(),
        **context,
    )


@router.post("/upload", response_class=HTMLResponse)
async def upload(
    request: Request, filename: Annotated[str, Query(min_length=1, max_length=255)]
) -> HTMLResponse:
    """The match endpoint itself (same streaming, limits and JSON errors), answered as the
    HTML the upload page inserts."""
    result = await search_api.match(request, filename)
    matched = [m["declaration"] for m in result["similar"]["matches"]]
    snippets = [s["declaration"] for s in result["snippets"]]
    store = state_of(request).store
    # Store reads: off the event loop, as match runs its work.
    await anyio.to_thread.run_sync(_prepare, store, [*result["exact"], *matched, *snippets])
    return _page(request, "results.html", **_result_context(request, result, uploaded=True))


def _lookup(state: AppState, iscc: str | None, datahash: str | None) -> dict[str, Any]:
    """A result like an upload's, from an ISCC-CODE and/or a datahash alone: the declarations
    of those bytes and the similar ones (excerpts need the file's granular features)."""
    exact = []
    if datahash is not None:
        exact = [r.to_dict() for r in state.store.by_datahash(multihash_to_digest(datahash))]
        exact = [r for r in exact if not r["revoked"]]
    similar = {"matches": [], "threshold": DEFAULT_THRESHOLD}
    if iscc is not None:
        try:
            units = query_units(iscc)
        except InvalidCode:
            units = []
        if units:
            similar = similar_declarations(
                state.store, state.similarity(), iscc, units, DEFAULT_THRESHOLD, SIMILAR_LIMIT
            )
    answer = {
        "iscc": {"iscc": iscc, "datahash": datahash},
        "exact": exact,
        "similar": similar,
        "snippets": [],
    }
    _prepare(state.store, [*exact, *(m["declaration"] for m in similar["matches"])])
    return answer


@router.get("/result", response_class=HTMLResponse)
def result_page(
    request: Request,
    iscc: Annotated[str, Query(max_length=256)],
    datahash: Annotated[str, Query(max_length=80)],
    metahash: Annotated[str | None, Query(max_length=80)] = None,
    name: Annotated[str | None, Query(max_length=255)] = None,
) -> HTMLResponse:
    """A shared result: the upload's ISCC-CODE and datahash are all it takes to show who
    declared the file and what resembles it, without uploading it again."""
    try:
        code = code_from_bytes(code_to_bytes(iscc))
        digest = multihash_to_digest(datahash)
        datahash = "1e20" + digest.hex()
        if metahash:
            metahash = "1e20" + multihash_to_digest(metahash).hex()
        instance = [u for u in explain_code(code) if u.unit_type == "INSTANCE"]
        # The ISCC-CODE's Instance-Code is the start of the datahash: a link that pairs a
        # code with another file's datahash is refused rather than shown as one file.
        if instance and not digest.startswith(code_to_bytes(instance[0].code)[2:]):
            raise InvalidCode("the datahash is not the one of the file this ISCC-CODE names")
    except RegistryError as exc:
        return _problem(request, exc)
    state = state_of(request)
    result = _lookup(state, code, datahash)
    result["iscc"].update({"filename": name, "metahash": metahash})
    return _home(request, **_result_context(request, result, uploaded=False))


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, q: Annotated[str, Query(max_length=512)] = "") -> Response:
    if not q.strip():
        return RedirectResponse("/", status_code=303)
    state = state_of(request)
    try:
        kind, normalized = search.classify(q)
    except InvalidCode:
        return problem_page(
            request, 400, f"“{q.strip()}” is not something this registry can look up.", q, True
        )
    if kind == "iscc-id":
        return RedirectResponse(f"/declaration/{normalized}", status_code=303)
    if kind == "declarer":
        return RedirectResponse(f"/declarer/{normalized}", status_code=303)
    try:
        if kind == "iscc-code":
            result = _lookup(state, normalized, None)
            result["exact"] = [r.to_dict() for r in state.store.by_iscc_code(normalized)]
            _prepare(state.store, result["exact"])
        else:
            result = _lookup(state, None, normalized)
    except RegistryError as exc:
        return _problem(request, exc, q)
    context = _result_context(request, result, uploaded=False)
    context["share_url"] = None
    return _page(request, "search.html", query=q, kind=kind, normalized=normalized, **context)


_KIND_NAMES = {"iscc-id": "an ISCC-ID", "declarer": "an address (0x and 40 hex digits)"}


def _normalized_as(text: str, kind: search.Kind) -> str:
    """`text` in normalized form, which the URL says is of `kind`; raises InvalidCode if not."""
    try:
        found, normalized = search.classify(text)
    except InvalidCode:
        found = None
    if found != kind:
        raise InvalidCode(f"“{text}” is not {_KIND_NAMES[kind]}")
    return normalized


# Block times of history events, read from the chain once (a block's time never changes
# unless a reorg replaces it, and then only by seconds).
_BLOCK_TIMES: dict[tuple[str, int], datetime] = {}
_BLOCK_TIMES_LOCK = threading.Lock()
# A page asks the node for the times it does not know for at most this long (a declaration
# updated a thousand times has a thousand blocks); the rest show their block numbers until a
# later view asks again.
BLOCK_TIMES_BUDGET_S = 2.0


def _block_times(
    state: AppState, node_waits: NodeWaits, blocks: Iterable[int]
) -> dict[int, datetime]:
    """Times of these blocks where the chain answers; none asked while the indexer reports a
    problem (the node is likely away and every read would wait for its timeout), or while
    every slot for node calls of the shared pool is taken (a hanging node must not hold a
    thread per page view). A page never connects to the node: a connection cut by the page's
    budget would be remembered as a failure, and every relay, prepare and wallet check would
    be refused for CONNECT_RETRY_S (outside review); the health thread connects."""
    contract = state.contract or ""
    times: dict[int, datetime] = {}
    unknown = []
    with _BLOCK_TIMES_LOCK:
        for block in set(blocks):
            known = _BLOCK_TIMES.get((contract, block))
            if known is None:
                unknown.append(block)
            else:
                times[block] = known
    registry = state.connected_registry()
    if not unknown or registry is None or state.indexer_problem is not None:
        return times
    # The budget bounds the node's answers too: one that drips is cut at its end.
    with node_waits.slot() as taken, node_deadline(BLOCK_TIMES_BUDGET_S) as cut:
        if not taken:
            return times
        for block in sorted(unknown):
            if cut.expired:
                break
            try:
                stamp = registry.w3.eth.get_block(block)["timestamp"]
            except Exception:  # the timeline falls back to block numbers
                break
            times[block] = datetime.fromtimestamp(int(stamp), tz=UTC)
            with _BLOCK_TIMES_LOCK:
                if len(_BLOCK_TIMES) > 100_000:
                    _BLOCK_TIMES.clear()
                _BLOCK_TIMES[contract, block] = times[block]
    return times


@router.get("/declaration/{iscc_id}", response_class=HTMLResponse)
def declaration_page(request: Request, iscc_id: str) -> HTMLResponse:
    try:
        resolution = search.resolve(state_of(request).store, _normalized_as(iscc_id, "iscc-id"))
        if not resolution.records:
            raise NotFound(f"no declaration indexed for ISCC-ID {resolution.query}")
    except RegistryError as exc:
        return _problem(request, exc, iscc_id)
    state = state_of(request)
    answer = resolution.to_dict()
    current = answer["records"][-1]
    _prepare(state.store, answer["records"])
    history = state.store.history(resolution.query)
    node_waits = request.app.state.page_node_waits
    times = _block_times(state, node_waits, (e["block_number"] for e in history))
    timeline = views.history_lines(history, times, resolution.query)
    return _page(
        request,
        "declaration.html",
        resolution=answer,
        current=current,
        verdict=views.declaration_verdict(current),
        timeline=timeline,
        licences=work_licences(state.store, resolution.query, limit=LICENCES_SHOWN),
        licences_shown=LICENCES_SHOWN,
        cases=ledger_cases.list_cases(state.store, iscc_id=resolution.query, limit=CASES_SHOWN),
        cases_shown=CASES_SHOWN,
    )


@router.get("/case/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, case_id: str) -> HTMLResponse:
    """A licence case: what the conflict is, who the parties are, and its timeline."""
    store = state_of(request).store
    try:
        case = ledger_cases.get_case(store, case_id)
    except ledger_cases.CaseNotFound as exc:
        return problem_page(request, 404, str(exc), case_id)
    except RegistryError as exc:
        return _problem(request, exc, case_id)
    conflict = case["conflict"] or {}
    grants = []
    for grant_id in (conflict.get("grant_id"), conflict.get("other_grant_id")):
        record = (
            store.grant(grant_id, conflict.get("chain_id"), conflict.get("contract"))
            if grant_id
            else None
        )
        if record is not None:
            grants.append(licence_view(record, int(time.time())))
    works = list(
        dict.fromkeys(w for w in (conflict.get("iscc_id"), conflict.get("other_iscc_id")) if w)
    )
    return _page(request, "case.html", case=case, conflict=conflict, grants=grants, works=works)


@router.get("/declarer/{address}", response_class=HTMLResponse)
def declarer_page(
    request: Request,
    address: str,
    page: Annotated[int, Query(ge=1, le=10**6)] = 1,
    conflicted: Annotated[bool, Query()] = False,
) -> HTMLResponse:
    store = state_of(request).store
    try:
        declarer = _normalized_as(address, "declarer")
        total, revoked = store.declarer_counts(declarer)
    except RegistryError as exc:
        return _problem(request, exc, address)
    # The declarer's side of each open conflict, as the conflict listing has it already.
    involved: dict[str, dict[str, Any]] = {}
    for c in list_conflicts(store, declarer=declarer, status="open", limit=DECLARER_CONFLICTS):
        for side in (c["earlier"], c["later"]):
            if side["declarer"] == declarer:
                involved[side["iscc_id"]] = side
    first = (page - 1) * PAGE_SIZE
    if conflicted:
        shown_total = len(involved)
        ordered = sorted(involved.values(), key=lambda r: (r["block_number"], r["log_index"]))
        chosen = ordered[first : first + PAGE_SIZE]
    else:
        # Only this page is read: a declarer may hold millions of declarations.
        shown_total = total
        chosen = [r.to_dict() for r in store.by_declarer(declarer, PAGE_SIZE, first)]
    pages = max(1, -(-shown_total // PAGE_SIZE))
    _prepare(store, chosen)
    return _page(
        request,
        "declarer.html",
        status=200 if total else 404,
        declarer=declarer,
        total=total,
        revoked=revoked,
        conflicted_count=len(involved),
        conflicted=conflicted,
        records=chosen,
        shown_total=shown_total,
        page=page,
        pages=pages,
        first_index=first,
    )


Status = Literal["open", "resolved", "all"]


@router.get("/conflicts", response_class=HTMLResponse)
def conflicts_page(
    request: Request,
    status: Annotated[Status, Query()] = "open",
    declarer: Annotated[str, Query(max_length=64)] = "",
    iscc_id: Annotated[str, Query(max_length=128)] = "",
    page: Annotated[int, Query(ge=1, le=10**6)] = 1,
) -> HTMLResponse:
    """Conflicts between declarers, filtered by state, declarer or declaration, each with
    both sides and the evidence in words."""
    store = state_of(request).store
    try:
        if iscc_id.strip():
            iscc_id = str(IsccId.parse(iscc_id.strip()))
        found = list_conflicts(
            store,
            iscc_id=iscc_id or None,
            declarer=declarer.strip() or None,
            status=status,
            limit=PAGE_SIZE + 1,
            offset=(page - 1) * PAGE_SIZE,
        )
    except RegistryError as exc:
        return _problem(request, exc)
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    _attach_metadata(store, [side for c in found for side in (c["earlier"], c["later"])])
    filters = {"status": status, "declarer": declarer.strip(), "iscc_id": iscc_id}
    return _page(
        request,
        "conflicts.html",
        conflicts=found,
        filters=filters,
        page=page,
        more=more,
        base_query=urlencode({k: v for k, v in filters.items() if v}),
    )
