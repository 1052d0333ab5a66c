"""Conflicts on the pages, in a real browser: the conflicts page (filters, a badge per conflict,
both sides, evidence in plain words strongest first), and both declarations naming each other."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from web_helpers import Site, accessibility_violations, screenshot

pytestmark = pytest.mark.chain


def test_conflicts_page_shows_both_sides_and_plain_evidence(
    page: Page, conflict_site: Site
) -> None:
    original, same = conflict_site.files["original"], conflict_site.files["same"]
    page.goto(conflict_site.url + "/")
    page.get_by_role("navigation", name="Site").get_by_role("link", name="Conflicts").click()
    expect(page).to_have_url(conflict_site.url + "/conflicts")
    cards = page.locator("li.conflict-card")
    expect(cards).to_have_count(3)
    for i in range(3):
        expect(cards.nth(i).locator(".badge.contested")).to_have_text("Open")
    screenshot(page, "conflicts-page")
    assert accessibility_violations(page) == []

    # The byte copy against the original: the earlier side holds priority, and the same bytes
    # come before the near-identical picture (both of strength 1).
    page.locator("#f-id").fill(same.iscc_id)
    page.locator("#f-declarer").fill(original.declarer.address)
    page.get_by_role("button", name="Filter").click()
    expect(cards).to_have_count(1)
    card = cards.first
    first, later = card.locator(".side").nth(0), card.locator(".side").nth(1)
    expect(first.get_by_role("heading")).to_have_text("Holds priority: declared first")
    expect(first.get_by_role("link", name=original.iscc_id)).to_be_visible()
    expect(first.locator(f'a[href="/declarer/{original.declarer.address}"]')).to_be_visible()
    expect(later.get_by_role("heading")).to_have_text("Declared later")
    expect(later.get_by_role("link", name=same.iscc_id)).to_be_visible()
    expect(card.get_by_role("heading", level=2)).to_contain_text("Lighthouse at dusk")
    evidence = card.locator("ul.evidence > li")
    expect(evidence).to_have_count(2)
    expect(evidence.nth(0)).to_have_text(
        "The same file: both declared exactly the same bytes (same datahash)."
    )
    expect(evidence.nth(1)).to_have_text(
        "The same picture, 100 % alike: their Image-Codes differ in 0 of 64 bits."
    )
    assert "CONTENT-" not in card.inner_text() and "strength" not in card.inner_text()
    screenshot(page, "conflicts-filtered")

    # Resolved conflicts: none yet, said plainly.
    page.goto(conflict_site.url + "/conflicts?status=resolved")
    expect(cards).to_have_count(0)
    expect(page.locator("main")).to_contain_text("No resolved conflicts.")
    # A bad filter is one line on an error page.
    answer = page.goto(conflict_site.url + "/conflicts?declarer=nobody")
    assert answer is not None and answer.status == 400
    expect(page.get_by_role("alert")).to_have_text("not an Ethereum address: 'nobody'")


def test_conflict_shows_on_both_declarations(page: Page, conflict_site: Site) -> None:
    original, copy = conflict_site.files["original"], conflict_site.files["copy"]
    page.goto(f"{conflict_site.url}/declaration/{copy.iscc_id}")
    conflicts = page.locator("ul.conflicts > li")
    expect(conflicts).to_have_count(2)
    with_original = conflicts.filter(has=page.get_by_role("link", name=original.iscc_id))
    expect(with_original).to_contain_text("Declared after")
    expect(with_original).to_contain_text("which holds priority")
    expect(with_original).to_contain_text("The same picture")
    expect(with_original.locator(f'a[href="/declarer/{original.declarer.address}"]')).to_have_count(
        1
    )
    screenshot(page, "declaration-with-conflict")
    assert accessibility_violations(page) == []

    page.goto(f"{conflict_site.url}/declaration/{original.iscc_id}")
    conflicts = page.locator("ul.conflicts > li")
    expect(conflicts).to_have_count(2)
    for i in range(2):
        expect(conflicts.nth(i)).to_contain_text("so this declaration holds priority")
    expect(
        page.locator("#verdict").get_by_role("link", name="Review the 2 open conflicts")
    ).to_have_attribute("href", f"/conflicts?iscc_id={original.iscc_id}")
