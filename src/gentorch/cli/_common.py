"""What the model families' commands share: the help format, the ``--run`` and training-run
options, error reporting, devices, thread counts, ``--resume`` checks, and the checks of
positive integers and output paths (each done before any work, named by its flag)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from gentorch._checks import check_parent_folders


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: ...)`` except for flags and options whose help says what unset means."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class UsageError(Exception):
    """A bad command-line value: printed as ``gentorch: error: ...``, exit status 2."""


def add_run_args(
    p: argparse.ArgumentParser,
    family: str,
    seed_help: str | None,
    out_help: str = "output file (default: inside --run)",
    data: bool = True,
) -> None:
    """Options of a command that reads the folder written by ``gentorch train <family>``:
    ``--run`` (default ``runs/<family>``), ``--out``, ``--device``, ``--seed``, ``--data-dir``.
    A command that draws nothing at random (``seed_help`` None) has no ``--seed``, and one that
    reads no data (``data`` false) no ``--data-dir``: argparse refuses them instead of ignoring
    them."""
    p.add_argument(
        "--run",
        dest="run_dir",
        default=f"runs/{family}",
        help=f"folder written by `gentorch train {family}`",
    )
    p.add_argument("--out", default=None, help=out_help)
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: cuda if available)")
    if seed_help is not None:
        p.add_argument("--seed", type=int, default=0, help=seed_help)
    if data:
        p.add_argument("--data-dir", default=None, help="datasets folder (default: $GENTORCH_DATA)")


def add_train_run_group(p: argparse.ArgumentParser, family: str) -> None:
    """The "run" options of ``gentorch train <family>``: ``--device``, ``--out`` (default
    ``runs/<family>``), ``--resume``, ``--threads``, ``--quiet``, ``--tensorboard``."""
    run = p.add_argument_group("run")
    run.add_argument("--device", default=None, help="cpu, cuda, mps (default: cuda if available)")
    run.add_argument("--out", default=f"runs/{family}", help="output folder")
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its checkpoint (same settings, more --epochs)",
    )
    run.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: torch's)"
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--tensorboard",
        action="store_true",
        help="also log the metrics for TensorBoard in <out>/tensorboard (needs the tensorboard "
        "package: pip install 'gentorch[tensorboard]')",
    )


def check_tensorboard(args: argparse.Namespace) -> None:
    """``--tensorboard`` needs the package: say so before any data is read."""
    if args.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise UsageError(
            "--tensorboard: needs the tensorboard package, which is not installed: "
            "pip install 'gentorch[tensorboard]' (or run without --tensorboard)"
        )


def guard(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Report expected failures as one line and exit status 2: bad values (the library's
    ``ValueError`` names the argument; dataset and checkpoint errors are ``ValueError`` too),
    missing files and divergence."""
    from gentorch.training import TrainingDiverged

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (UsageError, ValueError, FileNotFoundError, TrainingDiverged) as err:
            print(f"gentorch: error: {err}", file=sys.stderr)
            return 2

    return run


def select_device(name: str | None) -> torch.device:
    """The device named by ``--device``; unset: CUDA if available, else the CPU. A
    :class:`UsageError` naming ``--device`` for a name torch does not know or a device this
    machine (or this torch build) does not have."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(
            f"--device {name!r}: expected a device such as cpu, cuda, cuda:1 or mps"
        ) from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(
                f"--device {name}: CUDA is not available here (torch {torch.__version__}, "
                f"built {'with' if torch.backends.cuda.is_built() else 'without'} CUDA); "
                "use --device cpu"
            )
        if device.index is not None and device.index >= count:
            raise UsageError(f"--device {name}: this machine has {count} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {name}: MPS is not available here; use --device cpu")
    return device


def check_resume(
    out: Path,
    epochs: int,
    run_settings: Callable[[dict[str, Any]], dict[str, object]],
    given: dict[str, object],
) -> None:
    """``--resume`` continues the run in ``out`` only with the settings it was trained with and
    for more epochs: a :class:`UsageError` naming each difference by its flag, before any data
    is read or file written. ``run_settings`` maps the run's ``run.json`` to ``{flag: value}``
    for the flags in ``given``."""
    from gentorch.training import read_checkpoint_metadata

    if not (out / "run.json").is_file() or not (out / "checkpoint.safetensors").is_file():
        raise UsageError(f"--resume: no run in {str(out)!r} to continue")
    trained = run_settings(json.loads((out / "run.json").read_text()))
    refuse_resume(out, resume_differences((f, trained[f], value) for f, value in given.items()))
    epoch = int(read_checkpoint_metadata(out)["epoch"])
    if epochs <= epoch:
        raise UsageError(
            f"--epochs {epochs}: the run in {str(out)!r} is already at epoch {epoch}; ask for "
            "more epochs to continue it"
        )


def resume_differences(settings: Iterable[tuple[str, object, object]]) -> list[str]:
    """``"<flag> <run's value> (given: <value>)"`` for each ``(flag, run's value, given value)``
    of ``settings`` whose two values differ."""
    return [
        f"{flag} {_flag_value(run)} (given: {_flag_value(given)})"
        for flag, run, given in settings
        if run != given
    ]


def batching_settings(
    train_config: Mapping[str, Any], args: argparse.Namespace
) -> list[tuple[str, object, object]]:
    """``(flag, run's value, given value)`` of ``--batch-size`` and ``--seed``, the batching a
    checkpoint's ``train_config`` records."""
    return [
        ("--batch-size", train_config.get("batch_size"), args.batch_size),
        ("--seed", train_config.get("seed"), args.seed),
    ]


def refuse_resume(out: Path, differences: Sequence[str]) -> None:
    """A :class:`UsageError` listing ``differences`` (see :func:`resume_differences`), if any."""
    if differences:
        raise UsageError(
            f"--resume: the run in {str(out)!r} was trained with {', '.join(differences)}; "
            "resume it with the same settings"
        )


def _flag_value(value: object) -> str:
    """How a setting reads on the command line: ``unset``, ``on``/``off`` or the value."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def out_folder(flag: str, value: str | Path) -> Path:
    """The output folder named by ``flag``, checked before any work: a :class:`UsageError`
    naming the flag if it is an existing file or inside one."""
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {str(value)!r}: an existing file; expected a folder")
    _check_parents(flag, path)
    return path


def out_file(flag: str, value: str | Path, suffix: str, example: str | None = None) -> Path:
    """The output file named by ``flag``, checked before any work: a :class:`UsageError`
    naming the flag unless it ends in ``suffix`` and can be created (not an existing folder,
    not inside a file). ``example``: a file name to suggest inside a folder given instead."""
    path = Path(value)
    if path.is_dir():
        hint = f", e.g. {str(path / example)!r}" if example else ""
        raise UsageError(
            f"{flag} {str(value)!r}: an existing folder; expected a {suffix} file name{hint}"
        )
    if path.suffix.lower() != suffix:
        raise UsageError(f"{flag} {str(value)!r}: expected a file name ending in {suffix}")
    _check_parents(flag, path)
    return path


def _check_parents(flag: str, path: Path) -> None:
    """The nearest existing parent of ``path`` must be a folder (else mkdir fails later):
    :func:`gentorch._checks.check_parent_folders`, reported as a usage error."""
    try:
        check_parent_folders(path, flag)
    except ValueError as err:
        raise UsageError(str(err)) from None


def positive(flag: str, value: int) -> int:
    """``value`` if it is at least 1; otherwise a :class:`UsageError` naming ``flag``."""
    if value < 1:
        raise UsageError(f"{flag}: expected a positive integer, got {value}")
    return value


def png_out(out: str | None, default: Path) -> Path:
    """The picture file named by ``--out`` (``default`` when unset), checked before any work:
    a :class:`UsageError` naming ``--out`` unless it is a ``.png`` file name."""
    return default if out is None else out_file("--out", out, ".png", example=default.name)


def set_threads(threads: int | None) -> None:
    """Apply ``--threads`` (unset: leave torch's setting alone)."""
    if threads is not None:
        torch.set_num_threads(positive("--threads", threads))
