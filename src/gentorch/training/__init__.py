"""gentorch.training: one training engine for every model family.

- :func:`fit` trains a :class:`TrainingTask` (:class:`VAETask` here; the GAN's task lives in
  :mod:`gentorch.training.gan`) with seeds, a progress bar, validation, :class:`History` and
  atomic checkpoints with exact resume.
- :func:`save_checkpoint` / :func:`load_checkpoint`: safetensors weights, optimizer and RNG
  state, JSON metadata.
"""

from gentorch.training.checkpoint import (
    CHECKPOINT_NAME,
    Checkpoint,
    CheckpointMismatchError,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
    write_atomic,
)
from gentorch.training.engine import (
    History,
    StatefulTask,
    TrainConfig,
    TrainingDiverged,
    TrainingTask,
    fit,
)
from gentorch.training.gan import ADAM_SETTINGS, AdamSetting, GANTask, layer_spectral_norms
from gentorch.training.vae import VAETask, make_adam

__all__ = [
    "CHECKPOINT_NAME",
    "Checkpoint",
    "CheckpointMismatchError",
    "History",
    "StatefulTask",
    "TrainConfig",
    "TrainingDiverged",
    "TrainingTask",
    "VAETask",
    "fit",
    "load_checkpoint",
    "make_adam",
    "read_checkpoint_metadata",
    "save_checkpoint",
    "write_atomic",
]
__all__ += ["ADAM_SETTINGS", "AdamSetting", "GANTask", "layer_spectral_norms"]
