"""The exact (erf) GELU with its erf as a rational function, for compiled fp32 inference on a CPU.

Compiled on a CPU, ``nn.GELU`` evaluates erf from an exponential (ATen's vectorised erf calls
SLEEF's ``expf``), and on AVX2 hosts that exponential and the kernel around it took about a fifth
of the student's forward pass (``benchmarks/notes.md``, sessions 21–22). Eigen's single-precision
erf (the one XLA uses) needs no exponential: on [-4, 4] it is an odd polynomial over an even one in
``x²``, and outside that range erf is ±1 to float precision. Inductor fuses it into the layer norm
kernel before it as multiply-adds and one division.

It is the same function to float rounding: within 1.4e-6 of the exact GELU in absolute terms, where
``nn.GELU`` in float32 is within 4e-7 (``tests/test_rational_gelu.py``; the compiled forward's
outputs against the plain one's in ``tests/test_inference.py``). Eager, its dozen elementwise
operations are slower than ``nn.GELU``'s one kernel, and under autocast they would run in 16 bits,
which the coefficients are not made for, so the predictor uses it only for a compiled fp32 forward
on a CPU
(:meth:`deepsalt.predict.StudentPredictor.configure`). Checkpoints keep ``nn.GELU``; training never
sees this module.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

ERF_CLAMP = 4.0
"""Beyond this |x|, erf(x) rounds to ±1 in float32."""
ERF_NUMERATOR = (
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
)
"""Eigen's ``generic_fast_erf_float`` coefficients, highest power of ``x²`` first (times ``x``)."""
ERF_DENOMINATOR = (
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
)


def _horner(coefficients: tuple[float, ...], x2: torch.Tensor) -> torch.Tensor:
    value = coefficients[0] * x2 + coefficients[1]
    for c in coefficients[2:]:
        value = value * x2 + c
    return value


def rational_erf(x: torch.Tensor) -> torch.Tensor:
    """erf(x) without an exponential (NaN stays NaN, ±inf gives ±1)."""
    x = x.clamp(-ERF_CLAMP, ERF_CLAMP)
    x2 = x * x
    return x * _horner(ERF_NUMERATOR, x2) / _horner(ERF_DENOMINATOR, x2)


class RationalGELU(nn.Module):
    """``x · Φ(x)`` with Φ from :func:`rational_erf`: ``nn.GELU()`` to float rounding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1.0 + rational_erf(x * (1.0 / math.sqrt(2.0))))


def with_rational_gelu(net: nn.Module) -> nn.Module:
    """A copy of ``net`` whose exact GELUs are :class:`RationalGELU` (``net`` is left as it is)."""
    net = copy.deepcopy(net)
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.GELU) and child.approximate == "none":
                setattr(module, name, RationalGELU())
    return net
