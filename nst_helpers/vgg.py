"""VGG feature extractor with the paper's layer names.

:class:`VGGFeatures` wraps the convolutional part of VGG16 or VGG19 and
returns a dict ``layer name → feature tensor`` for the layers you ask for,
running the network only as deep as the deepest of them.

* Layer names follow the paper (``conv1_1``, ``relu1_1``, ``pool1``, …,
  ``conv5_4``). They are derived by walking the module list: the block
  number goes up after each pooling layer, so VGG16 and VGG19 both work.
* Every ReLU is rebuilt with ``inplace=False``. With torchvision's in-place
  ReLUs a stored ``conv4_2`` output is overwritten by the following ReLU, so
  code that believes it uses "conv4_2" actually uses "relu4_2".
* The extractor owns its input normalisation: callers always pass RGB in
  [0, 1]. ``input_norm="torchvision"`` subtracts the ImageNet mean and
  divides by the std; ``input_norm="caffe"`` converts to BGR in 0..255 and
  subtracts the Caffe mean (103.939, 116.779, 123.68), as the original Oxford
  weights expect.

Where the weights come from (torchvision's ImageNet weights, a local file,
seeded random) is the concern of :mod:`nst_helpers.weights`, whose
:func:`~nst_helpers.weights.load_vgg` builds this extractor.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from .errors import SettingsError

__all__ = [
    "VGGFeatures",
    "build_features",
    "layer_names",
    "layer_table",
    "print_layer_map",
    "INPUT_NORMS",
    "ARCHS",
    "ARCH_CONFIGS",
]

ARCHS = ("vgg19", "vgg16")
INPUT_NORMS = ("torchvision", "caffe")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
#: torchvision's layer configurations ("D" = VGG16, "E" = VGG19): output channels of each 3x3
#: convolution (each followed by a ReLU), "M" for a 2x2 max-pool.
ARCH_CONFIGS: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def build_features(arch: str) -> nn.Sequential:
    """An untrained ``features`` Sequential in torchvision's ``vgg*().features`` layout.

    Same module indices and state-dict keys (``0.weight`` …) as torchvision,
    without the classifier; the ReLUs are torchvision's in-place ones until
    :class:`VGGFeatures` rebuilds them.
    """
    layers: list[nn.Module] = []
    channels = 3
    for entry in ARCH_CONFIGS[arch]:
        if isinstance(entry, int):
            layers += [nn.Conv2d(channels, entry, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = entry
        else:  # "M"
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def layer_names(features: Iterable[nn.Module]) -> list[str]:
    """Paper names for each module of a VGG ``features`` Sequential.

    ``conv{b}_{i}``, ``relu{b}_{i}`` and ``pool{b}``: the block ``b`` goes up
    after every pooling layer and ``i`` counts convolutions inside a block.
    """
    names, block, index = [], 1, 0
    for module in features:
        if isinstance(module, nn.Conv2d):
            index += 1
            names.append(f"conv{block}_{index}")
        elif isinstance(module, nn.ReLU):
            names.append(f"relu{block}_{index}")
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            names.append(f"pool{block}")
            block, index = block + 1, 0
        else:
            raise SettingsError(f"Unexpected module in a VGG features stack: {module!r}.")
    return names


class VGGFeatures(nn.Module):
    """Frozen, eval-mode VGG feature extractor returning ``{layer name: tensor}``.

    Args:
        features: a VGG ``features`` Sequential (torchvision layout).
        input_norm: ``"torchvision"`` or ``"caffe"`` (see the module docstring).
        pooling: ``"max"`` (as trained) or ``"avg"`` (the paper's suggestion:
            average pooling gives slightly smoother results).
        arch, weights_source: descriptions kept for display.
    """

    mean: torch.Tensor  #: the input normalisation's shift, [1, 3, 1, 1] (a buffer)
    scale: torch.Tensor  #: and its scale

    def __init__(
        self,
        features: nn.Sequential,
        input_norm: str = "torchvision",
        pooling: str = "max",
        arch: str = "vgg19",
        weights_source: str = "unknown",
    ) -> None:
        super().__init__()
        if input_norm not in INPUT_NORMS:
            raise SettingsError(f"input_norm must be one of {INPUT_NORMS}, got {input_norm!r}.")
        if pooling not in ("max", "avg"):
            raise SettingsError(f"pooling must be 'max' or 'avg', got {pooling!r}.")
        rebuilt: list[nn.Module] = []
        for module in features:
            if isinstance(module, nn.ReLU):
                module = nn.ReLU(inplace=False)  # a stored conv output must stay a conv output
            elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
                module = nn.AvgPool2d(2, 2) if pooling == "avg" else nn.MaxPool2d(2, 2)
            rebuilt.append(module)
        self.layers = nn.Sequential(*rebuilt)
        self.names = layer_names(self.layers)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.input_norm, self.pooling, self.arch, self.weights_source = input_norm, pooling, arch, weights_source
        if input_norm == "torchvision":
            mean, scale = torch.tensor(IMAGENET_MEAN), 1.0 / torch.tensor(IMAGENET_STD)
        else:
            mean, scale = torch.tensor(CAFFE_MEAN_BGR[::-1]) / 255.0, torch.full((3,), 255.0)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatures:
        """Stay in eval mode (there is nothing to train here)."""
        return super().train(False)

    def extra_repr(self) -> str:
        return f"arch={self.arch}, weights={self.weights_source}, input_norm={self.input_norm}, pooling={self.pooling}"

    def for_compute(self, dtype: torch.dtype = torch.float32, channels_last: bool = False) -> VGGFeatures:
        """This extractor, or a copy whose layers compute in ``dtype`` and/or channels-last (NHWC) layout.

        With ``dtype=torch.bfloat16`` the weights are cast once, here; under
        ``torch.autocast`` frozen weights would be cast again at every step.
        The input normalisation stays float32 (``mean`` and ``scale`` are not
        cast) and :meth:`forward` casts the normalised image to ``dtype``, so
        features come out in ``dtype``. The original is left unchanged.
        """
        if dtype == self.compute_dtype and not channels_last:
            return self
        clone = copy.deepcopy(self)
        clone.layers.to(dtype=dtype)
        clone.layers.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        return clone

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype of the layers' weights, which :meth:`forward` runs the network in."""
        return next(self.layers.parameters()).dtype

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] → the network's input convention.

        torchvision: ``(x - mean) / std`` per RGB channel. Caffe: ``255 * x``
        minus the Caffe mean, channels reordered to BGR.
        """
        normalized = (image - self.mean) * self.scale
        if self.input_norm == "caffe":
            normalized = normalized.flip(1)  # RGB -> BGR
        return normalized

    def check_layers(self, layers: Iterable[str]) -> list[str]:
        """Return ``layers`` as a list, or raise with the valid names and the closest match."""
        layers = [layers] if isinstance(layers, str) else list(layers)
        for name in layers:
            if name not in self.index:
                close = difflib.get_close_matches(str(name), self.names, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise SettingsError(
                    f"Unknown layer {name!r} for {self.arch}.{hint} Valid names: {', '.join(self.names)}."
                )
        return layers

    def min_input_size(self, layers: Iterable[str]) -> int:
        """Smallest height/width (px) that still gives a non-empty map at the deepest of ``layers``."""
        layers = self.check_layers(layers)
        if not layers:
            return 1
        last = max(self.index[name] for name in layers)
        pools = sum(1 for name in self.names[: last + 1] if name.startswith("pool"))
        return 2**pools

    def forward(self, image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Features of ``image`` (RGB, [0, 1], ``[B, 3, H, W]``) at ``layers``.

        The network runs only up to the deepest requested layer.
        """
        layers = self.check_layers(layers)
        if image.dim() != 4 or image.shape[1] != 3:
            raise SettingsError(f"Expected an image batch [B, 3, H, W], got shape {list(image.shape)}.")
        if not layers:
            return {}
        needed = self.min_input_size(layers)
        if min(image.shape[-2:]) < needed:
            deepest = max(layers, key=lambda name: self.index[name])
            raise SettingsError(
                f"The image is {image.shape[-2]}x{image.shape[-1]} px, but layer {deepest} "
                f"needs at least {needed} px on each side; use a larger size or crop a less thin image."
            )
        wanted = set(layers)
        last = max(self.index[name] for name in layers)
        outputs: dict[str, torch.Tensor] = {}
        x = self.normalize(image).to(self.compute_dtype)  # float32 unless made by for_compute(dtype)
        for i in range(last + 1):
            x = self.layers[i](x)
            if self.names[i] in wanted:
                outputs[self.names[i]] = x
        return outputs


def layer_table(model: VGGFeatures) -> list[dict]:
    """One row per module: index (torchvision's ``features`` index), name, channels, stride."""
    rows, channels, stride = [], 3, 1
    for index, (name, module) in enumerate(zip(model.names, model.layers)):
        if isinstance(module, nn.Conv2d):
            channels = module.out_channels
        elif name.startswith("pool"):
            stride *= 2
        rows.append(
            {"index": index, "name": name, "type": type(module).__name__, "channels": channels, "stride": stride}
        )
    return rows


def print_layer_map(model: VGGFeatures) -> None:
    """Print the layer map: torchvision index, paper name, output channels, spatial stride."""
    print(f"{model.arch} ({model.weights_source}, input_norm={model.input_norm}, pooling={model.pooling})")
    print(f"{'index':>5}  {'name':<8} {'module':<10} {'channels':>8}  {'stride':>6}")
    for row in layer_table(model):
        print(f"{row['index']:>5}  {row['name']:<8} {row['type']:<10} {row['channels']:>8}  {row['stride']:>6}")
