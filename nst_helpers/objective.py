r"""The objective of Gatys et al., Eq. (7), for one content/style pair, with its targets computed once.

.. math:: L_{total} = \alpha L_{content} + \beta L_{style} + \gamma L_{TV}

The content features :math:`P^l` and the style Gram matrices :math:`A^l`
(and their squared norms, for the relative losses) are computed once, when
the :class:`Objective` is made; each call then runs VGG once on the image
being optimised and evaluates the loss functions of
:mod:`nst_helpers.losses`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import torch

from . import fastconv
from .losses import content_loss, gram_matrix, layer_style_loss, tv_loss
from .speed import SpeedOptions
from .vgg import VGGFeatures

__all__ = ["Objective"]

PLAIN_FP32 = SpeedOptions()  #: the default: fp32, NCHW, no Winograd, no compile


class Objective:
    r"""The loss of Eq. (7) for one content/style pair: targets computed once, then one call per step.

    ``objective(x)`` runs VGG once on the image ``x`` ([1, 3, H, W] in [0, 1])
    and returns the weighted terms ``[α·content, β·style, γ·TV]`` (float32,
    shape [3]); their sum is the loss. ``speed`` says how the VGG pass runs
    (half precision, NHWC, Winograd, torch.compile); the Grams and losses are
    float32 whatever it says. ``model`` must already be on the images' device;
    it is not changed (a half-precision or NHWC copy is made when needed).
    """

    def __init__(
        self,
        model: VGGFeatures,
        content_image: torch.Tensor,
        style_image: torch.Tensor,
        *,
        content_layers: Sequence[str],
        style_layers: Mapping[str, float],
        content_weight: float = 1.0,
        style_weight: float = 10.0,
        tv_weight: float = 0.0,
        speed: SpeedOptions = PLAIN_FP32,
    ) -> None:
        self.model = model.for_compute(speed.dtype, speed.channels_last)
        self.speed = speed
        self.content_layers, self.style_layers = list(content_layers), dict(style_layers)
        self.layers = list(dict.fromkeys(self.content_layers + list(self.style_layers)))
        self.weights = (content_weight, style_weight, tv_weight)
        self._forward = torch.compile(self.features) if speed.compile else self.features
        with torch.no_grad():
            content = self.features(content_image, self.content_layers) if self.content_layers else {}
            self.content_targets = {name: value.float() for name, value in content.items()}
            self.content_norms = {
                name: value.square().sum(dim=(1, 2, 3)) for name, value in self.content_targets.items()
            }
            style = self.features(style_image, list(self.style_layers)) if self.style_layers else {}
            self.style_grams = {name: gram_matrix(value) for name, value in style.items()}
            self.style_norms = {name: value.square().sum(dim=(1, 2)) for name, value in self.style_grams.items()}

    def features(self, image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """VGG features of ``image`` at ``layers``, computed the way ``speed`` says."""
        if self.speed.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with fastconv.winograd_convolutions() if self.speed.winograd else contextlib.nullcontext():
            return self.model(image, layers)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        features = self._forward(image, self.layers)
        zero = image.new_zeros((), dtype=torch.float32)
        content_term = zero
        for name in self.content_layers:
            content_term = content_term + content_loss(
                features[name], self.content_targets[name], target_sq_norm=self.content_norms[name]
            )
        if self.content_layers:
            content_term = content_term / len(self.content_layers)
        style_term = zero
        for name, weight in self.style_layers.items():
            style_term = style_term + weight * layer_style_loss(
                gram_matrix(features[name]), self.style_grams[name], target_sq_norm=self.style_norms[name]
            )
        content_weight, style_weight, tv_weight = self.weights
        smooth_term = tv_loss(image) if tv_weight > 0 else zero
        return torch.stack([content_weight * content_term, style_weight * style_term, tv_weight * smooth_term])
