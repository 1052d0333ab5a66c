"""The registry contract's events (Declared, Updated, Transferred, Revoked) as Python values,
and the validation of a declared ISCC-CODE against its datahash.

The index decodes logs into these (registry.index.events) and the store turns them into rows
(registry.store.rows); both sides of that boundary speak this one vocabulary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from json.encoder import encode_basestring_ascii
from typing import Any, ClassVar

import iscc_lib

from registry.chain.iscc_id import IsccId
from registry.errors import InvalidCode
from registry.iscc.codec import b32encode, code_from_bytes

__all__ = [
    "DECLARED",
    "EVENT_FIELDS",
    "REVOKED",
    "TRANSFERRED",
    "UPDATED",
    "ChangeEvent",
    "DeclaredArgs",
    "DeclaredEvent",
    "RegistryEvent",
    "Unit",
    "declared_payload",
    "unit_type",
    "unit_value",
    "units_by_layout",
    "validate_code",
]

DECLARED = "Declared"
UPDATED = "Updated"
TRANSFERRED = "Transferred"
REVOKED = "Revoked"
# The fields the indexer reads, by name. The contract may append more fields to any event
# (they change the signature, which the artifact carries, and land in the history payload).
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    DECLARED: ("isccId", "declarer", "datahash", "isccCode", "metahash", "gateway"),
    UPDATED: ("isccId", "owner", "metahash", "gateway"),
    TRANSFERRED: ("isccId", "from", "to"),
    REVOKED: ("isccId", "owner"),
}
_ZERO_HASH = bytes(32)

# Content and Semantic units name their SubType; the ISCC standard's names for SubType 0..4.
_CONTENT_SUBTYPES = {0: "TEXT", 1: "IMAGE", 2: "AUDIO", 3: "VIDEO", 4: "MIXED"}


# dataclass's __init__ costs ~4 us per event (it sets every field through object.__setattr__),
# so they are plain slotted dataclasses that nothing mutates after decoding.
@dataclass(slots=True)
class Unit:
    """One unit of an ISCC-CODE: its type ("META", "CONTENT-TEXT", "DATA", ...) and body."""

    unit_type: str
    body: bytes

    @property
    def bits(self) -> int:
        return len(self.body) * 8

    @property
    def value(self) -> int:
        return unit_value(self.body)


def unit_value(body: bytes) -> int:
    """A unit's first 64 bits as a signed integer: what the store indexes for similarity search."""
    return int.from_bytes(body[:8].ljust(8, b"\0"), "big", signed=True)


@dataclass(slots=True)
class _Located:
    """Where a log sits on chain, and the ISCC-ID it concerns."""

    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int
    iscc_id_body: int
    realm: int

    @property
    def iscc_id(self) -> str:
        return str(IsccId(self.iscc_id_body, self.realm))

    @property
    def key(self) -> tuple[bytes, int]:
        """Position of the log within its chain: unique, and the same on every replay."""
        return self.tx_hash, self.log_index


@dataclass(slots=True)
class DeclaredEvent(_Located):
    """A `Declared` log with the indexer's verdict on its content."""

    name: ClassVar[str] = DECLARED

    declarer: str
    datahash: bytes
    iscc_code_raw: bytes
    metahash: bytes
    gateway: str
    iscc_code: str | None
    units: tuple[Unit, ...]
    invalid_reason: str | None
    extra: tuple[tuple[str, Any], ...] = ()

    @property
    def valid(self) -> bool:
        return self.invalid_reason is None

    def args(self) -> dict[str, Any]:
        """The event's arguments in JSON form (bytes as 0x hex), as the history keeps them."""
        return {
            "isccId": self.iscc_id_body,
            "declarer": self.declarer,
            "datahash": "0x" + self.datahash.hex(),
            "isccCode": "0x" + self.iscc_code_raw.hex(),
            "metahash": "0x" + self.metahash.hex(),
            "gateway": self.gateway,
            **dict(self.extra),
        }

    def payload(self) -> str:
        if self.extra:
            return json.dumps(self.args(), separators=(",", ":"))
        return declared_payload(
            self.iscc_id_body,
            self.declarer,
            self.datahash,
            self.iscc_code_raw,
            self.metahash,
            self.gateway,
        )


def declared_payload(
    body: int, declarer: str, datahash: bytes, iscc_code_raw: bytes, metahash: bytes, gateway: str
) -> str:
    """The history payload of a Declared event without extra fields: the same JSON as
    json.dumps(DeclaredEvent.args()) (a test checks), written directly because every Declared
    event is serialised once and json.dumps of the dict costs 4x as much."""
    # encode_basestring_ascii is what json.dumps does with a str, without building an encoder.
    return (
        f'{{"isccId":{body},"declarer":"{declarer}","datahash":"0x{datahash.hex()}",'
        f'"isccCode":"0x{iscc_code_raw.hex()}","metahash":"0x{metahash.hex()}",'
        f'"gateway":{encode_basestring_ascii(gateway)}}}'
    )


@dataclass(slots=True)
class ChangeEvent(_Located):
    """An `Updated`, `Transferred` or `Revoked` log: a change to an existing declaration."""

    name: str
    fields: tuple[tuple[str, Any], ...]
    """All arguments in JSON form, in ABI order (a tuple, as the history payload keeps them)."""

    def args(self) -> dict[str, Any]:
        return dict(self.fields)

    def payload(self) -> str:
        return json.dumps(self.args(), separators=(",", ":"))


RegistryEvent = DeclaredEvent | ChangeEvent
# A Declared event's arguments other than the ISCC-ID: declarer, datahash, isccCode, metahash
# and gateway.
DeclaredArgs = tuple[str, bytes, bytes, bytes, str]


def unit_type(maintype: iscc_lib.MT, subtype: int) -> str:
    """The name a unit is stored and searched under: META, CONTENT-TEXT, ..., DATA, INSTANCE."""
    if maintype in (iscc_lib.MT.CONTENT, iscc_lib.MT.SEMANTIC):
        return f"{maintype.name}-{_CONTENT_SUBTYPES.get(int(subtype), str(int(subtype)))}"
    return maintype.name


Validation = tuple[str | None, tuple[Unit, ...], str | None]


def validate_code(raw: bytes, datahash: bytes) -> Validation:
    """Decode a binary ISCC-CODE and check it against the datahash.

    Returns (ISCC-CODE string or None, units, reason it is invalid or None). Never raises: the
    contract only checks the header, so anything may arrive and must still be recorded.
    """
    checked = units_by_layout(raw, datahash)
    if checked is None:
        return _validate_by_iscc_lib(raw, datahash)
    bodies, reason = checked
    return "ISCC:" + b32encode(raw), tuple(Unit(t, body) for t, body in bodies), reason


def units_by_layout(
    raw: bytes, datahash: bytes
) -> tuple[list[tuple[str, bytes]], str | None] | None:
    """validate_code's (unit type, body) pairs and verdict for a code whose layout its header
    tells (see _unit_layout), without its string; None for codes only iscc-lib can check."""
    layout = _unit_layout(raw[:2], len(raw)) if len(raw) > 2 else None
    if layout is None:
        return None
    bodies = []
    position = 2
    for unit_type, size in layout:
        bodies.append((unit_type, raw[position : position + size]))
        position += size
    instance = bodies[-1][1]
    if datahash[: len(instance)] != instance:
        return bodies, _datahash_mismatch(datahash, instance)
    return bodies, None


@lru_cache(maxsize=1024)
def _unit_layout(header: bytes, length: int) -> tuple[tuple[str, int], ...] | None:
    """(unit type, body size) of each unit, in order, of every valid ISCC-CODE of `length`
    bytes that starts with this two-byte header; None for other headers and invalid layouts.

    Decoding each unit with iscc-lib costs ~70 us per declaration, more than all else the
    indexer does with it. A code's structure lives in its header (the body is opaque digests),
    so iscc-lib decodes one probe code per header and length, and the bodies of real codes are
    sliced the same way. The probe body counts up, so the check that the units' bodies are
    consecutive slices of it proves the slicing. Codes whose header is longer than two bytes
    (a nibble with its continuation bit set), or whose layout is invalid, take the plain path.
    """
    nibbles = (header[0] >> 4, header[0] & 15, header[1] >> 4, header[1] & 15)
    if any(n & 0b1000 for n in nibbles):
        return None
    probe = header + bytes(i % 251 for i in range(length - 2))
    instance_probe = bytes(32)
    _code, units, reason = _validate_by_iscc_lib(probe, instance_probe)
    if not units or units[-1].unit_type != "INSTANCE":
        return None
    if reason is not None and not reason.startswith("datahash"):
        return None
    return tuple((u.unit_type, len(u.body)) for u in units)


def _datahash_mismatch(datahash: bytes, instance: bytes) -> str:
    return (
        f"datahash 1e20{datahash.hex()} does not start with the Instance-Code body {instance.hex()}"
    )


def _validate_by_iscc_lib(raw: bytes, datahash: bytes) -> Validation:
    """validate_code the plain way: iscc-lib decodes the code and each of its units."""
    try:
        code = code_from_bytes(raw)
    except InvalidCode as exc:
        return None, (), f"ISCC-CODE does not decode: {exc}"
    maintype, _subtype, _version, _length, _body = iscc_lib.iscc_decode(code.removeprefix("ISCC:"))
    if maintype != iscc_lib.MT.ISCC:
        return code, (), f"MainType is {maintype.name}, not ISCC"
    try:
        parts = [iscc_lib.iscc_decode(u) for u in iscc_lib.iscc_decompose(code)]
    except (ValueError, TypeError) as exc:
        return code, (), f"ISCC-CODE does not decompose into units: {exc}"
    units = tuple(Unit(unit_type(mt, st), digest) for mt, st, _v, _l, digest in parts)
    # iscc-lib ignores bytes after the units; a canonical code has none.
    if b"".join(u.body for u in units) != raw[2:]:
        covered = sum(len(u.body) for u in units)
        return code, units, f"ISCC-CODE has {len(raw) - 2} body bytes, its units cover {covered}"
    instance = next((u for u in units if u.unit_type == "INSTANCE"), None)
    if instance is None:
        return code, units, "ISCC-CODE has no Instance-Code"
    if datahash[: len(instance.body)] != instance.body:
        return code, units, _datahash_mismatch(datahash, instance.body)
    return code, units, None
