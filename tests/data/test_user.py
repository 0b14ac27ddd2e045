"""User data: .npy / .csv arrays and image folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gentorch.data import DatasetError, DatasetNotFoundError, load_array, load_image_folder


def test_npy_round_trip_keeps_values(tmp_path: Path) -> None:
    values = np.array([[-3.5, 0.25, 250.0], [1e-3, 7.0, -0.0]])
    np.save(tmp_path / "a.npy", values)
    x, y = load_array(tmp_path / "a.npy")
    assert y is None
    assert x.dtype == torch.float32
    # no rescaling or clipping of tabular values
    torch.testing.assert_close(x, torch.from_numpy(values).float(), rtol=0, atol=0)


def test_npy_images_are_flattened_not_rescaled(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.save(tmp_path / "img.npy", images)
    x, _ = load_array(tmp_path / "img.npy")
    assert x.shape == (2, 12)
    assert torch.equal(x, torch.arange(24, dtype=torch.float32).reshape(2, 12))


def test_npy_label_column(tmp_path: Path) -> None:
    table = np.array([[0.1, 0.2, 1], [0.3, 0.4, 0], [0.5, 0.6, 2]])
    np.save(tmp_path / "t.npy", table)
    x, y = load_array(tmp_path / "t.npy", label_column=-1)
    assert y is not None
    assert torch.equal(y, torch.tensor([1, 0, 2]))
    torch.testing.assert_close(x, torch.tensor(table[:, :2], dtype=torch.float32))
    with pytest.raises(DatasetError, match=r"label_column: a \.npy file has no column names"):
        load_array(tmp_path / "t.npy", label_column="class")
    with pytest.raises(DatasetError, match=r"label_column: expected a column index in \[-3, 2\]"):
        load_array(tmp_path / "t.npy", label_column=3)
    with pytest.raises(DatasetError, match="must hold integer class labels"):
        load_array(tmp_path / "t.npy", label_column=0)


def test_npy_object_arrays_are_never_unpickled(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DatasetError, match=r"not a plain numeric \.npy array"):
        load_array(tmp_path / "obj.npy")


def test_npy_rejects_bad_shapes_and_values(tmp_path: Path) -> None:
    np.save(tmp_path / "flat.npy", np.arange(5.0))
    with pytest.raises(DatasetError, match=r"expected an array of shape \(N, D\).*\(5,\)"):
        load_array(tmp_path / "flat.npy")
    bad = np.ones((4, 3))
    bad[2, 1] = np.nan
    bad[3, 0] = np.inf
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(
        DatasetError, match=r"2 values are NaN or infinite \(first at row 2, feature 1\)"
    ):
        load_array(tmp_path / "nan.npy")
    # finite, but beyond float32 (before: reported as "NaN or infinite" after the cast)
    big = np.ones((3, 2))
    big[1, 1] = -1e300
    np.save(tmp_path / "big.npy", big)
    with pytest.raises(
        DatasetError,
        match=r"1 values are beyond the float32 range \(first at row 1, feature 1: -1e\+300\)",
    ):
        load_array(tmp_path / "big.npy")
    np.save(tmp_path / "str.npy", np.array([["a", "b"]]))
    with pytest.raises(DatasetError, match="expected a numeric array"):
        load_array(tmp_path / "str.npy")


def test_csv_with_header_and_named_label(tmp_path: Path) -> None:
    path = tmp_path / "iris.csv"
    path.write_text("sepal,petal,class\n5.1,-1.4,0\n4.9,1.4e2,2\n")
    x, y = load_array(path, label_column="class")
    torch.testing.assert_close(x, torch.tensor([[5.1, -1.4], [4.9, 140.0]]))
    assert y is not None
    assert y.dtype == torch.int64
    assert y.tolist() == [0, 2]
    with pytest.raises(
        DatasetError, match=r"'kind' is not a column .*\['sepal', 'petal', 'class'\]"
    ):
        load_array(path, label_column="kind")


def test_csv_without_header(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("1,2,3\n4,5,6\n")
    x, y = load_array(path)
    assert y is None
    assert x.tolist() == [[1, 2, 3], [4, 5, 6]]
    with pytest.raises(DatasetError, match=r"is a name but .* has no header row"):
        load_array(path, label_column="c")
    # header=True forces the first row out even though it is numeric
    x, _ = load_array(path, header=True)
    assert x.tolist() == [[4, 5, 6]]
    one_row = tmp_path / "one.csv"
    one_row.write_text("0.5,0.25\n")
    assert load_array(one_row)[0].shape == (1, 2)


def test_tsv_and_bad_text(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text("a\tb\n1\t2\n3\t4\n")
    x, _ = load_array(path, delimiter="\t")
    assert x.tolist() == [[1, 2], [3, 4]]
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,x\n")
    with pytest.raises(DatasetError, match=r"bad\.csv: expected numeric fields"):
        load_array(bad)


def test_array_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="no such file"):
        load_array(tmp_path / "missing.npy")
    (tmp_path / "a.json").write_text("[]")
    with pytest.raises(DatasetError, match=r"expected a .npy, .csv, .tsv or .txt file"):
        load_array(tmp_path / "a.json")


def _save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def test_grey_folder_without_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, size=(3, 5, 4), dtype=np.uint8)
    for i, g in enumerate(grey):
        _save(tmp_path / f"img{i}.png", g)
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / ".hidden.png").write_text("ignored")
    images, labels, meta = load_image_folder(tmp_path)
    assert labels is None
    assert meta.image_shape == (1, 5, 4)
    assert meta.num_classes is None
    assert images.shape == (3, 20)
    assert images.dtype == torch.float32
    torch.testing.assert_close(images, torch.from_numpy(grey.reshape(3, 20) / 255.0).float())


def test_rgb_class_folders(tmp_path: Path) -> None:
    # pixel (R, G, B) = (10, 20, 30) for class "cat", (200, 100, 0) for class "dog"
    cat = np.broadcast_to(np.array([10, 20, 30], np.uint8), (2, 3, 3)).copy()
    dog = np.broadcast_to(np.array([200, 100, 0], np.uint8), (2, 3, 3)).copy()
    _save(tmp_path / "dog" / "a.png", dog)
    _save(tmp_path / "cat" / "b.png", cat)
    _save(tmp_path / "cat" / "a.png", cat)
    images, labels, meta = load_image_folder(tmp_path)
    assert meta.class_names == ("cat", "dog")
    assert meta.num_classes == 2
    assert meta.image_shape == (3, 2, 3)
    assert labels is not None
    assert labels.tolist() == [0, 0, 1]
    chw = images.view(3, *meta.image_shape)
    # channel-first layout: channel c is the plane of colour c
    torch.testing.assert_close(chw[0, :, 0, 0], torch.tensor([10, 20, 30]) / 255.0)
    torch.testing.assert_close(chw[2, :, 1, 2], torch.tensor([200, 100, 0]) / 255.0)
    assert torch.equal(chw[0, 0], torch.full((2, 3), 10 / 255.0))


def test_mixed_grey_and_colour_becomes_rgb(tmp_path: Path) -> None:
    _save(tmp_path / "g.png", np.full((2, 2), 77, np.uint8))
    _save(tmp_path / "c.png", np.full((2, 2, 3), 5, np.uint8))
    images, _, meta = load_image_folder(tmp_path)
    assert meta.image_shape == (3, 2, 2)
    # sorted file order: c.png then g.png; grey is repeated over the three channels
    assert torch.equal(images[1], torch.full((12,), 77 / 255.0))
    grey, _, meta_l = load_image_folder(tmp_path, mode="L")
    assert meta_l.image_shape == (1, 2, 2)
    assert torch.equal(grey[1], torch.full((4,), 77 / 255.0))


def test_size_mismatch_names_the_file(tmp_path: Path) -> None:
    _save(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    _save(tmp_path / "b.png", np.zeros((4, 4), np.uint8))
    _save(tmp_path / "c.png", np.zeros((5, 4), np.uint8))
    with pytest.raises(DatasetError, match=r"c\.png: size 4x5 .* differs from 4x4 of .*a\.png"):
        load_image_folder(tmp_path)


def test_folder_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="no such folder"):
        load_image_folder(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no images found"):
        load_image_folder(empty)
    both = tmp_path / "both"
    _save(both / "x.png", np.zeros((2, 2), np.uint8))
    _save(both / "cls" / "y.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(DatasetError, match=r"both images .* and class sub-folders"):
        load_image_folder(both)
    hollow = tmp_path / "hollow"
    _save(hollow / "a" / "y.png", np.zeros((2, 2), np.uint8))
    (hollow / "b").mkdir()
    with pytest.raises(DatasetError, match=r"hollow/b: class folder without images"):
        load_image_folder(hollow)
    with pytest.raises(DatasetError, match="mode: expected 'auto', 'L' or 'RGB', got 'CMYK'"):
        load_image_folder(hollow, mode="CMYK")


def test_unreadable_and_unsupported_images(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"x\.png: not a readable image"):
        load_image_folder(broken)
    deep = tmp_path / "deep"
    _save(deep / "x.png", np.full((2, 2), 1000, np.uint16))
    with pytest.raises(DatasetError, match="unsupported image mode"):
        load_image_folder(deep)


def test_truncated_image_is_named(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    _save(tmp_path / "a.png", rng.integers(0, 256, size=(64, 64), dtype=np.uint8))
    _save(tmp_path / "b.png", rng.integers(0, 256, size=(64, 64), dtype=np.uint8))
    data = (tmp_path / "b.png").read_bytes()
    # keep the header (size and mode stay readable), cut the pixel data
    (tmp_path / "b.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"b\.png: not a readable image"):
        load_image_folder(tmp_path)


def test_bilevel_images_are_grey_zero_or_one(tmp_path: Path) -> None:
    bits = np.array([[0, 1, 1], [1, 0, 0]], dtype=bool)
    Image.fromarray(bits).save(tmp_path / "bits.png")
    images, _, meta = load_image_folder(tmp_path)
    assert meta.image_shape == (1, 2, 3)
    assert images.tolist() == [[0.0, 1.0, 1.0, 1.0, 0.0, 0.0]]
