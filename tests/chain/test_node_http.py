"""Requests to the chain node end within their deadline, however slowly the node answers: a
node on a real socket that drips its headers or its body a byte at a time."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from dripping_node import TLS, dripping_node

from registry.chain import contract
from registry.chain.node_http import DeadlineSession, node_deadline
from registry.errors import ChainUnavailable


def _call(session: requests.Session, url: str, method: str = "eth_chainId") -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": []}
    # Given per request: a CA bundle named in the environment overrides the session's.
    verify = str(TLS.with_suffix(".crt"))
    return session.post(url, json=body, timeout=(5, 5), verify=verify).json()["result"]


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("drip", ["headers", "body"])
def test_a_node_that_drips_its_answer_is_cut_at_the_deadline(drip: str, tls: bool) -> None:
    """Outside attacker review: requests bounds each read (here 5 s), and a byte every 0.1 s
    kept this 100-byte answer coming for 10 s (a node can go on for ever)."""
    with dripping_node(drip, tls=tls) as url:
        session = DeadlineSession(1.0)
        started = time.monotonic()
        with pytest.raises(requests.ReadTimeout, match="no whole answer within the deadline"):
            _call(session, url)
        assert time.monotonic() - started < 3


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_session_answers_whole_answers_and_goes_on_after_a_cut(tls: bool) -> None:
    """Answers of many reads arrive whole; after a request was cut, its connection is not
    handed to the next one (urllib3 sees it dropped), so that one is answered."""
    fast = frozenset({"eth_chainId"})
    with dripping_node("body", fast_methods=fast, size=3_000_000, tls=tls) as url:
        session = DeadlineSession(1.0)
        assert _call(session, url) == "0x7a69"
        with pytest.raises(requests.ReadTimeout):
            _call(session, url, "eth_blockNumber")
        assert [_call(session, url) for _ in range(3)] == ["0x7a69"] * 3


def test_many_threads_share_one_session() -> None:
    with dripping_node("body", fast_methods=frozenset({"eth_chainId"})) as url:
        session = DeadlineSession(5.0)
        answers: list[Any] = []
        threads = [
            threading.Thread(target=lambda: answers.append(_call(session, url))) for _ in range(40)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert answers == ["0x7a69"] * 40


def test_connecting_to_a_dripping_node_fails_within_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The probe's reads were bounded by CONNECT_TIMEOUT_S each, not in all."""
    monkeypatch.setattr(contract, "CONNECT_TIMEOUT_S", 1.0)
    with dripping_node("headers") as url:
        started = time.monotonic()
        with pytest.raises(ChainUnavailable, match="no Ethereum node answers"):
            contract.connect(url)
        assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("drip", "hang_up_after"), [("body", None), ("headers", 9)], ids=["drips", "hangs-up"]
)
def test_calls_after_the_probe_end_within_one_deadline(
    drip: str, hang_up_after: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node that answers the probe and drips everything else: each call ends within
    RPC_DEADLINE_S. Outside review: one that drips for nearly the deadline and then hangs up
    gave web3 a connection error, which it tries again (3 times), each try with a deadline of
    its own; the tries share their call's."""
    monkeypatch.setattr(contract, "RPC_DEADLINE_S", 1.5)
    fast = frozenset({"eth_chainId"})
    with dripping_node(drip, fast_methods=fast, hang_up_after=hang_up_after) as url:
        w3 = contract.connect(url)
        started = time.monotonic()
        with pytest.raises(requests.ReadTimeout):
            w3.eth.block_number  # noqa: B018 - the call is the test
        assert time.monotonic() - started < 2.5


def test_a_socket_made_after_the_deadline_passed_is_cut_at_once() -> None:
    """Outside review: sockets were named to the deadline only as they waited for an answer,
    and a deadline that passed while none was named (a slow connect or TLS handshake) cut
    nothing, ever: the answer then dripped unbounded."""
    with dripping_node("headers") as url:
        session = DeadlineSession(30.0)
        started = time.monotonic()
        with node_deadline(0.3):
            time.sleep(0.5)  # as if connecting alone had outlasted the deadline
            with pytest.raises(requests.ReadTimeout):
                _call(session, url)
        assert time.monotonic() - started < 2


def test_the_deadline_holds_through_an_http_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside review: with HTTP_PROXY in the environment, requests went by the proxy
    manager's pools, whose connections nobody watched: a dripping proxy (or node behind it)
    was never cut."""
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    with dripping_node("headers") as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy)
        session = DeadlineSession(1.0)
        started = time.monotonic()
        with pytest.raises(requests.ReadTimeout):
            _call(session, "http://node.invalid:8545/")
        assert time.monotonic() - started < 3


@contextmanager
def _deadline_running_out(request: Callable[[], Any]) -> Iterator[Any]:
    """`request()` made in another thread within a deadline of 0.4 s, whose block outlives
    the request; yields what it returned while that deadline runs out (and past it)."""
    answers: list[Any] = []
    asked, done = threading.Event(), threading.Event()

    def first() -> None:
        with node_deadline(0.4):
            answers.append(request())
            asked.set()
            done.wait(5)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert asked.wait(5)
        yield answers[0]
    finally:
        done.set()
        thread.join(5)


def test_a_deadline_leaves_alone_a_connection_another_request_took_over() -> None:
    """Outside review: a socket stayed named to its request's deadline after urllib3 took
    its connection back, so a deadline passing after the request (its block still running)
    cut another thread's request on the same connection."""
    fast, late = frozenset({"eth_chainId"}), frozenset({"eth_blockNumber"})
    with dripping_node("body", fast_methods=fast, late_methods=late) as url:
        session = DeadlineSession(30.0)
        with _deadline_running_out(lambda: _call(session, url)):  # its connection is pooled
            # Takes the pooled connection, and is answered after LATE_S (0.8 s) > 0.4 s.
            assert _call(session, url, "eth_blockNumber") == "0x7a69"


def test_a_tls_handshake_the_node_holds_is_cut_at_the_deadline() -> None:
    """Outside review: TLS takes the plain socket over before its handshake, so the socket
    the deadline named could not be shut down, and a node that never sent its side of the
    handshake held the call for the socket's timeout (here 5 s)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # accepts connections (the kernel does), answers nothing
    with server:
        session = DeadlineSession(1.0)
        started = time.monotonic()
        with pytest.raises(requests.ReadTimeout):
            _call(session, f"https://127.0.0.1:{server.getsockname()[1]}")
        assert time.monotonic() - started < 3


def test_a_connection_given_back_by_another_thread_leaves_its_deadline() -> None:
    """Outside review: a connection left the deadline of the thread that gave it back to
    urllib3's pool; an answer read in another thread (stream=True) left it named to the
    first thread's deadline, which then cut whoever used the connection next."""
    fast, late = frozenset({"eth_chainId"}), frozenset({"eth_blockNumber"})
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    # As `_call` asks (the same pool: its key holds the CA bundle), but streamed.
    verify = str(TLS.with_suffix(".crt"))
    with dripping_node("body", fast_methods=fast, late_methods=late) as url:
        session = DeadlineSession(30.0)

        def streamed() -> requests.Response:
            return session.post(url, json=body, timeout=(5, 5), stream=True, verify=verify)

        with _deadline_running_out(streamed) as answer:
            assert answer.json()["result"] == "0x7a69"  # read here
            answer.close()  # and given back to the pool from here
            assert _call(session, url, "eth_blockNumber") == "0x7a69"
