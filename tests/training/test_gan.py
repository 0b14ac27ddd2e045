"""GANTask: the n_dis schedule, Adam settings, EMA, fixed noise, spectral norms, engine runs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import cast

import pytest
import torch
from torch import Tensor, nn

from gentorch.layers import SpectralNorm
from gentorch.models import SNGANDiscriminator, SNGANGenerator
from gentorch.training import TrainConfig, TrainingDiverged, fit, load_checkpoint
from gentorch.training.gan import ADAM_SETTINGS, GANTask, layer_spectral_norms


def _task(**kwargs: object) -> GANTask:
    sn = bool(kwargs.pop("sn", False))
    torch.manual_seed(0)  # the same initial weights for every task built here
    g = SNGANGenerator(latent_dim=8, image_size=28, width=2)
    d = SNGANDiscriminator(image_size=28, width=2, spectral_norm=sn)
    return GANTask(g, d, **kwargs)  # type: ignore[arg-type]


def _params(module: nn.Module) -> list[Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _same(a: list[Tensor], b: list[Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_adam_settings_are_the_papers() -> None:
    # Miyato et al. 2018, Table 1 (as listed in the issue)
    expected = {
        "A": (1e-4, 0.5, 0.9, 5),
        "B": (1e-4, 0.5, 0.999, 1),
        "C": (2e-4, 0.5, 0.999, 1),
        "D": (1e-3, 0.5, 0.9, 5),
        "E": (1e-3, 0.5, 0.999, 5),
        "F": (1e-3, 0.9, 0.999, 5),
    }
    got = {k: (s.lr, s.beta1, s.beta2, s.n_dis) for k, s in ADAM_SETTINGS.items()}
    assert got == expected
    task = _task(setting="F")
    for opt in task.optimizers().values():
        group = opt.param_groups[0]
        assert group["lr"] == 1e-3
        assert group["betas"] == (0.9, 0.999)
    assert task.adam.n_dis == 5
    overridden = _task(setting="F", lr=5e-4, n_dis=2)
    assert overridden.adam.lr == 5e-4
    assert overridden.adam.n_dis == 2
    assert overridden.adam.beta1 == 0.9


def test_n_dis_schedule_updates_generator_every_n_dis_steps() -> None:
    task = _task(setting="C", n_dis=3, sigma_every=0)
    x = torch.rand(6, 784)
    g_updated = []
    for _ in range(7):
        before_g, before_d = _params(task.generator), _params(task.discriminator)
        metrics = task.train_step(x)
        g_updated.append(not _same(before_g, _params(task.generator)))
        assert not _same(before_d, _params(task.discriminator))  # D moves every step
        assert set(metrics) == {"d_loss", "g_loss", "d_real", "d_fake"}
    # the 1st, 4th and 7th calls update the generator: n_dis = 3 D steps per G step
    assert g_updated == [True, False, False, True, False, False, True]
    assert (task.d_steps, task.g_steps) == (7, 3)
    assert int(task.opt_g.state_dict()["state"][0]["step"]) == 3
    assert int(task.opt_d.state_dict()["state"][0]["step"]) == 7


def test_ema_follows_the_formula() -> None:
    task = _task(ema_decay=0.5, sigma_every=0)
    ema0 = _params(task.generator_ema)
    task.train_step(torch.rand(4, 784))
    w1 = _params(task.generator)
    # first G step t = 0: decay = min(0.5, 1/10) = 0.1, so w_ema = 0.1 w_ema0 + 0.9 w1
    for e, e0, w in zip(_params(task.generator_ema), ema0, w1, strict=True):
        torch.testing.assert_close(e, 0.1 * e0 + 0.9 * w)
    # BatchNorm statistics are copied, not averaged
    for (name, b), (_, b_ema) in zip(
        task.generator.named_buffers(), task.generator_ema.named_buffers(), strict=True
    ):
        assert torch.equal(b, b_ema), name
    for _ in range(20):
        task.train_step(torch.rand(4, 784))
    # after t >= 10 steps the decay is capped at ema_decay: check the last step exactly
    ema_before = _params(task.generator_ema)
    task.train_step(torch.rand(4, 784))
    w2 = _params(task.generator)
    for e, e0, wi in zip(_params(task.generator_ema), ema_before, w2, strict=True):
        torch.testing.assert_close(e, 0.5 * e0 + 0.5 * wi)


def test_fixed_samples_are_fixed_and_sampling_leaves_global_rng() -> None:
    task = _task(n_fixed=5, fixed_seed=3)
    a = task.fixed_samples()
    state = torch.get_rng_state()
    b = task.sample(4, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert a.shape == (5, 1, 28, 28)
    assert b.shape == (4, 1, 28, 28)
    torch.testing.assert_close(task.fixed_samples(), a)
    torch.testing.assert_close(task.sample(4, seed=1), b)
    # the same codes come from the seed, whatever the task
    other = _task(n_fixed=5, fixed_seed=3)
    assert torch.equal(other.fixed_noise, task.fixed_noise)
    assert task.generator_ema.training is False


def test_layer_spectral_norms_against_svd() -> None:
    plain = SNGANDiscriminator(image_size=28, width=2, spectral_norm=False)
    norms = layer_spectral_norms(plain)
    assert list(norms) == list(SNGANDiscriminator.LAYER_NAMES)
    for name, value in norms.items():
        w = getattr(plain, name).weight.detach().double()
        # computed in float32 (the weights' dtype): 1e-5 is float32 SVD rounding
        assert value == pytest.approx(float(torch.linalg.svdvals(w.flatten(1))[0]), rel=1e-5)
    sn = SNGANDiscriminator(image_size=28, width=2, spectral_norm=True)
    norms = layer_spectral_norms(sn)
    assert list(norms) == list(SNGANDiscriminator.LAYER_NAMES)  # wrapped layers not repeated
    for name, value in norms.items():
        layer = getattr(sn, name)
        assert isinstance(layer, SpectralNorm)
        w = layer.normalized_weight().detach().double().flatten(1)
        assert value == pytest.approx(float(torch.linalg.svdvals(w)[0]), rel=1e-4)


def test_sigma_history_records_every_k_generator_steps() -> None:
    task = _task(sigma_every=2, setting="C", sn=True)
    for _ in range(5):
        task.train_step(torch.rand(4, 784))
    # G steps 1..5 with sigma_every=2: recorded after steps 1, 3, 5
    assert [r["g_step"] for r in task.sigma_history] == [1.0, 3.0, 5.0]
    for row in task.sigma_history:
        # SN layers stay near 1 after a few Adam steps (one power iteration per forward);
        # 5% is loose enough for lr 2e-4 moving the weight between iterations
        assert all(abs(row[n] - 1.0) < 0.05 for n in SNGANDiscriminator.LAYER_NAMES)


@pytest.mark.parametrize("loss", ["hinge", "bce", "wgan-gp"])
def test_losses_run_and_report(loss: str) -> None:
    task = _task(loss=loss, sigma_every=0, sn=True)  # double backward through SN
    metrics = task.train_step(torch.rand(4, 1, 28, 28))
    assert ("gp" in metrics) == (loss == "wgan-gp")
    for name, value in metrics.items():
        assert value.dim() == 0, name
        assert not value.requires_grad, name
        assert math.isfinite(float(value)), name


def test_validate_calls_the_evaluator_on_ema_samples() -> None:
    seen: list[Tensor] = []

    def evaluator(images: Tensor) -> dict[str, float]:
        seen.append(images)
        return {"mean_pixel": float(images.mean())}

    task = _task(val_samples=7, evaluator=evaluator)
    with torch.no_grad():
        out = task.validate(torch.rand(9, 784))
    assert set(out) == {"d_real", "d_fake", "d_loss", "mean_pixel"}
    assert seen[0].shape == (7, 1, 28, 28)
    assert float(seen[0].min()) >= 0.0
    assert float(seen[0].max()) <= 1.0
    with torch.no_grad():
        again = task.validate(torch.rand(9, 784))
    assert again["mean_pixel"] == out["mean_pixel"]  # the same codes every time


def test_fit_checkpoints_and_resumes_exactly(tmp_path: Path) -> None:
    data = torch.rand(48, 784)

    def config(epochs: int, out: Path) -> TrainConfig:
        return TrainConfig(epochs=epochs, batch_size=16, seed=0, out_dir=out, progress=False)

    straight = _task(setting="D", n_dis=2, sigma_every=1, sn=True)
    fit(straight, data, config=config(3, tmp_path / "a"))
    first = _task(setting="D", n_dis=2, sigma_every=1, sn=True)
    fit(first, data, config=config(2, tmp_path / "b"))
    resumed = _task(setting="D", n_dis=2, sigma_every=1, sn=True)
    history = fit(resumed, data, config=config(3, tmp_path / "b"), resume_from=tmp_path / "b")
    assert len(history) == 3
    assert (resumed.d_steps, resumed.g_steps) == (straight.d_steps, straight.g_steps) == (9, 5)
    for name, module in straight.modules().items():
        for (key, a), (_, b) in zip(
            module.state_dict().items(), resumed.modules()[name].state_dict().items(), strict=True
        ):
            assert torch.equal(a, b), f"{name}.{key}"
    assert resumed.sigma_history == straight.sigma_history
    # a checkpoint holds the EMA generator, which `sample gan` needs alone
    g = SNGANGenerator(latent_dim=8, image_size=28, width=2)
    load_checkpoint(tmp_path / "a", {"generator_ema": g})
    torch.testing.assert_close(
        g.dense.weight, cast(SNGANGenerator, straight.generator_ema).dense.weight
    )


class _NaNAfter(nn.Module):
    """A discriminator that returns NaN from its 3rd call on."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(784, 1)
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        out: Tensor = self.linear(x.flatten(1)).squeeze(1)
        return out * math.nan if self.calls >= 3 else out


def test_nan_stops_training_cleanly(tmp_path: Path) -> None:
    g = SNGANGenerator(latent_dim=8, image_size=28, width=2)
    task = GANTask(g, _NaNAfter(), sigma_every=0)
    cfg = TrainConfig(epochs=2, batch_size=8, out_dir=tmp_path, progress=False, log_every=1)
    # calls 1-2 are the first D step (finite), call 3 the first G step: its loss is NaN
    with pytest.raises(TrainingDiverged, match="epoch 1, step 1: g_loss = nan"):
        fit(task, torch.rand(32, 784), config=cfg)
    assert not (tmp_path / "checkpoint.safetensors").exists()


def test_bad_arguments_raise() -> None:
    g = SNGANGenerator(latent_dim=8, image_size=28, width=2)
    d = SNGANDiscriminator(image_size=28, width=2)
    with pytest.raises(ValueError, match="setting: expected one of"):
        GANTask(g, d, setting="G")
    with pytest.raises(ValueError, match="loss: expected one of"):
        GANTask(g, d, loss="lsgan")
    with pytest.raises(ValueError, match="ema_decay"):
        GANTask(g, d, ema_decay=1.0)
    with pytest.raises(ValueError, match="n_dis: expected a positive integer"):
        GANTask(g, d, n_dis=0)
    with pytest.raises(TypeError, match=r"generator: expected an nn\.Module with a latent_dim"):
        GANTask(nn.Linear(2, 2), d)
    task = GANTask(g, d)
    with pytest.raises(ValueError, match=r"batch: expected shape \(B, 784\)"):
        task.train_step(torch.rand(4, 3, 28, 28))
