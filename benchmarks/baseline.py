"""The baseline: one step of the loop written the way most tutorials write it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from flops import conv_flops
from nst_helpers import layer_names
from workload import CONTENT_LAYERS, STYLE_LAYERS


def torchvision_vgg19_features() -> nn.Sequential:
    """``torchvision.models.vgg19(weights=None).features``, without building the 500 MB classifier first.

    ``make_layers(cfgs["E"])`` is what ``vgg19()`` calls for its ``features``; the same modules.
    """
    try:
        from torchvision.models.vgg import cfgs, make_layers

        return make_layers(cfgs["E"], batch_norm=False)
    except (ImportError, KeyError, TypeError):
        import torchvision

        return torchvision.models.vgg19(weights=None).features


class TutorialStep:
    """The baseline step, written the way most tutorials write it.

    torchvision's ``vgg19().features`` as is (in-place ReLUs, run through all
    its modules up to ``pool5``), the ImageNet normalisation in front, the
    features picked out by a loop over every module, Gram matrices by ``mm``
    divided by ``C H W``, ``F.mse_loss`` for content and style, fp32. With
    ``freeze=False`` the weights keep ``requires_grad=True`` and each backward
    also computes (and accumulates) weight gradients, as in the tutorials
    that forget to freeze them; ``freeze=True`` is the official PyTorch
    tutorial's ``requires_grad_(False)``.

    Features are taken at the ReLU indices of the same paper layers ours
    uses, so both loops match the same quantities (with in-place ReLUs the
    stored tensor is the ReLU output anyway).
    """

    def __init__(
        self,
        features: nn.Sequential,
        content: torch.Tensor,
        style: torch.Tensor,
        *,
        freeze: bool,
        content_layers=CONTENT_LAYERS,
        style_layers=None,
        content_weight: float = 1.0,
        style_weight: float = 1e6,
    ) -> None:
        self.features = features.eval().requires_grad_(not freeze)
        device = content.device
        self.mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
        names = layer_names(self.features)
        self.content_layers = tuple(content_layers)
        self.style_layers = dict(STYLE_LAYERS if style_layers is None else style_layers)
        wanted = set(self.content_layers) | set(self.style_layers)
        self.pick = {str(i): name for i, name in enumerate(names) if name in wanted}
        self.content_weight, self.style_weight = content_weight, style_weight
        with torch.no_grad():
            targets = self.extract(content)
            self.content_targets = {k: targets[k].detach().clone() for k in self.content_layers}
            styles = self.extract(style)
            self.style_grams = {k: self.gram(styles[k]).detach().clone() for k in self.style_layers}
        self.image = content.clone().requires_grad_(True)

    @staticmethod
    def gram(features: torch.Tensor) -> torch.Tensor:
        _, c, h, w = features.shape
        flat = features.view(c, h * w)
        return torch.mm(flat, flat.t()) / (c * h * w)

    def extract(self, image: torch.Tensor) -> dict:
        x = (image - self.mean) / self.std
        out = {}
        for name, layer in self.features.named_children():  # every module, to pool5
            x = layer(x)
            if name in self.pick:
                out[self.pick[name]] = x
        return out

    def losses(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.extract(image)
        content = sum(F.mse_loss(out[k], self.content_targets[k]) for k in self.content_layers)
        style = sum(w * F.mse_loss(self.gram(out[k]), self.style_grams[k]) for k, w in self.style_layers.items())
        return content, style

    def __call__(self) -> torch.Tensor:
        self.image.grad = None  # the optimiser zeroes the image's gradient; weight grads accumulate
        content, style = self.losses(self.image)
        total = self.content_weight * content + self.style_weight * style
        total.backward()
        return total

    def executed_flops(self, height: int, width: int) -> int:
        """Forward through all 16 convolutions; input (and weight) gradients only to the deepest layer used."""
        modules = list(self.features)
        last = max(int(i) for i in self.pick) + 1
        frozen = not next(self.features.parameters()).requires_grad
        return conv_flops(modules, height, width, input_grad=False) + conv_flops(
            modules[:last], height, width, forward=False, input_grad=True, weight_grad=not frozen
        )
