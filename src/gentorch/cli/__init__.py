"""gentorch.cli."""
