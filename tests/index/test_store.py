"""The SQLite store: idempotent atomic batches, checkpoints, lookups and schema versions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from index_helpers import content, make_log
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from registry.errors import InvalidCode, StoreError
from registry.index import schema
from registry.index.events import DeclaredEvent, decode_declared
from registry.index.schema import blocks, events, meta, units
from registry.index.store import Store

CHAIN = 31337
CONTRACT = "0x" + "12" * 20
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20


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
    return decode_declared(log, realm=0)


def _rows(store: Store, table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_open_creates_folder_and_sets_sqlite_pragmas(store: Store, db_url: str) -> None:
    assert Path(db_url.removeprefix("sqlite:///")).exists()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    assert store.checkpoint(CHAIN, CONTRACT) is None
    assert store.count() == 0


def test_apply_is_idempotent(store: Store) -> None:
    batch = [_event(b"one" * 50, 5, declarer=ALICE), _event(b"two" * 50, 7, 1, declarer=BOB)]
    assert store.apply(CHAIN, CONTRACT, batch, 9, b"\x09" * 32) == 2
    assert store.apply(CHAIN, CONTRACT, batch, 9, b"\x09" * 32) == 0
    # A later batch that overlaps the first stores only what is new.
    later = [batch[1], _event(b"three" * 50, 12, declarer=ALICE)]
    assert store.apply(CHAIN, CONTRACT, later, 12, (12).to_bytes(32, "big")) == 1
    assert store.count() == 3
    assert _rows(store, events) == 3
    assert _rows(store, units) == 6  # Data + Instance per declaration
    assert _rows(store, blocks) == 4  # 5, 7, 9 (checkpoint) and 12
    assert store.checkpoint(CHAIN, CONTRACT.upper().replace("0X", "0x")) == 12


def test_duplicate_event_within_one_batch_is_stored_once(store: Store) -> None:
    event = _event(b"dup" * 50, 3)
    assert store.apply(CHAIN, CONTRACT, [event, event], 3, event.block_hash) == 1
    assert store.count() == 1


def test_failed_apply_changes_nothing(store: Store) -> None:
    first = _event(b"first" * 50, 4)
    store.apply(CHAIN, CONTRACT, [first], 4, first.block_hash)
    # Two new events claiming the same ISCC-ID: the events insert succeeds, the declarations
    # insert violates the unique key, so the whole batch must roll back.
    good = _event(b"good" * 50, 6)
    clash = _event(b"clash" * 50, 6, 1, iscc_id_body=good.iscc_id_body)
    with pytest.raises(StoreError, match="UNIQUE"):
        store.apply(CHAIN, CONTRACT, [good, clash], 8, b"\x08" * 32)
    assert store.checkpoint(CHAIN, CONTRACT) == 4
    assert _rows(store, events) == 1
    assert _rows(store, blocks) == 1
    assert _rows(store, units) == 2
    assert store.count() == 1


def test_checkpoint_never_moves_back(store: Store) -> None:
    store.apply(CHAIN, CONTRACT, [], 20, b"\x20" * 32)
    store.apply(CHAIN, CONTRACT, [], 15, b"\x15" * 32)
    assert store.checkpoint(CHAIN, CONTRACT) == 20
    assert store.checkpoint(CHAIN + 1, CONTRACT) is None


def test_changed_block_hash_is_refused(store: Store) -> None:
    store.apply(CHAIN, CONTRACT, [], 20, b"\x20" * 32)
    with pytest.raises(StoreError, match="reorganised"):
        store.apply(CHAIN, CONTRACT, [], 20, b"\x21" * 32)


def test_lookups_and_to_dict(store: Store) -> None:
    metahash = bytes(range(32))
    a = _event(b"alpha" * 50, 5, declarer=ALICE, metahash=metahash)
    b = _event(b"beta" * 50, 6, declarer=BOB, gateway="")
    again = _event(b"alpha" * 50, 7, declarer=BOB)  # same content, later, other declarer
    bad = _event(b"gamma" * 50, 8, declarer=ALICE, datahash=b"\x01" * 32)
    store.apply(CHAIN, CONTRACT, [a, b, again, bad], 8, bad.block_hash)

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


def test_invalid_code_is_stored_without_units(store: Store) -> None:
    log = make_log(bytes.fromhex("5f00") + bytes(16), b"\x02" * 32, block_number=3)
    event = decode_declared(log, 0)
    assert store.apply(CHAIN, CONTRACT, [event], 3, event.block_hash) == 1
    (record,) = store.by_datahash(b"\x02" * 32)
    assert record.iscc_code is None and not record.valid
    assert _rows(store, units) == 0


def test_units_are_signed_64_bit_values(store: Store) -> None:
    event = _event(b"units" * 50, 5)
    store.apply(CHAIN, CONTRACT, [event], 5, event.block_hash)
    with store.engine.connect() as conn:
        rows = conn.execute(select(units.c.unit_type, units.c.bits, units.c.value)).all()
    assert [tuple(r) for r in rows] == [(u.unit_type, 64, u.value) for u in event.units]
    with store.engine.connect() as conn:
        body = conn.execute(select(schema.declarations.c.iscc_id_body)).scalar_one()
    assert schema.from_signed64(body) == event.iscc_id_body


def test_reopened_store_keeps_everything(db_url: str) -> None:
    event = _event(b"persist" * 50, 5)
    with Store.open(db_url) as store:
        store.apply(CHAIN, CONTRACT, [event], 6, b"\x06" * 32)
    with Store.open(db_url) as store:
        assert store.checkpoint(CHAIN, CONTRACT) == 6
        assert store.by_iscc_id(event.iscc_id)[0].datahash == event.datahash


def test_in_memory_store_works() -> None:
    with Store.open("sqlite://") as store:
        event = _event(b"memory" * 50, 5)
        assert store.apply(CHAIN, CONTRACT, [event], 5, event.block_hash) == 1
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

    monkeypatch.setattr(schema, "MIGRATIONS", [add_column])
    with Store.open(db_url) as store, store.engine.connect() as conn:
        assert schema.stored_version(conn) == 2
        columns = [r[1] for r in conn.exec_driver_sql("PRAGMA table_info(declarations)")]
    assert ran == [True] and "note" in columns
    with Store.open(db_url):  # already at version 2: nothing runs again
        pass
    assert ran == [True]


def test_unusable_url_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        Store.open("nosuchdb://x")
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError):
        Store.open(f"sqlite:///{tmp_path / 'file' / 'sub' / 'x.db'}")


def test_record_is_frozen(store: Store) -> None:
    event = _event(b"frozen" * 50, 5)
    store.apply(CHAIN, CONTRACT, [event], 5, event.block_hash)
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
def test_lookups_use_an_index(store: Store, column: str) -> None:
    with store.engine.connect() as conn:
        plan = conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN SELECT * FROM declarations WHERE {column} = ?", ("x",)
        ).all()
    assert "USING INDEX" in " ".join(str(row) for row in plan)
