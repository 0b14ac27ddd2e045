"""VAETask(compile=True): the compiled loss trains like the eager one, without recompiling."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
from torch._inductor import config as inductor_config

from gentorch.models import VAE, ConditionalVAE
from gentorch.training import VAETask


def _losses(
    model: VAE, compile: bool, x: torch.Tensor, y: torch.Tensor | None, input_noise: float
) -> list[float]:
    torch.manual_seed(0)
    # KL warm-up: beta changes every step, which must not recompile (it is passed as a tensor)
    task = VAETask(model, lr=1e-2, kl_warmup_steps=4, compile=compile, input_noise=input_noise)
    losses = []
    for step in range(6):
        batch = slice(8 * step, 8 * step + 8)
        out = task.train_step(x[batch], None if y is None else y[batch])
        losses.append(float(out["loss"]))
    return losses


@pytest.mark.parametrize(("conditional", "input_noise"), [(False, 0.0), (True, 0.0), (False, 0.3)])
def test_compiled_loss_trains_like_the_eager_one(conditional: bool, input_noise: float) -> None:
    # input_noise: the noise is drawn outside the graph, the clean target's range checked in it
    torch._dynamo.reset()
    x = torch.rand(48, 12)
    y = torch.arange(48) % 3 if conditional else None

    def make() -> VAE:
        torch.manual_seed(1)
        if conditional:
            return ConditionalVAE(12, [16], 2, num_classes=3)
        return VAE(12, [16], 2)

    eager = _losses(make(), False, x, y, input_noise)
    # fallback_random: compiled code draws its noise like eager code, so both see the same eps
    with inductor_config.patch(fallback_random=True):
        counters_before = dict(torch._dynamo.utils.counters["stats"])
        compiled = _losses(make(), True, x, y, input_noise)
        frames = torch._dynamo.utils.counters["stats"]["unique_graphs"] - counters_before.get(
            "unique_graphs", 0
        )
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-4)
    assert frames <= 2, f"the loss compiled {frames} graphs for one batch shape"
