"""What the mapping actors inherit from the driver's environment: settings, never secrets; and what
they import when they start."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import subprocess
import sys

import numpy as np
import pytest

from deepsalt.mapping.pipeline import ACTOR_GDAL_CACHEMAX_MB, ACTOR_MALLOC_TUNABLES, forwarded_env


def test_actors_get_a_bounded_gdal_cache_by_default(monkeypatch):
    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    monkeypatch.setenv("AWS_S3_ENDPOINT", "127.0.0.1:9000")
    monkeypatch.setenv("HOME_UNRELATED", "x")
    env = forwarded_env()
    assert env["GDAL_CACHEMAX"] == str(ACTOR_GDAL_CACHEMAX_MB) == "256"
    assert env["AWS_S3_ENDPOINT"] == "127.0.0.1:9000"
    assert "HOME_UNRELATED" not in env


def test_the_drivers_gdal_cachemax_wins(monkeypatch):
    monkeypatch.setenv("GDAL_CACHEMAX", "1024")
    assert forwarded_env()["GDAL_CACHEMAX"] == "1024"


def test_credentials_are_never_forwarded_but_where_to_find_them_is(monkeypatch):
    secrets = {
        "AWS_ACCESS_KEY_ID": "AKIA-sentinel",
        "AWS_SECRET_ACCESS_KEY": "sentinel-secret",
        "AWS_SESSION_TOKEN": "sentinel-token",
        "GDAL_HTTP_USERPWD": "user:sentinel",
        "GDAL_HTTP_HEADERS": "Authorization: Bearer sentinel",
        "AZURE_STORAGE_ACCESS_KEY": "sentinel-azure",
    }
    pointers = {
        "AWS_PROFILE": "mapping",
        "AWS_SHARED_CREDENTIALS_FILE": "/home/user/.aws/credentials",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_DEFAULT_REGION": "eu-central-1",
    }
    for key, value in {**secrets, **pointers}.items():
        monkeypatch.setenv(key, value)
    env = forwarded_env()
    assert not set(secrets) & set(env)
    assert not any("sentinel" in value for value in env.values())
    assert {key: env[key] for key in pointers} == pointers


class AllocationProbe:
    """A Ray Data actor that holds, frees and re-allocates an array the size of a block's reflectance,
    reporting how glibc served it (``mallinfo2``: bytes in mmapped chunks, free bytes kept)."""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallinfo2.restype = MallInfo2
        block = np.ones(BLOCK_BYTES // 4, dtype=np.float32)
        mmapped_while_held = libc.mallinfo2().hblkhd
        del block
        return {"mmapped_while_held": [mmapped_while_held], "kept_after_free": [libc.mallinfo2().fordblks]}


class MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in [
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        ]
    ]


BLOCK_BYTES = 200 * 1024**2


def probe_allocator(env_vars: dict[str, str]) -> dict[str, int]:
    import ray.data

    rows = (
        ray.data.from_items([{"x": 0}])
        .map_batches(
            AllocationProbe,
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=1),
            num_cpus=0.25,
            runtime_env={"env_vars": env_vars},
        )
        .take_all()
    )
    return {key: int(value) for key, value in rows[0].items()}


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator tunables need glibc")
def test_actors_keep_freed_block_arrays_for_the_next_block(ray_cluster, monkeypatch):
    """With the actors' default allocator settings a block-sized array comes from the heap and stays
    there when freed; without them (the control) glibc maps it afresh and unmaps it."""
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    tuned = probe_allocator(forwarded_env())
    assert tuned["mmapped_while_held"] < BLOCK_BYTES
    assert tuned["kept_after_free"] >= BLOCK_BYTES
    plain = probe_allocator({"GLIBC_TUNABLES": "glibc.malloc.check=0"})
    assert plain["mmapped_while_held"] >= BLOCK_BYTES
    assert plain["kept_after_free"] < BLOCK_BYTES


def test_the_drivers_allocator_settings_win(monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    assert forwarded_env()["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2"
    monkeypatch.setenv("GLIBC_TUNABLES", "")  # glibc's own defaults
    assert forwarded_env()["GLIBC_TUNABLES"] == ""
    monkeypatch.delenv("GLIBC_TUNABLES")
    assert forwarded_env()["GLIBC_TUNABLES"] == ACTOR_MALLOC_TUNABLES


def test_an_actor_starts_without_the_drivers_libraries():
    """A mapping actor imports its class's module and the predictor at every start; xarray, dask,
    pandas and Dynamo (the driver's store and pyramid, and the compiler) cost it seconds there."""
    driver_only = ("xarray", "dask", "pandas", "rioxarray", "matplotlib", "torch._dynamo")
    script = (
        "import sys, deepsalt.mapping.worker, deepsalt.predict; "
        f"print(','.join(m for m in {driver_only!r} if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == ""
    from deepsalt.mapping import MapConfig, run_map  # the package's names still resolve, on first use

    assert callable(run_map) and MapConfig.__name__ == "MapConfig"
