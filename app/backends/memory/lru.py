"""`Lru`: the bounded map under every memory store; a full map drops its least recently used key.

``on_evict`` sees each key dropped for room (not those popped on purpose), so an index kept beside
the map (the cache's tags) stays in step with it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

Clock = Callable[[], float]
V = TypeVar("V")


class Lru(Generic[V]):
    """An OrderedDict kept at ``max_keys`` by dropping from the old end."""

    def __init__(self, max_keys: int, on_evict: Callable[[str, V], None] | None = None) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self._data: OrderedDict[str, V] = OrderedDict()
        self._max = max_keys
        self._on_evict = on_evict

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            old_key, old_value = self._data.popitem(last=False)
            if self._on_evict is not None:
                self._on_evict(old_key, old_value)

    def pop(self, key: str) -> V | None:
        return self._data.pop(key, None)
