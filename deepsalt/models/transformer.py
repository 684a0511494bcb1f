"""Transformers for the teacher (lab latent) and the student (satellite latent + covariates).

Self-attention needs a sequence. With ``tokens > 1`` the latent is cut into ``tokens`` equal
chunks, each projected by its own linear map to ``d_model``, and the covariates form one more
token (one token per covariate would nearly double the sequence, and the per-pixel cost, of the
student that maps millions of pixels); a learned positional embedding tells the positions apart.
Without a latent (covariates-only variant) each covariate is its own token, so attention still
acts on a sequence. With
``tokens == 1`` the whole input (latent ⊕ covariates) is one token, so attention over a length-1
sequence is a fixed linear map: the authors' degenerate case, kept as an ablation.

The head predicts a Gaussian in the (transformed) target space: mean and softplus spread.
"""

from __future__ import annotations

import torch
from torch import nn

from deepsalt.models.heads import GaussianOutput, gaussian


class Tokenizer(nn.Module):
    """Turns ``(latent, covariates)`` into a ``(batch, seq, d_model)`` token sequence."""

    def __init__(self, latent_dim: int, n_covariates: int, tokens: int, d_model: int):
        super().__init__()
        if latent_dim and latent_dim % tokens:
            raise ValueError(f"latent_dim {latent_dim} is not divisible by tokens={tokens}")
        if latent_dim == 0 and n_covariates == 0:
            raise ValueError("a transformer needs a latent, covariates, or both")
        self.latent_dim, self.n_covariates, self.tokens = latent_dim, n_covariates, tokens
        self.mode = "single" if tokens == 1 else ("chunks" if latent_dim else "per_covariate")
        if self.mode == "single":
            self.proj = nn.Linear(latent_dim + n_covariates, d_model)
            n_seq = 1
        elif self.mode == "chunks":
            chunk = latent_dim // tokens
            # One weight matrix per latent token: (tokens, chunk, d_model); covariates: one token.
            self.lat_weight = nn.Parameter(torch.randn(tokens, chunk, d_model) * chunk**-0.5)
            self.cov_proj = nn.Linear(n_covariates, d_model) if n_covariates else None
            n_seq = tokens + (1 if n_covariates else 0)
        else:
            self.cov_weight = nn.Parameter(torch.randn(n_covariates, d_model))
            n_seq = n_covariates
        self.bias = nn.Parameter(torch.zeros(n_seq, d_model))
        self.position = nn.Parameter(torch.randn(n_seq, d_model) * 0.02)
        self.n_seq = n_seq

    def forward(self, latent: torch.Tensor | None, covariates: torch.Tensor | None) -> torch.Tensor:
        if self.mode == "single":
            parts = [t for t in (latent, covariates) if t is not None]
            tokens = self.proj(torch.cat(parts, dim=-1)).unsqueeze(1)
        elif self.mode == "chunks":
            chunks = latent.reshape(len(latent), self.tokens, -1)
            tokens = torch.einsum("btc,tcd->btd", chunks, self.lat_weight)
            if self.cov_proj is not None:
                tokens = torch.cat([tokens, self.cov_proj(covariates).unsqueeze(1)], dim=1)
        else:
            tokens = covariates.unsqueeze(-1) * self.cov_weight
        return tokens + self.bias + self.position


class GaussianTransformer(nn.Module):
    """Encoder-only transformer with a Gaussian regression head."""

    def __init__(
        self,
        latent_dim: int,
        n_covariates: int = 0,
        n_layers: int = 3,
        n_heads: int = 8,
        d_model: int = 64,
        tokens: int = 8,
        ff_dim: int = 128,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.tokenizer = Tokenizer(latent_dim, n_covariates, tokens, d_model)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, n_heads, ff_dim, dropout, batch_first=True, norm_first=True)
            for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 2)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def forward(
        self, latent: torch.Tensor | None = None, covariates: torch.Tensor | None = None
    ) -> GaussianOutput:
        h = self.tokenizer(latent, covariates)
        features = []
        for layer in self.layers:
            h = layer(h)
            features.append(h.mean(dim=1))
        return gaussian(self.head(self.norm(h).mean(dim=1)), features)

    def attention_weights(
        self, latent: torch.Tensor | None = None, covariates: torch.Tensor | None = None, layer: int = 0
    ) -> torch.Tensor:
        """Head-averaged attention weights ``(batch, seq, seq)`` of one layer (for inspection and tests)."""
        h = self.tokenizer(latent, covariates)
        for block in self.layers[:layer]:
            h = block(h)
        block = self.layers[layer]
        x = block.norm1(h)
        _, weights = block.self_attn(x, x, x, need_weights=True, average_attn_weights=True)
        return weights
