"""Declaring from the browser: an EIP-1193 provider injected into the page stands in for the
wallet extension and signs with a real devnet key (in Python, through an exposed function);
the page prepares the typed data with the service, relays the signature and follows the job
until the declaration is indexed. Wrong chain, refusal, relay limit and no wallet at all."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from playwright.sync_api import Browser, Page, expect
from web_helpers import DESKTOP, Site, accessibility_violations, screenshot

from registry.chain.declaration import SignedDeclaration
from registry.chain.devnet import dev_account

pytestmark = pytest.mark.chain

DEVNET_CHAIN_ID = 31337

# A wallet as an extension injects it: window.ethereum with request(). Its behaviour comes from
# window.__wallet, set by the test before any page script runs.
_PROVIDER = """
(() => {
  const wallet = window.__wallet;
  wallet.calls = [];
  window.ethereum = {
    async request({ method, params }) {
      wallet.calls.push(method);
      if (method === "eth_requestAccounts" || method === "eth_accounts") return [wallet.account];
      if (method === "eth_chainId") return "0x" + wallet.chainId.toString(16);
      if (method === "wallet_switchEthereumChain") {
        if (wallet.refuseSwitch) {
          const error = new Error("Unrecognized chain ID");
          error.code = 4902;
          throw error;
        }
        wallet.chainId = parseInt(params[0].chainId, 16);
        return null;
      }
      if (method === "eth_signTypedData_v4") {
        if (wallet.refuseSign) {
          const error = new Error("User rejected the request.");
          error.code = 4001;
          throw error;
        }
        return await window.walletSign(params[0], params[1]);
      }
      const error = new Error("Unsupported method " + method);
      error.code = 4200;
      throw error;
    },
  };
})();
"""


class Wallet:
    """The injected provider's key and what it was asked to sign."""

    def __init__(self, account: LocalAccount) -> None:
        self.account = account
        self.signed: list[dict[str, Any]] = []

    def sign(self, address: str, typed_data: str) -> str:
        assert address.lower() == self.account.address.lower()
        message = json.loads(typed_data)
        self.signed.append(message)
        signed = Account.sign_typed_data(self.account.key, full_message=message)
        return "0x" + bytes(signed.signature).hex()


def _wallet_page(
    browser: Browser, account: LocalAccount, chain_id: int = DEVNET_CHAIN_ID, **behaviour: bool
) -> tuple[Page, Wallet]:
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    wallet = Wallet(account)
    page.expose_function("walletSign", wallet.sign)
    settings = {"account": account.address, "chainId": chain_id, **behaviour}
    page.add_init_script(f"window.__wallet = {json.dumps(settings)};")
    page.add_init_script(_PROVIDER)
    return page, wallet


@pytest.fixture
def pages(browser: Browser) -> Iterator[list[Page]]:
    opened: list[Page] = []
    yield opened
    for page in opened:
        page.context.close()


def _new_file(site: Site, seed: int) -> Path:
    """A file unlike any other: random bytes, so nothing declared before resembles it."""
    path = site.folder / f"recording-{seed}.bin"
    path.write_bytes(random.Random(seed).randbytes(8192))
    return path


def _check_file(page: Page, site: Site, path: Path) -> None:
    page.goto(site.url + "/")
    page.set_input_files("#file", str(path))
    expect(page.locator("#verdict .headline")).to_have_text(
        "No match: nobody has declared this file or anything like it in this registry."
    )


def test_wallet_declares_through_the_relay_until_indexed(
    browser: Browser, wallet_site: Site, pages: list[Page]
) -> None:
    account = dev_account(1)
    page, wallet = _wallet_page(browser, account)
    pages.append(page)
    path = _new_file(wallet_site, 41)
    _check_file(page, wallet_site, path)
    declare = page.locator("#declare")
    expect(declare.get_by_role("heading")).to_have_text("Declare this file as yours")
    expect(declare).to_contain_text("Or declare it from the command line with your key:")
    screenshot(page, "wallet-before")
    assert accessibility_violations(page) == []
    declare.get_by_role("button", name="Declare with my wallet").click()

    status = declare.get_by_role("status")
    expect(status).to_have_text(re.compile(r"^Declared and indexed as ISCC:MAI"), timeout=60_000)
    link = status.get_by_role("link")
    iscc_id = link.inner_text()
    screenshot(page, "wallet-declared")
    assert page.evaluate("() => window.__wallet.calls") == [
        "eth_requestAccounts",
        "eth_chainId",
        "eth_signTypedData_v4",
    ]
    # What the wallet signed: this registry's domain and this file, checked as the relay does.
    [typed] = wallet.signed
    assert typed["primaryType"] == "Declaration"
    assert typed["domain"]["chainId"] == DEVNET_CHAIN_ID
    uploaded = page.request.post(
        f"{wallet_site.url}/v1/match?filename={path.name}",
        data=path.read_bytes(),
        headers={"Content-Type": "application/octet-stream"},
    ).json()["iscc"]
    assert typed["message"]["datahash"] == "0x" + uploaded["datahash"][4:]

    link.click()
    expect(page).to_have_url(f"{wallet_site.url}/declaration/{iscc_id}")
    expect(page.locator("#verdict .headline")).to_have_text(
        "Holds priority: no earlier declaration of this content is recorded."
    )
    expect(page.locator(f'#verdict a[href="/declarer/{account.address}"]')).to_be_visible()
    screenshot(page, "wallet-declaration-page")

    # The file now answers as declared, by the wallet's account.
    _ = page.goto(wallet_site.url + "/")
    page.set_input_files("#file", str(path))
    expect(page.locator("#verdict .headline")).to_have_text("Declared: this very file is declared.")
    expect(page.locator("#declare")).to_have_count(0)


def test_a_signature_the_page_relays_verifies_as_the_declarer(wallet_site: Site) -> None:
    """The typed data the service prepares is what `verify` checks: a signature over it by
    eth_account (as a wallet makes it) verifies as the declarer's."""
    import urllib.request

    account = dev_account(2)
    body = {
        "iscc_code": "ISCC:KEC3665PM3B4W657X5T3AF6CY3KIQDELARGNP2QA4P4TX7WNZAJ2P6A",
        "datahash": "1e20" + "f93bfecdc813a7f852e28fc71d72dfc452f03bc4060ed96976eb94f4bd2a4a1a",
        "declarer": account.address.lower(),
    }
    request = urllib.request.Request(
        wallet_site.url + "/v1/declarations/prepare",
        json.dumps(body).encode(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        prepared = json.loads(answer.read())
    signed = Account.sign_typed_data(account.key, full_message=prepared["typed_data"])
    relay = prepared["relay"] | {"signature": "0x" + bytes(signed.signature).hex()}
    declaration = SignedDeclaration.from_json(relay)
    declaration.verify()
    assert declaration.declarer == account.address


def test_wrong_chain_is_named_and_nothing_is_signed(
    browser: Browser, wallet_site: Site, pages: list[Page]
) -> None:
    page, wallet = _wallet_page(browser, dev_account(1), chain_id=1, refuseSwitch=True)
    pages.append(page)
    _check_file(page, wallet_site, _new_file(wallet_site, 43))
    page.get_by_role("button", name="Declare with my wallet").click()
    expect(page.locator("#declare-error")).to_have_text(
        "Your wallet is on Ethereum, but this registry is on Hardhat devnet (chain id 31337). "
        "Switch your wallet to Hardhat devnet and try again."
    )
    assert "wallet_switchEthereumChain" in page.evaluate("() => window.__wallet.calls")
    assert wallet.signed == []
    screenshot(page, "wallet-wrong-chain")
    assert accessibility_violations(page) == []


def test_a_wallet_that_switches_chain_goes_on(
    browser: Browser, wallet_site: Site, pages: list[Page]
) -> None:
    page, wallet = _wallet_page(browser, dev_account(0), chain_id=1)
    pages.append(page)
    _check_file(page, wallet_site, _new_file(wallet_site, 44))
    page.get_by_role("button", name="Declare with my wallet").click()
    expect(page.locator("#declare-status")).to_have_text(
        re.compile(r"^Declared and indexed as"), timeout=60_000
    )
    assert len(wallet.signed) == 1


def test_refusing_to_sign_declares_nothing(
    browser: Browser, wallet_site: Site, pages: list[Page]
) -> None:
    page, _wallet = _wallet_page(browser, dev_account(1), refuseSign=True)
    pages.append(page)
    relayed: list[str] = []
    page.on("request", lambda r: relayed.append(r.url) if "/v1/relay/" in r.url else None)
    _check_file(page, wallet_site, _new_file(wallet_site, 45))
    page.get_by_role("button", name="Declare with my wallet").click()
    expect(page.locator("#declare-error")).to_have_text(
        "You declined in your wallet; nothing was declared."
    )
    expect(page.get_by_role("button", name="Declare with my wallet")).to_be_enabled()
    assert relayed == []
    screenshot(page, "wallet-refused")


def test_relay_limit_is_said_clearly(
    browser: Browser, wallet_site: Site, pages: list[Page]
) -> None:
    # The service relays one declaration per declarer per minute: a fresh key's second one
    # within the minute is refused.
    account = Account.from_key("0x" + "5a" * 32)
    page, _wallet = _wallet_page(browser, account)
    pages.append(page)
    for seed, outcome in ((46, "status"), (47, "error")):
        _check_file(page, wallet_site, _new_file(wallet_site, seed))
        page.get_by_role("button", name="Declare with my wallet").click()
        if outcome == "status":
            expect(page.locator("#declare-status")).to_have_text(
                re.compile(r"^Declared and indexed as"), timeout=60_000
            )
    expect(page.locator("#declare-error")).to_have_text(
        re.compile(
            r"^The relay's limit is reached \(too many relay requests for this declarer; "
            r"retry in \d+ s\)\. Nothing was declared\. Try again later, or declare from the "
            r"command line below with --direct \(you pay the gas\)\.$"
        )
    )
    screenshot(page, "wallet-relay-limit")


def test_without_a_wallet_the_page_shows_the_command(page: Page, wallet_site: Site) -> None:
    path = _new_file(wallet_site, 48)
    _check_file(page, wallet_site, path)
    declare = page.locator("#declare")
    expect(declare.get_by_role("button", name="Declare with my wallet")).to_be_hidden()
    expect(declare).to_contain_text("No browser wallet found?")
    expect(declare.locator("pre")).to_have_text(
        f"iscc-registry declare {path.name} --key YOUR-KEY --via {wallet_site.url}"
    )
    screenshot(page, "wallet-none")


def test_prepare_refuses_what_it_cannot_sign(page: Page, wallet_site: Site) -> None:
    good = {
        "iscc_code": "ISCC:KEC3665PM3B4W657X5T3AF6CY3KIQDELARGNP2QA4P4TX7WNZAJ2P6A",
        "datahash": "1e20" + "f93bfecdc813a7f852e28fc71d72dfc452f03bc4060ed96976eb94f4bd2a4a1a",
        "declarer": dev_account(1).address,
    }
    for field, value, message in [
        ("declarer", "0x1234", "declarer is not an address: '0x1234'"),
        ("iscc_code", "ISCC:NOPE", "ISCC:NOPE"),
        ("datahash", "1e20abcd", "not a blake3 hash"),
    ]:
        answer = page.request.post(
            wallet_site.url + "/v1/declarations/prepare", data={**good, field: value}
        )
        assert answer.status == 400, (field, answer.text())
        assert message in answer.json()["message"], answer.json()
