"""The formats of identifiers the API takes, as patterns in the OpenAPI schema.

Relay bodies are validated against them (a malformed signature is a 422 naming the field, never
a parser's exception text). Query and path parameters only document them: the resolvers give a
more precise 400 (which part of an ISCC is wrong) than a pattern could, and a pattern cannot
tell a well-formed ISCC from one whose header names no known type; docs/api.md says so.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import Field

__all__ = [
    "ADDRESS",
    "DIGEST",
    "HEX_BYTES",
    "ISCC",
    "ISCC_ID",
    "UINT256",
    "Address",
    "Digest",
    "HexBytes",
    "Uint256",
    "documented",
]

ADDRESS = r"^0x[0-9a-fA-F]{40}$"
"""An EVM address (any case; checksums are not required)."""
DIGEST = r"^(0x)?(1e20)?[0-9a-fA-F]{64}$"
"""A blake3 datahash or metahash: 64 hex digits, optionally prefixed 0x and/or 1e20."""
HEX_BYTES = r"^0x([0-9a-fA-F]{2})*$"
UINT256 = r"^[0-9]{1,78}$"
ISCC = r"^(ISCC:)?[A-Z2-7]{16,}$"
"""An ISCC-CODE or ISCC-UNIT in base32 (the header decides which kind it is)."""
ISCC_ID = r"^(ISCC:)?MAI[A-Z2-7]{13,}$"
"""An ISCC-ID: MAI + base32."""

Address = Annotated[str, Field(pattern=ADDRESS, examples=["0x" + "ab" * 20])]
Digest = Annotated[str, Field(pattern=DIGEST, max_length=70, examples=["1e20" + "00" * 32])]
HexBytes = Annotated[str, Field(pattern=HEX_BYTES, max_length=2048)]
Uint256 = Annotated[str, Field(pattern=UINT256, description="Decimal uint256", examples=["0"])]


def documented(pattern: str, **extra: Any) -> dict[str, Any]:
    """Schema keywords for a parameter whose format the handler checks itself."""
    return {"pattern": pattern, **extra}


IsccIdPath = Annotated[
    str,
    Path(
        max_length=128,
        examples=["ISCC:MAIGBISBQHSAAAAA"],
        json_schema_extra=documented(ISCC_ID),
    ),
]
"""An ISCC-ID in a route's path; the handler parses it (a clear 400 for anything else)."""
