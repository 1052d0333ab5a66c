"""The store on SQLite and PostgreSQL: atomic batches, checkpoints, rollback, lookups, schema."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from eth_utils import to_checksum_address
from index_helpers import CHANGE_ABI, FULL_ABI, content, encode_log, make_log
from sqlalchemy import func, inspect, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import CreateIndex, CreateTable

from registry.chain.events import ChangeEvent, DeclaredEvent
from registry.errors import InvalidCode, StoreError
from registry.index.events import EventDecoder
from registry.store import migrations, schema
from registry.store.connection import BUDGET_ROWS, ReadOverBudget
from registry.store.int64 import from_signed64
from registry.store.reads import INLINE_DOCUMENT_BYTES
from registry.store.schema import blocks, conflict_queue, events, meta, units
from registry.store.store import CheckpointMoved, Store

CHAIN = 31337
CONTRACT = "0x" + "12" * 20
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
CAROL = "0x" + "c0" * 20
DECODER = EventDecoder(0, FULL_ABI)


def _event(data: bytes, block: int, log_index: int = 0, **kwargs) -> DeclaredEvent:
    item = content(data)
    body = (1_700_000_000_000_000 + block * 1000 + log_index) << 12
    log = make_log(
        item["raw"],
        kwargs.pop("datahash", item["digest"]),
        iscc_id_body=kwargs.pop("iscc_id_body", body),
        block_number=block,
        log_index=log_index,
        **kwargs,
    )
    event = DECODER.decode(log)
    assert isinstance(event, DeclaredEvent)
    return event


def _change(name: str, block: int, log_index: int = 0, **values) -> ChangeEvent:
    entry = next(e for e in CHANGE_ABI if e["name"] == name)
    event = DECODER.decode(encode_log(entry, values, block_number=block, log_index=log_index))
    assert isinstance(event, ChangeEvent)
    return event


def _hash(block: int) -> bytes:
    """The block hash make_log gives by default."""
    return block.to_bytes(32, "big")


def _rows(store: Store, table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_open_creates_folder_and_sets_sqlite_pragmas(sqlite_store: Store, sqlite_url: str) -> None:
    assert Path(sqlite_url.removeprefix("sqlite:///")).exists()
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    assert sqlite_store.checkpoint(CHAIN, CONTRACT) is None
    assert sqlite_store.count() == 0


def test_postgresql_urls_use_psycopg_3(db_url: str) -> None:
    with Store.open(db_url) as store:
        assert store.engine.dialect.name in ("sqlite", "postgresql")
        if store.engine.dialect.name == "postgresql":
            assert store.engine.dialect.driver == "psycopg"


def test_batches_continue_from_their_parent_checkpoint(store: Store) -> None:
    batch = [_event(b"one" * 50, 5, declarer=ALICE), _event(b"two" * 50, 7, 1, declarer=BOB)]
    assert store.apply(CHAIN, CONTRACT, batch, None, 9, _hash(9)) == 2
    later = [_event(b"three" * 50, 12, declarer=ALICE)]
    assert store.apply(CHAIN, CONTRACT, later, (9, _hash(9)), 12, _hash(12)) == 1
    assert store.count() == 3
    assert _rows(store, events) == 3
    assert _rows(store, units) == 6  # Data + Instance per declaration
    assert _rows(store, blocks) == 4  # 5, 7, 9 (checkpoint) and 12
    assert store.checkpoint_block(CHAIN, CONTRACT.upper().replace("0X", "0x")) == (12, _hash(12))
    assert store.checkpoint(CHAIN + 1, CONTRACT) is None


def test_a_batch_applied_twice_is_refused_and_changes_nothing(store: Store) -> None:
    batch = [_event(b"one" * 50, 5)]
    store.apply(CHAIN, CONTRACT, batch, None, 5, _hash(5))
    # A second indexer (or a killed one's stale plan) replaying the same range.
    with pytest.raises(CheckpointMoved, match="another indexer"):
        store.apply(CHAIN, CONTRACT, batch, None, 5, _hash(5))
    with pytest.raises(CheckpointMoved):
        store.apply(CHAIN, CONTRACT, [], (4, _hash(4)), 6, _hash(6))
    assert (store.count(), _rows(store, events), _rows(store, units)) == (1, 1, 2)
    assert store.checkpoint(CHAIN, CONTRACT) == 5


def test_duplicate_event_within_one_batch_is_stored_once(store: Store) -> None:
    event = _event(b"dup" * 50, 3)
    assert store.apply(CHAIN, CONTRACT, [event, event], None, 3, event.block_hash) == 1
    assert store.count() == 1


def test_failed_apply_changes_nothing(store: Store) -> None:
    first = _event(b"first" * 50, 4)
    store.apply(CHAIN, CONTRACT, [first], None, 4, first.block_hash)
    # Two new events claiming the same ISCC-ID: the events insert succeeds, the declarations
    # insert violates the unique key, so the whole batch must roll back.
    good = _event(b"good" * 50, 6)
    clash = _event(b"clash" * 50, 6, 1, iscc_id_body=good.iscc_id_body)
    with pytest.raises(StoreError, match=r"(?i)unique|duplicate"):
        store.apply(CHAIN, CONTRACT, [good, clash], (4, first.block_hash), 8, _hash(8))
    assert store.checkpoint(CHAIN, CONTRACT) == 4
    assert _rows(store, events) == 1
    assert _rows(store, blocks) == 1
    assert _rows(store, units) == 2
    assert store.count() == 1


def test_logs_of_two_forks_in_one_batch_are_refused(store: Store) -> None:
    one = _event(b"fork a" * 50, 20, block_hash=b"\x20" * 32)
    other = _event(b"fork b" * 50, 20, 1, block_hash=b"\x21" * 32)
    with pytest.raises(StoreError, match="two hashes"):
        store.apply(CHAIN, CONTRACT, [one, other], None, 20, b"\x20" * 32)
    with pytest.raises(StoreError, match="two hashes"):
        store.apply(CHAIN, CONTRACT, [one], None, 20, b"\x22" * 32)
    assert store.count() == 0 and store.checkpoint(CHAIN, CONTRACT) is None


def _state(store: Store, iscc_id: str) -> tuple:
    (r,) = store.by_iscc_id(iscc_id)
    return r.owner, r.revoked, r.metahash, r.gateway


def test_updates_transfers_and_revocations_change_the_current_state(store: Store) -> None:
    a = _event(b"alpha" * 50, 5, declarer=ALICE, gateway="https://a")
    b = _event(b"beta" * 50, 5, 1, declarer=BOB)
    body = a.iscc_id_body
    batch = [
        a,
        b,
        _change("Updated", 6, isccId=body, owner=ALICE, metahash=b"\x33" * 32, gateway="ipfs://x"),
        _change("Transferred", 7, isccId=body, **{"from": ALICE, "to": CAROL}),
    ]
    assert store.apply(CHAIN, CONTRACT, batch, None, 7, _hash(7)) == 4
    alice, carol = to_checksum_address(ALICE), to_checksum_address(CAROL)
    assert _state(store, a.iscc_id) == (carol, False, b"\x33" * 32, "ipfs://x")
    assert _state(store, b.iscc_id) == (to_checksum_address(BOB), False, None, b.gateway)
    (record,) = store.by_iscc_id(a.iscc_id)
    assert record.declarer == alice and record.to_dict()["owner"] == carol
    revoke = [_change("Revoked", 9, isccId=body, owner=CAROL)]
    store.apply(CHAIN, CONTRACT, revoke, (7, _hash(7)), 9, _hash(9))
    assert _state(store, a.iscc_id) == (carol, True, b"\x33" * 32, "ipfs://x")
    with store.engine.connect() as conn:
        names = conn.execute(select(events.c.name).order_by(events.c.block_number)).scalars()
        assert list(names) == ["Declared", "Declared", "Updated", "Transferred", "Revoked"]


def test_change_of_an_unknown_declaration_is_kept_in_history_only(store: Store) -> None:
    orphan = _change("Revoked", 4, isccId=12345, owner=ALICE)
    assert store.apply(CHAIN, CONTRACT, [orphan], None, 4, _hash(4)) == 1
    assert store.count() == 0 and _rows(store, events) == 1


def test_rollback_removes_what_is_above_the_ancestor_and_rebuilds_state(store: Store) -> None:
    a = _event(b"alpha" * 50, 5, declarer=ALICE, metahash=b"\x01" * 32, gateway="g0")
    store.apply(CHAIN, CONTRACT, [a], None, 5, _hash(5))
    body = a.iscc_id_body
    update_1 = _change("Updated", 6, isccId=body, owner=ALICE, metahash=bytes(32), gateway="g1")
    store.apply(CHAIN, CONTRACT, [update_1], (5, _hash(5)), 6, _hash(6))
    late = [
        _event(b"late" * 50, 8, declarer=BOB),
        _change("Transferred", 8, 1, isccId=body, **{"from": ALICE, "to": BOB}),
        _change("Revoked", 9, isccId=body, owner=BOB),
    ]
    store.apply(CHAIN, CONTRACT, late, (6, _hash(6)), 10, _hash(10))
    assert _state(store, a.iscc_id) == (to_checksum_address(BOB), True, None, "g1")

    assert store.rollback(CHAIN, CONTRACT, (6, _hash(6))) == 3
    assert store.checkpoint_block(CHAIN, CONTRACT) == (6, _hash(6))
    assert store.count() == 1 and store.by_iscc_id(late[0].iscc_id) == []
    # Owner and revocation come back from the history that remains; the update stays applied.
    assert _state(store, a.iscc_id) == (to_checksum_address(ALICE), False, None, "g1")
    assert (_rows(store, events), _rows(store, units), _rows(store, blocks)) == (2, 2, 2)
    # Units and queue rows have no foreign key to cascade along; the rollback removes them.
    assert _rows(store, conflict_queue) == 1

    assert store.rollback(CHAIN, CONTRACT, (5, _hash(5))) == 1
    assert _state(store, a.iscc_id) == (to_checksum_address(ALICE), False, b"\x01" * 32, "g0")
    assert store.rollback(CHAIN, CONTRACT, None) == 1
    assert store.checkpoint(CHAIN, CONTRACT) is None
    assert _rows(store, conflict_queue) == 0
    assert (store.count(), _rows(store, events), _rows(store, units), _rows(store, blocks)) == (
        0,
        0,
        0,
        0,
    )
    # The store continues from nothing, as after a fresh start.
    assert store.apply(CHAIN, CONTRACT, [a], None, 5, _hash(5)) == 1


def test_rollback_leaves_other_registries_alone(store: Store) -> None:
    other = "0x" + "34" * 20
    mine, theirs = _event(b"mine" * 50, 5), _event(b"theirs" * 50, 5, 1)
    store.apply(CHAIN, CONTRACT, [mine], None, 5, _hash(5))
    store.apply(CHAIN, other, [theirs], None, 5, _hash(5))
    store.rollback(CHAIN, CONTRACT, None)
    assert [r.iscc_id for r in store.by_iscc_id(theirs.iscc_id)] == [theirs.iscc_id]
    assert store.checkpoint(CHAIN, other) == 5 and store.count() == 1


def test_block_at_or_below_finds_recorded_blocks(store: Store) -> None:
    store.apply(CHAIN, CONTRACT, [_event(b"x" * 50, 5)], None, 9, _hash(9))
    assert store.block_at_or_below(CHAIN, CONTRACT, 4) is None
    assert store.block_at_or_below(CHAIN, CONTRACT, 5) == (5, _hash(5))
    assert store.block_at_or_below(CHAIN, CONTRACT, 8) == (5, _hash(5))
    assert store.block_at_or_below(CHAIN, CONTRACT, 100) == (9, _hash(9))


def test_lookups_and_to_dict(store: Store) -> None:
    metahash = bytes(range(32))
    a = _event(b"alpha" * 50, 5, declarer=ALICE, metahash=metahash)
    b = _event(b"beta" * 50, 6, declarer=BOB, gateway="")
    again = _event(b"alpha" * 50, 7, declarer=BOB)  # same content, later, other declarer
    bad = _event(b"gamma" * 50, 8, declarer=ALICE, datahash=b"\x01" * 32)
    store.apply(CHAIN, CONTRACT, [a, b, again, bad], None, 8, bad.block_hash)

    (record,) = store.by_iscc_id(a.iscc_id)
    assert record.iscc_id == a.iscc_id and record.valid
    assert store.by_iscc_id(a.iscc_id.lower().removeprefix("iscc:")) == [record]
    assert [r.iscc_id for r in store.by_iscc_code(a.iscc_code)] == [a.iscc_id, again.iscc_id]
    assert [r.iscc_id for r in store.by_datahash(a.datahash)] == [a.iscc_id, again.iscc_id]
    assert [r.iscc_id for r in store.by_declarer(ALICE.upper().replace("0X", "0x"))] == [
        a.iscc_id,
        bad.iscc_id,
    ]
    (invalid,) = store.by_iscc_id(bad.iscc_id)
    assert not invalid.valid and "Instance-Code" in invalid.invalid_reason

    d = record.to_dict()
    assert d["datahash"] == "1e20" + a.datahash.hex()
    assert d["metahash"] == "1e20" + metahash.hex()
    assert d["iscc_code"] == a.iscc_code and d["iscc_id"].startswith("ISCC:MAI")
    assert d["tx_hash"] == "0x" + a.tx_hash.hex()
    assert d["block_number"] == 5 and d["contract"] == store.by_iscc_id(a.iscc_id)[0].contract
    assert store.by_iscc_id(b.iscc_id)[0].to_dict()["metahash"] is None
    with pytest.raises(InvalidCode):
        store.by_declarer("0x1234")
    with pytest.raises(InvalidCode):
        store.by_iscc_code("ISCC:NOTACODE")


def test_iscc_id_view_matches_the_separate_reads(store: Store) -> None:
    metahash = bytes(range(32))
    a = _event(b"alpha" * 50, 5, declarer=ALICE)
    b = _event(b"beta" * 50, 6, declarer=BOB)
    lone = _event(b"gamma" * 50, 6, 1, declarer=CAROL)
    update = _change(
        "Updated", 7, isccId=a.iscc_id_body, owner=ALICE, metahash=metahash, gateway="ipfs://x"
    )
    store.apply(CHAIN, CONTRACT, [a, b, lone, update], None, 7, _hash(7))
    store.put_metadata(metahash, b'{"name":"alpha"}')
    with store.engine.begin() as conn:
        query = select(schema.declarations.c.iscc_id, schema.declarations.c.id)
        ids = {row.iscc_id: row.id for row in conn.execute(query)}
        conn.execute(
            schema.conflicts.insert().values(
                earlier_id=ids[a.iscc_id],
                later_id=ids[b.iscc_id],
                kind="same",
                strength=1.0,
                detail="{}",
            )
        )

    view = store.iscc_id_view(a.iscc_id.lower().removeprefix("iscc:"))
    assert view.records == store.by_iscc_id(a.iscc_id)
    assert view.history == store.history(a.iscc_id) and len(view.history) == 2
    assert view.document == store.get_metadata(metahash) == b'{"name":"alpha"}'
    # Both ends of a conflict know it; a declaration in none does not.
    assert view.in_conflict and store.iscc_id_view(b.iscc_id).in_conflict
    quiet = store.iscc_id_view(lone.iscc_id)
    assert not quiet.in_conflict and quiet.document is None and len(quiet.records) == 1
    unknown = _event(b"delta" * 50, 9)
    assert store.iscc_id_view(unknown.iscc_id).records == []


def test_declarer_pages_and_counts_come_from_the_database(store: Store) -> None:
    mine = [_event(b"item%d" % i * 40, 5 + i, declarer=ALICE) for i in range(5)]
    other = _event(b"other" * 50, 5, 1, declarer=BOB)
    revoke = _change("Revoked", 20, isccId=mine[1].iscc_id_body, owner=ALICE)
    store.apply(CHAIN, CONTRACT, [*mine, other, revoke], None, 20, _hash(20))
    everything = [r.iscc_id for r in store.by_declarer(ALICE)]
    assert everything == [e.iscc_id for e in mine]
    pages = [[r.iscc_id for r in store.by_declarer(ALICE, 2, start)] for start in (0, 2, 4, 6)]
    assert pages == [everything[0:2], everything[2:4], everything[4:], []]
    assert store.declarer_counts(ALICE.upper().replace("0X", "0x")) == (5, 1)
    assert store.declarer_counts(CAROL) == (0, 0)
    assert len(store.by_iscc_code(mine[0].iscc_code, limit=1)) == 1
    with pytest.raises(InvalidCode):
        store.declarer_counts("0x1234")
    with pytest.raises(ValueError, match="offset needs a limit"):
        store.by_declarer(ALICE, offset=2)


def test_prepared_reads_convert_values_as_sqlalchemy_does(store: Store) -> None:
    """The hot lookups run on the driver's connection; SQLite stores flags as integers, and
    the records still carry booleans (JSON answers say true/false, not 1/0)."""
    declared = _event(b"flags" * 50, 5, declarer=ALICE)
    store.apply(CHAIN, CONTRACT, [declared], None, 5, declared.block_hash)
    (record,) = store.by_iscc_id(declared.iscc_id)
    assert record.valid is True and record.revoked is False
    assert store.iscc_id_view(declared.iscc_id).records == [record]
    assert store.by_declarer(ALICE, limit=1) == [record]
    assert record.to_dict()["valid"] is True


def test_generation_moves_with_ranges_named_documents_and_conflicts(store: Store) -> None:
    """What answer caches compare: it moves with each applied range, each stored document a
    declaration names and each conflict, and with nothing else."""
    metahash = bytes(range(32))
    first = _event(b"gen" * 60, 5, declarer=ALICE, metahash=metahash)
    empty = store.generation()
    store.apply(CHAIN, CONTRACT, [first], None, 5, first.block_hash)
    applied = store.generation()
    assert applied != empty and store.generation() == applied
    store.put_metadata(b"\x07" * 32, b'{"name":"nobody names me"}')
    assert store.generation() == applied
    store.put_metadata(metahash, b'{"name":"named"}')
    named = store.generation()
    assert named != applied
    second = _event(b"gen" * 60, 6, declarer=BOB)
    store.apply(CHAIN, CONTRACT, [second], (5, first.block_hash), 6, second.block_hash)
    with store.engine.begin() as conn:
        ids = [row.id for row in conn.execute(select(schema.declarations.c.id))]
        before = store.generation()
        conn.execute(
            schema.conflicts.insert().values(
                earlier_id=ids[0], later_id=ids[1], kind="same", strength=1.0, detail="{}"
            )
        )
    assert store.generation() != before


def test_a_read_past_its_budget_stops_and_later_reads_are_not_bounded(
    sqlite_store: Store,
) -> None:
    """read_budget stops SQLite reads of this thread that run past it, through the driver and
    through SQLAlchemy alike, and leaves the connections unbounded afterwards."""
    many = [_event(b"many%d" % i * 30, 5 + i, declarer=ALICE) for i in range(300)]
    sqlite_store.apply(CHAIN, CONTRACT, many, None, 400, _hash(400))
    with sqlite_store.read_budget(0.0), pytest.raises(ReadOverBudget):
        sqlite_store.by_declarer(ALICE)
    with sqlite_store.read_budget(60.0):
        assert len(sqlite_store.by_declarer(ALICE, limit=BUDGET_ROWS)) == BUDGET_ROWS
    assert len(sqlite_store.by_declarer(ALICE)) == 300
    assert sqlite_store.declarer_counts(ALICE) == (300, 0)


def test_a_budgeted_read_does_not_wait_for_a_locked_database_while_connecting(
    sqlite_store: Store, sqlite_url: str
) -> None:
    """Outside attacker review: making the thread's own connection for budgeted reads set WAL
    mode before its busy timeout of 0, so against a database another process held locked it
    waited the driver's default 5 s (on the event loop) and then raised the driver's error,
    which no caller retried in a thread. It gives up at once, as ReadOverBudget."""
    import sqlite3
    import time

    sqlite_store.engine.dispose()
    other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other.execute("PRAGMA locking_mode=EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        other.execute("CREATE TABLE junk(x)")
        other.execute("COMMIT")  # the exclusive lock stays held by `other`
        started = time.monotonic()
        with pytest.raises(ReadOverBudget), sqlite_store.read_budget(60.0):
            sqlite_store.generation()
        assert time.monotonic() - started < 2
    finally:
        other.close()
    assert sqlite_store.generation() is not None  # the lock gone, reads work again


def test_a_budget_is_kept_by_reads_too_short_for_the_progress_handler(
    sqlite_store: Store,
) -> None:
    """SQLite's progress handler looks at the clock every thousand steps; a read of fewer
    steps that ran past its budget (one large document is a single column) still stops
    there, before its caller works on its rows on the event loop (attacker review)."""
    declared = _event(b"short" * 50, 5, declarer=ALICE)
    sqlite_store.apply(CHAIN, CONTRACT, [declared], None, 5, declared.block_hash)
    with sqlite_store.read_budget(0.0), pytest.raises(ReadOverBudget):
        sqlite_store.by_iscc_id(declared.iscc_id)
    with sqlite_store.read_budget(60.0):
        assert len(sqlite_store.by_iscc_id(declared.iscc_id)) == 1


def test_a_budget_bounds_the_rows_a_read_returns(sqlite_store: Store) -> None:
    """Attacker review: what the caller makes of each row (records, JSON) follows a read on
    the event loop, outside its budget: /v1/resolve?q=<declarer>&limit=300 took 4 to 10 ms
    of the loop within a 2 ms budget. A budgeted read of more than BUDGET_ROWS rows stops
    after fetching that many, whatever time it has left."""
    many = [_event(b"rows%d" % i * 30, 5 + i, declarer=ALICE) for i in range(BUDGET_ROWS + 1)]
    sqlite_store.apply(CHAIN, CONTRACT, many, None, 400, _hash(400))
    with sqlite_store.read_budget(60.0):
        with pytest.raises(ReadOverBudget):
            sqlite_store.by_declarer(ALICE)
        assert len(sqlite_store.by_declarer(ALICE, limit=101)) == 101
    assert len(sqlite_store.by_declarer(ALICE)) == BUDGET_ROWS + 1


def test_a_budgeted_view_leaves_large_documents_to_threads(sqlite_store: Store) -> None:
    """Attacker review: an ISCC-ID naming a 10 MB metadata document (features) held the
    event loop for 7 to 120 ms in SQLite alone, unstopped by the progress handler. Within a
    budget the view reads no document larger than INLINE_DOCUMENT_BYTES and says so; without
    one it reads it whole, and plain documents are read within a budget too."""
    large, small = b"\x11" * 32, b"\x22" * 32
    big = _event(b"big" * 60, 5, declarer=ALICE, metahash=large)
    plain = _event(b"plain" * 60, 5, 1, declarer=ALICE, metahash=small)
    sqlite_store.apply(CHAIN, CONTRACT, [big, plain], None, 5, _hash(5))
    document = b'{"name":"' + b"x" * (INLINE_DOCUMENT_BYTES + 1) + b'"}'
    sqlite_store.put_metadata(large, document)
    sqlite_store.put_metadata(small, b'{"name":"small"}')
    with sqlite_store.read_budget(60.0):
        with pytest.raises(ReadOverBudget):
            sqlite_store.iscc_id_view(big.iscc_id)
        assert sqlite_store.iscc_id_view(plain.iscc_id).document == b'{"name":"small"}'
    assert sqlite_store.iscc_id_view(big.iscc_id).document == document


def test_budgeted_reads_never_wait_for_a_lock_and_survive_a_broken_connection(
    sqlite_store: Store,
) -> None:
    """Attacker review: the busy handler sleeps where the progress handler cannot stop it, so
    a budgeted read (on the event loop) of a locked database could wait the busy timeout, 10 s;
    and an error other than the budget's became an error answer instead of a retry. The
    thread's connection never waits for a lock; a failed read leaves the work to a thread,
    and a connection that failed is made anew."""
    declared = _event(b"locked" * 40, 5, declarer=ALICE)
    sqlite_store.apply(CHAIN, CONTRACT, [declared], None, 5, declared.block_hash)
    with sqlite_store.read_budget(5.0):
        assert sqlite_store.by_iscc_id(declared.iscc_id)  # the thread's connection is made
    own = sqlite_store._budgeted.driver
    assert own.execute("PRAGMA busy_timeout").fetchone() == (0,)
    own.close()  # as a connection broken under it would be
    with sqlite_store.read_budget(5.0), pytest.raises(ReadOverBudget, match="closed"):
        sqlite_store.by_iscc_id(declared.iscc_id)
    with sqlite_store.read_budget(5.0):
        assert sqlite_store.by_iscc_id(declared.iscc_id)


def test_budgeted_reads_never_wait_for_the_pool(sqlite_store: Store) -> None:
    """A budget bounds the whole read: with every pooled connection taken (by other threads'
    reads), a budgeted lookup still answers at once on its thread's own connection, and a
    read through SQLAlchemy, which would wait for the pool, is refused instead."""
    declared = _event(b"pooled" * 40, 5, declarer=ALICE)
    sqlite_store.apply(CHAIN, CONTRACT, [declared], None, 5, declared.block_hash)
    pool = sqlite_store.engine.pool
    taken = [sqlite_store.engine.raw_connection() for _ in range(pool.size() + pool._max_overflow)]
    try:
        with ThreadPoolExecutor(1) as thread:

            def budgeted() -> list[Any]:
                with sqlite_store.read_budget(1.0):
                    found = sqlite_store.by_iscc_id(declared.iscc_id)
                    with pytest.raises(ReadOverBudget, match="cannot be bounded"):
                        sqlite_store.declarer_counts(ALICE)
                    return found

            assert [r.iscc_id for r in thread.submit(budgeted).result(timeout=10)] == [
                declared.iscc_id
            ]
    finally:
        for connection in taken:
            connection.close()


def test_invalid_code_is_stored_without_units(store: Store) -> None:
    log = make_log(bytes.fromhex("5f00") + bytes(16), b"\x02" * 32, block_number=3)
    event = DECODER.decode(log)
    assert store.apply(CHAIN, CONTRACT, [event], None, 3, event.block_hash) == 1
    (record,) = store.by_datahash(b"\x02" * 32)
    assert record.iscc_code is None and not record.valid
    assert _rows(store, units) == 0


def test_units_are_signed_64_bit_values(store: Store) -> None:
    event = _event(b"units" * 50, 5)
    store.apply(CHAIN, CONTRACT, [event], None, 5, event.block_hash)
    with store.engine.connect() as conn:
        rows = conn.execute(select(units.c.unit_type, units.c.bits, units.c.value)).all()
    assert [tuple(r) for r in rows] == [(u.unit_type, 64, u.value) for u in event.units]
    with store.engine.connect() as conn:
        body = conn.execute(select(schema.declarations.c.iscc_id_body)).scalar_one()
    assert from_signed64(body) == event.iscc_id_body


def test_reopened_store_keeps_everything(db_url: str) -> None:
    event = _event(b"persist" * 50, 5)
    with Store.open(db_url) as store:
        store.apply(CHAIN, CONTRACT, [event], None, 6, b"\x06" * 32)
    with Store.open(db_url) as store:
        assert store.checkpoint(CHAIN, CONTRACT) == 6
        assert store.by_iscc_id(event.iscc_id)[0].datahash == event.datahash


def test_in_memory_store_works() -> None:
    with Store.open("sqlite://") as store:
        event = _event(b"memory" * 50, 5)
        assert store.apply(CHAIN, CONTRACT, [event], None, 5, event.block_hash) == 1
        assert store.count() == 1


def test_newer_schema_version_is_refused(db_url: str) -> None:
    with Store.open(db_url) as store, store.engine.begin() as conn:
        conn.execute(update(meta).where(meta.c.key == "schema_version").values(value="99"))
    with pytest.raises(StoreError, match="schema version 99"):
        Store.open(db_url)


def test_migrations_upgrade_an_older_store(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    Store.open(db_url).close()
    ran = []

    def add_column(conn) -> None:
        ran.append(True)
        conn.execute(text("ALTER TABLE declarations ADD COLUMN note TEXT"))

    latest = migrations.SCHEMA_VERSION
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, add_column])
    with Store.open(db_url) as store, store.engine.connect() as conn:
        assert migrations.stored_version(conn) == latest + 1
        columns = [c["name"] for c in inspect(conn).get_columns("declarations")]
    assert ran == [True] and "note" in columns
    with Store.open(db_url):  # already at the newest version: nothing runs again
        pass
    assert ran == [True]


def _drop_contract_v2_columns(conn) -> None:
    """What every store before version 9 lacked: contract v2's record and commitment time."""
    conn.execute(text("ALTER TABLE declarations DROP COLUMN record"))
    conn.execute(text("ALTER TABLE declarations DROP COLUMN committed_at"))


def test_a_version_8_store_keeps_its_v1_declarations_and_takes_v2_ones(db_url: str) -> None:
    """A store indexed from a v1 registry (no record handle, no commitment time in its events)
    is upgraded in place; declarations of a v2 deployment are added next to its old ones."""
    old = _event(b"v1 era" * 50, 5, declarer=ALICE)
    with Store.open(db_url) as store:
        store.apply(CHAIN, CONTRACT, [old], None, 5, old.block_hash)
        with store.engine.begin() as conn:
            _drop_contract_v2_columns(conn)
            conn.execute(update(meta).where(meta.c.key == "schema_version").values(value="8"))
    with Store.open(db_url) as store:
        with store.engine.connect() as conn:
            assert migrations.stored_version(conn) == migrations.SCHEMA_VERSION >= 9
        (record,) = store.by_iscc_id(old.iscc_id)
        assert (record.record, record.committed_at) == (None, None)
        assert record.to_dict()["kind"] == "plain"
        sealed = _event(b"v2 era" * 50, 6, declarer=ALICE, record=7, committed_at=1_700_000_000)
        store.apply(CHAIN, "0x" + "77" * 20, [sealed], None, 6, sealed.block_hash)
        (new,) = store.by_iscc_id(sealed.iscc_id)
        assert (new.record, new.committed_at) == ("7", 1_700_000_000)
        assert new.to_dict()["kind"] == "sealed"


def test_a_version_1_store_gains_owner_and_revoked(db_url: str) -> None:
    event = _event(b"old store" * 50, 5, declarer=ALICE)
    with Store.open(db_url) as store:
        store.apply(CHAIN, CONTRACT, [event], None, 5, event.block_hash)
        with store.engine.begin() as conn:
            # Turn it back into what version 1 created.
            conn.execute(text("CREATE INDEX ix_units_type_value ON units (unit_type, value)"))
            conn.execute(text("ALTER TABLE declarations DROP COLUMN owner"))
            conn.execute(text("ALTER TABLE declarations DROP COLUMN revoked"))
            conn.execute(text("DROP TABLE metadata_docs"))
            conn.execute(text("DROP TABLE conflict_queue"))
            conn.execute(text("DROP TABLE conflicts"))
            conn.execute(text("DROP TABLE segment_sources"))
            conn.execute(text("DROP TABLE segments"))
            conn.execute(text("DROP INDEX ix_declarations_metahash"))
            _drop_contract_v2_columns(conn)
            conn.execute(update(meta).where(meta.c.key == "schema_version").values(value="1"))
    with Store.open(db_url) as store:
        (record,) = store.by_iscc_id(event.iscc_id)
        assert (record.owner, record.revoked) == (to_checksum_address(ALICE), False)
        with store.engine.connect() as conn:
            assert migrations.stored_version(conn) == migrations.SCHEMA_VERSION >= 5
            # v4 dropped the indexes no query uses (v2 had added the owner index).
            indexes = {
                i["name"] for t in ("units", "declarations") for i in inspect(conn).get_indexes(t)
            }
            assert not indexes & {"ix_units_type_value", "ix_declarations_owner"}
            # v5 queued the declaration indexed before it for conflict detection.
            queued = conn.execute(select(schema.conflict_queue.c.declaration_id)).scalars()
            assert len(list(queued)) == 1
            assert inspect(conn).has_table("segments")  # v6 added granular features
        assert store.put_metadata(bytes(32), b"{}")  # v3 added the metadata documents
        revoke = _change("Revoked", 6, isccId=event.iscc_id_body, owner=ALICE)
        store.apply(CHAIN, CONTRACT, [revoke], (5, event.block_hash), 6, _hash(6))
        assert store.by_iscc_id(event.iscc_id)[0].revoked


def test_version_6_units_and_queue_lose_their_foreign_keys(db_url: str) -> None:
    kept = _event(b"kept" * 50, 5, declarer=ALICE)
    reference = "FOREIGN KEY (declaration_id) REFERENCES declarations (id) ON DELETE CASCADE"
    with Store.open(db_url) as store:
        store.apply(CHAIN, CONTRACT, [kept], None, 5, kept.block_hash)
        with store.engine.begin() as conn:
            # Turn units and the queue back into what version 6 created: checked references.
            for name in schema.HOT_CHILDREN:
                if conn.dialect.name == "postgresql":
                    conn.execute(text(f"ALTER TABLE {name} ADD {reference}"))
                    continue
                table = schema.metadata.tables[name]
                columns = ", ".join(c.name for c in table.columns)
                conn.execute(text(f"CREATE TABLE old_{name} AS SELECT {columns} FROM {name}"))
                conn.execute(text(f"DROP TABLE {name}"))
                ddl = str(CreateTable(table).compile(conn)).rstrip().removesuffix(")")
                conn.execute(text(f"{ddl}, {reference})"))
                for index in table.indexes:
                    conn.execute(CreateIndex(index))
                conn.execute(text(f"INSERT INTO {name} SELECT {columns} FROM old_{name}"))
                conn.execute(text(f"DROP TABLE old_{name}"))
            assert inspect(conn).get_foreign_keys("units")
            _drop_contract_v2_columns(conn)
            conn.execute(update(meta).where(meta.c.key == "schema_version").values(value="6"))
    with Store.open(db_url) as store:
        with store.engine.connect() as conn:
            assert migrations.stored_version(conn) == migrations.SCHEMA_VERSION >= 7
            for name in schema.HOT_CHILDREN:
                assert inspect(conn).get_foreign_keys(name) == []
            assert {i["name"] for i in inspect(conn).get_indexes("units")} == {
                "ix_units_declaration"
            }
        assert (_rows(store, units), _rows(store, conflict_queue)) == (2, 1)
        # Rows written after the upgrade still go with their declaration.
        late = _event(b"late" * 50, 6, declarer=BOB)
        store.apply(CHAIN, CONTRACT, [late], (5, kept.block_hash), 6, late.block_hash)
        store.rollback(CHAIN, CONTRACT, (5, kept.block_hash))
        assert (_rows(store, units), _rows(store, conflict_queue)) == (2, 1)
        assert [r.iscc_id for r in store.by_iscc_id(kept.iscc_id)] == [kept.iscc_id]


def test_unusable_url_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        Store.open("nosuchdb://x")
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError):
        Store.open(f"sqlite:///{tmp_path / 'file' / 'sub' / 'x.db'}")


def test_record_is_frozen(store: Store) -> None:
    event = _event(b"frozen" * 50, 5)
    store.apply(CHAIN, CONTRACT, [event], None, 5, event.block_hash)
    (record,) = store.by_iscc_id(event.iscc_id)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.valid = False  # type: ignore[misc]


def test_schema_compiles_for_postgresql() -> None:
    dialect = postgresql.dialect()
    ddl = "\n".join(
        [str(CreateTable(t).compile(dialect=dialect)) for t in schema.metadata.sorted_tables]
        + [
            str(CreateIndex(i).compile(dialect=dialect))
            for t in schema.metadata.tables.values()
            for i in t.indexes
        ]
    )
    assert "BIGSERIAL" in ddl and "BYTEA" in ddl and "BOOLEAN" in ddl
    assert "REFERENCES declarations (id) ON DELETE CASCADE" in ddl


@pytest.mark.parametrize("column", ["iscc_id", "iscc_code", "datahash", "declarer"])
def test_lookups_use_an_index(sqlite_store: Store, column: str) -> None:
    with sqlite_store.engine.connect() as conn:
        plan = conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN SELECT * FROM declarations WHERE {column} = ?", ("x",)
        ).all()
    assert "USING INDEX" in " ".join(str(row) for row in plan)


def _index_names(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        inspector = inspect(conn)
        return {i["name"] for t in schema.metadata.tables for i in inspector.get_indexes(t)}


def _lookups(store: Store, a: DeclaredEvent) -> tuple:
    return (
        store.by_iscc_code(a.iscc_code),
        store.by_datahash(a.datahash),
        store.by_declarer(a.declarer),
        store.history(a.iscc_id),
    )


def test_deferred_lookup_indexes_answer_the_same_and_come_back(db_url: str) -> None:
    a = _event(b"alpha" * 50, 5, declarer=ALICE, metahash=b"\x02" * 32)
    again = _event(b"alpha" * 50, 6, declarer=BOB)
    with Store.open(db_url) as store:
        all_indexes = _index_names(store)
        assert set(schema.LOOKUP_INDEXES) <= all_indexes
        store.apply(CHAIN, CONTRACT, [a], None, 5, _hash(5))
        before = _lookups(store, a)

        store.defer_lookups()
        store.defer_lookups()  # a second catch-up finds them dropped already
        assert store.lookups_deferred()
        assert _index_names(store) == all_indexes - set(schema.LOOKUP_INDEXES)
        assert _lookups(store, a) == before
        store.apply(CHAIN, CONTRACT, [again], (5, _hash(5)), 6, _hash(6))

    # A killed indexer leaves the mark; whoever opens the store next still gets answers.
    with Store.open(db_url) as store:
        assert store.lookups_deferred()
        deferred = _lookups(store, a)
        assert [r.iscc_id for r in deferred[0]] == [a.iscc_id, again.iscc_id]
        assert store.restore_lookups()
        assert not store.lookups_deferred() and not store.restore_lookups()
        assert _index_names(store) == all_indexes
        assert _lookups(store, a) == deferred


def test_rollback_builds_deferred_lookup_indexes_first(store: Store) -> None:
    a = _event(b"alpha" * 50, 5, declarer=ALICE)
    store.apply(CHAIN, CONTRACT, [a], None, 5, _hash(5))
    store.defer_lookups()
    revoke = _change("Revoked", 6, isccId=a.iscc_id_body, owner=ALICE)
    store.apply(CHAIN, CONTRACT, [revoke], (5, _hash(5)), 6, _hash(6))
    assert store.rollback(CHAIN, CONTRACT, (5, _hash(5))) == 1
    assert not store.lookups_deferred()
    assert set(schema.LOOKUP_INDEXES) <= _index_names(store)
    assert not store.by_iscc_id(a.iscc_id)[0].revoked


def test_version_7_history_is_keyed_by_block_and_log_index(db_url: str) -> None:
    a, b = _event(b"one" * 50, 5, declarer=ALICE), _event(b"two" * 50, 6, declarer=BOB)
    with Store.open(db_url) as store:
        store.apply(CHAIN, CONTRACT, [a], None, 5, a.block_hash)
        store.apply(CHAIN, CONTRACT, [b], (5, a.block_hash), 6, b.block_hash)
        with store.engine.begin() as conn:
            # What version 7 had: unique by transaction hash, and an index by block.
            new_key = "UNIQUE (chain_id, contract, block_number, log_index)"
            old_key = "UNIQUE (chain_id, tx_hash, log_index)"
            if conn.dialect.name == "postgresql":
                conn.execute(text("ALTER TABLE events DROP CONSTRAINT uq_events_position"))
                conn.execute(
                    text(f"ALTER TABLE events ADD CONSTRAINT uq_events_position {old_key}")
                )
            else:
                columns = ", ".join(c.name for c in events.columns)
                conn.execute(text(f"CREATE TABLE old_events AS SELECT {columns} FROM events"))
                conn.execute(text("DROP TABLE events"))
                ddl = str(CreateTable(events).compile(conn))
                conn.execute(text(ddl.replace(new_key, old_key)))
                conn.execute(text(f"INSERT INTO events SELECT {columns} FROM old_events"))
                conn.execute(text("DROP TABLE old_events"))
            conn.execute(
                text("CREATE INDEX ix_events_block ON events (chain_id, contract, block_number)")
            )
            assert inspect(conn).get_unique_constraints("events")[0]["column_names"] == [
                "chain_id",
                "tx_hash",
                "log_index",
            ]
            _drop_contract_v2_columns(conn)
            conn.execute(update(meta).where(meta.c.key == "schema_version").values(value="7"))
    with Store.open(db_url) as store:
        with store.engine.connect() as conn:
            assert migrations.stored_version(conn) == migrations.SCHEMA_VERSION >= 8
            (key,) = inspect(conn).get_unique_constraints("events")
            assert key["column_names"] == ["chain_id", "contract", "block_number", "log_index"]
            indexes = {i["name"] for i in inspect(conn).get_indexes("events")}
            assert "ix_events_block" not in indexes and "ix_events_iscc_id" in indexes
        assert _rows(store, events) == 2 and store.history(b.iscc_id)[0]["block_number"] == 6
        # The position stays unique, and rollbacks by block still find their rows.
        with pytest.raises(IntegrityError), store.engine.begin() as conn:
            row = conn.execute(select(events).limit(1)).mappings().one()
            conn.execute(events.insert().values({**row, "id": None, "tx_hash": b"\x09" * 32}))
        assert store.rollback(CHAIN, CONTRACT, (5, a.block_hash)) == 1
        assert [r.iscc_id for r in store.by_iscc_id(a.iscc_id)] == [a.iscc_id]
