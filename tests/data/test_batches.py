"""Batches: coverage of every example once per epoch, exact replay, validation, devices."""

from __future__ import annotations

import pytest
import torch

from gentorch.data import Batches


def _epoch_ids(batches: Batches) -> list[list[int]]:
    out = []
    for xb, yb in batches:
        assert yb is not None
        # rows and labels stay paired: x[i] = (i, 2i), y[i] = i
        assert torch.equal(xb[:, 0].long(), yb)
        assert torch.equal(xb[:, 1].long(), 2 * yb)
        out.append(yb.tolist())
    return out


def _data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.arange(n)
    return torch.stack([ids, 2 * ids], dim=1).float(), ids


@pytest.mark.parametrize(("n", "batch_size"), [(100, 10), (103, 10), (7, 16), (1, 1), (64, 1)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_every_example_once_per_epoch(n: int, batch_size: int, shuffle: bool) -> None:
    batches = Batches(*_data(n), batch_size=batch_size, shuffle=shuffle)
    for _ in range(2):
        epoch = _epoch_ids(batches)
        assert len(epoch) == len(batches) == -(-n // batch_size)
        assert all(len(b) == batch_size for b in epoch[:-1])
        assert 1 <= len(epoch[-1]) <= batch_size
        assert sorted(i for b in epoch for i in b) == list(range(n))
        if not shuffle:
            assert [i for b in epoch for i in b] == list(range(n))


def test_drop_last() -> None:
    batches = Batches(*_data(103), batch_size=10, drop_last=True)
    epoch = _epoch_ids(batches)
    assert len(epoch) == len(batches) == 10
    assert all(len(b) == 10 for b in epoch)
    seen = [i for b in epoch for i in b]
    assert len(set(seen)) == 100
    # the 3 dropped examples change from epoch to epoch
    dropped = [set(range(103)) - {i for b in _epoch_ids(batches) for i in b} for _ in range(5)]
    assert len({frozenset(d) for d in dropped}) > 1


def test_epochs_are_shuffled_differently() -> None:
    batches = Batches(*_data(100), batch_size=100)
    first, second = _epoch_ids(batches), _epoch_ids(batches)
    # two equal permutations of 100 items: probability 1/100! for a correct implementation
    assert first != second
    assert first != [list(range(100))]


def test_restored_generator_replays_two_epochs() -> None:
    batches = Batches(*_data(50), batch_size=8, generator=torch.Generator().manual_seed(3))
    _epoch_ids(batches)
    state = batches.generator.get_state()
    reference = [_epoch_ids(batches), _epoch_ids(batches)]
    # a fresh object (as after a restart) with the saved state
    resumed = Batches(*_data(50), batch_size=8, generator=torch.Generator())
    resumed.generator.set_state(state)
    assert [_epoch_ids(resumed), _epoch_ids(resumed)] == reference


def test_default_generator_follows_the_global_seed() -> None:
    torch.manual_seed(7)
    a = _epoch_ids(Batches(*_data(40), batch_size=8))
    torch.manual_seed(7)
    b = _epoch_ids(Batches(*_data(40), batch_size=8))
    torch.manual_seed(8)
    c = _epoch_ids(Batches(*_data(40), batch_size=8))
    assert a == b
    assert a != c


def test_without_labels_and_with_image_shapes() -> None:
    x = torch.rand(20, 1, 4, 4)
    batches = Batches(x, batch_size=6)
    got = list(batches)
    assert [tuple(xb.shape) for xb, _ in got] == [(6, 1, 4, 4)] * 3 + [(2, 1, 4, 4)]
    assert all(yb is None for _, yb in got)
    # the rows are exactly the rows of x, each once
    rows = torch.cat([xb for xb, _ in got]).flatten(1)
    order = torch.argsort(rows[:, 0])
    torch.testing.assert_close(rows[order], x.flatten(1)[torch.argsort(x.flatten(1)[:, 0])])


def test_dynamic_binarization_per_batch() -> None:
    x = torch.full((4000, 50), 0.3)
    batches = Batches(x, batch_size=1000, binarize="dynamic")
    first = torch.cat([xb for xb, _ in batches])
    second = torch.cat([xb for xb, _ in batches])
    assert bool(((first == 0) | (first == 1)).all())
    # mean of 2e5 Bernoulli(0.3): std = sqrt(0.21 / 2e5) = 1.0e-3; 6 std -> 6.1e-3
    assert abs(float(first.mean()) - 0.3) < 6.1e-3
    # a fresh draw each epoch (equal draws of 2e5 pixels: probability ~ 0.58^2e5)
    assert not torch.equal(first, second)
    with pytest.raises(ValueError, match="binarize: needs floating-point x"):
        Batches(torch.ones(4, 2, dtype=torch.long), batch_size=2, binarize="dynamic")
    with pytest.raises(ValueError, match="binarize: expected None or 'dynamic', got 'fixed'"):
        Batches(x, batch_size=2, binarize="fixed")


@pytest.mark.parametrize(
    ("batch_size", "error", "got"),
    [
        (0, ValueError, "0"),
        (-3, ValueError, "-3"),
        (2.5, TypeError, "float 2.5"),
        (True, TypeError, "bool True"),
        (None, TypeError, "NoneType None"),
    ],
)
def test_bad_batch_size(batch_size: object, error: type[Exception], got: str) -> None:
    with pytest.raises(error, match=f"batch_size: expected a positive integer, got {got}$"):
        Batches(torch.zeros(4, 2), batch_size=batch_size)  # type: ignore[arg-type]


def test_length_mismatch_and_types() -> None:
    with pytest.raises(ValueError, match=r"y: expected 10 entries .*\(10, 3\).*got shape \(9,\)"):
        Batches(torch.zeros(10, 3), torch.zeros(9), batch_size=2)
    with pytest.raises(TypeError, match="x: expected a Tensor, got list"):
        Batches([[1.0]], batch_size=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="x: expected a tensor of shape"):
        Batches(torch.tensor(1.0), batch_size=1)
    with pytest.raises(TypeError, match=r"generator: expected a torch\.Generator, got int"):
        Batches(torch.zeros(4, 2), batch_size=2, generator=0)  # type: ignore[arg-type]


def test_generator_on_another_device_is_rejected() -> None:
    x = torch.empty(10, 3, device="meta")
    with pytest.raises(ValueError, match="generator: expected a generator on the data's device"):
        Batches(x, batch_size=2, generator=torch.Generator())


def test_to_and_device_argument() -> None:
    batches = Batches(*_data(30), batch_size=7, generator=torch.Generator().manual_seed(0))
    moved = batches.to("cpu")
    assert moved.generator is batches.generator
    assert moved.device == torch.device("cpu")
    assert len(moved) == len(batches)
    direct = Batches(*_data(30), batch_size=7, device="cpu")
    assert direct.x.device == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_stay_on_the_device() -> None:
    batches = Batches(*_data(100), batch_size=16).to("cuda")
    assert batches.generator.device.type == "cuda"
    epoch = []
    for xb, yb in batches:
        assert xb.is_cuda
        assert yb is not None
        assert yb.is_cuda
        epoch += yb.tolist()
    assert sorted(epoch) == list(range(100))
