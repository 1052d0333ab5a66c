"""The pages in a real browser against a real service: upload, results, declaration, declarer,
search, upload errors, hostile declarer strings, and axe-core on every page."""

from __future__ import annotations

from pathlib import Path

import pytest
from pictures import picture
from playwright.sync_api import Page, expect
from web_helpers import (
    HOSTILE_GATEWAY,
    MAX_UPLOAD_MB,
    Site,
    accessibility_violations,
    screenshot,
)

from registry.chain.iscc_id import IsccId

pytestmark = pytest.mark.chain


def _check(page: Page, name: str) -> None:
    """Screenshot the page and hold it to axe-core."""
    screenshot(page, name)
    assert accessibility_violations(page) == []


def _upload(page: Page, site: Site, path: Path) -> None:
    page.goto(site.url + "/")
    page.set_input_files("#file", str(path))


def test_upload_declared_file_shows_its_declaration(page: Page, site: Site) -> None:
    harbour = site.files["harbour"]
    page.goto(site.url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Who declared this file?")
    expect(page.locator("main")).to_contain_text("holds 3 declarations")
    _check(page, "upload-home")

    page.set_input_files("#file", str(harbour.path))
    verdict = page.locator("#results .verdict")
    expect(verdict.locator(".headline")).to_have_text("Declared: this very file is declared.")
    expect(verdict).to_contain_text("Uncontested")
    results = page.locator("#results")
    # Every unit of the uploaded file's ISCC is named and explained; each copies in full.
    expect(results.locator(f'.file-facts [data-copy="{harbour.result.iscc}"]')).to_have_count(1)
    units = page.locator("#results details.units")
    for unit in harbour.result.units:
        expect(units.locator(f'[data-copy="{unit}"]')).to_have_count(1)
    expect(units).to_contain_text("Image-Code")
    expect(units).to_contain_text("Perceptual hash of the picture")
    # The declaration is shown once: the same file, and the top similar match at 100 %.
    cards = page.locator("#results article.card")
    expect(cards).to_have_count(1)
    card = cards.first
    expect(card.get_by_role("link", name=harbour.iscc_id)).to_have_attribute(
        "href", f"/declaration/{harbour.iscc_id}"
    )
    expect(card.locator(f'a[href="/declarer/{harbour.declarer.address}"]')).to_have_count(1)
    expect(card.locator(".badges")).to_contain_text("Same file")
    expect(card.locator(".badges")).to_contain_text("100 % similar on")
    expect(card).to_contain_text("no conflicts recorded")
    _check(page, "upload-declared-result")


def test_upload_reencoded_copy_is_similar(page: Page, site: Site) -> None:
    copy = site.folder / "holiday.jpg"
    picture(1).resize((200, 150)).save(copy, "JPEG", quality=60)
    _upload(page, site, copy)
    expect(page.locator("#results .verdict .headline")).to_have_text(
        "Not declared as is, but similar content is declared."
    )
    top = page.locator("#results article.card").first
    expect(top).to_contain_text(site.files["harbour"].iscc_id)
    expect(top.locator(".badges")).to_contain_text("% similar on Image-Code")
    _check(page, "upload-similar-result")


def test_upload_unknown_file_shows_no_match(page: Page, site: Site) -> None:
    stranger = site.folder / "unrelated-shapes.png"
    picture(77).rotate(90).save(stranger)
    _upload(page, site, stranger)
    expect(page.locator("#results .verdict .headline")).to_have_text(
        "No match: nobody has declared this file or anything like it in this registry."
    )
    expect(page.locator("#results article.card")).to_have_count(0)
    # Not a dead end: the next step is declaring it.
    expect(
        page.locator("#results .verdict").get_by_role("link", name="Declare it as yours")
    ).to_have_attribute("href", "#declare")
    expect(page.locator("#declare")).to_contain_text("iscc-registry declare unrelated-shapes.png")
    _check(page, "upload-no-match")


def test_declaration_page(page: Page, site: Site) -> None:
    harbour = site.files["harbour"]
    page.goto(site.url + "/")
    page.set_input_files("#file", str(harbour.path))
    page.locator("#results article.card").first.get_by_role("link", name=harbour.iscc_id).click()
    expect(page).to_have_url(f"{site.url}/declaration/{harbour.iscc_id}")
    main = page.locator("main")
    expect(main.locator(f'[data-copy="{harbour.iscc_id}"]').first).to_be_attached()
    expect(main.locator(f'[data-copy="{harbour.result.iscc}"]').first).to_be_attached()
    expect(main.locator(f'[data-copy="{harbour.result.datahash}"]').first).to_be_attached()
    expect(main).to_contain_text("Declared by")
    expect(main).to_contain_text("UTC")
    # The transaction is shown by its hash (no explorer is assumed), the gateway as a link.
    tx = page.locator("dt:text-is('Transaction') + dd button.copy")
    expect(tx).to_have_attribute("data-copy", _tx_hash(page, site, harbour.iscc_id))
    gateway = f"https://example.com/{harbour.iscc_id}"
    expect(page.get_by_role("link", name=gateway)).to_have_attribute("href", gateway)
    _check(page, "declaration-page")


def _tx_hash(page: Page, site: Site, iscc_id: str) -> str:
    answer = page.request.get(f"{site.url}/v1/resolve", params={"q": iscc_id})
    return answer.json()["records"][0]["tx_hash"]


def test_search_by_address_opens_declarer_page(page: Page, site: Site) -> None:
    alice = site.files["harbour"].declarer
    page.goto(site.url + "/")
    page.get_by_label("Look up an ISCC-ID, ISCC-CODE, datahash or declarer address").fill(
        alice.address.lower()
    )
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(f"{site.url}/declarer/{alice.address}")
    expect(page.get_by_role("heading", level=1).locator("button.copy")).to_have_attribute(
        "data-copy", alice.address
    )
    expect(page.locator("#verdict .headline")).to_have_text("2 declarations")
    expect(page.locator("#verdict")).to_contain_text("Uncontested")
    links = page.locator("article.card h3 a")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert hrefs == [
        f"/declaration/{site.files['harbour'].iscc_id}",
        f"/declaration/{site.files['poem'].iscc_id}",
    ]
    _check(page, "declarer-page")


def test_search_by_code_datahash_and_id(page: Page, site: Site) -> None:
    poem = site.files["poem"]
    page.goto(f"{site.url}/search?q={poem.result.iscc}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("ISCC-CODE")
    card = page.locator("article.card")
    expect(card).to_have_count(1)
    expect(card).to_contain_text(poem.iscc_id)
    expect(card.locator(".badges")).to_contain_text("100 % similar")
    _check(page, "search-iscc-code")

    page.goto(f"{site.url}/search?q={poem.result.datahash}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Datahash")
    expect(page.locator("article.card")).to_have_count(1)
    expect(page.locator("#verdict .headline")).to_have_text("Declared: this very file is declared.")

    page.goto(f"{site.url}/search?q={poem.iscc_id}")
    expect(page).to_have_url(f"{site.url}/declaration/{poem.iscc_id}")


def test_search_errors_are_pages(page: Page, site: Site) -> None:
    answer = page.goto(f"{site.url}/search?q=not-a-code")
    assert answer is not None and answer.status == 400
    expect(page.get_by_role("alert")).to_have_text(
        "“not-a-code” is not something this registry can look up."
    )
    expect(
        page.get_by_label("Look up an ISCC-ID, ISCC-CODE, datahash or declarer address")
    ).to_have_value("not-a-code")
    _check(page, "search-invalid")

    # A well-formed ISCC-ID one microsecond after a real one: minted by nobody.
    minted = IsccId.parse(site.files["poem"].iscc_id)
    unknown = str(IsccId(body=minted.body + (1 << 12), realm=minted.realm))
    answer = page.goto(f"{site.url}/declaration/{unknown}")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("alert")).to_have_text(f"no declaration indexed for ISCC-ID {unknown}")

    nobody = "0x" + "ab" * 20
    answer = page.goto(f"{site.url}/declarer/{nobody}")
    assert answer is not None and answer.status == 404
    expect(page.locator("main")).to_contain_text("this address has declared nothing")


def test_oversized_upload_is_refused(page: Page, site: Site) -> None:
    big = site.folder / "big.bin"
    big.write_bytes(b"\0" * (MAX_UPLOAD_MB * 1024 * 1024 + 1))
    _upload(page, site, big)
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(
        f"Could not check this file: it is larger than this service accepts ({MAX_UPLOAD_MB} MB)."
    )
    _check(page, "upload-too-large-in-page")

    # With the page's own check out of the way, the service refuses it too, and says why.
    page.reload()
    page.evaluate("() => { document.getElementById('upload').dataset.maxBytes = '1e12'; }")
    page.set_input_files("#file", str(big))
    expect(alert).to_contain_text(
        "Could not check this file: the upload is larger than this service accepts"
    )
    expect(page.locator("#results")).to_be_empty()
    screenshot(page, "upload-too-large-by-service")


def test_invalid_and_empty_uploads_show_the_reason(page: Page, site: Site) -> None:
    fake = site.folder / "photo.jpg"
    fake.write_bytes(bytes(range(256)) * 8)
    _upload(page, site, fake)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Could not check this file: ")
    message = alert.inner_text()
    assert "Traceback" not in message and "answered" not in message, message
    expect(page.locator("#results")).to_be_empty()
    _check(page, "upload-invalid-file")

    empty = site.folder / "empty.txt"
    empty.write_bytes(b"")
    page.set_input_files("#file", str(empty))
    expect(alert).to_have_text("Could not check this file: the upload is empty")
    screenshot(page, "upload-empty-file")


def test_declarer_strings_never_become_markup_or_links(page: Page, site: Site) -> None:
    notes = site.files["notes"]
    page.goto(f"{site.url}/declaration/{notes.iscc_id}")
    gateway = page.locator("dt:text-is('Gateway') + dd").first
    expect(gateway).to_contain_text(HOSTILE_GATEWAY)
    expect(gateway).to_contain_text("not a web address, so not linked")
    expect(gateway.locator("a")).to_have_count(0)
    assert page.locator("main img").count() == 0
    assert page.locator("a[href^='javascript:' i]").count() == 0
    # A second wall: the pages forbid inline script outright.
    policy = page.request.get(f"{site.url}/declaration/{notes.iscc_id}").headers[
        "content-security-policy"
    ]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    _check(page, "declaration-hostile-gateway")


def test_phone_width_has_no_sideways_scroll(phone: Page, site: Site) -> None:
    page = phone
    poem = site.files["poem"]
    pages = {
        "home": "/",
        "conflicts": "/conflicts",
        "declaration": f"/declaration/{poem.iscc_id}",
        "declarer": f"/declarer/{poem.declarer.address}",
    }
    for name, path in pages.items():
        page.goto(site.url + path)
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"
        _check(page, f"phone-{name}")
