"""Plot helpers for the notebooks: feature maps, Gram heatmaps, loss curves.

Every function returns the matplotlib ``Figure`` (or draws into the ``ax``
you give) so notebooks can show, save or test it. To show images side by
side, use :func:`nst_helpers.show_images`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

__all__ = ["plot_feature_maps", "plot_gram", "plot_losses"]


def plot_feature_maps(
    features: torch.Tensor, count: int = 16, ncols: int = 8, title: str | None = None, size: float = 1.6
):
    """Grid of the first ``count`` channels of ``features`` (``[1, C, H, W]`` or ``[C, H, W]``).

    Each map is scaled to its own min–max range (brighter = stronger response).
    """
    import matplotlib.pyplot as plt

    maps = features.detach().float().cpu()
    maps = maps[0] if maps.dim() == 4 else maps
    count = min(count, maps.shape[0])
    nrows = -(-count // ncols)
    # Height: each map at its aspect ratio, plus room for its channel number (and for the title), so the maps
    # fill the width instead of shrinking between wide gaps.
    height = nrows * (size * maps.shape[1] / maps.shape[2] + 0.25) + (0.45 if title else 0.0)
    figure, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, height), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < count:
            axis.imshow(maps[index].numpy(), cmap="viridis")
            axis.set_title(str(index), fontsize=7)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_gram(gram: torch.Tensor, max_channels: int = 64, title: str | None = None, ax=None):
    """Heatmap of a Gram matrix (``[C, C]`` or ``[1, C, C]``), first ``max_channels`` channels."""
    import matplotlib.pyplot as plt

    matrix = gram.detach().float().cpu()
    matrix = matrix[0] if matrix.dim() == 3 else matrix
    matrix = matrix[:max_channels, :max_channels]
    figure = None
    if ax is None:
        figure, ax = plt.subplots(figsize=(4.5, 4))
    image = ax.imshow(matrix.numpy(), cmap="magma")
    ax.set_xlabel("channel j")
    ax.set_ylabel("channel i")
    if title:
        ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return figure or ax.figure


#: Decades a log-scale loss axis spans at most below its largest loss. A run from the photo starts with a
#: content loss of ~0 (exactly 0 in fp32, ~1e-5 after bf16 rounding), which would stretch the axis over 6-7
#: decades and leave the curves the top third; what lies lower runs off the bottom.
LOSS_DECADES = 4

#: One colour per loss term, so that a term looks the same in every plot (also when another is all zero).
LOSS_COLORS = {"content": "tab:blue", "style": "tab:orange", "tv": "tab:green", "total": "tab:red"}


def plot_losses(history: Mapping[str, Sequence[float]], ax=None, title: str | None = "Loss per step", log: bool = True):
    """Loss curves per term (``content``, ``style``, ``tv``, ``total``), log scale by default.

    Terms that are zero throughout are left out. On the log scale a zero
    value (the content term at the first step, when the run starts from the
    photo) has no place, so the curve starts at the first positive value
    instead of plunging off the bottom of the axes.
    """
    import matplotlib.pyplot as plt

    figure = None
    if ax is None:
        figure, ax = plt.subplots(figsize=(5, 3.5))
    for name, values in history.items():
        values = [float(v) for v in values]
        if values and any(v > 0 for v in values):
            if log:
                values = [v if v > 0 else float("nan") for v in values]  # NaN: a gap, not a line to -inf
            ax.plot(
                range(1, len(values) + 1),
                values,
                label=name,
                color=LOSS_COLORS.get(name),
                linewidth=2 if name == "total" else 1.2,
            )
    if log and ax.lines:
        ax.set_yscale("log")
        positive = [v for line in ax.lines for v in line.get_ydata() if v > 0]
        floor = 10.0 ** (math.ceil(math.log10(max(positive))) - LOSS_DECADES)
        if min(positive) < floor:
            ax.set_ylim(bottom=floor)
    ax.set_xlabel("step (VGG evaluations)")
    ax.set_ylabel("weighted loss")
    if title:
        ax.set_title(title)
    if ax.lines:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if figure is not None:
        figure.tight_layout()  # keep the axis labels inside the figure when it is saved
    return figure or ax.figure
