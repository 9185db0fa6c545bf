"""Exponential back-off with jitter, shared by every retrying queue."""

from __future__ import annotations

import random
from dataclasses import dataclass

#: Beyond this many doublings the delay is the maximum anyway (and 2**n would overflow).
MAX_DOUBLINGS = 40


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off with jitter, so retries of many tasks do not arrive in lockstep."""

    initial_seconds: float
    max_seconds: float
    jitter: float = 0.1

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Seconds to wait after the `attempts`-th failed attempt (1-based)."""
        doublings = min(max(attempts, 1) - 1, MAX_DOUBLINGS)
        nominal = self.initial_seconds * 2.0**doublings
        return min(self.max_seconds, nominal * rng.uniform(1 - self.jitter, 1 + self.jitter))
