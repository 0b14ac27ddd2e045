"""A VAE whose exact log-likelihood is known: linear-Gaussian decoder (probabilistic PCA)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn
from torch.distributions import MultivariateNormal


class LinearGaussianVAE(nn.Module):
    """p(z) = N(0, I), p(x | z) = N(W z + b, s2 I), q(z | x) = N(A (x - b) + shift, diag(v)).

    The marginal is p(x) = N(b, W W^T + s2 I), exact through MultivariateNormal. The encoder is
    the exact posterior mean with a deliberately mis-scaled diagonal variance (and an optional
    mean shift), so the ELBO is strictly below log p(x) and the IWAE bound has room to tighten.
    """

    likelihood = "gaussian"
    # buffers, registered in __init__
    A: Tensor
    q_logvar: Tensor
    q_shift: Tensor

    def __init__(
        self,
        d: int = 4,
        latent: int = 2,
        s2: float = 0.5,
        *,
        var_scale: float = 1.6,
        shift: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        dt = torch.float64
        self.latent_dim = latent
        self.s2 = s2
        self.W = nn.Parameter(torch.randn(d, latent, generator=g, dtype=dt))
        self.b = nn.Parameter(torch.randn(d, generator=g, dtype=dt))
        precision = self.W.detach().T @ self.W.detach() / s2 + torch.eye(latent, dtype=dt)
        post_cov = torch.linalg.inv(precision)
        self.register_buffer("A", post_cov @ self.W.detach().T / s2)
        self.register_buffer("q_logvar", (torch.diagonal(post_cov) * var_scale).log())
        self.register_buffer("q_shift", torch.full((latent,), shift, dtype=dt))
        self.calls: list[tuple[int, int, bool]] = []  # (k, B, training) per weights call

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu = (x - self.b) @ self.A.T + self.q_shift
        return mu, self.q_logvar.expand_as(mu)

    def decode(self, z: Tensor) -> Tensor:
        return z @ self.W.T + self.b

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x)[0])

    def log_importance_weights(self, x: Tensor, k: int) -> Tensor:
        self.calls.append((k, x.shape[0], self.training))
        mu, logvar = self.encode(x)
        eps = torch.randn((k, *mu.shape), dtype=x.dtype, device=x.device)
        z = mu + (0.5 * logvar).exp() * eps
        log_2pi = math.log(2 * math.pi)
        # Diagonal Gaussian log-densities written out (torch.distributions is slower here).
        sq = (x - self.decode(z)).square().sum(-1) / self.s2
        log_px_z = -0.5 * (sq + x.shape[-1] * (log_2pi + math.log(self.s2)))
        log_pz = -0.5 * (z.square() + log_2pi).sum(-1)
        log_qz = -0.5 * (eps.square() + logvar + log_2pi).sum(-1)
        return log_px_z + log_pz - log_qz

    def elbo(self, x: Tensor) -> Tensor:
        # Closed form: E_q log N(x; W z + b, s2 I) - KL(q || N(0, I)), q = N(mu, diag(v)).
        mu, logvar = self.encode(x)
        v = logvar.exp()
        d = x.shape[-1]
        resid = (x - self.decode(mu)).square().sum(-1) + (v * self.W.square().sum(0)).sum(-1)
        expected_ll = -0.5 * d * math.log(2 * math.pi * self.s2) - resid / (2 * self.s2)
        kl = 0.5 * (mu.square() + v - 1 - logvar).sum(-1)
        return expected_ll - kl

    def exact_log_prob(self, x: Tensor) -> Tensor:
        cov = self.W @ self.W.T + self.s2 * torch.eye(self.W.shape[0], dtype=self.W.dtype)
        log_prob: Tensor = MultivariateNormal(self.b, covariance_matrix=cov).log_prob(x)
        return log_prob

    def sample_data(self, n: int, seed: int = 1) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.latent_dim, generator=g, dtype=torch.float64)
        noise = torch.randn(n, self.W.shape[0], generator=g, dtype=torch.float64)
        return (self.decode(z) + math.sqrt(self.s2) * noise).detach()


@pytest.fixture
def make_linear_vae() -> type[LinearGaussianVAE]:
    """The model class, as a factory: ``make_linear_vae(var_scale=3.0)``."""
    return LinearGaussianVAE
