"""Fixtures for index tests: an empty SQLite store in a fresh folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.index.store import Store


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A SQLite file in a folder that does not exist yet (the store creates it)."""
    return f"sqlite:///{tmp_path / 'index' / 'registry.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as s:
        yield s
