"""Licence terms: what a grant allows, where, when and to whom, and the parsing of them.

The contract (contracts/LicenceRegistry.sol) stores a grant's terms as raw integers and bytes;
this module is their meaning. `Use` and `Conditions` fix the bit positions of the contract's
`uses` and `conditions` fields (a bit, once given a meaning, keeps it forever: grants signed
years ago are read with this table). `Territories` is a set of ISO 3166-1 alpha-2 countries or
the world minus some; `Period` a half-open span of unix seconds; `GrantTerms` one grant.

`overlap` gives the exact territories x uses x period two grants share; the rules built on it
(exclusivity, sublicences, usage) are in registry.ledger.rules, the DDEX mapping in
registry.ledger.ddex.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import IntFlag
from functools import lru_cache
from typing import Any, Protocol

import pycountry
from eth_utils import is_address, to_checksum_address

from registry.errors import InvalidTerms

__all__ = [
    "ALL_CONDITIONS",
    "ALL_USES",
    "CODE_SPACE",
    "COUNTRIES",
    "MAX_TERRITORIES",
    "NO_CONDITIONS",
    "NO_USES",
    "USE_INFO",
    "Conditions",
    "GrantFields",
    "GrantTerms",
    "Overlap",
    "Period",
    "Territories",
    "Use",
    "condition_names",
    "format_time",
    "overlap",
    "parse_conditions",
    "parse_period",
    "parse_territories",
    "parse_time",
    "parse_uses",
    "unknown_uses",
    "use_names",
    "uses_from_names",
]

# pycountry carries the ISO 3166-1 table as ISO publishes it (the Debian iso-codes data), so a
# newly assigned or withdrawn code arrives with a package update instead of a hand edit here.
COUNTRIES: frozenset[str] = frozenset(c.alpha_2 for c in pycountry.countries)
"""Every ISO 3166-1 alpha-2 country code: the territories users can name."""

CODE_SPACE: frozenset[str] = frozenset(
    a + b for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
"""Every code the contract accepts (two letters A-Z): what "the world" ranges over. A grant
read from the chain may name a code ISO has not assigned (yet): the contract cannot tell, and
the indexer must read every grant the contract accepted, so such a code is kept and matches
only itself; a worldwide grant covers it unless it excludes it."""

MAX_TERRITORIES = 250
"""Most codes one grant lists (the contract's limit; there are 249 countries)."""

UINT64 = 2**64
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_HASH = bytes(32)


class Use(IntFlag):
    """The uses a grant allows: bit i of the contract's `uses` field. Positions are fixed.

    Each use is one DDEX ERN pair (CommercialModelType, UseType); registry.ledger.ddex maps
    them both ways and docs/ledger.md tabulates them.
    """

    THEATRICAL = 1 << 0
    """Public screening, in cinemas and other venues, for paying audiences."""
    FREE_TV = 1 << 1
    """Linear television free to the viewer (public or advertising-financed broadcasters)."""
    PAY_TV = 1 << 2
    """Linear television the viewer pays a subscription for (cable, satellite, IPTV)."""
    SVOD = 1 << 3
    """Subscription video on demand."""
    AVOD = 1 << 4
    """Advertising-financed video on demand."""
    TVOD = 1 << 5
    """Transactional video on demand: pay per view, a rental for a limited time."""
    ONLINE = 1 << 6
    """Making available online free of charge and without advertising (a website, FVOD)."""
    EDUCATIONAL = 1 << 7
    """Use in teaching and research institutions."""
    ARCHIVE = 1 << 8
    """Keeping and giving access in an archive or library."""
    EXCERPT = 1 << 9
    """Using excerpts (clips, previews, quotations) of the work."""
    TDM = 1 << 10
    """Text and data mining (automated analysis of the work)."""
    AI_TRAINING = 1 << 11
    """Training machine-learning models, generative AI included, on the work."""
    EST = 1 << 12
    """Electronic sell-through: a permanent download the consumer buys."""


USE_INFO: dict[Use, str] = {
    Use.THEATRICAL: "Theatrical",
    Use.FREE_TV: "Free TV",
    Use.PAY_TV: "Pay TV",
    Use.SVOD: "SVOD",
    Use.AVOD: "AVOD",
    Use.TVOD: "TVOD",
    Use.ONLINE: "Online",
    Use.EDUCATIONAL: "Educational",
    Use.ARCHIVE: "Archive",
    Use.EXCERPT: "Excerpt",
    Use.TDM: "Text and data mining",
    Use.AI_TRAINING: "AI training",
    Use.EST: "EST (download to own)",
}
"""The readable label of each use, for tables and pages."""

ALL_USES = Use(sum(Use.__members__.values()))
NO_USES = Use(0)


class Conditions(IntFlag):
    """What a licensee may do with the licensed uses: the contract's `conditions` field."""

    COMMERCIAL = 1 << 0
    """Commercial use allowed."""
    DERIVATIVES = 1 << 1
    """Derivative works (edits, adaptations, remixes) allowed."""
    ATTRIBUTION = 1 << 2
    """The licensee must credit the rights holder."""


ALL_CONDITIONS = Conditions(sum(Conditions.__members__.values()))
NO_CONDITIONS = Conditions(0)


def use_names(uses: Use | int) -> list[str]:
    """The vocabulary names of the bits set, in bit order: ["svod", "avod"]; a bit the
    vocabulary does not know (a grant from the chain may set one) is "bit13"."""
    value = int(uses)
    return [_bit_name(1 << i) for i in range(value.bit_length()) if value >> i & 1]


def _bit_name(bit: int) -> str:
    name = Use(bit).name if bit & int(ALL_USES) else None
    return name.lower() if name else f"bit{bit.bit_length() - 1}"


def unknown_uses(uses: Use | int) -> Use:
    """The bits of `uses` the vocabulary does not know."""
    return Use(int(uses) & ~int(ALL_USES))


def condition_names(conditions: Conditions | int) -> list[str]:
    return [c.name.lower() for c in Conditions if c in Conditions(conditions) and c.name]


def _uses_text(uses: Use) -> str:
    value = int(uses)
    labels = [
        USE_INFO.get(Use(1 << i), f"use bit {i}")
        for i in range(value.bit_length())
        if value >> i & 1
    ]
    return ", ".join(labels) or "no use"


def _check_uses(uses: int) -> Use:
    """The contract's bound (uint32); bits beyond the vocabulary are kept (see CODE_SPACE)."""
    if not isinstance(uses, int) or not 0 <= uses < 2**32:
        raise InvalidTerms(f"uses must be a 32-bit mask, not {uses!r}")
    return Use(uses)


@dataclass(frozen=True)
class Territories:
    """Where a grant applies: a set of countries, or the world except a set of countries.

    Equality compares the notation (DE+AT is not "world except ..."), as the contract stores
    it; `same_as` compares the countries meant.
    """

    codes: frozenset[str]
    worldwide: bool = False

    def __post_init__(self) -> None:
        # Only the contract's rule: users' input is checked against ISO where it is parsed
        # (`of`, `world_except`, `parse_territories`); see CODE_SPACE for why.
        bad = sorted(c for c in self.codes if c not in CODE_SPACE)
        if bad:
            raise InvalidTerms(f"not a territory code: {bad[0]!r} (two letters A-Z)")

    @classmethod
    def of(cls, *codes: str) -> Territories:
        return cls(frozenset(_code(c) for c in codes))

    @classmethod
    def world(cls) -> Territories:
        return cls(frozenset(), worldwide=True)

    @classmethod
    def world_except(cls, *codes: str) -> Territories:
        return cls(frozenset(_code(c) for c in codes), worldwide=True)

    @classmethod
    def from_raw(cls, territories: bytes | Iterable[str], worldwide: bool) -> Territories:
        """From the contract's fields: 2-byte ASCII codes (bytes, or a sequence of str)."""
        if isinstance(territories, bytes | bytearray):
            if len(territories) % 2:
                raise InvalidTerms("territories must be 2 bytes per code")
            text = bytes(territories).decode("ascii", errors="replace")
            codes = [text[i : i + 2] for i in range(0, len(text), 2)]
        else:
            codes = list(territories)
        return cls(frozenset(codes), worldwide=bool(worldwide))

    def expand(self) -> frozenset[str]:
        """The codes meant, as a set (the world is every code of CODE_SPACE)."""
        return CODE_SPACE - self.codes if self.worldwide else self.codes

    def unknown(self) -> list[str]:
        """The codes named that are not ISO 3166-1 countries (only a grant read from the
        chain can have any)."""
        return sorted(self.codes - COUNTRIES)

    def same_as(self, other: Territories) -> bool:
        return self.expand() == other.expand()

    def contains(self, code: str) -> bool:
        """Whether the territory `code` (any case) is meant."""
        code = code.upper()
        if self.worldwide:
            return code in CODE_SPACE and code not in self.codes
        return code in self.codes

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self.contains(code)

    def is_empty(self) -> bool:
        return not self.expand()

    def intersect(self, other: Territories) -> Territories:
        if self.worldwide and other.worldwide:
            return Territories(self.codes | other.codes, worldwide=True)
        if self.worldwide:
            return Territories(other.codes - self.codes)
        if other.worldwide:
            return Territories(self.codes - other.codes)
        return Territories(self.codes & other.codes)

    def subtract(self, other: Territories) -> Territories:
        """The countries of self that are not in other."""
        if self.worldwide and other.worldwide:
            return Territories(other.codes - self.codes)
        if self.worldwide:
            return Territories(self.codes | other.codes, worldwide=True)
        if other.worldwide:
            return Territories(self.codes & other.codes)
        return Territories(self.codes - other.codes)

    def issubset(self, other: Territories) -> bool:
        return self.subtract(other).is_empty()

    def to_raw(self) -> bytes:
        """The contract's `territories`: ASCII codes, 2 bytes each, sorted, unique."""
        return "".join(sorted(self.codes)).encode("ascii")

    def to_json(self) -> dict[str, Any]:
        return {"worldwide": self.worldwide, "codes": sorted(self.codes)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Territories:
        return cls(frozenset(data["codes"]), worldwide=bool(data["worldwide"]))

    def __str__(self) -> str:
        codes = ", ".join(sorted(self.codes))
        if self.worldwide:
            return f"World except {codes}" if codes else "World"
        return codes or "nowhere"


def _code(text: str) -> str:
    code = text.strip().upper()
    if code not in COUNTRIES:
        raise InvalidTerms(
            f"unknown territory {text.strip()!r}: use ISO 3166-1 alpha-2 country codes "
            "(DE, AT, US, ...), 'world' or 'world except US,CA'"
        )
    return code


def format_time(seconds: int) -> str:
    """A unix time as the shortest ISO 8601 form in UTC: a date at midnight, else date+time."""
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    if moment.hour == moment.minute == moment.second == 0:
        return moment.date().isoformat()
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Period:
    """A term: from `start` (inclusive) to `end` (exclusive), unix seconds; end None = no end.

    Half-open, so a term ending at midnight and one starting at that midnight touch but do not
    overlap: a renewal does not clash with the licence it renews.
    """

    start: int
    end: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.start, int) or not 0 <= self.start < UINT64:
            raise InvalidTerms(f"start must be unix seconds in 0..2^64-1, not {self.start!r}")
        if self.end is not None:
            if not isinstance(self.end, int) or not 0 < self.end < UINT64:
                raise InvalidTerms(f"end must be unix seconds in 1..2^64-1, not {self.end!r}")
            if self.end <= self.start:
                raise InvalidTerms(
                    f"end {format_time(self.end)} is not after start {format_time(self.start)}"
                )

    @classmethod
    def from_raw(cls, start: int, end: int) -> Period:
        """The contract's fields: end 0 means no end."""
        return cls(start, end or None)

    def to_raw(self) -> tuple[int, int]:
        return self.start, self.end or 0

    def contains(self, moment: int) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)

    def intersect(self, other: Period) -> Period | None:
        start = max(self.start, other.start)
        ends = [e for e in (self.end, other.end) if e is not None]
        end = min(ends) if ends else None
        if end is not None and end <= start:
            return None
        return Period(start, end)

    def overlaps(self, other: Period) -> bool:
        return self.intersect(other) is not None

    def before(self, moment: int) -> Period | None:
        """The part of this period before `moment`."""
        if moment <= self.start:
            return None
        return Period(self.start, moment if self.end is None else min(self.end, moment))

    def after(self, moment: int | None) -> Period | None:
        """The part of this period from `moment` on (None: never)."""
        if moment is None or (self.end is not None and self.end <= moment):
            return None
        return Period(max(self.start, moment), self.end)

    def issubset(self, other: Period) -> bool:
        return self.start >= other.start and (
            other.end is None or (self.end is not None and self.end <= other.end)
        )

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Period:
        return cls(int(data["start"]), None if data["end"] is None else int(data["end"]))

    def __str__(self) -> str:
        start = format_time(self.start)
        return f"from {start}" if self.end is None else f"{start} to {format_time(self.end)}"


class GrantFields(Protocol):
    """The fields of a granted event (registry.chain.licences.GrantedEvent) that
    `GrantTerms.from_event` reads; any object with these attributes will do."""

    grant_id: str
    iscc_id: Any
    grantor: str
    licensee: str
    parent: str
    territories: tuple[str, ...]
    worldwide: bool
    uses: int
    conditions: int
    start: int
    end: int
    exclusive: bool
    sublicensable: bool
    terms_url: str
    terms_hash: Any


@dataclass(frozen=True)
class GrantTerms:
    """The meaning of one grant: scope (territories x uses x period), conditions, exclusivity,
    and the parties. `grant_id`, `iscc_id` and `grantor` are None for terms not yet signed."""

    territories: Territories
    uses: Use
    period: Period
    conditions: Conditions = NO_CONDITIONS
    exclusive: bool = False
    sublicensable: bool = False
    licensee: str | None = None
    """None: a public licence, open to everyone."""
    parent: str | None = None
    """The parent grant's id (0x hex) for a sublicence."""
    grantor: str | None = None
    iscc_id: str | None = None
    """The licensed declaration's ISCC-ID ("ISCC:...")."""
    grant_id: str | None = None
    terms_url: str = ""
    terms_hash: bytes | None = None

    def __post_init__(self) -> None:
        # What the contract guarantees of every grant it accepted, so reading any grant from
        # the chain succeeds; the vocabulary itself is checked where users' input is parsed.
        object.__setattr__(self, "uses", _check_uses(int(self.uses)))
        conditions = int(self.conditions)
        if conditions < 0 or conditions & ~int(ALL_CONDITIONS):
            raise InvalidTerms(f"conditions 0x{conditions:x} has unknown bits")
        object.__setattr__(self, "conditions", Conditions(conditions))
        if not self.uses:
            raise InvalidTerms("a grant must allow at least one use")
        if not self.territories.worldwide and not self.territories.codes:
            raise InvalidTerms("a grant must name at least one territory, or the world")
        if len(self.territories.codes) > MAX_TERRITORIES:
            raise InvalidTerms(f"at most {MAX_TERRITORIES} territory codes per grant")
        for name in ("licensee", "grantor"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _checksum(name, value))
        for name in ("parent", "grant_id"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _hash_hex(name, value))
        if len(self.terms_url.encode()) > 2048:
            raise InvalidTerms("the terms URL is longer than 2048 bytes")
        if self.terms_hash is not None and len(self.terms_hash) != 32:
            raise InvalidTerms("the terms hash must be 32 bytes (sha256)")

    @property
    def public(self) -> bool:
        return self.licensee is None

    def unknown_terms(self) -> list[str]:
        """What the vocabulary does not know in these terms (codes ISO has not assigned, use
        bits without a name): empty for every grant made through our parsers."""
        found = [f"territory {c} is not an ISO 3166-1 country" for c in self.territories.unknown()]
        found += [f"use {n} is not in the vocabulary" for n in use_names(unknown_uses(self.uses))]
        return found

    @classmethod
    def from_fields(
        cls,
        *,
        territories: bytes | Iterable[str],
        worldwide: bool,
        uses: int,
        conditions: int = 0,
        start: int,
        end: int = 0,
        exclusive: bool = False,
        sublicensable: bool = False,
        licensee: str | None = None,
        parent: str | bytes | None = None,
        grantor: str | None = None,
        iscc_id: Any = None,
        grant_id: str | bytes | None = None,
        terms_url: str = "",
        terms_hash: str | bytes | None = None,
    ) -> GrantTerms:
        """From the raw values the contract and its events carry: licensee address(0) is a
        public licence, parent and terms hash zero are none, end 0 is no end."""
        if isinstance(terms_hash, str):
            terms_hash = bytes.fromhex(terms_hash.removeprefix("0x"))
        parent_hex = None if parent is None else _hash_hex("parent", parent)
        return cls(
            territories=Territories.from_raw(territories, worldwide),
            uses=_check_uses(uses),
            period=Period.from_raw(start, end),
            conditions=Conditions(conditions),
            exclusive=bool(exclusive),
            sublicensable=bool(sublicensable),
            licensee=None if not licensee or int(licensee, 16) == 0 else licensee,
            parent=None if parent_hex is None or int(parent_hex, 16) == 0 else parent_hex,
            grantor=grantor,
            iscc_id=None if iscc_id is None else str(iscc_id),
            grant_id=None if grant_id is None else _hash_hex("grant id", grant_id),
            terms_url=terms_url,
            terms_hash=None if not terms_hash or terms_hash == ZERO_HASH else terms_hash,
        )

    @classmethod
    def create(
        cls,
        *,
        territories: str,
        uses: str,
        start: str | int,
        end: str | int | None = None,
        conditions: str = "",
        exclusive: bool = False,
        sublicensable: bool = False,
        licensee: str | None = None,
        parent: str | None = None,
        terms_url: str = "",
        terms_hash: str | bytes | None = None,
    ) -> GrantTerms:
        """From the strings users type (CLI options, API fields), held to ISO and to the
        vocabulary: territories "DE,AT" or "world except US", uses "svod,avod", dates,
        conditions "commercial,attribution"; licensee None or "" for a public licence."""
        if isinstance(terms_hash, str):
            try:
                terms_hash = bytes.fromhex(terms_hash.removeprefix("0x"))
            except ValueError:
                raise InvalidTerms(f"terms hash is not hex: {terms_hash!r}") from None
        return cls(
            territories=parse_territories(territories),
            uses=parse_uses(uses),
            period=parse_period(start, end),
            conditions=parse_conditions(conditions),
            exclusive=exclusive,
            sublicensable=sublicensable,
            licensee=licensee or None,
            parent=parent or None,
            terms_url=terms_url,
            terms_hash=terms_hash or None,
        )

    @classmethod
    def from_event(cls, event: GrantFields) -> GrantTerms:
        """From a granted event (registry.chain.licences.GrantedEvent) or a store row with
        the same field names."""
        return cls.from_fields(
            territories=event.territories,
            worldwide=event.worldwide,
            uses=event.uses,
            conditions=event.conditions,
            start=event.start,
            end=event.end,
            exclusive=event.exclusive,
            sublicensable=event.sublicensable,
            licensee=event.licensee,
            parent=event.parent,
            grantor=event.grantor,
            iscc_id=event.iscc_id,
            grant_id=event.grant_id,
            terms_url=event.terms_url,
            terms_hash=event.terms_hash,
        )

    def to_raw(self) -> dict[str, Any]:
        """The terms as the contract's `Grant` struct fields, by their Solidity names. The
        caller adds isccId, grantor, nonce and deadline."""
        start, end = self.period.to_raw()
        return {
            "licensee": self.licensee or ZERO_ADDRESS,
            "parent": bytes.fromhex(self.parent[2:]) if self.parent else ZERO_HASH,
            "territories": self.territories.to_raw(),
            "worldwide": self.territories.worldwide,
            "uses": int(self.uses),
            "conditions": int(self.conditions),
            "start": start,
            "end": end,
            "exclusive": self.exclusive,
            "sublicensable": self.sublicensable,
            "termsUrl": self.terms_url,
            "termsHash": self.terms_hash or ZERO_HASH,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "grant_id": self.grant_id,
            "iscc_id": self.iscc_id,
            "grantor": self.grantor,
            "licensee": self.licensee,
            "parent": self.parent,
            "territories": self.territories.to_json(),
            "uses": use_names(self.uses),
            "conditions": condition_names(self.conditions),
            "period": self.period.to_json(),
            "exclusive": self.exclusive,
            "sublicensable": self.sublicensable,
            "terms_url": self.terms_url,
            "terms_hash": None if self.terms_hash is None else "0x" + self.terms_hash.hex(),
            "text": self.describe(),
        }

    def describe(self) -> str:
        """One line: "SVOD, AVOD in AT, DE, 2025-01-01 to 2026-01-01, exclusive, to 0x..."."""
        parts = [f"{_uses_text(self.uses)} in {self.territories}", str(self.period)]
        if self.exclusive:
            parts.append("exclusive")
        if self.sublicensable:
            parts.append("sublicensable")
        if self.conditions:
            parts.append("conditions: " + ", ".join(condition_names(self.conditions)))
        parts.append(f"to {self.licensee}" if self.licensee else "public")
        return ", ".join(parts)


@lru_cache(maxsize=1 << 16)
def _checksum_of(value: str) -> str | None:
    return to_checksum_address(value) if is_address(value) else None


def _checksum(name: str, value: str) -> str:
    """The checksummed address; cached, since the indexer reads the same parties' grants over
    and over and checksumming (a keccak through eth_utils) is most of a GrantTerms' cost."""
    checked = _checksum_of(value) if isinstance(value, str) else None
    if checked is None:
        raise InvalidTerms(f"{name} is not an address: {value!r}")
    return checked


def _hash_hex(name: str, value: str | bytes) -> str:
    raw = bytes(value) if isinstance(value, bytes | bytearray) else None
    if raw is None:
        text = str(value).lower().removeprefix("0x")
        if len(text) != 64 or re.fullmatch(r"[0-9a-f]+", text) is None:
            raise InvalidTerms(f"{name} must be 32 bytes as 0x hex, not {value!r}")
        return "0x" + text
    if len(raw) != 32:
        raise InvalidTerms(f"{name} must be 32 bytes, not {len(raw)}")
    return "0x" + raw.hex()


@dataclass(frozen=True)
class Overlap:
    """Where two grants meet: the territories x uses x period both of them cover."""

    territories: Territories
    uses: Use
    period: Period

    def to_json(self) -> dict[str, Any]:
        return {
            "territories": self.territories.to_json(),
            "uses": use_names(self.uses),
            "period": self.period.to_json(),
            "text": str(self),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Overlap:
        return cls(
            Territories.from_json(data["territories"]),
            uses_from_names(data["uses"]),
            Period.from_json(data["period"]),
        )

    def __str__(self) -> str:
        return f"{_uses_text(self.uses)} in {self.territories}, {self.period}"


def overlap(a: GrantTerms, b: GrantTerms) -> Overlap | None:
    """The exact territories x uses x period two grants share, or None if they share none
    (an empty product: no common country, no common use, or terms that at most touch)."""
    uses = a.uses & b.uses
    if not uses:
        return None
    period = a.period.intersect(b.period)
    if period is None:
        return None
    territories = a.territories.intersect(b.territories)
    if territories.is_empty():
        return None
    return Overlap(territories, uses, period)


# ---------------------------------------------------------------------------------------------
# Parsing what users type (CLI, API query parameters)


def _tokens(text: str) -> list[str]:
    return [t.strip() for t in re.split(r"[,\s]+", text) if t.strip()]


def parse_uses(text: str) -> Use:
    """Names to uses: "svod,avod" -> Use.SVOD | Use.AVOD. Names are case-blind, and - is _."""
    uses = Use(0)
    tokens = _tokens(text)
    if not tokens:
        raise InvalidTerms(f"no use given; allowed: {', '.join(use_names(ALL_USES))}")
    for token in tokens:
        name = token.upper().replace("-", "_")
        if name not in Use.__members__:
            allowed = ", ".join(use_names(ALL_USES))
            raise InvalidTerms(f"unknown use {token!r}; allowed: {allowed}")
        uses |= Use[name]
    return uses


def uses_from_names(names: Iterable[str]) -> Use:
    """The inverse of `use_names` (vocabulary names and "bitN"), for stored evidence."""
    uses = 0
    for name in names:
        m = re.fullmatch(r"bit(\d+)", name)
        if m and int(m.group(1)) < 32:
            uses |= 1 << int(m.group(1))
        elif name.upper() in Use.__members__:
            uses |= int(Use[name.upper()])
        else:
            raise InvalidTerms(f"unknown use {name!r}")
    return Use(uses)


def parse_conditions(text: str) -> Conditions:
    """Names to conditions: "commercial,attribution" -> the flags; "" or "none" -> no conditions."""
    conditions = Conditions(0)
    for token in _tokens(text):
        name = token.upper()
        if name == "NONE":
            continue
        if name not in Conditions.__members__:
            raise InvalidTerms(
                f"unknown condition {token!r}; allowed: "
                f"{', '.join(condition_names(ALL_CONDITIONS))}"
            )
        conditions |= Conditions[name]
    return conditions


_WORLD = re.compile(r"^\s*(world|worldwide)\b\s*(?:(?:except|without|-)\s*(.*))?$", re.I)


def parse_territories(text: str) -> Territories:
    """Territories as users write them: "DE,AT", "world", "worldwide", "world except US,CA"
    (also "world -US")."""
    m = _WORLD.match(text)
    if m:
        rest = m.group(2)
        if rest is not None and not _tokens(rest):
            raise InvalidTerms(f"{text.strip()!r}: name the excluded territories after 'except'")
        return Territories.world_except(*_tokens(rest or ""))
    tokens = _tokens(text)
    if not tokens:
        raise InvalidTerms(
            "no territory given: use ISO 3166-1 alpha-2 codes (DE,AT), 'world' or "
            "'world except US,CA'"
        )
    return Territories.of(*tokens)


def parse_time(text: str | int) -> int:
    """An ISO 8601 date ("2025-01-01", midnight UTC) or date-time ("2025-01-01T12:00:00Z";
    no offset means UTC), or unix seconds, as unix seconds."""
    if isinstance(text, int):
        return text
    value = text.strip()
    if re.fullmatch(r"\d{9,}", value):
        return int(value)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            moment = datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise InvalidTerms(
            f"not a date: {value!r}; use YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ"
        ) from None
    seconds = int(moment.timestamp())
    if seconds < 0:
        raise InvalidTerms(f"date {value!r} is before 1970")
    return seconds


def parse_period(start: str | int, end: str | int | None = None) -> Period:
    """The term from two user strings; end None, "" or "none" is no end."""
    if end is None or (isinstance(end, str) and end.strip().lower() in ("", "none", "never")):
        return Period(parse_time(start))
    return Period(parse_time(start), parse_time(end))
