"""Property-based tests (hypothesis) of the SN-GAN networks: the standard CNN (sngan.py) and the
ResNet (resnet_gan.py) generators and discriminators, and their shared checks (_gan_checks.py).

Random tiny widths, channels, image sizes and batches (derandomized, so CI sees the same examples
on every run). Checked: the documented shapes and the generators' ``(tanh + 1) / 2`` output in
``[0, 1]`` for any code, in training and eval mode and in float64; batch independence; that
every conv and dense layer of a spectral-normalized discriminator runs with ``W / sigma(W)``
(the output ignores the scale of every raw weight, which plain layers do not), that each of those
weight matrices has spectral norm 1, and the Lipschitz bounds that follow for each layer and for
the whole network; and the errors the docstrings promise.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from gentorch.layers import SpectralNorm
from gentorch.models import (
    SNGANDiscriminator,
    SNGANGenerator,
    SNGANResNetDiscriminator,
    SNGANResNetGenerator,
)
from gentorch.models._gan_checks import IMAGE_SIZES, check_image_size
from gentorch.models.resnet_gan import DiscriminatorResBlock, GeneratorResBlock

_SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None)

seeds = st.integers(0, 2**31 - 1)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@dataclass(frozen=True)
class _Gan:
    """A tiny generator / discriminator pair of one of the two families."""

    resnet: bool
    latent: int
    channels: int
    size: int
    width: int

    def generator(
        self, seed: int, dtype: torch.dtype = torch.float64
    ) -> SNGANGenerator | SNGANResNetGenerator:
        torch.manual_seed(seed)
        cls = SNGANResNetGenerator if self.resnet else SNGANGenerator
        return cls(self.latent, self.channels, self.size, self.width).to(dtype)

    def discriminator(
        self, seed: int, dtype: torch.dtype = torch.float64, spectral_norm: bool = True
    ) -> SNGANDiscriminator | SNGANResNetDiscriminator:
        torch.manual_seed(seed)
        cls = SNGANResNetDiscriminator if self.resnet else SNGANDiscriminator
        return cls(self.channels, self.size, spectral_norm, self.width).to(dtype)

    def images(self, batch: int, seed: int, dtype: torch.dtype = torch.float64) -> Tensor:
        shape = (batch, self.channels, self.size, self.size)
        return torch.rand(shape, generator=_gen(seed), dtype=dtype)


@st.composite
def gans(draw: st.DrawFn) -> _Gan:
    return _Gan(
        resnet=draw(st.booleans()),
        latent=draw(st.integers(1, 4)),
        channels=draw(st.integers(1, 3)),
        size=draw(st.sampled_from(IMAGE_SIZES)),
        width=draw(st.integers(1, 3)),
    )


# --- generators -------------------------------------------------------------------------------


@_SETTINGS
@given(
    gan=gans(),
    batch=st.integers(1, 3),
    scale=st.sampled_from([1.0, 30.0, 1e4]),
    training=st.booleans(),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=seeds,
)
def test_generators_map_any_code_to_images_in_the_unit_interval(
    gan: _Gan, batch: int, scale: float, training: bool, dtype: torch.dtype, seed: int
) -> None:
    # "Output: (B, C, H, W), values in [0, 1]": x = (tanh(h) + 1) / 2 of the last conv's h,
    # also for codes far out in the prior's tails (scale 1e4 saturates the tanh: exactly 0 or 1).
    g = gan.generator(seed, dtype).train(training)
    pre: list[Tensor] = []
    g.conv_out.register_forward_hook(lambda _m, _i, out: pre.append(out))
    z = scale * torch.randn(batch, gan.latent, generator=_gen(seed), dtype=dtype)
    x = g(z)
    assert x.shape == (batch, gan.channels, gan.size, gan.size)
    assert x.dtype == dtype
    assert bool(torch.isfinite(x).all())
    assert bool(((x >= 0) & (x <= 1)).all()), (x.min(), x.max())
    # the documented map, op for op: bit for bit
    assert torch.equal(x, (torch.tanh(pre[0]) + 1.0) * 0.5)


@_SETTINGS
@given(gan=gans(), n=st.integers(1, 4), seed=seeds)
def test_standard_generator_samples_are_the_images_of_prior_draws(
    gan: _Gan, n: int, seed: int
) -> None:
    g = SNGANGenerator(gan.latent, gan.channels, gan.size, gan.width).double().eval()
    x = g.sample(n, generator=_gen(seed))
    assert x.shape == (n, gan.channels, gan.size, gan.size)
    assert x.dtype == torch.float64
    # z ~ N(0, I) drawn from the generator, in the parameters' dtype, then the forward
    z = torch.randn(n, gan.latent, generator=_gen(seed), dtype=torch.float64)
    assert torch.equal(x, g(z))
    with pytest.raises(ValueError, match=r"n: expected a positive integer"):
        g.sample(0)


# --- batch independence -----------------------------------------------------------------------


@_SETTINGS
@given(gan=gans(), batch=st.integers(2, 4), training=st.booleans(), seed=seeds)
def test_one_example_ignores_the_rest_of_the_batch(
    gan: _Gan, batch: int, training: bool, seed: int
) -> None:
    # Discriminators in both modes (no batch statistics; a training forward's power iteration
    # does not look at x: fresh copies make the same update), generators in eval mode (batch
    # norm with running statistics; in training it uses batch statistics by design).
    # float64: a batch of 1 and a batch of B may take different conv kernels, which round
    # differently by a few ulps; 1e-10 is far above that and far below a mixing error.
    d = gan.discriminator(seed).train(training)
    x = gan.images(batch, seed)
    scores = copy.deepcopy(d)(x)
    assert scores.shape == (batch,)
    g = gan.generator(seed).eval()
    z = torch.randn(batch, gan.latent, generator=_gen(seed), dtype=torch.float64)
    images = g(z)
    for i in range(batch):
        alone = copy.deepcopy(d)(x[i : i + 1])
        torch.testing.assert_close(alone[0], scores[i], rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(g(z[i : i + 1])[0], images[i], rtol=1e-10, atol=1e-10)


@_SETTINGS
@given(gan=gans(), batch=st.integers(1, 3), seed=seeds)
def test_discriminators_see_images_mapped_to_minus_one_one(
    gan: _Gan, batch: int, seed: int
) -> None:
    # "the discriminator maps its input back to [-1, 1] with 2 x - 1 before the first
    # convolution" (the ResNet's first block)
    d = gan.discriminator(seed)
    first = d.blocks[0] if isinstance(d, SNGANResNetDiscriminator) else d.conv1
    assert isinstance(first, nn.Module)
    seen: list[Tensor] = []
    first.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    x = gan.images(batch, seed)
    d(x)
    assert torch.equal(seen[0], 2.0 * x - 1.0)


# --- spectral normalization -------------------------------------------------------------------


def _sn_layers(d: nn.Module) -> list[SpectralNorm]:
    return [m for m in d.modules() if isinstance(m, SpectralNorm)]


@_SETTINGS
@given(gan=gans(), batch=st.integers(1, 3), training=st.booleans(), seed=seeds, data=st.data())
def test_discriminator_scores_ignore_the_scale_of_every_raw_weight(
    gan: _Gan, batch: int, training: bool, seed: int, data: st.DataObject
) -> None:
    # "every conv and the dense layer" is a SpectralNorm: each runs with W / sigma(W), and
    # sigma(c W) = c sigma(W) for c > 0 (the power iteration's unit vectors are scale-free
    # too), so scaling any raw weight leaves the scores unchanged. The control: the standard
    # CNN with plain layers changes (its leaky ReLUs are injective; a tiny plain ResNet's ReLU
    # features may all be 0, leaving only the dense layer's bias).
    d = gan.discriminator(seed).train(training)
    weighted = [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert {id(m) for m in weighted} == {id(sn.module) for sn in _sn_layers(d)}
    factor = st.one_of(st.floats(0.1, 0.9), st.floats(1.1, 10.0))
    factors = [data.draw(factor, label=f"scale {i}") for i in range(len(weighted))]
    x = gan.images(batch, seed)
    for spectral_norm in (True, False) if not gan.resnet else (True,):
        base = gan.discriminator(seed, spectral_norm=spectral_norm).train(training)
        scaled = copy.deepcopy(base)
        with torch.no_grad():
            layers = [m for m in scaled.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
            for layer, c in zip(layers, factors, strict=True):
                layer.weight.mul_(c)
        a, b = base(x), scaled(x)
        if spectral_norm:
            # W / sigma in float64 for ~10 layers: a few ulps each, relative 1e-10 with margin
            torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)
        else:
            assert not torch.allclose(b, a, rtol=1e-3, atol=0), "the control must change"


def _conv_bound(layer: nn.Module) -> float:
    """Lipschitz constant of a conv (or dense) layer whose weight matrix has spectral norm 1.

    Each output position is ``W_mat @ patch``, so ``||y||^2 <= sum_p ||patch_p||^2`` and every
    input pixel lies in at most ``ceil(kh / sh) * ceil(kw / sw)`` patches.
    """
    if isinstance(layer, nn.Linear):
        return 1.0
    assert isinstance(layer, nn.Conv2d)
    (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
    return math.sqrt(math.ceil(kh / sh) * math.ceil(kw / sw))


def _network_bound(gan: _Gan, d: nn.Module) -> float:
    """Lipschitz bound of the whole discriminator from its layers' bounds (x -> 2x - 1: 2)."""
    if not gan.resnet:
        # leaky ReLU is 1-Lipschitz: the product over the conv layers and the dense layer
        return 2.0 * math.prod(_conv_bound(sn.module) for sn in _sn_layers(d))
    # Block: conv3 (3) . ReLU . conv3 (3), 2x2 average pooling (1/2) when downsampling, plus a
    # shortcut: 1x1 conv (1) and pooling, or the identity (1). Then ReLU, a sum over the P
    # positions (sqrt(P)) and the dense layer (1).
    down, same = 3 * 3 / 2 + 1 / 2, 3 * 3 + 1
    positions = (gan.size // 4) ** 2
    return 2.0 * down * down * same * same * math.sqrt(positions)


@_SETTINGS
@given(gan=gans(), batch=st.integers(1, 3), seed=seeds, step=st.sampled_from([1e-3, 1.0]))
def test_spectral_norm_layers_and_discriminators_are_lipschitz_as_documented(
    gan: _Gan, batch: int, seed: int, step: float
) -> None:
    d = gan.discriminator(seed).eval()  # eval: u, v fixed, so every forward is the same map
    layers = _sn_layers(d)
    inputs: dict[int, Tensor] = {}

    def record(module: nn.Module, args: tuple[Tensor, ...], _out: Tensor) -> None:
        inputs.setdefault(id(module), args[0])  # (a hook returning a tensor replaces the output)

    for sn in layers:
        sn.register_forward_hook(record)
    a = gan.images(batch, seed)
    delta = step * torch.randn(a.shape, generator=_gen(seed + 1), dtype=torch.float64)
    d(a)
    # The warm-up runs until sigma changes by < 1e-7 (relative), then polishes: the
    # normalized matrices have norm 1 to ~1e-15 in float64; 1e-6 leaves a wide margin.
    tol = 1 + 1e-6
    for sn in layers:
        W = sn.normalized_weight().detach()
        norm = torch.linalg.matrix_norm(W.reshape(W.shape[0], -1), ord=2)
        assert abs(float(norm) - 1) < 1e-6, float(norm)
        h = inputs[id(sn)]
        dh = step * torch.randn(h.shape, generator=_gen(seed + 2), dtype=torch.float64)
        gap = (sn(h + dh) - sn(h)).flatten(1).norm(dim=1)
        assert bool((gap <= tol * _conv_bound(sn.module) * dh.flatten(1).norm(dim=1)).all())
    gap = (d(a + delta) - d(a)).abs()
    assert bool((gap <= tol * _network_bound(gan, d) * delta.flatten(1).norm(dim=1)).all())


# --- residual blocks --------------------------------------------------------------------------


@_SETTINGS
@given(
    c_in=st.integers(1, 3),
    c_out=st.integers(1, 3),
    h=st.integers(2, 7),
    w=st.integers(2, 7),
    batch=st.integers(1, 2),
    downsample=st.booleans(),
    first=st.booleans(),
    spectral_norm=st.booleans(),
)
def test_residual_block_shapes_for_any_size(
    c_in: int,
    c_out: int,
    h: int,
    w: int,
    batch: int,
    downsample: bool,
    first: bool,
    spectral_norm: bool,
) -> None:
    # "(B, C_in, H, W) -> (B, C_out, H/2, W/2) (H, W if not downsample; odd sizes are floored)";
    # the shortcut is the identity exactly without downsampling, first block or channel change.
    block = DiscriminatorResBlock(
        c_in, c_out, downsample=downsample, first=first, spectral_norm=spectral_norm
    )
    y = block(torch.randn(batch, c_in, h, w))
    expected = (h // 2, w // 2) if downsample else (h, w)
    assert y.shape == (batch, c_out, *expected)
    assert (block.shortcut is None) == (not downsample and not first and c_in == c_out)
    up = GeneratorResBlock(c_in, c_out)
    assert up(torch.randn(batch, c_in, h, w)).shape == (batch, c_out, 2 * h, 2 * w)


# --- errors -----------------------------------------------------------------------------------


@_SETTINGS
@given(gan=gans(), batch=st.integers(1, 2), seed=seeds, data=st.data())
def test_bad_codes_and_images_raise_the_documented_errors(
    gan: _Gan, batch: int, seed: int, data: st.DataObject
) -> None:
    g, d = gan.generator(seed, torch.float32), gan.discriminator(seed, torch.float32)
    L, C, S = gan.latent, gan.channels, gan.size
    other_l = data.draw(st.integers(1, 6).filter(lambda n: n != L), label="latent")
    with pytest.raises(ValueError, match=rf"z: expected shape \(B, {L}\)"):
        g(torch.randn(batch, other_l))
    with pytest.raises(ValueError, match=rf"z: expected shape \(B, {L}\)"):
        g(torch.randn(L))
    with pytest.raises(ValueError, match=r"z: expected at least one code"):
        g(torch.randn(0, L))
    with pytest.raises(TypeError, match=r"z: expected a floating-point tensor"):
        g(torch.ones(batch, L, dtype=torch.long))
    with pytest.raises(TypeError, match=r"z: expected dtype torch.float32"):
        g(torch.randn(batch, L, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"z: expected a Tensor"):
        g([[0.0] * L])
    other_c = data.draw(st.integers(1, 4).filter(lambda n: n != C), label="channels")
    other_s = data.draw(st.sampled_from([s for s in (16, 28, 32, 64) if s != S]), label="size")
    text = rf"x: expected shape \(B, {C}, {S}, {S}\)"
    for shape in ((batch, other_c, S, S), (batch, C, other_s, other_s), (batch, C, S, S + 1)):
        with pytest.raises(ValueError, match=text):
            d(torch.rand(shape))
    with pytest.raises(ValueError, match=text):
        d(torch.rand(C, S, S))  # an image without its batch dimension
    with pytest.raises(ValueError, match=r"x: expected at least one image"):
        d(torch.rand(0, C, S, S))
    with pytest.raises(TypeError, match=r"x: expected a floating-point tensor.*x.float\(\) / 255"):
        d(torch.zeros(batch, C, S, S, dtype=torch.uint8))
    with pytest.raises(TypeError, match=r"x: expected dtype torch.float32"):
        d(torch.rand(batch, C, S, S, dtype=torch.float64))


@_SETTINGS
@given(size=st.one_of(st.integers(-100, 100), st.sampled_from([28.0, True, "28", None])))
def test_image_size_must_be_28_or_32(size: object) -> None:
    if type(size) is int and size in (28, 32):
        check_image_size(size)
        return
    with pytest.raises(ValueError, match=r"image_size: expected one of \(28, 32\)"):
        check_image_size(size)  # type: ignore[arg-type]
    for cls in (SNGANGenerator, SNGANDiscriminator, SNGANResNetGenerator, SNGANResNetDiscriminator):
        with pytest.raises(ValueError, match=r"image_size: expected one of"):
            cls(image_size=size, width=1)  # type: ignore[arg-type]
