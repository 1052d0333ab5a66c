"""Metadata endpoints: documents stored and served under the metahash they hash to."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from registry.api.errors import ERROR_RESPONSES, NotFound
from registry.api.formats import DIGEST, documented
from registry.api.state import store_of
from registry.errors import InputError, InvalidCode
from registry.iscc.codec import multihash_to_digest
from registry.metadata import Metadata, canonicalize

router = APIRouter(prefix="/v1/metadata", tags=["metadata"], responses=ERROR_RESPONSES)


class Stored(BaseModel):
    metahash: str = Field(description="blake3 multihash of the canonical document")
    created: bool = Field(description="False if the document was stored before")


MetahashPath = Annotated[
    str,
    Path(max_length=80, description="1e20 + 64 hex digits", json_schema_extra=documented(DIGEST)),
]


def _digest(metahash: str) -> bytes:
    try:
        return multihash_to_digest(metahash)
    except (InvalidCode, ValueError) as exc:
        raise InvalidCode(f"not a metahash: {metahash!r} ({exc})") from None


@router.post(
    "",
    response_model=Stored,
    status_code=201,
    responses={200: {"model": Stored, "description": "Already stored"}},
    summary="Store a metadata document",
)
def put_metadata(
    request: Request,
    document: Annotated[dict[str, Any], Body(description="iscc-schema style JSON object")],
    expect: Annotated[
        str | None,
        Query(
            max_length=80,
            description="Refuse unless the document hashes to this metahash",
            json_schema_extra=documented(DIGEST),
        ),
    ] = None,
) -> Any:
    """Canonicalise (JCS) and hash the document; anyone may store one, it is only ever served
    under its own hash, so it can be trusted exactly as far as the declaration naming it."""
    canonical = canonicalize(document)
    if expect is not None and _digest(expect) != canonical.digest:
        raise InputError(f"the document hashes to {canonical.metahash}, not to {expect}")
    created = store_of(request).put_metadata(canonical.digest, canonical.canonical)
    return JSONResponse(
        status_code=201 if created else 200,
        content={"metahash": canonical.metahash, "created": created},
    )


@router.get(
    "/{metahash}",
    response_model=Metadata,
    summary="The metadata document with this metahash (canonical JSON)",
)
def get_metadata(request: Request, metahash: MetahashPath) -> Response:
    document = store_of(request).get_metadata(_digest(metahash))
    if document is None:
        raise NotFound(f"no metadata document stored for {metahash}")
    return Response(document, media_type="application/json")
