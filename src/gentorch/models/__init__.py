"""gentorch.models."""
