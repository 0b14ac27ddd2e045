"""Whether a call runs under a ``torch.func`` transform or inside ``forward_ad.dual_level()``.

Fast paths that bypass ``autograd.Function.apply`` (its functorch dispatch) or have no forward
derivative must step aside then. Both readers are private torch API: if a release renames the
forward-AD level, the answer is "active", the safe side.
"""

from __future__ import annotations

import torch
from torch.autograd import forward_ad as _forward_ad

__all__ = ["transforms_or_forward_ad_active"]


def transforms_or_forward_ad_active() -> bool:
    """True under a ``torch.func`` transform (grad, vmap, jvp, ...) or a forward-AD dual level."""
    return bool(
        torch._C._are_functorch_transforms_active()
        or getattr(_forward_ad, "_current_level", 0) >= 0
    )
