"""The watchdog that cuts an exchange's sockets at its deadline (registry/deadline.py), on real
socket pairs."""

from __future__ import annotations

import math
import os
import socket
import time
from typing import Any

import pytest

from registry import deadline
from registry.deadline import cut_after


def _until(condition: Any, seconds: float = 3.0) -> None:
    stop = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < stop
        time.sleep(0.01)


def _cut_off(sock: socket.socket) -> bool:
    """Whether `sock` was shut down: reading it ends at once."""
    sock.settimeout(1.0)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_a_cut_shuts_its_sockets_at_its_time_and_not_before() -> None:
    here, there = socket.socketpair()
    with here, there, cut_after(0.3) as cut:
        cut.watch(here)
        assert not cut.expired
        started = time.monotonic()
        assert _cut_off(here)
        assert 0.25 < time.monotonic() - started < 1.5
        assert cut.expired


def test_a_socket_named_after_the_deadline_passed_is_shut_at_once() -> None:
    here, there = socket.socketpair()
    with here, there, cut_after(0.05) as cut:
        _until(lambda: cut._expired)
        cut.watch(here)
        started = time.monotonic()
        assert _cut_off(here)
        assert time.monotonic() - started < 0.5


def test_a_socket_left_before_the_deadline_is_not_shut() -> None:
    here, there = socket.socketpair()
    with here, there, cut_after(0.1) as cut:
        cut.watch(here)
        cut.unwatch(here)
        time.sleep(0.3)
        there.sendall(b"x")
        assert here.recv(1) == b"x"


def test_the_watchdog_outlives_a_socket_it_cannot_shut() -> None:
    """Outside review: TLS within TLS (an https:// proxy) gives urllib3's SSLTransport, which
    has no shutdown; the AttributeError ended the watchdog thread, and every other deadline
    waited for the next one to restart it."""

    class NoShutdown:
        pass

    here, there = socket.socketpair()
    with here, there, cut_after(0.3) as cut:
        cut.watch(here)
        with cut_after(0.05) as odd:
            odd.watch(NoShutdown())  # type: ignore[arg-type]
            _until(lambda: odd._expired)
        assert _cut_off(here)  # by the watchdog that fired the odd one


def test_odd_deadlines() -> None:
    """Outside review: an endless deadline made the watchdog's wait overflow (the thread
    ended), NaN could disorder its heap, and a deadline of 0 let a whole exchange through."""
    with pytest.raises(ValueError, match="NaN"), cut_after(math.nan):
        pass
    with cut_after(0) as now:
        assert now.expired
    here, there = socket.socketpair()
    with cut_after(math.inf), cut_after(1e12), here, there, cut_after(0.1) as cut:
        time.sleep(0.05)  # the watchdog takes the endless ones first
        cut.watch(here)
        assert _cut_off(here)


def test_nested_deadlines_the_earlier_one_cuts() -> None:
    here, there = socket.socketpair()
    with here, there, cut_after(30) as outer, cut_after(0.1, outer) as inner:
        inner.watch(here)
        assert _cut_off(here)
        assert inner.expired and not outer.expired
    here, there = socket.socketpair()
    with here, there, cut_after(0.1) as outer, cut_after(30, outer) as inner:
        inner.watch(here)
        assert _cut_off(here)
        assert inner.expired


def test_a_forked_child_does_not_fire_its_parents_cuts() -> None:
    """Outside review: a child of fork() that used a deadline restarted the watchdog on the
    parent's copied heap, and fired the parent's cuts there: through the inherited
    descriptors, that shut down the parent's sockets."""
    here, there = socket.socketpair()
    with here, there:
        with cut_after(0.5) as cut:
            cut.watch(here)
            child = os.fork()
            if child == 0:  # pragma: no cover - the child's own exit code is the check
                try:
                    with cut_after(0.01):
                        pass
                    time.sleep(1.0)
                finally:
                    os._exit(0)
        # The parent's exchange ended before its deadline: nothing may cut it now.
        _, status = os.waitpid(child, 0)
        assert status == 0
        there.sendall(b"x")
        here.settimeout(1.0)
        assert here.recv(1) == b"x"


def test_many_short_deadlines_leave_nothing_behind() -> None:
    for _ in range(20_000):
        with cut_after(60):
            pass
    # Ended deadlines are dropped from the watchdog's heap in bulk, not one per exchange.
    assert len(deadline._WATCHDOG._heap) < 5_000
