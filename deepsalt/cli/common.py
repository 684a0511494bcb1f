"""Shared pieces of the command line: the app, the error boundary, config options, plain printing."""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from deepsalt.errors import ExitCode, explain
from deepsalt.logs import setup_logging

app = typer.Typer(
    name="deepsalt",
    help="Soil salinity (ECe) maps from EnMAP hyperspectral imagery.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)

ConfigOption = Annotated[
    str | None, typer.Option("--config", "-c", help="YAML config (local path or fsspec URL).")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a config field: --set section.field=value (repeatable)."),
]

InputsOption = Annotated[
    str | None,
    typer.Option(
        "--inputs",
        help="YAML file naming your own data (lab tables, STAC API or scene files, covariates, SSURGO export); "
        "the same file serves deepsalt train and deepsalt map (docs/own_data.md).",
    ),
]

F = TypeVar("F", bound=Callable[..., Any])

LABELS = {ExitCode.CONFIG: "config error", ExitCode.INTERRUPTED: "interrupted"}

STATE = {"debug": False}
"""Global options of this invocation (``--debug``)."""


def say(label: str, message: str, style: str = "bold red") -> None:
    """Print ``label message`` on stderr: the label styled, the message exactly as written.

    Messages carry paths, URLs and extents such as ``[min_x, min_y, max_x, max_y]``; rich would
    read brackets in them as markup, so the message is never parsed, and it stays on one line (a
    path broken over two lines cannot be copied).
    """
    line = Text(label, style=style) if label else Text()
    if label:
        line.append(" ")
    line.append(" ".join(message.split()))  # one line, also when a library's text has several
    console.print(line, soft_wrap=True, highlight=False)


def error_boundary(fn: F) -> F:
    """Turn every failure into one plain message and an exit code (2 for config, 130 for Ctrl-C, else 1).

    With ``deepsalt --debug`` the traceback is printed as well.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        setup_logging("DEBUG" if STATE["debug"] else "INFO")
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except (Exception, KeyboardInterrupt) as exc:
            code, message = explain(exc)
            if STATE["debug"]:
                console.print(Text("".join(traceback.format_exception(exc))), soft_wrap=True)
            say(LABELS.get(code, "error"), message)
            raise typer.Exit(int(code)) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an error and debug-level logs.")
    ] = False,
) -> None:
    """Soil salinity (ECe, dS/m) maps from EnMAP hyperspectral imagery."""
    STATE["debug"] = debug
