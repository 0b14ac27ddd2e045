"""``gentorch <action> vae``: command-line sub-commands for the VAE family."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(families: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]]) -> None:
    """Add this family's sub-commands under the actions in ``families`` (action -> subparsers)."""
