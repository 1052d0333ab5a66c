"""kill -9 of `iscc-registry index` at random moments, each followed by a restart, on a real
Hardhat node and both backends: no duplicate, no gap, ever.

Starting the command costs ~2 s of imports (web3, eth-account), so most runs are forked from
the test process, where everything is imported already, and run the CLI's `main()` there: a
separate process, killed with SIGKILL like any other. One run of each test is the installed
console script itself, and the installed script finishes the job at the end.

Each kill is scheduled by the indexer's own progress, never by the clock: the test reads the
JSON progress lines the indexer writes after each committed range and kills it after a random
number of them. Its output goes through a pipe of the smallest size Linux allows, read one byte
at a time, so an indexer can run only as far ahead of the test as the pipe holds, however fast
or slow the machine is.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from chain_truth import assert_consistent_prefix, chain_declarations, store_declarations
from eth_account.signers.local import LocalAccount
from index_helpers import content, declare_direct
from kill_helpers import (
    ARGS,
    HANG_GUARD_S,
    RUN_AHEAD,
    Until,
    _run_cli,
    _script,
    after,
    cli_env,
    kill_cli_when,
    kill_script_when,
)
from sqlalchemy import inspect

from registry.chain.contract import Registry
from registry.chain.devnet import free_port
from registry.store.store import Store

pytestmark = pytest.mark.chain

KILLS = 30
DECLARATIONS = 70


def _index_to_the_end(env: dict[str, str], *options: str) -> dict:
    """One run of the installed `iscc-registry index --json` to the head: its report."""
    result = subprocess.run(
        [_script(), "index", "--json", *options],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.fixture
def busy_chain(registry: Registry, payer: LocalAccount) -> list:
    """Declarations spread over ~1,500 blocks, so a run of the indexer spans many batches."""
    rng = random.Random(7)
    for i in range(DECLARATIONS):
        declare_direct(registry, payer, content(f"kill test {i} ".encode() * 30))
        # evm_mine, not hardhat_mine: Hardhat gives blocks of a hardhat_mine interval a zero
        # parent hash, which the follower rightly refuses to take for a chain. One JSON-RPC
        # batch per gap.
        mines = [
            {"jsonrpc": "2.0", "id": n, "method": "evm_mine", "params": []}
            for n in range(rng.randrange(10, 30))
        ]
        requests.post(registry.deployment.rpc_url, json=mines, timeout=30).raise_for_status()
    return chain_declarations(registry)


def _blocks_to_index(registry: Registry) -> int:
    return registry.w3.eth.block_number - registry.deployment.block + 1


def test_kill_9_at_random_moments_leaves_no_duplicate_and_no_gap(
    registry: Registry, busy_chain: list, db_url: str, tmp_path: Path
) -> None:
    env = cli_env(registry, tmp_path, db_url)
    log = str(tmp_path / "index.log")
    rng = random.Random(42)
    plan = [rng.randint(1, 8) for _ in range(KILLS)]
    # Every run is cut short however far it runs ahead: the chain outlasts all of them.
    assert sum(plan) + KILLS * RUN_AHEAD < _blocks_to_index(registry)
    head = registry.w3.eth.block_number
    checkpoints = [-1]

    for kill, count in enumerate(plan):
        pause = rng.uniform(0, 0.05)
        if kill == KILLS // 2:  # the real command, once
            reports = kill_script_when(env, after(count), pause)
        else:
            reports = kill_cli_when(env, log, after(count), pause)
        with Store.open(db_url) as store:
            done = assert_consistent_prefix(registry, store, busy_chain)
        # What the run reported committed is there, it moved on from where the last run was
        # killed, and it was killed with blocks left to index.
        assert checkpoints[-1] < reports[-1]["to_block"] <= done < head
        checkpoints.append(done)

    for expected_new in (None, 0):
        report = _index_to_the_end(env)
        if expected_new is not None:  # indexing again is a no-op
            assert (report["events_new"], report["blocks"]) == (0, 0)
    with Store.open(db_url) as store:
        assert store_declarations(store, registry.contract.address) == busy_chain
        assert assert_consistent_prefix(registry, store, busy_chain) == head


def test_sigterm_stops_follow_after_the_batch_in_flight(
    registry: Registry, payer: LocalAccount, db_url: str, tmp_path: Path
) -> None:
    for i in range(3):
        declare_direct(registry, payer, content(f"sigterm {i} ".encode() * 30))
    env = cli_env(registry, tmp_path, db_url)
    log = tmp_path / "follow.log"
    child = multiprocessing.get_context("fork").Process(
        target=_run_cli, args=(env, ["index", "--follow", "--poll", "0.05"], str(log), None)
    )
    child.start()
    truth = chain_declarations(registry)
    # Waits for the indexer however long it takes; the bound only keeps a hung run from
    # hanging the suite.
    hang_guard = time.monotonic() + HANG_GUARD_S
    while True:
        with Store.open(db_url) as store:
            if store_declarations(store, registry.contract.address) == truth:
                break
        assert child.is_alive(), log.read_text()[-2000:]
        assert time.monotonic() < hang_guard, "the indexer hangs"
        time.sleep(0.1)
    os.kill(child.pid, signal.SIGTERM)
    child.join(HANG_GUARD_S)
    output = log.read_text()
    assert child.exitcode == 0, output[-2000:]
    assert "stopped" in output and "lag" in output and "events/s" in output
    with Store.open(db_url) as store:
        assert assert_consistent_prefix(registry, store, truth) == registry.w3.eth.block_number


def test_kill_9_while_the_lookup_indexes_are_deferred(
    registry: Registry, busy_chain: list, db_url: str, tmp_path: Path
) -> None:
    """A catch-up killed with its lookup indexes dropped: the next run carries on without them
    and builds them at its end."""
    env = cli_env(registry, tmp_path, db_url)
    log = str(tmp_path / "index.log")
    rng = random.Random(5)
    args = [*ARGS, "--defer-lookups-after", "1"]
    plan = [rng.randint(1, 8) for _ in range(8)]
    assert sum(plan) + len(plan) * RUN_AHEAD < _blocks_to_index(registry)

    def stored_one_and(count: int) -> Until:
        # The first range with an event shows the backlog: the indexes go before its report.
        return lambda reports: len(reports) >= count and reports[-1]["events_new"] > 0

    for run, count in enumerate(plan):
        until = stored_one_and(count) if run == 0 else after(count)
        kill_cli_when(env, log, until, rng.uniform(0, 0.05), args)
        with Store.open(db_url) as store:
            assert_consistent_prefix(registry, store, busy_chain)
            assert store.lookups_deferred()

    assert _index_to_the_end(env, "--defer-lookups-after", "1")["index_seconds"] > 0
    with Store.open(db_url) as store:
        assert not store.lookups_deferred()
        with store.engine.connect() as conn:
            indexes = {i["name"] for i in inspect(conn).get_indexes("declarations")}
        assert {"ix_declarations_datahash", "ix_declarations_iscc_code"} <= indexes
        assert store_declarations(store, registry.contract.address) == busy_chain


def test_a_one_shot_index_that_loses_its_node_builds_deferred_indexes(
    registry: Registry, db_url: str, tmp_path: Path
) -> None:
    env = cli_env(registry, tmp_path, db_url)
    with Store.open(db_url) as store:
        store.defer_lookups()
    env["ISCC_REGISTRY_RPC_URL"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = subprocess.run(
        [_script(), "index"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    assert result.returncode == 1 and "error" in result.stderr
    with Store.open(db_url) as store:
        assert not store.lookups_deferred()
