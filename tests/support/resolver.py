"""A resolver stub for the outbound guard (kit.netguard): names map to addresses, no DNS query."""

from __future__ import annotations

import threading
from collections.abc import Sequence


class StubResolver:
    """`table[name]` are the addresses `name` resolves to; any other name does not resolve.

    Changed from the test's thread while the server resolves on its own: reads take the lock.
    """

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self._table = dict(table or {})
        self._lock = threading.Lock()
        self.lookups: list[str] = []

    def set(self, name: str, *addresses: str) -> None:
        with self._lock:
            self._table[name] = list(addresses)

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        with self._lock:
            self.lookups.append(host)
            found = self._table.get(host)
        if found is None:
            raise OSError(f"{host}: name does not resolve")
        return list(found)
