"""Bad input to gentorch.training: a clear error naming the argument and what it received."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import safetensors.torch
import torch
from torch import nn

from gentorch.models import VAE, SNGANDiscriminator, SNGANGenerator
from gentorch.training import (
    CheckpointMismatchError,
    GANTask,
    History,
    TrainConfig,
    VAETask,
    fit,
    layer_spectral_norms,
    load_checkpoint,
    make_adam,
    save_checkpoint,
    write_atomic,
)


def _config(**kwargs: Any) -> TrainConfig:
    return TrainConfig(**({"epochs": 1, "batch_size": 16, "progress": False} | kwargs))


def _vae_task() -> VAETask:
    return VAETask(VAE(64, [16], 2))


def _gan_task(**kwargs: Any) -> GANTask:
    return GANTask(SNGANGenerator(width=4), SNGANDiscriminator(width=4), n_fixed=4, **kwargs)


# -- TrainConfig and fit --------------------------------------------------------------------


def test_train_config_settings() -> None:
    with pytest.raises(
        ValueError, match=r"seed: expected an integer in \[-2\*\*63, 2\*\*64\), got 2361"
    ):
        _config(seed=2**71)
    with pytest.raises(ValueError, match=r"binarize: expected None or 'dynamic', got 'threshold'"):
        _config(binarize="threshold")
    with pytest.raises(ValueError, match=r"device: expected a device such as .* got 'gpu'"):
        _config(device="gpu")
    with pytest.raises(TypeError, match=r"device: expected a string .* got list"):
        _config(device=["cuda"])
    for flag in ("progress", "drop_last", "tensorboard"):
        with pytest.raises(TypeError, match=rf"{flag}: expected True or False, got 'no'"):
            _config(**{flag: "no"})
    with pytest.raises(TypeError, match=r"out_dir: expected a folder path .* got int"):
        _config(out_dir=5)


def test_fit_needs_a_task_not_a_model() -> None:
    x = torch.rand(32, 64)
    with pytest.raises(TypeError, match=r"task: expected a TrainingTask .* got the module VAE"):
        fit(VAE(64, [16], 2), x, config=_config())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"task: .* got object, which lacks modules"):
        fit(object(), x, config=_config())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"config: expected a TrainConfig, got dict"):
        fit(_vae_task(), x, config={"epochs": 1})  # type: ignore[arg-type]


def test_fit_labels_and_validation_data() -> None:
    x = torch.rand(32, 64)
    with pytest.raises(
        TypeError, match=r"train_labels: expected integer class labels, got dtype torch.float32"
    ):
        fit(_vae_task(), x, torch.rand(32), config=_config())
    with pytest.raises(
        ValueError, match=r"val_data: expected examples like train_data's .* got shape \(8, 784\)"
    ):
        fit(_vae_task(), x, val_data=torch.rand(8, 784), config=_config())
    with pytest.raises(ValueError, match=r"val_labels: given without val_data"):
        fit(_vae_task(), x, val_labels=torch.arange(32), config=_config())


def test_fit_drop_last_with_a_batch_larger_than_the_data_would_not_train() -> None:
    task = _vae_task()
    with pytest.raises(ValueError, match=r"config.batch_size: 128 is larger than the 32 examples"):
        fit(task, torch.rand(32, 64), config=_config(batch_size=128, drop_last=True))
    assert task.step == 0


def test_fit_callback_and_out_dir_are_checked_before_training(tmp_path: Path) -> None:
    task, x = _vae_task(), torch.rand(32, 64)
    with pytest.raises(TypeError, match=r"on_epoch_end: expected a callable .* got int"):
        fit(task, x, config=_config(), on_epoch_end=5)  # type: ignore[arg-type]
    (tmp_path / "run").write_text("not a folder")
    with pytest.raises(ValueError, match=r"config.out_dir: expected a folder .*run' is a file"):
        fit(task, x, config=_config(out_dir=tmp_path / "run"))
    assert task.step == 0
    assert (tmp_path / "run").read_text() == "not a folder"


def test_history_rows_and_files(tmp_path: Path) -> None:
    with pytest.raises(
        TypeError, match=r"rows: expected a list of per-epoch dicts .* got list \[1, 2\]"
    ):
        History([1, 2])  # type: ignore[list-item]
    (tmp_path / "h.json").write_text("{broken")
    with pytest.raises(ValueError, match=r"h\.json: not a JSON history"):
        History.load(tmp_path / "h.json")
    (tmp_path / "ints.json").write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match=r"ints\.json: expected a JSON list of rows"):
        History.load(tmp_path / "ints.json")


# -- VAETask and make_adam -------------------------------------------------------------------


def test_vae_task_hyper_parameters() -> None:
    model = VAE(64, [16], 2)
    with pytest.raises(TypeError, match=r"lr: expected a real number, got str '1e-3'"):
        VAETask(model, lr="1e-3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"lr: expected a finite number, got inf"):
        VAETask(model, lr=float("inf"))
    with pytest.raises(TypeError, match=r"beta: expected a real number, got bool True"):
        VAETask(model, beta=True)
    with pytest.raises(ValueError, match=r"free_bits: expected a finite number, got inf"):
        VAETask(model, free_bits=float("inf"))
    with pytest.raises(TypeError, match=r"input_noise: expected a real number, got str '0\.3'"):
        VAETask(model, input_noise="0.3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"input_noise: expected a finite number, got inf"):
        VAETask(model, input_noise=float("inf"))
    with pytest.raises(ValueError, match=r"weight_decay: expected a float >= 0, got -1"):
        VAETask(model, weight_decay=-1)
    with pytest.raises(TypeError, match=r"compile: expected True or False, got 'no'"):
        VAETask(model, compile="no")  # type: ignore[arg-type]


def test_vae_task_refuses_data_outside_unit_interval_for_bernoulli() -> None:
    task = _vae_task()
    with pytest.raises(
        ValueError,
        match=r"batch: the model's Bernoulli likelihood .* got range \[255, 255\]",
    ):
        fit(task, torch.full((32, 64), 255.0), config=_config())
    assert task.step == 0
    with pytest.raises(
        ValueError, match=r"data: the model's Bernoulli likelihood .* got range \[-1, 1\]"
    ):
        task.validate(torch.linspace(-1, 1, 8 * 64).view(8, 64), None)
    with pytest.raises(
        ValueError, match=r"data: expected a non-empty tensor \(N, D\), got \(0, 64\)"
    ):
        task.validate(torch.rand(0, 64), None)
    # a Gaussian likelihood takes any real data
    gaussian = VAETask(VAE(64, [16], 2, likelihood="gaussian"))
    fit(gaussian, torch.randn(32, 64), config=_config())
    assert gaussian.step == 2


def test_vae_task_state() -> None:
    with pytest.raises(ValueError, match=r"state: expected \{'step': int >= 0\}, got \{\}"):
        _vae_task().load_state_dict({})


def test_make_adam_arguments() -> None:
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"params: expected a list of parameters, got generator"):
        make_adam(layer.parameters(), lr=1e-3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"weight_decay: expected a float >= 0, got -1"):
        make_adam(list(layer.parameters()), lr=1e-3, weight_decay=-1)
    with pytest.raises(
        ValueError, match=r"betas: expected two floats in \[0, 1\), got \(1.5, 0.9\)"
    ):
        make_adam(list(layer.parameters()), lr=1e-3, betas=(1.5, 0.9))


# -- GANTask ---------------------------------------------------------------------------------


def test_gan_task_hyper_parameters() -> None:
    with pytest.raises(TypeError, match=r"lr: expected a real number, got str '1'"):
        _gan_task(lr="1")
    with pytest.raises(ValueError, match=r"fixed_seed: expected an integer seed, got 1.7"):
        _gan_task(fixed_seed=1.7)
    with pytest.raises(TypeError, match=r"evaluator: expected a callable .* got int"):
        _gan_task(evaluator=5)
    with pytest.raises(TypeError, match=r"module: expected an nn.Module, got str"):
        layer_spectral_norms("discriminator")  # type: ignore[arg-type]


def test_gan_task_real_images_must_be_floats_in_unit_interval() -> None:
    task = _gan_task()
    with pytest.raises(
        TypeError, match=r"batch: expected floating-point images in \[0, 1\], got dtype torch.uint8"
    ):
        task.train_step(torch.zeros(4, 784, dtype=torch.uint8))
    with pytest.raises(
        ValueError, match=r"batch: expected images in \[0, 1\] .* got range \[255, 255\]"
    ):
        fit(task, torch.full((32, 784), 255.0), config=_config())
    assert task.d_steps == 0
    with pytest.raises(
        ValueError, match=r"data: expected images in \[0, 1\] .* got range \[-1, 1\]"
    ):
        task.validate(torch.linspace(-1, 1, 8 * 784).view(8, 784))


def test_gan_task_sample_and_state() -> None:
    task = _gan_task()
    with pytest.raises(ValueError, match=r"seed: expected an integer seed, got 'a'"):
        task.sample(2, seed="a")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"device: expected a device such as .* got 'gpu'"):
        task.sample(2, device="gpu")
    with pytest.raises(ValueError, match=r"state: expected the keys .* missing \['d_steps'"):
        task.load_state_dict({})


# -- checkpoints -----------------------------------------------------------------------------


def test_save_checkpoint_argument_types(tmp_path: Path) -> None:
    model = nn.Linear(4, 2)
    opt = torch.optim.Adam(model.parameters())
    with pytest.raises(
        TypeError, match=r"modules: expected a dict of name -> an nn.Module, got Linear"
    ):
        save_checkpoint(tmp_path, model)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"optimizers: expected a dict .* got Adam"):
        save_checkpoint(tmp_path, {"model": model}, opt)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"generators\['g'\]: expected a torch.Generator, got int"):
        save_checkpoint(tmp_path, {"model": model}, generators={"g": 5})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"metadata: expected a dict of JSON-able values, got list"):
        save_checkpoint(tmp_path, {"model": model}, metadata=[1, 2])  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_save_checkpoint_paths(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    with pytest.raises(
        ValueError,
        match=r"path: expected a .safetensors file or a folder, got the existing file .*notes.txt",
    ):
        save_checkpoint(notes, {"model": nn.Linear(4, 2)})
    with pytest.raises(
        ValueError, match=r"path: cannot write .*notes.txt' is a file, not a folder"
    ):
        save_checkpoint(notes / "c.safetensors", {"model": nn.Linear(4, 2)})
    assert notes.read_text() == "keep me"
    with pytest.raises(TypeError, match=r"data: expected bytes, got str"):
        write_atomic(tmp_path / "w.txt", "text")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"path: expected a file to write, got the existing folder"
    ):
        write_atomic(tmp_path, b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_load_checkpoint_checks_optimizers_before_loading_anything(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(4, 2), nn.Linear(2, 2))
    save_checkpoint(tmp_path, {"model": model}, {"opt": torch.optim.Adam(model.parameters())})
    fresh = nn.Sequential(nn.Linear(4, 2), nn.Linear(2, 2))
    before = [p.detach().clone() for p in fresh.parameters()]
    with pytest.raises(
        CheckpointMismatchError, match=r"optimizer 'opt': class: checkpoint Adam vs optimizer SGD"
    ):
        load_checkpoint(
            tmp_path, {"model": fresh}, {"opt": torch.optim.SGD(fresh.parameters(), lr=0.1)}
        )
    partial = torch.optim.Adam(fresh[0].parameters())
    with pytest.raises(
        CheckpointMismatchError,
        match=r"optimizer 'opt': parameters per group: checkpoint \[4\] vs optimizer \[2\]",
    ):
        load_checkpoint(tmp_path, {"model": fresh}, {"opt": partial})
    assert all(torch.equal(a, b) for a, b in zip(before, fresh.parameters(), strict=True))
    with pytest.raises(TypeError, match=r"modules\['model'\]: expected an nn.Module, got int"):
        load_checkpoint(tmp_path, {"model": 5})  # type: ignore[dict-item]


def test_load_checkpoint_with_a_foreign_header(tmp_path: Path) -> None:
    path = tmp_path / "odd.safetensors"
    safetensors.torch.save_file({"a": torch.ones(1)}, path, metadata={"gentorch": "{broken"})
    with pytest.raises(
        ValueError, match=r"odd.safetensors: not a gentorch checkpoint \(its header is not JSON"
    ):
        load_checkpoint(path, {"model": nn.Linear(4, 2)})
    safetensors.torch.save_file({"a": torch.ones(1)}, path, metadata={"gentorch": "[1, 2]"})
    with pytest.raises(
        ValueError, match=r"odd.safetensors: not a gentorch checkpoint \(unexpected header"
    ):
        load_checkpoint(path, {"model": nn.Linear(4, 2)})
