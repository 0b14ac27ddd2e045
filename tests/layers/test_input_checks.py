"""Bad input to the layers raises an error that names the argument and the value received."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from gentorch.layers import (
    GumbelSoftmax,
    LearnableNormal,
    RelaxedBernoulli,
    Reparameterize,
    ReparameterizeFullCov,
    ReparameterizeLaplace,
    ReparameterizeLogistic,
    SpectralNorm,
    conv_operator_norm,
    convert_torch_spectral_norm_state_dict,
    lipschitz_bound,
    reparameterize,
)


# ----------------------------------------------------------------------------- generators
@pytest.mark.parametrize(
    "call",
    [
        lambda g: reparameterize(torch.zeros(2, 3), torch.zeros(2, 3), generator=g),
        lambda g: Reparameterize()(torch.zeros(2, 6), generator=g),
        lambda g: ReparameterizeLaplace()(torch.zeros(2, 6), generator=g),
        lambda g: ReparameterizeLogistic()(torch.zeros(2, 6), generator=g),
        lambda g: ReparameterizeFullCov()(torch.zeros(2, 5), generator=g),
        lambda g: LearnableNormal(3)(generator=g),
        lambda g: GumbelSoftmax()(torch.zeros(2, 3), generator=g),
        lambda g: RelaxedBernoulli()(torch.zeros(2, 3), generator=g),
    ],
    ids=["function", "gaussian", "laplace", "logistic", "full-cov", "learnable", "gumbel", "bern"],
)
def test_a_seed_in_place_of_a_generator_is_named(call: Callable[[Any], torch.Tensor]) -> None:
    # before: "normal_(): argument 'generator' must be torch.Generator, not int" (or randn_like's)
    with pytest.raises(TypeError, match=r"generator: expected None or a torch\.Generator, got int"):
        call(0)


# ----------------------------------------------------------------------------- flags
@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda v: Reparameterize(check_finite=v), "check_finite"),
        (lambda v: Reparameterize(track_diagnostics=v), "track_diagnostics"),
        (lambda v: GumbelSoftmax(hard=v), "hard"),
        (lambda v: RelaxedBernoulli(hard=v), "hard"),
    ],
)
def test_flags_take_bools_only(make: Callable[[Any], nn.Module], name: str) -> None:
    # before: bool("no") is True, so the string "no" silently switched the option on
    with pytest.raises(TypeError, match=rf"{name}: expected a bool, got 'no' \(str\)"):
        make("no")
    assert isinstance(make(False), nn.Module)


def test_diagnostics_after_an_empty_batch_raise() -> None:
    # before: a dict of NaN (and a var() warning)
    layer = Reparameterize(track_diagnostics=True)
    assert layer(torch.zeros(0, 4)).shape == (0, 2)  # an empty batch itself is fine
    with pytest.raises(RuntimeError, match=r"diagnostics: the last forward had no rows .*\(0, 2\)"):
        layer.diagnostics()


# ----------------------------------------------------------------------------- distributions
def test_learnable_normal_shape_and_initial_values_are_type_checked() -> None:
    # before: "'float' object is not iterable" and "new(): invalid data type 'str'"
    with pytest.raises(TypeError, match="shape: expected an int or a sequence of ints, got float"):
        LearnableNormal(3.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="init_mean: expected a float or a tensor, got str"):
        LearnableNormal(3, init_mean="0")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="init_std: expected a float or a tensor, got bool"):
        LearnableNormal(3, init_std=True)
    with pytest.raises(TypeError, match="init_std: expected a real-valued tensor, got dtype"):
        LearnableNormal(3, init_std=torch.ones(3, dtype=torch.bool))
    assert LearnableNormal([2, 3], init_mean=torch.zeros(3), init_std=2).std.shape == (2, 3)


@pytest.mark.parametrize("cls", [ReparameterizeLaplace, ReparameterizeLogistic])
def test_log_scale_range_errors_name_log_scale_range(cls: type[nn.Module]) -> None:
    # before: the message said "logvar_range", an argument these layers do not have
    with pytest.raises(ValueError, match=r"log_scale_range: expected finite lo < hi, got \(1, 0\)"):
        cls(log_scale_range=(1, 0))
    with pytest.raises(ValueError, match=r"log_scale_range: expected a pair of floats"):
        cls(log_scale_range=(1, 2, 3))


def test_gumbel_softmax_needs_one_category() -> None:
    # before: IndexError "amax(): Expected reduction dim -1 to have non-zero size"
    with pytest.raises(
        ValueError, match=r"logits: expected shape \(\.\.\., C\) with C >= 1.*\(4, 0\)"
    ):
        GumbelSoftmax()(torch.zeros(4, 0))


# ----------------------------------------------------------------------------- spectral norm
def test_spectral_norm_linear_forward_checks_its_input() -> None:
    layer = SpectralNorm(nn.Linear(3, 2))
    # before: "mat1 and mat2 shapes cannot be multiplied (4x5 and 3x2)"
    with pytest.raises(
        ValueError,
        match=r"input: SpectralNorm\(Linear\) expected shape \(\.\.\., 3\), got \(4, 5\)",
    ):
        layer(torch.zeros(4, 5))
    # before: "mat1 and mat2 must have the same dtype, but got Long and Float"
    with pytest.raises(
        TypeError, match=r"expected a floating-point tensor, got dtype torch\.int64"
    ):
        layer(torch.zeros(4, 3, dtype=torch.long))
    with pytest.raises(
        TypeError, match=r"expected dtype torch\.float32 \(the weight's\), got torch\.float64"
    ):
        layer(torch.zeros(4, 3, dtype=torch.float64))
    assert layer(torch.zeros(4, 3)).shape == (4, 2)
    assert layer(torch.zeros(3)).shape == (2,)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast reconciles the dtypes
        assert layer(torch.zeros(4, 3, dtype=torch.bfloat16)).dtype == torch.bfloat16


@pytest.mark.parametrize("mode", ["matrix", "operator"])
def test_spectral_norm_conv_forward_checks_its_channels(mode: str) -> None:
    shape = (3, 8, 8) if mode == "operator" else None
    layer = SpectralNorm(nn.Conv2d(3, 2, 3, padding=1), mode=mode, input_shape=shape)
    # before: "Given groups=1, weight of size [2, 3, 3, 3], expected input[2, 4, 8, 8] to have
    # 3 channels, but got 4 channels instead"
    with pytest.raises(
        ValueError,
        match=r"input: SpectralNorm\(Conv2d\) expected shape \(B, 3, \*, \*\) or \(3, \*, \*\), "
        r"got \(2, 4, 8, 8\)",
    ):
        layer(torch.zeros(2, 4, 8, 8))
    with pytest.raises(ValueError, match=r"got \(8, 8\)"):
        layer(torch.zeros(8, 8))
    assert layer(torch.zeros(2, 3, 8, 8)).shape == (2, 2, 8, 8)
    assert layer(torch.zeros(3, 8, 8)).shape == (2, 8, 8)  # unbatched, as Conv2d takes it


@pytest.mark.parametrize("conv_cls", [nn.Conv2d, nn.ConvTranspose2d])
def test_spectral_norm_operator_mode_refuses_another_spatial_size(
    conv_cls: type[nn.Conv2d] | type[nn.ConvTranspose2d],
) -> None:
    torch.manual_seed(0)
    conv = conv_cls(3, 2, 3, padding=1)
    # why: the operator norm depends on the input size, so W / sigma(8x8) is not normalized at 16x16
    assert conv_operator_norm(conv, (3, 16, 16)) > conv_operator_norm(conv, (3, 8, 8)) * 1.001
    layer = SpectralNorm(conv, mode="operator", input_shape=(3, 8, 8))
    # before: ran silently, with a weight normalized for another operator
    for x in (torch.zeros(2, 3, 16, 16), torch.zeros(3, 8, 9)):
        for training in (True, False):
            layer.train(training)
            with pytest.raises(
                ValueError,
                match=r"input: SpectralNorm\(\w+, mode='operator'\) normalizes the convolution on "
                r"inputs of spatial size \(8, 8\) \(input_shape=\(3, 8, 8\)\), got "
                + re.escape(str(tuple(x.shape))),
            ):
                layer(x)
    assert layer(torch.zeros(2, 3, 8, 8)).shape[:2] == (2, 2)
    assert layer(torch.zeros(3, 8, 8)).shape[0] == 2  # unbatched


def test_spectral_norm_arguments() -> None:
    # before: eps=True was taken as 1.0
    with pytest.raises(ValueError, match="eps: expected a finite number > 0, got True"):
        SpectralNorm(nn.Linear(3, 2), eps=True)
    # before: "'int' object is not iterable" while formatting the message
    with pytest.raises(ValueError, match="input_shape: only used with mode='operator', got 3 "):
        SpectralNorm(nn.Linear(3, 2), input_shape=3)  # type: ignore[arg-type]


def test_convert_state_dict_checks_name_and_keys() -> None:
    # before: "unsupported operand type(s) for +: 'int' and 'str'" / AttributeError on endswith
    with pytest.raises(TypeError, match="name: expected a str, got int"):
        convert_torch_spectral_norm_state_dict({}, name=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="state_dict: expected str keys, got the int 1"):
        convert_torch_spectral_norm_state_dict({1: torch.zeros(1)})  # type: ignore[dict-item]


# ----------------------------------------------------------------------------- operator norms
def test_conv_operator_norm_checks_input_size_and_rtol() -> None:
    conv = nn.Conv2d(3, 4, 3)
    # before: RuntimeError "Kernel size can't be greater than actual input size"
    with pytest.raises(
        ValueError, match=r"input_shape: Conv2d cannot be applied to an input of shape \(3, 1, 1\)"
    ):
        conv_operator_norm(conv, (3, 1, 1))
    # before: "'>=' not supported between instances of 'str' and 'int'"
    with pytest.raises(TypeError, match="rtol: expected a float, got str"):
        conv_operator_norm(conv, (3, 8, 8), rtol="1e-3")  # type: ignore[arg-type]
    # before: True was taken as 1.0, inf stopped at the first check
    with pytest.raises(TypeError, match="rtol: expected a float, got bool"):
        conv_operator_norm(conv, (3, 8, 8), rtol=True)
    with pytest.raises(ValueError, match="rtol: expected a finite float >= 0, got inf"):
        conv_operator_norm(conv, (3, 8, 8), rtol=float("inf"))


def test_lipschitz_bound_input_shape() -> None:
    # before: True was taken as 1 (and the Linear then failed on a (1, 1) input)
    with pytest.raises(ValueError, match=r"input_shape: expected positive ints .*got \(True,\)"):
        lipschitz_bound(nn.Linear(1, 2), (True,))
    # before: "zip() argument 2 is longer than argument 1" for a shape with a batch dimension
    net = nn.Sequential(nn.Conv2d(3, 4, 3))
    with pytest.raises(
        ValueError,
        match=r"input_shape: layer '0' \(Conv2d\) fails on an input of shape \(1, 1, 3, 8, 8\)",
    ):
        lipschitz_bound(net, (1, 3, 8, 8))
    with pytest.raises(TypeError, match="input_shape: expected a sequence of ints, got int"):
        lipschitz_bound(net, 3)  # type: ignore[arg-type]
    assert lipschitz_bound(net, (3, 8, 8)).bound > 0
