"""Authentication failure limits per account and per source address (sliding window).

In-process: one node counts its own failures. The limiter is a small interface so a shared
store (the database or NATS KV) can replace it when nodes multiply.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class FailureLimiter:
    def __init__(
        self,
        *,
        per_account: int,
        per_address: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {"account": per_account, "address": per_address}
        self._window = window_seconds
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, kind: str, key: str) -> deque[float]:
        stamps = self._failures.setdefault((kind, key), deque())
        horizon = self._clock() - self._window
        while stamps and stamps[0] < horizon:
            stamps.popleft()
        return stamps

    def blocked(self, account: str, address: str | None) -> bool:
        if len(self._recent("account", account)) >= self._limits["account"]:
            return True
        return (
            bool(address) and len(self._recent("address", address or "")) >= self._limits["address"]
        )

    def failed(self, account: str, address: str | None) -> None:
        now = self._clock()
        self._recent("account", account).append(now)
        if address:
            self._recent("address", address).append(now)
        if len(self._failures) > 100_000:  # bound memory under a spray of names
            self._failures = {k: v for k, v in self._failures.items() if v}

    def succeeded(self, account: str) -> None:
        self._failures.pop(("account", account), None)
