"""A real Ray head with its job server, as a cluster's head node would run it, on 127.0.0.1.

``ray start --head --block`` runs in a child process and stops its own Ray processes on SIGTERM;
``ray stop`` is never used because it stops every Ray instance on the machine, including other
test sessions'. Every port is chosen free, so the head never collides with another Ray here.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.support.services import BIN, free_port, wait_for_http

HEAD_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",  # a test head has nothing to drain
}


@contextlib.contextmanager
def ray_head(temp_dir: Path, num_cpus: int = 2) -> Iterator[str]:
    """Yield the job server URL (``http://127.0.0.1:<port>``) of a fresh head node."""
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
    env = {**os.environ, **HEAD_ENV, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = (temp_dir / "ray-start.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{dashboard}"
    try:
        wait_for_http(f"{url}/api/jobs/", proc, timeout=120)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
