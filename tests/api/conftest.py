"""API fixtures: a registry on the real devnet with a few declarations, indexed, behind a client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from registry.api import create_app
from registry.chain.contract import Registry
from registry.chain.deployment import Deployment
from registry.chain.devnet import dev_account
from registry.chain.submit import declare_direct
from registry.config import Settings
from registry.iscc.generate import IsccResult, generate
from registry.ledger.indexer import Indexer
from registry.store.store import Store


@pytest.fixture
def settings(tmp_path: Path, deployment: Deployment) -> Settings:
    home = tmp_path / "home"
    deployment.save(home / "deployment.json")
    return Settings(home=home)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = Store.open(settings.database_url)
    yield store
    store.close()


def _generated(folder: Path, name: str, text: str) -> IsccResult:
    path = folder / name
    path.write_text(text)
    return generate(path)


@pytest.fixture
def declared(tmp_path: Path, registry: Registry, store: Store) -> dict[str, Any]:
    """Two declarers: alice declares two texts (one with a gateway template), bob a data file."""
    alice, bob = dev_account(1), dev_account(2)
    items = {
        "poem": _generated(tmp_path, "poem.txt", "Roses are red, violets are blue. " * 20),
        "essay": _generated(tmp_path, "essay.md", "# On declarations\n\nFirst come, first. " * 30),
        "song": _generated(tmp_path, "song.bin", "la la la, a song of bytes " * 50),
    }
    for who, key, gateway in [
        (alice, "poem", "https://example.com/{iscc-id}"),
        (alice, "essay", "javascript:alert(1)"),
        (bob, "song", ""),
    ]:
        item = items[key]
        declare_direct(registry, who, item.iscc, item.datahash, item.metahash, gateway)
    Indexer(registry, store).sync()
    return {"items": items, "alice": alice, "bob": bob}


@pytest.fixture
def client(settings: Settings, store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(settings, store=store)) as client:
        yield client


@pytest.fixture
def stranger() -> LocalAccount:
    return Account.create()
