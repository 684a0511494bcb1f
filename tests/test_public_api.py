"""The public API of docs/MODULES.md is exactly what the package ``__init__``s export."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

MODULES_MD = Path(__file__).parents[1] / "docs" / "MODULES.md"


def documented() -> dict[str, list[str]]:
    """Package → names, from the ``## Public API`` list (``- `package`: `a`, `b```)."""
    section = MODULES_MD.read_text().split("## Public API", 1)[1].split("\n## ", 1)[0]
    listed = {}
    for package, names in re.findall(r"^- `(deepsalt[\w.]*)`: (.*)$", section, re.M):
        listed[package] = [] if names.startswith("nothing") else re.findall(r"`([^`]+)`", names)
    return listed


def packages() -> list[str]:
    root = Path(__file__).parents[1] / "deepsalt"
    return sorted(".".join(init.parent.relative_to(root.parent).parts) for init in root.rglob("__init__.py"))


def test_every_package_is_documented():
    assert sorted(documented()) == packages()


@pytest.mark.parametrize("package", packages())
def test_init_exports_what_the_docs_list(package: str):
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(documented()[package])
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
