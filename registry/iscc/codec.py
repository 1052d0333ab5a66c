"""Binary form of ISCC codes: the header and body bytes behind the base32 string."""

from __future__ import annotations

import base64
import binascii

import iscc_lib
import multibase

from registry.errors import InvalidCode

_ISCC_MULTICODEC = b"\xcc\x01"
_B32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
# Two base32 digits per 10 bits: one table lookup per 10 bits instead of one per 5.
_B32_PAIRS = [a + b for a in _B32_ALPHABET for b in _B32_ALPHABET]


def b32encode(raw: bytes) -> str:
    """RFC 4648 base32 without padding, as ISCC strings use it.

    base64.b32encode is pure Python before 3.13 and costs ~6 us for an ISCC-CODE; the indexer
    encodes two ISCCs per event (code and ISCC-ID), so this does it in one big-integer pass.
    tests/iscc/test_codec.py checks it against base64.b32encode.
    """
    pad = -len(raw) % 5
    value = int.from_bytes(raw + bytes(pad), "big")
    pairs = (len(raw) + pad) * 4 // 5
    text = "".join([_B32_PAIRS[(value >> (10 * i)) & 1023] for i in range(pairs - 1, -1, -1)])
    return text[: (len(raw) * 8 + 4) // 5]


def code_to_bytes(code: str) -> bytes:
    """ "ISCC:KAC..." (prefix optional) to header + body bytes; raises InvalidCode."""
    text = code.strip().upper().removeprefix("ISCC:")
    try:
        iscc_lib.iscc_decode(text)  # validates header, lengths and base32 alphabet
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except (ValueError, TypeError, binascii.Error):
        # The decoder's own words ("non-zero trailing bits at 6") mean nothing to a user.
        raise InvalidCode(
            f"not an ISCC: {code!r} (an ISCC is ISCC: followed by a code of the letters A-Z and "
            "the digits 2-7, e.g. ISCC:KEC...)"
        ) from None


# What the ISCC standard calls each unit, by the unit type the index stores it under.
_UNIT_NAMES = {
    "META": "Meta-Code",
    "CONTENT-TEXT": "Text-Code",
    "CONTENT-IMAGE": "Image-Code",
    "CONTENT-AUDIO": "Audio-Code",
    "CONTENT-VIDEO": "Video-Code",
    "CONTENT-MIXED": "Mixed-Code",
    "DATA": "Data-Code",
    "INSTANCE": "Instance-Code",
}
_SUBTYPES = ("TEXT", "IMAGE", "AUDIO", "VIDEO", "MIXED")


def unit_type_name(unit_type: str) -> str:
    """The one name every output gives a unit type: "Image-Code" for CONTENT-IMAGE."""
    return _UNIT_NAMES.get(unit_type, unit_type.title())


def unit_name(unit: str) -> str:
    """A unit's name as the standard gives it ("Meta-Code", "Image-Code", "Data-Code", ...)."""
    maintype, subtype, *_ = iscc_lib.iscc_decode(unit.strip().upper().removeprefix("ISCC:"))
    if maintype in (iscc_lib.MT.CONTENT, iscc_lib.MT.SEMANTIC) and int(subtype) < len(_SUBTYPES):
        name = unit_type_name(f"CONTENT-{_SUBTYPES[int(subtype)]}")
        return name if maintype == iscc_lib.MT.CONTENT else f"Semantic {name}"
    return unit_type_name(maintype.name)


def code_from_bytes(raw: bytes) -> str:
    """Header + body bytes to "ISCC:..."; raises InvalidCode if they do not decode."""
    text = b32encode(raw)
    try:
        iscc_lib.iscc_decode(text)
    except (ValueError, TypeError) as exc:
        raise InvalidCode(f"bytes 0x{raw.hex()} are not an ISCC ({exc})") from None
    return f"ISCC:{text}"


def multihash_to_digest(value: str) -> bytes:
    """A blake3 datahash or metahash as hex, with or without the multihash prefix 1e20."""
    text = value.strip().lower().removeprefix("0x")
    if len(text) == 68 and text.startswith("1e20"):
        text = text[4:]
    if len(text) != 64:
        raise InvalidCode(f"not a blake3 hash (64 hex digits, optionally prefixed 1e20): {value!r}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise InvalidCode(f"not a hex hash: {value!r}") from None


def digest_to_multihash(digest: bytes) -> str:
    return "1e20" + digest.hex()


def unit_truncate(unit: str, bits: int) -> str:
    """A shorter ISCC-UNIT from a longer one of the same kind.

    Every ISO 24138 unit body is a prefix of its longest form (the generators compute 256 bits
    and cut), so one pass over a large file serves both lengths; tests check this against
    iscc-lib's own output at each length.
    """
    mtype, stype, version, _, body = iscc_lib.iscc_decode(unit)
    if bits % 32 or not 32 <= bits <= len(body) * 8:
        raise InvalidCode(f"cannot truncate {unit} to {bits} bits")
    return "ISCC:" + iscc_lib.encode_component(mtype, stype, version, bits, body[: bits // 8])


def multiformat(code: str) -> str:
    """An ISCC as multibase base32 of the ISCC multicodec (0xcc01) + header + body, as iscc-core."""
    return multibase.encode("base32", _ISCC_MULTICODEC + code_to_bytes(code)).decode()
