"""``keep_rows`` is ``values[keep]`` made in place, for any mask and chunk size."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from deepsalt.mapping.composite import keep_rows


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(0, 60),
    columns=st.integers(1, 5),
    chunk=st.integers(1, 70),
    seed=st.integers(0, 2**32 - 1),
    share=st.floats(0.0, 1.0),
)
def test_keep_rows_gives_the_boolean_selection_in_the_same_buffer(rows, columns, chunk, seed, share):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(rows, columns)).astype(np.float32)
    keep = rng.random(rows) < share
    expected = values[keep]
    kept = keep_rows(values, keep, chunk)
    np.testing.assert_array_equal(kept, expected)
    assert np.shares_memory(kept, values) or not len(expected)


def test_a_read_only_buffer_is_copied_not_written():
    values = np.arange(12, dtype=np.int16).reshape(6, 2)
    values.flags.writeable = False
    keep = np.array([False, True, False, True, True, False])
    kept = keep_rows(values, keep, chunk=2)
    np.testing.assert_array_equal(kept, [[2, 3], [6, 7], [8, 9]])
    np.testing.assert_array_equal(values, np.arange(12).reshape(6, 2))
