"""Training a VAE with the engine: :class:`VAETask`.

One step is ``loss = model.loss(x, y, beta=beta_t, free_bits=..., iwae_k=...)``, backward, and a
fused Adam step, with the KL weight ramped linearly from 0 to ``beta`` over the first
``kl_warmup_steps`` steps (Bowman et al. 2016; Sønderby et al. 2016) and, optionally, a cosine
learning-rate decay and noisy inputs with clean targets (a denoising VAE, Im et al. 2017).
Validation is the mean (negative) ELBO over the (clean) validation set in large batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor, nn

from gentorch._checks import check_positive_int, check_real
from gentorch._float64 import to_float64

__all__ = ["VAETask", "make_adam"]

# Devices with fused Adam/AdamW kernels in torch >= 2.4 (CPU since 2.4).
_FUSED_DEVICES = ("cpu", "cuda", "mps", "xpu")


def make_adam(
    params: list[nn.Parameter],
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
    decoupled: bool = False,
) -> torch.optim.Optimizer:
    """Adam (or AdamW when ``decoupled``), with the fused kernel where the device has one.

    The fused implementation updates every parameter in one kernel per step instead of a few
    per parameter; it is used when all parameters are floating-point and live on one device
    type among CPU, CUDA, MPS and XPU.

    Args:
        params: the parameters to optimise.
        lr: learning rate.
        betas: Adam's moment decay rates.
        weight_decay: L2 penalty (Adam) or decoupled weight decay (AdamW).
        decoupled: use AdamW.

    Returns:
        A ``torch.optim.Adam`` or ``torch.optim.AdamW``.

    Raises:
        TypeError: ``params`` is not a list or tuple (e.g. the generator ``model.parameters()``:
            pass ``list(model.parameters())``), or a hyper-parameter is not a real number.
        ValueError: no parameters, ``lr`` not positive and finite, ``weight_decay`` negative,
            or ``betas`` outside ``[0, 1)``.

    Example:
        >>> from torch import nn
        >>> from gentorch.training import make_adam
        >>> model = nn.Linear(4, 2)
        >>> opt = make_adam(list(model.parameters()), lr=1e-3)
        >>> type(opt).__name__, opt.defaults["fused"]
        ('Adam', True)
        >>> type(make_adam(list(model.parameters()), lr=1e-3, decoupled=True)).__name__
        'AdamW'
    """
    if not isinstance(params, list | tuple):
        raise TypeError(
            f"params: expected a list of parameters, got {type(params).__name__} (pass "
            f"list(model.parameters()))"
        )
    if not params:
        raise ValueError("params: expected at least one parameter, got none")
    if not all(isinstance(p, Tensor) for p in params):
        bad = next(p for p in params if not isinstance(p, Tensor))
        raise TypeError(f"params: expected tensors (parameters), got a {type(bad).__name__}")
    if not check_real("lr", lr) > 0:
        raise ValueError(f"lr: expected a positive learning rate, got {lr!r}")
    if not check_real("weight_decay", weight_decay) >= 0:
        raise ValueError(f"weight_decay: expected a float >= 0, got {weight_decay!r}")
    if (
        isinstance(betas, str)
        or not isinstance(betas, tuple | list)
        or len(betas) != 2
        or not all(0 <= check_real("betas", b) < 1 for b in betas)
    ):
        raise ValueError(f"betas: expected two floats in [0, 1), got {betas!r}")
    device_types = {p.device.type for p in params}
    fused = (
        len(device_types) == 1
        and device_types <= set(_FUSED_DEVICES)
        and all(p.is_floating_point() for p in params)
    )
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    return cls(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=fused or None)


class VAETask:
    """Train a VAE (:class:`gentorch.models.VAE`, ``ConvVAE``, ``ConditionalVAE``) with :func:`fit`.

    Each step minimises ``model.loss(x, y, beta=beta_t, free_bits=free_bits, iwae_k=iwae_k)``
    where ``beta_t = beta * min(1, t / kl_warmup_steps)`` at step ``t`` (0-based), with fused
    Adam. Per-step metrics are ``loss``, ``recon`` and ``kl`` (detached, not synchronised). With
    ``input_noise > 0`` the step is ``model.loss(x_noisy, y, target=x, ...)``.

    Args:
        model: a VAE with ``loss(x, y, *, beta, free_bits, iwae_k) -> dict`` (and ``target``
            for ``input_noise``) and ``config()``.
        lr: Adam learning rate (the peak one with ``lr_decay_steps``).
        lr_decay_steps: if positive, the learning rate follows a half cosine from ``lr`` down
            to ``lr * lr_final`` over this many steps, then stays there (Loshchilov & Hutter
            2017, without restarts); 0 keeps it constant.
        lr_final: the final learning rate as a fraction of ``lr``.
        weight_decay: Adam's L2 penalty.
        beta: weight of the KL term after the warm-up (1 is the ELBO).
        kl_warmup_steps: steps over which the KL weight rises linearly from 0 to ``beta``;
            0 disables the warm-up.
        free_bits: minimum KL in nats per latent dimension (batch mean) in the objective.
        iwae_k: importance samples of the IWAE objective; 1 is the ELBO.
        input_noise: standard deviation ``sigma`` of the Gaussian noise added to each training
            batch: the encoder sees ``x_noisy = clamp(x + sigma * eps, 0, 1)``,
            ``eps ~ N(0, I)``, and the reconstruction term scores the clean ``x`` (the denoising
            VAE of Im et al. 2017; ``gentorch.evaluation.denoise`` then removes such noise).
            The noise comes from torch's global generator on the batch's device, which
            checkpoints save, so a resumed run draws the same noise. Inputs are images in
            ``[0, 1]``; validation stays on clean data. The model checks the target's values
            at each step (one device sync; none with ``compile``). 0 (the default) trains on
            clean inputs.
        compile: compile the loss (forward and backward) with ``torch.compile``.
        val_batch_size: examples per batch in :meth:`validate`.

    Shapes:
        ``train_step(batch: (B, D), labels: (B,) | None)``; ``validate(data: (N, D), labels)``;
        ``x_noisy``: ``(B, D)``, like ``batch``.

    Raises:
        TypeError: ``model`` is not a module with a ``loss`` method, a hyper-parameter is not a
            real number (or ``compile`` not a bool).
        ValueError: a hyper-parameter out of its range or not finite (each is named in the
            message). :meth:`train_step` (on the first batch) and :meth:`validate` raise it for
            data outside [0, 1] when the model's likelihood is Bernoulli.

    Example:
        >>> from gentorch.data import load
        >>> from gentorch.models import VAE
        >>> from gentorch.training import TrainConfig, VAETask, fit
        >>> images, _ = load("digits")  # (1437, 64), offline
        >>> task = VAETask(VAE.book(64), lr=1e-3, kl_warmup_steps=8)
        >>> config = TrainConfig(epochs=1, batch_size=128, progress=False)
        >>> history = fit(task, images[:512], config=config)  # 4 steps
        >>> task.step, task.beta_at(task.step), task.model.sample(16).shape
        (4, 0.5, torch.Size([16, 64]))
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        lr: float = 1e-3,
        lr_decay_steps: int = 0,
        lr_final: float = 0.0,
        weight_decay: float = 0.0,
        beta: float = 1.0,
        kl_warmup_steps: int = 0,
        free_bits: float = 0.0,
        iwae_k: int = 1,
        input_noise: float = 0.0,
        compile: bool = False,
        val_batch_size: int = 2048,
    ) -> None:
        if not isinstance(model, nn.Module) or not callable(getattr(model, "loss", None)):
            raise TypeError(
                f"model: expected a VAE module with a loss() method, got {type(model).__name__}"
            )
        for name, value in (
            ("lr", lr),
            ("lr_final", lr_final),
            ("weight_decay", weight_decay),
            ("beta", beta),
            ("free_bits", free_bits),
            ("input_noise", input_noise),
        ):
            check_real(name, value)
        if not isinstance(compile, bool):
            raise TypeError(f"compile: expected True or False, got {compile!r}")
        if not beta >= 0:
            raise ValueError(f"beta: expected a float >= 0, got {beta!r}")
        if isinstance(kl_warmup_steps, bool) or not isinstance(kl_warmup_steps, int):
            raise ValueError(f"kl_warmup_steps: expected an int >= 0, got {kl_warmup_steps!r}")
        if kl_warmup_steps < 0:
            raise ValueError(f"kl_warmup_steps: expected an int >= 0, got {kl_warmup_steps!r}")
        if not free_bits >= 0:
            raise ValueError(f"free_bits: expected a float >= 0, got {free_bits!r}")
        check_positive_int("iwae_k", iwae_k)
        if not input_noise >= 0:
            raise ValueError(f"input_noise: expected a float >= 0, got {input_noise!r}")
        if isinstance(lr_decay_steps, bool) or not isinstance(lr_decay_steps, int):
            raise ValueError(f"lr_decay_steps: expected an int >= 0, got {lr_decay_steps!r}")
        if lr_decay_steps < 0:
            raise ValueError(f"lr_decay_steps: expected an int >= 0, got {lr_decay_steps!r}")
        if not 0 <= lr_final <= 1:
            raise ValueError(f"lr_final: expected a fraction in [0, 1], got {lr_final!r}")
        check_positive_int("val_batch_size", val_batch_size)
        self.model = model
        self.lr, self.weight_decay = float(lr), float(weight_decay)
        self.lr_decay_steps, self.lr_final = lr_decay_steps, float(lr_final)
        self.beta, self.kl_warmup_steps = float(beta), kl_warmup_steps
        self.free_bits, self.iwae_k = float(free_bits), iwae_k
        self.input_noise = float(input_noise)
        self.compile, self.val_batch_size = compile, val_batch_size
        self.optimizer = make_adam(list(model.parameters()), lr=lr, weight_decay=weight_decay)
        self.step = 0
        self._range_checked = False
        loss = cast(Callable[..., dict[str, Tensor]], model.loss)
        # dynamic=False: one graph per batch shape (the full batch and the last, smaller one).
        self._eval_loss = loss
        self._loss = torch.compile(loss, dynamic=False) if compile else loss

    def modules(self) -> dict[str, nn.Module]:
        """``{"model": model}``."""
        return {"model": self.model}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """``{"adam": optimizer}``."""
        return {"adam": self.optimizer}

    def beta_at(self, step: int) -> float:
        """The KL weight at (0-based) step ``step``: ``beta * min(1, step / kl_warmup_steps)``."""
        if self.kl_warmup_steps == 0:
            return self.beta
        return self.beta * min(1.0, step / self.kl_warmup_steps)

    def lr_at(self, step: int) -> float:
        """The learning rate at (0-based) step ``step``.

        ``lr_t = lr * (f + (1 - f) * (1 + cos(pi * min(t, T) / T)) / 2)`` with ``f = lr_final``
        and ``T = lr_decay_steps``; ``lr`` when ``T = 0``.
        """
        if self.lr_decay_steps == 0:
            return self.lr
        progress = min(step, self.lr_decay_steps) / self.lr_decay_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.lr * (self.lr_final + (1.0 - self.lr_final) * cosine)

    def train_step(self, batch: Tensor, labels: Tensor | None) -> dict[str, Tensor]:
        """One Adam step on ``batch: (B, D)``; returns detached ``loss``, ``recon``, ``kl``."""
        if not self._range_checked:
            # once per task, on the first batch: one device sync, not one per step
            self._check_range(batch, "batch")
            self._range_checked = True
        if self.lr_decay_steps:
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr_at(self.step)
        beta: float | Tensor = self.beta_at(self.step)
        if self.compile and self.kl_warmup_steps:
            # A changing Python float would be baked into the graph and recompile every step.
            beta = torch.full((), self.beta_at(self.step), device=batch.device, dtype=batch.dtype)
        x, denoising = batch, {}
        if self.input_noise > 0:
            x, denoising = self._corrupt(batch), {"target": batch}
        out = self._loss(
            x, labels, beta=beta, free_bits=self.free_bits, iwae_k=self.iwae_k, **denoising
        )
        self.optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        self.optimizer.step()
        self.step += 1
        return {
            "loss": out["loss"].detach(),
            "recon": out["recon"].detach(),
            "kl": out["kl"].detach(),
        }

    def _corrupt(self, batch: Tensor) -> Tensor:
        """The encoder's input for the denoising objective, ``(B, D)`` like ``batch``.

        The noise is drawn from torch's global generator on the batch's device (the engine seeds
        it and saves it in checkpoints), so an interrupted and resumed run draws the same noise.
        """
        eps = torch.randn(batch.shape, device=batch.device, dtype=batch.dtype)
        # x_noisy = clamp(x + sigma * eps, 0, 1), eps ~ N(0, I)
        return (batch + self.input_noise * eps).clamp_(0.0, 1.0)

    @torch.no_grad()
    def validate(self, data: Tensor, labels: Tensor | None) -> dict[str, float]:
        """Mean negative ELBO (``loss``), ``recon``, ``kl`` and ``elbo`` over ``data: (N, D)``.

        Uses ``beta=1``, no free bits and one sample (the plain ELBO, whatever the training
        objective), in batches of ``val_batch_size``.
        """
        if not isinstance(data, Tensor) or data.dim() < 1 or data.shape[0] == 0:
            got = tuple(data.shape) if isinstance(data, Tensor) else type(data).__name__
            raise ValueError(f"data: expected a non-empty tensor (N, D), got {got}")
        self._check_range(data, "data")
        sums: dict[str, Tensor] = {}
        n = data.shape[0]
        for start in range(0, n, self.val_batch_size):
            x = data[start : start + self.val_batch_size]
            y = None if labels is None else labels[start : start + self.val_batch_size]
            out = self._eval_loss(x, y)
            for key in ("loss", "recon", "kl", "elbo"):
                # batch means -> sums, so that the last, smaller batch weighs what it should
                # (float64 sums: on the CPU for MPS, which has none)
                sums[key] = sums.get(key, 0) + to_float64(out[key]) * x.shape[0]
        return {k: float(v) / n for k, v in sums.items()}

    def _check_range(self, x: Tensor, name: str) -> None:
        """Bernoulli pixels need x in [0, 1]; other dtypes and likelihoods are the model's say."""
        if getattr(self.model, "likelihood", None) != "bernoulli":
            return
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.numel() == 0:
            return
        low, high = (float(v) for v in torch.aminmax(x.detach()))
        # NaN passes here: fit reports it as TrainingDiverged at the first step.
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"{name}: the model's Bernoulli likelihood needs values in [0, 1], got range "
                f"[{low:.4g}, {high:.4g}]; rescale the data (e.g. x / 255) or use a model with "
                f"likelihood='gaussian'"
            )

    def config(self) -> dict[str, Any]:
        """Settings that rebuild this task: the model's class and ``config()``, and the
        objective's and optimiser's hyper-parameters.

        ``input_noise`` is recorded only when positive, so that checkpoints written before it
        existed (clean training) still resume, while :func:`fit` refuses to resume a run with
        another ``input_noise``.
        """
        model_config = getattr(self.model, "config", None)
        denoising = {"input_noise": self.input_noise} if self.input_noise > 0 else {}
        return {
            "model_class": type(self.model).__name__,
            "model": model_config() if callable(model_config) else None,
            "lr": self.lr,
            "lr_decay_steps": self.lr_decay_steps,
            "lr_final": self.lr_final,
            "weight_decay": self.weight_decay,
            "beta": self.beta,
            "kl_warmup_steps": self.kl_warmup_steps,
            "free_bits": self.free_bits,
            "iwae_k": self.iwae_k,
            **denoising,
        }

    def state_dict(self) -> dict[str, Any]:
        """``{"step": t}``: the step counter that drives the KL warm-up."""
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the step counter."""
        step = state.get("step") if isinstance(state, dict) else None
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"state: expected {{'step': int >= 0}}, got {state!r}")
        self.step = step
