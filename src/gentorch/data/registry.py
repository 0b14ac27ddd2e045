"""The table of known datasets: what they are, their files, checksums and mirrors.

The md5 sums and sizes are those of the official files (see the shared data README); every file
read or downloaded is checked against them.
"""

from __future__ import annotations

from dataclasses import dataclass

from gentorch.data.errors import DatasetError

__all__ = ["DATASETS", "DatasetInfo", "RemoteFile", "info"]


@dataclass(frozen=True)
class DatasetInfo:
    """What a named dataset is: enough to reshape its flat ``(N, D)`` images and label plots.

    A frozen dataclass: :func:`gentorch.data.info` returns one for each named dataset and
    :func:`gentorch.data.load_image_folder` builds one for a folder of images. Every argument
    is also a read-only field of the same name.

    Args:
        name: the name :func:`gentorch.data.load` takes (for an image folder: its name).
        image_shape: ``(C, H, W)`` of one image; ``D = C * H * W`` (see :attr:`dim`).
        num_classes: number of label values, or ``None`` when the dataset has no labels.
        splits: the split names :func:`gentorch.data.load` accepts (``()`` for an image folder).
        description: one line on origin and content.
        class_names: the name of each label value (index = label), or ``None``.

    Example:
        >>> from gentorch.data import info, load
        >>> meta = info("digits")
        >>> meta.image_shape, meta.dim, meta.num_classes, meta.splits
        ((1, 8, 8), 64, 10, ('train', 'test'))
        >>> images, _ = load("digits", "test")
        >>> images.view(-1, *meta.image_shape).shape
        torch.Size([360, 1, 8, 8])
    """

    name: str
    image_shape: tuple[int, int, int]
    num_classes: int | None
    splits: tuple[str, ...]
    description: str
    class_names: tuple[str, ...] | None = None

    @property
    def dim(self) -> int:
        """``D = C * H * W``, the width of the flat images."""
        c, h, w = self.image_shape
        return c * h * w


@dataclass(frozen=True)
class RemoteFile:
    """One published file of a dataset: its name in ``<root>/<dataset>/``, size and md5.

    Args:
        filename: the file's name in ``<root>/<dataset>/``.
        size: its size in bytes.
        md5: its md5 hex digest (lower case).

    Example:
        >>> from gentorch.data.registry import FILES
        >>> [f.filename for f in FILES["mnist"]["test"]]
        ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']
        >>> FILES["mnist"]["test"][1].size
        4542
    """

    filename: str
    size: int
    md5: str


_MNIST_FILES: dict[str, tuple[RemoteFile, ...]] = {
    "train": (
        RemoteFile("train-images-idx3-ubyte.gz", 9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        RemoteFile("train-labels-idx1-ubyte.gz", 28881, "d53e105ee54ea40749a09fcbcd1e9432"),
    ),
    "test": (
        RemoteFile("t10k-images-idx3-ubyte.gz", 1648877, "9fb629c4189551a2d022fa330f9573f3"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", 4542, "ec29112dd5afa0611ce80d1b7f02629c"),
    ),
}

_FASHION_FILES: dict[str, tuple[RemoteFile, ...]] = {
    "train": (
        RemoteFile("train-images-idx3-ubyte.gz", 26421880, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        RemoteFile("train-labels-idx1-ubyte.gz", 29515, "25c81989df183df01b3e8a0aad5dffbe"),
    ),
    "test": (
        RemoteFile("t10k-images-idx3-ubyte.gz", 4422102, "bef4ecab320f06d8554ea6380940ec79"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", 5148, "bb300cfdad3c16e7a12a480ee83cd310"),
    ),
}

_BINARIZED_FILES: dict[str, tuple[RemoteFile, ...]] = {
    "train": (
        RemoteFile("binarized_mnist_train.mat", 2852060, "4e26f7a5b466cfcde0fa4876fa4b60a6"),
    ),
    "valid": (RemoteFile("binarized_mnist_valid.mat", 571883, "3c8c0bae400a11eda4c6caf6642d7d34"),),
    "test": (RemoteFile("binarized_mnist_test.mat", 490132, "3478bd31ef84368bf30234a011d886fa"),),
}

# Per dataset and split: the files, in the order (images, labels) where there are labels.
FILES: dict[str, dict[str, tuple[RemoteFile, ...]]] = {
    "mnist": _MNIST_FILES,
    "fashion-mnist": _FASHION_FILES,
    "binarized-mnist": _BINARIZED_FILES,
}

# Base URLs tried in order by :func:`gentorch.data.download`; the file name is appended.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    # The same bytes are published there under the names binarized_mnist_*.amat (they are
    # MATLAB v5 files despite the extension); `download` maps the names.
    "binarized-mnist": ("https://raw.githubusercontent.com/mingzhang-yin/ARM-gradient/master/",),
}

# File names on a mirror that differ from the local name.
REMOTE_NAMES: dict[str, dict[str, str]] = {
    "binarized-mnist": {
        f"binarized_mnist_{s}.mat": f"binarized_mnist_{s}.amat" for s in ("train", "valid", "test")
    },
}

_DIGIT_NAMES = tuple(str(d) for d in range(10))

_INFOS = {
    "mnist": DatasetInfo(
        "mnist",
        (1, 28, 28),
        10,
        ("train", "test"),
        "MNIST handwritten digits (LeCun, Cortes, Burges): 60000 train / 10000 test, 28x28 grey.",
        _DIGIT_NAMES,
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        (1, 28, 28),
        10,
        ("train", "test"),
        "Fashion-MNIST (Zalando): 60000 train / 10000 test, 28x28 grey, 10 clothing classes.",
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    ),
    "binarized-mnist": DatasetInfo(
        "binarized-mnist",
        (1, 28, 28),
        None,
        ("train", "valid", "test"),
        "Fixed binarization of MNIST used in VAE likelihood papers: 50000 / 10000 / 10000, "
        "values in {0, 1}, no labels.",
    ),
    "digits": DatasetInfo(
        "digits",
        (1, 8, 8),
        10,
        ("train", "test"),
        "scikit-learn's bundled 8x8 digits (1797 images, values /16); offline, no download. "
        "Test = the last 20% (360) of a fixed seeded permutation, train = the other 1437.",
        _DIGIT_NAMES,
    ),
}

#: The names :func:`gentorch.data.load` and :func:`gentorch.data.info` accept.
DATASETS: tuple[str, ...] = tuple(_INFOS)


def info(name: str) -> DatasetInfo:
    """Describe the dataset called ``name`` (see :data:`DATASETS` for the names).

    Args:
        name: ``"mnist"``, ``"fashion-mnist"``, ``"binarized-mnist"`` or ``"digits"``.

    Returns:
        A frozen :class:`DatasetInfo`.

    Raises:
        DatasetError: (a ``ValueError``) for an unknown name, listing the known ones.

    Example:
        >>> from gentorch.data import info
        >>> info("digits").image_shape
        (1, 8, 8)
        >>> info("binarized-mnist").num_classes is None
        True
    """
    try:
        return _INFOS[name]
    except (KeyError, TypeError):
        raise DatasetError(
            f"name: unknown dataset {name!r}; expected one of {', '.join(DATASETS)}"
        ) from None
