"""DDEX ERN deals as grant terms, one to one and back.

A DDEX ERN 4.3 `Deal` says where (TerritoryCode, or ExcludedTerritoryCode: the world except
those), when (ValidityPeriod) and how (CommercialModelType x UseType) a release may be
exploited. Those are a grant's territories, period and uses; who the licensee is, whether it
is exclusive or sublicensable and under which conditions are not in a deal (ERN deals run from
the message sender to the recipient), so they come from the caller and go into the grant as
given.

Every `Use` bit is one (CommercialModelType, UseType) pair of the ERN 4.3 allowed-value sets
(`USE_TO_ERN`). A deal means every pair of its CommercialModelTypes with its UseTypes; one
without a CommercialModelType means its UseTypes under any model. Uses that no single
rectangle of pairs expresses are written as several Deals of one ReleaseDeal, grouped so each
Deal's pairs are all granted. Reading is strict: a pair, code, date or element that our
vocabulary cannot say exactly is an `InvalidTerms` naming it, never an approximation.

Deal messages come from outside, so the XML is parsed with defusedxml (no DTDs, no entities,
no external references) after a size check.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from registry.errors import InvalidTerms
from registry.ledger.terms import (
    COUNTRIES,
    MAX_TERRITORIES,
    NO_USES,
    GrantTerms,
    Period,
    Territories,
    Use,
    use_names,
)

__all__ = [
    "ERN_NAMESPACE",
    "MAX_DEAL_BYTES",
    "USER_DEFINED_NAMESPACE",
    "USE_TO_ERN",
    "Deal",
    "ErnUse",
    "deals_from_terms",
    "deals_to_terms",
    "describe_mapping",
    "read_deals",
    "terms_from_ddex",
    "terms_to_ddex",
    "write_deals",
]

ERN_NAMESPACE = "http://ddex.net/xml/ern/43"
"""The namespace of ERN 4.3 messages; only the message's root element is in it (the schema's
elements are unqualified), so a bare Deal or ReleaseDeal has no namespace."""
USER_DEFINED_NAMESPACE = "ISCC-Registry"
"""The Namespace attribute of our UserDefined UseTypes (uses ERN has no value for)."""
MAX_DEAL_BYTES = 1 << 20
"""Largest deal document read: a deal with every country listed twice is under 30 kB."""
MAX_DEALS = 64
WORLDWIDE = "Worldwide"
USER_DEFINED = "UserDefined"


@dataclass(frozen=True, order=True)
class ErnUse:
    """An ERN UseType: an allowed value, or UserDefined with our UserDefinedValue."""

    value: str
    user_defined: str | None = None

    def __str__(self) -> str:
        return f"{self.value} ({self.user_defined})" if self.user_defined else self.value


USE_TO_ERN: dict[Use, tuple[str | None, ErnUse]] = {
    Use.THEATRICAL: ("PayAsYouGoModel", ErnUse("PlayInPublic")),
    Use.FREE_TV: ("FreeOfChargeModel", ErnUse("Broadcast")),
    Use.PAY_TV: ("SubscriptionModel", ErnUse("Broadcast")),
    Use.SVOD: ("SubscriptionModel", ErnUse("OnDemandStream")),
    Use.AVOD: ("AdvertisementSupportedModel", ErnUse("OnDemandStream")),
    Use.TVOD: ("PayAsYouGoModel", ErnUse("Rent")),
    Use.ONLINE: ("FreeOfChargeModel", ErnUse("OnDemandStream")),
    Use.EDUCATIONAL: (None, ErnUse(USER_DEFINED, "Educational")),
    Use.ARCHIVE: (None, ErnUse(USER_DEFINED, "Archive")),
    Use.EXCERPT: (None, ErnUse("ExtractForInternet")),
    Use.TDM: (None, ErnUse(USER_DEFINED, "TextAndDataMining")),
    Use.AI_TRAINING: (None, ErnUse(USER_DEFINED, "AiTraining")),
    Use.EST: ("PayAsYouGoModel", ErnUse("PermanentDownload")),
}
"""Each use as one (CommercialModelType or None, UseType) pair of ERN 4.3. None: the deal
names no CommercialModelType (the use is granted whatever the business model)."""

ERN_TO_USE: dict[tuple[str | None, ErnUse], Use] = {pair: use for use, pair in USE_TO_ERN.items()}


@dataclass(frozen=True)
class Deal:
    """The terms of one ERN Deal that a grant can hold, in a canonical order (sorted), so two
    deals that mean the same compare equal."""

    territories: tuple[str, ...]
    """TerritoryCode values ("Worldwide" or ISO codes); empty when `excluded` is used."""
    excluded: tuple[str, ...]
    """ExcludedTerritoryCode values: the deal applies in the world except these."""
    start: datetime
    end: datetime | None
    """Exclusive: the first instant the deal no longer applies."""
    commercial_models: tuple[str, ...]
    use_types: tuple[ErnUse, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "territories", tuple(sorted(set(self.territories))))
        object.__setattr__(self, "excluded", tuple(sorted(set(self.excluded))))
        object.__setattr__(self, "commercial_models", tuple(sorted(set(self.commercial_models))))
        object.__setattr__(self, "use_types", tuple(sorted(set(self.use_types))))

    def territories_meant(self) -> Territories:
        if self.territories and self.excluded:
            raise InvalidTerms("a deal has TerritoryCode or ExcludedTerritoryCode, not both")
        if self.excluded:
            if WORLDWIDE in self.excluded:
                raise InvalidTerms("ExcludedTerritoryCode Worldwide leaves no territory")
            return Territories.world_except(
                *(_country(c, "ExcludedTerritoryCode") for c in self.excluded)
            )
        if not self.territories:
            raise InvalidTerms("a deal needs a TerritoryCode or an ExcludedTerritoryCode")
        if WORLDWIDE in self.territories:
            if len(self.territories) > 1:
                others = ", ".join(c for c in self.territories if c != WORLDWIDE)
                raise InvalidTerms(f"TerritoryCode Worldwide together with {others}")
            return Territories.world()
        return Territories.of(*(_country(c, "TerritoryCode") for c in self.territories))

    def uses(self) -> Use:
        if not self.use_types:
            raise InvalidTerms("a deal without UseType (terms agreed out of band) cannot be mapped")
        uses = NO_USES
        models: Iterable[str | None] = self.commercial_models or (None,)
        for model in models:
            for use_type in self.use_types:
                use = ERN_TO_USE.get((model, use_type))
                if use is None:
                    raise InvalidTerms(_unknown_pair(model, use_type))
                uses |= use
        return uses

    def period(self) -> Period:
        start = int(self.start.timestamp())
        return Period(start, None if self.end is None else int(self.end.timestamp()))


def _country(code: str, element: str) -> str:
    if code not in COUNTRIES:
        raise InvalidTerms(
            f"{element} {code!r} is not an ISO 3166-1 country code a grant can name "
            "(ISO 3166-2 regions, numeric and TIS codes are not)"
        )
    return code


def _unknown_pair(model: str | None, use_type: ErnUse) -> str:
    pairs = "; ".join(
        f"{name.lower()}: {m or 'no CommercialModelType'} + {u}"
        for name, (m, u) in ((use.name, USE_TO_ERN[use]) for use in Use)
        if name
    )
    said = f"CommercialModelType {model}" if model else "no CommercialModelType"
    return f"UseType {use_type} with {said} is not in our vocabulary; the pairs are: {pairs}"


# ---------------------------------------------------------------------------------------------
# Deals <-> grant terms


def deals_to_terms(deals: Sequence[Deal], **grant: Any) -> GrantTerms:
    """The grant the deals of one ReleaseDeal make: they must share territories and period
    (a grant has one of each); the uses are all their pairs. `grant`: the GrantTerms fields a
    deal does not carry (licensee, exclusive, sublicensable, conditions, grantor, ...)."""
    if not deals:
        raise InvalidTerms("no Deal to map")
    first = deals[0]
    territories, period = first.territories_meant(), first.period()
    uses = NO_USES
    for deal in deals:
        if not deal.territories_meant().same_as(territories):
            raise InvalidTerms(
                f"the deals differ in territory ({territories} and "
                f"{deal.territories_meant()}): a grant has one; map them as separate grants"
            )
        if deal.period() != period:
            raise InvalidTerms(
                f"the deals differ in validity ({period} and {deal.period()}): a grant has "
                "one term; map them as separate grants"
            )
        uses |= deal.uses()
    return GrantTerms(territories=territories, uses=uses, period=period, **grant)


def deals_from_terms(terms: GrantTerms) -> list[Deal]:
    """The fewest Deals (by commercial model) whose pairs are exactly the grant's uses."""
    unknown = terms.unknown_terms()
    if unknown:
        # Written anyway, a deal would drop the bit or carry a code DDEX refuses.
        raise InvalidTerms(f"no DDEX deal says this: {'; '.join(unknown)}")
    by_model: dict[str | None, set[ErnUse]] = {}
    for use in Use:
        if use in terms.uses:
            model, use_type = USE_TO_ERN[use]
            by_model.setdefault(model, set()).add(use_type)
    # Models with the same use types share one Deal (a rectangle of pairs); a use without
    # a model is its own Deal, since a Deal with no CommercialModelType means any model.
    groups: dict[tuple[bool, frozenset[ErnUse]], list[str | None]] = {}
    for model, use_types in by_model.items():
        groups.setdefault((model is None, frozenset(use_types)), []).append(model)
    start = _moment(terms.period.start)
    end = None if terms.period.end is None else _moment(terms.period.end)
    t = terms.territories
    if not t.worldwide:
        territories, excluded = tuple(t.codes), ()
    elif t.codes:
        territories, excluded = (), tuple(t.codes)
    else:
        territories, excluded = (WORLDWIDE,), ()
    deals = [
        Deal(
            territories=territories,
            excluded=excluded,
            start=start,
            end=end,
            commercial_models=tuple(m for m in models if m is not None),
            use_types=tuple(use_types),
        )
        for (_, use_types), models in groups.items()
    ]
    return sorted(deals, key=lambda d: (d.commercial_models, d.use_types))


# ---------------------------------------------------------------------------------------------
# XML


def _moment(seconds: int) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (ValueError, OverflowError, OSError):
        # The contract takes any uint64; xs:dateTime as Python writes it ends with year 9999.
        raise InvalidTerms(
            f"time {seconds} is past the year 9999, which DDEX cannot date"
        ) from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(element: ET.Element) -> str:
    return (element.text or "").strip()


def read_deals(data: bytes | str) -> list[Deal]:
    """The Deals of a DDEX document: a Deal, a ReleaseDeal, a DealList with one ReleaseDeal,
    or a NewReleaseMessage whose DealList has one ReleaseDeal. Raises InvalidTerms."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_DEAL_BYTES:
        raise InvalidTerms(f"the deal document is larger than {MAX_DEAL_BYTES} bytes")
    try:
        root = SafeET.fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise InvalidTerms(f"the deal document is refused: {type(exc).__name__}") from None
    except ET.ParseError as exc:
        raise InvalidTerms(f"the deal document is not XML: {exc}") from None
    name = _local(root.tag)
    if name == "NewReleaseMessage":
        lists = [e for e in root if _local(e.tag) == "DealList"]
        if len(lists) != 1:
            raise InvalidTerms("the message has no DealList")
        root, name = lists[0], "DealList"
    if name == "DealList":
        releases = [e for e in root if _local(e.tag) == "ReleaseDeal"]
        if len(releases) != 1:
            raise InvalidTerms(
                f"the DealList has {len(releases)} ReleaseDeals; a grant is one: pass one"
            )
        root, name = releases[0], "ReleaseDeal"
    if name == "ReleaseDeal":
        elements = [e for e in root if _local(e.tag) == "Deal"]
        for e in root:
            if _local(e.tag) not in ("Deal", "DealReleaseReference"):
                raise InvalidTerms(f"ReleaseDeal element {_local(e.tag)} is not in our vocabulary")
    elif name == "Deal":
        elements = [root]
    else:
        raise InvalidTerms(f"expected a DDEX Deal, ReleaseDeal or DealList, not {name}")
    if not elements:
        raise InvalidTerms("the ReleaseDeal has no Deal")
    if len(elements) > MAX_DEALS:
        raise InvalidTerms(f"more than {MAX_DEALS} Deals")
    return [_read_deal(e) for e in elements]


def _read_deal(element: ET.Element) -> Deal:
    terms = None
    for child in element:
        name = _local(child.tag)
        if name != "DealTerms":
            raise InvalidTerms(
                f"Deal element {name} is not in our vocabulary (deal terms must be in the Deal)"
            )
        terms = child
    if terms is None:
        raise InvalidTerms("the Deal has no DealTerms")
    territories: list[str] = []
    excluded: list[str] = []
    models: list[str] = []
    use_types: list[ErnUse] = []
    periods: list[tuple[datetime, datetime | None]] = []
    for child in terms:
        name = _local(child.tag)
        if name in ("TerritoryCode", "ExcludedTerritoryCode"):
            kind = child.get("IdentifierType", "ISO")
            if kind != "ISO":
                raise InvalidTerms(f"{name} of IdentifierType {kind} is not in our vocabulary")
            _no_other_attributes(child, {"IdentifierType"})
            (territories if name == "TerritoryCode" else excluded).append(_text(child))
            if len(territories) + len(excluded) > MAX_TERRITORIES:
                raise InvalidTerms(f"more than {MAX_TERRITORIES} territory codes")
        elif name == "ValidityPeriod":
            periods.append(_read_period(child))
        elif name == "CommercialModelType":
            value = _text(child)
            if value == USER_DEFINED:
                raise InvalidTerms(
                    f"CommercialModelType UserDefined ({child.get('UserDefinedValue')}) is not "
                    "in our vocabulary"
                )
            _no_other_attributes(child, set())
            models.append(value)
        elif name == "UseType":
            use_types.append(_read_use_type(child))
        else:
            raise InvalidTerms(
                f"DealTerms element {name} is not in our vocabulary: a grant holds "
                "territories, validity, commercial models and use types only"
            )
    if len(periods) != 1:
        raise InvalidTerms(
            f"the deal has {len(periods)} ValidityPeriods; a grant has exactly one term"
        )
    start, end = periods[0]
    return Deal(tuple(territories), tuple(excluded), start, end, tuple(models), tuple(use_types))


def _no_other_attributes(element: ET.Element, allowed: set[str]) -> None:
    for attribute in element.attrib:
        if _local(attribute) not in allowed:
            raise InvalidTerms(
                f"{_local(element.tag)} attribute {_local(attribute)} is not in our vocabulary"
            )


def _read_use_type(element: ET.Element) -> ErnUse:
    value = _text(element)
    if value != USER_DEFINED:
        _no_other_attributes(element, set())
        return ErnUse(value)
    _no_other_attributes(element, {"Namespace", "UserDefinedValue"})
    namespace, defined = element.get("Namespace"), element.get("UserDefinedValue")
    if namespace != USER_DEFINED_NAMESPACE:
        raise InvalidTerms(
            f"UseType UserDefined {defined!r} of Namespace {namespace!r} is not in our "
            f"vocabulary (ours is Namespace {USER_DEFINED_NAMESPACE!r})"
        )
    return ErnUse(USER_DEFINED, defined)


def _read_period(element: ET.Element) -> tuple[datetime, datetime | None]:
    found: dict[str, ET.Element] = {}
    for child in element:
        name = _local(child.tag)
        if name not in ("StartDate", "EndDate", "StartDateTime", "EndDateTime") or name in found:
            raise InvalidTerms(f"ValidityPeriod element {name} is not in our vocabulary")
        # IsApproximate, ApplicableTerritoryCode (a start per territory), ...: a grant has one
        # exact term everywhere.
        _no_other_attributes(child, set())
        found[name] = child
    if ("StartDate" in found or "EndDate" in found) and (
        "StartDateTime" in found or "EndDateTime" in found
    ):
        raise InvalidTerms("ValidityPeriod mixes dates and date-times")
    if "StartDateTime" in found:
        start = _read_datetime(found["StartDateTime"])
        end = _read_datetime(found["EndDateTime"]) if "EndDateTime" in found else None
    elif "StartDate" in found:
        start = _midnight(_read_date(found["StartDate"]))
        # An EndDate is the last day of the deal: the term ends at the next midnight (UTC).
        last = _read_date(found["EndDate"]) if "EndDate" in found else None
        end = None if last is None else _midnight(last + timedelta(days=1))
    else:
        raise InvalidTerms("ValidityPeriod has no StartDateTime or StartDate")
    if end is not None and end <= start:
        raise InvalidTerms(f"ValidityPeriod ends ({end.isoformat()}) before it starts")
    return start, end


def _read_datetime(element: ET.Element) -> datetime:
    text = _text(element)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidTerms(f"{_local(element.tag)} {text!r} is not an xs:dateTime") from None
    if moment.tzinfo is None:
        raise InvalidTerms(f"{_local(element.tag)} {text!r} has no time zone; add Z or an offset")
    if moment.microsecond:
        raise InvalidTerms(f"{_local(element.tag)} {text!r}: a grant's term is whole seconds")
    return moment.astimezone(UTC)


def _read_date(element: ET.Element) -> date:
    text = _text(element)
    if re.fullmatch(r"\d{4}(-\d{2})?", text):
        # ERN allows a year or a month; a grant's term starts and ends on a day.
        raise InvalidTerms(f"{_local(element.tag)} {text!r} is not a whole day (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidTerms(f"{_local(element.tag)} {text!r} is not a date (YYYY-MM-DD)") from None


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def write_deals(deals: Sequence[Deal], release_reference: str = "R0") -> bytes:
    """A ReleaseDeal element (UTF-8 XML, no declaration) holding `deals`, for the release
    `release_reference` of the message it goes into. Validity as StartDateTime/EndDateTime in
    UTC (ERN 4.3 deprecates StartDate/EndDate)."""
    release = ET.Element("ReleaseDeal")
    ET.SubElement(release, "DealReleaseReference").text = release_reference
    for deal in deals:
        terms = ET.SubElement(ET.SubElement(release, "Deal"), "DealTerms")
        for code in deal.territories:
            ET.SubElement(terms, "TerritoryCode").text = code
        for code in deal.excluded:
            ET.SubElement(terms, "ExcludedTerritoryCode").text = code
        period = ET.SubElement(terms, "ValidityPeriod")
        ET.SubElement(period, "StartDateTime").text = _iso(deal.start)
        if deal.end is not None:
            ET.SubElement(period, "EndDateTime").text = _iso(deal.end)
        for model in deal.commercial_models:
            ET.SubElement(terms, "CommercialModelType").text = model
        for use_type in deal.use_types:
            e = ET.SubElement(terms, "UseType")
            e.text = use_type.value
            if use_type.user_defined is not None:
                e.set("Namespace", USER_DEFINED_NAMESPACE)
                e.set("UserDefinedValue", use_type.user_defined)
    ET.indent(release)
    return ET.tostring(release, encoding="utf-8", xml_declaration=False)


def terms_from_ddex(data: bytes | str, **grant: Any) -> GrantTerms:
    """The grant a DDEX deal document makes (see `read_deals` and `deals_to_terms`)."""
    return deals_to_terms(read_deals(data), **grant)


def terms_to_ddex(terms: GrantTerms, release_reference: str = "R0") -> bytes:
    """A grant's territories, uses and term as a DDEX ReleaseDeal."""
    return write_deals(deals_from_terms(terms), release_reference)


def describe_mapping() -> list[dict[str, str]]:
    """The use table (docs/ledger.md prints it): name, CommercialModelType, UseType."""
    return [
        {
            "use": use_names(use)[0],
            "commercial_model": model or "",
            "use_type": str(use_type),
        }
        for use, (model, use_type) in USE_TO_ERN.items()
    ]
