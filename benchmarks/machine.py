"""What the numbers were measured on: CPU, cores, memory, load, GPU and library versions."""

from __future__ import annotations

import mmap
import os
import platform
import time
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import psutil

PACKAGES = ("deepsalt", "torch", "ray", "numpy", "xarray", "dask", "zarr", "rioxarray", "rasterio")


CPUINFO_FIELDS = {
    "vendor_id": "vendor",
    "cpu family": "family",
    "model": "model",
    "stepping": "stepping",
    "cache size": "cache",
}
"""/proc/cpuinfo keys kept by :func:`cpu_identity`, and the names they are kept under."""


def first_processor(cpuinfo: str) -> dict[str, str]:
    """The ``key: value`` lines of /proc/cpuinfo's first processor (every core of a VM is alike)."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    return fields


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        name = first_processor(cpuinfo.read_text()).get("model name")
        if name:
            return name
    return platform.processor() or platform.machine()


def cpu_identity(cpuinfo: str | None = None) -> dict[str, str]:
    """Vendor, family, model, stepping and cache size of the CPU, and the vector ISA torch runs on it.

    Cloud hosts name CPUs of different generations alike ("AMD EPYC"). The family and model number
    tell them apart. The ISA (AVX2 against AVX-512) sets how fast the student's elementwise kernels
    (layer norms, GELU) run beside its matrix products. The GEMM floor does not see that difference,
    so compare a run's forward ÷ GEMM figure with runs on hosts of the same ISA.
    """
    import torch

    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.exists() else ""
    fields = first_processor(cpuinfo)
    identity = {name: fields[key] for key, name in CPUINFO_FIELDS.items() if key in fields}
    identity["torch_isa"] = torch.backends.cpu.get_cpu_capability()
    return identity


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    import rasterio

    versions["gdal"] = rasterio.__gdal_version__
    return versions


def gpu() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def cpu_seconds() -> tuple[float, float]:
    """(stolen, total) CPU seconds of every core since boot; stolen is the time a virtual machine's
    cores were ready but the hypervisor ran another tenant (0 where the OS does not report it)."""
    times = psutil.cpu_times()._asdict()
    # Linux counts guest time inside user time as well: leave it out of the total.
    total = sum(v for k, v in times.items() if k not in ("guest", "guest_nice"))
    return float(times.get("steal", 0.0)), float(total)


def steal_share(start: tuple[float, float], end: tuple[float, float]) -> float | None:
    """The share of the CPU time between two :func:`cpu_seconds` readings that was stolen."""
    total = end[1] - start[1]
    return (end[0] - start[0]) / total if total > 0 else None


FRESH_MEMORY_MB = 256
"""Memory written by :func:`fresh_memory`: about one block's reflectance (512² pixels × 197 bands)."""
FREE_PAGE_IDLE_S = 3.0
"""How long freed pages lie with the kernel before :func:`fresh_memory` asks for them again. A host
that takes a virtual machine's free pages back (virtio-balloon free page reporting) did so within
two seconds here (notes.md, session 22)."""


@dataclass(frozen=True)
class FreshMemory:
    """Write rates (GB/s) into ``megabytes`` of memory of three kinds, one thread."""

    megabytes: int
    resident_gb_s: float
    """Pages the process holds already: the rate a kept array is rewritten at."""
    fresh_gb_s: float
    """Pages new to the process, asked for right after others were freed."""
    after_idle_gb_s: float
    """Pages new to the process, asked for after the freed ones lay with the kernel ``idle_s``."""
    idle_s: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _fill_rate(view: np.ndarray) -> float:
    start = time.perf_counter()
    view.fill(1)
    return view.nbytes / (time.perf_counter() - start) / 1e9


def _mapped_rates(size: int) -> tuple[float, float]:
    """(first write, second write) rates into an anonymous mapping of ``size`` bytes, which the
    kernel takes back when it is unmapped (glibc's heap would keep it under the actors' settings).

    Private, as glibc maps large arrays: a shared anonymous mapping lives in shmem, which does not
    get transparent huge pages where the kernel leaves ``shmem_enabled`` off."""
    with mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS) as mapping:
        if hasattr(mapping, "madvise") and hasattr(mmap, "MADV_HUGEPAGE"):
            mapping.madvise(mmap.MADV_HUGEPAGE)  # as numpy asks for its large arrays
        view = np.frombuffer(mapping, dtype=np.uint8)
        rates = _fill_rate(view), _fill_rate(view)
        del view  # the mapping cannot close while an array still exports it
    return rates


def fresh_memory(megabytes: int = FRESH_MEMORY_MB, idle_s: float = FREE_PAGE_IDLE_S) -> FreshMemory:
    """How fast this machine hands a process memory it does not hold yet.

    On a virtual machine whose host takes freed pages back, the first write to each page asked for
    again goes through the hypervisor, an order of magnitude slower than rewriting a kept array. A
    mapping actor that returned its block arrays to the kernel paid that on every block; the actors
    keep them (``deepsalt.mapping.pipeline.ACTOR_MALLOC_TUNABLES``), and so does ``make bench``.
    A probe run without those settings measures the host's memory, not the code.
    """
    size = megabytes * 2**20
    _mapped_rates(size)  # the first pages this process ever gets, which may be colder still
    fresh, resident = _mapped_rates(size)
    time.sleep(idle_s)
    after_idle, _ = _mapped_rates(size)
    return FreshMemory(megabytes, resident, fresh, after_idle, idle_s)


def describe() -> dict[str, Any]:
    """A JSON-able description of this machine, including its load when the run started."""
    return {
        "cpu_model": cpu_model(),
        "cpu": cpu_identity(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "gpu": gpu(),
        "os": platform.platform(),
        "versions": package_versions(),
    }
