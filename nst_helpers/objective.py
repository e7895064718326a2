r"""The objective of Gatys et al., Eq. (7), for a content image and one or more styles, targets computed once.

.. math:: L_{total} = \alpha L_{content} + \beta L_{style} + \gamma L_{TV}

The content features :math:`P^l` and the style Gram matrices :math:`A^l`
(and their squared norms, for the relative losses) are computed once, when
the :class:`Objective` is made; each call then runs VGG once on the image
being optimised and evaluates the loss functions of
:mod:`nst_helpers.losses`.

**Several styles.** Without masks, the style targets are the blend of the
style images' Gram matrices, per layer, :math:`A^l = \sum_s b_s A^l_s`
with the blend weights :math:`b_s` scaled to sum 1: one style loss against
a mixed target, so one style gives exactly the single-style objective.
With masks (:mod:`nst_helpers.masks`), each style :math:`s` has its own
term, the masked Gram against :math:`A^l_s`, weighted by
:math:`S\,b_s` (:math:`S` styles; equal blends weigh each region like a
single-style run).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import torch

from . import fastconv
from .config import blend_weights
from .losses import content_loss, gram_matrix, layer_style_loss, tv_loss
from .masks import layer_mask, masked_gram_matrix
from .speed import SpeedOptions
from .vgg import VGGFeatures

__all__ = ["Objective"]

PLAIN_FP32 = SpeedOptions()  #: the default: fp32, NCHW, no Winograd, no compile


class Objective:
    r"""The loss of Eq. (7) for a content image and one or more styles: targets computed once, then one call per step.

    ``objective(x)`` runs VGG once on the image ``x`` ([1, 3, H, W] in [0, 1])
    and returns the weighted terms ``[α·content, β·style, γ·TV]`` (float32,
    shape [3]); their sum is the loss. ``speed`` says how the VGG pass runs
    (half precision, NHWC, Winograd, torch.compile); the Grams and losses are
    float32 whatever it says. ``model`` must already be on the images' device;
    it is not changed (a half-precision or NHWC copy is made when needed).

    ``style_image`` is one image or a list of them (each at its own size);
    ``style_blend`` their weights (default equal), ``style_masks`` one mask
    ``[1, 1, H, W]`` per style at the content's size (default none). The
    targets are kept as ``style_terms``: ``(weight, grams, norms, masks)``
    per term, one term without masks; ``style_grams`` is the first term's.
    """

    def __init__(
        self,
        model: VGGFeatures,
        content_image: torch.Tensor,
        style_image: torch.Tensor | Sequence[torch.Tensor],
        *,
        content_layers: Sequence[str],
        style_layers: Mapping[str, float],
        content_weight: float = 1.0,
        style_weight: float = 10.0,
        tv_weight: float = 0.0,
        speed: SpeedOptions = PLAIN_FP32,
        style_blend: Sequence[float] | None = None,
        style_masks: Sequence[torch.Tensor] | None = None,
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
            self.style_terms = self._style_terms(content_image, style_image, style_blend, style_masks)
            self.style_grams, self.style_norms = self.style_terms[0][1], self.style_terms[0][2]

    def _style_terms(self, content_image, style_images, blend, masks) -> list[tuple[float, dict, dict, dict | None]]:
        """``(weight, Grams, their squared norms, layer masks or None)`` per style term (see the class docstring)."""
        styles = [style_images] if isinstance(style_images, torch.Tensor) else list(style_images)
        weights = blend_weights(blend, len(styles))
        layers = list(self.style_layers)
        grams = [{k: gram_matrix(v) for k, v in self.features(s, layers).items()} if layers else {} for s in styles]
        terms: list[tuple[float, dict[str, torch.Tensor], dict[str, torch.Tensor] | None]]
        if masks is None:  # one term: the blend of the Grams, per layer
            mixed = {name: torch.stack([w * g[name] for w, g in zip(weights, grams)]).sum(0) for name in layers}
            terms = [(1.0, mixed, None)]
        else:
            if len(masks) != len(styles):
                raise ValueError(f"{len(masks)} style masks for {len(styles)} style images.")
            shapes = {k: v.shape[-2:] for k, v in self.features(content_image, layers).items()}
            terms = [
                (len(styles) * w, g, self._layer_masks(m.to(content_image.device), shapes))
                for w, g, m in zip(weights, grams, masks)
            ]
        return [(w, g, {k: v.square().sum(dim=(1, 2)) for k, v in g.items()}, m) for w, g, m in terms]

    @staticmethod
    def _layer_masks(mask: torch.Tensor, shapes: Mapping[str, torch.Size]) -> dict[str, torch.Tensor]:
        """The mask at each style layer's resolution; layers where it covers nothing are left out (no term)."""
        resized = {name: layer_mask(mask, (int(shape[0]), int(shape[1]))) for name, shape in shapes.items()}
        return {name: value for name, value in resized.items() if float(value.sum()) > 0}

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
        for term_weight, grams, norms, masks in self.style_terms:
            for name, weight in self.style_layers.items():
                if masks is not None and name not in masks:
                    continue  # this style's mask covers nothing at this layer
                gram = gram_matrix(features[name]) if masks is None else masked_gram_matrix(features[name], masks[name])
                style_term = style_term + term_weight * weight * layer_style_loss(
                    gram, grams[name], target_sq_norm=norms[name]
                )
        content_weight, style_weight, tv_weight = self.weights
        smooth_term = tv_loss(image) if tv_weight > 0 else zero
        return torch.stack([content_weight * content_term, style_weight * style_term, tv_weight * smooth_term])
