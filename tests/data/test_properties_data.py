"""Property-based tests of gentorch.data: Batches, the IDX reader, md5 checks, load_array.

Random sizes, flags, seeds, shapes and bytes (hypothesis, derandomized for reproducible CI).
Files go to a fresh ``tempfile.TemporaryDirectory`` per example: pytest's ``tmp_path`` is shared
by every example of a hypothesis test.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import random
import tempfile
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gentorch.data import (
    Batches,
    ChecksumError,
    DatasetError,
    load_array,
    md5sum,
    parse_idx,
    read_idx,
)
from gentorch.data.checksums import verify_file
from gentorch.data.registry import RemoteFile

_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


# --- Batches -----------------------------------------------------------------------------------


def _ids_data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x[i] = (i, -i, 0.5 i) and y[i] = (i, 3 i): every row names its example, twice."""
    ids = torch.arange(n)
    x = torch.stack([ids, -ids, ids], dim=1).float() * torch.tensor([1.0, 1.0, 0.5])
    return x, torch.stack([ids, 3 * ids], dim=1)


def _epoch(batches: Batches) -> list[list[int]]:
    """The example ids of one epoch, batch by batch, checking that rows and labels stay paired."""
    out = []
    for xb, yb in batches:
        assert yb is not None
        assert xb.shape[1:] == (3,)
        assert yb.shape == (len(xb), 2)
        ids = yb[:, 0]
        assert torch.equal(yb[:, 1], 3 * ids)
        assert torch.equal(xb[:, 0].long(), ids)
        assert torch.equal(xb[:, 1].long(), -ids)
        assert torch.equal(xb[:, 2], 0.5 * ids.float())
        out.append(ids.tolist())
    return out


@_SETTINGS
@given(
    n=st.integers(1, 60),
    batch_size=st.integers(1, 70),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**63 - 1),
)
def test_batches_cover_every_example_once_per_epoch(
    n: int, batch_size: int, shuffle: bool, drop_last: bool, seed: int
) -> None:
    x, y = _ids_data(n)
    generator = torch.Generator().manual_seed(seed)
    if drop_last and batch_size > n:
        with pytest.raises(ValueError, match="drop_last=True would leave no batch at all"):
            Batches(x, y, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
        return
    batches = Batches(
        x, y, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, generator=generator
    )
    expected_len = n // batch_size if drop_last else math.ceil(n / batch_size)
    assert len(batches) == expected_len
    for _ in range(2):  # two epochs, each a fresh permutation
        epoch = _epoch(batches)
        sizes = [len(b) for b in epoch]
        assert len(epoch) == expected_len
        if drop_last:
            assert sizes == [batch_size] * expected_len
        else:
            assert sizes[:-1] == [batch_size] * (expected_len - 1)
            assert sizes[-1] == n - batch_size * (expected_len - 1)
        seen = [i for b in epoch for i in b]
        assert len(set(seen)) == len(seen) == (expected_len * batch_size if drop_last else n)
        assert set(seen) <= set(range(n))
        if not drop_last:
            assert sorted(seen) == list(range(n))
        if not shuffle:
            assert seen == list(range(len(seen)))  # the stored order (a prefix with drop_last)


@_SETTINGS
@given(
    n=st.integers(1, 50),
    batch_size=st.integers(1, 20),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**63 - 1),
    skip=st.integers(0, 2),
)
def test_batches_order_is_a_function_of_the_generator_state(
    n: int, batch_size: int, drop_last: bool, seed: int, skip: int
) -> None:
    assume(not (drop_last and batch_size > n))
    x, y = _ids_data(n)

    def make() -> Batches:
        gen = torch.Generator().manual_seed(seed)
        return Batches(x, y, batch_size=batch_size, drop_last=drop_last, generator=gen)

    a, b = make(), make()
    # The same seed gives the same epochs.
    assert [_epoch(a) for _ in range(3)] == [_epoch(b) for _ in range(3)]
    # A state saved before any epoch replays that epoch and the next ones, in a new object.
    for _ in range(skip):
        _epoch(a)
    state = a.generator.get_state()
    reference = [_epoch(a) for _ in range(2)]
    resumed = Batches(x, y, batch_size=batch_size, drop_last=drop_last, generator=torch.Generator())
    resumed.generator.set_state(state)
    assert [_epoch(resumed) for _ in range(2)] == reference
    # to() the same device keeps the generator, hence the stream.
    moved, reference_batches = make().to("cpu"), make()
    assert [_epoch(moved) for _ in range(2)] == [_epoch(reference_batches) for _ in range(2)]


@_SETTINGS
@given(
    x=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6),
        elements=st.one_of(st.just(0.0), st.just(1.0), st.floats(0, 1, width=32)),
    ),
    batch_size=st.integers(1, 8),
    seed=st.integers(0, 2**63 - 1),
)
def test_dynamic_binarization_yields_bits_and_keeps_the_certain_pixels(
    x: np.ndarray, batch_size: int, seed: int
) -> None:
    data = torch.from_numpy(x)
    batches = Batches(
        data,
        batch_size=batch_size,
        shuffle=False,
        generator=torch.Generator().manual_seed(seed),
        binarize="dynamic",
    )
    binary = torch.cat([xb for xb, _ in batches])
    assert binary.shape == data.shape
    assert binary.dtype == data.dtype
    assert bool(((binary == 0) | (binary == 1)).all())
    # Bernoulli(0) is always 0 and Bernoulli(1) always 1.
    assert torch.equal(binary[data == 0], torch.zeros_like(binary[data == 0]))
    assert torch.equal(binary[data == 1], torch.ones_like(binary[data == 1]))


@_SETTINGS
@given(
    n=st.integers(1, 40),
    batch_size=st.integers(1, 16),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**63 - 1),
)
def test_binarized_batches_keep_examples_and_labels_paired(
    n: int, batch_size: int, drop_last: bool, seed: int
) -> None:
    assume(not (drop_last and batch_size > n))
    # x[i] holds the 6 bits of i (values already in {0, 1}, which Bernoulli keeps exactly):
    # each binarized row still names its example, so alignment with y is checkable.
    ids = torch.arange(n)
    bits = ((ids[:, None] >> torch.arange(6)) & 1).float()
    batches = Batches(
        bits,
        ids,
        batch_size=batch_size,
        drop_last=drop_last,
        generator=torch.Generator().manual_seed(seed),
        binarize="dynamic",
    )
    seen = []
    for xb, yb in batches:
        assert yb is not None
        decoded = (xb.long() << torch.arange(6)).sum(1)
        assert torch.equal(decoded, yb)
        seen += yb.tolist()
    assert len(set(seen)) == len(seen) == (n // batch_size * batch_size if drop_last else n)


@_SETTINGS
@given(
    x=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 5), st.integers(1, 5)),
        elements=st.floats(-2, 3, allow_nan=False),
    ),
    nan_at=st.none() | st.integers(0, 24),
)
def test_dynamic_binarization_accepts_exactly_values_in_the_unit_interval(
    x: np.ndarray, nan_at: int | None
) -> None:
    if nan_at is not None:
        x.flat[nan_at % x.size] = np.nan
    data = torch.from_numpy(x)
    valid = bool(np.all((x >= 0) & (x <= 1)))  # False with a NaN
    if valid:
        Batches(data, batch_size=2, binarize="dynamic")
    else:
        with pytest.raises(ValueError, match=r"needs values in \[0, 1\]"):
            Batches(data, batch_size=2, binarize="dynamic")


# --- IDX ---------------------------------------------------------------------------------------

_IDX_TYPES: dict[int, np.dtype[np.generic]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(np.int16),
    0x0C: np.dtype(np.int32),
    0x0D: np.dtype(np.float32),
    0x0E: np.dtype(np.float64),
}


def _idx_bytes(values: np.ndarray, code: int) -> bytes:
    """An independent writer: 0, 0, type code, ndim, big-endian uint32 sizes, big-endian values."""
    header = bytes([0, 0, code, values.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in values.shape)
    return header + values.astype(values.dtype.newbyteorder(">")).tobytes()


@st.composite
def _idx_arrays(draw: st.DrawFn) -> tuple[int, np.ndarray]:
    """(type code, array) of any IDX type and a shape of 0 to 4 dimensions (sides may be 0)."""
    code = draw(st.sampled_from(sorted(_IDX_TYPES)))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
    # Every value of the type, NaN, infinities and -0.0 included for the floats.
    return code, draw(hnp.arrays(_IDX_TYPES[code], shape))


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@_SETTINGS
@given(_idx_arrays())
def test_parse_idx_round_trips_every_type_and_shape(case: tuple[int, np.ndarray]) -> None:
    code, values = case
    decoded = parse_idx(_idx_bytes(values, code))
    assert decoded.dtype.isnative
    # Bit-exact: NaN payloads and the sign of zero survive the byte swap.
    assert _same_bits(decoded, values)
    if code == 0x08:
        assert not decoded.flags.writeable  # documented: a read-only view of the bytes


@_SETTINGS
@given(case=_idx_arrays(), compress=st.booleans(), level=st.integers(0, 9))
def test_read_idx_round_trips_plain_and_gzip_files(
    case: tuple[int, np.ndarray], compress: bool, level: int
) -> None:
    code, values = case
    raw = _idx_bytes(values, code)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "data-idx-ubyte" + (".gz" if compress else ""))
        path.write_bytes(gzip.compress(raw, compresslevel=level) if compress else raw)
        assert _same_bits(read_idx(path), values)


@_SETTINGS
@given(case=_idx_arrays(), change=st.integers(1, 40), pad=st.booleans())
def test_parse_idx_refuses_any_truncation_or_padding(
    case: tuple[int, np.ndarray], change: int, pad: bool
) -> None:
    code, values = case
    raw = _idx_bytes(values, code)
    # A proper prefix keeps ndim (or loses the magic) and so demands more bytes than it has;
    # extra bytes exceed what the header announces.
    bad = raw + bytes(change) if pad else raw[: max(0, len(raw) - change)]
    with pytest.raises(DatasetError, match=r"<bytes>: "):
        parse_idx(bad)


@_SETTINGS
@given(
    case=_idx_arrays().filter(lambda c: c[1].size > 0),
    position=st.integers(0, 10**6),
    flip=st.integers(1, 255),
)
def test_read_idx_of_a_corrupted_gzip_file_errs_or_returns_the_original(
    case: tuple[int, np.ndarray], position: int, flip: int
) -> None:
    code, values = case
    packed = bytearray(gzip.compress(_idx_bytes(values, code)))
    packed[position % len(packed)] ^= flip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "corrupt.gz")
        path.write_bytes(bytes(packed))
        error, decoded = "", None
        try:
            decoded = read_idx(path)
        except DatasetError as err:
            error = str(err)
    if decoded is None:
        assert str(path) in error  # the error names the file
    else:
        # Only bytes gzip does not check (mtime, OS, flags without effect) may change
        # silently; the payload is protected by the CRC-32 and length in the trailer.
        assert _same_bits(decoded, values)


# --- md5 checks --------------------------------------------------------------------------------

_MiB = 1 << 20
# Sizes around md5sum's 1 MiB read chunk as well as small and empty files.
_sizes = st.one_of(
    st.integers(0, 300), st.integers(_MiB - 2, _MiB + 2), st.integers(0, 2 * _MiB + 5)
)


def _content(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32), size=_sizes)
def test_md5sum_equals_hashlib_across_chunk_boundaries(seed: int, size: int) -> None:
    data = _content(seed, size)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "blob.bin")
        path.write_bytes(data)
        assert md5sum(path) == hashlib.md5(data).hexdigest()


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32),
    size=st.integers(1, 5000),
    position=st.integers(0, 10**6),
    flip=st.integers(1, 255),
    edit=st.sampled_from(["flip", "append", "drop"]),
)
def test_verify_file_rejects_any_changed_byte(
    seed: int, size: int, position: int, flip: int, edit: str
) -> None:
    data = _content(seed, size)
    spec = RemoteFile("file.bin", size, hashlib.md5(data).hexdigest())
    changed = bytearray(data)
    if edit == "flip":
        changed[position % size] ^= flip
    elif edit == "append":
        changed.insert(position % (size + 1), flip)
    else:
        del changed[position % size]
    with tempfile.TemporaryDirectory() as tmp:
        good = Path(tmp, "good.bin")
        good.write_bytes(data)
        assert verify_file(good, spec, "mine") == good
        bad = Path(tmp, "bad.bin")
        bad.write_bytes(bytes(changed))
        found = f"md5 {hashlib.md5(changed).hexdigest()}" if edit == "flip" else f"{len(changed)}"
        with pytest.raises(ChecksumError, match=f"expected md5 {spec.md5}.*found {found}"):
            verify_file(bad, spec, "mine")
        # The verified file itself, edited in place: its new mtime (and maybe size) defeats
        # the "already verified" cache, so the verdict changes too.
        stat = good.stat()
        good.write_bytes(bytes(changed))
        os.utime(good, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        with pytest.raises(ChecksumError, match="corrupt or not the official one"):
            verify_file(good, spec, "mine")


# --- load_array --------------------------------------------------------------------------------

# Finite values that float32 holds (a float64 beyond its range would become inf).
_features = st.floats(-1e30, 1e30, allow_nan=False)


@st.composite
def _tables(draw: st.DrawFn, min_cols: int = 1) -> np.ndarray:
    rows, cols = draw(st.integers(1, 8)), draw(st.integers(min_cols, 6))
    return draw(hnp.arrays(np.float64, (rows, cols), elements=_features))


@_SETTINGS
@given(
    shape=hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=4),
    dtype=st.sampled_from(["float16", "float32", "float64", "int16", "uint8", "bool"]),
    data=st.data(),
)
def test_load_array_npy_round_trip_of_any_numeric_array(
    shape: tuple[int, ...], dtype: str, data: st.DataObject
) -> None:
    elements = st.floats(-1e30, 1e30, allow_nan=False) if dtype == "float64" else None
    values = data.draw(hnp.arrays(np.dtype(dtype), shape, elements=elements))
    if values.dtype.kind == "f":
        values[~np.isfinite(values)] = 0.0  # NaN and infinities are refused (tested elsewhere)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "array.npy")
        np.save(path, values)
        x, labels = load_array(path)
    assert labels is None
    assert x.dtype == torch.float32
    # Flattened to (N, D) and cast to float32, nothing rescaled: exactly numpy's own cast.
    expected = values.reshape(shape[0], -1).astype(np.float32)
    assert _same_bits(x.numpy(), expected)


@_SETTINGS
@given(table=_tables(min_cols=2), data=st.data())
def test_load_array_npy_label_column_is_split_off_exactly(
    table: np.ndarray, data: st.DataObject
) -> None:
    rows, cols = table.shape
    column = data.draw(st.integers(-cols, cols - 1))
    labels = data.draw(hnp.arrays(np.int64, rows, elements=st.integers(-(2**40), 2**40)))
    table[:, column] = labels  # integers below 2^53 are exact in float64
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "table.npy")
        np.save(path, table)
        x, y = load_array(path, label_column=column)
    assert y is not None
    assert y.dtype == torch.int64
    assert y.tolist() == labels.tolist()
    assert _same_bits(x.numpy(), np.delete(table, column % cols, axis=1).astype(np.float32))


_names = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True).filter(
    lambda s: s.lower() not in ("nan", "inf", "infinity") and not s.startswith("inf")
)


@_SETTINGS
@given(
    table=_tables(),
    with_label=st.booleans(),
    by_name=st.booleans(),
    write_header=st.booleans(),
    header_arg=st.sampled_from([None, True]),
    style=st.sampled_from([("table.csv", ","), ("table.tsv", "\t"), ("table.txt", ";")]),
    names=st.lists(_names, min_size=8, max_size=8, unique=True),
    data=st.data(),
)
def test_load_array_csv_round_trip_with_optional_header_and_label(
    table: np.ndarray,
    with_label: bool,
    by_name: bool,
    write_header: bool,
    header_arg: bool | None,
    style: tuple[str, str],
    names: list[str],
    data: st.DataObject,
) -> None:
    rows, cols = table.shape
    filename, delimiter = style
    column = None
    labels: list[int] = []
    if with_label:
        column = data.draw(st.integers(0, cols))  # the label column is inserted at this index
        labels = data.draw(st.lists(st.integers(-1000, 1000), min_size=rows, max_size=rows))
    lines = []
    for i in range(rows):
        # repr() writes the shortest string that parses back to the same float64.
        fields = [repr(float(v)) for v in table[i]]
        if column is not None:
            fields.insert(column, str(labels[i]))
        lines.append(delimiter.join(fields))
    width = cols + (column is not None)
    if write_header:
        lines.insert(0, delimiter.join(names[:width]))
    else:
        header_arg = False if header_arg else None  # None: detected from the numeric first row
    label_column: int | str | None = column
    if column is not None and by_name and write_header:
        label_column = names[column]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, filename)
        path.write_text("\n".join(lines) + "\n")
        x, y = load_array(path, label_column=label_column, header=header_arg, delimiter=delimiter)
    assert x.dtype == torch.float32
    # Text -> float64 -> float32: the same value as casting the float64 we wrote, bit for bit.
    assert _same_bits(x.numpy(), table.astype(np.float32))
    if column is None:
        assert y is None
    else:
        assert y is not None
        assert y.dtype == torch.int64
        assert y.tolist() == labels
