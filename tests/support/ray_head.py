"""A real Ray head with its job server, as a cluster's head node would run it, on 127.0.0.1.

``ray start --head --block`` runs in a child process and stops its own Ray processes on SIGTERM;
``ray stop`` is never used because it stops every Ray instance on the machine, including other
test sessions'. Every port is chosen free, so the head never collides with another Ray here.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from deepsalt.errors import DeepSaltError
from tests.support.services import BIN, free_port, ray_temp_dir, wait_for_http

HEAD_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",  # a test head has nothing to drain
}


@contextlib.contextmanager
def ray_head(
    num_cpus: int = 2, attempts: int = 3, env: Mapping[str, str] | None = None, temp_dir: Path | None = None
) -> Iterator[str]:
    """Yield the job server URL (``http://127.0.0.1:<port>``) of a fresh head node.

    ``env`` is added to the head's environment (what a node's environment holds, e.g. object-store
    credentials); ``temp_dir`` is Ray's folder for the head (default: a private one, removed after).

    On a machine this loaded the head's raylet can give up waiting for its dashboard agent and
    exit during start-up (Ray's fixed wait for the agent's port file); a fresh start then
    usually succeeds, so start-up is tried ``attempts`` times. The last failure is raised with
    the tail of ``ray start``'s own log, which says why.
    """
    with contextlib.ExitStack() as stack:
        root = temp_dir or stack.enter_context(ray_temp_dir())
        for attempt in range(1, attempts + 1):
            folder = root / f"a{attempt}"
            folder.mkdir()
            proc, url = _start(folder, num_cpus, env or {})
            try:
                wait_for_http(f"{url}/api/jobs/", proc, timeout=120)
                _wait_for_job_agent(url, proc, timeout=60)
                break
            except (DeepSaltError, RuntimeError, TimeoutError, ConnectionError) as exc:
                _stop(proc)
                if attempt == attempts:
                    log = (folder / "ray-start.log").read_text(errors="replace")[-3000:]
                    raise DeepSaltError(f"the Ray head did not start: {exc}\n{log}") from None
        try:
            yield url
        finally:
            _stop(proc)


def _start(temp_dir: Path, num_cpus: int, extra_env: Mapping[str, str]) -> tuple[subprocess.Popen, str]:
    dashboard = free_port()
    ports = {
        "--port": free_port(),
        "--dashboard-port": dashboard,
        "--dashboard-agent-listen-port": free_port(),
        "--dashboard-agent-grpc-port": free_port(),
        "--runtime-env-agent-port": free_port(),
        "--ray-client-server-port": free_port(),
        "--metrics-export-port": free_port(),
    }
    cmd = [
        str(BIN / "ray"),
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1",
        "--include-dashboard=true",
        f"--num-cpus={num_cpus}",
        "--num-gpus=0",
        f"--temp-dir={temp_dir}",
        *(f"{flag}={port}" for flag, port in ports.items()),
    ]
    # jobs run `python ...`: this virtualenv's interpreter, where deepsalt is installed
    env = {**os.environ, **HEAD_ENV, **extra_env, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("RAY_ADDRESS", None)  # a head starts its own cluster and joins none
    with (temp_dir / "ray-start.log").open("w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    return proc, f"http://127.0.0.1:{dashboard}"


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_for_job_agent(url: str, proc: subprocess.Popen, timeout: float) -> None:
    """The dashboard answers before the head's job agent registers ("No available agent to
    submit job, please try again later"); a first job that is accepted shows that it has."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(url)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.submit_job(entrypoint="python -c pass", metadata={"purpose": "readiness probe"})
            return
        except RuntimeError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(1)
