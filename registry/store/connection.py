"""The store's connection to its database: opening (creating or upgrading) SQLite or PostgreSQL,
and one read or write transaction at a time with database failures as StoreError."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Self

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from registry.errors import StoreError
from registry.store import migrations

__all__ = ["Connections", "DriverRead", "Prepared", "ReadOverBudget"]


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


class ReadOverBudget(StoreError):
    """A read stopped at the time budget its thread gave it (Connections.read_budget)."""


# The budget of the reads of this thread; a SQLite progress handler stops a read past it.
_budget = threading.local()

# SQLite virtual-machine steps between two looks at the clock: an indexed lookup takes a few
# hundred, a look costs about a microsecond.
_BUDGET_STEPS = 1000


def _over_budget() -> int:
    if time.monotonic() > _budget.deadline:
        _budget.spent = True
        return 1  # SQLite stops the statement: "interrupted"
    return 0


@contextmanager
def _bounded(driver: Any) -> Iterator[None]:
    """Reads on `driver` stop at this thread's budget, if it has one. Installed per read, not
    per connection: a handler on the indexer's connection would take the GIL back every few
    steps of its long writes."""
    if getattr(_budget, "deadline", None) is None:
        yield
        return
    driver.set_progress_handler(_over_budget, _BUDGET_STEPS)
    try:
        yield
    finally:
        driver.set_progress_handler(None, 0)


class Prepared:
    """A SELECT of the hottest reads, compiled once per dialect and run on the driver's own
    connection, its values converted as SQLAlchemy would.

    Through SQLAlchemy's execution machinery (connection wrapper, compiled-cache lookup,
    execution context, result rows) the two statements of a cold ISCC-ID lookup took 195 us
    at 200,000 declarations; the same SQL on the driver took 36 us.
    """

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def of(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _Compiled(self.statement, dialect)
        return compiled


class _Compiled:
    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self.order = compiled.positiontup  # None where the driver takes named parameters
        self.binds: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.binds[name] = process
        processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        ]
        self.processors = [(i, p) for i, p in enumerate(processors) if p is not None]

    def parameters(self, values: Mapping[str, Any]) -> Any:
        if self.binds:
            values = {k: self.binds[k](v) if k in self.binds else v for k, v in values.items()}
        if self.order is None:
            return values
        return tuple(values[name] for name in self.order)

    def row(self, raw: tuple[Any, ...]) -> tuple[Any, ...]:
        if not self.processors:
            return raw
        row = list(raw)
        for i, process in self.processors:
            row[i] = process(row[i])
        return tuple(row)


class DriverRead:
    """One read transaction on a pooled driver connection, for Prepared statements."""

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self._cursor = cursor
        self._dialect = dialect

    def all(self, prepared: Prepared, **values: Any) -> list[tuple[Any, ...]]:
        compiled = prepared.of(self._dialect)
        self._cursor.execute(compiled.sql, compiled.parameters(values))
        return [compiled.row(raw) for raw in self._cursor.fetchall()]


class Connections:
    """A SQLAlchemy engine with the store's transactions; Store adds what they are for."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"

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

    @property
    def reads_bounded(self) -> bool:
        """Whether `read_budget` stops reads (SQLite's progress handler; not PostgreSQL)."""
        return self._sqlite

    @contextmanager
    def read_budget(self, seconds: float) -> Iterator[None]:
        """The store reads of this thread stop after `seconds` in all and raise
        ReadOverBudget (SQLite; PostgreSQL reads are not bounded). For reads made where a
        long one would hold up others, such as on an event loop."""
        _budget.deadline, _budget.spent = time.monotonic() + seconds, False
        try:
            yield
        finally:
            _budget.deadline = None

    def _bounded(self, driver: Any) -> AbstractContextManager[None]:
        return _bounded(driver) if self._sqlite else nullcontext()

    def _failed(self, exc: Exception) -> StoreError:
        if getattr(_budget, "spent", False):
            return ReadOverBudget("the read took longer than its budget")
        return StoreError(f"index store read failed: {_short(exc)}")

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn, self._bounded(conn.connection.dbapi_connection):
                yield conn
        except SQLAlchemyError as exc:
            raise self._failed(exc) from exc

    @contextmanager
    def _driver_read(self) -> Iterator[DriverRead]:
        """Like _read, for Prepared statements: the pool's connection without SQLAlchemy's
        wrapper. The pool rolls the transaction back when the connection returns to it."""
        try:
            pooled = self.engine.raw_connection()
        except SQLAlchemyError as exc:
            raise StoreError(f"index store read failed: {_short(exc)}") from exc
        try:
            cursor = pooled.cursor()
            if self._sqlite:  # autocommit at the driver (see _sqlite_pragmas): begin here
                cursor.execute("BEGIN")
            with self._bounded(pooled.dbapi_connection):
                yield DriverRead(cursor, self.engine.dialect)
        except self.engine.dialect.loaded_dbapi.Error as exc:
            raise self._failed(exc) from exc
        finally:
            pooled.close()


def _short(exc: Exception) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]
