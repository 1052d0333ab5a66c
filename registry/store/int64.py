"""64-bit unsigned integers (ISCC unit values, ISCC-ID bodies) as the signed BIGINT both
databases store.

Apart from the schema so that the log reader process, which builds rows but never talks to a
database, need not import SQLAlchemy (~0.3 s of its start-up).
"""

from __future__ import annotations

__all__ = ["from_signed64", "to_signed64"]

_U64 = 1 << 64
_I64_MAX = (1 << 63) - 1


def to_signed64(value: int) -> int:
    """An unsigned 64-bit integer as the signed BIGINT both databases store (two's complement)."""
    if not 0 <= value < _U64:
        raise ValueError(f"not an unsigned 64-bit integer: {value}")
    return value - _U64 if value > _I64_MAX else value


def from_signed64(value: int) -> int:
    """Inverse of to_signed64."""
    if not -(1 << 63) <= value <= _I64_MAX:
        raise ValueError(f"not a signed 64-bit integer: {value}")
    return value + _U64 if value < 0 else value
