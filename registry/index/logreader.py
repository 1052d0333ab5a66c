"""eth_getLogs answers fetched and decoded in a helper process while the indexer writes.

Catching up on dense blocks, an indexer that reads, parses and decodes logs in the same Python
process as it writes is bound by one core: the GIL serialises JSON parsing and decoding with
building and inserting rows. A worker process that fetches a range straight from the node,
parses and decodes it, and hands back the store's rows lets the writer use the second core. The
follower only engages it for dense ranges on an HTTP node: for a handful of logs the round trip
to the worker costs more than it saves. The worker's own CPU per log bounds the pipeline too, so
it takes the cheapest way from the answer's bytes to the same rows (`fetch_rows`, see
docs/benchmarks.md "Log reader"); the follower reads the other ranges of an HTTP node the same
way in its own process.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import pickle
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, BinaryIO

import msgspec
import requests
import urllib3

from registry.chain.node_http import RPC_DEADLINE_S, DeadlineSession, node_deadline
from registry.index.backoff import retry_after
from registry.index.events import EventDecoder, RawLog
from registry.index.rows import rows_of_logs
from registry.store.rows import BatchRows, rows_of

__all__ = ["LogReader", "Logs", "WorkerFailed", "fetch_rows", "logs_of"]

log = logging.getLogger(__name__)


class WorkerFailed(Exception):
    """The worker process died or could not start; the caller reads in-process instead."""


@dataclass(frozen=True)
class Logs:
    """A range's answer: its events' `rows` (None if the node refused), `count` logs returned,
    or the node's error message, or a timeout."""

    rows: BatchRows | None
    count: int = 0
    error: str | None = None
    timed_out: bool = False
    transport_error: str | None = None
    rate_limited: bool = False
    retry_after: float | None = None


# One decoder and one HTTP session per worker process, made at its first task.
_decoders: dict[int, EventDecoder] = {}
_session: DeadlineSession | None = None


class _Answer(msgspec.Struct):
    """A JSON-RPC answer to eth_getLogs, as the worker parses it first."""

    result: list[RawLog] | None = None
    error: Any = None


_parse_answer = msgspec.json.Decoder(_Answer).decode


def _fetch(url: str, query: dict[str, Any], realm: int, timeout: float) -> tuple[Any, ...]:
    """In the worker: POST eth_getLogs, parse, decode, build rows. Answers hold only plain
    values and the rows, whose classes the parent imports too, so they cannot fail to unpickle
    (exceptions from requests do not always pickle)."""
    global _session
    if _session is None:
        _session = DeadlineSession(RPC_DEADLINE_S)
    decoder = _decoders.get(realm) or _decoders.setdefault(realm, EventDecoder(realm))
    return fetch_rows(_session, decoder, url, query, timeout)


def fetch_rows(
    session: DeadlineSession,
    decoder: EventDecoder,
    url: str,
    query: dict[str, Any],
    timeout: float,
) -> tuple[Any, ...]:
    """POST eth_getLogs, parse the answer and build the store's rows the cheapest way: what a
    worker does, and what the follower does for the ranges it reads in-process."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [query]}
    with node_deadline(session.deadline_s) as cut:
        try:
            response = session.post(url, json=body, timeout=timeout, stream=True)
            # One read of the whole body: `response.content` reads it in 10 kB chunks, which
            # cost ~2 us of CPU per log of a large answer.
            content = response.raw.read(decode_content=True)
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            return ("timeout",)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if cut.expired:
                return ("timeout",)
            return ("transport", f"{type(exc).__name__}: {exc}")
        if cut.expired:  # a body read until the connection closed, cut short
            return ("timeout",)
    if response.status_code == 429:
        return ("rate_limited", response.headers.get("Retry-After"))
    try:
        answer = _parse_answer(content)
    except msgspec.MsgspecError:
        # Not an answer of the usual shape: the plain parser and the decoder of any mapping
        # make of it what the in-process indexer would.
        try:
            generic = json.loads(content)
        except ValueError as exc:
            return ("transport", f"{type(exc).__name__}: {exc}")
        if not isinstance(generic, dict):
            return ("transport", f"not a JSON-RPC answer: {str(generic)[:200]}")
        raw_logs = generic.get("result")
        failed = _failure(generic.get("error"), raw_logs)
        return failed or ("ok", len(raw_logs), rows_of(decoder.decode_logs(raw_logs)))
    failed = _failure(answer.error, answer.result)
    return failed or ("ok", len(answer.result), rows_of_logs(decoder, answer.result))


def logs_of(answer: tuple[Any, ...]) -> Logs:
    """A fetch_rows answer as Logs."""
    kind = answer[0]
    if kind == "ok":
        return Logs(answer[2], count=answer[1])
    if kind == "timeout":
        return Logs(None, timed_out=True)
    if kind == "error":
        return Logs(None, error=answer[1])
    if kind == "rate_limited":
        return Logs(None, rate_limited=True, retry_after=retry_after(answer[1]))
    return Logs(None, transport_error=answer[1])


def _failure(error: Any, raw_logs: Any) -> tuple[str, str] | None:
    """The worker's answer for a JSON-RPC error or a result that is not a list of logs."""
    if error:
        message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
        return ("error", message)
    if not isinstance(raw_logs, list):
        return ("transport", f"eth_getLogs answered {str(raw_logs)[:200]}")
    return None


class LogReader:
    """A worker process, started at the first read, that fetches and decodes eth_getLogs ranges.

    The worker is a plain `python -m registry.index.logreader` talking length-prefixed pickles
    over its stdin and stdout, not a multiprocessing pool: a spawned pool re-imports the
    parent's __main__ module, which re-runs any script that does not guard itself (a second
    indexer on the same store), and forking a threaded server is unsafe. A worker whose parent
    dies (kill -9) sees its stdin close and exits.
    """

    def __init__(self, url: str, realm: int, timeout: float) -> None:
        self.url = url
        self.realm = realm
        self.timeout = timeout
        self._process: subprocess.Popen[bytes] | None = None

    def read(self, query: dict[str, Any]) -> Logs:
        """The range's rows; raises WorkerFailed if the worker cannot do it."""
        self.start()
        assert self._process is not None
        try:
            assert self._process.stdin and self._process.stdout
            _send(self._process.stdin, (self.url, query, self.realm, self.timeout))
            answer = _receive(self._process.stdout)
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            self.close()
            raise WorkerFailed(f"{type(exc).__name__}: {exc}") from None
        return logs_of(answer)

    def start(self) -> None:
        """Start the worker process now, so that its imports (~0.7 s of CPU) are done by the
        time the first dense range is handed to it; raises WorkerFailed if it cannot start."""
        if self._process is not None:
            return
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
        except OSError as exc:
            raise WorkerFailed(f"{type(exc).__name__}: {exc}") from None

    @property
    def pid(self) -> int | None:
        """The worker process's id while it runs (it starts at the first read)."""
        return None if self._process is None else self._process.pid

    def __enter__(self) -> LogReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            if process.stdin:
                process.stdin.close()  # the worker's cue to exit
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _send(stream: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(8, "big") + data)
    stream.flush()


def _receive(stream: BinaryIO) -> Any:
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError("the log reader process ended")
    size = int.from_bytes(header, "big")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the log reader process ended mid-answer")
    return pickle.loads(data)


def _serve() -> None:
    """The worker's loop: one answer per request until the parent closes our stdin."""
    requests_in, answers_out = sys.stdin.buffer, sys.stdout.buffer
    # Nothing but answers may reach the parent's pipe.
    sys.stdout = sys.stderr
    # Decoding a range allocates a few hundred thousand objects and frees them by reference
    # counting (they form no cycles); the cyclic collector, triggered every 700 allocations,
    # only re-scans the live ones. Collect rarely, over what is not frozen.
    gc.freeze()
    gc.set_threshold(100_000, 50, 50)
    while True:
        try:
            request = _receive(requests_in)
        except EOFError:
            return
        _send(answers_out, _fetch(*request))


if __name__ == "__main__":
    _serve()
