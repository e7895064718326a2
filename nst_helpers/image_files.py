"""Opening image files safely: any source (path, URL, bytes, open file, PIL image) → a PIL image.

Everything that can go wrong before a picture is decoded gets a one-line
message that says what to do: a missing file, a text or HTML page saved
with an image's name, a truncated or corrupt file, a decompression bomb.
:func:`nst_helpers.images.load_image` builds on :func:`open_image`.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path
from typing import IO

import torch
from PIL import Image, UnidentifiedImageError

from .download import fetch_url, looks_like_web_page
from .errors import ImageLoadError

__all__ = ["ImageSource", "open_image", "corrupt_message", "bomb_message", "megapixels"]

#: Anything :func:`~nst_helpers.images.load_image` accepts.
ImageSource = str | os.PathLike | bytes | bytearray | memoryview | Image.Image | IO[bytes] | torch.Tensor


def _is_plain_text(head: bytes) -> bool:
    """True for printable UTF-8 (a note or a log saved with an image's name); image headers never are."""
    text = head.decode("utf-8", errors="replace").rstrip("\ufffd")  # the cut may split the last character
    return bool(text) and all(char.isprintable() or char.isspace() for char in text)


def open_image(source: ImageSource) -> tuple[Image.Image, str]:
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
        raise ImageLoadError(bomb_message(name, exc)) from None
    except UnidentifiedImageError:
        if looks_like_web_page(data[:256]) or _is_plain_text(data[:256]):
            raise ImageLoadError(
                f"{name} is a text or HTML file, not an image (it starts with {data[:15]!r}). "
                "If you saved a web page, save the picture itself instead."
            ) from None
        raise ImageLoadError(f"{name} is not an image format Pillow can read; convert it to PNG or JPEG.") from None
    except Exception as exc:  # Pillow's parsers raise many types on malformed files
        raise ImageLoadError(corrupt_message(name, exc)) from None
    _warn_if_huge(image, name)
    return image, name


def corrupt_message(name: str, exc: Exception) -> str:
    if isinstance(exc, MemoryError):
        return f"Ran out of memory decoding {name}; shrink the image (or free memory) and try again."
    return (
        f"{name} could not be decoded ({type(exc).__name__}: {exc}); the file is probably truncated or "
        "corrupt. Re-download it or re-save it as PNG/JPEG."
    )


def megapixels(pixels: float) -> str:
    return f"{pixels / 1e6:.3g} megapixels" if pixels < 1e9 else f"{pixels / 1e6:,.0f} megapixels"


def bomb_message(name: str, exc: Exception) -> str:
    limit = Image.MAX_IMAGE_PIXELS or 0
    found = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow's message holds the pixel count
    size = f"{megapixels(int(found.group(1)))}, more than" if found else "more than"
    return (
        f"{name} is {size} twice Pillow's safety limit of {megapixels(limit)} (PIL.Image.MAX_IMAGE_PIXELS), "
        "so it was not decoded: files this large can be 'decompression bombs' that fill the memory. "
        "If you trust the file, shrink it first with an image editor, or raise the limit before loading: "
        "PIL.Image.MAX_IMAGE_PIXELS = None."
    )


def _warn_if_huge(image: Image.Image, name: str) -> None:
    """Pillow only warns between 1x and 2x its pixel limit; say what that means and that we go on."""
    limit, pixels = Image.MAX_IMAGE_PIXELS, image.size[0] * image.size[1]
    if limit and pixels > limit:
        warnings.warn(
            f"{name} is {image.size[0]}x{image.size[1]} px ({megapixels(pixels)}), above Pillow's "
            f"decompression-bomb limit of {megapixels(limit)}. Loading it anyway (it is below twice the "
            "limit, where Pillow refuses) and resizing it to max_size; if you did not expect an image this "
            "large, check where the file came from, or shrink it first to save memory.",
            stacklevel=4,  # the caller of load_image
        )
