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

Weights (``weights=`` or the ``NST_WEIGHTS`` environment variable):

* ``"imagenet"`` (default): torchvision's official ImageNet weights, through
  torchvision's own API and cache (``torch.hub.get_dir()/checkpoints``);
* a path to a state dict in torchvision's key layout (``features.0.weight``
  …, or without the ``features.`` prefix), float16 accepted, loaded with
  ``weights_only=True``;
* ``"random"``: seeded random initialisation, for offline smoke tests only.

``NST_VGG`` (``vgg19`` or ``vgg16``) picks the architecture (default: vgg19,
or whatever a state dict's keys say) and ``NST_INPUT_NORM`` (``torchvision``
or ``caffe``) the normalisation (default: torchvision, or caffe when a local
file's name contains "caffe").
"""

from __future__ import annotations

import copy
import difflib
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch import nn

from .errors import SettingsError, WeightsError

__all__ = [
    "VGGFeatures",
    "load_vgg",
    "layer_names",
    "layer_table",
    "print_layer_map",
    "INPUT_NORMS",
    "ARCHS",
]

ARCHS = ("vgg19", "vgg16")
INPUT_NORMS = ("torchvision", "caffe")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# torchvision's layer configurations ("D" = VGG16, "E" = VGG19); "M" is a 2x2 max-pool.
_CONFIGS = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}
_CONV_COUNT = {"vgg16": 13, "vgg19": 16}


def _build_features(arch: str) -> nn.Sequential:
    """torchvision's ``vgg*().features`` layout (same module indices), without the classifier."""
    layers: list[nn.Module] = []
    channels = 3
    for entry in _CONFIGS[arch]:
        if entry == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, entry, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = entry
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

    def train(self, mode: bool = True) -> "VGGFeatures":  # noqa: D401 - always eval
        """Stay in eval mode (there is nothing to train here)."""
        return super().train(False)

    def extra_repr(self) -> str:
        return f"arch={self.arch}, weights={self.weights_source}, input_norm={self.input_norm}, pooling={self.pooling}"

    def for_compute(self, dtype: torch.dtype = torch.float32, channels_last: bool = False) -> "VGGFeatures":
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
        clone.layers.to(dtype=dtype, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
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
        return 2 ** pools

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
            raise SettingsError(
                f"The image is {image.shape[-2]}x{image.shape[-1]} px, but layer {max(layers, key=self.index.get)} "
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
        rows.append({"index": index, "name": name, "type": type(module).__name__, "channels": channels,
                     "stride": stride})
    return rows


def print_layer_map(model: VGGFeatures) -> None:
    """Print the layer map: torchvision index, paper name, output channels, spatial stride."""
    print(f"{model.arch} ({model.weights_source}, input_norm={model.input_norm}, pooling={model.pooling})")
    print(f"{'index':>5}  {'name':<8} {'module':<10} {'channels':>8}  {'stride':>6}")
    for row in layer_table(model):
        print(f"{row['index']:>5}  {row['name']:<8} {row['type']:<10} {row['channels']:>8}  {row['stride']:>6}")


# --------------------------------------------------------------------------- weights


def _download_help(arch: str, url: str) -> str:
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    return (
        f"Could not get the ImageNet {arch.upper()} weights from {url}. Fix one of: connect to the "
        f"internet and retry; or copy {Path(url).name} into {checkpoints}/; or set NST_WEIGHTS to a "
        f"local state-dict file (torchvision key layout), e.g. NST_WEIGHTS=../shared/weights/"
        f"vgg16_caffe_features_fp16.pth NST_VGG=vgg16 NST_INPUT_NORM=caffe; or NST_WEIGHTS=random "
        f"for a smoke test without real features."
    )


def _imagenet_state_dict(arch: str) -> dict:
    from torchvision.models import VGG16_Weights, VGG19_Weights

    enum = {"vgg16": VGG16_Weights, "vgg19": VGG19_Weights}[arch].IMAGENET1K_V1
    try:
        return enum.get_state_dict(progress=True, check_hash=True)
    except Exception as exc:  # URLError, hash mismatch, partial files...
        raise WeightsError(f"{_download_help(arch, enum.url)} (Cause: {type(exc).__name__}: {exc})") from None


def _read_state_dict(path: Path) -> dict:
    if path.is_dir():
        raise WeightsError(f"Weights path {path} is a folder; give the .pth file inside it "
                           "(NST_WEIGHTS or weights=).")
    if not path.is_file():
        raise WeightsError(
            f"Weights file {path} does not exist (set by NST_WEIGHTS or weights=); check the path, "
            "or use NST_WEIGHTS=imagenet to download torchvision's weights."
        )
    resave = "Re-download it, or re-save it from a trusted session with torch.save(model.state_dict(), path)."
    with open(path, "rb") as handle:
        head = handle.read(64)
    if not head:
        raise WeightsError(f"{path} is empty (0 bytes), probably an interrupted download. {resave}")
    if not head.startswith((b"PK", b"\x80")) and head.lstrip()[:1] in (b"<", b"{"):  # neither zip nor pickle
        raise WeightsError(
            f"{path} is a text or HTML file (it starts with {head[:15]!r}), not PyTorch weights: a download "
            f"that saved an error page? {resave}"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if unsafe is None:
            raise WeightsError(f"{path} is not a PyTorch weights file, or it is corrupt (not a readable "
                               f"pickle). {resave}") from None
        raise WeightsError(
            f"{path} holds pickled Python objects other than tensors (it would call {unsafe.group(1)} on load), "
            f"which may run code, so it was refused (torch.load(weights_only=True)). {resave}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - zip, storage and version errors of torch.load
        detail = str(exc).strip().splitlines()[0].split(". ")[0] if str(exc).strip() else ""
        raise WeightsError(
            f"{path} is not a PyTorch weights file, or it is truncated or corrupt ({type(exc).__name__}: "
            f"{detail[:160]}). {resave}"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        found = (f"a dict with keys {list(state)[:5]}" if isinstance(state, dict) else f"a {type(state).__name__}")
        raise WeightsError(
            f"{path} does not contain a state dict (a dict of tensors), but {found}; save one with "
            "torch.save(model.state_dict(), path)."
        )
    return state


def _features_state(state: dict) -> dict:
    """Keep the ``features.*`` entries, keyed by module index (``"0.weight"``)."""
    keys = list(state)
    if any(key.startswith("features.") for key in keys):
        return {key[len("features."):]: value for key, value in state.items() if key.startswith("features.")}
    return {key: value for key, value in state.items() if not key.startswith("classifier.")}


def _infer_arch(features_state: dict, source: str) -> str:
    convs = sum(1 for key in features_state if key.endswith(".weight"))
    for arch, count in _CONV_COUNT.items():
        if convs == count:
            return arch
    raise WeightsError(
        f"{source} has {convs} convolution weights; VGG16 has 13 and VGG19 16. Keys start with "
        f"{sorted(features_state)[:4]}; expected torchvision's layout (features.0.weight, ...)."
    )


def _load_into(features: nn.Sequential, state: dict, source: str, arch: str) -> None:
    expected = features.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        raise WeightsError(
            f"{source} does not fit {arch}: missing keys {missing[:6]}{' ...' if len(missing) > 6 else ''}, "
            f"unexpected keys {unexpected[:6]}{' ...' if len(unexpected) > 6 else ''}. Is it a {arch} state "
            "dict in torchvision's layout? Set NST_VGG to the right architecture."
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise WeightsError(
                f"{source}: features.{key} has shape {list(value.shape)}, but {arch} needs "
                f"{list(expected[key].shape)}. Set NST_VGG to the right architecture."
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise WeightsError(f"{source}: features.{key} contains NaN or infinite values; the file is corrupt. "
                               "Re-download it or re-save it from a working model.")
    features.load_state_dict(state)  # copies, casting float16 to float32


def _random_features(arch: str, seed: int = 0) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        features = _build_features(arch)
        for module in features:
            if isinstance(module, nn.Conv2d):  # torchvision's VGG initialisation
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
    return features


def _choose(value, variable: str, default, allowed=None):
    chosen = value if value is not None else (os.environ.get(variable) or None)
    chosen = default if chosen is None else chosen
    if allowed is not None and chosen not in allowed:
        raise SettingsError(f"{variable} / argument must be one of {allowed}, got {chosen!r}.")
    return chosen


_CACHE: dict[tuple, VGGFeatures] = {}


def load_vgg(
    arch: str | None = None,
    weights: str | os.PathLike | None = None,
    input_norm: str | None = None,
    pooling: str = "max",
    device: str | torch.device | None = "cpu",
    cache: bool = True,
) -> VGGFeatures:
    """Build a frozen :class:`VGGFeatures`.

    Arguments left as ``None`` come from ``NST_VGG``, ``NST_WEIGHTS`` and
    ``NST_INPUT_NORM`` (see the module docstring), so notebooks run
    unchanged offline. With ``cache=True`` the same settings return the same
    (frozen, shared) model instead of loading the weights again.
    """
    from_environment = weights is None and bool(os.environ.get("NST_WEIGHTS"))
    weights = str(_choose(None if weights is None else os.fspath(weights), "NST_WEIGHTS", "imagenet"))
    env_arch = arch if arch is not None else (os.environ.get("NST_VGG") or None)
    key = (env_arch, weights, input_norm, os.environ.get("NST_INPUT_NORM"), pooling, str(device))
    if cache and key in _CACHE:
        return _CACHE[key]

    if weights == "imagenet":
        arch = _choose(env_arch, "NST_VGG", "vgg19", ARCHS)
        features = _build_features(arch)
        _load_into(features, _features_state(_imagenet_state_dict(arch)), f"torchvision {arch} weights", arch)
        norm_default, source = "torchvision", "imagenet"
    elif weights == "random":
        arch = _choose(env_arch, "NST_VGG", "vgg19", ARCHS)
        hint = ("Unset NST_WEIGHTS for the ImageNet weights." if from_environment else
                "Leave out weights='random' for the ImageNet weights.")
        warnings.warn(
            f"Using randomly initialised {arch} weights (seed 0): fine for smoke tests, but the "
            f"stylisations will not look like the paper's. {hint}",
            stacklevel=2,
        )
        features, norm_default, source = _random_features(arch), "torchvision", "random"
    else:
        path = Path(weights).expanduser()
        state = _features_state(_read_state_dict(path))
        arch = _choose(env_arch, "NST_VGG", _infer_arch(state, str(path)), ARCHS)
        features = _build_features(arch)
        _load_into(features, state, str(path), arch)
        norm_default, source = ("caffe" if "caffe" in path.name.lower() else "torchvision"), path.name

    norm = _choose(input_norm, "NST_INPUT_NORM", norm_default, INPUT_NORMS)
    model = VGGFeatures(features, input_norm=norm, pooling=pooling, arch=arch, weights_source=source)
    model = model.to(device) if device is not None else model
    if cache:
        _CACHE[key] = model
    return model
