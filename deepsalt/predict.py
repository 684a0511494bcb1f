"""``StudentPredictor``: the trained student applied to satellite pixels, in large batches.

Loaded once per process (or Ray actor) from a student checkpoint; the device is chosen at run
time (CUDA when available). Outputs per pixel:

- ``ece`` (dS/m): median of the predictive distribution (see ``deepsalt.models.target``);
- ``ece_std`` (dS/m): its delta-method spread, ``(1 + ece) · s`` for the log1p target space,
  widened beyond the training domain (``s`` grows with the square root of a domain score above 1);
  exact intervals come from :func:`deepsalt.models.target.interval`;
- ``domain_score``: the larger of two distances from the training pixels, each divided by its
  95th percentile over held-out pixels (:class:`deepsalt.models.networks.DomainScore`): the
  Mahalanobis distance of the pixel's latent and autoencoder reconstruction error (Ledoit–Wolf
  shrunk covariance), and its spectrum's residual off the training spectra's principal
  components. ≤ 1 is inside the training distribution, ≫ 1 is extrapolation.

Rows with a NaN reflectance or covariate give NaN in all three outputs. The survey's map-unit ECe
is optional per pixel (NaN: outside the survey); the student was trained to predict without it.

How the forward pass runs is set by :meth:`StudentPredictor.configure` (the map's ``model``
section): the batch size (on a CPU a batch whose activations stay in the core's caches; on a GPU
one sized from the device's free memory), the precision (fp32, where the members' input products
run fused (:mod:`deepsalt.models.fused`), or bf16/fp16 autocast) and whether
the forward pass is compiled (the elementwise layers between the matrix products are fused; on a
CPU in fp32 the GELUs compute erf without an exponential, :mod:`deepsalt.models.rational_gelu`, and
the compiled forward is a package kept on disk between processes, :mod:`deepsalt.compiled`; a
failed compile falls back to the plain forward with a warning). A compile runs on its own thread
from ``configure`` on, so an actor reads its first block while it compiles; the first ``predict``
waits for it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import nn

from deepsalt.compiled import PackagedForward
from deepsalt.errors import InputDataError
from deepsalt.io.covariates import COVARIATE_NAMES
from deepsalt.logs import get_logger
from deepsalt.mapping.predictor import InferenceSettings, ModelCard, Precision
from deepsalt.models.fused import FusedEnsemble, unfusable
from deepsalt.models.networks import StudentEnsemble
from deepsalt.models.rational_gelu import with_rational_gelu
from deepsalt.models.target import TargetScaler
from deepsalt.training import builders
from deepsalt.training.checkpoint import CheckpointMeta, content_hash, load_checkpoint, read_meta
from deepsalt.training.config import Stage

log = get_logger(__name__)

CPU_BATCH = 2048
"""Pixels per forward pass on a CPU: small enough that a layer's activations stay in the core's
caches between the matrix product and the elementwise layers after it (larger batches spill to
memory and run slower; benchmarks/ measures the forward pass against the core's GEMM rate, and
benchmarks/notes.md how the batch was chosen)."""
GPU_MEMORY_SHARE = 0.5
"""Share of the device's free memory one batch's activations may take."""
GPU_BATCH_RANGE = (16384, 1 << 21)
ACTIVATION_COPIES = 4
"""Live copies of a layer's activations during the forward pass (input, output, norm, temporaries)."""
AUTOCAST_DTYPES = {Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16}


class StudentPredictor:
    """A student checkpoint ready for inference; use :meth:`load`."""

    def __init__(self, net, scaler: TargetScaler, meta, device: torch.device, batch_size: int | None = None):
        self.net = net.to(device).eval()
        self.scaler = scaler
        self.device = device
        self.batch_size = batch_size or default_batch(self.net, device)
        self.precision = Precision.FP32
        self.forward: Callable[..., Any] = inference_forward(self.net, self.precision)
        self.wavelength = np.asarray(meta.band_axis["wavelength"], dtype=np.float64)
        self.covariate_names: tuple[str, ...] = tuple(meta.normalisation.get("covariates", ()))
        self.uses_survey: bool = bool(meta.normalisation.get("survey", False))
        self.checkpoint_id = meta.checkpoint_id
        self.lineage = lineage(meta)
        self.meta = meta
        self.warming: Future[None] | None = None
        """The compile started by :meth:`configure`, until the first :meth:`predict` has waited for it."""

    @classmethod
    def describe(cls, url: str) -> ModelCard:
        """The checkpoint's id, content hash and lineage from ``meta.json`` (weights not read)."""
        meta = read_meta(url, Stage.STUDENT)
        check_band_axis(url, meta)
        return ModelCard(
            meta.checkpoint_id, content_hash(url), {"checkpoint_id": meta.checkpoint_id, **lineage(meta)}
        )

    def configure(self, settings: InferenceSettings) -> None:
        """Batch size, precision and compilation of the forward pass (see the module docstring)."""
        self.wait_for_warm_up()  # a compile still running uses the modules changed below
        self.batch_size = settings.batch_pixels or default_batch(self.net, self.device)
        self.precision = Precision(settings.precision)
        for module in domain_path(self.net):
            keep_fp32(module, self.precision is not Precision.FP32)
        self.forward = inference_forward(self.net, self.precision)
        if settings.compile:
            traced = self.forward
            ahead_of_time = self.device.type == "cpu" and self.precision is Precision.FP32
            if ahead_of_time:
                traced = inference_forward(with_rational_gelu(self.net), self.precision)
            self.forward = CompiledForward(traced, fallback=self.forward, ahead_of_time=ahead_of_time)
            pool = ThreadPoolExecutor(1, thread_name_prefix="deepsalt-compile")
            self.warming = pool.submit(self.warm_up)
            pool.shutdown(wait=False)  # the thread ends with the warm-up

    def warm_up(self) -> None:
        """One forward pass on placeholder pixels: a compiled forward compiles here.

        :meth:`configure` runs it on a thread of its own, so a compile (seconds, mostly in Python)
        overlaps the actor's first reads (mostly in GDAL, without the GIL) instead of preceding them.
        """
        n = min(self.batch_size, 1024)
        sat = np.full((n, len(self.wavelength)), 0.2, np.float32)
        self._predict(sat, np.ones((n, len(COVARIATE_NAMES)), np.float32), None)

    def wait_for_warm_up(self) -> None:
        """Wait for the compile :meth:`configure` started, if any; its error, if any, is raised here."""
        warming, self.warming = self.warming, None
        if warming is not None:
            warming.result()

    @classmethod
    def load(
        cls, url: str, device: str | torch.device | None = None, batch_size: int | None = None
    ) -> StudentPredictor:
        """Read ``url`` (a student checkpoint directory, any fsspec URL); verifies the weights' hash."""
        state, meta = load_checkpoint(url, Stage.STUDENT)
        check_band_axis(url, meta)
        net = builders.build_student(builders.StudentArch.model_validate(meta.architecture))
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:  # torch lists every mismatching tensor: the first says enough
            reason = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
            raise InputDataError(url, f"weights do not fit the architecture in meta.json: {reason}") from exc
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        return cls(net, TargetScaler(**meta.normalisation["target"]), meta, torch.device(device), batch_size)

    def predict(
        self, reflectance: np.ndarray, covariates: np.ndarray, survey: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """``reflectance`` (n, len(wavelength)) in [0, 1], ``covariates`` (n, 8) and the survey ECe (n,)
        (dS/m, NaN or None where absent) → float32 arrays of length n."""
        self.wait_for_warm_up()
        return self._predict(reflectance, covariates, survey)

    def _predict(
        self, reflectance: np.ndarray, covariates: np.ndarray, survey: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        reflectance = np.asarray(reflectance, dtype=np.float32)
        covariates = np.asarray(covariates, dtype=np.float32)
        survey = (
            np.full(len(reflectance), np.nan, np.float32)
            if survey is None
            else np.asarray(survey, dtype=np.float32)
        )
        if reflectance.ndim != 2 or reflectance.shape[1] != len(self.wavelength):
            raise ValueError(
                f"reflectance must be (n, {len(self.wavelength)}) on the model's band axis "
                f"({self.wavelength[0]:.1f}–{self.wavelength[-1]:.1f} nm), got {reflectance.shape}"
            )
        n_cov = len(COVARIATE_NAMES)
        if covariates.shape != (len(reflectance), n_cov):
            raise ValueError(f"covariates must be ({len(reflectance)}, {n_cov}), got {covariates.shape}")
        if survey.shape != (len(reflectance),):
            raise ValueError(f"survey must be ({len(reflectance)},), got {survey.shape}")
        n = len(reflectance)
        ok = np.isfinite(reflectance).all(axis=1) & np.isfinite(covariates).all(axis=1)
        if not ok.all():  # one compacting copy, then every batch is a view
            reflectance, covariates, survey = reflectance[ok], covariates[ok], survey[ok]
        m = len(reflectance)
        mean = np.empty(m, np.float32)
        std = np.empty(m, np.float32)
        score = np.empty(m, np.float32)
        autocast = AUTOCAST_DTYPES.get(self.precision)
        with torch.inference_mode(), torch.autocast(self.device.type, autocast, enabled=autocast is not None):
            for start in range(0, m, self.batch_size):
                rows = slice(start, min(start + self.batch_size, m))
                sat = torch.from_numpy(np.ascontiguousarray(reflectance[rows])).to(self.device)
                cov = torch.from_numpy(np.ascontiguousarray(covariates[rows])).to(self.device)
                surv = torch.from_numpy(np.ascontiguousarray(survey[rows])).to(self.device)
                out, domain = self.forward(sat, cov, surv)
                mean[rows] = out.mean.float().cpu().numpy()
                std[rows] = out.std.float().cpu().numpy()
                score[rows] = domain.float().cpu().numpy()
        ece, ece_std = self.scaler.decode(mean, std)
        outputs = {"ece": ece, "ece_std": ece_std, "domain_score": score}
        if m == n:
            return outputs
        full = {name: np.full(n, np.nan, np.float32) for name in outputs}
        for name, values in outputs.items():
            full[name][ok] = values
        return full


class CompiledForward:
    """A compiled forward pass, falling back to the plain one if compiling fails.

    Compiling needs a C++ compiler on the node (inductor's CPU kernels). On a CPU in fp32 the
    forward is compiled ahead of time into a package kept on disk (:mod:`deepsalt.compiled`):
    tens of seconds the first time on a machine, a load and an export of a few seconds in every
    process after. Elsewhere (a GPU, autocast) it is ``torch.compile``d in each process, tens of
    seconds every time; the map decides when that pays (``model.compile``). Batch sizes vary
    from block to block, so the graph is compiled for symbolic sizes; a single-row batch, which
    torch would specialise, is padded to two rows. The weights are compiled as constants
    (inductor's ``freezing``: folded where they meet other constants and packed for the CPU's
    matrix library), since a loaded predictor never changes them.
    """

    def __init__(
        self,
        forward: Callable[..., Any],
        fallback: Callable[..., Any] | None = None,
        ahead_of_time: bool = False,
    ):
        self.traced = forward
        """What is compiled."""
        self.plain = forward if fallback is None else fallback
        """What runs if compiling fails: the same outputs to float rounding, faster uncompiled."""
        self.compiled: Callable[..., Any] | None = (
            PackagedForward(forward) if ahead_of_time else _jit_compiled(forward)
        )

    def __call__(self, *inputs: torch.Tensor) -> Any:
        if self.compiled is None:
            return self.plain(*inputs)
        single = len(inputs[0]) == 1
        padded = tuple(torch.cat([t, t]) for t in inputs) if single else inputs
        try:
            out, domain = self.compiled(*padded)
        except Exception as exc:  # any compiler failure: run uncompiled instead
            log.warning("compiling the forward pass failed (%s); running it uncompiled", str(exc)[:500])
            self.compiled = None
            return self.plain(*inputs)
        if single:
            out = type(out)(out.mean[:1], out.std[:1], [f[:1] for f in out.features])
            domain = domain[:1]
        return out, domain


def _jit_compiled(forward: Callable[..., Any]) -> Callable[..., Any]:
    """``torch.compile`` of ``forward`` for symbolic batch sizes, with the weights frozen."""
    compiled = torch.compile(forward, dynamic=True)

    def call(*inputs: torch.Tensor) -> Any:
        # Imported here, not with the module: Dynamo's import takes seconds that every actor would
        # pay at start-up, and an actor that does not compile never needs it.
        from torch._dynamo import config as dynamo_config
        from torch._inductor import config as inductor_config

        # specialize_float: the forward's Python floats are constants; traced as symbols, they
        # made Dynamo trace the whole forward twice (torch 2.13).
        with inductor_config.patch(freezing=True), dynamo_config.patch(specialize_float=True):
            return compiled(*inputs)

    return call


def inference_forward(net: StudentEnsemble, precision: Precision) -> Callable[..., Any]:
    """The forward pass the predictor runs: in fp32 the ensemble with its input products fused
    (:class:`FusedEnsemble`, the same outputs to float rounding), else the ensemble's own.

    Under autocast the ensemble's own forward runs, because :func:`domain_path` keeps the first
    member's encoder in fp32 and the fused product would take its first layer out of it.
    """
    if precision is Precision.FP32 and unfusable(net) is None:
        return FusedEnsemble(net).forward_with_domain
    return net.forward_with_domain


def domain_path(net: nn.Module) -> list[nn.Module]:
    """The modules the domain score is computed from: the first member's encoder MLP, the decoder
    and the score's distances.

    The score compares the decoder's reconstruction with the standardised spectrum, the spectrum
    with its projection on the training spectra's principal components, and the latent with the
    training pixels': small differences between values of order one, which 16-bit rounding swamps
    (measured in ``tests/test_inference.py``). They stay in fp32 under autocast; the other members
    and every head run in 16 bits.
    """
    members = getattr(net, "members", None)
    found = []
    if members is not None and len(members) and getattr(members[0], "encoder", None) is not None:
        found.append(members[0].encoder.net)
    found += [getattr(net, name) for name in ("decoder", "domain") if getattr(net, name, None) is not None]
    return found


def keep_fp32(module: nn.Module, enabled: bool) -> None:
    """Run ``module`` in fp32 with autocast off (``enabled``), or with its own forward again."""
    module.__dict__.pop("forward", None)  # the class's forward
    if not enabled:
        return
    forward = module.forward

    def fp32_forward(*inputs: torch.Tensor | None) -> torch.Tensor:
        with torch.autocast(inputs[0].device.type, enabled=False):  # type: ignore[union-attr]
            return forward(*(None if t is None else t.float() for t in inputs))

    module.forward = fp32_forward  # type: ignore[method-assign]


def default_batch(net: nn.Module, device: torch.device) -> int:
    """Pixels per forward pass: :data:`CPU_BATCH` on a CPU; on a GPU as many as a share of its free
    memory holds, counting every layer's activations (a power of two within :data:`GPU_BATCH_RANGE`)."""
    if device.type != "cuda":
        return CPU_BATCH
    free, _ = torch.cuda.mem_get_info(device)
    return gpu_batch(free, activation_bytes(net))


def activation_bytes(net: nn.Module) -> int:
    """fp32 bytes per pixel of the activations of every linear layer, times :data:`ACTIVATION_COPIES`."""
    widths = sum(m.in_features + m.out_features for m in net.modules() if isinstance(m, nn.Linear))
    return 4 * ACTIVATION_COPIES * max(widths, 1)


def gpu_batch(free_bytes: int, bytes_per_pixel: int) -> int:
    """The largest power of two of pixels whose activations fit the memory share, within the range."""
    low, high = GPU_BATCH_RANGE
    fits = int(free_bytes * GPU_MEMORY_SHARE) // bytes_per_pixel
    batch = 1 << max(fits, 1).bit_length() - 1
    return int(min(max(batch, low), high))


def lineage(meta: CheckpointMeta) -> dict[str, Any]:
    """The student's id, its parents' ids and its config hash, as recorded in a map."""
    return {
        Stage.STUDENT: meta.checkpoint_id,
        **meta.parents,
        "config_hash": meta.config_hash,
        "aligned": bool(meta.config.get("use_sau", True)),
        "survey_input": bool(meta.normalisation.get("survey", False)),
    }


def check_band_axis(url: str, meta: CheckpointMeta) -> None:
    """The band axis in ``meta.json`` must have as many bands as the network's satellite input."""
    arch = meta.architecture
    if not isinstance(arch, builders.StudentArch) or arch.encoder is None:
        return
    n_axis = len(meta.band_axis.get("wavelength", []))
    n_net = arch.encoder.n_inputs
    if n_axis != n_net:
        raise InputDataError(
            f"{url.rstrip('/')}/meta.json",
            f"band_axis.wavelength lists {n_axis} bands but the network takes {n_net} "
            "(the checkpoint was edited or assembled from two runs)",
        )
