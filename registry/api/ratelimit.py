"""Token buckets per key (declarer, client address, sponsor), so one party cannot drain the
relayer; the same buckets hold gas budgets, where one event costs its gas."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

__all__ = ["RateLimiter"]

# Buckets of keys not seen for a while are dropped oldest first, so memory stays bounded under
# a flood of fresh addresses (a dropped bucket is simply full again, which is the lenient side).
MAX_KEYS = 100_000


class RateLimiter:
    """Allows `per_minute` units per key on average, bursts up to `burst` (default: one
    minute's worth)."""

    def __init__(self, per_minute: float, burst: float | None = None) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1, int(per_minute)))
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str, cost: float = 1.0) -> float:
        """0.0 if allowed (and charged), else the seconds until `cost` would be."""
        now = time.monotonic()
        with self._lock:
            tokens = self._refill(key, now)
            wait = 0.0
            if tokens >= cost:
                tokens -= cost
            else:
                wait = (min(cost, self.burst) - tokens) / self.rate
            self._store(key, tokens, now)
            return wait

    def adjust(self, key: str, extra: float) -> None:
        """Charge `extra` more (or give back a negative amount) for an event already allowed,
        once its real cost is known; the bucket may go below zero, which delays the next one."""
        now = time.monotonic()
        with self._lock:
            self._store(key, self._refill(key, now) - extra, now)

    def _refill(self, key: str, now: float) -> float:
        tokens, seen = self._buckets.pop(key, (self.burst, now))
        return min(self.burst, tokens + (now - seen) * self.rate)

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (min(tokens, self.burst), now)
        while len(self._buckets) > MAX_KEYS:
            self._buckets.popitem(last=False)
