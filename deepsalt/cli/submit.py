"""``deepsalt submit train|map`` and ``deepsalt jobs list|logs|stop``: runs on a Ray cluster
through its job server (the dashboard address, e.g. ``http://127.0.0.1:8265`` through
``kubectl port-forward``).

The runtime environment is the smallest that works. The cluster already has DeepSalt installed
(the DeepSalt image on KubeRay, the same virtualenv for a local ``ray start --head``), so a job
ships only the entrypoint scripts of ``ray_jobs/`` (a few kB) and, when the config is a local
file, that file. The package itself is never uploaded, so the code that runs is the version the
cluster's image was built with, not whatever a laptop's checkout holds. With ``--image`` Ray
starts the job in that container image instead (Ray's ``image_uri``, which needs podman on the
nodes) and runs the scripts the image ships in ``/app/ray_jobs``. Credentials never go into
the runtime environment, which Ray stores and shows in its dashboard: pods get them from the
Kubernetes Secret, a local head from its own environment.
"""

from __future__ import annotations

import asyncio
import importlib
import shlex
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deepsalt import __version__
from deepsalt.cli.common import SetOption, app, console, error_boundary, say
from deepsalt.config import load_config
from deepsalt.errors import DeepSaltError, ExitCode

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

submit_app = typer.Typer(help="Submit a training or mapping run to a Ray cluster's job server.")
jobs_app = typer.Typer(help="List, follow and stop jobs on a Ray cluster's job server.")
app.add_typer(submit_app, name="submit")
app.add_typer(jobs_app, name="jobs")

# stage -> (entrypoint script in ray_jobs/, its config model as module:Class)
STAGES = {
    "train": ("train_pipeline.py", "deepsalt.training.config:TrainConfig"),
    "map": ("map_region.py", "deepsalt.mapping.config:MapConfig"),
}
IMAGE_RAY_JOBS = "/app/ray_jobs"
SCRIPTS = ("_entry.py", *(script for script, _ in STAGES.values()))
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")

AddressOption = Annotated[
    str,
    typer.Option(
        "--address",
        "-a",
        envvar="RAY_ADDRESS",
        help="Ray job server (dashboard) URL, e.g. http://127.0.0.1:8265.",
    ),
]
JobConfigOption = Annotated[
    str,
    typer.Option(
        "--config",
        "-c",
        help="YAML config: a local file (shipped with the job) or a URL the cluster reads (s3://).",
    ),
]
ImageOption = Annotated[
    str | None,
    typer.Option(
        "--image", help="Run the job in this container image (Ray image_uri; needs podman on the nodes)."
    ),
]
WaitOption = Annotated[
    bool,
    typer.Option("--wait/--no-wait", help="Follow the logs until the job ends and exit with its outcome."),
]


def is_local(url: str) -> bool:
    """A path on this machine (plain or file://), which the cluster may not see."""
    return "://" not in url or url.startswith("file://")


def find_ray_jobs() -> Path:
    """The ``ray_jobs/`` folder of the source checkout this package runs from, or of the cwd."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        if all((root / "ray_jobs" / script).is_file() for script in SCRIPTS):
            return root / "ray_jobs"
    raise DeepSaltError(
        "ray_jobs/ not found: run from a DeepSalt checkout, or use --image with the DeepSalt image"
    )


def package_job(
    stage: str, config: str, overrides: list[str], image: str | None, workdir: Path
) -> tuple[str, dict[str, Any]]:
    """Entrypoint and runtime environment for one job; files to upload are copied into ``workdir``."""
    script, _ = STAGES[stage]
    runtime_env: dict[str, Any] = {"env_vars": {"PYTHONUNBUFFERED": "1"}}
    if image:
        if is_local(config):
            raise DeepSaltError(
                f"{config}: with --image the config must be a URL the cluster can read (s3://...)"
            )
        runtime_env["image_uri"] = image
        script_path = f"{IMAGE_RAY_JOBS}/{script}"
    else:
        source = find_ray_jobs()
        for name in SCRIPTS:
            shutil.copy2(source / name, workdir / name)
        if is_local(config):
            shutil.copy2(Path(config.removeprefix("file://")), workdir / "config.yaml")
            config = "config.yaml"
        runtime_env["working_dir"] = str(workdir)
        script_path = script
    args = ["python", script_path, "--config", config]
    for item in overrides:
        args += ["--set", item]
    return shlex.join(args), runtime_env


def connect(address: str) -> JobSubmissionClient:
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise DeepSaltError(f"{address}: cannot reach the Ray job server: {exc}") from exc


def follow(client: JobSubmissionClient, job_id: str) -> str:
    """Stream the job's logs to stdout until it ends; return its final status."""
    _known(client, job_id, client.get_job_status)

    async def tail() -> None:
        async for lines in client.tail_job_logs(job_id):
            sys.stdout.write(lines)
            sys.stdout.flush()

    try:
        asyncio.run(tail())
    except KeyboardInterrupt:
        console.print(f"stopped following; job {job_id} goes on (deepsalt jobs stop {job_id} ends it)")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    # the log stream can close a moment before the job server records the final status
    while (status := str(client.get_job_status(job_id).value)) not in TERMINAL:
        time.sleep(0.5)
    return status


def report(client: JobSubmissionClient, job_id: str, status: str) -> None:
    """Print the outcome; anything but SUCCEEDED exits non-zero."""
    info = client.get_job_info(job_id)
    colour = "green" if status == "SUCCEEDED" else "red"
    console.print(f"job {job_id} [bold {colour}]{status}[/]")
    if status != "SUCCEEDED":
        if info.message:
            say("", info.message.splitlines()[0])
        raise typer.Exit(int(ExitCode.FAILURE))


def _submit(
    stage: str, address: str, config: str, overrides: list[str], image: str | None, wait: bool
) -> None:
    module, _, name = STAGES[stage][1].partition(":")
    model = getattr(importlib.import_module(module), name)
    if is_local(config):  # fail here, not minutes later on the cluster
        load_config(model, config.removeprefix("file://"), overrides)
    client = connect(address)
    with tempfile.TemporaryDirectory(prefix="deepsalt-job-") as workdir:
        entrypoint, runtime_env = package_job(stage, config, overrides, image, Path(workdir))
        try:
            job_id = client.submit_job(
                entrypoint=entrypoint,
                runtime_env=runtime_env,
                metadata={
                    "deepsalt_stage": stage,
                    "deepsalt_config": config,
                    "deepsalt_version": __version__,
                },
            )
        except RuntimeError as exc:  # the SDK's error for any non-200 answer
            raise DeepSaltError(f"{address}: the job server refused the job: {exc}") from exc
    say(f"submitted {stage} job", f"{job_id} to {address}", "bold")
    if not wait:
        print(job_id)
        return
    report(client, job_id, follow(client, job_id))


def _register(stage: str, summary: str) -> None:
    @submit_app.command(stage, help=summary)
    @error_boundary
    def command(
        address: AddressOption,
        config: JobConfigOption,
        overrides: SetOption = None,
        image: ImageOption = None,
        wait: WaitOption = True,
    ) -> None:
        _submit(stage, address, config, overrides or [], image, wait)


_register("train", "Train SAU → teacher → student on the cluster (ray_jobs/train_pipeline.py).")
_register("map", "Map a region on the cluster (ray_jobs/map_region.py).")


def _when(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"


@jobs_app.command("list")
@error_boundary
def list_jobs(address: AddressOption) -> None:
    """Jobs known to the job server, oldest first, as plain aligned columns (easy to grep)."""
    jobs = sorted(connect(address).list_jobs(), key=lambda job: job.start_time or 0)
    rows = [("SUBMISSION ID", "STATUS", "STAGE", "STARTED (UTC)", "ENDED (UTC)")]
    for job in jobs:
        stage = (job.metadata or {}).get("deepsalt_stage", "-")
        rows.append(
            (job.submission_id, str(job.status.value), stage, _when(job.start_time), _when(job.end_time))
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@jobs_app.command("logs")
@error_boundary
def job_logs(
    job_id: Annotated[str, typer.Argument(help="Submission id (from `deepsalt jobs list`).")],
    address: AddressOption,
    follow_logs: Annotated[
        bool, typer.Option("--follow", "-f", help="Stream until the job ends and exit with its outcome.")
    ] = False,
) -> None:
    """Print a job's logs."""
    client = connect(address)
    if follow_logs:
        report(client, job_id, follow(client, job_id))
    else:
        sys.stdout.write(_known(client, job_id, client.get_job_logs))


@jobs_app.command("stop")
@error_boundary
def stop_job(
    job_id: Annotated[str, typer.Argument(help="Submission id (from `deepsalt jobs list`).")],
    address: AddressOption,
) -> None:
    """Stop a running job and wait until the job server has stopped it."""
    client = connect(address)
    if not _known(client, job_id, client.stop_job):
        status = client.get_job_status(job_id).value
        console.print(f"job {job_id} had already ended: {status}")
        return
    while (status := str(client.get_job_status(job_id).value)) not in TERMINAL:
        time.sleep(0.5)
    console.print(f"job {job_id} {status}")


def _known(client: JobSubmissionClient, job_id: str, call: Any) -> Any:
    """Call the SDK for a job id, turning "no such job" into a clear error."""
    try:
        return call(job_id)
    except RuntimeError as exc:
        raise DeepSaltError(f"job {job_id}: {exc}") from exc
