"""``deepsalt submit`` and ``deepsalt jobs`` against a real Ray head and job server on 127.0.0.1.

The end-to-end mapping run lives in test_submit_e2e.py; here the jobs are ones whose outcome
does not depend on a trained model: a config the job cannot read (FAILED, exit 2 in the job),
and a sleeping job that gets stopped.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from deepsalt.cli import app
from deepsalt.cli.submit import package_job
from deepsalt.errors import DeepSaltError
from tests.support.ray_head import ray_head

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
pytestmark = pytest.mark.ray  # the job tests start a Ray head (job_server)


def _flat(text: str) -> str:
    """Output without whitespace: rich wraps and folds long lines at the terminal width."""
    return "".join(text.split())


@pytest.fixture(scope="module")
def job_server() -> Iterator[str]:
    with ray_head() as url:
        yield url


def _map_config(path: Path, **changes: object) -> Path:
    config = {
        "region": {"bounds": [0, 0, 3000, 3000]},
        "grid": {"crs": "EPSG:32611"},
        "inputs": {"stac_url": "http://127.0.0.1:1/stac", "covariates_url": "/nowhere/covariates"},
        "model": {"student_url": "/nowhere/student"},
        "output": {"url": str(path.parent / "map.zarr")},
        **changes,
    }
    path.write_text(yaml.safe_dump(config))
    return path


# --- what a job ships ---------------------------------------------------------------------


def test_job_ships_the_scripts_and_the_local_config_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-ship-me")
    config = _map_config(tmp_path / "map.yaml")
    workdir = tmp_path / "job"
    workdir.mkdir()
    entrypoint, runtime_env = package_job("map", str(config), ["ray.num_gpus=0"], None, workdir)
    assert entrypoint == "python map_region.py --config config.yaml --set ray.num_gpus=0"
    assert runtime_env == {"env_vars": {"PYTHONUNBUFFERED": "1"}, "working_dir": str(workdir)}
    shipped = {p.name: p.stat().st_size for p in workdir.iterdir()}
    assert set(shipped) == {"_entry.py", "map_region.py", "train_pipeline.py", "config.yaml"}
    assert sum(shipped.values()) < 20_000
    assert (workdir / "config.yaml").read_text() == config.read_text()
    assert "do-not-ship-me" not in json.dumps(runtime_env)


def test_remote_config_is_passed_as_a_url(tmp_path: Path) -> None:
    entrypoint, _ = package_job(
        "train", "s3://bucket/configs/train.yaml", ["ray.use_gpu=true"], None, tmp_path
    )
    assert (
        entrypoint
        == "python train_pipeline.py --config s3://bucket/configs/train.yaml --set ray.use_gpu=true"
    )
    assert "config.yaml" not in {p.name for p in tmp_path.iterdir()}


def test_image_mode_runs_the_scripts_inside_the_image(tmp_path: Path) -> None:
    entrypoint, runtime_env = package_job(
        "map", "s3://b/map.yaml", ["a.b=two words"], "deepsalt:0.1.0", tmp_path
    )
    assert entrypoint == "python /app/ray_jobs/map_region.py --config s3://b/map.yaml --set 'a.b=two words'"
    assert runtime_env == {"env_vars": {"PYTHONUNBUFFERED": "1"}, "image_uri": "deepsalt:0.1.0"}
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DeepSaltError, match=r"local\.yaml: with --image the config must be a URL"):
        package_job("map", "local.yaml", [], "deepsalt:0.1.0", tmp_path)


@pytest.mark.parametrize(
    ("stage", "settings", "message"),
    [
        (
            "map",
            {"grid": {"crs": "EPSG:4326"}},
            "field 'grid': grid.crs 'EPSG:4326' is geographic",
        ),
        (
            "train",
            {"regions": ["/r"], "model": {"head": "transformer", "tokens": 3}},
            "field '<root>': model.tokens (3) must divide",
        ),
    ],
)
def test_invalid_local_config_fails_before_anything_is_submitted(
    tmp_path: Path, stage: str, settings: dict, message: str
) -> None:
    config = tmp_path / f"{stage}.yaml"
    if stage == "map":
        _map_config(config, **settings)
    else:
        config.write_text(yaml.safe_dump(settings))
    # port 1: nothing listens, so reaching the server at all would be a different error
    result = runner.invoke(app, ["submit", stage, "--address", "http://127.0.0.1:1", "--config", str(config)])
    assert result.exit_code == 2
    assert _flat(f"{config}: {message}") in _flat(result.output)


@pytest.mark.slow
def test_entrypoint_exits_non_zero_and_names_what_failed(tmp_path: Path) -> None:
    """The script the job runs, on its own: a missing region is exit 1 with the URL in the log."""
    config = tmp_path / "train.yaml"
    config.write_text(
        yaml.safe_dump({"regions": [str(tmp_path / "no-region")], "output": str(tmp_path / "runs")})
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "ray_jobs" / "train_pipeline.py"), "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events] == ["job started", "job failed"]
    assert events[1]["reason"].startswith(f"{tmp_path / 'no-region'}/region.json: ")
    assert not (tmp_path / "runs").exists()


def test_unreachable_job_server_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["jobs", "list", "--address", "http://127.0.0.1:1"])
    assert result.exit_code == 1
    assert _flat("http://127.0.0.1:1: cannot reach the Ray job server") in _flat(result.output)


# --- against the job server ---------------------------------------------------------------


@pytest.mark.slow
def test_failed_job_is_reported_and_exits_non_zero(job_server: str) -> None:
    """Submit without waiting, then follow: the job's log streams back, FAILED exits 1.

    (``submit`` without ``--no-wait`` follows with the same code; test_submit_e2e.py runs it.)
    """
    submitted = runner.invoke(
        app, ["submit", "map", "--no-wait", "--address", job_server, "--config", "memory://absent/map.yaml"]
    )
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.stdout.strip()
    assert f"submitted map job {job_id}" in submitted.output

    followed = runner.invoke(app, ["jobs", "logs", job_id, "--follow", "--address", job_server])
    assert followed.exit_code == 1
    assert "memory://absent/map.yaml: field '<file>': config file not found" in followed.stdout
    assert f"job {job_id} FAILED" in followed.output
    assert "exit code 2" in followed.output

    listed = runner.invoke(app, ["jobs", "list", "--address", job_server])
    assert listed.exit_code == 0
    row = next(line for line in listed.output.splitlines() if job_id in line)
    assert "FAILED" in row and " map " in row

    logs = runner.invoke(app, ["jobs", "logs", job_id, "--address", job_server])
    assert logs.exit_code == 0
    events = [json.loads(line) for line in logs.output.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events] == ["invalid config"]


@pytest.mark.slow
def test_stop_a_running_job(job_server: str) -> None:
    from ray.job_submission import JobSubmissionClient

    job_id = JobSubmissionClient(job_server).submit_job(
        entrypoint="python -c \"import time; print('sleeping', flush=True); time.sleep(300)\""
    )
    stopped = runner.invoke(app, ["jobs", "stop", job_id, "--address", job_server])
    assert stopped.exit_code == 0, stopped.output
    assert f"job {job_id} STOPPED" in stopped.output

    followed = runner.invoke(app, ["jobs", "logs", job_id, "--follow", "--address", job_server])
    assert followed.exit_code == 1
    assert f"job {job_id} STOPPED" in followed.output

    again = runner.invoke(app, ["jobs", "stop", job_id, "--address", job_server])
    assert again.exit_code == 0
    assert "had already ended: STOPPED" in again.output


@pytest.mark.slow
def test_unknown_job_id_is_a_clear_error(job_server: str) -> None:
    for command in (["logs"], ["logs", "--follow"], ["stop"]):
        result = runner.invoke(app, ["jobs", *command, "no-such-job", "--address", job_server])
        assert result.exit_code == 1
        assert _flat("job no-such-job: Request failed with status code 404") in _flat(result.output)
