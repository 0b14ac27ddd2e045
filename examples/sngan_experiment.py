"""SN-GAN experiment: the same GAN with and without spectral normalization, Adam settings C, D, F.

Every run trains :class:`~gentorch.models.SNGANGenerator` against
:class:`~gentorch.models.SNGANDiscriminator` (hinge loss, batch 64) on MNIST with
:class:`~gentorch.training.gan.GANTask` for the same budget of *training CPU seconds*
(``time.process_time`` around ``train_step``, one torch thread per run): on a shared machine
this gives every run the same amount of computation, which a wall-clock budget would not.
Evaluation time is not counted. At ``--evals`` evenly spaced points of the budget it records
the FLD and classifier Inception Score of the raw and EMA generators (``--val-samples`` images
against as many test images, with the shipped LeNet) and the spectral norm of every
discriminator layer; at the end it computes both on ``--final-samples`` images and saves sample
grids. A run whose losses become NaN/Inf stops there and is marked diverged.

Reduced grid (docs/results.md; 6 runs at once, ~30 min wall on the busy shared 2-core machine)::

    python examples/sngan_experiment.py run --out runs/sngan_experiment --budget 200 --jobs 6 \
        --width 16 --max-wall 3000
    python examples/sngan_experiment.py report --out runs/sngan_experiment --img docs/img
    # Fashion-MNIST: run --dataset fashion-mnist, report --prefix gan_fashion_ --title Fashion-MNIST

Full grid (docs/results.md; 6 runs x 1200 CPU s, 2 at a time: 67 min on the quiet 2-core
machine)::

    python examples/sngan_experiment.py run --out runs/sngan_full --budget 1200 --jobs 2 \
        --width 16 --max-wall 4500
    python examples/sngan_experiment.py report --out runs/sngan_full --img docs/img \
        --prefix gan_full_ --title "MNIST, 1200 CPU s"
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

SETTINGS = ("C", "D", "F")


def _name(setting: str, sn: bool) -> str:
    return f"{setting}_{'sn' if sn else 'nosn'}"


# ------------------------------------------------------------------------------ one run
def run_one(args: argparse.Namespace) -> None:
    from gentorch.data import Batches, load
    from gentorch.evaluation import (
        classifier_features,
        classifier_inception_score,
        frechet_distance,
        pretrained_classifier,
    )
    from gentorch.models import SNGANDiscriminator, SNGANGenerator
    from gentorch.plotting import save_image_grid
    from gentorch.training.gan import GANTask, layer_spectral_norms

    torch.set_num_threads(1)
    sn = bool(args.sn)
    out = Path(args.out) / _name(args.setting, sn)
    out.mkdir(parents=True, exist_ok=True)
    train_x, _ = load(args.dataset, "train")
    test_x, _ = load(args.dataset, "test")
    clf = pretrained_classifier(args.dataset)
    real_val = classifier_features(clf, test_x[: args.val_samples])
    real_final = classifier_features(clf, test_x[: args.final_samples])

    torch.manual_seed(args.seed)
    generator = SNGANGenerator(latent_dim=128, out_channels=1, image_size=28, width=args.width)
    discriminator = SNGANDiscriminator(
        in_channels=1, image_size=28, spectral_norm=sn, width=args.width
    )
    task = GANTask(generator, discriminator, setting=args.setting, loss="hinge", sigma_every=0)
    batches = Batches(
        train_x,
        None,
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(args.seed),
    )

    def quality(n: int, real: torch.Tensor, ema: bool) -> tuple[float, float]:
        fake = task.sample(n, seed=args.seed + 1, ema=ema)
        if not bool(torch.isfinite(fake).all()):
            return math.nan, math.nan
        feats = classifier_features(clf, fake)
        return frechet_distance(real, feats), classifier_inception_score(clf, fake)

    result: dict[str, Any] = {
        "setting": args.setting,
        "spectral_norm": sn,
        "adam": task.config(),
        "width": args.width,
        "batch_size": args.batch_size,
        "budget_cpu_s": args.budget,
        "points": [],
        "status": "running",
    }
    started_wall = time.monotonic()
    cpu = 0.0
    last: dict[str, float] = {}

    def record() -> None:
        fld_raw, is_raw = quality(args.val_samples, real_val, ema=False)
        fld_ema, is_ema = quality(args.val_samples, real_val, ema=True)
        result["points"].append(
            {
                "cpu_s": cpu,
                "wall_s": time.monotonic() - started_wall,
                "d_steps": task.d_steps,
                "g_steps": task.g_steps,
                "fld_raw": fld_raw,
                "is_raw": is_raw,
                "fld_ema": fld_ema,
                "is_ema": is_ema,
                **{f"loss_{k}": v for k, v in last.items()},
                "sigma": layer_spectral_norms(discriminator),
            }
        )
        (out / "result.json").write_text(json.dumps(result, indent=1))
        print(
            f"{_name(args.setting, sn)} cpu {cpu:.0f}s wall {time.monotonic() - started_wall:.0f}s"
            f" G {task.g_steps} FLD raw {fld_raw:.3f} ema {fld_ema:.3f} IS {is_raw:.2f}",
            flush=True,
        )

    marks = [args.budget * (i + 1) / args.evals for i in range(args.evals)]
    record()
    diverged = False
    while cpu < args.budget and not diverged:
        for x, _ in batches:
            c0 = time.process_time()
            metrics = task.train_step(x)
            cpu += time.process_time() - c0
            last = {k: float(v) for k, v in metrics.items()}
            if not all(math.isfinite(v) for v in last.values()):
                diverged = True
            if diverged or cpu >= marks[0]:
                record()
                while marks and cpu >= marks[0]:
                    marks.pop(0)
            if diverged or not marks:
                break
            if time.monotonic() - started_wall > args.max_wall:
                result["stopped_by_wall_clock"] = True
                marks = []
                record()
                break
        if not marks:
            break
    result["status"] = "diverged" if diverged else "finished"
    result["cpu_s"] = cpu
    result["wall_s"] = time.monotonic() - started_wall
    for ema in (False, True):
        fld, score = quality(args.final_samples, real_final, ema=ema)
        result[f"final_fld_{'ema' if ema else 'raw'}"] = fld
        result[f"final_is_{'ema' if ema else 'raw'}"] = score
    result["final_samples"] = args.final_samples
    for ema in (False, True):
        images = task.fixed_samples(ema=ema)
        if bool(torch.isfinite(images).all()):
            save_image_grid(images, out / f"samples_{'ema' if ema else 'raw'}.png", nrow=8)
    (out / "result.json").write_text(json.dumps(result, indent=1))
    print(
        f"{_name(args.setting, sn)} {result['status']}: final FLD raw {result['final_fld_raw']:.3f}"
        f" ema {result['final_fld_ema']:.3f}, IS raw {result['final_is_raw']:.2f}",
        flush=True,
    )


# ------------------------------------------------------------------------- the whole grid
def run_grid(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(s, sn) for s in args.settings for sn in (True, False)]
    running: list[tuple[subprocess.Popen[bytes], Any]] = []
    common = [
        "--out", str(out), "--budget", str(args.budget), "--width", str(args.width),
        "--batch-size", str(args.batch_size), "--evals", str(args.evals),
        "--val-samples", str(args.val_samples), "--final-samples", str(args.final_samples),
        "--seed", str(args.seed), "--dataset", args.dataset, "--max-wall", str(args.max_wall),
    ]  # fmt: skip
    while jobs or running:
        while jobs and len(running) < args.jobs:
            setting, sn = jobs.pop(0)
            log = (out / f"{_name(setting, sn)}.log").open("wb")
            cmd = [sys.executable, __file__, "one", "--setting", setting, "--sn", str(int(sn))]
            running.append((subprocess.Popen([*cmd, *common], stdout=log, stderr=log), log))
            print(f"started {_name(setting, sn)}", flush=True)
        time.sleep(5)
        for proc, log in list(running):
            if proc.poll() is not None:
                log.close()
                running.remove((proc, log))
                print(f"ended {Path(log.name).stem} with exit status {proc.returncode}", flush=True)
    _real_floor(args)


def _real_floor(args: argparse.Namespace) -> None:
    from gentorch.data import load
    from gentorch.evaluation import classifier_inception_score, fld, pretrained_classifier

    torch.set_num_threads(1)
    clf = pretrained_classifier(args.dataset)
    train_x, _ = load(args.dataset, "train")
    test_x, _ = load(args.dataset, "test")
    floor = {}
    for n in sorted({args.val_samples, args.final_samples}):
        floor[f"fld_test_vs_train_{n}"] = fld(clf, test_x[:n], train_x[:n])
        floor[f"is_test_{n}"] = classifier_inception_score(clf, test_x[:n])
    path = Path(args.out) / "real_floor.json"
    path.write_text(json.dumps(floor, indent=1))
    print(f"wrote {path}: {floor}", flush=True)


# --------------------------------------------------------------------------------- report
def report(args: argparse.Namespace) -> None:
    from gentorch.plotting import save_line_plot

    out, img = Path(args.out), Path(args.img)
    img.mkdir(parents=True, exist_ok=True)
    results = {}
    for setting in SETTINGS:
        for sn in (True, False):
            path = out / _name(setting, sn) / "result.json"
            if path.is_file():
                results[_name(setting, sn)] = json.loads(path.read_text())
    floor_path = out / "real_floor.json"
    floor = json.loads(floor_path.read_text()) if floor_path.is_file() else {}

    # FLD over training CPU time: every run is evaluated at the same fractions of the budget
    for key, label in (("fld_raw", "raw generator"), ("fld_ema", "EMA generator")):
        longest = max(results.values(), key=lambda r: len(r["points"]))
        xs = [p["cpu_s"] for p in longest["points"]]
        series = {}
        for name, r in results.items():
            values = [p[key] for p in r["points"]]
            values += [math.nan] * (len(xs) - len(values))  # a diverged run ends early
            series[name.replace("_nosn", " no SN").replace("_sn", " SN")] = values[: len(xs)]
        path = save_line_plot(
            xs,
            series,
            img / f"{args.prefix}{key}_over_time.png",
            xlabel="training CPU seconds (1 thread)",
            ylabel=f"FLD, {label} (lower is better)",
            logy=True,
            title=f"{args.title}, FLD of the {label} over training",
        )
        print(f"wrote {path}")
    for name, r in results.items():
        layers = list(r["points"][0]["sigma"])
        xs = [p["g_steps"] for p in r["points"]]
        series = {layer: [p["sigma"][layer] for p in r["points"]] for layer in layers}
        kind = "SpectralNorm layers: sigma(W / sigma_hat)" if r["spectral_norm"] else "sigma(W)"
        path = save_line_plot(
            xs,
            series,
            img / f"{args.prefix}sigma_{name}.png",
            xlabel="generator step",
            ylabel="largest singular value",
            logy=not r["spectral_norm"],
            title=f"setting {r['setting']}, {kind}",
        )
        print(f"wrote {path}")
        for which in ("raw", "ema"):
            src = out / name / f"samples_{which}.png"
            if src.is_file():
                dst = img / f"{args.prefix}samples_{name}_{which}.png"
                dst.write_bytes(src.read_bytes())
                print(f"wrote {dst}")

    lines = [
        "| setting | SN | status | G steps | D steps | FLD raw | FLD EMA | IS raw | IS EMA |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results.values():
        last = r["points"][-1]
        lines.append(
            f"| {r['setting']} | {'yes' if r['spectral_norm'] else 'no'} | {r['status']} | "
            f"{last['g_steps']} | {last['d_steps']} | {r.get('final_fld_raw', math.nan):.3f} | "
            f"{r.get('final_fld_ema', math.nan):.3f} | {r.get('final_is_raw', math.nan):.2f} | "
            f"{r.get('final_is_ema', math.nan):.2f} |"
        )
    table = "\n".join(lines)
    print(table)
    print(json.dumps(floor))
    (out / "table.md").write_text(table + "\n\nreal floor: " + json.dumps(floor) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "one"):
        p = sub.add_parser(name)
        p.add_argument("--out", default="runs/sngan_experiment")
        p.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist"))
        p.add_argument("--budget", type=float, default=180.0, help="training CPU s per run")
        p.add_argument("--width", type=int, default=16, help="base channels (paper: 64)")
        p.add_argument("--batch-size", type=int, default=64)
        p.add_argument("--evals", type=int, default=10, help="evaluation points per run")
        p.add_argument("--val-samples", type=int, default=1000)
        p.add_argument("--final-samples", type=int, default=5000)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--max-wall", type=float, default=3600.0, help="wall-clock cap per run")
    sub.choices["run"].add_argument("--jobs", type=int, default=6, help="runs at a time")
    sub.choices["run"].add_argument("--settings", nargs="+", default=list(SETTINGS))
    sub.choices["one"].add_argument("--setting", choices=SETTINGS, required=True)
    sub.choices["one"].add_argument("--sn", type=int, choices=(0, 1), required=True)
    p = sub.add_parser("report")
    p.add_argument("--out", default="runs/sngan_experiment")
    p.add_argument("--img", default="docs/img")
    p.add_argument("--prefix", default="gan_", help="file name prefix of the pictures")
    p.add_argument("--title", default="MNIST", help="dataset name in the plot titles")
    args = parser.parse_args()
    {"run": run_grid, "one": run_one, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
