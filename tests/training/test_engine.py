"""The training engine: histories, exact resume, divergence, validation and callbacks."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from gentorch.models import VAE
from gentorch.training import (
    CHECKPOINT_NAME,
    History,
    StatefulTask,
    TrainConfig,
    TrainingDiverged,
    VAETask,
    fit,
    make_adam,
    read_checkpoint_metadata,
)


class _Regression:
    """Least squares with a noisy linear model: a minimal task with RNG use in every step."""

    def __init__(self, nan_at_step: int | None = None) -> None:
        self.net = nn.Linear(4, 1)
        self.opt = make_adam(list(self.net.parameters()), lr=0.05)
        self.calls = 0
        self.nan_at_step = nan_at_step

    def modules(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": self.opt}

    def train_step(self, batch: Tensor, labels: Tensor | None) -> dict[str, Tensor]:
        self.calls += 1
        target = batch.sum(-1, keepdim=True)
        # noise on the prediction: the step draws from torch's global generator
        loss = (self.net(batch) + 0.01 * torch.randn_like(target) - target).square().mean()
        if self.calls == self.nan_at_step:
            loss = loss * math.nan
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach(), "call": torch.tensor(float(self.calls))}

    def validate(self, data: Tensor, labels: Tensor | None) -> dict[str, float]:
        torch.rand(10)  # validation that draws random numbers must not change training
        return {"loss": float((self.net(data) - data.sum(-1, keepdim=True)).square().mean())}

    def config(self) -> dict[str, Any]:
        return {"lr": 0.05}


def _config(tmp_path: Path | None, epochs: int, **kwargs: Any) -> TrainConfig:
    defaults: dict[str, Any] = {"batch_size": 32, "seed": 3, "progress": False, "log_every": 3}
    return TrainConfig(epochs=epochs, out_dir=tmp_path, **(defaults | kwargs))


def test_fit_learns_and_writes_history_and_checkpoint(tmp_path: Path) -> None:
    x = torch.randn(200, 4)
    task = _Regression()
    history = fit(task, x, val_data=x[:50], config=_config(tmp_path, 5))
    assert len(history) == 5
    assert history["epoch"] == [1, 2, 3, 4, 5]
    assert history["step"] == [7, 14, 21, 28, 35]  # ceil(200 / 32) = 7 steps per epoch
    assert history["val_loss"][-1] < 0.1 * history["val_loss"][0]
    # epoch means of the per-step metric "call" (1..7, 8..14, ...), with log_every=3 not
    # dividing 7 steps: every step counted once
    assert history["train_call"] == pytest.approx([4, 11, 18, 25, 32])

    assert (tmp_path / CHECKPOINT_NAME).is_file()
    meta = read_checkpoint_metadata(tmp_path)
    assert (meta["epoch"], meta["step"], meta["task"]) == (5, 35, "_Regression")
    assert meta["history"] == history.rows
    assert meta["train_config"]["batch_size"] == 32
    assert History.load(tmp_path / "history.json").rows == history.rows
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines[0].split(",")[:4] == ["epoch", "step", "train_seconds", "val_seconds"]
    assert lines[1].split(",")[:2] == ["1", "7"]  # counts written as integers, not 1.0, 7.0
    assert len(lines) == 6


def _vae_run(
    out: Path | None, epochs: int, resume: Path | None = None, input_noise: float = 0.0
) -> tuple[History, VAE]:
    torch.manual_seed(0)
    model = VAE(16, [12], 2)
    task = VAETask(model, lr=3e-3, kl_warmup_steps=10, input_noise=input_noise)
    gen = torch.Generator().manual_seed(1)
    data = torch.rand(150, 16, generator=gen).round()
    history = fit(
        task,
        data,
        val_data=data[:40],
        config=_config(out, epochs, log_every=2),
        resume_from=resume,
    )
    return history, model


@pytest.mark.parametrize("input_noise", [0.0, 0.3])
def test_resume_continues_exactly(tmp_path: Path, input_noise: float) -> None:
    # input_noise > 0 also draws the encoder's noise from the global generator every step
    straight, model = _vae_run(tmp_path / "straight", 4, input_noise=input_noise)
    first, _ = _vae_run(tmp_path / "resumed", 2, input_noise=input_noise)
    second, resumed_model = _vae_run(
        tmp_path / "resumed", 4, resume=tmp_path / "resumed", input_noise=input_noise
    )
    assert len(first) == 2
    assert len(second) == 4
    for column in ("train_loss", "train_kl", "val_loss", "step"):
        # same seed, same batches, same RNG draws, same optimizer state: bitwise equal
        assert second[column] == straight[column], column
    for a, b in zip(model.parameters(), resumed_model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert read_checkpoint_metadata(tmp_path / "resumed")["epoch"] == 4


def test_resume_refuses_another_input_noise(tmp_path: Path) -> None:
    _vae_run(tmp_path / "noisy", 1, input_noise=0.3)
    _vae_run(tmp_path / "clean", 1)
    with pytest.raises(ValueError, match=r"task input_noise: checkpoint 0\.3, now 0\.2"):
        _vae_run(None, 2, resume=tmp_path / "noisy", input_noise=0.2)
    with pytest.raises(ValueError, match=r"task input_noise: checkpoint 0\.3, now None"):
        _vae_run(None, 2, resume=tmp_path / "noisy")
    with pytest.raises(ValueError, match=r"task input_noise: checkpoint None, now 0\.3"):
        _vae_run(None, 2, resume=tmp_path / "clean", input_noise=0.3)


def test_resume_refuses_different_settings(tmp_path: Path) -> None:
    x = torch.randn(64, 4)
    fit(_Regression(), x, config=_config(tmp_path, 1))
    with pytest.raises(ValueError, match="batch_size: checkpoint 32, now 16"):
        fit(_Regression(), x, config=_config(None, 2, batch_size=16), resume_from=tmp_path)
    with pytest.raises(ValueError, match=r"checkpoint is at epoch 1, config\.epochs=1"):
        fit(_Regression(), x, config=_config(None, 1), resume_from=tmp_path)
    other = _Regression()
    other.config = lambda: {"lr": 0.1}  # type: ignore[method-assign]
    with pytest.raises(ValueError, match=r"task lr: checkpoint 0\.05, now 0\.1"):
        fit(other, x, config=_config(None, 2), resume_from=tmp_path)


def test_validation_and_callbacks_do_not_change_training() -> None:
    x = torch.randn(100, 4)
    torch.manual_seed(0)  # same initial weights for both runs
    plain = fit(_Regression(), x, config=_config(None, 3))
    seen: list[int] = []

    def callback(epoch: int, history: History) -> None:
        seen.append(epoch)
        assert len(history) == epoch
        torch.randn(100)  # e.g. drawing a sample grid

    torch.manual_seed(0)
    busy = fit(_Regression(), x, val_data=x, config=_config(None, 3), on_epoch_end=callback)
    assert seen == [1, 2, 3]
    assert busy["train_loss"] == plain["train_loss"]


def test_callback_can_stop_training(tmp_path: Path) -> None:
    def stop_after_two(epoch: int, history: History) -> bool:
        return epoch == 2

    # checkpoints every 5 epochs, but the epoch where training stops is always saved
    config = _config(tmp_path, 10, checkpoint_every=5)
    history = fit(_Regression(), torch.randn(64, 4), config=config, on_epoch_end=stop_after_two)
    assert len(history) == 2
    assert read_checkpoint_metadata(tmp_path)["epoch"] == 2


def test_nan_stops_training_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    x = torch.randn(100, 4)  # 4 steps per epoch at batch 32
    task = _Regression(nan_at_step=10)  # epoch 3, step 10
    with pytest.raises(TrainingDiverged, match="epoch 3, step 10: loss = nan") as info:
        fit(task, x, config=_config(tmp_path, 5))
    assert (info.value.epoch, info.value.step, info.value.metric) == (3, 10, "loss")
    meta = read_checkpoint_metadata(tmp_path)
    assert meta["epoch"] == 2
    assert json.loads((tmp_path / "history.json").read_text())[-1]["epoch"] == 2
    # the checkpoint still holds finite weights, and training can resume from it
    resumed = _Regression()
    history = fit(resumed, x, config=_config(None, 3), resume_from=tmp_path)
    assert all(torch.isfinite(p).all() for p in resumed.net.parameters())
    assert math.isfinite(history["train_loss"][-1])


def test_config_and_data_are_checked() -> None:
    with pytest.raises(ValueError, match="epochs: expected a positive integer, got 0"):
        TrainConfig(epochs=0)
    with pytest.raises(TypeError, match=r"log_every: expected a positive integer, got float 1\.5"):
        TrainConfig(epochs=1, log_every=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"train_labels: expected shape \(10,\), got \(9,\)"):
        fit(_Regression(), torch.randn(10, 4), torch.zeros(9), config=_config(None, 1))
    with pytest.raises(ValueError, match="train_data: expected a non-empty tensor"):
        fit(_Regression(), torch.randn(0, 4), config=_config(None, 1))


def test_metrics_are_fetched_once_per_window(monkeypatch: pytest.MonkeyPatch) -> None:
    import gentorch.training.engine as engine

    windows: list[int] = []
    flush = engine._flush

    def counting_flush(window: list[dict[str, Tensor]], *args: Any) -> dict[str, float]:
        windows.append(len(window))
        return flush(window, *args)

    monkeypatch.setattr(engine, "_flush", counting_flush)
    fit(_Regression(), torch.randn(200, 4), config=_config(None, 2, log_every=3))
    # 7 steps per epoch: windows of 3, 3 and the last 1, i.e. 3 device syncs instead of 7
    assert windows == [3, 3, 1, 3, 3, 1]


def test_history_columns_and_csv() -> None:
    h = History([{"epoch": 1, "a": 2.0}, {"epoch": 2, "b": 3.0}])
    assert h.columns == ["epoch", "a", "b"]
    assert h["b"][1] == 3.0
    assert math.isnan(h["b"][0])
    assert h.to_csv().splitlines() == ["epoch,a,b", "1,2.0,", "2,,3.0"]
    with pytest.raises(KeyError, match="column 'c' not in the history"):
        h["c"]


def test_vae_task_is_stateful() -> None:
    task = VAETask(VAE(8, [4], 2))
    assert isinstance(task, StatefulTask)
    assert not isinstance(_Regression(), StatefulTask)


def test_tensorboard_without_the_package_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a None entry in sys.modules makes `import torch.utils.tensorboard` raise ImportError
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(
        ImportError, match="needs the `tensorboard` package, which is not installed"
    ):
        fit(_Regression(), torch.randn(8, 4), config=_config(tmp_path, 1, tensorboard=True))


def test_tensorboard_logs_the_history_values(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    x = torch.randn(128, 4)  # 4 steps per epoch
    history = fit(_Regression(), x, val_data=x[:16], config=_config(tmp_path, 2, tensorboard=True))
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    # per epoch: every train_/val_ column of the history, at its epoch number
    for key in ("train_loss", "val_loss", "train_call"):
        logged = events.Scalars(f"epoch/{key}")
        assert [e.step for e in logged] == [1, 2]
        assert [e.value for e in logged] == pytest.approx(history[key], rel=1e-6)
    # per full log window of log_every=3 steps (steps 1-3 and 5-7; a window ends with its
    # epoch): the window mean of each training metric, "call" counting steps 1, 2, 3, ...
    assert [e.step for e in events.Scalars("step/train_call")] == [3, 7]
    assert [e.value for e in events.Scalars("step/train_call")] == pytest.approx([2.0, 6.0])
    assert [e.step for e in events.Scalars("step/train_loss")] == [3, 7]
    assert "epoch/train_seconds" not in tags
    assert "epoch/epoch" not in tags
