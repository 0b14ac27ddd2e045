"""gentorch.evaluation."""
