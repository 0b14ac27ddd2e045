"""The reparameterization trick, step by step.

Run:  .venv/bin/python examples/reparameterization_trick.py [--steps 600]

A VAE's encoder outputs a Gaussian q(z|x) = N(mu, sigma^2) and the decoder is fed a *sample*
z from it. To train the encoder by gradient descent, the loss must be differentiable w.r.t.
mu and sigma *through the sample*. This script shows:

1. why naive sampling blocks that gradient,
2. how writing z = mu + sigma * eps (eps ~ N(0, 1) drawn independently) fixes it,
3. a tiny encoder/decoder trained end to end both ways on 2-D toy data.
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor, nn

from gentorch.layers import Reparameterize
from gentorch.losses import gaussian_kl


def naive_sampling_blocks_the_gradient() -> dict[str, object]:
    """Part 1: torch.normal and Distribution.sample() give no usable gradient."""
    mu = torch.tensor([1.0, -2.0], requires_grad=True)
    sigma = torch.tensor([0.5, 0.3], requires_grad=True)

    # torch.normal draws z ~ N(mu, sigma^2), but its gradient w.r.t. mu and sigma is defined
    # as zero: the sample is treated as a constant that happens to depend on them.
    z = torch.normal(mu, sigma)
    (z**2).sum().backward()
    assert mu.grad is not None  # backward filled both (with zeros)
    assert sigma.grad is not None
    print(f"torch.normal:          d/dmu = {mu.grad.tolist()}  d/dsigma = {sigma.grad.tolist()}")
    normal_grad = (mu.grad.clone(), sigma.grad.clone())

    # torch.distributions' .sample() is explicitly non-differentiable: no graph at all.
    z = torch.distributions.Normal(mu, sigma).sample()
    print(f"Normal(...).sample():  requires_grad = {z.requires_grad}")
    sample_requires_grad = z.requires_grad

    # The trick: draw the randomness first, then *compute* z from mu and sigma.
    # z = mu + sigma * eps is still N(mu, sigma^2), and dz/dmu = 1, dz/dsigma = eps.
    mu.grad = sigma.grad = None
    eps = torch.randn(2)
    z = mu + sigma * eps
    (z**2).sum().backward()
    assert mu.grad is not None
    print(f"mu + sigma * eps:      d/dmu = {mu.grad.tolist()}  (= 2 z)")
    return {
        "normal_grad": normal_grad,
        "sample_requires_grad": sample_requires_grad,
        "reparam_grad": mu.grad.clone(),
    }


def make_data(n: int, generator: torch.Generator) -> Tensor:
    """2-D points near a curve with one latent coordinate: (t, sin(2 t)) + noise, ``(n, 2)``."""
    t = torch.rand(n, 1, generator=generator) * 4 - 2
    noise = 0.05 * torch.randn(n, 2, generator=generator)
    return torch.cat([t, torch.sin(2 * t)], dim=1) + noise


class TinyVAE(nn.Module):
    """Encoder 2 -> [mu | logvar] (latent 1), decoder 1 -> 2; ``naive`` picks how z is drawn."""

    def __init__(self, naive: bool) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 2 * 1))
        self.decoder = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 2))
        self.naive = naive
        # The layer: splits [mu | logvar], samples in training, returns mu in eval.
        self.sample = Reparameterize()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h = self.encoder(x)
        mu, logvar = h.chunk(2, dim=-1)
        # Naive: torch.normal's sample has zero gradient w.r.t. mu and logvar.
        # The layer: z = mu + exp(0.5 * logvar) * eps, differentiable in both.
        z = torch.normal(mu, torch.exp(0.5 * logvar)) if self.naive else self.sample(h)
        return self.decoder(z), mu, logvar


def train(naive: bool, steps: int, seed: int = 0) -> dict[str, float]:
    """Part 3: fit the tiny VAE; return final losses and the encoder's reconstruction gradient."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    data = make_data(2048, g)
    model = TinyVAE(naive)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        x = data[torch.randint(0, len(data), (128,), generator=g)]
        recon, mu, logvar = model(x)
        # negative ELBO (Gaussian decoder with fixed variance 0.05^2, up to a constant):
        # reconstruction + KL(q(z|x) || N(0, 1)), both averaged over the batch
        rec = ((recon - x) ** 2).sum(-1).mean() / (2 * 0.05**2)
        kl = gaussian_kl(mu, logvar, reduction="batchmean")
        loss = rec + kl
        opt.zero_grad()
        loss.backward()
        opt.step()
    # How much does the reconstruction term alone tell the encoder?
    x = data[:512]
    model.zero_grad()
    recon, mu, logvar = model(x)
    ((recon - x) ** 2).sum(-1).mean().backward()
    enc_grad = sum(float(p.grad.norm()) for p in model.encoder.parameters() if p.grad is not None)
    model.eval()  # eval: the layer returns mu (the naive model still samples)
    with torch.no_grad():
        recon, mu, logvar = model(x)
        mse = float(((recon - x) ** 2).sum(-1).mean())
        kl_value = float(gaussian_kl(mu, logvar, reduction="batchmean"))
    return {"recon_mse": mse, "kl": kl_value, "encoder_grad_from_recon": enc_grad}


def main(steps: int = 600) -> dict[str, object]:
    print("1) Naive sampling blocks the gradient")
    part1 = naive_sampling_blocks_the_gradient()

    print("\n2) The layer does the same, with a custom backward that saves one tensor")
    layer = Reparameterize(track_diagnostics=True)  # keep the last mu, logvar for diagnostics()
    h = torch.tensor([[1.0, -2.0, 0.0, -1.0]], requires_grad=True)  # [mu | logvar], L = 2
    z = layer(h)
    z.sum().backward()
    assert h.grad is not None
    print(f"z = {z.tolist()}  d/dmu = {h.grad[0, :2].tolist()}")
    print(f"d/dlogvar = {h.grad[0, 2:].tolist()} = 0.5 * (z - mu) = 0.5 * sigma * eps")
    d = layer.diagnostics()
    kl_per_dim = d["kl_per_dim"]
    assert isinstance(kl_per_dim, Tensor)
    print(f"diagnostics: KL per dim {kl_per_dim.tolist()}, total {d['kl_total']:.3f}")

    print(f"\n3) A tiny VAE on 2-D data, {steps} steps each")
    naive = train(naive=True, steps=steps)
    reparam = train(naive=False, steps=steps)
    for name, r in (("naive torch.normal", naive), ("Reparameterize", reparam)):
        print(
            f"{name:>20}: recon MSE {r['recon_mse']:.4f}  KL {r['kl']:.3f}  "
            f"encoder grad from reconstruction {r['encoder_grad_from_recon']:.3g}"
        )
    print(
        "The naive encoder only ever hears from the KL term, so it collapses to the prior and\n"
        "the decoder can only output the data mean; the reparameterized one learns the curve."
    )
    return {"part1": part1, "naive": naive, "reparam": reparam}


if __name__ == "__main__":
    torch.set_num_threads(1)  # tiny models: threads only add overhead
    parser = argparse.ArgumentParser(description="The reparameterization trick, step by step.")
    parser.add_argument("--steps", type=int, default=600, help="training steps per model")
    main(parser.parse_args().steps)
