"""The fixes of issue 22 in a real browser: the progress bar only while uploading, a spinner
and Cancel while computing, HTML error pages for browsers, each error said once, declarer pages
paginated, compact phone results, one naming of units, "not compared" only when not compared,
and a text upload never shown as an excerpt of its own declaration."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import MANY
from pictures import picture
from playwright.sync_api import Page, Route, expect
from web_helpers import PHONE, Site, accessibility_violations, screenshot

pytestmark = pytest.mark.chain


def test_progress_bar_shows_only_while_uploading(page: Page, site: Site) -> None:
    transfer = page.locator("#transfer")
    page.goto(site.url + "/")
    expect(transfer).to_be_hidden()
    page.set_input_files("#file", str(site.files["harbour"].path))
    expect(page.locator("#results .verdict")).to_be_visible()
    expect(transfer).to_be_hidden()
    expect(page.locator("#spinner")).to_be_hidden()
    expect(page.get_by_role("button", name="Cancel")).to_be_hidden()

    empty = site.folder / "empty.txt"
    empty.write_bytes(b"")
    page.set_input_files("#file", str(empty))
    expect(page.get_by_role("alert")).to_have_text("Could not check this file: the upload is empty")
    expect(transfer).to_be_hidden()


# Records which of the progress bar, the spinner and Cancel are displayed (as CSS lays them
# out, so a rule overriding `hidden` shows) each time the page changes.
_RECORD_STATES = """
window.__states = [];
new MutationObserver(() => {
  const shown = ["transfer", "spinner", "cancel"].filter((id) => {
    const element = document.getElementById(id);
    return element && getComputedStyle(element).display !== "none";
  }).join("+");
  if (window.__states[window.__states.length - 1] !== shown) window.__states.push(shown);
}).observe(document, { subtree: true, childList: true, attributes: true });
"""


def test_spinner_and_cancel_while_computing(page: Page, site: Site) -> None:
    page.add_init_script(_RECORD_STATES)
    page.goto(site.url + "/")
    page.set_input_files("#file", str(site.files["poem"].path))
    expect(page.locator("#results .verdict")).to_be_visible()
    states = [s for s in page.evaluate("() => window.__states") if s]
    # Uploading: the bar and Cancel; computing: the spinner and Cancel; then neither.
    assert states == ["transfer+cancel", "spinner+cancel"], states
    assert page.evaluate("() => window.__states.at(-1)") == ""


def test_cancel_stops_an_upload(page: Page, site: Site) -> None:
    held: list[Route] = []
    # The request is held back, so the page stays busy until cancelled.
    page.route("**/upload?*", lambda route: held.append(route))
    page.goto(site.url + "/")
    poem = site.files["poem"]
    page.set_input_files("#file", str(poem.path))
    cancel = page.get_by_role("button", name="Cancel")
    expect(cancel).to_be_visible()
    screenshot(page, "upload-busy")
    cancel.click()
    expect(page.get_by_role("status")).to_have_text(f"Cancelled: {poem.path.name} was not checked.")
    expect(page.locator("#spinner")).to_be_hidden()
    expect(page.locator("#transfer")).to_be_hidden()
    expect(cancel).to_be_hidden()
    expect(page.locator("#results")).to_be_empty()
    assert len(held) == 1


def test_browsers_get_error_pages_and_programs_json(page: Page, site: Site) -> None:
    answer = page.goto(site.url + "/no/such/page")
    assert answer is not None and answer.status == 404
    assert answer.headers["content-type"].startswith("text/html")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.get_by_role("alert")).to_have_text("There is no page at /no/such/page.")
    screenshot(page, "error-unknown-url")
    assert accessibility_violations(page) == []

    # An API address opened in a browser: the API's own message, as a page.
    answer = page.goto(site.url + "/v1/resolve?q=nonsense")
    assert answer is not None and answer.status == 400
    expect(page.get_by_role("alert")).to_contain_text("cannot resolve 'nonsense'")
    answer = page.goto(site.url + "/v1/search")
    assert answer is not None and answer.status == 422
    expect(page.get_by_role("alert")).to_contain_text("iscc: Field required")

    # Programs keep JSON, whatever else they accept.
    for accept in ("*/*", "application/json", "application/json, text/html"):
        api = page.request.get(site.url + "/no/such/page", headers={"Accept": accept})
        assert api.status == 404
        assert api.json()["error"] == "not-found", accept


def test_a_bad_search_says_what_is_wrong_once(page: Page, site: Site) -> None:
    answer = page.goto(f"{site.url}/search?q=not-a-code")
    assert answer is not None and answer.status == 400
    text = page.locator("main").inner_text()
    assert text.count("not-a-code") == 1, text
    assert text.count("40 hex digits") == 1, text
    assert "'" not in text, f"Python quoting on the page: {text}"
    screenshot(page, "search-invalid-once")

    answer = page.goto(f"{site.url}/declarer/ISCC:nothing")
    assert answer is not None and answer.status == 400
    expect(page.get_by_role("alert")).to_have_text(
        "“ISCC:nothing” is not an address (0x and 40 hex digits)"
    )


def test_declarer_page_is_paginated(page: Page, conflict_site: Site) -> None:
    carol = conflict_site.files["note-00"].declarer.address
    ids = [conflict_site.files["same"].iscc_id]
    ids += [conflict_site.files[f"note-{n:02d}"].iscc_id for n in range(MANY)]
    page.goto(f"{conflict_site.url}/declarer/{carol}")
    expect(page.locator("#verdict .headline")).to_have_text(f"{len(ids)} declarations, 1 revoked")
    cards = page.locator("article.card h3 a")
    first_page = [cards.nth(i).get_attribute("href") for i in range(cards.count())]
    assert first_page == [f"/declaration/{i}" for i in ids[:20]]
    expect(page.get_by_role("navigation", name="Pages")).to_contain_text("Page 1 of 2")
    # The page is this declarer's: its cards do not repeat who declared them.
    expect(page.locator("article.card .facts a")).to_have_count(0)
    screenshot(page, "declarer-page-1")
    page.get_by_role("link", name="Next").click()
    expect(page).to_have_url(f"{conflict_site.url}/declarer/{carol}?page=2")
    second_page = [cards.nth(i).get_attribute("href") for i in range(cards.count())]
    assert second_page == [f"/declaration/{i}" for i in ids[20:]]
    expect(page.locator("ol.cards")).to_have_attribute("start", "21")
    assert accessibility_violations(page) == []
    page.get_by_role("link", name="Previous").click()
    expect(page).to_have_url(f"{conflict_site.url}/declarer/{carol}?page=1")


def test_declarer_page_filters_its_conflicts(page: Page, conflict_site: Site) -> None:
    same = conflict_site.files["same"]
    page.goto(f"{conflict_site.url}/declarer/{same.declarer.address}")
    verdict = page.locator("#verdict")
    expect(verdict).to_contain_text("Contested: 1 declaration with open conflicts")
    verdict.get_by_role("link", name="only those with conflicts (1)").click()
    expect(page).to_have_url(
        f"{conflict_site.url}/declarer/{same.declarer.address}?conflicted=true"
    )
    links = page.locator("article.card h3 a")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", f"/declaration/{same.iscc_id}")
    expect(page.locator("article.card .badges")).to_contain_text("Contested: 2 open conflicts")
    screenshot(page, "declarer-conflicted-only")
    page.locator("#verdict").get_by_role("link", name="this declarer's conflicts").click()
    expect(page).to_have_url(
        f"{conflict_site.url}/conflicts?declarer={same.declarer.address}&status=all"
    )
    expect(page.locator("li.conflict-card")).to_have_count(2)


def test_phone_result_is_compact(browser: Any, site: Site) -> None:
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.goto(site.url + "/")
    # A re-encoded copy: one declaration, similar on three units (the longest badge).
    copy = site.folder / "harbour-phone.jpg"
    picture(1).resize((300, 225)).save(copy, "JPEG", quality=90)
    page.set_input_files("#file", str(copy))
    expect(page.locator("#results .verdict")).to_be_visible()
    height = page.evaluate("() => document.documentElement.scrollHeight")
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    screenshot(page, "phone-upload-result")
    context.close()
    assert overflow <= 0, f"the result scrolls sideways by {overflow}px"
    # The issue measured 4,843 px for this result; two screens of a phone is the budget.
    assert height <= 2 * PHONE["viewport"]["height"], height


def test_units_have_one_name_and_are_compared_when_compared(page: Page, site: Site) -> None:
    copy = site.folder / "harbour-small.jpg"
    picture(1).resize((200, 150)).save(copy, "JPEG", quality=60)
    page.goto(site.url + "/")
    page.set_input_files("#file", str(copy))
    card = page.locator("#results article.card").first
    expect(card.locator(".badges")).to_contain_text("similar on Image-Code")
    card.locator("summary").click()
    rows = card.locator("table.compare tbody tr")
    expect(rows).to_have_count(4)
    compared = {
        rows.nth(i).locator("th").inner_text(): rows.nth(i).locator("td").inner_text()
        for i in range(4)
    }
    assert set(compared) == {"Meta-Code", "Image-Code", "Data-Code", "Instance-Code"}
    # All four units exist on both sides: each is compared, even where they differ.
    assert not any("not compared" in v for v in compared.values()), compared
    assert compared["Instance-Code"] == "different bytes"
    assert compared["Data-Code"].endswith("of 64 bits differ)")
    text = page.locator("main").inner_text()
    for raw in ("CONTENT-IMAGE", "CONTENT-", "META,", "DATA,"):
        assert raw not in text, f"{raw} on the page"
    screenshot(page, "upload-units-compared")


def test_text_upload_is_not_an_excerpt_of_its_own_declaration(page: Page, site: Site) -> None:
    poem = site.files["poem"]
    # The service does find the text in the poem's own segments ...
    answer = page.request.post(
        f"{site.url}/v1/match?filename={poem.path.name}",
        data=poem.path.read_bytes(),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert [s["declaration"]["iscc_id"] for s in answer.json()["snippets"]] == [poem.iscc_id]
    # ... but the page shows the declaration once, as the very same file.
    page.goto(site.url + "/")
    page.set_input_files("#file", str(poem.path))
    expect(page.locator("#results .verdict .headline")).to_have_text(
        "Declared: this very file is declared."
    )
    cards = page.locator("#results article.card")
    expect(cards).to_have_count(1)
    expect(cards.locator(".badges")).to_contain_text("Same file")
    assert "excerpt" not in cards.inner_text().lower()
    expect(page.locator(f'#results article a[href="/declaration/{poem.iscc_id}"]')).to_have_count(1)
    screenshot(page, "upload-text-declared")
