"""The student ensemble's forward pass for inference, with the members' input products fused.

Every member standardises the spectrum with its own statistics and multiplies it by its encoder's
first layer, its linear path multiplies it by its spectral weights, and the domain score projects
the first member's standardised spectrum on the training spectra's principal axes. All of these are
affine in the same input, so they are folded, once when the predictor loads, into products over
the first member's standardised spectrum ``x₀``: for member ``k`` with statistics ``(μ_k, σ_k)``

    W_k x_k + b_k = (W_k diag(σ₀/σ_k)) x₀ + (b_k + W_k (μ₀ − μ_k)/σ_k).

The members' first layers stay one product each (one product over all of them ran slower: its
output leaves the core's cache); the linear paths' spectral columns and the principal axes, each
too narrow to run at the matrix-product rate alone, share one product. What goes away is a
standardised copy of the spectrum per member, a single-column product per member and the
projection back onto the bands (``benchmarks/notes.md`` has the profile). Everything after the
first layers runs the members' own modules, and :meth:`StudentEnsemble.mixture` combines them as
the training-time forward does; the two agree to float rounding (tested).

The folded weights are copies made when the predictor loads: a network whose weights change
afterwards needs a new :class:`FusedEnsemble` (the predictor never changes them).
"""

from __future__ import annotations

import torch
from torch import nn

from deepsalt.models.heads import GaussianOutput
from deepsalt.models.networks import StudentEnsemble


def unfusable(ensemble: StudentEnsemble) -> str | None:
    """Why the ensemble's input products cannot be fused (None: they can)."""
    members = list(ensemble.members)
    if any(member.encoder is None for member in members):
        return "a member has no spectral encoder"
    first = members[0].encoder.features
    for member in members:
        features = member.encoder.features
        if (features.n_inputs, features.binning, features.derivative) != (
            first.n_inputs,
            first.binning,
            first.derivative,
        ):
            return "the members preprocess the spectrum differently"
        if not isinstance(member.encoder.net[0], nn.Linear):
            return "a member's encoder does not start with a linear layer"
    return None


class FusedEnsemble(nn.Module):
    """:meth:`StudentEnsemble.forward_with_domain` with the input products folded (see the module)."""

    def __init__(self, ensemble: StudentEnsemble):
        super().__init__()
        reason = unfusable(ensemble)
        if reason is not None:
            raise ValueError(f"cannot fuse this student ensemble: {reason}")
        self.ensemble = ensemble
        # Each member's encoder after its first layer (sliced once here, not per batch).
        self.encoder_rest = nn.ModuleList(member.encoder.net[1:] for member in ensemble.members)
        reference = ensemble.members[0].encoder.norm
        first_w, first_b, narrow_w, narrow_b = [], [], [], []
        with torch.no_grad():
            for member in ensemble.members:
                norm, first = member.encoder.norm, member.encoder.net[0]
                ratio = reference.std / norm.std
                shift = (reference.mean - norm.mean) / norm.std
                first_w.append(first.weight * ratio)
                first_b.append(first.bias + first.weight @ shift)
                if member.linear is not None:
                    spectral = member.linear.weight[:, : reference.mean.numel()]
                    narrow_w.append(spectral * ratio)
                    narrow_b.append(spectral @ shift)
            domain = ensemble.domain
            self.n_linear = len(narrow_w)
            if domain.uses_spectrum:
                narrow_w.append(domain.basis)
                narrow_b.append(-(domain.spectral_mean @ domain.basis.T))
        self.register_buffer("first_weight", torch.stack(first_w))
        self.register_buffer("first_bias", torch.stack(first_b))
        n = reference.mean.numel()
        self.register_buffer("narrow_weight", torch.cat(narrow_w) if narrow_w else torch.zeros(0, n))
        self.register_buffer("narrow_bias", torch.cat(narrow_b) if narrow_b else torch.zeros(0))

    def forward_with_domain(
        self, reflectance: torch.Tensor, covariates: torch.Tensor, survey: torch.Tensor
    ) -> tuple[GaussianOutput, torch.Tensor]:
        members = self.ensemble.members
        encoder = members[0].encoder
        standardized = encoder.standardized(reflectance)
        narrow = torch.addmm(self.narrow_bias, standardized, self.narrow_weight.T)
        outputs, latent, linear = [], None, 0
        for k, (member, rest) in enumerate(zip(members, self.encoder_rest, strict=True)):
            z = rest(torch.addmm(self.first_bias[k], standardized, self.first_weight[k].T))
            side = member.side_inputs(covariates, survey)
            out = member.head(z, side)
            if member.linear is not None:
                path = narrow[:, linear] + member.linear.bias[0]
                if side is not None:
                    path = path + side @ member.linear.weight[0, encoder.n_features :]
                out = GaussianOutput(out.mean + path, out.std, out.features)
                linear += 1
            if k == 0:
                latent = z
            outputs.append(out)
        projection = narrow[:, self.n_linear :] if self.ensemble.domain.uses_spectrum else None
        return self.ensemble.mixture(outputs, latent, standardized, covariates, projection)

    def forward(
        self, reflectance: torch.Tensor, covariates: torch.Tensor, survey: torch.Tensor
    ) -> GaussianOutput:
        return self.forward_with_domain(reflectance, covariates, survey)[0]
