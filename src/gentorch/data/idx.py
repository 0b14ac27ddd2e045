"""Reader for the IDX format of the MNIST family, by hand with numpy.

Layout: two zero bytes, a type code, the number of dimensions ``n``, then ``n`` big-endian
uint32 sizes, then the values in C order, big-endian. Files may be gzip-compressed.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from gentorch.data.errors import DatasetError

__all__ = ["parse_idx", "read_idx"]

# IDX type code -> numpy dtype (big-endian where multi-byte).
_DTYPES: dict[int, np.dtype[np.generic]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file.

    Args:
        data: the whole file content.
        source: a name for error messages.

    Returns:
        An array of the file's shape and dtype in native byte order (a read-only view of
        ``data`` for uint8 files; no copy).

    Raises:
        TypeError: ``data`` is not bytes-like.
        DatasetError: wrong magic number, unknown type code, or a length that does not match
            the header (a truncated or padded file).

    Example:
        >>> from gentorch.data import parse_idx
        >>> raw = bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 8, 9])  # uint8, 1 dim of size 3
        >>> parse_idx(raw)
        array([7, 8, 9], dtype=uint8)
        >>> parse_idx(bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 1, 0, 255, 255]))  # big-endian int16
        array([256,  -1], dtype=int16)
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"data: expected the bytes of an IDX file, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetError(
            f"{source}: not an IDX file (magic number {data[:4].hex() or 'missing'}, expected "
            f"0x0000 then a type code and the number of dimensions)"
        )
    code, ndim = data[2], data[3]
    if code not in _DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _DTYPES)
        raise DatasetError(f"{source}: unknown IDX type code 0x{code:02X}; expected one of {known}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(
            f"{source}: truncated IDX header: {ndim} dimensions need {header} bytes, "
            f"the file has {len(data)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _DTYPES[code]
    # payload bytes = prod(shape) * itemsize
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found != expected:
        raise DatasetError(
            f"{source}: IDX header says shape {shape} of {dtype.name} ({expected} bytes of "
            f"data), the file holds {found}; the file is truncated or corrupt"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not (detected from its first bytes).

    Args:
        path: the ``.idx`` / ``-ubyte`` file, optionally ``.gz``.

    Returns:
        The decoded array, e.g. ``(60000, 28, 28)`` uint8 for MNIST training images.

    Raises:
        DatasetError: a corrupt gzip stream or a malformed IDX file, naming the file.

    Example:
        >>> import gzip
        >>> import tempfile
        >>> from pathlib import Path
        >>> from gentorch.data import read_idx
        >>> header = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3])  # uint8, shape (2, 3)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = Path(tmp, "tiny-idx2-ubyte.gz")
        ...     _ = path.write_bytes(gzip.compress(header + bytes(range(6))))
        ...     print(read_idx(path))
        [[0 1 2]
         [3 4 5]]

        On MNIST's ``t10k-labels-idx1-ubyte.gz`` this returns ``(10000,)`` uint8 labels.
    """
    path = Path(path)
    data = path.read_bytes()
    if data[:2] == _GZIP_MAGIC:
        try:
            # wbits = 16 + MAX_WBITS: expect a gzip header and trailer.
            data = zlib.decompress(data, wbits=16 + zlib.MAX_WBITS)
        except zlib.error as err:
            raise DatasetError(f"{path}: corrupt gzip data ({err})") from None
    return parse_idx(data, str(path))
