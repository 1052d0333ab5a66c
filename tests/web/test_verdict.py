"""Verdict first and shareable results: every result and declaration page opens with who holds
priority (who, when, which chain), whether it is contested, and what to do next, within the
first screenful on a phone and a desktop; a result has an address that shows it again."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request, expect
from web_helpers import (
    DESKTOP,
    PHONE,
    Declared,
    Site,
    accessibility_violations,
    in_first_viewport,
    screenshot,
)

pytestmark = pytest.mark.chain

SIZES = {"phone": PHONE, "desktop": DESKTOP}


def _open_conflicts(site: Site) -> int:
    import json
    import urllib.request

    with urllib.request.urlopen(site.url + "/v1/conflicts?status=open", timeout=10) as answer:
        return len(json.loads(answer.read())["conflicts"])


def _expect_holder(page: Page, holder: Declared, title: str | None) -> None:
    """The verdict names the priority holder: its title (linked, unless it is the page's own
    declaration), declarer, time and chain."""
    box = page.locator("#verdict .holder")
    if title is None:
        expect(box).to_contain_text("This declaration: declared by")
        expect(box.locator(f'a[href="/declaration/{holder.iscc_id}"]')).to_have_count(0)
    else:
        expect(box.get_by_role("link", name=title)).to_have_attribute(
            "href", f"/declaration/{holder.iscc_id}"
        )
    expect(box.locator(f'a[href="/declarer/{holder.declarer.address}"]')).to_be_visible()
    expect(box.locator("time")).to_have_attribute("datetime", _declared_iso(holder))
    expect(box).to_contain_text("on Hardhat devnet")


def _declared_iso(declared: Declared) -> str:
    from registry.chain.iscc_id import IsccId

    return IsccId.parse(declared.iscc_id).datetime.isoformat()


@pytest.mark.parametrize("size", sorted(SIZES))
def test_later_copy_upload_names_the_earlier_holder_first(
    browser: Browser, conflict_site: Site, size: str
) -> None:
    original, copy = conflict_site.files["original"], conflict_site.files["copy"]
    context = browser.new_context(**SIZES[size])
    page = context.new_page()
    page.goto(conflict_site.url + "/")
    page.set_input_files("#file", str(copy.path))
    verdict = page.locator("#verdict")
    expect(verdict.locator(".headline")).to_have_text(
        "Declared, but not first: an earlier declaration of similar content holds priority."
    )
    _expect_holder(page, original, "Lighthouse at dusk")
    expect(verdict).to_contain_text("This very file was declared 1 time after it.")
    # Every conflict here involves the shown declarations; the API counts them.
    count = _open_conflicts(conflict_site)
    expect(verdict.locator(".badge.contested")).to_have_text(f"Contested: {count} open conflicts")
    expect(
        verdict.get_by_role("link", name=f"Review the {count} open conflicts")
    ).to_have_attribute("href", f"/conflicts?iscc_id={original.iscc_id}")
    in_first_viewport(page, "#verdict")
    screenshot(page, f"verdict-later-copy-{size}")
    assert accessibility_violations(page) == []
    context.close()


@pytest.mark.parametrize("size", sorted(SIZES))
def test_declaration_pages_say_who_holds_priority(
    browser: Browser, conflict_site: Site, size: str
) -> None:
    original, copy = conflict_site.files["original"], conflict_site.files["copy"]
    context = browser.new_context(**SIZES[size])
    page = context.new_page()
    page.goto(f"{conflict_site.url}/declaration/{copy.iscc_id}")
    verdict = page.locator("#verdict")
    expect(verdict.locator(".headline")).to_have_text(
        "Does not hold priority: the same content was declared earlier by someone else."
    )
    _expect_holder(page, original, "Lighthouse at dusk")
    expect(verdict.locator(".badge.contested")).to_have_text("Contested: 2 open conflicts")
    expect(
        verdict.get_by_role("link", name="Open the declaration holding priority")
    ).to_be_visible()
    in_first_viewport(page, "#verdict")
    screenshot(page, f"verdict-declaration-later-{size}")
    assert accessibility_violations(page) == []

    page.goto(f"{conflict_site.url}/declaration/{original.iscc_id}")
    expect(verdict.locator(".headline")).to_have_text(
        "Holds priority: no earlier declaration of this content is recorded."
    )
    _expect_holder(page, original, None)
    expect(verdict.locator(".badge.contested")).to_have_text("Contested: 2 open conflicts")
    in_first_viewport(page, "#verdict")
    screenshot(page, f"verdict-declaration-first-{size}")
    context.close()


@pytest.mark.parametrize("size", sorted(SIZES))
def test_byte_copy_and_unknown_file_verdicts(browser: Browser, site: Site, size: str) -> None:
    harbour = site.files["harbour"]
    context = browser.new_context(**SIZES[size])
    page = context.new_page()
    page.goto(site.url + "/")
    page.set_input_files("#file", str(harbour.path))
    verdict = page.locator("#verdict")
    expect(verdict.locator(".headline")).to_have_text("Declared: this very file is declared.")
    _expect_holder(page, harbour, f"Image declaration {harbour.iscc_id}")
    expect(verdict.locator(".badge.calm")).to_have_text("Uncontested")
    in_first_viewport(page, "#verdict")
    screenshot(page, f"verdict-declared-{size}")

    stranger = site.folder / f"stranger-{size}.bin"
    stranger.write_bytes(bytes(range(256)) * 40 + size.encode())
    page.set_input_files("#file", str(stranger))
    expect(verdict.locator(".headline")).to_have_text(
        "No match: nobody has declared this file or anything like it in this registry."
    )
    expect(verdict.get_by_role("link", name="Declare it as yours")).to_be_visible()
    in_first_viewport(page, "#verdict")
    screenshot(page, f"verdict-no-match-{size}")
    context.close()


def test_a_result_has_an_address_that_shows_it_again(page: Page, conflict_site: Site) -> None:
    copy = conflict_site.files["copy"]
    page.goto(conflict_site.url + "/")
    page.set_input_files("#file", str(copy.path))
    expect(page.locator("#verdict")).to_be_visible()
    expect(page).to_have_url(_result_url_pattern())
    address = page.url
    headline = page.locator("#verdict .headline").inner_text()
    cards = page.locator("#results article.card h4 a")
    linked = [cards.nth(i).get_attribute("href") for i in range(cards.count())]
    assert linked, "the upload found no declarations"

    # Opened afresh: the same verdict and declarations, and nothing uploaded.
    uploads: list[Request] = []
    page.on("request", lambda r: uploads.append(r) if r.method == "POST" else None)
    page.goto(address)
    expect(page.locator("#verdict .headline")).to_have_text(headline)
    assert [cards.nth(i).get_attribute("href") for i in range(cards.count())] == linked
    expect(page.locator("#result-title")).to_have_text(f"Result for {copy.path.name}")
    assert uploads == []
    in_first_viewport(page, "#verdict")
    screenshot(page, "result-shared")
    assert accessibility_violations(page) == []

    # Back leaves the result for the empty upload page; Forward brings it again.
    page.go_back()
    expect(page).to_have_url(conflict_site.url + "/")
    expect(page.locator("#results")).to_be_empty()
    page.go_forward()
    expect(page.locator("#verdict .headline")).to_have_text(headline)


def _result_url_pattern() -> Any:
    import re

    return re.compile(r".*/result\?iscc=ISCC%3A[A-Z0-9]+&datahash=1e20[0-9a-f]{64}.*")


def test_a_doctored_result_address_is_refused(page: Page, conflict_site: Site) -> None:
    original, copy = conflict_site.files["original"], conflict_site.files["copy"]
    # One file's ISCC-CODE with another file's datahash is no file at all.
    answer = page.goto(
        f"{conflict_site.url}/result?iscc={copy.result.iscc}&datahash={original.result.datahash}"
    )
    assert answer is not None and answer.status == 400
    expect(page.get_by_role("alert")).to_have_text(
        "the datahash is not the one of the file this ISCC-CODE names"
    )
