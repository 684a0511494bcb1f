"""Cost model: measured per-pixel costs + stated assumptions → wall time and node-hours at scale.

A node's throughput is the slowest of three rates (the pipeline streams them side by side):
fetching compressed imagery from the object store, decoding + reprojecting it on the CPU cores,
and the student's forward pass (on a GPU, scaled from the model's FLOPs; on CPU-only nodes the
cores share decode and inference). The measured end-to-end overhead over the floors multiplies
the result, so pipeline inefficiency seen on this machine is carried to the projection.
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
    """The map to be made and how its input is stored (assumptions unless measured)."""

    pixels: float = 3e9
    """Western US ≈ 3 × 10⁹ pixels at 30 m."""
    bands: int = 224
    bytes_per_value: int = 2
    """EnMAP L2A int16 reflectance."""
    scenes_per_pixel: float = 1.5
    """Mean number of overlapping scenes read per output pixel (mosaic overlap + cloud fill)."""
    compression_ratio: float = 1.0
    """Uncompressed / stored size of the spectral COGs (measured on the demo region's files)."""
    nodes: int = 20
    startup_s: float = 300.0
    """Cluster start, image pull and actor warm-up, paid once per run."""

    @property
    def bytes_per_pixel(self) -> float:
        """Object-store bytes fetched per output pixel."""
        return self.bands * self.bytes_per_value * self.scenes_per_pixel / self.compression_ratio


@dataclass(frozen=True)
class Measured:
    """Per-pixel costs measured on this machine, in core-seconds."""

    decode_s_per_scene_pixel: float
    """Read + decode + reproject of one scene pixel (all bands) plus covariates, one core."""
    model_s_per_pixel_cpu: float
    """Student forward pass per pixel on one CPU core."""
    flops_per_pixel: float
    pipeline_overhead: float
    """End-to-end per-pixel cost over (read floor + model floor), ≥ 1 in practice."""


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
    io = node.bandwidth_bytes_s / workload.bytes_per_pixel
    decode_per_pixel = measured.decode_s_per_scene_pixel * workload.scenes_per_pixel
    if node.gpus:
        decode = node.cores / decode_per_pixel
        model = node.gpus * node.gpu_flops * node.gpu_efficiency / measured.flops_per_pixel
    else:  # the cores do both jobs, so they form one combined rate
        decode = model = node.cores / (decode_per_pixel + measured.model_s_per_pixel_cpu)
    rates = {"object-store bandwidth": io, "CPU decode/reproject": decode, "student forward": model}
    slowest = min(rates, key=rates.__getitem__)
    node_rate = rates[slowest] / max(measured.pipeline_overhead, 1.0)
    bottleneck = "CPU decode + forward" if not node.gpus and slowest != "object-store bandwidth" else slowest
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
