"""``gentorch <action> vae`` end to end on scikit-learn's digits (tiny runs)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gentorch.cli.main import main
from gentorch.models import VAE, ConditionalVAE
from gentorch.training import load_checkpoint, read_checkpoint_metadata

_COMMANDS = (
    "train",
    "eval",
    "sample",
    "reconstruct",
    "interpolate",
    "plot-latent",
    "anomaly",
    "denoise",
)


def _png(path: Path) -> tuple[int, int]:
    assert path.is_file(), path
    with Image.open(path) as image:
        image.verify()  # a complete, uncorrupted PNG
        assert image.format == "PNG"
        return image.size


def _size(columns: int, rows: int) -> tuple[int, int]:
    return 4 * (columns * 10 + 2), 4 * (rows * 10 + 2)


def _train(out: Path, *extra: str) -> int:
    return main(
        [
            *("train", "vae", "--dataset", "digits", "--epochs", "2", "--batch-size", "64"),
            *("--threads", "1", "--quiet", "--out", str(out), *extra),
        ]
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    threads = torch.get_num_threads()
    assert _train(out, "--exclude-class", "3") == 0
    torch.set_num_threads(threads)
    return out


def test_train_writes_checkpoint_history_and_pictures(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["samples", "reconstructions", "loss_curves", "latent_manifold", "latent_scatter"]
    for name in names:
        _png(trained / f"{name}.png")
    # the 8x8 digits are enlarged 4x with a 1-pixel grey border: 4 * (20 * (8 + 1) + 1) across
    assert _png(trained / "latent_manifold.png") == (724, 724)
    meta = read_checkpoint_metadata(trained)
    assert meta["epoch"] == 2
    assert meta["config"]["model"]["hidden_dims"] == [512, 256]  # the book preset
    model = VAE.from_config(meta["config"]["model"])
    load_checkpoint(trained, {"model": model})
    assert len(json.loads((trained / "history.json").read_text())) == 2
    run = json.loads((trained / "run.json").read_text())
    assert run["image_shape"] == [1, 8, 8]
    assert run["data"]["exclude_class"] == 3


def test_train_prints_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _train(tmp_path, "--latent-dim", "3", "--hidden-dims", "32") == 0
    out = capsys.readouterr().out
    written = [line[len("wrote ") :] for line in out.splitlines() if line.startswith("wrote ")]
    assert {Path(p).name for p in written} == {
        "run.json",
        "checkpoint.safetensors",
        "history.csv",
        "history.json",
        "loss_curves.png",
        "samples.png",
        "reconstructions.png",
    }  # no latent plots for latent_dim 3
    assert all(Path(p).is_file() for p in written)


def test_conv_preset(tmp_path: Path) -> None:
    assert _train(tmp_path, "--preset", "conv", "--hidden-dims", "16", "--epochs", "1") == 0
    meta = read_checkpoint_metadata(tmp_path)
    assert meta["config"]["model_class"] == "ConvVAE"
    assert meta["config"]["model"]["image_shape"] == [1, 8, 8]
    assert main(["sample", "vae", "--run", str(tmp_path), "--n", "4"]) == 0


def test_resume_continues_the_run(tmp_path: Path) -> None:
    assert _train(tmp_path, "--hidden-dims", "16") == 0
    # a later --epochs overrides _train's 2: one more epoch from the checkpoint
    assert _train(tmp_path, "--hidden-dims", "16", "--resume", "--epochs", "3") == 0
    assert read_checkpoint_metadata(tmp_path)["epoch"] == 3
    assert len(json.loads((tmp_path / "history.json").read_text())) == 3


def test_commands_on_a_trained_run(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = ["--run", str(trained)]
    assert main(["eval", "vae", *run, "--k", "20", "--limit", "40", "--chunk-size", "8"]) == 0
    result = json.loads((trained / "eval.json").read_text())
    assert result["examples"] == 40
    # the IWAE bound is at least the ELBO in expectation; allow the noise of 40 examples
    assert result["nll"] <= -result["test_elbo"] + 0.5
    assert len(result["kl_per_dimension"]) == 2

    assert main(["sample", "vae", *run, "--n", "10", "--out", str(trained / "s.png")]) == 0
    # grids of 8x8 images with 2 pixels of padding, enlarged 4x: 4 * (n * 10 + 2) pixels
    assert _png(trained / "s.png") == _size(4, 3)  # ceil(sqrt(10)) = 4 per row
    assert main(["reconstruct", "vae", *run, "--n", "16"]) == 0
    assert _png(trained / "reconstructions.png") == _size(8, 4)  # inputs and outputs
    assert main(["interpolate", "vae", *run, "--pairs", "3", "--steps", "5"]) == 0
    assert _png(trained / "interpolation.png") == _size(5 + 2, 3)  # the two ends beside
    assert main(["plot-latent", "vae", *run, "--grid", "5"]) == 0
    assert _png(trained / "latent_manifold.png") == (4 * (5 * 9 + 1), 4 * (5 * 9 + 1))
    assert main(["denoise", "vae", *run, "--n", "4"]) == 0
    assert _png(trained / "denoising.png") == _size(4, 3)  # clean, noisy, denoised
    assert main(["anomaly", "vae", *run]) == 0  # the class left out in training: 3
    _png(trained / "anomaly.png")
    anomaly = json.loads((trained / "anomaly.json").read_text())
    assert anomaly["anomaly_class"] == 3
    assert 0.0 <= anomaly["roc_auc"] <= 1.0
    out = capsys.readouterr().out
    assert "PSNR noisy" in out
    assert "ROC-AUC" in out


def test_dynamic_binarization_binarizes_the_test_set_once(tmp_path: Path) -> None:
    assert _train(tmp_path, "--hidden-dims", "16", "--binarize", "dynamic") == 0
    assert json.loads((tmp_path / "run.json").read_text())["data"]["binarize"] == "dynamic"
    assert read_checkpoint_metadata(tmp_path)["train_config"]["binarize"] == "dynamic"
    from gentorch.cli.vae import _load_data

    spec = json.loads((tmp_path / "run.json").read_text())["data"]
    first, second = _load_data(spec).test_x, _load_data(spec).test_x
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(first, second)  # the same fixed draw every time


def test_tabular_data_with_a_gaussian_likelihood(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    table = rng.normal(size=(60, 5)).astype(np.float32) * 3.0
    np.save(tmp_path / "table.npy", table)
    out = tmp_path / "run"
    common = ["--dataset", str(tmp_path / "table.npy"), "--preset", "mlp", "--hidden-dims", "8"]
    assert _train(out, *common, "--likelihood", "gaussian") == 0
    assert (out / "checkpoint.safetensors").is_file()
    assert not (out / "samples.png").exists()  # not images


def test_errors_are_one_line_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path, "--dataset", "mnits") == 2
    assert "not one of digits, mnist" in capsys.readouterr().err
    assert _train(tmp_path, "--dataset", str(tmp_path / "missing.npy")) == 2
    missing = tmp_path / "missing.npy"
    assert capsys.readouterr().err == (
        f"gentorch: error: --dataset '{missing}': not one of digits, mnist, fashion-mnist, "
        "binarized-mnist, and no such file or folder\n"
    )
    np.save(tmp_path / "big.npy", np.full((20, 3), 5.0, dtype=np.float32))
    assert _train(tmp_path, "--dataset", str(tmp_path / "big.npy"), "--preset", "mlp") == 2
    assert "--likelihood bernoulli: needs data in [0, 1]" in capsys.readouterr().err
    assert main(["sample", "vae", "--run", str(tmp_path / "nothing")]) == 2
    assert "no run.json there" in capsys.readouterr().err
    assert _train(tmp_path / "new", "--resume") == 2
    assert "--resume: no run in" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--epochs", "0", "--epochs: expected a positive integer, got 0"),
        ("--batch-size", "-4", "--batch-size: expected a positive integer, got -4"),
        ("--iwae-k", "0", "--iwae-k: expected a positive integer, got 0"),
        ("--latent-dim", "0", "--latent-dim: expected a positive integer, got 0"),
        ("--kl-warmup", "-1", "--kl-warmup: expected a number of steps >= 0, got -1"),
        ("--lr", "0", "--lr: expected a finite learning rate > 0, got 0.0"),
        ("--lr", "nan", "--lr: expected a finite learning rate > 0, got nan"),
        ("--beta", "-0.5", "--beta: expected a finite value >= 0, got -0.5"),
        ("--free-bits", "inf", "--free-bits: expected a finite value >= 0, got inf"),
        ("--lr-final", "2", "--lr-final: expected a fraction of --lr in [0, 1], got 2.0"),
    ],
)
def test_bad_training_flags_are_named_before_any_data_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, expected: str
) -> None:
    # a dataset that does not exist: the flag must be reported first
    missing = str(tmp_path / "missing.npy")
    assert _train(tmp_path / "run", "--dataset", missing, flag, value) == 2
    err = capsys.readouterr().err
    assert err == f"gentorch: error: {expected}\n"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["eval", "vae", "--k", "0"], "--k: expected a positive integer, got 0"),
        (["eval", "vae", "--limit", "0"], "--limit: expected a positive integer, got 0"),
        (
            ["eval", "vae", "--chunk-size", "-1"],
            "--chunk-size: expected a positive integer, got -1",
        ),
        (["anomaly", "vae", "--k", "0"], "--k: expected a positive integer, got 0"),
        # before: ignored, the default --score elbo draws one sample per example
        (
            ["anomaly", "vae", "--k", "50"],
            "--k 50: the importance samples of --score nll, and --score is elbo; add --score nll "
            "or leave --k out",
        ),
    ],
)
def test_bad_evaluation_flags_are_named_before_the_run_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    assert main([*argv, "--run", str(tmp_path / "no-run")]) == 2
    assert capsys.readouterr().err == f"gentorch: error: {expected}\n"


@pytest.mark.parametrize("action", ["sample", "reconstruct", "interpolate", "anomaly", "denoise"])
def test_a_picture_out_that_is_not_a_png_file_is_named_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], action: str
) -> None:
    # no run there: the --out check must come first
    run = ["--run", str(tmp_path / "no-run")]
    assert main([action, "vae", *run, "--out", str(tmp_path / "pic.jpg")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gentorch: error: --out '{tmp_path / 'pic.jpg'}': expected a file name")
    assert main([action, "vae", *run, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gentorch: error: --out '{tmp_path}': an existing folder")


@pytest.fixture(scope="module")
def conditional(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("conditional")
    threads = torch.get_num_threads()
    # latent size 2 (the book preset's): the per-class manifolds and the scatter are drawn too
    assert _train(out, "--conditional", "--hidden-dims", "32", "--exclude-class", "3") == 0
    torch.set_num_threads(threads)
    return out


def test_conditional_train_writes_one_sample_row_per_class(conditional: Path) -> None:
    # 8 samples of each of the 9 digits trained on (3 was left out: its label is untrained)
    assert _png(conditional / "samples.png") == _size(8, 9)
    assert _png(conditional / "reconstructions.png") == _size(8, 8)
    for k in range(10):  # a 2-D latent space per trained class
        assert (conditional / f"latent_manifold_class{k}.png").exists() == (k != 3)
        if k != 3:
            assert _png(conditional / f"latent_manifold_class{k}.png") == (724, 724)
    _png(conditional / "latent_scatter.png")
    assert not (conditional / "latent_manifold.png").exists()
    run = json.loads((conditional / "run.json").read_text())
    assert run["conditional"] is True
    assert run["num_classes"] == 10  # the dataset's classes, the left-out 3 included
    assert run["trained_classes"] == [0, 1, 2, 4, 5, 6, 7, 8, 9]


def test_conditional_checkpoint_reloads_as_a_conditional_vae(conditional: Path) -> None:
    meta = read_checkpoint_metadata(conditional)
    assert meta["config"]["model_class"] == "ConditionalVAE"
    assert meta["config"]["model"]["num_classes"] == 10
    model = ConditionalVAE.from_config(meta["config"]["model"])
    load_checkpoint(conditional, {"model": model})
    assert (
        cast(nn.Sequential, model.encoder)[0].in_features == 64 + 10
    )  # the one-hot label joins the input
    from gentorch.cli.vae import _load_run

    loaded, _ = _load_run(conditional, "cpu")
    assert isinstance(loaded, ConditionalVAE)
    for a, b in zip(loaded.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_sample_a_conditional_run(conditional: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = ["sample", "vae", "--run", str(conditional)]
    assert main([*run, "--n", "3", "--out", str(conditional / "rows.png")]) == 0
    assert _png(conditional / "rows.png") == _size(3, 9)  # --n per trained class, a row each
    assert main([*run, "--label", "7", "--n", "10", "--out", str(conditional / "s7.png")]) == 0
    assert _png(conditional / "s7.png") == _size(4, 3)  # one class: the usual square grid
    assert "not in the training data" not in capsys.readouterr().out
    # the left-out class can still be asked for, with a note that its label is untrained
    assert main([*run, "--label", "3", "--n", "4", "--out", str(conditional / "s3.png")]) == 0
    assert "note: class 3 was not in the training data" in capsys.readouterr().out


def test_label_errors(trained: Path, conditional: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", "vae", "--run", str(conditional), "--label", "10"]) == 2
    assert "--label 10: expected a class in [0, 10)" in capsys.readouterr().err
    assert main(["sample", "vae", "--run", str(conditional), "--label", "-1"]) == 2
    assert "--label -1: expected a class in [0, 10)" in capsys.readouterr().err
    for action in ("sample", "plot-latent"):
        assert main([action, "vae", "--run", str(trained), "--label", "3"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("gentorch: error: --label 3: the model in")
        assert "is not conditional" in err


def test_eval_a_conditional_run(conditional: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = ["--run", str(conditional)]
    assert main(["eval", "vae", *run, "--k", "20", "--limit", "40", "--chunk-size", "8"]) == 0
    out = capsys.readouterr().out
    assert "log p(x | y)" in out
    elbo = float(out.split("test ELBO")[1].split()[0])
    nll = float(out.split("NLL (IWAE k=20)")[1].split()[0])
    assert np.isfinite(elbo)
    assert np.isfinite(nll)
    result = json.loads((conditional / "eval.json").read_text())
    assert result["conditional"] is True
    assert result["examples"] == 40
    assert result["nll"] <= -result["test_elbo"] + 0.5
    assert len(result["kl_per_dimension"]) == 2


def test_commands_on_a_conditional_run(
    conditional: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = ["--run", str(conditional)]
    assert main(["reconstruct", "vae", *run, "--n", "16"]) == 0
    assert _png(conditional / "reconstructions.png") == _size(8, 4)
    assert main(["interpolate", "vae", *run, "--pairs", "3", "--steps", "5"]) == 0
    assert _png(conditional / "interpolation.png") == _size(5 + 2, 3)
    folder = conditional / "latent"
    plot = ["plot-latent", "vae", *run, "--grid", "5", "--label", "2", "--out", str(folder)]
    assert main(plot) == 0
    assert {p.name for p in folder.iterdir()} == {
        "latent_manifold_class2.png",
        "latent_scatter.png",
    }
    assert main(["denoise", "vae", *run, "--n", "4"]) == 0
    assert _png(conditional / "denoising.png") == _size(4, 3)
    assert main(["anomaly", "vae", *run]) == 0
    anomaly = json.loads((conditional / "anomaly.json").read_text())
    assert anomaly["anomaly_class"] == 3
    assert 0.0 <= anomaly["roc_auc"] <= 1.0
    out = capsys.readouterr().out
    assert "over the 9 training classes (the test labels are not used)" in out
    assert "PSNR noisy" in out


def test_conditional_needs_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    table = rng.random((60, 5)).astype(np.float32)
    np.save(tmp_path / "table.npy", table)
    data = ["--dataset", str(tmp_path / "table.npy"), "--preset", "mlp", "--hidden-dims", "8"]
    common = [*data, "--conditional"]
    assert _train(tmp_path / "a", *common) == 2
    err = capsys.readouterr().err
    assert "--conditional: needs class labels" in err
    assert "--label-column" in err
    assert not (tmp_path / "a").exists()
    table[:, 0] = np.arange(60) % 3  # the first column as the class
    np.save(tmp_path / "table.npy", table)
    out = tmp_path / "b"
    assert _train(out, *common, "--label-column", "0") == 0
    assert read_checkpoint_metadata(out)["config"]["model"]["num_classes"] == 3
    assert _train(tmp_path, "--conditional", "--preset", "conv") == 2
    assert "--conditional: there is no conditional ConvVAE" in capsys.readouterr().err
    more = ["--label-column", "0", "--resume", "--epochs", "3"]
    assert _train(out, *data, *more) == 2  # --conditional forgotten
    assert "was trained with --conditional" in capsys.readouterr().err
    assert _train(out, *common, *more) == 0
    assert read_checkpoint_metadata(out)["epoch"] == 3


@pytest.mark.parametrize("action", _COMMANDS)
def test_help_of_every_command(action: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([action, "vae", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: gentorch {action} vae" in text
    assert ("--dataset" in text) if action == "train" else ("--run" in text)
    assert "(default:" in text


def test_train_tensorboard_logs_each_epoch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    threads = torch.get_num_threads()
    assert _train(out, "--tensorboard") == 0
    torch.set_num_threads(threads)
    assert f"wrote {out / 'tensorboard'}" in capsys.readouterr().out.splitlines()
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    history = json.loads((out / "history.json").read_text())
    logged = events.Scalars("epoch/val_loss")
    assert [e.step for e in logged] == [1, 2]
    assert [e.value for e in logged] == pytest.approx([row["val_loss"] for row in history])


@pytest.mark.parametrize("family", ["vae", "gan"])
def test_train_tensorboard_without_the_package_says_so_first(
    family: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorboard" else find_spec(name, *a),
    )
    out = tmp_path / "run"
    assert main(["train", family, "--tensorboard", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--tensorboard: needs the tensorboard package, which is not installed" in err
    assert "pip install 'gentorch[tensorboard]'" in err
    assert not out.exists()  # refused before reading data or writing anything


def test_resume_refuses_other_data_or_model_before_touching_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path, "--hidden-dims", "16", "--exclude-class", "3") == 0
    capsys.readouterr()
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    # before: the run continued on all ten classes and rewrote run.json without --exclude-class
    assert _train(tmp_path, "--hidden-dims", "16", "--resume", "--epochs", "3") == 2
    assert capsys.readouterr().err == (
        f"gentorch: error: --resume: the run in '{tmp_path}' was trained with --exclude-class 3 "
        "(given: unset); resume it with the same settings\n"
    )
    # before: run.json was rewritten first, and the failed resume left a broken run
    argv = ["--exclude-class", "3", "--resume", "--epochs", "3", "--preset", "mlp"]
    assert _train(tmp_path, "--hidden-dims", "16", *argv) == 2
    assert "--preset book (given: mlp)" in capsys.readouterr().err
    assert _train(tmp_path, "--hidden-dims", "16", "--exclude-class", "3", "--resume") == 2
    assert capsys.readouterr().err == (
        f"gentorch: error: --epochs 2: the run in '{tmp_path}' is already at epoch 2; ask for "
        "more epochs to continue it\n"
    )
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == files
    # the same settings: one more epoch, and run.json is kept as it was
    argv = ["--exclude-class", "3", "--resume", "--epochs", "3"]
    assert _train(tmp_path, "--hidden-dims", "16", *argv) == 0
    assert read_checkpoint_metadata(tmp_path)["epoch"] == 3
    assert (tmp_path / "run.json").read_bytes() == files["run.json"]


def test_outputs_inside_a_file_are_named_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert _train(blocker / "run") == 2
    assert capsys.readouterr().err == (
        f"gentorch: error: --out: cannot write '{blocker / 'run'}': '{blocker}' is a file, not a "
        "folder\n"
    )
    assert _train(blocker) == 2
    assert (
        capsys.readouterr().err
        == f"gentorch: error: --out '{blocker}': an existing file; expected a folder\n"
    )
    # eval: checked before the run is read (here there is none) and the long evaluation runs
    run = ["--run", str(tmp_path / "no-run")]
    assert main(["eval", "vae", *run, "--out", str(blocker / "e.json")]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["eval", "vae", *run, "--out", str(tmp_path / "e.txt")]) == 2
    assert capsys.readouterr().err.endswith("expected a file name ending in .json\n")
    assert main(["sample", "vae", *run, "--out", str(blocker / "s.png")]) == 2
    assert "is a file" in capsys.readouterr().err
    # plot-latent writes two pictures into a folder
    assert main(["plot-latent", "vae", *run, "--out", str(tmp_path / "pl.png")]) == 2
    assert "expected a folder name" in capsys.readouterr().err
    assert not (tmp_path / "pl.png").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_an_unavailable_device_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # before: "AssertionError: Torch not compiled with CUDA enabled", with a traceback
    assert _train(tmp_path / "run", "--device", "cuda") == 2
    assert capsys.readouterr().err.startswith(
        "gentorch: error: --device cuda: CUDA is not available"
    )
    assert _train(tmp_path / "run", "--device", "gpu") == 2
    assert "--device 'gpu': expected a device such as cpu, cuda" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_run_of_another_family_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gentorch.training import save_checkpoint

    # what `gentorch train gan` leaves: run.json and a checkpoint without a VAE config
    (tmp_path / "run.json").write_text(json.dumps({"data": {"dataset": "mnist"}}))
    save_checkpoint(
        tmp_path / "checkpoint.safetensors",
        {"generator": nn.Linear(2, 2)},
        metadata={"config": {"generator_class": "SNGANGenerator"}, "epoch": 1},
    )
    # before: KeyError: 'model_class', with a traceback
    assert main(["eval", "vae", "--run", str(tmp_path), "--k", "5"]) == 2
    assert capsys.readouterr().err.startswith(f"gentorch: error: --run '{tmp_path}': not a VAE run")


def test_eval_prints_the_kl_of_each_latent_dimension(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = trained / "kl_eval.json"
    assert (
        main(["eval", "vae", "--run", str(trained), "--k", "4", "--limit", "50", "--out", str(out)])
        == 0
    )
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("KL per latent"))
    printed = [float(v) for v in line.split(":")[1].split()]
    assert printed == pytest.approx(json.loads(out.read_text())["kl_per_dimension"], abs=0.006)
    assert len(printed) == 2


def test_input_noise_trains_a_denoising_vae(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path, "--input-noise", "0.3", "--epochs", "1") == 0
    assert read_checkpoint_metadata(tmp_path)["config"]["input_noise"] == 0.3
    capsys.readouterr()
    assert main(["denoise", "vae", "--run", str(tmp_path), "--noise", "0.3", "--n", "4"]) == 0
    out = capsys.readouterr().out
    assert "PSNR noisy" in out
    assert "trained on clean inputs" not in out
    assert _train(tmp_path / "bad", "--input-noise", "-0.1") == 2
    assert "--input-noise: expected a finite value >= 0, got -0.1" in capsys.readouterr().err


def test_denoise_says_when_the_model_was_trained_on_clean_inputs(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = trained / "dn.png"
    assert main(["denoise", "vae", "--run", str(trained), "--n", "4", "--out", str(out)]) == 0
    assert "note: this model was trained on clean inputs" in capsys.readouterr().out


def test_resume_names_objective_differences_by_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path, "--hidden-dims", "16", "--epochs", "1", "--lr-decay", "cosine") == 0
    capsys.readouterr()
    base = ["--hidden-dims", "16", "--lr-decay", "cosine", "--resume"]
    # before: "resume_from=...: task lr: checkpoint 0.001, now 0.01", in the library's terms
    assert _train(tmp_path, *base, "--epochs", "2", "--lr", "0.01", "--batch-size", "32") == 2
    assert capsys.readouterr().err == (
        f"gentorch: error: --resume: the run in '{tmp_path}' was trained with --lr 0.001 "
        "(given: 0.01), --batch-size 64 (given: 32); resume it with the same settings\n"
    )
    # a cosine schedule is planned over the run's epochs: it resumes, but does not extend
    assert _train(tmp_path, *base, "--epochs", "2") == 2
    assert "spans the --epochs 1 it was started with" in capsys.readouterr().err
    assert (
        _train(tmp_path, "--resume", "--hidden-dims", "16", "--epochs", "2", "--latent-dim", "3")
        == 2
    )
    assert "another model (--preset, --latent-dim" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--noise", "inf"], "--noise: expected a finite standard deviation >= 0, got inf"),
        (["--noise", "-1"], "--noise: expected a finite standard deviation >= 0, got -1.0"),
        (["--n", "0"], "--n"),
    ],
)
def test_denoise_checks_its_flags_before_loading_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    # tmp_path holds no run: the flag is reported, not the missing run (checked first)
    assert main(["denoise", "vae", "--run", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "run.json" not in err


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        # before: trained at a constant --lr; the final fraction was ignored
        (
            ["--lr-final", "0.5"],
            "--lr-final 0.5: the end of the --lr-decay cosine schedule, and --lr-decay is none; "
            "add --lr-decay cosine or leave --lr-final out",
        ),
        # before: the library's "free_bits: must be 0 ..." after run.json was written
        (
            ["--free-bits", "0.5", "--iwae-k", "2"],
            "--free-bits 0.5: a floor on the ELBO's KL term, and --iwae-k 2 trains the IWAE "
            "objective, which has none; leave one of them out",
        ),
        # before: ignored (a named dataset has its own labels; digits ignores --data-dir)
        (
            ["--label-column", "0"],
            "--label-column '0': names a column of a .npy/.csv/.tsv/.txt array, and --dataset "
            "'digits' is a named dataset, with its labels (if any) built in; leave "
            "--label-column out",
        ),
        (
            ["--data-dir", "elsewhere"],
            "--data-dir 'elsewhere': only mnist, fashion-mnist and binarized-mnist are read "
            "from a datasets folder, not --dataset 'digits'; leave --data-dir out",
        ),
        # (refused as before, but now before the data are read)
        (
            ["--conditional", "--preset", "conv"],
            "--conditional: there is no conditional ConvVAE; use --preset book or mlp",
        ),
        (
            ["--preset", "conv", "--hidden-dims", "16,16"],
            "--hidden-dims: the conv preset takes one width, got (16, 16)",
        ),
        # before: the empty entry was skipped, building a 16-8 network
        (
            ["--hidden-dims", "16,,8"],
            "--hidden-dims: expected comma-separated integers, got '16,,8'",
        ),
    ],
)
def test_flags_that_do_not_combine_are_named_before_any_data_is_read(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    expected: str,
) -> None:
    import gentorch.cli.vae

    def no_data(spec: object) -> None:
        raise AssertionError("the data were read")

    monkeypatch.setattr(gentorch.cli.vae, "_load_data", no_data)
    assert _train(tmp_path / "run", *flags) == 2
    assert capsys.readouterr().err == f"gentorch: error: {expected}\n"
    assert not (tmp_path / "run").exists()


def test_label_column_on_a_folder_of_images_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: ignored; the labels come from the sub-folders' names
    assert _train(tmp_path / "run", "--dataset", str(tmp_path), "--label-column", "1") == 2
    assert capsys.readouterr().err.startswith(
        f"gentorch: error: --label-column '1': names a column of a .npy/.csv/.tsv/.txt array, "
        f"and --dataset '{tmp_path}' is a folder of images"
    )


def test_exclude_class_must_name_a_class_of_the_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: nothing was left out, and run.json recorded exclude_class 10
    assert _train(tmp_path / "run", "--exclude-class", "10") == 2
    assert capsys.readouterr().err == (
        "gentorch: error: --exclude-class 10: no training example of 'digits' has that class "
        "(its labels run from 0 to 9)\n"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["reconstruct", "vae", "--seed", "1"], "--seed 1"),  # deterministic
        (["plot-latent", "vae", "--seed", "1"], "--seed 1"),  # deterministic
        (["sample", "vae", "--data-dir", "d"], "--data-dir d"),  # reads no data
    ],
)
def test_options_a_command_would_ignore_are_not_offered(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: accepted and ignored
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert f"error: unrecognized arguments: {flag}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "action", ["eval", "reconstruct", "interpolate", "plot-latent", "anomaly", "denoise"]
)
def test_data_dir_for_a_run_on_digits_is_refused(
    trained: Path, action: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: ignored (the digits ship with scikit-learn); plot-latent drew its manifold first
    assert main([action, "vae", "--run", str(trained), "--data-dir", "elsewhere"]) == 2
    assert capsys.readouterr().err == (
        "gentorch: error: --data-dir 'elsewhere': only mnist, fashion-mnist and binarized-mnist "
        "are read from a datasets folder, not the run's dataset 'digits'; leave --data-dir out\n"
    )


def test_anomaly_class_must_be_in_the_test_set(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: every test example was scored, then "is_anomaly: expected both anomalies ..."
    assert main(["anomaly", "vae", "--run", str(trained), "--anomaly-class", "10"]) == 2
    assert capsys.readouterr().err == (
        "gentorch: error: --anomaly-class 10: no test example has that class (the test labels "
        "run from 0 to 9)\n"
    )


def test_dynamic_binarization_of_an_array_binarizes_its_test_set_too(tmp_path: Path) -> None:
    from gentorch.cli.vae import _load_data

    rng = np.random.default_rng(0)
    np.save(tmp_path / "unit.npy", rng.random((60, 5)).astype(np.float32))
    spec = {"dataset": str(tmp_path / "unit.npy"), "binarize": "dynamic"}
    # before: only the named datasets' test sets were binarized; an array's stayed grey
    first, second = _load_data(spec).test_x, _load_data(spec).test_x
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(first, second)


def test_tabular_data_outside_the_unit_interval_refuse_noise_and_binarization(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = np.linspace(-2.0, 3.0, 60 * 5, dtype=np.float32).reshape(60, 5)
    np.save(tmp_path / "table.npy", table)
    data = ["--dataset", str(tmp_path / "table.npy"), "--preset", "mlp", "--hidden-dims", "8"]
    data += ["--likelihood", "gaussian"]
    # before: the noisy inputs were clipped to [0, 1] (the data's range lost) without a word
    assert _train(tmp_path / "a", *data, "--input-noise", "0.3") == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "gentorch: error: --input-noise 0.3: the noisy inputs are clipped to [0, 1], which needs "
        "data in [0, 1], got values in ["
    )
    # before: a RuntimeError from torch.bernoulli, with a traceback
    assert _train(tmp_path / "a", *data, "--binarize", "dynamic") == 2
    err = capsys.readouterr().err
    assert err.startswith("gentorch: error: --binarize dynamic: draws Bernoulli(x), which needs")
    assert "has values in [-2, 3]" in err
    assert not (tmp_path / "a").exists()
    out = tmp_path / "run"
    assert _train(out, *data, "--epochs", "1") == 0
    capsys.readouterr()
    run = ["denoise", "vae", "--run", str(out)]
    # before: --n and --out were ignored (no picture of tabular data)
    assert main([*run, "--n", "4"]) == 2
    assert capsys.readouterr().err == (
        f"gentorch: error: --n 4: the run's data ('{tmp_path / 'table.npy'}') are not images, "
        "so denoise draws no picture; leave it out\n"
    )
    assert main([*run, "--out", str(tmp_path / "d.png")]) == 2
    assert f"--out '{tmp_path / 'd.png'}': the run's data" in capsys.readouterr().err
    # before: the clean and noisy data were clipped to [0, 1] and their PSNR reported
    assert main(run) == 2
    assert capsys.readouterr().err.startswith(
        "gentorch: error: --noise 0.3: the noisy inputs are clipped to [0, 1]"
    )


def test_hidden_dims_parse_widths_and_an_empty_string_means_no_hidden_layer() -> None:
    import argparse

    from gentorch.cli.vae import _hidden_dims

    def widths(value: str | None) -> tuple[int, ...]:
        return _hidden_dims(argparse.Namespace(hidden_dims=value, preset="book"))

    assert widths(None) == (512, 256)  # the book preset's
    assert widths("64, 32") == (64, 32)
    assert widths("") == ()  # a linear encoder and decoder
    assert widths(" ") == ()


def test_n_beyond_the_test_set_is_capped_with_a_note(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: reconstruct and denoise showed fewer images than asked without a word
    out = tmp_path / "r.png"
    assert (
        main(["reconstruct", "vae", "--run", str(trained), "--n", "5000", "--out", str(out)]) == 0
    )
    note = re.search(
        r"note: --n 5000, but the test set has only (\d+) images: showing (\d+)",
        capsys.readouterr().out,
    )
    assert note is not None
    assert note[1] == note[2]
    assert 0 < int(note[1]) < 5000
