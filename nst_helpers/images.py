"""Images: load (paths, URLs, bytes, PIL, tensors), convert, resize, save and show them.

Convention used everywhere in the package: an image is a float32 tensor of
shape ``[1, 3, H, W]`` (batch, RGB channels, height, width) with values in
``[0, 1]``. Normalisation for VGG is *not* done here: the feature extractor
(:mod:`nst_helpers.vgg`) owns it, so callers never have to remember which
mean/std goes with which weights. Opening files (and their error messages) is
:mod:`nst_helpers.image_files`'s, downloads :mod:`nst_helpers.download`'s.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from .devices import available_memory, format_bytes
from .errors import ImageLoadError, ImageSaveError
from .image_files import ImageSource, bomb_message, corrupt_message, megapixels, open_image

__all__ = [
    "ImageSource",
    "load_image",
    "pil_to_tensor",
    "resize_image",
    "to_pil",
    "save_image",
    "show_images",
]


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    """Convert a PIL image in any mode to a float32 ``H x W x 3`` array in [0, 1].

    Transparent pixels are composited over white; 16-bit and 32-bit modes keep
    their full precision instead of being clipped at 255 (Pillow's
    ``convert('RGB')`` clips ``I;16`` images).
    """
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(image).astype(np.float32)
        peak = float(values.max()) if values.size else 0.0
        scale = 255.0 if peak <= 255 and mode == "I" else 65535.0 if peak <= 65535 else peak
        gray = np.clip(values / scale, 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        values = np.asarray(image).astype(np.float32)
        peak = float(np.nanmax(values)) if values.size else 0.0
        scale = 1.0 if peak <= 1.0 else 255.0 if peak <= 255 else peak
        gray = np.clip(np.nan_to_num(values / scale), 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=2)
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA")).astype(np.float32) / 255.0
        rgb, alpha = rgba[..., :3], rgba[..., 3:4]
        return rgb * alpha + (1.0 - alpha)  # over a white background
    if mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image).astype(np.float32) / 255.0


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL image (any mode) → float tensor ``[1, 3, H, W]`` in [0, 1], RGB."""
    array = _to_rgb_array(image)
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).unsqueeze(0).contiguous()


def _target_size(height: int, width: int, max_size: int | None, size) -> tuple[int, int]:
    if size is not None:
        if isinstance(size, int):
            size = (size, size)
        target = (int(size[0]), int(size[1]))
    elif max_size is not None:
        scale = max_size / max(height, width)
        target = (max(1, round(height * scale)), max(1, round(width * scale)))
    else:
        target = (height, width)
    if min(target) < 1:
        raise ImageLoadError(f"Image size must be at least 1 x 1 pixel, got {target[0]} x {target[1]}.")
    return target


def resize_image(image: torch.Tensor, max_size: int | None = None, size=None) -> torch.Tensor:
    """Resize a ``[B, 3, H, W]`` image with antialiasing.

    ``max_size`` scales the longest side to that many pixels, keeping the
    aspect ratio; ``size`` (an int for a square, or ``(height, width)``)
    resizes exactly and wins over ``max_size``. Values stay in [0, 1].
    """
    _check_size_arguments(max_size, size)
    height, width = image.shape[-2:]
    target = _target_size(height, width, max_size, size)
    if target == (height, width):
        return image
    _check_resize_fits(height, width, target)
    resized = F.interpolate(image, size=target, mode="bicubic", antialias=True, align_corners=False)
    # A 1x1 input has ambiguous strides and interpolate may answer channels-last; L-BFGS needs contiguous.
    return resized.clamp_(0.0, 1.0).contiguous()


def _check_resize_fits(height: int, width: int, target: tuple[int, int]) -> None:
    """Refuse to *enlarge* an image to a size that cannot be held, before allocating it.

    A typo such as ``size=40000`` would otherwise make a 14 GB tensor and get the process (or the
    Jupyter kernel, with its unsaved work) killed by the operating system. Shrinking is always fine.
    """
    pixels = target[0] * target[1]
    if pixels <= height * width:
        return
    needed = 2 * 3 * 4 * pixels  # the float32 RGB result plus the resampling's temporary copy
    limit, available = Image.MAX_IMAGE_PIXELS, available_memory()
    if limit and pixels > 2 * limit:
        reason = (
            f"more than twice Pillow's safety limit of {megapixels(limit)} "
            "(PIL.Image.MAX_IMAGE_PIXELS, which also bounds enlargements here)"
        )
    elif available is not None and needed > available:
        reason = (
            f"which needs about {format_bytes(needed)} of memory for the image alone, but only "
            f"{format_bytes(available)} is free"
        )
    else:
        return
    raise ImageLoadError(
        f"Enlarging a {height}x{width} px image to {target[0]}x{target[1]} px gives {megapixels(pixels)}, "
        f"{reason}; it was not enlarged. Use a smaller size (size / max_size; 512 to 1024 px is usual "
        "for style transfer)."
    )


def _check_size_arguments(max_size, size) -> None:
    if max_size is not None and (not isinstance(max_size, int) or max_size < 1):
        raise ImageLoadError(f"max_size must be a positive whole number of pixels, got {max_size!r}.")
    if size is not None:
        values = (size, size) if isinstance(size, int) else tuple(size)
        if len(values) != 2 or any(not isinstance(v, int) or v < 1 for v in values):
            raise ImageLoadError(f"size must be a positive int or (height, width), got {size!r}.")


def load_image(source: ImageSource, max_size: int | None = 512, size=None) -> torch.Tensor:
    """Load an image as a float tensor ``[1, 3, H, W]``, RGB, values in [0, 1].

    Args:
        source: a file path, an ``http(s)://`` URL (bounded time and size), raw
            bytes (e.g. from an upload widget), an open binary file, a
            ``PIL.Image`` or an image tensor ``[3, H, W]`` / ``[1, 3, H, W]``.
        max_size: longest side in pixels after resizing (aspect ratio kept);
            ``None`` keeps the original size.
        size: exact ``(height, width)`` (or an int for a square); wins over
            ``max_size``.

    EXIF orientation is applied (phone photos come out upright); every Pillow
    mode is converted to RGB (transparency over white, 16-bit precision
    kept); resizing is bicubic with antialiasing. Animated images use their
    first frame, with a warning. Problems raise :class:`ImageLoadError`
    with a message that says what to do.
    """
    _check_size_arguments(max_size, size)
    if isinstance(source, torch.Tensor):
        return resize_image(_tensor_image(source), max_size, size)

    image, name = open_image(source)
    try:
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            warnings.warn(f"{name} is animated ({frames} frames); using the first frame.", stacklevel=2)
            image.seek(0)
        width, height = image.size  # before draft(): the aspect ratio must come from the full image
        if max_size is not None and size is None and image.format == "JPEG":
            image.draft(None, (max_size, max_size))  # decode big JPEGs at a reduced scale: faster, less memory
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
        decoded = image.size
        try:
            image = ImageOps.exif_transpose(image) or image
        except Exception as exc:  # a broken EXIF block should not lose the picture
            warnings.warn(
                f"{name} has unreadable EXIF data ({type(exc).__name__}); its orientation tag was "
                "ignored, so a phone photo may come out rotated.",
                stacklevel=2,
            )
        if image.size != decoded:  # rotated by 90 degrees
            width, height = height, width
        tensor = pil_to_tensor(image)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(bomb_message(name, exc)) from None
    except Exception as exc:  # Pillow's decoders raise many types on malformed files
        raise ImageLoadError(corrupt_message(name, exc)) from None
    return resize_image(tensor, size=_target_size(height, width, max_size, size))


def _tensor_image(source: torch.Tensor) -> torch.Tensor:
    """Check an image tensor and return it as contiguous float32 ``[1, 3, H, W]`` in [0, 1] on the CPU.

    uint8 tensors (0..255, as ``torchvision.io.read_image`` returns) are divided by 255; other
    integer types are refused as ambiguous; NaN or infinite values are refused.
    """
    tensor = source.detach()
    if tensor.dim() == 3:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 4 or tensor.shape[:2] != (1, 3) or tensor.numel() == 0:
        raise ImageLoadError(
            f"An image tensor must be [3, H, W] or [1, 3, H, W] with H, W ≥ 1 (RGB), got {list(source.shape)}."
        )
    if tensor.dtype == torch.uint8:
        tensor = tensor.float() / 255.0
    elif tensor.dtype == torch.bool:
        tensor = tensor.float()
    elif not tensor.is_floating_point():
        raise ImageLoadError(
            f"An image tensor of dtype {tensor.dtype} is ambiguous; convert it to float in [0, 1] first, "
            "e.g. tensor.float() / 255 for 0..255 values."
        )
    tensor = tensor.float().cpu()
    if not bool(torch.isfinite(tensor).all()):
        raise ImageLoadError("The image tensor contains NaN or infinite values; check how it was made.")
    low, high = float(tensor.min()), float(tensor.max())
    if low < -0.1 or high > 1.1:
        warnings.warn(
            f"The image tensor's values range from {low:.3g} to {high:.3g}, outside [0, 1]; they were "
            "clamped. Images here are RGB in [0, 1]: divide 0..255 values by 255, and undo any mean/std "
            "normalisation.",
            stacklevel=3,
        )
    return tensor.clamp(0.0, 1.0).contiguous()


def _as_chw(image) -> torch.Tensor:
    if isinstance(image, Image.Image):
        return pil_to_tensor(image)[0]
    tensor = image.detach().float().cpu()
    if tensor.dim() == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"Expected a single image, got a batch of {tensor.shape[0]}.")
        tensor = tensor[0]
    if tensor.dim() != 3 or tensor.shape[0] != 3:
        raise ValueError(f"Expected an image tensor [1, 3, H, W] or [3, H, W], got {list(image.shape)}.")
    return tensor


def to_pil(image: torch.Tensor) -> Image.Image:
    """Tensor ``[1, 3, H, W]`` or ``[3, H, W]`` in [0, 1] → 8-bit RGB ``PIL.Image``.

    Values are clamped to [0, 1] and rounded (not truncated) to 0..255.
    """
    array = _as_chw(image).clamp(0.0, 1.0).mul(255.0).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(array, mode="RGB")


def save_image(image: torch.Tensor, path: str | os.PathLike) -> Path:
    """Save an image tensor to ``path`` (format from the suffix; folders are created).

    Raises :class:`ImageSaveError` when the path cannot be written; the
    tensor is untouched, so the image can be saved elsewhere.
    """
    target = Path(path).expanduser()
    if target.suffix.lower() not in Image.registered_extensions():
        raise ImageSaveError(f"Cannot tell the image format from {str(path)!r}; end the file name with .png or .jpg.")
    blocking_file = next((folder for folder in target.parents if folder.exists() and not folder.is_dir()), None)
    if blocking_file is not None:
        raise ImageSaveError(
            f"Could not write {target}: {blocking_file} is a file, not a folder. The image is still in memory; "
            "save it to a folder you can write to."
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        to_pil(image).save(target)
    except OSError as exc:
        raise ImageSaveError(
            f"Could not write {target}: {exc.strerror or exc}. The image is still in memory; "
            "save it to a folder you can write to."
        ) from None
    return target


def show_images(
    images: Sequence[torch.Tensor] | torch.Tensor,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    size: float = 4.0,
):
    """Show one or several images side by side (matplotlib) and return the figure."""
    import matplotlib.pyplot as plt

    if isinstance(images, (torch.Tensor, Image.Image)):
        images = [images]
    images = list(images)
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"Got {len(images)} images but {len(titles)} titles.")
    ncols = ncols or len(images)
    nrows = -(-len(images) // ncols)
    figure, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < len(images):
            axis.imshow(_as_chw(images[index]).clamp(0, 1).permute(1, 2, 0).numpy())
            if titles is not None:
                axis.set_title(titles[index])
    figure.tight_layout()
    return figure
