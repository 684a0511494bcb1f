"""One pytest-xdist worker runs every test that uses or starts Ray, one after another; the other
workers run the rest of the suite beside it.

Why: Ray instances started side by side on two cores race for ports and starve each other's
actors, and the Ray tests share one session cluster (``ray_cluster``); most of the other tests
are single-threaded and can use the core the Ray tests leave idle.

How: xdist's own ``--dist loadgroup`` cannot be used under pytest 9.2: it tags a grouped test by
rewriting ``item._nodeid``, which pytest 9 no longer reads (node ids are structured), so its groups
are silently ignored. Here the workers, which see each test's fixtures and markers, write the ids
of the Ray tests to a file the controller named in :data:`RAY_TESTS_ENV`; the controller's
scheduler (:class:`RayGroupScheduling`) reads it when it hands out the tests and sends those tests
to one worker as one unit, in collection order.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

RAY_GROUP = "ray"
RAY_TESTS_ENV = "DEEPSALT_RAY_TESTS_FILE"
"""Environment variable naming the file of Ray test ids (set by the controller, inherited by the
workers)."""


def is_ray_test(item: pytest.Item) -> bool:
    """Whether ``item`` uses the session's Ray instance or starts one of its own (marker ``ray``)."""
    return "ray_cluster" in getattr(item, "fixturenames", ()) or item.get_closest_marker("ray") is not None


def is_controller(config: pytest.Config) -> bool:
    """Whether this process hands out tests to xdist workers (``-n`` given, and not a worker itself)."""
    return not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", None))


def name_the_file(config: pytest.Config) -> None:
    """On the controller: a fresh file for the workers to list the Ray tests in."""
    if is_controller(config):
        handle, path = tempfile.mkstemp(prefix="deepsalt-ray-tests-", suffix=".txt")
        os.close(handle)
        os.environ[RAY_TESTS_ENV] = path


def remove_the_file(config: pytest.Config) -> None:
    if is_controller(config):
        Path(os.environ.pop(RAY_TESTS_ENV, "")).unlink(missing_ok=True)


def list_ray_tests(config: pytest.Config, items: Sequence[pytest.Item]) -> None:
    """On a worker: write the ids of the Ray tests among ``items`` to the controller's file.

    Every worker collects the same tests, so each writes the same list; it is written whole under
    a temporary name and renamed, so the controller never reads half of one.
    """
    target = os.environ.get(RAY_TESTS_ENV)
    if not target or not hasattr(config, "workerinput"):
        return
    partial = Path(f"{target}.{config.workerinput['workerid']}")
    partial.write_text("".join(f"{item.nodeid}\n" for item in items if is_ray_test(item)))
    partial.replace(target)


class RayGroupScheduling(LoadScopeScheduling):
    """xdist's load scheduling, with the Ray tests as one unit (its largest, so it is handed out first)."""

    def __init__(self, config: pytest.Config, log: object | None = None) -> None:
        super().__init__(config, log)
        self.ray_tests: frozenset[str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self.ray_tests is None:  # first called once every worker has collected
            listed = Path(os.environ[RAY_TESTS_ENV]).read_text().splitlines()
            self.ray_tests = frozenset(listed)
        return RAY_GROUP if nodeid in self.ray_tests else nodeid
