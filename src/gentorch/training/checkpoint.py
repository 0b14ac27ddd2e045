"""Checkpoints: one safetensors file holding every tensor, with JSON metadata in its header.

A checkpoint stores, by name, the weights of modules and the state of optimizers, the random
number generators (torch's CPU generator, every CUDA device's generator, and any named
``torch.Generator`` such as the batch shuffler's), a task's own extra state, and JSON metadata
(configuration, epoch, step, history). Tensors go into the safetensors body; everything else is
JSON in the header under the key ``"gentorch"``. A file is written to a temporary name, flushed,
fsync'ed and renamed over the old one, so a crash mid-write leaves the last good checkpoint whole.
Nothing is ever unpickled.

Tensor names in the file::

    module/<module name>/<state_dict key>
    optimizer/<optimizer name>/<path inside the optimizer's state_dict>
    task/<path inside the task's extra state>
    rng/torch, rng/cuda/<device index>, rng/generator/<generator name>
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from torch import Tensor, nn

from gentorch._atomic import write_atomic
from gentorch._checks import as_path, check_parent_folders

__all__ = [
    "CHECKPOINT_NAME",
    "Checkpoint",
    "CheckpointMismatchError",
    "load_checkpoint",
    "read_checkpoint_metadata",
    "save_checkpoint",
    "write_atomic",
]

#: The file name used when a checkpoint path is a folder.
CHECKPOINT_NAME = "checkpoint.safetensors"
_FORMAT = "gentorch-checkpoint"
_VERSION = 1
_HEADER_KEY = "gentorch"


class CheckpointMismatchError(ValueError):
    """A checkpoint's tensors do not fit the modules or optimizers they are loaded into.

    Raised by :func:`load_checkpoint` before any module or optimizer is changed. The message
    names the file and lists every module or optimizer name the file lacks, every missing key
    (in the module, absent from the checkpoint), every unexpected key (in the checkpoint,
    absent from the module), every shape mismatch, every requested generator whose state is
    absent and, for ``restore_rng=True``, a missing RNG state. A ``ValueError``; it adds no
    attributes.

    Args:
        *args: the message (``str(err)``).

    Example:
        >>> import tempfile
        >>> from torch import nn
        >>> from gentorch.training import CheckpointMismatchError, load_checkpoint, save_checkpoint
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = save_checkpoint(tmp, {"model": nn.Linear(4, 2)})
        ...     try:
        ...         load_checkpoint(tmp, {"model": nn.Linear(3, 2)})
        ...     except CheckpointMismatchError as err:
        ...         print(str(err).splitlines()[1].strip())
        module 'model': shape mismatches: ['weight: checkpoint (2, 4) vs module (2, 3)']
    """


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`load_checkpoint` returns besides the state it loads in place.

    A frozen dataclass built by :func:`load_checkpoint`; every argument is also a read-only
    field of the same name.

    Args:
        metadata: the JSON metadata given to :func:`save_checkpoint` (config, epoch, ...).
        extra_state: the task's extra state given to :func:`save_checkpoint` (tensors restored,
            on the CPU), or ``None``.
        path: the file that was read.
        module_names: the names of every module the file holds (not only those loaded).

    Example:
        >>> import tempfile
        >>> from torch import nn
        >>> from gentorch.training import load_checkpoint, save_checkpoint
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = save_checkpoint(tmp, {"model": nn.Linear(4, 2)}, metadata={"epoch": 3},
        ...                         extra_state={"step": 120})
        ...     ckpt = load_checkpoint(tmp, {"model": nn.Linear(4, 2)})
        >>> ckpt.metadata, ckpt.extra_state, ckpt.path.name, ckpt.module_names
        ({'epoch': 3}, {'step': 120}, 'checkpoint.safetensors', ('model',))
    """

    metadata: dict[str, Any]
    extra_state: Any
    path: Path
    module_names: tuple[str, ...] = field(default=())


_EXAMPLE_KEYS = {"modules": "model", "optimizers": "adam", "generators": "batches"}


def _check_mapping(value: object, name: str, kind: type, what: str) -> None:
    """``value`` must be a ``{str: kind}`` mapping (``None`` allowed by the caller)."""
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{name}: expected a dict of name -> {what}, got {type(value).__name__}; pass e.g. "
            f"{{{_EXAMPLE_KEYS.get(name, 'name')!r}: ...}}"
        )
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"{name}: expected string names, got the key {key!r}")
        if not isinstance(item, kind):
            raise TypeError(f"{name}[{key!r}]: expected {what}, got {type(item).__name__}")


def _resolve(path: str | Path) -> Path:
    path = as_path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def save_checkpoint(
    path: str | Path,
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
    extra_state: Any = None,
    generators: Mapping[str, torch.Generator] | None = None,
    save_rng: bool = True,
) -> Path:
    """Atomically write modules, optimizers, RNG states and metadata to one safetensors file.

    Args:
        path: a ``.safetensors`` file, or a folder (the file is then
            ``folder/checkpoint.safetensors``).
        modules: modules by name; each one's ``state_dict()`` is saved under ``module/<name>/``.
        optimizers: optimizers by name; their tensors go to the file, their hyper-parameters and
            other non-tensor state to the JSON header.
        metadata: JSON-able data (configuration, epoch, history, ...).
        extra_state: a task's own state: nested dicts, lists and tuples of JSON-able values and
            tensors.
        generators: named ``torch.Generator`` objects whose states are saved (e.g. the shuffler).
        save_rng: also save torch's global CPU generator and every CUDA device's generator.

    Returns:
        The path of the file written.

    Raises:
        TypeError: ``modules``, ``optimizers`` or ``generators`` is not a dict of name ->
            ``nn.Module`` / ``Optimizer`` / ``torch.Generator``, ``metadata`` is not a dict, or
            ``metadata`` or ``extra_state`` holds a value that is neither JSON-able nor a
            tensor.
        ValueError: ``path`` is an existing file without the ``.safetensors`` suffix (it would
            be taken for a folder), or lies under a file.

    Example:
        >>> import tempfile
        >>> import torch
        >>> from torch import nn
        >>> from gentorch.training import save_checkpoint
        >>> model = nn.Linear(4, 2)
        >>> opt = torch.optim.Adam(model.parameters())
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     p = save_checkpoint(tmp, {"model": model}, {"adam": opt}, metadata={"epoch": 3})
        ...     print(p.name, p.stat().st_size > 0)
        checkpoint.safetensors True
    """
    path = as_path(path)
    if path.is_file() and path.suffix != ".safetensors":
        raise ValueError(
            f"path: expected a .safetensors file or a folder, got the existing file "
            f"{str(path)!r} (a name not ending in .safetensors is taken for a folder)"
        )
    if path.is_dir() or path.suffix != ".safetensors":
        path = path / CHECKPOINT_NAME
    _check_mapping(modules, "modules", nn.Module, "an nn.Module")
    if optimizers is not None:
        _check_mapping(optimizers, "optimizers", torch.optim.Optimizer, "a torch.optim.Optimizer")
    if generators is not None:
        _check_mapping(generators, "generators", torch.Generator, "a torch.Generator")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(
            f"metadata: expected a dict of JSON-able values, got {type(metadata).__name__}"
        )
    check_parent_folders(path)
    tensors: dict[str, Tensor] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module/{name}/{key}"] = value
    optimizer_json = {
        name: _encode(optimizer.state_dict(), f"optimizer/{name}", tensors)
        for name, optimizer in (optimizers or {}).items()
    }
    if save_rng:
        tensors["rng/torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            for index, state in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng/cuda/{index}"] = state
    for name, generator in (generators or {}).items():
        tensors[f"rng/generator/{name}"] = generator.get_state()
    header = {
        "format": _FORMAT,
        "version": _VERSION,
        "torch_version": torch.__version__,
        "modules": list(modules),
        "optimizers": optimizer_json,
        "optimizer_classes": {name: type(opt).__name__ for name, opt in (optimizers or {}).items()},
        "extra_state": _encode(extra_state, "task", tensors),
        "metadata": dict(metadata or {}),
    }
    try:
        header_text = json.dumps(header)
    except TypeError as err:
        raise TypeError(f"metadata: expected JSON-able values ({err})") from None
    # Shared or non-contiguous storages cannot be written by safetensors: give each its own copy.
    body = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    data = safetensors.torch.save(body, metadata={_HEADER_KEY: header_text})
    return write_atomic(path, data)


def _read_header(path: Path) -> dict[str, Any]:
    """The gentorch header of the checkpoint file ``path``, without reading its tensors."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(_HEADER_KEY)
    except Exception as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None
    if raw is None:
        raise ValueError(f"{path}: a safetensors file, but not a gentorch checkpoint (no header)")
    try:
        header = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path}: not a gentorch checkpoint (its header is not JSON: {err})"
        ) from None
    if not isinstance(header, dict) or not isinstance(header.get("metadata"), dict):
        raise ValueError(f"{path}: not a gentorch checkpoint (unexpected header content)")
    return header


def _read(path: Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    header = _read_header(path)
    if header.get("format") != _FORMAT or header.get("version") != _VERSION:
        raise ValueError(
            f"{path}: unsupported checkpoint format {header.get('format')!r} version "
            f"{header.get('version')!r}; expected {_FORMAT!r} version {_VERSION}"
        )
    try:
        tensors = safetensors.torch.load(path.read_bytes())
    except Exception as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None
    return header, tensors


def read_checkpoint_metadata(path: str | Path) -> dict[str, Any]:
    """Return the JSON metadata of a checkpoint without loading any tensor into a module.

    Args:
        path: a checkpoint file or the folder holding ``checkpoint.safetensors``.

    Returns:
        The ``metadata`` mapping given to :func:`save_checkpoint`.

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        ValueError: the file is not a safetensors file or not a gentorch checkpoint.

    Example:
        >>> import tempfile
        >>> from torch import nn
        >>> from gentorch.training import read_checkpoint_metadata, save_checkpoint
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = save_checkpoint(tmp, {"m": nn.Linear(2, 2)}, metadata={"config": {"lr": 1e-3}})
        ...     print(read_checkpoint_metadata(tmp)["config"]["lr"])
        0.001
    """
    metadata: dict[str, Any] = _read_header(_resolve(path))["metadata"]
    return metadata


def load_checkpoint(
    path: str | Path,
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    *,
    generators: Mapping[str, torch.Generator] | None = None,
    restore_rng: bool = False,
) -> Checkpoint:
    """Load a checkpoint into ``modules`` (and ``optimizers``, ``generators``) in place.

    Every module is checked before any is changed: if a module's keys or shapes differ from the
    checkpoint's, :class:`CheckpointMismatchError` lists the missing, unexpected and
    shape-mismatched keys and nothing is loaded. Tensors are copied onto each module's own device.

    Args:
        path: a checkpoint file or the folder holding ``checkpoint.safetensors``.
        modules: the modules to fill, by the names they were saved under.
        optimizers: optimizers to restore, by name (their parameters must already be the
            modules' parameters, in the same order as when saved).
        generators: named generators whose states are restored.
        restore_rng: also restore torch's global CPU generator and the CUDA generators.

    Returns:
        A :class:`Checkpoint` with the metadata and the extra state.

    Raises:
        CheckpointMismatchError: a module or optimizer name is not in the file, a module's
            keys or shapes differ, an optimizer is of another class or has other parameter
            groups than the saved one, a generator in ``generators`` has no saved state, or
            ``restore_rng=True`` and no RNG state was saved; nothing is loaded then.
        FileNotFoundError: no checkpoint at ``path``.
        TypeError: ``modules``, ``optimizers`` or ``generators`` is not a dict of name ->
            ``nn.Module`` / ``Optimizer`` / ``torch.Generator``.
        ValueError: not a readable gentorch checkpoint of a supported format version.

    Example:
        >>> import tempfile
        >>> import torch
        >>> from torch import nn
        >>> from gentorch.training import load_checkpoint, save_checkpoint
        >>> model, fresh = nn.Linear(4, 2), nn.Linear(4, 2)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = save_checkpoint(tmp, {"model": model}, metadata={"epoch": 3})
        ...     ckpt = load_checkpoint(tmp, {"model": fresh})
        >>> torch.equal(fresh.weight, model.weight), ckpt.metadata["epoch"]
        (True, 3)
    """
    path = _resolve(path)
    _check_mapping(modules, "modules", nn.Module, "an nn.Module")
    if optimizers is not None:
        _check_mapping(optimizers, "optimizers", torch.optim.Optimizer, "a torch.optim.Optimizer")
    if generators is not None:
        _check_mapping(generators, "generators", torch.Generator, "a torch.Generator")
    header, tensors = _read(path)
    problems: list[str] = []
    states: dict[str, dict[str, Tensor]] = {}
    for name, module in modules.items():
        if name not in header["modules"]:
            problems.append(
                f"module {name!r}: not in the checkpoint (it holds {header['modules']})"
            )
            continue
        prefix = f"module/{name}/"
        saved = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        problems += _compare(name, module.state_dict(), saved)
        states[name] = saved
    for name, optimizer in (optimizers or {}).items():
        if name not in header["optimizers"]:
            problems.append(
                f"optimizer {name!r}: not in the checkpoint (it holds {list(header['optimizers'])})"
            )
            continue
        problems += _compare_optimizer(name, optimizer, header)
    for name in generators or {}:
        if f"rng/generator/{name}" not in tensors:
            problems.append(f"generator {name!r}: no state saved for it")
    if restore_rng and "rng/torch" not in tensors:
        problems.append(
            "restore_rng=True: the checkpoint holds no RNG state (saved with save_rng=False)"
        )
    if problems:
        raise CheckpointMismatchError(
            f"{path} does not fit what was asked of it:\n  " + "\n  ".join(problems)
        )
    for name, module in modules.items():
        module.load_state_dict(states[name])
    for name, optimizer in (optimizers or {}).items():
        optimizer.load_state_dict(_decode(header["optimizers"][name], tensors))
    for name, generator in (generators or {}).items():
        generator.set_state(tensors[f"rng/generator/{name}"])
    if restore_rng:
        torch.set_rng_state(tensors["rng/torch"])
        cuda_states = [v for k, v in sorted(tensors.items()) if k.startswith("rng/cuda/")]
        if cuda_states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda_states)
    return Checkpoint(
        metadata=header["metadata"],
        extra_state=_decode(header["extra_state"], tensors),
        path=path,
        module_names=tuple(header["modules"]),
    )


def _compare_optimizer(
    name: str, optimizer: torch.optim.Optimizer, header: Mapping[str, Any]
) -> list[str]:
    """What torch's ``load_state_dict`` would fail on (or silently accept), checked up front."""
    saved_class = header.get("optimizer_classes", {}).get(name)  # absent in older files
    if saved_class is not None and saved_class != type(optimizer).__name__:
        return [
            f"optimizer {name!r}: class: checkpoint {saved_class} vs optimizer "
            f"{type(optimizer).__name__}"
        ]
    groups = header["optimizers"][name].get("param_groups", [])
    saved = [len(g.get("params", [])) for g in groups if isinstance(g, dict)]
    now = [len(g["params"]) for g in optimizer.param_groups]
    if saved != now:
        return [f"optimizer {name!r}: parameters per group: checkpoint {saved} vs optimizer {now}"]
    return []


def _compare(name: str, expected: Mapping[str, Tensor], saved: Mapping[str, Tensor]) -> list[str]:
    missing = [k for k in expected if k not in saved]
    unexpected = [k for k in saved if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(saved[k].shape)} vs module {tuple(v.shape)}"
        for k, v in expected.items()
        if k in saved and saved[k].shape != v.shape
    ]
    lines = []
    if missing:
        lines.append(f"module {name!r}: missing keys (not in the checkpoint): {missing}")
    if unexpected:
        lines.append(f"module {name!r}: unexpected keys (not in the module): {unexpected}")
    if mismatched:
        lines.append(f"module {name!r}: shape mismatches: {mismatched}")
    return lines


# Nested state (optimizer state_dicts, a task's extra state) is split in two: tensors go to the
# safetensors body under a path-like name, the rest to JSON with {"__tensor__": name} in their
# place. Dicts with non-string keys (an optimizer's state is keyed by parameter index) and tuples
# are tagged so that they come back as they were.
def _encode(obj: Any, prefix: str, tensors: dict[str, Tensor]) -> Any:
    if isinstance(obj, Tensor):
        # the path names the tensor in the file; keys 0 and "0" (or "a/b" and {"a": {"b"}})
        # give the same path, so a repeated one gets a suffix (the JSON keeps the exact name)
        name, i = prefix, 1
        while name in tensors:
            name, i = f"{prefix}#{i}", i + 1
        tensors[name] = obj
        return {"__tensor__": name}
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, f"{prefix}/{k}", tensors) for k, v in obj.items()}
        return {"__items__": [[k, _encode(v, f"{prefix}/{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"{prefix}: cannot store a {type(obj).__name__} in a checkpoint")


def _decode(obj: Any, tensors: Mapping[str, Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__items__"}:
            return {k: _decode(v, tensors) for k, v in obj["__items__"]}
        if set(obj) == {"__tuple__"}:
            return tuple(_decode(v, tensors) for v in obj["__tuple__"])
        return {k: _decode(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    return obj
