"""The command line: help, version, and config errors that stop before any work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from deepsalt import __version__
from deepsalt.cli import app

runner = CliRunner()


def test_help_lists_subcommands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "version" in result.output


def test_version_prints_package_version():
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "deepsalt"
    out = subprocess.run([str(exe), "version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == __version__


def test_misspelt_field_exits_2_naming_file_and_field(tmp_path: Path):
    config = tmp_path / "demo.yaml"
    config.write_text(f"output: {tmp_path / 'out'}\nsynth:\n  cloud_fracton: 0.1\n")
    result = runner.invoke(app, ["demo", "--config", str(config)])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert str(config) in message
    assert "synth.cloud_fracton" in message and "unknown field" in message
    assert not (tmp_path / "out").exists()  # no work started


def test_out_of_range_override_exits_2_naming_field(tmp_path: Path):
    result = runner.invoke(
        app, ["demo", "--set", f"output={tmp_path / 'out'}", "--set", "train.student.epochs=-3"]
    )
    assert result.exit_code == 2
    assert "train.student.epochs" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


def test_unparseable_override_exits_2():
    result = runner.invoke(app, ["demo", "--set", "seed"])
    assert result.exit_code == 2
    assert "key.sub=value" in " ".join(result.output.split())
