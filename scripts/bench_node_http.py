"""What the node's deadline costs a call: web3 and requests as they come, next to ours
(`registry.chain.contract.connect`, `registry.chain.node_http.DeadlineSession`), against a
local keep-alive JSON-RPC node that answers at once, so the difference is all client CPU.

    .venv/bin/python scripts/bench_node_http.py [--calls 2000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from rich.console import Console
from rich.table import Table
from web3 import Web3

from registry.chain.contract import connect
from registry.chain.node_http import RPC_DEADLINE_S, DeadlineSession


class _Node(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": "0x7a69"}).encode()
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        self.wfile.write(head % len(body) + body)

    def log_message(self, *_args: Any) -> None:
        pass


def _per_call_us(call: Callable[[], Any], calls: int, rounds: int) -> float:
    """The best round's microseconds per call, after a warm-up."""
    for _ in range(min(100, calls)):
        call()
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter() - started) / calls * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a few calls (figures mean nothing)")
    args = parser.parse_args()
    calls, rounds = (50, 1) if args.quick else (args.calls, args.rounds)

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Node)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    plain_web3, our_web3 = Web3(Web3.HTTPProvider(url)), connect(url)
    plain_session, our_session = requests.Session(), DeadlineSession(RPC_DEADLINE_S)
    pairs = [
        (
            "web3 eth.chain_id",
            lambda: plain_web3.eth.chain_id,
            lambda: our_web3.eth.chain_id,
        ),
        (
            "requests POST",
            lambda: plain_session.post(url, json=body, timeout=30).content,
            lambda: our_session.post(url, json=body, timeout=30).content,
        ),
    ]
    table = Table(title=f"{calls} calls per round, best of {rounds}: us per call")
    for column in ("call", "as it comes", "ours (deadline)", "difference"):
        table.add_column(column, justify="left" if column == "call" else "right")
    for name, theirs, ours in pairs:
        plain_us, our_us = _per_call_us(theirs, calls, rounds), _per_call_us(ours, calls, rounds)
        table.add_row(
            name,
            f"{plain_us:.0f}",
            f"{our_us:.0f}",
            f"{our_us - plain_us:+.0f} ({(our_us - plain_us) / plain_us:+.1%})",
        )
    Console().print(table)
    server.shutdown()


if __name__ == "__main__":
    main()
