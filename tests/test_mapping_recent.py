"""The actors' count-bounded cache of recent values (band layouts, band matchers)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deepsalt.mapping.recent import Recent


@given(size=st.integers(1, 8), keys=st.lists(st.integers(0, 20), max_size=200))
def test_recent_holds_at_most_its_size_and_makes_a_value_only_when_not_kept(size, keys):
    """Against a model of a least-recently-used cache: which keys it holds, and which gets make."""
    cache: Recent[int, str] = Recent(size)
    recent: list[int] = []  # the model: kept keys by last use, newest last
    for key in keys:
        made: list[int] = []
        value = cache.get(key, lambda key=key, made=made: made.append(key) or f"value {key}")
        assert value == f"value {key}"
        assert made == ([] if key in recent else [key])
        if key in recent:
            recent.remove(key)
        recent = [*recent, key][-size:]
        assert len(cache) == len(recent) <= size


def test_recent_drops_the_least_recently_used_first():
    cache: Recent[str, int] = Recent(2)
    cache.get("a", lambda: 1)
    cache.get("b", lambda: 2)
    cache.get("a", lambda: 99)  # used again: "b" is now the oldest
    cache.get("c", lambda: 3)
    assert cache.get("a", lambda: 99) == 1
    assert cache.get("b", lambda: 20) == 20  # dropped, made again


def test_a_failed_make_is_not_kept():
    cache: Recent[str, int] = Recent(2)

    def fail() -> int:
        raise ValueError("bad scene")

    with pytest.raises(ValueError, match="bad scene"):
        cache.get("a", fail)
    assert len(cache) == 0 and cache.get("a", lambda: 1) == 1


def test_recent_refuses_a_size_below_one():
    with pytest.raises(ValueError, match="size of at least 1, got 0"):
        Recent(0)
