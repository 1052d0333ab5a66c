"""Raw logs of the registry contract decoded into its events (registry.chain.events) by the ABI
of the shipped contract artifact, with eth-abi and a faster path for the fields it knows."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from eth_abi.exceptions import DecodingError
from eth_utils import keccak

from registry.chain.artifact import LICENCES_NAME, artifact
from registry.chain.events import (
    DECLARED,
    EVENT_FIELDS,
    ChangeEvent,
    DeclaredArgs,
    DeclaredEvent,
    RegistryEvent,
    validate_code,
)
from registry.chain.licence_events import (
    GRANTED,
    LICENCE_EVENT_FIELDS,
    GrantedEvent,
    LicenceEvent,
    TerminatedEvent,
)
from registry.errors import RegistryError
from registry.index.abi import (
    MalformedLog,
    WordDecoder,
    address_topic,
    decode_data,
    json_value,
    word_decoder,
)

__all__ = [
    "AnyEvent",
    "EventDecoder",
    "MalformedLog",
    "Positioned",
    "RawLog",
    "canonical_type",
    "event_topic",
    "to_bytes",
    "to_int",
]

log = logging.getLogger(__name__)


# An event of either contract the indexer follows: the registry's or the licence ledger's.
AnyEvent = RegistryEvent | LicenceEvent
# A log's position (block number, block hash, tx hash, log index, ISCC-ID body, realm) with,
# for a Declared log without extra fields, its arguments, else its decoded event (a licence
# event's position has only the first four: it is not about one declaration's ID).
Positioned = tuple[tuple[Any, ...], DeclaredArgs | AnyEvent]
# The Declared event of the shipped contract: (name, type) of its topics and of its data.
_SHIPPED_DECLARED = (
    (("isccId", "uint64"), ("declarer", "address"), ("datahash", "bytes32")),
    (
        ("isccCode", "bytes"),
        ("metahash", "bytes32"),
        ("gateway", "string"),
        ("record", "uint256"),
        ("committedAt", "uint64"),
    ),
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


def canonical_type(item: Mapping[str, Any]) -> str:
    """The canonical ABI type of an input: a struct (`tuple`, `tuple[]`) as its components'
    types in parentheses, as event signatures and eth-abi spell it."""
    abi_type = str(item["type"])
    if abi_type.startswith("tuple"):
        inner = ",".join(canonical_type(c) for c in item["components"])
        return f"({inner}){abi_type[5:]}"
    return abi_type


def event_topic(entry: Mapping[str, Any]) -> bytes:
    """topic0 of an event ABI entry: keccak of its canonical signature."""
    types = ",".join(canonical_type(i) for i in entry["inputs"])
    return keccak(text=f"{entry['name']}({types})")


def to_bytes(value: Any) -> bytes:
    """Bytes from a JSON-RPC hex string or from web3's bytes."""
    if isinstance(value, str):
        return bytes.fromhex(value[2:] if value[:2] in ("0x", "0X") else value)
    return bytes(value)


def to_int(value: Any) -> int:
    """An int from a JSON-RPC hex quantity or from web3's int."""
    return int(value, 16) if isinstance(value, str) else int(value)


_SHIPPED_DATA = tuple(abi_type for _name, abi_type in _SHIPPED_DECLARED[1])


@dataclass(frozen=True)
class _EventAbi:
    name: str
    topic: bytes
    indexed: tuple[tuple[str, WordDecoder], ...]
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]


class EventDecoder:
    """Decodes the logs of the registry and of its licence ledger by their ABIs (the shipped
    artifacts' by default).

    Only events named in EVENT_FIELDS and LICENCE_EVENT_FIELDS are followed; every other event
    of the contracts (nonce invalidations, batch failures, ...) is not requested and, if met,
    skipped. Both contracts' logs come from one eth_getLogs (an address list), so their events
    form one stream in chain order.
    """

    def __init__(
        self,
        realm: int,
        abi: Sequence[Mapping[str, Any]] | None = None,
        licence_abi: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        self.realm = realm
        self._events: dict[bytes, _EventAbi] = {}
        # topic0 in JSON-RPC form if Declared has the shipped layout, which has a short cut.
        self._shipped_declared: str | None = None
        registry_abi = artifact()["abi"] if abi is None else abi
        licences_abi = artifact(LICENCES_NAME)["abi"] if licence_abi is None else licence_abi
        followed = [(e, EVENT_FIELDS) for e in registry_abi]
        followed += [(e, LICENCE_EVENT_FIELDS) for e in licences_abi]
        for entry, fields in followed:
            if entry.get("type") != "event" or entry.get("name") not in fields:
                continue
            names = [i["name"] for i in entry["inputs"]]
            missing = [f for f in fields[entry["name"]] if f not in names]
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
                    (i["name"], word_decoder(i["type"])) for i in entry["inputs"] if i["indexed"]
                ),
                data_names=tuple(i["name"] for i in data),
                data_types=tuple(canonical_type(i) for i in data),
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

    def decode(self, raw_log: Mapping[str, Any]) -> AnyEvent:
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
        return _event(spec, position, args, self.realm)

    def decode_logs(self, raw_logs: Iterable[Mapping[str, Any]]) -> list[AnyEvent]:
        """Decode the logs of one range in chain order, skipping what is not a followed event.

        A log this contract cannot emit is logged and skipped rather than stopping the indexer.
        """
        decoded: list[AnyEvent] = []
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
                tail = (args["gateway"], args["record"], args["committedAt"])
                decoded.append((position, (*declared, *tail)))
                continue
            try:
                decoded.append((position, _event(spec, position, args, self.realm)))
            except MalformedLog as exc:
                _skipping(raw.transaction_hash, exc)
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
            declarer = address_topic(declarer_hex)
            datahash = fromhex(datahash_hex[2:])
            iscc_code, metahash, gateway, record, committed_at = decode_data(
                _SHIPPED_DATA, fromhex(data[2:])
            )
            block_hash = block_hashes.get(raw.block_hash)
            if block_hash is None:
                block_hash = block_hashes[raw.block_hash] = to_bytes(raw.block_hash)
            block_number, log_index = int(raw.block_number, 16), int(raw.log_index, 16)
        except ValueError:  # MalformedLog too
            return None
        if body >> 64:  # the uint64 topic's range check
            return None
        position = (block_number, block_hash, fromhex(tx_hash[2:]), log_index, body, self.realm)
        return position, (declarer, datahash, iscc_code, metahash, gateway, record, committed_at)

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
            values = decode_data(spec.data_types, to_bytes(data))
            args.update(zip(spec.data_names, values, strict=True))
            if spec.name in LICENCE_EVENT_FIELDS:
                licence_position = (
                    to_int(block_number),
                    to_bytes(block_hash),
                    to_bytes(tx_hash),
                    to_int(log_index),
                )
                return spec, licence_position, args
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


def _event(
    spec: _EventAbi, position: tuple[Any, ...], args: dict[str, Any], realm: int
) -> AnyEvent:
    if spec.name == DECLARED:
        return _declared(position, args)
    if spec.name in LICENCE_EVENT_FIELDS:
        return _licence_event(spec.name, position, args, realm)
    return ChangeEvent(
        *position,
        name=spec.name,
        fields=tuple((k, json_value(v)) for k, v in args.items()),
    )


def _licence_event(
    name: str, position: tuple[Any, ...], args: dict[str, Any], realm: int
) -> LicenceEvent:
    """A licence event from its arguments (its ISCC-ID is of the registry's realm); a value
    that does not fit (a foreign contract's log) raises MalformedLog."""
    try:
        if name == GRANTED:
            return GrantedEvent.from_args(position, args, realm)
        return TerminatedEvent.from_args(position, args)
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedLog(f"undecodable {name} log: {exc!r}") from None


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
        record=int(args["record"]),
        committed_at=int(args["committedAt"]),
        extra=tuple((k, json_value(v)) for k, v in args.items() if k not in known),
    )
