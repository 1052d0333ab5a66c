"""DDEX ERN deals <-> grant terms: a deal written here maps to a grant and back, every use
survives grant -> deal -> grant, and what our vocabulary cannot say is refused by name."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import InvalidTerms
from registry.ledger.ddex import (
    ERN_NAMESPACE,
    MAX_DEAL_BYTES,
    USE_TO_ERN,
    Deal,
    ErnUse,
    deals_from_terms,
    deals_to_terms,
    describe_mapping,
    read_deals,
    terms_from_ddex,
    terms_to_ddex,
    write_deals,
)
from registry.ledger.terms import (
    ALL_USES,
    COUNTRIES,
    Conditions,
    GrantTerms,
    Period,
    Territories,
    Use,
    parse_time,
)

# ERN 4.3's allowed values (allowed-value-sets.xsd), the ones the mapping uses: checked here
# so a typo in the table cannot pass for a DDEX term.
ERN_COMMERCIAL_MODELS = {
    "AdvertisementSupportedModel",
    "DeviceFeeModel",
    "FreeOfChargeModel",
    "PayAsYouGoModel",
    "PerformanceRoyaltiesModel",
    "RightsClaimModel",
    "SubscriptionModel",
    "UserDefined",
}
ERN_USE_TYPES_USED = {
    "Broadcast",
    "ExtractForInternet",
    "OnDemandStream",
    "PermanentDownload",
    "PlayInPublic",
    "Rent",
    "UserDefined",
}

DEAL = """
<Deal>
  <DealTerms>
    <ExcludedTerritoryCode>US</ExcludedTerritoryCode>
    <ExcludedTerritoryCode>CA</ExcludedTerritoryCode>
    <ValidityPeriod>
      <StartDateTime>2025-01-01T00:00:00Z</StartDateTime>
      <EndDateTime>2027-07-01T12:00:00+02:00</EndDateTime>
    </ValidityPeriod>
    <CommercialModelType>SubscriptionModel</CommercialModelType>
    <CommercialModelType>AdvertisementSupportedModel</CommercialModelType>
    <UseType>OnDemandStream</UseType>
  </DealTerms>
</Deal>
"""


def test_mapping_is_one_pair_per_use_from_the_ern_vocabulary() -> None:
    assert set(USE_TO_ERN) == set(Use)
    assert len(set(USE_TO_ERN.values())) == len(USE_TO_ERN)
    for model, use_type in USE_TO_ERN.values():
        assert model is None or model in ERN_COMMERCIAL_MODELS
        assert use_type.value in ERN_USE_TYPES_USED
        assert (use_type.value == "UserDefined") == (use_type.user_defined is not None)
    assert [row["use"] for row in describe_mapping()][:3] == ["theatrical", "free_tv", "pay_tv"]


def test_a_deal_written_here_maps_to_a_grant_and_back() -> None:
    licensee = "0x" + "ab" * 20
    grant = terms_from_ddex(DEAL, licensee=licensee, exclusive=True)
    assert grant.territories == Territories.world_except("US", "CA")
    assert grant.uses == Use.SVOD | Use.AVOD
    assert grant.period == Period(parse_time("2025-01-01"), parse_time("2027-07-01T10:00:00Z"))
    assert grant.exclusive and grant.licensee is not None
    # Back: the same deal, whatever order its elements were written in.
    assert deals_from_terms(grant) == read_deals(DEAL)
    again = terms_from_ddex(terms_to_ddex(grant), licensee=licensee, exclusive=True)
    assert again == grant


def test_a_release_deal_of_several_deals_maps_to_one_grant() -> None:
    xml = f"""<ern:NewReleaseMessage xmlns:ern="{ERN_NAMESPACE}"><DealList><ReleaseDeal>
      <DealReleaseReference>R1</DealReleaseReference>
      <Deal><DealTerms>
        <TerritoryCode>DE</TerritoryCode><TerritoryCode>AT</TerritoryCode>
        <ValidityPeriod><StartDate>2025-01-01</StartDate><EndDate>2025-12-31</EndDate>
        </ValidityPeriod>
        <CommercialModelType>SubscriptionModel</CommercialModelType>
        <UseType>OnDemandStream</UseType><UseType>Broadcast</UseType>
      </DealTerms></Deal>
      <Deal><DealTerms>
        <TerritoryCode>AT</TerritoryCode><TerritoryCode>DE</TerritoryCode>
        <ValidityPeriod><StartDate>2025-01-01</StartDate><EndDate>2025-12-31</EndDate>
        </ValidityPeriod>
        <UseType Namespace="ISCC-Registry"
          UserDefinedValue="TextAndDataMining">UserDefined</UseType>
        <UseType>ExtractForInternet</UseType>
      </DealTerms></Deal>
    </ReleaseDeal></DealList></ern:NewReleaseMessage>"""
    grant = terms_from_ddex(xml)
    assert grant.territories == Territories.of("AT", "DE")
    assert grant.uses == Use.SVOD | Use.PAY_TV | Use.TDM | Use.EXCERPT
    # EndDate is the deal's last day: the grant's half-open term ends at the next midnight.
    assert grant.period == Period(parse_time("2025-01-01"), parse_time("2026-01-01"))
    deals = read_deals(xml)
    back = deals_from_terms(grant)
    assert {(d.commercial_models, d.use_types) for d in back} == {
        (d.commercial_models, d.use_types) for d in deals
    }


@pytest.mark.parametrize("use", list(Use))
def test_every_use_survives_grant_deal_grant(use: Use) -> None:
    grant = GrantTerms(Territories.of("FR"), use, Period(parse_time("2025-03-01")))
    xml = terms_to_ddex(grant)
    assert terms_from_ddex(xml) == grant
    model, use_type = USE_TO_ERN[use]
    root = ET.fromstring(xml)
    assert [e.text for e in root.iter("UseType")] == [use_type.value]
    assert [e.text for e in root.iter("CommercialModelType")] == ([model] if model else [])


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, int(ALL_USES)),
    st.sets(st.sampled_from(sorted(COUNTRIES)), max_size=6),
    st.booleans(),
    st.integers(0, 2**37),
    st.none() | st.integers(1, 2**30),
)
def test_any_grant_survives_grant_deal_grant(
    uses: int, codes: set[str], worldwide: bool, start: int, length: int | None
) -> None:
    if not (codes or worldwide):
        codes = {"DE"}
    grant = GrantTerms(
        Territories(frozenset(codes), worldwide),
        Use(uses),
        Period(start, None if length is None else start + length),
        conditions=Conditions.ATTRIBUTION,
    )
    deals = deals_from_terms(grant)
    back = deals_to_terms(read_deals(write_deals(deals)), conditions=Conditions.ATTRIBUTION)
    assert back == grant
    # Each Deal's rectangle of pairs holds granted uses only, and together they hold all.
    assert all(d.uses() & ~int(grant.uses) == 0 for d in deals)


def test_world_and_world_except_notation() -> None:
    world = GrantTerms(Territories.world(), Use.AVOD, Period(0))
    (deal,) = deals_from_terms(world)
    assert deal.territories == ("Worldwide",) and deal.excluded == ()
    except_us = GrantTerms(Territories.world_except("US"), Use.AVOD, Period(0))
    (deal,) = deals_from_terms(except_us)
    assert deal.territories == () and deal.excluded == ("US",)


def bad_deal(terms: str, wrap: bool = True) -> str:
    period = "<ValidityPeriod><StartDateTime>2025-01-01T00:00:00Z</StartDateTime></ValidityPeriod>"
    body = terms if not wrap else f"<TerritoryCode>DE</TerritoryCode>{period}{terms}"
    return f"<Deal><DealTerms>{body}</DealTerms></Deal>"


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (
            bad_deal(
                "<CommercialModelType>SubscriptionModel</CommercialModelType>"
                "<UseType>PermanentDownload</UseType>"
            ),
            "UseType PermanentDownload with CommercialModelType SubscriptionModel is not in "
            "our vocabulary",
        ),
        (bad_deal("<UseType>OnDemandStream</UseType>"), "with no CommercialModelType"),
        (bad_deal("<UseType>UseAsRingtone</UseType>"), "UseType UseAsRingtone"),
        (
            bad_deal('<UseType Namespace="X" UserDefinedValue="Karaoke">UserDefined</UseType>'),
            "'Karaoke' of Namespace 'X'",
        ),
        (
            bad_deal(
                "<CommercialModelType>SubscriptionModel</CommercialModelType>"
                "<UseType>OnDemandStream</UseType>"
                "<PriceInformation><PriceType>Wholesale</PriceType></PriceInformation>"
            ),
            "DealTerms element PriceInformation",
        ),
        (
            bad_deal(
                "<CommercialModelType>SubscriptionModel</CommercialModelType>"
                "<UseType>OnDemandStream</UseType>"
                "<DistributionChannel><PartyName>X</PartyName></DistributionChannel>"
            ),
            "DealTerms element DistributionChannel",
        ),
        (bad_deal("<CommercialModelType>SubscriptionModel</CommercialModelType>"), "UseType"),
        (
            bad_deal(
                "<TerritoryCode>XK</TerritoryCode><ValidityPeriod><StartDate>2025-01-01"
                "</StartDate></ValidityPeriod><UseType>ExtractForInternet</UseType>",
                wrap=False,
            ),
            "TerritoryCode 'XK' is not an ISO 3166-1 country code",
        ),
        (
            bad_deal(
                "<TerritoryCode>ES-CN</TerritoryCode><ValidityPeriod><StartDate>2025-01-01"
                "</StartDate></ValidityPeriod><UseType>ExtractForInternet</UseType>",
                wrap=False,
            ),
            "'ES-CN'",
        ),
        (
            bad_deal(
                "<TerritoryCode>Worldwide</TerritoryCode><TerritoryCode>DE</TerritoryCode>"
                "<ValidityPeriod><StartDate>2025-01-01</StartDate></ValidityPeriod>"
                "<UseType>ExtractForInternet</UseType>",
                wrap=False,
            ),
            "Worldwide together with DE",
        ),
        (
            bad_deal(
                "<TerritoryCode>DE</TerritoryCode><ValidityPeriod><StartDate>2025</StartDate>"
                "</ValidityPeriod><UseType>ExtractForInternet</UseType>",
                wrap=False,
            ),
            "StartDate '2025' is not a whole day",
        ),
        (
            bad_deal(
                "<TerritoryCode>DE</TerritoryCode><ValidityPeriod><StartDateTime>"
                "2025-01-01T00:00:00</StartDateTime></ValidityPeriod>"
                "<UseType>ExtractForInternet</UseType>",
                wrap=False,
            ),
            "has no time zone",
        ),
        (
            bad_deal(
                "<TerritoryCode>DE</TerritoryCode><ValidityPeriod>"
                '<StartDate IsApproximate="true">2025-01-01</StartDate></ValidityPeriod>'
                "<UseType>ExtractForInternet</UseType>",
                wrap=False,
            ),
            "StartDate attribute IsApproximate",
        ),
        (
            bad_deal(
                "<TerritoryCode>DE</TerritoryCode>"
                "<ValidityPeriod><StartDate>2025-01-01</StartDate></ValidityPeriod>"
                "<ValidityPeriod><StartDate>2026-01-01</StartDate></ValidityPeriod>"
                "<UseType>ExtractForInternet</UseType>",
                wrap=False,
            ),
            "2 ValidityPeriods",
        ),
        (
            bad_deal(
                "<TerritoryCode>DE</TerritoryCode><ValidityPeriod><StartDate>2025-01-01"
                "</StartDate><EndDate>2024-01-01</EndDate></ValidityPeriod>"
                "<UseType>ExtractForInternet</UseType>",
                wrap=False,
            ),
            "before it starts",
        ),
        (
            bad_deal(
                '<TerritoryCode IdentifierType="TIS">2136</TerritoryCode><ValidityPeriod>'
                "<StartDate>2025-01-01</StartDate></ValidityPeriod>"
                "<UseType>ExtractForInternet</UseType>",
                wrap=False,
            ),
            "IdentifierType TIS",
        ),
        ("<Deal><DealReference>D1</DealReference></Deal>", "Deal element DealReference"),
        ("<Release/>", "expected a DDEX Deal"),
        ("<Deal>", "not XML"),
    ],
)
def test_what_the_vocabulary_cannot_say_is_refused_by_name(xml: str, message: str) -> None:
    with pytest.raises(InvalidTerms, match=message):
        terms_from_ddex(xml)


def test_a_term_past_year_9999_is_refused() -> None:
    grant = GrantTerms(Territories.of("DE"), Use.SVOD, Period(0, 2**63))
    with pytest.raises(InvalidTerms, match="past the year 9999"):
        terms_to_ddex(grant)


def test_a_grant_with_terms_outside_the_vocabulary_has_no_deal() -> None:
    for territories, uses in ((("XX",), int(Use.SVOD)), (("DE",), int(Use.SVOD) | 1 << 20)):
        grant = GrantTerms.from_fields(territories=territories, worldwide=False, uses=uses, start=0)
        with pytest.raises(InvalidTerms, match="no DDEX deal says this"):
            terms_to_ddex(grant)


def test_deals_of_one_grant_must_share_territory_and_term() -> None:
    period = Period(parse_time("2025-01-01"))
    svod = deals_from_terms(GrantTerms(Territories.of("DE"), Use.SVOD, period))
    tdm_at = deals_from_terms(GrantTerms(Territories.of("AT"), Use.TDM, period))
    with pytest.raises(InvalidTerms, match="differ in territory"):
        deals_to_terms(svod + tdm_at)
    later = deals_from_terms(
        GrantTerms(Territories.of("DE"), Use.TDM, Period(parse_time("2026-01-01")))
    )
    with pytest.raises(InvalidTerms, match="differ in validity"):
        deals_to_terms(svod + later)


def test_hostile_xml_is_refused_before_it_expands() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><Deal>&b;</Deal>'
    )
    with pytest.raises(InvalidTerms, match="refused"):
        read_deals(bomb)
    external = '<?xml version="1.0"?><!DOCTYPE d SYSTEM "http://127.0.0.1:1/x.dtd"><Deal/>'
    with pytest.raises(InvalidTerms, match="refused"):
        read_deals(external)
    with pytest.raises(InvalidTerms, match="larger than"):
        read_deals(b"<Deal>" + b" " * MAX_DEAL_BYTES + b"</Deal>")


def test_deal_model_is_canonical() -> None:
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    a = Deal(("DE", "AT"), (), moment, None, ("SubscriptionModel",), (ErnUse("OnDemandStream"),))
    b = Deal(
        ("AT", "DE", "DE"), (), moment, None, ("SubscriptionModel",), (ErnUse("OnDemandStream"),)
    )
    assert a == b
    # Two different groupings of the same uses both read as the same grant.
    pairs = [Use.SVOD, Use.AVOD, Use.ONLINE]
    for left, right in combinations(pairs, 2):
        grant = GrantTerms(Territories.of("DE"), left | right, Period(0))
        assert len(deals_from_terms(grant)) == 1  # one model set x OnDemandStream
