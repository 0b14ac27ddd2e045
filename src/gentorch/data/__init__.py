"""gentorch.data: datasets as tensors, and mini-batches over a tensor on the training device.

- :func:`load` the named datasets (MNIST, Fashion-MNIST, fixed-binarized MNIST, scikit-learn's
  digits) as ``(N, D)`` float images in [0, 1] and int64 labels; :func:`info` their shapes.
- :func:`download` them, md5-verified, into ``$GENTORCH_DATA`` or the cache folder.
- :func:`load_array` / :func:`load_image_folder` for the user's own ``.npy`` / ``.csv`` / images.
- :class:`Batches` iterates random mini-batches with no per-example Python.
"""

from gentorch.data.batches import Batches
from gentorch.data.checksums import md5sum
from gentorch.data.datasets import BINARIZE_MODES, digits_split_indices, load
from gentorch.data.download import download
from gentorch.data.errors import ChecksumError, DatasetError, DatasetNotFoundError
from gentorch.data.idx import parse_idx, read_idx
from gentorch.data.locations import cache_dir, data_root
from gentorch.data.registry import DATASETS, DatasetInfo, info
from gentorch.data.user import IMAGE_SUFFIXES, load_array, load_image_folder

__all__ = [
    "BINARIZE_MODES",
    "DATASETS",
    "IMAGE_SUFFIXES",
    "Batches",
    "ChecksumError",
    "DatasetError",
    "DatasetInfo",
    "DatasetNotFoundError",
    "cache_dir",
    "data_root",
    "digits_split_indices",
    "download",
    "info",
    "load",
    "load_array",
    "load_image_folder",
    "md5sum",
    "parse_idx",
    "read_idx",
]
