"""Shared pieces of the command line: the app, the error boundary, config options."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from deepsalt.errors import ConfigError, DeepSaltError
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

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILURE = 1
EXIT_CONFIG = 2


def error_boundary(fn: F) -> F:
    """Turn DeepSalt errors into a one-line message and an exit code (2 for config, 1 otherwise)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        setup_logging()
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            console.print(f"[bold red]config error[/] {exc}")
            raise typer.Exit(EXIT_CONFIG) from exc
        except DeepSaltError as exc:
            console.print(f"[bold red]error[/] {exc}")
            raise typer.Exit(EXIT_FAILURE) from exc

    return wrapper  # type: ignore[return-value]


@app.callback()
def main() -> None:
    """Soil salinity (ECe, dS/m) maps from EnMAP hyperspectral imagery."""
