"""The user's own data: numeric arrays (``.npy``, ``.csv``) and folders of images.

Arrays are returned as they are (float32, no rescaling): tabular features may be any real
numbers, so a likelihood that needs [0, 1] (Bernoulli) must be chosen or the data scaled by the
user. Images are always mapped to [0, 1] by ``x / 255``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gentorch.data.errors import DatasetError, DatasetNotFoundError
from gentorch.data.registry import DatasetInfo

__all__ = ["IMAGE_SUFFIXES", "load_array", "load_image_folder"]

#: The file suffixes :func:`load_image_folder` reads (compared in lower case).
IMAGE_SUFFIXES: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
)
_GREY_MODES = ("1", "L")
_COLOUR_MODES = ("RGB", "RGBA", "P", "LA", "CMYK", "YCbCr", "PA", "RGBX", "La")


def load_array(
    path: str | os.PathLike[str],
    *,
    label_column: int | str | None = None,
    header: bool | None = None,
    delimiter: str = ",",
) -> tuple[Tensor, Tensor | None]:
    """Load a numeric ``.npy`` or ``.csv`` array as float32 rows, with an optional label column.

    Values are kept as they are: nothing is rescaled or clipped (tabular features outside
    [0, 1] are fine with a Gaussian likelihood; images stored as 0..255 must be divided by the
    user). NaN and infinite values are rejected.

    Args:
        path: a ``.npy`` file (read with ``allow_pickle=False``; shape ``(N, ...)``, numeric) or
            a ``.csv`` / ``.tsv`` / ``.txt`` text file with one example per row.
        label_column: a column holding integer class labels, split off as ``labels``: its index
            (negative counts from the end) or, for a text file with a header, its name.
        header: whether the text file's first row holds column names; ``None`` decides from the
            row itself (a header when any field is not a number).
        delimiter: the text file's field separator.

    Returns:
        ``(x, labels)``: ``x`` float32 ``(N, D)`` (a ``.npy`` of shape ``(N, ...)`` is flattened
        to ``D = prod(...)``), ``labels`` int64 ``(N,)`` or ``None``.

    Raises:
        DatasetNotFoundError: no such file.
        DatasetError: a folder, an unsupported suffix, pickled/object or non-numeric content, a
            1-D array, NaN/Inf, a bad or ambiguous label column (or one that leaves no feature),
            or non-integer labels — naming the file. A (plain) ``ValueError`` for an empty
            ``delimiter``.
        TypeError: ``path`` is not a path, or ``header`` is not a bool or ``None``.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from gentorch.data import load_array
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = Path(tmp, "measurements.csv")
        ...     _ = path.write_text("height,weight,class\\n1.5,60,0\\n1.8,85,1\\n1.7,70,1\\n")
        ...     x, y = load_array(path, label_column="class")
        >>> x
        tensor([[ 1.5000, 60.0000],
                [ 1.8000, 85.0000],
                [ 1.7000, 70.0000]])
        >>> y
        tensor([0, 1, 1])
    """
    path = _as_path(path, "a .npy or .csv file")
    if path.is_dir():
        raise DatasetError(f"path: expected a .npy, .csv, .tsv or .txt file, got the folder {path}")
    if not path.is_file():
        raise DatasetNotFoundError(f"path: no such file {path}")
    if header is not None and not isinstance(header, bool):
        raise TypeError(f"header: expected True, False or None, got {header!r}")
    if not isinstance(delimiter, str) or not delimiter:
        raise ValueError(f"delimiter: expected a non-empty string such as ',', got {delimiter!r}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if isinstance(label_column, str):
            raise DatasetError(
                f"label_column: a .npy file has no column names; pass an index, got "
                f"{label_column!r}"
            )
        table = _read_npy(path)
        names: list[str] | None = None
    elif suffix in (".csv", ".tsv", ".txt"):
        table, names = _read_text(path, header=header, delimiter=delimiter)
    else:
        raise DatasetError(f"path: expected a .npy, .csv, .tsv or .txt file, got {path.name!r}")
    if table.ndim < 2 or len(table) == 0:
        raise DatasetError(
            f"{path}: expected an array of shape (N, D) with N >= 1, got shape {table.shape}"
        )
    labels = None
    if label_column is not None:
        if table.ndim != 2:
            raise DatasetError(
                f"label_column: needs a 2-D (N, D) array, {path} has shape {table.shape}"
            )
        column = _column_index(label_column, names, table.shape[1], path)
        labels = _as_labels(table[:, column], path, label_column)
        table = np.delete(table, column, axis=1)
        if table.shape[1] == 0:
            raise DatasetError(
                f"label_column: {label_column!r} is the only column of {path}, which leaves no "
                f"features; expected at least one other column"
            )
    flat = table.reshape(len(table), -1)
    bad = _non_finite(flat)
    if bad is not None:
        count, row, col = bad
        raise DatasetError(
            f"{path}: {count} values are NaN or infinite (first at row {row}, "
            f"feature {col}); remove or impute them first"
        )
    with np.errstate(over="ignore"):
        x = flat.astype(np.float32)
    # finite values beyond float32's range (|x| > 3.4e38) would become inf when converted
    too_large = _non_finite(x)
    if too_large is not None:
        count, row, col = too_large
        raise DatasetError(
            f"{path}: {count} values are beyond the float32 range (first at row "
            f"{row}, feature {col}: {float(flat[row, col]):g}); rescale the data first"
        )
    return torch.from_numpy(x), labels


def _non_finite(table: np.ndarray) -> tuple[int, int, int] | None:
    """``(count, row, column of the first)`` of the NaN / infinite entries of a 2-D table, or
    ``None`` if there are none."""
    mask = ~np.isfinite(table)
    if not mask.any():
        return None
    row, col = (int(i) for i in np.argwhere(mask)[0])
    return int(mask.sum()), row, col


def _read_npy(path: Path) -> np.ndarray:
    try:
        table = np.load(path, allow_pickle=False)
    except ValueError as err:
        # allow_pickle=False refuses object arrays: user files are never unpickled.
        raise DatasetError(f"{path}: not a plain numeric .npy array ({err})") from None
    if not isinstance(table, np.ndarray):
        raise DatasetError(f"{path}: expected a single .npy array, got {type(table).__name__}")
    if table.dtype.kind not in "biuf":
        raise DatasetError(
            f"{path}: expected a numeric array (bool, int or float), got dtype {table.dtype}"
        )
    return table


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _read_text(
    path: Path, *, header: bool | None, delimiter: str
) -> tuple[np.ndarray, list[str] | None]:
    with open(path, encoding="utf-8-sig") as f:
        first = f.readline().rstrip("\r\n")
    fields = [s.strip() for s in first.split(delimiter)]
    if header is None:
        header = not all(_is_number(s) for s in fields)
    names = [s.strip("\"'") for s in fields] if header else None
    try:
        table = np.loadtxt(
            path,
            delimiter=delimiter,
            skiprows=1 if header else 0,
            dtype=np.float64,
            ndmin=2,
            encoding="utf-8-sig",
        )
    except ValueError as err:
        raise DatasetError(
            f"{path}: expected numeric fields separated by {delimiter!r}"
            f"{' after a header row' if header else ''} ({err})"
        ) from None
    return table, names


def _column_index(column: int | str, names: list[str] | None, width: int, path: Path) -> int:
    if isinstance(column, str):
        if names is None:
            raise DatasetError(
                f"label_column: {column!r} is a name but {path} has no header row; pass an index"
            )
        if column not in names:
            raise DatasetError(f"label_column: {column!r} is not a column of {path}: {names}")
        if names.count(column) > 1:
            raise DatasetError(
                f"label_column: {column!r} names {names.count(column)} columns of {path}: "
                f"{names}; pass the index of the one holding the labels"
            )
        return names.index(column)
    if isinstance(column, bool) or not isinstance(column, int) or not -width <= column < width:
        raise DatasetError(
            f"label_column: expected a column index in [-{width}, {width - 1}] for {path}, "
            f"got {column!r}"
        )
    return column % width


def _as_labels(values: np.ndarray, path: Path, column: int | str) -> Tensor:
    if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
        raise DatasetError(
            f"label_column: column {column!r} of {path} must hold integer class labels, got "
            f"values such as {values[~np.isfinite(values) | (values != np.round(values))][:3]}"
        )
    # int64 holds [-2**63, 2**63); beyond it astype would wrap around silently.
    if values.size and (values.min() < -(2.0**63) or values.max() >= 2.0**63):
        raise DatasetError(
            f"label_column: column {column!r} of {path} must hold integer class labels, got "
            f"values in [{values.min():g}, {values.max():g}], beyond the int64 range"
        )
    return torch.from_numpy(values.astype(np.int64))


def load_image_folder(
    path: str | os.PathLike[str], *, mode: str = "auto"
) -> tuple[Tensor, Tensor | None, DatasetInfo]:
    """Load a folder of same-sized images as flat float rows in [0, 1], with folder labels.

    Layouts: images directly in ``path`` (no labels), or one sub-folder per class
    (``path/<class>/*.png``; labels are indices into the sorted sub-folder names, which
    become ``info.class_names``). Files are read in sorted order; names starting with ``.`` are
    ignored. Suffixes: see :data:`IMAGE_SUFFIXES`.

    Args:
        path: the folder.
        mode: ``"L"`` (grey, C = 1), ``"RGB"`` (C = 3), or ``"auto"``: grey when every image is
            grey (PIL modes ``1``, ``L``), else RGB (grey images are then repeated over the
            three channels). Alpha channels are dropped.

    Returns:
        ``(images, labels, info)``: images float32 ``(N, C*H*W)`` in channel-first order
        (``images.view(N, *info.image_shape)``), ``x / 255``; labels int64 ``(N,)`` or ``None``;
        a :class:`DatasetInfo` with ``image_shape``, ``num_classes`` and ``class_names``.

    Raises:
        TypeError: ``path`` is not a path.
        DatasetNotFoundError: no such folder.
        DatasetError: ``path`` is a file, no images, both loose images and class folders, an
            empty class folder, an unreadable or unsupported image (16-bit, float), or an image
            whose size differs from the first one's (naming that file and both sizes).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from PIL import Image
        >>> from gentorch.data import load_image_folder
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     for name in ("cat", "dog"):
        ...         Path(tmp, name).mkdir()
        ...         for i in range(3):
        ...             Image.new("RGB", (16, 8), (255, 0, 0)).save(Path(tmp, name, f"{i}.png"))
        ...     images, labels, meta = load_image_folder(tmp)
        >>> images.shape, labels.tolist(), meta.image_shape, meta.class_names
        (torch.Size([6, 384]), [0, 0, 0, 1, 1, 1], (3, 8, 16), ('cat', 'dog'))
        >>> images.view(6, *meta.image_shape)[0, :, 0, 0]  # red, as (R, G, B) in [0, 1]
        tensor([1., 0., 0.])
    """
    from PIL import Image

    root = _as_path(path, "a folder of images")
    if root.is_file():
        raise DatasetError(
            f"path: expected a folder of images, got the file {root}; pass its folder {root.parent}"
        )
    if not root.is_dir():
        raise DatasetNotFoundError(f"path: no such folder {root}")
    if mode not in ("auto", "L", "RGB"):
        raise DatasetError(f"mode: expected 'auto', 'L' or 'RGB', got {mode!r}")
    loose = _image_files(root)
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    class_names: tuple[str, ...] | None = None
    if loose and any(_image_files(d) for d in class_dirs):
        raise DatasetError(
            f"{root}: holds both images ({loose[0].name}, ...) and class sub-folders; use one "
            f"layout: all images directly in the folder, or one sub-folder per class"
        )
    if loose:
        files, labels_list = loose, None
    else:
        files, labels_list = [], []
        for label, folder in enumerate(class_dirs):
            found = _image_files(folder)
            if not found:
                raise DatasetError(
                    f"{folder}: class folder without images (suffixes {', '.join(IMAGE_SUFFIXES)})"
                )
            files += found
            labels_list += [label] * len(found)
        class_names = tuple(d.name for d in class_dirs)
    if not files:
        raise DatasetError(f"{root}: no images found (suffixes {', '.join(IMAGE_SUFFIXES)})")

    # First pass: headers only (mode and size), so a bad file is named before any decoding.
    headers = [_header(file) for file in files]
    first_size = headers[0][1]
    for file, (file_mode, size) in zip(files, headers, strict=True):
        if file_mode not in _GREY_MODES + _COLOUR_MODES:
            raise DatasetError(
                f"{file}: unsupported image mode {file_mode!r} (16-bit or float pixels); "
                f"expected 8-bit grey or colour"
            )
        if size != first_size:
            raise DatasetError(
                f"{file}: size {size[0]}x{size[1]} (width x height) differs from "
                f"{first_size[0]}x{first_size[1]} of {files[0]}; all images must have one size"
            )
    modes = [m for m, _ in headers]
    if mode == "auto":
        mode = "L" if all(m in _GREY_MODES for m in modes) else "RGB"
    width, height = first_size
    # Second pass: decode into one preallocated (N, H, W) or (N, H, W, 3) uint8 array.
    stack = np.empty((len(files), height, width) + (() if mode == "L" else (3,)), np.uint8)
    for i, file in enumerate(files):
        try:
            with Image.open(file) as opened:
                stack[i] = np.asarray(opened.convert(mode), dtype=np.uint8)
        except OSError as err:
            raise DatasetError(f"{file}: not a readable image ({err})") from None
    # (N, H, W) or (N, H, W, C) -> (N, C, H, W)
    stack = stack[:, None] if mode == "L" else stack.transpose(0, 3, 1, 2)
    n, c, h, w = stack.shape
    images = torch.from_numpy(np.ascontiguousarray(stack)).reshape(n, -1).to(torch.float32)
    images.div_(255.0)
    labels = None if labels_list is None else torch.tensor(labels_list, dtype=torch.int64)
    meta = DatasetInfo(
        name=root.name,
        image_shape=(c, h, w),
        num_classes=None if class_names is None else len(class_names),
        splits=(),
        description=f"images from {root}",
        class_names=class_names,
    )
    return images, labels, meta


def _header(file: Path) -> tuple[str, tuple[int, int]]:
    """An image's PIL mode and (width, height), from its header alone."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as opened:
            return opened.mode, opened.size
    except (UnidentifiedImageError, OSError) as err:
        raise DatasetError(f"{file}: not a readable image ({err})") from None


def _as_path(path: object, what: str) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"path: expected a str or os.PathLike naming {what}, got {type(path).__name__}"
        )
    return Path(path)


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )
