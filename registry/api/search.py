"""Search and match endpoints: which declarations resemble a code, or an uploaded file."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from registry.api.errors import ERROR_RESPONSES, ErrorBody
from registry.api.formats import ISCC, documented
from registry.api.models import Declaration
from registry.api.state import state_of
from registry.errors import InputError, RegistryError
from registry.search.similarity import DEFAULT_THRESHOLD, match_file, query_units, similar

router = APIRouter(prefix="/v1", tags=["search"], responses=ERROR_RESPONSES)

MAX_LIMIT = 200


class UnitDistance(BaseModel):
    unit_type: str = Field(examples=["CONTENT-IMAGE"])
    distance: int = Field(description="Differing bits among the first 64 of the unit")
    similarity: float = Field(description="1 - distance / 64")


class Match(BaseModel):
    declaration: Declaration
    score: float = Field(description="Mean similarity over the matched units, 0..1")
    units: list[UnitDistance]


class UnitHit(BaseModel):
    iscc_id: str
    declarer: str
    distance: int


class SearchResult(BaseModel):
    query: str
    unit_types: list[str] = Field(description="Unit types the query was compared on")
    threshold: int
    matches: list[Match] = Field(description="Best declarations over all units, best first")
    by_unit: dict[str, list[UnitHit]] = Field(
        description="Per unit type, the nearest declarations on that unit alone (top-k each)"
    )


class ExcerptPlace(BaseModel):
    kind: str = Field(
        description="Feature kind compared: video, audio, sound or text", examples=["video"]
    )
    unit: str = Field(description="Unit of offset and length: ms or chars", examples=["ms"])
    score: float = Field(description="Share of the upload's segments that match there, 0..1")
    offset: int = Field(description="Where the upload starts inside the declared work (unit)")
    length: int = Field(description="Length of the matching stretch (unit)")
    matched: int = Field(description="Number of the upload's segments that matched")
    interval: list[int] | None = Field(
        None,
        description="When the place is ambiguous (self-similar segments): the first and last "
        "place the upload may start at (unit); null when `offset` is certain",
    )
    places: list[int] = Field(
        default_factory=list,
        description="When ambiguous: the places that fit as well, in order (the first 100)",
    )
    place_count: int = Field(0, description="How many places fit as well (0 when certain)")
    period: int | None = Field(
        None,
        description="When the places repeat at a regular step (a looped bar): that step (unit)",
    )
    located_by: str | None = Field(
        None, description="The other kind whose offset chose this one among equal places"
    )


class EvidencePart(BaseModel):
    part: str = Field(description="video, audio, text or content", examples=["audio"])
    weight: float = Field(description="0 at what chance reaches, 1 for a perfect match")
    figure: float = Field(description="Snippet score, or Content-Code distance in bits")


class SnippetMatch(BaseModel):
    declaration: Declaration
    score: float = Field(
        description="Evidence of every modality combined (docs/matching.md), 0..1: a work "
        "matched by picture and sound outranks one matched by sound alone"
    )
    evidence: list[EvidencePart] = Field(description="The parts the score combines")
    kinds: list[ExcerptPlace] = Field(description="Per feature kind, where the upload sits")


class MatchResult(BaseModel):
    iscc: dict[str, Any] = Field(description="The ISCC of the uploaded file, as `gen` prints it")
    exact: list[Declaration] = Field(description="Declarations of the very same bytes (datahash)")
    similar: SearchResult
    snippets: list[SnippetMatch] = Field(
        description="Declared works the upload is an excerpt of (granular features), best first"
    )


Threshold = Annotated[
    int, Query(ge=0, le=64, description="Most differing bits (of 64) per unit to count as similar")
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Most matches to return")]
Revoked = Annotated[bool, Query(description="Include revoked declarations")]


@router.get("/search", response_model=SearchResult, summary="Find similar declarations")
def search(
    request: Request,
    iscc: Annotated[
        str,
        Query(
            max_length=256,
            description="An ISCC-CODE or a single ISCC-UNIT",
            json_schema_extra=documented(ISCC),
        ),
    ],
    threshold: Threshold = DEFAULT_THRESHOLD,
    limit: Limit = 20,
    include_revoked: Revoked = False,
) -> dict[str, Any]:
    """Declarations whose Meta, Content or Data units are within `threshold` bits of the
    query's, ranked by how many units match and how closely."""
    state = state_of(request)
    units = query_units(iscc)
    return similar(state.store, state.similarity(), iscc, units, threshold, limit, include_revoked)


_SAFE_NAME = re.compile(r"[^\w.\- ]+")
MATCH_PATH = "/v1/match"  # streamed: its body is a file, not JSON


def safe_name(filename: str) -> str:
    """A plain file name in the upload folder for whatever the client called its file: only
    word characters, dots, dashes and spaces, never a name of dots alone ("..", which is the
    folder's parent), and the extension kept, since the ISCC's media type depends on it."""
    name = _SAFE_NAME.sub("_", filename.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return "upload" + name if not name.strip(".") else name


@router.post(
    "/match",
    response_model=MatchResult,
    summary="Upload a file: its ISCC, and who declared it or something like it",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
    responses={
        413: {"description": "Upload larger than the service accepts"},
        415: {"model": ErrorBody, "description": "A file of a known kind that cannot be read"},
    },
)
async def match(
    request: Request,
    filename: Annotated[
        str,
        Query(
            min_length=1,
            max_length=255,
            description="The file's name (its extension "
            "and name feed the ISCC as they do in `gen`)",
        ),
    ],
    threshold: Threshold = DEFAULT_THRESHOLD,
    limit: Limit = 20,
    include_revoked: Revoked = False,
) -> dict[str, Any]:
    """The request body is the file itself, streamed to disk (never held in memory)."""
    state = state_of(request)
    name = safe_name(filename)
    folder = Path(tempfile.mkdtemp(prefix="iscc-match-"))
    try:
        path = folder / name
        size = 0
        # The body's size and pace are bounded while it streams (registry.api.limits).
        with path.open("wb") as sink:
            async for chunk in request.stream():
                size += len(chunk)
                await anyio.to_thread.run_sync(sink.write, chunk)
        if size == 0:
            raise InputError("the upload is empty")
        try:
            return await anyio.to_thread.run_sync(
                match_file,
                state.store,
                state.similarity(),
                path,
                threshold,
                limit,
                include_revoked,
                state.snippets(),
            )
        except RegistryError as exc:
            # Messages name the file by its path; the client knows it by its own name only.
            exc.args = (str(exc).replace(str(path), filename).replace(str(folder), ""),)
            raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
