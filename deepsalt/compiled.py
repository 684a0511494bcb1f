"""The predictor's forward pass compiled ahead of time (AOTInductor) and kept on disk between processes.

Why not ``torch.compile`` in every process: with the weights compiled as constants (inductor's
``freezing``), torch 2.13 bypasses its own compile caches, so every mapping actor of every run
compiled the same forward from scratch, tens of seconds each (``benchmarks/notes.md``, sessions
17 and 25); and a compiled graph still enters through Python guards on every call. Here the
forward is exported once per process (``torch.export``, seconds), and the exported program is
compiled by AOTInductor into a package: a shared library with the weights packed for the CPU's
matrix library. Packages are kept in :func:`package_dir` under a key made of everything that
decides their machine code: the exported graph and its weights, the torch version, the CPU's
vector instruction set and the C++ compiler. The next process with the same key, on this machine
or another sharing the directory, loads the package in well under a second and runs the graph
without Python between its kernels.

Processes that need the same package at once take turns on a lock file beside it, so a node
starting several actors compiles once. A package is written under a temporary name and renamed,
so a reader never sees half of one; a package that cannot be loaded (truncated, or from a
different build) is compiled again. The directory can be deleted at any time.
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from torch import nn

from deepsalt.logs import get_logger
from deepsalt.models.heads import GaussianOutput

log = get_logger(__name__)

PACKAGE_DIR_ENV = "DEEPSALT_COMPILE_CACHE"
"""Environment variable naming the package directory (default: ``$XDG_CACHE_HOME/deepsalt/compiled``,
``~/.cache/deepsalt/compiled`` without it). On a cluster, a volume shared by a node's pods saves each
pod its own compile."""

MAX_BATCH = 1 << 22
"""Largest batch the package accepts (the batch size is symbolic from 2 up to this)."""


def package_dir() -> Path:
    """Where compiled packages are kept (see :data:`PACKAGE_DIR_ENV`)."""
    configured = os.environ.get(PACKAGE_DIR_ENV)
    if configured:
        return Path(configured)
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "deepsalt" / "compiled"


class _TensorOutputs(nn.Module):
    """A forward pass returning ``(GaussianOutput, domain)`` as the plain tensors export needs:
    the mean, the spread and the domain score (the per-layer features are not used for inference)."""

    def __init__(self, forward: Callable[..., Any]):
        super().__init__()
        owner = getattr(forward, "__self__", None)
        self.owner = owner if isinstance(owner, nn.Module) else None  # its weights, lifted by export
        self.forward_pass = forward

    def forward(
        self, reflectance: torch.Tensor, covariates: torch.Tensor, survey: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out, domain = self.forward_pass(reflectance, covariates, survey)
        return out.mean, out.std, domain


def export_forward(forward: Callable[..., Any], inputs: tuple[torch.Tensor, ...]) -> Any:
    """The forward pass as an exported program, the batch size symbolic (2 … :data:`MAX_BATCH`)."""
    from torch.export import Dim, export

    batch = Dim("batch", min=2, max=MAX_BATCH)
    with torch.inference_mode(False), torch.no_grad():
        examples = tuple(t.clone() for t in inputs)  # not inference tensors, which export refuses
        return export(
            _TensorOutputs(forward).eval(),
            examples,
            dynamic_shapes=tuple({0: batch} for _ in examples),
            strict=False,
        )


def package_key(program: Any) -> str:
    """A digest of everything that decides the package's machine code (see the module docstring)."""
    from torch._inductor.cpp_builder import get_cpp_compiler
    from torch._inductor.cpu_vec_isa import pick_vec_isa

    digest = hashlib.sha256()
    for part in (
        torch.__version__,
        platform.machine(),
        str(pick_vec_isa()),
        get_cpp_compiler(),
        program.graph_module.code,
        str(program.graph_signature),
        str(program.range_constraints),
    ):
        digest.update(part.encode())
        digest.update(b"\0")
    tensors = {**program.state_dict, **program.constants}
    for name in sorted(tensors):
        tensor = tensors[name]
        if not isinstance(tensor, torch.Tensor):
            digest.update(f"{name}:{type(tensor).__name__}".encode())
            continue
        value = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{value.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()[:32]


def compile_package(program: Any, path: Path) -> None:
    """AOTInductor-compile ``program`` into the package ``path`` (written whole, then renamed).

    The weights are compiled as constants (``freezing``): folded where they meet other constants
    and packed for the CPU's matrix library, since a loaded predictor never changes them."""
    from torch._inductor import aoti_compile_and_package
    from torch._inductor import config as inductor_config

    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.pt2")
    try:
        with inductor_config.patch(freezing=True):
            aoti_compile_and_package(program, package_path=str(partial))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def load_package(path: Path) -> Callable[..., Any]:
    from torch._inductor import aoti_load_package

    return aoti_load_package(str(path))


class PackagedForward:
    """A forward pass run from its compiled package: made (or found) on the first call, whose
    inputs serve as the example for export; called like the forward it packages, with batches of
    at least two rows."""

    def __init__(self, forward: Callable[..., Any]):
        self.forward = forward
        self.path: Path | None = None
        """The package in use, once the first call has made or found it."""
        self.compiled_here = False
        """Whether this process compiled the package (False: it found one)."""
        self._runner: Callable[..., Any] | None = None

    def __call__(self, *inputs: torch.Tensor) -> tuple[GaussianOutput, torch.Tensor]:
        if self._runner is None:
            self._runner = self._made_or_found(inputs)
        mean, std, domain = self._runner(*inputs)
        return GaussianOutput(mean, std, []), domain

    def _made_or_found(self, inputs: tuple[torch.Tensor, ...]) -> Callable[..., Any]:
        start = time.perf_counter()
        program = export_forward(self.forward, inputs)
        folder = package_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"forward-{package_key(program)}.pt2"
        with FileLock(f"{path}.lock"):
            if path.exists():
                try:
                    runner = load_package(path)
                except Exception as exc:  # a package that fails to load, for any reason, is compiled again
                    log.warning(
                        "compiled forward pass %s cannot be loaded (%s); compiling it again", path, exc
                    )
                    path.unlink()
                else:
                    self.path = path
                    log.info(
                        "forward pass loaded compiled from %s in %.1f s", path, time.perf_counter() - start
                    )
                    return runner
            compile_package(program, path)
        self.path, self.compiled_here = path, True
        log.info("forward pass compiled ahead of time into %s in %.1f s", path, time.perf_counter() - start)
        return load_package(path)
