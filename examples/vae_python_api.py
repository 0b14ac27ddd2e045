"""The VAE pipeline from Python: data -> training -> the numbers papers report -> pictures.

What ``gentorch train vae`` / ``eval vae`` do, written out with the library's own pieces, for
readers who want to change one of them (a different model, an extra metric, their own data):

* ``gentorch.data.load``: one ``(N, D)`` float tensor per split, values in [0, 1];
* ``gentorch.models.VAE.book``: the Generative Deep Learning (ch. 5.2) model, latent size 2;
* ``gentorch.training.fit(VAETask(...))``: fused Adam, a validation ELBO every epoch,
  an atomic checkpoint and the history in ``--out``;
* ``gentorch.evaluation``: test ELBO and importance-sampled NLL (each with its standard error),
  active units, KL per latent dimension;
* ``gentorch.plotting``: the PNGs.

Offline (scikit-learn's bundled 8x8 digits), about 15 s on two CPU cores::

    .venv/bin/python examples/vae_python_api.py --out runs/vae_python_api
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from gentorch.data import info, load
from gentorch.evaluation import active_units, kl_per_dimension, nll, posterior_means, test_elbo
from gentorch.models import VAE
from gentorch.plotting import (
    save_image_grid,
    save_latent_manifold,
    save_latent_scatter,
    save_loss_curves,
    save_reconstructions,
)
from gentorch.training import TrainConfig, VAETask, fit


def main(out: Path, epochs: int = 100, k: int = 1000, progress: bool = True) -> dict[str, float]:
    torch.manual_seed(0)
    image_shape = info("digits").image_shape  # (1, 8, 8)
    x_train, _ = load("digits", "train")  # (1437, 64) in [0, 1]
    x_test, y_test = load("digits", "test")  # (360, 64), labels (360,)
    assert y_test is not None  # digits are labelled

    # The book's model for 64 inputs: 64 -> 512 -> 256 -> (mu, logvar) in 2-D, and back.
    model = VAE.book(input_dim=x_train.shape[1])
    # Bernoulli likelihood on grey levels (the book's 784 * BCE), Adam 2e-3.
    task = VAETask(model, lr=2e-3)
    config = TrainConfig(epochs=epochs, batch_size=64, out_dir=out, progress=progress)
    history = fit(task, x_train, val_data=x_test, config=config)

    # What papers report: the test ELBO and the IWAE-k estimate of -log p(x), in nats, each with
    # its standard error over test examples, plus how much of the latent space is used.
    g = torch.Generator().manual_seed(0)
    elbo, elbo_se = test_elbo(model, x_test, generator=g)
    nll_mean, nll_se = nll(model, x_test, k=k, progress=progress, generator=g)
    results = {
        "test_elbo": elbo,
        "test_elbo_stderr": elbo_se,
        "nll": nll_mean,
        "nll_stderr": nll_se,
        "active_units": float(active_units(model, x_test)),
    }
    print(f"test ELBO {elbo:.2f} +- {elbo_se:.2f} nats")
    print(f"NLL (IWAE k={k}) {nll_mean:.2f} +- {nll_se:.2f} nats")
    kl = kl_per_dimension(model, x_test)
    print(f"active units {results['active_units']:.0f} of 2; KL per dimension {kl.tolist()}")

    # The pictures: samples from the prior, reconstructions beside their inputs, the decoded
    # latent grid and the test set's posterior means coloured by digit, the loss curves.
    wrote = [
        save_image_grid(model.sample(100).view(-1, *image_shape), out / "samples.png", scale=4),
        save_reconstructions(
            x_test[:50],
            model.reconstruct(x_test[:50]),
            out / "reconstructions.png",
            image_shape,
            scale=4,
        ),
        save_latent_manifold(model, out / "latent_manifold.png", image_shape, scale=4),
        save_latent_scatter(posterior_means(model, x_test), y_test, out / "latent_scatter.png"),
        save_loss_curves(history, out / "loss_curves.png", metrics=("loss", "recon", "kl")),
    ]
    for path in wrote:
        print(f"wrote {path}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/vae_python_api"))
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--k", type=int, default=1000, help="importance samples for the NLL")
    args = parser.parse_args()
    main(args.out, args.epochs, args.k)
