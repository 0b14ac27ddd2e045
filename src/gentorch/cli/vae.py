"""``gentorch <action> vae``: command-line sub-commands for the VAE family.

``train vae`` trains a VAE with :func:`gentorch.training.fit` and writes into ``--out``:
``checkpoint.safetensors`` (weights, optimizer, RNG state and settings), ``history.csv`` /
``history.json``, ``run.json`` (the data the model was trained on) and PNG pictures. Every other
command reads such a folder (``--run``) and writes its PNG or JSON next to the checkpoint unless
told otherwise. Every file written is printed as ``wrote <path>``.

``train vae --conditional`` trains a :class:`gentorch.models.ConditionalVAE` on the dataset's
labels; every other command then passes each test example's label to the model (``sample`` draws
one row per class, or one class with ``--label``).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import torch
from torch import Tensor

from gentorch.cli._common import (
    HelpFormatter,
    UsageError,
    add_run_args,
    add_train_run_group,
    batching_settings,
    check_resume,
    check_tensorboard,
    guard,
    out_file,
    out_folder,
    png_out,
    positive,
    refuse_resume,
    resume_differences,
    select_device,
    set_threads,
)

if TYPE_CHECKING:
    from gentorch.models import VAE, ConditionalVAE

__all__ = ["register"]

_NAMED_DATASETS = ("digits", "mnist", "fashion-mnist", "binarized-mnist")
# The named datasets read from a datasets folder (--data-dir); digits ships with scikit-learn.
_FOLDER_DATASETS = ("mnist", "fashion-mnist", "binarized-mnist")
_ARRAY_SUFFIXES = (".npy", ".csv", ".tsv", ".txt")
# Defaults of each preset: (hidden widths, latent size). "book" is Generative Deep Learning's
# ch. 5.2 model; "mlp" is the PyTorch examples' 784-400-20 VAE; "conv" is gentorch's ConvVAE.
_PRESETS: dict[str, tuple[tuple[int, ...], int]] = {
    "book": ((512, 256), 2),
    "mlp": ((400,), 20),
    "conv": ((256,), 16),
}
# Pictures of images smaller than this are enlarged (nearest neighbour) to stay readable.
_MIN_PICTURE_SIDE = 28
# Samples per class (one row each) in the sample grid of a conditional model.
_SAMPLES_PER_CLASS = 8
_LABEL_HELP = "a class of a model trained with --conditional (default: every class)"


def register(families: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]]) -> None:
    """Add this family's sub-commands under the actions in ``families`` (action -> subparsers)."""
    _train_parser(_add(families, "train", "train a VAE; write checkpoint, history and pictures"))
    p = _add(families, "eval", "test ELBO, IWAE negative log-likelihood and latent statistics")
    _run_args(p)
    p.add_argument("--k", type=int, default=5000, help="importance samples for the NLL")
    p.add_argument(
        "--limit", type=int, default=None, help="evaluate the first N test examples (default: all)"
    )
    p.add_argument(
        "--batch-size", type=int, default=None, help="examples per IWAE call (default: automatic)"
    )
    p.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="importance samples per IWAE call (default: automatic); on a CPU, about 2000 "
        "decoder rows per call (e.g. --batch-size 2 --chunk-size 1000) keeps them in cache",
    )
    p.set_defaults(run=guard(_eval))

    p = _add(
        families,
        "sample",
        "draw samples from a trained VAE into a PNG grid (a conditional model: one row per class)",
    )
    _run_args(p, data=False)  # (reads no data: no --data-dir)
    p.add_argument(
        "--n",
        type=int,
        default=None,
        help="number of samples (default: 64); a conditional model without --label: samples "
        f"per class, one row per class (default: {_SAMPLES_PER_CLASS})",
    )
    p.add_argument("--label", type=int, default=None, help="sample this class only: " + _LABEL_HELP)
    p.set_defaults(run=guard(_sample))

    p = _add(families, "reconstruct", "test images beside their reconstructions (PNG)")
    _run_args(p, seed=False)  # (deterministic: the mean of p(x | z = mu(x)))
    p.add_argument("--n", type=int, default=32, help="number of test images")
    p.set_defaults(run=guard(_reconstruct))

    p = _add(
        families,
        "interpolate",
        "decode a straight line between two test images' codes (a conditional model: two "
        "images of one class, decoded with its label)",
    )
    _run_args(p)
    p.add_argument("--pairs", type=int, default=8, help="number of image pairs (rows)")
    p.add_argument("--steps", type=int, default=10, help="images per row, ends included")
    p.set_defaults(run=guard(_interpolate))

    p = _add(families, "plot-latent", "the 2-D latent manifold and the class-coloured scatter")
    add_run_args(
        p,
        "vae",
        seed_help=None,  # (deterministic: a grid of quantiles and the posterior means)
        out_help="output folder for latent_manifold.png and latent_scatter.png (default: --run)",
    )
    p.add_argument("--grid", type=int, default=20, help="manifold grid size (grid x grid)")
    p.add_argument(
        "--label",
        type=int,
        default=None,
        help="the manifold of this class only, latent_manifold_class<K>.png: " + _LABEL_HELP,
    )
    p.set_defaults(run=guard(_plot_latent))

    p = _add(families, "anomaly", "anomaly scores on the test set: ROC-AUC and a histogram")
    _run_args(p)
    p.add_argument(
        "--anomaly-class",
        type=int,
        default=None,
        help="the class treated as anomalous (default: the class left out by train "
        "--exclude-class)",
    )
    p.add_argument("--score", choices=("elbo", "nll"), default="elbo", help="anomaly score")
    p.add_argument(
        "--k",
        type=int,
        default=None,  # (100; None tells it apart from a value given with --score elbo)
        help="importance samples for --score nll (default: 100)",
    )
    p.set_defaults(run=guard(_anomaly))

    p = _add(families, "denoise", "denoise noisy test images; report PSNR (PNG)")
    _run_args(p)
    p.add_argument("--noise", type=float, default=0.3, help="std of the Gaussian noise added")
    p.add_argument(
        "--n",
        type=int,
        default=None,  # (16; None tells it apart from a value given for data without pictures)
        help="number of images in the picture (default: 16)",
    )
    p.set_defaults(run=guard(_denoise))


def _add(
    families: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]],
    action: str,
    help_text: str,
) -> argparse.ArgumentParser:
    return families[action].add_parser(
        "vae",
        help=help_text,
        description=help_text,
        formatter_class=HelpFormatter,
    )


def _train_parser(p: argparse.ArgumentParser) -> None:
    data = p.add_argument_group("data")
    data.add_argument(
        "--dataset",
        default="digits",
        help="digits (scikit-learn's 8x8, offline), mnist, fashion-mnist, binarized-mnist, or a "
        "path to a .npy/.csv array or a folder of images",
    )
    data.add_argument("--data-dir", default=None, help="datasets folder (default: $GENTORCH_DATA)")
    data.add_argument(
        "--binarize",
        choices=("none", "dynamic"),
        default="none",
        help="dynamic: a fresh Bernoulli(x) draw of every training batch; the test set is "
        "binarized once, with a fixed seed, so that its likelihood is comparable across runs",
    )
    data.add_argument(
        "--label-column", default=None, help="label column of a .csv/.npy array (index or name)"
    )
    data.add_argument(
        "--exclude-class",
        type=int,
        default=None,
        help="leave this class out of training (for `gentorch anomaly vae`)",
    )
    model = p.add_argument_group("model")
    model.add_argument(
        "--preset",
        choices=tuple(_PRESETS),
        default="book",
        help="book: 512-256, latent 2 (Generative Deep Learning 5.2); mlp: 400, latent 20 "
        "(PyTorch examples); conv: ConvVAE for images",
    )
    model.add_argument(
        "--latent-dim", type=int, default=None, help="latent size (default: the preset's)"
    )
    model.add_argument(
        "--hidden-dims",
        default=None,
        help="comma-separated hidden widths, e.g. 512,256; '' for none (default: the "
        "preset's); conv: one",
    )
    model.add_argument(
        "--likelihood",
        choices=("bernoulli", "gaussian"),
        default="bernoulli",
        help="bernoulli for data in [0, 1]; gaussian (fixed unit variance) otherwise",
    )
    model.add_argument(
        "--conditional",
        action="store_true",
        help="a ConditionalVAE: the one-hot class label joins the encoder's and the decoder's "
        "inputs; needs a labelled dataset (a .npy/.csv array: --label-column); book and mlp "
        "presets only",
    )
    objective = p.add_argument_group("objective and optimisation")
    objective.add_argument("--beta", type=float, default=1.0, help="weight of the KL term")
    objective.add_argument(
        "--kl-warmup", type=int, default=0, help="steps over which beta rises from 0"
    )
    objective.add_argument(
        "--free-bits", type=float, default=0.0, help="KL floor in nats per latent dimension"
    )
    objective.add_argument("--iwae-k", type=int, default=1, help="IWAE samples (1: the ELBO)")
    objective.add_argument(
        "--input-noise",
        type=float,
        default=0.0,
        help="std of the Gaussian noise added to the training inputs, scored against the clean "
        "ones: a denoising VAE for `gentorch denoise vae` (0: clean inputs)",
    )
    objective.add_argument("--epochs", type=int, default=20, help="passes over the data")
    objective.add_argument("--batch-size", type=int, default=128, help="examples per step")
    objective.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    objective.add_argument(
        "--lr-decay",
        choices=("none", "cosine"),
        default="none",
        help="cosine: the learning rate falls from --lr to --lr-final * lr over all --epochs",
    )
    objective.add_argument(
        "--lr-final",
        type=float,
        default=None,  # (0; None tells it apart from a value given without --lr-decay cosine)
        help="final learning rate of --lr-decay cosine, as a fraction of --lr (default: 0)",
    )
    objective.add_argument("--seed", type=int, default=0, help="seeds weights, batches, noise")
    objective.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the loss: compiles for tens of seconds first; meant for GPUs. On a "
        "CPU the eager step is usually faster: its Linear layers run on oneDNN, the compiled "
        "step's on MKL (1.74 against 2.26 s per epoch on a 2-core AMD machine)",
    )
    add_train_run_group(p, "vae")
    p.set_defaults(run=guard(_train))


def _run_args(p: argparse.ArgumentParser, seed: bool = True, data: bool = True) -> None:
    add_run_args(p, "vae", seed_help="seed of the random draws" if seed else None, data=data)


# ------------------------------------------------------------------------------------- data
@dataclass
class _Data:
    """A dataset as the CLI uses it: flat tensors plus what pictures need."""

    train_x: Tensor
    train_y: Tensor | None
    test_x: Tensor
    test_y: Tensor | None
    image_shape: tuple[int, int, int] | None
    class_names: tuple[str, ...] | None


def _load_data(spec: dict[str, Any]) -> _Data:
    """Load the data described by ``spec`` (the ``data`` entry of ``run.json``)."""
    from gentorch import data

    name, root = spec["dataset"], spec.get("data_dir")
    if name in _NAMED_DATASETS:
        meta = data.info(name)
        train_x, train_y = data.load(name, "train", root)
        test_split = "valid" if "valid" in meta.splits else "test"
        test_x, test_y = data.load(name, test_split, root)
        result = _Data(train_x, train_y, test_x, test_y, meta.image_shape, meta.class_names)
    else:
        result = _load_user_data(Path(name), spec)
    if spec.get("binarize") == "dynamic":
        if not (_in_unit_interval(result.train_x) and _in_unit_interval(result.test_x)):
            raise UsageError(
                f"--binarize dynamic: draws Bernoulli(x), which needs data in [0, 1]; the "
                f"dataset {name!r} has values in {_value_range(result.train_x, result.test_x)}"
            )
        # one fixed draw x_b ~ Bernoulli(x) of the test set (seed 0), the same in every run
        gen = torch.Generator().manual_seed(0)
        result.test_x = torch.bernoulli(result.test_x, generator=gen)
    exclude = spec.get("exclude_class")
    if exclude is not None:
        if result.train_y is None:
            raise UsageError(f"--exclude-class {exclude}: the dataset {name!r} has no labels")
        keep = result.train_y != exclude
        if bool(keep.all()):
            low, high = int(result.train_y.min()), int(result.train_y.max())
            raise UsageError(
                f"--exclude-class {exclude}: no training example of {name!r} has that class "
                f"(its labels run from {low} to {high})"
            )
        result.train_x, result.train_y = result.train_x[keep], result.train_y[keep]
    return result


def _load_user_data(path: Path, spec: dict[str, Any]) -> _Data:
    from gentorch import data

    image_shape: tuple[int, int, int] | None = None
    class_names = None
    if path.is_dir():
        x, y, meta = data.load_image_folder(path)
        image_shape, class_names = meta.image_shape, meta.class_names
    elif path.suffix.lower() in _ARRAY_SUFFIXES:
        column = spec.get("label_column")
        if isinstance(column, str) and column.lstrip("-").isdigit():
            column = int(column)
        x, y = data.load_array(path, label_column=column)
    elif path.exists():
        raise UsageError(
            f"--dataset {str(path)!r}: expected a folder of images or a file ending in "
            f"{', '.join(_ARRAY_SUFFIXES)}"
        )
    else:
        raise UsageError(
            f"--dataset {str(path)!r}: not one of {', '.join(_NAMED_DATASETS)} and no such "
            "file or folder"
        )
    if x.shape[0] < 10:
        raise UsageError(f"--dataset {str(path)!r}: need at least 10 examples, got {x.shape[0]}")
    # A fixed, seeded 90/10 split: the test part is the last 10% of a permutation.
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    n_test = max(1, x.shape[0] // 10)
    train, test = order[:-n_test], order[-n_test:]
    return _Data(
        x[train],
        None if y is None else y[train],
        x[test],
        None if y is None else y[test],
        image_shape,
        class_names,
    )


# ------------------------------------------------------------------------------------ model
def _build_model(
    args: argparse.Namespace, input_dim: int, image_shape: Any, num_classes: int | None = None
) -> VAE:
    """The model of ``train vae``'s options; a :class:`ConditionalVAE` when ``num_classes``."""
    from gentorch.models import VAE, ConditionalVAE, ConvVAE

    hidden, latent = _hidden_dims(args), _PRESETS[args.preset][1]
    if args.latent_dim is not None:
        latent = args.latent_dim
    if num_classes is not None:  # (not with --preset conv: _check_train_options)
        return ConditionalVAE(input_dim, hidden, latent, num_classes, likelihood=args.likelihood)
    if args.preset != "conv":
        return VAE(input_dim, hidden, latent, likelihood=args.likelihood)
    if image_shape is None:
        raise UsageError("--preset conv: needs image data (C, H, W); this dataset is tabular")
    return ConvVAE(latent, args.likelihood, image_shape, hidden_dim=hidden[0])


def _hidden_dims(args: argparse.Namespace) -> tuple[int, ...]:
    """The hidden widths of ``--hidden-dims`` (unset: the preset's)."""
    if args.hidden_dims is None:
        return _PRESETS[args.preset][0]
    if not args.hidden_dims.strip():
        return ()  # no hidden layer: a linear encoder and decoder
    try:
        # (an empty entry, as in "16,,8", is refused rather than skipped)
        return tuple(int(h) for h in args.hidden_dims.split(","))
    except ValueError:
        raise UsageError(
            f"--hidden-dims: expected comma-separated integers, got {args.hidden_dims!r}"
        ) from None


def _load_run(run: str | Path, device: str | None) -> tuple[VAE, dict[str, Any]]:
    """The trained model of a ``train vae`` folder (on ``device``) and its ``run.json``."""
    from gentorch import models
    from gentorch.training import load_checkpoint, read_checkpoint_metadata

    folder = Path(run)
    if not (folder / "run.json").is_file():
        raise FileNotFoundError(
            f"--run {str(folder)!r}: no run.json there; expected a folder written by "
            "`gentorch train vae --out DIR`"
        )
    info = json.loads((folder / "run.json").read_text())
    device_ = select_device(device)
    meta = read_checkpoint_metadata(folder)
    name = meta.get("config", {}).get("model_class")
    if not isinstance(name, str) or name not in ("VAE", "ConvVAE", "ConditionalVAE"):
        raise UsageError(
            f"--run {str(folder)!r}: not a VAE run (its checkpoint holds no VAE); expected a "
            "folder written by `gentorch train vae` (a GAN run is read by the `gan` commands)"
        )
    model_class = getattr(models, name)
    model = cast("VAE", model_class.from_config(meta["config"]["model"]))
    load_checkpoint(folder, {"model": model})
    return model.to(device_).eval(), info


def _num_classes(data: _Data, dataset: str) -> int:
    """``--conditional``'s number of classes: the dataset's classes, or the largest label + 1."""
    if data.train_y is None or data.test_y is None:
        raise UsageError(
            f"--conditional: needs class labels, and the dataset {dataset!r} has none (for a "
            ".npy/.csv array, name its label column with --label-column)"
        )
    labels = torch.cat([data.train_y, data.test_y])
    low, high = int(labels.min()), int(labels.max())
    if low < 0:
        raise UsageError(f"--conditional: needs class labels >= 0, got labels in [{low}, {high}]")
    return max(high + 1, len(data.class_names or ()))


def _as_conditional(model: VAE) -> ConditionalVAE | None:
    """``model`` if it is a :class:`ConditionalVAE` (trained with ``--conditional``), else None."""
    from gentorch.models import ConditionalVAE

    return model if isinstance(model, ConditionalVAE) else None


def _checked_label(label: int | None, model: VAE, run: str) -> int | None:
    """``--label``, checked against the model: a class of a conditional model, or unset."""
    if label is None:
        return None
    cvae = _as_conditional(model)
    if cvae is None:
        raise UsageError(
            f"--label {label}: the model in {run!r} is not conditional (train it with "
            "`gentorch train vae --conditional`)"
        )
    if not 0 <= label < cvae.num_classes:
        raise UsageError(
            f"--label {label}: expected a class in [0, {cvae.num_classes}), i.e. 0 to "
            f"{cvae.num_classes - 1}"
        )
    return label


def _test_labels(data: _Data, info: dict[str, Any]) -> Tensor:
    """The test labels that a conditional model needs."""
    if data.test_y is None:
        raise UsageError(
            f"the run's model is conditional, but its dataset {info['data']['dataset']!r} has "
            "no labels"
        )
    return data.test_y


# ---------------------------------------------------------------------------------- commands
def _check_train_options(args: argparse.Namespace) -> None:
    """Reject bad flags by their names, before any data is read."""
    check_tensorboard(args)
    out_folder("--out", args.out)
    select_device(args.device)
    for flag in ("--epochs", "--batch-size", "--iwae-k"):
        positive(flag, getattr(args, flag[2:].replace("-", "_")))
    if args.latent_dim is not None:
        positive("--latent-dim", args.latent_dim)
    if args.kl_warmup < 0:
        raise UsageError(f"--kl-warmup: expected a number of steps >= 0, got {args.kl_warmup}")
    # (written as `not x > 0` so that NaN is rejected too)
    if not args.lr > 0 or math.isinf(args.lr):
        raise UsageError(f"--lr: expected a finite learning rate > 0, got {args.lr}")
    for flag, value in (
        ("--beta", args.beta),
        ("--free-bits", args.free_bits),
        ("--input-noise", args.input_noise),
    ):
        if not value >= 0 or math.isinf(value):
            raise UsageError(f"{flag}: expected a finite value >= 0, got {value}")
    if args.lr_final is not None:
        if not 0 <= args.lr_final <= 1:
            raise UsageError(
                f"--lr-final: expected a fraction of --lr in [0, 1], got {args.lr_final}"
            )
        if args.lr_decay != "cosine":
            raise UsageError(
                f"--lr-final {args.lr_final:g}: the end of the --lr-decay cosine schedule, and "
                f"--lr-decay is {args.lr_decay}; add --lr-decay cosine or leave --lr-final out"
            )
    if args.free_bits > 0 and args.iwae_k > 1:
        raise UsageError(
            f"--free-bits {args.free_bits:g}: a floor on the ELBO's KL term, and --iwae-k "
            f"{args.iwae_k} trains the IWAE objective, which has none; leave one of them out"
        )
    # (checked here, before any data is read, rather than when the model is built)
    hidden = _hidden_dims(args)
    if args.preset == "conv":
        if args.conditional:
            raise UsageError(
                "--conditional: there is no conditional ConvVAE; use --preset book or mlp"
            )
        if len(hidden) != 1:
            raise UsageError(f"--hidden-dims: the conv preset takes one width, got {hidden}")
    if args.dataset not in _NAMED_DATASETS and not Path(args.dataset).exists():
        raise UsageError(
            f"--dataset {args.dataset!r}: not one of {', '.join(_NAMED_DATASETS)}, and no such "
            "file or folder"
        )
    _check_data_dir(args.data_dir, args.dataset, "--dataset")
    if args.label_column is not None and (
        args.dataset in _NAMED_DATASETS or Path(args.dataset).is_dir()
    ):
        kind = "a named dataset" if args.dataset in _NAMED_DATASETS else "a folder of images"
        raise UsageError(
            f"--label-column {args.label_column!r}: names a column of a "
            f"{'/'.join(_ARRAY_SUFFIXES)} array, and --dataset {args.dataset!r} is {kind}, with "
            "its labels (if any) built in; leave --label-column out"
        )


def _check_data_dir(data_dir: str | None, dataset: str, whose: str) -> None:
    """``--data-dir`` is read only for the datasets kept in a datasets folder: a
    :class:`UsageError` if it is given for another (``whose``: how to name the dataset)."""
    if data_dir is not None and dataset not in _FOLDER_DATASETS:
        raise UsageError(
            f"--data-dir {data_dir!r}: only {', '.join(_FOLDER_DATASETS[:-1])} and "
            f"{_FOLDER_DATASETS[-1]} are read from a datasets folder, not {whose} {dataset!r}; "
            "leave --data-dir out"
        )


# run.json's data settings, by the flag that sets each (the data folder may move between runs)
_DATA_FLAGS = {
    "dataset": "--dataset",
    "binarize": "--binarize",
    "label_column": "--label-column",
    "exclude_class": "--exclude-class",
}


def _check_resume(out: Path, spec: dict[str, Any], args: argparse.Namespace) -> None:
    """``--resume`` continues the run in ``out`` only on its own data and model."""
    # (no binarization reads "none" on the command line)
    given = {flag: spec[key] for key, flag in _DATA_FLAGS.items()}
    given |= {"--binarize": args.binarize, "--preset": args.preset}
    given["--conditional"] = args.conditional

    def trained(info: dict[str, Any]) -> dict[str, object]:
        settings = {flag: info["data"].get(key) for key, flag in _DATA_FLAGS.items()}
        settings["--binarize"] = settings["--binarize"] or "none"
        settings |= {"--preset": info.get("preset")}
        settings["--conditional"] = bool(info.get("conditional"))
        return settings

    check_resume(out, args.epochs, trained, given)


# VAETask settings (the checkpoint's "config") and TrainConfig ones, by flag; a setting absent
# from an older checkpoint has the default
_OBJECTIVE_FLAGS = {
    "lr": ("--lr", None),
    "lr_final": ("--lr-final", 0.0),
    "beta": ("--beta", 1.0),
    "kl_warmup_steps": ("--kl-warmup", 0),
    "free_bits": ("--free-bits", 0.0),
    "iwae_k": ("--iwae-k", 1),
    "input_noise": ("--input-noise", 0.0),
}


def _check_resume_objective(
    out: Path, config: dict[str, Any], args: argparse.Namespace, steps_per_epoch: int
) -> None:
    """The objective, model and batching of ``--resume`` must be the run's: each difference
    named by its flag (the engine would refuse too, in the library's terms)."""
    from gentorch.training import read_checkpoint_metadata

    meta = read_checkpoint_metadata(out)
    saved = meta["config"]
    objective = [
        (flag, saved.get(key, default), config.get(key, default))
        for key, (flag, default) in _OBJECTIVE_FLAGS.items()
    ]
    differences = resume_differences(objective + batching_settings(meta["train_config"], args))
    if (saved.get("model_class"), saved.get("model")) != (config["model_class"], config["model"]):
        differences.append(
            f"another model (--preset, --latent-dim, --hidden-dims, --likelihood): the run's is "
            f"{saved.get('model_class')} {saved.get('model')}"
        )
    refuse_resume(out, differences)
    if saved.get("lr_decay_steps", 0) != config["lr_decay_steps"]:
        planned = saved.get("lr_decay_steps", 0)
        if not planned:
            raise UsageError("--lr-decay cosine: the run was trained without it; resume without")
        raise UsageError(
            f"--epochs {args.epochs} with --lr-decay cosine: the run's cosine schedule spans the "
            f"--epochs {planned // steps_per_epoch} it was started with, so it can be resumed up "
            "to that epoch but not extended; train a new run for more epochs"
        )


def _train(args: argparse.Namespace) -> int:
    from gentorch.training import TrainConfig, VAETask, fit

    _check_train_options(args)
    out = Path(args.out)
    spec = {
        "dataset": args.dataset,
        "binarize": None if args.binarize == "none" else args.binarize,
        "data_dir": args.data_dir,
        "label_column": args.label_column,
        "exclude_class": args.exclude_class,
    }
    if args.resume:
        _check_resume(out, spec, args)
    set_threads(args.threads)
    torch.manual_seed(args.seed)
    data = _load_data(spec)
    # (one pass over the data for both checks, and only when one of them applies)
    if (args.likelihood == "bernoulli" or args.input_noise > 0) and not _in_unit_interval(
        data.train_x
    ):
        values = _value_range(data.train_x)
        if args.likelihood == "bernoulli":
            raise UsageError(
                f"--likelihood bernoulli: needs data in [0, 1], got values in {values}; use "
                "--likelihood gaussian (or rescale the data)"
            )
        raise UsageError(
            f"--input-noise {args.input_noise:g}: the noisy inputs are clipped to [0, 1], which "
            f"needs data in [0, 1], got values in {values}; rescale the data or leave "
            "--input-noise out"
        )
    num_classes = _num_classes(data, args.dataset) if args.conditional else None
    model = _build_model(args, data.train_x.shape[1], data.image_shape, num_classes)
    steps_per_epoch = math.ceil(data.train_x.shape[0] / positive("--batch-size", args.batch_size))
    steps = args.epochs * steps_per_epoch
    task = VAETask(
        model,
        lr=args.lr,
        lr_decay_steps=steps if args.lr_decay == "cosine" else 0,
        lr_final=0.0 if args.lr_final is None else args.lr_final,
        beta=args.beta,
        kl_warmup_steps=args.kl_warmup,
        free_bits=args.free_bits,
        iwae_k=args.iwae_k,
        input_noise=args.input_noise,
        compile=args.compile,
    )
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        out_dir=out,
        device=select_device(args.device),
        progress=not args.quiet,
        binarize=None if args.binarize == "none" else args.binarize,
        tensorboard=args.tensorboard,
    )
    if args.resume:
        _check_resume_objective(out, task.config(), args, steps_per_epoch)
    resume = out if args.resume else None
    run_info: dict[str, Any] = {
        "data": spec,
        "image_shape": data.image_shape,
        "class_names": data.class_names,
        "preset": args.preset,
    }
    if num_classes is not None:
        assert data.train_y is not None
        trained = sorted(int(c) for c in data.train_y.unique())
        run_info |= {"conditional": True, "num_classes": num_classes, "trained_classes": trained}
    if resume is None:  # (a resumed run keeps its run.json, checked by _check_resume)
        _write_text(out / "run.json", json.dumps(run_info, indent=1))
        print(f"wrote {out / 'run.json'}")
    # The engine hands labels to VAETask, which passes them on as model.loss(x, y).
    train_y, test_y = (data.train_y, data.test_y) if num_classes is not None else (None, None)
    history = fit(
        task,
        data.train_x,
        train_y,
        val_data=data.test_x,
        val_labels=test_y,
        config=config,
        resume_from=resume,
    )
    for name in ("checkpoint.safetensors", "history.csv", "history.json"):
        print(f"wrote {out / name}")
    if args.tensorboard:
        print(f"wrote {out / 'tensorboard'}")  # (a folder of TensorBoard event files)
    last = history.rows[-1]
    print(
        f"epoch {int(last['epoch'])}: test loss (negative ELBO) {last['val_loss']:.2f} nats, "
        f"{last['train_seconds']:.2f} s/epoch"
    )
    model.eval()
    _picture_loss_curves(history.rows, out / "loss_curves.png")
    if data.image_shape is None:
        print("the data are not images: no sample or reconstruction pictures")
        return 0
    shape = data.image_shape
    generator = torch.Generator(device=config.device).manual_seed(args.seed)
    cvae = _as_conditional(model)
    if cvae is None:
        _grid(model.sample(64, generator=generator), shape, out / "samples.png")
    else:
        samples = _class_rows(cvae, _trained_classes(cvae, run_info), _SAMPLES_PER_CLASS, generator)
        _grid(samples, shape, out / "samples.png", nrow=_SAMPLES_PER_CLASS)
    _picture_reconstructions(
        model,
        data.test_x[:32].to(config.device),
        shape,
        out / "reconstructions.png",
        None if test_y is None else test_y[:32].to(config.device),
    )
    latent_dim = int(model.latent_dim)
    if latent_dim == 2:
        _picture_manifolds(model, shape, 20, out, None, run_info)
        if data.test_y is not None:
            _picture_scatter(model, data.test_x, data.test_y, out / "latent_scatter.png")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from gentorch.evaluation import active_units, kl_per_dimension, nll, test_elbo

    positive("--k", args.k)
    for flag in ("--limit", "--batch-size", "--chunk-size"):
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            positive(flag, value)
    out = out_file("--out", args.out, ".json") if args.out else Path(args.run_dir) / "eval.json"
    model, info = _load_run(args.run_dir, args.device)
    device = next(model.parameters()).device
    cvae = _as_conditional(model)
    data = _load_data(_data_spec(info, args))
    test_x = data.test_x.to(device)
    test_y = None if cvae is None else _test_labels(data, info).to(device)
    if args.limit is not None:
        test_x = test_x[: args.limit]
        test_y = None if test_y is None else test_y[: args.limit]
    generator = torch.Generator(device=device).manual_seed(args.seed)
    elbo, elbo_se = test_elbo(model, test_x, generator=generator, labels=test_y)
    nll_mean, nll_se = nll(
        model,
        test_x,
        k=args.k,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        generator=generator,
        labels=test_y,
    )
    # (a conditional model's latent statistics are those of q(z | x, y))
    kl = kl_per_dimension(model, test_x, labels=test_y)
    result: dict[str, Any] = {
        "examples": test_x.shape[0],
        "test_elbo": elbo,
        "test_elbo_stderr": elbo_se,
        "nll": nll_mean,
        "nll_stderr": nll_se,
        "nll_k": args.k,
        "active_units": active_units(model, test_x, labels=test_y),
        "latent_dim": kl.shape[0],
        "kl_per_dimension": [float(v) for v in kl],
    }
    if cvae is not None:
        result["conditional"] = True
        print("conditional model: bounds on log p(x | y), given each test example's label")
    print(f"test ELBO      {elbo:.2f} +- {elbo_se:.2f} nats ({test_x.shape[0]} examples)")
    print(f"NLL (IWAE k={args.k}) {nll_mean:.2f} +- {nll_se:.2f} nats")
    print(f"active units   {result['active_units']} of {result['latent_dim']}")
    print("KL per latent dimension (nats): " + " ".join(f"{v:.2f}" for v in kl.tolist()))
    _write_text(out, json.dumps(result, indent=1))
    print(f"wrote {out}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    out = png_out(args.out, Path(args.run_dir) / "samples.png")
    model, info = _load_run(args.run_dir, args.device)
    label = _checked_label(args.label, model, args.run_dir)
    shape = _image_shape(info)
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(args.seed)
    cvae = _as_conditional(model)
    if cvae is not None and label is None:
        per_class = positive("--n", _SAMPLES_PER_CLASS if args.n is None else args.n)
        rows = _class_rows(cvae, _trained_classes(cvae, info), per_class, generator)
        _grid(rows, shape, out, nrow=per_class)
        return 0
    if cvae is not None:
        _warn_if_untrained(label, cvae, info)
    n = positive("--n", 64 if args.n is None else args.n)
    _grid(model.sample(n, label, generator=generator), shape, out)
    return 0


def _reconstruct(args: argparse.Namespace) -> int:
    out = png_out(args.out, Path(args.run_dir) / "reconstructions.png")
    model, info = _load_run(args.run_dir, args.device)
    shape = _image_shape(info)
    n = positive("--n", args.n)
    data = _load_data(_data_spec(info, args))
    n = _at_most_the_test_set(n, data.test_x.shape[0])
    device = next(model.parameters()).device
    y = None if _as_conditional(model) is None else _test_labels(data, info)[:n].to(device)
    _picture_reconstructions(model, data.test_x[:n].to(device), shape, out, y)
    return 0


def _at_most_the_test_set(n: int, available: int) -> int:
    """``--n`` capped at the test set's size, saying so when it is."""
    if n > available:
        print(f"note: --n {n}, but the test set has only {available} images: showing {available}")
    return min(n, available)


def _interpolate(args: argparse.Namespace) -> int:
    out = png_out(args.out, Path(args.run_dir) / "interpolation.png")
    model, info = _load_run(args.run_dir, args.device)
    shape = _image_shape(info)
    pairs, steps = positive("--pairs", args.pairs), positive("--steps", args.steps)
    if steps < 2:
        raise UsageError(f"--steps: expected at least 2 (the two ends), got {steps}")
    data = _load_data(_data_spec(info, args))
    x = data.test_x
    if x.shape[0] < 2 * pairs:
        raise UsageError(f"--pairs {pairs}: the test set has only {x.shape[0]} images")
    from gentorch.plotting import save_interpolation

    generator = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(x.shape[0], generator=generator)
    device = next(model.parameters()).device
    labels = None
    if _as_conditional(model) is None:
        first, second = order[:pairs], order[pairs : 2 * pairs]
    else:
        # The decoder needs one label per row: interpolate between two images of one class.
        y = _test_labels(data, info)
        first, second = _same_class_pairs(y, order, pairs)
        labels = y[first].to(device)
    path = save_interpolation(
        model,
        x[first].to(device),
        x[second].to(device),
        out,
        shape,
        steps,
        scale=_scale(shape),
        labels=labels,
    )
    print(f"wrote {path}")
    return 0


def _plot_latent(args: argparse.Namespace) -> int:
    if args.out is not None and Path(args.out).suffix.lower() == ".png":
        raise UsageError(
            f"--out {args.out!r}: plot-latent writes latent_manifold.png and latent_scatter.png "
            "into a folder; expected a folder name"
        )
    folder = out_folder("--out", args.out) if args.out else Path(args.run_dir)
    model, info = _load_run(args.run_dir, args.device)
    latent_dim = int(model.latent_dim)
    if latent_dim != 2:
        raise UsageError(f"plot-latent: needs a model with latent_dim 2, this one has {latent_dim}")
    label = _checked_label(args.label, model, args.run_dir)
    shape = _image_shape(info)
    spec = _data_spec(info, args)  # (checks --data-dir before any picture is drawn)
    _picture_manifolds(model, shape, positive("--grid", args.grid), folder, label, info)
    data = _load_data(spec)
    if data.test_y is None:
        print("the test set has no labels: no class-coloured scatter")
        return 0
    _picture_scatter(model, data.test_x, data.test_y, folder / "latent_scatter.png")
    return 0


def _anomaly(args: argparse.Namespace) -> int:
    from gentorch.evaluation import anomaly_auc, anomaly_scores

    if args.k is not None:
        positive("--k", args.k)
        if args.score != "nll":
            raise UsageError(
                f"--k {args.k}: the importance samples of --score nll, and --score is "
                f"{args.score}; add --score nll or leave --k out"
            )
    k = 100 if args.k is None else args.k
    out = png_out(args.out, Path(args.run_dir) / "anomaly.png")
    model, info = _load_run(args.run_dir, args.device)
    anomalous = args.anomaly_class
    if anomalous is None:
        anomalous = info["data"].get("exclude_class")
    if anomalous is None:
        raise UsageError(
            "--anomaly-class: not given, and the run was not trained with --exclude-class"
        )
    data = _load_data(_data_spec(info, args))
    if data.test_y is None:
        raise UsageError(f"anomaly: the dataset {info['data']['dataset']!r} has no labels")
    is_anomaly = data.test_y == anomalous
    if not bool(is_anomaly.any()):  # (checked before the scores, which take long)
        low, high = int(data.test_y.min()), int(data.test_y.max())
        raise UsageError(
            f"--anomaly-class {anomalous}: no test example has that class (the test labels run "
            f"from {low} to {high})"
        )
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(args.seed)
    cvae = _as_conditional(model)
    if cvae is None:
        scores = anomaly_scores(
            model, data.test_x.to(device), args.score, k=k, generator=generator
        ).cpu()
    else:
        scores = _marginal_anomaly_scores(cvae, data, args.score, k, generator)
    auc = anomaly_auc(scores, is_anomaly)
    print(f"ROC-AUC {auc:.4f}: class {anomalous} vs the rest, score -{args.score.upper()}")
    _picture_histogram(scores, is_anomaly, anomalous, auc, args.score, out)
    report: dict[str, Any] = {"anomaly_class": anomalous, "score": args.score, "roc_auc": auc}
    if cvae is not None:
        report["conditional"] = True
    _write_text(out.with_suffix(".json"), json.dumps(report, indent=1))
    print(f"wrote {out.with_suffix('.json')}")
    return 0


def _denoise(args: argparse.Namespace) -> int:
    from gentorch.evaluation import denoise, psnr
    from gentorch.training import read_checkpoint_metadata

    out = png_out(args.out, Path(args.run_dir) / "denoising.png")
    # (checked before any work; an infinite std would turn every pixel into 0 or 1)
    if not 0 <= args.noise < math.inf:
        raise UsageError(f"--noise: expected a finite standard deviation >= 0, got {args.noise}")
    n_pictured = positive("--n", 16 if args.n is None else args.n)
    model, info = _load_run(args.run_dir, args.device)
    if info.get("image_shape") is None:
        for flag, value in (("--n", args.n), ("--out", args.out)):
            if value is not None:
                raise UsageError(
                    f"{flag} {value!r}: the run's data ({info['data']['dataset']!r}) are not "
                    "images, so denoise draws no picture; leave it out"
                )
    data = _load_data(_data_spec(info, args))
    if not _in_unit_interval(data.test_x):
        raise UsageError(
            f"--noise {args.noise:g}: the noisy inputs are clipped to [0, 1] (and PSNR takes "
            f"that range), which needs data in [0, 1]; the run's data have values in "
            f"{_value_range(data.test_x)}"
        )
    clean = data.test_x.to(next(model.parameters()).device)
    generator = torch.Generator(device=clean.device).manual_seed(args.seed)
    # noisy = clip(x + sigma * eps, 0, 1), eps ~ N(0, I): a corrupted input in the data's range
    noise = torch.randn(clean.shape, generator=generator, device=clean.device)
    noisy = (clean + args.noise * noise).clamp(0, 1)
    labels = None
    if _as_conditional(model) is not None:
        print("conditional model: each noisy image is reconstructed given its test label")
        labels = _test_labels(data, info).to(clean.device)
    restored = denoise(model, noisy, labels=labels)
    before, after = psnr(clean, noisy), psnr(clean, restored)
    print(f"PSNR noisy {before:.2f} dB -> denoised {after:.2f} dB (noise std {args.noise})")
    trained_noise = read_checkpoint_metadata(args.run_dir)["config"].get("input_noise", 0.0)
    if trained_noise == 0:
        print(
            "note: this model was trained on clean inputs; a denoising VAE (`gentorch train vae "
            f"--input-noise {args.noise:g}`) learns to remove such noise"
        )
    shape = info.get("image_shape")
    if shape is not None:
        n = _at_most_the_test_set(n_pictured, clean.shape[0])
        rows = torch.cat([clean[:n], noisy[:n], restored[:n]])
        _grid(rows, tuple(shape), out, nrow=n)
    return 0


# ---------------------------------------------------------------------------------- pictures
def _scale(shape: Sequence[int]) -> int:
    """Pixel magnification that shows images at least ``_MIN_PICTURE_SIDE`` pixels across."""
    return max(1, math.ceil(_MIN_PICTURE_SIDE / min(shape[-2:])))


def _grid(flat: Tensor, shape: Sequence[int], path: Path, nrow: int | None = None) -> Path:
    """Write images ``flat: (N, C*H*W)`` as a grid, enlarged when small."""
    from gentorch.plotting import save_image_grid

    # Gaussian decoders' means may leave [0, 1]: shown clipped, as every image viewer would.
    images = flat.detach().float().cpu().reshape(-1, *shape).clamp(0, 1)
    path = save_image_grid(images, path, nrow=nrow, scale=_scale(shape))
    print(f"wrote {path}")
    return path


def _trained_classes(model: ConditionalVAE, info: dict[str, Any]) -> list[int]:
    """The classes the run's training data held (every class for runs that did not record
    them): a class left out with ``--exclude-class`` has an untrained label."""
    return list(info.get("trained_classes", range(model.num_classes)))


def _warn_if_untrained(label: int | None, model: ConditionalVAE, info: dict[str, Any]) -> None:
    if label is not None and label not in _trained_classes(model, info):
        print(f"note: class {label} was not in the training data; its label was never trained")


def _class_rows(
    model: ConditionalVAE, classes: Sequence[int], per_class: int, generator: torch.Generator
) -> Tensor:
    """``per_class`` samples of each of ``classes``, class by class: a grid of one row each."""
    labels = torch.tensor(list(classes), device=generator.device)
    return model.sample(
        len(classes) * per_class, labels.repeat_interleave(per_class), generator=generator
    )


def _picture_reconstructions(
    model: VAE, x: Tensor, shape: Sequence[int], path: Path, y: Tensor | None = None
) -> None:
    """Rows of 8: inputs, then their reconstructions below them (given labels ``y``, if any)."""
    from gentorch.plotting import save_reconstructions

    recon = model.reconstruct(x, y).clamp(0, 1)
    out = save_reconstructions(x, recon, path, shape, nrow=8, scale=_scale(shape))
    print(f"wrote {out}")


def _picture_manifolds(
    model: VAE,
    shape: Sequence[int],
    n: int,
    folder: Path,
    label: int | None,
    info: dict[str, Any],
) -> None:
    """``latent_manifold.png``; a conditional model: ``latent_manifold_class<K>.png`` for class
    ``label``, or for every class of the training data when ``label`` is None."""
    cvae = _as_conditional(model)
    if cvae is None:
        _picture_manifold(model, shape, n, folder / "latent_manifold.png", None)
        return
    _warn_if_untrained(label, cvae, info)
    for k in _trained_classes(cvae, info) if label is None else (label,):
        _picture_manifold(model, shape, n, folder / f"latent_manifold_class{k}.png", k)


def _picture_manifold(
    model: VAE, shape: Sequence[int], n: int, path: Path, label: int | None
) -> None:
    from gentorch.plotting import save_latent_manifold

    # Tiny images (8x8 digits) run together without a visible border between them.
    small = min(shape[-2:]) < 16
    path = save_latent_manifold(
        model, path, shape, n, padding=int(small), pad_value=0.35, scale=_scale(shape), label=label
    )
    print(f"wrote {path}")


def _picture_scatter(model: VAE, x: Tensor, y: Tensor, path: Path) -> None:
    from gentorch.evaluation import posterior_means
    from gentorch.plotting import save_latent_scatter

    x = x.to(next(model.parameters()).device)
    # a conditional model: q(z | x, y), each example encoded with its label
    labels = None if _as_conditional(model) is None else y.to(x.device)
    mu = posterior_means(model, x, labels=labels)
    out = save_latent_scatter(mu, y, path, title="posterior means of the test set")
    print(f"wrote {out}")


def _picture_loss_curves(rows: list[dict[str, float]], path: Path) -> None:
    from gentorch.plotting import save_loss_curves

    # loss = recon + beta * KL per example; "elbo" repeats -loss, seconds and steps are not curves
    metrics = ("loss", "recon", "kl")
    print(f"wrote {save_loss_curves(rows, path, metrics=metrics, title='nats per example')}")


def _picture_histogram(
    scores: Tensor, is_anomaly: Tensor, anomalous: int, auc: float, score: str, path: Path
) -> None:
    from gentorch.plotting import save_histogram

    out = save_histogram(
        scores,
        is_anomaly,
        path,
        xlabel=f"anomaly score: -{score.upper()} (nats)",
        label_names={False: "other classes", True: f"class {anomalous}"},
        title=f"ROC-AUC {auc:.3f}",
    )
    print(f"wrote {out}")


# ----------------------------------------------------------------------------------- helpers
def _data_spec(info: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    spec = dict(info["data"])
    if args.data_dir is not None:
        _check_data_dir(args.data_dir, spec["dataset"], "the run's dataset")
        spec["data_dir"] = args.data_dir
    return spec


def _image_shape(info: dict[str, Any]) -> tuple[int, int, int]:
    shape = info.get("image_shape")
    if shape is None:
        raise UsageError(f"the run's data ({info['data']['dataset']!r}) are not images")
    c, h, w = shape
    return int(c), int(h), int(w)


def _same_class_pairs(y: Tensor, order: Tensor, pairs: int) -> tuple[Tensor, Tensor]:
    """Indices of ``pairs`` pairs of examples of one class each, taken in ``order``."""
    waiting: dict[int, int] = {}  # class -> an example still without a partner
    first: list[int] = []
    second: list[int] = []
    for i in order.tolist():
        k = int(y[i])
        if k not in waiting:
            waiting[k] = i
            continue
        first.append(waiting.pop(k))
        second.append(i)
        if len(first) == pairs:
            break
    if len(first) < pairs:
        raise UsageError(
            f"--pairs {pairs}: the test set has only {len(first)} pairs of images of one class"
        )
    return torch.tensor(first), torch.tensor(second)


def _marginal_anomaly_scores(
    model: ConditionalVAE,
    data: _Data,
    score: Literal["elbo", "nll"],
    k: int,
    generator: torch.Generator,
) -> Tensor:
    """``-log sum_c p(c) p(x | c)`` over the training classes ``c`` (``p(c)`` their training
    frequencies), with ``log p(x | c)`` bounded by the ELBO or the IWAE-``k`` estimate.

    The test labels are not used: given the true label, an unseen class would be flagged by its
    label alone."""
    from gentorch.evaluation import anomaly_scores

    if data.train_y is None:
        raise UsageError("anomaly: a conditional model needs the training labels, found none")
    classes, counts = data.train_y.unique(return_counts=True)
    print(
        f"conditional model: score -log sum_c p(c) p(x | c) over the {classes.numel()} "
        "training classes (the test labels are not used)"
    )
    device = next(model.parameters()).device
    x = data.test_x.to(device)
    per_class = torch.stack(
        [
            anomaly_scores(
                model,
                x,
                score,
                k=k,
                generator=generator,
                labels=torch.full((x.shape[0],), int(c), device=device),
            ).cpu()
            for c in classes
        ]
    )  # (C, N): -log p(x | c)
    # (on the CPU, beside per_class: MPS has no float64)
    log_prior = (counts.cpu().double() / counts.sum().cpu()).log().to(per_class.dtype)
    # -log p(x) = -logsumexp_c [log p(c) + log p(x | c)]
    return -torch.logsumexp(log_prior.unsqueeze(-1) - per_class, dim=0)


def _in_unit_interval(x: Tensor) -> bool:
    return bool(((x >= 0) & (x <= 1)).all())


def _value_range(*xs: Tensor) -> str:
    """``[lo, hi]`` over the values of every tensor in ``xs``, for error messages."""
    low = min(float(x.min()) for x in xs)
    high = max(float(x.max()) for x in xs)
    return f"[{low:g}, {high:g}]"


def _write_text(path: Path, text: str) -> None:
    from gentorch.training import write_atomic

    write_atomic(path, text.encode())
