"""gentorch.data.load / info on the real files: shapes, dtypes, ranges, counts, errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from gentorch.data import (
    DATASETS,
    ChecksumError,
    DatasetNotFoundError,
    cache_dir,
    digits_split_indices,
    info,
    load,
)

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture(scope="module")
def mnist_train() -> tuple[torch.Tensor, torch.Tensor]:
    root = Path(os.environ["GENTORCH_DATA"])
    if not (root / "mnist").is_dir():
        pytest.skip(f"shared datasets not found at {root}")
    x, y = load("mnist", "train")
    assert y is not None
    return x, y


def _copy_split(shared: Path, dest: Path, name: str, files: list[str]) -> Path:
    (dest / name).mkdir(parents=True)
    for f in files:
        shutil.copy(shared / name / f, dest / name / f)
    return dest


MNIST_TEST_FILES = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_info_of_every_dataset() -> None:
    assert set(DATASETS) == {"mnist", "fashion-mnist", "binarized-mnist", "digits"}
    assert info("mnist").image_shape == (1, 28, 28)
    assert info("mnist").dim == 784
    assert info("binarized-mnist").num_classes is None
    assert info("binarized-mnist").splits == ("train", "valid", "test")
    assert info("digits").image_shape == (1, 8, 8)
    class_names = info("fashion-mnist").class_names
    assert class_names is not None
    assert class_names[9] == "Ankle boot"
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar'.*mnist, fashion-mnist"):
        info("cifar")


def test_mnist_train(mnist_train: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = mnist_train
    assert x.shape == (60000, 784)
    assert x.dtype == torch.float32
    assert y.shape == (60000,)
    assert y.dtype == torch.int64
    assert float(x.min()) == 0.0
    assert float(x.max()) == 1.0
    assert torch.bincount(y, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    # The README gives the mean rounded to 4 decimals: within half a unit of the last digit.
    assert abs(float(x.double().mean()) - 0.1307) <= 5e-5
    # values are k / 255 for integer k
    k = x[:100] * 255
    assert torch.equal(k, k.round())


def test_mnist_test_split(shared_data: Path) -> None:
    x, y = load("mnist", "test")
    assert x.shape == (10000, 784)
    assert y is not None
    assert y.shape == (10000,)
    assert torch.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize(("split", "n"), [("train", 6000), ("test", 1000)])
def test_fashion_mnist(shared_data: Path, split: str, n: int) -> None:
    x, y = load("fashion-mnist", split)
    assert x.shape == (10 * n, 784)
    assert x.dtype == torch.float32
    assert float(x.min()) >= 0.0
    assert float(x.max()) <= 1.0
    assert y is not None
    assert torch.bincount(y).tolist() == [n] * 10


@pytest.mark.parametrize(("split", "n"), [("train", 50000), ("valid", 10000), ("test", 10000)])
def test_binarized_mnist(shared_data: Path, split: str, n: int) -> None:
    x, y = load("binarized-mnist", split)
    assert y is None
    assert x.shape == (n, 784)
    assert x.dtype == torch.float32
    assert bool(((x == 0) | (x == 1)).all())
    # Binarizations of MNIST digits: E[Bernoulli(x)] = x, so the ink fraction is near MNIST's
    # mean grey level 0.1307; split-to-split variation of that mean over >= 10000 images is
    # ~3e-4 (per-image std ~0.04 / sqrt(10000)), hence the 3e-3 bound.
    assert abs(float(x.mean()) - 0.1307) < 3e-3


def test_digits_split_is_deterministic_disjoint_and_complete() -> None:
    train, test = digits_split_indices("train"), digits_split_indices("test")
    assert len(train) == 1437
    assert len(test) == 360
    assert not set(train.tolist()) & set(test.tolist())
    assert sorted(train.tolist() + test.tolist()) == list(range(1797))
    np.testing.assert_array_equal(train, digits_split_indices("train"))
    # RandomState(0)'s stream is frozen by numpy (NEP 19): the first test indices never change.
    np.testing.assert_array_equal(test, np.random.RandomState(0).permutation(1797)[1437:])


def test_digits_values_and_labels() -> None:
    bunch = load_digits()
    for split in ("train", "test"):
        x, y = load("digits", split)
        index = digits_split_indices(split)
        assert x.dtype == torch.float32
        assert x.shape == (len(index), 64)
        assert y is not None
        assert y.dtype == torch.int64
        torch.testing.assert_close(x, torch.from_numpy(bunch.data[index] / 16.0).float())
        assert torch.equal(y, torch.from_numpy(bunch.target[index]))
        assert float(x.min()) == 0.0
        assert float(x.max()) == 1.0
        assert torch.bincount(y, minlength=10).min() > 0
    x1, _ = load("digits", "test")
    assert torch.equal(x1, load("digits", "test")[0])


def test_dynamic_binarization_statistics(shared_data: Path) -> None:
    grey, _ = load("mnist", "test")
    g = torch.Generator().manual_seed(1)
    binary, _ = load("mnist", "test", binarize="dynamic", generator=g)
    assert binary.shape == grey.shape
    assert bool(((binary == 0) | (binary == 1)).all())
    # Pixels at exactly 0 or 1 are deterministic under Bernoulli(x).
    assert torch.all(binary[grey == 0] == 0)
    assert torch.all(binary[grey == 1] == 1)
    # mean of n = 7.84e6 independent Bernoulli(x_i): std = sqrt(sum x(1-x)) / n <= 0.5 / sqrt(n)
    # = 1.8e-4; 6 standard deviations -> 1.1e-3.
    n = grey.numel()
    bound = 6 * float((grey * (1 - grey)).sum().sqrt()) / n
    assert abs(float(binary.mean()) - float(grey.mean())) < bound
    # Per-pixel frequencies follow x too: on pixels with grey in [0.4, 0.6] the ink fraction
    # is their mean grey within 6 std.
    band = (grey > 0.4) & (grey < 0.6)
    m = int(band.sum())
    assert abs(float(binary[band].mean()) - float(grey[band].mean())) < 6 * 0.5 / m**0.5
    # The draw is a function of the generator's seed.
    again, _ = load("mnist", "test", binarize="dynamic", generator=torch.Generator().manual_seed(1))
    other, _ = load("mnist", "test", binarize="dynamic", generator=torch.Generator().manual_seed(2))
    assert torch.equal(binary, again)
    assert not torch.equal(binary, other)


def test_threshold_binarization() -> None:
    grey, _ = load("digits", "train")
    binary, _ = load("digits", "train", binarize="threshold")
    assert torch.equal(binary, (grey > 0.5).float())


def test_bad_arguments_list_the_valid_values() -> None:
    with pytest.raises(ValueError, match=r"unknown dataset 'mnsit'; expected one of mnist"):
        load("mnsit")
    with pytest.raises(ValueError, match=r"no split 'valid'; expected one of train, test"):
        load("mnist", "valid")
    with pytest.raises(ValueError, match=r"binarize: expected None or one of dynamic, threshold"):
        load("digits", binarize="stochastic")


def test_missing_file_message(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        load("mnist", "test", root=tmp_path)
    assert isinstance(err.value, FileNotFoundError)
    assert isinstance(err.value, ValueError)
    message = str(err.value)
    assert "t10k-images-idx3-ubyte.gz" in message
    assert "9fb629c4189551a2d022fa330f9573f3" in message
    assert str(tmp_path / "mnist") in message
    assert "download=True" in message
    assert "GENTORCH_DATA" in message
    assert "--data-dir" in message


def test_corrupt_file_message(shared_data: Path, tmp_path: Path) -> None:
    root = _copy_split(shared_data, tmp_path, "mnist", MNIST_TEST_FILES)
    labels = root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(labels.read_bytes())
    data[100] ^= 0xFF
    labels.chmod(0o644)
    labels.write_bytes(bytes(data))
    with pytest.raises(ChecksumError) as err:
        load("mnist", "test", root=root)
    message = str(err.value)
    assert isinstance(err.value, ValueError)
    assert str(labels) in message
    assert "expected md5 ec29112dd5afa0611ce80d1b7f02629c" in message
    assert "found md5 " in message
    assert "download=True" in message
    # a truncated file is reported by its size
    labels.write_bytes(bytes(data[:1000]))
    with pytest.raises(ChecksumError, match=r"found 1000 bytes"):
        load("mnist", "test", root=root)


def test_root_argument_and_environment(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy_split(shared_data, tmp_path / "copy", "mnist", MNIST_TEST_FILES)
    monkeypatch.setenv("GENTORCH_DATA", str(root))
    x_env, _ = load("mnist", "test")
    monkeypatch.setenv("GENTORCH_DATA", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="empty"):
        load("mnist", "test")
    x_root, _ = load("mnist", "test", root=root)
    assert torch.equal(x_env, x_root)
    # Without GENTORCH_DATA the cache folder is the root.
    monkeypatch.delenv("GENTORCH_DATA")
    monkeypatch.setenv("GENTORCH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "cache" / "mnist")):
        load("mnist", "test")


def test_decode_cache_is_outside_the_sources(shared_data: Path) -> None:
    before = sorted(p.name for p in (shared_data / "mnist").iterdir())
    x1, y1 = load("mnist", "test")
    cached = cache_dir() / "decoded" / "9fb629c4189551a2d022fa330f9573f3.npy"
    assert cached.is_file()
    x2, y2 = load("mnist", "test")
    assert torch.equal(x1, x2)
    assert y1 is not None
    assert y2 is not None
    assert torch.equal(y1, y2)
    assert sorted(p.name for p in (shared_data / "mnist").iterdir()) == before


def test_damaged_decode_cache_falls_back_to_the_source(shared_data: Path) -> None:
    expected, _ = load("mnist", "test")
    cached = cache_dir() / "decoded" / "9fb629c4189551a2d022fa330f9573f3.npy"
    cached.write_bytes(cached.read_bytes()[:1000])
    x, _ = load("mnist", "test")
    assert torch.equal(x, expected)


def test_unwritable_cache_is_skipped(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cache path below a regular file cannot be created (not even by root): loading must
    # work and skip the cache quietly.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("GENTORCH_CACHE", str(blocker / "cache"))
    x, _ = load("mnist", "test")
    assert x.shape == (10000, 784)
    assert list(tmp_path.iterdir()) == [blocker]
