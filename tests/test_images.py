"""Tests of nst_helpers/images.py: loading from every kind of source, modes, EXIF, resizing, saving, and
clear errors for bad files (empty, text, truncated, decompression bombs), with property and fuzz tests."""

from __future__ import annotations

import contextlib
import io
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from helpers import check_image_tensor, image_bytes
from nst_helpers import ImageLoadError, ImageSaveError, load_image, save_image, show_images, to_pil
from nst_helpers.images import resize_image


def _pixels(tensor: torch.Tensor) -> np.ndarray:
    """[1, 3, H, W] in [0, 1] → H x W x 3 in 0..255 (float), for comparing with PIL."""
    return tensor[0].permute(1, 2, 0).numpy() * 255.0


def test_path_bytes_pil_and_file_object_agree(tmp_path):
    array = (np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8)
    image = Image.fromarray(array)
    path = tmp_path / "a.png"
    image.save(path)
    expected = torch.from_numpy(array).permute(2, 0, 1).float().div(255).unsqueeze(0)
    for source in (path, str(path), path.read_bytes(), image, open(path, "rb")):
        tensor = load_image(source, max_size=None)
        assert tensor.shape == (1, 3, 20, 30) and tensor.dtype == torch.float32
        assert torch.allclose(tensor, expected, atol=1e-6)


def test_max_size_keeps_aspect_ratio_and_size_is_exact():
    image = Image.new("RGB", (400, 200), (10, 200, 30))
    assert load_image(image, max_size=100).shape == (1, 3, 50, 100)
    assert load_image(image, max_size=800).shape == (1, 3, 400, 800)  # small images are scaled up too
    assert load_image(image, size=(64, 32)).shape == (1, 3, 64, 32)
    assert load_image(image, size=48).shape == (1, 3, 48, 48)
    assert torch.allclose(load_image(image, max_size=100)[0, :, 10, 10], torch.tensor([10, 200, 30]) / 255, atol=1e-3)


def test_resize_uses_antialiasing():
    # A 1-px checkerboard averaged down should give grey, not aliased black/white.
    board = ((torch.arange(64).view(1, -1) + torch.arange(64).view(-1, 1)) % 2).float().expand(1, 3, 64, 64)
    small = resize_image(board.contiguous(), max_size=16)
    assert small.shape == (1, 3, 16, 16)
    assert torch.allclose(small, torch.full_like(small, 0.5), atol=0.05)


def test_rgba_is_composited_over_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((0, 0), (255, 0, 0, 255))  # one opaque red pixel
    tensor = load_image(rgba, max_size=None)
    assert torch.allclose(tensor[0, :, 1, 1], torch.ones(3))
    assert torch.allclose(tensor[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))


def test_greyscale_palette_cmyk_and_16bit():
    gray = Image.new("L", (3, 2), 128)
    assert torch.allclose(load_image(gray, max_size=None), torch.full((1, 3, 2, 3), 128 / 255))
    palette = Image.new("RGB", (3, 2), (0, 0, 255)).convert("P")
    assert torch.allclose(load_image(palette, max_size=None)[0, :, 0, 0], torch.tensor([0.0, 0.0, 1.0]), atol=0.01)
    cmyk = Image.new("CMYK", (3, 2), (0, 255, 255, 0))  # pure red in CMYK
    assert torch.allclose(load_image(cmyk, max_size=None)[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]), atol=0.01)
    deep = Image.fromarray(np.full((2, 3), 1000, dtype=np.uint16))  # 16-bit: keep precision, no clipping at 255
    assert deep.mode.startswith("I;16")
    assert torch.allclose(
        load_image(image_bytes(deep), max_size=None), torch.full((1, 3, 2, 3), 1000 / 65535), atol=1e-6
    )


def test_exif_rotation_is_applied():
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 20))  # white band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    tensor = load_image(image_bytes(image, "JPEG", exif=exif.tobytes(), quality=95), max_size=None)
    assert tensor.shape == (1, 3, 40, 20)  # upright: portrait
    assert tensor[0, :, :10, :].mean() > 0.9  # the white band is now on top
    assert tensor[0, :, -10:, :].mean() < 0.1


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "empty"),
        (b"<!DOCTYPE html><html><body>not an image</body></html>", "HTML"),
        (b"\x00\x01\x02 random binary", "not an image format"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, content, match):
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=match):
        load_image(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageLoadError, match="No such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageLoadError, match="is a folder"):
        load_image(tmp_path)


def test_truncated_jpeg(tmp_path):
    data = image_bytes(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="truncated or corrupt"):
        load_image(path)


def test_round_trip_save_and_load(tmp_path):
    image = torch.rand(1, 3, 17, 23)
    written = save_image(image, tmp_path / "deep" / "folder" / "x.png")
    again = load_image(written, max_size=None)
    assert torch.allclose(again, image, atol=0.5 / 255 + 1e-6)
    assert to_pil(image[0]).size == (23, 17)


def test_save_errors_keep_the_image(tmp_path):
    image = torch.rand(1, 3, 8, 8)
    with pytest.raises(ImageSaveError, match=r"\.png or \.jpg"):
        save_image(image, tmp_path / "x.unknownext")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ImageSaveError, match="still in memory"):
        save_image(image, blocker / "x.png")
    assert image.shape == (1, 3, 8, 8)


def test_bad_size_arguments():
    with pytest.raises(ImageLoadError, match="max_size"):
        load_image(Image.new("RGB", (4, 4)), max_size=0)
    with pytest.raises(ImageLoadError, match="size"):
        load_image(Image.new("RGB", (4, 4)), size=(0, 3))


# --------------------------------------------------------------------------- bad files, sizes and tensors


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "is empty"),
        (b"<!DOCTYPE html><html><head><title>404</title></head></html>", "text or HTML file"),
        (b"Just some notes, saved with the wrong extension.\n", "text or HTML file"),
        ("Notizen über Bilder: äöü\n".encode(), "text or HTML file"),
        (b"\x00\x13\x37\xfe binary, but no image format", "not an image format Pillow can read; convert it"),
        (b'{"error": "not found"}', "text or HTML file"),
    ],
)
def test_empty_text_and_html_files_named_jpg(tmp_path, content, match):
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=match):
        load_image(path)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_jpeg_at_any_point(tmp_path, fraction):
    array = (np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8)
    data = image_bytes(Image.fromarray(array), "JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ImageLoadError, match="truncated or corrupt.*Re-download"):
        load_image(path)


def test_enlarging_past_the_pixel_limit_is_refused_before_allocating(monkeypatch):
    """A typo like size=40000 made a 14 GB tensor and got the process killed; now it is a clear error."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)
    dot = Image.new("RGB", (2, 1), (1, 2, 3))
    match = r"Enlarging a 1x2 px image to 100x200 px gives 0.02 megapixels, more than twice .* Use a smaller size"
    with pytest.raises(ImageLoadError, match=match):
        load_image(dot, max_size=200)
    check_image_tensor(load_image(dot, max_size=140), 70, 140)  # 9,800 px: within twice the limit
    check_image_tensor(load_image(Image.new("RGB", (400, 200)), max_size=150), 75, 150)  # shrinking: always fine


def test_enlarging_past_the_free_memory_is_refused(monkeypatch):
    import nst_helpers.images as images_module

    monkeypatch.setattr(images_module, "available_memory", lambda: 2**20)  # 1 MiB free
    with pytest.raises(ImageLoadError, match=r"to 200x400 px .*about 1.8 MiB of memory .* only 1.0 MiB is free"):
        load_image(Image.new("RGB", (2, 1)), max_size=400)
    check_image_tensor(load_image(Image.new("RGB", (2, 1)), max_size=100), 50, 100)  # 0.1 MiB: fits


def test_image_tensor_in_0_255_range_is_clamped_with_a_warning():
    with pytest.warns(UserWarning, match=r"range from 0 to 255, outside \[0, 1\].*divide 0..255 values by 255"):
        tensor = load_image(torch.linspace(0, 255, 48).view(1, 3, 4, 4), max_size=None)
    check_image_tensor(tensor, 4, 4)


# --------------------------------------------------------------------------- decompression bombs


@pytest.fixture
def png_200x100(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (200, 100), (0, 128, 255)).save(path)
    return path


def test_decompression_bomb_over_twice_the_limit_is_refused_with_size_and_fix(png_200x100, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)  # the PNG has 20,000 pixels: > 2x the limit
    with pytest.raises(ImageLoadError) as info:
        load_image(png_200x100)
    message = str(info.value)
    assert "0.02 megapixels" in message and "0.005 megapixels" in message  # how large, and the limit
    assert "PIL.Image.MAX_IMAGE_PIXELS = None" in message and "shrink it" in message  # what to do


def test_decompression_bomb_between_one_and_two_times_the_limit_loads_with_a_clear_warning(png_200x100, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 15_000)  # 20,000 pixels: between 1x and 2x
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tensor = load_image(png_200x100, max_size=64)
    check_image_tensor(tensor, 32, 64)
    ours = [w for w in caught if "200x100 px (0.02 megapixels)" in str(w.message)]
    assert len(ours) == 1 and "Loading it anyway" in str(ours[0].message)
    assert ours[0].filename == __file__  # points at the caller's line, not into the package
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]  # no raw PIL text


# --------------------------------------------------------------------------- modes, EXIF, animation


def test_greyscale_and_bilevel_images_become_equal_rgb_channels():
    grey = np.array([[0, 64], [128, 255]], dtype=np.uint8)
    tensor = load_image(image_bytes(Image.fromarray(grey)), max_size=None)
    assert torch.allclose(tensor, torch.from_numpy(grey).float().div(255).expand(1, 3, 2, 2))
    bilevel = Image.fromarray(np.array([[True, False], [False, True]]))
    assert bilevel.mode == "1"
    tensor = load_image(image_bytes(bilevel), max_size=None)
    assert torch.equal(tensor[0, 0], torch.tensor([[1.0, 0.0], [0.0, 1.0]])) and torch.equal(tensor[0, 0], tensor[0, 2])


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_partial_transparency_is_composited_over_white(mode):
    if mode == "RGBA":
        image = Image.new("RGBA", (2, 1), (255, 0, 0, 255))
        image.putpixel((1, 0), (255, 0, 0, 64))  # mostly transparent red
        colour = np.array([255, 0, 0])
    else:
        image = Image.new("LA", (2, 1), (40, 255))
        image.putpixel((1, 0), (40, 64))
        colour = np.array([40, 40, 40])
    pixels = _pixels(load_image(image_bytes(image), max_size=None))
    alpha = 64 / 255
    assert np.allclose(pixels[0, 0], colour, atol=0.01)
    assert np.allclose(pixels[0, 1], colour * alpha + 255 * (1 - alpha), atol=0.01)


@pytest.mark.parametrize("transparency", ["index", "per_entry_alpha"])
def test_palette_image_with_transparency(transparency):
    image = Image.new("P", (3, 1), 0)
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    image.putpixel((1, 0), 1)
    image.putpixel((2, 0), 2)
    if transparency == "index":  # tRNS with one fully transparent index
        data, expected = image_bytes(image, transparency=1), [[255, 0, 0], [255, 255, 255], [0, 0, 255]]
    else:  # tRNS with an alpha per palette entry: red opaque, green transparent, blue half
        data = image_bytes(image, transparency=bytes([255, 0, 128]))
        half = 128 / 255
        expected = [[255, 0, 0], [255, 255, 255], [255 * (1 - half), 255 * (1 - half), 255]]
    assert Image.open(io.BytesIO(data)).mode == "P"
    assert np.allclose(_pixels(load_image(data, max_size=None))[0], expected, atol=0.01)


def test_palette_without_transparency():
    image = Image.new("P", (2, 1), 0)
    image.putpalette([10, 20, 30, 200, 100, 0] + [0] * 762)
    image.putpixel((1, 0), 1)
    assert np.allclose(
        _pixels(load_image(image_bytes(image), max_size=None))[0], [[10, 20, 30], [200, 100, 0]], atol=0.01
    )


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_cmyk_is_converted_to_rgb(fmt):
    image = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # red
    image.paste((255, 0, 255, 0), (4, 0, 8, 8))  # green on the right half
    pixels = _pixels(load_image(image_bytes(image, fmt, **({"quality": 100} if fmt == "JPEG" else {})), max_size=None))
    assert Image.open(io.BytesIO(image_bytes(image, fmt))).mode == "CMYK"
    assert np.allclose(pixels[4, 1], [255, 0, 0], atol=6) and np.allclose(pixels[4, 6], [0, 255, 0], atol=6)


def _png_rgb16(array: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG written by hand (Pillow cannot write one)."""
    height, width, _ = array.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in array)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_sixteen_bit_images_keep_their_values():
    grey = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)  # I;16: full precision
    tensor = load_image(image_bytes(Image.fromarray(grey)), max_size=None)
    assert torch.allclose(tensor[0, 1], torch.from_numpy(grey / 65535).float(), atol=1e-6)
    colour = np.array([[[65535, 0, 32768], [1000, 60000, 30000]]], dtype=np.uint16)  # RGB 48-bit
    tensor = load_image(_png_rgb16(colour), max_size=None)  # Pillow reads it as 8-bit RGB: within 1/255
    assert torch.allclose(tensor[0].permute(1, 2, 0), torch.from_numpy(colour / 65535).float(), atol=1 / 255 + 1e-6)


def test_32_bit_integer_and_float_tiffs():
    integers = np.array([[0, 255], [128, 64]], dtype=np.int32)  # values up to 255: read as 8-bit levels
    tensor = load_image(image_bytes(Image.fromarray(integers), "TIFF"), max_size=None)
    assert torch.allclose(tensor[0, 0], torch.from_numpy(integers / 255).float(), atol=1e-6)
    floats = np.array([[0.0, 0.25], [0.5, 1.0]], dtype=np.float32)  # values in [0, 1]: used as they are
    tensor = load_image(image_bytes(Image.fromarray(floats), "TIFF"), max_size=None)
    assert torch.allclose(tensor[0, 2], torch.from_numpy(floats), atol=1e-6)


# Orientation tag → what a viewer does to display the stored pixels, written out by hand with numpy.
_EXIF_BY_HAND = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirror left-right
    3: lambda a: a[::-1, ::-1],  # rotate 180
    4: lambda a: a[::-1, :],  # mirror top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # transpose
    6: lambda a: np.rot90(a, k=-1),  # rotate 90 clockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # transverse
    8: lambda a: np.rot90(a, k=1),  # rotate 90 counter-clockwise
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_eight_exif_orientations(orientation):
    stored = (np.arange(2 * 3 * 3).reshape(2, 3, 3) * 14).astype(np.uint8)  # 3 wide, 2 high, every pixel distinct
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = image_bytes(Image.fromarray(stored), "PNG", exif=exif.tobytes())  # lossless: exact comparison
    loaded = _pixels(load_image(data, max_size=None))
    reference = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    assert np.allclose(loaded, reference, atol=1e-3)
    assert np.allclose(loaded, _EXIF_BY_HAND[orientation](stored), atol=1e-3)
    if orientation == 6:  # by hand: the stored bottom-left pixel ends up top-left
        assert np.allclose(loaded[0, 0], stored[1, 0], atol=1e-3) and loaded.shape[:2] == (3, 2)
    # The max_size resize uses the displayed (rotated) aspect ratio.
    expected = (1, 3, 40, 60) if orientation <= 4 else (1, 3, 60, 40)
    assert load_image(data, max_size=60).shape == expected


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animated_image_uses_first_frame_with_a_warning(fmt):
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        fmt,
        save_all=True,
        append_images=frames[1:],
        duration=100,
        **({"lossless": True} if fmt == "WEBP" else {}),
    )
    with pytest.warns(UserWarning, match=r"animated \(3 frames\); using the first frame"):
        tensor = load_image(buffer.getvalue(), max_size=None)
    assert np.allclose(_pixels(tensor)[4, 4], [255, 0, 0], atol=2)


# --------------------------------------------------------------------------- property tests


def _random_image(mode: str, height: int, width: int, seed: int, transparent: bool) -> Image.Image:
    rng = np.random.default_rng(seed)
    if mode == "1":
        return Image.fromarray(rng.random((height, width)) > 0.5)
    if mode in ("L", "LA", "RGB", "RGBA"):
        channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
        array = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
        return Image.fromarray(array[..., 0] if channels == 1 else array, mode=None if channels != 2 else "LA")
    if mode == "P":
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).quantize(colors=8)
        if transparent:
            image.info["transparency"] = 0
        return image
    if mode == "CMYK":
        values = rng.integers(0, 256, height * width * 4, dtype=np.uint8)
        return Image.frombytes("CMYK", (width, height), values.tobytes())
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    if mode == "I":
        return Image.fromarray(rng.integers(-1000, 100000, (height, width), dtype=np.int32))
    scale = [1.0, 255.0, 1e6][seed % 3]  # F: [0, 1], [0, 255] or anything
    return Image.fromarray((rng.standard_normal((height, width)) * scale).astype(np.float32))


_MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"]
_FORMATS = ["PNG", "JPEG", "GIF", "TIFF", "WEBP", "BMP"]


def _supported_pairs() -> list[tuple[str, str]]:
    pairs = []
    for mode in _MODES:
        for fmt in _FORMATS:
            try:
                image_bytes(_random_image(mode, 2, 2, 0, False), fmt)
            except (OSError, ValueError, KeyError):
                continue  # the format cannot store this mode
            pairs.append((mode, fmt))
    return pairs


_PAIRS = _supported_pairs()
_FUZZ = settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@contextlib.contextmanager
def _small_pixel_limit():
    """Random headers may claim huge sizes: a low bomb limit keeps the fuzz fast (they become ImageLoadError)."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 250_000
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def test_every_mode_is_stored_in_several_formats():
    formats = {mode: {fmt for m, fmt in _PAIRS if m == mode} for mode in _MODES}
    assert all(len(formats[mode]) >= 2 for mode in _MODES), formats
    assert {"PNG", "TIFF"} <= formats["I;16"] and "TIFF" in formats["F"] and "JPEG" in formats["CMYK"]


@pytest.mark.parametrize("mode, fmt", _PAIRS, ids=[f"{mode}-{fmt}" for mode, fmt in _PAIRS])
def test_every_mode_and_format_pair_loads(mode, fmt):
    """The deterministic sweep behind the fuzz test: each pair at least once, odd sizes, with and without resizing."""
    data = image_bytes(_random_image(mode, 5, 7, 1, transparent=True), fmt)
    check_image_tensor(load_image(data, max_size=None), 5, 7)
    check_image_tensor(load_image(data, max_size=14), 10, 14)


@_FUZZ
@given(
    pair=st.sampled_from(_PAIRS),
    height=st.integers(1, 24),
    width=st.integers(1, 24),
    seed=st.integers(0, 2**16),
    transparent=st.booleans(),
    max_size=st.sampled_from([None, 7, 32]),
)
def test_fuzz_valid_images_in_every_mode_and_format(pair, height, width, seed, transparent, max_size):
    mode, fmt = pair
    image = _random_image(mode, height, width, seed, transparent)
    data = image_bytes(image, fmt)
    with _small_pixel_limit():
        tensor = load_image(data, max_size=max_size)
    if max_size is None:
        expected = (height, width)
    else:
        scale = max_size / max(height, width)
        expected = (max(1, round(height * scale)), max(1, round(width * scale)))
    check_image_tensor(tensor, *expected)
    if max_size is None and mode in ("L", "RGB") and fmt in ("PNG", "TIFF", "BMP"):  # lossless: exact pixels
        assert np.allclose(_pixels(tensor), np.asarray(image.convert("RGB")), atol=1e-3)


# Each format's signature, so random bodies reach the parsers instead of stopping at "unknown format".
_MAGIC = [
    b"",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"GIF89a",
    b"II*\x00",
    b"MM\x00*",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"BM",
    b"<html>",
    b"\x00\x00\x01\x00",
]


@_FUZZ
@given(magic=st.sampled_from(_MAGIC), body=st.binary(max_size=600))
def test_fuzz_random_bytes_only_ever_raise_image_load_error(magic, body):
    with _small_pixel_limit():
        try:
            tensor = load_image(magic + body, max_size=16)
        except ImageLoadError:
            return
    check_image_tensor(tensor)
    assert max(tensor.shape[-2:]) == 16  # max_size was applied


@_FUZZ
@given(
    pair=st.sampled_from(_PAIRS),
    seed=st.integers(0, 2**16),
    keep=st.floats(0.0, 1.0),
    edits=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=8),
)
def test_fuzz_damaged_files_only_ever_raise_image_load_error(pair, seed, keep, edits):
    mode, fmt = pair
    data = bytearray(image_bytes(_random_image(mode, 9, 13, seed, False), fmt))
    for where, value in edits:
        data[min(int(where * len(data)), len(data) - 1)] = value
    data = bytes(data[: max(1, int(keep * len(data)))] if keep < 0.95 else data)
    with _small_pixel_limit():
        try:
            tensor = load_image(data, max_size=None)
        except ImageLoadError:
            return
    check_image_tensor(tensor)


def test_show_images_one_axis_per_image():
    assert len(show_images([torch.rand(1, 3, 4, 4)] * 3, ["a", "b", "c"]).axes) == 3
