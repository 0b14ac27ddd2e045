"""VAETask: warm-up schedule, the step it takes, validation, configuration."""

from __future__ import annotations

import json
import math
from typing import cast

import pytest
import torch
from torch import nn

from gentorch.models import VAE, ConditionalVAE
from gentorch.training import TrainConfig, VAETask, fit, make_adam


def _data(n: int = 240, d: int = 16) -> torch.Tensor:
    # Two binary prototypes with 5% of pixels flipped: structure a small VAE can learn.
    gen = torch.Generator().manual_seed(0)
    prototypes = (torch.rand(2, d, generator=gen) < 0.5).float()
    x = prototypes[torch.arange(n) % 2]
    flip = torch.rand(n, d, generator=gen) < 0.05
    return torch.where(flip, 1 - x, x)


def test_kl_warmup_is_linear_then_flat() -> None:
    task = VAETask(VAE(8, [4], 2), beta=0.5, kl_warmup_steps=4)
    assert [task.beta_at(t) for t in range(6)] == [0.0, 0.125, 0.25, 0.375, 0.5, 0.5]
    assert VAETask(VAE(8, [4], 2), beta=2.0).beta_at(0) == 2.0


def test_cosine_learning_rate_decay() -> None:
    task = VAETask(VAE(8, [4], 2), lr=0.1, lr_decay_steps=4, lr_final=0.1)
    # 0.1 * (0.1 + 0.9 * (1 + cos(pi t / 4)) / 2) for t = 0..4, then flat
    expected = [0.1, 0.0868198, 0.055, 0.0231802, 0.01, 0.01]
    assert [task.lr_at(t) for t in range(6)] == pytest.approx(expected, rel=1e-6)
    for t in range(3):
        task.train_step(torch.rand(4, 8), None)
        assert task.optimizer.param_groups[0]["lr"] == pytest.approx(expected[t])
    assert VAETask(VAE(8, [4], 2), lr=0.1).lr_at(10**6) == 0.1


def test_train_step_equals_a_hand_written_step() -> None:
    x = _data(32)
    torch.manual_seed(1)
    model = VAE(16, [8], 2)
    reference = VAE(16, [8], 2)
    reference.load_state_dict(model.state_dict())
    task = VAETask(model, lr=1e-2, beta=0.7, kl_warmup_steps=2, free_bits=0.1)
    ref_opt = torch.optim.Adam(reference.parameters(), lr=1e-2)
    for step in range(3):
        torch.manual_seed(10 + step)
        metrics = task.train_step(x, None)
        torch.manual_seed(10 + step)
        out = reference.loss(x, beta=0.7 * min(1.0, step / 2), free_bits=0.1)
        ref_opt.zero_grad()
        out["loss"].backward()
        ref_opt.step()
        assert set(metrics) == {"loss", "recon", "kl"}
        assert not metrics["loss"].requires_grad
        torch.testing.assert_close(metrics["loss"], out["loss"].detach())
    assert task.step == 3
    # fused and for-each Adam agree to rounding
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_input_noise_step_is_a_hand_written_denoising_step() -> None:
    x = _data(32)
    torch.manual_seed(1)
    model = VAE(16, [8], 2)
    reference = VAE(16, [8], 2)
    reference.load_state_dict(model.state_dict())
    task = VAETask(model, lr=1e-2, kl_warmup_steps=2, input_noise=0.3)
    ref_opt = torch.optim.Adam(reference.parameters(), lr=1e-2)
    for step in range(3):
        torch.manual_seed(10 + step)
        metrics = task.train_step(x, None)
        torch.manual_seed(10 + step)
        # the noise is drawn first, from the global generator, then the latent sample
        noisy = (x + 0.3 * torch.randn(x.shape)).clamp(0, 1)
        out = reference.loss(noisy, target=x, beta=min(1.0, step / 2))
        ref_opt.zero_grad()
        out["loss"].backward()
        ref_opt.step()
        torch.testing.assert_close(metrics["loss"], out["loss"].detach())
        torch.testing.assert_close(metrics["recon"], out["recon"].detach())
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_input_noise_changes_training_but_not_validation() -> None:
    x = _data(64)

    def task(input_noise: float) -> VAETask:
        torch.manual_seed(2)
        return VAETask(VAE(16, [8], 2), input_noise=input_noise)

    clean, noisy = task(0.0), task(0.3)
    torch.manual_seed(3)
    clean_metrics = clean.train_step(x, None)
    torch.manual_seed(3)
    noisy_metrics = noisy.train_step(x, None)
    assert not torch.allclose(clean_metrics["recon"], noisy_metrics["recon"])
    # same weights: validation is on the clean data whatever input_noise is
    noisy.model.load_state_dict(clean.model.state_dict())
    torch.manual_seed(4)
    expected = clean.validate(x, None)
    torch.manual_seed(4)
    assert noisy.validate(x, None) == expected


def test_input_noise_is_in_the_config_when_used() -> None:
    model = VAE(16, [8], 2)
    assert "input_noise" not in VAETask(model).config()  # as in checkpoints from before it
    config = json.loads(json.dumps(VAETask(model, input_noise=0.25).config()))
    assert config["input_noise"] == 0.25


def test_fit_lowers_the_validation_loss() -> None:
    x = _data()
    task = VAETask(VAE(16, [16], 2), lr=1e-2)
    history = fit(task, x, val_data=x[:64], config=TrainConfig(epochs=8, progress=False))
    # 16 Bernoulli pixels start near 16 * log 2 = 11.1 nats; two prototypes with 5% noise are
    # worth about 16 * H(0.05) + log 2 = 4.2 nats. Half-way is a loose, safe bar for 8 epochs.
    assert history["val_loss"][0] > 9.0
    assert history["val_loss"][-1] < 7.5
    assert history["val_elbo"][-1] == pytest.approx(-history["val_loss"][-1])


def test_validate_weights_batches_by_size() -> None:
    x = _data(100)
    task = VAETask(VAE(16, [8], 2), val_batch_size=30)  # batches of 30, 30, 30, 10
    with torch.no_grad():
        mu, logvar = cast(VAE, task.model).encode(x)
        # analytic KL: no sampling, so the chunked mean must equal the full-batch mean
        kl = (0.5 * (mu.square() + logvar.exp() - 1 - logvar)).sum(-1).mean()
    result = task.validate(x, None)
    assert result["kl"] == pytest.approx(float(kl), rel=1e-5)
    assert result["loss"] == pytest.approx(result["recon"] + result["kl"], rel=1e-5)


def test_conditional_vae_gets_its_labels() -> None:
    x = _data(64)
    labels = torch.arange(64) % 2
    task = VAETask(ConditionalVAE(16, [8], 2, num_classes=2))
    history = fit(
        task, x, labels, val_data=x, val_labels=labels, config=TrainConfig(2, 32, progress=False)
    )
    assert len(history) == 2
    with pytest.raises(ValueError, match="ConditionalVAE needs class labels"):
        task.train_step(x, None)


def test_config_is_json_and_rebuilds_the_model() -> None:
    model = VAE(16, [8, 4], 3, likelihood="gaussian")
    config = VAETask(model, lr=2e-3, iwae_k=5).config()
    config = json.loads(json.dumps(config))
    assert config["model_class"] == "VAE"
    assert config["iwae_k"] == 5
    assert config["lr"] == 2e-3
    rebuilt = VAE.from_config(config["model"])
    rebuilt.load_state_dict(model.state_dict())


def test_adam_is_fused_on_cpu() -> None:
    task = VAETask(VAE(8, [4], 2))
    assert task.optimizer.defaults["fused"] is True
    assert isinstance(
        make_adam([nn.Parameter(torch.zeros(2))], lr=1e-3, decoupled=True), torch.optim.AdamW
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"beta": -1.0}, "beta: expected a float >= 0, got -1.0"),
        ({"kl_warmup_steps": -5}, "kl_warmup_steps: expected an int >= 0, got -5"),
        ({"free_bits": -0.1}, "free_bits: expected a float >= 0, got -0.1"),
        ({"iwae_k": 0}, "iwae_k: expected a positive integer, got 0"),
        ({"lr": 0.0}, "lr: expected a positive learning rate, got 0.0"),
        ({"val_batch_size": 0}, "val_batch_size: expected a positive integer, got 0"),
        ({"lr_decay_steps": -1}, "lr_decay_steps: expected an int >= 0, got -1"),
        ({"lr_final": 1.5}, r"lr_final: expected a fraction in \[0, 1\], got 1.5"),
        ({"input_noise": -0.1}, "input_noise: expected a float >= 0, got -0.1"),
        ({"input_noise": math.nan}, "input_noise: expected a finite number, got nan"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VAETask(VAE(8, [4], 2), **kwargs)  # type: ignore[arg-type]


def test_model_without_loss_is_refused() -> None:
    with pytest.raises(TypeError, match="model: expected a VAE module with a loss"):
        VAETask(nn.Linear(2, 2))
