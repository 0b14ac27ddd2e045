"""gentorch.training."""
