"""The ``deepsalt`` command line: one typer app over every stage.

Each stage's commands live in their own module under ``deepsalt.cli`` and are registered here.
Command modules import heavy libraries (torch, ray) inside the command body so that ``--help``
stays fast.
"""

from __future__ import annotations

from deepsalt.cli import (
    demo,  # noqa: F401
    evaluate,  # noqa: F401
    info,  # noqa: F401  (registers commands on import)
    map,  # noqa: F401
    submit,  # noqa: F401
    survey,  # noqa: F401
    synth,  # noqa: F401
    train,  # noqa: F401
    view,  # noqa: F401
)
from deepsalt.cli.common import app

__all__ = ["app"]
