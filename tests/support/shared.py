"""Session fixtures built once for the whole test run, whichever pytest-xdist worker asks first.

``make test`` runs the suite on two xdist workers (see ``tests/conftest.py``). A session fixture is
per worker, so the expensive read-only ones (a generated region, a trained chain) would otherwise
be built by both, each taking a core from the tests the other runs. Here the first worker builds
the value into a folder under the run's shared temp root while holding a lock; the others wait for
it and read the pickled value back. Without xdist the same code runs once in the one process.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from filelock import FileLock

T = TypeVar("T")
VALUE_FILE = "fixture-value.pickle"


def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temp folder all workers of this run share (xdist gives each worker a child of it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], T]) -> T:
    """``build(folder)``'s value, built by the first worker to ask and read back by the others.

    The value must pickle and must stay valid for as long as ``folder`` exists (paths and URLs into
    it, not open handles). A build that raises leaves no value, so every worker raises its own.
    """
    folder = run_root(tmp_path_factory) / f"shared-{name}"
    with FileLock(str(folder) + ".lock"):
        stored = folder / VALUE_FILE
        if stored.exists():
            return pickle.loads(stored.read_bytes())
        folder.mkdir(exist_ok=True)
        value = build(folder)
        stored.write_bytes(pickle.dumps(value))
        return value
