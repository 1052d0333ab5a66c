"""The licence rules: pure judgements over grant terms, with their evidence.

Each rule takes `GrantTerms` (and a `Usage`) and returns None when the rule holds, or a result
that says exactly what breaks it: the overlap of two grants, the part of a sublicence outside
its parent, the reasons no grant covers a use. Results carry `to_json()` (the evidence a
licence conflict stores) and `__str__` (one readable line). Nothing here reads the store or
the chain: the indexer (registry.ledger.licences) decides which grants are live and which works
are related, and asks these functions about them.

Conflict kinds, as the store and the API name them: `exclusive_overlap` (exclusive_clash),
`sublicence_exceeds` (sublicence_excess), `unlicensed_use` (unlicensed). The kinds that need
ownership and content history (`grantor_not_owner`, `grantor_not_priority`,
`work_contains_earlier`) are judged where that history is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from eth_utils import is_address, to_checksum_address

from registry.errors import InvalidTerms
from registry.ledger.terms import (
    ALL_USES,
    COUNTRIES,
    NO_CONDITIONS,
    NO_USES,
    Conditions,
    GrantTerms,
    Overlap,
    Period,
    Territories,
    Use,
    condition_names,
    format_time,
    overlap,
    use_names,
)

__all__ = [
    "EXCLUSIVE_OVERLAP",
    "SUBLICENCE_EXCEEDS",
    "UNLICENSED_USE",
    "Clash",
    "Excess",
    "Miss",
    "Unlicensed",
    "Usage",
    "covers",
    "exceeds",
    "exclusive_clash",
    "miss",
    "sublicence_excess",
    "unlicensed",
]

EXCLUSIVE_OVERLAP = "exclusive_overlap"
SUBLICENCE_EXCEEDS = "sublicence_exceeds"
UNLICENSED_USE = "unlicensed_use"


def _ref(grant: GrantTerms) -> dict[str, Any]:
    """How evidence names a grant: its id and work, and the terms in one line."""
    return {"grant_id": grant.grant_id, "iscc_id": grant.iscc_id, "terms": grant.describe()}


def _name(grant: GrantTerms) -> str:
    return f"grant {grant.grant_id[:10]}" if grant.grant_id else "the grant"


# ---------------------------------------------------------------------------------------------
# Exclusive grants


@dataclass(frozen=True)
class Clash:
    """An exclusive grant and another grant that cover some of the same ground."""

    first: GrantTerms
    second: GrantTerms
    overlap: Overlap
    relation: str | None
    """How the two works relate when they are not the same ("excerpt", "copy", ...)."""

    kind = EXCLUSIVE_OVERLAP

    @property
    def exclusive(self) -> list[GrantTerms]:
        return [g for g in (self.first, self.second) if g.exclusive]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "grants": [_ref(self.first), _ref(self.second)],
            "exclusive": [g.grant_id for g in self.exclusive],
            "relation": self.relation or "same work",
            "overlap": self.overlap.to_json(),
            "text": str(self),
        }

    def __str__(self) -> str:
        both = len(self.exclusive) == 2
        who = "two exclusive grants" if both else "an exclusive grant and another grant"
        where = f" (works related as {self.relation})" if self.relation else ""
        return f"{who} overlap{where}: {self.overlap}"


def exclusive_clash(
    a: GrantTerms,
    b: GrantTerms,
    *,
    relation: str | None = None,
    lineal: bool = False,
) -> Clash | None:
    """Whether an exclusive grant meets another grant, and where.

    The grants are on the same work, or on works the caller found related (`relation`: the
    later is a copy or an excerpt of the other, ...); grants on two different works that are
    not said to be related never clash. Terms without an ISCC-ID (not yet granted: "would
    this clash?") count as on the same work. No clash either between a grant and a sublicence
    under it (`lineal`: one descends from the other; a direct parent is seen from the ids; a
    sublicence beyond its parent is `sublicence_excess`'s case), or between two grants to the
    same licensee (a licensee's exclusivity is not hurt by another licence to itself).
    """
    if not (a.exclusive or b.exclusive):
        return None
    if a.grant_id is not None and a.grant_id == b.grant_id:
        return None
    different_works = a.iscc_id is not None and b.iscc_id is not None and a.iscc_id != b.iscc_id
    if different_works and relation is None:
        return None
    if lineal or _parent_of(a, b) or _parent_of(b, a):
        return None
    if a.licensee is not None and a.licensee == b.licensee:
        return None
    shared = overlap(a, b)
    if shared is None:
        return None
    return Clash(a, b, shared, relation)


def _parent_of(parent: GrantTerms, child: GrantTerms) -> bool:
    return parent.grant_id is not None and child.parent == parent.grant_id


# ---------------------------------------------------------------------------------------------
# Sublicences


@dataclass(frozen=True)
class Excess:
    """What a sublicence grants beyond its parent, and why its grantor may not grant it."""

    child: GrantTerms
    parent: GrantTerms
    territories: Territories | None = None
    """The countries the child covers outside the parent's."""
    uses: Use = NO_USES
    """The uses the child allows that the parent does not."""
    before: Period | None = None
    """The part of the child's term before the parent's starts."""
    after: Period | None = None
    """The part of the child's term after the parent's ends (the child outlives it)."""
    conditions: Conditions = NO_CONDITIONS
    """Commercial use or derivatives the child allows and the parent does not, or an
    attribution the parent requires and the child drops."""
    exclusive: bool = False
    """The child is exclusive under a parent that is not."""
    not_sublicensable: bool = False
    grantor_not_licensee: bool = False
    other_work: bool = False
    """The child licenses another declaration than its parent."""

    kind = SUBLICENCE_EXCEEDS

    @property
    def outlives(self) -> bool:
        return self.after is not None

    def reasons(self) -> list[str]:
        """One readable phrase per way the child exceeds its parent."""
        out = []
        if self.not_sublicensable:
            out.append("the parent grant may not be sublicensed")
        if self.grantor_not_licensee:
            out.append(
                f"the grantor {self.child.grantor} is not the parent's licensee "
                f"{self.parent.licensee}"
            )
        if self.other_work:
            out.append(
                f"it licenses {self.child.iscc_id}, the parent licenses {self.parent.iscc_id}"
            )
        if self.territories is not None:
            out.append(f"territories outside the parent: {self.territories}")
        if self.uses:
            out.append("uses outside the parent: " + ", ".join(use_names(self.uses)))
        if self.before is not None:
            out.append(f"starts before the parent: {self.before}")
        if self.after is not None:
            out.append(f"outlives the parent: {self.after}")
        if self.conditions:
            out.append(
                "conditions beyond the parent: " + ", ".join(condition_names(self.conditions))
            )
        if self.exclusive:
            out.append("exclusive under a non-exclusive parent")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "child": _ref(self.child),
            "parent": _ref(self.parent),
            "territories": None if self.territories is None else self.territories.to_json(),
            "uses": use_names(self.uses),
            "before": None if self.before is None else self.before.to_json(),
            "after": None if self.after is None else self.after.to_json(),
            "outlives": self.outlives,
            "conditions": condition_names(self.conditions),
            "exclusive": self.exclusive,
            "not_sublicensable": self.not_sublicensable,
            "grantor_not_licensee": self.grantor_not_licensee,
            "other_work": self.other_work,
            "text": str(self),
        }

    def __str__(self) -> str:
        return f"sublicence exceeds its parent: {'; '.join(self.reasons())}"


def _effective(period: Period, ended_at: int | None) -> Period | None:
    """The part of a grant's term before its termination (None: terminated before it began)."""
    if ended_at is None:
        return period
    return period.before(ended_at)


def exceeds(
    child: GrantTerms, parent: GrantTerms, *, parent_ended_at: int | None = None
) -> Excess | None:
    """The scope of `child` outside `parent`: territories, uses, time and conditions (not the
    grantor's standing; `sublicence_excess` adds that). None if the child stays inside.

    `parent_ended_at`: when the parent was terminated; a child running past it outlives it.
    """
    excess = _scope_excess(child, parent, parent_ended_at)
    return None if excess is None else Excess(child, parent, **excess)


def _scope_excess(
    child: GrantTerms, parent: GrantTerms, parent_ended_at: int | None
) -> dict[str, Any] | None:
    found: dict[str, Any] = {}
    outside = child.territories.subtract(parent.territories)
    if not outside.is_empty():
        found["territories"] = outside
    extra_uses = Use(child.uses & ~int(parent.uses))
    if extra_uses:
        found["uses"] = extra_uses
    term = _effective(parent.period, parent_ended_at)
    if term is None:
        # The parent ended before it began: all of the child's term is outside it.
        found["after"] = child.period
    else:
        before = child.period.before(term.start)
        after = child.period.after(term.end)
        if before is not None:
            found["before"] = before
        if after is not None:
            found["after"] = after
    # Allowing what the parent does not allow, or dropping an attribution it requires.
    allowed = Conditions.COMMERCIAL | Conditions.DERIVATIVES
    conditions = Conditions(child.conditions & ~int(parent.conditions) & int(allowed))
    if Conditions.ATTRIBUTION in parent.conditions and Conditions.ATTRIBUTION not in (
        child.conditions
    ):
        conditions |= Conditions.ATTRIBUTION
    if conditions:
        found["conditions"] = conditions
    if child.exclusive and not parent.exclusive:
        found["exclusive"] = True
    return found or None


def sublicence_excess(
    child: GrantTerms, parent: GrantTerms, *, parent_ended_at: int | None = None
) -> Excess | None:
    """Everything wrong with `child` as a sublicence of `parent`: its scope outside the
    parent (see `exceeds`), a parent that may not be sublicensed, a grantor who is not the
    parent's licensee (anyone holds a public parent), or another work. None if it is sound.

    Raises InvalidTerms if `child` does not name `parent` as its parent: that is a caller's
    mix-up, not a finding.
    """
    if child.parent is None or parent.grant_id is None or child.parent != parent.grant_id:
        raise InvalidTerms(
            f"grant {child.grant_id} names parent {child.parent}, not {parent.grant_id}"
        )
    found = _scope_excess(child, parent, parent_ended_at) or {}
    if not parent.sublicensable:
        found["not_sublicensable"] = True
    if parent.licensee is not None and child.grantor != parent.licensee:
        found["grantor_not_licensee"] = True
    if None not in (child.iscc_id, parent.iscc_id) and child.iscc_id != parent.iscc_id:
        found["other_work"] = True
    return Excess(child, parent, **found) if found else None


# ---------------------------------------------------------------------------------------------
# Usage


@dataclass(frozen=True)
class Usage:
    """One reported use of a work: where, what kind, when, and by whom."""

    territory: str
    use: Use
    used_at: int
    user: str | None = None
    """The reporting platform's address; None when the reporter is not a party."""
    iscc_id: str | None = None
    """The declared work the used file was matched to."""

    def __post_init__(self) -> None:
        code = self.territory.upper()
        if code not in COUNTRIES:
            raise InvalidTerms(f"unknown territory {self.territory!r}: use an ISO 3166-1 code")
        object.__setattr__(self, "territory", code)
        value = int(self.use)
        if value <= 0 or value & ~int(ALL_USES):
            raise InvalidTerms(f"unknown use {value:#x}: not in the vocabulary")
        object.__setattr__(self, "use", Use(value))
        if self.user is not None:
            if not is_address(self.user):
                raise InvalidTerms(f"user is not an address: {self.user!r}")
            object.__setattr__(self, "user", to_checksum_address(self.user))

    def to_json(self) -> dict[str, Any]:
        return {
            "territory": self.territory,
            "uses": use_names(self.use),
            "used_at": self.used_at,
            "user": self.user,
            "iscc_id": self.iscc_id,
        }

    def __str__(self) -> str:
        uses = ", ".join(use_names(self.use))
        return f"{uses} in {self.territory} at {format_time(self.used_at)}"


@dataclass(frozen=True)
class Miss:
    """Why one grant does not cover one use: the dimensions that fail."""

    grant: GrantTerms
    reasons: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"grant": _ref(self.grant), "reasons": list(self.reasons)}


def miss(grant: GrantTerms, usage: Usage, *, ended_at: int | None = None) -> Miss | None:
    """None if `grant` covers `usage`; else which of territory, use, term and licensee fail.

    The caller passes grants on the work the use was matched to (a copy or an excerpt of a
    declared work is that work); `ended_at` is the grant's termination time, if any.
    """
    reasons = []
    if not grant.territories.contains(usage.territory):
        reasons.append(f"territory {usage.territory} not in {grant.territories}")
    missing = Use(usage.use & ~int(grant.uses))
    if missing:
        reasons.append("use " + ", ".join(use_names(missing)) + " not granted")
    term = _effective(grant.period, ended_at)
    if term is None or not term.contains(usage.used_at):
        when = format_time(usage.used_at)
        reasons.append(
            f"{when} outside the term {term or grant.period}"
            + ("" if ended_at is None else f" (terminated {format_time(ended_at)})")
        )
    if usage.user is not None and grant.licensee is not None and grant.licensee != usage.user:
        reasons.append(f"licensed to {grant.licensee}, not to {usage.user}")
    return Miss(grant, tuple(reasons)) if reasons else None


def covers(grant: GrantTerms, usage: Usage, *, ended_at: int | None = None) -> bool:
    """Whether `grant` licenses `usage` (see `miss` for the reasons when not)."""
    return miss(grant, usage, ended_at=ended_at) is None


@dataclass(frozen=True)
class Unlicensed:
    """A use that no grant covers, with each candidate grant and why it falls short."""

    usage: Usage
    misses: tuple[Miss, ...]

    kind = UNLICENSED_USE

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "usage": self.usage.to_json(),
            "grants": [m.to_json() for m in self.misses],
            "text": str(self),
        }

    def __str__(self) -> str:
        if not self.misses:
            return f"unlicensed use: {self.usage}; the work has no live grant"
        return f"unlicensed use: {self.usage}; no grant of {len(self.misses)} covers it"


def unlicensed(
    usage: Usage,
    grants: Iterable[GrantTerms],
    *,
    ended: dict[str, int] | None = None,
) -> Unlicensed | None:
    """None if some grant covers `usage`, else the evidence that none does.

    `grants`: the grants on the work the use was matched to that the caller holds valid
    (granted by someone with the right); `ended`: termination times by grant id.
    """
    ended = ended or {}
    misses = []
    for grant in grants:
        found = miss(grant, usage, ended_at=ended.get(grant.grant_id or ""))
        if found is None:
            return None
        misses.append(found)
    return Unlicensed(usage, tuple(misses))
