"""Web fixtures: real declarations on the devnet, `iscc-registry serve` as a real process, and
Debian's Chromium driven by Playwright (never a browser Playwright downloads)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pictures import picture
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from web_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    HOSTILE_GATEWAY,
    MAX_UPLOAD_MB,
    Declared,
    Site,
)

from registry.chain.contract import Registry
from registry.chain.deployment import Deployment
from registry.chain.devnet import Devnet, deploy_registry, dev_account, free_port
from registry.chain.submit import declare_direct
from registry.iscc.generate import generate

CLI = str(Path(sys.executable).parent / "iscc-registry")


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def site(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A fresh registry with three declarations by two declarers, served by a real
    `iscc-registry serve` (with its in-process indexer) that accepts uploads up to 1 MB."""
    folder = tmp_path_factory.mktemp("web")
    chain = Registry.open(Deployment.load(devnet.deployment_path))
    deployment = deploy_registry(chain.w3, dev_account(0))
    registry = Registry.open(deployment)
    alice, bob = dev_account(1), dev_account(2)

    harbour = folder / "harbour.png"
    picture(1).save(harbour)
    poem = folder / "poem.txt"
    poem.write_text("Roses are red, violets are blue, the registry knows who declared you. " * 20)
    notes = folder / "notes.md"
    notes.write_text("# Field notes\n\nThe tide came in at seven and left at noon. " * 30)
    files = {}
    for key, path, who, gateway in [
        ("harbour", harbour, alice, "https://example.com/{iscc-id}"),
        ("poem", poem, alice, ""),
        ("notes", notes, bob, HOSTILE_GATEWAY),
    ]:
        result = generate(path)
        receipt = declare_direct(
            registry, who, result.iscc, result.datahash, result.metahash, gateway
        )
        files[key] = Declared(path, result, str(receipt.iscc_id), who, gateway)

    with _served(folder, deployment, lambda url: _declarations(url) == len(files)) as url:
        yield Site(url, files, folder)


@pytest.fixture(scope="module")
def conflict_site(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A fresh registry where a second declarer declared a re-encoded copy of a picture."""
    folder = tmp_path_factory.mktemp("web-conflicts")
    chain = Registry.open(Deployment.load(devnet.deployment_path))
    deployment = deploy_registry(chain.w3, dev_account(0))
    registry = Registry.open(deployment)
    original = folder / "lighthouse.png"
    picture(9).save(original)
    copy = folder / "lighthouse-copy.jpg"
    picture(9).resize((240, 180)).save(copy, "JPEG", quality=70)
    files = {}
    for key, path, who in [("original", original, dev_account(1)), ("copy", copy, dev_account(2))]:
        result = generate(path)
        receipt = declare_direct(registry, who, result.iscc, result.datahash, result.metahash)
        files[key] = Declared(path, result, str(receipt.iscc_id), who, "")

    def detected(url: str) -> bool:
        return len(_get_json(url + "/v1/conflicts")["conflicts"]) == 1

    with _served(folder, deployment, detected) as url:
        yield Site(url, files, folder)


def _declarations(url: str) -> int:
    return _get_json(url + "/health")["declarations"]


@contextmanager
def _served(folder: Path, deployment: Deployment, ready: Callable[[str], bool]) -> Iterator[str]:
    """`iscc-registry serve` on the deployment, with its home in `folder`, once `ready(url)`."""
    home = folder / "home"
    deployment.save(home / "deployment.json")
    environ = {
        **os.environ,
        "ISCC_REGISTRY_HOME": str(home),
        "ISCC_REGISTRY_MAX_UPLOAD_MB": str(MAX_UPLOAD_MB),
    }
    port = free_port()
    proc = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    # Start-up and indexing take what they take on a busy machine; the bound only catches a hang.
    deadline = time.monotonic() + 600
    while True:
        try:
            if ready(url):
                break
        except OSError:
            pass
        if proc.poll() is not None:
            pytest.fail(f"serve exited: {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("serve did not index the declarations within 600 s")
        time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    stderr = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in stderr, stderr


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # Playwright gives every launch a fresh, temporary --user-data-dir of its own.
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


def _watched_page(browser: Browser, **options: Any) -> Iterator[Page]:
    context = browser.new_context(**options)
    page = context.new_page()
    dialogs: list[str] = []
    # Any alert() means markup or script from a declarer ran in the page.
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert dialogs == [], f"a dialog opened: {dialogs}"
    assert errors == [], f"script errors in the page: {errors}"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    yield from _watched_page(browser, viewport={"width": 1100, "height": 900})


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    yield from _watched_page(
        browser, viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True
    )
