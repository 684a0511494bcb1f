"""The student's multi-objective distillation loss and its parts.

``total = α · task + β · feature + γ · response`` (the paper weighted α=0.07, β=0.90, γ=0.10; the defaults here,
α=1, β=0.1, γ=1, put the measured targets first: see docs/METHOD.md):

- **task**: Huber (δ=1) between the student's mean and the target, plus ``nll_weight`` × the
  Gaussian negative log-likelihood of the target under the student's spread plus the row's
  source noise. Targets come from two sources, each with its own learned noise: point samples
  with measured ECe, and the survey's map-unit ECe on unlabelled pixels (weighted by
  ``survey_weight``): a map unit's value is coarse and biased, so it teaches the broad relation
  and the samples the detail. With ``nll_mean`` (the default) the NLL moves the mean as well, so
  each row pulls on it in proportion to its precision (its spread plus its source's noise);
  without it the mean is detached there, the NLL teaches only the spread and the Huber term alone
  drives the mean.
- **feature**: layer-wise alignment of the student's hidden states to the teacher's, MSE between
  layer-normalised states (so scale differences between the two networks do not dominate), on
  the rows that have a lab spectrum. Student layer ``i`` is aligned to teacher layer ``i`` with weights 1.35, 1.05, 0.65;
  the student's 4th layer (the teacher has 3) is aligned to the teacher's last layer with weight
  0.65 · (0.65 / 1.05) ≈ 0.40, continuing the depth decay geometrically. In general, layers past
  the teacher's depth map to its last layer and each extra layer multiplies the last weight by
  the last decay ratio.
- **response**: KL(teacher ‖ student) between the two Gaussian predictive distributions, on the
  rows that have a lab spectrum. It is zero only when both means and both spreads agree (the
  reference code's softmax over a single output made it identically zero). It is what carries the
  lab's knowledge to samples whose ECe was never measured: the teacher reads their MIR spectra.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

FEATURE_WEIGHTS = (1.35, 1.05, 0.65)


def gaussian_kl(
    mean_p: torch.Tensor, std_p: torch.Tensor, mean_q: torch.Tensor, std_q: torch.Tensor
) -> torch.Tensor:
    """Elementwise KL(N(mean_p, std_p²) ‖ N(mean_q, std_q²))."""
    return torch.log(std_q / std_p) + (std_p**2 + (mean_p - mean_q) ** 2) / (2 * std_q**2) - 0.5


def layer_weights(
    n_student: int, n_teacher: int, base: Sequence[float] = FEATURE_WEIGHTS
) -> list[tuple[int, float]]:
    """``(teacher_layer, weight)`` for every student layer, by the rule in the module docstring."""
    if n_teacher > len(base):
        raise ValueError(f"no feature weights given for a {n_teacher}-layer teacher")
    weights = list(base[:n_teacher])
    ratio = weights[-1] / weights[-2] if len(weights) > 1 else 1.0
    pairs = []
    for i in range(n_student):
        if i < n_teacher:
            pairs.append((i, weights[i]))
        else:
            pairs.append((n_teacher - 1, weights[-1] * ratio ** (i - n_teacher + 1)))
    return pairs


def feature_alignment(
    student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor], base: Sequence[float] = FEATURE_WEIGHTS
) -> torch.Tensor:
    """Weighted sum over student layers of MSE(LN(student_i), LN(teacher_j(i)))."""
    total = student[0].new_zeros(())
    for i, (j, w) in enumerate(layer_weights(len(student), len(teacher), base)):
        s, t = student[i], teacher[j]
        total = total + w * F.mse_loss(F.layer_norm(s, s.shape[-1:]), F.layer_norm(t, t.shape[-1:]))
    return total


def task_loss(mean: torch.Tensor, std: torch.Tensor, target: torch.Tensor, nll_weight: float) -> torch.Tensor:
    """Huber (δ=1) on the mean + ``nll_weight`` · Gaussian NLL of the spread around the detached mean."""
    huber = F.huber_loss(mean, target, delta=1.0)
    if nll_weight == 0:
        return huber
    nll = F.gaussian_nll_loss(mean.detach(), target, std**2, full=True)
    return huber + nll_weight * nll


@dataclass(frozen=True)
class DistillationWeights:
    alpha: float = 1.0
    beta: float = 0.10
    gamma: float = 1.0
    nll_weight: float = 0.5
    survey_weight: float = 0.3
    """Weight of a survey-labelled pixel's task term relative to a point sample's."""
    nll_mean: bool = True
    """Let the NLL move the mean too, so each row pulls on it in proportion to its precision."""


@dataclass
class StudentTargets:
    """Per-row targets of a student batch; NaN marks what a row lacks."""

    y: torch.Tensor  # (b,) standardised target (measured point ECe or the survey's map-unit ECe)
    source: torch.Tensor  # (b,) long: index into StudentNet.SOURCES
    teacher_mean: torch.Tensor  # (b,) the teacher's prediction from the row's lab spectrum
    teacher_std: torch.Tensor  # (b,)
    teacher_features: list[torch.Tensor]  # per teacher layer, (b, width)


def distillation_loss(
    student, noise: torch.Tensor, targets: StudentTargets, weights: DistillationWeights
) -> dict[str, torch.Tensor]:
    """All terms for one batch; ``student`` is a :class:`GaussianOutput`, ``noise`` (n_sources,) its
    learned label noise. The task term uses each row's own source noise; the response and feature
    terms apply to rows with a teacher output (a lab spectrum), the task term to rows with a target."""
    zero = student.mean.new_zeros(())
    labelled = torch.isfinite(targets.y)
    task = zero
    if labelled.any():
        row_noise = noise[targets.source[labelled]]
        std = torch.sqrt(student.std[labelled] ** 2 + row_noise**2)
        per_row = F.huber_loss(student.mean[labelled], targets.y[labelled], delta=1.0, reduction="none")
        if weights.nll_weight:
            per_row = per_row + weights.nll_weight * F.gaussian_nll_loss(
                student.mean[labelled] if weights.nll_mean else student.mean[labelled].detach(),
                targets.y[labelled],
                std**2,
                full=True,
                reduction="none",
            )
        row_weight = torch.where(targets.source[labelled] == 0, weights.survey_weight, 1.0)
        task = (per_row * row_weight).sum() / row_weight.sum()
    taught = torch.isfinite(targets.teacher_mean)
    feature = response = zero
    if taught.any():
        point = torch.sqrt(student.std[taught] ** 2 + noise[-1] ** 2)
        response = gaussian_kl(
            targets.teacher_mean[taught], targets.teacher_std[taught], student.mean[taught], point
        ).mean()
        feature = feature_alignment(
            [f[taught] for f in student.features], [f[taught] for f in targets.teacher_features]
        )
    total = weights.alpha * task + weights.beta * feature + weights.gamma * response
    return {"loss": total, "task": task, "feature": feature, "response": response}
