"""New heads over WebSocket: the node announces each block (`eth_subscribe("newHeads")`) and the
follower syncs at once instead of at its next poll.

Only a wake-up call: what is indexed still comes from the ranges the follower reads over HTTP,
so a missed or duplicated announcement costs latency, never data. The connection is kept up
with capped, jittered backoff; while it is down the follower polls as before.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from registry.index.backoff import Backoff

__all__ = ["NewHeads"]

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 10.0
# How often the listening thread looks at `stop` while no block comes.
RECV_TIMEOUT_S = 0.5


class NewHeads:
    """Sets `wake` whenever the node at `url` (ws:// or wss://) announces a new block."""

    def __init__(self, url: str, wake: threading.Event, stop: threading.Event) -> None:
        self.url = url
        self.wake = wake
        self.stop = stop
        self.heads = 0
        """Announcements received (for tests and monitoring)."""
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="new-heads", daemon=True)

    def start(self) -> NewHeads:
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        backoff = Backoff(first=0.2)
        while not self.stop.is_set():
            try:
                self._listen(backoff)
            except (OSError, TimeoutError, WebSocketException, ValueError) as exc:
                self.connected.clear()
                delay = backoff.next()
                log.warning("new heads from %s: %s; reconnecting in %.1f s", self.url, exc, delay)
                self.stop.wait(delay)

    def _listen(self, backoff: Backoff) -> None:
        with connect(self.url, open_timeout=OPEN_TIMEOUT_S, max_size=2**20) as ws:
            ws.send(
                json.dumps(
                    {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}
                )
            )
            answer = json.loads(ws.recv(timeout=OPEN_TIMEOUT_S))
            if "error" in answer:
                raise ValueError(f"eth_subscribe refused: {answer['error']}")
            subscription = answer.get("result")
            self.connected.set()
            backoff.reset()
            # Blocks may have come while we were away: one sync finds out.
            self.wake.set()
            while not self.stop.is_set():
                try:
                    message: Any = json.loads(ws.recv(timeout=RECV_TIMEOUT_S))
                except TimeoutError:
                    continue
                params = message.get("params") or {}
                if (
                    message.get("method") == "eth_subscription"
                    and params.get("subscription") == subscription
                ):
                    self.heads += 1
                    self.wake.set()
