"""What each unit of an ISCC-CODE is, in words a person without the standard can follow."""

from __future__ import annotations

from dataclasses import dataclass

import iscc_lib

from registry.chain.events import unit_type
from registry.iscc.codec import unit_type_name

__all__ = ["ExplainedUnit", "UnitComparison", "compare_codes", "explain_code", "unit_title"]

# Keyed like the unit types of the similarity index (registry.index.events), so the page can
# say which of these units a match was compared on.
_MEANING: dict[str, tuple[str, str]] = {
    "META": (
        "Meta-Code",
        "Similarity hash of the title and description the file carries. Files with nearly the "
        "same metadata have nearly the same Meta-Code.",
    ),
    "CONTENT-TEXT": (
        "Text-Code",
        "Similarity hash of the plain text extracted from the file. It stays close when the "
        "text is reformatted or saved in another file format.",
    ),
    "CONTENT-IMAGE": (
        "Image-Code",
        "Perceptual hash of the picture. It stays close when the image is resized, "
        "recompressed or slightly edited.",
    ),
    "CONTENT-AUDIO": (
        "Audio-Code",
        "Similarity hash of the sound's fingerprint. It stays close across re-encodings.",
    ),
    "CONTENT-VIDEO": (
        "Video-Code",
        "Similarity hash of the video's frame signatures. It stays close across re-encodings.",
    ),
    "CONTENT-MIXED": (
        "Mixed-Code",
        "Similarity hash over the content codes of a collection of works.",
    ),
    "DATA": (
        "Data-Code",
        "Similarity hash of the raw bytes in content-defined chunks. Files that share most of "
        "their bytes have close Data-Codes.",
    ),
    "INSTANCE": (
        "Instance-Code",
        "The start of the file's blake3 checksum (the datahash). Only the very same bytes give "
        "the same Instance-Code.",
    ),
}


@dataclass(frozen=True)
class ExplainedUnit:
    code: str
    """The unit as "ISCC:..."."""
    unit_type: str
    """META, CONTENT-TEXT, ..., DATA, INSTANCE: as the search endpoints name unit types."""
    title: str
    meaning: str
    bits: int


def explain_code(code: str) -> list[ExplainedUnit]:
    """The units of an ISCC-CODE (or the single unit given), each with what it measures; an
    empty list for anything that does not decompose, so a page can still show the raw code."""
    try:
        units = iscc_lib.iscc_decompose(code.strip().upper().removeprefix("ISCC:"))
        decoded = [iscc_lib.iscc_decode(u.removeprefix("ISCC:")) for u in units]
    except (ValueError, TypeError):
        return []
    explained = []
    for unit, (maintype, subtype, _version, _length, body) in zip(units, decoded, strict=True):
        kind = unit_type(maintype, subtype)
        title, meaning = _MEANING.get(
            kind, (kind.title(), "A unit type this registry does not compare.")
        )
        code_text = unit if unit.startswith("ISCC:") else f"ISCC:{unit}"
        explained.append(ExplainedUnit(code_text, kind, title, meaning, len(body) * 8))
    return explained


def unit_title(unit_type: str) -> str:
    """The one name the pages use for a unit type: "Image-Code" for CONTENT-IMAGE."""
    return unit_type_name(unit_type)


@dataclass(frozen=True)
class UnitComparison:
    unit: ExplainedUnit
    """The unit of the first code."""
    distance: int | None
    """Differing bits among the first 64; None when the other code has no such unit."""

    @property
    def similarity(self) -> float | None:
        return None if self.distance is None else 1 - self.distance / 64


def compare_codes(code: str, other: str) -> list[UnitComparison]:
    """Each unit of `code` against the unit of the same type in `other`, on the first 64 bits
    as the similarity search compares them. Units the search does not use (Instance-Code) are
    compared the same way: equal bits there mean the same bytes."""
    theirs = {u.unit_type: u for u in explain_code(other)}
    compared = []
    for unit in explain_code(code):
        match = theirs.get(unit.unit_type)
        distance = None
        if match is not None:
            distance = (_first_64(unit.code) ^ _first_64(match.code)).bit_count()
        compared.append(UnitComparison(unit, distance))
    return compared


def _first_64(unit: str) -> int:
    body = iscc_lib.iscc_decode(unit.removeprefix("ISCC:"))[4]
    return int.from_bytes(body[:8], "big")
