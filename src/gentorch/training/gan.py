"""Training a GAN with the engine: :class:`GANTask` (SN-GAN's recipe, Miyato et al. 2018).

Every call of :meth:`GANTask.train_step` updates the discriminator once on a fresh real batch;
every ``n_dis``-th call (the 1st, ``n_dis + 1``-th, ...) also updates the generator once, so the
run alternates ``n_dis`` discriminator steps with one generator step, as in the paper's
Algorithm 1. The paper's Adam settings A-F are selectable by name (:data:`ADAM_SETTINGS`).
An exponential moving average (EMA) of the generator's weights is kept as a separate module and
used for samples and validation; a fixed batch of latent codes makes sample grids comparable
across epochs; the spectral norm of every discriminator layer is recorded during training.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from gentorch._checks import as_device, check_positive_int, check_real
from gentorch.layers import SpectralNorm
from gentorch.losses.gan import GAN_LOSSES, discriminator_loss, generator_loss, gradient_penalty
from gentorch.training.vae import make_adam

__all__ = ["ADAM_SETTINGS", "AdamSetting", "GANTask", "layer_spectral_norms"]


@dataclass(frozen=True)
class AdamSetting:
    """One of the paper's optimizer settings (Miyato et al. 2018, Table 1).

    A frozen dataclass of the four hyper-parameters that :class:`GANTask` takes from a
    setting: :data:`ADAM_SETTINGS` maps the paper's names ``"A"`` ... ``"F"`` to them, and
    ``GANTask.adam`` holds the one in use (with any ``lr``, ``beta1``, ``beta2``, ``n_dis``
    overrides applied). Every argument is also a read-only field of the same name.

    Args:
        lr: Adam's learning rate (both networks).
        beta1: Adam's first-moment decay.
        beta2: Adam's second-moment decay.
        n_dis: discriminator updates per generator update.

    Example:
        >>> from gentorch.training import ADAM_SETTINGS
        >>> ADAM_SETTINGS["C"]
        AdamSetting(lr=0.0002, beta1=0.5, beta2=0.999, n_dis=1)
        >>> ADAM_SETTINGS["A"].n_dis
        5
    """

    lr: float
    beta1: float
    beta2: float
    n_dis: int


#: The settings A-F of the paper's Table 1 (C is the gentle one, D-F the aggressive ones).
ADAM_SETTINGS: dict[str, AdamSetting] = {
    "A": AdamSetting(lr=1e-4, beta1=0.5, beta2=0.9, n_dis=5),
    "B": AdamSetting(lr=1e-4, beta1=0.5, beta2=0.999, n_dis=1),
    "C": AdamSetting(lr=2e-4, beta1=0.5, beta2=0.999, n_dis=1),
    "D": AdamSetting(lr=1e-3, beta1=0.5, beta2=0.9, n_dis=5),
    "E": AdamSetting(lr=1e-3, beta1=0.5, beta2=0.999, n_dis=5),
    "F": AdamSetting(lr=1e-3, beta1=0.9, beta2=0.999, n_dis=5),
}


def _weight_sigma(weight: Tensor) -> float:
    # sigma(W) of the weight reshaped to (out, in * kh * kw), as in the paper; at least float32
    w = weight.detach().flatten(1)
    return float(torch.linalg.matrix_norm(w.to(torch.promote_types(w.dtype, torch.float32)), ord=2))


@torch.no_grad()
def layer_spectral_norms(module: nn.Module) -> dict[str, float]:
    """The largest singular value of the weight each layer of ``module`` actually applies.

    For a :class:`~gentorch.layers.SpectralNorm` layer this is ``sigma(W) / sigma_hat``, the
    exact spectral norm of its normalized weight (about 1 once the power iteration has
    converged); for a plain ``nn.Conv*`` / ``nn.Linear`` layer it is ``sigma(W)``. Conv weights
    are reshaped to ``(out_channels, in_channels * kh * kw)`` as in the paper.

    Args:
        module: a network, e.g. :class:`gentorch.models.SNGANDiscriminator`.

    Returns:
        ``{layer name: sigma}`` in the order of ``module.named_modules()``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from gentorch.training import layer_spectral_norms
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
        >>> with torch.no_grad():
        ...     _ = net[0].weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 1.0]]))
        ...     _ = net[2].weight.copy_(torch.tensor([[3.0, 4.0]]))
        >>> {name: round(sigma, 4) for name, sigma in layer_spectral_norms(net).items()}
        {'0': 3.0, '2': 5.0}
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
    out: dict[str, float] = {}
    wrapped: list[str] = []
    for name, layer in module.named_modules():
        if any(name.startswith(prefix + ".") for prefix in wrapped):
            continue  # the layer inside a SpectralNorm wrapper
        if isinstance(layer, SpectralNorm):
            wrapped.append(name)
            out[name] = float(layer.exact_sigma()) / float(layer.sigma)
        elif isinstance(layer, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear):
            out[name] = _weight_sigma(layer.weight)
    return out


def _seed(name: str, value: object) -> int:
    # torch's generators take seeds in [-2**63, 2**64)
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**64:
        raise ValueError(f"{name}: expected an integer seed, got {value!r}")
    return value


class GANTask:
    """Train a generator and a discriminator with :func:`gentorch.training.fit`.

    Each :meth:`train_step` updates the discriminator once on ``batch`` against as many
    generated images; every ``n_dis``-th step also updates the generator on a fresh batch of
    latent codes and then the EMA generator ``w_ema <- d w_ema + (1 - d) w`` with
    ``d = min(ema_decay, (1 + t) / (10 + t))`` at generator step ``t`` (a short warm-up so that
    early samples are not dominated by the random initialization). BatchNorm running statistics
    are copied, not averaged.

    Args:
        generator: maps ``(B, latent_dim)`` codes to ``(B, C, H, W)`` images in ``[0, 1]``; it
            must have ``latent_dim``, ``out_channels`` and ``image_size`` attributes (as
            :class:`gentorch.models.SNGANGenerator`).
        discriminator: maps ``(B, C, H, W)`` images to ``(B,)`` scores.
        setting: the paper's Adam setting, ``"A"`` ... ``"F"`` (:data:`ADAM_SETTINGS`).
        loss: ``"hinge"`` (default), ``"bce"`` (non-saturating) or ``"wgan-gp"``.
        lr, beta1, beta2, n_dis: override the setting's values.
        gp_weight: weight of the gradient penalty (``loss="wgan-gp"`` only).
        ema_decay: decay of the generator EMA, in ``[0, 1)``.
        n_fixed: number of fixed latent codes for comparable sample grids.
        fixed_seed: seed of the fixed latent codes and of the validation samples.
        sigma_every: record :func:`layer_spectral_norms` of the discriminator every this many
            generator steps (and at the first), into :attr:`sigma_history`; 0 disables it.
        val_samples: generated images compared with the validation data in :meth:`validate`.
        evaluator: optional ``evaluator(fake_images) -> {name: value}`` called in
            :meth:`validate` on ``val_samples`` EMA samples (e.g. FLD and IS from
            :mod:`gentorch.evaluation.gan_metrics`); its numbers join the validation metrics.

    Shapes:
        ``train_step(batch: (B, C*H*W) or (B, C, H, W), labels ignored)``; the flat rows of
        :func:`gentorch.data.load` are viewed as ``(B, C, H, W)`` images.

    Raises:
        TypeError: ``generator`` is not a module with ``latent_dim``, ``discriminator`` is
            not a module, a hyper-parameter is not a number, or ``evaluator`` is not callable.
        ValueError: an unknown ``setting`` or ``loss``, or a hyper-parameter (or one of the
            generator's ``latent_dim``, ``out_channels``, ``image_size``) out of its range.
            :meth:`train_step` raises ``TypeError`` for integer images and (on the first batch)
            ``ValueError`` for images outside [0, 1]; :meth:`validate` checks its data alike.

    Example:
        >>> import torch
        >>> from gentorch.models import SNGANDiscriminator, SNGANGenerator
        >>> from gentorch.training import GANTask, TrainConfig, fit
        >>> task = GANTask(SNGANGenerator(width=4), SNGANDiscriminator(width=4), n_fixed=8)
        >>> config = TrainConfig(epochs=1, batch_size=16, progress=False)
        >>> history = fit(task, torch.rand(32, 784), config=config)  # 2 steps on (32, 784)
        >>> task.d_steps, task.g_steps, task.fixed_samples().shape
        (2, 2, torch.Size([8, 1, 28, 28]))
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        *,
        setting: str = "C",
        loss: str = "hinge",
        lr: float | None = None,
        beta1: float | None = None,
        beta2: float | None = None,
        n_dis: int | None = None,
        gp_weight: float = 10.0,
        ema_decay: float = 0.999,
        n_fixed: int = 64,
        fixed_seed: int = 0,
        sigma_every: int = 100,
        val_samples: int = 1000,
        evaluator: Callable[[Tensor], dict[str, float]] | None = None,
    ) -> None:
        if not isinstance(generator, nn.Module) or not hasattr(generator, "latent_dim"):
            raise TypeError(
                f"generator: expected an nn.Module with a latent_dim attribute, got "
                f"{type(generator).__name__}"
            )
        if not isinstance(discriminator, nn.Module):
            raise TypeError(
                f"discriminator: expected an nn.Module, got {type(discriminator).__name__}"
            )
        if setting not in ADAM_SETTINGS:
            raise ValueError(f"setting: expected one of {tuple(ADAM_SETTINGS)}, got {setting!r}")
        if loss not in GAN_LOSSES:
            raise ValueError(f"loss: expected one of {GAN_LOSSES}, got {loss!r}")
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay: expected a float in [0, 1), got {ema_decay!r}")
        for name, value in (("lr", lr), ("beta1", beta1), ("beta2", beta2)):
            if value is not None:
                check_real(name, value)
        if not check_real("gp_weight", gp_weight) >= 0:
            raise ValueError(f"gp_weight: expected a float >= 0, got {gp_weight!r}")
        _seed("fixed_seed", fixed_seed)
        if evaluator is not None and not callable(evaluator):
            raise TypeError(
                f"evaluator: expected a callable (fake_images) -> dict or None, got "
                f"{type(evaluator).__name__}"
            )
        if isinstance(sigma_every, bool) or not isinstance(sigma_every, int) or sigma_every < 0:
            raise ValueError(f"sigma_every: expected an int >= 0, got {sigma_every!r}")
        base = ADAM_SETTINGS[setting]
        self.adam = AdamSetting(
            lr=float(base.lr if lr is None else lr),
            beta1=float(base.beta1 if beta1 is None else beta1),
            beta2=float(base.beta2 if beta2 is None else beta2),
            n_dis=check_positive_int("n_dis", base.n_dis if n_dis is None else n_dis),
        )
        if not self.adam.lr > 0:
            raise ValueError(f"lr: expected a positive learning rate, got {lr!r}")
        for name, beta in (("beta1", self.adam.beta1), ("beta2", self.adam.beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name}: expected a float in [0, 1), got {beta!r}")
        self.generator = generator
        self.discriminator = discriminator
        self.generator_ema = copy.deepcopy(generator).eval().requires_grad_(False)
        self.setting, self.loss = setting, loss
        self.gp_weight, self.ema_decay = float(gp_weight), float(ema_decay)
        self.latent_dim = check_positive_int("generator.latent_dim", generator.latent_dim)
        self.image_shape = (
            check_positive_int("generator.out_channels", generator.out_channels),
            check_positive_int("generator.image_size", generator.image_size),
            check_positive_int("generator.image_size", generator.image_size),
        )
        self.n_fixed, self.fixed_seed = check_positive_int("n_fixed", n_fixed), int(fixed_seed)
        self.sigma_every = sigma_every
        self.val_samples = check_positive_int("val_samples", val_samples)
        self.evaluator = evaluator
        betas = (self.adam.beta1, self.adam.beta2)
        self.opt_g = make_adam(list(generator.parameters()), lr=self.adam.lr, betas=betas)
        self.opt_d = make_adam(list(discriminator.parameters()), lr=self.adam.lr, betas=betas)
        self.fixed_noise = torch.randn(
            self.n_fixed, self.latent_dim, generator=torch.Generator().manual_seed(self.fixed_seed)
        )
        self.d_steps = 0
        self.g_steps = 0
        self._range_checked = False
        self.last_g_loss = 0.0
        self._last_g_loss: Tensor | None = None
        #: ``[{"g_step": t, "<layer>": sigma, ...}, ...]`` recorded every ``sigma_every`` G steps.
        self.sigma_history: list[dict[str, float]] = []

    # -- the engine's interface -------------------------------------------------------------

    def modules(self) -> dict[str, nn.Module]:
        """``{"generator", "discriminator", "generator_ema"}``."""
        return {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "generator_ema": self.generator_ema,
        }

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """``{"generator": Adam, "discriminator": Adam}``."""
        return {"generator": self.opt_g, "discriminator": self.opt_d}

    def _as_images(self, batch: Tensor, name: str = "batch") -> Tensor:
        c, h, w = self.image_shape
        if not isinstance(batch, Tensor):
            raise TypeError(f"{name}: expected a Tensor of images, got {type(batch).__name__}")
        if not batch.is_floating_point():
            raise TypeError(
                f"{name}: expected floating-point images in [0, 1], got dtype {batch.dtype} "
                f"(convert and scale them, e.g. x.float() / 255)"
            )
        if batch.dim() == 2 and batch.shape[1] == c * h * w:
            return batch.view(-1, c, h, w)
        if batch.dim() == 4 and tuple(batch.shape[1:]) == self.image_shape:
            return batch
        raise ValueError(
            f"{name}: expected shape (B, {c * h * w}) or (B, {c}, {h}, {w}) to match the "
            f"generator's images, got {tuple(batch.shape)}"
        )

    @staticmethod
    def _check_range(images: Tensor, name: str) -> None:
        """Real images must be on the generator's [0, 1] scale (one device sync)."""
        low, high = (float(v) for v in torch.aminmax(images.detach()))
        # NaN passes here: fit reports it as TrainingDiverged at the first step.
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"{name}: expected images in [0, 1] like the generator's, got range "
                f"[{low:.4g}, {high:.4g}]; rescale them first (e.g. x / 255)"
            )

    def _codes(self, n: int, like: Tensor) -> Tensor:
        return torch.randn(n, self.latent_dim, device=like.device, dtype=like.dtype)

    def train_step(self, batch: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        """One discriminator update on ``batch`` (and a generator update every ``n_dis`` calls).

        Returns detached 0-d tensors: ``d_loss`` (without the penalty), ``g_loss`` (of the most
        recent generator update), ``d_real`` and ``d_fake`` (mean scores), and ``gp`` for
        ``loss="wgan-gp"``. ``labels`` are ignored (unconditional GAN).
        """
        real = self._as_images(batch)
        if not self._range_checked:
            # once per task, on the first batch: one device sync, not one per step
            self._check_range(real, "batch")
            self._range_checked = True
        n = real.shape[0]
        with torch.no_grad():
            fake = self.generator(self._codes(n, real))
        d_real, d_fake = self.discriminator(real), self.discriminator(fake)
        d_loss = discriminator_loss(self.loss, d_real, d_fake)
        total = d_loss
        metrics: dict[str, Tensor] = {}
        if self.loss == "wgan-gp":
            gp = gradient_penalty(self.discriminator, real, fake)
            total = d_loss + self.gp_weight * gp
            metrics["gp"] = gp.detach()
        self.opt_d.zero_grad(set_to_none=True)
        total.backward()
        self.opt_d.step()
        self.d_steps += 1

        if (self.d_steps - 1) % self.adam.n_dis == 0:
            self._generator_step(n, real)
        if self._last_g_loss is None:  # resumed between generator steps
            self._last_g_loss = torch.tensor(self.last_g_loss, device=real.device)
        metrics |= {
            "d_loss": d_loss.detach(),
            "g_loss": self._last_g_loss,
            "d_real": d_real.detach().mean(),
            "d_fake": d_fake.detach().mean(),
        }
        return metrics

    def _generator_step(self, n: int, like: Tensor) -> None:
        # The discriminator's parameters need no gradient here (its SpectralNorm power
        # iteration still runs, as in any training-mode forward).
        self.discriminator.requires_grad_(False)
        try:
            g_loss = generator_loss(
                self.loss, self.discriminator(self.generator(self._codes(n, like)))
            )
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt_g.step()
        finally:
            self.discriminator.requires_grad_(True)
        self._last_g_loss = g_loss.detach()
        self.g_steps += 1
        self._update_ema()
        if self.sigma_every and (self.g_steps - 1) % self.sigma_every == 0:
            self.record_spectral_norms()

    @torch.no_grad()
    def _update_ema(self) -> None:
        t = self.g_steps - 1
        decay = min(self.ema_decay, (1.0 + t) / (10.0 + t))
        ema = dict(self.generator_ema.named_parameters())
        for name, param in self.generator.named_parameters():
            # w_ema <- decay * w_ema + (1 - decay) * w
            ema[name].lerp_(param.detach(), 1.0 - decay)
        ema_buffers = dict(self.generator_ema.named_buffers())
        for name, buffer in self.generator.named_buffers():
            ema_buffers[name].copy_(buffer)

    def record_spectral_norms(self) -> dict[str, float]:
        """Append ``{"g_step": t, **layer_spectral_norms(discriminator)}`` to the history."""
        row = {"g_step": float(self.g_steps), **layer_spectral_norms(self.discriminator)}
        self.sigma_history.append(row)
        return row

    @torch.no_grad()
    def validate(self, data: Tensor, labels: Tensor | None = None) -> dict[str, float]:
        """Discriminator scores and loss on ``data`` against ``val_samples`` EMA samples.

        Returns ``d_real``, ``d_fake`` (mean scores), ``d_loss`` (the training loss without a
        penalty) and whatever :attr:`evaluator` returns for the samples. The samples are drawn
        with a generator seeded by ``fixed_seed``, so they are the same codes every epoch.
        """
        real = self._as_images(data, "data")
        if real.shape[0] == 0:
            raise ValueError(f"data: expected at least one image, got shape {tuple(data.shape)}")
        self._check_range(real, "data")
        fake = self.sample(self.val_samples, seed=self.fixed_seed + 1, device=real.device)
        d_real = torch.cat([self.discriminator(x) for x in real.split(500)])
        d_fake = torch.cat([self.discriminator(x) for x in fake.split(500)])
        out = {
            "d_real": float(d_real.mean()),
            "d_fake": float(d_fake.mean()),
            "d_loss": float(discriminator_loss(self.loss, d_real, d_fake)),
        }
        if self.evaluator is not None:
            out |= {k: float(v) for k, v in self.evaluator(fake).items()}
        return out

    def config(self) -> dict[str, Any]:
        """Settings that rebuild this task: both networks' classes and ``config()``, the loss,
        the Adam setting (with overrides applied) and the EMA/fixed-noise settings."""
        g_config = getattr(self.generator, "config", None)
        d_config = getattr(self.discriminator, "config", None)
        return {
            "generator_class": type(self.generator).__name__,
            "generator": g_config() if callable(g_config) else None,
            "discriminator_class": type(self.discriminator).__name__,
            "discriminator": d_config() if callable(d_config) else None,
            "setting": self.setting,
            "loss": self.loss,
            **asdict(self.adam),
            "gp_weight": self.gp_weight,
            "ema_decay": self.ema_decay,
            "n_fixed": self.n_fixed,
            "fixed_seed": self.fixed_seed,
            "sigma_every": self.sigma_every,
        }

    def state_dict(self) -> dict[str, Any]:
        """Step counters, the last generator loss, the fixed codes and the sigma history."""
        last = self.last_g_loss if self._last_g_loss is None else float(self._last_g_loss)
        return {
            "d_steps": self.d_steps,
            "g_steps": self.g_steps,
            "last_g_loss": last,
            "fixed_noise": self.fixed_noise,
            "sigma_history": [dict(r) for r in self.sigma_history],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        keys = ("d_steps", "g_steps", "last_g_loss", "fixed_noise", "sigma_history")
        missing = [k for k in keys if not isinstance(state, dict) or k not in state]
        if missing:
            raise ValueError(f"state: expected the keys {list(keys)}, missing {missing}")
        self.d_steps = int(state["d_steps"])
        self.g_steps = int(state["g_steps"])
        self.last_g_loss = float(state["last_g_loss"])
        self._last_g_loss = None
        self.fixed_noise = state["fixed_noise"].detach().cpu().clone()
        self.sigma_history = [dict(r) for r in state["sigma_history"]]

    # -- sampling ----------------------------------------------------------------------------

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        seed: int | None = None,
        ema: bool = True,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """``n`` images ``(n, C, H, W)`` from the EMA (or raw) generator, in eval mode.

        Args:
            n: number of images.
            seed: seeds the latent codes (a private generator; the global stream is untouched).
            ema: use the EMA generator (default) or the trained one.
            device: where to sample (default: the generator's device).
        """
        check_positive_int("n", n)
        if seed is not None:
            _seed("seed", seed)
        net = self.generator_ema if ema else self.generator
        param = next(net.parameters())
        dev = as_device(device) if device is not None else param.device
        gen = torch.Generator(device=dev)
        gen.manual_seed(seed) if seed is not None else gen.seed()
        z = torch.randn(n, self.latent_dim, device=dev, dtype=param.dtype, generator=gen)
        return self._eval_forward(net, z)

    @torch.no_grad()
    def fixed_samples(self, *, ema: bool = True) -> Tensor:
        """Images ``(n_fixed, C, H, W)`` of the fixed latent codes: comparable across epochs."""
        net = self.generator_ema if ema else self.generator
        param = next(net.parameters())
        return self._eval_forward(net, self.fixed_noise.to(param.device, param.dtype))

    @staticmethod
    def _eval_forward(net: nn.Module, z: Tensor) -> Tensor:
        was_training = net.training
        net.eval()
        try:
            images = torch.cat([net(chunk) for chunk in z.split(500)])
        finally:
            net.train(was_training)
        return images
