"""Where the VGG weights come from, checked before use: :func:`load_vgg`.

Weights (``weights=`` or the ``NST_WEIGHTS`` environment variable):

* ``"imagenet"`` (default): torchvision's official ImageNet weights, through
  torchvision's own API and cache (``torch.hub.get_dir()/checkpoints``);
* a path to a state dict in torchvision's key layout (``features.0.weight``
  …, or without the ``features.`` prefix), float16 accepted, loaded with
  ``weights_only=True`` (a file that would run code on load is refused);
* ``"random"``: seeded random initialisation, for offline smoke tests only.

``NST_VGG`` (``vgg19`` or ``vgg16``) picks the architecture (default: vgg19,
or whatever a state dict's keys say) and ``NST_INPUT_NORM`` (``torchvision``
or ``caffe``) the normalisation (default: torchvision, or caffe when a local
file's name contains "caffe"). A file that is empty, an HTML error page, not
a state dict, for another architecture or holding NaNs raises
:class:`~nst_helpers.errors.WeightsError` saying which and what to do.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path

import torch
from torch import nn

from .errors import SettingsError, WeightsError
from .vgg import ARCH_CONFIGS, ARCHS, INPUT_NORMS, VGGFeatures, build_features

__all__ = ["load_vgg"]


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
        raise WeightsError(f"Weights path {path} is a folder; give the .pth file inside it (NST_WEIGHTS or weights=).")
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
            raise WeightsError(
                f"{path} is not a PyTorch weights file, or it is corrupt (not a readable pickle). {resave}"
            ) from None
        raise WeightsError(
            f"{path} holds pickled Python objects other than tensors (it would call {unsafe.group(1)} on load), "
            f"which may run code, so it was refused (torch.load(weights_only=True)). {resave}"
        ) from None
    except Exception as exc:  # zip, storage and version errors of torch.load
        detail = str(exc).strip().splitlines()[0].split(". ")[0] if str(exc).strip() else ""
        raise WeightsError(
            f"{path} is not a PyTorch weights file, or it is truncated or corrupt ({type(exc).__name__}: "
            f"{detail[:160]}). {resave}"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        found = f"a dict with keys {list(state)[:5]}" if isinstance(state, dict) else f"a {type(state).__name__}"
        raise WeightsError(
            f"{path} does not contain a state dict (a dict of tensors), but {found}; save one with "
            "torch.save(model.state_dict(), path)."
        )
    return state


def _features_state(state: dict) -> dict:
    """Keep the ``features.*`` entries, keyed by module index (``"0.weight"``)."""
    keys = list(state)
    if any(key.startswith("features.") for key in keys):
        return {key[len("features.") :]: value for key, value in state.items() if key.startswith("features.")}
    return {key: value for key, value in state.items() if not key.startswith("classifier.")}


def _infer_arch(features_state: dict, source: str) -> str:
    convs = sum(1 for key in features_state if key.endswith(".weight"))
    for arch in ARCHS:
        if convs == sum(1 for entry in ARCH_CONFIGS[arch] if entry != "M"):
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
            raise WeightsError(
                f"{source}: features.{key} contains NaN or infinite values; the file is corrupt. "
                "Re-download it or re-save it from a working model."
            )
    features.load_state_dict(state)  # copies, casting float16 to float32


def _random_features(arch: str, seed: int = 0) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        features = build_features(arch)
        for module in features:
            if isinstance(module, nn.Conv2d):  # torchvision's VGG initialisation
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
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
        features = build_features(arch)
        _load_into(features, _features_state(_imagenet_state_dict(arch)), f"torchvision {arch} weights", arch)
        norm_default, source = "torchvision", "imagenet"
    elif weights == "random":
        arch = _choose(env_arch, "NST_VGG", "vgg19", ARCHS)
        hint = (
            "Unset NST_WEIGHTS for the ImageNet weights."
            if from_environment
            else "Leave out weights='random' for the ImageNet weights."
        )
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
        features = build_features(arch)
        _load_into(features, state, str(path), arch)
        norm_default, source = ("caffe" if "caffe" in path.name.lower() else "torchvision"), path.name

    norm = _choose(input_norm, "NST_INPUT_NORM", norm_default, INPUT_NORMS)
    model = VGGFeatures(features, input_norm=norm, pooling=pooling, arch=arch, weights_source=source)
    model = model.to(device) if device is not None else model
    if cache:
        _CACHE[key] = model
    return model
