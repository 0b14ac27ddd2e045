"""gentorch.plotting."""
