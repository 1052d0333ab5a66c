"""The store's connection to its database: opening (creating or upgrading) SQLite or PostgreSQL,
and one read or write transaction at a time with database failures as StoreError."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from registry.errors import StoreError
from registry.store import migrations

__all__ = ["Connections"]


log = logging.getLogger(__name__)


BUSY_TIMEOUT_MS = 10_000


_NO_STORE = "no index store at {url} yet: `iscc-registry index` makes one from the chain"

# Connection option that makes SQLite take the write lock at BEGIN (see _sqlite_pragmas).
_WRITE = "registry_write"


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling defers BEGIN and cannot take the write lock
        # up front; switching it off lets _on_begin emit the right BEGIN.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # In WAL mode NORMAL survives a killed process; only power loss may drop the last commits.
        cursor.execute("PRAGMA synchronous=NORMAL")
        # 64 MB of page cache (the default is 2 MB): batches insert into seven indexes with
        # random keys (hashes, codes), which otherwise re-read index pages from disk.
        cursor.execute("PRAGMA cache_size=-64000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write transaction that started as a reader cannot wait for the lock in WAL mode
        # (SQLITE_BUSY_SNAPSHOT), so writers lock at BEGIN and busy_timeout applies.
        immediate = conn.get_execution_options().get(_WRITE, False)
        # Straight to the driver: through SQLAlchemy's statement machinery, the BEGIN of a
        # read cost a sixth of an ISCC-ID lookup.
        driver = conn.connection.dbapi_connection
        assert driver is not None
        driver.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Connections:
    """A SQLAlchemy engine with the store's transactions; Store adds what they are for."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQL of statements run straight on the driver, compiled for this engine's dialect once.
        self._statements: dict[Any, tuple[str, tuple[str, ...] | None]] = {}

    @classmethod
    def open(cls, url: str, create: bool = True) -> Self:
        """Open (and create or upgrade) the store at a SQLAlchemy URL, e.g. sqlite:///x.db;
        with create=False a store that does not exist yet is an error, and none is made."""
        try:
            parsed = make_url(url)
            if parsed.drivername in ("postgresql", "postgres"):
                # SQLAlchemy's default PostgreSQL driver is psycopg2; this package ships psycopg 3.
                parsed = parsed.set(drivername="postgresql+psycopg")
            options: dict[str, Any] = {}
            sqlite = parsed.get_backend_name() == "sqlite"
            if sqlite:
                if parsed.database in (None, "", ":memory:"):
                    # Every connection to :memory: would otherwise get its own empty database.
                    options["poolclass"] = StaticPool
                elif not create and not Path(parsed.database).expanduser().is_file():
                    raise StoreError(_NO_STORE.format(url=parsed.database))
                else:
                    Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(parsed, **options)
        except (ArgumentError, NoSuchModuleError, ImportError, OSError) as exc:
            raise StoreError(f"cannot open the index store {url!r}: {exc}") from None
        if sqlite:
            _sqlite_pragmas(engine)
        store = cls(engine)
        try:
            with store._write() as conn:
                if not sqlite:
                    # Two processes opening a fresh PostgreSQL store must not both create it.
                    conn.execute(text("SELECT pg_advisory_xact_lock(24138)"))
                if not create and migrations.stored_version(conn) is None:
                    raise StoreError(_NO_STORE.format(url=parsed.render_as_string()))
                migrations.migrate(conn)
        except StoreError:
            engine.dispose()
            raise
        return store

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction; database failures become StoreError."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{_WRITE: True})
                with conn.begin():
                    yield conn
        except (SQLAlchemyError, self.engine.dialect.loaded_dbapi.Error) as exc:
            # Bulk COPY talks to the driver directly, so its errors arrive unwrapped.
            raise StoreError(f"index store write failed: {_short(exc)}") from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"index store read failed: {_short(exc)}") from exc


def _short(exc: Exception) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]
