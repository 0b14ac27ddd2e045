"""End-to-end runs of `gentorch train|sample|eval gan` and `gentorch train classifier` (tiny)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from gentorch.cli.main import main
from gentorch.training import read_checkpoint_metadata


def _wrote(text: str) -> list[Path]:
    return [Path(p) for p in re.findall(r"^wrote (.+)$", text, flags=re.MULTILINE)]


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "gan", "--help"],
        ["sample", "gan", "--help"],
        ["eval", "gan", "--help"],
        ["train", "classifier", "--help"],
    ],
)
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage: gentorch" in capsys.readouterr().out


def test_train_sample_eval_resume(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clf = tmp_path / "clf.safetensors"
    assert main(["train", "classifier", "--limit", "200", "--epochs", "1", "--out", str(clf)]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/1  test accuracy" in out
    assert _wrote(out) == [clf]
    assert clf.is_file()

    run = tmp_path / "run"
    common = ["--limit", "64", "--width", "2", "--latent-dim", "8", "--batch-size", "32"]
    common += ["--classifier", str(clf), "--val-samples", "40", "--sigma-every", "1"]
    common += ["--setting", "D", "--out", str(run), "--quiet"]
    assert main(["train", "gan", "--epochs", "1", *common]) == 0
    written = _wrote(capsys.readouterr().out)
    for name in (
        "run.json",
        "samples/epoch_001.png",
        "spectral_norms.json",
        "spectral_norms.png",
        "fld.png",
        "checkpoint.safetensors",
        "history.json",
    ):
        assert run / name in written, name
    for path in written:
        assert path.is_file(), path
    with Image.open(run / "samples/epoch_001.png") as grid:
        assert grid.size[0] > 8 * 28  # 64 fixed codes in an 8x8 grid
    history = json.loads((run / "history.json").read_text())
    assert {"val_fld", "val_is", "train_d_loss", "train_g_loss"} <= set(history[0])
    assert json.loads((run / "run.json").read_text())["val_samples"] == 40
    meta = read_checkpoint_metadata(run)
    assert meta["config"]["setting"] == "D"
    assert meta["config"]["n_dis"] == 5
    assert meta["config"]["discriminator"]["spectral_norm"] is True

    # resume: one more epoch continues the same run
    assert main(["train", "gan", "--epochs", "2", "--resume", *common]) == 0
    assert run / "samples/epoch_002.png" in _wrote(capsys.readouterr().out)
    assert len(json.loads((run / "history.json").read_text())) == 2

    assert main(["sample", "gan", "--run", str(run), "--n", "9", "--nrow", "3"]) == 0
    (grid_path,) = _wrote(capsys.readouterr().out)
    assert grid_path == run / "samples.png"
    with Image.open(grid_path) as grid:
        assert grid.size == (3 * 28 + 4 * 2, 3 * 28 + 4 * 2)  # 3x3 images, 2-pixel padding

    assert main(["eval", "gan", "--run", str(run), "--n", "50", "--classifier", str(clf)]) == 0
    out = capsys.readouterr().out
    assert "FLD" in out
    assert "IS" in out
    (eval_path,) = _wrote(out)
    result = json.loads(eval_path.read_text())
    assert result["n"] == 50
    assert result["fld"] >= 0.0
    assert 1.0 <= result["is"] <= 10.0
    assert result["real_fld_test_vs_train"] >= 0.0


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", "gan", "--run", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gentorch: error: --run")
    assert "no run.json" in err
    assert main(["train", "gan", "--out", str(tmp_path), "--resume", "--epochs", "1"]) == 2
    assert f"--resume: no run in '{tmp_path}' to continue" in capsys.readouterr().err
    assert main(["train", "gan", "--epochs", "0"]) == 2
    assert "--epochs: expected a positive integer" in capsys.readouterr().err


def test_train_classifier_out_must_be_a_safetensors_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # no data there: the --out check must come first
    argv = ["train", "classifier", "--data-dir", str(tmp_path / "no-data")]
    assert main([*argv, "--out", str(tmp_path / "lenet.pt")]) == 2
    expected = f"gentorch: error: --out '{tmp_path / 'lenet.pt'}': expected a file name ending"
    assert capsys.readouterr().err.startswith(expected)


def test_sample_out_must_be_a_png_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sample", "gan", "--run", str(tmp_path / "no-run"), "--out", str(tmp_path / "s.gif")]
    assert main(argv) == 2
    expected = f"gentorch: error: --out '{tmp_path / 's.gif'}': expected a file name ending in .png"
    assert capsys.readouterr().err.startswith(expected)


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--latent-dim", "0", "--latent-dim: expected a positive integer, got 0"),
        ("--n-dis", "0", "--n-dis: expected a positive integer, got 0"),
        ("--n-power-iterations", "0", "--n-power-iterations: expected a positive integer, got 0"),
        ("--sigma-every", "0", "--sigma-every: expected a positive integer, got 0"),
        ("--lr", "-1", "--lr: expected a finite learning rate > 0, got -1.0"),
        ("--beta1", "1", "--beta1: expected a float in [0, 1), got 1.0"),
        ("--beta2", "-0.1", "--beta2: expected a float in [0, 1), got -0.1"),
        ("--ema-decay", "1.5", "--ema-decay: expected a float in [0, 1), got 1.5"),
    ],
)
def test_bad_training_flags_are_named_before_any_data_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, expected: str
) -> None:
    argv = ["train", "gan", "--data-dir", str(tmp_path / "no-data"), "--out", str(tmp_path / "r")]
    assert main([*argv, flag, value]) == 2
    assert capsys.readouterr().err == f"gentorch: error: {expected}\n"
    assert not (tmp_path / "r").exists()


def test_resnet_arch_trains_and_samples(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "res"
    argv = ["train", "gan", "--arch", "resnet", "--width", "1", "--latent-dim", "8"]
    argv += ["--limit", "32", "--batch-size", "16", "--epochs", "1", "--classifier", "none"]
    argv += ["--val-samples", "8", "--out", str(run), "--quiet", "--n-power-iterations", "2"]
    assert main(argv) == 0
    written = _wrote(capsys.readouterr().out)
    assert run / "fld.png" not in written  # no classifier, no FLD
    meta = read_checkpoint_metadata(run)
    assert meta["config"]["generator_class"] == "SNGANResNetGenerator"
    assert meta["config"]["discriminator"]["width"] == 2
    # before: --arch resnet ignored --n-power-iterations silently
    assert meta["config"]["discriminator"]["n_power_iterations"] == 2
    sample = ["sample", "gan", "--run", str(run), "--n", "4", "--out", str(tmp_path / "s.png")]
    assert main(sample) == 0
    assert (tmp_path / "s.png").is_file()


def test_resume_refuses_other_data_before_reading_any(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from torch import nn

    from gentorch.training import save_checkpoint

    # a run as `train gan --limit 2000 --out run` leaves it (only what the check reads)
    run = tmp_path / "run"
    info: dict[str, object] = {"data": {"dataset": "mnist", "data_dir": None, "limit": 2000}}
    info["classifier"] = None
    (run / "run.json").parent.mkdir()
    (run / "run.json").write_text(json.dumps(info))
    save_checkpoint(run / "checkpoint.safetensors", {"g": nn.Linear(2, 2)}, metadata={"epoch": 1})
    before = (run / "run.json").read_bytes()
    # before: epoch 2 trained on all 60,000 images and run.json lost its limit
    assert main(["train", "gan", "--resume", "--epochs", "2", "--out", str(run)]) == 2
    assert capsys.readouterr().err == (
        f"gentorch: error: --resume: the run in '{run}' was trained with --limit 2000 (given: "
        "unset); resume it with the same settings\n"
    )
    argv = ["train", "gan", "--resume", "--limit", "2000", "--epochs", "1", "--out", str(run)]
    assert main(argv) == 2
    assert "--epochs 1: the run in" in capsys.readouterr().err
    assert (run / "run.json").read_bytes() == before
    # (a run.json of before --val-samples was recorded: not compared, as above)
    info["val_samples"] = 40
    (run / "run.json").write_text(json.dumps(info))
    # before: the FLD of the later epochs compared 1000 images, that of the first 40
    argv = ["train", "gan", "--resume", "--limit", "2000", "--epochs", "2", "--out", str(run)]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"gentorch: error: --resume: the run in '{run}' was trained with --val-samples 40 "
        "(given: 1000); resume it with the same settings\n"
    )


def test_outputs_inside_a_file_are_named_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    # before: NotADirectoryError with a traceback, after the data were read
    assert main(["train", "gan", "--out", str(blocker / "g")]) == 2
    assert capsys.readouterr().err == (
        f"gentorch: error: --out: cannot write '{blocker / 'g'}': '{blocker}' is a file, not a "
        "folder\n"
    )
    # before: the classifier was trained first, then saving it failed
    assert main(["train", "classifier", "--out", str(blocker / "c.safetensors")]) == 2
    assert "--out" in capsys.readouterr().err
    assert (
        main(["eval", "gan", "--run", str(tmp_path / "none"), "--out", str(blocker / "e.json")])
        == 2
    )
    assert "is a file" in capsys.readouterr().err


def test_resume_names_network_and_objective_differences_by_flag(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--limit", "64", "--latent-dim", "8", "--batch-size", "32", "--classifier", "none"]
    common += ["--val-samples", "40", "--quiet", "--out", str(tmp_path)]
    assert main(["train", "gan", "--epochs", "1", "--width", "2", *common]) == 0
    capsys.readouterr()
    # before: the loader's list of ~80 shape mismatches, or "task setting: checkpoint 'C', ..."
    argv = ["train", "gan", "--resume", "--epochs", "2", *common]
    assert main([*argv, "--width", "4", "--setting", "D"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gentorch: error: --resume: the run in '{tmp_path}' was trained with ")
    assert "other networks (--arch, --width, --latent-dim" in err
    assert "--setting C (given: D); resume it with the same settings" in err
    assert "--lr" not in err  # follows from --setting
    assert main([*argv, "--width", "2", "--lr", "0.001"]) == 2
    assert "--lr 0.0002 (given: 0.001)" in capsys.readouterr().err
    assert main([*argv, "--width", "2"]) == 0


def test_n_power_iterations_without_spectral_norm_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: the plain discriminator ignored it (its config still recorded the 3)
    argv = ["train", "gan", "--data-dir", str(tmp_path / "no-data"), "--out", str(tmp_path / "r")]
    assert main([*argv, "--no-sn", "--n-power-iterations", "3"]) == 2
    assert capsys.readouterr().err == (
        "gentorch: error: --n-power-iterations 3: the power iteration of spectral "
        "normalization, which --no-sn turns off; leave one of them out\n"
    )
    assert not (tmp_path / "r").exists()


def test_sample_flags_are_checked_before_the_run_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = ["sample", "gan", "--run", str(tmp_path / "no-run")]
    assert main([*run, "--nrow", "0"]) == 2
    expected = "gentorch: error: --nrow: expected a positive integer, got 0\n"
    assert capsys.readouterr().err == expected
    # before: accepted and ignored (sampling reads no data)
    with pytest.raises(SystemExit) as exit_info:
        main([*run, "--data-dir", "d"])
    assert exit_info.value.code == 2
    assert "error: unrecognized arguments: --data-dir d" in capsys.readouterr().err


def test_a_classifier_of_another_dataset_is_refused_before_the_data_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gentorch.evaluation import LeNet, save_classifier

    # before: a Fashion-MNIST LeNet scored MNIST samples without a word
    clf = save_classifier(
        LeNet(), tmp_path / "f.safetensors", metadata={"dataset": "fashion-mnist"}
    )
    argv = ["train", "gan", "--classifier", str(clf), "--out", str(tmp_path / "r")]
    argv += ["--data-dir", str(tmp_path / "no-data")]  # nothing is read: the check comes first
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"gentorch: error: --classifier {str(clf)!r}: was trained on 'fashion-mnist' (its "
        "metadata), and the images are 'mnist'; train one with `gentorch train classifier "
        "--dataset mnist`, or leave --classifier out for the shipped mnist LeNet\n"
    )
    # a file without the entry (saved from Python) is taken as it is
    plain = save_classifier(LeNet(), tmp_path / "p.safetensors")
    argv[3] = str(plain)
    assert main(argv) == 2  # fails later, on the missing data folder
    assert "--classifier" not in capsys.readouterr().err
