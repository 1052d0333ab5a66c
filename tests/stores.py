"""Store fixtures for every test folder (a pytest plugin that tests/conftest.py loads): empty
stores on SQLite and on a real PostgreSQL server.

PostgreSQL comes from ISCC_REGISTRY_TEST_PG_URL (scripts/test.sh starts a throwaway server and
sets it). Without it the PostgreSQL variants fail in CI and are skipped, with that reason, only
when CI is unset.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from registry.store.store import Store

BACKENDS = ["sqlite", "postgresql"]
PG_URL_VAR = "ISCC_REGISTRY_TEST_PG_URL"


def required_env(variable: str, why: str) -> str:
    """An environment variable scripts/test.sh sets: without it the test fails in CI and is
    skipped, with that reason, only when CI is unset."""
    value = os.environ.get(variable)
    if value:
        return value
    message = f"{variable} is unset: {why}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(f"not in CI (CI unset) and {message}")


def pg_server_url() -> str:
    return required_env(PG_URL_VAR, "run scripts/test.sh, which starts a PostgreSQL server")


@contextmanager
def pg_database() -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards; yields its URL."""
    server = make_url(pg_server_url())
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in a folder that does not exist yet (the store creates it)."""
    return f"sqlite:///{tmp_path / 'index' / 'registry.db'}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[str]:
    """An empty store URL, once per backend."""
    if request.param == "sqlite":
        yield sqlite_url
    else:
        with pg_database() as url:
            yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """An empty PostgreSQL store URL, for what only PostgreSQL does (peers side by side)."""
    with pg_database() as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as s:
        yield s


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    with Store.open(sqlite_url) as s:
        yield s
