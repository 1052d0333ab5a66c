"""Metadata documents a declaration's metahash commits to: canonical form, hash, known fields.

The metahash is blake3 over the JCS (RFC 8785) canonical JSON, exactly as iscc-lib computes it for
a Meta-Code's `meta` payload, so a document stored here hashes to the metahash iscc-sdk would
declare for it. iscc-lib does the canonicalisation (`json_to_data_url`, the step its Meta-Code
uses, without the Meta-Code's 128 kB cap on `meta`); it is not re-implemented here.

Size: a plain document stays within 64 KiB. A document carrying granular features (snippet
matching) may be larger, because a film has about 13 segments per second (5 video frames, 8 audio
items), some 26 bytes of JSON each: 2.5 MB for two hours. Its features are bounded by
`granular.MAX_SEGMENTS` (about 8.5 hours of film with sound) and the whole document by
MAX_FEATURE_DOCUMENT_BYTES, so neither an upload nor a stored row can grow without limit.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import blake3
import iscc_lib
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from registry.errors import InputError
from registry.iscc.codec import digest_to_multihash, multihash_to_digest
from registry.iscc.granular import parse_features

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_FEATURE_DOCUMENT_BYTES",
    "CanonicalMetadata",
    "Metadata",
    "canonicalize",
]

MAX_DOCUMENT_BYTES = 64 * 1024
"""Largest document without granular features, and largest rest of a document with them."""
MAX_FEATURE_DOCUMENT_BYTES = 12 * 1024 * 1024
"""Hard cap on a document with granular features (MAX_SEGMENTS of them fit with room to spare)."""


class Metadata(BaseModel):
    """The iscc-schema fields a registry shows people; any other field is kept as given."""

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(None, description="Title of the work")
    description: str | None = None
    creator: str | list[str] | None = Field(None, description="Who made the work")
    license: str | None = Field(None, description="URL of the licence the work is offered under")
    acquire: str | None = Field(None, description="URL where a licence can be acquired")
    credit: str | None = Field(None, description="How to credit the work")
    rights: str | None = Field(None, description="Copyright notice / rights holder")
    tdm: Any = Field(None, description="Text and data mining reservation (iscc-schema `tdm`)")
    genai: Any = Field(None, description="Generative AI training reservation (iscc-schema `genai`)")


@dataclass(frozen=True)
class CanonicalMetadata:
    """A validated metadata document in canonical bytes, with its metahash."""

    canonical: bytes
    metahash: str
    """blake3 multihash hex ("1e20..."), what a declaration's metahash field carries."""

    @property
    def digest(self) -> bytes:
        return multihash_to_digest(self.metahash)

    @property
    def document(self) -> dict[str, Any]:
        return json.loads(self.canonical)

    @property
    def fields(self) -> Metadata:
        return Metadata.model_validate(self.document)


def canonicalize(document: Any) -> CanonicalMetadata:
    """Validate a metadata document (a JSON object) and compute its canonical form and metahash;
    raises InputError with the reason when it is not acceptable."""
    if not isinstance(document, dict):
        raise InputError("metadata must be a JSON object")
    try:
        Metadata.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"metadata field {where!r}: {first['msg']}") from None
    try:
        text = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError as exc:
        raise InputError(f"metadata is not plain JSON: {exc}") from None
    size = len(text.encode())
    limit = MAX_FEATURE_DOCUMENT_BYTES if "features" in document else MAX_DOCUMENT_BYTES
    if size > limit:
        raise InputError(f"metadata is {size} bytes; the limit is {limit}")
    parse_features(document)
    if "features" in document:
        rest = {k: v for k, v in document.items() if k != "features"}
        rest_size = len(json.dumps(rest, ensure_ascii=False, separators=(",", ":")).encode())
        if rest_size > MAX_DOCUMENT_BYTES:
            raise InputError(
                f"metadata besides its features is {rest_size} bytes; the limit is "
                f"{MAX_DOCUMENT_BYTES}"
            )
    try:
        data_url = iscc_lib.json_to_data_url(text)
    except ValueError as exc:
        raise InputError(f"metadata rejected: {exc}") from None
    canonical = base64.b64decode(data_url.partition(",")[2])
    digest = blake3.blake3(canonical).digest()
    return CanonicalMetadata(canonical=canonical, metahash=digest_to_multihash(digest))
