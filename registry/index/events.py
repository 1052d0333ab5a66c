"""The registry's `Declared` event: decoded from raw logs with eth-abi and validated."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import iscc_lib
from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak, to_checksum_address

from registry.chain.iscc_id import IsccId
from registry.errors import InvalidCode
from registry.index.schema import to_signed64
from registry.iscc.codec import code_from_bytes

__all__ = [
    "DECLARED",
    "DECLARED_SIGNATURE",
    "DECLARED_TOPIC",
    "DeclaredEvent",
    "MalformedLog",
    "Unit",
    "decode_declared",
    "decode_logs",
    "validate_code",
]

log = logging.getLogger(__name__)

DECLARED = "Declared"
DECLARED_SIGNATURE = "Declared(uint64,address,bytes32,bytes,bytes32,string)"
DECLARED_TOPIC = keccak(text=DECLARED_SIGNATURE)
_DATA_TYPES = ("bytes", "bytes32", "string")

# Content and Semantic units name their SubType; the ISCC standard's names for SubType 0..4.
_CONTENT_SUBTYPES = {0: "TEXT", 1: "IMAGE", 2: "AUDIO", 3: "VIDEO", 4: "MIXED"}


class MalformedLog(ValueError):
    """A log that is not a `Declared` event of the registry ABI at all (wrong topics or data)."""


@dataclass(frozen=True)
class Unit:
    """One unit of an ISCC-CODE: its type ("META", "CONTENT-TEXT", "DATA", ...) and body."""

    unit_type: str
    body: bytes

    @property
    def bits(self) -> int:
        return len(self.body) * 8

    @property
    def value(self) -> int:
        """The first 64 bits as a signed integer: what the store indexes for similarity search."""
        return to_signed64(int.from_bytes(self.body[:8].ljust(8, b"\0"), "big"))


@dataclass(frozen=True)
class DeclaredEvent:
    """A `Declared` log with its position on chain and the indexer's verdict on its content."""

    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int
    iscc_id_body: int
    realm: int
    declarer: str
    datahash: bytes
    iscc_code_raw: bytes
    metahash: bytes
    gateway: str
    iscc_code: str | None
    units: tuple[Unit, ...]
    invalid_reason: str | None

    @property
    def valid(self) -> bool:
        return self.invalid_reason is None

    @property
    def iscc_id(self) -> str:
        return str(IsccId(self.iscc_id_body, self.realm))

    @property
    def key(self) -> tuple[bytes, int]:
        """Position of the log within its chain: unique, and the same on every replay."""
        return self.tx_hash, self.log_index

    def payload(self) -> str:
        """The event's arguments as JSON, as the append-only history keeps them."""
        return json.dumps(
            {
                "isccId": self.iscc_id_body,
                "declarer": self.declarer,
                "datahash": "0x" + self.datahash.hex(),
                "isccCode": "0x" + self.iscc_code_raw.hex(),
                "metahash": "0x" + self.metahash.hex(),
                "gateway": self.gateway,
            },
            separators=(",", ":"),
        )


def _unit_type(maintype: iscc_lib.MT, subtype: int) -> str:
    if maintype in (iscc_lib.MT.CONTENT, iscc_lib.MT.SEMANTIC):
        return f"{maintype.name}-{_CONTENT_SUBTYPES.get(int(subtype), str(int(subtype)))}"
    return maintype.name


def validate_code(raw: bytes, datahash: bytes) -> tuple[str | None, tuple[Unit, ...], str | None]:
    """Decode a binary ISCC-CODE and check it against the datahash.

    Returns (ISCC-CODE string or None, units, reason it is invalid or None). Never raises: the
    contract only checks the header, so anything may arrive and must still be recorded.
    """
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
    units = tuple(Unit(_unit_type(mt, st), digest) for mt, st, _v, _l, digest in parts)
    # iscc-lib ignores bytes after the units; a canonical code has none.
    if b"".join(u.body for u in units) != raw[2:]:
        covered = sum(len(u.body) for u in units)
        return code, units, f"ISCC-CODE has {len(raw) - 2} body bytes, its units cover {covered}"
    instance = next((u for u in units if u.unit_type == "INSTANCE"), None)
    if instance is None:
        return code, units, "ISCC-CODE has no Instance-Code"
    if datahash[: len(instance.body)] != instance.body:
        return (
            code,
            units,
            (
                f"datahash 1e20{datahash.hex()} does not start with the Instance-Code body "
                f"{instance.body.hex()}"
            ),
        )
    return code, units, None


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def _to_int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def decode_declared(raw_log: Mapping[str, Any], realm: int) -> DeclaredEvent:
    """Decode one log (web3 AttributeDict or raw JSON-RPC dict); raise MalformedLog if it is not
    a `Declared` event at all. Content problems do not raise: they make the event invalid."""
    try:
        topics = [_to_bytes(t) for t in raw_log["topics"]]
        if len(topics) != 4 or topics[0] != DECLARED_TOPIC:
            raise MalformedLog(f"not a {DECLARED} log: topics {[t.hex() for t in topics]}")
        iscc_code_raw, metahash, gateway = abi_decode(_DATA_TYPES, _to_bytes(raw_log["data"]))
        iscc_id_body = int.from_bytes(topics[1], "big")
        if iscc_id_body >= 1 << 64 or int.from_bytes(topics[2], "big") >= 1 << 160:
            raise MalformedLog("indexed isccId or declarer out of range")
        declarer = to_checksum_address(topics[2][12:])
        datahash = topics[3]
        position = {
            "block_number": _to_int(raw_log["blockNumber"]),
            "block_hash": _to_bytes(raw_log["blockHash"]),
            "tx_hash": _to_bytes(raw_log["transactionHash"]),
            "log_index": _to_int(raw_log["logIndex"]),
        }
    except (KeyError, TypeError, ValueError, DecodingError) as exc:
        if isinstance(exc, MalformedLog):
            raise
        raise MalformedLog(f"undecodable {DECLARED} log: {exc!r}") from None
    iscc_code, units, reason = validate_code(iscc_code_raw, datahash)
    return DeclaredEvent(
        **position,
        iscc_id_body=iscc_id_body,
        realm=realm,
        declarer=declarer,
        datahash=datahash,
        iscc_code_raw=iscc_code_raw,
        metahash=metahash,
        gateway=gateway,
        iscc_code=iscc_code,
        units=units,
        invalid_reason=reason,
    )


def decode_logs(raw_logs: Iterable[Mapping[str, Any]], realm: int) -> list[DeclaredEvent]:
    """Decode the `Declared` logs of one range in chain order, skipping what is not one.

    A log this contract cannot emit is logged and skipped rather than stopping the indexer.
    """
    decoded = []
    for raw_log in raw_logs:
        if raw_log.get("removed"):
            continue
        try:
            decoded.append(decode_declared(raw_log, realm))
        except MalformedLog as exc:
            log.warning("skipping log %s: %s", raw_log.get("transactionHash"), exc)
    decoded.sort(key=lambda e: (e.block_number, e.log_index))
    return decoded
