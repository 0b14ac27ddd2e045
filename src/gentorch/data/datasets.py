"""``load``: the named datasets as one float tensor of flat images and one label tensor.

Decoded IDX arrays are cached as ``.npy`` files in ``<cache_dir>/decoded/<md5 of source>.npy``
(never next to the sources, which may be read-only); a load after the first skips gunzip and
costs only the uint8 -> float32 conversion. Set ``GENTORCH_CACHE`` to move that folder; when it
cannot be written, nothing is cached.
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gentorch.data.checksums import verify_file
from gentorch.data.download import dataset_folder, fetch_missing
from gentorch.data.errors import DatasetError
from gentorch.data.idx import read_idx
from gentorch.data.locations import cache_dir
from gentorch.data.registry import FILES, RemoteFile, info

__all__ = ["BINARIZE_MODES", "load"]

#: The values of ``load(..., binarize=)`` besides ``None``.
BINARIZE_MODES: tuple[str, ...] = ("dynamic", "threshold")

# The digits split: a permutation from numpy's legacy RandomState(0), whose stream numpy
# guarantees never to change (NEP 19); the first 80% of it is "train", the rest "test".
_DIGITS_SEED = 0
_DIGITS_TRAIN_FRACTION = 0.8


def load(
    name: str,
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    *,
    binarize: str | None = None,
    generator: torch.Generator | None = None,
    download: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Load a named dataset split as flat float images in [0, 1] and int64 labels.

    Files are looked for in ``<root>/<name>/``; ``root`` defaults to ``$GENTORCH_DATA``, else
    the cache folder (``~/.cache/gentorch``). Every file is md5-verified (once per process and
    file version). ``"digits"`` ships with scikit-learn and needs no files.

    Args:
        name: ``"mnist"``, ``"fashion-mnist"`` (splits ``"train"``, ``"test"``),
            ``"binarized-mnist"`` (``"train"``, ``"valid"``, ``"test"``; no labels) or
            ``"digits"`` (``"train"``, ``"test"``: the last 20% of a fixed seeded permutation
            of the 1797 images is the test split).
        split: which split.
        root: the folder holding one sub-folder per dataset.
        binarize: ``None`` keeps grey levels; ``"dynamic"`` draws ``Bernoulli(x)`` per pixel once
            with ``generator`` (for a fresh draw every epoch, binarize each batch instead:
            ``Batches(..., binarize="dynamic")``); ``"threshold"`` maps ``x > 0.5`` to 1.
        generator: the CPU random generator of ``binarize="dynamic"`` (default: torch's global
            one); unused otherwise.
        download: fetch this split's missing or corrupt files from the public mirrors into
            ``<root>/<name>/`` first (ignored for ``"digits"``, which ships with scikit-learn).

    Returns:
        ``(images, labels)``: images ``(N, D)`` float32 in [0, 1] (``D = 784`` for the MNIST
        family, 64 for digits; reshape with ``info(name).image_shape``), labels ``(N,)`` int64,
        or ``None`` for ``"binarized-mnist"``. Both on the CPU; move them once to the device.

    Raises:
        DatasetError: (a ``ValueError``) unknown name, split or binarize mode (listing the valid
            ones), a ``root`` that is a file or the dataset's own folder (``<root>/mnist`` given
            as ``root``), a corrupt file (naming it, its expected md5 and where to put it), or a
            malformed one. :class:`DatasetNotFoundError` (also a ``FileNotFoundError``) for a
            missing file.
        TypeError: ``generator`` is not a ``torch.Generator`` or ``download`` not a bool.
        ValueError: ``generator`` is not on the CPU.

    Example:
        >>> from gentorch.data import load
        >>> images, labels = load("digits", "test")  # offline; "mnist" gives (10000, 784)
        >>> images.shape, images.dtype, labels.shape, labels.dtype
        (torch.Size([360, 64]), torch.float32, torch.Size([360]), torch.int64)
        >>> float(images.min()), float(images.max())
        (0.0, 1.0)
        >>> binary, _ = load("digits", "test", binarize="threshold")
        >>> sorted(binary.unique().tolist())
        [0.0, 1.0]
    """
    meta = info(name)
    if split not in meta.splits:
        raise DatasetError(
            f"split: {name} has no split {split!r}; expected one of {', '.join(meta.splits)}"
        )
    if binarize is not None and binarize not in BINARIZE_MODES:
        raise DatasetError(
            f"binarize: expected None or one of {', '.join(BINARIZE_MODES)}, got {binarize!r}"
        )
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator: expected a torch.Generator or None, got {type(generator).__name__}"
        )
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(
            f"generator: expected a CPU generator (the images are loaded on the CPU), got one on "
            f"{generator.device}"
        )
    if not isinstance(download, bool):
        raise TypeError(f"download: expected True or False, got {download!r}")
    if name == "digits":
        grey, labels = _digits(split)
        images = torch.from_numpy(grey.copy())
    else:
        folder = dataset_folder(name, root)
        files = FILES[name][split]
        base = folder.parent
        if not download and not folder.exists() and (base / files[0].filename).is_file():
            raise DatasetError(
                f"root: expected the folder holding one sub-folder per dataset, got {base}, "
                f"which holds the {name} files themselves; pass root={str(base.parent)!r}"
            )
        if download:
            fetch_missing(name, folder, files)
        paths = [verify_file(folder / f.filename, f, name) for f in files]
        if name == "binarized-mnist":
            images = torch.from_numpy(_read_binarized(paths[0])).to(torch.float32)
            labels = None
        else:
            images = _to_unit_float(_cached_idx(paths[0], files[0]))
            labels = _labels(_cached_idx(paths[1], files[1]), paths[1], len(images))
    images = images.reshape(len(images), -1)
    if binarize == "dynamic":
        # x_b ~ Bernoulli(x), independently per pixel
        images = torch.bernoulli(images, generator=generator)
    elif binarize == "threshold":
        images = (images > 0.5).to(torch.float32)
    return images, labels


def _to_unit_float(raw: np.ndarray) -> Tensor:
    """uint8 ``(N, ...)`` -> float32 ``(N, ...)`` in [0, 1]; ``x / 255``."""
    writable = raw if raw.flags.writeable else raw.copy()
    return torch.from_numpy(writable).to(torch.float32).div_(255.0)


def _labels(raw: np.ndarray, path: Path, n_images: int) -> Tensor:
    if raw.ndim != 1 or len(raw) != n_images:
        raise DatasetError(
            f"{path}: expected {n_images} labels (one per image) of shape ({n_images},), "
            f"got shape {raw.shape}"
        )
    return torch.from_numpy(raw.astype(np.int64))


def _cached_idx(path: Path, remote: RemoteFile) -> np.ndarray:
    """Decode a verified IDX file, through the ``.npy`` cache keyed by its md5."""
    cached = cache_dir() / "decoded" / f"{remote.md5}.npy"
    try:
        return np.asarray(np.load(cached, allow_pickle=False))
    except (OSError, ValueError):
        pass
    values = read_idx(path)
    _try_save(cached, values)
    return values


def _try_save(path: Path, values: np.ndarray) -> None:
    """Write ``values`` to ``path`` atomically; skip silently where the folder is not writable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, values, allow_pickle=False)
        os.replace(tmp, path)
    except OSError:
        pass
    finally:
        Path(tmp).unlink(missing_ok=True)


def _read_binarized(path: Path) -> np.ndarray:
    """The ``X`` matrix of a binarized-MNIST ``.mat`` file: ``(N, 784)`` uint8 in {0, 1}."""
    import scipy.io

    try:
        content = scipy.io.loadmat(path, variable_names=["X"])
    except (ValueError, OSError, TypeError) as err:
        raise DatasetError(f"{path}: not a readable MATLAB file ({err})") from None
    if "X" not in content:
        raise DatasetError(f"{path}: no variable 'X' in the MATLAB file")
    values = np.asarray(content["X"])
    if values.ndim != 2 or values.shape[1] != 784:
        raise DatasetError(f"{path}: expected X of shape (N, 784), got {values.shape}")
    if values.size and (values.min() < 0 or values.max() > 1):
        raise DatasetError(
            f"{path}: expected values in {{0, 1}}, got [{values.min()}, {values.max()}]"
        )
    return values


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # pixel values are counts 0..16 -> [0, 1]
    grey = (np.asarray(bunch.data, dtype=np.float32) / 16.0).astype(np.float32)
    return grey, np.asarray(bunch.target, dtype=np.int64)


def digits_split_indices(split: str) -> np.ndarray:
    """Indices into scikit-learn's ``load_digits()`` that make up ``split`` of ``"digits"``.

    A permutation from ``numpy.random.RandomState(0)`` (a stream numpy keeps fixed across
    versions); its first ``int(0.8 * 1797) = 1437`` entries are ``"train"``, the other 360
    ``"test"``. ``load("digits", split)`` returns ``load_digits()``'s rows in this order, so
    these indices map its examples back to scikit-learn's.

    Args:
        split: ``"train"`` or ``"test"``.

    Returns:
        A 1-D int array of distinct indices in ``[0, 1797)``, in split order: ``(1437,)`` for
        ``"train"``, ``(360,)`` for ``"test"``; the two splits are disjoint and cover all.

    Raises:
        DatasetError: any other split name.

    Example:
        >>> import numpy as np
        >>> from gentorch.data import digits_split_indices
        >>> train, test = digits_split_indices("train"), digits_split_indices("test")
        >>> len(train), len(test)
        (1437, 360)
        >>> bool(np.array_equal(np.sort(np.concatenate([train, test])), np.arange(1797)))
        True
    """
    grey, _ = _digits_arrays()
    n = len(grey)
    perm = np.random.RandomState(_DIGITS_SEED).permutation(n)
    n_train = int(_DIGITS_TRAIN_FRACTION * n)
    if split == "train":
        return perm[:n_train]
    if split == "test":
        return perm[n_train:]
    raise DatasetError(f"split: digits has no split {split!r}; expected one of train, test")


def _digits(split: str) -> tuple[np.ndarray, Tensor]:
    grey, target = _digits_arrays()
    index = digits_split_indices(split)
    return grey[index], torch.from_numpy(target[index])
