"""ABI words of the registry's logs decoded by hand for the types its events use (addresses,
uints, bools, bytes32, bytes, string), with the same range checks as eth-abi; other types go to
eth-abi. eth-abi's general decoder costs ~50 us per Declared log, more than everything else the
indexer does with it."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import to_checksum_address

__all__ = [
    "MalformedLog",
    "WordDecoder",
    "address_topic",
    "decode_data",
    "json_value",
    "word_decoder",
]


class MalformedLog(ValueError):
    """A log that is not an event of the registry ABI at all (wrong topics or data)."""


def json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        return [json_value(v) for v in value]
    return value


@lru_cache(maxsize=1 << 16)
def _checksum(address: bytes) -> str:
    # EIP-55 costs a keccak per call (~70 us); the same few declarers recur in every range.
    return to_checksum_address(address)


WordDecoder = Callable[[bytes], Any]


def _address(word: bytes) -> str:
    if word[:12] != bytes(12):
        raise MalformedLog(f"indexed address out of range: 0x{word.hex()}")
    return _checksum(word[12:])


@lru_cache(maxsize=1 << 16)
def address_topic(topic: str) -> str:
    """_address of an indexed address in 0x hex: the same few declarers recur in every range,
    and decoding the hex and the checks cost more than the lookup."""
    return _address(bytes.fromhex(topic[2:]))


def _word(word: bytes) -> bytes:
    return word


def _bool(word: bytes) -> bool:
    value = int.from_bytes(word, "big")
    if value > 1:
        raise MalformedLog(f"bool out of range: {value}")
    return bool(value)


def _uint(bits: int) -> WordDecoder:
    def decode(word: bytes) -> int:
        value = int.from_bytes(word, "big")
        if value >> bits:
            raise MalformedLog(f"indexed uint{bits} out of range: {value}")
        return value

    return decode


@lru_cache(maxsize=64)
def word_decoder(abi_type: str) -> WordDecoder:
    """How one 32-byte word (a topic, or a static head in the data) of this type decodes.

    Chosen once per type: the indexer decodes four words per Declared log, and dispatching
    on the type string each time cost more than the decoding. Static indexed values are
    ABI-encoded words; dynamic ones (string, bytes, arrays) arrive only as their keccak hash,
    which is all anyone can know of them.
    """
    if abi_type == "address":
        return _address
    if abi_type == "bytes32":
        return _word
    if abi_type.startswith("uint") and abi_type[4:].isdigit():
        # Cheaper than eth-abi, with the same range check.
        return _uint(int(abi_type[4:]))
    if abi_type == "bool":
        return _bool
    static = abi_type != "bytes" and not abi_type.endswith("]")
    if static and abi_type.startswith(("uint", "int", "bool", "bytes")):
        return lambda word: abi_decode([abi_type], word)[0]
    return _word


_WORD = 32
_FAST_TYPES = {"bytes", "string", "bytes32", "address", "bool"} | {
    f"uint{8 * n}" for n in range(1, 33)
}


def decode_data(types: tuple[str, ...], data: bytes) -> list[Any]:
    """ABI-decode a log's data.

    Hand-written for the types registry events use (static words, `bytes`, `string`) because
    eth-abi's general decoder costs ~50 us per Declared log, more than everything else the
    indexer does with it; any other type goes to eth-abi. Strings that are not UTF-8 (the
    contract cannot check them) are decoded with replacement characters instead of losing the
    event. tests/index/test_events.py checks this against eth-abi.
    """
    heads = _heads(types)
    if heads is None:
        return list(abi_decode(types, data))
    size = len(data)
    if size < _WORD * len(types):
        raise MalformedLog(f"log data of {size} bytes is shorter than its {len(types)} heads")
    values: list[Any] = []
    append = values.append
    at = 0
    for abi_type, decoder in heads:
        end = at + 32  # _WORD, spelled out on the hot path
        if decoder is not None:
            append(decoder(data[at:end]))
            at = end
            continue
        offset = int.from_bytes(data[at:end], "big")
        at = end
        start = offset + 32
        if start > size:
            raise MalformedLog(f"{abi_type} offset {offset} beyond the log data")
        length = int.from_bytes(data[offset:start], "big")
        if start + -(-length // 32) * 32 > size:  # with its padding, as eth-abi
            raise MalformedLog(f"{abi_type} of {length} bytes beyond the log data")
        value = data[start : start + length]
        append(value.decode("utf-8", "replace") if abi_type == "string" else value)
    return values


@lru_cache(maxsize=64)
def _heads(types: tuple[str, ...]) -> tuple[tuple[str, WordDecoder | None], ...] | None:
    """Per data field: its type and word decoder (None: dynamic, read at its offset); None
    if some type needs eth-abi."""
    if not all(t in _FAST_TYPES for t in types):
        return None
    return tuple((t, None if t in ("bytes", "string") else word_decoder(t)) for t in types)
