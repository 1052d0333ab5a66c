"""Killing `iscc-registry index` with SIGKILL at moments its own progress reports decide, for
the kill tests of the indexer (tests/index) and of conflict detection (tests/ledger)."""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from registry.chain.contract import Registry
from registry.cli import main
from registry.index.report import SyncReport

# Only for a run that hangs: no assertion waits for a figure the machine's speed decides.
HANG_GUARD_S = 600

ARGS = ["index", "--follow", "--json", "--max-range", "1", "--poll", "0.05"]


def _run_cli(env: dict[str, str], args: list[str], log: str, progress: int | None) -> None:
    """Body of a forked child: the `iscc-registry` command with its own settings, stderr to
    `log` and stdout to the file descriptor `progress` (to `log` as well when None)."""
    os.environ.update(env)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 2)
    os.dup2(fd if progress is None else progress, 1)
    # pytest's capture objects stand in for sys.stdout/stderr; the CLI must write to 1 and 2.
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.argv = ["iscc-registry", *args]
    code = 1
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os._exit(code)


# Bytes of output an indexer can write before it blocks until the test reads: the smallest pipe.
PIPE_BYTES = os.sysconf("SC_PAGE_SIZE")

# A progress line is never shorter than the report of block 0 with nothing in it.
SHORTEST_REPORT = len(json.dumps(SyncReport(0, 0, 0, 0, 0, 0, 0.0).to_dict())) + 1

RUN_AHEAD = PIPE_BYTES // SHORTEST_REPORT + 2

"""Most ranges an indexer commits after the progress line that made the test kill it: as many
as the pipe holds, one blocked in its write, one between its commit and its report."""


def _small_pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    assert fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ) == PIPE_BYTES
    return read_end, write_end


def _reports(stream: BinaryIO) -> Iterator[dict]:
    """The indexer's JSON progress lines, read a byte at a time: nothing is read ahead, so the
    pipe is all the indexer can fill before it waits for the test."""
    line = bytearray()
    while byte := stream.read(1):
        if byte == b"\n":
            yield json.loads(line)
            line.clear()
        else:
            line += byte


Until = Callable[[list[dict]], bool]


def after(count: int) -> Until:
    """Kill once the run has reported `count` committed ranges."""
    return lambda reports: len(reports) >= count


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


def kill_cli_when(
    env: dict[str, str],
    log: str,
    until: Until,
    pause: float = 0.0,
    args: list[str] = ARGS,
) -> list[dict]:
    """Run `iscc-registry` with `args` (JSON progress) in a forked child, read its progress
    reports until `until` holds for them, wait `pause` seconds (the indexer goes on meanwhile,
    as far as the pipe lets it) and kill -9 it. Returns the reports read."""
    read_end, write_end = _small_pipe()
    child = multiprocessing.get_context("fork").Process(
        target=_run_cli, args=(env, args, log, write_end)
    )
    child.start()
    os.close(write_end)  # the child's copy is the only writer: its death ends the stream
    # An indexer that never reports what `until` waits for (one following an idle chain)
    # would keep the test waiting for ever: killed then, it ends the stream.
    guard = threading.Timer(HANG_GUARD_S, os.kill, (child.pid, signal.SIGKILL))
    guard.start()
    reports: list[dict] = []
    with open(read_end, "rb", buffering=0) as stream:
        for report in _reports(stream):
            reports.append(report)
            if until(reports):
                break
        else:
            raise AssertionError(f"the indexer stopped on its own: {Path(log).read_text()[-2000:]}")
        time.sleep(pause)  # varies where the kill lands; nothing below depends on it
        os.kill(child.pid, signal.SIGKILL)
    guard.cancel()
    child.join(HANG_GUARD_S)
    # Killed, not crashed: a child that failed on its own would have exited.
    assert child.exitcode == -signal.SIGKILL, Path(log).read_text()[-2000:]
    return reports


def kill_script_when(env: dict[str, str], until: Until, pause: float = 0.0) -> list[dict]:
    """kill_cli_when for the installed console script, a process of its own."""
    process = subprocess.Popen(
        [_script(), *ARGS],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        bufsize=0,
    )
    assert process.stdout is not None
    # Shrunk before the script has written anything: it needs seconds to import.
    fcntl.fcntl(process.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    guard = threading.Timer(HANG_GUARD_S, process.kill)
    guard.start()
    reports: list[dict] = []
    for report in _reports(process.stdout):  # type: ignore[arg-type]
        reports.append(report)
        if until(reports):
            break
    else:
        raise AssertionError("the indexer stopped on its own")
    time.sleep(pause)
    process.send_signal(signal.SIGKILL)
    guard.cancel()
    assert process.wait(10) == -signal.SIGKILL
    process.stdout.close()
    return reports
