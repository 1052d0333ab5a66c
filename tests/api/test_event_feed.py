"""The server-sent-events feed under a real uvicorn server, on SQLite and PostgreSQL: resuming
with Last-Event-ID, live notices, filters, and the cap on streams (a client that goes away gives
its place back)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from registry.api import create_app
from registry.chain.devnet import free_port
from registry.config import Settings
from registry.ledger import notify
from registry.store.store import Store

WORK = "ISCC:MAIGBISBQHSAAAAH"
OTHER = "ISCC:MAIGCISBQHSAAAAH"


def announce(store: Store, seq: int, work: str = WORK) -> int:
    case_id = "0x" + f"{seq:02x}" * 32
    with store._write() as conn:
        notice = notify.record_notice(
            conn,
            case_id=case_id,
            case_seq=0,
            opened=True,
            kind="exclusive_overlap",
            works=[work],
            parties=[],
            case={"id": case_id, "kind": "exclusive_overlap", "works": [work]},
            event={"seq": 0, "action": "open"},
        )
    assert notice is not None
    return notice


class Server:
    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                pytest.fail("the server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


class Stream:
    """A raw HTTP client of the feed: reads the answer's head, then SSE frames."""

    def __init__(self, port: int, query: str = "", headers: dict[str, str] | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        # Connection: close, so a short answer (an error) ends with the connection.
        lines = [f"GET /v1/events{query} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buffer = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self.chunked = b"transfer-encoding: chunked" in head.lower()
        self.text = ""

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the server closed the stream")
            self.buffer += data
        part, _, self.buffer = self.buffer.partition(marker)
        return part

    def body(self) -> bytes:
        """The rest of a short (non-stream) answer."""
        while chunk := self.sock.recv(65536):
            self.buffer += chunk
        return self.buffer

    def frame(self) -> dict[str, str]:
        """The next SSE frame with data (comments and retry lines skipped)."""
        while True:
            while "\n\n" not in self.text:
                if self.chunked:
                    size = int(self._until(b"\r\n"), 16)
                    while len(self.buffer) < size + 2:
                        data = self.sock.recv(65536)
                        if not data:
                            raise EOFError("the server closed the stream")
                        self.buffer += data
                    self.text += self.buffer[:size].decode()
                    self.buffer = self.buffer[size + 2 :]
                else:
                    self.text += self._until(b"\n").decode() + "\n"
            raw, _, self.text = self.text.partition("\n\n")
            fields = dict(line.split(": ", 1) for line in raw.split("\n") if ": " in line)
            fields.pop("", None)
            if "data" in fields:
                return fields

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as store:
        yield store


@pytest.fixture
def served(tmp_path: Path, store: Store) -> Iterator[Server]:
    settings = Settings(home=tmp_path / "home", max_event_streams=3, event_streams_per_client=2)
    with Server(create_app(settings, store=store)) as server:
        yield server


def test_a_client_resumes_after_its_last_event_id_and_then_gets_live_notices(
    served: Server, store: Store
) -> None:
    first, second, third = (announce(store, n) for n in (1, 2, 3))
    stream = Stream(served.port, headers={"Last-Event-ID": str(first)})
    try:
        assert stream.status == 200
        replayed = [stream.frame(), stream.frame()]
        assert [int(f["id"]) for f in replayed] == [second, third]
        assert {f["event"] for f in replayed} == {"case.opened"}
        assert json.loads(replayed[0]["data"])["case"]["id"] == "0x" + "02" * 32
        # The same bytes a webhook would carry.
        assert replayed[1]["data"].encode() == notify.notice_body(
            notify.notices_after(store, second)[0]
        )
        live = announce(store, 4)
        assert int(stream.frame()["id"]) == live
    finally:
        stream.close()


def test_without_a_position_the_feed_starts_now_and_after_replays(
    served: Server, store: Store
) -> None:
    old = announce(store, 1)
    fresh = Stream(served.port)
    replaying = Stream(served.port, query="?after=0")
    try:
        assert int(replaying.frame()["id"]) == old
        new = announce(store, 2)
        assert int(fresh.frame()["id"]) == new
        assert int(replaying.frame()["id"]) == new
    finally:
        fresh.close()
        replaying.close()


def test_filters_choose_what_a_stream_carries(served: Server, store: Store) -> None:
    stream = Stream(served.port, query=f"?after=0&work={OTHER}")
    try:
        announce(store, 1, WORK)
        mine = announce(store, 2, OTHER)
        frame = stream.frame()
        assert int(frame["id"]) == mine
        assert json.loads(frame["data"])["case"]["works"] == [OTHER]
    finally:
        stream.close()


def test_streams_are_capped_and_a_client_that_leaves_frees_its_place(
    served: Server, store: Store
) -> None:
    first, second = Stream(served.port), Stream(served.port)
    third = Stream(served.port)
    try:
        assert (first.status, second.status) == (200, 200)
        assert third.status == 503
        assert b"2 event streams open" in third.body()
        first.close()
        deadline = time.monotonic() + 30
        while True:
            again = Stream(served.port)
            if again.status == 200:
                break
            again.close()
            assert time.monotonic() < deadline, "the closed stream's place never came back"
            time.sleep(0.1)
        notice = announce(store, 1)
        assert int(again.frame()["id"]) == notice
        again.close()
    finally:
        for stream in (first, second, third):
            stream.close()


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("", {"Last-Event-ID": "abc"}),
        ("", {"Last-Event-ID": "99999999999999999999"}),
        ("?after=-1", {}),
        ("?work=nope", {}),
        ("?kind=NOT%20A%20KIND", {}),
    ],
)
def test_bad_positions_and_filters_are_refused(
    served: Server, query: str, headers: dict[str, str]
) -> None:
    stream = Stream(served.port, query=query, headers=headers)
    try:
        assert stream.status in (400, 422)
        assert b'"message"' in stream.body()
    finally:
        stream.close()


class _FewThreads:
    """The app with only `threads` worker threads for blocking work (issue 18's starvation)."""

    def __init__(self, app: Any, threads: int) -> None:
        self.app = app
        self.threads = threads

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = self.threads
        await self.app(scope, receive, send)


def test_waiting_streams_hold_no_worker_thread(tmp_path: Path, store: Store) -> None:
    """Eight streams wait on a service with two worker threads, and it still answers."""
    settings = Settings(home=tmp_path / "home", max_event_streams=20, event_streams_per_client=20)
    with Server(_FewThreads(create_app(settings, store=store), threads=2)) as served:
        streams = [Stream(served.port) for _ in range(8)]
        try:
            assert {s.status for s in streams} == {200}
            with socket.create_connection(("127.0.0.1", served.port), timeout=30) as conn:
                conn.sendall(b"GET /v1/cases HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answer = b""
                while chunk := conn.recv(65536):
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 200") and b'"cases":[]' in answer
            notice = announce(store, 1)
            assert {int(s.frame()["id"]) for s in streams} == {notice}
        finally:
            for stream in streams:
                stream.close()
