"""ConvVAE: architecture for 28x28 images, flattened I/O, bounds against brute force, export."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli, Normal

from gentorch.layers import reparameterize
from gentorch.models import VAE, ConvVAE


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _seq(module: nn.Module | torch.Tensor) -> nn.Sequential:
    """``model.encoder`` and ``model.decoder.net`` are typed loosely; both are ``nn.Sequential``."""
    return cast(nn.Sequential, module)


def _small(likelihood: str = "bernoulli") -> ConvVAE:
    return ConvVAE(3, likelihood, (1, 8, 8), channels=(4, 8), hidden_dim=16)  # type: ignore[arg-type]


def test_default_architecture_for_28x28() -> None:
    L = 16
    model = ConvVAE(L)
    assert isinstance(model, VAE)
    assert model.input_dim == 784
    assert model.image_shape == (1, 28, 28)
    # feature maps: (1, 28, 28) -> (32, 14, 14) -> (64, 7, 7) -> 256 -> 2L
    h = torch.rand(2, 784)
    shapes = []
    for layer in _seq(model.encoder):
        h = layer(h)
        if not isinstance(layer, nn.ReLU):
            shapes.append(tuple(h.shape[1:]))
    assert shapes == [(1, 28, 28), (32, 14, 14), (64, 7, 7), (3136,), (256,), (2 * L,)]
    # decoder: L -> 256 -> 64*7*7 -> (64, 7, 7) -> (32, 14, 14) -> (1, 28, 28) -> 784
    h = torch.randn(2, L)
    shapes = []
    for layer in _seq(model.decoder.net):
        h = layer(h)
        if not isinstance(layer, nn.ReLU):
            shapes.append(tuple(h.shape[1:]))
    assert shapes == [(256,), (3136,), (64, 7, 7), (32, 14, 14), (1, 28, 28), (784,)]
    # parameters, by hand: conv k*k*c_in*c_out + c_out; linear n_in*n_out + n_out
    encoder = (16 * 1 * 32 + 32) + (16 * 32 * 64 + 64) + (3136 * 256 + 256) + (256 * 2 * L + 2 * L)
    decoder = (L * 256 + 256) + (256 * 3136 + 3136) + (16 * 64 * 32 + 32) + (16 * 32 * 1 + 1)
    assert sum(p.numel() for p in model.encoder.parameters()) == encoder
    assert sum(p.numel() for p in model.decoder.parameters()) == decoder


def test_shapes_and_flattened_io() -> None:
    model = ConvVAE(5)
    x = torch.rand(4, 784)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (4, 5)
    assert model.decode(mu).shape == (4, 784)
    assert model.sample(6).shape == (6, 784)
    assert model.sample(6).view(-1, *model.image_shape).shape == (6, 1, 28, 28)
    assert model.reconstruct(x).shape == (4, 784)
    assert model.elbo(x).shape == (4,)
    assert model.iwae_bound(x, 3).shape == (4,)
    assert model.log_importance_weights(x, 3).shape == (3, 4)
    assert set(model.loss(x)) == {"loss", "recon", "kl", "elbo"}


def test_decode_folds_sample_dimensions() -> None:
    model = _small()
    z = torch.randn(5, 3, 3)  # (K, B, L)
    out = model.decode(z)
    assert out.shape == (5, 3, 64)
    for k in range(5):
        torch.testing.assert_close(out[k], model.decode(z[k]))


def test_input_is_reshaped_row_major_to_images() -> None:
    # The first layer sees x.view(B, C, H, W): a pixel at (c, i, j) is x[:, c*H*W + i*W + j].
    model = ConvVAE(2, "gaussian", (2, 8, 12), channels=(4,), hidden_dim=8)
    x = torch.rand(3, 2 * 8 * 12)
    conv = _seq(model.encoder)[1]
    assert isinstance(conv, nn.Conv2d)
    torch.testing.assert_close(_seq(model.encoder)[:2](x), conv(x.view(3, 2, 8, 12)))


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_log_importance_weights_match_brute_force(likelihood: str) -> None:
    model = _small(likelihood).double()
    x = (torch.rand(4, 64) < 0.4).double()
    k = 6
    log_w = model.log_importance_weights(x, k, generator=_gen(1))
    mu, logvar = model.encode(x)
    z = reparameterize(mu, logvar, n_samples=k, generator=_gen(1))
    for i in range(k):
        out = model.decode(z[i])
        px = Bernoulli(logits=out) if likelihood == "bernoulli" else Normal(out, 1.0)
        expected = (
            px.log_prob(x).sum(-1)
            + Normal(0.0, 1.0).log_prob(z[i]).sum(-1)
            - Normal(mu, torch.exp(0.5 * logvar)).log_prob(z[i]).sum(-1)
        )
        torch.testing.assert_close(log_w[i], expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(
        model.iwae_bound(x, k, generator=_gen(1)),
        torch.log(torch.exp(log_w).mean(0)),
        rtol=1e-10,
        atol=1e-10,
    )


@pytest.mark.parametrize("iwae_k", [1, 3])
def test_loss_scores_the_target(iwae_k: int) -> None:
    # a denoising step: the encoder sees the noisy images, the likelihood scores the clean ones
    model = _small().double()
    clean = (torch.rand(4, 64) < 0.4).double()
    noisy = (clean + 0.3 * torch.randn(4, 64, dtype=torch.float64)).clamp(0, 1)
    out = model.loss(noisy, target=clean, iwae_k=iwae_k, generator=_gen(3))
    mu, logvar = model.encode(noisy)
    z = reparameterize(mu, logvar, n_samples=iwae_k, generator=_gen(3))
    # recon = -mean log p(clean | z_i), z_i ~ q(z | noisy)
    recon = -Bernoulli(logits=model.decode(z)).log_prob(clean).sum(-1).mean()
    torch.testing.assert_close(out["recon"], recon, rtol=1e-10, atol=1e-10)
    default = model.loss(noisy, iwae_k=iwae_k, generator=_gen(3))
    same = model.loss(noisy, target=noisy, iwae_k=iwae_k, generator=_gen(3))
    assert all(torch.equal(default[k], same[k]) for k in default)


@pytest.mark.parametrize("iwae_k", [1, 4])
def test_gradient_reaches_every_parameter(iwae_k: int) -> None:
    model = ConvVAE(
        3, "gaussian", (3, 16, 16), channels=(4, 8), hidden_dim=16, gaussian_variance="learned"
    )
    model.loss(torch.rand(5, 3 * 16 * 16), iwae_k=iwae_k, beta=0.5)["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_other_image_shapes_and_depths() -> None:
    model = ConvVAE(4, image_shape=(3, 32, 32), channels=(8, 16, 32), hidden_dim=32)
    assert model.input_dim == 3072
    assert model.encoder(torch.rand(2, 3072)).shape == (2, 8)
    assert model.sample(2).shape == (2, 3072)


def test_training_decreases_the_loss() -> None:
    # 4 random binary 8x8 prototypes, 5% of pixels flipped: the negative ELBO starts near
    # 64 * log 2 ~ 44 nats and can fall towards 64 * H(0.05) + log 4 ~ 14 nats. 150 Adam steps
    # reach about 16 here; we require less than half of the initial value.
    protos = (torch.rand(4, 64) < 0.5).float()
    x_all = protos[torch.randint(0, 4, (1024,))]
    x_all = torch.where(torch.rand_like(x_all) < 0.05, 1 - x_all, x_all)
    model = ConvVAE(2, image_shape=(1, 8, 8), channels=(8,), hidden_dim=32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():
        before = -model.elbo(x_all, generator=_gen(2)).mean()
    for step in range(150):
        xb = x_all[(step * 64) % 1024 :][:64]
        loss = model.loss(xb)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = -model.elbo(x_all, generator=_gen(2)).mean()
    assert before > 40.0
    assert after < 0.5 * before, (before, after)


def test_bad_inputs_raise_clear_errors() -> None:
    model = ConvVAE(4)
    with pytest.raises(
        ValueError, match=r"x: expected shape \(B, 784\), got \(2, 1, 28, 28\) \(flatten images"
    ):
        model.loss(torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match=r"image_shape: expected \(C, H, W\), got \(28, 28\)"):
        ConvVAE(4, image_shape=(28, 28))
    with pytest.raises(
        ValueError, match=r"divisible by 2\*\*len\(channels\) = 8, got \(1, 28, 28\)"
    ):
        ConvVAE(4, channels=(8, 16, 32))
    with pytest.raises(ValueError, match=r"channels: expected at least one convolution"):
        ConvVAE(4, channels=())
    with pytest.raises(ValueError, match=r"hidden_dim: expected a positive integer, got 0"):
        ConvVAE(4, hidden_dim=0)


def test_state_dict_round_trip_through_config() -> None:
    model = ConvVAE(3, "gaussian", (1, 8, 8), channels=(4,), hidden_dim=8, activation="elu")
    clone = ConvVAE.from_config(model.config())
    clone.load_state_dict(model.state_dict())
    assert clone.config() == model.config()
    x = torch.rand(2, 64)
    model.eval()
    clone.eval()
    for a, b in zip(model(x), clone(x), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.slow
def test_onnx_export_of_the_eval_forward(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from gentorch.export import export_onnx, verify_onnx

    model = _small()
    path = export_onnx(model, (torch.rand(3, 64),), tmp_path / "conv_vae.onnx")
    # eval mode: z = mu, so the exported graph is deterministic; batch size is dynamic
    assert verify_onnx(model, path, (torch.rand(5, 64),)) < 1e-4
