"""The store's connection to its database: opening (creating or upgrading) SQLite or PostgreSQL,
and one read or write transaction at a time with database failures as StoreError."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
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


def _set_up_sqlite(dbapi_conn: Any) -> None:
    # pysqlite's own transaction handling defers BEGIN and cannot take the write lock up
    # front; switching it off lets _on_begin emit the right BEGIN.
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


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        _set_up_sqlite(dbapi_conn)

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
    """A read stopped at the time budget of its thread (Connections.read_budget), or one that
    a budget cannot bound."""


# Each thread's deadline for its reads (time.monotonic()), while it has a budget.
_budget = threading.local()

# SQLite virtual-machine steps between two looks at the clock: an indexed lookup takes a few
# hundred, a look costs about a microsecond.
_BUDGET_STEPS = 1000

# Rows a budgeted read returns at most: a page of the default size (100 and one more, to know
# whether there are more) with room to spare.
BUDGET_ROWS = 128


def _over_budget() -> int:
    return 1 if time.monotonic() > _budget.deadline else 0  # 1: SQLite stops, "interrupted"


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
        self.defaults = compiled.params  # literals in the statement are parameters too
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
        values = {**self.defaults, **values}
        if self.binds:
            values = {k: self.binds[k](v) if k in self.binds else v for k, v in values.items()}
        if self.order is None:
            return values
        return tuple(values[name] for name in self.order)

    def row(self, raw: tuple[Any, ...]) -> tuple[Any, ...]:
        row = list(raw)
        for i, process in self.processors:
            row[i] = process(row[i])
        return tuple(row)


class DriverRead:
    """One read transaction on a driver connection, for Prepared statements; `budgeted` if
    it runs within a time budget (Connections.read_budget)."""

    def __init__(self, cursor: Any, dialect: Dialect, budgeted: bool = False) -> None:
        self._cursor = cursor
        self._dialect = dialect
        self.budgeted = budgeted

    def all(self, prepared: Prepared, **values: Any) -> list[tuple[Any, ...]]:
        compiled = prepared.of(self._dialect)
        self._cursor.execute(compiled.sql, compiled.parameters(values))
        if self.budgeted:
            # What the caller makes of each row (records, JSON) follows the read on the event
            # loop, unbounded by the budget: 300 declarer records cost 3 ms more there
            # (attacker review). A read of more rows runs in a worker thread.
            fetched = self._cursor.fetchmany(BUDGET_ROWS + 1)
            if len(fetched) > BUDGET_ROWS:
                raise ReadOverBudget(f"a read of more than {BUDGET_ROWS} rows")
        else:
            fetched = self._cursor.fetchall()
        # Most hot reads are integers and bytes, which no processor converts: a work's few
        # hundred segments are read per match checked.
        rows = [compiled.row(raw) for raw in fetched] if compiled.processors else fetched
        # The progress handler looks at the clock every _BUDGET_STEPS steps only: a statement
        # of few steps that reads much (a large document is one column, a few steps) ran past
        # the budget unstopped, and what the caller does with its rows would follow it on the
        # event loop (attacker review: 10 MB documents held the loop for 300 ms).
        if self.budgeted and time.monotonic() > _budget.deadline:
            raise ReadOverBudget("the read took longer than its budget")
        return rows


class Connections:
    """A SQLAlchemy engine with the store's transactions; Store adds what they are for."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._budgeted = threading.local()  # each thread's connection for budgeted reads

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
        """Whether `read_budget` can bound reads (SQLite, through its progress handler)."""
        return self._sqlite

    @contextmanager
    def read_budget(self, seconds: float) -> Iterator[None]:
        """The reads of this thread inside the block stop after `seconds` in all, with
        ReadOverBudget; SQLite only. For reads on an event loop, where a long one holds up
        every other request: they run on a connection of the thread's own, outside the pool,
        so none waits for a pooled connection either, and reads that are not Prepared (the
        SQLAlchemy path, unbounded) raise ReadOverBudget at once."""
        if not self._sqlite:
            raise StoreError("only SQLite reads can be bounded")
        _budget.deadline = time.monotonic() + seconds
        try:
            yield
        finally:
            _budget.deadline = None

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        if getattr(_budget, "deadline", None) is not None:
            raise ReadOverBudget("this read cannot be bounded")
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"index store read failed: {_short(exc)}") from exc

    @contextmanager
    def _driver_read(self) -> Iterator[DriverRead]:
        """One read transaction for Prepared statements on a driver connection: the pool's,
        or within a budget the thread's own."""
        budgeted = getattr(_budget, "deadline", None) is not None
        try:
            if budgeted:
                driver = self._own_connection()
                release = self._end_own_read
            else:
                pooled = self.engine.raw_connection()
                driver, release = pooled, pooled.close  # the pool rolls back
        except SQLAlchemyError as exc:
            raise StoreError(f"index store read failed: {_short(exc)}") from exc
        try:
            cursor = driver.cursor()
            if self._sqlite:  # autocommit at the driver (see _sqlite_pragmas): begin here
                cursor.execute("BEGIN")
            yield DriverRead(cursor, self.engine.dialect, budgeted)
        except self.engine.dialect.loaded_dbapi.Error as exc:
            if budgeted:
                # Past the budget, or anything else (a busy database): the read runs again in a
                # thread, unbounded, which reports what is still wrong then. A connection that
                # failed for another reason than the budget is not used again.
                problem = _short(exc)
                if problem != "interrupted":
                    self._drop_own()
                raise ReadOverBudget(f"the read did not finish in its budget: {problem}") from exc
            raise StoreError(f"index store read failed: {_short(exc)}") from exc
        finally:
            release()

    def _end_own_read(self) -> None:
        try:
            self._budgeted.driver.rollback()
        except AttributeError:
            pass  # dropped already
        except self.engine.dialect.loaded_dbapi.Error:
            self._drop_own()  # never used again inside an old transaction (a stale snapshot)

    def _drop_own(self) -> None:
        driver, self._budgeted.driver = self._budgeted.driver, None
        if driver is not None:
            with contextlib.suppress(Exception):
                driver.close()

    def _own_connection(self) -> Any:
        driver = getattr(self._budgeted, "driver", None)
        if driver is None:
            # Made by the driver, not taken from the pool, which may have none free.
            started = time.monotonic()
            dialect = self.engine.dialect
            args, options = dialect.create_connect_args(self.engine.url)
            # Never wait for a lock here: the busy handler sleeps where the progress handler
            # cannot stop it (up to BUSY_TIMEOUT_MS on the event loop); a busy read goes to a
            # thread instead (above). From the first statement: setting the connection up
            # waited the driver's default 5 s for a locked database (outside attacker review).
            try:
                driver = dialect.loaded_dbapi.connect(*args, **{**options, "timeout": 0})
            except dialect.loaded_dbapi.Error as exc:
                raise ReadOverBudget(f"the read's connection failed: {_short(exc)}") from exc
            try:
                _set_up_sqlite(driver)
                driver.execute("PRAGMA busy_timeout=0").close()
                driver.execute("SELECT 1 FROM sqlite_master LIMIT 1").close()  # reads the schema
            except dialect.loaded_dbapi.Error as exc:
                driver.close()
                raise ReadOverBudget(f"the read's connection failed: {_short(exc)}") from exc
            driver.set_progress_handler(_over_budget, _BUDGET_STEPS)
            self._budgeted.driver = driver
            # Made once per thread: not the read's time, which the budget bounds.
            _budget.deadline += time.monotonic() - started
        return driver


def _short(exc: Exception) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]
