"""``deepsalt train sau|teacher|student|all``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from deepsalt.cli.common import ConfigOption, InputsOption, SetOption, app, console, error_boundary, say
from deepsalt.training.config import STAGES

TrainTarget = StrEnum("TrainTarget", {**{s.name: s.value for s in STAGES}, "ALL": "all"})
"""What ``deepsalt train`` can train: one stage of :class:`deepsalt.training.config.Stage`, or all of them."""


@app.command("train")
@error_boundary
def train_command(
    stage: Annotated[TrainTarget, typer.Argument(help="Stage to train; 'all' runs SAU → teacher → student.")],
    config: ConfigOption = None,
    set_: SetOption = None,
    inputs: InputsOption = None,
) -> None:
    """Train the SAU, the teacher, the student, or the whole chain (reuses/resumes checkpoints)."""
    from deepsalt.config import load_config, read_yaml
    from deepsalt.training.checkpoint import read_meta
    from deepsalt.training.config import TrainConfig
    from deepsalt.training.pipeline import PAIRING_REPORT, run_training

    sections = {"inputs": read_yaml(inputs), "regions": []} if inputs else None
    settings = load_config(TrainConfig, config, set_ or [], sections)
    urls = run_training(settings, stages=STAGES if stage.value == "all" else (stage.value,))
    _print_pairing(f"{settings.output.rstrip('/')}/{PAIRING_REPORT}")
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


def _print_pairing(url: str) -> None:
    """What the pairing did: counts per status, and every sample it skipped with the reason."""
    import fsspec
    import pandas as pd

    from deepsalt.training.data import PairingStatus

    try:
        with fsspec.open(url, "r") as fh:
            report = pd.read_csv(fh, keep_default_na=False)
    except FileNotFoundError:
        return  # the data were given in memory, or every stage was reused
    counts = report["status"].value_counts()
    say("pairing", ", ".join(f"{counts.get(s.value, 0)} {s.value}" for s in PairingStatus), "bold")
    for row in report[report["status"] != PairingStatus.PAIRED.value].itertuples():
        say("skipped", f"{row.sample_id}: {row.status}", "yellow")
    say("pairing report", url, "bold")
