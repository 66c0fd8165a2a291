"""A small per-process cache whose entries expire: what the web keeps between a filer's
requests (the signed-in entity, the self-check's context)."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class Expiring(Generic[V]):
    """Values kept ``ttl`` seconds; emptied whole when it holds ``limit`` entries (a burst of
    new keys, not a working set, is what fills it). ``None`` is not kept."""

    def __init__(self, ttl: float, limit: int = 20_000):
        self.ttl, self.limit = ttl, limit
        self._items: dict[Hashable, tuple[float, V]] = {}

    def get(self, key: Hashable, load: Callable[[], V | None]) -> V | None:
        now = time.monotonic()
        hit = self._items.get(key)
        if hit and hit[0] > now:
            return hit[1]
        value = load()
        if value is not None:
            if len(self._items) >= self.limit:
                self._items.clear()
            self._items[key] = (now + self.ttl, value)
        return value

    def clear(self) -> None:
        self._items.clear()
