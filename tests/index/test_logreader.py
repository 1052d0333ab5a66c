"""The worker process that fetches and decodes eth_getLogs answers, against a small HTTP
server standing in for a node (the chain tests run it against Hardhat)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from index_helpers import content, json_rpc_form, make_log

from registry.chain.devnet import free_port
from registry.index.events import EventDecoder
from registry.index.logreader import LogReader
from registry.store.rows import rows_of


class _Node:
    """Answers every POST with the JSON it is given (bytes as they are)."""

    def __init__(self) -> None:
        self.answer: Any = None
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                answer = node.answer
                body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
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
        json_rpc_form(make_log(item["raw"], item["digest"], log_index=i, iscc_id_body=1000 + i))
        for i, item in enumerate(items)
    ]
    node.answer = {"jsonrpc": "2.0", "id": 1, "result": logs}
    answer = reader.read({"fromBlock": "0x1", "toBlock": "0x2"})
    assert answer.count == 20
    assert answer.rows == rows_of(EventDecoder(0).decode_logs(logs))


def test_logs_of_another_shape_are_decoded_the_general_way(node: _Node, reader: LogReader) -> None:
    """A pending log (null block hash), one without data, one with a numeric block number:
    the worker's typed parsing refuses the answer and decodes it as the indexer does."""
    items = [content(b"shape %d" % i * 40) for i in range(4)]
    logs = [
        json_rpc_form(make_log(item["raw"], item["digest"], log_index=i, iscc_id_body=50 + i))
        for i, item in enumerate(items)
    ]
    logs[0]["blockHash"] = None
    del logs[1]["data"]
    logs[2]["blockNumber"] = 10
    node.answer = {"jsonrpc": "2.0", "id": 1, "result": logs}
    answer = reader.read({})
    assert answer.count == 4
    assert answer.rows == rows_of(EventDecoder(0).decode_logs(logs))
    assert len(answer.rows.declarations) == 2


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"jsonrpc": "2.0", "id": 1, "result": "0x1"}, "eth_getLogs answered 0x1"),
        ({"jsonrpc": "2.0", "id": 1}, "eth_getLogs answered None"),
        ([{"jsonrpc": "2.0", "id": 1, "result": []}], "not a JSON-RPC answer"),
        (b"<html>busy</html>", "JSONDecodeError"),
    ],
)
def test_answers_without_logs_are_transport_errors(
    node: _Node, reader: LogReader, body: Any, says: str
) -> None:
    node.answer = body
    answer = reader.read({})
    assert answer.rows is None and says in answer.transport_error


def test_a_node_error_comes_back_as_its_message(node: _Node, reader: LogReader) -> None:
    message = "query returned more than 10000 results"
    node.answer = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32005, "message": message}}
    answer = reader.read({})
    assert answer.rows is None and answer.error == message


def test_a_node_that_is_not_there_is_a_transport_error() -> None:
    with LogReader(f"http://127.0.0.1:{free_port()}", realm=0, timeout=5) as worker:
        answer = worker.read({})
    assert answer.rows is None and answer.transport_error


@pytest.mark.parametrize("drip", ["headers", "body"])
def test_a_node_that_drips_its_logs_times_out_within_the_deadline(drip: str) -> None:
    """Outside attacker review: the log readers' reads were bounded by RPC_TIMEOUT_S each, so
    a node sending a byte at a time held a range, and the indexer, for as long as it kept on.
    Their whole answer is cut at the session's deadline, a timeout the follower retries."""
    from dripping_node import dripping_node

    from registry.chain.node_http import DeadlineSession
    from registry.index.logreader import fetch_rows

    with dripping_node(drip, size=1000) as url:
        started = time.monotonic()
        answer = fetch_rows(DeadlineSession(1.0), EventDecoder(0), url, {}, 5)
    assert answer == ("timeout",)
    assert time.monotonic() - started < 3
