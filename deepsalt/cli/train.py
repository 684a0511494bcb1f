"""``deepsalt train sau|teacher|student|all``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from deepsalt.cli.common import ConfigOption, SetOption, app, console, error_boundary


class Stage(StrEnum):
    sau = "sau"
    teacher = "teacher"
    student = "student"
    all = "all"


@app.command("train")
@error_boundary
def train_command(
    stage: Annotated[Stage, typer.Argument(help="Stage to train; 'all' runs SAU → teacher → student.")],
    config: ConfigOption = None,
    set_: SetOption = None,
) -> None:
    """Train the SAU, the teacher, the student, or the whole chain (reuses/resumes checkpoints)."""
    from deepsalt.config import load_config
    from deepsalt.training.checkpoint import read_meta
    from deepsalt.training.config import STAGES, TrainConfig
    from deepsalt.training.pipeline import run_training

    settings = load_config(TrainConfig, config, set_ or [])
    urls = run_training(settings, stages=STAGES if stage == Stage.all else (stage.value,))
    table = Table(title="trained", box=None)
    for column in ("stage", "checkpoint", "id", "validation"):
        table.add_column(column)
    for name, url in urls.items():
        meta = read_meta(url)
        quality = ", ".join(f"{k}={v:.3g}" for k, v in meta.metrics.items() if k.startswith("val_"))
        table.add_row(name, Text(url), meta.checkpoint_id, quality)
    console.print(table)
    for url in urls.values():
        print(url)
