"""Granular features: short-segment simprints of a work, each with its offset and length.

A Content-Code says whether two whole works are alike; granular features say where an excerpt
sits inside a work. They are computed from what the Content-Code was computed from (no second
decoding):

- video: one simprint per frame signature (5 frames per second), iscc-lib's `soft_hash_video_v0`
  over that single 380-value MPEG-7 frame vector; runs of equal simprints (still pictures) are
  stored once with the length of the run. Offsets and lengths in milliseconds.
- audio: one simprint per Chromaprint item: the item and its successor as one 64-bit value (two
  32-bit items give each lookup twice the evidence of one). Chromaprint (algorithm 1, 11025 Hz)
  emits an item every 1365 samples, so item i sits at i * 1365 / 11025 s in every decoding of the
  same sound, whatever the excerpt; offsets and lengths in milliseconds.
- sound: a finer audio feature for excerpts too short for Chromaprint (`registry.iscc.sound`):
  64-bit band-energy hashes every 186 ms; offsets and lengths in milliseconds.
- text: content-defined chunks (iscc-lib's gear-hash `alg_cdc_chunks`, about 256 characters) of
  the cleaned text, one Text-Code simprint (MinHash of character 13-grams) per chunk, in the
  manner of iscc-sdk's granular text features; offsets and lengths in characters of the cleaned
  text with whitespace runs as single spaces.

In a metadata document they are a list under "features", one object per kind, modelled on
iscc-sdk's feature sets: {"kind", "version", "unit", "simprints" (base64url, 8 bytes each),
"offsets", "sizes"}.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import iscc_lib
import numpy as np

from registry.errors import InputError

__all__ = [
    "AUDIO_ITEM_MS",
    "KINDS",
    "MAX_SEGMENTS",
    "FeatureSet",
    "audio_features",
    "decode_simprints",
    "encode_simprints",
    "features_json",
    "parse_features",
    "text_features",
    "video_features",
]

KINDS = {"video": "ms", "audio": "ms", "text": "chars", "sound": "ms"}
"""Feature kinds and the unit their offsets and sizes are counted in."""

AUDIO_ITEM_MS = 1365 / 11025 * 1000
"""Time between two Chromaprint items (algorithm 1 resamples to 11025 Hz, hop 1365 samples)."""

TEXT_CHUNK_CHARS = 256
MAX_SEGMENTS = 400_000
"""Most segments one metadata document may carry: 5 frames, 8 audio items and 5.4 sound
segments per second of a film with sound, so about 6 hours (a document then holds about 10 MB
of JSON)."""
_MAX_OFFSET = 1 << 40  # ms or characters: far beyond any real work
_MAX_SIZE = 1 << 31
_VERSION = 0


@dataclass(frozen=True)
class FeatureSet:
    """The segments of one kind: simprint (unsigned 64-bit), offset and size, in offset order."""

    kind: str
    simprints: tuple[int, ...]
    offsets: tuple[int, ...]
    sizes: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.simprints)

    @property
    def unit(self) -> str:
        return KINDS[self.kind]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "version": _VERSION,
            "unit": self.unit,
            "simprints": encode_simprints(self.simprints),
            "offsets": list(self.offsets),
            "sizes": list(self.sizes),
        }


_ALPHABET = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8
)
_SIXBITS = np.full(256, 255, dtype=np.uint8)
_SIXBITS[_ALPHABET] = np.arange(64, dtype=np.uint8)
_SHIFTS = np.array([58 - 6 * k for k in range(10)], dtype=np.uint64)


def encode_simprints(values: Sequence[int]) -> list[str]:
    """64-bit simprints as unpadded base64url (11 characters each), all at once: a film has
    tens of thousands, and the base64 module's per-call overhead dominates otherwise."""
    words = np.asarray(values, dtype=np.uint64).reshape(-1, 1)
    digits = ((words >> _SHIFTS) & np.uint64(63)).astype(np.uint8)
    last = ((words & np.uint64(15)) << np.uint64(2)).astype(np.uint8)
    text = _ALPHABET[np.hstack((digits, last))].tobytes().decode()
    return [text[i : i + 11] for i in range(0, len(text), 11)]


def decode_simprints(texts: Sequence[Any]) -> tuple[int, ...]:
    """Inverse of encode_simprints; ValueError unless every item is 11 base64url characters
    in canonical form (the unused low bits of the last character zero)."""
    if not all(isinstance(t, str) and len(t) == 11 for t in texts):
        raise ValueError
    try:
        raw = "".join(texts).encode("ascii")
    except UnicodeEncodeError:
        raise ValueError from None
    digits = _SIXBITS[np.frombuffer(raw, dtype=np.uint8)].reshape(-1, 11).astype(np.uint64)
    if (digits == 255).any() or (digits[:, 10] & np.uint64(3)).any():
        raise ValueError
    values = (digits[:, :10] << _SHIFTS).sum(axis=1, dtype=np.uint64)
    values |= digits[:, 10] >> np.uint64(2)
    return tuple(values.tolist())


def _runs(kind: str, simprints: Sequence[int], offsets: Sequence[int], ends: Sequence[int]):
    """Consecutive equal simprints merged into one segment spanning them all."""
    merged_s: list[int] = []
    merged_o: list[int] = []
    merged_e: list[int] = []
    for value, start, end in zip(simprints, offsets, ends, strict=True):
        if merged_s and merged_s[-1] == value:
            merged_e[-1] = end
            continue
        merged_s.append(value)
        merged_o.append(start)
        merged_e.append(end)
    sizes = tuple(max(1, e - o) for o, e in zip(merged_o, merged_e, strict=True))
    return FeatureSet(kind, tuple(merged_s), tuple(merged_o), sizes)


def video_features(
    unique: Sequence[tuple[int, ...]], order: Sequence[int], times_ms: Sequence[int]
) -> FeatureSet:
    """Video segments from the distinct MPEG-7 frame vectors, which of them each frame has, and
    each frame's media time (ms)."""
    hashed = [
        int.from_bytes(iscc_lib.soft_hash_video_v0([list(vector)], 64), "big") for vector in unique
    ]
    simprints = [hashed[i] for i in order]
    start = times_ms[0] if times_ms else 0
    offsets = [t - start for t in times_ms]
    # A frame lasts until the next one; the last one as long as its predecessor.
    step = offsets[-1] - offsets[-2] if len(offsets) > 1 else 200
    ends = [*offsets[1:], offsets[-1] + step] if offsets else []
    return _runs("video", simprints, offsets, ends)


def audio_features(fingerprint: np.ndarray) -> FeatureSet:
    """Audio segments from a raw Chromaprint fingerprint (uint32 items)."""
    items = np.asarray(fingerprint, dtype=np.uint64)
    if len(items) < 2:
        return FeatureSet("audio", (), (), ())
    pairs = (items[:-1] << np.uint64(32)) | items[1:]
    offsets = [round(i * AUDIO_ITEM_MS) for i in range(len(pairs))]
    ends = [round((i + 2) * AUDIO_ITEM_MS) for i in range(len(pairs))]
    return _runs("audio", [int(v) for v in pairs], offsets, ends)


def text_features(cleaned: str) -> FeatureSet:
    """Text segments of cleaned text (as the Text-Code sees it before collapsing).

    Chunks are cut in the text with every run of whitespace as one space, and offsets count
    characters of that form: line breaks and spacing differ between copies of a text (a PDF, a
    web page, a re-wrapped excerpt) and would otherwise move every content-defined boundary."""
    spaced = " ".join(cleaned.split())
    data = spaced.encode("utf-32-be")
    simprints, offsets, sizes = [], [], []
    position = 0
    for chunk in iscc_lib.alg_cdc_chunks(data, True, TEXT_CHUNK_CHARS * 4):
        text = bytes(chunk).decode("utf-32-be")
        if iscc_lib.text_collapse(text):
            code = iscc_lib.gen_text_code_v0(text, 64)["iscc"]
            simprints.append(int.from_bytes(iscc_lib.iscc_decode(code)[4], "big"))
            offsets.append(position)
            sizes.append(len(text))
        position += len(text)
    return FeatureSet("text", tuple(simprints), tuple(offsets), tuple(sizes))


def _feature_set(data: Any) -> FeatureSet:
    if not isinstance(data, dict):
        raise InputError("each feature set must be a JSON object")
    kind = data.get("kind")
    if kind not in KINDS:
        raise InputError(f"unknown feature kind {kind!r} (known: {', '.join(KINDS)})")
    if data.get("version") != _VERSION or data.get("unit") != KINDS[kind]:
        raise InputError(f"{kind} features need version {_VERSION} and unit {KINDS[kind]!r}")
    columns = [data.get(name) for name in ("simprints", "offsets", "sizes")]
    if not all(isinstance(c, list) for c in columns) or len({len(c) for c in columns}) != 1:
        raise InputError(f"{kind} features need lists simprints, offsets, sizes of one length")
    raw, offsets, sizes = columns
    try:
        simprints = decode_simprints(raw)
    except ValueError:
        raise InputError(f"{kind} simprints must be 8 bytes in unpadded base64url") from None
    for name, values, top in (("offsets", offsets, _MAX_OFFSET), ("sizes", sizes, _MAX_SIZE)):
        if not all(type(v) is int and 0 <= v < top for v in values):
            raise InputError(f"{kind} {name} must be integers from 0 to {top - 1}")
    if any(b < a for a, b in itertools.pairwise(offsets)):
        raise InputError(f"{kind} offsets must not decrease")
    return FeatureSet(kind, simprints, tuple(offsets), tuple(sizes))


def parse_features(document: dict[str, Any]) -> list[FeatureSet]:
    """The feature sets of a metadata document (none if it has no "features"); raises
    InputError naming the first problem when they are malformed or too many."""
    raw = document.get("features")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InputError("metadata 'features' must be a list of feature sets")
    sets = [_feature_set(item) for item in raw]
    kinds = [s.kind for s in sets]
    if len(set(kinds)) != len(kinds):
        raise InputError("metadata 'features' has more than one set of the same kind")
    total = sum(len(s) for s in sets)
    if total > MAX_SEGMENTS:
        raise InputError(f"metadata carries {total} feature segments; the limit is {MAX_SEGMENTS}")
    return sets


def features_json(sets: Iterable[FeatureSet]) -> list[dict[str, Any]]:
    """Non-empty feature sets as a document's "features" value."""
    return [s.to_json() for s in sets if len(s)]
