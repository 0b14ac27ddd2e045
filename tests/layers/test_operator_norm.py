"""The norm of a convolution as an operator, SpectralNorm(mode="operator"), lipschitz_bound."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations

from gentorch.layers import (
    LipschitzBound,
    SpectralNorm,
    conv_operator_norm,
    lipschitz_bound,
    spectral_norm,
)


def _explicit_norm(conv: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Largest singular value of the operator matrix, built by applying the layer (without its
    bias) to every basis vector, in float64."""
    n = math.prod(input_shape)
    layer = conv.double()
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *input_shape)
    with torch.no_grad():
        columns = layer(basis) - layer(torch.zeros_like(basis[:1]))  # remove the bias
    layer.float()
    return float(torch.linalg.matrix_norm(columns.reshape(n, -1), ord=2))


CASES: list[tuple[str, Callable[[], nn.Module], tuple[int, ...]]] = [
    ("zeros", lambda: nn.Conv2d(3, 4, 3, padding=1), (3, 6, 6)),
    ("stride-dilation-groups", lambda: nn.Conv2d(4, 6, 3, 2, 1, 2, groups=2), (4, 7, 7)),
    ("conv1d-reflect", lambda: nn.Conv1d(3, 5, 5, padding=2, padding_mode="reflect"), (3, 9)),
    (
        "conv3d-replicate",
        lambda: nn.Conv3d(2, 3, 3, padding=1, padding_mode="replicate"),
        (2, 3, 4, 3),
    ),
    ("same-even-kernel", lambda: nn.Conv2d(2, 3, 4, padding="same"), (2, 5, 5)),
    (
        "transposed",
        lambda: nn.ConvTranspose2d(4, 6, 4, 2, 1, output_padding=1, groups=2),
        (4, 4, 4),
    ),
    ("transposed1d", lambda: nn.ConvTranspose1d(3, 2, 3, stride=3, dilation=2), (3, 5)),
    ("transposed3d", lambda: nn.ConvTranspose3d(2, 3, 2, stride=2, padding=1), (2, 3, 2, 3)),
    ("circular", lambda: nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular"), (3, 6, 6)),
    (
        "circular-dilated",
        lambda: nn.Conv2d(4, 4, 3, padding=2, dilation=2, padding_mode="circular", groups=2),
        (4, 5, 5),
    ),
    ("circular-1d-wrap", lambda: nn.Conv1d(2, 3, 5, padding=2, padding_mode="circular"), (2, 3)),
]


@pytest.mark.parametrize(("label", "make", "shape"), CASES, ids=[c[0] for c in CASES])
def test_power_and_lanczos_match_svd_of_explicit_operator(
    label: str, make: Callable[[], nn.Module], shape: tuple[int, ...]
) -> None:
    conv = make()
    exact = _explicit_norm(conv, shape)
    # Lanczos to float32 rounding of the float64 result; power iteration approaches from below,
    # slowly where the top singular values are close (see the test below)
    for method, rtol in (("power", 1e-4), ("lanczos", 1e-6)):
        got = float(conv_operator_norm(conv, shape, method=method))
        assert abs(got - exact) / exact <= rtol, (label, method, got, exact)


def test_lanczos_resolves_close_top_singular_values() -> None:
    # This kernel's operator on 16x16 inputs has singular values 1.1453230 (twice) and then
    # 1.1452746: iterated in float32 and stopped when the estimate changed by < rtol, Lanczos
    # and power iteration both ended at 1.1453030 (1.7e-5 short). The iterations now run in
    # float64 and Lanczos stops on its residual.
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, 3, padding=1, padding_mode="circular")
    exact = float(conv_operator_norm(conv, (8, 16, 16), method="fft"))  # exact (tested above)
    lanczos = conv_operator_norm(conv, (8, 16, 16), method="lanczos")
    assert lanczos.dtype == torch.float32  # the weight's dtype, computed in float64
    assert float(lanczos) == pytest.approx(exact, rel=1e-6)
    # zero padding (no FFT shortcut): the layer's exact sigma and its warm-up, against Lanczos
    # run to a residual of 1e-12 on a float64 copy
    conv.padding_mode = "zeros"
    reference = float(
        conv_operator_norm(copy.deepcopy(conv).double(), (8, 16, 16), "lanczos", rtol=1e-12)
    )
    layer = SpectralNorm(conv, mode="operator", input_shape=(8, 16, 16))
    assert float(layer.exact_sigma()) == pytest.approx(reference, rel=1e-6)
    # (the estimate u^T W v itself is evaluated in float32: ~1e-6 of rounding)
    assert float(layer.sigma) == pytest.approx(reference, rel=5e-6)


@pytest.mark.parametrize(
    ("label", "make", "shape"), [c for c in CASES if "circular" in c[0]], ids=lambda c: str(c)
)
def test_fft_matches_svd_for_circular_padding(
    label: str, make: Callable[[], nn.Module], shape: tuple[int, ...]
) -> None:
    conv = make()
    exact = _explicit_norm(conv, shape)
    got = float(conv_operator_norm(conv, shape, method="fft"))
    assert abs(got - exact) / exact <= 1e-4, (label, got, exact)


def test_fft_refuses_what_it_cannot_compute_exactly() -> None:
    with pytest.raises(ValueError, match="padding_mode='circular' only"):
        conv_operator_norm(nn.Conv2d(2, 2, 3, padding=1), (2, 5, 5), method="fft")
    strided = nn.Conv2d(2, 2, 3, stride=2, padding=1, padding_mode="circular")
    with pytest.raises(ValueError, match="needs stride 1"):
        conv_operator_norm(strided, (2, 6, 6), method="fft")
    shrinking = nn.Conv2d(2, 2, 3, padding=0, padding_mode="circular")
    with pytest.raises(ValueError, match="output of the input's size"):
        conv_operator_norm(shrinking, (2, 6, 6), method="fft")


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((nn.Linear(3, 3), (3,)), TypeError, "conv: expected a Conv1d/2d/3d"),
        ((nn.Conv2d(3, 4, 3), (3, 8)), ValueError, r"input_shape: Conv2d takes one sample"),
        ((nn.Conv2d(3, 4, 3), (1, 3, 8, 8)), ValueError, "input_shape: Conv2d takes one sample"),
        ((nn.Conv2d(3, 4, 3), (2, 8, 8)), ValueError, "the layer has 3 input channels"),
        ((nn.Conv2d(3, 4, 3), (3, 8, 8), "svd"), ValueError, "method: expected one of"),
    ],
)
def test_bad_arguments(args: tuple[Any, ...], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        conv_operator_norm(*args)


def test_pytorch_sn_conv_is_not_1_lipschitz_but_operator_mode_is() -> None:
    # The claim: after PyTorch's spectral norm (reshaped kernel), a 16->16 3x3 conv has
    # operator norm well above 1 on 32x32 inputs; normalizing by the operator norm gives 1.
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 16, 3, padding=1)
    theirs = parametrizations.spectral_norm(conv).eval()
    assert isinstance(theirs, nn.Conv2d)
    with torch.no_grad():
        for _ in range(100):  # make PyTorch's own estimate converge
            theirs.train()
            _ = theirs.weight
        theirs.eval()
        kernel = theirs.weight.detach().flatten(1)
    # PyTorch's own estimate after 100 power steps: the reshaped kernel has norm ~1
    torch.testing.assert_close(
        torch.linalg.matrix_norm(kernel, ord=2), torch.tensor(1.0), rtol=1e-2, atol=0
    )
    measured = float(conv_operator_norm(theirs, (16, 32, 32), method="lanczos", rtol=1e-5))
    assert measured > 1.3, measured  # ~1.6 with random init
    ours = spectral_norm(nn.Conv2d(16, 16, 3, padding=1), mode="operator", input_shape=(16, 32, 32))
    assert (
        abs(float(conv_operator_norm(ours, (16, 32, 32), method="lanczos", rtol=1e-5)) - 1) < 1e-3
    )
    # the matrix mode of our layer has PyTorch's problem (it is the paper's definition)
    matrix = spectral_norm(nn.Conv2d(16, 16, 3, padding=1))
    assert float(conv_operator_norm(matrix, (16, 32, 32), method="lanczos", rtol=1e-5)) > 1.3


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.Conv2d(3, 5, 3, stride=2, padding=1),
        lambda: nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular"),
        lambda: nn.ConvTranspose2d(3, 4, 4, stride=2, padding=1),
    ],
)
def test_operator_mode_tracks_the_operator_norm_in_training(make: Callable[[], nn.Module]) -> None:
    shape = (3, 8, 8)
    sn = SpectralNorm(make(), mode="operator", input_shape=shape)
    assert sn.u.shape[0] == sn.module.out_channels
    assert sn.v.shape == shape
    assert sn.diagnostics()["relative_error"] <= 1e-4  # warm-up
    opt = torch.optim.SGD(sn.parameters(), lr=0.05)
    for _ in range(10):
        opt.zero_grad()
        x = torch.randn(4, *shape)
        sn(x).square().mean().backward()
        opt.step()
    sn.eval()
    exact = _explicit_norm(sn.module, shape)
    torch.testing.assert_close(
        sn.exact_sigma().double(), torch.tensor(exact, dtype=torch.float64), rtol=1e-4, atol=0
    )
    # one power step per training forward keeps the estimate close while the weight moves
    assert abs(float(sn.sigma) - exact) / exact < 1e-2
    # and the layer's operator norm, bias excluded, is sigma_exact / sigma_estimate ~ 1
    normalized = _explicit_norm(_with_weight(sn.module, sn.normalized_weight().detach()), shape)
    assert abs(normalized - exact / float(sn.sigma)) < 1e-4


@pytest.mark.parametrize("n", [1, 3])
def test_operator_mode_exactly_n_power_iterations_per_training_forward(n: int) -> None:
    # One step: u <- A v / |A v|, v <- A^T u / |A^T u|, with A the convolution operator (written
    # out with F.conv2d and its adjoint F.conv_transpose2d); none in eval mode.
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1).double()
    sn = SpectralNorm(conv, mode="operator", input_shape=(2, 6, 6), n_power_iterations=n)
    with torch.no_grad():  # away from the fixed point, so that every step shows
        sn.v.copy_(torch.nn.functional.normalize(torch.randn(2 * 6 * 6), dim=0).reshape(2, 6, 6))
    u, v = sn.u.clone(), sn.v.clone()
    _ = sn.sigma, sn.normalized_weight()  # reads outside forward: no update
    assert torch.equal(sn.v, v)
    W = conv.weight.detach()
    sn(torch.randn(2, 2, 6, 6, dtype=torch.float64))
    for _ in range(n):
        Av = torch.nn.functional.conv2d(v[None], W, stride=2, padding=1)[0]
        u = Av / Av.norm()
        Atu = torch.nn.functional.conv_transpose2d(
            u[None], W, stride=2, padding=1, output_padding=1
        )[0]
        v = Atu / Atu.norm()
    torch.testing.assert_close(sn.u, u)
    torch.testing.assert_close(sn.v, v)
    u_trained, v_trained = sn.u.clone(), sn.v.clone()
    sn.eval()
    sn(torch.randn(2, 2, 6, 6, dtype=torch.float64))
    assert torch.equal(sn.u, u_trained)
    assert torch.equal(sn.v, v_trained)


def _with_weight(conv: nn.Module, weight: torch.Tensor) -> nn.Module:
    import copy

    other = copy.deepcopy(conv)
    assert isinstance(other.weight, torch.Tensor)
    other.weight.data.copy_(weight)
    return other


def test_operator_mode_bad_arguments() -> None:
    with pytest.raises(ValueError, match="input_shape: required with mode='operator'"):
        SpectralNorm(nn.Conv2d(3, 4, 3), mode="operator")
    with pytest.raises(ValueError, match="dim: not used with mode='operator'"):
        SpectralNorm(nn.Conv2d(3, 4, 3), mode="operator", input_shape=(3, 8, 8), dim=1)
    with pytest.raises(ValueError, match="the layer has 3 input channels"):
        SpectralNorm(nn.Conv2d(3, 4, 3), mode="operator", input_shape=(4, 8, 8))


# --------------------------------------------------------------------------- lipschitz_bound


def _input_gradient_norms(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(model(x).sum(), x)
    norms: torch.Tensor = g.flatten(1).norm(dim=1)
    return norms


def test_lipschitz_bound_holds_at_many_random_points() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.LeakyReLU(0.2),
        spectral_norm(nn.Conv2d(8, 8, 4, stride=2, padding=1)),
        nn.Tanh(),
        nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(8, 4, 3, padding=1, padding_mode="circular"), nn.GELU()),
        nn.Flatten(),
        nn.Linear(4 * 2 * 2, 8),
        nn.Sigmoid(),
        nn.Linear(8, 1),
    ).eval()
    result = lipschitz_bound(model, (3, 8, 8))
    assert isinstance(result, LipschitzBound)
    assert result.unbounded == {}
    assert result.bound == pytest.approx(math.prod(result.layer_bounds.values()))
    assert set(result.layer_bounds) == {"0", "1", "2", "3", "4", "5.0", "5.1", "6", "7", "8", "9"}
    # 4096 random points at several scales: |grad f(x)| <= L everywhere (scalar output)
    x = torch.randn(4096, 3, 8, 8) * torch.logspace(-1, 1, 4096).reshape(-1, 1, 1, 1)
    grads = _input_gradient_norms(model, x)
    assert float(grads.max()) <= result.bound
    # finite differences too: |f(x) - f(y)| <= L |x - y|
    y = x + 0.1 * torch.randn_like(x)
    with torch.no_grad():
        ratio = (model(x) - model(y)).abs().flatten() / (x - y).flatten(1).norm(dim=1)
    assert float(ratio.max()) <= result.bound


def test_lipschitz_layer_constants_are_valid_and_tight_where_exact() -> None:
    torch.manual_seed(1)
    linear = nn.Linear(6, 4)
    assert lipschitz_bound(linear, (6,)).bound == pytest.approx(
        float(torch.linalg.matrix_norm(linear.weight.detach(), ord=2)), rel=1e-6
    )
    circular = nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular")
    assert lipschitz_bound(circular, (3, 6, 6)).bound == pytest.approx(
        _explicit_norm(circular, (3, 6, 6)), rel=1e-5
    )
    for conv, shape in [
        (nn.Conv2d(3, 4, 3, padding=1), (3, 6, 6)),
        (nn.Conv2d(3, 4, 4, stride=2, padding=1), (3, 8, 8)),
        (nn.Conv1d(2, 3, 3, padding=1, padding_mode="reflect"), (2, 7)),
        (nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1), (3, 4, 4)),
        (nn.Conv2d(4, 4, 3, dilation=2, groups=2), (4, 7, 7)),
    ]:
        bound = lipschitz_bound(conv, shape).bound
        exact = _explicit_norm(conv, shape)
        # a valid bound, and not vacuous (within 2.5x for these layers)
        assert exact <= bound * (1 + 1e-6), (conv, bound, exact)
        assert bound <= 2.5 * exact, (conv, bound, exact)
    # pooling and batch norm against sampled Jacobians
    bn = nn.BatchNorm1d(3).eval()
    assert bn.running_var is not None
    bn.running_var.copy_(torch.tensor([0.25, 1.0, 4.0]))
    bn.weight.data.copy_(torch.tensor([1.0, -3.0, 0.5]))
    assert lipschitz_bound(bn, (3,)).bound == pytest.approx(3.0 / math.sqrt(1 + bn.eps))
    for pool, shape in [(nn.MaxPool2d(3, stride=1), (1, 5, 5)), (nn.AvgPool2d(2), (2, 4, 4))]:
        bound = lipschitz_bound(pool, shape).bound
        x = torch.randn(64, *shape, dtype=torch.float64)
        jac = torch.func.vmap(torch.func.jacrev(lambda t, p=pool: p(t[None])[0]))(x)
        jac = jac.reshape(64, -1, math.prod(shape))
        assert float(torch.linalg.matrix_norm(jac, ord=2).max()) <= bound + 1e-9


def test_lipschitz_reports_what_it_cannot_bound_and_restores_modes() -> None:
    class Custom(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * x

    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), Custom(), nn.Dropout(0.5)).train()
    result = lipschitz_bound(model, (4,))
    assert result.bound == math.inf
    assert set(result.unbounded) == {"1", "2"}
    assert "LayerNorm" in result.unbounded["1"]
    assert result.partial_bound == pytest.approx(result.layer_bounds["0"])
    assert all(m.training for m in model.modules())
    with pytest.raises(ValueError, match="input_shape: expected positive ints"):
        lipschitz_bound(model, (0, 4))
    with pytest.raises(ValueError, match="input_shape: layer '0'"):
        lipschitz_bound(model, (5,))
