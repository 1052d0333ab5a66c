"""The licence vocabulary: uses, conditions, territories, periods, grant terms and parsing."""

from __future__ import annotations

from types import SimpleNamespace

import pycountry
import pytest

from registry.errors import InputError, InvalidTerms
from registry.ledger.terms import (
    COUNTRIES,
    Conditions,
    GrantTerms,
    Overlap,
    Period,
    Territories,
    Use,
    format_time,
    overlap,
    parse_conditions,
    parse_period,
    parse_territories,
    parse_time,
    parse_uses,
    use_names,
)

DAY = 86_400
Y2025 = parse_time("2025-01-01")
Y2026 = parse_time("2026-01-01")


def test_use_bits_are_the_documented_positions() -> None:
    # Grants signed today are read with this table for ever: a moved bit would change the
    # meaning of every grant on chain.
    expected = [
        "theatrical",
        "free_tv",
        "pay_tv",
        "svod",
        "avod",
        "tvod",
        "online",
        "educational",
        "archive",
        "excerpt",
        "tdm",
        "ai_training",
        "est",
    ]
    for bit, name in enumerate(expected):
        assert int(Use[name.upper()]) == 1 << bit
    assert len(Use.__members__) == len(expected)
    assert [int(c) for c in Conditions] == [1, 2, 4]


def test_countries_are_the_full_iso_list() -> None:
    assert len(COUNTRIES) == len(pycountry.countries) >= 249
    assert {"DE", "AT", "US", "SS", "AQ"} <= COUNTRIES
    assert "XK" not in COUNTRIES  # Kosovo's code is user-assigned, not ISO 3166-1


def test_parse_uses_and_conditions() -> None:
    assert parse_uses("svod,avod") == Use.SVOD | Use.AVOD
    assert parse_uses(" SVOD , free-tv ai_training") == Use.SVOD | Use.FREE_TV | Use.AI_TRAINING
    assert use_names(parse_uses("avod,svod")) == ["svod", "avod"]
    assert parse_conditions("commercial,attribution") == (
        Conditions.COMMERCIAL | Conditions.ATTRIBUTION
    )
    assert parse_conditions("none") == Conditions(0)


@pytest.mark.parametrize(
    ("text", "token"),
    [("svod,netflix", "'netflix'"), ("", "no use")],
)
def test_unknown_use_names_the_token_and_the_allowed_values(text: str, token: str) -> None:
    with pytest.raises(InvalidTerms) as err:
        parse_uses(text)
    assert token in str(err.value)
    assert "svod" in str(err.value) and "ai_training" in str(err.value)
    assert isinstance(err.value, InputError)  # the CLI's one-line error path


def test_parse_territories() -> None:
    assert parse_territories("DE,AT") == Territories.of("AT", "DE")
    assert parse_territories("de at") == Territories.of("AT", "DE")
    assert parse_territories("world") == Territories.world()
    assert parse_territories("Worldwide") == Territories.world()
    assert parse_territories("world except US, CA") == Territories.world_except("US", "CA")
    assert parse_territories("world -US") == Territories.world_except("US")
    assert str(parse_territories("world except US,CA")) == "World except CA, US"
    assert str(parse_territories("DE,AT")) == "AT, DE"
    assert str(Territories.world()) == "World"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("DE,XX", "unknown territory 'XX'"),
        ("world except US,UK", "unknown territory 'UK'"),
        ("world except", "name the excluded territories"),
        ("", "no territory given"),
        ("Germany", "unknown territory 'Germany'"),
    ],
)
def test_bad_territories_name_the_token(text: str, message: str) -> None:
    with pytest.raises(InvalidTerms, match=message):
        parse_territories(text)


def test_territory_algebra() -> None:
    world_but_us = Territories.world_except("US")
    assert world_but_us.contains("DE") and not world_but_us.contains("US")
    assert "de" in Territories.of("DE")
    # The world is every code the contract accepts, so it covers a code ISO assigns later.
    assert Territories.world().contains("XX") and "X1" not in Territories.world()
    assert not Territories.world().contains("DEU")
    assert world_but_us.intersect(Territories.of("US")).is_empty()
    assert world_but_us.intersect(Territories.of("US", "DE")) == Territories.of("DE")
    assert world_but_us.intersect(Territories.world_except("CA")) == Territories.world_except(
        "US", "CA"
    )
    assert Territories.of("DE", "AT").subtract(world_but_us).is_empty()
    assert Territories.of("US", "AT").subtract(world_but_us) == Territories.of("US")
    assert Territories.world().subtract(world_but_us) == Territories.of("US")
    assert world_but_us.subtract(Territories.of("DE")) == Territories.world_except("US", "DE")
    everything = Territories.of(*COUNTRIES)
    assert everything.same_as(Territories.of(*sorted(COUNTRIES)))
    assert not everything.same_as(Territories.world())  # the world has room for new countries
    assert (
        Territories.world_except(*COUNTRIES).expand()
        == {a + b for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
        - COUNTRIES
    )


def test_raw_territories_round_trip() -> None:
    t = Territories.of("US", "AT", "DE")
    assert t.to_raw() == b"ATDEUS"
    assert Territories.from_raw(b"ATDEUS", False) == t
    assert Territories.from_raw(("AT", "DE", "US"), False) == t
    with pytest.raises(InvalidTerms, match="not a territory code"):
        Territories.from_raw(b"AT\x00\x01", False)
    with pytest.raises(InvalidTerms, match="2 bytes"):
        Territories.from_raw(b"ATD", False)


def test_period_is_half_open() -> None:
    first, second = Period(Y2025, Y2026), Period(Y2026)
    assert first.intersect(second) is None and not first.overlaps(second)
    assert first.contains(Y2025) and not first.contains(Y2026) and second.contains(Y2026)
    assert Period(Y2025, Y2026 + 1).intersect(second) == Period(Y2026, Y2026 + 1)
    assert Period.from_raw(Y2025, 0) == Period(Y2025, None)
    assert Period(Y2025).to_raw() == (Y2025, 0)
    assert str(first) == "2025-01-01 to 2026-01-01"
    assert str(Period(Y2025 + 3600)) == "from 2025-01-01T01:00:00Z"


def test_dates_and_periods_parse() -> None:
    assert parse_time("2025-01-01") == 1735689600
    assert parse_time("2025-01-01T01:00:00Z") == 1735689600 + 3600
    assert parse_time("2025-01-01T02:00:00+01:00") == 1735689600 + 3600
    assert parse_time("1735689600") == 1735689600
    assert parse_period("2025-01-01") == Period(Y2025)
    assert parse_period("2025-01-01", "none") == Period(Y2025)
    assert parse_period("2025-01-01", "2026-01-01") == Period(Y2025, Y2026)
    assert format_time(Y2025) == "2025-01-01"
    with pytest.raises(InvalidTerms, match="end 2025-01-01 is not after start 2026-01-01"):
        parse_period("2026-01-01", "2025-01-01")
    with pytest.raises(InvalidTerms, match="is not after start"):
        parse_period("2025-01-01", "2025-01-01")
    with pytest.raises(InvalidTerms, match="not a date: '2025-13-01'"):
        parse_time("2025-13-01")
    with pytest.raises(InvalidTerms, match="not a date: 'tomorrow'"):
        parse_time("tomorrow")


def terms(**kw: object) -> GrantTerms:
    base: dict[str, object] = {
        "territories": Territories.of("DE"),
        "uses": Use.SVOD,
        "period": Period(Y2025, Y2026),
    }
    return GrantTerms(**(base | kw))  # type: ignore[arg-type]


def test_grant_terms_validate() -> None:
    with pytest.raises(InvalidTerms, match="at least one use"):
        terms(uses=Use(0))
    with pytest.raises(InvalidTerms, match="32-bit mask"):
        terms(uses=1 << 32)
    with pytest.raises(InvalidTerms, match="at least one territory"):
        terms(territories=Territories(frozenset()))
    with pytest.raises(InvalidTerms, match="licensee is not an address"):
        terms(licensee="bob")
    with pytest.raises(InvalidTerms, match="conditions"):
        terms(conditions=8)
    with pytest.raises(InvalidTerms, match="parent must be 32 bytes"):
        terms(parent="0x1234")
    with pytest.raises(InvalidTerms, match="not a territory code"):
        terms(territories=Territories(frozenset({"de"})))


def test_to_raw_and_back_from_event_fields() -> None:
    grant = terms(
        territories=Territories.world_except("US", "CA"),
        uses=Use.SVOD | Use.AVOD | Use.AI_TRAINING,
        conditions=Conditions.COMMERCIAL | Conditions.ATTRIBUTION,
        exclusive=True,
        sublicensable=True,
        licensee="0x" + "ab" * 20,
        parent="0x" + "11" * 32,
        terms_url="https://example.org/terms.pdf",
        terms_hash=bytes(range(32)),
    )
    raw = grant.to_raw()
    assert raw["territories"] == b"CAUS" and raw["worldwide"] is True
    assert raw["uses"] == (1 << 3) | (1 << 4) | (1 << 11)
    assert raw["conditions"] == 0b101
    assert (raw["start"], raw["end"]) == (Y2025, Y2026)
    assert raw["parent"] == bytes.fromhex("11" * 32)
    # What an indexed event carries: territories as a tuple of codes, ids as hex.
    event = SimpleNamespace(
        grant_id="0x" + "22" * 32,
        iscc_id="ISCC:MAIWFFZRX5UJ6QAA",
        grantor="0x" + "cd" * 20,
        licensee=raw["licensee"],
        parent="0x" + raw["parent"].hex(),
        territories=("CA", "US"),
        worldwide=raw["worldwide"],
        uses=raw["uses"],
        conditions=raw["conditions"],
        start=raw["start"],
        end=raw["end"],
        exclusive=raw["exclusive"],
        sublicensable=raw["sublicensable"],
        terms_url=raw["termsUrl"],
        terms_hash="0x" + raw["termsHash"].hex(),
    )
    back = GrantTerms.from_event(event)  # type: ignore[arg-type]
    assert back.to_raw() == raw
    assert back.grant_id == event.grant_id and back.iscc_id == event.iscc_id
    assert (back.territories, back.uses, back.period) == (
        grant.territories,
        grant.uses,
        grant.period,
    )


def test_zero_values_mean_none() -> None:
    grant = GrantTerms.from_fields(
        territories=b"DE",
        worldwide=False,
        uses=int(Use.TDM),
        start=Y2025,
        end=0,
        licensee="0x" + "00" * 20,
        parent=bytes(32),
        terms_hash=bytes(32),
    )
    assert grant.public and grant.parent is None and grant.terms_hash is None
    assert grant.period.end is None
    assert "public" in grant.describe() and "Text and data mining in DE" in grant.describe()


def test_overlap_is_exact() -> None:
    a = terms(territories=Territories.world_except("US"), uses=Use.SVOD | Use.AVOD)
    b = terms(territories=Territories.of("US", "DE", "FR"), uses=Use.AVOD | Use.TVOD)
    got = overlap(a, b)
    assert got is not None
    assert got.territories == Territories.of("DE", "FR")
    assert got.uses == Use.AVOD
    assert got.period == Period(Y2025, Y2026)
    assert str(got) == "AVOD in DE, FR, 2025-01-01 to 2026-01-01"
    assert overlap(a, terms(territories=Territories.of("US"))) is None
    assert overlap(a, terms(uses=Use.TVOD)) is None
    assert overlap(a, terms(period=Period(Y2026))) is None  # touching terms


def test_a_grant_the_contract_accepted_always_reads() -> None:
    # The contract takes any two letters and any non-zero uint32: an unassigned code and a use
    # bit the vocabulary does not know yet must not stop the indexer reading the grant.
    grant = GrantTerms.from_fields(
        territories=("DE", "XX"),
        worldwide=False,
        uses=int(Use.SVOD) | 1 << 20,
        start=Y2025,
    )
    assert grant.unknown_terms() == [
        "territory XX is not an ISO 3166-1 country",
        "use bit20 is not in the vocabulary",
    ]
    assert use_names(grant.uses) == ["svod", "bit20"]
    assert "SVOD, use bit 20 in DE, XX" in grant.describe()
    assert grant.to_raw()["territories"] == b"DEXX" and grant.to_raw()["uses"] == 8 | 1 << 20
    # The maths stays exact: it meets another grant naming XX or the world, in XX only.
    world = terms(territories=Territories.world_except("DE"), uses=Use(1 << 20))
    got = overlap(grant, world)
    assert got is not None and got.territories == Territories.from_raw(b"XX", False)
    assert got.uses == Use(1 << 20)
    assert Overlap.from_json(got.to_json()) == got
    # What users type is still held to ISO and to the vocabulary.
    with pytest.raises(InvalidTerms, match="unknown territory 'XX'"):
        Territories.of("XX")
    with pytest.raises(InvalidTerms, match="unknown use 'bit20'"):
        parse_uses("bit20")
    assert terms().unknown_terms() == []


def test_create_from_what_users_type() -> None:
    grant = GrantTerms.create(
        territories="world except US",
        uses="svod,avod",
        start="2025-01-01",
        end="2026-01-01",
        conditions="commercial",
        exclusive=True,
        licensee="0x" + "ab" * 20,
        terms_url="https://example.org/t.pdf",
        terms_hash="0x" + "cd" * 32,
    )
    assert grant.territories == Territories.world_except("US")
    assert grant.uses == Use.SVOD | Use.AVOD and grant.conditions == Conditions.COMMERCIAL
    assert grant.period == Period(Y2025, Y2026) and grant.exclusive
    assert grant.terms_hash == bytes.fromhex("cd" * 32)
    public = GrantTerms.create(territories="DE", uses="tdm", start="2025-01-01", licensee="")
    assert public.public and public.period.end is None
    for kw, message in [
        ({"territories": "DE,XX"}, "unknown territory 'XX'"),
        ({"uses": "svod,bit20"}, "unknown use 'bit20'"),
        ({"end": "2024-01-01"}, "end 2024-01-01 is not after start 2025-01-01"),
        ({"conditions": "free"}, "unknown condition 'free'"),
        ({"terms_hash": "zz"}, "terms hash is not hex"),
        ({"terms_hash": "0x1234"}, "32 bytes"),
    ]:
        fields: dict[str, object] = {"territories": "DE", "uses": "svod", "start": "2025-01-01"}
        with pytest.raises(InvalidTerms, match=message):
            GrantTerms.create(**(fields | kw))  # type: ignore[arg-type]
