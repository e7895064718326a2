"""Control over the picture, before and after a run: the images, several styles, masks, the content's colours.

:func:`~nst_helpers.stylize` calls these to turn what the user gave
(sample names, paths, tensors; ``preserve_colors``, ``style_blend``,
``style_masks`` in the :class:`~nst_helpers.TransferConfig`) into the
tensors the :class:`~nst_helpers.Objective` needs, and to put the content's
colours back afterwards:

* :func:`load_styles`: one or several style images, each at ``style_size``
  with its own aspect ratio (Gram matrices are averages over positions, so
  styles of different shapes mix fine);
* :func:`load_masks`: one greyscale mask per style, at the content's size
  (:mod:`nst_helpers.masks`);
* :func:`colour_inputs` / :func:`restore_colours`: the two colour-preserving
  methods of :mod:`nst_helpers.colors` ("histogram" recolours the styles
  before the run; "luminance" runs on grey images and recombines the
  result's luminance with the content's chroma after it, and for every
  preview frame).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import torch

from .colors import combine_luminance, luminance, match_color_histogram, match_luminance
from .config import TransferConfig
from .data import is_sample_name, sample_image
from .errors import SettingsError
from .images import ImageSource, load_image, resize_image
from .masks import load_mask

__all__ = [
    "as_image",
    "load_styles",
    "load_masks",
    "colour_inputs",
    "restore_colours",
    "restore_result_colours",
    "colour_callback",
]


def as_image(source: ImageSource, max_size: int) -> torch.Tensor:
    """A sample name, path, URL, bytes, PIL image or tensor as ``[1, 3, H, W]`` (tensors keep their size)."""
    if isinstance(source, str) and is_sample_name(source):
        source = sample_image(source)
    if isinstance(source, torch.Tensor):
        # Already-loaded tensors are used at their size; load_image checks shape, dtype (uint8 → /255)
        # and values, and makes them contiguous float32 on the CPU (L-BFGS needs a contiguous image).
        return load_image(source, max_size=None)
    return load_image(source, max_size=max_size)


def load_styles(style: ImageSource | Sequence[ImageSource], config: TransferConfig) -> list[torch.Tensor]:
    """The style image(s) as a list of tensors; checks that blend weights and masks give one per style."""
    if isinstance(style, (list, tuple)):
        sources = list(style)
    else:  # one image: a name, path, bytes, PIL image or tensor (a [N, 3, H, W] tensor stays one image)
        sources = [style]
    config.check_style_count(len(sources))
    return [as_image(source, config.style_size or config.size) for source in sources]


def load_masks(config: TransferConfig, content: torch.Tensor) -> list[torch.Tensor] | None:
    """``config.style_masks`` as ``[1, 1, H, W]`` tensors at the content's size (None: no masks)."""
    if config.style_masks is None:
        return None
    size = (int(content.shape[-2]), int(content.shape[-1]))
    masks = [load_mask(source, size, index) for index, source in enumerate(config.style_masks)]
    if all(float(mask.max()) == 0 for mask in masks):
        raise SettingsError("every style mask is black: no style would apply anywhere; white marks where a style goes.")
    return masks


def colour_inputs(
    config: TransferConfig, content: torch.Tensor, styles: list[torch.Tensor]
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The content and style images the network sees, given ``config.preserve_colors``.

    ``None``: unchanged. ``"histogram"``: each style recoloured to the
    content's mean and covariance. ``"luminance"``: the content's luminance
    and each style's luminance matched to the content's mean and std, as
    grey RGB images.
    """
    if config.preserve_colors == "histogram":
        return content, [match_color_histogram(style, content) for style in styles]
    if config.preserve_colors == "luminance":
        return luminance(content), [match_luminance(style, content) for style in styles]
    return content, styles


def restore_colours(image: torch.Tensor, content: torch.Tensor, config: TransferConfig) -> torch.Tensor:
    """The result as the user sees it: for ``"luminance"``, its luminance with the content's chroma."""
    if config.preserve_colors != "luminance":
        return image
    return combine_luminance(image, content.to(image.device))


def restore_result_colours(result, content: torch.Tensor, config: TransferConfig):
    """``result`` (a TransferResult) with its images and replay frames in the content's colours (luminance mode)."""
    if config.preserve_colors != "luminance":
        return result
    result.image = restore_colours(result.image, content, config)
    result.best_image = restore_colours(result.best_image, content, config)
    frames = []
    for frame in getattr(result, "frames", []):  # [3, h, w] uint8, shrunk: recombine with a shrunk content
        small = resize_image(content.cpu(), size=tuple(frame.image.shape[-2:]))
        coloured = restore_colours(frame.image.float().div(255).unsqueeze(0), small, config)
        frames.append(replace(frame, image=coloured[0].mul(255).round().to(torch.uint8)))
    if frames:
        result.frames = frames
    return result


def colour_callback(callback: Callable | None, content: torch.Tensor, config: TransferConfig) -> Callable | None:
    """``callback``, seeing every preview frame in the content's colours (luminance mode)."""
    if callback is None or config.preserve_colors != "luminance":
        return callback
    content = content.cpu()

    def in_colour(progress):
        return callback(replace(progress, image=restore_colours(progress.image, content, config)))

    return in_colour
