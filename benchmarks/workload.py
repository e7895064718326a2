"""What every variant works on: the same random VGG19, the same two pictures, the same layers."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from nst_helpers import DEFAULT_STYLE_LAYERS, TransferConfig, VGGFeatures, load_vgg

CONTENT_LAYERS = tuple(TransferConfig().content_layers)  #: ("relu4_2",), stylize's default
STYLE_LAYERS = dict(DEFAULT_STYLE_LAYERS)  #: the paper's five, equal weights
LAYERS = list(CONTENT_LAYERS) + list(STYLE_LAYERS)


def random_vgg19(device: str | torch.device = "cpu") -> VGGFeatures:
    """VGG19 with seeded random weights (``load_vgg(weights="random")``): nothing is downloaded, and every
    variant, the baselines included, computes with the same numbers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "randomly initialised": on purpose here
        return load_vgg(arch="vgg19", weights="random", input_norm="torchvision", device=device, cache=False)


def smooth_noise(size: int, seed: int) -> torch.Tensor:
    """A deterministic, smooth random picture ``[1, 3, size, size]`` in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, max(2, size // 8), max(2, size // 8), generator=generator)
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
