"""IDX parsing: round trips for every type code, and clear errors on malformed files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from gentorch.data import DatasetError, parse_idx, read_idx


def _idx_bytes(values: np.ndarray, code: int) -> bytes:
    # magic: 0x00 0x00, type code, ndim; then big-endian uint32 dims; then big-endian values
    header = bytes([0, 0, code, values.ndim]) + np.asarray(values.shape, dtype=">u4").tobytes()
    return header + values.astype(values.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize(
    ("code", "dtype"),
    [
        (0x08, np.uint8),
        (0x09, np.int8),
        (0x0B, np.int16),
        (0x0C, np.int32),
        (0x0D, np.float32),
        (0x0E, np.float64),
    ],
)
def test_round_trip_every_type(code: int, dtype: type[np.generic]) -> None:
    rng = np.random.default_rng(0)
    values = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    decoded = parse_idx(_idx_bytes(values, code))
    assert decoded.dtype == np.dtype(dtype)
    assert decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, values)


def test_zero_length_dimension() -> None:
    decoded = parse_idx(_idx_bytes(np.zeros((0, 7), np.uint8), 0x08))
    assert decoded.shape == (0, 7)


def test_wrong_magic() -> None:
    data = bytearray(_idx_bytes(np.arange(6, dtype=np.uint8), 0x08))
    data[0] = 1
    with pytest.raises(DatasetError, match="not an IDX file"):
        parse_idx(bytes(data), "x.idx")


def test_unknown_type_code() -> None:
    data = bytearray(_idx_bytes(np.arange(6, dtype=np.uint8), 0x08))
    data[2] = 0x0A
    with pytest.raises(DatasetError, match="unknown IDX type code 0x0A"):
        parse_idx(bytes(data))


@pytest.mark.parametrize("cut", [1, 5, 100])
def test_truncated_payload_is_rejected(cut: int) -> None:
    data = _idx_bytes(np.arange(120, dtype=np.int16).reshape(10, 12), 0x0B)
    with pytest.raises(DatasetError, match=r"truncated or corrupt") as info:
        parse_idx(data[:-cut], "cut.idx")
    assert "cut.idx" in str(info.value)
    assert "(10, 12)" in str(info.value)


def test_padded_payload_is_rejected() -> None:
    data = _idx_bytes(np.arange(12, dtype=np.uint8), 0x08) + b"\0"
    with pytest.raises(DatasetError, match="holds 13"):
        parse_idx(data)


def test_truncated_header_is_rejected() -> None:
    data = _idx_bytes(np.zeros((2, 3, 4), np.uint8), 0x08)[:9]
    with pytest.raises(DatasetError, match="truncated IDX header"):
        parse_idx(data)


def test_read_gzip_and_plain(tmp_path: Path) -> None:
    values = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    raw = _idx_bytes(values, 0x08)
    (tmp_path / "a.idx").write_bytes(raw)
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), values)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx.gz"), values)


def test_corrupt_gzip(tmp_path: Path) -> None:
    packed = gzip.compress(_idx_bytes(np.arange(1000, dtype=np.uint8), 0x08))
    path = tmp_path / "bad.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DatasetError, match=r"bad\.gz: corrupt gzip"):
        read_idx(path)


def test_real_labels_file_matches_its_bytes(shared_data: Path) -> None:
    path = shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    # labels file: 4 magic bytes, one uint32 length, then one byte per label
    assert int.from_bytes(raw[4:8], "big") == 10000
    labels = read_idx(path)
    assert labels.shape == (10000,)
    np.testing.assert_array_equal(labels, np.frombuffer(raw, np.uint8, offset=8))
