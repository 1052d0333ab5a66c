"""Resolving a query (ISCC-ID, ISCC-CODE, datahash or declarer address) to declarations."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import iscc_lib
from eth_utils import to_checksum_address

from registry.chain.iscc_id import IsccId
from registry.errors import InvalidCode
from registry.iscc.codec import (
    code_from_bytes,
    code_to_bytes,
    digest_to_multihash,
    multihash_to_digest,
)
from registry.store.store import DeclarationRecord, Store

__all__ = ["ACCEPTED_FORMS", "ALL_KINDS", "Kind", "Resolution", "classify", "forms", "resolve"]

Kind = Literal["iscc-id", "iscc-code", "datahash", "declarer"]

_FORMS: dict[Kind, str] = {
    "iscc-id": "an ISCC-ID (ISCC:MAI...)",
    "iscc-code": "an ISCC-CODE (ISCC:K...)",
    "datahash": "a datahash (64 hex digits, optionally prefixed 1e20 and/or 0x)",
    "declarer": "a declarer address (0x + 40 hex digits)",
}
ALL_KINDS: tuple[Kind, ...] = tuple(_FORMS)


def forms(kinds: tuple[Kind, ...] = ALL_KINDS) -> str:
    """The accepted forms of a query, in words: "an ISCC-ID (...) or a declarer address (...)"."""
    words = [_FORMS[k] for k in kinds]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


ACCEPTED_FORMS = forms()
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_DATAHASH = re.compile(r"(0x)?(1e20)?[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Resolution:
    """What a query was taken for, its normalized form, and the declarations it found;
    `truncated` when there were more than the lookup's limit."""

    kind: Kind
    query: str
    records: list[DeclarationRecord]
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "query": self.query,
            "records": [r.to_dict() for r in self.records],
            "truncated": self.truncated,
        }


def classify(query: str, accepted: tuple[Kind, ...] = ALL_KINDS) -> tuple[Kind, str]:
    """The kind of a query and its normalized form; raises InvalidCode for anything else, and
    for a kind not in `accepted` (naming only the accepted forms)."""
    kind, normalized = _classify(query, accepted)
    if kind not in accepted:
        raise InvalidCode(f"{query!r} is {_FORMS[kind]}; expected {forms(accepted)}")
    return kind, normalized


def _classify(query: str, accepted: tuple[Kind, ...]) -> tuple[Kind, str]:
    text = query.strip()
    if _ADDRESS.fullmatch(text):
        return "declarer", to_checksum_address(text)
    if _DATAHASH.fullmatch(text):
        return "datahash", digest_to_multihash(multihash_to_digest(text))
    try:
        maintype, _subtype, version, _length, _body = iscc_lib.iscc_decode(
            text.upper().removeprefix("ISCC:")
        )
    except (ValueError, TypeError):
        raise InvalidCode(f"cannot resolve {query!r}: expected {forms(accepted)}") from None
    if maintype == iscc_lib.MT.ID:
        if version != iscc_lib.VS.V1:
            raise InvalidCode(f"{query!r} is an ISCC-ID v0; this registry mints ISCC-ID v1")
        return "iscc-id", str(IsccId.parse(text))
    # A single unit is looked up as given: no declaration's ISCC-CODE equals a lone unit yet,
    # and matching declarations by unit belongs to similarity search.
    return "iscc-code", code_from_bytes(code_to_bytes(text))


def resolve(store: Store, query: str, limit: int | None = None) -> Resolution:
    """Classify `query` and run the matching exact lookup; records come in chain order, the
    first `limit` of them if given."""
    kind, normalized = classify(query)
    fetch = None if limit is None else limit + 1
    if kind == "iscc-id":
        records = store.by_iscc_id(normalized, fetch)
    elif kind == "iscc-code":
        records = store.by_iscc_code(normalized, fetch)
    elif kind == "datahash":
        records = store.by_datahash(multihash_to_digest(normalized), fetch)
    else:
        records = store.by_declarer(normalized, fetch)
    truncated = limit is not None and len(records) > limit
    return Resolution(kind, normalized, records[:limit] if truncated else records, truncated)
