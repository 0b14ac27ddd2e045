"""SpectralNorm: the math, the power-iteration contract, and the defects we do not have."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.utils import parametrizations

from gentorch.layers import SpectralNorm, remove_spectral_norm, spectral_norm


def _matrix(weight: Tensor, dim: int) -> Tensor:
    return weight.movedim(dim, 0).reshape(weight.shape[dim], -1)


def _one_step(W: Tensor, u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """One power-iteration step, written out: v <- W^T u / |.|, u <- W v / |.|."""
    v = F.normalize(W.t() @ u, dim=0)
    u = F.normalize(W @ v, dim=0)
    return u, v


LAYERS: list[tuple[Callable[[], nn.Linear | _ConvNd], tuple[int, ...], int]] = [
    (lambda: nn.Linear(7, 5), (3, 7), 0),
    (lambda: nn.Conv1d(3, 4, 3), (2, 3, 9), 0),
    (lambda: nn.Conv2d(3, 6, 3, padding=1), (2, 3, 6, 6), 0),
    (lambda: nn.Conv3d(2, 3, 2), (2, 2, 4, 4, 4), 0),
    (lambda: nn.ConvTranspose1d(3, 4, 3, stride=2), (2, 3, 5), 1),
    (lambda: nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1), (2, 4, 5, 5), 1),
    (lambda: nn.ConvTranspose3d(2, 3, 2), (2, 2, 3, 3, 3), 1),
]


@pytest.mark.parametrize(("make", "x_shape", "dim"), LAYERS)
def test_forward_is_module_with_normalized_weight(
    make: Callable[[], nn.Linear | _ConvNd], x_shape: tuple[int, ...], dim: int
) -> None:
    layer = make().double()
    assert layer.bias is not None
    bias = layer.bias.detach().clone()
    sn = spectral_norm(layer).eval()
    assert sn.dim == dim  # dim=1 by default for transposed convolutions
    W = _matrix(layer.weight.detach(), dim)
    # Warm-up: the estimate matches the largest singular value from torch.linalg.
    exact = torch.linalg.matrix_norm(W, ord=2)
    torch.testing.assert_close(sn.sigma, exact, rtol=1e-4, atol=0)
    torch.testing.assert_close(sn.exact_sigma(), exact)
    x = torch.randn(x_shape, dtype=torch.float64)
    sigma = sn.u @ W @ sn.v
    plain = make().double()
    plain.load_state_dict(layer.state_dict())
    with torch.no_grad():
        plain.weight.div_(sigma)
    torch.testing.assert_close(sn(x), plain(x))
    # the normalized weight has spectral norm ~1; the bias is untouched
    W_sn = _matrix(sn.normalized_weight().detach(), dim)
    torch.testing.assert_close(
        torch.linalg.matrix_norm(W_sn, ord=2),
        torch.tensor(1.0, dtype=torch.float64),
        rtol=1e-4,
        atol=0,
    )
    # a training step changes the weight but never normalizes or otherwise touches the bias
    # (its gradient is the plain layer's: y = conv(x, W_sn) + b)
    sn.train()
    sn(x).sum().backward()
    assert isinstance(sn.module.bias, Tensor)
    assert torch.equal(sn.module.bias.detach(), bias)
    plain.zero_grad()
    plain(x).sum().backward()
    assert plain.bias is not None
    torch.testing.assert_close(sn.module.bias.grad, plain.bias.grad)


def test_embedding_and_custom_weight_name() -> None:
    emb = spectral_norm(nn.Embedding(10, 4)).eval()
    idx = torch.tensor([[1, 2], [3, 9]])
    torch.testing.assert_close(emb(idx), F.embedding(idx, emb.normalized_weight()))
    torch.testing.assert_close(
        torch.linalg.matrix_norm(emb.normalized_weight(), ord=2),
        torch.tensor(1.0),
        rtol=1e-4,
        atol=0,
    )
    bil = nn.Bilinear(3, 4, 5)
    sn = spectral_norm(bil, name="weight", dim=0).eval()
    x1, x2 = torch.randn(2, 3), torch.randn(2, 4)
    torch.testing.assert_close(sn(x1, x2), F.bilinear(x1, x2, sn.normalized_weight(), bil.bias))

    class Custom(nn.Module):  # a weight under another name, read in a custom forward
        def __init__(self) -> None:
            super().__init__()
            self.kernel = nn.Parameter(torch.randn(2, 3, 4))
            self.weight = nn.Parameter(torch.randn(4))  # not the normalized one

        def forward(self, x: Tensor) -> Tensor:
            return torch.einsum("oij,bij->bo", self.kernel, x) + self.weight.sum()

    custom = Custom()
    weight = custom.weight.detach().clone()
    sn = spectral_norm(custom, name="kernel", dim=2).eval()
    W = custom.kernel.detach().movedim(2, 0).reshape(4, -1)
    torch.testing.assert_close(sn.exact_sigma(), torch.linalg.matrix_norm(W, ord=2))
    torch.testing.assert_close(sn.sigma, sn.exact_sigma(), rtol=1e-4, atol=0)
    x = torch.randn(5, 3, 4)
    expected = torch.einsum("oij,bij->bo", custom.kernel / (sn.u @ W @ sn.v), x) + weight.sum()
    torch.testing.assert_close(sn(x), expected)
    assert torch.equal(custom.weight.detach(), weight)


def test_warm_up_accuracy_on_sngan_layer_shapes() -> None:
    # Shapes of the SN-GAN "standard CNN" discriminator (Miyato et al. 2018, Table 3): the top
    # singular values of random kernels are close (s2/s1 up to ~0.996), yet the warm-up must leave
    # the estimate within 1e-3 relative (the goal); we check 1e-4.
    for c_in, c_out, k in [(3, 64, 3), (64, 128, 4), (256, 256, 4), (256, 512, 3)]:
        sn = spectral_norm(nn.Conv2d(c_in, c_out, k))
        d = sn.diagnostics()
        assert d["relative_error"] <= 1e-4, (c_in, c_out, k, d)


def test_exactly_n_power_iterations_per_training_forward_however_often_weight_is_read() -> None:
    class ReadsTwice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(5, 4))

        def forward(self, x: Tensor) -> Tensor:
            return x @ self.weight.t() + x @ self.weight.t()

    for n in (1, 3):
        sn = spectral_norm(ReadsTwice(), n_power_iterations=n)
        assert isinstance(sn.module, ReadsTwice)
        with torch.no_grad():  # start far from convergence so that every step shows
            sn.u.copy_(F.normalize(torch.randn(5), dim=0))
        u, v = sn.u.clone(), sn.v.clone()
        W = sn.module.weight.detach()
        _ = sn.sigma, sn.normalized_weight(), sn.sigma  # reads outside forward: no update
        assert torch.equal(sn.u, u)
        sn(torch.randn(2, 4))
        for _ in range(n):
            u, v = _one_step(W, u, v)
        torch.testing.assert_close(sn.u, u)
        torch.testing.assert_close(sn.v, v)
        sn.eval()
        sn(torch.randn(2, 4))  # none in eval
        torch.testing.assert_close(sn.u, u)


def test_pytorch_updates_on_every_weight_read() -> None:
    # Documents the defect we fix: PyTorch's parametrization runs its power method each time
    # `.weight` is read in training mode (counted by wrapping the method), ours once per forward.
    layer = parametrizations.spectral_norm(nn.Linear(4, 5))
    # torch adds `parametrizations` at runtime: nothing static to follow
    param = cast(Any, layer).parametrizations.weight[0]
    calls: list[int] = []
    original = param._power_method

    def counting(weight_mat: Tensor, n: int) -> None:
        calls.append(n)
        original(weight_mat, n)

    param._power_method = counting
    _ = layer.weight
    _ = layer.weight
    layer(torch.randn(2, 4))
    assert len(calls) == 3


def test_gradient_flows_through_sigma_with_u_v_constant() -> None:
    # d/dW of f(W / (u^T W v)) for fixed u, v: compare with autograd on the explicit formula, and
    # gradcheck the whole layer in float64 in eval (u, v fixed).
    sn = spectral_norm(nn.Linear(4, 3).double()).eval()
    assert isinstance(sn.module, nn.Linear)
    x = torch.randn(5, 4, dtype=torch.float64)
    W = sn.module.weight.detach().clone().requires_grad_()
    u, v = sn.u.clone(), sn.v.clone()
    expected = F.linear(x, W / (u @ W @ v), sn.module.bias).square().sum()
    (g_expected,) = torch.autograd.grad(expected, W)
    sn(x).square().sum().backward()
    torch.testing.assert_close(sn.module.weight.grad, g_expected)

    def f(weight: Tensor, inp: Tensor) -> Tensor:
        out: Tensor = torch.func.functional_call(sn, {"module.weight": weight}, (inp,))
        return out

    w = sn.module.weight.detach().clone().requires_grad_()
    xi = x.clone().requires_grad_()
    assert torch.autograd.gradcheck(f, (w, xi))


@pytest.mark.parametrize(
    ("make", "x_shape", "kwargs"),
    [
        (lambda: nn.Conv2d(3, 4, 3, stride=2), (2, 3, 7, 7), {}),
        (lambda: nn.ConvTranspose2d(3, 4, 3, stride=2), (2, 3, 4, 4), {}),  # dim=1
        (lambda: nn.Conv2d(3, 4, 3, padding=1), (2, 3, 5, 5), {"input_shape": (3, 5, 5)}),
    ],
    ids=["conv", "conv-transpose", "operator"],
)
def test_training_gradient_is_autograd_of_explicit_formula(
    make: Callable[[], _ConvNd], x_shape: tuple[int, ...], kwargs: dict[str, Any]
) -> None:
    # Training mode: one power step moves u, v, then the output uses W / (u^T W v) with the *new*
    # u, v held constant (the paper's gradient). Reference: autograd of that formula written out
    # (matrix: W moved/flattened; operator: u^T conv(v; W)), in float64.
    layer = make().double()
    mode = "operator" if kwargs else "matrix"
    sn = SpectralNorm(layer, mode=mode, **kwargs)
    with torch.no_grad():  # away from the fixed point, so that the step visibly moves u, v
        sn.u.add_(0.3 * torch.randn_like(sn.u))
        sn.v.add_(0.3 * torch.randn_like(sn.v))
    u0 = sn.u.clone()
    x = torch.randn(x_shape, dtype=torch.float64)
    out = sn(x)
    out.sin().sum().backward()
    assert not torch.allclose(sn.u, u0)
    u, v = sn.u.clone(), sn.v.clone()  # the vectors this forward used
    W = layer.weight.detach().clone().requires_grad_()
    if mode == "matrix":
        sigma = u @ _matrix(W, sn.dim) @ v / (u.norm() * v.norm())
    else:
        sigma = (u * F.conv2d(v[None], W, padding=1)[0]).sum() / (u.norm() * v.norm())
    plain = make().double()
    plain.load_state_dict(layer.state_dict())
    expected = torch.func.functional_call(plain, {"weight": W / sigma}, (x,))
    torch.testing.assert_close(out, expected)
    (g,) = torch.autograd.grad(expected.sin().sum(), W)
    torch.testing.assert_close(layer.weight.grad, g)


@pytest.mark.parametrize(
    ("make", "x_shape"),
    [(lambda: nn.Conv2d(2, 2, 2), (1, 2, 3, 3)), (lambda: nn.ConvTranspose1d(3, 2, 2), (1, 3, 3))],
)
def test_layer_gradcheck_and_gradgradcheck(
    make: Callable[[], _ConvNd], x_shape: tuple[int, ...]
) -> None:
    # The matrix-mode backward is written by hand (one autograd node); check it and its
    # differentiable double-backward path against finite differences in float64, for dim=0 and
    # for dim=1 (transposed convolution: the matrix is a permuted copy of the weight).
    sn = spectral_norm(make().double()).eval()
    assert isinstance(sn.module, _ConvNd)
    with torch.no_grad():  # u, v away from the fixed point: exercises the general formula
        sn.u.add_(0.3 * torch.randn_like(sn.u))
        sn.v.add_(0.3 * torch.randn_like(sn.v))
    w = sn.module.weight.detach().clone().requires_grad_()
    x = torch.randn(x_shape, dtype=torch.float64, requires_grad=True)

    def f(weight: Tensor, inp: Tensor) -> Tensor:
        out: Tensor = torch.func.functional_call(sn, {"module.weight": weight}, (inp,))
        return out.sin()

    assert torch.autograd.gradcheck(f, (w, x))
    assert torch.autograd.gradgradcheck(f, (w, x.detach()))


def test_spectral_divide_formula_including_the_clamped_case() -> None:
    from gentorch.layers._spectral_divide import spectral_divide

    W = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    v = torch.randn(3, dtype=torch.float64)
    u = W.detach() @ v + 0.5 * torch.randn(4, dtype=torch.float64)  # u^T W v > 0, not optimal
    sigma = (u @ W @ v) / (u.norm() * v.norm())
    assert float(sigma.detach()) > 0
    torch.testing.assert_close(spectral_divide(W, u, v, 1e-12), W / sigma)
    for eps in (1e-12, 1e3):  # 1e3: sigma < eps, the clamp is active and sigma gets no gradient
        assert torch.autograd.gradcheck(lambda w, e=eps: spectral_divide(w, u, v, e), (W,))
        assert torch.autograd.gradgradcheck(lambda w, e=eps: spectral_divide(w, u, v, e), (W,))


def test_gradient_is_not_projected_away() -> None:
    # With the gradient through sigma, the derivative of ||W_sn||_2 = 1 along the top singular
    # direction vanishes: <dL/dW, u v^T> = 0 for L = <W_sn, u v^T> (Keras-style projection
    # would give 1/sigma instead).
    sn = spectral_norm(nn.Linear(6, 4).double()).eval()
    assert isinstance(sn.module, nn.Linear)
    u, v = sn.u.clone(), sn.v.clone()
    (sn.normalized_weight() * torch.outer(u, v)).sum().backward()
    g = sn.module.weight.grad
    assert g is not None
    assert abs(float((g * torch.outer(u, v)).sum())) < 1e-10


def test_all_zero_weight_is_finite_and_pytorch_is_not() -> None:
    ours = spectral_norm(nn.Linear(4, 3))
    assert isinstance(ours.module, nn.Linear)
    with torch.no_grad():
        ours.module.weight.zero_()
    x = torch.randn(2, 4)
    y = ours(x)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, ours.module.bias.expand(2, 3))  # W_sn = 0 / max(0, eps) = 0
    assert float(ours.sigma) == 0.0
    torch.testing.assert_close(torch.linalg.vector_norm(ours.u), torch.tensor(1.0))
    y.sum().backward()  # the weight's gradient is finite too (g / eps: sigma is clamped)
    assert ours.module.weight.grad is not None
    assert torch.isfinite(ours.module.weight.grad).all()
    # operator mode: the same on a zero convolution (constructed on it)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    with torch.no_grad():
        conv.weight.zero_()
    op = SpectralNorm(conv, mode="operator", input_shape=(2, 5, 5))
    out = op(torch.randn(2, 2, 5, 5))
    assert conv.bias is not None
    torch.testing.assert_close(out, conv.bias.detach().reshape(1, 3, 1, 1).expand(2, 3, 5, 5))
    out.sum().backward()
    assert conv.weight.grad is not None
    assert torch.isfinite(conv.weight.grad).all()
    # constructing on a zero weight works too, and the vectors recover once W is non-zero
    zero = nn.Linear(4, 3)
    with torch.no_grad():
        zero.weight.zero_()
    sn = spectral_norm(zero)
    assert torch.isfinite(sn(x)).all()
    with torch.no_grad():
        zero.weight.copy_(torch.randn(3, 4))
    for _ in range(200):
        sn(x)
    torch.testing.assert_close(sn.sigma, sn.exact_sigma(), rtol=1e-4, atol=0)

    theirs = parametrizations.spectral_norm(nn.Linear(4, 3))
    with torch.no_grad():
        cast(Any, theirs).parametrizations.weight.original.zero_()
    assert torch.isnan(theirs(x)).any()


def test_sigma_diagnostics_and_repr() -> None:
    sn = spectral_norm(nn.Conv2d(3, 8, 3), n_power_iterations=2)
    assert sn.sigma.dim() == 0
    assert not sn.sigma.requires_grad
    d = sn.diagnostics()
    assert set(d) == {"sigma", "exact_sigma", "relative_error", "n_power_iterations"}
    assert d["n_power_iterations"] == 2
    assert d["relative_error"] == pytest.approx(
        abs(d["sigma"] - d["exact_sigma"]) / d["exact_sigma"]
    )
    assert "n_power_iterations=2" in repr(sn)


def test_remove_spectral_norm() -> None:
    sn = spectral_norm(nn.Conv2d(3, 4, 3)).eval()
    x = torch.randn(2, 3, 5, 5)
    expected = sn(x)
    plain = remove_spectral_norm(sn)
    assert type(plain) is nn.Conv2d
    assert isinstance(plain.weight, nn.Parameter)
    torch.testing.assert_close(plain(x), expected)
    model = nn.Sequential(
        spectral_norm(nn.Linear(4, 8)), nn.ReLU(), nn.Sequential(spectral_norm(nn.Linear(8, 2)))
    ).eval()
    x = torch.randn(3, 4)
    expected = model(x)
    out = remove_spectral_norm(model)
    assert out is model
    assert not any(isinstance(m, SpectralNorm) for m in model.modules())
    torch.testing.assert_close(model(x), expected)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": "kernel"}, ValueError, "name: Linear has no parameter named 'kernel'"),
        ({"name": "bias"}, ValueError, "at least 2 dimensions"),
        (
            {"n_power_iterations": 0},
            ValueError,
            "n_power_iterations: expected a positive integer, got 0",
        ),
        (
            {"n_power_iterations": 1.5},
            TypeError,
            "n_power_iterations: expected a positive integer, got float 1.5",
        ),
        ({"eps": 0.0}, ValueError, "eps: expected a finite number > 0"),
        ({"dim": 2}, ValueError, "dim: expected a dimension of the 2-d weight"),
        ({"mode": "kernel"}, ValueError, "mode: expected one of"),
        ({"mode": "operator"}, ValueError, "needs a Conv1d/2d/3d"),
        ({"input_shape": (4,)}, ValueError, "input_shape: only used with mode='operator'"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        SpectralNorm(nn.Linear(4, 3), **kwargs)


def test_refuses_layers_already_normalized_by_pytorch() -> None:
    with pytest.raises(ValueError, match="already has a torch parametrization"):
        spectral_norm(parametrizations.spectral_norm(nn.Linear(4, 3)))
    with pytest.raises(ValueError, match=r"already has torch\.nn\.utils\.spectral_norm"):
        spectral_norm(torch.nn.utils.spectral_norm(nn.Linear(4, 3)))
    with pytest.raises(ValueError, match=r"not initialized yet \(lazy module\)"):
        spectral_norm(nn.LazyLinear(3))
    with pytest.raises(TypeError, match=r"module: expected an nn\.Module"):
        spectral_norm(torch.randn(3, 3))  # type: ignore[arg-type]
