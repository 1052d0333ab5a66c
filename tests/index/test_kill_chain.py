"""kill -9 of `iscc-registry index` at random moments, each followed by a restart, on a real
Hardhat node and both backends: no duplicate, no gap, ever.

Starting the command costs ~2 s of imports (web3, eth-account), so most runs are forked from
the test process, where everything is imported already, and run the CLI's `main()` there: a
separate process, killed with SIGKILL like any other. One run of each test is the installed
console script itself, killed once it has reported progress, and the installed script finishes
the job at the end.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from chain_truth import assert_consistent_prefix, chain_declarations, store_declarations
from eth_account.signers.local import LocalAccount
from index_helpers import content, declare_direct
from sqlalchemy import inspect

from registry.chain.contract import Registry
from registry.chain.devnet import free_port
from registry.cli import main
from registry.store.store import Store

pytestmark = pytest.mark.chain

KILLS = 30
DECLARATIONS = 70
ARGS = ["index", "--follow", "--json", "--max-range", "1", "--poll", "0.05"]


def _run_cli(env: dict[str, str], args: list[str], log: str) -> None:
    """Body of a forked child: the `iscc-registry` command with its own settings and output."""
    os.environ.update(env)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    # pytest's capture objects stand in for sys.stdout/stderr; the CLI must write to the log.
    sys.stdout = sys.stderr = open(fd, "w", buffering=1)  # noqa: SIM115
    sys.argv = ["iscc-registry", *args]
    code = 1
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os._exit(code)


def cli_env(registry: Registry, tmp_path: Path, db_url: str) -> dict[str, str]:
    """Settings that point the CLI at this registry and store, with a home in `tmp_path`."""
    deployment_file = tmp_path / "deployment.json"
    registry.deployment.save(deployment_file)
    return {
        "ISCC_REGISTRY_HOME": str(tmp_path / "home"),
        "ISCC_REGISTRY_DEPLOYMENT_FILE": str(deployment_file),
        "ISCC_REGISTRY_DB_URL": db_url,
    }


def _script() -> str:
    script = shutil.which("iscc-registry", path=str(Path(sys.executable).parent))
    assert script, "the iscc-registry console script is not installed next to this Python"
    return script


def _index_to_the_end(env: dict[str, str], *options: str) -> dict:
    """One run of the installed `iscc-registry index --json` to the head: its report."""
    result = subprocess.run(
        [_script(), "index", "--json", *options],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
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


def kill_cli_after(env: dict[str, str], log: str, seconds: float, args: list[str] = ARGS) -> None:
    """Run `iscc-registry` with `args` in a forked child and kill -9 it after `seconds`."""
    child = multiprocessing.get_context("fork").Process(target=_run_cli, args=(env, args, log))
    child.start()
    time.sleep(seconds)
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    # Killed, not crashed: a child that failed on its own would have exited.
    assert child.exitcode == -signal.SIGKILL, Path(log).read_text()[-2000:]


def test_kill_9_at_random_moments_leaves_no_duplicate_and_no_gap(
    registry: Registry, busy_chain: list, db_url: str, tmp_path: Path
) -> None:
    env = cli_env(registry, tmp_path, db_url)
    log = str(tmp_path / "index.log")
    rng = random.Random(42)
    checkpoints = []

    for kill in range(KILLS):
        if kill == KILLS // 2:
            # The real command, killed once it has committed at least one batch.
            process = subprocess.Popen(
                [_script(), *ARGS],
                env={**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert process.stdout is not None
            json.loads(process.stdout.readline())  # a progress line: a batch is committed
            time.sleep(rng.uniform(0, 0.2))
            process.send_signal(signal.SIGKILL)
            assert process.wait(10) == -signal.SIGKILL
        else:
            kill_cli_after(env, log, rng.uniform(0.15, 0.7))
        with Store.open(db_url) as store:
            checkpoints.append(assert_consistent_prefix(registry, store, busy_chain))

    head = registry.w3.eth.block_number
    assert checkpoints == sorted(checkpoints)
    # Most kills landed while there was still work to do, between batches that made progress.
    assert sum(done < head for done in checkpoints) >= KILLS * 2 // 3
    assert len(set(checkpoints)) >= KILLS // 3

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
        target=_run_cli, args=(env, ["index", "--follow", "--poll", "0.05"], str(log))
    )
    child.start()
    truth = chain_declarations(registry)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with Store.open(db_url) as store:
            if store_declarations(store, registry.contract.address) == truth:
                break
        time.sleep(0.1)
    os.kill(child.pid, signal.SIGTERM)
    child.join(15)
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
    left_deferred = 0
    args = [*ARGS, "--defer-lookups-after", "1"]
    for _ in range(8):
        kill_cli_after(env, log, rng.uniform(0.3, 1.0), args)
        with Store.open(db_url) as store:
            assert_consistent_prefix(registry, store, busy_chain)
            left_deferred += store.lookups_deferred()
    assert left_deferred >= 4

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
        [_script(), "index"], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1 and "error" in result.stderr
    with Store.open(db_url) as store:
        assert not store.lookups_deferred()
