"""The registry's events (Declared, Updated, Transferred, Revoked), decoded from raw logs by the
ABI of the shipped contract artifact with eth-abi, and validated."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from json.encoder import encode_basestring_ascii
from typing import Any, ClassVar

import iscc_lib
import msgspec
from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak, to_checksum_address

from registry.chain.artifact import artifact
from registry.chain.iscc_id import IsccId
from registry.errors import InvalidCode, RegistryError
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
    "EventDecoder",
    "MalformedLog",
    "Positioned",
    "RawLog",
    "RegistryEvent",
    "Unit",
    "declared_payload",
    "event_topic",
    "state_changes",
    "to_bytes",
    "to_int",
    "unit_value",
    "units_by_layout",
    "validate_code",
]

log = logging.getLogger(__name__)

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


class MalformedLog(ValueError):
    """A log that is not an event of the registry ABI at all (wrong topics or data)."""


# The event classes below are created once per log on the indexer's hot path: a frozen
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
# A log's position (block number, block hash, tx hash, log index, ISCC-ID body, realm) with,
# for a Declared log without extra fields, its arguments, else its decoded event.
Positioned = tuple[tuple[Any, ...], DeclaredArgs | RegistryEvent]
# The Declared event of the shipped contract: (name, type) of its topics and of its data.
_SHIPPED_DECLARED = (
    (("isccId", "uint64"), ("declarer", "address"), ("datahash", "bytes32")),
    (("isccCode", "bytes"), ("metahash", "bytes32"), ("gateway", "string")),
)


class RawLog(msgspec.Struct, rename="camel"):
    """A log of an eth_getLogs JSON answer: the fields the indexer reads, as the node sends them.

    msgspec parses an answer into these ~2x faster than json.loads into dicts, skipping the
    fields nobody reads; an answer that does not fit them is parsed with json.loads instead.
    """

    block_number: str
    block_hash: str
    transaction_hash: str
    log_index: str
    topics: list[str]
    data: str
    removed: bool = False


def _hash_or_none(value: str) -> bytes | None:
    digest = bytes.fromhex(value.removeprefix("0x"))
    return None if digest == _ZERO_HASH else digest


def state_changes(name: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """The declaration columns an event (JSON-form arguments) sets.

    One definition for applying new events and for rebuilding a declaration's state from its
    history after a reorg rollback, so both always agree. `Declared` gives the initial state.
    """
    if name == DECLARED:
        return {
            "owner": args["declarer"],
            "metahash": _hash_or_none(args["metahash"]),
            "gateway": args["gateway"],
            "revoked": False,
        }
    if name == UPDATED:
        return {"metahash": _hash_or_none(args["metahash"]), "gateway": args["gateway"]}
    if name == TRANSFERRED:
        return {"owner": args["to"]}
    if name == REVOKED:
        return {"revoked": True}
    raise ValueError(f"not a registry event: {name}")


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


def event_topic(entry: Mapping[str, Any]) -> bytes:
    """topic0 of an event ABI entry: keccak of its canonical signature."""
    types = ",".join(i["type"] for i in entry["inputs"])
    return keccak(text=f"{entry['name']}({types})")


def to_bytes(value: Any) -> bytes:
    """Bytes from a JSON-RPC hex string or from web3's bytes."""
    if isinstance(value, str):
        return bytes.fromhex(value[2:] if value[:2] in ("0x", "0X") else value)
    return bytes(value)


def to_int(value: Any) -> int:
    """An int from a JSON-RPC hex quantity or from web3's int."""
    return int(value, 16) if isinstance(value, str) else int(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        return [_json_value(v) for v in value]
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
def _address_topic(topic: str) -> str:
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
def _word_decoder(abi_type: str) -> WordDecoder:
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
_SHIPPED_DATA = tuple(abi_type for _name, abi_type in _SHIPPED_DECLARED[1])
_FAST_TYPES = {"bytes", "string", "bytes32", "address", "bool"} | {
    f"uint{8 * n}" for n in range(1, 33)
}


def _decode_data(types: tuple[str, ...], data: bytes) -> list[Any]:
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
    return tuple((t, None if t in ("bytes", "string") else _word_decoder(t)) for t in types)


@dataclass(frozen=True)
class _EventAbi:
    name: str
    topic: bytes
    indexed: tuple[tuple[str, WordDecoder], ...]
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]


class EventDecoder:
    """Decodes the registry's logs by the ABI (the shipped artifact's by default).

    Only events named in EVENT_FIELDS are followed; every other event of the contract (nonce
    invalidations, batch failures, ...) is not requested and, if met, skipped.
    """

    def __init__(self, realm: int, abi: Sequence[Mapping[str, Any]] | None = None) -> None:
        self.realm = realm
        self._events: dict[bytes, _EventAbi] = {}
        # topic0 in JSON-RPC form if Declared has the shipped layout, which has a short cut.
        self._shipped_declared: str | None = None
        for entry in artifact()["abi"] if abi is None else abi:
            if entry.get("type") != "event" or entry.get("name") not in EVENT_FIELDS:
                continue
            names = [i["name"] for i in entry["inputs"]]
            missing = [f for f in EVENT_FIELDS[entry["name"]] if f not in names]
            if missing or entry.get("anonymous"):
                raise RegistryError(
                    f"the contract ABI's {entry['name']} event lacks {missing or 'a topic'}: "
                    "this indexer cannot follow it"
                )
            data = [i for i in entry["inputs"] if not i["indexed"]]
            spec = _EventAbi(
                name=entry["name"],
                topic=event_topic(entry),
                indexed=tuple(
                    (i["name"], _word_decoder(i["type"])) for i in entry["inputs"] if i["indexed"]
                ),
                data_names=tuple(i["name"] for i in data),
                data_types=tuple(i["type"] for i in data),
            )
            self._events[spec.topic] = spec
            inputs = entry["inputs"]
            layout = tuple(
                tuple((i["name"], i["type"]) for i in inputs if i["indexed"] == indexed)
                for indexed in (True, False)
            )
            if spec.name == DECLARED and layout == _SHIPPED_DECLARED:
                self._shipped_declared = "0x" + spec.topic.hex()
        if not any(spec.name == DECLARED for spec in self._events.values()):
            raise RegistryError("the contract ABI has no Declared event")

    @property
    def topics(self) -> list[str]:
        """topic0 values (0x hex) of the followed events, for an eth_getLogs filter."""
        return ["0x" + topic.hex() for topic in self._events]

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self._events.values()]

    def decode(self, raw_log: Mapping[str, Any]) -> RegistryEvent:
        """Decode one log (web3 AttributeDict or raw JSON-RPC dict); raise MalformedLog if it is
        not a followed event at all. Content problems do not raise: they make it invalid."""
        try:
            spec, position, args = self._fields(
                raw_log["topics"],
                raw_log["data"],
                raw_log["blockNumber"],
                raw_log["blockHash"],
                raw_log["transactionHash"],
                raw_log["logIndex"],
            )
        except (KeyError, TypeError) as exc:
            raise MalformedLog(f"undecodable log: {exc!r}") from None
        return _event(spec, position, args)

    def decode_logs(self, raw_logs: Iterable[Mapping[str, Any]]) -> list[RegistryEvent]:
        """Decode the logs of one range in chain order, skipping what is not a followed event.

        A log this contract cannot emit is logged and skipped rather than stopping the indexer.
        """
        decoded: list[RegistryEvent] = []
        for raw_log in raw_logs:
            if raw_log.get("removed"):
                continue
            try:
                decoded.append(self.decode(raw_log))
            except MalformedLog as exc:
                _skipping(raw_log.get("transactionHash"), exc)
        decoded.sort(key=lambda e: (e.block_number, e.log_index))
        return decoded

    def decode_positioned(self, raw_logs: Iterable[RawLog]) -> list[Positioned]:
        """decode_logs of a parsed JSON answer, for rows.rows_of_logs: the same logs in the same
        order, but a Declared log without extra fields stays its position and arguments, which
        the log reader turns straight into rows (building a DeclaredEvent and reading it back
        cost more than the rows themselves)."""
        decoded: list[Positioned] = []
        block_hashes: dict[str, bytes] = {}
        for raw in raw_logs:
            if raw.removed:
                continue
            if self._shipped_declared is not None:
                shipped = self._declared_as_nodes_write_it(raw, block_hashes)
                if shipped is not None:
                    decoded.append(shipped)
                    continue
            try:
                spec, position, args = self._fields(
                    raw.topics,
                    raw.data,
                    raw.block_number,
                    raw.block_hash,
                    raw.transaction_hash,
                    raw.log_index,
                )
            except MalformedLog as exc:
                _skipping(raw.transaction_hash, exc)
                continue
            if spec.name == DECLARED and len(args) == len(EVENT_FIELDS[DECLARED]):
                declared = (args["declarer"], args["datahash"], args["isccCode"], args["metahash"])
                decoded.append((position, (*declared, args["gateway"])))
            else:
                decoded.append((position, _event(spec, position, args)))
        decoded.sort(key=lambda p: (p[0][0], p[0][3]))
        return decoded

    def _declared_as_nodes_write_it(
        self, raw: RawLog, block_hashes: dict[str, bytes]
    ) -> Positioned | None:
        """_fields of a Declared log of the shipped layout in 0x hex, the way nodes write it, at
        half the cost (no generic dispatch, one hex decoding per block hash); None for any
        other log, and for one _fields would refuse: the general way decodes or skips it.
        tests/index/test_rows.py checks both ways agree."""
        topics, data, tx_hash = raw.topics, raw.data, raw.transaction_hash
        if len(topics) != 4 or topics[0] != self._shipped_declared:
            return None
        id_hex, declarer_hex, datahash_hex = topics[1], topics[2], topics[3]
        if (
            not id_hex[:2]
            == declarer_hex[:2]
            == datahash_hex[:2]
            == data[:2]
            == tx_hash[:2]
            == "0x"
        ):
            return None
        fromhex = bytes.fromhex
        try:
            body = int.from_bytes(fromhex(id_hex[2:]), "big")
            declarer = _address_topic(declarer_hex)
            datahash = fromhex(datahash_hex[2:])
            iscc_code, metahash, gateway = _decode_data(_SHIPPED_DATA, fromhex(data[2:]))
            block_hash = block_hashes.get(raw.block_hash)
            if block_hash is None:
                block_hash = block_hashes[raw.block_hash] = to_bytes(raw.block_hash)
            block_number, log_index = int(raw.block_number, 16), int(raw.log_index, 16)
        except ValueError:  # MalformedLog too
            return None
        if body >> 64:  # the uint64 topic's range check
            return None
        position = (block_number, block_hash, fromhex(tx_hash[2:]), log_index, body, self.realm)
        return position, (declarer, datahash, iscc_code, metahash, gateway)

    def _fields(
        self,
        topics_hex: Iterable[Any],
        data: Any,
        block_number: Any,
        block_hash: Any,
        tx_hash: Any,
        log_index: Any,
    ) -> tuple[_EventAbi, tuple[Any, ...], dict[str, Any]]:
        """A log's event ABI, position and arguments by name; raises MalformedLog."""
        try:
            # Loops and map, not comprehensions: each comprehension is a function call before
            # Python 3.12, and together they cost a tenth of the time per log.
            topics = list(map(to_bytes, topics_hex))
            spec = self._events.get(topics[0]) if topics else None
            if spec is None:
                raise MalformedLog(f"not a followed event: topics {[t.hex() for t in topics]}")
            if len(topics) != 1 + len(spec.indexed):
                raise MalformedLog(f"{spec.name} log with {len(topics)} topics")
            args = {}
            for (name, decoder), topic in zip(spec.indexed, topics[1:], strict=True):
                args[name] = decoder(topic)
            values = _decode_data(spec.data_types, to_bytes(data))
            args.update(zip(spec.data_names, values, strict=True))
            body = int(args["isccId"])
            position = (
                to_int(block_number),
                to_bytes(block_hash),
                to_bytes(tx_hash),
                to_int(log_index),
                body,
                self.realm,
            )
        except (KeyError, TypeError, ValueError, OverflowError, DecodingError) as exc:
            if isinstance(exc, MalformedLog):
                raise
            raise MalformedLog(f"undecodable log: {exc!r}") from None
        if not 0 <= body < 1 << 64:
            raise MalformedLog(f"isccId out of range: {body}")
        return spec, position, args


def _skipping(tx_hash: Any, exc: MalformedLog) -> None:
    log.warning("skipping log %s: %s", tx_hash, exc)


def _event(spec: _EventAbi, position: tuple[Any, ...], args: dict[str, Any]) -> RegistryEvent:
    if spec.name == DECLARED:
        return _declared(position, args)
    return ChangeEvent(
        *position,
        name=spec.name,
        fields=tuple((k, _json_value(v)) for k, v in args.items()),
    )


def _declared(position: tuple[Any, ...], args: dict[str, Any]) -> DeclaredEvent:
    known = EVENT_FIELDS[DECLARED]
    iscc_code_raw, datahash = bytes(args["isccCode"]), bytes(args["datahash"])
    iscc_code, units, reason = validate_code(iscc_code_raw, datahash)
    return DeclaredEvent(
        *position,
        declarer=args["declarer"],
        datahash=datahash,
        iscc_code_raw=iscc_code_raw,
        metahash=bytes(args["metahash"]),
        gateway=args["gateway"],
        iscc_code=iscc_code,
        units=units,
        invalid_reason=reason,
        extra=tuple((k, _json_value(v)) for k, v in args.items() if k not in known),
    )
