"""Bad input to gentorch.evaluation: an error naming the argument, what came and what was due."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from gentorch.evaluation import (
    LeNet,
    active_units,
    anomaly_auc,
    anomaly_scores,
    classifier_accuracy,
    classifier_features,
    classifier_inception_score,
    classifier_probabilities,
    denoise,
    fld,
    frechet_distance,
    inception_score,
    load_classifier,
    log_likelihood,
    posterior_means,
    pretrained_classifier,
    psnr,
    save_classifier,
    test_elbo,
    train_classifier,
)
from gentorch.models import VAE, ConditionalVAE
from gentorch.training import save_checkpoint

NAN_ROW = torch.full((1, 16), math.nan)


@pytest.fixture
def vae() -> VAE:
    return VAE(16, [8], 2)


@pytest.fixture
def x() -> torch.Tensor:
    return torch.rand(6, 16, generator=torch.Generator().manual_seed(0))


# ----------------------------------------------------------------- VAE-based evaluations
def test_non_finite_images_are_named(vae: VAE, x: torch.Tensor) -> None:
    bad = torch.cat([x, NAN_ROW])
    with pytest.raises(ValueError, match=r"images: expected finite values, got 16 NaN or Inf"):
        log_likelihood(vae, bad, k=2)
    with pytest.raises(ValueError, match=r"images: expected finite values, got 16 NaN"):
        test_elbo(vae, bad)
    with pytest.raises(ValueError, match=r"images: expected finite values, got 16 NaN"):
        posterior_means(vae, bad)
    with pytest.raises(ValueError, match=r"images: expected finite values, got 16 NaN"):
        anomaly_scores(vae, bad)
    with pytest.raises(ValueError, match=r"noisy: expected finite values, got 16 NaN"):
        denoise(vae, bad)


def test_labels_that_are_not_a_tensor_are_a_type_error(x: torch.Tensor) -> None:
    model = ConditionalVAE(16, [8], 2, num_classes=3)
    with pytest.raises(TypeError, match=r"labels: expected None or a torch.Tensor .* got list"):
        log_likelihood(model, x, k=2, labels=[0, 1, 2, 0, 1, 2])  # type: ignore[arg-type]


def test_progress_must_be_a_bool(vae: VAE, x: torch.Tensor) -> None:
    with pytest.raises(TypeError, match=r"progress: expected a bool, got 'yes' \(str\)"):
        log_likelihood(vae, x, k=2, progress="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"progress: expected a bool, got 1 \(int\)"):
        anomaly_scores(vae, x, score="nll", k=2, progress=1)  # type: ignore[arg-type]


def test_active_units_threshold_is_a_finite_number(vae: VAE, x: torch.Tensor) -> None:
    with pytest.raises(TypeError, match=r"threshold: expected a float, got str"):
        active_units(vae, x, threshold="0.1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"threshold: expected a float, got bool"):
        active_units(vae, x, threshold=True)
    with pytest.raises(
        ValueError, match=r"threshold: expected a non-negative finite number, got inf"
    ):
        active_units(vae, x, threshold=math.inf)


def test_anomaly_scores_checks_settings_it_does_not_use(vae: VAE, x: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"k: expected a positive integer, got 0"):
        anomaly_scores(vae, x, score="elbo", k=0)
    with pytest.raises(ValueError, match=r"batch_size: expected a positive integer, got 0"):
        anomaly_scores(vae, x, score="nll", k=2, batch_size=0)


# ------------------------------------------------------------------ psnr, AUC, Fréchet
def test_psnr_refuses_complex_values_a_bool_range_and_names_the_nan() -> None:
    a = torch.rand(4)
    with pytest.raises(TypeError, match=r"clean: expected real values, got dtype torch.complex64"):
        psnr(a.to(torch.complex64), a.to(torch.complex64))
    with pytest.raises(
        ValueError, match=r"data_range: expected a positive finite number, got True"
    ):
        psnr(a, a, data_range=True)
    with pytest.raises(ValueError, match=r"reconstructed: expected finite values, got 1 NaN"):
        psnr(a, torch.tensor([0.0, math.nan, 0.0, 0.0]))
    # before: OverflowError from math.isfinite(10**400)
    with pytest.raises(ValueError, match=r"data_range: expected a positive finite number, got 10"):
        psnr(a, a, data_range=10**400)


def test_anomaly_auc_refuses_complex_scores_and_shows_a_bad_label() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    with pytest.raises(TypeError, match=r"scores: expected real values, got dtype torch.complex64"):
        anomaly_auc(torch.rand(4, dtype=torch.complex64), labels)
    with pytest.raises(
        ValueError, match=r"is_anomaly: expected booleans or 0/1 values, got 1 .*0.5"
    ):
        anomaly_auc(torch.rand(4), torch.tensor([0.0, 0.5, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"scores: expected finite values, got 1 NaN or Inf of 4"):
        anomaly_auc(torch.tensor([0.1, math.inf, 0.2, 0.3]), labels)


def test_frechet_distance_needs_a_feature() -> None:
    with pytest.raises(ValueError, match=r"features_a: expected at least one feature .*\(N, 0\)"):
        frechet_distance(torch.rand(5, 0), torch.rand(5, 0))


# ------------------------------------------------------------------------ inception score
def test_inception_score_names_what_is_wrong_with_probs() -> None:
    with pytest.raises(TypeError, match=r"probs: expected a torch.Tensor of shape .* got list"):
        inception_score([[0.5, 0.5]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"probs: expected shape \(N, K\) .* got \(3, 0\)"):
        inception_score(torch.rand(3, 0))
    with pytest.raises(TypeError, match=r"probs: expected real probabilities, got dtype"):
        inception_score(torch.eye(2, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"probs: expected finite values, got 4 NaN"):
        inception_score(torch.full((2, 2), math.nan))
    with pytest.raises(ValueError, match=r"sum to 1 .* got a minimum of -0.5 and row sums in"):
        inception_score(torch.tensor([[1.5, -0.5], [0.5, 0.5]]))


# -------------------------------------------------------------------------------- LeNet
def test_lenet_names_bad_settings_and_inputs() -> None:
    with pytest.raises(TypeError, match=r"dropout: expected a float in \[0, 1\), got str"):
        LeNet(dropout="0.1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"dropout: expected a float in \[0, 1\), got bool"):
        LeNet(dropout=False)
    net = LeNet()
    with pytest.raises(TypeError, match=r"x: expected a torch.Tensor of shape .* got list"):
        net([0.0])
    with pytest.raises(TypeError, match=r"x: expected a floating-point .* got dtype torch.int64"):
        net(torch.zeros(2, 1, 28, 28, dtype=torch.long))
    with pytest.raises(TypeError, match=r"x: expected dtype torch.float32 .* got torch.float64"):
        net(torch.rand(2, 1, 28, 28, dtype=torch.float64))


def test_classifier_images_are_checked_and_named() -> None:
    net = LeNet()
    with pytest.raises(TypeError, match=r"images: expected a torch.Tensor .* got list"):
        classifier_features(net, [[0.0] * 784])  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"images: expected a floating-point .* got dtype torch.uint8"
    ):
        classifier_probabilities(net, torch.zeros(2, 784, dtype=torch.uint8))
    with pytest.raises(TypeError, match=r"images: expected dtype torch.float32 .* torch.float64"):
        classifier_features(net, torch.rand(2, 784, dtype=torch.float64))
    x = torch.rand(2, 784)
    x[1, 5] = math.nan
    with pytest.raises(ValueError, match=r"images: expected finite values, got 1 NaN"):
        classifier_inception_score(net, x)
    with pytest.raises(ValueError, match=r"images: expected values in \[0, 1\], got .*255"):
        classifier_features(net, torch.full((2, 784), 255.0))
    with pytest.raises(TypeError, match=r"batch_size: expected a positive integer, got bool True"):
        classifier_features(net, torch.rand(2, 784), batch_size=True)


def test_fld_names_real_and_fake() -> None:
    net, x = LeNet(), torch.rand(4, 784)
    with pytest.raises(ValueError, match=r"real: need at least 2 images .* got 1"):
        fld(net, x[:1], x)
    with pytest.raises(ValueError, match=r"fake: expected shape \(N, 784\) .* got \(4, 28, 28\)"):
        fld(net, x, x.view(4, 28, 28))


def test_features_restore_the_training_mode_when_the_forward_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    net = LeNet().train()

    def fail(x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("forward failed")

    monkeypatch.setattr(net, "features", fail)
    with pytest.raises(RuntimeError, match=r"forward failed"):
        classifier_features(net, torch.rand(3, 784))
    assert net.training


def test_classifier_accuracy_checks_model_and_labels() -> None:
    net, x = LeNet(), torch.rand(3, 784)
    with pytest.raises(TypeError, match=r"model: expected a LeNet, got Linear"):
        classifier_accuracy(torch.nn.Linear(784, 10), x, torch.zeros(3, dtype=torch.long))  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"labels: expected integer class indices, got dtype torch.float32"
    ):
        classifier_accuracy(net, x, torch.zeros(3))
    with pytest.raises(
        TypeError, match=r"labels: expected integer class indices, got dtype torch.bool"
    ):
        classifier_accuracy(net, x, torch.zeros(3, dtype=torch.bool))
    with pytest.raises(
        TypeError, match=r"labels: expected a torch.Tensor of shape \(3,\), got list"
    ):
        classifier_accuracy(net, x, [0, 1, 2])  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"labels: expected class indices in \[0, 10\), got values in \[0, 12\]"
    ):
        classifier_accuracy(net, x, torch.tensor([0, 12, 3]))


# -------------------------------------------------------------------- train_classifier
@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"epochs": True}, TypeError, "epochs: expected a positive integer, got bool True"),
        ({"batch_size": 0}, ValueError, "batch_size: expected a positive integer, got 0"),
        ({"lr": 0.0}, ValueError, "lr: expected a positive finite learning rate, got 0.0"),
        ({"lr": math.nan}, ValueError, "lr: expected a positive finite learning rate, got nan"),
        ({"lr": "0.1"}, TypeError, "lr: expected a positive float, got str"),
        ({"max_shift": 1.5}, TypeError, "max_shift: expected an int number of pixels, got 1.5"),
        ({"max_shift": 28}, ValueError, r"max_shift: expected 0 <= max_shift < 28 .* got 28"),
        ({"seed": 1.5}, TypeError, r"seed: expected an int, got 1.5 \(float\)"),
        ({"device": "gpu"}, ValueError, "device: expected a device such as .* got 'gpu'"),
        ({"on_epoch_end": 1}, TypeError, "on_epoch_end: expected None or a callable .* got int"),
    ],
)
def test_train_classifier_settings(
    kwargs: dict[str, Any], error: type[Exception], pattern: str
) -> None:
    x, y = torch.rand(4, 784), torch.zeros(4, dtype=torch.long)
    with pytest.raises(error, match=pattern):
        train_classifier(x, y, **kwargs)


def test_train_classifier_data() -> None:
    y = torch.zeros(4, dtype=torch.long)
    with pytest.raises(TypeError, match=r"images: expected a torch.Tensor .* got list"):
        train_classifier([[0.0] * 784] * 4, y)  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"images: expected shape \(N, C\*784\) .* got \(4, 28, 28\)"
    ):
        train_classifier(torch.rand(4, 28, 28), y)
    with pytest.raises(
        TypeError, match=r"images: expected dtype torch.float32 .* got torch.float64"
    ):
        train_classifier(torch.rand(4, 784, dtype=torch.float64), y)
    with pytest.raises(ValueError, match=r"images: expected at least one image, got 0"):
        train_classifier(torch.rand(0, 784), y[:0])
    with pytest.raises(ValueError, match=r"images: expected values in \[0, 1\]"):
        train_classifier(torch.rand(4, 784) * 255, y)
    with pytest.raises(TypeError, match=r"labels: expected an int64 tensor .* got torch.int32"):
        train_classifier(torch.rand(4, 784), y.int())
    with pytest.raises(ValueError, match=r"labels: expected an int64 tensor .* got shape \(4, 1\)"):
        train_classifier(torch.rand(4, 784), y[:, None])


# ------------------------------------------------------------------------- safetensors files
def test_save_classifier_paths_and_metadata(tmp_path: Path) -> None:
    net = LeNet()
    with pytest.raises(ValueError, match=r"path: expected a .safetensors file, got the folder"):
        save_classifier(net, tmp_path)
    with pytest.raises(
        ValueError, match=r"path: expected a file name ending in .safetensors, got .*lenet.pt"
    ):
        save_classifier(net, tmp_path / "lenet.pt")
    with pytest.raises(TypeError, match=r"path: expected a str or os.PathLike, got int"):
        save_classifier(net, 3)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"metadata: expected str keys and values, got 'acc': 0.9 \(float\)"
    ):
        save_classifier(net, tmp_path / "a.safetensors", metadata={"acc": 0.9})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=r"metadata: the key 'config' is reserved"):
        save_classifier(net, tmp_path / "a.safetensors", metadata={"config": "{}"})
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"path: cannot write .* is a file, not a folder"):
        save_classifier(net, tmp_path / "file" / "a.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing written


def _lenet_file(path: Path, config: object) -> Path:
    meta = {"gentorch_model": "LeNet", "config": json.dumps(config)}
    save_file(dict(LeNet().state_dict()), str(path), metadata=meta)
    return path


def test_load_classifier_names_the_file_and_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"path: expected a classifier file, got the folder"):
        load_classifier(tmp_path)
    pt = tmp_path / "lenet.pt"
    torch.save(LeNet().state_dict(), pt)
    with pytest.raises(ValueError, match=r"lenet.pt' is not a safetensors file"):
        load_classifier(pt)
    checkpoint = save_checkpoint(tmp_path / "run", {"model": VAE(16, [8], 2)})
    with pytest.raises(
        ValueError,
        match=r"not a gentorch LeNet file: .* gentorch_model = None and the keys \['gentorch'\]",
    ):
        load_classifier(checkpoint)
    narrow = _lenet_file(tmp_path / "narrow.safetensors", {"feature_dim": 64})
    with pytest.raises(
        ValueError, match=r"path: the weights in .* do not fit the LeNet .*'feature_dim': 64"
    ):
        load_classifier(narrow)
    odd = _lenet_file(tmp_path / "odd.safetensors", {"in_channels": "one"})
    with pytest.raises(
        ValueError, match=r"has a malformed LeNet config: .* got '\{\"in_channels\": \"one\"\}'"
    ):
        load_classifier(odd)
    good = save_classifier(LeNet(), tmp_path / "good.safetensors")
    with pytest.raises(ValueError, match=r"device: expected a device such as .* got 'gpu'"):
        load_classifier(good, device="gpu")
    with pytest.raises(TypeError, match=r"path: expected a str or os.PathLike, got NoneType"):
        load_classifier(None)  # type: ignore[arg-type]


def test_pretrained_classifier_dataset_and_device() -> None:
    with pytest.raises(
        TypeError, match=r"dataset: expected one of \('mnist', 'fashion-mnist'\), got list"
    ):
        pretrained_classifier(["mnist"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"device: expected a device such as .* got 'gpu'"):
        pretrained_classifier("mnist", device="gpu")
