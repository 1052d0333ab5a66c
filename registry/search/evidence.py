"""How strongly each kind of evidence says that two works share content, and how the evidence of
several modalities combines into one score.

One part per modality: picture (video segments), sound (audio segments), text (text segments),
the Content-Code distance, and for conflicts the very same bytes. Each part's raw figure is
turned into a weight in 0..1 that is 0 at the level chance reaches and 1 for a perfect match:

    segments:      w = (score - chance) / (1 - chance), clipped to 0..1
                   chance = the highest score alignments of unrelated works reached
                   (scripts/bench_snippets.py): video 0.56, audio 0.58; text 0.30, below the
                   lowest score a text match is reported at (0.40); sound (the finer audio
                   feature) 0.45, below the lowest score it is reported at (0.60)
    Content-Code:  w = 1 - distance / (threshold + 1)   (distance <= threshold bits of 64)
    same bytes:    w = 1

The parts combine like independent witnesses (a noisy OR), each trusted at most PART_TRUST:

    score = 1 - prod(1 - PART_TRUST * w_part)

so a second modality always adds to the first and never takes away: a film matched by its
picture at w = 0.7 and its sound at w = 0.8 scores 0.92, the speech recording whose sound the
film reuses, matched by sound alone at w = 0.9, scores 0.86. A single perfect part scores
PART_TRUST (0.95), two perfect parts 0.9975: at comparable strength, two modalities outrank one.
Within a modality only the best part counts (a work's sound found on several shifted grids is
one witness, not several).

A declared work with a modality the query lacks (a film, for an excerpt of sound alone) is not
what the query was cut from, at most what reused its content: its score is multiplied by
1 - ABSENT_DISCOUNT per such modality,

    ranked score = score * (1 - ABSENT_DISCOUNT) ** absent

so an excerpt of a recording names the recording, not the film whose soundtrack it is, though
the film's copy of the sound may fit it a little better (up to 5 % apart in
scripts/bench_snippets.py; the discount is 10 %). A modality the query has and the work lacks
costs nothing: a film's excerpt with its sound still names the film (picture and sound) before
the recording (sound alone).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ABSENT_DISCOUNT",
    "CHANCE_SCORE",
    "MODALITY",
    "PART_TRUST",
    "Part",
    "combine",
    "content_weight",
    "discounted",
    "segment_weight",
]

PART_TRUST = 0.95
"""The most one modality alone can say: keeps room above it for a second modality."""

ABSENT_DISCOUNT = 0.1
"""What a declared work's score loses per modality it has and the query lacks (module doc)."""

CHANCE_SCORE = {"video": 0.56, "audio": 0.58, "text": 0.30, "sound": 0.45}
"""Per segment kind, the score chance alignments of unrelated works reach (see module doc)."""

MODALITY = {"video": "video", "audio": "audio", "sound": "audio", "text": "text"}
"""The modality each segment kind is evidence of: Chromaprint items and the finer sound
segments hear the same sound, so they are one witness."""


@dataclass(frozen=True)
class Part:
    """One modality's evidence for a declaration: its name, weight (0..1) and raw figure."""

    modality: str
    """"video", "audio", "text", "content" or "datahash"."""
    weight: float
    figure: float
    """The raw figure: the segment score, the Content-Code distance in bits, or 1."""


def segment_weight(kind: str, score: float) -> float:
    """Weight of a snippet score of one segment kind: 0 at chance, 1 for a perfect match."""
    chance = CHANCE_SCORE[kind]
    return min(1.0, max(0.0, (score - chance) / (1 - chance)))


def content_weight(distance: int, threshold: int) -> float:
    """Weight of a Content-Code distance (bits of 64) found within `threshold`."""
    return max(0.0, 1 - distance / (threshold + 1))


def combine(parts: Iterable[Part]) -> float:
    """The combined score of the parts: the best part per modality, then a noisy OR."""
    best: dict[str, float] = {}
    for part in parts:
        best[part.modality] = max(part.weight, best.get(part.modality, 0.0))
    doubt = 1.0
    for weight in best.values():
        doubt *= 1 - PART_TRUST * weight
    return round(1 - doubt, 4)


def discounted(score: float, absent: int) -> float:
    """A combined score of a declared work that has `absent` modalities the query lacks."""
    return round(score * (1 - ABSENT_DISCOUNT) ** absent, 4)
