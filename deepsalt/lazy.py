"""Package names imported on first use (PEP 562), for packages whose submodules start processes.

A mapping actor imports one submodule of ``deepsalt.mapping`` and of ``deepsalt.io`` at every
start, and Python runs the package's ``__init__`` first: names re-exported there eagerly would
import the driver's libraries (xarray, dask) into every actor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_names(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package``: each name in ``homes`` is imported from its module
    (the value) when it is first looked up."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(homes[name]), name)

    return __getattr__
