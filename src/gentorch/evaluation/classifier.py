"""A LeNet-style classifier whose penultimate features score generated images without downloads.

FID needs Inception-v3 weights from the internet; on 28x28 grey images a small classifier
trained here does the same job: its 128-d penultimate features give a Fréchet distance ("FLD")
and its class probabilities a classifier-based Inception Score
(:mod:`gentorch.evaluation.gan_metrics`).

The shipped recipe (:func:`train_classifier` with its defaults): Adam (lr 1e-3, halved every
2 epochs), batch 128, 8 epochs, random shifts of up to 1 pixel, dropout 0.25 before the last
layer, seed 0. The trained weights for MNIST and Fashion-MNIST ship as safetensors files in
``gentorch/evaluation/weights/`` (see :func:`pretrained_classifier`); ``gentorch train
classifier`` re-creates them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import Tensor, nn

from gentorch._atomic import write_atomic
from gentorch._checks import as_device, as_path, check_parent_folders, check_positive_int
from gentorch.evaluation._running import check_finite

__all__ = [
    "PRETRAINED",
    "LeNet",
    "classifier_accuracy",
    "load_classifier",
    "pretrained_classifier",
    "save_classifier",
    "train_classifier",
]

_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: Shipped classifiers: dataset name -> safetensors file in ``gentorch/evaluation/weights/``.
PRETRAINED = {
    "mnist": "lenet_mnist.safetensors",
    "fashion-mnist": "lenet_fashion-mnist.safetensors",
}


class LeNet(nn.Module):
    """LeNet-style CNN: two 5x5 conv + max-pool stages, a 128-unit hidden layer, class logits.

    ``conv 5x5 (pad 2) 16 -> ReLU -> pool 2 -> conv 5x5 32 -> ReLU -> pool 2 -> dense 128 ->
    ReLU -> dropout -> dense num_classes``. The 128 ReLU units before the last layer are the
    features used by the Fréchet distance (:meth:`features`). About 117k parameters (470 KB).

    Args:
        in_channels: image channels (1 for MNIST).
        num_classes: number of classes.
        feature_dim: width of the penultimate (feature) layer.
        dropout: dropout probability before the last layer (training only).

    Shape:
        - Input: ``(B, in_channels, 28, 28)``, values in ``[0, 1]``.
        - Output: ``(B, num_classes)`` logits; :meth:`features` gives ``(B, feature_dim)``.

    Example:
        >>> import torch
        >>> from gentorch.evaluation import LeNet
        >>> net = LeNet().eval()
        >>> net(torch.rand(4, 1, 28, 28)).shape, net.features(torch.rand(4, 1, 28, 28)).shape
        (torch.Size([4, 10]), torch.Size([4, 128]))
    """

    image_size = 28

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        feature_dim: int = 128,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("num_classes", num_classes),
            ("feature_dim", feature_dim),
        ):
            check_positive_int(name, value)
        if isinstance(dropout, bool) or not isinstance(dropout, int | float):
            raise TypeError(f"dropout: expected a float in [0, 1), got {type(dropout).__name__}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.feature_dim = feature_dim
        self.conv1 = nn.Conv2d(in_channels, 16, 5, padding=2)
        self.conv2 = nn.Conv2d(16, 32, 5)
        self.fc1 = nn.Linear(32 * 5 * 5, feature_dim)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(feature_dim, num_classes)

    def _check(self, x: Tensor) -> None:
        expected = (self.in_channels, self.image_size, self.image_size)
        shape = f"(B, {', '.join(map(str, expected))})"
        if not isinstance(x, Tensor):
            raise TypeError(f"x: expected a torch.Tensor of shape {shape}, got {type(x).__name__}")
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"x: expected shape {shape}, got {tuple(x.shape)}")
        _check_dtype("x", x, self)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features ``(B, feature_dim)`` of images ``x: (B, C, 28, 28)``."""
        self._check(x)
        # 28 -> conv (pad 2) 28 -> pool 14 -> conv 10 -> pool 5
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return F.relu(self.fc1(h.flatten(1)))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits ``(B, num_classes)`` of images ``x: (B, C, 28, 28)``."""
        out: Tensor = self.fc2(self.dropout(self.features(x)))
        return out


def _check_dtype(name: str, x: Tensor, model: nn.Module) -> None:
    """``TypeError`` unless ``x`` is floating and (outside autocast) in the model's dtype."""
    if not x.is_floating_point():
        raise TypeError(
            f"{name}: expected a floating-point tensor in [0, 1], got dtype {x.dtype} "
            f"(convert and scale it, e.g. {name}.float() / 255)"
        )
    weight = next(model.parameters())
    if x.dtype != weight.dtype and not torch.is_autocast_enabled(weight.device.type):
        raise TypeError(
            f"{name}: expected dtype {weight.dtype} (the classifier's parameters), got "
            f"{x.dtype}; convert the images ({name}.to({weight.dtype})) or the classifier"
        )


def _as_images(name: str, images: object, channels: int) -> Tensor:
    """``images`` as ``(N, C, 28, 28)``: non-empty, floating, finite, in ``[0, 1]`` (one sync)."""
    # Flat (N, C*28*28) rows, as gentorch.data.load returns them, are viewed as (N, C, 28, 28).
    if not isinstance(images, Tensor):
        raise TypeError(
            f"{name}: expected a torch.Tensor of shape (N, {channels * 784}) or "
            f"(N, {channels}, 28, 28), got {type(images).__name__}"
        )
    if not images.is_floating_point():
        raise TypeError(
            f"{name}: expected a floating-point tensor in [0, 1], got dtype {images.dtype} "
            f"(convert and scale it, e.g. {name}.float() / 255)"
        )
    if images.dim() == 2 and images.shape[1] == channels * 28 * 28:
        x = images.view(-1, channels, 28, 28)
    elif images.dim() == 4 and tuple(images.shape[1:]) == (channels, 28, 28):
        x = images
    else:
        raise ValueError(
            f"{name}: expected shape (N, {channels * 784}) or (N, {channels}, 28, 28), "
            f"got {tuple(images.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one image, got 0")
    lo, hi = torch.stack(torch.aminmax(x.detach())).tolist()
    if not (math.isfinite(lo) and math.isfinite(hi)):
        check_finite(name, x)
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"{name}: expected values in [0, 1], got values in [{lo:.4g}, {hi:.4g}] "
            f"(scale 8-bit images with / 255)"
        )
    return x


def _check_labels(labels: object, n: int, num_classes: int | None) -> Tensor:
    """``labels`` as ``(n,)`` integer class indices (in ``[0, num_classes)`` if given)."""
    if not isinstance(labels, Tensor):
        raise TypeError(
            f"labels: expected a torch.Tensor of shape ({n},), got {type(labels).__name__}"
        )
    if labels.shape != (n,):
        raise ValueError(f"labels: expected shape ({n},), got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"labels: expected integer class indices, got dtype {labels.dtype}")
    lo, hi = torch.stack(torch.aminmax(labels)).tolist()
    if lo < 0 or (num_classes is not None and hi >= num_classes):
        expected = f"in [0, {num_classes})" if num_classes is not None else ">= 0"
        raise ValueError(f"labels: expected class indices {expected}, got values in [{lo}, {hi}]")
    return labels


def _random_shift(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Translate each image of ``x: (B, C, H, W)`` by up to ``max_shift`` pixels (zero fill)."""
    if max_shift == 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    shifts = torch.randint(0, 2 * max_shift + 1, (b, 2), generator=generator).to(x.device)
    # out[i, :, r, c] = padded[i, :, r + dy_i, c + dx_i]
    rows = (shifts[:, 0, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (shifts[:, 1, None] + torch.arange(w, device=x.device))[:, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def classifier_accuracy(
    model: LeNet, images: Tensor, labels: Tensor, *, batch_size: int = 1000
) -> float:
    """Fraction of ``images`` (``(N, 784)`` or ``(N, C, 28, 28)``) classified as ``labels (N,)``.

    The prediction is the arg-max of the logits, computed in eval mode (no dropout) without
    autograd in batches on the model's device; the model's training mode is restored after.

    Args:
        model: the classifier.
        images: ``(N, C*784)`` flat or ``(N, C, 28, 28)`` float images in ``[0, 1]``, with
            ``C = model.in_channels``.
        labels: ``(N,)`` integer class indices in ``[0, model.num_classes)``.
        batch_size: images per forward pass.

    Returns:
        The accuracy, a Python float in ``[0, 1]``.

    Example:
        >>> import torch
        >>> from gentorch.evaluation import LeNet, classifier_accuracy
        >>> net, x = LeNet().eval(), torch.rand(10, 784)
        >>> y = net(x.view(10, 1, 28, 28)).argmax(dim=1)  # the net's own predictions
        >>> classifier_accuracy(net, x, y), classifier_accuracy(net, x, (y + 1) % 10)
        (1.0, 0.0)
    """
    if not isinstance(model, LeNet):
        raise TypeError(f"model: expected a LeNet, got {type(model).__name__}")
    batch_size = check_positive_int("batch_size", batch_size)
    x = _as_images("images", images, model.in_channels)
    _check_dtype("images", x, model)
    labels = _check_labels(labels, x.shape[0], model.num_classes)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = 0
    try:
        with torch.no_grad():
            for start in range(0, x.shape[0], batch_size):
                xb = x[start : start + batch_size].to(device)
                yb = labels[start : start + batch_size].to(device)
                correct += int((model(xb).argmax(dim=1) == yb).sum())
    finally:
        model.train(was_training)
    return correct / x.shape[0]


def train_classifier(
    images: Tensor,
    labels: Tensor,
    *,
    epochs: int = 8,
    batch_size: int = 128,
    lr: float = 1e-3,
    max_shift: int = 1,
    seed: int = 0,
    device: str | torch.device | None = None,
    on_epoch_end: Callable[[int, LeNet], None] | None = None,
) -> LeNet:
    """Train a :class:`LeNet` with the shipped recipe and return it (in eval mode).

    Recipe: Adam (``lr``, halved every 2 epochs), cross-entropy, mini-batches of ``batch_size``
    in a seeded random order, every image shifted by up to ``max_shift`` pixels each time it is
    seen. With the defaults it reaches 99.3% test accuracy on MNIST (docs/results.md).

    Args:
        images: ``(N, C*784)`` flat (as ``gentorch.data.load`` returns) or ``(N, C, 28, 28)``,
            values in ``[0, 1]``.
        labels: ``(N,)`` int64 class indices in ``[0, num_classes)``; the number of classes is
            ``labels.max() + 1``, at least 2.
        epochs: passes over the data.
        batch_size: images per step.
        lr: initial Adam learning rate, positive.
        max_shift: largest random translation in pixels, ``0 <= max_shift < 28`` (0 disables
            the augmentation).
        seed: seeds the initialization, the order and the shifts.
        device: where to train (default: CPU); ``images`` may stay on the CPU.
        on_epoch_end: called as ``on_epoch_end(epoch, model)`` after every epoch (1-based).

    Returns:
        The trained model, in eval mode, on ``device``.

    Example:
        >>> import torch
        >>> from gentorch.evaluation import train_classifier
        >>> x, y = torch.rand(64, 784), torch.randint(0, 10, (64,))
        >>> net = train_classifier(x, y, epochs=1, batch_size=32)
        >>> net(x[:2].view(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    if not isinstance(images, Tensor):
        raise TypeError(
            f"images: expected a torch.Tensor of shape (N, C*784) or (N, C, 28, 28), "
            f"got {type(images).__name__}"
        )
    if images.dim() == 2 and images.shape[1] > 0 and images.shape[1] % 784 == 0:
        channels = images.shape[1] // 784
    elif images.dim() == 4 and images.shape[1] > 0:
        channels = images.shape[1]
    else:
        raise ValueError(
            f"images: expected shape (N, C*784) or (N, C, 28, 28), got {tuple(images.shape)}"
        )
    x = _as_images("images", images, channels)
    if x.dtype != torch.float32:
        raise TypeError(
            f"images: expected dtype torch.float32 (the classifier trains in float32), got "
            f"{x.dtype}; convert them with images.float()"
        )
    if not isinstance(labels, Tensor):
        raise TypeError(
            f"labels: expected an int64 tensor of shape (N,), got {type(labels).__name__}"
        )
    if labels.dtype != torch.int64:
        raise TypeError(f"labels: expected an int64 tensor of shape (N,), got {labels.dtype}")
    if labels.dim() != 1:
        raise ValueError(
            f"labels: expected an int64 tensor of shape (N,), got shape {tuple(labels.shape)}"
        )
    if labels.shape[0] != x.shape[0]:
        raise ValueError(
            f"labels: expected {x.shape[0]} labels (one per image), got {labels.shape[0]}"
        )
    labels = _check_labels(labels, x.shape[0], None)
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    if isinstance(lr, bool) or not isinstance(lr, int | float):
        raise TypeError(f"lr: expected a positive float, got {type(lr).__name__}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr: expected a positive finite learning rate, got {lr!r}")
    if isinstance(max_shift, bool) or not isinstance(max_shift, int):
        raise TypeError(f"max_shift: expected an int number of pixels, got {max_shift!r}")
    if not 0 <= max_shift < LeNet.image_size:
        raise ValueError(
            f"max_shift: expected 0 <= max_shift < {LeNet.image_size} pixels, got {max_shift}"
        )
    # torch's generators take seeds in [-2**63, 2**64)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed: expected an int, got {seed!r} ({type(seed).__name__})")
    if not -(2**63) <= seed < 2**64:
        raise ValueError(f"seed: expected an int in [-2**63, 2**64), got {seed}")
    if on_epoch_end is not None and not callable(on_epoch_end):
        raise TypeError(
            f"on_epoch_end: expected None or a callable (epoch, model), got "
            f"{type(on_epoch_end).__name__}"
        )
    num_classes = max(2, int(labels.max()) + 1)
    dev = as_device(device) if device is not None else torch.device("cpu")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout masks
    model = LeNet(in_channels=x.shape[1], num_classes=num_classes).to(dev)
    with torch.no_grad():
        for p in model.parameters():  # seeded re-initialization, independent of global state
            if p.dim() > 1:
                nn.init.kaiming_uniform_(p, a=math.sqrt(5), generator=gen)
            else:
                p.uniform_(-0.01, 0.01, generator=gen)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    n = x.shape[0]
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            xb = _random_shift(x[idx], max_shift, gen).to(dev)
            loss = F.cross_entropy(model(xb), labels[idx].to(dev))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()
        model.eval()
        if on_epoch_end is not None:
            on_epoch_end(epoch, model)
    return model.eval()


def save_classifier(
    model: LeNet, path: str | Path, *, metadata: dict[str, str] | None = None
) -> Path:
    """Write ``model`` to a safetensors file (architecture sizes in its metadata); returns the path.

    The weights are moved to the CPU and written to a temporary file that then replaces
    ``path``, so a reader never sees a half-written file. The metadata holds
    ``gentorch_model = "LeNet"`` and ``config`` (JSON of ``in_channels``, ``num_classes``,
    ``feature_dim``), which :func:`load_classifier` needs; no pickle is involved.

    Args:
        model: the :class:`LeNet` to save.
        path: the ``.safetensors`` file to write; parent folders are created.
        metadata: extra string key -> string value entries for the file's metadata (e.g. the
            dataset or the test accuracy); ``gentorch_model`` and ``config`` are reserved.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        TypeError: if ``model`` is not a :class:`LeNet`, ``path`` not a str or path, or
            ``metadata`` not a dict of strings.
        ValueError: if ``path`` is a folder, does not end in ``.safetensors`` or lies under a
            file, or ``metadata`` uses a reserved key.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from gentorch.evaluation import LeNet, load_classifier, save_classifier
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = save_classifier(LeNet(num_classes=5), Path(tmp) / "lenet.safetensors")
        ...     load_classifier(path).num_classes
        5
    """
    if not isinstance(model, LeNet):
        raise TypeError(f"model: expected a LeNet, got {type(model).__name__}")
    path = as_path(path)
    if path.is_dir():
        raise ValueError(f"path: expected a .safetensors file, got the folder {str(path)!r}")
    if path.suffix != ".safetensors":
        raise ValueError(f"path: expected a file name ending in .safetensors, got {str(path)!r}")
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise TypeError(
                f"metadata: expected a dict of str -> str, got {type(metadata).__name__}"
            )
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(
                    f"metadata: expected str keys and values, got {key!r}: {value!r} "
                    f"({type(value).__name__}); convert it, e.g. str(value)"
                )
            if key in ("gentorch_model", "config"):
                raise ValueError(
                    f"metadata: the key {key!r} is reserved for the architecture, which "
                    f"load_classifier reads; choose another name"
                )
    check_parent_folders(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sizes = {
        "in_channels": model.in_channels,
        "num_classes": model.num_classes,
        "feature_dim": model.feature_dim,
    }
    meta = {"gentorch_model": "LeNet", "config": json.dumps(sizes), **(metadata or {})}
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    # (serialised in memory, then written atomically: safetensors' save_file leaves mode 0600)
    return write_atomic(path, save(tensors, metadata=meta))


def _read_metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta: dict[str, str] | None = f.metadata()
    except SafetensorError as err:
        raise ValueError(
            f"path: {str(path)!r} is not a safetensors file ({err}); expected a classifier "
            f"written by save_classifier"
        ) from None
    return meta or {}


_SIZES = ("in_channels", "num_classes", "feature_dim")


def _read_sizes(path: Path, meta: dict[str, str]) -> dict[str, int]:
    """The LeNet sizes in a classifier file's metadata, or a ValueError naming the file."""
    if meta.get("gentorch_model") != "LeNet" or "config" not in meta:
        raise ValueError(
            f"path: {str(path)!r} is not a gentorch LeNet file: expected metadata with "
            f"gentorch_model = 'LeNet' and a config (as save_classifier writes), got "
            f"gentorch_model = {meta.get('gentorch_model')!r} and the keys {sorted(meta)}"
        )
    try:
        sizes = json.loads(meta["config"])
    except json.JSONDecodeError:
        sizes = None
    if (
        not isinstance(sizes, dict)
        or not set(sizes) <= set(_SIZES)
        or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sizes.values()
        )
    ):
        raise ValueError(
            f"path: {str(path)!r} has a malformed LeNet config: expected JSON of positive ints "
            f"for {', '.join(_SIZES)}, got {meta['config']!r}"
        )
    return sizes


def load_classifier(path: str | Path, *, device: str | torch.device = "cpu") -> LeNet:
    """Load a :class:`LeNet` written by :func:`save_classifier` (no pickle), in eval mode.

    The architecture is rebuilt from the file's metadata, then the weights are loaded.

    Args:
        path: a safetensors file written by :func:`save_classifier`.
        device: where to put the model.

    Returns:
        The classifier, in eval mode, on ``device``.

    Raises:
        TypeError: if ``path`` is not a str or path.
        FileNotFoundError: if there is no file at ``path``.
        ValueError: if ``path`` is a folder or not a safetensors file, if the file's metadata
            does not describe a gentorch LeNet, or if its weights do not fit that LeNet.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import torch
        >>> from gentorch.evaluation import LeNet, load_classifier, save_classifier
        >>> net = LeNet().eval()
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     loaded = load_classifier(save_classifier(net, Path(tmp) / "lenet.safetensors"))
        >>> x = torch.rand(2, 1, 28, 28)
        >>> loaded.training, torch.equal(loaded(x), net(x))
        (False, True)
    """
    path = as_path(path)
    dev = as_device(device)
    if path.is_dir():
        raise ValueError(f"path: expected a classifier file, got the folder {str(path)!r}")
    if not path.is_file():
        raise FileNotFoundError(f"path: no classifier file at {path}")
    sizes = _read_sizes(path, _read_metadata(path))
    model = LeNet(**sizes)
    try:
        model.load_state_dict(load_file(str(path)))
    except RuntimeError as err:
        raise ValueError(
            f"path: the weights in {str(path)!r} do not fit the LeNet its metadata describes "
            f"({sizes}): {str(err).strip()}"
        ) from None
    return model.to(dev).eval()


def pretrained_classifier(dataset: str = "mnist", *, device: str | torch.device = "cpu") -> LeNet:
    """The shipped :class:`LeNet` trained on ``dataset`` (``"mnist"`` or ``"fashion-mnist"``).

    The weights ship inside the package (``gentorch/evaluation/weights/``, see
    :data:`PRETRAINED`), so nothing is downloaded; they were trained with
    :func:`train_classifier`'s defaults.

    Args:
        dataset: ``"mnist"`` or ``"fashion-mnist"``.
        device: where to put the model.

    Returns:
        The classifier (1 input channel, 10 classes, 128 features), in eval mode, on ``device``.

    Raises:
        ValueError: if ``dataset`` is not one of the shipped ones.
        FileNotFoundError: if the weights file is missing from the installation.

    Example:
        >>> import torch
        >>> from gentorch.evaluation import pretrained_classifier
        >>> net = pretrained_classifier("mnist")
        >>> net.training, net.features(torch.rand(2, 1, 28, 28)).shape
        (False, torch.Size([2, 128]))
    """
    if not isinstance(dataset, str):
        raise TypeError(
            f"dataset: expected one of {tuple(PRETRAINED)}, got {type(dataset).__name__}"
        )
    if dataset not in PRETRAINED:
        raise ValueError(f"dataset: expected one of {tuple(PRETRAINED)}, got {dataset!r}")
    path = _WEIGHTS_DIR / PRETRAINED[dataset]
    if not path.is_file():
        raise FileNotFoundError(
            f"no shipped classifier at {path}; create it with "
            f"`gentorch train classifier --dataset {dataset} --out {path}`"
        )
    return load_classifier(path, device=as_device(device))
