"""MPEG-7 video signature (ISO/IEC 15938-3) as ffmpeg's `signature` filter writes it in binary form.

Reads the same fields as iscc-sdk's `read_mp7_signature`: per frame a 380-dimensional ternary
vector (76 bytes, five base-3 digits per byte). The layout is bit-packed, not byte aligned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from registry.errors import InputError

__all__ = ["FRAME_VECTOR_SIZE", "FrameSignatures", "read_signature"]

FRAME_VECTOR_SIZE = 380
_VECTOR_BYTES = FRAME_VECTOR_SIZE // 5
_SEGMENT_BITS = 4 * 32 + 1 + 5 * 243
_FRAME_BITS = 1 + 32 + 8 + 5 * 8 + _VECTOR_BYTES * 8
# Each byte holds five ternary digits, most significant first.
_TERNARY = [tuple((value // 3**power) % 3 for power in range(4, -1, -1)) for value in range(256)]


@dataclass(frozen=True)
class FrameSignatures:
    """Frame vectors of a video, each distinct vector once (in order of first appearance), and
    for every frame its media time and which distinct vector it has (for granular features)."""

    frames: int
    """Number of frame signatures in the file, repeats included."""
    unique: list[tuple[int, ...]]
    times_ms: list[int] = field(default_factory=list)
    """Media time of each frame in milliseconds (the filter's time unit is 1/fps seconds)."""
    order: list[int] = field(default_factory=list)
    """Index into `unique` of each frame's vector."""


def _bits(data: bytes, pos: int, count: int) -> int:
    start, end = pos // 8, (pos + count + 7) // 8
    value = int.from_bytes(data[start:end], "big")
    return (value >> (end * 8 - pos - count)) & ((1 << count) - 1)


def read_signature(data: bytes) -> FrameSignatures:
    """Frame vectors of a binary signature file; repeated vectors are kept once.

    The Video-Code's soft hash sums the set of distinct frame vectors (ISO 24138), so keeping
    only distinct ones gives the same code while a two-hour film stays at a few MB of memory.
    """
    try:
        frames = _bits(data, 129, 32)
        time_unit = _bits(data, 129 + 32, 16) or 1
        pos = 129 + 32 + 16 + 1 + 32 + 32
        segments = _bits(data, pos, 32)
        pos += 32 + segments * _SEGMENT_BITS + 1
    except ValueError:
        raise InputError("video signature is truncated") from None
    if pos + frames * _FRAME_BITS > len(data) * 8:
        raise InputError("video signature is truncated")
    seen: dict[bytes, int] = {}
    unique: list[tuple[int, ...]] = []
    times_ms: list[int] = []
    order: list[int] = []
    vector_offset = 1 + 32 + 8 + 40
    for index in range(frames):
        frame = pos + index * _FRAME_BITS
        times_ms.append(_bits(data, frame + 1, 32) * 1000 // time_unit)
        packed = _bits(data, frame + vector_offset, _VECTOR_BYTES * 8).to_bytes(
            _VECTOR_BYTES, "big"
        )
        known = seen.get(packed)
        if known is None:
            known = seen[packed] = len(unique)
            unique.append(tuple(digit for byte in packed for digit in _TERNARY[byte]))
        order.append(known)
    return FrameSignatures(frames=frames, unique=unique, times_ms=times_ms, order=order)
