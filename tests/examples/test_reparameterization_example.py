"""Runs examples/reparameterization_trick.py (shortened) and checks what it claims."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "reparameterization_trick.py"


def test_walkthrough_runs_and_shows_the_blocked_and_the_fixed_gradient(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main = runpy.run_path(str(SCRIPT))["main"]
    out = main(steps=150)  # on one thread, as the script runs (tests/conftest.py sets it)
    printed = capsys.readouterr().out
    assert "3) A tiny VAE" in printed

    part1 = out["part1"]
    # torch.normal: gradient defined as zero; .sample(): no graph
    assert all(torch.count_nonzero(g) == 0 for g in part1["normal_grad"])
    assert part1["sample_requires_grad"] is False
    assert torch.count_nonzero(part1["reparam_grad"]) == 2

    naive, reparam = out["naive"], out["reparam"]
    # the naive encoder never hears from the reconstruction term
    assert naive["encoder_grad_from_recon"] == 0.0
    assert reparam["encoder_grad_from_recon"] > 0.0
    # the data have variance ~1.8 (sum over both coordinates): the naive model cannot do
    # better than predicting the mean; the reparameterized one fits the curve (~0.02 at 150
    # steps), so a factor of 10 is a wide margin.
    assert naive["recon_mse"] > 1.0
    assert reparam["recon_mse"] < naive["recon_mse"] / 10
