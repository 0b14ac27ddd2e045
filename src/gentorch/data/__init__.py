"""gentorch.data."""
