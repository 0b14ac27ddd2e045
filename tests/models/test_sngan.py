"""SN-GAN standard CNN generator and discriminator (Miyato et al. 2018, Table 3)."""

from __future__ import annotations

from typing import cast

import pytest
import torch
from torch import nn

from gentorch.layers import SpectralNorm
from gentorch.losses.gan import gradient_penalty, hinge_discriminator_loss
from gentorch.models import SNGANDiscriminator, SNGANGenerator
from gentorch.models.resnet_gan import (
    DiscriminatorResBlock,
    GeneratorResBlock,
    SNGANResNetDiscriminator,
    SNGANResNetGenerator,
)


@pytest.mark.parametrize(("size", "channels"), [(28, 1), (32, 3), (28, 3), (32, 1)])
def test_shapes_and_range(size: int, channels: int) -> None:
    g = SNGANGenerator(latent_dim=16, out_channels=channels, image_size=size, width=4)
    d = SNGANDiscriminator(in_channels=channels, image_size=size, width=4)
    x = g(torch.randn(3, 16) * 10)  # large codes push tanh into saturation
    assert x.shape == (3, channels, size, size)
    assert float(x.detach().min()) >= 0.0
    assert float(x.detach().max()) <= 1.0
    assert d(x).shape == (3,)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_width_parameter_counts_by_hand() -> None:
    # Table 3 at width 64 for 32x32x3, counted by hand (weights + biases; BN has 2 per channel).
    g = SNGANGenerator(latent_dim=128, out_channels=3, image_size=32, width=64)
    dense = 128 * 4 * 4 * 512 + 4 * 4 * 512
    deconvs = (512 * 256 * 16 + 256) + (256 * 128 * 16 + 128) + (128 * 64 * 16 + 64)
    bns = 2 * (512 + 256 + 128 + 64)
    out = 64 * 3 * 9 + 3
    assert _count(g) == dense + deconvs + bns + out
    d = SNGANDiscriminator(in_channels=3, image_size=32, spectral_norm=False, width=64)
    convs = [
        (3, 64, 3),
        (64, 64, 4),
        (64, 128, 3),
        (128, 128, 4),
        (128, 256, 3),
        (256, 256, 4),
        (256, 512, 3),
    ]
    expected = sum(i * o * k * k + o for i, o, k in convs) + (4 * 4 * 512 + 1)
    assert _count(d) == expected
    # 28x28: the last feature map is 3x3 (28 -> 14 -> 7 -> 3)
    d28 = SNGANDiscriminator(in_channels=1, image_size=28, spectral_norm=False, width=64)
    linear = d28.linear
    assert isinstance(linear, nn.Linear)
    assert linear.in_features == 3 * 3 * 512


def test_layer_types_with_and_without_sn() -> None:
    d_sn = SNGANDiscriminator(image_size=28, width=4, spectral_norm=True)
    d_plain = SNGANDiscriminator(image_size=28, width=4, spectral_norm=False)
    for name in SNGANDiscriminator.LAYER_NAMES:
        assert isinstance(getattr(d_sn, name), SpectralNorm), name
        plain = getattr(d_plain, name)
        assert type(plain) in (nn.Conv2d, nn.Linear), name
        assert not any(isinstance(m, SpectralNorm) for m in d_plain.modules())
    strides = [getattr(d_plain, n).stride[0] for n in SNGANDiscriminator.LAYER_NAMES[:-1]]
    assert strides == [1, 2, 1, 2, 1, 2, 1]


def test_plain_layers_can_be_swapped_by_name() -> None:
    d = SNGANDiscriminator(image_size=28, width=4, spectral_norm=False)
    x = torch.rand(2, 1, 28, 28)
    before = d(x)
    # replacing a layer by name must change what forward computes (forward looks layers up)
    scaled = nn.Sequential(cast(nn.Conv2d, d.conv3), nn.Identity())
    with torch.no_grad():
        d.conv3 = scaled
        cast(nn.Conv2d, scaled[0]).weight.mul_(3.0)
    assert not torch.allclose(d(x), before)
    # torch's own parametrization wraps the plain layer in place and forward still runs
    d2 = SNGANDiscriminator(image_size=28, width=4, spectral_norm=False)
    for name in SNGANDiscriminator.LAYER_NAMES:
        setattr(d2, name, nn.utils.parametrizations.spectral_norm(getattr(d2, name)))
    assert d2(x).shape == (2,)


def test_spectral_norm_keeps_layers_near_one() -> None:
    d = SNGANDiscriminator(image_size=28, width=4, spectral_norm=True)
    x = torch.rand(8, 1, 28, 28)
    d.train()
    with torch.no_grad():
        for _ in range(3):  # training forwards: one power iteration each
            d(x)
    for name in SNGANDiscriminator.LAYER_NAMES:
        layer = getattr(d, name)
        # The effective weight W / sigma_hat has largest singular value exact / estimate, ~1
        # since SpectralNorm warms its vectors up at construction; 1e-3 leaves room for the
        # float32 power iteration only.
        ratio = float(layer.exact_sigma()) / float(layer.sigma)
        assert ratio == pytest.approx(1.0, abs=1e-3), name
        w = layer.normalized_weight().detach().flatten(1)
        assert float(torch.linalg.matrix_norm(w, ord=2)) == pytest.approx(1.0, abs=1e-3), name


def test_gradients_reach_generator_and_double_backward_through_sn() -> None:
    g = SNGANGenerator(latent_dim=8, image_size=28, width=4)
    d = SNGANDiscriminator(image_size=28, width=4, spectral_norm=True)
    real = torch.rand(4, 1, 28, 28)
    fake = g(torch.randn(4, 8))
    loss = hinge_discriminator_loss(d(real), d(fake)) + 10 * gradient_penalty(d, real, fake)
    loss.backward()
    for name, p in list(d.named_parameters()) + list(g.named_parameters()):
        assert p.grad is not None, name
        assert bool(torch.isfinite(p.grad).all()), name
    assert any(float(p.grad.abs().sum()) > 0 for p in g.parameters() if p.grad is not None)


def test_sample_uses_generator_and_device() -> None:
    g = SNGANGenerator(latent_dim=8, image_size=32, out_channels=3, width=4).eval()
    a = g.sample(3, generator=torch.Generator().manual_seed(5))
    b = g.sample(3, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)
    assert a.shape == (3, 3, 32, 32)
    assert a.device == g.dense.weight.device


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="image_size: expected one of"):
        SNGANGenerator(image_size=64)
    with pytest.raises(ValueError, match="image_size: expected one of"):
        SNGANDiscriminator(image_size=30)
    with pytest.raises(ValueError, match="width: expected a positive integer"):
        SNGANGenerator(width=0)
    g = SNGANGenerator(latent_dim=8, width=4)
    with pytest.raises(ValueError, match=r"z: expected shape \(B, 8\), got \(2, 7\)"):
        g(torch.randn(2, 7))
    d = SNGANDiscriminator(image_size=28, width=4)
    with pytest.raises(ValueError, match=r"x: expected shape \(B, 1, 28, 28\), got \(2, 784\)"):
        d(torch.rand(2, 784))
    with pytest.raises(ValueError, match="n: expected a positive integer"):
        g.sample(0)


# ----------------------------------------------------------------------- ResNet (Table 4)
@pytest.mark.parametrize(("size", "channels"), [(28, 1), (32, 3)])
def test_resnet_shapes_and_range(size: int, channels: int) -> None:
    g = SNGANResNetGenerator(latent_dim=8, out_channels=channels, image_size=size, width=4)
    d = SNGANResNetDiscriminator(in_channels=channels, image_size=size, width=4)
    with torch.no_grad():
        x = g(torch.randn(3, 8) * 10)
        assert x.shape == (3, channels, size, size)
        assert float(x.min()) >= 0.0
        assert float(x.max()) <= 1.0
        assert d(x).shape == (3,)


def test_resnet_paper_parameter_counts_by_hand() -> None:
    # Table 4 for 32x32x3: generator 256 channels, three up-blocks; discriminator 128.
    g = SNGANResNetGenerator(latent_dim=128, out_channels=3, image_size=32, width=256)
    block = 2 * 256 + (256 * 256 * 9 + 256) + 2 * 256 + (256 * 256 * 9 + 256) + (256 * 256 + 256)
    expected = (128 * 16 * 256 + 16 * 256) + 3 * block + 2 * 256 + (256 * 3 * 9 + 3)
    assert sum(p.numel() for p in g.parameters()) == expected
    d = SNGANResNetDiscriminator(in_channels=3, image_size=32, spectral_norm=False, width=128)
    first = (3 * 128 * 9 + 128) + (128 * 128 * 9 + 128) + (3 * 128 + 128)
    down = (128 * 128 * 9 + 128) * 2 + (128 * 128 + 128)
    plain = (128 * 128 * 9 + 128) * 2  # identity shortcut
    assert sum(p.numel() for p in d.parameters()) == first + down + 2 * plain + 129


def test_resnet_blocks_against_their_formulas() -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 3, 6, 6)
    up = GeneratorResBlock(3, 5).eval()
    with torch.no_grad():
        # y = conv(relu(bn(conv(up(relu(bn(x))))))) + conv1x1(up(x))
        nearest = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        branch = up.conv2(torch.relu(up.bn2(up.conv1(torch.relu(up.bn1(nearest))))))
        torch.testing.assert_close(up(x), branch + up.shortcut(nearest))
    down = DiscriminatorResBlock(3, 5, downsample=True, spectral_norm=False)
    first = DiscriminatorResBlock(3, 5, downsample=True, first=True, spectral_norm=False)
    same = DiscriminatorResBlock(5, 5, spectral_norm=False)
    assert same.shortcut is None
    assert down.shortcut is not None
    assert first.shortcut is not None
    pool = torch.nn.functional.avg_pool2d
    with torch.no_grad():
        h = pool(down.conv2(torch.relu(down.conv1(torch.relu(x)))), 2)
        torch.testing.assert_close(down(x), h + pool(down.shortcut(x), 2))
        h = pool(first.conv2(torch.relu(first.conv1(x))), 2)
        # pooling and a 1x1 conv commute: either order is the same function
        torch.testing.assert_close(first(x), h + pool(first.shortcut(x), 2))
        y = torch.randn(2, 5, 4, 4)
        torch.testing.assert_close(same(y), same.conv2(torch.relu(same.conv1(torch.relu(y)))) + y)


def test_resnet_sn_wraps_every_weighted_layer_and_trains() -> None:
    d = SNGANResNetDiscriminator(image_size=28, width=4, spectral_norm=True)
    wrapped = [m for m in d.modules() if isinstance(m, SpectralNorm)]
    # 2 convs per block, 1x1 shortcuts in the first two blocks, the dense layer
    assert len(wrapped) == 4 * 2 + 2 + 1
    plain = SNGANResNetDiscriminator(image_size=28, width=4, spectral_norm=False)
    assert not any(isinstance(m, SpectralNorm) for m in plain.modules())
    g = SNGANResNetGenerator(latent_dim=8, image_size=28, width=4)
    real, fake = torch.rand(4, 1, 28, 28), g(torch.randn(4, 8))
    (hinge_discriminator_loss(d(real), d(fake)) + gradient_penalty(d, real, fake)).backward()
    for name, p in g.named_parameters():
        assert p.grad is not None, name
        assert bool(torch.isfinite(p.grad).all()), name
    with pytest.raises(ValueError, match="image_size: expected one of"):
        SNGANResNetGenerator(image_size=64)
    with pytest.raises(ValueError, match=r"x: expected shape \(B, 1, 28, 28\)"):
        d(torch.rand(2, 1, 32, 32))


def test_resnet_discriminator_passes_n_power_iterations_to_every_spectral_norm() -> None:
    # before: the ResNet discriminator had no such argument and `train gan --arch resnet`
    # dropped --n-power-iterations silently
    d = SNGANResNetDiscriminator(image_size=28, width=4, n_power_iterations=3)
    wrapped = [m for m in d.modules() if isinstance(m, SpectralNorm)]
    assert len(wrapped) == 11
    assert {m.n_power_iterations for m in wrapped} == {3}
    assert d.config()["n_power_iterations"] == 3
    assert SNGANResNetDiscriminator(**d.config()).n_power_iterations == 3
    with pytest.raises(ValueError, match="n_power_iterations: expected a positive integer"):
        SNGANResNetDiscriminator(n_power_iterations=0)


def test_resnet_generator_samples_like_the_cnn_generator() -> None:
    g = SNGANResNetGenerator(latent_dim=8, image_size=28, width=4).eval().double()
    a = g.sample(3, generator=torch.Generator().manual_seed(1))
    z = torch.randn(3, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert a.dtype == torch.float64
    assert torch.equal(a, g(z))  # the codes are N(0, I) drawn in the weights' dtype
    with pytest.raises(ValueError, match="n: expected a positive integer"):
        g.sample(0)
    with pytest.raises(TypeError, match="generator"):
        g.sample(2, generator=1)  # type: ignore[arg-type]
