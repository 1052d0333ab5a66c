"""Waiting for the chain: between syncs until a new head or a poll interval, and for a node that
is not reachable yet (capped, jittered backoff)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from registry.chain.contract import Registry
from registry.chain.deployment import Deployment
from registry.errors import ChainUnavailable
from registry.index.backoff import MAX_DELAY_S, Backoff

__all__ = ["open_when_reachable", "pause"]

# While waiting for a new head, how often `stop` is looked at.
WAKE_CHECK_S = 0.2


def pause(stop: threading.Event, wake: threading.Event | None, seconds: float) -> None:
    """Wait `seconds`, or until `stop` or `wake` is set."""
    if wake is None:
        stop.wait(seconds)
        return
    deadline = time.monotonic() + seconds
    while not stop.is_set() and not wake.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        # `stop` is looked at every WAKE_CHECK_S: one thread cannot block on two events.
        wake.wait(min(left, WAKE_CHECK_S))
    wake.clear()


def open_when_reachable(
    deployment: Deployment,
    rpc_url: str | None,
    stop: threading.Event,
    on_wait: Callable[[str, float], None] | None = None,
) -> Registry | None:
    """Open the registry, waiting with capped, jittered backoff while its node does not answer
    (or does not have the contract yet); None if `stop` is set first. An indexer started before
    its node needs no supervisor to start it again."""
    backoff = Backoff(first=0.2, cap=MAX_DELAY_S)
    while not stop.is_set():
        try:
            return Registry.open(deployment, rpc_url)
        except ChainUnavailable as exc:
            delay = backoff.next()
            if on_wait is not None:
                on_wait(str(exc), delay)
            stop.wait(delay)
    return None
