"""The settings of a style-transfer run: :class:`TransferConfig`, with typed, commented defaults.

Every field has a working default; :meth:`TransferConfig.validate` checks
them all before anything is loaded, so a typo fails in a second with a
one-line message rather than halfway through a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from .errors import SettingsError
from .optimizers import OPTIMIZERS, Optimizer
from .speed import PRECISIONS, Precision

__all__ = ["TransferConfig", "DEFAULT_STYLE_LAYERS", "INITS"]

#: The paper's style layers with equal weights w_l = 1/5 (relu after conv1_1 ... conv5_1).
DEFAULT_STYLE_LAYERS = {"relu1_1": 0.2, "relu2_1": 0.2, "relu3_1": 0.2, "relu4_1": 0.2, "relu5_1": 0.2}
INITS = ("content", "noise", "style")


@dataclass
class TransferConfig:
    """Settings of one style-transfer run. Every field has a working default.

    The defaults give a good picture at 512 px in ~300 L-BFGS steps: content
    at relu4_2 (the paper's conv4_2, after its ReLU), the paper's five style
    layers with equal weights, and a style/content ratio chosen on the
    relative losses of :mod:`nst_helpers.losses` by eye on the sample pairs.
    """

    size: int = 512  #: longest side of the content image, in pixels
    style_size: int | None = None  #: longest side of the style image (None: same as ``size``)
    steps: int = 300  #: VGG evaluations (one L-BFGS closure call = one Adam step = one step)
    optimizer: Optimizer = "lbfgs"  #: "lbfgs" (the paper's choice) or "adam"
    lr: float | None = None  #: learning rate; None → 1.0 for L-BFGS, 0.02 for Adam
    content_layers: tuple[str, ...] = ("relu4_2",)  #: layers whose features are matched to the content image
    style_layers: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_STYLE_LAYERS))  #: layer → w_l
    content_weight: float = 1.0  #: α, weight of the relative content loss
    style_weight: float = 10.0  #: β, weight of the relative style loss Σ w_l E_l
    tv_weight: float = 0.0  #: γ, weight of the total-variation smoothness loss (0: off)
    init: Literal["content", "noise", "style"] = "content"  #: starting image ("noise" is the paper's)
    seed: int = 0  #: seeds the noise initialisation (and anything random)
    device: str | None = None  #: None: CUDA → MPS → CPU, whichever is available
    preview_every: int = 20  #: call the callback (and clamp, for L-BFGS) every this many steps
    pooling: Literal["max", "avg"] = "max"  #: "max" (as trained) or "avg" (the paper's suggestion)
    precision: Precision = "auto"  #: VGG pass in fp32, bf16 or fp16; "auto": see :mod:`nst_helpers.speed`
    channels_last: bool | None = None  #: NHWC convolutions; None: on for CUDA and for bf16, else off
    compile: bool = False  #: wrap the VGG pass in torch.compile (slower on CPU; untested on GPU here)
    winograd: bool | None = None  #: CPU: Winograd convolutions (NNPACK); None: on for CPU fp32 if available
    check_memory: bool = True  #: refuse sizes whose estimated memory exceeds what is free

    def validate(self) -> TransferConfig:
        """A checked copy with the layer fields in their canonical form (tuple, dict); raises
        :class:`SettingsError` with a clear message for any invalid field. ``self`` is not changed."""
        for name in ("size", "steps", "preview_every") + (("style_size",) if self.style_size is not None else ()):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SettingsError(f"{name} must be a whole number ≥ 1, got {value!r}.")
        for name in ("content_weight", "style_weight", "tv_weight"):
            _check_weight(name, getattr(self, name))
        if self.content_weight == 0 and self.style_weight == 0:
            raise SettingsError("content_weight and style_weight are both 0: there is nothing to optimise.")
        if self.lr is not None and (
            isinstance(self.lr, bool)
            or not isinstance(self.lr, (int, float))
            or not math.isfinite(self.lr)
            or self.lr <= 0
        ):
            raise SettingsError(f"lr must be a positive number, got {self.lr!r}.")
        for name, allowed in (
            ("optimizer", OPTIMIZERS),
            ("init", INITS),
            ("precision", PRECISIONS),
            ("pooling", ("max", "avg")),
        ):
            if getattr(self, name) not in allowed:
                raise SettingsError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}.")
        content_layers = (self.content_layers,) if isinstance(self.content_layers, str) else tuple(self.content_layers)
        if not content_layers and self.content_weight > 0:
            raise SettingsError("content_layers is empty but content_weight > 0; name at least one layer.")
        style_layers = self.style_layers
        if not isinstance(style_layers, dict):  # a list of names: equal weights
            style_layers = {name: 1.0 / len(style_layers) for name in style_layers}
        if not style_layers and self.style_weight > 0:
            raise SettingsError("style_layers is empty but style_weight > 0; name at least one layer.")
        for name, weight in style_layers.items():
            _check_weight(f"Style layer weight for {name}", weight)
        return replace(self, content_layers=content_layers, style_layers=dict(style_layers))

    @property
    def learning_rate(self) -> float:
        """``lr``, or the optimiser's default."""
        return self.lr if self.lr is not None else (1.0 if self.optimizer == "lbfgs" else 0.02)


def _check_weight(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise SettingsError(f"{name} must be a finite number ≥ 0, got {value!r}.")
