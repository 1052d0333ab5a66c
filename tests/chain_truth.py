"""What the chain says, read with web3's own event decoding (independent of the indexer), and
what the store holds, in the same form, so tests can compare them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from registry.chain.contract import Registry
from registry.chain.iscc_id import IsccId
from registry.store.schema import blocks, checkpoints, declarations, events
from registry.store.store import Store

Row = tuple[str, bytes, int, int, bytes]


def chain_declarations(registry: Registry, to_block: int | None = None) -> list[Row]:
    """(ISCC-ID, tx hash, log index, block number, block hash) of every Declared log."""
    logs = registry.contract.events.Declared().get_logs(
        from_block=registry.deployment.block,
        to_block=registry.w3.eth.block_number if to_block is None else to_block,
    )
    realm = registry.deployment.realm
    return sorted(
        (
            str(IsccId(log["args"]["isccId"], realm)),
            bytes(log["transactionHash"]),
            log["logIndex"],
            log["blockNumber"],
            bytes(log["blockHash"]),
        )
        for log in logs
    )


def store_declarations(store: Store, contract: str) -> list[Row]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                declarations.c.iscc_id,
                declarations.c.tx_hash,
                declarations.c.log_index,
                declarations.c.block_number,
                declarations.c.block_hash,
            ).where(declarations.c.contract == contract)
        ).all()
    return sorted((r[0], bytes(r[1]), r[2], r[3], bytes(r[4])) for r in rows)


def store_events(store: Store, contract: str) -> list[tuple[bytes, int]]:
    """Keys of the history rows, duplicates included (a duplicate would show twice)."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(events.c.tx_hash, events.c.log_index).where(events.c.contract == contract)
        ).all()
    return sorted((bytes(r[0]), r[1]) for r in rows)


def store_tables(store: Store, contract: str) -> dict[str, Any]:
    """Every row the registry has in the store, without surrogate ids: equal stores give equal
    dicts whichever backend or order of batches produced them."""
    result: dict[str, Any] = {}
    with store.engine.connect() as conn:
        for table in (declarations, events, blocks, checkpoints):
            columns = [c for c in table.c if c.name not in ("id",)]
            rows = conn.execute(select(*columns).where(table.c.contract == contract)).all()
            result[table.name] = sorted(
                tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows
            )
    return result


def assert_consistent_prefix(registry: Registry, store: Store, truth: list[Row]) -> int:
    """The store holds exactly the chain's declarations up to its checkpoint: no gap, no
    duplicate, nothing beyond. Returns the checkpoint block (or -1)."""
    contract = registry.contract.address
    checkpoint = store.checkpoint_block(registry.deployment.chain_id, contract)
    done = -1 if checkpoint is None else checkpoint[0]
    if checkpoint is not None:
        assert bytes(registry.w3.eth.get_block(done)["hash"]) == checkpoint[1]
    expected = [row for row in truth if row[3] <= done]
    assert store_declarations(store, contract) == expected
    assert store_events(store, contract) == sorted((row[1], row[2]) for row in expected)
    return done
