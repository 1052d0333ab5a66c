"""A conflict on the pages, in a real browser: both declarations name each other, who holds
priority and the evidence; the declarer page counts it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from web_helpers import Site, accessibility_violations, screenshot

pytestmark = pytest.mark.chain


def test_conflict_shows_on_both_declarations_and_the_declarer_page(
    page: Page, conflict_site: Site
) -> None:
    original, copy = conflict_site.files["original"], conflict_site.files["copy"]
    page.goto(f"{conflict_site.url}/declaration/{copy.iscc_id}")
    conflict = page.locator("article.declaration ul.conflicts > li")
    expect(conflict).to_have_count(1)
    expect(conflict).to_contain_text("Open: declared after")
    expect(conflict).to_contain_text("which holds priority")
    expect(conflict).to_contain_text("CONTENT-IMAGE")
    expect(conflict.get_by_role("link", name=original.iscc_id)).to_have_attribute(
        "href", f"/declaration/{original.iscc_id}"
    )
    expect(conflict.get_by_role("link", name=original.declarer.address)).to_have_attribute(
        "href", f"/declarer/{original.declarer.address}"
    )
    screenshot(page, "declaration-with-conflict")
    assert accessibility_violations(page) == []

    page.goto(f"{conflict_site.url}/declaration/{original.iscc_id}")
    conflict = page.locator("article.declaration ul.conflicts > li")
    expect(conflict).to_contain_text("so this declaration holds priority")
    expect(conflict.get_by_role("link", name=copy.iscc_id)).to_be_visible()

    page.goto(f"{conflict_site.url}/declarer/{copy.declarer.address}")
    expect(page.locator("main")).to_contain_text(
        "Conflicts: 1 declaration with conflicts (shown below)."
    )
    assert accessibility_violations(page) == []
