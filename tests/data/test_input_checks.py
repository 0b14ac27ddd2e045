"""Bad input to gentorch.data: a clear error naming the argument and what it received."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from gentorch.data import (
    Batches,
    DatasetError,
    data_root,
    download,
    load,
    load_array,
    load_image_folder,
    parse_idx,
)


def test_batches_refuse_an_empty_dataset() -> None:
    with pytest.raises(ValueError, match=r"x: expected at least one example, got shape \(0, 4\)"):
        Batches(torch.rand(0, 4), batch_size=4)


def test_batches_refuse_drop_last_with_a_batch_larger_than_the_data() -> None:
    with pytest.raises(ValueError, match=r"batch_size: 20 is larger than the 10 examples"):
        Batches(torch.rand(10, 4), batch_size=20, drop_last=True)
    assert len(Batches(torch.rand(10, 4), batch_size=20)) == 1  # without drop_last: one batch


def test_batches_flags_must_be_bools() -> None:
    x = torch.rand(10, 4)
    with pytest.raises(TypeError, match=r"shuffle: expected True or False, got 'no'"):
        Batches(x, batch_size=4, shuffle="no")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"drop_last: expected True or False, got None"):
        Batches(x, batch_size=4, drop_last=None)  # type: ignore[arg-type]


def test_batches_dynamic_binarization_needs_values_in_unit_interval() -> None:
    with pytest.raises(
        ValueError, match=r"x: binarize='dynamic' .* \[0, 1\], got range \[0, 255\]"
    ):
        Batches(torch.tensor([[0.0, 255.0]]), batch_size=1, binarize="dynamic")
    with pytest.raises(ValueError, match=r"x: binarize='dynamic' .* got range \[nan, nan\]"):
        Batches(torch.full((2, 2), float("nan")), batch_size=1, binarize="dynamic")


def test_batches_unknown_device_is_named() -> None:
    with pytest.raises(ValueError, match=r"device: expected a device such as .* got 'gpu'"):
        Batches(torch.rand(4, 2), batch_size=2, device="gpu")
    with pytest.raises(ValueError, match=r"device: expected a device such as .* got 'gpu'"):
        Batches(torch.rand(4, 2), batch_size=2).to("gpu")


def test_load_root_that_is_a_file_or_the_dataset_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(
        DatasetError, match=r"root: expected the folder .* got the file .*notes.txt"
    ):
        load("mnist", "test", root=tmp_path / "notes.txt")
    with pytest.raises(
        DatasetError, match=r"root: expected the folder .* got the file .*notes.txt"
    ):
        download("mnist", root=tmp_path / "notes.txt", mirrors=["file:///nowhere"])
    # root pointing at <root>/mnist itself: name the right root
    inner = tmp_path / "mnist_files"
    inner.mkdir()
    (inner / "t10k-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(
        DatasetError, match=re.escape(f"holds the mnist files themselves; pass root='{tmp_path}'")
    ):
        load("mnist", "test", root=inner)
    with pytest.raises(TypeError, match=r"root: expected a str or os.PathLike .* got int"):
        data_root(5)  # type: ignore[arg-type]


def test_load_generator_and_download_types() -> None:
    with pytest.raises(TypeError, match=r"generator: expected a torch.Generator or None, got int"):
        load("digits", binarize="dynamic", generator=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"download: expected True or False, got 'no'"):
        load("digits", download="no")  # type: ignore[arg-type]


def test_download_mirrors_and_timeout(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"mirrors: expected a sequence of base URLs .* single str"):
        download("mnist", root=tmp_path, mirrors="file:///srv/mnist")
    with pytest.raises(ValueError, match=r"timeout: expected a positive number of seconds, got 0"):
        download("mnist", root=tmp_path, mirrors=["file:///srv/mnist"], timeout=0)
    assert list(tmp_path.iterdir()) == []


def test_parse_idx_needs_bytes() -> None:
    with pytest.raises(TypeError, match=r"data: expected the bytes of an IDX file, got str"):
        parse_idx("abc")  # type: ignore[arg-type]
    assert parse_idx(bytes([0, 0, 0x08, 1, 0, 0, 0, 2, 7, 8])).tolist() == [7, 8]


def test_load_array_path_header_and_delimiter(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(
        DatasetError, match=r"path: expected a .npy, .csv, .tsv or .txt file, got the folder"
    ):
        load_array(tmp_path)
    with pytest.raises(TypeError, match=r"path: expected a str or os.PathLike .* got NoneType"):
        load_array(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"header: expected True, False or None, got 'yes'"):
        load_array(csv, header="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"delimiter: expected a non-empty string .* got ''"):
        load_array(csv, delimiter="")


def test_load_array_label_column_problems(tmp_path: Path) -> None:
    dupe = tmp_path / "dupe.csv"
    dupe.write_text("a,a,c\n1,2,1\n3,4,0\n")
    with pytest.raises(DatasetError, match=r"label_column: 'a' names 2 columns"):
        load_array(dupe, label_column="a")
    only = tmp_path / "only.csv"
    only.write_text("y\n1\n0\n")
    with pytest.raises(DatasetError, match=r"label_column: 'y' is the only column .* no features"):
        load_array(only, label_column="y")
    huge = tmp_path / "huge.npy"
    np.save(huge, np.array([[0.5, 1e30], [0.25, 1.0]]))
    with pytest.raises(
        DatasetError, match=r"label_column: .* values in \[1, 1e\+30\], beyond the int64"
    ):
        load_array(huge, label_column=1)


def test_load_image_folder_given_a_file(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("L", (4, 4)).save(tmp_path / "a.png")
    with pytest.raises(
        DatasetError, match=r"path: expected a folder of images, got the file .*a\.png"
    ):
        load_image_folder(tmp_path / "a.png")
    with pytest.raises(TypeError, match=r"path: expected a str or os.PathLike .* got int"):
        load_image_folder(3)  # type: ignore[arg-type]
