"""What the pages show, computed from the API's answers: who holds priority and whether it is
contested, each declaration once with how it relates to a file, evidence and history in plain
words, and values (times, sizes, chains, hashes) as people read them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from registry.api.resolve import gateway_url
from registry.api.web.explain import unit_title
from registry.chain.iscc_id import IsccId
from registry.errors import InvalidCode

__all__ = [
    "Related",
    "Step",
    "Verdict",
    "ago",
    "chain_name",
    "content_kind",
    "declaration_verdict",
    "declared_at",
    "evidence_lines",
    "history_lines",
    "order_key",
    "related_declarations",
    "result_verdict",
    "short",
    "size_text",
    "thumbnail_url",
]

# Chains this registry is likely to run on; any other is named by its id.
_CHAINS = {
    1: "Ethereum",
    10: "OP Mainnet",
    137: "Polygon",
    8453: "Base",
    42161: "Arbitrum One",
    11155111: "Sepolia testnet",
    17000: "Holesky testnet",
    84532: "Base Sepolia testnet",
    31337: "Hardhat devnet",
}


def chain_name(chain_id: int) -> str:
    return _CHAINS.get(chain_id, f"chain {chain_id}")


def declared_at(iscc_id: str) -> datetime | None:
    """The minting time an ISCC-ID carries (the block's time is not indexed)."""
    try:
        return IsccId.parse(iscc_id).datetime
    except InvalidCode:
        return None


CLOCK_SKEW_S = 60

_SPANS = [
    (365 * 86400, "year"),
    (30 * 86400, "month"),
    (86400, "day"),
    (3600, "hour"),
    (60, "minute"),
    (1, "second"),
]


def ago(at: datetime, now: datetime | None = None) -> str:
    """`at` relative to `now` in the largest whole unit: "3 minutes ago", "in 2 days"."""
    seconds = int(((now or datetime.now(UTC)) - at).total_seconds())
    # Chain clocks run a little ahead of ours (a devnet's blocks, a validator's skew): a
    # moment up to a minute ahead is "just now", not a prophecy.
    if -CLOCK_SKEW_S <= seconds < 5:
        return "just now"
    for span, name in _SPANS:
        count = abs(seconds) // span
        if count:
            words = f"{count} {name}{'' if count == 1 else 's'}"
            return f"{words} ago" if seconds > 0 else f"in {words}"
    return "just now"


def size_text(size: int) -> str:
    """Bytes in the decimal units file managers show (kB, MB, GB), one naming everywhere."""
    if size < 1000:
        return f"{size} byte{'' if size == 1 else 's'}"
    value = float(size)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 999.95 or unit == "TB":
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


# An ISCC-ID (21 characters) is the name people quote: always shown whole.
SHORT_ENOUGH = 24


def short(value: str, head: int = 6, tail: int = 4) -> str:
    """A long hash, address or code as its start and end, prefixes kept ("0x", "1e20",
    "ISCC:"); the page shows the full value on hover and copies it with a button."""
    if len(value) <= SHORT_ENOUGH:
        return value
    prefix = next((p for p in ("ISCC:", "0x", "1e20") if value.startswith(p)), "")
    body = value[len(prefix) :]
    if len(body) <= head + tail + 1:
        return value
    return f"{prefix}{body[:head]}…{body[-tail:]}"


_KIND_OF_UNIT = {
    "CONTENT-TEXT": "Text",
    "CONTENT-IMAGE": "Image",
    "CONTENT-AUDIO": "Audio",
    "CONTENT-VIDEO": "Video",
    "CONTENT-MIXED": "Collection",
}


def content_kind(unit_types: Iterable[str]) -> str:
    """What sort of work a code describes, from its Content-Code ("Data" without one)."""
    for unit_type in unit_types:
        if unit_type in _KIND_OF_UNIT:
            return _KIND_OF_UNIT[unit_type]
    return "Data"


_THUMBNAIL = re.compile(r"data:image/(png|jpeg|webp|gif);base64,[A-Za-z0-9+/=]+")


def thumbnail_url(metadata: Mapping[str, Any] | None) -> str | None:
    """The metadata's thumbnail if it is an inline raster image (the pages load nothing from
    elsewhere, and an SVG could carry script)."""
    value = (metadata or {}).get("thumbnail")
    if isinstance(value, str) and len(value) <= 200_000 and _THUMBNAIL.fullmatch(value):
        return value
    return None


def order_key(d: Mapping[str, Any]) -> tuple[Any, ...]:
    """Priority order: the minting time the ISCC-ID carries (comparable across chains), then
    the chain position for IDs minted in the same microsecond."""
    at = declared_at(d["iscc_id"]) or datetime.max.replace(tzinfo=UTC)
    return (at, d["block_number"], d["log_index"], d["iscc_id"])


@dataclass
class Related:
    """One declaration related to a file, shown once with every way it relates."""

    declaration: dict[str, Any]
    exact: bool = False
    match: dict[str, Any] | None = None
    """The similarity match (score, units within the threshold), if any."""
    excerpt: dict[str, Any] | None = None
    """Where the file sits in this declared work (snippet match), if anywhere."""

    @property
    def how(self) -> str:
        """How this declaration relates to the file, in words."""
        if self.exact:
            return "the very same file"
        if self.match is not None:
            return f"content {self.match['score'] * 100:.0f} % similar to this file"
        return "a work this file is an excerpt of"


def related_declarations(result: Mapping[str, Any]) -> list[Related]:
    """Each declaration of a match result once, earliest first. A file is trivially an excerpt
    of a declaration of its own bytes, so an exact declaration never counts as the work the
    file is an excerpt of."""
    found: dict[str, Related] = {}

    def entry(d: dict[str, Any]) -> Related:
        return found.setdefault(d["iscc_id"], Related(d))

    for d in result.get("exact", []):
        entry(d).exact = True
    for m in (result.get("similar") or {}).get("matches", []):
        entry(m["declaration"]).match = m
    for s in result.get("snippets", []):
        if not found.get(s["declaration"]["iscc_id"], Related({})).exact:
            entry(s["declaration"]).excerpt = s
    return sorted(found.values(), key=lambda r: order_key(r.declaration))


@dataclass(frozen=True)
class Step:
    """Something the person can do next: a link, or a place on the same page."""

    text: str
    href: str


@dataclass
class Verdict:
    """The answer at the top of a page."""

    kind: str
    """declared, not-first, similar, excerpt, none, holds, yields, revoked."""
    headline: str
    holder: dict[str, Any] | None
    """The declaration holding priority, if any."""
    relation: str = ""
    """How the priority holder relates to what was asked about."""
    detail: str = ""
    contested: int = 0
    """Open conflicts recorded around the answer."""
    steps: list[Step] = field(default_factory=list)


def _open_conflicts(declarations: Iterable[Mapping[str, Any]]) -> int:
    """Distinct unresolved conflicts among the conflict views of these declarations."""
    pairs = set()
    for d in declarations:
        for c in d.get("conflicts") or []:
            if not c["resolved"]:
                pairs.add(frozenset((d["iscc_id"], c["other"]["iscc_id"])))
    return len(pairs)


def _conflict_step(holder: Mapping[str, Any], contested: int) -> list[Step]:
    if not contested:
        return []
    plural = "" if contested == 1 else "s"
    return [Step(f"Review the {contested} open conflict{plural}", _conflicts_href(holder))]


def _conflicts_href(d: Mapping[str, Any]) -> str:
    return f"/conflicts?iscc_id={d['iscc_id']}"


def _gateway_step(d: Mapping[str, Any]) -> list[Step]:
    url = gateway_url(d.get("gateway") or "", d["iscc_id"])
    return [Step("The declarer's page for it", url)] if url else []


def result_verdict(related: Sequence[Related]) -> Verdict:
    """Who holds priority over an uploaded file (or a looked-up code), whether that is
    contested, and what to do next."""
    live = [r for r in related if not r.declaration.get("revoked")]
    if not live:
        return Verdict(
            "none",
            "No match: nobody has declared this file or anything like it in this registry.",
            None,
            steps=[Step("Declare it as yours", "#declare")],
        )
    first = live[0]
    holder = first.declaration
    contested = _open_conflicts(r.declaration for r in live)
    exact = [r for r in live if r.exact]
    steps = [Step("Open the declaration holding priority", f"/declaration/{holder['iscc_id']}")]
    steps += _conflict_step(holder, contested)
    steps += _gateway_step(holder)
    if first.exact:
        kind, headline = "declared", "Declared: this very file is declared."
    elif exact:
        others = len(exact)
        kind = "not-first"
        headline = (
            "Declared, but not first: an earlier declaration of similar content holds priority."
        )
        detail = f"This very file was declared {others} time{'' if others == 1 else 's'} after it."
        return Verdict(kind, headline, holder, first.how, detail, contested, steps)
    elif first.match is not None:
        kind, headline = "similar", "Not declared as is, but similar content is declared."
        steps.append(Step("Declare yours anyway (as later)", "#declare"))
    else:
        kind, headline = "excerpt", "An excerpt of a declared work."
        steps.append(Step("Declare yours anyway (as later)", "#declare"))
    later = len(live) - 1
    detail = (
        f"{later} later declaration{' resembles' if later == 1 else 's resemble'} it too."
        if later
        else ""
    )
    return Verdict(kind, headline, holder, first.how, detail, contested, steps)


def declaration_verdict(current: Mapping[str, Any]) -> Verdict:
    """Whether this declaration holds priority, against whom, and what to do next."""
    conflicts = current.get("conflicts") or []
    open_ = [c for c in conflicts if not c["resolved"]]
    contested = len(open_)
    steps: list[Step] = []
    if current.get("revoked"):
        steps.append(Step("See the owner's other declarations", f"/declarer/{current['owner']}"))
        return Verdict(
            "revoked",
            "Revoked: its owner withdrew this declaration; it claims nothing any more.",
            None,
            steps=steps,
        )
    earlier = sorted((c["other"] for c in open_ if not c["holds_priority"]), key=order_key)
    if earlier:
        holder = earlier[0]
        steps.append(
            Step("Open the declaration holding priority", f"/declaration/{holder['iscc_id']}")
        )
        steps += _conflict_step(current, contested)
        return Verdict(
            "yields",
            "Does not hold priority: the same content was declared earlier by someone else.",
            holder,
            "an earlier declaration of the same content",
            contested=contested,
            steps=steps,
        )
    steps += _conflict_step(current, contested)
    steps += _gateway_step(current)
    steps.append(Step("Check a file against the registry", "/"))
    return Verdict(
        "holds",
        "Holds priority: no earlier declaration of this content is recorded.",
        dict(current),
        "this declaration",
        contested=contested,
        steps=steps,
    )


_KIND_WORDS = {
    "CONTENT-IMAGE": "picture",
    "CONTENT-TEXT": "text",
    "CONTENT-AUDIO": "sound",
    "CONTENT-VIDEO": "video",
    "CONTENT-MIXED": "collection",
}


def _place(kind: str, offset: int, length: int) -> str:
    if kind == "text":
        return f"characters {offset:,} to {offset + length:,}"
    return f"{offset / 1000:.1f} s to {(offset + length) / 1000:.1f} s"


def evidence_lines(evidence: Iterable[Mapping[str, Any]]) -> list[str]:
    """The evidence of a conflict in plain words, strongest first (the same bytes before near
    copies of equal strength)."""
    rank = {"datahash": 0, "content": 1}
    ordered = sorted(evidence, key=lambda e: (-e["strength"], rank.get(e["kind"], 2)))
    lines = []
    for e in ordered:
        percent = f"{e['strength'] * 100:.0f} %"
        if e["kind"] == "datahash":
            lines.append("The same file: both declared exactly the same bytes (same datahash).")
        elif e["kind"] == "content" and "unit_type" in e:
            what = _KIND_WORDS.get(e["unit_type"], "content")
            lines.append(
                f"The same {what}, {percent} alike: their {unit_title(e['unit_type'])}s differ "
                f"in {e['distance']} of {e['bits']} bits."
            )
        elif e["kind"] == "segment":
            kind = e.get("segment_kind", "")
            where = (
                f" at {_place(kind, e['offset'], e['length'])}"
                if "offset" in e and "length" in e
                else ""
            )
            lines.append(
                f"A shared excerpt of {kind or 'content'}{where} "
                f"({e.get('matched', 0)} matching segments, {percent} of the shorter work)."
            )
        else:
            lines.append(f"Shared content ({e['kind']}), {percent} sure.")
    return lines


_EVENT_NAMES = {
    "Declared": "Declared",
    "Updated": "Updated",
    "Transferred": "Transferred",
    "Revoked": "Revoked",
}


@dataclass
class HistoryLine:
    name: str
    text: str
    """What happened, in words; addresses and hashes follow in `people`."""
    people: list[tuple[str, str]]
    """(label, address) pairs the page links to declarer pages."""
    at: datetime | None
    block: int
    tx: str


def history_lines(
    history: Iterable[Mapping[str, Any]], times: Mapping[int, datetime], iscc_id: str
) -> list[HistoryLine]:
    """The events of a declaration as a timeline. `times` holds block times where known; the
    declaration's own time is the one its ISCC-ID carries."""
    lines = []
    minted = declared_at(iscc_id)
    for e in history:
        data = e["data"]
        name = _EVENT_NAMES.get(e["event"], e["event"])
        block = e["block_number"]
        at = times.get(block)
        if name == "Declared":
            at = at or minted
            text, people = "Declared", [("by", data.get("declarer", ""))]
        elif name == "Updated":
            gateway = str(data.get("gateway") or "")
            digest = str(data.get("metahash") or "0x").removeprefix("0x")
            changes = [
                f"gateway set to {gateway}" if gateway else "gateway removed",
                # Multihash form, as the API and the rest of the page write hashes.
                f"metadata document {short('1e20' + digest)}"
                if digest.strip("0")
                else "no metadata document",
            ]
            text = "Updated: " + "; ".join(changes)
            people = [("by", data.get("owner", ""))]
        elif name == "Transferred":
            text = "Transferred"
            people = [("from", data.get("from", "")), ("to", data.get("to", ""))]
        elif name == "Revoked":
            text, people = "Revoked: it claims nothing any more", [("by", data.get("owner", ""))]
        else:
            text, people = name, []
        lines.append(HistoryLine(name, text, people, at, block, e["tx_hash"]))
    return lines
