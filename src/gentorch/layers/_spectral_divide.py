"""``W / sigma(W)`` with ``sigma = u^T W v`` as one autograd node (matrix-mode spectral norm).

Autograd through the plain formula materialises several weight-sized temporaries in the backward
(``g / s``, ``g * W``, ``u v^T``, their sum, ...), which is most of spectral normalization's cost
on a CPU. The closed form needs one pass over ``g`` plus one dot product:

    s = max(sigma, eps),  sigma = u^T W v / (|u| |v|),  W_sn = W / s
    dL/dW = (g - [sigma > eps] <g, W_sn> u_hat v_hat^T) / s

(``u_hat``, ``v_hat``: ``u``, ``v`` normalized; they are held constant, as in Miyato et al.).
When a higher-order gradient is requested (gradient penalty), the backward is computed with
differentiable operations instead, so double backward works.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def _unit(x: Tensor, eps: float) -> Tensor:
    norm: Tensor = torch.linalg.vector_norm(x)
    return x / norm.clamp_min(eps)


def _sigma(W: Tensor, u_hat: Tensor, v_hat: Tensor) -> Tensor:
    # sigma = u_hat^T W v_hat, W: (m, n), u_hat: (m,), v_hat: (n,)
    return torch.vdot(u_hat, torch.mv(W, v_hat))


class _SpectralDivide(torch.autograd.Function):
    # torch.func: vmap (e.g. per-example gradients through an SN layer) runs the same formulas
    generate_vmap_rule = True

    @staticmethod
    def forward(W: Tensor, u: Tensor, v: Tensor, eps: float) -> tuple[Tensor, Tensor]:
        u_hat, v_hat = _unit(u, eps), _unit(v, eps)
        s = _sigma(W, u_hat, v_hat).clamp_min(eps)
        return W / s, s

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor]) -> None:
        W, u, v, eps = inputs
        _, s = output
        ctx.save_for_backward(W, _unit(u, eps), _unit(v, eps), s)
        ctx.eps = eps
        ctx.mark_non_differentiable(s)

    @staticmethod
    def backward(ctx: Any, g: Tensor, _: Tensor) -> tuple[Tensor | None, None, None, None]:
        W, u_hat, v_hat, s = ctx.saved_tensors
        if torch.is_grad_enabled():
            # create_graph: the same formula with s recomputed from W, all differentiable
            sigma = _sigma(W, u_hat, v_hat)
            s_diff = sigma.clamp_min(ctx.eps)
            c = torch.vdot(g.flatten(), W.flatten()) / s_diff * (sigma > ctx.eps)
            return (g - c * torch.outer(u_hat, v_hat)) / s_diff, None, None, None
        # c = <g, W_sn> = <g, W> / s; only when sigma was not clamped
        c = torch.vdot(g.flatten(), W.flatten()) / s * (s > ctx.eps)
        # (g - c u_hat v_hat^T) / s in one fused pass, then one in-place scale
        grad = torch.addmm(g, (u_hat * -c).unsqueeze(1), v_hat.unsqueeze(0))
        return grad.div_(s), None, None, None


def spectral_divide(W: Tensor, u: Tensor, v: Tensor, eps: float) -> Tensor:
    """``W / max(u^T W v / (|u| |v|), eps)`` for ``W: (m, n)``, ``u: (m,)``, ``v: (n,)``;
    differentiable in ``W`` only (twice, for gradient penalties)."""
    out: Tensor = _SpectralDivide.apply(W, u, v, eps)[0]
    return out
