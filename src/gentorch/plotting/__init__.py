"""PNG pictures of generative models: image grids, latent plots and training curves.

Every function writes one PNG file and returns its :class:`~pathlib.Path`. Grids are assembled
by hand and written with pillow; charts use matplotlib's Agg backend (no display needed).
"""

from gentorch.plotting.charts import (
    save_histogram,
    save_latent_scatter,
    save_line_plot,
    save_loss_curves,
)
from gentorch.plotting.grid import (
    save_image_grid,
    save_interpolation,
    save_latent_manifold,
    save_reconstructions,
)

__all__ = [
    "save_histogram",
    "save_image_grid",
    "save_interpolation",
    "save_latent_manifold",
    "save_latent_scatter",
    "save_line_plot",
    "save_loss_curves",
    "save_reconstructions",
]
