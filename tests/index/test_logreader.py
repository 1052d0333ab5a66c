"""The worker process that fetches and decodes eth_getLogs answers, against a small HTTP
server standing in for a node (the chain tests run it against Hardhat)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from index_helpers import content, make_log

from registry.chain.devnet import free_port
from registry.index.events import EventDecoder
from registry.index.logreader import LogReader
from registry.index.rows import rows_of


def _json_rpc_form(log: dict[str, Any]) -> dict[str, Any]:
    """A web3-style log (bytes, ints) as a node's JSON answer carries it (0x hex)."""

    def hexed(value: Any) -> Any:
        if isinstance(value, bytes):
            return "0x" + value.hex()
        if isinstance(value, int) and not isinstance(value, bool):
            return hex(value)
        if isinstance(value, list):
            return [hexed(v) for v in value]
        return value

    return {key: hexed(value) for key, value in log.items()}


class _Node:
    """Answers every POST with the JSON it is given."""

    def __init__(self) -> None:
        self.answer: Any = None
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                body = json.dumps(node.answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def node() -> Iterator[_Node]:
    fake = _Node()
    yield fake
    fake.server.shutdown()


@pytest.fixture(scope="module")
def reader(node: _Node) -> Iterator[LogReader]:
    with LogReader(node.url, realm=0, timeout=10) as worker:
        yield worker


def test_the_worker_decodes_like_the_indexer(node: _Node, reader: LogReader) -> None:
    items = [content(b"worker %d" % i * 40) for i in range(20)]
    logs = [
        _json_rpc_form(make_log(item["raw"], item["digest"], log_index=i, iscc_id_body=1000 + i))
        for i, item in enumerate(items)
    ]
    node.answer = {"jsonrpc": "2.0", "id": 1, "result": logs}
    answer = reader.read({"fromBlock": "0x1", "toBlock": "0x2"})
    assert answer.count == 20
    assert answer.rows == rows_of(EventDecoder(0).decode_logs(logs))


def test_a_node_error_comes_back_as_its_message(node: _Node, reader: LogReader) -> None:
    message = "query returned more than 10000 results"
    node.answer = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32005, "message": message}}
    answer = reader.read({})
    assert answer.rows is None and answer.error == message


def test_a_node_that_is_not_there_is_a_transport_error() -> None:
    with LogReader(f"http://127.0.0.1:{free_port()}", realm=0, timeout=5) as worker:
        answer = worker.read({})
    assert answer.rows is None and answer.transport_error
