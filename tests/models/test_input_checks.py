"""Bad input to the models raises an error that names the argument and the value received."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from gentorch.models import (
    VAE,
    ConditionalVAE,
    ConvVAE,
    SNGANDiscriminator,
    SNGANGenerator,
    SNGANResNetDiscriminator,
    SNGANResNetGenerator,
)
from gentorch.models.resnet_gan import DiscriminatorResBlock, GeneratorResBlock


# ----------------------------------------------------------------------------- VAEs
def _vaes() -> list[VAE]:
    return [VAE(16, [8], 2), ConvVAE(2, image_shape=(1, 8, 8), channels=(4,), hidden_dim=8)]


@pytest.mark.parametrize("model", _vaes(), ids=["mlp", "conv"])
def test_float64_data_is_named_not_a_matmul_error(model: VAE) -> None:
    # before: "mat1 and mat2 must have the same dtype, but got Double and Float" (or the conv's
    # "Input type (double) and bias type (float) should be the same")
    D = model.input_dim
    x64 = torch.rand(4, D, dtype=torch.float64)
    match = r"x: expected dtype torch\.float32 \(the model's parameters\), got torch\.float64"
    for call in (model.encode, model.elbo, model.loss, model.reconstruct, model):
        with pytest.raises(TypeError, match=match):
            call(x64)
    with pytest.raises(TypeError, match=r"z: expected dtype torch\.float32 .*got torch\.float64"):
        model.decode(torch.zeros(3, 2, dtype=torch.float64))
    # the converted model takes the data, and autocast may mix dtypes
    assert model.double().encode(x64)[0].dtype == torch.float64
    model.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model.encode(torch.rand(4, D, dtype=torch.bfloat16))[0].shape == (4, 2)


def test_loss_of_an_empty_batch_raises() -> None:
    # before: every entry of the dict was NaN
    with pytest.raises(ValueError, match=r"x: expected a non-empty batch .*got \(0, 16\)"):
        VAE(16, [8], 2).loss(torch.zeros(0, 16))
    # per-example methods keep taking an empty batch
    assert VAE(16, [8], 2).elbo(torch.zeros(0, 16)).shape == (0,)


def test_loss_weights_must_be_finite() -> None:
    # before: loss = inf
    model, x = VAE(16, [8], 2), torch.rand(2, 16)
    with pytest.raises(ValueError, match="beta: expected a finite float >= 0, got inf"):
        model.loss(x, beta=float("inf"))
    with pytest.raises(ValueError, match="free_bits: expected a finite float >= 0, got inf"):
        model.loss(x, free_bits=float("inf"))


def test_free_bits_refuses_a_bool() -> None:
    with pytest.raises(ValueError, match="free_bits: expected a finite float >= 0, got True"):
        VAE(16, [8], 2).loss(torch.rand(2, 16), free_bits=True)


@pytest.mark.parametrize(
    "call",
    [
        lambda m, g: m.sample(2, generator=g),
        lambda m, g: m.elbo(torch.rand(2, 16), generator=g),
        lambda m, g: m.iwae_bound(torch.rand(2, 16), 2, generator=g),
        lambda m, g: m.loss(torch.rand(2, 16), generator=g),
    ],
    ids=["sample", "elbo", "iwae_bound", "loss"],
)
def test_vae_generator_is_type_checked(call: Callable[[VAE, Any], Any]) -> None:
    # before: "randn() received an invalid combination of arguments" / normal_()'s TypeError
    with pytest.raises(TypeError, match=r"generator: expected None or a torch\.Generator, got int"):
        call(VAE(16, [8], 2), 0)


def test_vae_constructor_type_mistakes() -> None:
    # before: TypeError "unhashable type: 'list'"
    with pytest.raises(ValueError, match=r"activation: expected one of .*got \['relu'\]"):
        VAE(16, [8], 2, activation=["relu"])  # type: ignore[arg-type]
    # before: True was taken as a log-variance of 1
    with pytest.raises(ValueError, match="gaussian_logvar: expected a finite float, got True"):
        VAE(16, [8], 2, "gaussian", gaussian_logvar=True)
    # before: "object of type 'int' has no len()" / "'int' object is not iterable"
    with pytest.raises(TypeError, match="image_shape: expected a sequence of ints, got int"):
        ConvVAE(2, image_shape=28)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="channels: expected a sequence of ints, got int"):
        ConvVAE(2, channels=32)  # type: ignore[arg-type]


def test_from_config_names_missing_and_unknown_keys() -> None:
    # before: "VAE.__init__() missing 2 required positional arguments" / "got an unexpected
    # keyword argument"
    with pytest.raises(
        ValueError,
        match=r"config: .*unknown keys \[\] and missing keys \['hidden_dims', 'latent_dim'\]",
    ):
        VAE.from_config({"input_dim": 4})
    config = ConditionalVAE(16, [8], 2, num_classes=3).config()
    with pytest.raises(
        ValueError, match=r"unknown keys \['classes'\] and missing keys \['num_classes'\]"
    ):
        ConditionalVAE.from_config(
            {**{k: v for k, v in config.items() if k != "num_classes"}, "classes": 3}
        )
    with pytest.raises(TypeError, match="config: expected a dict, got list"):
        VAE.from_config([4, [8], 2])  # type: ignore[arg-type]
    # a config without the optional keys still builds
    assert VAE.from_config({"input_dim": 4, "hidden_dims": [8], "latent_dim": 2}).latent_dim == 2


def test_conditional_vae_float64_data_with_labels() -> None:
    model = ConditionalVAE(16, [8], 2, num_classes=3)
    y = torch.tensor([0, 1, 2, 0])
    with pytest.raises(TypeError, match=r"x: expected dtype torch\.float32 .*got torch\.float64"):
        model.loss(torch.rand(4, 16, dtype=torch.float64), y)


# ----------------------------------------------------------------------------- GANs
def _gans() -> list[tuple[nn.Module, nn.Module]]:
    return [
        (SNGANGenerator(latent_dim=8, width=4), SNGANDiscriminator(width=4)),
        (SNGANResNetGenerator(latent_dim=8, width=4), SNGANResNetDiscriminator(width=4)),
    ]


@pytest.mark.parametrize(("g", "d"), _gans(), ids=["cnn", "resnet"])
def test_gan_networks_check_dtypes_and_empty_batches(g: nn.Module, d: nn.Module) -> None:
    # before: uint8 images were scored as if they were in [0, 1] (2 * 255 - 1 = 509)
    with pytest.raises(
        TypeError, match=r"x: expected a floating-point tensor, got dtype torch\.uint8"
    ):
        d(torch.full((2, 1, 28, 28), 255, dtype=torch.uint8))
    # before: "Input type (double) and bias type (float) should be the same"
    with pytest.raises(TypeError, match=r"x: expected dtype torch\.float32 .*got torch\.float64"):
        d(torch.rand(2, 1, 28, 28, dtype=torch.float64))
    # before: an empty score tensor
    with pytest.raises(ValueError, match=r"x: expected at least one image .*\(0, 1, 28, 28\)"):
        d(torch.rand(0, 1, 28, 28))
    with pytest.raises(
        TypeError, match=r"x: expected a Tensor of shape \(B, 1, 28, 28\), got list"
    ):
        d([0.0])
    # before: "mat1 and mat2 must have the same dtype, but got Long and Float"
    with pytest.raises(
        TypeError, match=r"z: expected a floating-point tensor, got dtype torch\.int64"
    ):
        g(torch.zeros(2, 8, dtype=torch.long))
    with pytest.raises(TypeError, match=r"z: expected dtype torch\.float32 .*got torch\.float64"):
        g(torch.zeros(2, 8, dtype=torch.float64))
    # before: "cannot reshape tensor of 0 elements" (CNN) or an empty batch of images (ResNet)
    with pytest.raises(
        ValueError, match=r"z: expected at least one code \(B >= 1\), got shape \(0, 8\)"
    ):
        g(torch.zeros(0, 8))
    with pytest.raises(TypeError, match=r"z: expected a Tensor of shape \(B, 8\), got list"):
        g([[0.0] * 8])


def test_gan_constructor_type_mistakes() -> None:
    # before: "no" is truthy, so spectral normalization was switched on
    with pytest.raises(TypeError, match=r"spectral_norm: expected a bool, got 'no' \(str\)"):
        SNGANDiscriminator(width=4, spectral_norm="no")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"spectral_norm: expected a bool, got 0 \(int\)"):
        SNGANResNetDiscriminator(width=4, spectral_norm=0)  # type: ignore[arg-type]
    # before: accepted (and stored in config()) when spectral_norm=False
    with pytest.raises(ValueError, match="n_power_iterations: expected a positive integer, got 0"):
        SNGANDiscriminator(width=4, spectral_norm=False, n_power_iterations=0)
    # before: 28.0 was accepted as an image size
    with pytest.raises(ValueError, match=r"image_size: expected one of \(28, 32\), got 28\.0"):
        SNGANGenerator(image_size=28.0)  # type: ignore[arg-type]
    # before: "randn() received an invalid combination of arguments"
    with pytest.raises(TypeError, match=r"generator: expected None or a torch\.Generator, got int"):
        SNGANGenerator(width=4).sample(2, generator=0)  # type: ignore[arg-type]


def test_resnet_blocks_check_their_input() -> None:
    # before: "running_mean should contain 7 elements not 8" / "expected input[2, 7, 4, 4] to
    # have 8 channels"
    with pytest.raises(ValueError, match=r"x: expected shape \(B, 8, H, W\), got \(2, 7, 4, 4\)"):
        GeneratorResBlock(8, 4)(torch.zeros(2, 7, 4, 4))
    with pytest.raises(ValueError, match=r"x: expected shape \(B, 8, H, W\), got \(2, 7, 4, 4\)"):
        DiscriminatorResBlock(8, 4)(torch.zeros(2, 7, 4, 4))
    with pytest.raises(
        TypeError, match=r"x: expected a floating-point tensor, got dtype torch\.int64"
    ):
        DiscriminatorResBlock(8, 4)(torch.zeros(2, 8, 4, 4, dtype=torch.long))
    with pytest.raises(TypeError, match=r"downsample: expected a bool, got 1 \(int\)"):
        DiscriminatorResBlock(8, 4, downsample=1)  # type: ignore[arg-type]
