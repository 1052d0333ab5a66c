"""Conflict endpoints: declarations by different declarers of the same or overlapping content."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from registry.api.errors import ERROR_RESPONSES
from registry.api.formats import ADDRESS, ISCC_ID, documented
from registry.api.models import ConflictList
from registry.api.state import store_of
from registry.ledger.conflicts import Status, list_conflicts

router = APIRouter(prefix="/v1", tags=["conflicts"], responses=ERROR_RESPONSES)

MAX_LIMIT = 500


@router.get("/conflicts", response_model=ConflictList, summary="List conflicts between declarers")
def conflicts(
    request: Request,
    iscc_id: Annotated[
        str | None,
        Query(
            max_length=128,
            description="Only conflicts of this ISCC-ID",
            json_schema_extra=documented(ISCC_ID),
        ),
    ] = None,
    declarer: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Only conflicts of this declarer address",
            json_schema_extra=documented(ADDRESS),
        ),
    ] = None,
    status: Annotated[
        Status, Query(description="open: neither side revoked; resolved: one side revoked")
    ] = "all",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """Per declaration, per declarer or all: each conflict names both declarations, the
    evidence with its strength, whether it is resolved, and where licences disagree."""
    found = list_conflicts(
        store_of(request),
        iscc_id=iscc_id,
        declarer=declarer,
        status=status,
        limit=limit,
        offset=offset,
    )
    return {"conflicts": found}
