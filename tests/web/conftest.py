"""Web fixtures: real declarations on the devnet, `iscc-registry serve` as a real process, and
Debian's Chromium driven by Playwright (never a browser Playwright downloads)."""

from __future__ import annotations

import base64
import io
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
    DESKTOP,
    HOSTILE_GATEWAY,
    MAX_UPLOAD_MB,
    PHONE,
    Declared,
    Site,
)

from registry.chain.actions import act_direct, make_action
from registry.chain.contract import Registry
from registry.chain.deployment import Deployment
from registry.chain.devnet import Devnet, deploy_registry, dev_account, free_port
from registry.chain.iscc_id import IsccId
from registry.chain.submit import declare_direct
from registry.iscc.generate import generate
from registry.metadata import canonicalize

CLI = str(Path(sys.executable).parent / "iscc-registry")


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def site(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A fresh registry with three declarations by two declarers, served by a real
    `iscc-registry serve` (with its in-process indexer) that accepts uploads up to 1 MB. The
    poem is declared as `declare` does it, with its metadata document (granular features), so
    uploads of text are also searched as excerpts."""
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
    documents = []
    for key, path, who, gateway in [
        ("harbour", harbour, alice, "https://example.com/{iscc-id}"),
        ("poem", poem, alice, ""),
        ("notes", notes, bob, HOSTILE_GATEWAY),
    ]:
        result = generate(path)
        metahash = result.metahash
        if key == "poem":
            document = result.declaration_document()
            assert document is not None
            metahash = canonicalize(document).metahash
            documents.append(document)
        receipt = declare_direct(registry, who, result.iscc, result.datahash, metahash, gateway)
        files[key] = Declared(path, result, str(receipt.iscc_id), who, gateway)

    with _served(folder, deployment, lambda url: _declarations(url) == len(files)) as url:
        for document in documents:
            _post_json(url + "/v1/metadata", document)
        _wait_for(lambda: _excerpts_of(url, poem) > 0, "the poem's segments")
        yield Site(url, files, folder)


def _post_json(url: str, body: Any) -> Any:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _excerpts_of(url: str, path: Path) -> int:
    request = urllib.request.Request(
        f"{url}/v1/match?filename={path.name}",
        path.read_bytes(),
        {"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return len(json.loads(response.read())["snippets"])


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not arrive within {seconds:.0f} s")
        time.sleep(0.3)


def _thumbnail(seed: int) -> str:
    """A small PNG of picture(seed) as a data URL, as iscc-sdk puts thumbnails in metadata."""
    buffer = io.BytesIO()
    picture(seed).resize((64, 48)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# Declarations by the third key in conflict_site: more than one page of a declarer's page.
MANY = 23


@pytest.fixture(scope="module")
def conflict_site(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A fresh registry as the issue tried it: one key declared a picture (with a metadata
    document naming it, its type, size and a thumbnail); a second key later declared a
    re-encoded copy of it, a third key a byte copy, so three conflicts exist; the third key
    also declared MANY small texts, one of them since updated and transferred, one revoked."""
    folder = tmp_path_factory.mktemp("web-conflicts")
    chain = Registry.open(Deployment.load(devnet.deployment_path))
    deployment = deploy_registry(chain.w3, dev_account(0))
    registry = Registry.open(deployment)
    original = folder / "lighthouse.png"
    picture(9).save(original)
    copy = folder / "lighthouse-copy.jpg"
    picture(9).resize((240, 180)).save(copy, "JPEG", quality=70)
    same = folder / "lighthouse-same.png"
    same.write_bytes(original.read_bytes())
    document = {
        "name": "Lighthouse at dusk",
        "mediatype": "image/png",
        "filesize": original.stat().st_size,
        "thumbnail": _thumbnail(9),
    }
    files = {}
    for key, path, who in [
        ("original", original, dev_account(1)),
        ("copy", copy, dev_account(2)),
        ("same", same, dev_account(0)),
    ]:
        result = generate(path)
        metahash = canonicalize(document).metahash if key == "original" else result.metahash
        receipt = declare_direct(registry, who, result.iscc, result.datahash, metahash)
        files[key] = Declared(path, result, str(receipt.iscc_id), who, "")
    for n in range(MANY):
        path = folder / f"note-{n:02d}.txt"
        path.write_text(f"Note {n}: the lamp was lit at {n % 12 + 1} o'clock. " * 8)
        result = generate(path)
        receipt = declare_direct(registry, dev_account(0), result.iscc, result.datahash)
        files[f"note-{n:02d}"] = Declared(path, result, str(receipt.iscc_id), dev_account(0), "")
    # Later events for the history timeline: one note updated then transferred, one revoked.
    carol = dev_account(0)
    changed, revoked = files[f"note-{MANY - 3:02d}"].iscc_id, files[f"note-{MANY - 1:02d}"].iscc_id
    act_direct(
        registry,
        carol,
        make_action("update", IsccId.parse(changed), gateway="https://example.org/{iscc-id}"),
    )
    act_direct(
        registry, carol, make_action("transfer", IsccId.parse(changed), to=dev_account(1).address)
    )
    act_direct(registry, carol, make_action("revoke", IsccId.parse(revoked)))

    def detected(url: str) -> bool:
        # original-copy, original-same and copy-same: each later declarer against each
        # earlier one.
        return len(_get_json(url + "/v1/conflicts")["conflicts"]) == 3

    with _served(folder, deployment, detected) as url:
        _post_json(url + "/v1/metadata", document)
        yield Site(url, files, folder)


@pytest.fixture(scope="module")
def wallet_site(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """An empty registry whose service relays (the devnet's built-in relayer) at most one
    declaration per declarer per minute, for the wallet flow and its relay limit."""
    folder = tmp_path_factory.mktemp("web-wallet")
    chain = Registry.open(Deployment.load(devnet.deployment_path))
    deployment = deploy_registry(chain.w3, dev_account(0))
    environ = {"ISCC_REGISTRY_RELAY_PER_DECLARER_PER_MIN": "1"}
    with _served(folder, deployment, lambda url: _declarations(url) == 0, environ) as url:
        yield Site(url, {}, folder)


def _declarations(url: str) -> int:
    return _get_json(url + "/health")["declarations"]


@contextmanager
def _served(
    folder: Path,
    deployment: Deployment,
    ready: Callable[[str], bool],
    extra_environ: dict[str, str] | None = None,
) -> Iterator[str]:
    """`iscc-registry serve` on the deployment, with its home in `folder`, once `ready(url)`."""
    home = folder / "home"
    deployment.save(home / "deployment.json")
    environ = {
        **os.environ,
        "ISCC_REGISTRY_HOME": str(home),
        "ISCC_REGISTRY_MAX_UPLOAD_MB": str(MAX_UPLOAD_MB),
        **(extra_environ or {}),
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
    deadline = time.monotonic() + 60
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
            pytest.fail("serve did not index the declarations within 60 s")
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
    yield from _watched_page(browser, **PHONE)


@pytest.fixture
def desktop(browser: Browser) -> Iterator[Page]:
    yield from _watched_page(browser, **DESKTOP)
