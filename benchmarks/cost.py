"""Cost model: measured per-pixel costs + stated assumptions → wall time and node-hours at scale.

A node's throughput is the slowest of three rates (the pipeline streams them side by side):
fetching compressed imagery from the object store, reading it on the CPU cores (decode, place on
the grid, composite, convert), and the student's forward pass (on a GPU, scaled from the model's
FLOPs at a share of the GPU's bf16 peak, ``model.precision: bf16``; on CPU-only nodes the cores
share reading and inference). Every per-pixel figure is measured on the production-shaped
benchmark region, per output pixel, so its scene overlap and cloud are in it; the measured
end-to-end overhead over the parts multiplies the result, so pipeline inefficiency seen on this
machine is carried to the projection.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class NodeType:
    """One kind of cluster node (the defaults mirror common cloud shapes; all are assumptions)."""

    name: str
    cores: int
    gpus: int
    bandwidth_bytes_s: float
    """Sustained object-store read bandwidth per node."""
    gpu_flops: float = 0.0
    """Dense peak FLOP/s of one GPU at the precision used (fp16/bf16 autocast)."""
    gpu_efficiency: float = 0.0
    """Share of the peak a small per-pixel model reaches with large batches."""


GPU_NODE = NodeType(
    "1× A10G-class GPU, 16 vCPU, 10 Gbit/s",
    cores=16,
    gpus=1,
    bandwidth_bytes_s=1.0e9,
    gpu_flops=125e12,
    gpu_efficiency=0.15,
)
CPU_NODE = NodeType("32 vCPU, no GPU, 10 Gbit/s", cores=32, gpus=0, bandwidth_bytes_s=1.0e9)


@dataclass(frozen=True)
class Workload:
    """The map to be made (assumptions)."""

    pixels: float = 3e9
    """Western US ≈ 3 × 10⁹ pixels at 30 m."""
    nodes: int = 20
    startup_s: float = 300.0
    """Cluster start, image pull and actor warm-up, paid once per run."""


@dataclass(frozen=True)
class Measured:
    """Costs per output pixel measured on this machine (one core), on the production-shaped region."""

    read_s_per_pixel: float
    """Read path: decode the scenes' tiles, place them on the grid, composite, convert, covariates."""
    model_s_per_pixel_cpu: float
    """Student forward pass on one CPU core (only the predicted share of the pixels is predicted)."""
    flops_per_pixel: float
    """Student FLOPs per output pixel (per predicted pixel × predicted share)."""
    stored_bytes_per_pixel: float
    """Compressed bytes of the source tiles read, per output pixel (what an object store would send)."""
    pipeline_overhead: float
    """End-to-end cost per pixel over (read + model), ≥ 1 in practice."""


@dataclass(frozen=True)
class Projection:
    node: str
    io_px_s: float
    decode_px_s: float
    model_px_s: float
    node_px_s: float
    bottleneck: str
    node_hours: float
    wall_hours: float
    nodes: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def project(node: NodeType, workload: Workload, measured: Measured) -> Projection:
    """Per-node rates, the bottleneck, node-hours and wall time for ``workload.nodes`` nodes."""
    io = node.bandwidth_bytes_s / measured.stored_bytes_per_pixel
    if node.gpus:
        decode = node.cores / measured.read_s_per_pixel
        model = node.gpus * node.gpu_flops * node.gpu_efficiency / measured.flops_per_pixel
    else:  # the cores do both jobs, so they form one combined rate
        decode = model = node.cores / (measured.read_s_per_pixel + measured.model_s_per_pixel_cpu)
    rates = {"object-store bandwidth": io, "CPU read path": decode, "student forward": model}
    slowest = min(rates, key=rates.__getitem__)
    node_rate = rates[slowest] / max(measured.pipeline_overhead, 1.0)
    bottleneck = "CPU read + forward" if not node.gpus and slowest != "object-store bandwidth" else slowest
    node_hours = workload.pixels / node_rate / 3600
    return Projection(
        node=node.name,
        io_px_s=io,
        decode_px_s=decode,
        model_px_s=model,
        node_px_s=node_rate,
        bottleneck=bottleneck,
        node_hours=node_hours,
        wall_hours=node_hours / workload.nodes + workload.startup_s / 3600,
        nodes=workload.nodes,
    )


def flops_per_pixel(model: Any, reflectance: Any, covariates: Any) -> float:
    """Matmul FLOPs of one forward pass per pixel, counted by torch's FlopCounterMode.

    Element-wise work (normalisation, softmax, activations) is not counted; it is a few per cent of a
    transformer's matmuls at these widths. PyTorch's fused inference path for encoder layers and
    its fused CPU attention kernel are invisible to the counter, so while counting the fast path is
    off and attention runs on the plain-matmul backend (the arithmetic is the same).
    """
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
            model(reflectance, covariates)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return counter.get_total_flops() / len(reflectance)
