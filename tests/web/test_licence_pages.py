"""A work's licences and its cases in a real browser, served by `iscc-registry serve` over a
devnet: an exclusive licence and an overlapping public one by another key, the licence
conflict's case and its timeline, and the case resolving itself when a grant is terminated."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from conftest import _get_json, _served, _wait_for
from eth_account import Account
from eth_utils import keccak
from licence_helpers import grant_on_chain, terminate_on_chain
from pictures import picture
from playwright.sync_api import Page, expect
from web_helpers import Declared, Site, accessibility_violations, screenshot

from registry.chain.contract import Registry
from registry.chain.deployment import Deployment
from registry.chain.devnet import Devnet, deploy_registry, dev_account
from registry.chain.submit import declare_direct
from registry.iscc.generate import generate
from registry.ledger.terms import Use

pytestmark = pytest.mark.chain

YEAR = 365 * 86_400
CAROL = Account.from_key(keccak(text="carol")).address
"""The licensee: holds no funds, needs none."""


@pytest.fixture(scope="module")
def licence_site(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Alice declares a film still and grants Carol an exclusive SVOD licence in Germany and
    Austria; Bob, who owns nothing, then grants everyone SVOD and AVOD worldwide over it."""
    folder = tmp_path_factory.mktemp("web-licences")
    chain = Registry.open(Deployment.load(devnet.deployment_path))
    deployment = deploy_registry(chain.w3, dev_account(0))
    registry = Registry.open(deployment)
    alice, bob = dev_account(1), dev_account(2)
    still = folder / "film-still.png"
    picture(21).save(still)
    result = generate(still)
    receipt = declare_direct(registry, alice, result.iscc, result.datahash, result.metahash)
    work = str(receipt.iscc_id)
    start = int(time.time()) - 86_400
    exclusive = grant_on_chain(
        registry, alice, work, licensee=CAROL, territories=("AT", "DE"),
        uses=int(Use.SVOD), start=start, end=start + 5 * YEAR, exclusive=True,
    )  # fmt: skip
    public = grant_on_chain(
        registry, bob, work, territories=(), worldwide=True, uses=int(Use.SVOD | Use.AVOD),
        start=start,
    )  # fmt: skip

    def detected(url: str) -> bool:
        found = _get_json(url + "/v1/cases?state=open")["cases"]
        return any(c["kind"] == "exclusive_overlap" for c in found)

    with _served(folder, deployment, detected) as url:
        site = Site(url, {"still": Declared(still, result, work, alice, "")}, folder)
        site.grants = {"exclusive": exclusive, "public": public}  # type: ignore[attr-defined]
        site.registry = registry  # type: ignore[attr-defined]
        yield site


def _case_of(site: Site, kind: str) -> dict:
    work = site.files["still"].iscc_id
    found = _get_json(f"{site.url}/v1/cases?work={work}")["cases"]
    return next(c for c in found if c["kind"] == kind)


def test_a_works_licences_are_a_table_on_a_phone(phone: Page, licence_site: Site) -> None:
    work = licence_site.files["still"].iscc_id
    phone.goto(f"{licence_site.url}/declaration/{work}")
    table = phone.locator("table.licences")
    expect(table).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(2)
    # One card per licence: nothing wider than the screen, every value next to its label.
    assert phone.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    cell = table.locator("tbody tr").first.locator("td[data-label='Where']")
    label = cell.evaluate("td => getComputedStyle(td, '::before').content")
    assert label == '"Where"'
    screenshot(phone, "licences-phone")
    assert accessibility_violations(phone) == []


def test_a_works_licences_and_its_case_until_a_termination_resolves_it(
    desktop: Page, licence_site: Site
) -> None:
    work = licence_site.files["still"].iscc_id
    carol = CAROL
    desktop.goto(f"{licence_site.url}/declaration/{work}")
    table = desktop.locator("table.licences")
    expect(table.locator("caption")).to_have_text("2 licences granted over this work, oldest first")
    expect(table.locator("thead th")).to_have_text(
        ["Who", "Where", "What use", "When", "Exclusive", "Status"]
    )
    exclusive, public = table.locator("tbody tr").nth(0), table.locator("tbody tr").nth(1)
    expect(exclusive.locator(f"a[href='/declarer/{carol}']")).to_have_count(1)
    expect(exclusive.locator("td[data-label='Where']")).to_have_text("AT, DE")
    expect(exclusive.locator("td[data-label='What use']")).to_have_text("SVOD")
    expect(exclusive.locator("td[data-label='When']")).to_have_text(
        re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC to \d{4}-\d\d-\d\d \d\d:\d\d UTC$")
    )
    expect(exclusive.locator("td[data-label='Exclusive']")).to_contain_text("Exclusive")
    expect(exclusive.locator(".badge")).to_have_text("In force")
    expect(public.locator("td[data-label='Who']")).to_contain_text("Everyone (public licence)")
    expect(public.locator("td[data-label='Where']")).to_have_text("World")
    expect(public.locator("td[data-label='What use']")).to_have_text("SVOD, AVOD")
    expect(public.locator("td[data-label='Exclusive']")).to_have_text("Not exclusive")
    expect(exclusive.locator("a.conflict-link")).to_contain_text(
        ["An exclusive licence overlaps another licence"]
    )
    case = _case_of(licence_site, "exclusive_overlap")
    cases = desktop.locator("ul.cases li")
    expect(desktop.locator(f"ul.cases a[href='/case/{case['id']}']")).to_have_text(
        "An exclusive licence overlaps another licence"
    )
    expect(cases.filter(has_text="An exclusive licence")).to_contain_text("Open")
    screenshot(desktop, "licences-desktop")
    assert accessibility_violations(desktop) == []

    # The case page: what overlaps, who answers, and the timeline.
    desktop.locator(f"ul.cases a[href='/case/{case['id']}']").click()
    expect(desktop.locator("h1")).to_contain_text("An exclusive licence overlaps another licence")
    expect(desktop.locator("#verdict .headline")).to_have_text(
        "Open: waiting for the parties to answer."
    )
    expect(desktop.locator("dd.overlap")).to_contain_text("SVOD in AT, DE")
    expect(desktop.locator("table.licences tbody tr")).to_have_count(2)
    expect(desktop.locator(f"ul.parties a[href='/declarer/{carol}']")).to_have_count(1)
    steps = desktop.locator("ol.case-steps > li")
    expect(steps).to_have_count(1)
    expect(steps.nth(0).locator("strong")).to_have_text("Opened")
    expect(steps.nth(0)).to_contain_text("by the registry")
    expect(steps.nth(0).locator("time")).to_have_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"))
    screenshot(desktop, "case-open")
    assert accessibility_violations(desktop) == []

    # Bob gives up his public licence: the overlap is gone, the case resolves itself.
    terminate_on_chain(
        licence_site.registry,  # type: ignore[attr-defined]
        dev_account(2),
        licence_site.grants["public"],  # type: ignore[attr-defined]
    )
    _wait_for(
        lambda: _case_of(licence_site, "exclusive_overlap")["state"] == "resolved",
        "the case's resolution",
        seconds=120,
    )
    desktop.reload()
    expect(desktop.locator("#verdict .headline")).to_have_text(re.compile(r"^Resolved: .+"))
    expect(steps).to_have_count(2)
    expect(steps.nth(1).locator("strong")).to_have_text("Resolved")
    expect(steps.nth(1)).to_contain_text("by the registry")
    expect(desktop.locator("dl")).to_contain_text("Still holds")
    screenshot(desktop, "case-resolved")
    desktop.goto(f"{licence_site.url}/declaration/{work}")
    public = desktop.locator("table.licences tbody tr").nth(1)
    expect(public.locator(".badge")).to_have_text("Terminated")


def test_an_unknown_or_malformed_case_is_a_readable_404_or_400(
    desktop: Page, licence_site: Site
) -> None:
    for case_id, status, words in [
        ("0x" + "00" * 32, 404, "no case"),
        ("not-a-case", 400, "not a case id"),
    ]:
        answer = desktop.goto(f"{licence_site.url}/case/{case_id}")
        assert answer is not None and answer.status == status
        expect(desktop.locator("main")).to_contain_text(words)
