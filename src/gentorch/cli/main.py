"""The ``gentorch`` command line: ``gentorch <action> <model> [options]``.

Actions (``train``, ``sample``, ``eval``, ...) are sub-commands; each model family registers its
own commands under them from :mod:`gentorch.cli.vae` and :mod:`gentorch.cli.gan`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

# Top-level actions; a family module adds a sub-command under the ones it supports.
ACTIONS = {
    "train": "train a model and write checkpoints and pictures",
    "sample": "draw samples from a trained model into a PNG grid",
    "eval": "evaluate a trained model and print its numbers",
    "reconstruct": "reconstruct inputs with a trained VAE (PNG)",
    "interpolate": "interpolate between two inputs in a VAE's latent space (PNG)",
    "plot-latent": "plot a VAE's 2-D latent manifold and class scatter (PNG)",
    "anomaly": "anomaly detection with a VAE: ROC-AUC for a held-out class (PNG)",
    "denoise": "denoise noisy inputs with a VAE and report PSNR (PNG)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gentorch",
        description="Train, sample and evaluate VAEs and SN-GANs.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    families: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    for name, help_text in ACTIONS.items():
        sub = actions.add_parser(name, help=help_text, description=help_text)
        families[name] = sub.add_subparsers(dest="model", metavar="MODEL", required=True)
    # Imported here so that `gentorch --help` stays fast and each family stays optional.
    from gentorch.cli import gan, vae

    vae.register(families)
    gan.register(families)
    for name in list(families):
        if not families[name].choices:
            actions._name_parser_map.pop(name, None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
