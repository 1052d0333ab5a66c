"""What each unit of an ISCC-CODE is, in words a person without the standard can follow."""

from __future__ import annotations

from dataclasses import dataclass

import iscc_lib

from registry.chain.events import unit_type

__all__ = ["ExplainedUnit", "explain_code"]

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
