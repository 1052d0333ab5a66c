"""The licence rules: overlap, exclusive clashes, sublicence excess and usage coverage, on the
issue's named cases and as properties checked point by point against the definitions."""

from __future__ import annotations

import json
from itertools import product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import InvalidTerms
from registry.ledger.rules import (
    EXCLUSIVE_OVERLAP,
    SUBLICENCE_EXCEEDS,
    UNLICENSED_USE,
    Usage,
    covers,
    exceeds,
    exclusive_clash,
    miss,
    sublicence_excess,
    unlicensed,
)
from registry.ledger.terms import (
    Conditions,
    GrantTerms,
    Overlap,
    Period,
    Territories,
    Use,
    overlap,
    parse_time,
)

Y2025 = parse_time("2025-01-01")
Y2026 = parse_time("2026-01-01")
Y2027 = parse_time("2027-01-01")
FILM = "ISCC:MAIWFFZRX5UJ6QAA"
EXCERPT = "ISCC:MAIWFFZRX5UJ6QAB"
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
CAROL = "0x" + "c4" * 20


def gid(n: int) -> str:
    return "0x" + f"{n:064x}"


def grant(**kw: object) -> GrantTerms:
    base: dict[str, object] = {
        "territories": Territories.of("DE"),
        "uses": Use.SVOD,
        "period": Period(Y2025, Y2026),
        "iscc_id": FILM,
        "grantor": ALICE,
    }
    return GrantTerms(**(base | kw))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# The named cases


def test_touching_terms_do_not_overlap() -> None:
    first = grant(exclusive=True, grant_id=gid(1), licensee=BOB)
    renewal = grant(period=Period(Y2026, Y2027), grant_id=gid(2), licensee=CAROL)
    assert overlap(first, renewal) is None
    assert exclusive_clash(first, renewal) is None
    # One second of overlap is an overlap, and it is exactly that second.
    early = grant(period=Period(Y2026 - 1, Y2027), grant_id=gid(3), licensee=CAROL)
    clash = exclusive_clash(first, early)
    assert clash is not None
    assert clash.overlap == Overlap(Territories.of("DE"), Use.SVOD, Period(Y2026 - 1, Y2026))
    # An open-ended grant that starts where the exclusive one ends: still only touching.
    assert exclusive_clash(first, grant(period=Period(Y2026), grant_id=gid(4))) is None


def test_world_minus_exclusions_against_one_country() -> None:
    world_but_us = grant(
        territories=Territories.world_except("US", "CA"), exclusive=True, grant_id=gid(1)
    )
    in_us = grant(territories=Territories.of("US"), grant_id=gid(2), licensee=BOB)
    in_de = grant(territories=Territories.of("DE"), grant_id=gid(3), licensee=BOB)
    # The country is excluded: no overlap.
    assert overlap(world_but_us, in_us) is None
    assert exclusive_clash(world_but_us, in_us) is None
    assert exclusive_clash(in_us, world_but_us) is None
    # The country is not excluded: the overlap is exactly that country.
    clash = exclusive_clash(in_de, world_but_us)
    assert clash is not None
    assert clash.overlap.territories == Territories.of("DE")
    assert str(clash.overlap.territories) == "DE"
    # Two worldwide grants overlap in the world minus both exclusion lists.
    other = grant(territories=Territories.world_except("FR"), grant_id=gid(4), licensee=BOB)
    both = exclusive_clash(world_but_us, other)
    assert both is not None
    assert both.overlap.territories == Territories.world_except("CA", "FR", "US")


def test_exclusive_film_grant_against_open_excerpt_grant() -> None:
    film = grant(
        territories=Territories.world(),
        uses=Use.SVOD | Use.AVOD | Use.ONLINE | Use.EXCERPT,
        period=Period(Y2025),
        exclusive=True,
        licensee=BOB,
        grant_id=gid(1),
    )
    excerpt = grant(
        iscc_id=EXCERPT,
        territories=Territories.of("DE", "AT"),
        uses=Use.ONLINE | Use.EDUCATIONAL,
        period=Period(Y2026, Y2027),
        licensee=None,  # open to everyone
        grantor=CAROL,
        grant_id=gid(2),
    )
    # Different works: no clash unless the caller found them related.
    assert exclusive_clash(film, excerpt) is None
    clash = exclusive_clash(film, excerpt, relation="excerpt")
    assert clash is not None
    assert clash.kind == EXCLUSIVE_OVERLAP
    assert clash.overlap == Overlap(Territories.of("AT", "DE"), Use.ONLINE, Period(Y2026, Y2027))
    evidence = clash.to_json()
    assert json.loads(json.dumps(evidence)) == evidence
    assert evidence["exclusive"] == [gid(1)]
    assert evidence["relation"] == "excerpt"
    assert evidence["overlap"]["uses"] == ["online"]
    assert [g["grant_id"] for g in evidence["grants"]] == [gid(1), gid(2)]
    assert "excerpt" in str(clash) and "Online in AT, DE" in str(clash)
    assert Overlap.from_json(evidence["overlap"]) == clash.overlap


def test_exclusive_clash_exemptions() -> None:
    exclusive = grant(exclusive=True, licensee=BOB, grant_id=gid(1), sublicensable=True)
    # Neither exclusive: no clash, however they overlap.
    assert exclusive_clash(grant(grant_id=gid(5)), grant(grant_id=gid(6))) is None
    # A grant does not clash with itself.
    assert exclusive_clash(exclusive, exclusive) is None
    # Its own sublicence, by its licensee: not a clash (excess is another rule's business).
    sub = grant(parent=gid(1), grantor=BOB, licensee=CAROL, grant_id=gid(2))
    assert exclusive_clash(exclusive, sub) is None and exclusive_clash(sub, exclusive) is None
    # A deeper descendant, when the caller says so.
    deeper = grant(parent=gid(2), grantor=CAROL, licensee=ALICE, grant_id=gid(3))
    assert exclusive_clash(exclusive, deeper) is not None
    assert exclusive_clash(exclusive, deeper, lineal=True) is None
    # Another grant to the same licensee.
    assert exclusive_clash(exclusive, grant(licensee=BOB, grant_id=gid(4))) is None
    # A public grant and an exclusive one overlap.
    assert exclusive_clash(exclusive, grant(grant_id=gid(7))) is not None


def test_sublicence_inside_its_parent_is_sound() -> None:
    parent = grant(
        territories=Territories.world_except("US"),
        uses=Use.SVOD | Use.AVOD,
        period=Period(Y2025),
        sublicensable=True,
        licensee=BOB,
        grant_id=gid(1),
        conditions=Conditions.COMMERCIAL | Conditions.ATTRIBUTION,
    )
    child = grant(
        territories=Territories.of("DE", "AT"),
        uses=Use.SVOD,
        period=Period(Y2026, Y2027),
        grantor=BOB,
        licensee=CAROL,
        parent=gid(1),
        grant_id=gid(2),
        conditions=Conditions.ATTRIBUTION,
    )
    assert sublicence_excess(child, parent) is None
    assert exceeds(child, parent) is None


def test_sublicence_excess_names_every_part() -> None:
    parent = grant(
        territories=Territories.world_except("US"),
        uses=Use.SVOD | Use.AVOD,
        period=Period(Y2025, Y2026),
        licensee=BOB,
        grant_id=gid(1),
        conditions=Conditions.ATTRIBUTION,
    )
    child = grant(
        iscc_id=EXCERPT,
        territories=Territories.of("US", "DE"),
        uses=Use.SVOD | Use.TVOD,
        period=Period(Y2025 - 10, Y2027),
        grantor=CAROL,
        licensee=ALICE,
        parent=gid(1),
        grant_id=gid(2),
        conditions=Conditions.COMMERCIAL,
        exclusive=True,
    )
    excess = sublicence_excess(child, parent)
    assert excess is not None and excess.kind == SUBLICENCE_EXCEEDS
    assert excess.territories == Territories.of("US")
    assert excess.uses == Use.TVOD
    assert excess.before == Period(Y2025 - 10, Y2025)
    assert excess.after == Period(Y2026, Y2027) and excess.outlives
    assert excess.conditions == Conditions.COMMERCIAL | Conditions.ATTRIBUTION
    assert excess.exclusive and excess.not_sublicensable and excess.grantor_not_licensee
    assert excess.other_work
    evidence = excess.to_json()
    assert json.loads(json.dumps(evidence)) == evidence
    assert evidence["territories"] == {"worldwide": False, "codes": ["US"]}
    assert evidence["uses"] == ["tvod"]
    assert evidence["after"] == {"start": Y2026, "end": Y2027}
    assert len(excess.reasons()) == 9
    assert "may not be sublicensed" in str(excess) and "outlives the parent" in str(excess)
    # `exceeds` is the scope alone.
    scope = exceeds(child, parent)
    assert scope is not None and not scope.not_sublicensable and not scope.other_work
    assert scope.territories == excess.territories


def test_open_ended_child_outlives_a_parent_with_an_end_or_a_termination() -> None:
    parent = grant(period=Period(Y2025), sublicensable=True, licensee=BOB, grant_id=gid(1))
    child = grant(period=Period(Y2026), grantor=BOB, parent=gid(1), grant_id=gid(2))
    assert sublicence_excess(child, parent) is None
    ended = sublicence_excess(child, parent, parent_ended_at=Y2027)
    assert ended is not None and ended.after == Period(Y2027) and ended.outlives
    # A parent terminated before the child starts: all of the child is outside it.
    gone = sublicence_excess(child, parent, parent_ended_at=Y2025)
    assert gone is not None and gone.after == child.period


def test_public_sublicensable_parent_can_be_sublicensed_by_anyone() -> None:
    parent = grant(sublicensable=True, licensee=None, grant_id=gid(1))
    child = grant(grantor=CAROL, parent=gid(1), grant_id=gid(2))
    assert sublicence_excess(child, parent) is None


def test_sublicence_of_the_wrong_parent_is_a_caller_error() -> None:
    with pytest.raises(InvalidTerms, match="names parent"):
        sublicence_excess(grant(parent=gid(9), grant_id=gid(2)), grant(grant_id=gid(1)))


def test_usage_coverage() -> None:
    svod_de = grant(licensee=BOB, grant_id=gid(1))
    use = Usage("de", Use.SVOD, Y2025 + 100, user=BOB)
    assert use.territory == "DE"
    assert covers(svod_de, use)
    assert not covers(svod_de, Usage("AT", Use.SVOD, Y2025, user=BOB))
    assert not covers(svod_de, Usage("DE", Use.AVOD, Y2025, user=BOB))
    assert not covers(svod_de, Usage("DE", Use.SVOD, Y2026, user=BOB))  # end is exclusive
    assert not covers(svod_de, Usage("DE", Use.SVOD, Y2025, user=CAROL))
    assert covers(svod_de, Usage("DE", Use.SVOD, Y2025))  # reporter is not a party
    assert not covers(svod_de, use, ended_at=Y2025 + 100)  # terminated at that second
    assert covers(svod_de, use, ended_at=Y2025 + 101)
    found = miss(svod_de, Usage("AT", Use.AVOD, Y2027, user=CAROL))
    assert found is not None and len(found.reasons) == 4
    with pytest.raises(InvalidTerms, match="unknown territory 'XX'"):
        Usage("XX", Use.SVOD, Y2025)
    with pytest.raises(InvalidTerms, match="unknown use"):
        Usage("DE", Use(1 << 20), Y2025)


def test_unlicensed_use_evidence() -> None:
    grants = [grant(grant_id=gid(1)), grant(territories=Territories.of("AT"), grant_id=gid(2))]
    use = Usage("DE", Use.SVOD, Y2025)
    assert unlicensed(use, grants) is None
    found = unlicensed(use, grants, ended={gid(1): Y2025})
    assert found is not None and found.kind == UNLICENSED_USE
    evidence = found.to_json()
    assert json.loads(json.dumps(evidence)) == evidence
    assert [g["grant"]["grant_id"] for g in evidence["grants"]] == [gid(1), gid(2)]
    assert "terminated 2025-01-01" in evidence["grants"][0]["reasons"][0]
    none = unlicensed(use, [])
    assert none is not None and "no live grant" in str(none)


# ---------------------------------------------------------------------------------------------
# Properties: each result checked point by point (country x use bit x second)

POOL = ["AT", "DE", "FR", "US", "CA"]
POINTS_C = [*POOL, "BR"]  # BR is never named, so only a worldwide grant covers it
BITS = [Use(1 << i) for i in range(4)]
TIMES = range(0, 32)

territories = st.builds(
    lambda codes, worldwide: Territories(frozenset(codes), worldwide),
    st.sets(st.sampled_from(POOL)),
    st.booleans(),
)
periods = st.integers(0, 30).flatmap(
    lambda start: st.builds(Period, st.just(start), st.none() | st.integers(start + 1, 31))
)
grants = st.builds(
    lambda t, u, p: GrantTerms(t, Use(u), p) if (t.worldwide or t.codes) else None,
    territories,
    st.integers(1, 15),
    periods,
).filter(lambda g: g is not None)


def inside(g: GrantTerms | Overlap, c: str, u: Use, t: int) -> bool:
    return g.territories.contains(c) and bool(g.uses & u) and g.period.contains(t)


def points() -> product:
    return product(POINTS_C, BITS, TIMES)


@settings(max_examples=200, deadline=None)
@given(grants, grants)
def test_overlap_is_exactly_the_common_points(a: GrantTerms, b: GrantTerms) -> None:
    shared = overlap(a, b)
    for c, u, t in points():
        expected = inside(a, c, u, t) and inside(b, c, u, t)
        assert (shared is not None and inside(shared, c, u, t)) == expected
    back = overlap(b, a)
    assert (shared is None) == (back is None)
    if shared is not None and back is not None:
        assert shared.territories.same_as(back.territories)
        assert (shared.uses, shared.period) == (back.uses, back.period)


@settings(max_examples=200, deadline=None)
@given(grants, grants)
def test_exceeds_is_exactly_the_child_points_outside_the_parent(
    child: GrantTerms, parent: GrantTerms
) -> None:
    excess = exceeds(child, parent)
    outside = [p for p in points() if inside(child, *p) and not inside(parent, *p)]
    # Points only sample the product, so "no point outside" can miss an excess in a country
    # or second not sampled; the reverse must hold everywhere sampled.
    if excess is None:
        assert outside == []
        return
    for c, u, t in outside:
        assert (
            (excess.territories is not None and excess.territories.contains(c))
            or bool(excess.uses & u)
            or any(p is not None and p.contains(t) for p in (excess.before, excess.after))
        )
    if excess.territories is not None:
        for c in POINTS_C:
            assert excess.territories.contains(c) == (
                child.territories.contains(c) and not parent.territories.contains(c)
            )


@settings(max_examples=200, deadline=None)
@given(territories, territories)
def test_territory_algebra_pointwise(a: Territories, b: Territories) -> None:
    for c in POINTS_C:
        assert a.intersect(b).contains(c) == (a.contains(c) and b.contains(c))
        assert a.subtract(b).contains(c) == (a.contains(c) and not b.contains(c))
        assert a.issubset(b) == all(b.contains(x) for x in a.expand())


@settings(max_examples=200, deadline=None)
@given(periods, periods)
def test_periods_pointwise(a: Period, b: Period) -> None:
    both = a.intersect(b)
    for t in range(0, 40):
        assert (both is not None and both.contains(t)) == (a.contains(t) and b.contains(t))
    if a.end is not None and a.end == b.start:
        assert both is None  # touching


@settings(max_examples=100, deadline=None)
@given(grants, st.sampled_from(POINTS_C[:-1]), st.sampled_from(BITS), st.sampled_from(TIMES))
def test_covers_is_membership(g: GrantTerms, c: str, u: Use, t: int) -> None:
    assert covers(g, Usage(c, u, t)) == inside(g, c, u, t)


@settings(max_examples=100, deadline=None)
@given(grants)
def test_raw_round_trip(g: GrantTerms) -> None:
    raw = g.to_raw()
    back = GrantTerms.from_fields(
        territories=raw["territories"],
        worldwide=raw["worldwide"],
        uses=raw["uses"],
        conditions=raw["conditions"],
        start=raw["start"],
        end=raw["end"],
        licensee=raw["licensee"],
        parent=raw["parent"],
        terms_hash=raw["termsHash"],
    )
    assert back == g
