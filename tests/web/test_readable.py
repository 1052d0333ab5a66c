"""Readable data: the history as a timeline of named events with times, short hashes with the
full value on hover and a copy button, relative and absolute times, chain names, and titles,
types, sizes and thumbnails where the metadata carries them."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from conftest import MANY
from playwright.sync_api import Browser, Page, expect
from web_helpers import DESKTOP, Site, accessibility_violations, screenshot

pytestmark = pytest.mark.chain


@pytest.fixture
def clipboard_page(browser: Browser, conflict_site: Site) -> Iterator[Page]:
    context = browser.new_context(**DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=conflict_site.url)
    yield context.new_page()
    context.close()


def test_history_is_a_timeline_of_named_events(page: Page, conflict_site: Site) -> None:
    changed = conflict_site.files[f"note-{MANY - 3:02d}"]
    carol, alice = changed.declarer.address, conflict_site.files["original"].declarer.address
    page.goto(f"{conflict_site.url}/declaration/{changed.iscc_id}")
    events = page.locator("ol.timeline > li")
    expect(events).to_have_count(3)
    expect(events.nth(0).locator("strong")).to_have_text("Declared")
    expect(events.nth(1).locator("strong")).to_have_text(
        "Updated: gateway set to https://example.org/{iscc-id}; no metadata document"
    )
    expect(events.nth(2).locator("strong")).to_have_text("Transferred")
    expect(events.nth(0).locator(f'a[href="/declarer/{carol}"]')).to_have_count(1)
    expect(events.nth(2).locator(f'a[href="/declarer/{alice}"]')).to_have_count(1)
    for i in range(3):
        # Each event at its block's time, absolute and relative.
        time = events.nth(i).locator("time")
        expect(time).to_have_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"))
        expect(time).to_have_attribute("datetime", re.compile(r"\d{4}-\d\d-\d\dT"))
        # Relative to now; the devnet's clock may run ahead of ours (other tests move it).
        expect(events.nth(i).locator(".ago")).to_have_text(
            re.compile(r"\((just now|\d+ [a-z]+ ago|in \d+ [a-z]+)\)")
        )
    text = page.locator("main").inner_text()
    for raw in ("isccId", "isccCode", "0x" + "0" * 64):
        assert raw not in text, f"{raw} on the page"
    # The owner now is the one it was transferred to.
    expect(page.locator("dt:text-is('Owned now by') + dd")).to_contain_text(alice[:8])
    screenshot(page, "declaration-timeline")
    assert accessibility_violations(page) == []

    revoked = conflict_site.files[f"note-{MANY - 1:02d}"]
    page.goto(f"{conflict_site.url}/declaration/{revoked.iscc_id}")
    expect(page.locator("#verdict .headline")).to_have_text(
        "Revoked: its owner withdrew this declaration; it claims nothing any more."
    )
    expect(events.nth(1).locator("strong")).to_have_text("Revoked: it claims nothing any more")
    screenshot(page, "declaration-revoked")


def test_hashes_are_short_with_the_full_value_on_hover_and_copy(
    clipboard_page: Page, conflict_site: Site
) -> None:
    page = clipboard_page
    original = conflict_site.files["original"]
    page.goto(f"{conflict_site.url}/declaration/{original.iscc_id}")
    datahash = page.locator("dt:text-is('Datahash') + dd .hash")
    full = original.result.datahash
    shown = datahash.locator("code").inner_text()
    assert len(shown) < 20 and shown.startswith(full[:8]) and shown.endswith(full[-4:]), shown
    expect(datahash.locator("code")).to_have_attribute("title", full)
    datahash.get_by_role("button", name=f"Copy datahash {full}").click()
    expect(datahash.get_by_role("button")).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == full
    # One form for a datahash everywhere: the multihash the API gives (1e20...).
    values = page.locator("main [data-copy]").evaluate_all("els => els.map(e => e.dataset.copy)")
    assert full in values
    assert not [v for v in values if v.lower().endswith(full[4:]) and v != full], values
    # Addresses link to their declarer page and copy in full.
    declarer = page.locator("dt:text-is('Declared by') + dd .hash")
    address = original.declarer.address
    expect(declarer.get_by_role("link")).to_have_attribute("title", address)
    declarer.get_by_role("button").click()
    assert page.evaluate("() => navigator.clipboard.readText()") == address
    screenshot(page, "declaration-short-hashes")


def test_chain_names_titles_types_sizes_and_thumbnails(page: Page, conflict_site: Site) -> None:
    original = conflict_site.files["original"]
    page.goto(f"{conflict_site.url}/declaration/{original.iscc_id}")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text("Lighthouse at dusk")
    expect(heading.locator(".id-line")).to_have_text(original.iscc_id)
    main = page.locator("main")
    expect(page.locator("dt:text-is('Type') + dd")).to_have_text("Image")
    expect(page.locator("dt:text-is('Media type') + dd")).to_have_text("image/png")
    size = original.path.stat().st_size
    expect(page.locator("dt:text-is('Size') + dd")).to_have_text(f"{size / 1000:.1f} kB")
    expect(page.locator("dt:text-is('Chain') + dd")).to_have_text("Hardhat devnet (chain id 31337)")
    assert "Chain 31337" not in main.inner_text()
    thumbnail = page.locator(".file-facts img.thumb")
    expect(thumbnail).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    assert thumbnail.evaluate("img => img.naturalWidth") == 64
    screenshot(page, "declaration-with-metadata")

    # An upload shows its own type, size and a thumbnail made in the browser.
    page.goto(conflict_site.url + "/")
    page.set_input_files("#file", str(original.path))
    facts = page.locator("#results .file-facts")
    expect(facts.locator("dt:text-is('Type') + dd")).to_have_text("Image (image/png)")
    expect(facts.locator("dt:text-is('Size') + dd")).to_have_text(
        f"{size / 1000:.1f} kB, 320 \u00d7 240 pixels"
    )
    local = facts.locator("#local-thumb")
    expect(local).to_be_visible()
    assert local.evaluate("img => img.naturalWidth") == 320
    card = page.locator("#results article.card").first
    expect(card.get_by_role("heading")).to_have_text("Lighthouse at dusk")
    expect(card.locator("img.thumb")).to_be_visible()
    screenshot(page, "upload-with-thumbnails")
