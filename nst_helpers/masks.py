r"""Spatial control with masks (Gatys, Ecker, Bethge, Hertzmann & Shechtman, CVPR 2017): where each style goes.

"Controlling Perceptual Factors in Neural Style Transfer" gives every
style image a **guidance channel**, a mask :math:`m` over the content image
that says where that style applies (white: here, black: not here). The
style loss then compares the style's Gram matrix with the Gram matrix of
the *masked* features of the image being optimised,

.. math:: \hat G^l_m = \frac{(F^l \circ m^l)(F^l \circ m^l)^T}{N_l \sum_k (m^l_k)^2},

where :math:`m^l` is the mask at layer :math:`l`'s resolution and the
denominator (the number of channels times the mask's area at that layer)
makes :math:`\hat G^l_m` an average over the masked region, so that a mask
of all ones gives back the plain normalised Gram of
:func:`~nst_helpers.losses.gram_matrix`. Pixels that no mask covers get no
style gradient and keep only the content loss.

**Masks at each layer's resolution.** The paper discusses two ways: simply
downsampling the guidance channels to each feature map's size, or
propagating them through the network so that each unit's value reflects
its receptive field (which blurs and widens the borders with depth). We
downsample by **area averaging** (:func:`layer_mask`): each cell of layer
:math:`l` gets the fraction of its pixels the mask covers, so the mask's
area fraction is kept (exactly when the sizes divide). The receptive
fields still cross the border by a few pixels at the first layers and by
far more at relu5_1, so style leaks a little across a border either way.

Masks are float tensors ``[1, 1, H, W]`` in [0, 1]. :func:`load_mask` reads
paths, PIL images and tensors; :func:`split_masks` and
:func:`brightness_masks` make simple pairs from the content image, to try
masks without a drawing program.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import SettingsError
from .image_files import ImageSource, open_image
from .losses import gram_matrix

__all__ = ["load_mask", "layer_mask", "masked_gram_matrix", "split_masks", "brightness_masks", "otsu_threshold"]

#: Largest difference between R, G and B (in 0..1) for which an RGB mask still counts as grey.
GREY_TOLERANCE = 2 / 255


def _describe(source: ImageSource, index: int | None) -> str:
    which = f"style mask #{index + 1}" if index is not None else "the mask"
    if isinstance(source, (str, os.PathLike)):
        return f"{which} ({os.fspath(source)})"
    return which


def _as_grey(tensor: torch.Tensor, name: str) -> torch.Tensor:
    """``[1, 1, H, W]`` in [0, 1] from a [H, W] / [C, H, W] / [1, C, H, W] tensor with C = 1 or 3 grey channels."""
    if tensor.dtype == torch.bool:
        tensor = tensor.float()
    elif tensor.dtype == torch.uint8:
        tensor = tensor.float() / 255
    elif not tensor.is_floating_point():
        raise SettingsError(f"{name}: a mask tensor must be float in [0, 1], bool or uint8, got {tensor.dtype}.")
    tensor = tensor.detach().float().cpu()
    while tensor.dim() < 4:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 4 or tensor.shape[0] != 1 or tensor.shape[1] not in (1, 3) or tensor.numel() == 0:
        raise SettingsError(f"{name}: a mask must be [H, W], [1, H, W] or [1, 1, H, W], got {list(tensor.shape)}.")
    if not bool(torch.isfinite(tensor).all()) or float(tensor.min()) < 0 or float(tensor.max()) > 1:
        raise SettingsError(f"{name}: mask values must lie in [0, 1] (white = this style, black = not).")
    if tensor.shape[1] == 3:
        if float((tensor.amax(dim=1) - tensor.amin(dim=1)).max()) > GREY_TOLERANCE:
            raise SettingsError(
                f"{name} is a colour image; a mask must be greyscale (white = this style, black = not). "
                "Save it in greyscale (mode L) or paint it in black and white only."
            )
        tensor = tensor.mean(dim=1, keepdim=True)
    return tensor


def _pil_to_tensor(image: Image.Image) -> torch.Tensor:
    if image.mode in ("1", "L", "I", "I;16", "F"):
        array = np.asarray(image.convert("F"), dtype=np.float32)
        array = array / (65535.0 if image.mode.startswith("I") and array.max() > 255 else 255.0)
        return torch.from_numpy(array.clip(0, 1).copy())
    if image.mode == "LA":  # transparent means "not this style": composite over black
        grey, alpha = (np.asarray(band, dtype=np.float32) / 255 for band in image.split())
        return torch.from_numpy(grey * alpha)
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255
    return torch.from_numpy((rgba[..., :3] * rgba[..., 3:]).transpose(2, 0, 1).copy())


def load_mask(source: ImageSource, size: tuple[int, int], index: int | None = None) -> torch.Tensor:
    """A greyscale mask as ``[1, 1, H, W]`` in [0, 1], resized to ``size`` = (height, width) of the content.

    ``source``: a path, URL, bytes, PIL image or tensor (``[H, W]``,
    ``[1, H, W]``, ``[1, 1, H, W]``, or a 3-channel tensor whose channels are
    equal). An RGB image counts as grey when its channels differ by at most
    2/255. The mask's aspect ratio must match the content's (within 1 %, or
    one pixel's rounding): a mask drawn for a different crop would put the
    style in the wrong place, so it is refused rather than stretched.
    Raises :class:`~nst_helpers.SettingsError` (or ``ImageLoadError`` for an
    unreadable file) with a one-line message.
    """
    name = _describe(source, index)
    if isinstance(source, torch.Tensor):
        mask = _as_grey(source, name)
    else:
        image, _ = open_image(source)
        mask = _as_grey(_pil_to_tensor(image), name)
    height, width = size
    mask_height, mask_width = mask.shape[-2:]
    ratio, content_ratio = mask_width / mask_height, width / height
    tolerance = max(0.01, 1.5 / min(height, width, mask_height, mask_width))
    if abs(ratio / content_ratio - 1) > tolerance:
        raise SettingsError(
            f"{name} is {mask_width}x{mask_height} px (aspect {ratio:.2f}) but the content image is "
            f"{width}x{height} (aspect {content_ratio:.2f}); draw the mask on the content image (or a resized copy)."
        )
    if (mask_height, mask_width) != (height, width):
        mask = F.interpolate(mask, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return mask.clamp(0, 1).contiguous()


def layer_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``mask`` [1, 1, H, W] at a layer's resolution ``size`` by area averaging (keeps its area fraction)."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    return F.adaptive_avg_pool2d(mask, size)


def masked_gram_matrix(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    r"""The Gram matrix of ``features`` [B, C, H, W] × ``mask`` [1, 1, H, W], averaged over the mask's area.

    :math:`\hat G_m = (F \circ m)(F \circ m)^T / (C \sum_k m_k^2)`: equal to
    :func:`~nst_helpers.losses.gram_matrix` for a mask of ones, all zeros for
    a mask of zeros (float32, like ``gram_matrix``).
    """
    channels = features.shape[1]
    area = mask.float().square().sum()
    gram = gram_matrix(features * mask.to(features.device, features.dtype), normalize=False)
    return gram / (channels * area).clamp_min(torch.finfo(torch.float32).tiny)


def split_masks(image_or_size: torch.Tensor | tuple[int, int], at: float = 0.5, vertical: bool = False):
    """Two complementary masks: top and bottom part (``vertical=True``: left and right), split at fraction ``at``.

    ``image_or_size``: the content image ``[1, 3, H, W]`` or its ``(height, width)``.
    """
    if not 0 < at < 1:
        raise SettingsError(f"at must lie strictly between 0 and 1, got {at!r}.")
    height, width = image_or_size.shape[-2:] if isinstance(image_or_size, torch.Tensor) else image_or_size
    first = torch.zeros(1, 1, height, width)
    if vertical:
        first[..., : round(at * width)] = 1
    else:
        first[..., : round(at * height), :] = 1
    return first, 1 - first


def otsu_threshold(values: torch.Tensor, bins: int = 256) -> float:
    """Otsu's threshold for values in [0, 1]: the split that maximises the between-class variance."""
    histogram = torch.histc(values.float().flatten(), bins=bins, min=0, max=1).double()
    probability = histogram / histogram.sum()
    centres = (torch.arange(bins, dtype=torch.float64) + 0.5) / bins
    weight_low = probability.cumsum(0)
    mean_low_sum = (probability * centres).cumsum(0)
    total_mean = mean_low_sum[-1]
    between = (total_mean * weight_low - mean_low_sum) ** 2 / (weight_low * (1 - weight_low)).clamp_min(1e-12)
    return float(centres[int(between.argmax())] + 0.5 / bins)


def brightness_masks(image: torch.Tensor, threshold: float | None = None, smooth: int = 0):
    """Two complementary masks from the content image: its bright part (often the sky) and the rest.

    A pixel is "bright" when its luminance (0.299 R + 0.587 G + 0.114 B)
    exceeds ``threshold`` (default: Otsu's threshold of the image). ``smooth``
    > 0 averages the bright mask over a (2·smooth+1)² window, which softens
    the border and drops specks.
    """
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    luma = (image.detach().float().cpu() * weights).sum(dim=1, keepdim=True)
    threshold = otsu_threshold(luma) if threshold is None else threshold
    bright = (luma > threshold).float()
    if smooth > 0:
        bright = F.avg_pool2d(bright, 2 * smooth + 1, stride=1, padding=smooth, count_include_pad=False)
    return bright, 1 - bright
