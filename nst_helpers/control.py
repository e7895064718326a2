"""Control over the picture, before and after a run: the images, several styles, masks, the content's colours.

:func:`~nst_helpers.stylize` calls these (:func:`load_inputs`) to turn what the user gave
(sample names, paths, tensors; ``preserve_colors``, ``style_blend``,
``style_masks`` in the :class:`~nst_helpers.TransferConfig`) into the
tensors the :class:`~nst_helpers.Objective` needs, and to put the content's
colours back afterwards:

* :func:`load_styles`: one or several style images, each at ``style_size``
  (or ``style_scale`` times the content's size) with its own aspect ratio
  (Gram matrices are averages over positions, so styles of different shapes
  mix fine);
* :func:`load_masks`: one greyscale mask per style, at the content's size
  (:mod:`nst_helpers.masks`);
* :func:`colour_inputs` / :func:`restore_colours`: the two colour-preserving
  methods of :mod:`nst_helpers.colors` ("histogram" recolours the styles
  before the run; "luminance" runs on grey images and recombines the
  result's luminance with the content's chroma after it, and for every
  preview frame);
* :func:`check_min_size` and :func:`start_image`: every image reaches the
  deepest layer; the run's first image (``init``).
"""

from __future__ import annotations

import math
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
    "load_inputs",
    "as_image",
    "load_styles",
    "load_masks",
    "colour_inputs",
    "restore_colours",
    "restore_result_colours",
    "colour_callback",
    "check_min_size",
    "start_image",
]


def load_inputs(
    content: ImageSource, style: ImageSource | Sequence[ImageSource], config: TransferConfig
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], list[torch.Tensor] | None]:
    """What a run starts from: the photo as given, the content and style images the network sees
    (:func:`colour_inputs`) and the masks (None: none), at their final sizes."""
    photo = as_image(content, config.size)
    styles = load_styles(style, config, photo)
    masks = load_masks(config, photo)
    content_image, styles = colour_inputs(config, photo, styles)
    return photo, content_image, styles, masks


def as_image(source: ImageSource, max_size: int) -> torch.Tensor:
    """A sample name, path, URL, bytes, PIL image or tensor as ``[1, 3, H, W]`` (tensors keep their size)."""
    if isinstance(source, str) and is_sample_name(source):
        source = sample_image(source)
    if isinstance(source, torch.Tensor):
        # Already-loaded tensors are used at their size; load_image checks shape, dtype (uint8 → /255)
        # and values, and makes them contiguous float32 on the CPU (L-BFGS needs a contiguous image).
        return load_image(source, max_size=None)
    return load_image(source, max_size=max_size)


def load_styles(
    style: ImageSource | Sequence[ImageSource], config: TransferConfig, content: torch.Tensor | None = None
) -> list[torch.Tensor]:
    """The style image(s) as a list of tensors; checks that blend weights and masks give one per style.

    With ``config.style_scale`` (and the ``content`` image) each style's longest side is
    ``style_scale`` times the content's (tensors too), as neural-style's ``-style_scale``.
    """
    if isinstance(style, (list, tuple)):
        sources = list(style)
    else:  # one image: a name, path, bytes, PIL image or tensor (a [N, 3, H, W] tensor stays one image)
        sources = [style]
    config.check_style_count(len(sources))
    if config.style_scale is None or content is None:
        return [as_image(source, config.style_size or config.size) for source in sources]
    longest = max(1, round(config.style_scale * max(content.shape[-2:])))
    return [resize_image(as_image(source, longest), max_size=longest) for source in sources]


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

    def in_colour(progress):  # a coarse level of a pyramid is smaller than the content: recombine at its size
        at_size = resize_image(content, size=tuple(progress.image.shape[-2:]))
        return callback(replace(progress, image=restore_colours(progress.image, at_size, config)))

    return in_colour


def check_min_size(minimum: int, **images: torch.Tensor) -> None:
    """Raise :class:`SettingsError` saying which size to use when an image's short side is under ``minimum`` px."""
    for label, image in images.items():
        short, long = sorted(image.shape[-2:])
        if short < minimum:
            needed = math.ceil(minimum * long / short)  # the longest side that makes the short side big enough
            fix = (
                f"use size={needed} or more"
                if needed <= 4096
                else "crop it to a less elongated shape first (e.g. with PIL's Image.crop)"
            )
            raise SettingsError(
                f"The {label} image is {image.shape[-2]}x{image.shape[-1]} px after resizing, but the deepest "
                f"layer needs at least {minimum} px on each side: {fix}."
            )


def start_image(config: TransferConfig, content_image: torch.Tensor, style_image: torch.Tensor) -> torch.Tensor:
    """The first image of a run (``config.init``): the content, seeded noise or the style at the content's size."""
    if config.init == "content":
        return content_image.clone()
    if config.init == "noise":
        generator = torch.Generator(device="cpu").manual_seed(config.seed)
        return torch.rand(content_image.shape, generator=generator).to(content_image.device)
    return resize_image(style_image, size=tuple(content_image.shape[-2:])).clone()
