"""Loading, converting, saving and showing images.

Convention used everywhere in the package: an image is a float32 tensor of
shape ``[1, 3, H, W]`` (batch, RGB channels, height, width) with values in
``[0, 1]``. Normalisation for VGG is *not* done here: the feature extractor
(:mod:`nst_helpers.vgg`) owns it, so callers never have to remember which
mean/std goes with which weights.
"""

from __future__ import annotations

import http.client
import io
import os
import re
import socket
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import IO, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageLoadError, ImageSaveError

__all__ = [
    "ImageSource",
    "load_image",
    "fetch_url",
    "pil_to_tensor",
    "resize_image",
    "to_pil",
    "save_image",
    "show_images",
]

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, Image.Image, IO[bytes], torch.Tensor]

#: Largest download accepted by :func:`fetch_url` (bytes).
MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024
#: Seconds to wait for a server before giving up.
URL_TIMEOUT_S = 20.0


def _looks_like_text(head: bytes) -> bool:
    start = head.lstrip()[:64].lower()
    return start.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"{", b"<"))


def _is_plain_text(head: bytes) -> bool:
    """True for printable UTF-8 (a note or a log saved with an image's name); image headers never are."""
    text = head.decode("utf-8", errors="replace").rstrip("\ufffd")  # the cut may split the last character
    return bool(text) and all(char.isprintable() or char.isspace() for char in text)


def _format_bytes(count: int) -> str:
    if count < 1000:
        return f"{count} bytes"
    return f"{count / 1e3:.3g} kB" if count < 1e6 else f"{count / 1e6:.3g} MB"


def _timeout_message(url: str, timeout: float) -> str:
    return (f"Timed out after {timeout:g} s waiting for {url}; try again, or download the image "
            "yourself and pass its path.")


def _http_advice(code: int) -> str:
    if code in (401, 403):  # many sites refuse programs (hotlink protection) but serve browsers
        return ("the site does not let programs download it: open the address in your browser, save the "
                "image, and pass its path.")
    if code == 429 or code >= 500:
        return "the server is busy or has a problem: try again later, or download the image yourself and pass its path."
    return "check the address, or download the image yourself and pass its path."


def fetch_url(url: str, timeout: float = URL_TIMEOUT_S, max_bytes: int = MAX_DOWNLOAD_BYTES) -> bytes:
    """Download ``url`` and return its bytes, with a bounded time and size.

    ``timeout`` bounds the whole download (not just each network read, so a
    server trickling bytes cannot stall a notebook); at most ``max_bytes``
    are read. Raises :class:`ImageLoadError` with a message saying what went
    wrong (timeout, HTTP status, too large, an HTML page instead of an image).
    """
    request = urllib.request.Request(url, headers={"User-Agent": "nst-helpers (image loader)"})
    too_large = (f"{url} is larger than the {_format_bytes(max_bytes)} limit; download it yourself, "
                 "shrink it, and pass the local path.")
    deadline = time.monotonic() + timeout
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            content_type = (response.headers.get("Content-Type") or "").lower()
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise ImageLoadError(
                    f"{url} is {_format_bytes(int(length))}, more than the {_format_bytes(max_bytes)} limit; "
                    "download it yourself, shrink it, and pass the local path."
                )
            chunks, received = [], 0
            while received <= max_bytes:
                if time.monotonic() > deadline:
                    raise ImageLoadError(_timeout_message(url, timeout))
                chunk = response.read1(min(64 * 1024, max_bytes + 1 - received))
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
            data = b"".join(chunks)
            if length is not None and length.isdigit() and len(data) < int(length):
                raise ImageLoadError(
                    f"The download of {url} stopped after {_format_bytes(len(data))} of "
                    f"{_format_bytes(int(length))} (the connection was closed); try again, or download the image "
                    "yourself and pass its path."
                )
    except ImageLoadError:
        raise
    except urllib.error.HTTPError as exc:
        raise ImageLoadError(f"The server answered HTTP {exc.code} ({exc.reason}) for {url}; "
                             f"{_http_advice(exc.code)}") from None
    except (socket.timeout, TimeoutError):
        raise ImageLoadError(_timeout_message(url, timeout)) from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, (socket.timeout, TimeoutError)):  # a timeout while connecting
            raise ImageLoadError(_timeout_message(url, timeout)) from None
        raise ImageLoadError(
            f"Could not download {url} ({reason or type(exc).__name__}). Are you online? Otherwise download "
            "the image yourself and pass its path."
        ) from None
    if len(data) > max_bytes:
        raise ImageLoadError(too_large)
    if "text/html" in content_type or (content_type.startswith("text/") and _looks_like_text(data[:256])):
        raise ImageLoadError(
            f"{url} returned a web page ({content_type or 'text'}), not an image. Use the image's own "
            "address (right-click the picture, 'Copy image address')."
        )
    return data


def _read_source(source: ImageSource) -> tuple[Image.Image, str]:
    """Open ``source`` with PIL (lazily) and return it with a short description."""
    if isinstance(source, Image.Image):
        return source, "the PIL image"
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "the given bytes"
    elif hasattr(source, "read"):
        data, name = source.read(), getattr(source, "name", "the given file object")
    elif isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if isinstance(text, str) and text.startswith(("http://", "https://")):
            data, name = fetch_url(text), text
        else:
            path = Path(text).expanduser()
            if not path.exists():
                raise ImageLoadError(
                    f"No such file: {text} (current folder: {Path.cwd()}). Check the path, or use a "
                    "sample image: nst_helpers.list_samples()."
                )
            if path.is_dir():
                raise ImageLoadError(f"{text} is a folder; give the path of an image file inside it.")
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise ImageLoadError(f"Could not read {text}: {exc.strerror or exc}.") from None
            name = text
    else:
        raise ImageLoadError(
            f"Cannot load an image from a {type(source).__name__}; give a file path, a URL, bytes, "
            "a PIL image or a [1, 3, H, W] tensor."
        )
    if not data:
        raise ImageLoadError(f"{name} is empty (0 bytes); re-download or re-export the image.")
    try:
        with warnings.catch_warnings():  # replaced by the clearer warning of _warn_if_huge
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(_bomb_message(name, exc)) from None
    except UnidentifiedImageError:
        if _looks_like_text(data[:256]) or _is_plain_text(data[:256]):
            raise ImageLoadError(
                f"{name} is a text or HTML file, not an image (it starts with {data[:15]!r}). "
                "If you saved a web page, save the picture itself instead."
            ) from None
        raise ImageLoadError(
            f"{name} is not an image format Pillow can read; convert it to PNG or JPEG."
        ) from None
    except Exception as exc:  # noqa: BLE001 - Pillow's parsers raise many types on malformed files
        raise ImageLoadError(_corrupt_message(name, exc)) from None
    _warn_if_huge(image, name)
    return image, name


def _corrupt_message(name: str, exc: Exception) -> str:
    if isinstance(exc, MemoryError):
        return f"Ran out of memory decoding {name}; shrink the image (or free memory) and try again."
    return (
        f"{name} could not be decoded ({type(exc).__name__}: {exc}); the file is probably truncated or "
        "corrupt. Re-download it or re-save it as PNG/JPEG."
    )


def _megapixels(pixels: float) -> str:
    return f"{pixels / 1e6:.3g} megapixels" if pixels < 1e9 else f"{pixels / 1e6:,.0f} megapixels"


def _bomb_message(name: str, exc: Exception) -> str:
    limit = Image.MAX_IMAGE_PIXELS or 0
    found = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow's message holds the pixel count
    size = f"{_megapixels(int(found.group(1)))}, more than" if found else "more than"
    return (
        f"{name} is {size} twice Pillow's safety limit of {_megapixels(limit)} (PIL.Image.MAX_IMAGE_PIXELS), "
        "so it was not decoded: files this large can be 'decompression bombs' that fill the memory. "
        "If you trust the file, shrink it first with an image editor, or raise the limit before loading: "
        "PIL.Image.MAX_IMAGE_PIXELS = None."
    )


def _warn_if_huge(image: Image.Image, name: str) -> None:
    """Pillow only warns between 1x and 2x its pixel limit; say what that means and that we go on."""
    limit, pixels = Image.MAX_IMAGE_PIXELS, image.size[0] * image.size[1]
    if limit and pixels > limit:
        warnings.warn(
            f"{name} is {image.size[0]}x{image.size[1]} px ({_megapixels(pixels)}), above Pillow's "
            f"decompression-bomb limit of {_megapixels(limit)}. Loading it anyway (it is below twice the "
            "limit, where Pillow refuses) and resizing it to max_size; if you did not expect an image this "
            "large, check where the file came from, or shrink it first to save memory.",
            stacklevel=4,  # the caller of load_image
        )


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


def available_memory() -> int | None:
    """Bytes of RAM available now (Linux's MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _binary_size(count: int) -> str:
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"


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
        reason = (f"more than twice Pillow's safety limit of {_megapixels(limit)} "
                  "(PIL.Image.MAX_IMAGE_PIXELS, which also bounds enlargements here)")
    elif available is not None and needed > available:
        reason = (f"which needs about {_binary_size(needed)} of memory for the image alone, but only "
                  f"{_binary_size(available)} is free")
    else:
        return
    raise ImageLoadError(
        f"Enlarging a {height}x{width} px image to {target[0]}x{target[1]} px gives {_megapixels(pixels)}, "
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

    image, name = _read_source(source)
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
        except Exception as exc:  # noqa: BLE001 - a broken EXIF block should not lose the picture
            warnings.warn(f"{name} has unreadable EXIF data ({type(exc).__name__}); its orientation tag was "
                          "ignored, so a phone photo may come out rotated.", stacklevel=2)
        if image.size != decoded:  # rotated by 90 degrees
            width, height = height, width
        tensor = pil_to_tensor(image)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(_bomb_message(name, exc)) from None
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise many types on malformed files
        raise ImageLoadError(_corrupt_message(name, exc)) from None
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
        raise ImageSaveError(
            f"Cannot tell the image format from {str(path)!r}; end the file name with .png or .jpg."
        )
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
