"""Variational autoencoders with a diagonal-Gaussian posterior: :class:`VAE` (MLP) and
:class:`ConditionalVAE` (class label into encoder and decoder).

Every model here is ``q(z | x) = N(mu(x), diag(exp(logvar(x))))``, ``p(z) = N(0, I)`` and a
Bernoulli (``decode`` returns logits) or Gaussian (``decode`` returns means) ``p(x | z)``, with

* ``elbo(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z))`` (one reparameterized sample, analytic KL;
  Kingma & Welling 2014);
* ``iwae_bound(x, k) = log (1/k) sum_i p(x, z_i) / q(z_i | x)``, ``z_i ~ q`` (Burda et al. 2015),
  which satisfies ``elbo <= iwae_k <= iwae_k' <= log p(x)`` in expectation for ``k <= k'``;
* ``loss(x, y, target=..., beta=..., free_bits=..., iwae_k=...)``: the training objective, a
  dict of scalar batch means; ``target`` (default ``x``) is what the reconstruction term scores,
  so a corrupted ``x`` and a clean ``target`` train a denoising VAE (Im et al. 2017).

All of them take flattened data ``x: (B, D)`` (float) and are ``torch.compile``-friendly: the
only Python branches in ``loss`` depend on the model's configuration and the (static) arguments,
never on tensor values.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from gentorch._checks import check_generator, check_positive_int, values_hold
from gentorch.layers import LOGVAR_RANGE, Reparameterize, reparameterize
from gentorch.losses import (
    bernoulli_log_likelihood,
    gaussian_kl,
    gaussian_kl_free_bits,
    gaussian_log_likelihood,
)
from gentorch.models._onednn import run_mlp

__all__ = ["VAE", "ConditionalVAE"]

Likelihood = Literal["bernoulli", "gaussian"]
GaussianVariance = Literal["fixed", "learned"]

_LOG_2PI = math.log(2.0 * math.pi)

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
}


def _activation(name: str) -> nn.Module:
    if not isinstance(name, str) or name not in _ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(_ACTIVATIONS)}, got {name!r}")
    return _ACTIVATIONS[name]()


def _mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """``Linear`` layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``, activation between them."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(_activation(activation))
    return nn.Sequential(*layers)


def _check_model_dtype(name: str, t: Tensor, dtype: torch.dtype) -> None:
    """``TypeError`` if the floating tensor ``t`` cannot meet parameters of ``dtype``.

    Outside autocast a ``Linear`` or ``Conv2d`` refuses an input of another dtype with an
    error that names neither the argument nor the fix; under autocast the dtypes may differ.
    """
    if t.dtype != dtype and not torch.is_autocast_enabled(t.device.type):
        raise TypeError(
            f"{name}: expected dtype {dtype} (the model's parameters), got {t.dtype}; convert "
            f"the input (e.g. {name}.to({dtype})) or the model (model.to({t.dtype}))"
        )


def _standard_normal_log_density(z: Tensor) -> Tensor:
    """``log N(z; 0, I)`` summed over the last dimension: ``z: (..., L) -> (...)``."""
    # log N(z; 0, I) = -1/2 sum_l [log(2 pi) + z_l^2]
    return -0.5 * (z.square() + _LOG_2PI).sum(-1)


def _diagonal_normal_log_density(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """``log N(z; mu, diag(exp(logvar)))`` summed over the last dimension, with ``logvar``
    clamped to :data:`~gentorch.layers.LOGVAR_RANGE` as :func:`reparameterize` clamps it: the
    density of the Gaussian that ``z`` was drawn from.

    ``z: (K, B, L)`` or ``(B, L)``; ``mu, logvar: (B, L)`` broadcast against it; returns ``z``'s
    shape without ``L``.
    """
    # Scoring z under the unclamped logvar would make p(x, z) / q(z | x) no density ratio: at
    # logvar = -45 (sampled at -30) log q is off by ~e^15 / 2 per latent, and IWAE >> log p(x).
    logvar = logvar.clamp(*LOGVAR_RANGE)
    # log N(z; mu, v) = -1/2 sum_l [log(2 pi) + log v_l + (z_l - mu_l)^2 / v_l]
    return -0.5 * ((z - mu).square() * torch.exp(-logvar) + logvar + _LOG_2PI).sum(-1)


class VAE(nn.Module):
    """Variational autoencoder with MLP encoder and decoder.

    Encoder ``D -> hidden_dims[0] -> ... -> hidden_dims[-1] -> 2L`` (``mu`` then ``logvar``,
    one ``Linear`` for both, which is the same map as the book's two heads); decoder
    ``L -> reversed(hidden_dims) -> D``. ``VAE.book()`` is the model of Generative Deep Learning,
    ch. 5.2. The Bernoulli decoder returns logits: the book's final sigmoid is folded into the
    numerically stable BCE-with-logits.

    Every method takes an optional ``y`` (class labels ``(B,)``) so that training and
    evaluation code can treat :class:`VAE` and :class:`ConditionalVAE` alike; the unconditional
    model ignores it.

    Args:
        input_dim: ``D``, the number of features of a flattened input.
        hidden_dims: widths of the encoder's hidden layers (the decoder mirrors them); may be
            empty (linear encoder and decoder).
        latent_dim: ``L``.
        likelihood: ``"bernoulli"`` (data in ``[0, 1]``, ``decode`` returns logits) or
            ``"gaussian"`` (``decode`` returns means).
        gaussian_variance: for the Gaussian likelihood: ``"fixed"`` uses
            ``exp(gaussian_logvar)`` for every feature (``gaussian_logvar=0``: the "MSE" loss);
            ``"learned"`` learns one log-variance shared by all features, starting at
            ``gaussian_logvar`` (the sigma-VAE of Rybkin et al. 2021; per-feature variances
            collapse on constant features such as MNIST's borders).
        gaussian_logvar: the fixed log-variance, or the learned one's initial value.
        activation: hidden activation: ``"relu"``, ``"leaky_relu"``, ``"elu"``, ``"gelu"``,
            ``"silu"``, ``"tanh"`` or ``"softplus"``.

    Raises:
        ValueError: a non-positive ``input_dim``, ``latent_dim`` or hidden width, or an unknown
            ``likelihood``, ``gaussian_variance`` or ``activation``; a non-finite
            ``gaussian_logvar``.
        TypeError: ``hidden_dims`` is not a sequence of ints.

    Shapes:
        ``x: (B, D)`` float; ``z: (..., L)``; ``encode(x) -> (mu, logvar)``, each ``(B, L)``;
        ``decode(z) -> (..., D)``; ``forward(x) -> (decoder output (B, D), mu, logvar)``;
        ``sample(n) -> (n, D)``; ``elbo(x)``, ``iwae_bound(x, k) -> (B,)``; ``loss(x)`` a dict
        of 0-d tensors.

    Example:
        >>> import torch
        >>> from gentorch.models import VAE
        >>> model = VAE.book()  # 784-512-256-2, Bernoulli
        >>> out = model.loss(torch.rand(32, 784))
        >>> sorted(out), out["loss"].shape
        (['elbo', 'kl', 'loss', 'recon'], torch.Size([]))
        >>> out["loss"].backward()
    """

    likelihood: Likelihood
    gaussian_variance: GaussianVariance

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int],
        latent_dim: int,
        likelihood: Likelihood = "bernoulli",
        *,
        gaussian_variance: GaussianVariance = "fixed",
        gaussian_logvar: float = 0.0,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        hidden = self._setup(input_dim, hidden_dims, latent_dim, likelihood, activation)
        self._setup_variance(gaussian_variance, gaussian_logvar)
        self.encoder: nn.Module = _mlp([self.input_dim, *hidden, 2 * self.latent_dim], activation)
        self.decoder: nn.Module = _mlp(
            [self.latent_dim, *reversed(hidden), self.input_dim], activation
        )

    # ----------------------------------------------------------------------- construction
    def _setup(
        self,
        input_dim: int,
        hidden_dims: Sequence[int],
        latent_dim: int,
        likelihood: str,
        activation: str,
    ) -> tuple[int, ...]:
        """Validate and store the common configuration; return ``hidden_dims`` as a tuple."""
        self.input_dim = check_positive_int("input_dim", input_dim)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        if isinstance(hidden_dims, (str, int)) or not isinstance(hidden_dims, Sequence):
            raise TypeError(
                f"hidden_dims: expected a sequence of ints, got {type(hidden_dims).__name__}"
            )
        hidden = tuple(check_positive_int("hidden_dims[*]", h) for h in hidden_dims)
        self.hidden_dims = hidden
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood: expected 'bernoulli' or 'gaussian', got {likelihood!r}")
        self.likelihood = likelihood  # type: ignore[assignment]
        _activation(activation)  # validates the name
        self.activation = activation
        # Training mode samples z, eval mode returns mu: used by forward() only.
        self.sampler = Reparameterize(eval_mode="mean")
        return hidden

    def _setup_variance(self, gaussian_variance: str, gaussian_logvar: float) -> None:
        if gaussian_variance not in ("fixed", "learned"):
            raise ValueError(
                f"gaussian_variance: expected 'fixed' or 'learned', got {gaussian_variance!r}"
            )
        if (
            isinstance(gaussian_logvar, bool)
            or not isinstance(gaussian_logvar, (int, float))
            or not math.isfinite(gaussian_logvar)
        ):
            raise ValueError(f"gaussian_logvar: expected a finite float, got {gaussian_logvar!r}")
        self.gaussian_variance = gaussian_variance  # type: ignore[assignment]
        self.gaussian_logvar = float(gaussian_logvar)
        self.decoder_logvar: nn.Parameter | None = None
        if self.likelihood == "gaussian" and gaussian_variance == "learned":
            # One log-variance shared by every feature: ().
            self.decoder_logvar = nn.Parameter(torch.tensor(self.gaussian_logvar))

    @staticmethod
    def book(input_dim: int = 784) -> VAE:
        """The book's model (Generative Deep Learning, ch. 5.2).

        Encoder ``input_dim -> 512 ReLU -> 256 ReLU -> (z_mean, z_log_var)``, latent 2; decoder
        ``2 -> 256 ReLU -> 512 ReLU -> input_dim``, Bernoulli likelihood (the sigmoid is folded
        into BCE-with-logits). Its ``recon`` term is the book's ``784 * BCE``.

        Args:
            input_dim: 784 for MNIST; 64 runs the same widths on scikit-learn's 8x8 digits.

        Example:
            >>> import torch
            >>> from gentorch.models import VAE
            >>> model = VAE.book()
            >>> mu, logvar = model.encode(torch.rand(8, 784))
            >>> mu.shape
            torch.Size([8, 2])
        """
        return VAE(input_dim, (512, 256), 2, "bernoulli")

    def config(self) -> dict[str, Any]:
        """The constructor's arguments as a JSON-able dict: ``type(model)(**model.config())``
        (or :meth:`from_config`) builds the same architecture.

        Example:
            >>> from gentorch.models import VAE
            >>> VAE.book().config()["hidden_dims"]
            [512, 256]
        """
        return {
            "input_dim": self.input_dim,
            "hidden_dims": list(self.hidden_dims),
            "latent_dim": self.latent_dim,
            "likelihood": self.likelihood,
            "gaussian_variance": self.gaussian_variance,
            "gaussian_logvar": self.gaussian_logvar,
            "activation": self.activation,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> VAE:
        """Build a model of this class from :meth:`config`'s dict (weights not included).

        Raises:
            TypeError: ``config`` is not a dict with str keys.
            ValueError: a required key is missing or a key is unknown to this class, or as
                the constructor.

        Example:
            >>> from gentorch.models import VAE
            >>> a = VAE(64, [32], 4)
            >>> b = VAE.from_config(a.config())
            >>> b.load_state_dict(a.state_dict())  # same architecture: every key fits
            <All keys matched successfully>
        """
        if not isinstance(config, Mapping):
            raise TypeError(f"config: expected a dict, got {type(config).__name__}")
        params = inspect.signature(cls.__init__).parameters
        known = [n for n in params if n != "self"]
        required = [n for n in known if params[n].default is inspect.Parameter.empty]
        unknown = sorted(str(k) for k in config if k not in known)
        missing = [n for n in required if n not in config]
        if unknown or missing:
            raise ValueError(
                f"config: expected the keys of {cls.__name__}.config() (required: {required}), "
                f"got unknown keys {unknown} and missing keys {missing}"
            )
        return cls(**config)

    # ----------------------------------------------------------------------- checks
    def _check_x(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"x: expected a Tensor, got {type(x).__name__}")
        if x.dim() != 2 or x.shape[1] != self.input_dim:
            raise ValueError(
                f"x: expected shape (B, {self.input_dim}), got {tuple(x.shape)}"
                + (" (flatten images to (B, C*H*W) first)" if x.dim() > 2 else "")
            )
        if not x.is_floating_point():
            raise TypeError(
                f"x: expected a floating-point tensor, got dtype {x.dtype} "
                "(convert and scale it, e.g. x.float() / 255)"
            )
        _check_model_dtype("x", x, self._dtype())

    def _check_target(self, target: Tensor, x: Tensor) -> None:
        """Raise unless ``target`` can be scored in place of ``x``: a floating tensor of ``x``'s
        shape and device, in the model's dtype, with finite values (in ``[0, 1]`` for the
        Bernoulli likelihood). The value check is one device sync (none under ``torch.compile``,
        where an in-graph assertion raises ``RuntimeError`` instead), like ``y``'s."""
        if not isinstance(target, Tensor):
            raise TypeError(f"target: expected a Tensor, got {type(target).__name__}")
        if target.shape != x.shape:
            raise ValueError(
                f"target: expected the shape of x, {tuple(x.shape)}, got {tuple(target.shape)}"
            )
        if not target.is_floating_point():
            raise TypeError(
                f"target: expected a floating-point tensor, got dtype {target.dtype} "
                "(convert and scale it, e.g. target.float() / 255)"
            )
        _check_model_dtype("target", target, self._dtype())
        if target.device != x.device:
            raise ValueError(
                f"target: expected a tensor on x's device {x.device}, got one on {target.device}"
            )
        self._check_target_values(target)

    def _check_target_values(self, target: Tensor) -> None:
        """``ValueError`` (in-graph ``RuntimeError`` under compile) for bad ``target`` values."""
        bernoulli = self.likelihood == "bernoulli"
        expected = (
            "finite values in [0, 1] (Bernoulli likelihood)" if bernoulli else "finite values"
        )
        # NaN fails both comparisons and +-Inf one of them: the range test also rules them out
        ok = ((target >= 0) & (target <= 1)).all() if bernoulli else torch.isfinite(target).all()
        if not values_hold(ok, f"target: expected {expected}, got values outside"):
            # (only on this failure path: the details cost a second sync)
            values = target.detach()
            bad = int((~torch.isfinite(values)).sum())
            low, high = (float(v) for v in torch.aminmax(values))
            got = (
                f"{bad} NaN or Inf of {values.numel()}" if bad else f"range [{low:.4g}, {high:.4g}]"
            )
            raise ValueError(f"target: expected {expected}, got {got}")

    def _check_z(self, z: Tensor) -> None:
        if not isinstance(z, Tensor):
            raise TypeError(f"z: expected a Tensor, got {type(z).__name__}")
        if z.dim() == 0 or z.shape[-1] != self.latent_dim:
            raise ValueError(f"z: expected shape (..., {self.latent_dim}), got {tuple(z.shape)}")
        if not z.is_floating_point():
            raise TypeError(f"z: expected a floating-point tensor, got dtype {z.dtype}")
        _check_model_dtype("z", z, self._dtype())

    def _dtype(self) -> torch.dtype:
        """The dtype of the decoder's (first) parameter: what inputs must match."""
        return next(iter(self.decoder.parameters())).dtype

    def _condition(self, y: Tensor | int | None, batch: int) -> Tensor | None:
        """The decoder/encoder condition for labels ``y``: none for the unconditional model."""
        return None

    # ----------------------------------------------------------------------- the networks
    def _encode(self, x: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor]:
        h = run_mlp(self.encoder, x if c is None else torch.cat([x, c], dim=-1))
        mu, logvar = h.chunk(2, dim=-1)
        return mu, logvar

    def _decode(self, z: Tensor, c: Tensor | None) -> Tensor:
        if c is not None:
            # c: (B, C) against z: (..., B, L), e.g. K importance samples (K, B, L).
            z = torch.cat([z, c.expand(*z.shape[:-1], c.shape[-1])], dim=-1)
        return run_mlp(self.decoder, z)

    def _log_likelihood(self, out: Tensor, x: Tensor) -> Tensor:
        """``log p(x | z)`` from the decoder output ``out: (..., B, D)``; returns ``(..., B)``."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(out, x)
        logvar = self.gaussian_logvar if self.decoder_logvar is None else self.decoder_logvar
        return gaussian_log_likelihood(out, x, logvar)

    def _mean(self, out: Tensor) -> Tensor:
        """The mean of ``p(x | z)`` from the decoder output (probabilities or means)."""
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    # ----------------------------------------------------------------------- public API
    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Parameters of ``q(z | x)``: ``x: (B, D) -> (mu, logvar)``, each ``(B, L)``.

        Example:
            >>> import torch
            >>> from gentorch.models import VAE
            >>> mu, logvar = VAE(64, [32], 2).encode(torch.rand(5, 64))
            >>> mu.shape, logvar.shape
            (torch.Size([5, 2]), torch.Size([5, 2]))
        """
        self._check_x(x)
        return self._encode(x, self._condition(y, x.shape[0]))

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Decoder output for latents ``z: (..., L) -> (..., D)``: Bernoulli logits or Gaussian
        means (``torch.sigmoid`` of the logits gives pixel probabilities).

        Example:
            >>> import torch
            >>> from gentorch.models import VAE
            >>> model = VAE(64, [32], 2)
            >>> model.decode(torch.randn(10, 5, 2)).shape
            torch.Size([10, 5, 64])
        """
        self._check_z(z)
        batch = z.shape[-2] if z.dim() >= 2 else 1
        return self._decode(z, self._condition(y, batch))

    def forward(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``x: (B, D) -> (decoder output (B, D), mu (B, L), logvar (B, L))``.

        ``z`` is sampled in training mode and is ``mu`` in eval mode (:class:`Reparameterize`
        with ``eval_mode="mean"``), so an exported eval-mode model is deterministic.

        Example:
            >>> import torch
            >>> from gentorch.models import VAE
            >>> model = VAE(64, [32], 2).eval()
            >>> logits, mu, logvar = model(torch.rand(5, 64))
            >>> logits.shape
            torch.Size([5, 64])
        """
        self._check_x(x)
        c = self._condition(y, x.shape[0])
        mu, logvar = self._encode(x, c)
        z = self.sampler((mu, logvar))
        return self._decode(z, c), mu, logvar

    def sample(
        self, n: int, y: Tensor | int | None = None, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """``n`` samples from the model, ``(n, D)``: the mean of ``p(x | z)`` for ``z ~ N(0, I)``
        (pixel probabilities for Bernoulli, means for Gaussian). No gradient is recorded.

        Args:
            n: number of samples.
            y: class labels (used by :class:`ConditionalVAE`; ignored here).
            generator: a ``torch.Generator`` on the model's device, for reproducible samples.

        Example:
            >>> import torch
            >>> from gentorch.models import VAE
            >>> model = VAE(64, [32], 2)
            >>> model.sample(16).shape
            torch.Size([16, 64])
        """
        n = check_positive_int("n", n)
        check_generator(generator)
        ref = next(iter(self.decoder.parameters()))
        c = self._condition(y, n)
        with torch.no_grad():
            # z ~ N(0, I) = p(z)
            z = torch.randn(
                n, self.latent_dim, generator=generator, device=ref.device, dtype=ref.dtype
            )
            return self._mean(self._decode(z, c))

    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Deterministic reconstruction ``(B, D)``: the mean of ``p(x | z = mu(x))``
        (probabilities for Bernoulli, means for Gaussian). No gradient is recorded.

        Example:
            >>> import torch
            >>> from gentorch.models import VAE
            >>> model = VAE(64, [32], 2)
            >>> model.reconstruct(torch.rand(5, 64)).shape
            torch.Size([5, 64])
        """
        self._check_x(x)
        c = self._condition(y, x.shape[0])
        with torch.no_grad():
            mu, _ = self._encode(x, c)
            return self._mean(self._decode(mu, c))

    def elbo(
        self, x: Tensor, y: Tensor | None = None, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """Per-example ELBO in nats, ``(B,)``: one reparameterized sample and the analytic KL.

        ``elbo(x) = log p(x | z) - KL(q(z | x) || N(0, I))``, ``z ~ q(z | x)``; an unbiased
        estimate of the evidence lower bound. Differentiable.

        Example:
            >>> import torch
            >>> from gentorch.models import VAE
            >>> model = VAE(64, [32], 2)
            >>> model.elbo(torch.rand(5, 64)).shape
            torch.Size([5])
        """
        self._check_x(x)
        check_generator(generator)
        c = self._condition(y, x.shape[0])
        mu, logvar = self._encode(x, c)
        z = reparameterize(mu, logvar, generator=generator)
        # ELBO = E_q[log p(x|z)] - KL(q || p), KL in closed form summed over latents
        return self._log_likelihood(self._decode(z, c), x) - gaussian_kl(mu, logvar).sum(-1)

    def log_importance_weights(
        self,
        x: Tensor,
        k: int,
        y: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Log importance weights ``log p(x, z_i) - log q(z_i | x)``, ``z_i ~ q(z | x)``:
        ``x: (B, D) -> (k, B)``.

        ``logsumexp`` over the first dimension minus ``log k`` is the IWAE bound; chunks of
        ``k`` can be combined with a streaming ``logsumexp``. Differentiable (wrap it in
        ``torch.no_grad()`` for evaluation). Memory: ``k * B * D`` decoder outputs.

        Example:
            >>> import torch
            >>> from gentorch.models import VAE
            >>> model = VAE(64, [32], 2)
            >>> model.log_importance_weights(torch.rand(5, 64), 100).shape
            torch.Size([100, 5])
        """
        self._check_x(x)
        k = check_positive_int("k", k)
        check_generator(generator)
        c = self._condition(y, x.shape[0])
        log_px_z, log_pz, log_qz = self._importance_terms(x, c, k, generator)
        # log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x)
        return log_px_z + log_pz - log_qz

    def _importance_terms(
        self, x: Tensor, c: Tensor | None, k: int, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``log p(x|z_i)``, ``log p(z_i)``, ``log q(z_i|x)`` for ``k`` samples: each ``(k, B)``."""
        mu, logvar = self._encode(x, c)
        z = reparameterize(mu, logvar, n_samples=k, generator=generator)  # (k, B, L)
        log_px_z = self._log_likelihood(self._decode(z, c), x)
        return (
            log_px_z,
            _standard_normal_log_density(z),
            _diagonal_normal_log_density(z, mu, logvar),
        )

    def iwae_bound(
        self,
        x: Tensor,
        k: int,
        y: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Per-example importance-weighted bound (Burda et al. 2015) in nats, ``(B,)``.

        ``IWAE_k(x) = logsumexp_i(log w_i) - log k`` with ``log w_i`` from
        :meth:`log_importance_weights`; ``k=1`` is a single-sample ELBO estimate with a
        Monte-Carlo KL. Differentiable.

        Example:
            >>> import torch
            >>> from gentorch.models import VAE
            >>> model = VAE(64, [32], 2)
            >>> model.iwae_bound(torch.rand(5, 64), k=50).shape
            torch.Size([5])
        """
        log_w = self.log_importance_weights(x, k, y, generator=generator)
        # IWAE_k = log (1/k) sum_i w_i
        return torch.logsumexp(log_w, dim=0) - math.log(k)

    def loss(
        self,
        x: Tensor,
        y: Tensor | None = None,
        *,
        target: Tensor | None = None,
        beta: float | Tensor = 1.0,
        free_bits: float = 0.0,
        iwae_k: int = 1,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """The training objective and its parts, each a scalar batch mean (nats per example).

        With ``iwae_k=1``: ``loss = recon + beta * KL``, where ``recon = -log p(x | z)`` for one
        ``z ~ q(z | x)`` and ``KL`` is the analytic ``KL(q(z | x) || N(0, I))``. With
        ``free_bits > 0`` the KL term of ``loss`` is :func:`gentorch.losses.gaussian_kl_free_bits`
        (each latent dimension's batch-mean KL clamped below at ``free_bits`` nats, Kingma et al.
        2016), so dimensions under the floor get no gradient towards the prior. ``beta`` (a float
        or a scalar tensor, e.g. a KL warm-up schedule) scales that term.

        With ``iwae_k = k > 1``: ``loss = -mean IWAE_k`` computed from weights
        ``log w_i = log p(x | z_i) + beta * (log p(z_i) - log q(z_i | x))`` (at ``beta = 1`` the
        IWAE objective of Burda et al. 2015; ``k = 1`` would be the beta-ELBO with a Monte-Carlo
        KL). ``free_bits`` has no meaning there and must be 0.

        The returned ``"recon"``, ``"kl"`` and ``"elbo"`` are always the plain (``beta = 1``, no
        free bits) quantities, so runs with different settings compare: ``"kl"`` is the analytic
        KL, ``"recon"`` is averaged over the ``iwae_k`` samples and ``"elbo" = -(recon + kl)``.
        Unconditional models ignore ``y``.

        ``target`` (default ``x``) is what the likelihood scores: the encoder sees ``x`` and
        ``recon = -log p(target | z)``, ``z ~ q(z | x)`` (in the IWAE weights too). With a
        corrupted ``x`` and the clean ``target`` this is the denoising criterion of Im et al.
        (2017); ``"elbo"`` is then that criterion's bound, not the ELBO of either tensor.

        Args:
            x: ``(B, D)`` encoder input.
            y: ``(B,)`` class labels for :class:`ConditionalVAE`.
            target: ``(B, D)`` values to reconstruct, ``x``'s shape and dtype, finite (in
                ``[0, 1]`` for the Bernoulli likelihood); ``None`` scores ``x``. Its values are
                checked with one device sync (under ``torch.compile`` an in-graph assertion
                raises ``RuntimeError`` instead).
            beta, free_bits, iwae_k: the objective's settings, above.
            generator: a ``torch.Generator`` for the latent samples.

        Returns:
            ``{"loss", "recon", "kl", "elbo"}``, each a 0-d tensor; ``"loss"`` is the one to
            minimise.

        Raises:
            ValueError, TypeError: a bad ``x``, ``y`` or ``target`` (shape, dtype, device or
                values) or setting; each message names the argument.

        Example:
            >>> import torch
            >>> from gentorch.models import VAE
            >>> model = VAE.book(64)
            >>> out = model.loss(torch.rand(32, 64), beta=0.5)
            >>> out["loss"].backward()
            >>> bool(torch.allclose(out["elbo"], -(out["recon"] + out["kl"])))  # beta-free
            True
            >>> clean = torch.rand(32, 64)  # denoising: noisy input, clean target
            >>> noisy = (clean + 0.3 * torch.randn(32, 64)).clamp(0, 1)
            >>> model.loss(noisy, target=clean)["recon"].shape
            torch.Size([])
        """
        self._check_x(x)
        if x.shape[0] == 0:
            raise ValueError(
                f"x: expected a non-empty batch (B >= 1) for batch means, got {tuple(x.shape)}"
            )
        if target is None:
            target = x
        else:
            self._check_target(target, x)
        iwae_k = check_positive_int("iwae_k", iwae_k)
        check_generator(generator)
        if (
            isinstance(free_bits, bool)
            or not isinstance(free_bits, (int, float))
            or not 0.0 <= free_bits < math.inf
        ):
            raise ValueError(f"free_bits: expected a finite float >= 0, got {free_bits!r}")
        if free_bits > 0 and iwae_k > 1:
            raise ValueError(
                f"free_bits: must be 0 with the IWAE objective (iwae_k={iwae_k}), got {free_bits}"
            )
        if isinstance(beta, Tensor):
            if beta.dim() != 0:
                raise ValueError(f"beta: expected a 0-d tensor, got shape {tuple(beta.shape)}")
            # 0-d beta * 0-d KL takes beta's dtype: a float64 schedule would promote the loss
            beta = beta.to(self._dtype())
        elif isinstance(beta, (int, float)) and not isinstance(beta, bool):
            # A tensor beta is not range-checked: that would read its value (a device sync).
            if not 0.0 <= beta < math.inf:
                raise ValueError(f"beta: expected a finite float >= 0, got {beta!r}")
        else:
            raise TypeError(f"beta: expected a float or a 0-d tensor, got {type(beta).__name__}")
        c = self._condition(y, x.shape[0])
        mu, logvar = self._encode(x, c)
        # KL(N(mu, v) || N(0, I)) in closed form, summed over latents: (B,)
        kl = gaussian_kl(mu, logvar).sum(-1).mean()
        if iwae_k == 1:
            z = reparameterize(mu, logvar, generator=generator)
            # recon = -log p(target | z), z ~ q(z | x)
            recon = -self._log_likelihood(self._decode(z, c), target).mean()
            kl_term = (
                gaussian_kl_free_bits(mu, logvar, free_bits, reduction="batchmean")
                if free_bits > 0
                else kl
            )
            loss = recon + beta * kl_term
        else:
            z = reparameterize(mu, logvar, n_samples=iwae_k, generator=generator)  # (k, B, L)
            log_px_z = self._log_likelihood(self._decode(z, c), target)  # (k, B)
            log_ratio = _standard_normal_log_density(z) - _diagonal_normal_log_density(
                z, mu, logvar
            )
            # -IWAE_k = -(logsumexp_i [log p(x|z_i) + beta * log p(z_i)/q(z_i|x)] - log k)
            log_w = log_px_z + beta * log_ratio
            loss = -(torch.logsumexp(log_w, dim=0) - math.log(iwae_k)).mean()
            recon = -log_px_z.mean()
        return {"loss": loss, "recon": recon, "kl": kl, "elbo": -(recon + kl)}

    def extra_repr(self) -> str:
        return f"likelihood={self.likelihood!r}, latent_dim={self.latent_dim}"


class ConditionalVAE(VAE):
    """VAE conditioned on a class label: the one-hot label is concatenated to the encoder's
    input and to the decoder's input (Sohn et al. 2015's CVAE with a label-independent prior).

    Same API as :class:`VAE`, but ``y`` (integer labels ``(B,)`` in ``[0, num_classes)``) is
    required by every method: ``encode(x, y)``, ``decode(z, y)``, ``loss(x, y)``,
    ``sample(n, y)`` (``y`` an int, for ``n`` samples of one class, or ``(n,)`` labels), ...

    Args:
        input_dim, hidden_dims, latent_dim, likelihood: as for :class:`VAE`.
        num_classes: number of classes ``C``; encoder input ``D + C``, decoder input ``L + C``.
        gaussian_variance, gaussian_logvar, activation: as for :class:`VAE`.

    Raises:
        ValueError, TypeError: as :class:`VAE`, and a non-positive ``num_classes``. The methods
            raise ``ValueError`` when ``y`` is missing, has the wrong shape or holds a label
            outside ``[0, C)`` (under ``torch.compile`` an in-graph assertion raises
            ``RuntimeError`` instead), and ``TypeError`` when it is not an int or an integer
            tensor.

    Shapes:
        ``x: (B, D)`` float and ``y: (B,)`` integer labels; ``encode(x, y) -> (mu, logvar)``,
        each ``(B, L)``; ``decode(z, y)`` with ``z: (..., B, L)`` (at least 2-d) and
        ``y: (B,)`` ``-> (..., B, D)``; ``forward(x, y) -> (decoder output (B, D), mu,
        logvar)``; ``sample(n, y) -> (n, D)`` with ``y`` an int or ``(n,)``;
        ``elbo(x, y)``, ``iwae_bound(x, k, y) -> (B,)``; ``loss(x, y)`` a dict of 0-d tensors.

    Example:
        >>> import torch
        >>> from gentorch.models import ConditionalVAE
        >>> model = ConditionalVAE(784, [512, 256], 2, num_classes=10)
        >>> out = model.loss(torch.rand(8, 784), torch.randint(0, 10, (8,)))
        >>> model.sample(16, y=7).shape  # 16 samples of class 7
        torch.Size([16, 784])
        >>> model.encoder[0].in_features, model.decoder[0].in_features  # D + C, L + C
        (794, 12)
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int],
        latent_dim: int,
        num_classes: int,
        likelihood: Likelihood = "bernoulli",
        *,
        gaussian_variance: GaussianVariance = "fixed",
        gaussian_logvar: float = 0.0,
        activation: str = "relu",
    ) -> None:
        # VAE.__init__ builds unconditional networks; this one widens their inputs by C.
        nn.Module.__init__(self)
        hidden = self._setup(input_dim, hidden_dims, latent_dim, likelihood, activation)
        self._setup_variance(gaussian_variance, gaussian_logvar)
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.encoder = _mlp([input_dim + num_classes, *hidden, 2 * latent_dim], activation)
        self.decoder = _mlp([latent_dim + num_classes, *reversed(hidden), input_dim], activation)

    def config(self) -> dict[str, Any]:
        """The constructor's arguments as a JSON-able dict (see :meth:`VAE.config`).

        Example:
            >>> from gentorch.models import ConditionalVAE
            >>> ConditionalVAE(64, [32], 2, num_classes=10).config()["num_classes"]
            10
        """
        return {**super().config(), "num_classes": self.num_classes}

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Decoder output for latents ``z: (..., B, L)`` and labels ``y: (B,)``: ``(..., B, D)``.

        Example:
            >>> import torch
            >>> from gentorch.models import ConditionalVAE
            >>> model = ConditionalVAE(64, [32], 2, num_classes=10)
            >>> model.decode(torch.randn(5, 2), torch.arange(5)).shape
            torch.Size([5, 64])
        """
        if isinstance(z, Tensor) and z.dim() < 2:
            raise ValueError(
                f"z: expected shape (..., B, {self.latent_dim}) to go with labels y (B,), "
                f"got {tuple(z.shape)}"
            )
        return super().decode(z, y)

    def _condition(self, y: Tensor | int | None, batch: int) -> Tensor:
        """One-hot labels ``(batch, C)`` in the model's dtype, on the model's device."""
        C = self.num_classes
        if y is None:
            raise ValueError(f"y: ConditionalVAE needs class labels (B,) in [0, {C}), got None")
        ref = next(iter(self.decoder.parameters()))
        if isinstance(y, int) and not isinstance(y, bool):
            if not 0 <= y < C:
                raise ValueError(f"y: expected a class in [0, {C}), got {y}")
            y = torch.full((batch,), y, dtype=torch.long, device=ref.device)
        if not isinstance(y, Tensor):
            raise TypeError(f"y: expected an integer tensor (B,) or an int, got {type(y).__name__}")
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise TypeError(f"y: expected integer class labels, got dtype {y.dtype}")
        if y.shape != (batch,):
            raise ValueError(f"y: expected shape ({batch},), got {tuple(y.shape)}")
        if y.device != ref.device:  # (torch.cat would fail later, naming neither)
            raise ValueError(
                f"y: expected labels on the model's device {ref.device}, got {y.device}"
            )
        in_range = ((y >= 0) & (y < C)).all()
        if not values_hold(in_range, f"y: expected labels in [0, {C}), got one outside"):
            lo, hi = int(y.min()), int(y.max())
            raise ValueError(f"y: expected labels in [0, {C}), got values in [{lo}, {hi}]")
        # one_hot(y)_c = [y == c]
        return (y.unsqueeze(-1) == torch.arange(C, device=y.device)).to(ref.dtype)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_classes={self.num_classes}"
