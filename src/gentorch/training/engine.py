"""The training engine: one loop, shared by every model family.

A model family describes one optimisation step as a :class:`TrainingTask`; :func:`fit` does the
rest, top to bottom::

    seed -> (resume from a checkpoint) -> for each epoch:
        train: shuffled batches of one preloaded tensor, task.train_step(batch, labels)
        metrics: kept on the device, fetched once every ``log_every`` steps (no per-step sync),
                 checked for NaN/Inf (-> TrainingDiverged, no checkpoint written)
        validate: task.validate(val_data, val_labels) under no_grad, with its own RNG stream
        record: one History row; checkpoint + history.csv/json written atomically to out_dir
        on_epoch_end(epoch, history), with its own RNG stream

Validation and the callback run inside :func:`torch.random.fork_rng`, so that turning them on
or off does not change the training run, and resuming from a checkpoint continues exactly.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from gentorch._checks import as_device, check_positive_int
from gentorch.data import Batches
from gentorch.training.checkpoint import load_checkpoint, save_checkpoint, write_atomic

__all__ = [
    "History",
    "StatefulTask",
    "TrainConfig",
    "TrainingDiverged",
    "TrainingTask",
    "fit",
]


class TrainingTask(Protocol):
    """One model family's training, as the engine sees it.

    A structural protocol (``typing.Protocol``): any object with these five methods can be
    passed to :func:`fit`, no subclassing needed. :class:`~gentorch.training.VAETask` and
    :class:`~gentorch.training.GANTask` implement it.

    ``train_step`` does one optimisation step (forward, backward, optimizer step) on one batch
    and returns its metrics as *detached 0-d tensors* (the engine fetches them from the device
    only every ``log_every`` steps). A task with state beyond its modules and optimizers (a step
    counter for a warm-up, fixed noise) also implements :class:`StatefulTask`.

    Methods:
        modules: ``() -> {name: nn.Module}``; :func:`fit` moves them to the device, switches
            them between train and eval mode and saves their ``state_dict`` in checkpoints.
        optimizers: ``() -> {name: Optimizer}``, saved in checkpoints.
        train_step: ``(batch: (B, ...), labels: (B,) | None) -> {name: 0-d Tensor}``; the
            history records each metric's epoch mean as ``train_<name>``.
        validate: ``(data: (N, ...), labels: (N,) | None) -> {name: float}``, called after each
            epoch under ``torch.no_grad()`` with the modules in eval mode; recorded as
            ``val_<name>``.
        config: ``() -> dict`` of JSON-able settings, stored in checkpoints and compared on
            resume.

    Example:
        >>> import torch
        >>> from gentorch.models import VAE
        >>> from gentorch.training import VAETask
        >>> task = VAETask(VAE(64, [32], 2))
        >>> sorted(task.modules()), sorted(task.optimizers())
        (['model'], ['adam'])
        >>> sorted(task.train_step(torch.rand(8, 64), None))
        ['kl', 'loss', 'recon']
    """

    def modules(self) -> dict[str, nn.Module]:
        """The modules to train and checkpoint, by name."""
        ...

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimizers to checkpoint, by name."""
        ...

    def train_step(self, batch: Tensor, labels: Tensor | None) -> dict[str, Tensor]:
        """One optimisation step on ``batch: (B, ...)``; returns detached 0-d metric tensors."""
        ...

    def validate(self, data: Tensor, labels: Tensor | None) -> dict[str, float]:
        """Metrics on held-out ``data: (N, ...)``; called under ``torch.no_grad()``."""
        ...

    def config(self) -> dict[str, Any]:
        """JSON-able settings that rebuild this task (stored in checkpoints)."""
        ...


@runtime_checkable
class StatefulTask(Protocol):
    """A task with extra state to checkpoint: JSON-able values and tensors, nested freely.

    An optional addition to :class:`TrainingTask`, checked at run time with ``isinstance``:
    when the task has both methods, :func:`fit` saves ``state_dict()`` in every checkpoint
    and passes it back to ``load_state_dict`` on resume.

    Methods:
        state_dict: ``() -> dict`` of nested dicts, lists and tuples of JSON-able values and
            tensors.
        load_state_dict: ``(state) -> None``, restoring what ``state_dict`` returned.

    Example:
        >>> from gentorch.models import VAE
        >>> from gentorch.training import StatefulTask, VAETask
        >>> task = VAETask(VAE(64, [32], 2))
        >>> isinstance(task, StatefulTask), task.state_dict()
        (True, {'step': 0})
    """

    def state_dict(self) -> dict[str, Any]:
        """The extra state, e.g. ``{"step": 1200}``."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        ...


class TrainingDiverged(RuntimeError):  # noqa: N818 (the name users catch)
    """A training metric became NaN or infinite; the last good checkpoint was left as it was.

    Raised by :func:`fit` when it fetches the metrics (every ``log_every`` steps and at the end
    of an epoch), so it names the first bad step even if later ones were run. Also a
    ``RuntimeError``.

    Args:
        epoch: the (1-based) epoch in which it happened.
        step: the (1-based) global step whose metrics were not finite.
        metric: the name of the first non-finite metric.
        value: its value.
        checkpoint: where the last good checkpoint is (or ``"nothing saved"``), for the message.

    Attributes:
        epoch, step, metric, value: the arguments of the same names (``checkpoint`` is only
            part of the message).

    Example:
        >>> import torch
        >>> from gentorch.models import VAE
        >>> from gentorch.training import TrainConfig, TrainingDiverged, VAETask, fit
        >>> bad = torch.full((64, 64), float("nan"))
        >>> try:
        ...     fit(VAETask(VAE(64, [32], 2)), bad, config=TrainConfig(epochs=1, progress=False))
        ... except TrainingDiverged as err:
        ...     print(err.epoch, err.step, err.metric, err.value)
        1 1 loss nan
    """

    def __init__(self, epoch: int, step: int, metric: str, value: float, checkpoint: str) -> None:
        self.epoch, self.step, self.metric, self.value = epoch, step, metric, value
        super().__init__(
            f"training diverged at epoch {epoch}, step {step}: {metric} = {value}; "
            f"stopped without writing a checkpoint ({checkpoint}). Try a lower learning rate, "
            "a KL warm-up, or resume from the last checkpoint."
        )


@dataclass
class TrainConfig:
    """How :func:`fit` trains (what it trains is the task's business).

    Args:
        epochs: total number of epochs, counting those of a run being resumed.
        batch_size: examples per step.
        seed: seeds torch's global generator and the batch shuffler.
        out_dir: where checkpoints and history go; ``None`` writes nothing.
        device: moves the data and the task's modules there; ``None`` keeps the data's device.
        progress: show a tqdm bar per epoch and print one line per epoch.
        log_every: fetch metrics from the device, check them for NaN/Inf and update the bar
            every this many steps.
        checkpoint_every: write a checkpoint every this many epochs (and after the last one).
        drop_last: drop the last, smaller batch of each epoch.
        binarize: ``"dynamic"`` draws every batch as ``Bernoulli(x)`` afresh (dynamic
            binarization of grey images, Salakhutdinov & Murray 2008); ``None`` uses ``x``.
        tensorboard: also log to ``out_dir/tensorboard`` (needs the ``tensorboard`` package:
            ``pip install 'gentorch[tensorboard]'``).

    Raises:
        ValueError: ``epochs``, ``batch_size``, ``log_every`` or ``checkpoint_every`` is an
            int below 1 (``TypeError`` if not an int), ``seed`` is not an integer in
            ``[-2**63, 2**64)``, ``binarize`` is not ``None`` or ``"dynamic"``, or ``device`` is
            not a device torch knows.
        TypeError: ``progress``, ``drop_last`` or ``tensorboard`` is not a bool, ``out_dir`` is
            not a path or ``None``, or ``device`` is not a string or ``torch.device``.

    Example:
        >>> from gentorch.training import TrainConfig
        >>> config = TrainConfig(epochs=10, batch_size=128, out_dir="runs/vae")
        >>> config.log_every, config.to_json()["out_dir"]
        (50, 'runs/vae')
    """

    epochs: int
    batch_size: int = 128
    seed: int = 0
    out_dir: str | Path | None = None
    device: str | torch.device | None = None
    progress: bool = True
    log_every: int = 50
    checkpoint_every: int = 1
    drop_last: bool = False
    binarize: str | None = None
    tensorboard: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "log_every", "checkpoint_every"):
            check_positive_int(name, getattr(self, name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed: expected an integer, got {self.seed!r}")
        if not -(2**63) <= self.seed < 2**64:
            raise ValueError(f"seed: expected an integer in [-2**63, 2**64), got {self.seed!r}")
        for name in ("progress", "drop_last", "tensorboard"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name}: expected True or False, got {getattr(self, name)!r}")
        if self.binarize is not None and self.binarize != "dynamic":
            raise ValueError(f"binarize: expected None or 'dynamic', got {self.binarize!r}")
        if self.out_dir is not None and not isinstance(self.out_dir, str | os.PathLike):
            raise TypeError(
                f"out_dir: expected a folder path (str or os.PathLike) or None, got "
                f"{type(self.out_dir).__name__}"
            )
        if self.device is not None:
            as_device(self.device)  # raises, naming device, unless torch can parse it

    def to_json(self) -> dict[str, Any]:
        """The configuration as JSON-able values (paths and devices as strings)."""
        out = asdict(self)
        for key in ("out_dir", "device"):
            out[key] = None if out[key] is None else str(out[key])
        return out


class History:
    """The record of a training run: one row of floats per epoch.

    Every row holds ``epoch``, ``step`` (global step at the end of the epoch),
    ``train_seconds``, ``val_seconds``, the mean training metrics as ``train_<name>`` and the
    validation metrics as ``val_<name>``.

    Args:
        rows: rows to start from (e.g. from a checkpoint).

    Example:
        >>> from gentorch.training import History
        >>> h = History([{"epoch": 1, "train_loss": 2.0}, {"epoch": 2, "train_loss": 1.5}])
        >>> len(h), h.columns, h["train_loss"]
        (2, ['epoch', 'train_loss'], [2.0, 1.5])
        >>> print(h.to_csv())
        epoch,train_loss
        1,2.0
        2,1.5
        <BLANKLINE>
    """

    def __init__(self, rows: list[dict[str, float]] | None = None) -> None:
        if rows is not None and (
            not isinstance(rows, list | tuple) or not all(isinstance(r, Mapping) for r in rows)
        ):
            raise TypeError(
                f"rows: expected a list of per-epoch dicts of column -> value, got "
                f"{type(rows).__name__} {rows!r:.200}"
            )
        self.rows: list[dict[str, float]] = [dict(r) for r in rows or []]

    def append(self, row: Mapping[str, float]) -> None:
        """Add one epoch's row."""
        self.rows.append(dict(row))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, column: str) -> list[float]:
        """The values of one column, epoch by epoch (NaN where a row lacks it)."""
        if column not in self.columns:
            raise KeyError(f"column {column!r} not in the history; it has {self.columns}")
        return [float(r.get(column, math.nan)) for r in self.rows]

    @property
    def columns(self) -> list[str]:
        """Column names, in order of first appearance."""
        return list(dict.fromkeys(k for r in self.rows for k in r))

    def to_csv(self) -> str:
        """The history as CSV text, one line per epoch."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        return buffer.getvalue()

    def to_json(self) -> str:
        """The history as a JSON list of rows."""
        return json.dumps(self.rows, indent=1)

    def save(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Atomically write ``history.csv`` and ``history.json`` into ``out_dir``."""
        out_dir = Path(out_dir)
        csv_path = write_atomic(out_dir / "history.csv", self.to_csv().encode())
        json_path = write_atomic(out_dir / "history.json", self.to_json().encode())
        return csv_path, json_path

    @classmethod
    def load(cls, path: str | Path) -> History:
        """Read a ``history.json`` written by :meth:`save`."""
        try:
            rows = json.loads(Path(path).read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not a JSON history ({err})") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError(f"{path}: expected a JSON list of rows (objects)")
        return cls(rows)


def fit(
    task: TrainingTask,
    train_data: Tensor,
    train_labels: Tensor | None = None,
    *,
    val_data: Tensor | None = None,
    val_labels: Tensor | None = None,
    config: TrainConfig,
    on_epoch_end: Callable[[int, History], bool | None] | None = None,
    resume_from: str | Path | None = None,
) -> History:
    """Train ``task`` on ``train_data`` for ``config.epochs`` epochs and return the history.

    Args:
        task: the model family's :class:`TrainingTask`.
        train_data: ``(N, ...)``, the whole training set as one tensor (moved once to
            ``config.device`` if given).
        train_labels: ``(N,)`` int64 labels or ``None``.
        val_data: ``(M, ...)`` held-out data, validated after every epoch; ``None`` skips it.
        val_labels: ``(M,)`` labels of ``val_data`` or ``None``.
        config: a :class:`TrainConfig`.
        on_epoch_end: called as ``on_epoch_end(epoch, history)`` after each epoch's checkpoint
            (e.g. to draw a sample grid); it gets its own RNG stream. Returning ``True`` stops
            training there (e.g. once a target loss is reached).
        resume_from: a checkpoint (file or folder) written by an earlier ``fit`` of the same
            task and batch size; training continues exactly where it stopped.

    Returns:
        The :class:`History`, including the rows of a resumed run.

    Raises:
        TrainingDiverged: a metric became NaN or infinite (no checkpoint is written for the
            epoch it happened in).
        TypeError: ``task`` is not a :class:`TrainingTask` (e.g. a bare model), ``config`` is
            not a :class:`TrainConfig`, data or labels are not tensors, labels are
            floating-point, or ``on_epoch_end`` is not callable.
        ValueError: empty data, labels of the wrong shape, ``val_data`` whose examples have
            another number of values than ``train_data``'s, ``val_labels`` without
            ``val_data``, ``config.out_dir`` that is a file, ``config.drop_last`` with a
            ``config.batch_size`` larger than the data (no step at all), or a ``resume_from``
            checkpoint of another task, settings or an epoch at or past ``config.epochs``.
        ImportError: ``config.tensorboard`` without the ``tensorboard`` package.

    Example:
        >>> import torch
        >>> from gentorch.models import VAE
        >>> from gentorch.training import TrainConfig, VAETask, fit
        >>> task = VAETask(VAE(64, [32], 2))
        >>> config = TrainConfig(epochs=2, batch_size=64, progress=False)
        >>> history = fit(task, torch.rand(256, 64), val_data=torch.rand(64, 64), config=config)
        >>> len(history), history["step"], "val_elbo" in history.columns
        (2, [4.0, 8.0], True)
    """
    _check_task(task)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig, got {type(config).__name__}")
    _check_data("train_data", train_data, "train_labels", train_labels)
    if val_data is not None:
        _check_data("val_data", val_data, "val_labels", val_labels)
        if val_data[0].numel() != train_data[0].numel():
            raise ValueError(
                f"val_data: expected examples like train_data's (shape "
                f"{tuple(train_data.shape[1:])}, {train_data[0].numel()} values each), got shape "
                f"{tuple(val_data.shape)}"
            )
    elif val_labels is not None:
        raise ValueError(
            "val_labels: given without val_data, so they would be ignored; pass val_data too "
            "(or neither)"
        )
    if config.drop_last and config.batch_size > train_data.shape[0]:
        raise ValueError(
            f"config.batch_size: {config.batch_size} is larger than the {train_data.shape[0]} "
            f"examples of train_data, so drop_last=True would leave no step at all; expected a "
            f"batch_size <= {train_data.shape[0]}"
        )
    if on_epoch_end is not None and not callable(on_epoch_end):
        raise TypeError(
            f"on_epoch_end: expected a callable (epoch, history) -> bool | None, got "
            f"{type(on_epoch_end).__name__}"
        )
    if config.out_dir is not None:
        _check_folder(Path(config.out_dir))
    device = torch.device(config.device) if config.device is not None else train_data.device
    train_data = train_data.to(device)
    train_labels = None if train_labels is None else train_labels.to(device)
    val_data = None if val_data is None else val_data.to(device)
    val_labels = None if val_labels is None else val_labels.to(device)
    modules = task.modules()
    for module in modules.values():
        module.to(device)
    out_dir = None if config.out_dir is None else Path(config.out_dir)
    writer = _tensorboard_writer(out_dir) if config.tensorboard else None

    torch.manual_seed(config.seed)
    shuffler = torch.Generator(device=device).manual_seed(config.seed)
    batches = Batches(
        train_data,
        train_labels,
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=config.drop_last,
        generator=shuffler,
        binarize=config.binarize,
    )
    history, epoch, step = History(), 0, 0
    if resume_from is not None:
        history, epoch, step = _resume(task, resume_from, batches.generator, config)

    checkpoint = "nothing saved" if out_dir is None else f"last good one in {out_dir}"
    try:
        while epoch < config.epochs:
            epoch += 1
            started = time.perf_counter()
            for module in modules.values():
                module.train()
            train_metrics, step = _train_epoch(
                task, batches, epoch, step, config, checkpoint, writer
            )
            train_seconds = time.perf_counter() - started

            started = time.perf_counter()
            val_metrics: dict[str, float] = {}
            if val_data is not None:
                val_metrics = _validate(task, val_data, val_labels, device)
            val_seconds = time.perf_counter() - started

            row = {"epoch": epoch, "step": step, "train_seconds": train_seconds}
            row |= {"val_seconds": val_seconds} if val_data is not None else {}
            row |= {f"train_{k}": v for k, v in train_metrics.items()}
            row |= {f"val_{k}": v for k, v in val_metrics.items()}
            history.append(row)
            if config.progress:
                tqdm.write(_summary(row, config.epochs))
            if writer is not None:
                for key, value in row.items():
                    if key.startswith(("train_", "val_")) and not key.endswith("seconds"):
                        writer.add_scalar(f"epoch/{key}", value, epoch)
                writer.flush()
            saved = epoch % config.checkpoint_every == 0 or epoch == config.epochs
            if out_dir is not None:
                if saved:
                    _save(task, out_dir, batches.generator, config, epoch, step, history)
                history.save(out_dir)
            stop = False
            if on_epoch_end is not None:
                with _own_rng(device):
                    stop = on_epoch_end(epoch, history) is True
            if stop:
                if out_dir is not None and not saved:
                    _save(task, out_dir, batches.generator, config, epoch, step, history)
                break
    finally:
        if writer is not None:
            writer.close()
    return history


_TASK_METHODS = ("modules", "optimizers", "train_step", "validate", "config")


def _check_task(task: object) -> None:
    if isinstance(task, nn.Module):
        raise TypeError(
            f"task: expected a TrainingTask such as VAETask(model) or GANTask(generator, "
            f"discriminator), got the module {type(task).__name__}; wrap it, e.g. "
            f"fit(VAETask(model), ...)"
        )
    missing = [m for m in _TASK_METHODS if not callable(getattr(task, m, None))]
    if missing:
        raise TypeError(
            f"task: expected a TrainingTask with methods {', '.join(_TASK_METHODS)}, got "
            f"{type(task).__name__}, which lacks {', '.join(missing)}"
        )


def _check_folder(out_dir: Path) -> None:
    """Refuse an ``out_dir`` that is (or lies under) an existing file, before any training."""
    for folder in (out_dir, *out_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ValueError(
                    f"config.out_dir: expected a folder for checkpoints and history, but "
                    f"{str(folder)!r} is a file"
                )
            return


def _check_data(name: str, data: Tensor, labels_name: str, labels: Tensor | None) -> None:
    if not isinstance(data, Tensor) or data.dim() < 1 or data.shape[0] == 0:
        got = tuple(data.shape) if isinstance(data, Tensor) else type(data).__name__
        raise ValueError(f"{name}: expected a non-empty tensor (N, ...), got {got}")
    if labels is not None and (not isinstance(labels, Tensor) or labels.shape != (data.shape[0],)):
        got = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"{labels_name}: expected shape ({data.shape[0]},), got {got}")
    if labels is not None and (labels.is_floating_point() or labels.is_complex()):
        raise TypeError(
            f"{labels_name}: expected integer class labels, got dtype {labels.dtype} (values "
            f"such as {labels[:3].tolist()}); convert integer-valued ones with .long()"
        )


def _train_epoch(
    task: TrainingTask,
    batches: Batches,
    epoch: int,
    step: int,
    config: TrainConfig,
    checkpoint: str,
    writer: Any,
) -> tuple[dict[str, float], int]:
    """One pass over the batches; returns the epoch's mean metrics and the new global step."""
    totals: dict[str, float] = {}
    count = 0
    window: list[dict[str, Tensor]] = []
    bar = tqdm(
        batches,
        desc=f"epoch {epoch}/{config.epochs}",
        disable=not config.progress,
        leave=False,
        dynamic_ncols=True,
    )
    for x, y in bar:
        window.append(task.train_step(x, y))
        step += 1
        if len(window) == config.log_every:
            means = _flush(window, totals, epoch, step, checkpoint)
            count += len(window)
            window = []
            bar.set_postfix(means, refresh=False)
            if writer is not None:
                for key, value in means.items():
                    writer.add_scalar(f"step/train_{key}", value, step)
    if window:
        _flush(window, totals, epoch, step, checkpoint)
        count += len(window)
    bar.close()
    return {k: v / count for k, v in totals.items()}, step


def _flush(
    window: list[dict[str, Tensor]],
    totals: dict[str, float],
    epoch: int,
    step: int,
    checkpoint: str,
) -> dict[str, float]:
    """Fetch a window of per-step metrics in one device sync, check them, add them to totals."""
    names = list(window[0])
    # (W, M) on the device -> one transfer; row i is the step (step - W + 1 + i).
    values = torch.stack([torch.stack([m[k].float() for k in names]) for m in window]).tolist()
    for i, row in enumerate(values):
        for name, value in zip(names, row, strict=True):
            if not math.isfinite(value):
                raise TrainingDiverged(epoch, step - len(window) + 1 + i, name, value, checkpoint)
    means = {}
    for j, name in enumerate(names):
        column_sum = math.fsum(row[j] for row in values)
        totals[name] = totals.get(name, 0.0) + column_sum
        means[name] = column_sum / len(values)
    return means


def _validate(
    task: TrainingTask, data: Tensor, labels: Tensor | None, device: torch.device
) -> dict[str, float]:
    modules = task.modules()
    modes = {name: m.training for name, m in modules.items()}
    for module in modules.values():
        module.eval()
    try:
        with _own_rng(device), torch.no_grad():
            return {k: float(v) for k, v in task.validate(data, labels).items()}
    finally:
        for name, module in modules.items():
            module.train(modes[name])


@contextlib.contextmanager
def _own_rng(device: torch.device) -> Iterator[None]:
    # Work that draws random numbers outside training (validation, callbacks) gets a copy of the
    # generators' state, restored afterwards: the training stream is the same with or without it.
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type if devices else "cuda"):
        yield


def _save(
    task: TrainingTask,
    out_dir: Path,
    shuffler: torch.Generator,
    config: TrainConfig,
    epoch: int,
    step: int,
    history: History,
) -> Path:
    return save_checkpoint(
        out_dir,
        task.modules(),
        task.optimizers(),
        metadata={
            "task": type(task).__name__,
            "config": task.config(),
            "train_config": config.to_json(),
            "epoch": epoch,
            "step": step,
            "history": history.rows,
        },
        extra_state=task.state_dict() if isinstance(task, StatefulTask) else None,
        generators={"batches": shuffler},
    )


def _resume(
    task: TrainingTask, path: str | Path, shuffler: torch.Generator, config: TrainConfig
) -> tuple[History, int, int]:
    loaded = load_checkpoint(
        path,
        task.modules(),
        task.optimizers(),
        generators={"batches": shuffler},
        restore_rng=True,
    )
    meta = loaded.metadata
    saved_config = json.loads(json.dumps(task.config()))
    differences = [
        f"task {key}: checkpoint {meta['config'].get(key)!r}, now {saved_config.get(key)!r}"
        for key in sorted(set(meta["config"]) | set(saved_config))
        if meta["config"].get(key) != saved_config.get(key)
    ]
    if meta.get("task") != type(task).__name__:
        differences.insert(
            0, f"task type: checkpoint {meta.get('task')}, now {type(task).__name__}"
        )
    for key in ("batch_size", "drop_last", "seed", "binarize"):
        saved, now = meta["train_config"].get(key), getattr(config, key)
        if saved != now:
            differences.append(f"{key}: checkpoint {saved!r}, now {now!r}")
    if differences:
        raise ValueError(
            f"resume_from={str(path)!r}: the run cannot continue exactly with different settings:"
            "\n  " + "\n  ".join(differences)
        )
    if isinstance(task, StatefulTask):
        task.load_state_dict(loaded.extra_state)
    if meta["epoch"] >= config.epochs:
        raise ValueError(
            f"resume_from={str(path)!r}: the checkpoint is at epoch {meta['epoch']}, "
            f"config.epochs={config.epochs}; ask for more epochs to continue"
        )
    return History(meta["history"]), int(meta["epoch"]), int(meta["step"])


def _summary(row: Mapping[str, float], epochs: int) -> str:
    train = "  ".join(
        f"{k[6:]} {v:.4g}" for k, v in row.items() if k.startswith("train_") and k[6:] != "seconds"
    )
    val = "  ".join(
        f"{k[4:]} {v:.4g}" for k, v in row.items() if k.startswith("val_") and k[4:] != "seconds"
    )
    line = f"epoch {int(row['epoch'])}/{epochs}  train: {train}"
    line += f"  | val: {val}" if val else ""
    return line + f"  ({row['train_seconds']:.1f} s)"


def _tensorboard_writer(out_dir: Path | None) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ImportError(
            "TrainConfig.tensorboard=True needs the `tensorboard` package, which is not "
            "installed: `pip install 'gentorch[tensorboard]'` (or `pip install tensorboard`), or "
            "leave tensorboard=False"
        ) from None
    if out_dir is None:
        raise ValueError("TrainConfig.tensorboard=True needs an out_dir to write the logs to")
    return SummaryWriter(log_dir=str(out_dir / "tensorboard"))
