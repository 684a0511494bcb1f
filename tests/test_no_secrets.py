"""No secret in any file DeepSalt or Ray writes, when ``deepsalt map`` starts its own local Ray.

A user's shell holds a sentinel key pair; ``deepsalt map`` (a real subprocess, as the user runs
it) signs its S3 requests with it, starts Ray in a private folder, maps the demo region into a
store on S3 and writes its STAC item and quicklooks there. Then every file under Ray's folder,
every object in the bucket and the command's output are searched for the sentinel. (The same
search for ``deepsalt submit`` is in ``test_submit_e2e.py``.)
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.support.demo_world import DemoWorld
from tests.support.sentinel import (
    NEEDLES,
    files_holding_sentinel,
    objects_holding_sentinel,
    searched_files,
    sentinel_env,
)
from tests.support.services import BIN, ray_temp_dir

pytestmark = [pytest.mark.slow, pytest.mark.ray]
BUCKET = "sentinel-local"
TIMEOUT_S = 900  # a bound on a hung run, not a performance check


def test_local_map_leaks_no_secret(
    demo_world: DemoWorld, s3_server: str, stac_api_factory, tmp_path: Path
) -> None:
    import s3fs
    import xarray as xr

    options = {"key": "x", "secret": "y", "client_kwargs": {"endpoint_url": s3_server}}
    s3 = s3fs.S3FileSystem(**options)
    s3.mkdir(BUCKET)
    store_url = f"s3://{BUCKET}/local.zarr"
    settings = demo_world.map_settings(stac_api_factory(*demo_world.stac_inputs()), store_url)
    settings["output"]["quicklook_dir"] = f"s3://{BUCKET}/quicklooks"
    config = tmp_path / "map.yaml"
    config.write_text(yaml.safe_dump(settings))

    with ray_temp_dir() as ray_folder:
        env = {**os.environ, **sentinel_env(s3_server), "RAY_TMPDIR": str(ray_folder)}
        env.pop("RAY_ADDRESS", None)  # start a local Ray, as on a laptop
        run = subprocess.run(
            [str(BIN / "deepsalt"), "map", "--config", str(config)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        output = run.stdout + run.stderr
        assert run.returncode == 0, output
        assert searched_files([ray_folder]) > 20  # Ray's session logs and its workers' logs
        assert files_holding_sentinel([ray_folder, tmp_path]) == []

    ds = xr.open_zarr(store_url, decode_coords="all", storage_options=options)
    assert np.isfinite(ds.ece.values).mean() > 0.3  # the sentinel signed real writes
    assert s3.exists(f"{BUCKET}/local.stac-item.json") and s3.exists(f"{BUCKET}/quicklooks/ece.png")
    assert objects_holding_sentinel(s3, BUCKET) == []
    assert not any(needle.decode() in output for needle in NEEDLES)
