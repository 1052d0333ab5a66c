"""A local anvil node (Foundry, from the npm package `@foundry-rs/anvil`) with interval mining.

Hardhat's devnet mines one block per transaction; anvil with `--block-time` mines on a clock with
an EIP-1559 fee market, like a real chain, and has the RPC methods to make a chain misbehave
(reorgs, dropped transactions, a raised base fee). The tests run both.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from registry.errors import ChainUnavailable

START_TIMEOUT_S = 30.0


class Anvil:
    """One anvil process on 127.0.0.1:`port`, logging to `log_file`."""

    def __init__(
        self,
        node_dir: Path,
        port: int,
        log_file: Path,
        block_time: float | None = 1,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.node_dir = node_dir
        self.port = port
        self.log_file = log_file
        self.block_time = block_time
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        # The platform package carries the binary; calling it directly skips the Node wrapper
        # (bin.mjs), which would look for it the same way.
        packages = self.node_dir / "node_modules" / "@foundry-rs"
        found = sorted(packages.glob("anvil-*/bin/anvil"))
        if not found:
            raise ChainUnavailable(
                f"anvil is not installed in {self.node_dir}: run scripts/setup.sh first"
            )
        command = [str(found[0]), "--host", "127.0.0.1", "--port", str(self.port)]
        if self.block_time is not None:
            command += ["--block-time", str(self.block_time)]
        return command + list(self.extra_args)

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                self._command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_file.read_text(errors="replace")[-600:].strip()
                raise ChainUnavailable(f"anvil exited at start: {tail}")
            with contextlib.suppress(requests.RequestException, ChainUnavailable):
                self.rpc("eth_chainId")
                return
            time.sleep(0.1)
        self.stop()
        raise ChainUnavailable(f"anvil did not answer within {START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def rpc(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call; an error answer raises ChainUnavailable with the node's message."""
        answer = requests.post(
            self.rpc_url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
            timeout=10,
        ).json()
        if "error" in answer:
            raise ChainUnavailable(f"{method}: {answer['error'].get('message')}")
        return answer["result"]
