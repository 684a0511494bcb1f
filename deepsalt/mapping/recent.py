"""A count-bounded cache of the most recently used values, for what an actor keeps between tiles.

An actor maps tile after tile of a mosaic that may hold thousands of scenes; what it keeps per
scene (band layouts, band matchers) must not grow with the mosaic. Only the last few tiles' scenes
are likely to come back (tiles are planned in spatial order), so the least recently used value
is dropped first and made again if a later tile needs it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recent(Generic[K, V]):
    """At most ``size`` values by key; ``get`` makes a missing one with ``make`` (an error is not kept)."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"a cache of recent values needs a size of at least 1, got {size}")
        self.size = size
        self._values: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, make: Callable[[], V]) -> V:
        if key in self._values:
            self._values.move_to_end(key)
            return self._values[key]
        value = make()
        self._values[key] = value
        while len(self._values) > self.size:
            self._values.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._values)
