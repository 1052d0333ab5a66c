"""Shared by the web tests: the pictures they upload, what the site fixture declared, and the
screenshot and accessibility checks every page goes through."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from playwright.sync_api import Page

from registry.config import PROJECT_ROOT
from registry.iscc.generate import IsccResult

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
AXE = PROJECT_ROOT / "node_modules" / "axe-core" / "axe.min.js"
MAX_UPLOAD_MB = 1
# Flags that let Chromium run headless as root in a container without touching the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The two sizes the issue tried the pages at.
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
}
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}}
HOSTILE_GATEWAY = 'javascript:alert(document.domain)//"><img src=x onerror=alert(1)>'


@dataclass
class Declared:
    path: Path
    result: IsccResult
    iscc_id: str
    declarer: LocalAccount
    gateway: str


@dataclass
class Site:
    url: str
    files: dict[str, Declared]
    folder: Path


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as test-artifacts/NAME.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / (re.sub(r"[^\w.-]+", "_", name) + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path


def accessibility_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now. The script is
    evaluated through the driver, so the page's Content-Security-Policy stays in force."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())
    report = page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations']})"
        ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' '))})))"
    )
    return [v for v in report if v["impact"] in ("serious", "critical")]


def in_first_viewport(page: Page, selector: str) -> dict[str, float]:
    """The element's box measured at the top of the page; asserts it lies within the first
    screenful (visible without scrolling)."""
    page.evaluate("() => window.scrollTo(0, 0)")
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not rendered"
    viewport = page.viewport_size
    assert viewport is not None
    assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], (
        f"{selector} spans {box['y']:.0f}..{box['y'] + box['height']:.0f} px, "
        f"below the first {viewport['height']} px"
    )
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], box
    return box
