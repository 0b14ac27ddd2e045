"""Bad input to the losses raises an error that names the argument and the value received."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from gentorch.losses import (
    bernoulli_log_likelihood,
    gaussian_kl,
    gaussian_kl_between,
    gaussian_kl_free_bits,
    gaussian_log_likelihood,
    gradient_penalty,
)


# ----------------------------------------------------------------------------- KL
@pytest.mark.parametrize(("reduction", "what"), [("mean", "element"), ("batchmean", "row")])
def test_kl_mean_of_an_empty_batch_raises(reduction: str, what: str) -> None:
    # before: a silent NaN (0 / 0)
    empty = torch.zeros(0, 3)
    match = rf"reduction='{reduction}' needs at least one {what}, got shape \(0, 3\)"
    with pytest.raises(ValueError, match=r"mu and logvar: " + match):
        gaussian_kl(empty, empty, reduction=reduction)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"mu_q, logvar_q, mu_p, logvar_p: " + match):
        gaussian_kl_between(empty, empty, torch.zeros(3), torch.zeros(3), reduction=reduction)  # type: ignore[arg-type]
    # "none" and "sum" of nothing are well defined
    assert gaussian_kl(empty, empty).shape == (0, 3)
    assert float(gaussian_kl(empty, empty, reduction="sum")) == 0.0


@pytest.mark.parametrize("free_bits", [float("nan"), float("inf")])
def test_free_bits_must_be_finite(free_bits: float) -> None:
    # before: NaN / inf returned
    x = torch.zeros(2, 3)
    with pytest.raises(
        ValueError, match=rf"free_bits: expected a finite float >= 0 .*got {free_bits}"
    ):
        gaussian_kl_free_bits(x, x, free_bits)


@pytest.mark.parametrize("shape", [(0, 3), (2, 0)])
def test_free_bits_needs_rows_and_latents(shape: tuple[int, int]) -> None:
    # before: ZeroDivisionError (no rows) / RuntimeError "cannot reshape tensor of 0 elements"
    x = torch.zeros(shape)
    with pytest.raises(
        ValueError,
        match=r"mu and logvar: expected at least one row .*got shape " + re.escape(str(shape)),
    ):
        gaussian_kl_free_bits(x, x, 0.5)


# ----------------------------------------------------------------------------- likelihoods
def test_likelihoods_name_mismatched_batches() -> None:
    # before: RuntimeError "The size of tensor a (2) must match the size of tensor b (5)"
    with pytest.raises(
        ValueError,
        match=r"logits and x: expected leading dimensions that broadcast .*"
        r"got \(2, 3\) and \(5, 3\)",
    ):
        bernoulli_log_likelihood(torch.zeros(2, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"mean and x: .*got \(2, 3\) and \(5, 3\)"):
        gaussian_log_likelihood(torch.zeros(2, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"logvar and mean: .*got \(5, 3\) and \(2, 3\)"):
        gaussian_log_likelihood(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(5, 3))
    # documented broadcasting still works: K samples against the data, a per-feature logvar
    assert bernoulli_log_likelihood(torch.zeros(4, 2, 3), torch.zeros(2, 3)).shape == (4, 2)
    assert gaussian_log_likelihood(
        torch.zeros(4, 2, 3), torch.zeros(2, 3), torch.zeros(2, 3)
    ).shape == (4, 2)


def test_gaussian_log_likelihood_refuses_a_bool_logvar() -> None:
    # before: True was taken as logvar = 1
    with pytest.raises(TypeError, match="logvar: expected a Tensor or a float, got bool"):
        gaussian_log_likelihood(torch.zeros(2, 3), torch.zeros(2, 3), True)


# ----------------------------------------------------------------------------- gradient penalty
def test_gradient_penalty_names_its_arguments() -> None:
    critic = nn.Linear(4, 1)
    x = torch.randn(8, 4)
    # before: "real, fake: expected tensors" (nothing about what was received)
    with pytest.raises(TypeError, match="real: expected a Tensor, got list"):
        gradient_penalty(critic, [[0.0] * 4], x)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fake: expected a Tensor, got ndarray"):
        gradient_penalty(critic, x, x.numpy())  # type: ignore[arg-type]
    # before: NotImplementedError "check_uniform_bounds" not implemented for 'Long'
    long = torch.zeros(8, 4, dtype=torch.long)
    with pytest.raises(
        TypeError, match=r"real: expected a floating-point tensor, got dtype torch\.int64"
    ):
        gradient_penalty(critic, long, long)
    # before: "'int' object is not callable"
    with pytest.raises(TypeError, match=r"discriminator: expected a callable .*got int"):
        gradient_penalty(3, x, x)  # type: ignore[arg-type]
    # before: AttributeError "'list' object has no attribute 'shape'"
    with pytest.raises(TypeError, match="discriminator: expected a Tensor output, got list"):
        gradient_penalty(lambda t: [t], x, x)  # type: ignore[arg-type, return-value]
    # before: TypeError from torch.rand about an "invalid combination of arguments"
    with pytest.raises(TypeError, match=r"generator: expected None or a torch\.Generator, got int"):
        gradient_penalty(critic, x, x, generator=0)  # type: ignore[arg-type]


def test_gradient_penalty_needs_a_gradient_path_to_the_input() -> None:
    x = torch.randn(8, 4)
    # before: RuntimeError "element 0 of tensors does not require grad and does not have a grad_fn"
    with pytest.raises(ValueError, match=r"discriminator: .*requires_grad=False"):
        gradient_penalty(lambda t: t.detach().sum(1), x, x)
    # before: RuntimeError "One of the differentiated Tensors appears to not have been used"
    bias = nn.Parameter(torch.zeros(()))
    with pytest.raises(ValueError, match=r"discriminator: .*requires_grad=True"):
        gradient_penalty(lambda t: bias.expand(t.shape[0]), x, x)
