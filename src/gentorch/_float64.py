"""float64 for exact summaries, on a device that has it.

Evaluation summaries (means, variances, distances, PSNR) are computed in float64 so that their
rounding never shows in the digits reported. MPS has no float64: tensors there are summarised
on the CPU instead (they are small, or summarised once).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["exact_dtype", "to_float64"]


def exact_dtype(device: torch.device) -> torch.dtype:
    """float64, or float32 on MPS (which has no float64): for sums and iterations kept on
    ``device`` whose float32 rounding would show."""
    return torch.float32 if device.type == "mps" else torch.float64


def to_float64(t: Tensor) -> Tensor:
    """``t`` in float64 on its own device, or on the CPU if that device is MPS."""
    if t.device.type == "mps":
        return t.to("cpu", torch.float64)
    return t.to(torch.float64)
