"""PNG pictures of generative models: image grids, latent plots and training curves.

Every function writes one PNG file and returns its :class:`~pathlib.Path`. Grids are assembled
by hand and written with pillow; charts use matplotlib's Agg backend (no display needed).
"""

from gentorch.plotting.charts import save_line_plot
from gentorch.plotting.grid import save_image_grid

__all__ = ["save_image_grid", "save_line_plot"]
