"""Token buckets per key (declarer, client address), so one party cannot drain the relayer."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

__all__ = ["RateLimiter"]

# Buckets of keys not seen for a while are dropped oldest first, so memory stays bounded under
# a flood of fresh addresses (a dropped bucket is simply full again, which is the lenient side).
MAX_KEYS = 100_000


class RateLimiter:
    """Allows `per_minute` events per key on average, bursts up to `burst`."""

    def __init__(self, per_minute: float, burst: int | None = None) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1, int(per_minute)))
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str) -> float:
        """0.0 if allowed (and counted), else the seconds until the next event would be."""
        now = time.monotonic()
        with self._lock:
            tokens, seen = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - seen) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > MAX_KEYS:
                self._buckets.popitem(last=False)
            return wait
