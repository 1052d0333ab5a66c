"""Segments of declarations in the store: granular features taken from metadata documents.

A declaration's segments come from the document its metahash names. The document may be stored
before the declaration is indexed or after it, so both writes call `index_segments` in their own
transaction, and it replaces whatever the declaration had: running it twice changes nothing. A
malformed document never stops the indexer: the declaration stays, without segments, and the
reason is kept in `segment_sources`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, select

from registry.errors import InputError
from registry.iscc.granular import parse_features
from registry.store.bulk import among, chunks, insert_rows
from registry.store.int64 import to_signed64
from registry.store.queue import requeue
from registry.store.schema import metadata_docs, segment_sources, segments

__all__ = ["index_segments"]

log = logging.getLogger(__name__)

_SEGMENT_COLUMNS = ("declaration_id", "kind", "start", "size", "value")
_SOURCE_COLUMNS = ("declaration_id", "metahash", "segments", "problem")


def _documents(conn: Connection, digests: set[bytes]) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for chunk in chunks(sorted(digests)):
        query = select(metadata_docs.c.metahash, metadata_docs.c.document).where(
            among(conn, metadata_docs.c.metahash, chunk)
        )
        found.update((bytes(h), bytes(d)) for h, d in conn.execute(query))
    return found


def _features(document: bytes) -> list[Any]:
    try:
        parsed = json.loads(document)
    except ValueError as exc:
        raise InputError(f"document is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise InputError("document is not a JSON object")
    return parse_features(parsed)


def index_segments(
    conn: Connection, targets: Sequence[tuple[int, bytes | None]], fresh: bool = False
) -> int:
    """Give each (declaration row id, metahash) the segments of its stored document, replacing
    what it had (`fresh`: the declarations were just inserted and have none); returns the
    number of segment rows written. Declarations whose document is not stored yet get none."""
    if not targets:
        return 0
    if not fresh:
        for chunk in chunks([declaration_id for declaration_id, _ in targets]):
            conn.execute(delete(segments).where(among(conn, segments.c.declaration_id, chunk)))
            conn.execute(
                delete(segment_sources).where(among(conn, segment_sources.c.declaration_id, chunk))
            )
    documents = _documents(conn, {bytes(m) for _, m in targets if m})
    rows: list[tuple[int, str, int, int, int]] = []
    sources: list[tuple[int, bytes, int, str | None]] = []
    for declaration_id, metahash in targets:
        document = documents.get(bytes(metahash)) if metahash else None
        if document is None:
            continue
        problem = None
        try:
            sets = _features(document)
        except InputError as exc:
            problem, sets = str(exc), []
            log.warning("declaration row %s: segments skipped: %s", declaration_id, problem)
        before = len(rows)
        for feature_set in sets:
            rows += [
                (declaration_id, feature_set.kind, start, size, to_signed64(value))
                for value, start, size in zip(
                    feature_set.simprints, feature_set.offsets, feature_set.sizes, strict=True
                )
            ]
        sources.append((declaration_id, bytes(metahash), len(rows) - before, problem))
    insert_rows(conn, segments, _SEGMENT_COLUMNS, rows)
    insert_rows(conn, segment_sources, _SOURCE_COLUMNS, sources)
    if not fresh:
        # New segments are new evidence: check these declarations for conflicts again (fresh
        # ones were queued with their insert).
        requeue(conn, [declaration_id for declaration_id, _m, count, _p in sources if count])
    return len(rows)
