"""``gentorch <action> gan`` and ``gentorch train classifier``: the SN-GAN pipeline's commands.

``train gan`` trains :class:`~gentorch.models.SNGANGenerator` against
:class:`~gentorch.models.SNGANDiscriminator` with :class:`~gentorch.training.gan.GANTask` and
:func:`gentorch.training.fit`, and writes into ``--out``: ``checkpoint.safetensors``,
``history.csv`` / ``history.json`` (with the validation FLD and IS of every epoch),
``run.json`` (the data), ``samples/epoch_NNN.png`` (the fixed latent codes through the EMA
generator, every epoch), ``spectral_norms.json`` / ``.png`` and ``fld.png``. ``sample gan`` and
``eval gan`` read such a folder (``--run``). ``train classifier`` trains the LeNet whose
features give the FLD. Every file written is printed as ``wrote <path>``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

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

__all__ = ["register"]

_DATASETS = ("mnist", "fashion-mnist")


def register(families: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]]) -> None:
    """Add this family's sub-commands under the actions in ``families`` (action -> subparsers)."""
    _train_parser(_add(families, "train", "gan", "train an SN-GAN; write checkpoint and pictures"))

    p = _add(families, "sample", "gan", "draw images from a trained GAN into a PNG grid")
    _run_args(p, data=False)  # (reads no data: no --data-dir)
    p.add_argument("--n", type=int, default=64, help="number of images")
    p.add_argument("--nrow", type=int, default=None, help="images per row (default: square)")
    p.add_argument("--raw", action="store_true", help="use the trained, not the EMA, generator")
    p.set_defaults(run=guard(_sample))

    p = _add(families, "eval", "gan", "FLD and classifier Inception Score of a trained GAN")
    _run_args(p)
    p.add_argument("--n", type=int, default=10000, help="generated (and real) images compared")
    p.add_argument(
        "--classifier",
        default=None,
        help="LeNet safetensors file (default: the shipped one for the run's dataset)",
    )
    p.add_argument("--raw", action="store_true", help="use the trained, not the EMA, generator")
    p.set_defaults(run=guard(_eval))

    p = _add(families, "train", "classifier", "train the LeNet used by FLD and IS")
    p.add_argument("--dataset", choices=_DATASETS, default="mnist", help="training images")
    p.add_argument("--data-dir", default=None, help="datasets folder (default: $GENTORCH_DATA)")
    p.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    p.add_argument("--epochs", type=int, default=8, help="passes over the data")
    p.add_argument("--batch-size", type=int, default=128, help="images per step")
    p.add_argument("--lr", type=float, default=1e-3, help="initial Adam learning rate")
    p.add_argument("--max-shift", type=int, default=1, help="random shifts, in pixels")
    p.add_argument("--seed", type=int, default=0, help="seeds weights, batches and shifts")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: cuda if available)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument(
        "--out",
        default=None,
        help="safetensors file to write (default: runs/classifier/lenet_<dataset>.safetensors)",
    )
    p.set_defaults(run=guard(_train_classifier))


def _add(
    families: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]],
    action: str,
    model: str,
    help_text: str,
) -> argparse.ArgumentParser:
    return families[action].add_parser(
        model,
        help=help_text,
        description=help_text,
        formatter_class=HelpFormatter,
    )


def _train_parser(p: argparse.ArgumentParser) -> None:
    from gentorch.losses.gan import GAN_LOSSES
    from gentorch.training.gan import ADAM_SETTINGS

    data = p.add_argument_group("data")
    data.add_argument("--dataset", choices=_DATASETS, default="mnist", help="training images")
    data.add_argument("--data-dir", default=None, help="datasets folder (default: $GENTORCH_DATA)")
    data.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    model = p.add_argument_group("model")
    model.add_argument(
        "--arch",
        choices=("cnn", "resnet"),
        default="cnn",
        help="cnn: the paper's standard CNN (Table 3); resnet: its ResNet (Table 4)",
    )
    model.add_argument(
        "--width",
        type=int,
        default=64,
        help="base channels; 64 is the paper's size (resnet: D 2x, G 4x this, i.e. 128 and 256)",
    )
    model.add_argument("--latent-dim", type=int, default=128, help="size of the latent code z")
    model.add_argument(
        "--no-sn", action="store_true", help="plain discriminator (no spectral normalization)"
    )
    model.add_argument(
        "--n-power-iterations",
        type=int,
        default=None,  # (1; None tells it apart from a value given with --no-sn)
        help="power-iteration steps per discriminator forward (spectral norm; default: 1)",
    )
    objective = p.add_argument_group("objective and optimisation")
    settings = ", ".join(
        f"{k}: lr {s.lr:g}, betas ({s.beta1}, {s.beta2}), n_dis {s.n_dis}"
        for k, s in ADAM_SETTINGS.items()
    )
    objective.add_argument(
        "--setting", choices=tuple(ADAM_SETTINGS), default="C", help=f"Adam setting ({settings})"
    )
    objective.add_argument("--loss", choices=GAN_LOSSES, default="hinge", help="GAN loss")
    objective.add_argument("--lr", type=float, default=None, help="override the setting's lr")
    objective.add_argument("--beta1", type=float, default=None, help="override the setting's")
    objective.add_argument("--beta2", type=float, default=None, help="override the setting's")
    objective.add_argument("--n-dis", type=int, default=None, help="override the setting's")
    objective.add_argument(
        "--ema-decay",
        type=float,
        default=0.999,
        help="decay of the generator's exponential moving average (0: no averaging)",
    )
    objective.add_argument("--epochs", type=int, default=10, help="passes over the data")
    objective.add_argument("--batch-size", type=int, default=64, help="images per step")
    objective.add_argument("--seed", type=int, default=0, help="seeds weights, batches, noise")
    evaluation = p.add_argument_group("evaluation every epoch")
    evaluation.add_argument(
        "--classifier",
        default=None,
        help="LeNet file for the FLD/IS of every epoch (default: the shipped one for "
        "--dataset); 'none' turns them off",
    )
    evaluation.add_argument(
        "--val-samples", type=int, default=1000, help="generated and test images per evaluation"
    )
    evaluation.add_argument(
        "--sigma-every", type=int, default=100, help="record spectral norms every N G steps"
    )
    add_train_run_group(p, "gan")
    p.set_defaults(run=guard(_train))


def _run_args(p: argparse.ArgumentParser, data: bool = True) -> None:
    add_run_args(p, "gan", seed_help="seed of the latent codes", data=data)


def _positive_options(args: argparse.Namespace, *names: str) -> None:
    """Check that the options ``names`` (dest names), where set, are positive integers."""
    for name in names:
        if getattr(args, name) is not None:
            positive(f"--{name.replace('_', '-')}", getattr(args, name))


def _wrote(path: Path) -> None:
    print(f"wrote {path}")


def _classifier(spec: str | None, dataset: str, device: torch.device) -> Any:
    """The LeNet named by ``spec`` (a file), the shipped one for ``dataset`` (None), or None."""
    from gentorch.evaluation.classifier import load_classifier, pretrained_classifier

    if spec is not None and spec.lower() == "none":
        return None
    if spec is None:
        return pretrained_classifier(dataset, device=device)
    return load_classifier(spec, device=device)


def _check_classifier_dataset(spec: str | None, dataset: str) -> None:
    """A ``--classifier`` file whose metadata names another dataset (``train classifier``
    records it) is refused: its FLD and IS would measure features it was not trained on. Files
    without that entry are taken as they are; unreadable ones are left to load_classifier."""
    from safetensors import SafetensorError, safe_open

    if spec is None or spec.lower() == "none" or not Path(spec).is_file():
        return
    try:
        with safe_open(spec, framework="pt") as f:
            trained_on = (f.metadata() or {}).get("dataset")
    except (SafetensorError, OSError):
        return
    if trained_on is not None and trained_on != dataset:
        raise UsageError(
            f"--classifier {spec!r}: was trained on {trained_on!r} (its metadata), and the "
            f"images are {dataset!r}; train one with `gentorch train classifier --dataset "
            f"{dataset}`, or leave --classifier out for the shipped {dataset} LeNet"
        )


# ----------------------------------------------------------------------------------- train
def _check_resume(out: Path, args: argparse.Namespace) -> None:
    """``--resume`` continues the run in ``out`` only on its own data, with its classifier and
    its number of validation images (the FLD of every epoch depends on both)."""

    def trained(info: dict[str, Any]) -> dict[str, object]:
        data = info["data"]
        return {
            "--dataset": data["dataset"],
            "--limit": data.get("limit"),
            "--classifier": info.get("classifier"),
            # (runs written before it was recorded: not compared)
            "--val-samples": info.get("val_samples", args.val_samples),
        }

    given = {"--dataset": args.dataset, "--limit": args.limit, "--classifier": args.classifier}
    given["--val-samples"] = args.val_samples
    check_resume(out, args.epochs, trained, given)


# GANTask settings (the checkpoint's "config") by flag; lr, betas and n_dis come from --setting
# unless overridden, so they are compared only when the settings agree
_OBJECTIVE_FLAGS = {
    "setting": "--setting",
    "loss": "--loss",
    "lr": "--lr",
    "beta1": "--beta1",
    "beta2": "--beta2",
    "n_dis": "--n-dis",
    "ema_decay": "--ema-decay",
    "sigma_every": "--sigma-every",
}


def _check_resume_objective(out: Path, config: dict[str, Any], args: argparse.Namespace) -> None:
    """The networks, objective and batching of ``--resume`` must be the run's: each difference
    named by its flag (the engine would refuse too, in the library's terms)."""
    from gentorch.training import read_checkpoint_metadata

    meta = read_checkpoint_metadata(out)
    saved = meta["config"]
    networks = ("generator_class", "generator", "discriminator_class", "discriminator")
    differences = []
    if any(saved.get(key) != config.get(key) for key in networks):
        differences.append(
            "other networks (--arch, --width, --latent-dim, --no-sn, --n-power-iterations): the "
            f"run's are {saved.get('generator_class')} {saved.get('generator')} and "
            f"{saved.get('discriminator_class')} {saved.get('discriminator')}"
        )
    same_setting = saved.get("setting") == config.get("setting")
    objective = [
        (flag, saved.get(key), config.get(key))
        for key, flag in _OBJECTIVE_FLAGS.items()
        if same_setting or key not in ("lr", "beta1", "beta2", "n_dis")
    ]
    differences += resume_differences(objective + batching_settings(meta["train_config"], args))
    refuse_resume(out, differences)


def _train(args: argparse.Namespace) -> int:
    from gentorch import data
    from gentorch.evaluation.frechet import frechet_distance
    from gentorch.evaluation.gan_metrics import classifier_features, classifier_inception_score
    from gentorch.models import (
        SNGANDiscriminator,
        SNGANGenerator,
        SNGANResNetDiscriminator,
        SNGANResNetGenerator,
    )
    from gentorch.plotting import save_image_grid
    from gentorch.training import History, TrainConfig, fit, write_atomic
    from gentorch.training.gan import GANTask

    _positive_options(
        args, "limit", "epochs", "batch_size", "val_samples", "width", "latent_dim", "n_dis"
    )
    _positive_options(args, "n_power_iterations", "sigma_every")
    check_tensorboard(args)
    if args.lr is not None and (not args.lr > 0 or math.isinf(args.lr)):
        raise UsageError(f"--lr: expected a finite learning rate > 0, got {args.lr}")
    for flag, value in (("--beta1", args.beta1), ("--beta2", args.beta2)):
        if value is not None and not 0 <= value < 1:
            raise UsageError(f"{flag}: expected a float in [0, 1), got {value}")
    if not 0 <= args.ema_decay < 1:
        raise UsageError(f"--ema-decay: expected a float in [0, 1), got {args.ema_decay}")
    if args.no_sn and args.n_power_iterations is not None:
        raise UsageError(
            f"--n-power-iterations {args.n_power_iterations}: the power iteration of spectral "
            "normalization, which --no-sn turns off; leave one of them out"
        )
    n_power_iterations = 1 if args.n_power_iterations is None else args.n_power_iterations
    device = select_device(args.device)
    _check_classifier_dataset(args.classifier, args.dataset)  # (before the data is read)
    out = out_folder("--out", args.out)
    if args.resume:
        _check_resume(out, args)
    set_threads(args.threads)
    train_x, _ = data.load(args.dataset, "train", args.data_dir)
    test_x, _ = data.load(args.dataset, "test", args.data_dir)
    if args.limit is not None:
        train_x = train_x[: args.limit]
    val_x = test_x[: args.val_samples]

    torch.manual_seed(args.seed)  # the networks' initial weights
    generator: torch.nn.Module
    discriminator: torch.nn.Module
    if args.arch == "cnn":
        generator = SNGANGenerator(args.latent_dim, 1, image_size=28, width=args.width)
        discriminator = SNGANDiscriminator(
            in_channels=1,
            image_size=28,
            spectral_norm=not args.no_sn,
            width=args.width,
            n_power_iterations=n_power_iterations,
        )
    else:
        generator = SNGANResNetGenerator(args.latent_dim, 1, image_size=28, width=4 * args.width)
        discriminator = SNGANResNetDiscriminator(
            1,
            image_size=28,
            spectral_norm=not args.no_sn,
            width=2 * args.width,
            n_power_iterations=n_power_iterations,
        )
    classifier = _classifier(args.classifier, args.dataset, device)
    evaluator = None
    if classifier is not None:
        real_features = classifier_features(classifier, val_x)

        def evaluator(fake: Tensor) -> dict[str, float]:
            fake_features = classifier_features(classifier, fake)
            return {
                "fld": frechet_distance(real_features, fake_features),
                "is": classifier_inception_score(classifier, fake),
            }

    task = GANTask(
        generator,
        discriminator,
        setting=args.setting,
        loss=args.loss,
        lr=args.lr,
        beta1=args.beta1,
        beta2=args.beta2,
        n_dis=args.n_dis,
        ema_decay=args.ema_decay,
        sigma_every=args.sigma_every,
        val_samples=args.val_samples,
        evaluator=evaluator,
    )
    if args.resume:
        _check_resume_objective(out, task.config(), args)
    else:  # (a resumed run keeps its run.json, checked by _check_resume)
        run_info = {
            "data": {"dataset": args.dataset, "data_dir": args.data_dir, "limit": args.limit},
            "classifier": args.classifier,
            "val_samples": args.val_samples,
        }
        run_json = out / "run.json"
        write_atomic(run_json, json.dumps(run_info, indent=1).encode())
        _wrote(run_json)

    def on_epoch_end(epoch: int, history: History) -> None:
        _wrote(save_image_grid(task.fixed_samples(), out / "samples" / f"epoch_{epoch:03d}.png"))
        for path in _spectral_norm_outputs(task.sigma_history, out):
            _wrote(path)
        if "val_fld" in history.columns:
            _wrote(_fld_plot(history, out / "fld.png"))

    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        out_dir=out,
        device=device,
        progress=not args.quiet,
        tensorboard=args.tensorboard,
    )
    fit(
        task,
        train_x,
        val_data=val_x,
        config=config,
        on_epoch_end=on_epoch_end,
        resume_from=out if args.resume else None,
    )
    for name in ("checkpoint.safetensors", "history.csv", "history.json"):
        _wrote(out / name)
    if args.tensorboard:
        print(f"wrote {out / 'tensorboard'}")  # (a folder of TensorBoard event files)
    return 0


def _spectral_norm_outputs(rows: list[dict[str, float]], out: Path) -> list[Path]:
    from gentorch.plotting import save_line_plot

    if not rows:
        return []
    path = out / "spectral_norms.json"
    path.write_text(json.dumps(rows, indent=1))
    layers = [k for k in rows[0] if k != "g_step"]
    series = {name: [r[name] for r in rows] for name in layers}
    steps = [r["g_step"] for r in rows]
    plot = save_line_plot(
        steps,
        series,
        out / "spectral_norms.png",
        xlabel="generator step",
        ylabel="largest singular value of the applied weight",
        title="discriminator layers",
    )
    return [path, plot]


def _fld_plot(history: Any, path: Path) -> Path:
    from gentorch.plotting import save_line_plot

    return save_line_plot(
        history["step"], {"FLD (EMA generator)": history["val_fld"]}, path, "step", "FLD"
    )


# ------------------------------------------------------------------------- sample and eval
def _load_generator(run: str, device: torch.device, raw: bool) -> tuple[Any, dict[str, Any]]:
    from gentorch.models import SNGANGenerator, SNGANResNetGenerator
    from gentorch.training import load_checkpoint, read_checkpoint_metadata

    folder = Path(run)
    if not (folder / "run.json").is_file():
        raise FileNotFoundError(
            f"--run {str(folder)!r}: no run.json there; expected a folder written by "
            "`gentorch train gan --out DIR`"
        )
    meta = read_checkpoint_metadata(folder)
    config = meta["config"]
    classes = {c.__name__: c for c in (SNGANGenerator, SNGANResNetGenerator)}
    if config.get("generator_class") not in classes:
        raise UsageError(f"--run {run}: not a GAN checkpoint (task config {config})")
    generator = classes[config["generator_class"]](**config["generator"])
    load_checkpoint(folder, {"generator" if raw else "generator_ema": generator})
    info: dict[str, Any] = json.loads((folder / "run.json").read_text())
    return generator.to(device).eval(), info


def _draw(generator: Any, n: int, seed: int, device: torch.device) -> Tensor:
    gen = torch.Generator(device=device).manual_seed(seed)
    z = torch.randn(n, generator.latent_dim, device=device, generator=gen)
    with torch.no_grad():
        return torch.cat([generator(chunk) for chunk in z.split(500)])


def _sample(args: argparse.Namespace) -> int:
    from gentorch.plotting import save_image_grid

    positive("--n", args.n)
    if args.nrow is not None:
        positive("--nrow", args.nrow)
    out = png_out(args.out, Path(args.run_dir) / "samples.png")
    device = select_device(args.device)
    generator, _ = _load_generator(args.run_dir, device, args.raw)
    images = _draw(generator, args.n, args.seed, device)
    _wrote(save_image_grid(images.cpu(), out, nrow=args.nrow))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from gentorch import data
    from gentorch.evaluation.gan_metrics import classifier_inception_score, fld
    from gentorch.training import write_atomic

    positive("--n", args.n)
    out = out_file("--out", args.out, ".json") if args.out else Path(args.run_dir) / "eval.json"
    device = select_device(args.device)
    generator, info = _load_generator(args.run_dir, device, args.raw)
    dataset = info["data"]["dataset"]
    data_dir = args.data_dir if args.data_dir is not None else info["data"].get("data_dir")
    _check_classifier_dataset(args.classifier or None, dataset)
    classifier = _classifier(args.classifier or None, dataset, device)
    if classifier is None:
        raise UsageError("--classifier none: eval needs a classifier")
    test_x, _ = data.load(dataset, "test", data_dir)
    train_x, _ = data.load(dataset, "train", data_dir)
    n = min(args.n, test_x.shape[0])
    fake = _draw(generator, n, args.seed, device)
    result = {
        "n": n,
        "generator": "raw" if args.raw else "ema",
        "fld": fld(classifier, test_x[:n], fake),
        "is": classifier_inception_score(classifier, fake),
        "real_fld_test_vs_train": fld(classifier, test_x[:n], train_x[:n]),
        "real_is_test": classifier_inception_score(classifier, test_x[:n]),
    }
    print(
        f"FLD {result['fld']:.4f} (real test vs train: {result['real_fld_test_vs_train']:.4f})  "
        f"IS {result['is']:.3f} (real test: {result['real_is_test']:.3f})  on {n} images"
    )
    write_atomic(out, json.dumps(result, indent=1).encode())
    _wrote(out)
    return 0


# ------------------------------------------------------------------------------ classifier
def _train_classifier(args: argparse.Namespace) -> int:
    from gentorch import data
    from gentorch.evaluation.classifier import (
        LeNet,
        classifier_accuracy,
        save_classifier,
        train_classifier,
    )

    _positive_options(args, "limit", "epochs", "batch_size")
    default = f"runs/classifier/lenet_{args.dataset}.safetensors"
    out = out_file("--out", args.out or default, ".safetensors")
    set_threads(args.threads)
    device = select_device(args.device)
    x, y = data.load(args.dataset, "train", args.data_dir)
    xt, yt = data.load(args.dataset, "test", args.data_dir)
    if y is None or yt is None:
        raise UsageError(f"--dataset {args.dataset}: a classifier needs labels")
    if args.limit is not None:
        x, y = x[: args.limit], y[: args.limit]

    accuracies: list[float] = []

    def report(epoch: int, model: LeNet) -> None:
        accuracies.append(classifier_accuracy(model, xt, yt))
        print(f"epoch {epoch}/{args.epochs}  test accuracy {accuracies[-1]:.4f}", flush=True)

    model = train_classifier(
        x,
        y,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        max_shift=args.max_shift,
        seed=args.seed,
        device=device,
        on_epoch_end=report,
    )
    accuracy = accuracies[-1]  # of the returned model, after the last epoch
    meta = {"dataset": args.dataset, "test_accuracy": f"{accuracy:.4f}", "epochs": str(args.epochs)}
    _wrote(save_classifier(model, out, metadata=meta))
    return 0
