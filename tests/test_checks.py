"""The shared argument checks of ``gentorch._checks``: what they accept, return and refuse."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from gentorch._checks import (
    as_device,
    as_path,
    check_bool,
    check_generator,
    check_parent_folders,
    check_positive_int,
    check_real,
    values_hold,
)
from gentorch._float64 import exact_dtype, to_float64


def test_check_positive_int_returns_ints_of_at_least_one() -> None:
    assert check_positive_int("k", 1) == 1
    assert check_positive_int("k", 5000) == 5000


@pytest.mark.parametrize(
    ("value", "error", "got"),
    [
        (0, ValueError, "got 0"),
        (-2, ValueError, "got -2"),
        (True, TypeError, "got bool True"),  # a bool is an int to Python, never a count here
        (2.0, TypeError, "got float 2.0"),
        ("3", TypeError, "got str '3'"),
        (None, TypeError, "got NoneType None"),
        (
            np.int64(3),
            TypeError,
            r"got int64 np\.int64\(3\)",
        ),  # a NumPy scalar would end up in JSON configs
    ],
)
def test_check_positive_int_refuses(value: object, error: type[Exception], got: str) -> None:
    with pytest.raises(error, match=f"^batch_size: expected a positive integer, {got}$"):
        check_positive_int("batch_size", value)


def test_check_positive_int_says_what_the_number_means() -> None:
    with pytest.raises(
        ValueError, match=r"^nrow: expected a positive integer \(images per row\), got 0$"
    ):
        check_positive_int("nrow", 0, "images per row")


def test_check_bool_takes_no_truthiness() -> None:
    assert check_bool("flag", False) is False
    for value in (0, 1, "yes", None):
        with pytest.raises(TypeError, match=r"^flag: expected a bool, got "):
            check_bool("flag", value)


def test_check_real_accepts_finite_reals_only() -> None:
    assert check_real("lr", 3) == 3.0
    assert check_real("lr", Fraction(1, 4)) == 0.25
    assert isinstance(check_real("lr", np.float32(0.5)), float)
    with pytest.raises(TypeError, match=r"^lr: expected a real number, got bool True$"):
        check_real("lr", True)
    with pytest.raises(TypeError, match=r"^lr: expected a real number, got str '1e-3'$"):
        check_real("lr", "1e-3")
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match=r"^lr: expected a finite number, got "):
            check_real("lr", bad)


def test_check_generator() -> None:
    check_generator(None)
    check_generator(torch.Generator())
    with pytest.raises(
        TypeError, match=r"^generator: expected None or a torch\.Generator, got int"
    ):
        check_generator(0)


def test_as_device() -> None:
    assert as_device("cpu") == torch.device("cpu")
    assert as_device(torch.device("cpu")) == torch.device("cpu")
    assert as_device("cuda:1") == torch.device("cuda", 1)  # parsed, not opened
    with pytest.raises(TypeError, match=r"^device: expected a string .* got float$"):
        as_device(1.0)
    with pytest.raises(TypeError, match=r"^device: expected a string .* got bool$"):
        as_device(True)
    with pytest.raises(ValueError, match=r"^device: expected a device such as .* got 'gpu'$"):
        as_device("gpu")


def test_as_path_and_parent_folders(tmp_path: Path) -> None:
    assert as_path(str(tmp_path)) == tmp_path
    assert as_path(tmp_path / "a.png") == tmp_path / "a.png"
    with pytest.raises(TypeError, match=r"^out: expected a str or os\.PathLike, got int$"):
        as_path(3, "out")
    check_parent_folders(tmp_path / "new" / "deeper" / "a.png")  # missing folders are fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"^out: cannot write .*file' is a file, not a folder$"):
        check_parent_folders(tmp_path / "file" / "sub" / "a.png", "out")


def test_values_hold_reads_eagerly_and_asserts_in_graph() -> None:
    assert values_hold(torch.tensor(True), "unused") is True
    assert values_hold(torch.tensor(False), "unused") is False

    def positive(x: torch.Tensor) -> torch.Tensor:
        if not values_hold((x > 0).all(), "x: expected positive values"):
            raise ValueError("eager only")
        return x.log()

    compiled = torch.compile(positive, fullgraph=True, backend="eager")  # no graph break
    torch.testing.assert_close(compiled(torch.ones(3)), torch.zeros(3))
    with pytest.raises(RuntimeError, match="x: expected positive values"):
        compiled(-torch.ones(3))
    with pytest.raises(ValueError, match="eager only"):
        positive(-torch.ones(3))


# ------------------------------------------------------------------------------ to_float64
class _OnMPS:
    """Stands in for a tensor on MPS (which this machine cannot create): records ``to``."""

    device = torch.device("mps")

    def __init__(self) -> None:
        self.moved: tuple[object, ...] = ()

    def to(self, *args: object) -> str:
        self.moved = args
        return "moved"


def test_to_float64_stays_on_the_device_or_moves_mps_tensors_to_the_cpu() -> None:
    x = torch.tensor([1.0, 2.0], dtype=torch.float16)
    y = to_float64(x)
    assert y.dtype == torch.float64
    assert y.device == x.device
    assert torch.equal(y, torch.tensor([1.0, 2.0], dtype=torch.float64))
    # MPS has no float64: the summary is computed on the CPU
    fake = _OnMPS()
    assert to_float64(fake) == "moved"  # type: ignore[arg-type]
    assert fake.moved == ("cpu", torch.float64)


def test_exact_dtype_is_float64_except_on_mps() -> None:
    assert exact_dtype(torch.device("cpu")) == torch.float64
    assert exact_dtype(torch.device("cuda")) == torch.float64  # (a device object, no tensor)
    assert exact_dtype(torch.device("mps")) == torch.float32
