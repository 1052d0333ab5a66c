"""Waiting between retries: exponential, capped at a few seconds, jittered.

The cap keeps an indexer from sleeping long after its node is back (the delay had doubled to
16 s after a 20 s outage); the jitter keeps many clients of one provider from retrying in step.
"""

from __future__ import annotations

import random

__all__ = ["MAX_DELAY_S", "Backoff", "retry_after"]

MAX_DELAY_S = 5.0


class Backoff:
    """Delays of `first`, 2x, 4x ... up to `cap` seconds, each drawn from the upper half of its
    step ("equal jitter": never zero, never above the cap); `reset` after a success."""

    def __init__(
        self, first: float = 0.1, cap: float = MAX_DELAY_S, rng: random.Random | None = None
    ) -> None:
        if first <= 0 or cap < first:
            raise ValueError("backoff needs 0 < first <= cap")
        self.first = first
        self.cap = cap
        self.attempts = 0
        self._rng = rng or random.Random()

    def next(self, at_least: float | None = None) -> float:
        """The next delay; a server's Retry-After (`at_least`) is honoured up to the cap."""
        ceiling = min(self.cap, self.first * 2 ** min(self.attempts, 32))
        self.attempts += 1
        delay = self._rng.uniform(ceiling / 2, ceiling)
        if at_least is not None:
            delay = max(delay, min(at_least, self.cap))
        return delay

    def reset(self) -> None:
        self.attempts = 0


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (the HTTP-date form is rare for APIs: ignored)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
