"""Similarity search over declared ISCC units: which declarations resemble a code, and how much.

Each searchable unit type (Meta, each Content kind, Data) has its own in-memory Hamming index
over the first 64 bits of the unit, built from the store's `units` table at start and topped up
from it before each query. The store stays the only truth: the index only proposes declaration
ids; rows the store no longer has (rolled back) are dropped when the records are fetched, and
every process can rebuild the same index from a shared PostgreSQL.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import iscc_lib
import numpy as np

from registry.chain.events import Unit, unit_type
from registry.errors import InvalidCode
from registry.iscc.codec import code_from_bytes, code_to_bytes, multihash_to_digest
from registry.search.following import FollowingIndex
from registry.search.hamming import HammingIndex
from registry.search.snippets import SnippetIndex, file_features, snippet_matches
from registry.store.int64 import from_signed64
from registry.store.store import DeclarationRecord, Store

__all__ = [
    "DEFAULT_THRESHOLD",
    "SEARCHABLE",
    "SimilarMatch",
    "SimilarityIndex",
    "match_file",
    "query_units",
    "similar",
]

DEFAULT_THRESHOLD = 10
"""Bits of difference out of 64 still called similar: about 84 % of bits equal. Re-encoded or
resized copies typically stay well within it; unrelated content sits near 32."""

# Records are fetched this many candidates at a time while building an answer.
_PAGE = 200
# The Instance-Code is a cryptographic hash: a near miss means nothing, equality is the
# datahash lookup.
SEARCHABLE = frozenset(
    {"META", "DATA", *(f"CONTENT-{k}" for k in ("TEXT", "IMAGE", "AUDIO", "VIDEO", "MIXED"))}
)


@dataclass(frozen=True)
class SimilarMatch:
    """A declaration near the query: distance per unit type it matched on (64-bit prefixes)."""

    declaration_id: int
    distances: dict[str, int] = field(default_factory=dict)

    @property
    def score(self) -> float:
        """Mean similarity over the matched units, 0..1."""
        return sum(1 - d / 64 for d in self.distances.values()) / len(self.distances)


def query_units(code: str) -> list[Unit]:
    """The searchable units of an ISCC-CODE, or the unit itself if `code` is a single unit."""
    try:
        normalized = code_from_bytes(code_to_bytes(code))
        parts = [iscc_lib.iscc_decode(u) for u in iscc_lib.iscc_decompose(normalized)]
    except (InvalidCode, ValueError, TypeError) as exc:
        raise InvalidCode(f"not an ISCC-CODE or ISCC-UNIT: {code!r} ({exc})") from None
    units = [Unit(unit_type(mt, st), body) for mt, st, _v, _l, body in parts]
    searchable = [u for u in units if u.unit_type in SEARCHABLE]
    if not searchable:
        raise InvalidCode(
            f"{code!r} has no unit to compare by similarity (an Instance-Code or ISCC-ID is "
            "looked up exactly: use resolve)"
        )
    return searchable


class SimilarityIndex(FollowingIndex):
    """Per-unit-type Hamming indexes over a store, refreshed incrementally by unit row id."""

    def __init__(self, store: Store) -> None:
        super().__init__(store, SEARCHABLE)

    def _last_id(self) -> int:
        return self.store.last_unit_id()

    def _rows(self, after_id: int, up_to_id: int) -> np.ndarray:
        return self.store.unit_values(self.names, after_id, up_to_id)

    def _add(self, name: str, index: HammingIndex, rows: np.ndarray) -> None:
        index.add(rows[:, 1], rows[:, 2].view(np.uint64))

    def clear(self) -> None:
        """Drop everything loaded; the next refresh loads the store afresh."""
        with self._lock:
            self._indexes = {}
            self._after = 0

    def search(
        self, units: Sequence[Unit], threshold: int = DEFAULT_THRESHOLD, limit: int | None = None
    ) -> list[SimilarMatch]:
        """Declarations within `threshold` bits on at least one unit, best first: more units
        matched, then smaller total distance, then earlier declaration."""
        if not 0 <= threshold <= 64:
            raise InvalidCode("threshold must be between 0 and 64 bits")
        self.refresh()
        found: dict[int, dict[str, int]] = {}
        for unit in units:
            index = self._indexes.get(unit.unit_type)
            if index is None:
                continue
            value = from_signed64(unit.value)
            for hit in index.search(value, threshold):
                per_type = found.setdefault(hit.key, {})
                per_type[unit.unit_type] = min(hit.distance, per_type.get(unit.unit_type, 64))
        ranked = sorted(found.items(), key=lambda kv: (-len(kv[1]), sum(kv[1].values()), kv[0]))
        return [SimilarMatch(key, distances) for key, distances in ranked[:limit]]

    def search_many(
        self, unit_type: str, values: Sequence[int], threshold: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Many units of one type (signed 64-bit values, as stored) against what the last
        refresh loaded: (position in `values`, declaration row id, distance) of every
        declaration within `threshold` bits of each."""
        index = self._indexes.get(unit_type)
        if index is None:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, empty
        return index.within_many(np.array(values, dtype=np.int64).view(np.uint64), threshold)


def similar(
    store: Store,
    index: SimilarityIndex,
    query: str,
    units: Sequence[Unit],
    threshold: int = DEFAULT_THRESHOLD,
    limit: int = 20,
    include_revoked: bool = False,
) -> dict[str, Any]:
    """The search answer as the API and CLI print it: the query, the unit types compared, the
    best `limit` declarations over all units (score and per-unit distances) and, per unit type,
    the nearest `limit` declarations on that unit alone."""
    found = index.search(units, threshold)
    known: dict[int, DeclarationRecord | None] = {}

    def shown(candidates: Sequence[int]) -> Iterator[tuple[int, DeclarationRecord]]:
        """The candidates' records in order, without rolled-back (and unless asked, revoked)
        ones; fetched a page at a time, so a loose threshold does not load every record."""
        for start in range(0, len(candidates), _PAGE):
            chunk = candidates[start : start + _PAGE]
            missing = [c for c in chunk if c not in known]
            fetched = store.by_ids(missing)
            known.update({c: fetched.get(c) for c in missing})
            for c in chunk:
                record = known[c]
                if record is not None and (include_revoked or not record.revoked):
                    yield c, record

    by_id = {m.declaration_id: m for m in found}
    matches = [
        {
            "declaration": record.to_dict(),
            "score": round(by_id[key].score, 4),
            "units": [
                {"unit_type": t, "distance": d, "similarity": round(1 - d / 64, 4)}
                for t, d in sorted(by_id[key].distances.items())
            ],
        }
        for key, record in itertools.islice(shown([m.declaration_id for m in found]), limit)
    ]
    by_unit: dict[str, list[dict[str, Any]]] = {}
    for unit in units:
        nearest = sorted(
            (m for m in found if unit.unit_type in m.distances),
            key=lambda m: (m.distances[unit.unit_type], m.declaration_id),
        )
        by_unit[unit.unit_type] = [
            {
                "iscc_id": record.iscc_id,
                "declarer": record.declarer,
                "distance": by_id[key].distances[unit.unit_type],
            }
            for key, record in itertools.islice(shown([m.declaration_id for m in nearest]), limit)
        ]
    return {
        "query": query,
        "unit_types": [u.unit_type for u in units],
        "threshold": threshold,
        "matches": matches,
        "by_unit": by_unit,
    }


def match_file(
    store: Store,
    index: SimilarityIndex,
    path: Path,
    threshold: int = DEFAULT_THRESHOLD,
    limit: int = 20,
    include_revoked: bool = False,
    snippets: SnippetIndex | None = None,
) -> dict[str, Any]:
    """A file's ISCC, the declarations of its exact bytes, the similar ones, and the declared
    works it is an excerpt of (with where it sits in them).

    Sound too short for an Audio-Code (an audio excerpt under about 3 s) has no ISCC, so nothing
    to be similar to: its answer gives the file's datahash and size in place of the ISCC
    (`iscc` null, `note` saying why) and finds excerpts by the finer sound segments alone."""
    from registry.iscc.data import gen_data_sum

    result, features = file_features(path)
    if result is None:
        data = gen_data_sum(path)
        iscc: dict[str, Any] = {
            "iscc": None,
            "filename": path.name,
            "filesize": data.filesize,
            "datahash": data.datahash,
            "note": "too short for an Audio-Code (Chromaprint needs about 3 s of sound): "
            "looked up by its sound segments only",
        }
        datahash, units = data.datahash, []
        found = {
            "query": "",
            "unit_types": [],
            "threshold": threshold,
            "matches": [],
            "by_unit": {},
        }
    else:
        iscc, datahash = result.to_dict(), result.datahash
        try:
            units = query_units(result.iscc)
        except InvalidCode:  # a data-only code of a tiny file may have no searchable unit
            units = []
        found = similar(store, index, result.iscc, units, threshold, limit, include_revoked)
    exact = [
        r.to_dict()
        for r in store.by_datahash(multihash_to_digest(datahash))
        if include_revoked or not r.revoked
    ]
    # A declaration the file is similar to as a whole adds its Content-Code distance to the
    # evidence of the segments (search.evidence).
    content = {}
    for match in index.search([u for u in units if u.unit_type.startswith("CONTENT-")], threshold):
        content[match.declaration_id] = (min(match.distances.values()), threshold)
    excerpts = snippet_matches(
        store, snippets or SnippetIndex(store), features, limit, include_revoked, content
    )
    return {"iscc": iscc, "exact": exact, "similar": found, "snippets": excerpts}
