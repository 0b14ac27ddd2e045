"""Top singular triplet of a linear map by Golub-Kahan-Lanczos bidiagonalization.

Used to warm up spectral normalization and to measure convolution operators: the same products
as power iteration (``A v`` and ``A^T u``), but converging in tens of steps where power iteration
needs thousands when the two largest singular values are close.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from gentorch._float64 import exact_dtype

_MAX_BASIS_NUMBERS = 2**26


def measure_dtype(device: torch.device) -> torch.dtype:
    """The dtype that norm measurements and warm-ups iterate in: float64, except on MPS (which
    has none). In float32 the estimate of a top singular value that has close neighbours stops
    moving by more than an ulp per step long before it converges (a 1.7e-5 relative error for
    a circular 3x3 convolution on 16x16 inputs, against 3e-15 in float64)."""
    return exact_dtype(device)


def top_singular_triplet(
    apply: Callable[[Tensor], Tensor],
    adjoint: Callable[[Tensor], Tensor],
    v0: Tensor,
    n_out: int,
    *,
    max_iterations: int,
    rtol: float,
    check_every: int = 5,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(sigma, u, v)`` with ``A v ~ sigma u`` for the largest singular value ``sigma`` of ``A``.

    ``U_k^T A V_{k+1} = B_k`` with ``B_k`` upper bidiagonal (``alpha`` on the diagonal,
    ``beta`` above), built with full reorthogonalization; ``sigma_max(B_k)`` converges to
    ``sigma_max(A)`` from below, and the top singular vectors of ``B_k`` mapped through ``U_k``
    and ``V_{k+1}`` give ``u`` and ``v``. Checked every ``check_every`` steps, it stops when the
    residual ``||A v - sigma u|| = alpha_{k+1} |q_{k+1}|`` (``q`` the top right singular vector
    of ``B_k``, ``alpha_{k+1} <= ||A||``) is at most ``rtol * sigma`` (floored at 50 machine
    epsilons of the dtype), at an invariant subspace (then exact), or after ``max_iterations``.
    (The change of the estimate between checks is no such test: where the top singular values
    are close it creeps up by less than ``rtol`` per step long before it has converged.)

    Args:
        apply: ``x: (n_in,) -> A x: (n_out,)``.
        adjoint: ``y: (n_out,) -> A^T y: (n_in,)``.
        v0: ``(n_in,)`` non-zero start vector (its dtype and device are used throughout).
        n_out: output dimension.
        max_iterations: cap on steps (also capped by ``min(n_in, n_out)`` and by the memory of
            the two bases, ~2**26 numbers).
        rtol: stopping tolerance.

    Returns:
        ``sigma: ()``, ``u: (n_out,)`` and ``v: (n_in,)``, unit vectors (``u``, ``v`` are
        meaningless but unit when ``A = 0``).
    """
    n_in = v0.numel()
    # the bases take (steps + 1) * (n_in + n_out) numbers: at most ~256 MB in float32
    steps = min(max_iterations, n_in, n_out, max(20, _MAX_BASIS_NUMBERS // (n_in + n_out)))
    with torch.no_grad():
        U = v0.new_empty((steps, n_out))
        V = v0.new_empty((steps + 1, n_in))
        V[0] = v0 / torch.linalg.vector_norm(v0)
        k, nv = 0, 1  # filled rows of U and V
        alphas: list[Tensor] = []
        betas: list[Tensor] = []
        scale = 0.0
        tolerance = max(rtol, 50 * torch.finfo(v0.dtype).eps)
        for step in range(1, steps + 1):
            # alpha_j u_j = A v_j - beta_{j-1} u_{j-1}, made orthogonal to all previous u
            r = apply(V[nv - 1])
            if k:
                r = _orthogonalize(r, U[:k])
            alpha = torch.linalg.vector_norm(r)
            scale = max(scale, float(alpha))
            if float(alpha) <= 1e-10 * scale or scale == 0.0:
                break
            alphas.append(alpha)
            U[k] = r / alpha
            k += 1
            # beta_j v_{j+1} = A^T u_j - alpha_j v_j, made orthogonal to all previous v
            p = _orthogonalize(adjoint(U[k - 1]), V[:nv])
            beta = torch.linalg.vector_norm(p)
            if float(beta) <= 1e-10 * scale:
                break
            betas.append(beta)
            V[nv] = p / beta
            nv += 1
            if step % check_every == 0:
                # A v = sigma u + alpha_{k+1} q_{k+1} u_{k+1}, with alpha_{k+1} <= ||A|| ~ scale
                _, S, Qh = torch.linalg.svd(_bidiagonal(alphas, betas))
                if scale * float(Qh[0, -1].abs()) <= tolerance * float(S[0]):
                    break
        if not alphas:  # A v0 = 0: A is zero on the start vector (zero map in practice)
            u = torch.zeros(n_out, dtype=v0.dtype, device=v0.device)
            u[0] = 1
            return torch.zeros((), dtype=v0.dtype, device=v0.device), u, V[0].clone()
        # B = P S Q^T  =>  A (V q_1) = U B q_1 = s_1 (U p_1)
        P, S, Qh = torch.linalg.svd(_bidiagonal(alphas, betas))
        u = U[:k].T @ P[:, 0]
        v = V[: Qh.shape[1]].T @ Qh[0]
        return S[0], u / torch.linalg.vector_norm(u), v / torch.linalg.vector_norm(v)


def _bidiagonal(alphas: list[Tensor], betas: list[Tensor]) -> Tensor:
    """``U_k^T A [v_1 .. v_m]``: ``alphas`` on the diagonal, ``betas`` above it; ``k x k``, or
    ``k x (k + 1)`` when ``beta_k`` is known (the column of ``v_{k+1}`` included)."""
    k, m = len(alphas), min(len(betas) + 1, len(alphas) + 1)
    B = torch.zeros((k, m), dtype=alphas[0].dtype, device=alphas[0].device)
    index = torch.arange(k, device=B.device)
    B[index, index] = torch.stack(alphas)
    if m > 1:
        B[index[: m - 1], index[: m - 1] + 1] = torch.stack(betas[: m - 1])
    return B


def _orthogonalize(x: Tensor, basis: Tensor) -> Tensor:
    """``x`` minus its projection on the rows of ``basis: (k, n)`` (orthonormal). Two passes of
    classical Gram-Schmidt: one pass loses orthogonality within ~20 steps when the projection
    is large compared with the remainder ("twice is enough", Parlett)."""
    for _ in range(2):
        x = x - basis.T @ (basis @ x)
    return x
